//! Provider side: an OpenAI chat completions request -> an Anthropic Messages request.

use serde_json::{Map, Value, json};

use super::{TranslateError, fields, invalid, parse_data_url, parse_tool_arguments, reasoning, structured};

/// Anthropic requires `max_tokens`; OpenAI does not. This is what a chat request without one gets.
pub const DEFAULT_MAX_TOKENS: u64 = 4096;

/// Translates the canonical chat request into an Anthropic Messages request for `upstream_model`, so
/// any chat client can be served by an Anthropic route.
///
/// System and developer messages are hoisted into `system`; `tool` messages become `tool_result`
/// blocks in a user turn; assistant `tool_calls` become `tool_use` blocks; consecutive turns of the
/// same role are merged (Anthropic requires alternation) with tool results first. `max_tokens` comes
/// from `max_completion_tokens`, then `max_tokens`, else [`DEFAULT_MAX_TOKENS`]; `stop` ->
/// `stop_sequences`; `user` -> `metadata.user_id`; `temperature` is clamped to Anthropic's 0..=1.
/// `response_format` asking for JSON becomes a forced tool ([`structured`]); thinking and
/// `cache_control` go as [`reasoning::to_messages`] says. OpenAI-only fields that ask for
/// something Anthropic cannot do (`n > 1`, penalties, `seed`, `logprobs`, ...), unknown fields and
/// parts Anthropic cannot take (audio, file ids) are refused ([`fields::CHAT_ON_ANTHROPIC`]).
pub fn chat_request_to_messages(chat: &Value, upstream_model: &str) -> Result<Value, TranslateError> {
    let req = chat.as_object().ok_or_else(|| invalid("request body must be a JSON object"))?;
    fields::check(req, fields::CHAT_ON_ANTHROPIC, "by this model's provider (Anthropic)")?;
    let messages = match req.get("messages") {
        Some(Value::Array(messages)) => messages,
        None | Some(Value::Null) => return Err(invalid("`messages` is required")),
        Some(_) => return Err(invalid("`messages` must be an array")),
    };

    let mut system = Vec::new();
    let mut turns: Vec<(&'static str, Value)> = Vec::new();
    for (i, message) in messages.iter().enumerate() {
        let content = message.get("content").unwrap_or(&Value::Null);
        match message.get("role").and_then(Value::as_str) {
            Some("system" | "developer") => {
                system.extend(text_blocks(content, &format!("messages[{i}].content"))?)
            }
            Some("user") => push_turn(&mut turns, "user", user_content(content, i)?),
            Some("assistant") => push_turn(&mut turns, "assistant", assistant_content(message, i)?),
            Some("tool") => push_turn(&mut turns, "user", json!([tool_result(message, i)?])),
            _ => {
                return Err(invalid(format!(
                    "`messages[{i}].role` must be one of \"system\", \"developer\", \"user\", \"assistant\", \"tool\""
                )));
            }
        }
    }
    if turns.is_empty() {
        return Err(invalid("`messages` must contain at least one user or assistant message"));
    }

    let mut out = Map::new();
    out.insert("model".into(), json!(upstream_model));
    out.insert("max_tokens".into(), json!(max_tokens(req)?));
    if !system.is_empty() {
        let plain = system.len() == 1 && system[0].get("cache_control").is_none();
        let value = match (plain, system[0].get("text")) {
            (true, Some(text)) => text.clone(),
            _ => Value::Array(system),
        };
        out.insert("system".into(), value);
    }
    let messages: Vec<Value> = turns
        .into_iter()
        .map(|(role, content)| json!({"role": role, "content": tool_results_first(content)}))
        .collect();
    out.insert("messages".into(), Value::Array(messages));

    match req.get("temperature") {
        None | Some(Value::Null) => {}
        Some(Value::Number(t)) => {
            out.insert("temperature".into(), json!(t.as_f64().unwrap_or(1.0).clamp(0.0, 1.0)));
        }
        Some(_) => return Err(invalid("`temperature` must be a number")),
    }
    for key in ["top_p", "top_k"] {
        match req.get(key) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                out.insert(key.into(), v.clone());
            }
            Some(_) => return Err(invalid(format!("`{key}` must be a number"))),
        }
    }
    match req.get("stop") {
        None | Some(Value::Null) => {}
        Some(Value::String(s)) => {
            out.insert("stop_sequences".into(), json!([s]));
        }
        Some(Value::Array(seqs)) if seqs.iter().all(Value::is_string) => {
            if !seqs.is_empty() {
                out.insert("stop_sequences".into(), Value::Array(seqs.clone()));
            }
        }
        Some(_) => return Err(invalid("`stop` must be a string or an array of strings")),
    }
    if req.get("stream").and_then(Value::as_bool) == Some(true) {
        out.insert("stream".into(), Value::Bool(true));
    }
    if let Some(user) = req.get("user").and_then(Value::as_str).filter(|u| !u.is_empty()) {
        out.insert("metadata".into(), json!({"user_id": user}));
    }
    let tools = match req.get("tools") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(tools)) => {
            tools.iter().enumerate().map(|(i, t)| tool(t, i)).collect::<Result<_, _>>()?
        }
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    let forced = structured::forced(req.get("response_format"), !tools.is_empty())?;
    reasoning::to_messages(req, &mut out, max_tokens(req)?, forced.is_some())?;
    if let Some((tool, choice)) = forced {
        out.insert("tools".into(), json!([tool]));
        out.insert("tool_choice".into(), choice);
    } else if !tools.is_empty() {
        out.insert("tools".into(), Value::Array(tools));
        let parallel = req.get("parallel_tool_calls").and_then(Value::as_bool);
        if let Some(choice) = tool_choice(req.get("tool_choice"), parallel)? {
            out.insert("tool_choice".into(), choice);
        }
    }
    Ok(Value::Object(out))
}

