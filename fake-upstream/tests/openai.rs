//! OpenAI Chat Completions wire format, usage formulas and behaviours.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::{parse_sse, read_until_error, spawn};
use serde_json::{Value, json};

fn request() -> Value {
    json!({
        "model": "gpt-test",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": "hello there"},
        ],
    })
}

async fn post(base: &str, body: &Value, headers: &[(&str, &str)]) -> reqwest::Response {
    let mut builder = reqwest::Client::new().post(format!("{base}/chat/completions")).json(body);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    builder.send().await.unwrap()
}

#[tokio::test]
async fn non_stream_has_the_real_shape_and_formula_usage() {
    let fake = spawn().await;
    let response = post(&fake.base_url(), &request(), &[("x-fake-cached-tokens", "4")]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-request-id"));
    let body: Value = response.json().await.unwrap();
    assert!(body["id"].as_str().unwrap().starts_with("chatcmpl-"));
    assert_eq!(body["object"], "chat.completion");
    assert!(body["created"].as_u64().unwrap() > 1_700_000_000);
    assert_eq!(body["model"], "gpt-test");
    assert_eq!(body["system_fingerprint"], "fake");
    assert_eq!(
        body["choices"],
        json!([{
            "index": 0,
            "message": {"role": "assistant", "content": "fake-upstream reply to: hello there", "refusal": null},
            "logprobs": null,
            "finish_reason": "stop",
        }])
    );
    // P = (2 + 3) + (2 + 3); C = 5 words; K from the header.
    assert_eq!(
        body["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 4}})
    );
}

#[tokio::test]
async fn content_parts_are_joined_and_cached_tokens_clamped() {
    let fake = spawn().await;
    let body = json!({"model": "m", "messages": [
        {"role": "user", "content": "first question"},
        {"role": "assistant", "content": "an answer"},
        {"role": "user", "content": [{"type": "text", "text": "look at"}, {"type": "image_url", "image_url": {"url": "x"}}, {"type": "text", "text": "this"}]},
    ]});
    let response = post(&fake.base_url(), &body, &[("x-fake-cached-tokens", "999")]).await;
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["choices"][0]["message"]["content"], "fake-upstream reply to: look at this");
    assert_eq!(body["usage"]["prompt_tokens"], 5 + 5 + 6);
    assert_eq!(body["usage"]["prompt_tokens_details"]["cached_tokens"], 16);
}

#[tokio::test]
async fn stream_sends_role_words_finish_and_done() {
    let fake = spawn().await;
    let mut body = request();
    body["stream"] = json!(true);
    let response = post(&fake.base_url(), &body, &[]).await;
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let frames = parse_sse(&response.text().await.unwrap());
    assert_eq!(frames.len(), 1 + 5 + 1 + 1);
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    let chunks: Vec<Value> = frames[..frames.len() - 1].iter().map(|f| f.json()).collect();
    for chunk in &chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert_eq!(chunk["model"], "gpt-test");
        assert_eq!(chunk["id"], chunks[0]["id"]);
        assert!(chunk.get("usage").is_none(), "no usage key without include_usage");
        assert!(frames.iter().all(|f| f.event.is_none()));
    }
    assert_eq!(
        chunks[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "", "refusal": null})
    );
    let text: String =
        chunks[1..6].iter().map(|c| c["choices"][0]["delta"]["content"].as_str().unwrap()).collect();
    assert_eq!(text, "fake-upstream reply to: hello there");
    assert!(chunks[..6].iter().all(|c| c["choices"][0]["finish_reason"].is_null()));
    assert_eq!(chunks[6]["choices"][0]["delta"], json!({}));
    assert_eq!(chunks[6]["choices"][0]["finish_reason"], "stop");
}

