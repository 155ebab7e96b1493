//! Deterministic reply text and token accounting shared by both APIs.
//!
//! Everything here is a pure function of the request so that tests elsewhere (gateway usage
//! ledgers, budget checks, SDK tests) can compute the expected numbers by hand. The formulas are
//! documented on the crate root; keep the two in sync.

use axum::http::HeaderMap;
use serde_json::Value;

/// Prefix of every normal reply; the rest is the text of the last user message.
pub(crate) const REPLY_PREFIX: &str = "fake-upstream reply to: ";
/// Tokens added per message (and for a present Anthropic `system`), like real chat templates do.
pub(crate) const PER_MESSAGE_TOKENS: u64 = 3;
/// Request header giving the number of cached prompt tokens to report.
pub(crate) const CACHED_TOKENS_HEADER: &str = "x-fake-cached-tokens";
/// Request header giving the number of cache-write tokens to report (Anthropic only).
pub(crate) const CACHE_WRITE_TOKENS_HEADER: &str = "x-fake-cache-write-tokens";

/// Token count of `s`: the number of whitespace-separated words.
pub(crate) fn tokens(s: &str) -> u64 {
    s.split_whitespace().count() as u64
}

/// Text of a message `content` (or Anthropic `system`): a string as is, or the `text` of every
/// part of an array joined with one space. Anything else (null, images, tool calls) has no text.
pub(crate) fn content_text(content: &Value) -> String {
    match content {
        Value::String(s) => s.clone(),
        Value::Array(parts) => {
            let texts: Vec<&str> = parts
                .iter()
                .filter_map(|part| match part {
                    Value::String(s) => Some(s.as_str()),
                    other => other.get("text").and_then(Value::as_str),
                })
                .collect();
            texts.join(" ")
        }
        _ => String::new(),
    }
}

/// Text of the last message whose role is `user` ("" when there is none).
pub(crate) fn last_user_text(messages: &[Value]) -> String {
    messages
        .iter()
        .rev()
        .find(|m| m.get("role").and_then(Value::as_str) == Some("user"))
        .and_then(|m| m.get("content"))
        .map(content_text)
        .unwrap_or_default()
}

/// Prompt tokens P: for each message, tokens of its text plus [`PER_MESSAGE_TOKENS`]; a present
/// Anthropic `system` counts as one more message, so a conversation translated between the two
/// APIs (system message <-> `system` field) keeps the same count.
pub(crate) fn prompt_tokens(messages: &[Value], system: Option<&Value>) -> u64 {
    let system = system.filter(|s| !s.is_null()).map_or(0, |s| tokens(&content_text(s)) + PER_MESSAGE_TOKENS);
    messages.iter().fold(system, |acc, m| {
        let text = m.get("content").map(content_text).unwrap_or_default();
        acc + tokens(&text) + PER_MESSAGE_TOKENS
    })
}

/// The reply for a normal request: [`REPLY_PREFIX`] followed by the last user message's text.
pub(crate) fn reply_text(messages: &[Value]) -> String {
    let mut text = String::from(REPLY_PREFIX);
    text.push_str(&last_user_text(messages));
    text
}

