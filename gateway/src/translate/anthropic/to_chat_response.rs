//! Provider side: an Anthropic Messages response -> an OpenAI chat completion.

use serde_json::{Map, Value, json};

use super::{TokenUsage, chat_id_from_message_id, finish_reason_from_stop, now_unix, structured};

/// Translates an Anthropic Messages response into a canonical chat completion, so an Anthropic
/// route answers like every other. `model` is the client-facing model name.
///
/// Text blocks are concatenated into `content`, `tool_use` blocks become `tool_calls` (input
/// serialised to the JSON `arguments` string) but for a structured output's forced tool, whose
/// input is the reply's text; thinking becomes `reasoning_content`, server-tool
/// blocks are dropped. Usage: `prompt_tokens` = input + cache reads + cache writes,
/// `prompt_tokens_details.cached_tokens` = cache reads, and the raw `cache_read_input_tokens` /
/// `cache_creation_input_tokens` are kept under `usage` so the gateway can price cache writes.
pub fn messages_response_to_chat(message: &Value, model: &str) -> Value {
    messages_response_to_chat_at(message, model, now_unix())
}

pub(super) fn messages_response_to_chat_at(message: &Value, model: &str, created: u64) -> Value {
    let id = chat_id_from_message_id(message.get("id").and_then(Value::as_str).unwrap_or_default());
    let mut text: Option<String> = None;
    let mut reasoning = String::new();
    let mut tool_calls = Vec::new();
    // The forced tool of a structured output was called: its input is the reply.
    let mut answered = false;
    for block in message.get("content").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        match block.get("type").and_then(Value::as_str) {
            Some("text") => {
                let t = block.get("text").and_then(Value::as_str).unwrap_or_default();
                text.get_or_insert_with(String::new).push_str(t);
            }
            Some("thinking") => {
                reasoning.push_str(block.get("thinking").and_then(Value::as_str).unwrap_or_default());
            }
            Some("tool_use") if structured::is_answer(block) => {
                answered = true;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                text.get_or_insert_with(String::new).push_str(&input.to_string());
            }
            Some("tool_use") => tool_calls.push(json!({
                "id": block.get("id").and_then(Value::as_str).unwrap_or_default(),
                "type": "function",
                "function": {
                    "name": block.get("name").and_then(Value::as_str).unwrap_or_default(),
                    "arguments": block.get("input").cloned().unwrap_or_else(|| json!({})).to_string(),
                },
            })),
            _ => {}
        }
    }

    let called = !tool_calls.is_empty();
    let mut out_message = Map::new();
    out_message.insert("role".into(), json!("assistant"));
    let content = match text {
        Some(t) => Value::String(t),
        None if tool_calls.is_empty() => Value::String(String::new()),
        None => Value::Null,
    };
    out_message.insert("content".into(), content);
    out_message.insert("refusal".into(), Value::Null);
    if !tool_calls.is_empty() {
        out_message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if !reasoning.is_empty() {
        out_message.insert("reasoning_content".into(), Value::String(reasoning));
    }
    let finish_reason = match finish_reason_from_stop(message.get("stop_reason").and_then(Value::as_str)) {
        "tool_calls" if answered && !called => "stop",
        reason => reason,
    };
    let usage = TokenUsage::from_anthropic(message.get("usage").unwrap_or(&Value::Null));
    json!({
        "id": id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [{
            "index": 0,
            "message": out_message,
            "logprobs": null,
            "finish_reason": finish_reason,
        }],
        "usage": usage.to_chat(),
    })
}
