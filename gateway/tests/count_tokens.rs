//! `/v1/messages/count_tokens`: Anthropic upstreams count exactly, the mock as it bills, other
//! backends are estimated, and nothing is metered.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::{Value, json};

async fn count(h: &Harness, body: &Value) -> (u16, Option<String>, Value) {
    let response = h
        .client
        .post(h.url("/v1/messages/count_tokens"))
        .header("x-api-key", TEAM_KEY)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap();
    let how = response.headers().get("x-switchboard-token-count").map(|v| v.to_str().unwrap().to_owned());
    (response.status().as_u16(), how, response.json().await.unwrap())
}

fn ask(model: &str) -> Value {
    json!({"model": model, "system": "be brief", "messages": [{"role": "user", "content": "count these five words"}]})
}

#[tokio::test]
async fn anthropic_counts_exactly_the_mock_as_it_bills_and_others_are_estimated() {
    let mut h = Harness::start().await;

    let (status, how, body) = count(&h, &ask("claude-fake")).await;
    assert_eq!((status, how.as_deref()), (200, Some("exact")), "{body}");
    let sent = h.upstream.requests();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].path, "/v1/messages/count_tokens");
    assert_eq!(sent[0].header("x-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(sent[0].body["model"], "claude-upstream");
    assert!(sent[0].body.get("max_tokens").is_none(), "a count sends no max_tokens");
    // The same messages, sent: the upstream bills the input it counted.
    let mut message = ask("claude-fake");
    message["max_tokens"] = json!(16);
    let response = h.client.post(h.url("/v1/messages")).header("x-api-key", TEAM_KEY).json(&message);
    let reply: Value = response.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["input_tokens"], reply["usage"]["input_tokens"], "{reply}");

    let (status, how, body) = count(&h, &ask("demo-echo")).await;
    assert_eq!((status, how.as_deref()), (200, Some("exact")));
    let response = h.client.post(h.url("/v1/messages")).header("x-api-key", TEAM_KEY).json(&{
        let mut message = ask("demo-echo");
        message["max_tokens"] = json!(16);
        message
    });
    let reply: Value = response.send().await.unwrap().json().await.unwrap();
    assert_eq!(body["input_tokens"], reply["usage"]["input_tokens"], "the mock counts as it bills");

    let (status, how, body) = count(&h, &ask("fake-model")).await;
    assert_eq!((status, how.as_deref()), (200, Some("estimate")));
    assert!(body["input_tokens"].as_u64().unwrap() > 0, "{body}");
    assert_eq!(h.upstream.requests().iter().filter(|r| r.path.ends_with("count_tokens")).count(), 1);

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    let endpoints: Vec<&str> = rows.iter().map(|r| r["endpoint"].as_str().unwrap()).collect();
    assert_eq!(endpoints, ["messages", "messages"], "counting is not metered");
}

#[tokio::test]
async fn bad_requests_and_unknown_models_are_refused_in_anthropics_shape() {
    let h = Harness::start().await;
    let (status, _, body) = count(&h, &ask("no-such-model")).await;
    assert_eq!((status, body["error"]["type"].as_str()), (404, Some("not_found_error")));
    let (status, _, body) = count(&h, &json!({"model": "claude-fake", "messages": []})).await;
    assert_eq!((status, body["error"]["type"].as_str()), (400, Some("invalid_request_error")));
    let response = h.client.post(h.url("/v1/messages/count_tokens")).json(&ask("claude-fake")).send().await;
    let response = response.unwrap();
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error");
    assert!(h.upstream.requests().is_empty());
}
