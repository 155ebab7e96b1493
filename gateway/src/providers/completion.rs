//! A complete `chat.completion`: which of its fields the gateway reads.

use serde::Deserialize;
use serde_json::Value;

use super::relayed::{Facts, Relayed, Shape};
use super::{UpstreamError, text_len};
use crate::usage::TokenUsage;

/// A complete (non-streamed) reply, kept as the JSON text it arrived as.
pub type Completion = Relayed<CompletionShape>;

/// The shape of a `chat.completion`.
#[derive(Debug)]
pub enum CompletionShape {}

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

impl Shape for CompletionShape {
    /// Reads an upstream's response body, which must be a JSON object.
    fn read(json: &[u8]) -> Result<Facts, UpstreamError> {
        let fields: Fields = serde_json::from_slice(json)
            .map_err(|e| UpstreamError::Protocol(format!("invalid response body: {e}")))?;
        let content_len = fields
            .choices
            .iter()
            .filter_map(|choice| choice.message.as_ref()?.content.as_ref())
            .map(text_len)
            .sum();
        let usage = fields.usage.as_ref().and_then(TokenUsage::from_openai);
        Ok(Facts { usage, content_len, usage_only: false })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
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
