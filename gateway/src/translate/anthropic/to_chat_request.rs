//! Client side: an Anthropic `/v1/messages` request body -> an OpenAI chat completions request body.

use serde_json::{Map, Value, json};

use super::{TranslateError, fields, invalid, reasoning};

/// Translates an Anthropic Messages request into the gateway's canonical chat request, so a request
/// from an Anthropic SDK can be routed like any other.
///
/// `system` becomes a leading system message; `tool_result` blocks become `tool` messages placed
/// before the rest of their user turn (OpenAI requires them right after the assistant's tool calls);
/// images become `image_url` parts (base64 as a data URL); `stop_sequences` -> `stop`;
/// `metadata.user_id` -> `user`; `thinking`, `output_format`, `output_config` and top-level
/// `cache_control` as [`reasoning::to_chat`] says; streaming requests ask for the final usage chunk. Missing or
/// invalid `model`, `messages` or `max_tokens`, and blocks chat cannot express (server tools, Files
/// API sources), are rejected with [`TranslateError::InvalidRequest`] naming the field.
pub fn messages_request_to_chat(body: &Value) -> Result<Value, TranslateError> {
    let req = body.as_object().ok_or_else(|| invalid("request body must be a JSON object"))?;
    fields::check(req, fields::MESSAGES_TO_CHAT, "by this gateway's Messages API")?;
    let model = match req.get("model") {
        Some(Value::String(m)) if !m.is_empty() => m.clone(),
        None | Some(Value::Null) => return Err(invalid("`model` is required")),
        Some(_) => return Err(invalid("`model` must be a non-empty string")),
    };
    let messages = match req.get("messages") {
        Some(Value::Array(messages)) if messages.is_empty() => {
            return Err(invalid("`messages` must not be empty"));
        }
        Some(Value::Array(messages)) => messages,
        None | Some(Value::Null) => return Err(invalid("`messages` is required")),
        Some(_) => return Err(invalid("`messages` must be an array")),
    };
    let max_tokens = match req.get("max_tokens") {
        None | Some(Value::Null) => return Err(invalid("`max_tokens` is required")),
        Some(v) => {
            v.as_u64().filter(|n| *n > 0).ok_or_else(|| invalid("`max_tokens` must be a positive integer"))?
        }
    };

    let mut chat_messages = Vec::new();
    if let Some(system) = req.get("system").filter(|s| !s.is_null())
        && let Some(message) = system_to_chat(system)?
    {
        chat_messages.push(message);
    }
    for (i, message) in messages.iter().enumerate() {
        message_to_chat(message, i, &mut chat_messages)?;
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model));
    out.insert("messages".into(), Value::Array(chat_messages));
    out.insert("max_tokens".into(), json!(max_tokens));
    for key in ["temperature", "top_p", "top_k"] {
        match req.get(key) {
            None | Some(Value::Null) => {}
            Some(v @ Value::Number(_)) => {
                out.insert(key.into(), v.clone());
            }
            Some(_) => return Err(invalid(format!("`{key}` must be a number"))),
        }
    }
    match req.get("stop_sequences") {
        None | Some(Value::Null) => {}
        Some(Value::Array(seqs)) => {
            if seqs.iter().any(|s| !s.is_string()) {
                return Err(invalid("`stop_sequences` must be an array of strings"));
            }
            if !seqs.is_empty() {
                out.insert("stop".into(), Value::Array(seqs.clone()));
            }
        }
        Some(_) => return Err(invalid("`stop_sequences` must be an array of strings")),
    }
    match req.get("stream") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {}
        Some(Value::Bool(true)) => {
            out.insert("stream".into(), Value::Bool(true));
            // The Anthropic stream must end with real usage in `message_delta`.
            out.insert("stream_options".into(), json!({"include_usage": true}));
        }
        Some(_) => return Err(invalid("`stream` must be a boolean")),
    }
    if let Some(user) = req.get("metadata").and_then(|m| m.get("user_id")).and_then(Value::as_str) {
        out.insert("user".into(), Value::String(user.to_owned()));
    }
    let has_tools = match req.get("tools") {
        None | Some(Value::Null) => false,
        Some(Value::Array(tools)) => {
            let tools =
                tools.iter().enumerate().map(|(i, t)| tool_to_chat(t, i)).collect::<Result<Vec<_>, _>>()?;
            let has = !tools.is_empty();
            if has {
                out.insert("tools".into(), Value::Array(tools));
            }
            has
        }
        Some(_) => return Err(invalid("`tools` must be an array")),
    };
    if let Some(choice) = req.get("tool_choice").filter(|c| !c.is_null()) {
        let (choice, parallel) = tool_choice_to_chat(choice)?;
        // OpenAI rejects `tool_choice` / `parallel_tool_calls` without `tools`.
        if has_tools {
            out.insert("tool_choice".into(), choice);
            if let Some(parallel) = parallel {
                out.insert("parallel_tool_calls".into(), Value::Bool(parallel));
            }
        }
    }
    reasoning::to_chat(req, &mut out)?;
    Ok(Value::Object(out))
}

