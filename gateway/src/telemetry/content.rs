//! Prompts and replies on the request's span, for routes that opt in
//! (`spec.telemetry.captureContent`): the GenAI conventions' `gen_ai.system_instructions`,
//! `gen_ai.input.messages` and `gen_ai.output.messages`, as JSON in the conventions' shape
//! (`[{"role", "parts": [{"type": "text", "content"}, ...]}]`), with the config's secrets and
//! credential-like text removed before anything is cut to size.

use opentelemetry::KeyValue;
use serde_json::{Value, json};

use crate::chat_request::ChatRequest;
use crate::redact::{Redactor, truncate_to};

/// The most one attribute holds, after redaction.
pub const MAX_CONTENT_BYTES: usize = 16 * 1024;
/// The most of a streamed reply's text kept before redaction; the last [`SECRET_MARGIN`] bytes of
/// a full buffer are dropped, so that a secret cut in two at the limit never leaves its start.
const MAX_STREAMED_BYTES: usize = 4 * MAX_CONTENT_BYTES;
const SECRET_MARGIN: usize = 4 * 1024;

/// What a request's span records of its content.
#[derive(Debug, Default)]
pub struct Content {
    system: Vec<Value>,
    input: Vec<Value>,
    /// A whole reply's message, or a stream's text as it came.
    output: Option<Value>,
    streamed: String,
    streamed_full: bool,
    finish_reason: Option<String>,
}

impl Content {
    /// The request's messages: system messages apart, the others as role and parts.
    pub fn of_request(request: &ChatRequest) -> Content {
        let mut content = Content::default();
        for message in &request.messages {
            let role = message.role.as_str();
            let parts = parts(&serde_json::to_value(message).unwrap_or_default());
            if matches!(role, "system" | "developer") {
                content.system.extend(parts.as_array().into_iter().flatten().cloned());
            } else {
                content.input.push(json!({"role": role, "parts": parts}));
            }
        }
        content
    }

    /// A whole reply (`chat.completion`).
    pub fn complete(&mut self, reply: &Value) {
        let choice = reply.pointer("/choices/0");
        self.output = choice.and_then(|c| c.get("message")).map(parts);
        self.finish_reason =
            choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str).map(str::to_owned);
    }

    /// A stream chunk: its text is appended, up to a bound.
    pub fn chunk(&mut self, chunk: &Value) {
        let choice = chunk.pointer("/choices/0");
        if let Some(reason) = choice.and_then(|c| c.get("finish_reason")).and_then(Value::as_str) {
            self.finish_reason = Some(reason.to_owned());
        }
        let Some(text) = choice.and_then(|c| c.pointer("/delta/content")).and_then(Value::as_str) else {
            return;
        };
        if self.streamed_full {
            return;
        }
        self.streamed.push_str(text);
        if self.streamed.len() > MAX_STREAMED_BYTES {
            truncate_to(&mut self.streamed, MAX_STREAMED_BYTES - SECRET_MARGIN);
            self.streamed_full = true;
        }
    }

    /// The span attributes, redacted then cut to [`MAX_CONTENT_BYTES`] each.
    pub fn attributes(self, redactor: &Redactor) -> Vec<KeyValue> {
        let attribute = |key: &'static str, value: &Value| {
            KeyValue::new(key, redactor.content(&value.to_string(), MAX_CONTENT_BYTES))
        };
        let mut attributes = vec![attribute("gen_ai.input.messages", &Value::from(self.input))];
        if !self.system.is_empty() {
            attributes.push(attribute("gen_ai.system_instructions", &Value::from(self.system)));
        }
        let parts = match (self.output, self.streamed.is_empty()) {
            (Some(parts), _) => Some(parts),
            (None, false) => Some(json!([{"type": "text", "content": self.streamed}])),
            (None, true) => None,
        };
        if let Some(parts) = parts {
            let message = json!([{"role": "assistant", "parts": parts, "finish_reason": self.finish_reason}]);
            attributes.push(attribute("gen_ai.output.messages", &message));
        }
        attributes
    }
}

