//! The checks every OpenAI-form chat request passes before it is admitted, whichever API it
//! came through (`/v1/chat/completions`, `/v1/messages` after translation, MCP, personas): the
//! fields the gateway reads or an upstream would choke on, with their types and ranges, so that a
//! bad request gets a 400 naming the field instead of an upstream error, a panic or a limit it can
//! never meet.

use serde_json::{Map, Value};

use crate::error::ApiError;

/// The most output tokens a request may ask for. Far above any model's limit (the largest are
/// around 128k), and low enough that every sum and price computed from it fits in 64 bits.
pub const MAX_OUTPUT_TOKENS: u64 = 1 << 24;

/// Roles a chat message may have.
const ROLES: [&str; 6] = ["system", "developer", "user", "assistant", "tool", "function"];

/// Checks `request`; returns the output tokens it asks for at most, if it says.
pub fn chat_request(request: &Map<String, Value>) -> Result<Option<u64>, ApiError> {
    let messages = match request.get("messages") {
        Some(Value::Array(messages)) if !messages.is_empty() => messages,
        _ => return Err(invalid("`messages` must be a non-empty array")),
    };
    for (i, message) in messages.iter().enumerate() {
        message_ok(message).map_err(|problem| invalid(&format!("`messages[{i}]` {problem}")))?;
    }
    number(request, "temperature", 0.0, 2.0)?;
    number(request, "top_p", 0.0, 1.0)?;
    number(request, "presence_penalty", -2.0, 2.0)?;
    number(request, "frequency_penalty", -2.0, 2.0)?;
    integer(request, "n", 1, 128)?;
    integer(request, "seed", i64::MIN, i64::MAX)?;
    if request.get("user").is_some_and(|user| !user.is_string() && !user.is_null()) {
        return Err(invalid("`user` must be a string"));
    }
    let completion = integer(request, "max_completion_tokens", 1, MAX_OUTPUT_TOKENS)?;
    let tokens = integer(request, "max_tokens", 1, MAX_OUTPUT_TOKENS)?;
    Ok(completion.or(tokens))
}

fn message_ok(message: &Value) -> Result<(), String> {
    let Some(message) = message.as_object() else {
        return Err("must be an object with a `role`".into());
    };
    match message.get("role").and_then(Value::as_str) {
        Some(role) if ROLES.contains(&role) => {}
        Some(role) => return Err(format!("has an unknown role {role:?}; expected one of {ROLES:?}")),
        None => return Err("needs a `role` string".into()),
    }
    match message.get("content") {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(Value::Array(parts)) if parts.iter().all(Value::is_object) => Ok(()),
        Some(_) => Err("has a `content` that is neither a string nor an array of parts".into()),
    }
}

/// An optional number within `min..=max`.
fn number(request: &Map<String, Value>, field: &str, min: f64, max: f64) -> Result<(), ApiError> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(value) => match value.as_f64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(invalid(&format!("`{field}` must be a number from {min} to {max}"))),
        },
    }
}

/// An optional integer within `min..=max`, as u64 when it is not negative.
fn integer<T>(request: &Map<String, Value>, field: &str, min: T, max: T) -> Result<Option<u64>, ApiError>
where
    T: Into<i128> + Copy + std::fmt::Display,
{
    let Some(value) = request.get(field).filter(|value| !value.is_null()) else { return Ok(None) };
    let n = value.as_i64().map(i128::from).or_else(|| value.as_u64().map(i128::from));
    match n {
        Some(n) if (min.into()..=max.into()).contains(&n) => Ok(u64::try_from(n).ok()),
        _ => Err(invalid(&format!("`{field}` must be an integer from {min} to {max}"))),
    }
}

fn invalid(message: &str) -> ApiError {
    ApiError::BadRequest(message.to_owned(), Some("invalid_request"))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn check(request: Value) -> Result<Option<u64>, String> {
        chat_request(request.as_object().unwrap()).map_err(|e| e.to_string())
    }

    fn with(field: &str, value: Value) -> Value {
        let mut request = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        request[field] = value;
        request
    }

    #[test]
    fn output_limits_are_integers_in_range() {
        assert_eq!(check(with("max_tokens", json!(100))), Ok(Some(100)));
        assert_eq!(
            check(with("max_completion_tokens", json!(MAX_OUTPUT_TOKENS))),
            Ok(Some(MAX_OUTPUT_TOKENS))
        );
        for bad in
            [json!(u64::MAX), json!(-1), json!(0), json!(1.5), json!("10"), json!(MAX_OUTPUT_TOKENS + 1)]
        {
            for field in ["max_tokens", "max_completion_tokens"] {
                let error = check(with(field, bad.clone())).unwrap_err();
                assert!(error.contains(field), "{field} = {bad}: {error}");
            }
        }
    }

    #[test]
    fn messages_need_objects_with_a_known_role_and_text_or_parts() {
        for bad in [
            json!([null]),
            json!([{"content": "no role"}]),
            json!([{"role": "wizard", "content": "x"}]),
            json!([{"role": "user", "content": 5}]),
            json!([{"role": "user", "content": ["not a part"]}]),
            json!([]),
            json!("hi"),
        ] {
            assert!(check(with("messages", bad.clone())).is_err(), "{bad}");
        }
        let good = json!([{"role": "system", "content": "s"}, {"role": "user", "content": [{"type": "text", "text": "x"}]},
                          {"role": "assistant", "content": null, "tool_calls": []}, {"role": "tool", "content": "r"}]);
        assert_eq!(check(with("messages", good)), Ok(None));
    }

    #[test]
    fn sampling_parameters_are_numbers_in_range() {
        assert!(check(with("temperature", json!("hot"))).unwrap_err().contains("temperature"));
        assert!(check(with("temperature", json!(2.5))).is_err());
        assert!(check(with("top_p", json!(-0.1))).is_err());
        assert!(check(with("n", json!(0))).is_err());
        assert!(check(with("user", json!(7))).is_err());
        assert_eq!(check(with("temperature", json!(0))), Ok(None));
        assert_eq!(check(with("seed", json!(-3))), Ok(None));
    }
}
