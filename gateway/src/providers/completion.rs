//! A complete `chat.completion` (or a legacy `text_completion`, or an embeddings list, read for
//! its usage alone): which of its fields the gateway reads.

use serde::Deserialize;
use serde_json::Value;

use super::relayed::{self, Facts, Relayed, Shape};
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
    /// A legacy `text_completion`'s text (anything else there is no text).
    #[serde(default)]
    text: Option<Value>,
    #[serde(default)]
    finish_reason: Option<String>,
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
            .map(|choice| {
                let message = choice.message.as_ref().and_then(|m| m.content.as_ref()).map_or(0, text_len);
                message + choice.text.as_ref().and_then(Value::as_str).map_or(0, str::len)
            })
            .sum();
        let usage = fields.usage.as_ref().and_then(TokenUsage::from_openai);
        let finish_reason =
            fields.choices.first().and_then(|c| c.finish_reason.as_deref()).map(relayed::finish_reason);
        Ok(Facts { usage, content_len, usage_only: false, finish_reason })
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
        assert_eq!(completion.to_value().unwrap()["choices"][1]["index"], 1);
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

    /// Found by the fuzz target (its corpus keeps such inputs, `known-bug-*`): serde's derive skips
    /// the fields the gateway does not read without checking their text, and reads a struct from
    /// an array by position. `Relayed::parse` therefore refuses what is not UTF-8 or not a JSON
    /// object; what only a strict parser refuses (half a surrogate pair escaped, a number past
    /// `f64`, in a field the gateway does not read) is relayed as it came, and fails where its
    /// content is needed (`to_value`: translation, structured outputs, MCP, personas) instead of
    /// reading as `null`.
    #[test]
    fn replies_that_are_no_utf8_json_object_are_refused_and_lenient_json_fails_where_read() {
        for text in [
            &b"{\"id\":\"chatcmpl-\xad\",\"choices\":[{\"message\":{\"content\":\"hi\"}}]}"[..],
            &br#"[[{"message":{"content":"hi"}}],{"prompt_tokens":5,"completion_tokens":1}]"#[..],
            &b"[]"[..],
        ] {
            let refused = Completion::parse(Bytes::from_static(text)).err();
            assert!(matches!(refused, Some(UpstreamError::Protocol(_))), "{}", text.escape_ascii());
        }
        for text in [
            &br#"{"choices":[{"message":{"content":"hi","tool_calls":[{"function":{"arguments":"{\"a\":\"\ud83d\"}"}}]}}]}"#[..],
            &br#"{"id":2691e999,"choices":[{"message":{"content":"hi"}}]}"#[..],
        ] {
            let accepted = Completion::parse(Bytes::from_static(text)).unwrap();
            assert!(matches!(accepted.to_value(), Err(UpstreamError::Protocol(_))), "{}", text.escape_ascii());
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

    /// Real replies (the target's corpus), which generated ones start from.
    const SEEDS: [&str; 4] = [
        include_str!(
            "__fuzz__/providers__completion__tests__completion_facts_match_the_json/corpus/openai-completion.json"
        ),
        include_str!(
            "__fuzz__/providers__completion__tests__completion_facts_match_the_json/corpus/tool-calls.json"
        ),
        include_str!(
            "__fuzz__/providers__completion__tests__completion_facts_match_the_json/corpus/array-content-two-choices.json"
        ),
        include_str!(
            "__fuzz__/providers__completion__tests__completion_facts_match_the_json/corpus/anthropic-translated.json"
        ),
    ];

    #[rustfmt::skip]
    const VOCABULARY: Vocabulary = Vocabulary {
        keys: &[
            "id", "object", "created", "model", "choices", "index", "message", "role", "content", "refusal",
            "tool_calls", "function", "arguments", "finish_reason", "usage", "prompt_tokens",
            "completion_tokens", "total_tokens", "prompt_tokens_details", "cached_tokens",
            "cache_creation_input_tokens", "type", "text",
        ],
        strings: &[
            "chat.completion", "assistant", "stop", "", "Hello", "h\u{e9}llo \u{1F600}", "text", "image_url",
        ],
    };

    /// A reply body: a corpus file as it is, else a generated reply's text (sometimes garbled) or
    /// random bytes.
    #[derive(Debug)]
    struct Body(Text);

    impl TypeGenerator for Body {
        fn generate<D: Driver>(d: &mut D) -> Option<Body> {
            if let Some(raw) = raw_input(d, |bytes| !bytes.is_empty()) {
                return Some(Body(Text(raw)));
            }
            let text = match below(d, 2)? {
                0 => {
                    let payload = chat_payload(d, &VOCABULARY, "message")?;
                    text_of(d, &payload)?
                }
                _ => json_text(d, &VOCABULARY, &SEEDS)?,
            };
            Some(Body(Text(text)))
        }
    }

    /// The bytes of text in a message's content, as the gateway counts them.
    fn text_bytes(content: &Value) -> usize {
        match content {
            Value::String(text) => text.len(),
            Value::Array(parts) => {
                parts.iter().filter_map(|part| part.get("text")?.as_str()).map(str::len).sum()
            }
            _ => 0,
        }
    }

    /// Fuzz target: any body is refused as a protocol error or read as its JSON says: the text
    /// kept as it came, the content's length, and the usage (each count clamped, the prompt split).
    #[test]
    fn fuzz_completion_facts_match_the_json() {
        bolero::check!().with_type::<Body>().with_test_time(std::time::Duration::from_secs(1)).for_each(
            |body| {
                let text = &body.0.0;
                let value = serde_json::from_slice::<Value>(text);
                match Completion::parse(Bytes::copy_from_slice(text)) {
                    Ok(completion) => {
                        assert_eq!(completion.json().as_ref(), &text[..], "the text is kept as it came");
                        if let Some(usage) = completion.usage() {
                            assert_usage_bounded(usage);
                        }
                        if accepted_as_lenient_json(&value, "message") {
                            assert_eq!(completion.to_value().ok(), value.ok());
                            return;
                        }
                        let value = value.expect("a reply that parses is JSON");
                        let choices = value.get("choices").and_then(Value::as_array);
                        let content_len: usize = choices
                            .into_iter()
                            .flatten()
                            .map(|choice| {
                                let message = choice
                                    .get("message")
                                    .and_then(|m| m.get("content"))
                                    .map_or(0, text_bytes);
                                message + choice.get("text").and_then(Value::as_str).map_or(0, str::len)
                            })
                            .sum();
                        assert_eq!(completion.content_len(), content_len);
                        assert_eq!(completion.usage(), value.get("usage").and_then(TokenUsage::from_openai));
                        assert_eq!(completion.to_value().unwrap(), value);
                    }
                    Err(UpstreamError::Protocol(_)) => {}
                    Err(other) => panic!("unexpected kind of error: {other}"),
                }
            },
        );
    }
}