/// A message's text, tool calls and tool result as the conventions' parts.
fn parts(message: &Value) -> Value {
    let mut parts = Vec::new();
    match message.get("content") {
        Some(Value::String(text)) => parts.push(json!({"type": "text", "content": text})),
        Some(Value::Array(items)) => {
            for item in items {
                match item.get("text").and_then(Value::as_str) {
                    Some(text) => parts.push(json!({"type": "text", "content": text})),
                    // Images, audio, files: their kind, never their bytes.
                    None => parts.push(json!({"type": item.get("type").cloned().unwrap_or(Value::Null)})),
                }
            }
        }
        _ => {}
    }
    if let Some(id) = message.get("tool_call_id") {
        parts = vec![json!({"type": "tool_call_response", "id": id, "response": message.get("content")})];
    }
    for call in message.get("tool_calls").and_then(Value::as_array).into_iter().flatten() {
        parts.push(json!({
            "type": "tool_call",
            "id": call.get("id"),
            "name": call.pointer("/function/name"),
            "arguments": call.pointer("/function/arguments"),
        }));
    }
    Value::Array(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "sk-live-0123456789abcdef";

    fn redactor() -> Redactor {
        Redactor::new([SECRET.as_bytes()])
    }

    fn value(attributes: &[KeyValue], key: &str) -> Value {
        let found = attributes.iter().find(|kv| kv.key.as_str() == key).unwrap();
        serde_json::from_str(&found.value.as_str()).unwrap()
    }

    #[test]
    fn messages_are_recorded_in_the_conventions_shape_without_secrets() {
        let request = json!({"model": "m", "messages": [
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": format!("my key is {SECRET}")},
                                         {"type": "image_url", "image_url": {"url": "data:..."}}]},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "42"},
        ]});
        let mut content = Content::of_request(&ChatRequest::parse(request).unwrap());
        content.complete(&json!({"choices": [{"message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}]}));
        let attributes = content.attributes(&redactor());
        let text = format!("{attributes:?}");
        assert!(!text.contains(SECRET) && text.contains("[REDACTED]"), "{text}");
        assert!(!text.contains("data:..."), "no media bytes");
        assert_eq!(
            value(&attributes, "gen_ai.system_instructions"),
            json!([{"type": "text", "content": "Be brief."}])
        );
        let input = value(&attributes, "gen_ai.input.messages");
        assert_eq!(input[0]["parts"][1], json!({"type": "image_url"}));
        assert_eq!(input[1]["parts"][0]["type"], "tool_call");
        assert_eq!(input[2]["parts"][0], json!({"type": "tool_call_response", "id": "c1", "response": "42"}));
        let output = value(&attributes, "gen_ai.output.messages");
        assert_eq!(
            output,
            json!([{"role": "assistant", "parts": [{"type": "text", "content": "ok"}], "finish_reason": "stop"}])
        );
    }

    #[test]
    fn a_long_stream_is_bounded_and_never_leaves_a_secret_cut_in_two() {
        let mut content = Content::default();
        let chunk = |text: &str| json!({"choices": [{"delta": {"content": text}}]});
        // The secret straddles the bound: its start must not survive.
        content.chunk(&chunk(&"x".repeat(MAX_STREAMED_BYTES - 10)));
        content.chunk(&chunk(SECRET));
        content.chunk(&chunk("more"));
        assert!(content.streamed.len() <= MAX_STREAMED_BYTES - SECRET_MARGIN);
        let output = content.attributes(&redactor());
        let text =
            output.iter().find(|kv| kv.key.as_str() == "gen_ai.output.messages").unwrap().value.as_str();
        assert!(text.len() <= MAX_CONTENT_BYTES);
        assert!(!text.contains("sk-live"));
    }
}
