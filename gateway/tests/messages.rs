//! `/v1/messages` (Anthropic's API) served by OpenAI and mock backends, and the Anthropic
//! provider adapter serving both APIs.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::{Value, json};

fn anthropic_request(model: &str, stream: bool) -> Value {
    json!({"model": model, "max_tokens": 64, "stream": stream, "system": "be brief",
           "messages": [{"role": "user", "content": "hello claude"}]})
}

async fn post_messages(h: &Harness, body: &Value, key: &str) -> reqwest::Response {
    h.client
        .post(h.url("/v1/messages"))
        .header("x-api-key", key)
        .header("anthropic-version", "2023-06-01")
        .json(body)
        .send()
        .await
        .unwrap()
}

#[tokio::test]
async fn messages_api_over_an_openai_backend() {
    let mut h = Harness::start().await;
    let response = post_messages(&h, &anthropic_request("fake-model", false), TEAM_KEY).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let message: Value = response.json().await.unwrap();
    assert_eq!(message["type"], "message");
    assert_eq!(message["content"][0]["text"], "fake-upstream reply to: hello claude");
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.path, "/v1/chat/completions");
    assert_eq!(sent.body["messages"][0], json!({"role": "system", "content": "be brief"}));
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["endpoint"], "messages");
    assert_eq!(rows[0]["input_tokens"], message["usage"]["input_tokens"]);
    assert_eq!(rows[0]["output_tokens"], message["usage"]["output_tokens"]);
}

#[tokio::test]
async fn messages_stream_has_event_lines_and_usage() {
    let mut h = Harness::start().await;
    let text = post_messages(&h, &anthropic_request("demo-echo", true), TEAM_KEY).await.text().await.unwrap();
    let events: Vec<&str> = text.lines().filter_map(|l| l.strip_prefix("event: ")).collect();
    assert_eq!(events.first(), Some(&"message_start"), "{text}");
    assert_eq!(events.last(), Some(&"message_stop"), "{text}");
    assert!(events.contains(&"content_block_delta") && events.contains(&"message_delta"));
    let delta = sse_data(&text).into_iter().find(|d| d["type"] == "message_delta").unwrap();
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 1);
    assert_eq!(rows[0]["output_tokens"], delta["usage"]["output_tokens"]);
}

#[tokio::test]
async fn errors_on_messages_use_anthropic_shape() {
    let h = Harness::start().await;
    let response = post_messages(&h, &anthropic_request("fake-model", false), "sk-wrong").await;
    assert_eq!(response.status(), 401);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["type"], "error");
    assert_eq!(body["error"]["type"], "authentication_error");

    let no_max_tokens = json!({"model": "fake-model", "messages": [{"role": "user", "content": "x"}]});
    let response = post_messages(&h, &no_max_tokens, TEAM_KEY).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "invalid_request_error");

    let response = post_messages(&h, &anthropic_request("no-such-model", false), TEAM_KEY).await;
    assert_eq!(response.status(), 404);
    assert_eq!(response.json::<Value>().await.unwrap()["error"]["type"], "not_found_error");
}

#[tokio::test]
async fn anthropic_backend_serves_chat_completions_with_its_key_and_cache_pricing() {
    let mut h = Harness::start().await;
    let request = json!({"model": "claude-fake", "messages": [
        {"role": "system", "content": "be brief"}, {"role": "user", "content": "hello anthropic"}]});
    let response = h.post("/v1/chat/completions", TEAM_KEY, &request).await;
    assert_eq!(response.status(), 200);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "fake-upstream reply to: hello anthropic");
    let sent = &h.upstream.requests()[0];
    assert_eq!(sent.path, "/v1/messages");
    assert_eq!(sent.header("x-api-key"), Some(UPSTREAM_KEY));
    assert!(sent.header("anthropic-version").is_some());
    assert_eq!(sent.body["model"], "claude-upstream");
    assert_eq!(sent.body["system"], "be brief");

    let mut stream_request = request.clone();
    stream_request["stream"] = json!(true);
    let text = h.post("/v1/chat/completions", TEAM_KEY, &stream_request).await.text().await.unwrap();
    let content: String = sse_data(&text)
        .iter()
        .filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str).map(str::to_owned))
        .collect();
    assert_eq!(content, "fake-upstream reply to: hello anthropic");

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 2);
    assert_eq!(rows[0]["provider"], "anthropic");
    let expected = rows[0]["input_tokens"].as_i64().unwrap() * 3_000
        + rows[0]["output_tokens"].as_i64().unwrap() * 15_000;
    assert_eq!(rows[0]["cost_nanos"], expected);
    assert_eq!(rows[0]["cost_nanos"], rows[1]["cost_nanos"], "streamed and non-streamed cost the same");
}
