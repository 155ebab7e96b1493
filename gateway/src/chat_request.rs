//! The gateway's canonical request: an OpenAI Chat Completions request, with the fields the
//! gateway reads typed and every other field kept as the client sent it (`rest`, passed through
//! to same-format upstreams unchanged). Every API's request becomes one (Messages after
//! translation, the MCP `chat` tool, persona memory extraction), is checked once
//! ([`ChatRequest::parse`]), and from then on is read and changed through its fields, not by
//! looking up strings in a JSON tree.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::ApiError;
use crate::validate;

/// A checked OpenAI-form chat request.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    /// The model asked for (a persona's `persona:<name>` until the persona is resolved).
    pub model: String,
    pub messages: Vec<Message>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u64>,
    /// The end user, as the client names them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Every other field, as sent.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

/// A request that does not check: why, and the model it named (for its request log row).
#[derive(Debug)]
pub struct Invalid {
    pub error: ApiError,
    pub model: Option<String>,
}

impl Invalid {
    /// `error`, for the request `body`.
    pub fn of(body: &Value, error: ApiError) -> Invalid {
        Invalid { error, model: body.get("model").and_then(Value::as_str).map(str::to_owned) }
    }
}

/// The fields of a request body, which must be a JSON object naming a model.
pub fn fields_of(body: &Value) -> Result<&Map<String, Value>, Invalid> {
    let fields = body.as_object().ok_or_else(|| {
        Invalid::of(
            body,
            ApiError::BadRequest("request body must be a JSON object".into(), Some("invalid_json")),
        )
    })?;
    validate::model(fields).map_err(|error| Invalid::of(body, error))?;
    Ok(fields)
}

/// One message of the conversation.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    /// `None` when absent or `null` (an assistant's tool calls).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<Content>,
    /// `name`, `tool_calls`, `tool_call_id`, ..., as sent.
    #[serde(flatten)]
    pub rest: Map<String, Value>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    System,
    Developer,
    User,
    Assistant,
    Tool,
    Function,
}

/// A message's content: text, or parts (`{"type": "text", "text": ...}`, images, audio, ...).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Content {
    Text(String),
    Parts(Vec<Value>),
}

impl ChatRequest {
    /// Checks a request body (a JSON object) and reads it: a 400 naming the field for anything
    /// the gateway reads or an upstream would choke on ([`validate`]).
    pub fn parse(body: Value) -> Result<ChatRequest, Invalid> {
        let invalid = |error, body: &Value| {
            let model = body.get("model").and_then(Value::as_str).map(str::to_owned);
            Invalid { error, model }
        };
        let Some(fields) = body.as_object() else {
            let error =
                ApiError::BadRequest("request body must be a JSON object".into(), Some("invalid_json"));
            return Err(invalid(error, &body));
        };
        if let Err(error) = validate::chat_request(fields) {
            return Err(invalid(error, &body));
        }
        serde_json::from_value(body).map_err(|e| Invalid {
            error: ApiError::BadRequest(format!("invalid request: {e}"), Some("invalid_request")),
            model: None,
        })
    }

    /// A field the gateway does not read typed.
    pub fn field(&self, name: &str) -> Option<&Value> {
        self.rest.get(name).filter(|value| !value.is_null())
    }

    pub fn stream(&self) -> bool {
        self.stream == Some(true)
    }

    /// The output tokens the client asked for at most, if it said.
    pub fn asked_output(&self) -> Option<u64> {
        self.max_completion_tokens.or(self.max_tokens)
    }

    /// Whether the client asked for the usage chunk of a stream (`stream_options.include_usage`).
    pub fn include_usage(&self) -> bool {
        self.field("stream_options").and_then(|o| o.get("include_usage")).and_then(Value::as_bool)
            == Some(true)
    }

