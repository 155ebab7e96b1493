//! A Gemini backend against the fake's `generateContent`: both client APIs, whole and streamed,
//! tool calls both ways, what reaches the upstream, and one priced ledger row per request.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use serde_json::{Value, json};

/// `{UPSTREAM}` is the fake's `…/v1`: its Gemini API is at `…/v1beta`.
const ROUTE: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: ProviderRoute
metadata: {name: gemini-route}
spec:
  models:
    - {name: gemini-fake, upstreamModel: gemini-2.5-flash, pricing: {inputPerMillion: "1.00", outputPerMillion: "2.00"}}
  backends:
    - {name: gemini, provider: gemini, baseUrl: "{UPSTREAM}beta", apiKeySecretRef: {name: upstream-key, key: key}}
"#;

fn ask(stream: bool) -> Value {
    json!({"model": "gemini-fake", "stream": stream, "max_tokens": 50, "stream_options": {"include_usage": true},
           "messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "hello gemini"}]})
}

#[tokio::test]
async fn chat_whole_and_streamed_is_translated_sent_with_the_key_and_priced_alike() {
    let mut h = Harness::start().await;
    h.restart_with("gemini.yaml", ROUTE).await;
    let whole: Value = h.post("/v1/chat/completions", TEAM_KEY, &ask(false)).await.json().await.unwrap();
    assert_eq!(whole["choices"][0]["message"]["content"], "fake-upstream reply to: hello gemini", "{whole}");
    assert_eq!(whole["choices"][0]["finish_reason"], "stop");
    let usage = whole["usage"].clone();
    assert_eq!((usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64()), (Some(4), Some(5)));

    let text = h.post("/v1/chat/completions", TEAM_KEY, &ask(true)).await.text().await.unwrap();
    let chunks = sse_data(&text);
    let streamed: String =
        chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
    assert_eq!(streamed, "fake-upstream reply to: hello gemini");
    assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], usage["completion_tokens"]);

    let sent = h.upstream.requests();
    assert_eq!(sent[0].path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent[1].path, "/v1beta/models/gemini-2.5-flash:streamGenerateContent");
    assert_eq!(sent[0].header("x-goog-api-key"), Some(UPSTREAM_KEY));
    assert_eq!(sent[0].header("authorization"), None);
    assert_eq!(sent[0].body["systemInstruction"], json!({"parts": [{"text": "be brief"}]}));
    assert_eq!(sent[0].body["contents"], json!([{"role": "user", "parts": [{"text": "hello gemini"}]}]));
    assert_eq!(sent[0].body["generationConfig"], json!({"maxOutputTokens": 50}));

    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in &rows {
        assert_eq!((row["provider"].as_str(), row["backend"].as_str()), (Some("gemini"), Some("gemini")));
        assert_eq!((row["input_tokens"].as_i64(), row["output_tokens"].as_i64()), (Some(4), Some(5)));
        assert_eq!(row["cost_nanos"], 4 * INPUT_NANOS_PER_TOKEN + 5 * OUTPUT_NANOS_PER_TOKEN);
    }
}

#[tokio::test]
async fn tool_calls_go_both_ways_and_anthropic_clients_are_served_too() {
    let mut h = Harness::start().await;
    h.restart_with("gemini.yaml", ROUTE).await;
    let tools = json!([{"type": "function", "function": {"name": "weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}]);
    let request = json!({"model": "gemini-fake", "tools": tools, "messages": [{"role": "user", "content": "Weather?"}],
                         "tool_choice": {"type": "function", "function": {"name": "weather"}}});
    let reply: Value = h.post("/v1/chat/completions", TEAM_KEY, &request).await.json().await.unwrap();
    let call = &reply["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(
        (call["function"]["name"].as_str(), call["function"]["arguments"].as_str()),
        (Some("weather"), Some(r#"{"city":"fake"}"#))
    );
    assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");

    let follow_up = json!({"model": "gemini-fake", "tools": tools, "messages": [
        {"role": "user", "content": "Weather?"},
        {"role": "assistant", "content": null, "tool_calls": [call]},
        {"role": "tool", "tool_call_id": call["id"], "content": "sunny"},
    ]});
    let reply: Value = h.post("/v1/chat/completions", TEAM_KEY, &follow_up).await.json().await.unwrap();
    assert_eq!(reply["choices"][0]["message"]["content"], "fake-upstream reply to: Weather?");
    let sent = &h.upstream.requests()[1].body;
    assert_eq!(
        sent["contents"][1],
        json!({"role": "model", "parts": [{"functionCall": {"name": "weather", "args": {"city": "fake"}}}]})
    );
    assert_eq!(
        sent["contents"][2],
        json!({"role": "user", "parts": [{"functionResponse": {"name": "weather", "response": {"content": "sunny"}}}]})
    );
    assert_eq!(sent["toolConfig"], Value::Null, "no tool_choice, no toolConfig");

    let message = json!({"model": "gemini-fake", "max_tokens": 32, "messages": [{"role": "user", "content": "hi from anthropic"}]});
    let response = h
        .client
        .post(h.url("/v1/messages"))
        .header("x-api-key", TEAM_KEY)
        .json(&message)
        .send()
        .await
        .unwrap();
    let reply: Value = response.json().await.unwrap();
    assert_eq!(reply["content"][0]["text"], "fake-upstream reply to: hi from anthropic", "{reply}");
    assert_eq!(reply["usage"]["input_tokens"], 3);

    let refused =
        json!({"model": "gemini-fake", "logprobs": true, "messages": [{"role": "user", "content": "x"}]});
    let response = h.post("/v1/chat/completions", TEAM_KEY, &refused).await;
    assert_eq!(response.status(), 400);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "unsupported_parameter", "{body}");
}
