//! One complete `chat.completion`, kept as the JSON text it arrived as.
//!
//! The non-streaming counterpart of [`super::Chunk`]: an OpenAI client gets the upstream's bytes
//! as they came, and the gateway reads what it meters (usage, the length of the content) with
//! one parse that skips everything else. Building the reply as a [`Value`], serialising it again
//! and dropping it was the largest share of the gateway's own work on a plain request; the paths
//! that need a value (translation to `/v1/messages`, structured-output checks, MCP, personas)
//! build one with [`Completion::to_value`].

use bytes::Bytes;
use serde::Deserialize;
use serde_json::Value;

use super::{UpstreamError, text_len};
use crate::usage::TokenUsage;

/// A complete reply, with what the gateway reads from it.
#[derive(Clone, Debug)]
pub struct Completion {
    json: Bytes,
    usage: Option<TokenUsage>,
    content_len: usize,
}

/// The fields of a reply the gateway reads; serde skips the rest without building them.
#[derive(Deserialize)]
struct Fields {
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<Value>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    message: Option<Message>,
}

#[derive(Deserialize)]
struct Message {
    #[serde(default)]
    content: Option<Value>,
}

impl Completion {
    /// Reads an upstream's response body, which must be a JSON object.
    pub fn parse(json: Bytes) -> Result<Completion, UpstreamError> {
        let fields: Fields = serde_json::from_slice(&json)
            .map_err(|e| UpstreamError::Protocol(format!("invalid response body: {e}")))?;
        let content_len = fields
            .choices
            .iter()
            .filter_map(|choice| choice.message.as_ref()?.content.as_ref())
            .map(text_len)
            .sum();
        let usage = fields.usage.as_ref().and_then(TokenUsage::from_openai);
        Ok(Completion { json, usage, content_len })
    }

    /// A reply the gateway made (a translation, the mock provider).
    pub fn from_value(value: &Value) -> Result<Completion, UpstreamError> {
        Completion::parse(Bytes::from(value.to_string()))
    }

    /// The reply's JSON text, as the upstream sent it.
    pub fn json(&self) -> &Bytes {
        &self.json
    }

    /// The reply as a JSON value, for the paths that read or translate it.
    pub fn to_value(&self) -> Value {
        // `parse` accepted the text, so it is valid JSON.
        serde_json::from_slice(&self.json).unwrap_or(Value::Null)
    }

    /// The usage the provider reported.
    pub fn usage(&self) -> Option<TokenUsage> {
        self.usage
    }

    /// Bytes of content text over the reply's choices.
    pub fn content_len(&self) -> usize {
        self.content_len
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn usage_and_content_are_read_and_the_text_kept_as_it_came() {
        let text = r#"{"id":"c1","choices":[{"index":0,"message":{"role":"assistant","content":"h\u00e9llo"}},
            {"index":1,"message":{"content":[{"type":"text","text":"ab"}]}}],
            "usage":{"prompt_tokens":9,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":4}}}"#;
        let completion = Completion::parse(Bytes::from_static(text.as_bytes())).unwrap();
        assert_eq!(completion.json().as_ref(), text.as_bytes());
        assert_eq!(completion.content_len(), "héllo".len() + 2);
        assert_eq!(
            completion.usage(),
            Some(TokenUsage { input: 5, cached_input: 4, cache_write: 0, output: 3 })
        );
        assert_eq!(completion.to_value()["choices"][1]["index"], 1);
    }

    #[test]
    fn a_reply_without_usage_or_content_still_parses() {
        let completion = Completion::from_value(&json!({"choices": [{"message": {"content": null,
            "tool_calls": [{"id": "t1"}]}}], "usage": null}))
        .unwrap();
        assert_eq!((completion.usage(), completion.content_len()), (None, 0));
    }

    #[test]
    fn a_body_that_is_no_json_object_is_a_protocol_error() {
        for body in [&b"<html>502</html>"[..], b"[1,2]", b"{\"choices\":"] {
            let error = Completion::parse(Bytes::from_static(body)).unwrap_err();
            assert!(matches!(error, UpstreamError::Protocol(_)), "{error}");
        }
    }
}