fn max_tokens(req: &Map<String, Value>) -> Result<u64, TranslateError> {
    for key in ["max_completion_tokens", "max_tokens"] {
        match req.get(key) {
            None | Some(Value::Null) => {}
            Some(v) => {
                return v
                    .as_u64()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| invalid(format!("`{key}` must be a positive integer")));
            }
        }
    }
    Ok(DEFAULT_MAX_TOKENS)
}

/// Appends a turn, merging it into the previous one when the role repeats.
fn push_turn(turns: &mut Vec<(&'static str, Value)>, role: &'static str, content: Value) {
    let empty = match &content {
        Value::String(s) => s.is_empty(),
        Value::Array(a) => a.is_empty(),
        _ => true,
    };
    if empty {
        // Anthropic rejects empty messages; an empty turn carries no meaning.
        return;
    }
    match turns.last_mut() {
        Some((last_role, last)) if *last_role == role => {
            let mut blocks = into_blocks(std::mem::take(last));
            blocks.extend(into_blocks(content));
            *last = Value::Array(blocks);
        }
        _ => turns.push((role, content)),
    }
}

fn into_blocks(content: Value) -> Vec<Value> {
    match content {
        Value::String(s) if s.is_empty() => Vec::new(),
        Value::String(s) => vec![json!({"type": "text", "text": s})],
        Value::Array(blocks) => blocks,
        _ => Vec::new(),
    }
}

/// Anthropic wants a user turn's `tool_result` blocks before anything else in it.
fn tool_results_first(content: Value) -> Value {
    match content {
        Value::Array(blocks) => {
            let (mut results, rest): (Vec<Value>, Vec<Value>) = blocks
                .into_iter()
                .partition(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"));
            results.extend(rest);
            Value::Array(results)
        }
        other => other,
    }
}

fn cache_control(mut block: Value, part: &Value) -> Value {
    if let (Some(cc), Some(map)) = (part.get("cache_control").filter(|c| !c.is_null()), block.as_object_mut())
    {
        map.insert("cache_control".into(), cc.clone());
    }
    block
}

/// Text-only content (system, developer, tool): a string or text parts -> non-empty text blocks.
fn text_blocks(content: &Value, path: &str) -> Result<Vec<Value>, TranslateError> {
    match content {
        Value::Null => Ok(Vec::new()),
        Value::String(s) if s.is_empty() => Ok(Vec::new()),
        Value::String(s) => Ok(vec![json!({"type": "text", "text": s})]),
        Value::Array(parts) => {
            let mut blocks = Vec::new();
            for (j, part) in parts.iter().enumerate() {
                if part.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(invalid(format!("`{path}[{j}]` must be a text part")));
                }
                blocks.extend(text_part(part, &format!("{path}[{j}]"))?);
            }
            Ok(blocks)
        }
        _ => Err(invalid(format!("`{path}` must be a string or an array of parts"))),
    }
}

fn text_part(part: &Value, path: &str) -> Result<Option<Value>, TranslateError> {
    let text = part.get("text").and_then(Value::as_str);
    let text = text.ok_or_else(|| invalid(format!("`{path}.text` must be a string")))?;
    Ok((!text.is_empty()).then(|| cache_control(json!({"type": "text", "text": text}), part)))
}

fn user_content(content: &Value, i: usize) -> Result<Value, TranslateError> {
    let path = format!("messages[{i}].content");
    let parts = match content {
        Value::String(_) => return Ok(content.clone()),
        Value::Array(parts) => parts,
        _ => return Err(invalid(format!("`{path}` must be a string or an array of parts"))),
    };
    let mut blocks = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let path = format!("{path}[{j}]");
        match part.get("type").and_then(Value::as_str) {
            Some("text") => blocks.extend(text_part(part, &path)?),
            Some("image_url") => blocks.push(image_block(part, &path)?),
            Some("file") => blocks.push(document_block(part, &path)?),
            Some(other) => {
                return Err(invalid(format!("`{path}`: part type \"{other}\" is not supported")));
            }
            None => return Err(invalid(format!("`{path}.type` is required"))),
        }
    }
    Ok(Value::Array(blocks))
}