#[tokio::test]
async fn stream_include_usage_adds_null_usage_and_a_usage_chunk() {
    let fake = spawn().await;
    let mut body = request();
    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let response = post(&fake.base_url(), &body, &[("x-fake-cached-tokens", "3")]).await;
    let frames = parse_sse(&response.text().await.unwrap());
    assert_eq!(frames.len(), 1 + 5 + 1 + 1 + 1);
    let chunks: Vec<Value> = frames[..frames.len() - 1].iter().map(|f| f.json()).collect();
    assert!(chunks[..7].iter().all(|c| c["usage"].is_null() && c.get("usage").is_some()));
    let last = &chunks[7];
    assert_eq!(last["choices"], json!([]));
    assert_eq!(
        last["usage"],
        json!({"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15, "prompt_tokens_details": {"cached_tokens": 3}})
    );
}

#[tokio::test]
async fn scripted_errors_use_the_openai_shape() {
    let fake = spawn().await;
    let mut body = request();
    body["model"] = json!("error-429");
    let response = post(&fake.base_url(), &body, &[]).await;
    assert_eq!(response.status(), 429);
    assert_eq!(response.headers()["retry-after"], "1");
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "requests");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");
    assert!(error["error"]["message"].is_string());
    assert!(error["error"]["param"].is_null());

    // The header wins over the model, also for streams.
    body["stream"] = json!(true);
    let response = post(&fake.base_url(), &body, &[("x-fake-behavior", "error-503")]).await;
    assert_eq!(response.status(), 503);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "server_error");
}

#[tokio::test]
async fn invalid_requests_get_400() {
    let fake = spawn().await;
    let response = post(&fake.base_url(), &json!({"model": "m"}), &[]).await;
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
    assert_eq!(error["error"]["param"], "messages");

    let response = reqwest::Client::new()
        .post(format!("{}/chat/completions", fake.base_url()))
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "invalid_request_error");
}

#[tokio::test]
async fn echo_request_returns_the_body_sent() {
    let fake = spawn().await;
    let mut body = request();
    body["model"] = json!("echo-request");
    body["temperature"] = json!(0.5);
    let response = post(&fake.base_url(), &body, &[]).await;
    let reply: Value = response.json().await.unwrap();
    let text = reply["choices"][0]["message"]["content"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), body);
    assert_eq!(reply["usage"]["completion_tokens"], text.split_whitespace().count());
}

#[tokio::test]
async fn no_usage_leaves_usage_out() {
    let fake = spawn().await;
    let mut body = request();
    body["model"] = json!("no-usage");
    let reply: Value = post(&fake.base_url(), &body, &[]).await.json().await.unwrap();
    assert!(reply.get("usage").is_none());

    body["stream"] = json!(true);
    body["stream_options"] = json!({"include_usage": true});
    let frames = parse_sse(&post(&fake.base_url(), &body, &[]).await.text().await.unwrap());
    assert_eq!(frames.len(), 1 + 5 + 1 + 1, "no usage chunk");
    assert_eq!(frames.last().unwrap().data, "[DONE]");
    assert!(frames[..frames.len() - 1].iter().all(|f| f.json().get("usage").is_none()));
}

#[tokio::test]
async fn stream_cut_drops_the_connection_after_two_chunks() {
    let fake = spawn().await;
    let mut body = request();
    body["stream"] = json!(true);
    let response = post(&fake.base_url(), &body, &[("x-fake-behavior", "stream-cut")]).await;
    assert_eq!(response.status(), 200);
    let (text, failed) = read_until_error(response).await;
    assert!(failed, "the body must end in a transport error");
    let frames = parse_sse(&text);
    assert_eq!(frames.len(), 3, "role chunk + two content chunks");
    assert_eq!(frames[2].json()["choices"][0]["delta"]["content"], " reply");
}

#[tokio::test]
async fn slow_delays_and_hang_never_answers() {
    let fake = spawn().await;
    let started = Instant::now();
    let response = post(&fake.base_url(), &request(), &[("x-fake-behavior", "slow-150")]).await;
    assert_eq!(response.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(150));

    let client = reqwest::Client::builder().timeout(Duration::from_millis(200)).build().unwrap();
    let error = client
        .post(format!("{}/chat/completions", fake.base_url()))
        .header("x-fake-behavior", "hang")
        .json(&request())
        .send()
        .await
        .unwrap_err();
    assert!(error.is_timeout());
}

#[tokio::test]
async fn models_lists_in_openai_shape() {
    let fake = spawn().await;
    let body: Value =
        reqwest::get(format!("{}/models", fake.base_url())).await.unwrap().json().await.unwrap();
    assert_eq!(body["object"], "list");
    assert_eq!(body["data"][0]["object"], "model");
    assert!(body["data"][0]["id"].is_string());
    assert!(body["data"][0]["owned_by"].is_string());
}
