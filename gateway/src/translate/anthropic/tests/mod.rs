//! Golden-style tests for the Anthropic <-> chat translation, plus stream accumulators that check
//! the event grammar the way the official SDKs consume it.

use serde_json::{Map, Value, json};

use super::*;

mod client_stream;
mod fuzz;
#[allow(dead_code)]
mod fuzz_json;
mod helpers;
mod provider_stream;
mod reasoning_and_caching;
mod requests_to_chat;
mod requests_to_messages;
mod responses;
mod roundtrip;
mod structured_outputs;

/// Builds the event list like an SSE reader would hand it over: (event name, data).
fn events(list: &[(&'static str, Value)]) -> Vec<(&'static str, Value)> {
    list.to_vec()
}

/// Replays Anthropic events the way the Python SDK's `accumulate_event` does, asserting the event
/// grammar the SDK relies on, and returns the final message snapshot.
fn accumulate_anthropic(events: &[(&str, Value)]) -> Value {
    assert!(!events.is_empty(), "empty stream");
    let (first, start) = &events[0];
    assert_eq!(*first, "message_start");
    assert_eq!(start["type"], "message_start");
    let mut message = start["message"].clone();
    for key in ["id", "type", "role", "model", "content", "stop_reason", "stop_sequence", "usage"] {
        assert!(message.get(key).is_some(), "message_start.message lacks {key}: {message}");
    }
    assert_eq!(message["type"], "message");
    assert_eq!(message["role"], "assistant");
    assert_eq!(message["content"], json!([]));
    assert!(message["usage"]["input_tokens"].is_u64() && message["usage"]["output_tokens"].is_u64());
    let mut open: Option<u64> = None;
    let mut json_bufs: Map<String, Value> = Map::new();
    let mut saw_delta = false;
    let mut stopped = false;
    for (name, data) in &events[1..] {
        assert!(!stopped, "event after message_stop: {name}");
        assert_eq!(data["type"], *name, "event name and data.type disagree");
        let content = message["content"].as_array_mut().unwrap();
        match *name {
            "ping" => {}
            "content_block_start" => {
                assert!(open.is_none(), "block started while another is open");
                let index = data["index"].as_u64().unwrap();
                assert_eq!(index, content.len() as u64, "block indexes must be consecutive");
                let block = data["content_block"].clone();
                match block["type"].as_str().unwrap() {
                    "text" => assert_eq!(block["text"], ""),
                    "tool_use" => {
                        assert!(block["id"].is_string() && block["name"].is_string());
                        assert_eq!(block["input"], json!({}));
                    }
                    other => panic!("unexpected block type {other}"),
                }
                content.push(block);
                open = Some(index);
            }
            "content_block_delta" => {
                let index = data["index"].as_u64().unwrap();
                assert_eq!(open, Some(index), "delta for a block that is not open");
                let block = &mut content[index as usize];
                let delta = &data["delta"];
                match delta["type"].as_str().unwrap() {
                    "text_delta" => {
                        assert_eq!(block["type"], "text");
                        let text =
                            format!("{}{}", block["text"].as_str().unwrap(), delta["text"].as_str().unwrap());
                        block["text"] = json!(text);
                    }
                    "input_json_delta" => {
                        assert_eq!(block["type"], "tool_use");
                        let buf = json_bufs.entry(index.to_string()).or_insert(json!(""));
                        *buf = json!(format!(
                            "{}{}",
                            buf.as_str().unwrap(),
                            delta["partial_json"].as_str().unwrap()
                        ));
                    }
                    other => panic!("unexpected delta type {other}"),
                }
            }
            "content_block_stop" => {
                let index = data["index"].as_u64().unwrap();
                assert_eq!(open, Some(index), "stop for a block that is not open");
                if let Some(buf) = json_bufs.get(&index.to_string()) {
                    content[index as usize]["input"] = serde_json::from_str(buf.as_str().unwrap()).unwrap();
                }
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "message_delta with an open block");
                assert!(
                    data["delta"].get("stop_reason").is_some()
                        && data["delta"].get("stop_sequence").is_some()
                );
                message["stop_reason"] = data["delta"]["stop_reason"].clone();
                message["stop_sequence"] = data["delta"]["stop_sequence"].clone();
                let usage = data["usage"].as_object().unwrap();
                assert!(usage["output_tokens"].is_u64());
                for (key, value) in usage {
                    if !value.is_null() {
                        message["usage"][key] = value.clone();
                    }
                }
                saw_delta = true;
            }
            "message_stop" => {
                assert!(saw_delta, "message_stop before message_delta");
                stopped = true;
            }
            other => panic!("unexpected event {other}"),
        }
    }
    assert!(stopped, "stream did not end with message_stop");
    message
}

/// Accumulates chat completion chunks into a `chat.completion` the way the OpenAI SDK's stream
/// helper does, asserting the chunk shape, and returns it (usage from the final usage chunk).
fn accumulate_chat(chunks: &[Value]) -> Value {
    let mut id = Value::Null;
    let mut role = Value::Null;
    let mut content: Option<String> = None;
    let mut reasoning: Option<String> = None;
    let mut calls: Vec<Value> = Vec::new();
    let mut finish = Value::Null;
    let mut usage = Value::Null;
    for chunk in chunks {
        assert_eq!(chunk["object"], "chat.completion.chunk");
        assert!(chunk["id"].is_string() && chunk["created"].is_u64() && chunk["model"].is_string());
        if id.is_null() {
            id = chunk["id"].clone();
        }
        assert_eq!(chunk["id"], id, "chunk ids must be stable");
        let choices = chunk["choices"].as_array().unwrap();
        if choices.is_empty() {
            usage = chunk["usage"].clone();
            continue;
        }
        assert!(usage.is_null(), "content chunk after the usage chunk");
        let choice = &choices[0];
        assert_eq!(choice["index"], 0);
        let delta = &choice["delta"];
        if let Some(r) = delta.get("role") {
            role = r.clone();
        }
        if let Some(text) = delta["content"].as_str() {
            content.get_or_insert_with(String::new).push_str(text);
        }
        if let Some(text) = delta["reasoning_content"].as_str() {
            reasoning.get_or_insert_with(String::new).push_str(text);
        }
        for call in delta["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default() {
            let index = call["index"].as_u64().unwrap() as usize;
            if index == calls.len() {
                assert!(
                    call["id"].is_string() && call["function"]["name"].is_string(),
                    "first tool delta: {call}"
                );
                calls.push(json!({"id": call["id"], "type": "function",
                    "function": {"name": call["function"]["name"], "arguments": ""}}));
            }
            let args = call["function"]["arguments"].as_str().unwrap_or_default();
            let all = format!("{}{args}", calls[index]["function"]["arguments"].as_str().unwrap());
            calls[index]["function"]["arguments"] = json!(all);
        }
        if !choice["finish_reason"].is_null() {
            finish = choice["finish_reason"].clone();
        }
    }
    let mut message = json!({"role": role, "content": content, "refusal": null});
    if !calls.is_empty() {
        if message["content"] == "" {
            message["content"] = Value::Null;
        }
        message["tool_calls"] = Value::Array(calls);
    }
    if let Some(r) = reasoning {
        message["reasoning_content"] = json!(r);
    }
    json!({
        "id": id, "object": "chat.completion", "model": chunks[0]["model"],
        "choices": [{"index": 0, "message": message, "logprobs": null, "finish_reason": finish}],
        "usage": usage,
    })
}

/// Drops `created` (the clock) so whole documents can be compared.
fn without_created(mut value: Value) -> Value {
    if let Some(map) = value.as_object_mut() {
        map.remove("created");
    }
    value
}
