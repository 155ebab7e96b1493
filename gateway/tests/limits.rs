//! Rate limits and budgets enforced on the request path: one gateway with in-process counters,
//! and two gateways sharing PostgreSQL (budgets, ledger) and Redis (rate limits), as replicas do.
//! `make test` starts both servers and sets SWITCHBOARD_TEST_POSTGRES_URL and
//! SWITCHBOARD_TEST_REDIS_URL.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::Harness;
use futures::future::join_all;
use serde_json::{Value, json};

const KEY: &str = "sk-test-limited";

/// A tenant `name` with key `key`, rate limits and optionally a budget, using the harness's
/// `fake-model` route (prices: $1 per million input tokens, $2 per million output tokens).
fn tenant(name: &str, key: &str, rate_limits: &str, budget: Option<(&str, &str)>) -> String {
    let mut yaml = format!(
        r#"
---
apiVersion: v1
kind: Secret
metadata: {{name: {name}-key}}
stringData: {{key: {key}}}
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {{name: {name}}}
spec:
  apiKeys: [{{name: app, secretRef: {{name: {name}-key, key: key}}}}]
  rateLimits: {rate_limits}
"#
    );
    if let Some((limit_usd, enforcement)) = budget {
        yaml.push_str(&format!(
            r#"---
apiVersion: switchboard.dev/v1alpha1
kind: Budget
metadata: {{name: {name}-cap}}
spec:
  scope: {{kind: Tenant, tenant: {name}}}
  limitUsd: "{limit_usd}"
  period: Monthly
  enforcement: {enforcement}
  warnAtPercent: 50
"#
        ));
    }
    yaml
}

fn limited(rate_limits: &str, budget: Option<(&str, &str)>) -> String {
    tenant("limited", KEY, rate_limits, budget)
}

/// "hello there": the fake bills 5 prompt and 5 completion tokens, $15e-6. With `max_tokens: 10`
/// each request reserves the most its prompt can cost (11 bytes and 8 tokens of framing) and its
/// output: 19 x $1e-6 + 10 x $2e-6 = $39e-6.
fn request() -> Value {
    json!({"model": "fake-model", "max_tokens": 10, "messages": [{"role": "user", "content": "hello there"}]})
}

const COST_NANOS: i64 = 15_000;
const RESERVATION_NANOS: i64 = 39_000;

/// After a burst, one request at a time until the budget is exhausted, as a patient client would;
/// how many were served.
async fn until_exhausted(gateway: &Harness, key: &str) -> usize {
    let mut served = 0;
    for _ in 0..40 {
        let response =
            gateway.client.post(gateway.url("/v1/chat/completions")).bearer_auth(key).json(&request());
        let response = response.send().await.unwrap();
        if response.status() == 200 {
            served += 1;
            continue;
        }
        let body: Value = response.json().await.unwrap();
        match body["error"]["code"].as_str() {
            Some("budget_exceeded") => return served,
            // The last settle may still be on its way to the shared store: retry, as told.
            Some("budget_busy") => tokio::time::sleep(std::time::Duration::from_millis(100)).await,
            _ => panic!("{body}"),
        }
    }
    panic!("the budget never ran out")
}

/// Refused requests name the budget: exhausted, or its last room taken by a request in flight.
async fn refused_by_budget(responses: Vec<reqwest::Response>) {
    for response in responses.into_iter().filter(|r| r.status() == 429) {
        let body: Value = response.json().await.unwrap();
        let code = body["error"]["code"].as_str().unwrap_or_default().to_owned();
        assert!(code == "budget_exceeded" || code == "budget_busy", "{body}");
        assert!(body["error"]["message"].as_str().unwrap().contains("-cap"), "{body}");
    }
}

async fn fire(gateways: &[&Harness], key: &str, count: usize) -> Vec<reqwest::Response> {
    let sends = (0..count).map(|i| {
        let h = gateways[i % gateways.len()];
        h.client.post(h.url("/v1/chat/completions")).bearer_auth(key).json(&request()).send()
    });
    join_all(sends).await.into_iter().map(Result::unwrap).collect()
}

