//! Request statistics and costs on SQLite and PostgreSQL: rolled up as the ledger writes, added
//! up across batches, grouped, filtered, bucketed by minute, hour and day, percentiles from the
//! histograms; over HTTP, a tenant key reads its own tenant's only and costs export as CSV.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{ADMIN_TOKEN, Harness, OTHER_KEY, OTHER_TENANT, TEAM_KEY, eventually};
use serde_json::{Value, json};
use switchboard_gateway::db::Database;
use switchboard_gateway::ledger::{Ledger, LedgerRecord};
use switchboard_gateway::stats::costs::CostQuery;
use switchboard_gateway::stats::{GroupBy, RankBy, Resolution, Stats, StatsQuery};

const MINUTE: i64 = 60_000;
/// 2026-12-07T00:00:00Z.
const DAY: i64 = 1_796_601_600_000;

fn record(at_ms: i64, tenant: &str, model: &str, status: u16, latency_ms: u64) -> LedgerRecord {
    LedgerRecord {
        id: uuid::Uuid::now_v7().to_string(),
        created_at_ms: at_ms,
        tenant: tenant.into(),
        api_key: "k".into(),
        model: model.into(),
        route: format!("route-{model}"),
        endpoint: "chat_completions",
        status,
        error_code: match status {
            429 => Some("budget_exceeded".into()),
            502 => Some("upstream_error".into()),
            _ => None,
        },
        input_tokens: 10,
        output_tokens: 5,
        cost_nanos: 1_000,
        latency_ms,
        billed: status != 429,
        ..LedgerRecord::default()
    }
}

fn query(bucket: Resolution, group_by: GroupBy) -> StatsQuery {
    StatsQuery::new(DAY, DAY + 86_400_000, bucket, group_by)
}

