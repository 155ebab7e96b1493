//! The request log and its API on SQLite and PostgreSQL: served, failed, fallen-back, streamed and
//! refused requests each leave one row with what an operator asks about them; pages follow
//! cursors without gaps or repeats; filters select; a tenant key sees its own tenant only.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::collections::HashSet;

use common::{ADMIN_TOKEN, Harness, OTHER_KEY, OTHER_TENANT, TEAM_KEY, eventually};
use serde_json::{Value, json};
use switchboard_gateway::db::Database;
use switchboard_gateway::ledger::{Attempt, Ledger, LedgerRecord};
use switchboard_gateway::request_log::RequestLog;

const LIMITED_KEY: &str = "sk-test-limited";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";

/// A tenant allowed one request a minute.
const LIMITED: &str = r#"
apiVersion: v1
kind: Secret
metadata: {name: limited-key}
stringData: {key: sk-test-limited}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: limited}
spec:
  apiKeys: [{name: app, secretRef: {name: limited-key, key: key}}]
  rateLimits: {requestsPerMinute: 1}
"#;

fn chat(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hello there"}]})
}

async fn get(h: &Harness, path: &str, key: &str) -> (u16, Value) {
    let (status, body) = h.get_text(path, key).await;
    (status, serde_json::from_str(&body).unwrap_or(Value::Null))
}

/// Every row of the admin log for `query`, following cursors `limit` rows at a time.
async fn all_pages(h: &Harness, query: &str, limit: u32) -> Vec<Value> {
    let mut rows = Vec::new();
    let mut cursor: Option<String> = None;
    for _ in 0..100 {
        let mut path = format!("/admin/v1/requests?limit={limit}{query}");
        if let Some(cursor) = &cursor {
            path.push_str(&format!("&cursor={cursor}"));
        }
        let (status, page) = get(h, &path, ADMIN_TOKEN).await;
        assert_eq!(status, 200, "{page}");
        assert!(page["data"].as_array().unwrap().len() <= limit as usize);
        rows.extend(page["data"].as_array().unwrap().iter().cloned());
        match page["next_cursor"].as_str() {
            Some(next) => cursor = Some(next.to_owned()),
            None => return rows,
        }
    }
    panic!("the pages never ended");
}

