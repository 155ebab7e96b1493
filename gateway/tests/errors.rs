//! Bad input and upstream failures: each gets the right status in the API's own error shape.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use std::time::{Duration, Instant};

use common::*;
use serde_json::{Value, json};

fn hello(model: &str) -> Value {
    json!({"model": model, "messages": [{"role": "user", "content": "hi"}]})
}

async fn error_of(response: reqwest::Response) -> (u16, Value) {
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

#[tokio::test]
async fn client_errors_use_openai_shape_and_leave_no_ledger_row() {
    let mut h = Harness::start().await;
    let (status, body) =
        error_of(h.post("/v1/chat/completions", "sk-wrong", &hello("fake-model")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (401, Some("invalid_api_key")));

    let missing =
        h.client.post(h.url("/v1/chat/completions")).json(&hello("fake-model")).send().await.unwrap();
    assert_eq!(missing.status(), 401);

    let (status, body) =
        error_of(h.post("/v1/chat/completions", TEAM_KEY, &hello("no-such-model")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")));
    assert_eq!(body["error"]["param"], "model");
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let malformed = h.post_text("/v1/chat/completions", TEAM_KEY, "{\"model\": \"fake-model\", ").await;
    let (status, body) = error_of(malformed).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("invalid_json")));

    let (status, body) = error_of(
        h.post("/v1/chat/completions", TEAM_KEY, &json!({"model": "fake-model", "messages": []})).await,
    )
    .await;
    assert_eq!(status, 400);
    assert!(body["error"]["message"].as_str().unwrap().contains("messages"));

    let huge = json!({"model": "fake-model", "messages": [{"role": "user", "content": "x".repeat(100_000)}]});
    let (status, body) = error_of(h.post("/v1/chat/completions", TEAM_KEY, &huge).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (413, Some("request_too_large")));

    assert_eq!(h.upstream.request_count(), 0, "nothing invalid reaches the upstream");
    h.stop_gateway().await;
    assert!(h.ledger_rows().await.is_empty());
}

#[tokio::test]
async fn upstream_500_is_retried_then_502_and_recorded() {
    let mut h = Harness::start().await;
    let response = h.post("/v1/chat/completions", TEAM_KEY, &hello("failing-model")).await;
    assert_eq!(response.headers()["x-should-retry"], "true");
    let (status, body) = error_of(response).await;
    assert_eq!((status, body["error"]["code"].as_str()), (502, Some("upstream_error")));
    assert_eq!(h.upstream.request_count(), 2, "one retry as configured");
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!((rows[0]["status"].as_i64(), rows[0]["cost_nanos"].as_i64()), (Some(502), Some(0)));
}

#[tokio::test]
async fn an_upstream_529_reaches_anthropic_clients_as_529_overloaded_error() {
    let mut h = Harness::start().await;
    let route = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: busy-route}
spec:
  models: [{name: busy-claude, upstreamModel: error-529}]
  backends: [{name: claude, provider: anthropic, baseUrl: "{UPSTREAM}"}]
  retries: {attempts: 1, backoffMs: 1}
"#;
    h.restart_with("busy.yaml", route).await;
    let request =
        json!({"model": "busy-claude", "max_tokens": 5, "messages": [{"role": "user", "content": "hi"}]});
    let response = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", TEAM_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(&request)
        .send()
        .await
        .unwrap();
    assert_eq!(response.headers()["x-should-retry"], "true");
    let (status, body) = error_of(response).await;
    assert_eq!((status, body["type"].as_str()), (529, Some("error")));
    assert_eq!(body["error"]["type"], "overloaded_error", "{body}");
    assert_eq!(h.upstream.request_count(), 2, "retried once, as a 5xx is");
}

#[tokio::test]
async fn upstream_400_is_passed_through_without_retry() {
    let h = Harness::start().await;
    let (status, body) =
        error_of(h.post("/v1/chat/completions", TEAM_KEY, &hello("rejecting-model")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (400, Some("upstream_rejected")));
    assert_eq!(h.upstream.request_count(), 1);
}

#[tokio::test]
async fn hung_upstream_ends_at_the_deadline_with_504() {
    let h = Harness::start().await;
    let started = Instant::now();
    let (status, body) =
        error_of(h.post("/v1/chat/completions", TEAM_KEY, &hello("hanging-model")).await).await;
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("upstream_timeout")));
    assert!(started.elapsed() < Duration::from_secs(5), "took {:?}", started.elapsed());
}

#[tokio::test]
async fn secrets_never_appear_in_error_messages() {
    let h = Harness::start().await;
    for model in ["failing-model", "rejecting-model", "hanging-model", "no-such-model"] {
        let text = h.post("/v1/chat/completions", TEAM_KEY, &hello(model)).await.text().await.unwrap();
        assert!(!text.contains(UPSTREAM_KEY) && !text.contains(TEAM_KEY), "{model}: {text}");
    }
}
