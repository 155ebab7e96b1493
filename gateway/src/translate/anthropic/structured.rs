//! Structured outputs on Anthropic upstreams: chat's `response_format` (a JSON schema, or any JSON
//! object) becomes one tool the model is made to call, whose input is the answer; the reply's call
//! to it becomes the message's text again (whole and streamed), so `chat.completions.parse` and
//! LangChain's `with_structured_output` work on Anthropic routes as on OpenAI ones.

use serde_json::{Value, json};

use super::{TranslateError, invalid};

/// The forced tool's name: reserved, as a request with its own tools is refused.
pub const OUTPUT_TOOL: &str = "switchboard_structured_output";

/// The tool and the `tool_choice` that force `response_format`'s shape, if it asks for JSON.
pub(super) fn forced(
    response_format: Option<&Value>,
    has_tools: bool,
) -> Result<Option<(Value, Value)>, TranslateError> {
    let Some(format) = response_format.filter(|format| !format.is_null()) else { return Ok(None) };
    let schema = match format.get("type").and_then(Value::as_str) {
        Some("text") => return Ok(None),
        Some("json_object") => json!({"type": "object"}),
        Some("json_schema") => format
            .pointer("/json_schema/schema")
            .cloned()
            .ok_or_else(|| invalid("`response_format.json_schema.schema` is required"))?,
        _ => return Err(invalid("`response_format.type` must be text, json_object or json_schema")),
    };
    if schema.get("type").and_then(Value::as_str) != Some("object") {
        return Err(invalid(
            "`response_format.json_schema.schema` must describe an object (`\"type\": \"object\"`) for this model's provider",
        ));
    }
    if has_tools {
        return Err(invalid(
            "`response_format` together with `tools` is not supported by this model's provider",
        ));
    }
    let description = format
        .pointer("/json_schema/description")
        .and_then(Value::as_str)
        .unwrap_or("Give your answer as this tool's input, in exactly this format.");
    let tool = json!({"name": OUTPUT_TOOL, "description": description, "input_schema": schema});
    Ok(Some((tool, json!({"type": "tool", "name": OUTPUT_TOOL}))))
}

/// Whether a `tool_use` block is the answer in the asked-for format.
pub(super) fn is_answer(block: &Value) -> bool {
    block.get("name").and_then(Value::as_str) == Some(OUTPUT_TOOL)
}
