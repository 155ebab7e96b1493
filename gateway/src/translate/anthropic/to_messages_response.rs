//! Client side: an OpenAI chat completion (non-stream) -> an Anthropic Messages response.

use serde_json::{Value, json};

use super::{TokenUsage, message_id_from_chat_id, parse_tool_arguments, stop_reason_from_finish};

/// Translates a canonical chat completion into the Messages response an Anthropic SDK expects, so
/// `/v1/messages` can be served by any route. `model` is the name the client asked for.
///
/// Text (and a `refusal`) becomes text blocks, `tool_calls` become `tool_use` blocks with the JSON
/// `arguments` parsed into `input` (`{}` if malformed); `finish_reason` stop -> `end_turn`, length ->
/// `max_tokens`, tool_calls -> `tool_use`, content_filter -> `refusal`. Usage is split the Anthropic
/// way: `input_tokens` excludes cached tokens, which go to `cache_read_input_tokens` (and, when the
/// chat usage came from Anthropic, `cache_creation_input_tokens`). The id is `msg_` + the chat id.
pub fn chat_response_to_messages(chat: &Value, model: &str) -> Value {
    let id = message_id_from_chat_id(chat.get("id").and_then(Value::as_str).unwrap_or_default());
    let choice = chat.get("choices").and_then(|c| c.get(0)).unwrap_or(&Value::Null);
    let message = choice.get("message").unwrap_or(&Value::Null);

    let mut content = Vec::new();
    let mut push_text = |text: &str| {
        if !text.is_empty() {
            content.push(json!({"type": "text", "text": text}));
        }
    };
    match message.get("content") {
        Some(Value::String(text)) => push_text(text),
        Some(Value::Array(parts)) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).for_each(&mut push_text);
        }
        _ => {}
    }
    let refusal = message.get("refusal").and_then(Value::as_str).filter(|r| !r.is_empty());
    if let Some(refusal) = refusal {
        push_text(refusal);
    }
    let tool_calls =
        message.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default();
    for call in tool_calls {
        let function = call.get("function").unwrap_or(&Value::Null);
        content.push(json!({
            "type": "tool_use",
            "id": call.get("id").and_then(Value::as_str).unwrap_or_default(),
            "name": function.get("name").and_then(Value::as_str).unwrap_or_default(),
            "input": parse_tool_arguments(function.get("arguments")),
        }));
    }

    let finish_reason = choice.get("finish_reason").and_then(Value::as_str);
    let stop_reason = match stop_reason_from_finish(finish_reason, !tool_calls.is_empty()) {
        "end_turn" if refusal.is_some() => "refusal",
        other => other,
    };
    let usage = TokenUsage::from_chat(chat.get("usage").unwrap_or(&Value::Null));
    json!({
        "id": id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason,
        "stop_sequence": null,
        "usage": usage.to_anthropic(),
    })
}
