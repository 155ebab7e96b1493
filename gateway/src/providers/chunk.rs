//! A streamed `chat.completion.chunk` (or a legacy `text_completion` chunk): which of its fields
//! the gateway reads.

use std::borrow::Cow;

use serde::Deserialize;
use serde_json::Value;

use super::UpstreamError;
use super::relayed::{self, Facts, Relayed, Shape};
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
    /// A legacy `text_completion` chunk's text (anything else there is no text).
    #[serde(default)]
    text: Option<Value>,
    #[serde(default, borrow)]
    finish_reason: Option<Cow<'a, str>>,
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
            .map(|choice| {
                let delta = choice.delta.as_ref().and_then(|delta| delta.content.as_deref());
                delta.map_or(0, str::len) + choice.text.as_ref().and_then(Value::as_str).map_or(0, str::len)
            })
            .sum();
        let usage = fields.usage.as_ref().and_then(TokenUsage::from_openai);
        let finish_reason = choices
            .and_then(<[_]>::first)
            .and_then(|c| c.finish_reason.as_deref())
            .map(relayed::finish_reason);
        let usage_only = choices.is_some_and(<[_]>::is_empty) && usage.is_some();
        Ok(Facts { usage_only, usage, content_len, finish_reason })
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
        assert_eq!(chunk.to_value().unwrap(), last);
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

    /// Found by the fuzz target (its corpus keeps such inputs, `known-bug-*`): serde's derive skips
    /// the fields the gateway does not read without checking their text, and reads a struct from
    /// an array by position. `Relayed::parse` therefore refuses what is not UTF-8 or not a JSON
    /// object; what only a strict parser refuses (half a surrogate pair escaped, a number past
    /// `f64`, in a field the gateway does not read) is relayed as it came, and fails where its
    /// content is needed (`to_value`: translation, structured outputs, MCP, personas) instead of
    /// reading as `null`.
    #[test]
    fn chunks_that_are_no_utf8_json_object_are_refused_and_lenient_json_fails_where_read() {
        for text in [
            &b"{\"model\":\"gpt-\x983.5\",\"choices\":[{\"delta\":{\"content\":\"hi\"}}]}"[..],
            &br#"[[{"delta":{"content":"hi"}}],{"prompt_tokens":5,"completion_tokens":1}]"#[..],
            &b"[]"[..],
        ] {
            let refused = Chunk::parse(Bytes::from_static(text)).err();
            assert!(matches!(refused, Some(UpstreamError::Protocol(_))), "{}", text.escape_ascii());
        }
        for text in [
            &br#"{"id":"\ud800","choices":[{"delta":{"content":"hi"}}]}"#[..],
            &br#"{"created":1e999,"choices":[{"delta":{"content":"hi"}}]}"#[..],
        ] {
            let accepted = Chunk::parse(Bytes::from_static(text)).unwrap();
            assert!(
                matches!(accepted.to_value(), Err(UpstreamError::Protocol(_))),
                "{}",
                text.escape_ascii()
            );
        }
    }

    /// Input generation shared by the fuzz targets.
    #[allow(dead_code)]
    mod fuzz_json {
        include!("../translate/anthropic/tests/fuzz_json.rs");
    }

    use bolero::{Driver, TypeGenerator};
    use fuzz_json::{
        Text, Vocabulary, accepted_as_lenient_json, assert_usage_bounded, below, chat_payload, json_text,
        raw_input, text_of,
    };

    /// Real chunks (the target's corpus), which generated ones start from.
    const SEEDS: [&str; 6] = [
        include_str!("__fuzz__/providers__chunk__tests__chunk_facts_match_the_json/corpus/openai-role.json"),
        include_str!(
            "__fuzz__/providers__chunk__tests__chunk_facts_match_the_json/corpus/openai-content.json"
        ),
        include_str!(
            "__fuzz__/providers__chunk__tests__chunk_facts_match_the_json/corpus/openai-tool-call.json"
        ),
        include_str!("__fuzz__/providers__chunk__tests__chunk_facts_match_the_json/corpus/openai-usage.json"),
        include_str!(
            "__fuzz__/providers__chunk__tests__chunk_facts_match_the_json/corpus/llamacpp-final.json"
        ),
        include_str!(
            "__fuzz__/providers__chunk__tests__chunk_facts_match_the_json/corpus/error-midstream.json"
        ),
    ];

    #[rustfmt::skip]
    const VOCABULARY: Vocabulary = Vocabulary {
        keys: &[
            "id", "object", "created", "model", "choices", "index", "delta", "message", "role", "content",
            "refusal", "tool_calls", "function", "arguments", "finish_reason", "usage", "prompt_tokens",
            "completion_tokens", "total_tokens", "prompt_tokens_details", "cached_tokens",
            "cache_creation_input_tokens", "error", "type", "text",
        ],
        strings: &[
            "chat.completion.chunk", "assistant", "stop", "", "Hello", "h\u{e9}llo \u{1F600}", "text",
            "overloaded",
        ],
    };

    /// A `data:` payload: a corpus file as it is, else a generated chunk's text (sometimes
    /// garbled) or random bytes.
    #[derive(Debug)]
    struct Payload(Text);

    impl TypeGenerator for Payload {
        fn generate<D: Driver>(d: &mut D) -> Option<Payload> {
            if let Some(raw) = raw_input(d, |bytes| !bytes.is_empty()) {
                return Some(Payload(Text(raw)));
            }
            let text = match below(d, 2)? {
                0 => {
                    let payload = chat_payload(d, &VOCABULARY, "delta")?;
                    text_of(d, &payload)?
                }
                _ => json_text(d, &VOCABULARY, &SEEDS)?,
            };
            Some(Payload(Text(text)))
        }
    }

    /// Fuzz target: any payload is refused (a protocol error, or a 502 for an `error` object) or
    /// read as its JSON says: the text kept as it came, the content's length, the usage (each count
    /// clamped, the prompt split, not added to), and whether it is the final usage chunk.
    #[test]
    fn fuzz_chunk_facts_match_the_json() {
        bolero::check!().with_type::<Payload>().with_test_time(std::time::Duration::from_secs(1)).for_each(
            |payload| {
                let text = &payload.0.0;
                let value = serde_json::from_slice::<Value>(text);
                match Chunk::parse(Bytes::copy_from_slice(text)) {
                    Ok(chunk) => {
                        assert_eq!(chunk.json().as_ref(), &text[..], "the text is kept as it came");
                        if let Some(usage) = chunk.usage() {
                            assert_usage_bounded(usage);
                        }
                        if accepted_as_lenient_json(&value, "delta") {
                            assert_eq!(chunk.to_value().ok(), value.ok());
                            return;
                        }
                        let value = value.expect("a chunk that parses is JSON");
                        assert!(
                            value.get("error").is_none_or(Value::is_null),
                            "an error object read as a chunk"
                        );
                        let choices = value.get("choices").and_then(Value::as_array);
                        let content_len: usize = choices
                            .into_iter()
                            .flatten()
                            .map(|choice| {
                                let delta = choice
                                    .get("delta")
                                    .and_then(|d| d.get("content"))
                                    .and_then(Value::as_str);
                                delta.map_or(0, str::len)
                                    + choice.get("text").and_then(Value::as_str).map_or(0, str::len)
                            })
                            .sum();
                        assert_eq!(chunk.content_len(), content_len);
                        assert_eq!(chunk.usage(), value.get("usage").and_then(TokenUsage::from_openai));
                        assert_eq!(
                            chunk.is_usage_only(),
                            choices.is_some_and(Vec::is_empty) && chunk.usage().is_some()
                        );
                        assert_eq!(chunk.to_value().unwrap(), value);
                    }
                    Err(UpstreamError::Status { status, message, .. }) => {
                        assert_eq!(status, 502);
                        if accepted_as_lenient_json(&value, "delta") {
                            return;
                        }
                        let value = value.expect("an error chunk is JSON");
                        let error = value.get("error").filter(|error| !error.is_null());
                        let error = error.expect("a failure without an error object");
                        assert_eq!(
                            message,
                            error.get("message").and_then(Value::as_str).unwrap_or("stream error")
                        );
                    }
                    Err(UpstreamError::Protocol(_)) => {}
                    Err(other) => panic!("unexpected kind of error: {other}"),
                }
            },
        );
    }
}