fn system_to_chat(system: &Value) -> Result<Option<Value>, TranslateError> {
    match system {
        Value::String(s) if s.is_empty() => Ok(None),
        Value::String(s) => Ok(Some(json!({"role": "system", "content": s}))),
        Value::Array(blocks) => {
            let mut parts = Vec::new();
            for (i, block) in blocks.iter().enumerate() {
                if block.get("type").and_then(Value::as_str) != Some("text") {
                    return Err(invalid(format!("`system[{i}]` must be a text block")));
                }
                parts.push(text_part(block, &format!("system[{i}]"))?);
            }
            Ok((!parts.is_empty()).then(|| json!({"role": "system", "content": parts})))
        }
        _ => Err(invalid("`system` must be a string or an array of text blocks")),
    }
}

fn message_to_chat(message: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let role = message.get("role").and_then(Value::as_str);
    let content =
        message.get("content").ok_or_else(|| invalid(format!("`messages[{i}].content` is required")))?;
    if !content.is_string() && !content.is_array() {
        return Err(invalid(format!("`messages[{i}].content` must be a string or an array of blocks")));
    }
    match role {
        Some("user") => user_to_chat(content, i, out),
        Some("assistant") => {
            out.push(assistant_to_chat(content, i)?);
            Ok(())
        }
        _ => Err(invalid(format!("`messages[{i}].role` must be \"user\" or \"assistant\""))),
    }
}

fn block_type<'a>(block: &'a Value, path: &str) -> Result<&'a str, TranslateError> {
    block.get("type").and_then(Value::as_str).ok_or_else(|| invalid(format!("`{path}.type` is required")))
}

fn user_to_chat(content: &Value, i: usize, out: &mut Vec<Value>) -> Result<(), TranslateError> {
    let Some(blocks) = content.as_array() else {
        out.push(json!({"role": "user", "content": content}));
        return Ok(());
    };
    let mut parts = Vec::new();
    // Images returned by tools: OpenAI tool messages hold text only, so they follow in the user turn.
    let mut tool_images = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        match block_type(block, &path)? {
            "text" => parts.push(text_part(block, &path)?),
            "image" => parts.push(image_part(block, &path)?),
            "document" => parts.push(document_part(block, &path)?),
            "tool_result" => out.push(tool_result_to_chat(block, &path, &mut tool_images)?),
            other => {
                return Err(invalid(format!("`{path}`: content block type \"{other}\" is not supported")));
            }
        }
    }
    tool_images.extend(parts);
    if !tool_images.is_empty() {
        out.push(json!({"role": "user", "content": tool_images}));
    }
    Ok(())
}

fn assistant_to_chat(content: &Value, i: usize) -> Result<Value, TranslateError> {
    let Some(blocks) = content.as_array() else {
        return Ok(json!({"role": "assistant", "content": content}));
    };
    let mut text = String::new();
    let mut has_text = false;
    let mut tool_calls = Vec::new();
    for (j, block) in blocks.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        match block_type(block, &path)? {
            "text" => {
                let t = block.get("text").and_then(Value::as_str);
                text.push_str(t.ok_or_else(|| invalid(format!("`{path}.text` must be a string")))?);
                has_text = true;
            }
            "tool_use" => {
                let id = block.get("id").and_then(Value::as_str);
                let id = id.ok_or_else(|| invalid(format!("`{path}.id` must be a string")))?;
                let name = block.get("name").and_then(Value::as_str);
                let name = name.ok_or_else(|| invalid(format!("`{path}.name` must be a string")))?;
                let input = block.get("input").cloned().unwrap_or_else(|| json!({}));
                tool_calls.push(json!({
                    "id": id,
                    "type": "function",
                    "function": {"name": name, "arguments": input.to_string()},
                }));
            }
            // Reasoning is not replayable through chat completions; the model does not need it.
            "thinking" | "redacted_thinking" => {}
            other => {
                return Err(invalid(format!("`{path}`: content block type \"{other}\" is not supported")));
            }
        }
    }
    let mut message = Map::new();
    message.insert("role".into(), json!("assistant"));
    let content = match (has_text, tool_calls.is_empty()) {
        (true, _) => Value::String(text),
        (false, false) => Value::Null,
        (false, true) => Value::String(String::new()),
    };
    message.insert("content".into(), content);
    if !tool_calls.is_empty() {
        message.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    Ok(Value::Object(message))
}

/// Copies Anthropic's `cache_control` onto a chat part so an Anthropic upstream keeps caching.
fn with_cache_control(mut part: Value, block: &Value) -> Value {
    if let (Some(cc), Some(map)) = (block.get("cache_control").filter(|c| !c.is_null()), part.as_object_mut())
    {
        map.insert("cache_control".into(), cc.clone());
    }
    part
}

fn text_part(block: &Value, path: &str) -> Result<Value, TranslateError> {
    let text = block.get("text").and_then(Value::as_str);
    let text = text.ok_or_else(|| invalid(format!("`{path}.text` must be a string")))?;
    Ok(with_cache_control(json!({"type": "text", "text": text}), block))
}

