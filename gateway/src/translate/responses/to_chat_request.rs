//! A Responses API request as a Chat Completions request, the gateway's canonical form: the
//! instructions and the stored conversation first, then the input items; function tools,
//! `tool_choice`, `text.format` and `reasoning.effort` in their chat spelling. Every field is
//! translated, handled by the gateway (`store`, `previous_response_id`, `metadata`), or refused
//! with a 400 that names it: nothing is dropped without a word.

use serde_json::{Map, Value, json};

use super::{invalid, unsupported};
use crate::error::ApiError;

/// Top-level fields the chat form carries under the same name.
const SAME_NAME: [&str; 5] = ["temperature", "top_p", "parallel_tool_calls", "user", "prompt_cache_key"];
/// Top-level fields the gateway itself handles (or that have no effect on the chat request).
const HANDLED: [&str; 6] = ["model", "input", "store", "previous_response_id", "metadata", "stream"];

/// `request` (a JSON object) as a chat request, after `history` (the chat messages of the
/// conversation `previous_response_id` names, oldest first).
pub fn responses_request_to_chat(
    request: &Map<String, Value>,
    history: Vec<Value>,
) -> Result<Value, ApiError> {
    let mut chat = Map::new();
    let model = match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => model.clone(),
        _ => return Err(invalid("model", "is required and must be a string")),
    };
    chat.insert("model".into(), json!(model));
    let mut messages = Vec::new();
    match request.get("instructions") {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => messages.push(json!({"role": "system", "content": text})),
        Some(_) => return Err(invalid("instructions", "must be a string")),
    }
    messages.extend(history);
    messages.extend(input_messages(request.get("input"))?);
    if messages.is_empty() {
        return Err(invalid("input", "is required"));
    }
    chat.insert("messages".into(), Value::Array(messages));
    for (name, value) in request {
        if value.is_null() || HANDLED.contains(&name.as_str()) || name == "instructions" {
            continue;
        }
        match name.as_str() {
            field if SAME_NAME.contains(&field) => {
                chat.insert(name.clone(), value.clone());
            }
            "max_output_tokens" => {
                chat.insert("max_tokens".into(), value.clone());
            }
            "tools" => {
                chat.insert("tools".into(), tools(value)?);
            }
            "tool_choice" => {
                chat.insert("tool_choice".into(), tool_choice(value)?);
            }
            "text" => {
                if let Some(format) = response_format(value)? {
                    chat.insert("response_format".into(), format);
                }
            }
            "reasoning" => {
                if let Some(effort) = value.get("effort").filter(|e| !e.is_null()) {
                    chat.insert("reasoning_effort".into(), effort.clone());
                }
                if value.get("summary").is_some_and(|s| !s.is_null()) {
                    return Err(unsupported("reasoning.summary"));
                }
            }
            "truncation" if value == "disabled" => {}
            "background" if value == false => {}
            "include" if value.as_array().is_some_and(Vec::is_empty) => {}
            "stream_options" => {}
            other => return Err(unsupported(other)),
        }
    }
    if request.get("stream").and_then(Value::as_bool) == Some(true) {
        chat.insert("stream".into(), json!(true));
        chat.insert("stream_options".into(), json!({"include_usage": true}));
    }
    Ok(Value::Object(chat))
}

/// The input: one user message, or items (messages, function calls and their outputs).
fn input_messages(input: Option<&Value>) -> Result<Vec<Value>, ApiError> {
    let items = match input {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::String(text)) => return Ok(vec![json!({"role": "user", "content": text})]),
        Some(Value::Array(items)) => items,
        Some(_) => return Err(invalid("input", "must be a string or an array of items")),
    };
    let mut messages: Vec<Value> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let at = |field: &str| format!("input[{i}].{field}");
        let kind = item.get("type").and_then(Value::as_str).unwrap_or("message");
        match kind {
            "message" => messages.push(message(item, i)?),
            "function_call" => {
                let call = json!({
                    "id": text_field(item, "call_id", &at("call_id"))?,
                    "type": "function",
                    "function": {
                        "name": text_field(item, "name", &at("name"))?,
                        "arguments": text_field(item, "arguments", &at("arguments"))?,
                    },
                });
                // Calls in a row are one assistant turn.
                match messages.last_mut() {
                    Some(last) if last["role"] == "assistant" && last.get("tool_calls").is_some() => {
                        if let Some(calls) = last["tool_calls"].as_array_mut() {
                            calls.push(call);
                        }
                    }
                    _ => messages.push(json!({"role": "assistant", "content": null, "tool_calls": [call]})),
                }
            }
            "function_call_output" => {
                let output = match item.get("output") {
                    Some(Value::String(text)) => json!(text),
                    Some(Value::Array(parts)) => json!(content_parts(parts, i)?),
                    _ => return Err(invalid(&at("output"), "must be a string or an array of parts")),
                };
                let call_id = text_field(item, "call_id", &at("call_id"))?;
                messages.push(json!({"role": "tool", "tool_call_id": call_id, "content": output}));
            }
            // A reasoning item from an earlier reply carries nothing a chat model can read back.
            "reasoning" => {}
            other => return Err(unsupported(&format!("input[{i}].type: {other}"))),
        }
    }
    Ok(messages)
}