async fn statistics_add_up(url: &str) {
    let db = Database::connect(url).await.unwrap();
    let ledger = Ledger::new(db.clone());
    // Tenant a: 90 fast requests and 10 slow ones in minute 0, a 502 and a budget refusal in
    // minute 1; tenant b: 3 on another model an hour later. In two batches: the second adds to
    // the rows the first wrote.
    let mut first: Vec<LedgerRecord> = (0..90).map(|i| record(DAY + i, "a", "m1", 200, 40)).collect();
    first.extend((0..10).map(|i| record(DAY + 100 + i, "a", "m1", 200, 4_000)));
    let mut streamed = record(DAY + MINUTE, "a", "m1", 200, 300);
    streamed.ttft_ms = Some(120);
    streamed.persona = Some("ada".into());
    let second = vec![
        streamed,
        record(DAY + MINUTE + 1, "a", "m1", 502, 20),
        record(DAY + MINUTE + 2, "a", "m1", 429, 1),
        record(DAY + 3_600_000, "b", "m2", 200, 10),
        record(DAY + 3_600_000 + 1, "b", "m2", 200, 10),
        LedgerRecord { cost_nanos: 1_000_000, ..record(DAY + 3_600_000 + 2, "b", "m2", 200, 10) },
    ];
    ledger.insert(&first).await.unwrap();
    ledger.insert(&second).await.unwrap();
    let stats = Stats::new(db.clone());

    // By tenant, per hour: the busiest tenant first, each with its total.
    let by_tenant = stats.series(&query(Resolution::Hour, GroupBy::Tenant)).await.unwrap();
    let keys: Vec<_> = by_tenant.iter().map(|s| s.key.clone().unwrap()).collect();
    assert_eq!(keys, ["a", "b"]);
    let a = &by_tenant[0].total;
    assert_eq!((a.requests, a.errors, a.server_errors, a.refused), (103, 2, 1, 1));
    assert_eq!(
        a.errors_by_code,
        [("budget_exceeded".to_owned(), 1), ("upstream_error".to_owned(), 1)].into()
    );
    assert_eq!((a.input_tokens, a.output_tokens, a.cost_nanos), (1_030, 515, 103_000));
    assert_eq!(a.cost_usd, "0.000103");
    assert!((30.0..=50.0).contains(&a.latency_ms.p50), "{:?}", a.latency_ms);
    assert!((3_000.0..=5_000.0).contains(&a.latency_ms.p99), "{:?}", a.latency_ms);
    let ttft = a.ttft_ms.as_ref().unwrap();
    assert!((100.0..=150.0).contains(&ttft.p50), "{ttft:?}");
    assert_eq!(by_tenant[0].points.len(), 1, "tenant a's requests fall in one hour");
    assert_eq!(by_tenant[1].points[0].t_ms, Some(DAY + 3_600_000));
    assert!(by_tenant[1].total.ttft_ms.is_none(), "b streamed nothing");

    // Per minute, one tenant, by model: two minutes of a's.
    let mut per_minute = query(Resolution::Minute, GroupBy::Model);
    per_minute.tenant = Some("a".into());
    let series = stats.series(&per_minute).await.unwrap();
    assert_eq!(series.len(), 1);
    let points: Vec<_> = series[0].points.iter().map(|p| (p.t_ms.unwrap(), p.requests, p.errors)).collect();
    assert_eq!(points, [(DAY, 100, 0), (DAY + MINUTE, 3, 2)]);

    // One series over everything, per day; the limit keeps the busiest groups only; personas.
    let all = stats.series(&query(Resolution::Day, GroupBy::None)).await.unwrap();
    assert_eq!((all.len(), all[0].key.clone(), all[0].total.requests), (1, None, 106));
    let mut top = query(Resolution::Day, GroupBy::Model);
    top.limit = 1;
    let top = stats.series(&top).await.unwrap();
    assert_eq!((top.len(), top[0].key.as_deref()), (1, Some("m1")));
    // The top group by spend or by errors instead: b spent the most, a failed the most.
    let mut top = query(Resolution::Day, GroupBy::Model);
    top.limit = 1;
    top.rank_by = RankBy::Cost;
    let by_cost = stats.series(&top).await.unwrap();
    assert_eq!(by_cost.iter().map(|s| s.key.as_deref()).collect::<Vec<_>>(), [Some("m2")]);
    let mut by_tenant_cost = query(Resolution::Day, GroupBy::Tenant);
    by_tenant_cost.rank_by = RankBy::Cost;
    let keys: Vec<_> = stats.series(&by_tenant_cost).await.unwrap().into_iter().map(|s| s.key).collect();
    assert_eq!(keys, [Some("b".to_owned()), Some("a".to_owned())], "ordered by spend too");
    top.rank_by = RankBy::Errors;
    assert_eq!(stats.series(&top).await.unwrap()[0].key.as_deref(), Some("m1"));
    let mut ada = query(Resolution::Hour, GroupBy::Persona);
    ada.persona = Some("ada".into());
    let ada = stats.series(&ada).await.unwrap();
    assert_eq!((ada[0].key.as_deref(), ada[0].total.requests), (Some("ada"), 1));
    // A range before everything holds nothing.
    let mut empty = query(Resolution::Hour, GroupBy::Tenant);
    empty.until_ms = DAY;
    empty.since_ms = DAY - 3_600_000;
    assert!(stats.series(&empty).await.unwrap().is_empty());

    // Costs per day, tenant, model and persona.
    let costs = stats
        .costs(&CostQuery { since_ms: DAY, until_ms: DAY + 86_400_000, ..CostQuery::default() })
        .await
        .unwrap();
    let rows: Vec<_> =
        costs.iter().map(|r| (r.day.as_str(), r.tenant.as_str(), r.persona.as_deref(), r.requests)).collect();
    assert_eq!(
        rows,
        [("2026-12-07", "a", None, 102), ("2026-12-07", "a", Some("ada"), 1), ("2026-12-07", "b", None, 3)]
    );
}

#[tokio::test]
async fn statistics_add_up_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    statistics_add_up(&format!("sqlite://{}?mode=rwc", dir.path().join("s.db").display())).await;
}