async fn the_request_log_answers_what_happened(mut h: Harness) {
    h.restart_with("tenants.yaml", &format!("{OTHER_TENANT}---\n{LIMITED}")).await;
    let started = switchboard_gateway::db::now_ms();
    // Served, with an end user and a trace.
    let traceparent = format!("00-{TRACE_ID}-00f067aa0ba902b7-01");
    let mut body = chat("fake-model");
    body["user"] = json!("user-7");
    let response = h
        .client
        .post(h.url("/v1/chat/completions"))
        .bearer_auth(TEAM_KEY)
        .header("traceparent", &traceparent)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let served_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Streamed.
    let mut streamed = chat("fake-model");
    streamed["stream"] = json!(true);
    let response = h.post("/v1/chat/completions", TEAM_KEY, &streamed).await;
    let streamed_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert!(response.text().await.unwrap().contains("[DONE]"));
    // The first backend refuses connections: the second answers.
    let response = h.post("/v1/chat/completions", TEAM_KEY, &chat("fallback-model")).await;
    assert_eq!(response.status(), 200);
    let fallback_id = response.headers()["x-request-id"].to_str().unwrap().to_owned();
    // The upstream fails (500, retried once).
    let response = h.post("/v1/chat/completions", TEAM_KEY, &chat("failing-model")).await;
    assert!(response.status().is_server_error());
    // Another tenant, and a refusal by a rate limit.
    assert_eq!(h.post("/v1/chat/completions", OTHER_KEY, &chat("demo-echo")).await.status(), 200);
    assert_eq!(h.post("/v1/chat/completions", LIMITED_KEY, &chat("demo-echo")).await.status(), 200);
    let refused = h.post("/v1/chat/completions", LIMITED_KEY, &chat("demo-echo")).await;
    assert_eq!(refused.status(), 429);
    let refused_id = refused.headers()["x-request-id"].to_str().unwrap().to_owned();
    // Refused before routing: a model the tenant has not, and a body that is no JSON.
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &chat("no-such-model")).await.status(), 404);
    let garbled = h.post_text("/v1/chat/completions", TEAM_KEY, "{\"model\": ").await;
    assert_eq!(garbled.status(), 400);

    eventually("the log holds all 9 requests", || async {
        get(&h, "/admin/v1/requests?limit=200", ADMIN_TOKEN).await.1["data"].as_array().map(Vec::len)
            == Some(9)
    })
    .await;

    // Pages of 2 cover everything once, newest first.
    let rows = all_pages(&h, "", 2).await;
    assert_eq!(rows.len(), 9);
    let ids: HashSet<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids.len(), 9, "no row twice");
    let order: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert!(order.windows(2).all(|w| w[0] > w[1]), "newest first (UUIDv7 ids sort by time): {order:?}");

    // One request in full.
    let (status, served) = get(&h, &format!("/admin/v1/requests/{served_id}"), ADMIN_TOKEN).await;
    assert_eq!(status, 200);
    assert_eq!(served["tenant"], "team");
    assert_eq!(served["api_key"], "ci");
    assert_eq!(served["subject"], "user-7");
    assert_eq!(served["trace_id"], TRACE_ID);
    assert_eq!(served["model"], "fake-model");
    assert_eq!(
        (served["route"].as_str(), served["backend"].as_str()),
        (Some("openai-route"), Some("primary"))
    );
    assert_eq!((served["status"].as_i64(), served["stream"].as_bool()), (Some(200), Some(false)));
    assert!(served["input_tokens"].as_i64().unwrap() > 0 && served["output_tokens"].as_i64().unwrap() > 0);
    assert!(served["cost_nanos"].as_i64().unwrap() > 0);
    assert_eq!(served["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(served["attempts"][0]["outcome"], "ok");
    assert!(served["ttft_ms"].is_null(), "no first token for a whole reply");
    assert!(served["queue_ms"].is_i64());
    assert_eq!(served["cache_hit"], false);

    let (_, streamed) = get(&h, &format!("/admin/v1/requests/{streamed_id}"), ADMIN_TOKEN).await;
    assert_eq!(streamed["stream"], true);
    assert!(streamed["ttft_ms"].is_i64(), "{streamed}");
    assert!(streamed["ttft_ms"].as_i64() <= streamed["latency_ms"].as_i64());

    let (_, fallback) = get(&h, &format!("/admin/v1/requests/{fallback_id}"), ADMIN_TOKEN).await;
    let attempts: Vec<(&str, &str)> = fallback["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| (a["backend"].as_str().unwrap(), a["outcome"].as_str().unwrap()))
        .collect();
    assert_eq!(attempts, [("dead", "connect"), ("alive", "ok")]);
    assert_eq!(fallback["backend"], "alive");

    let (_, refused) = get(&h, &format!("/admin/v1/requests/{refused_id}"), ADMIN_TOKEN).await;
    assert_eq!(
        (refused["status"].as_i64(), refused["error_code"].as_str()),
        (Some(429), Some("rate_limit_exceeded"))
    );
    assert_eq!(refused["attempts"], json!([]));
    assert_eq!(refused["cost_nanos"], 0);

    // Filters.
    let failed = all_pages(&h, "&status=5xx", 50).await;
    assert_eq!(failed.len(), 1);
    assert_eq!(failed[0]["model"], "failing-model");
    assert_eq!(failed[0]["attempts"].as_array().unwrap().len(), 2, "retried once");
    assert_eq!(all_pages(&h, "&status=429", 50).await.len(), 1);
    let unknown = all_pages(&h, "&status=404", 50).await;
    assert_eq!(unknown.len(), 1);
    assert_eq!(
        (unknown[0]["model"].as_str(), unknown[0]["error_code"].as_str(), unknown[0]["route"].as_str()),
        (Some("no-such-model"), Some("model_not_found"), Some(""))
    );
    assert_eq!((unknown[0]["tenant"].as_str(), unknown[0]["cost_nanos"].as_i64()), (Some("team"), Some(0)));
    let invalid = all_pages(&h, "&status=400", 50).await;
    assert_eq!((invalid.len(), invalid[0]["error_code"].as_str()), (1, Some("invalid_json")), "{invalid:?}");
    assert_eq!(all_pages(&h, "&model=fallback-model", 50).await.len(), 1);
    // Free text on the error: what the code contains, case aside; `_` and `%` as themselves.
    let limited = all_pages(&h, "&error=RATE_LIMIT", 50).await;
    assert_eq!((limited.len(), limited[0]["error_code"].as_str()), (1, Some("rate_limit_exceeded")));
    assert_eq!(all_pages(&h, "&error=not_found", 50).await.len(), 1);
    assert_eq!(all_pages(&h, "&error=%25", 50).await.len(), 0, "a % is no wildcard");
    assert_eq!(all_pages(&h, "&error=model_", 50).await.len(), 1);
    assert_eq!(all_pages(&h, "&tenant=team&route=openai-route", 50).await.len(), 3);
    let later = switchboard_gateway::db::now_ms() + 1_000;
    assert_eq!(all_pages(&h, &format!("&since_ms={later}"), 50).await.len(), 0);
    assert_eq!(all_pages(&h, &format!("&until_ms={later}"), 50).await.len(), 9);
    let began = started - 1;
    assert_eq!(all_pages(&h, &format!("&since_ms={began}"), 50).await.len(), 9);
    assert_eq!(all_pages(&h, &format!("&until_ms={began}"), 50).await.len(), 0);

    // A tenant key sees its own tenant, and nothing else.
    let (status, own) = get(&h, "/v1/usage/requests?limit=200", TEAM_KEY).await;
    assert_eq!(status, 200);
    let own = own["data"].as_array().unwrap();
    assert_eq!(own.len(), 6);
    assert!(own.iter().all(|r| r["tenant"] == "team"));
    let other_id = all_pages(&h, "&tenant=other", 50).await[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(get(&h, &format!("/v1/usage/requests/{other_id}"), TEAM_KEY).await.0, 404);
    assert_eq!(get(&h, &format!("/v1/usage/requests/{served_id}"), TEAM_KEY).await.0, 200);
    assert_eq!(get(&h, "/v1/usage/requests?tenant=other", TEAM_KEY).await.0, 403);

    // Bad parameters get clear errors; the admin log needs the admin token.
    for bad in [
        "status=abc",
        "cursor=garbage",
        "limit=0",
        "limit=201",
        "since_ms=x",
        "colour=red",
        "model=a%00b",
        "error=",
        "error=a%0Ab",
    ] {
        let (status, body) = get(&h, &format!("/admin/v1/requests?{bad}"), ADMIN_TOKEN).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].is_string(), "{bad}: {body}");
    }
    assert_eq!(get(&h, "/admin/v1/requests", TEAM_KEY).await.0, 401);
    assert_eq!(get(&h, "/admin/v1/requests/nope", ADMIN_TOKEN).await.0, 404);

    // The usage ledger (money) has the billed rows only: not the refusals.
    h.stop_gateway().await;
    let ledger: Vec<String> =
        h.ledger_rows().await.iter().map(|r| r["id"].as_str().unwrap().to_owned()).collect();
    assert_eq!(ledger.len(), 6);
    assert!(!ledger.contains(&refused_id));
}

#[tokio::test]
async fn request_log_on_sqlite() {
    the_request_log_answers_what_happened(Harness::start().await).await;
}

#[tokio::test]
async fn request_log_on_postgres() {
    let url = common::fresh_postgres().await;
    the_request_log_answers_what_happened(
        Harness::start_with_ledger(tempfile::tempdir().unwrap(), url).await,
    )
    .await;
}

/// `--request-log=false`: the usage ledger is written, the request log is not.
#[tokio::test]
async fn the_request_log_can_be_turned_off() {
    let mut h = Harness::start().await;
    h.gateway_args = vec!["--request-log=false".into()];
    h.stop_gateway().await;
    h.start_gateway().await;
    assert_eq!(h.post("/v1/chat/completions", TEAM_KEY, &chat("fake-model")).await.status(), 200);
    h.stop_gateway().await;
    assert_eq!(h.ledger_rows().await.len(), 1);
    h.start_gateway().await;
    let (status, page) = get(&h, "/admin/v1/requests", ADMIN_TOKEN).await;
    assert_eq!((status, page["data"].as_array().map(Vec::len)), (200, Some(0)));
}

fn record(id: &str, created_at_ms: i64) -> LedgerRecord {
    LedgerRecord {
        id: id.into(),
        created_at_ms,
        tenant: "t".into(),
        api_key: "k".into(),
        model: "m".into(),
        route: "r".into(),
        backend: "b".into(),
        provider: "openai".into(),
        endpoint: "chat_completions",
        status: 200,
        input_tokens: 1,
        output_tokens: 1,
        cost_nanos: 3,
        latency_ms: 1,
        attempts: vec![Attempt { backend: "b".into(), outcome: "ok".into(), at_ms: 0, ms: 1 }],
        queue_ms: Some(0),
        billed: true,
        ..LedgerRecord::default()
    }
}

/// Retention trims the request log, never the usage ledger.
#[tokio::test]
async fn retention_trims_the_log_not_the_ledger() {
    let dir = tempfile::tempdir().unwrap();
    let db =
        Database::connect(&format!("sqlite://{}?mode=rwc", dir.path().join("l.db").display())).await.unwrap();
    // UUIDv7-shaped ids of requests that began at 0, 1, 2 ... ms.
    let id = |ms: i64| format!("{:08x}-{:04x}-7000-8000-000000000000", ms >> 16, ms & 0xffff);
    let records: Vec<LedgerRecord> = (0..12_000).map(|ms| record(&id(ms), ms)).collect();
    Ledger::new(db.clone()).insert(&records).await.unwrap();
    let log = RequestLog::new(db.clone());
    assert_eq!(log.trim(10_500).await.unwrap(), 10_500);
    assert_eq!(log.trim(10_500).await.unwrap(), 0);
    assert!(log.get(&id(10_499), None).await.unwrap().is_none());
    assert_eq!(log.get(&id(10_500), None).await.unwrap().map(|r| r.created_at_ms), Some(10_500));
    let ledger_rows: i64 =
        sqlx::query_scalar("SELECT COUNT(*) FROM usage_ledger").fetch_one(db.pool()).await.unwrap();
    assert_eq!(ledger_rows, 12_000);
}