fn image_block(part: &Value, path: &str) -> Result<Value, TranslateError> {
    let url = match part.get("image_url") {
        Some(Value::String(url)) => url.as_str(),
        Some(obj) => obj.get("url").and_then(Value::as_str).unwrap_or_default(),
        None => "",
    };
    let source = if let Some((media_type, data)) = parse_data_url(url) {
        json!({"type": "base64", "media_type": media_type, "data": data})
    } else if url.starts_with("http://") || url.starts_with("https://") {
        json!({"type": "url", "url": url})
    } else {
        return Err(invalid(format!("`{path}.image_url.url` must be an http(s) URL or a base64 data URL")));
    };
    Ok(cache_control(json!({"type": "image", "source": source}), part))
}

fn document_block(part: &Value, path: &str) -> Result<Value, TranslateError> {
    let file = part.get("file").unwrap_or(&Value::Null);
    let data_url = file.get("file_data").and_then(Value::as_str).unwrap_or_default();
    let Some((media_type, data)) = parse_data_url(data_url) else {
        return Err(invalid(format!(
            "`{path}.file.file_data` must be a base64 data URL (file ids are not supported)"
        )));
    };
    let mut block =
        json!({"type": "document", "source": {"type": "base64", "media_type": media_type, "data": data}});
    if let (Some(name), Some(map)) = (file.get("filename").and_then(Value::as_str), block.as_object_mut()) {
        map.insert("title".into(), json!(name));
    }
    Ok(cache_control(block, part))
}

