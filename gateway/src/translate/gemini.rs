//! Google Gemini's `generateContent` <-> Chat Completions, the gateway's canonical form, so a
//! Gemini backend serves both client APIs: the chat request becomes `contents`,
//! `systemInstruction`, `tools`, `toolConfig` and `generationConfig` ([`chat_request_to_gemini`]);
//! a reply, whole or as the chunks of `streamGenerateContent?alt=sse`, becomes a chat completion
//! or its chunks ([`gemini_response_to_chat`], [`GeminiToChatStream`]).

use std::collections::HashMap;

use serde_json::{Map, Value, json};

use crate::translate::anthropic::TranslateError;

mod stream;

pub use stream::GeminiToChatStream;

#[cfg(test)]
mod tests;

fn invalid(message: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest(message.into())
}

/// Chat fields that ask for something Gemini's `generateContent` cannot do. (An Anthropic
/// client's `thinking` and `cache_control` are read here as the `reasoning_effort` they come with,
/// and as Gemini's own implicit caching.)
const REFUSED: [&str; 7] =
    ["logit_bias", "logprobs", "top_logprobs", "audio", "modalities", "prediction", "web_search_options"];

/// The chat request as a `generateContent` body (the model goes in the URL).
pub fn chat_request_to_gemini(chat: &Value) -> Result<Value, TranslateError> {
    let request = chat.as_object().ok_or_else(|| invalid("request body must be a JSON object"))?;
    for field in REFUSED {
        let asks = match request.get(field) {
            None | Some(Value::Null) | Some(Value::Bool(false)) => false,
            Some(Value::Array(items)) if field == "modalities" => items.iter().any(|m| m != "text"),
            Some(_) => true,
        };
        if asks {
            return Err(invalid(format!("`{field}` is not supported by this model's provider (Gemini)")));
        }
    }
    let messages =
        request.get("messages").and_then(Value::as_array).ok_or_else(|| invalid("`messages` is required"))?;
    // Tool results name their function in Gemini; chat names the call, so its function is looked up.
    let mut call_names: HashMap<&str, &str> = HashMap::new();
    let mut system = Vec::new();
    let mut contents: Vec<Value> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
        let parts = match role {
            "system" | "developer" => {
                system.extend(text_parts(&message["content"], i)?);
                continue;
            }
            "user" => content_parts(&message["content"], i)?,
            "assistant" => {
                let mut parts = text_parts(&message["content"], i)?;
                for call in message["tool_calls"].as_array().into_iter().flatten() {
                    let id = call["id"].as_str().unwrap_or_default();
                    let name = call.pointer("/function/name").and_then(Value::as_str).unwrap_or_default();
                    call_names.insert(id, name);
                    let arguments =
                        call.pointer("/function/arguments").and_then(Value::as_str).unwrap_or("{}");
                    let args: Value = serde_json::from_str(arguments).map_err(|_| {
                        invalid(format!("`messages[{i}].tool_calls` has arguments that are not JSON"))
                    })?;
                    parts.push(json!({"functionCall": {"name": name, "args": args}}));
                }
                parts
            }
            "tool" => {
                let id = message["tool_call_id"].as_str().unwrap_or_default();
                let name = call_names.get(id).copied().ok_or_else(|| {
                    invalid(format!("`messages[{i}].tool_call_id` names no earlier tool call"))
                })?;
                let text: String =
                    text_parts(&message["content"], i)?.iter().filter_map(|p| p["text"].as_str()).collect();
                vec![json!({"functionResponse": {"name": name, "response": {"content": text}}})]
            }
            _ => return Err(invalid(format!("`messages[{i}].role` is not one Gemini can take"))),
        };
        let role = if role == "assistant" { "model" } else { "user" };
        match contents.last_mut() {
            // Gemini wants turns to alternate: consecutive turns of one role are one.
            Some(last) if last["role"] == role => {
                if let Some(existing) = last["parts"].as_array_mut() {
                    existing.extend(parts);
                }
            }
            _ => contents.push(json!({"role": role, "parts": parts})),
        }
    }
    if contents.is_empty() {
        return Err(invalid("`messages` must contain at least one user or assistant message"));
    }
    let mut out = Map::new();
    out.insert("contents".into(), Value::Array(contents));
    if !system.is_empty() {
        out.insert("systemInstruction".into(), json!({"parts": system}));
    }
    if let Some(tools) = request.get("tools").and_then(Value::as_array).filter(|t| !t.is_empty()) {
        let declarations: Vec<Value> = tools
            .iter()
            .map(|tool| {
                let function = &tool["function"];
                let mut declaration = json!({"name": function["name"]});
                for field in ["description", "parameters"] {
                    if let Some(value) = function.get(field).filter(|v| !v.is_null()) {
                        declaration[field] = value.clone();
                    }
                }
                declaration
            })
            .collect();
        out.insert("tools".into(), json!([{"functionDeclarations": declarations}]));
        if let Some(config) = tool_config(request.get("tool_choice"))? {
            out.insert("toolConfig".into(), config);
        }
    }
    out.insert("generationConfig".into(), generation_config(request)?);
    Ok(Value::Object(out))
}

