//! Anthropic Messages API <-> OpenAI Chat Completions, both directions, including streaming.
//!
//! Two sides use this module:
//! - **client side** (`POST /v1/messages`): an Anthropic SDK talks to the gateway. Its request is turned
//!   into a chat request ([`messages_request_to_chat`]) and the canonical chat response (or chunk
//!   stream) is turned back into a Messages response ([`chat_response_to_messages`],
//!   [`ChatToMessagesStream`]).
//! - **provider side**: a route's upstream is Anthropic. The canonical chat request is turned into a
//!   Messages request ([`chat_request_to_messages`]) and Anthropic's answer back into chat
//!   ([`messages_response_to_chat`], [`MessagesToChatStream`]).
//!
//! Token usage survives both ways, including prompt-cache reads and writes: the chat `usage` produced
//! from an Anthropic answer carries the raw `cache_read_input_tokens` / `cache_creation_input_tokens`
//! next to OpenAI's fields so the gateway can price cache writes, and the client side reads them back.
//!
//! `cache_control` markers on Anthropic content blocks, system blocks and tools are carried into the
//! chat form (as a `cache_control` key on the part or tool) so that an Anthropic upstream keeps prompt
//! caching; the OpenAI wire body leaves them out (`providers::wire`).

use serde_json::{Map, Value, json};

mod fields;
mod reasoning;
mod stream_to_chat;
mod stream_to_messages;
mod structured;
mod to_chat_request;
mod to_chat_response;
mod to_messages_request;
mod to_messages_response;

pub use stream_to_chat::MessagesToChatStream;
pub use stream_to_messages::ChatToMessagesStream;
pub use to_chat_request::messages_request_to_chat;
pub use to_chat_response::messages_response_to_chat;
pub use to_messages_request::{DEFAULT_MAX_TOKENS, chat_request_to_messages};
pub use to_messages_response::chat_response_to_messages;

#[cfg(test)]
mod tests;

/// Why a translation failed; the gateway turns these into 400s (or, for `Upstream`, an error frame),
/// so the message names the offending field as a JSON path.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TranslateError {
    /// The body cannot be expressed in the other format (missing, mistyped or unsupported field).
    #[error("invalid request: {0}")]
    InvalidRequest(String),
    /// Anthropic sent an `error` event in the middle of a stream (for example `overloaded_error`).
    #[error("upstream error ({error_type}): {message}")]
    Upstream {
        /// Anthropic's `error.type`, e.g. `overloaded_error` or `api_error`.
        error_type: String,
        /// Anthropic's human-readable `error.message`.
        message: String,
    },
}

fn invalid(message: impl Into<String>) -> TranslateError {
    TranslateError::InvalidRequest(message.into())
}

/// Seconds since the Unix epoch, for OpenAI's required `created` field (0 if the clock is broken).
fn now_unix() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0)
}

/// `msg_abc` -> `chatcmpl-abc`, so ids stay traceable across the translation (and reversible).
fn chat_id_from_message_id(message_id: &str) -> String {
    let rest = message_id.strip_prefix("msg_").unwrap_or(message_id);
    if rest.is_empty() { "chatcmpl-switchboard".to_owned() } else { format!("chatcmpl-{rest}") }
}

/// `chatcmpl-abc` -> `msg_abc`; ids already in Anthropic form are kept.
fn message_id_from_chat_id(chat_id: &str) -> String {
    if chat_id.starts_with("msg_") && chat_id.len() > 4 {
        return chat_id.to_owned();
    }
    let rest = chat_id.strip_prefix("chatcmpl-").unwrap_or(chat_id);
    if rest.is_empty() { "msg_switchboard".to_owned() } else { format!("msg_{rest}") }
}

/// OpenAI `finish_reason` -> Anthropic `stop_reason`. Some OpenAI-compatible servers answer `stop`
/// although they returned tool calls; Anthropic clients loop on `tool_use`, so tool calls win.
fn stop_reason_from_finish(finish_reason: Option<&str>, has_tool_calls: bool) -> &'static str {
    match finish_reason {
        Some("length") => "max_tokens",
        Some("tool_calls" | "function_call") => "tool_use",
        Some("content_filter") => "refusal",
        _ if has_tool_calls => "tool_use",
        _ => "end_turn",
    }
}