fn assistant_content(message: &Value, i: usize) -> Result<Value, TranslateError> {
    let content = message.get("content").unwrap_or(&Value::Null);
    let tool_calls = match message.get("tool_calls") {
        None | Some(Value::Null) => &[][..],
        Some(Value::Array(calls)) => calls.as_slice(),
        Some(_) => return Err(invalid(format!("`messages[{i}].tool_calls` must be an array"))),
    };
    if message.get("function_call").is_some_and(|f| !f.is_null()) {
        return Err(invalid(format!("`messages[{i}].function_call` is deprecated; use tool_calls")));
    }
    if tool_calls.is_empty() && content.is_string() {
        return Ok(content.clone());
    }
    let mut blocks = match content {
        // Refusal parts are the model's own words; keep them as text.
        Value::Array(parts) => parts
            .iter()
            .filter_map(|p| p.get("text").or_else(|| p.get("refusal")).and_then(Value::as_str))
            .filter(|t| !t.is_empty())
            .map(|t| json!({"type": "text", "text": t}))
            .collect(),
        other => text_blocks(other, &format!("messages[{i}].content"))?,
    };
    for (j, call) in tool_calls.iter().enumerate() {
        let path = format!("messages[{i}].tool_calls[{j}]");
        let id = call.get("id").and_then(Value::as_str);
        let id = id.ok_or_else(|| invalid(format!("`{path}.id` must be a string")))?;
        let function = call.get("function").unwrap_or(&Value::Null);
        let name = function.get("name").and_then(Value::as_str);
        let name = name.ok_or_else(|| invalid(format!("`{path}.function.name` must be a string")))?;
        let input = parse_tool_arguments(function.get("arguments"));
        blocks.push(json!({"type": "tool_use", "id": id, "name": name, "input": input}));
    }
    Ok(Value::Array(blocks))
}

fn tool_result(message: &Value, i: usize) -> Result<Value, TranslateError> {
    let id = message.get("tool_call_id").and_then(Value::as_str);
    let id = id.ok_or_else(|| invalid(format!("`messages[{i}].tool_call_id` must be a string")))?;
    let content = match message.get("content").unwrap_or(&Value::Null) {
        Value::String(s) => Value::String(s.clone()),
        other => Value::Array(text_blocks(other, &format!("messages[{i}].content"))?),
    };
    Ok(json!({"type": "tool_result", "tool_use_id": id, "content": content}))
}

fn tool(tool: &Value, i: usize) -> Result<Value, TranslateError> {
    if tool.get("type").and_then(Value::as_str) != Some("function") {
        return Err(invalid(format!("`tools[{i}].type` must be \"function\"")));
    }
    let function = tool.get("function").unwrap_or(&Value::Null);
    let name = function.get("name").and_then(Value::as_str);
    let name = name.ok_or_else(|| invalid(format!("`tools[{i}].function.name` must be a string")))?;
    let mut out = Map::new();
    out.insert("name".into(), json!(name));
    if let Some(description) = function.get("description").filter(|d| d.is_string()) {
        out.insert("description".into(), description.clone());
    }
    let schema = match function.get("parameters") {
        Some(schema @ Value::Object(_)) => schema.clone(),
        _ => json!({"type": "object", "properties": {}}),
    };
    out.insert("input_schema".into(), schema);
    Ok(cache_control(Value::Object(out), tool))
}

fn tool_choice(choice: Option<&Value>, parallel: Option<bool>) -> Result<Option<Value>, TranslateError> {
    let mut out = match choice {
        None | Some(Value::Null) => {
            if parallel != Some(false) {
                return Ok(None);
            }
            json!({"type": "auto"})
        }
        Some(Value::String(s)) => match s.as_str() {
            "auto" => json!({"type": "auto"}),
            "required" => json!({"type": "any"}),
            "none" => return Ok(Some(json!({"type": "none"}))),
            _ => {
                return Err(invalid(
                    "`tool_choice` must be \"auto\", \"required\", \"none\" or a function choice",
                ));
            }
        },
        Some(obj) => {
            let name = obj.get("function").and_then(|f| f.get("name")).and_then(Value::as_str);
            match (obj.get("type").and_then(Value::as_str), name) {
                (Some("function"), Some(name)) => json!({"type": "tool", "name": name}),
                _ => {
                    return Err(invalid(
                        "`tool_choice` object must be {\"type\": \"function\", \"function\": {\"name\"}}",
                    ));
                }
            }
        }
    };
    if parallel == Some(false)
        && let Some(map) = out.as_object_mut()
    {
        map.insert("disable_parallel_tool_use".into(), Value::Bool(true));
    }
    Ok(Some(out))
}