/// `tool_choice` as `toolConfig.functionCallingConfig`.
fn tool_config(choice: Option<&Value>) -> Result<Option<Value>, TranslateError> {
    let config = match choice {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(mode)) => match mode.as_str() {
            "auto" => json!({"mode": "AUTO"}),
            "required" => json!({"mode": "ANY"}),
            "none" => json!({"mode": "NONE"}),
            _ => return Err(invalid("`tool_choice` must be auto, required, none or a function")),
        },
        Some(choice) => match choice.pointer("/function/name").and_then(Value::as_str) {
            Some(name) => json!({"mode": "ANY", "allowedFunctionNames": [name]}),
            None => return Err(invalid("`tool_choice` must be auto, required, none or a function")),
        },
    };
    Ok(Some(json!({"functionCallingConfig": config})))
}

/// Sampling, limits, stop sequences, answers, structured output and reasoning effort.
fn generation_config(request: &Map<String, Value>) -> Result<Value, TranslateError> {
    let mut config = Map::new();
    let renamed = [
        ("temperature", "temperature"),
        ("top_p", "topP"),
        ("top_k", "topK"),
        ("seed", "seed"),
        ("presence_penalty", "presencePenalty"),
        ("frequency_penalty", "frequencyPenalty"),
        ("n", "candidateCount"),
    ];
    for (chat, gemini) in renamed {
        if let Some(value) = request.get(chat).filter(|v| !v.is_null()) {
            config.insert(gemini.into(), value.clone());
        }
    }
    let limit =
        request.get("max_completion_tokens").or_else(|| request.get("max_tokens")).filter(|v| !v.is_null());
    if let Some(limit) = limit {
        config.insert("maxOutputTokens".into(), limit.clone());
    }
    match request.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(stop)) => {
            config.insert("stopSequences".into(), json!([stop]));
        }
        Some(stops @ Value::Array(_)) => {
            config.insert("stopSequences".into(), stops.clone());
        }
        Some(_) => return Err(invalid("`stop` must be a string or an array of strings")),
    }
    match request.get("response_format").and_then(|f| f.get("type")).and_then(Value::as_str) {
        None | Some("text") => {}
        Some("json_object") => {
            config.insert("responseMimeType".into(), json!("application/json"));
        }
        Some("json_schema") => {
            config.insert("responseMimeType".into(), json!("application/json"));
            if let Some(schema) =
                request.get("response_format").and_then(|f| f.pointer("/json_schema/schema"))
            {
                config.insert("responseJsonSchema".into(), schema.clone());
            }
        }
        Some(_) => return Err(invalid("`response_format.type` must be text, json_object or json_schema")),
    }
    match request.get("reasoning_effort").and_then(Value::as_str) {
        None => {}
        Some(effort) => {
            let budget = match effort {
                "none" => 0,
                "minimal" | "low" => 1024,
                "medium" => 8192,
                "high" => 24576,
                _ => return Err(invalid("`reasoning_effort` must be none, minimal, low, medium or high")),
            };
            config.insert("thinkingConfig".into(), json!({"thinkingBudget": budget}));
        }
    }
    Ok(Value::Object(config))
}

/// A message's text as Gemini text parts.
fn text_parts(content: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    Ok(content_parts(content, i)?.into_iter().filter(|part| part.get("text").is_some()).collect())
}