/// A message item: its role and its content (a string or input/output parts).
fn message(item: &Value, i: usize) -> Result<Value, ApiError> {
    let role = match item.get("role").and_then(Value::as_str) {
        Some(role @ ("user" | "assistant" | "system" | "developer")) => role,
        _ => {
            let message = "must be one of user, assistant, system, developer";
            return Err(invalid(&format!("input[{i}].role"), message));
        }
    };
    let content = match item.get("content") {
        Some(Value::String(text)) => json!(text),
        Some(Value::Array(parts)) if role == "assistant" => {
            // An assistant's earlier answer: its text, as chat assistants carry it.
            let parts = content_parts(parts, i)?;
            json!(parts.iter().filter_map(|p| p["text"].as_str()).collect::<String>())
        }
        Some(Value::Array(parts)) => json!(content_parts(parts, i)?),
        _ => return Err(invalid(&format!("input[{i}].content"), "must be a string or an array of parts")),
    };
    Ok(json!({"role": role, "content": content}))
}

/// Input and output parts as chat content parts.
fn content_parts(parts: &[Value], i: usize) -> Result<Vec<Value>, ApiError> {
    parts
        .iter()
        .enumerate()
        .map(|(j, part)| {
            let at = format!("input[{i}].content[{j}]");
            match part.get("type").and_then(Value::as_str) {
                Some("input_text" | "output_text" | "text") => {
                    Ok(json!({"type": "text", "text": text_field(part, "text", &format!("{at}.text"))?}))
                }
                Some("refusal") => {
                    Ok(json!({"type": "text", "text": part["refusal"].as_str().unwrap_or_default()}))
                }
                Some("input_image") => match part.get("image_url").and_then(Value::as_str) {
                    Some(url) => {
                        let detail = part.get("detail").and_then(Value::as_str).unwrap_or("auto");
                        Ok(json!({"type": "image_url", "image_url": {"url": url, "detail": detail}}))
                    }
                    None => Err(unsupported(&format!("{at}.file_id"))),
                },
                Some(other) => Err(unsupported(&format!("{at}.type: {other}"))),
                None => Err(invalid(&format!("{at}.type"), "is required")),
            }
        })
        .collect()
}

/// Function tools in chat's spelling; other tool types (web search, file search, ...) are the
/// provider's own and refused.
fn tools(value: &Value) -> Result<Value, ApiError> {
    let Some(tools) = value.as_array() else { return Err(invalid("tools", "must be an array")) };
    let mut out = Vec::new();
    for (i, tool) in tools.iter().enumerate() {
        match tool.get("type").and_then(Value::as_str) {
            Some("function") => {
                let mut function = Map::new();
                function.insert("name".into(), json!(text_field(tool, "name", &format!("tools[{i}].name"))?));
                for field in ["description", "parameters", "strict"] {
                    if let Some(value) = tool.get(field).filter(|v| !v.is_null()) {
                        function.insert(field.into(), value.clone());
                    }
                }
                out.push(json!({"type": "function", "function": function}));
            }
            Some(other) => return Err(unsupported(&format!("tools[{i}].type: {other}"))),
            None => return Err(invalid(&format!("tools[{i}].type"), "is required")),
        }
    }
    Ok(Value::Array(out))
}

fn tool_choice(value: &Value) -> Result<Value, ApiError> {
    match value {
        Value::String(mode) if ["auto", "none", "required"].contains(&mode.as_str()) => Ok(value.clone()),
        Value::Object(choice) if choice.get("type").and_then(Value::as_str) == Some("function") => {
            let name = text_field(value, "name", "tool_choice.name")?;
            Ok(json!({"type": "function", "function": {"name": name}}))
        }
        _ => Err(unsupported("tool_choice")),
    }
}

/// `text.format` as chat's `response_format` (`None` for plain text).
fn response_format(text: &Value) -> Result<Option<Value>, ApiError> {
    let Some(format) = text.get("format").filter(|f| !f.is_null()) else {
        return if text.get("verbosity").is_some_and(|v| !v.is_null()) {
            Err(unsupported("text.verbosity"))
        } else {
            Ok(None)
        };
    };
    match format.get("type").and_then(Value::as_str) {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(json!({"type": "json_object"}))),
        Some("json_schema") => {
            let mut schema = Map::new();
            schema.insert("name".into(), json!(text_field(format, "name", "text.format.name")?));
            for field in ["schema", "strict", "description"] {
                if let Some(value) = format.get(field).filter(|v| !v.is_null()) {
                    schema.insert(field.into(), value.clone());
                }
            }
            Ok(Some(json!({"type": "json_schema", "json_schema": schema})))
        }
        _ => Err(invalid("text.format.type", "must be text, json_object or json_schema")),
    }
}

fn text_field<'a>(value: &'a Value, field: &str, at: &str) -> Result<&'a str, ApiError> {
    value.get(field).and_then(Value::as_str).ok_or_else(|| invalid(at, "is required and must be a string"))
}
