//! The same ledger contract against a real PostgreSQL (`make test` starts one and sets
//! SWITCHBOARD_TEST_POSTGRES_URL).

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::json;

#[tokio::test]
async fn rows_are_written_to_postgres_with_exact_costs() {
    let url = fresh_postgres().await;

    let mut h = Harness::start_with_ledger(tempfile::tempdir().unwrap(), url.clone()).await;
    let request = json!({"model": "fake-model", "messages": [{"role": "user", "content": "hello postgres"}]});
    let body: serde_json::Value =
        h.post("/v1/chat/completions", TEAM_KEY, &request).await.json().await.unwrap();
    let mut streamed = request.clone();
    streamed["stream"] = json!(true);
    h.post("/v1/chat/completions", TEAM_KEY, &streamed).await.text().await.unwrap();
    h.stop_gateway().await;

    let rows = ledger_rows(&url).await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    let expected = body["usage"]["prompt_tokens"].as_i64().unwrap() * INPUT_NANOS_PER_TOKEN
        + body["usage"]["completion_tokens"].as_i64().unwrap() * OUTPUT_NANOS_PER_TOKEN;
    for row in &rows {
        assert_eq!(row["cost_nanos"], expected);
        assert_eq!(row["tenant"], "team");
    }
    // The gateway restarts against the migrated database without trouble.
    h.start_gateway().await;
    let usage = h.admin_usage().await;
    assert_eq!(usage["tenants"][0]["requests"], 2);
    assert_eq!(usage["tenants"][0]["cost_nanos"], expected * 2);
    h.stop_gateway().await;
}
