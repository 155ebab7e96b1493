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
    model(request)?;
    if request.get("stream").is_some_and(|stream| !stream.is_boolean() && !stream.is_null()) {
        return Err(invalid("`stream` must be a boolean"));
    }
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
    user(request)?;
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

/// `model`: required, a non-empty string.
pub fn model(request: &Map<String, Value>) -> Result<(), ApiError> {
    match request.get("model") {
        Some(Value::String(model)) if !model.is_empty() => Ok(()),
        _ => Err(invalid("`model` is required and must be a string")),
    }
}

/// `user`: absent, or a string.
pub fn user(request: &Map<String, Value>) -> Result<(), ApiError> {
    match request.get("user") {
        None | Some(Value::Null | Value::String(_)) => Ok(()),
        Some(_) => Err(invalid("`user` must be a string")),
    }
}

/// An optional number within `min..=max`.
pub fn number(request: &Map<String, Value>, field: &str, min: f64, max: f64) -> Result<(), ApiError> {
    match request.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(value) => match value.as_f64() {
            Some(n) if (min..=max).contains(&n) => Ok(()),
            _ => Err(invalid(&format!("`{field}` must be a number from {min} to {max}"))),
        },
    }
}

/// An optional integer within `min..=max`, as u64 when it is not negative.
pub fn integer<T>(request: &Map<String, Value>, field: &str, min: T, max: T) -> Result<Option<u64>, ApiError>
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

    /// Input generation shared by the fuzz targets.
    #[allow(dead_code)]
    mod fuzz_json {
        include!("translate/anthropic/tests/fuzz_json.rs");
    }

    use bolero::{Driver, TypeGenerator};
    use fuzz_json::{Text, Vocabulary, below, document, number, one_in, pick, raw_input};

    use crate::chat_request::ChatRequest;
    use crate::usage::input_tokens_at_most;

    /// Real requests (the target's corpus), which generated ones start from.
    const SEEDS: [&str; 4] = [
        include_str!("__fuzz__/validate__tests__chat_request_bounds_output_tokens/corpus/openai-sdk.json"),
        include_str!(
            "__fuzz__/validate__tests__chat_request_bounds_output_tokens/corpus/tools-and-tool-results.json"
        ),
        include_str!(
            "__fuzz__/validate__tests__chat_request_bounds_output_tokens/corpus/multimodal-parts.json"
        ),
        include_str!(
            "__fuzz__/validate__tests__chat_request_bounds_output_tokens/corpus/from-anthropic-translation.json"
        ),
    ];

    /// The fields the gateway reads, and its numeric ones.
    #[rustfmt::skip]
    const FIELDS: [&str; 10] = [
        "max_tokens", "max_completion_tokens", "temperature", "top_p", "n", "seed", "presence_penalty",
        "frequency_penalty", "user", "stream",
    ];

    #[rustfmt::skip]
    const VOCABULARY: Vocabulary = Vocabulary {
        keys: &[
            "model", "messages", "role", "content", "max_tokens", "max_completion_tokens", "temperature",
            "top_p", "n", "seed", "user", "stream", "tools", "type", "text", "tool_calls", "image_url", "url",
        ],
        strings: &[
            "system", "developer", "user", "assistant", "tool", "function", "wizard", "gpt-4o", "text",
            "image_url", "hi", "",
        ],
    };

    /// A request body: a corpus file as it is, else an edited real request or a generated
    /// object, often with its numeric fields set to edge values.
    #[derive(Debug)]
    struct Request(Text);

    impl TypeGenerator for Request {
        fn generate<D: Driver>(d: &mut D) -> Option<Request> {
            let is_object = |bytes: &[u8]| serde_json::from_slice::<Map<String, Value>>(bytes).is_ok();
            if let Some(raw) = raw_input(d, is_object) {
                return Some(Request(Text(raw)));
            }
            let mut request = document(d, &VOCABULARY, &SEEDS)?;
            if one_in(d, 2)?
                && let Some(map) = request.as_object_mut()
            {
                for _ in 0..=below(d, 3)? {
                    let field = *pick(d, &FIELDS)?;
                    let value = if one_in(d, 8)? { Value::Null } else { number(d)? };
                    map.insert(field.into(), value);
                }
            }
            Some(Request(Text(request.to_string().into_bytes())))
        }
    }

    /// Whether `field` is absent or null, or passes `ok`.
    fn absent_or(request: &Map<String, Value>, field: &str, ok: impl Fn(&Value) -> bool) -> bool {
        request.get(field).is_none_or(|value| value.is_null() || ok(value))
    }

    /// Fuzz target: any request object is refused with a 400 naming the field, or passes with its
    /// messages and parameters as the checks promise and an output limit that is the request's
    /// own, within `1..=MAX_OUTPUT_TOKENS`; and what a budget reserves for it is never below the
    /// bytes of its text.
    #[test]
    fn fuzz_chat_request_bounds_output_tokens() {
        bolero::check!().with_type::<Request>().with_test_time(std::time::Duration::from_secs(1)).for_each(
            |request| {
                let Ok(Value::Object(request)) = serde_json::from_slice::<Value>(&request.0.0) else {
                    return;
                };
                match chat_request(&request) {
                    Ok(limit) => {
                        let typed = ChatRequest::parse(Value::Object(request.clone()))
                            .expect("a request that checks reads as a ChatRequest");
                        let messages = request["messages"].as_array().expect("`messages` is an array");
                        assert!(!messages.is_empty());
                        for message in messages {
                            let role = message.get("role").and_then(Value::as_str).unwrap_or_default();
                            assert!(ROLES.contains(&role), "{message}");
                            let content = message.get("content").unwrap_or(&Value::Null);
                            let parts = |parts: &Vec<Value>| parts.iter().all(Value::is_object);
                            assert!(
                                content.is_null()
                                    || content.is_string()
                                    || content.as_array().is_some_and(parts)
                            );
                        }
                        for (field, min, max) in [
                            ("temperature", 0.0, 2.0),
                            ("top_p", 0.0, 1.0),
                            ("presence_penalty", -2.0, 2.0),
                            ("frequency_penalty", -2.0, 2.0),
                        ] {
                            let within = |v: &Value| v.as_f64().is_some_and(|n| (min..=max).contains(&n));
                            assert!(absent_or(&request, field, within), "{field}");
                        }
                        assert!(absent_or(&request, "n", |n| n
                            .as_u64()
                            .is_some_and(|n| (1..=128).contains(&n))));
                        assert!(absent_or(&request, "seed", |n| n.is_i64() || n.is_u64()));
                        assert!(absent_or(&request, "user", Value::is_string));
                        let asked = ["max_completion_tokens", "max_tokens"]
                            .iter()
                            .find_map(|field| request.get(*field).and_then(Value::as_u64));
                        assert_eq!(limit, asked, "the limit is the request's own");
                        if let Some(limit) = limit {
                            assert!((1..=MAX_OUTPUT_TOKENS).contains(&limit), "{limit}");
                        }
                        // What a budget reserves is never below the bytes of the messages' text.
                        let text_bytes: u64 = messages
                            .iter()
                            .map(|message| match message.get("content") {
                                Some(Value::String(text)) => text.len() as u64,
                                Some(Value::Array(parts)) => parts
                                    .iter()
                                    .filter_map(|part| part.get("text")?.as_str())
                                    .map(|text| text.len() as u64)
                                    .sum(),
                                _ => 0,
                            })
                            .sum();
                        assert!(input_tokens_at_most(&typed) >= text_bytes);
                    }
                    Err(ApiError::BadRequest(message, Some("invalid_request"))) => {
                        assert!(message.starts_with('`'), "the message names the field: {message}");
                    }
                    Err(other) => panic!("not a 400 invalid_request: {other}"),
                }
            },
        );
    }
}