    /// The text of the last user message, its text parts on lines of their own ("" when there
    /// is none).
    pub fn last_user_text(&self) -> String {
        let last = self.messages.iter().rev().find(|m| m.role == Role::User);
        last.map(|m| m.texts().collect::<Vec<_>>().join("\n")).unwrap_or_default()
    }

    /// The request as a JSON object, for the paths that translate it.
    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).unwrap_or_default()
    }
}

impl Message {
    pub fn new(role: Role, text: impl Into<String>) -> Message {
        Message { role, content: Some(Content::Text(text.into())), rest: Map::new() }
    }

    /// The message's text: its string content, or the `text` of each text part.
    pub fn texts(&self) -> impl Iterator<Item = &str> {
        let (whole, parts) = match &self.content {
            Some(Content::Text(text)) => (Some(text.as_str()), &[][..]),
            Some(Content::Parts(parts)) => (None, parts.as_slice()),
            None => (None, &[][..]),
        };
        whole.into_iter().chain(parts.iter().filter_map(|part| part.get("text").and_then(Value::as_str)))
    }

    /// The same text, to change in place (guardrails' redaction).
    pub fn texts_mut(&mut self) -> impl Iterator<Item = &mut String> {
        let (whole, parts) = match &mut self.content {
            Some(Content::Text(text)) => (Some(text), &mut [][..]),
            Some(Content::Parts(parts)) => (None, parts.as_mut_slice()),
            None => (None, &mut [][..]),
        };
        let parts = parts.iter_mut().filter_map(|part| match part.get_mut("text") {
            Some(Value::String(text)) => Some(text),
            _ => None,
        });
        whole.into_iter().chain(parts)
    }

    /// Bytes of text, without copying it (for usage estimates).
    pub fn text_len(&self) -> usize {
        self.texts().map(str::len).sum()
    }
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::System => "system",
            Role::Developer => "developer",
            Role::User => "user",
            Role::Assistant => "assistant",
            Role::Tool => "tool",
            Role::Function => "function",
        }
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn known_fields_are_typed_and_the_others_kept_as_sent() {
        let body = json!({
            "model": "m", "stream": true, "max_tokens": 9, "user": "u-1", "temperature": 0.5,
            "stream_options": {"include_usage": true}, "tools": [{"type": "function"}],
            "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "hi"}, {"type": "image_url", "image_url": {"url": "x"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{"id": "t1"}]},
            ],
        });
        let request = ChatRequest::parse(body.clone()).unwrap();
        assert!(request.stream() && request.include_usage());
        assert_eq!(request.asked_output(), Some(9));
        assert_eq!(request.messages[1].texts().collect::<Vec<_>>(), ["hi"]);
        assert_eq!(request.messages[2].content, None);
        assert_eq!(request.field("temperature"), Some(&json!(0.5)));
        assert_eq!(request.last_user_text(), "hi");
        // Back to JSON: the same request, but for the `null` content the client may leave out.
        let mut expected = body;
        expected["messages"][2].as_object_mut().unwrap().remove("content");
        assert_eq!(request.to_value(), expected);
    }

    #[test]
    fn what_does_not_check_is_a_400_naming_the_field() {
        let bad = [
            (json!({"model": "m", "messages": [{"role": "robot", "content": "x"}]}), "messages[0]"),
            (json!({"model": "m", "messages": []}), "messages"),
            (
                json!({"model": "m", "stream": "yes", "messages": [{"role": "user", "content": "x"}]}),
                "stream",
            ),
            (json!({"messages": [{"role": "user", "content": "x"}]}), "model"),
            (
                json!({"model": "m", "max_tokens": -1, "messages": [{"role": "user", "content": "x"}]}),
                "max_tokens",
            ),
        ];
        for (body, field) in bad {
            let error = ChatRequest::parse(body.clone()).unwrap_err().error;
            assert_eq!(error.status(), 400, "{body}");
            assert!(error.to_string().contains(field), "{body}: {error}");
        }
    }
}
