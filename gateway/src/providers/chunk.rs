//! A streamed `chat.completion.chunk`: which of its fields the gateway reads.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::UpstreamError;
use super::relayed::{Facts, Relayed, Shape};
use crate::usage::TokenUsage;

/// One stream chunk, kept as the JSON text it arrived as.
pub type Chunk = Relayed<ChunkShape>;

/// The shape of a `chat.completion.chunk`.
#[derive(Debug)]
pub enum ChunkShape {}

/// The fields of a chunk the gateway reads; serde skips the rest without building them.
#[derive(Deserialize)]
struct Fields<'a> {
    #[serde(default, borrow)]
    choices: Option<Vec<Choice<'a>>>,
    #[serde(default)]
    usage: Option<Value>,
    #[serde(default)]
    error: Option<Value>,
}

#[derive(Deserialize)]
struct Choice<'a> {
    #[serde(default, borrow)]
    delta: Option<Delta<'a>>,
}

#[derive(Deserialize)]
struct Delta<'a> {
    #[serde(default, borrow)]
    content: Option<Cow<'a, str>>,
}

impl Shape for ChunkShape {
    /// Reads an upstream's `data:` payload; an `error` object sent mid-stream is the upstream
    /// failing, not a chunk.
    fn read(json: &[u8]) -> Result<Facts, UpstreamError> {
        let fields: Fields = serde_json::from_slice(json)
            .map_err(|e| UpstreamError::Protocol(format!("invalid stream chunk: {e}")))?;
        if let Some(error) = fields.error {
            let message = error.get("message").and_then(Value::as_str).unwrap_or("stream error").to_owned();
            return Err(UpstreamError::Status { status: 502, message, retry_after: None });
        }
        let choices = fields.choices.as_deref();
        let content_len = choices
            .unwrap_or_default()
            .iter()
            .filter_map(|choice| choice.delta.as_ref()?.content.as_deref())
            .map(str::len)
            .sum();
        let usage = fields.usage.as_ref().and_then(TokenUsage::from_openai);
        Ok(Facts { usage_only: choices.is_some_and(<[_]>::is_empty) && usage.is_some(), usage, content_len })
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;
    use serde_json::json;

    use super::*;

    #[test]
    fn content_and_usage_are_read_and_the_text_kept_as_it_came() {
        let text = r#"{"id":"c1","choices":[{"index":0,"delta":{"content":"h\u00e9llo"}},{"index":1,"delta":{"content":"ab"}}],"usage":null}"#;
        let chunk = Chunk::parse(Bytes::from_static(text.as_bytes())).unwrap();
        assert_eq!(chunk.json().as_ref(), text.as_bytes());
        assert_eq!(chunk.content_len(), "héllo".len() + 2);
        assert_eq!((chunk.usage(), chunk.is_usage_only()), (None, false));

        let last = json!({"choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 3,
                          "prompt_tokens_details": {"cached_tokens": 4}}});
        let chunk = Chunk::from_value(&last).unwrap();
        assert_eq!(chunk.usage(), Some(TokenUsage { input: 5, cached_input: 4, cache_write: 0, output: 3 }));
        assert!(chunk.is_usage_only());
        assert_eq!(chunk.to_value(), last);
    }

    #[test]
    fn error_objects_and_invalid_text_are_upstream_failures() {
        let error = Chunk::parse(Bytes::from_static(br#"{"error":{"message":"overloaded"}}"#)).unwrap_err();
        assert_eq!(error.to_string(), "HTTP 502: overloaded");
        let error = Chunk::parse(Bytes::from_static(b"{\"choices\":[")).unwrap_err();
        assert!(matches!(error, UpstreamError::Protocol(_)), "{error}");
        // `"error": null` is no error, and a role-only delta has no content.
        let chunk =
            Chunk::parse(Bytes::from_static(br#"{"error":null,"choices":[{"delta":{"role":"assistant"}}]}"#));
        assert_eq!(chunk.unwrap().content_len(), 0);
    }
}