/// The request body as compact JSON with the client's key order and escapes kept: whitespace
/// outside strings is removed from the raw bytes. Re-serialising the parsed value would sort keys
/// (serde_json without `preserve_order`), hiding what the gateway really sent.
pub(crate) fn compact_json(raw: &[u8]) -> String {
    let mut out = Vec::with_capacity(raw.len());
    let (mut in_string, mut escaped) = (false, false);
    for &b in raw {
        if in_string {
            out.push(b);
            if escaped {
                escaped = false;
            } else if b == b'\\' {
                escaped = true;
            } else if b == b'"' {
                in_string = false;
            }
        } else if !matches!(b, b' ' | b'\t' | b'\n' | b'\r') {
            in_string = b == b'"';
            out.push(b);
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Splits `text` into one piece per word, each word carrying the whitespace before it (and the
/// last one any trailing whitespace), so that concatenating the streamed pieces gives back exactly
/// the non-streaming text and the number of pieces equals [`tokens`].
pub(crate) fn word_pieces(text: &str) -> Vec<&str> {
    let mut pieces = Vec::new();
    let (mut start, mut prev_word, mut cut) = (0, false, None);
    for (i, c) in text.char_indices() {
        let space = c.is_whitespace();
        if space && prev_word {
            // A word ended: the next piece starts here, if another word follows.
            cut = Some(i);
        } else if !space
            && !prev_word
            && let Some(at) = cut.take()
        {
            pieces.push(&text[start..at]);
            start = at;
        }
        prev_word = !space;
    }
    pieces.push(&text[start..]);
    pieces
}

/// Usage numbers of one response, in OpenAI's meaning: `prompt` includes `cached`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Usage {
    /// P: all prompt tokens, cached or not.
    pub prompt: u64,
    /// C: tokens of the reply text.
    pub completion: u64,
    /// K: prompt tokens read from the cache, at most P.
    pub cached: u64,
    /// W: prompt tokens written to the cache (Anthropic only), at most P - K.
    pub cache_write: u64,
}

impl Usage {
    /// Combines the counted tokens with the cache headers, clamped so that K + W <= P.
    pub(crate) fn new(headers: &HeaderMap, prompt: u64, reply: &str, anthropic: bool) -> Usage {
        let cached = header_u64(headers, CACHED_TOKENS_HEADER).min(prompt);
        let cache_write =
            if anthropic { header_u64(headers, CACHE_WRITE_TOKENS_HEADER).min(prompt - cached) } else { 0 };
        Usage { prompt, completion: tokens(reply), cached, cache_write }
    }

    /// Anthropic's `input_tokens`: the prompt tokens neither read from nor written to the cache.
    pub(crate) fn uncached_input(&self) -> u64 {
        self.prompt.saturating_sub(self.cached).saturating_sub(self.cache_write)
    }
}

/// A non-negative integer header, 0 when absent or malformed.
fn header_u64(headers: &HeaderMap, name: &str) -> u64 {
    headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse().ok()).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn counts_words_and_message_overhead() {
        let messages = [
            json!({"role": "system", "content": "be brief"}),
            json!({"role": "user", "content": [{"type": "text", "text": "hello there"}, {"type": "image_url"}, {"type": "text", "text": "friend"}]}),
        ];
        assert_eq!(prompt_tokens(&messages, None), 2 + 3 + 3 + 3);
        assert_eq!(prompt_tokens(&messages[1..], Some(&json!("be brief"))), 11);
        assert_eq!(reply_text(&messages), "fake-upstream reply to: hello there friend");
        assert_eq!(tokens(&reply_text(&messages)), 6);
    }

    #[test]
    fn pieces_concatenate_to_the_text() {
        for text in ["a", "a b", "  a  b\n c ", "fake-upstream reply to: ", "", "   "] {
            let pieces = word_pieces(text);
            assert_eq!(pieces.concat(), text);
            assert_eq!(pieces.len() as u64, tokens(text).max(1));
        }
        assert_eq!(word_pieces("a  b\nc"), vec!["a", "  b", "\nc"]);
    }

    #[test]
    fn compact_json_keeps_order_and_strings() {
        let raw = br#"{ "z": 1,
            "a": [ "x y", "q\"  r" ] }"#;
        assert_eq!(compact_json(raw), r#"{"z":1,"a":["x y","q\"  r"]}"#);
    }

    #[test]
    fn cache_headers_are_clamped() {
        let mut headers = HeaderMap::new();
        headers.insert(CACHED_TOKENS_HEADER, axum::http::HeaderValue::from_static("8"));
        headers.insert(CACHE_WRITE_TOKENS_HEADER, axum::http::HeaderValue::from_static("5"));
        let usage = Usage::new(&headers, 10, "one two", true);
        assert_eq!((usage.cached, usage.cache_write, usage.uncached_input()), (8, 2, 0));
        let usage = Usage::new(&headers, 10, "one two", false);
        assert_eq!((usage.cached, usage.cache_write, usage.completion), (8, 0, 2));
    }
}