fn source_str<'a>(source: &'a Value, key: &str, path: &str) -> Result<&'a str, TranslateError> {
    source
        .get(key)
        .and_then(Value::as_str)
        .ok_or_else(|| invalid(format!("`{path}.source.{key}` must be a string")))
}

fn image_part(block: &Value, path: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").ok_or_else(|| invalid(format!("`{path}.source` is required")))?;
    let url = match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media_type = source_str(source, "media_type", path)?;
            format!("data:{media_type};base64,{}", source_str(source, "data", path)?)
        }
        Some("url") => source_str(source, "url", path)?.to_owned(),
        _ => {
            return Err(invalid(format!("`{path}.source.type` must be \"base64\" or \"url\"")));
        }
    };
    Ok(with_cache_control(json!({"type": "image_url", "image_url": {"url": url}}), block))
}

fn document_part(block: &Value, path: &str) -> Result<Value, TranslateError> {
    let source = block.get("source").ok_or_else(|| invalid(format!("`{path}.source` is required")))?;
    let part = match source.get("type").and_then(Value::as_str) {
        Some("base64") => {
            let media_type = source_str(source, "media_type", path)?;
            let data = source_str(source, "data", path)?;
            let mut file = Map::new();
            if let Some(title) = block.get("title").and_then(Value::as_str) {
                file.insert("filename".into(), json!(title));
            }
            file.insert("file_data".into(), json!(format!("data:{media_type};base64,{data}")));
            json!({"type": "file", "file": file})
        }
        Some("text") => json!({"type": "text", "text": source_str(source, "data", path)?}),
        _ => {
            return Err(invalid(format!(
                "`{path}.source.type` must be \"base64\" or \"text\" for documents"
            )));
        }
    };
    Ok(with_cache_control(part, block))
}

fn tool_result_to_chat(block: &Value, path: &str, images: &mut Vec<Value>) -> Result<Value, TranslateError> {
    let id = block.get("tool_use_id").and_then(Value::as_str);
    let id = id.ok_or_else(|| invalid(format!("`{path}.tool_use_id` must be a string")))?;
    let content = match block.get("content") {
        None | Some(Value::Null) => Value::String(String::new()),
        Some(Value::String(s)) => Value::String(s.clone()),
        Some(Value::Array(inner)) => {
            let mut texts = Vec::new();
            for (k, item) in inner.iter().enumerate() {
                let item_path = format!("{path}.content[{k}]");
                match block_type(item, &item_path)? {
                    "text" => texts.push(text_part(item, &item_path)?),
                    "image" => images.push(image_part(item, &item_path)?),
                    "document" => images.push(document_part(item, &item_path)?),
                    other => {
                        return Err(invalid(format!(
                            "`{item_path}`: type \"{other}\" is not supported in tool_result"
                        )));
                    }
                }
            }
            Value::Array(texts)
        }
        Some(_) => {
            return Err(invalid(format!("`{path}.content` must be a string or an array of blocks")));
        }
    };
    Ok(json!({"role": "tool", "tool_call_id": id, "content": content}))
}

fn tool_to_chat(tool: &Value, i: usize) -> Result<Value, TranslateError> {
    match tool.get("type").and_then(Value::as_str) {
        None | Some("custom") => {}
        Some(other) => {
            return Err(invalid(format!("`tools[{i}]`: server tool type \"{other}\" cannot be translated")));
        }
    }
    let name = tool.get("name").and_then(Value::as_str);
    let name = name.ok_or_else(|| invalid(format!("`tools[{i}].name` must be a string")))?;
    let schema = tool.get("input_schema").filter(|s| s.is_object());
    let schema = schema.ok_or_else(|| invalid(format!("`tools[{i}].input_schema` must be an object")))?;
    let mut function = Map::new();
    function.insert("name".into(), json!(name));
    if let Some(description) = tool.get("description").filter(|d| d.is_string()) {
        function.insert("description".into(), description.clone());
    }
    function.insert("parameters".into(), schema.clone());
    if let Some(strict) = tool.get("strict").filter(|s| s.is_boolean()) {
        function.insert("strict".into(), strict.clone());
    }
    Ok(with_cache_control(json!({"type": "function", "function": function}), tool))
}

/// Returns the OpenAI `tool_choice` and, when the client disabled parallel tool use, `Some(false)`
/// for `parallel_tool_calls`.
fn tool_choice_to_chat(choice: &Value) -> Result<(Value, Option<bool>), TranslateError> {
    let parallel = match choice.get("disable_parallel_tool_use").and_then(Value::as_bool) {
        Some(true) => Some(false),
        _ => None,
    };
    let chat = match choice.get("type").and_then(Value::as_str) {
        Some("auto") => json!("auto"),
        Some("any") => json!("required"),
        Some("none") => json!("none"),
        Some("tool") => {
            let name = choice.get("name").and_then(Value::as_str);
            let name = name.ok_or_else(|| invalid("`tool_choice.name` is required when type is \"tool\""))?;
            json!({"type": "function", "function": {"name": name}})
        }
        _ => {
            return Err(invalid("`tool_choice.type` must be one of \"auto\", \"any\", \"tool\", \"none\""));
        }
    };
    Ok((chat, parallel))
}