/// A message's content as Gemini parts: text, and images given as data URLs.
fn content_parts(content: &Value, i: usize) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(text) if text.is_empty() => Ok(Vec::new()),
        Value::String(text) => Ok(vec![json!({"text": text})]),
        Value::Array(parts) => parts
            .iter()
            .map(|part| match part["type"].as_str() {
                Some("text") => Ok(json!({"text": part["text"]})),
                Some("image_url") => {
                    let url = part.pointer("/image_url/url").and_then(Value::as_str).unwrap_or_default();
                    let (mime, data) =
                        url.strip_prefix("data:").and_then(|rest| rest.split_once(";base64,")).ok_or_else(
                            || invalid(format!("`messages[{i}]`: Gemini takes images as data: URLs only")),
                        )?;
                    Ok(json!({"inlineData": {"mimeType": mime, "data": data}}))
                }
                _ => Err(invalid(format!("`messages[{i}].content` has a part Gemini cannot take"))),
            })
            .collect(),
        _ => Err(invalid(format!("`messages[{i}].content` must be a string or an array of parts"))),
    }
}

/// A whole `generateContent` reply as a chat completion for `model` (the client's name).
pub fn gemini_response_to_chat(reply: &Value, model: &str, id: &str, created: u64) -> Value {
    let choices: Vec<Value> = reply["candidates"]
        .as_array()
        .into_iter()
        .flatten()
        .enumerate()
        .map(|(position, candidate)| {
            let (text, calls) = parts_of(candidate, position);
            let mut message = json!({"role": "assistant", "content": text, "refusal": null});
            if !calls.is_empty() {
                message["tool_calls"] = json!(calls);
                if message["content"] == "" {
                    message["content"] = Value::Null;
                }
            }
            let index = candidate["index"].as_u64().unwrap_or(position as u64);
            json!({"index": index, "message": message, "logprobs": null,
                   "finish_reason": finish_reason(candidate["finishReason"].as_str(), !calls.is_empty())})
        })
        .collect();
    let mut chat = json!({"id": id, "object": "chat.completion", "created": created, "model": model, "choices": choices});
    if let Some(usage) = usage_of(&reply["usageMetadata"]) {
        chat["usage"] = usage;
    }
    chat
}

/// A candidate's text and its function calls (as chat tool calls, with ids made up: Gemini's
/// calls have none).
fn parts_of(candidate: &Value, position: usize) -> (String, Vec<Value>) {
    let mut text = String::new();
    let mut calls = Vec::new();
    for part in candidate.pointer("/content/parts").and_then(Value::as_array).into_iter().flatten() {
        if part["thought"] == true {
            continue;
        }
        if let Some(piece) = part["text"].as_str() {
            text.push_str(piece);
        }
        if let Some(call) = part.get("functionCall") {
            let id =
                call["id"].as_str().map_or_else(|| format!("call_{position}_{}", calls.len()), str::to_owned);
            let arguments = call.get("args").cloned().unwrap_or_else(|| json!({})).to_string();
            calls.push(json!({"id": id, "type": "function", "function": {"name": call["name"], "arguments": arguments}}));
        }
    }
    (text, calls)
}

/// Gemini's `finishReason` as chat's.
fn finish_reason(reason: Option<&str>, called: bool) -> Option<&'static str> {
    Some(match reason? {
        "STOP" if called => "tool_calls",
        "STOP" => "stop",
        "MAX_TOKENS" => "length",
        "SAFETY" | "RECITATION" | "BLOCKLIST" | "PROHIBITED_CONTENT" | "SPII" | "IMAGE_SAFETY" => {
            "content_filter"
        }
        _ => "stop",
    })
}

/// `usageMetadata` as chat's `usage`: the cached part of the prompt as cached tokens, thoughts
/// as output (they are billed as output).
pub fn usage_of(metadata: &Value) -> Option<Value> {
    let prompt = metadata.get("promptTokenCount")?.as_u64()?;
    let count = |key: &str| metadata.get(key).and_then(Value::as_u64).unwrap_or(0);
    let (candidates, thoughts) = (count("candidatesTokenCount"), count("thoughtsTokenCount"));
    let output = candidates.saturating_add(thoughts);
    Some(json!({
        "prompt_tokens": prompt, "completion_tokens": output, "total_tokens": prompt.saturating_add(output),
        "prompt_tokens_details": {"cached_tokens": count("cachedContentTokenCount").min(prompt)},
        "completion_tokens_details": {"reasoning_tokens": thoughts},
    }))
}