/// Anthropic `stop_reason` -> OpenAI `finish_reason`.
fn finish_reason_from_stop(stop_reason: Option<&str>) -> &'static str {
    match stop_reason {
        Some("max_tokens" | "model_context_window_exceeded") => "length",
        Some("tool_use") => "tool_calls",
        Some("refusal") => "content_filter",
        _ => "stop",
    }
}

/// Splits `data:image/png;base64,AAAA` into (`image/png`, `AAAA`); `None` for anything else.
fn parse_data_url(url: &str) -> Option<(&str, &str)> {
    let (header, data) = url.strip_prefix("data:")?.split_once(',')?;
    let mut params = header.split(';');
    let media_type = params.next().unwrap_or_default();
    if media_type.is_empty() || !params.any(|p| p.eq_ignore_ascii_case("base64")) {
        return None;
    }
    Some((media_type, data))
}

/// Parses OpenAI's JSON-string `arguments` into Anthropic's `input` object. Empty or malformed
/// arguments (small local models produce them) become `{}` so a conversation is never wedged.
fn parse_tool_arguments(arguments: Option<&Value>) -> Value {
    let parsed = match arguments {
        Some(Value::String(s)) => serde_json::from_str::<Value>(s).ok(),
        Some(Value::Object(map)) => Some(Value::Object(map.clone())),
        _ => None,
    };
    match parsed {
        Some(Value::Object(map)) => Value::Object(map),
        _ => Value::Object(Map::new()),
    }
}

fn u64_field(value: &Value, key: &str) -> Option<u64> {
    value.get(key).and_then(Value::as_u64)
}

/// Token counts in Anthropic's split form: `input` excludes cache reads and writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct TokenUsage {
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
}

impl TokenUsage {
    /// From an Anthropic `usage` object (message or `message_start`).
    fn from_anthropic(usage: &Value) -> Self {
        let mut out = Self::default();
        out.merge_anthropic(usage);
        out
    }

    /// Overwrites only the fields present: `message_delta` usage is cumulative but partial.
    fn merge_anthropic(&mut self, usage: &Value) {
        if let Some(n) = u64_field(usage, "input_tokens") {
            self.input = n;
        }
        if let Some(n) = u64_field(usage, "output_tokens") {
            self.output = n;
        }
        if let Some(n) = u64_field(usage, "cache_read_input_tokens") {
            self.cache_read = n;
        }
        if let Some(n) = u64_field(usage, "cache_creation_input_tokens") {
            self.cache_creation = n;
        }
    }

    /// From an OpenAI `usage` object; understands the raw cache fields this module adds and OpenAI's
    /// `prompt_tokens_details.cache_write_tokens`.
    fn from_chat(usage: &Value) -> Self {
        let prompt = u64_field(usage, "prompt_tokens").unwrap_or(0);
        let cache_read = usage
            .get("prompt_tokens_details")
            .and_then(|d| u64_field(d, "cached_tokens"))
            .or_else(|| u64_field(usage, "cache_read_input_tokens"))
            .unwrap_or(0);
        let cache_creation = u64_field(usage, "cache_creation_input_tokens")
            .or_else(|| usage.get("prompt_tokens_details").and_then(|d| u64_field(d, "cache_write_tokens")))
            .unwrap_or(0);
        Self {
            input: prompt.saturating_sub(cache_read).saturating_sub(cache_creation),
            output: u64_field(usage, "completion_tokens").unwrap_or(0),
            cache_read,
            cache_creation,
        }
    }

    /// OpenAI shape: `prompt_tokens` counts every input token, as OpenAI's does; cache writes also go
    /// to `prompt_tokens_details.cache_write_tokens` (OpenAI's own field for them).
    fn to_chat(self) -> Value {
        let prompt = self.input.saturating_add(self.cache_read).saturating_add(self.cache_creation);
        json!({
            "prompt_tokens": prompt,
            "completion_tokens": self.output,
            "total_tokens": prompt.saturating_add(self.output),
            "prompt_tokens_details": {"cached_tokens": self.cache_read, "cache_write_tokens": self.cache_creation},
            "cache_read_input_tokens": self.cache_read,
            "cache_creation_input_tokens": self.cache_creation,
        })
    }

    /// Anthropic shape (`Usage` / `MessageDeltaUsage`).
    fn to_anthropic(self) -> Value {
        json!({
            "input_tokens": self.input,
            "output_tokens": self.output,
            "cache_creation_input_tokens": self.cache_creation,
            "cache_read_input_tokens": self.cache_read,
        })
    }
}
