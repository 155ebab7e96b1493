//! OpenAI's Responses API <-> Chat Completions, the gateway's canonical form, so that every
//! backend serves `/v1/responses`: the request becomes a chat request
//! ([`responses_request_to_chat`]), and the chat reply (whole or streamed) becomes a `response`
//! object ([`Echo::response`], [`output_of_chat`]) or the Responses API's typed events
//! ([`ChatToResponsesStream`]).

use serde_json::{Map, Value, json};

use crate::error::ApiError;

mod stream;
mod to_chat_request;

pub use stream::ChatToResponsesStream;
pub use to_chat_request::responses_request_to_chat;

#[cfg(test)]
mod tests;

/// Request fields a `response` object repeats.
const ECHOED: [&str; 13] = [
    "instructions",
    "max_output_tokens",
    "metadata",
    "parallel_tool_calls",
    "previous_response_id",
    "reasoning",
    "store",
    "temperature",
    "text",
    "tool_choice",
    "tools",
    "top_p",
    "user",
];

/// What a `response` object says for an echoed field the request left out.
fn echo_default(field: &str) -> Value {
    match field {
        "metadata" => json!({}),
        "parallel_tool_calls" | "store" => json!(true),
        "reasoning" => json!({"effort": null, "summary": null}),
        "temperature" | "top_p" => json!(1.0),
        "text" => json!({"format": {"type": "text"}}),
        "tool_choice" => json!("auto"),
        "tools" => json!([]),
        _ => Value::Null,
    }
}

/// What a `response` object says about the request it answers.
#[derive(Clone, Debug)]
pub struct Echo {
    pub id: String,
    pub created_at: u64,
    /// The model as the client named it.
    pub model: String,
    fields: Map<String, Value>,
}

impl Echo {
    pub fn of_request(request: &Map<String, Value>, id: String, created_at: u64) -> Echo {
        let model = request.get("model").and_then(Value::as_str).unwrap_or_default().to_owned();
        let fields = ECHOED
            .iter()
            .map(|name| {
                let value = request.get(*name).filter(|v| !v.is_null()).cloned();
                ((*name).to_owned(), value.unwrap_or_else(|| echo_default(name)))
            })
            .collect();
        Echo { id, created_at, model, fields }
    }

    /// The `response` object: `status` (`in_progress`, `completed`, `incomplete`), its output
    /// items and usage (Responses' spelling), and why it is incomplete, if it is.
    pub fn response(
        &self,
        status: &str,
        output: Vec<Value>,
        usage: Option<Value>,
        incomplete: Option<&str>,
    ) -> Value {
        let mut response = json!({
            "id": self.id, "object": "response", "created_at": self.created_at, "status": status,
            "error": null, "incomplete_details": incomplete.map(|reason| json!({"reason": reason})),
            "model": self.model, "output": output, "truncation": "disabled", "usage": usage,
        });
        if let Some(object) = response.as_object_mut() {
            object.extend(self.fields.clone());
        }
        response
    }
}

/// A whole chat reply as Responses output items (a message, function calls), its usage, and
/// why it is incomplete, if it is.
pub fn output_of_chat(chat: &Value, item_id: &str) -> (Vec<Value>, Option<Value>, Option<&'static str>) {
    let choice = &chat["choices"][0];
    let message = &choice["message"];
    let text = match &message["content"] {
        Value::String(text) => text.clone(),
        Value::Array(parts) => parts.iter().filter_map(|p| p["text"].as_str()).collect(),
        _ => String::new(),
    };
    let calls = message["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default();
    let mut output = Vec::new();
    let refusal = message["refusal"].as_str().filter(|r| !r.is_empty());
    if !text.is_empty() || refusal.is_some() || calls.is_empty() {
        let part = match refusal {
            Some(refusal) if text.is_empty() => json!({"type": "refusal", "refusal": refusal}),
            _ => output_text(&text),
        };
        output.push(message_item(item_id, "completed", vec![part]));
    }
    output.extend(calls.iter().map(|call| {
        let id = call["id"].as_str().unwrap_or_default();
        let function = &call["function"];
        function_call_item(
            id,
            function["name"].as_str().unwrap_or_default(),
            function["arguments"].as_str().unwrap_or_default(),
            "completed",
        )
    }));
    (output, chat.get("usage").and_then(usage_of_chat), incomplete(choice["finish_reason"].as_str()))
}

/// A response's output items as the chat assistant message that continues its conversation.
pub fn assistant_message(output: &[Value]) -> Value {
    let text: String = output
        .iter()
        .filter(|item| item["type"] == "message")
        .flat_map(|item| item["content"].as_array().into_iter().flatten())
        .filter_map(|part| part["text"].as_str())
        .collect();
    let calls: Vec<Value> = output
        .iter()
        .filter(|item| item["type"] == "function_call")
        .map(|item| {
            json!({"id": item["call_id"], "type": "function",
                   "function": {"name": item["name"], "arguments": item["arguments"]}})
        })
        .collect();
    if calls.is_empty() {
        return json!({"role": "assistant", "content": text});
    }
    let content = if text.is_empty() { Value::Null } else { json!(text) };
    json!({"role": "assistant", "content": content, "tool_calls": calls})
}

/// Chat's usage in Responses' spelling.
pub fn usage_of_chat(usage: &Value) -> Option<Value> {
    let input = usage.get("prompt_tokens")?.as_u64()?;
    let output = usage.get("completion_tokens").and_then(Value::as_u64).unwrap_or(0);
    let cached = usage.pointer("/prompt_tokens_details/cached_tokens").and_then(Value::as_u64).unwrap_or(0);
    let reasoning =
        usage.pointer("/completion_tokens_details/reasoning_tokens").and_then(Value::as_u64).unwrap_or(0);
    Some(json!({
        "input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
        "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
        "total_tokens": input.saturating_add(output),
    }))
}

/// Why a reply that stopped for `finish_reason` is incomplete, if it is.
fn incomplete(finish_reason: Option<&str>) -> Option<&'static str> {
    match finish_reason {
        Some("length") => Some("max_output_tokens"),
        Some("content_filter") => Some("content_filter"),
        _ => None,
    }
}

fn output_text(text: &str) -> Value {
    json!({"type": "output_text", "text": text, "annotations": [], "logprobs": []})
}

fn message_item(id: &str, status: &str, content: Vec<Value>) -> Value {
    json!({"type": "message", "id": id, "status": status, "role": "assistant", "content": content})
}

fn function_call_item(call_id: &str, name: &str, arguments: &str, status: &str) -> Value {
    json!({"type": "function_call", "id": format!("fc_{call_id}"), "call_id": call_id, "name": name,
           "arguments": arguments, "status": status})
}

/// A field the gateway's Responses API does not serve: a 400 naming it.
fn unsupported(field: &str) -> ApiError {
    ApiError::BadRequest(
        format!("`{field}` is not supported by this gateway's Responses API"),
        Some("unsupported_parameter"),
    )
}

/// A field that does not check: a 400 naming it.
fn invalid(field: &str, problem: &str) -> ApiError {
    ApiError::BadRequest(format!("`{field}` {problem}"), Some("invalid_request"))
}
