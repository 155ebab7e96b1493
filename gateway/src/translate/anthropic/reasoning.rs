//! Anthropic's request features beyond chat, both ways: extended `thinking` (chat's nearest is
//! `reasoning_effort`), structured outputs (`output_format`, `output_config.format`: chat's
//! `response_format`), `output_config.effort`, and top-level `cache_control` (automatic prompt
//! caching; OpenAI upstreams cache by themselves). What comes from an Anthropic client is kept
//! for an Anthropic upstream as sent, and translated for the others; what has no equivalent is
//! refused with a 400 naming it.

use serde_json::{Map, Value, json};

use super::{TranslateError, invalid};

/// Thinking budgets for chat's reasoning efforts, and the smallest Anthropic accepts.
const BUDGETS: [(&str, u64); 4] = [("minimal", 1024), ("low", 1024), ("medium", 4096), ("high", 16384)];
const MIN_BUDGET: u64 = 1024;

/// Client side: `req`'s Anthropic-only features into the chat request `out`.
pub(super) fn to_chat(req: &Map<String, Value>, out: &mut Map<String, Value>) -> Result<(), TranslateError> {
    if let Some((thinking, budget)) = checked_thinking(req.get("thinking"))? {
        out.insert("thinking".into(), thinking.clone());
        let effort = budget.map_or("medium", effort_of);
        out.insert("reasoning_effort".into(), json!(effort));
    }
    let config = match req.get("output_config").filter(|c| !c.is_null()) {
        None => &Map::new(),
        Some(Value::Object(config)) => config,
        Some(_) => return Err(invalid("`output_config` must be an object")),
    };
    for (key, value) in config {
        match key.as_str() {
            "format" => {}
            "effort" => match value.as_str() {
                Some(effort @ ("low" | "medium" | "high")) => {
                    out.insert("reasoning_effort".into(), json!(effort));
                }
                _ => return Err(invalid("`output_config.effort` must be low, medium or high")),
            },
            other => {
                return Err(invalid(format!("`output_config.{other}` is not supported by this gateway")));
            }
        }
    }
    let format = req.get("output_format").or_else(|| config.get("format")).filter(|f| !f.is_null());
    if let Some(format) = format {
        let schema = match (format.get("type").and_then(Value::as_str), format.get("schema")) {
            (Some("json_schema"), Some(schema)) => schema.clone(),
            _ => {
                return Err(invalid(
                    "`output_format` must be {\"type\": \"json_schema\", \"schema\": {...}}",
                ));
            }
        };
        let response_format =
            json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}});
        out.insert("response_format".into(), response_format);
    }
    if let Some(cache_control) = req.get("cache_control").filter(|c| !c.is_null()) {
        out.insert("cache_control".into(), cache_control.clone());
    }
    Ok(())
}

/// Provider side: the chat request's thinking (as an Anthropic client sent it, or from
/// `reasoning_effort`, within `max_tokens`) and top-level `cache_control` into the Messages
/// request `out`. `forced`: the request forces a tool (a structured output), which Anthropic does
/// not allow while thinking.
pub(super) fn to_messages(
    req: &Map<String, Value>,
    out: &mut Map<String, Value>,
    max_tokens: u64,
    forced: bool,
) -> Result<(), TranslateError> {
    let thinking = match (checked_thinking(req.get("thinking"))?, req.get("reasoning_effort")) {
        (Some((thinking, _)), _) => Some(thinking.clone()),
        (None, None | Some(Value::Null)) => None,
        (None, Some(effort)) => match effort.as_str() {
            Some("none") => None,
            Some(effort) => {
                let (_, budget) = BUDGETS.iter().find(|(name, _)| *name == effort).ok_or_else(|| {
                    invalid("`reasoning_effort` must be none, minimal, low, medium or high")
                })?;
                let budget = (*budget).min(max_tokens.saturating_sub(1));
                if budget < MIN_BUDGET {
                    return Err(invalid(format!(
                        "`reasoning_effort` needs `max_tokens` above {MIN_BUDGET} on this model's provider"
                    )));
                }
                Some(json!({"type": "enabled", "budget_tokens": budget}))
            }
            None => return Err(invalid("`reasoning_effort` must be a string")),
        },
    };
    if let Some(thinking) = thinking {
        if forced {
            return Err(invalid(
                "`response_format` cannot be combined with thinking (`reasoning_effort`) on this model's provider",
            ));
        }
        out.insert("thinking".into(), thinking);
    }
    if let Some(cache_control) = req.get("cache_control").filter(|c| !c.is_null()) {
        out.insert("cache_control".into(), cache_control.clone());
    }
    Ok(())
}

/// `thinking` when it asks for thinking, with its budget (none for `adaptive`); `None` when absent
/// or disabled; a 400 when it is no thinking setting.
fn checked_thinking(thinking: Option<&Value>) -> Result<Option<(&Value, Option<u64>)>, TranslateError> {
    let Some(thinking) = thinking.filter(|t| !t.is_null()) else { return Ok(None) };
    match thinking.get("type").and_then(Value::as_str) {
        Some("disabled") => Ok(None),
        Some("adaptive") => Ok(Some((thinking, None))),
        Some("enabled") => match thinking.get("budget_tokens").and_then(Value::as_u64) {
            Some(budget) if budget >= MIN_BUDGET => Ok(Some((thinking, Some(budget)))),
            _ => Err(invalid(format!(
                "`thinking.budget_tokens` is required and must be at least {MIN_BUDGET}"
            ))),
        },
        _ => Err(invalid("`thinking.type` must be enabled, disabled or adaptive")),
    }
}

/// The reasoning effort nearest a thinking budget.
fn effort_of(budget: u64) -> &'static str {
    match budget {
        ..4096 => "low",
        4096..16384 => "medium",
        _ => "high",
    }
}