#[tokio::test]
async fn statistics_add_up_on_postgres() {
    statistics_add_up(&common::fresh_postgres().await).await;
}

async fn the_views_are_scoped_to_the_caller(mut h: Harness) {
    h.restart_with("other.yaml", OTHER_TENANT).await;
    let ask = json!({"model": "fake-model", "messages": [{"role": "user", "content": "hi"}]});
    for key in [TEAM_KEY, TEAM_KEY, OTHER_KEY] {
        assert_eq!(h.post("/v1/chat/completions", key, &ask).await.status(), 200);
    }
    eventually("the statistics are written", || async {
        let (_, body) = h.get_text("/admin/v1/stats?group_by=tenant", ADMIN_TOKEN).await;
        let stats: Value = serde_json::from_str(&body).unwrap_or_default();
        stats["series"].as_array().is_some_and(|s| s.len() == 2)
    })
    .await;
    let (status, body) = h.get_text("/admin/v1/stats?group_by=tenant&bucket=minute", ADMIN_TOKEN).await;
    assert_eq!(status, 200, "{body}");
    let stats: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(stats["bucket"], "minute");
    assert_eq!(stats["series"][0]["key"], "team");
    assert_eq!(stats["series"][0]["total"]["requests"], 2);

    // A tenant key sees its own tenant, whatever it asks for.
    let (status, body) = h.get_text("/v1/usage/stats?group_by=tenant", TEAM_KEY).await;
    assert_eq!(status, 200, "{body}");
    let own: Value = serde_json::from_str(&body).unwrap();
    let keys: Vec<_> = own["series"].as_array().unwrap().iter().map(|s| s["key"].clone()).collect();
    assert_eq!(keys, [json!("team")]);
    assert_eq!(h.get_text("/v1/usage/stats?tenant=other", TEAM_KEY).await.0, 403);
    assert_eq!(h.get_text("/v1/usage/costs?tenant=other", TEAM_KEY).await.0, 403);

    // Costs, as JSON and as CSV.
    let (status, body) = h.get_text("/v1/usage/costs", TEAM_KEY).await;
    assert_eq!(status, 200, "{body}");
    let costs: Value = serde_json::from_str(&body).unwrap();
    assert_eq!(costs["data"].as_array().unwrap().len(), 1);
    assert_eq!(costs["data"][0]["tenant"], "team");
    assert_eq!(costs["data"][0]["requests"], 2);
    let response =
        h.client.get(h.url("/admin/v1/costs?format=csv")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    assert_eq!(response.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = response.text().await.unwrap();
    let lines: Vec<_> = csv.lines().collect();
    assert!(lines[0].starts_with("day,tenant,model,persona,requests"), "{csv}");
    assert_eq!(lines.len(), 3, "{csv}");
    assert!(lines.iter().any(|l| l.contains(",other,fake-model,,1,")), "{csv}");

    // Bad parameters are 400s in the API's shape.
    for bad in [
        "bucket=week",
        "group_by=key",
        "since_ms=5&until_ms=4",
        "bucket=minute&since_ms=0",
        "limit=0",
        "x=1",
        "rank_by=latency",
    ] {
        let (status, body) = h.get_text(&format!("/admin/v1/stats?{bad}"), ADMIN_TOKEN).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(
            serde_json::from_str::<Value>(&body).unwrap()["error"]["code"],
            "invalid_request",
            "{bad}"
        );
    }
    assert_eq!(h.get_text("/admin/v1/costs?format=xml", ADMIN_TOKEN).await.0, 400);
    h.stop_gateway().await;
}

#[tokio::test]
async fn views_on_sqlite() {
    the_views_are_scoped_to_the_caller(Harness::start().await).await;
}

#[tokio::test]
async fn views_on_postgres() {
    let url = common::fresh_postgres().await;
    the_views_are_scoped_to_the_caller(Harness::start_with_ledger(tempfile::tempdir().unwrap(), url).await)
        .await;
}