fn count(responses: &[reqwest::Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status() == status).count()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_request_limit_holds_exactly_under_64_concurrent_clients() {
    let mut h = Harness::start().await;
    h.restart_with("limited.yaml", &limited("{requestsPerMinute: 10}", None)).await;
    let responses = fire(&[&h], KEY, 64).await;
    assert_eq!(count(&responses, 200), 10);
    assert_eq!(count(&responses, 429), 54);
    let ok = responses.iter().find(|r| r.status() == 200).unwrap();
    assert_eq!(ok.headers()["x-ratelimit-limit-requests"], "10");
    let limited = responses.into_iter().find(|r| r.status() == 429).unwrap();
    assert_eq!(limited.headers()["x-ratelimit-remaining-requests"], "0");
    let retry_after: u64 = limited.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=6).contains(&retry_after), "one request's worth of refill: {retry_after}");
    let body: Value = limited.json().await.unwrap();
    assert_eq!(body["error"]["code"], "rate_limit_exceeded");
    assert_eq!(body["error"]["type"], "rate_limit_error");
    assert_eq!(h.upstream.request_count(), 10, "refused requests never reach the provider");
}

#[tokio::test]
async fn token_limits_count_the_estimate_before_and_the_usage_after() {
    let mut h = Harness::start().await;
    // 13 tokens admitted per request (3 estimated + max_tokens 10); 10 actually used.
    h.restart_with("limited.yaml", &limited("{tokensPerMinute: 30}", None)).await;
    let statuses: Vec<u16> = {
        let mut out = Vec::new();
        for _ in 0..3 {
            out.push(
                h.client
                    .post(h.url("/v1/chat/completions"))
                    .bearer_auth(KEY)
                    .json(&request())
                    .send()
                    .await
                    .unwrap()
                    .status()
                    .as_u16(),
            );
        }
        out
    };
    assert_eq!(statuses, [200, 200, 429]);
    // A request that can never fit is refused for good: no retry-after, no retry hint.
    let mut huge = request();
    huge["max_tokens"] = json!(1000);
    let response =
        h.client.post(h.url("/v1/chat/completions")).bearer_auth(KEY).json(&huge).send().await.unwrap();
    assert_eq!(response.status(), 429);
    assert!(!response.headers().contains_key("retry-after"));
    assert_eq!(response.headers()["x-should-retry"], "false");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hard_budget_is_never_exceeded_by_concurrent_requests() {
    let mut h = Harness::start().await;
    // $100e-6: room for 6 requests at $15e-6, but each reserves $39e-6 while in flight.
    h.restart_with("limited.yaml", &limited("{}", Some(("0.0001", "Hard")))).await;
    let responses = fire(&[&h], KEY, 64).await;
    let burst = count(&responses, 200);
    assert!(burst >= 1, "{burst}");
    assert_eq!(count(&responses, 429), 64 - burst);
    refused_by_budget(responses).await;
    let served = burst + until_exhausted(&h, KEY).await;
    assert_eq!(h.upstream.request_count(), served);
    h.stop_gateway().await;
    let spent: i64 = h
        .ledger_rows()
        .await
        .iter()
        .filter(|r| r["tenant"] == "limited")
        .map(|r| r["cost_nanos"].as_i64().unwrap())
        .sum();
    assert_eq!(spent, served as i64 * COST_NANOS);
    assert!(spent <= 100_000, "spent {spent} nano-dollars of a 100000 limit");
    assert!(spent > 100_000 - RESERVATION_NANOS, "the budget was usable up to one reservation: {spent}");
}

#[tokio::test]
async fn a_soft_budget_warns_but_keeps_serving() {
    let mut h = Harness::start().await;
    h.restart_with("limited.yaml", &limited("{}", Some(("0.00002", "Soft")))).await;
    for _ in 0..4 {
        let response = h
            .client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth(KEY)
            .json(&request())
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
    }
    let metrics = h.metrics().await;
    let exhausted = r#"switchboard_budget_warnings_total{budget="limited-cap",level="exhausted"}"#;
    let value: u64 = metrics.lines().find_map(|l| l.strip_prefix(exhausted)).unwrap().trim().parse().unwrap();
    assert!(value >= 3, "{metrics}");
}

/// Two gateways (replicas) with the same config, one PostgreSQL schema and one Redis.
async fn two_replicas(config: &str) -> (Harness, Harness, String) {
    let database_url = common::fresh_postgres().await;
    let redis = common::server_url("SWITCHBOARD_TEST_REDIS_URL");
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let mut h = Harness::start_with_ledger(tempfile::tempdir().unwrap(), database_url.clone()).await;
        h.gateway_args = vec![format!("--redis-url={redis}")];
        h.restart_with("limited.yaml", config).await;
        replicas.push(h);
    }
    let b = replicas.pop().unwrap();
    let a = replicas.pop().unwrap();
    (a, b, database_url)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_enforce_one_rate_limit_and_one_budget_together() {
    // Per-run tenant names keep Redis state of earlier runs out of this one (PostgreSQL gets a
    // fresh schema).
    let run = &uuid::Uuid::new_v4().simple().to_string()[..8];
    let (paced, capped) = (format!("paced-{run}"), format!("capped-{run}"));
    let config = tenant(&paced, "sk-test-paced", "{requestsPerMinute: 10}", None)
        + &tenant(&capped, "sk-test-capped", "{}", Some(("0.0001", "Hard")));
    let (mut a, mut b, database_url) = two_replicas(&config).await;

    let responses = fire(&[&a, &b], "sk-test-paced", 64).await;
    assert_eq!(count(&responses, 200), 10, "one limit of 10 across both replicas");
    assert_eq!(count(&responses, 429), 54);

    let responses = fire(&[&a, &b], "sk-test-capped", 64).await;
    let burst = count(&responses, 200);
    assert!(burst >= 1, "{burst}");
    assert_eq!(count(&responses, 429), 64 - burst);
    refused_by_budget(responses).await;
    let served = burst + until_exhausted(&b, "sk-test-capped").await;

    a.stop_gateway().await;
    b.stop_gateway().await;
    let rows = common::ledger_rows(&database_url).await;
    let spent: i64 = rows
        .iter()
        .filter(|r| r["tenant"] == capped.as_str())
        .map(|r| r["cost_nanos"].as_i64().unwrap())
        .sum();
    assert_eq!(spent, served as i64 * COST_NANOS);
    assert!(spent <= 100_000, "one budget across both replicas: spent {spent} of 100000");
}

#[tokio::test]
async fn two_replicas_share_cached_replies_through_redis() {
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (a, b, _) =
        two_replicas(&tenant(&format!("cached-{}", &run[..8]), "sk-test-cached", "{}", None)).await;
    let request = json!({"model": "fake-model", "temperature": 0,
        "messages": [{"role": "user", "content": format!("cache me {run}")}]});
    let post = |h: &Harness| {
        h.client
            .post(h.url("/v1/chat/completions"))
            .bearer_auth("sk-test-cached")
            .header("x-switchboard-cache", "on")
            .json(&request)
            .send()
    };
    let first = post(&a).await.unwrap();
    assert_eq!(first.headers()["x-switchboard-cache"], "miss");
    let first: Value = first.json().await.unwrap();
    common::eventually("the other replica serves the cached reply", || async {
        let response = post(&b).await.unwrap();
        response.headers()["x-switchboard-cache"] == "hit" && response.json::<Value>().await.unwrap() == first
    })
    .await;
    assert_eq!(a.upstream.request_count(), 1);
    assert_eq!(b.upstream.request_count(), 0, "replica b never called its provider");
}
