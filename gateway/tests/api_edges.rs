//! Odd requests at the edges of the HTTP API get errors in the API's own JSON shape, never
//! plain text, and never the database's own words.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::Value;

async fn json_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    let text = response.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}")))
}

#[tokio::test]
async fn mcp_errors_are_json_rpc_errors() {
    let h = Harness::start().await;
    let mcp = |body: &'static str, content_type: &'static str| {
        h.client
            .post(h.url("/mcp"))
            .bearer_auth(TEAM_KEY)
            .header("content-type", content_type)
            .header("accept", "application/json, text/event-stream")
            .body(body)
            .send()
    };
    let (status, body) = json_of(mcp("{\"jsonrpc\": \"2.0\", ", "application/json").await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_i64()), (400, Some(-32700)), "{body}");
    let (status, body) = json_of(mcp("{}", "text/plain").await.unwrap()).await;
    assert!(status >= 400, "{status}");
    assert_eq!(
        (body["jsonrpc"].as_str(), body["error"]["code"].as_i64()),
        (Some("2.0"), Some(-32600)),
        "{body}"
    );
}

#[tokio::test]
async fn bad_paths_and_queries_get_json_errors() {
    let h = Harness::start().await;
    let delete = |path: &str| h.client.delete(h.url(path)).bearer_auth(TEAM_KEY).send();
    for path in [
        "/v1/subjects/grace/memories?persona=a&persona=b",
        "/v1/subjects/%FF%FE/memories",
        "/v1/subjects/%20%20/memories",
        // PostgreSQL refuses NUL in text: refused here, on every database.
        "/v1/subjects/a%00b/memories",
        "/v1/subjects/grace/memories?persona=a%00b",
    ] {
        let (status, body) = json_of(delete(path).await.unwrap()).await;
        assert_eq!(status, 400, "{path}: {body}");
        assert!(body["error"]["message"].is_string(), "{path}: {body}");
    }
    let admin = h.client.get(h.url("/admin/v1/usage?since_ms=%ZZ")).bearer_auth(ADMIN_TOKEN);
    let (status, _) = json_of(admin.send().await.unwrap()).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn a_failing_ledger_read_does_not_show_the_databases_words() {
    let h = Harness::start().await;
    sqlx::any::install_default_drivers();
    let pool = sqlx::AnyPool::connect(&h.database_url).await.unwrap();
    sqlx::query("ALTER TABLE usage_ledger RENAME TO usage_ledger_gone").execute(&pool).await.unwrap();
    let response = h.client.get(h.url("/admin/v1/usage")).bearer_auth(ADMIN_TOKEN).send().await.unwrap();
    let (status, body) = json_of(response).await;
    assert_eq!(status, 500);
    let message = body["error"]["message"].as_str().unwrap();
    assert!(!message.contains("usage_ledger") && !message.contains("no such table"), "{message}");
}

#[tokio::test]
async fn refusals_before_the_handler_speak_the_dialect_of_the_path() {
    let h = Harness::start().await;
    // A wrong method: 405 with an error body, not an empty one.
    let (status, body) =
        json_of(h.client.put(h.url("/v1/models")).bearer_auth(TEAM_KEY).send().await.unwrap()).await;
    assert_eq!((status, body["error"]["code"].as_str()), (405, Some("method_not_allowed")), "{body}");
    // Under /v1/messages, Anthropic's shape: an unknown path, and a body over the limit.
    let unknown = h.client.post(h.url("/v1/messages/batches")).header("x-api-key", TEAM_KEY).body("{}");
    let (status, body) = json_of(unknown.send().await.unwrap()).await;
    assert_eq!((status, body["type"].as_str()), (404, Some("error")), "{body}");
    let huge = h.client.post(h.url("/v1/messages")).header("x-api-key", TEAM_KEY).body("a".repeat(100_000));
    let (status, body) = json_of(huge.send().await.unwrap()).await;
    assert_eq!((status, body["error"]["type"].as_str()), (413, Some("request_too_large")), "{body}");
}
