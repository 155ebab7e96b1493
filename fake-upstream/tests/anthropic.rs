//! Anthropic Messages wire format, usage formulas and behaviours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use common::{parse_sse, read_until_error, spawn};
use serde_json::{Value, json};

fn request() -> Value {
    json!({
        "model": "claude-test",
        "max_tokens": 64,
        "system": "be brief",
        "messages": [{"role": "user", "content": "hello there"}],
    })
}

async fn post(base: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut builder = reqwest::Client::new()
        .post(format!("{base}/messages"))
        .header("anthropic-version", "2023-06-01")
        .header("x-api-key", "test")
        .json(body);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.send().await.unwrap()
}

#[tokio::test]
async fn non_stream_has_the_real_shape_and_formula_usage() {
    let fake = spawn().await;
    let headers = [("x-fake-cached-tokens", "4"), ("x-fake-cache-write-tokens", "3")];
    let response = post(&fake.base_url(), &request(), &headers).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("request-id"));
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("msg_"));
    let id = body["id"].clone();
    // P = (2 + 3) for system + (2 + 3) for the message; input = P - K - W.
    assert_eq!(
        body,
        json!({
            "id": id,
            "type": "message",
            "role": "assistant",
            "model": "claude-test",
            "content": [{"type": "text", "text": "fake-upstream reply to: hello there"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 3, "output_tokens": 5, "cache_read_input_tokens": 4, "cache_creation_input_tokens": 3},
        })
    );
}

#[tokio::test]
async fn system_blocks_and_content_blocks_are_counted() {
    let fake = spawn().await;
    let body = json!({
        "model": "claude-test",
        "max_tokens": 64,
        "system": [{"type": "text", "text": "be"}, {"type": "text", "text": "brief", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "one"},
            {"role": "assistant", "content": [{"type": "text", "text": "two words"}]},
            {"role": "user", "content": [{"type": "text", "text": "three little words"}]},
        ],
    });
    let body: Value = post(&fake.base_url(), &body, &[]).await.json().await.unwrap();
    assert_eq!(body["content"][0]["text"], "fake-upstream reply to: three little words");
    assert_eq!(body["usage"]["input_tokens"], 5 + 4 + 5 + 6);
    assert_eq!(body["usage"]["output_tokens"], 6);
    assert_eq!(body["usage"]["cache_read_input_tokens"], 0);
}

#[tokio::test]
async fn stream_sends_every_event_with_an_event_line() {
    let fake = spawn().await;
    let mut body = request();
    body["stream"] = json!(true);
    let response = post(&fake.base_url(), &body, &[("x-fake-cached-tokens", "2")]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let frames = parse_sse(&response.text().await.unwrap());
    let names: Vec<&str> = frames.iter().map(|f| f.event.as_deref().unwrap()).collect();
    let mut expected = vec!["message_start", "content_block_start", "ping"];
    expected.extend(["content_block_delta"; 5]);
    expected.extend(["content_block_stop", "message_delta", "message_stop"]);
    assert_eq!(names, expected);
    let events: Vec<Value> = frames.iter().map(|f| f.json()).collect();
    for (event, name) in events.iter().zip(&names) {
        assert_eq!(event["type"], *name, "data.type matches the event line");
    }
    let message = &events[0]["message"];
    assert_eq!(message["content"], json!([]));
    assert!(message["stop_reason"].is_null());
    assert_eq!(
        message["usage"],
        json!({"input_tokens": 8, "output_tokens": 1, "cache_read_input_tokens": 2, "cache_creation_input_tokens": 0})
    );
    assert_eq!(events[1]["content_block"], json!({"type": "text", "text": ""}));
    let text: String = events[3..8]
        .iter()
        .map(|e| {
            assert_eq!(e["delta"]["type"], "text_delta");
            e["delta"]["text"].as_str().unwrap()
        })
        .collect();
    assert_eq!(text, "fake-upstream reply to: hello there");
    assert_eq!(events[9]["delta"], json!({"stop_reason": "end_turn", "stop_sequence": null}));
    assert_eq!(events[9]["usage"], json!({"output_tokens": 5}));
}

#[tokio::test]
async fn missing_max_tokens_is_an_anthropic_400() {
    let fake = spawn().await;
    let mut body = request();
    body.as_object_mut().unwrap().remove("max_tokens");
    let response = post(&fake.base_url(), &body, &[]).await;
    assert_eq!(response.status(), 400);
    let request_id = response.headers()["request-id"].to_str().unwrap().to_owned();
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert!(error["error"]["message"].as_str().unwrap().contains("max_tokens"));
    assert_eq!(error["request_id"], request_id);
}

#[tokio::test]
async fn scripted_errors_use_the_anthropic_shape() {
    let fake = spawn().await;
    let mut body = request();
    body["model"] = json!("error-529");
    let response = post(&fake.base_url(), &body, &[]).await;
    assert_eq!(response.status(), 529);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "overloaded_error");

    let response = post(&fake.base_url(), &request(), &[("x-fake-behavior", "error-429")]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "rate_limit_error");
}

#[tokio::test]
async fn echo_request_and_no_usage() {
    let fake = spawn().await;
    let mut body = request();
    body["model"] = json!("echo-request");
    let reply: Value = post(&fake.base_url(), &body, &[]).await.json().await.unwrap();
    let text = reply["content"][0]["text"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), body);

    body["model"] = json!("no-usage");
    let reply: Value = post(&fake.base_url(), &body, &[]).await.json().await.unwrap();
    assert!(reply.get("usage").is_none());
    body["stream"] = json!(true);
    let frames = parse_sse(&post(&fake.base_url(), &body, &[]).await.text().await.unwrap());
    assert!(frames[0].json()["message"].get("usage").is_none());
    assert!(frames.iter().all(|f| f.json().get("usage").is_none()));
    assert_eq!(frames.last().unwrap().event.as_deref(), Some("message_stop"));
}

#[tokio::test]
async fn stream_cut_stops_after_two_deltas() {
    let fake = spawn().await;
    let mut body = request();
    body["model"] = json!("stream-cut");
    body["stream"] = json!(true);
    let response = post(&fake.base_url(), &body, &[]).await;
    let (text, failed) = read_until_error(response).await;
    assert!(failed, "the body must end in a transport error");
    let names: Vec<String> = parse_sse(&text).into_iter().filter_map(|f| f.event).collect();
    assert_eq!(
        names,
        ["message_start", "content_block_start", "ping", "content_block_delta", "content_block_delta"]
    );
}
