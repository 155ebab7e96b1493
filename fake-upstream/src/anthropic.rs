//! `POST /v1/messages` in Anthropic's wire format.
//!
//! Follows anthropic-sdk-python's `Message` and `RawMessageStreamEvent` types. Every SSE frame has
//! an `event:` line because Anthropic SDKs dispatch on it; the stream is message_start,
//! content_block_start, ping, one content_block_delta per word, content_block_stop, message_delta,
//! message_stop.

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde_json::{Value, json};

use crate::{
    behavior::Behavior,
    errors::Api,
    openai::CUT_AFTER_CHUNKS,
    prompt::{self, Usage},
    server::{self, AppState, Parsed},
    tool_use,
};

/// `POST /v1/messages/count_tokens`: `{"input_tokens": n}`, the input tokens `/v1/messages`
/// would bill for the same messages and system prompt. Like Anthropic's, it takes no `max_tokens`.
pub(crate) async fn count_tokens(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let Parsed { body, .. } = match server::preflight(&state, Api::Anthropic, &headers, &raw).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    if body.get("model").and_then(Value::as_str).is_none() {
        return Api::Anthropic.invalid_request("model: Field required", None);
    }
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Api::Anthropic.invalid_request("messages: Field required", None);
    };
    if body.get("max_tokens").is_some() {
        return Api::Anthropic.invalid_request("max_tokens: Extra inputs are not permitted", None);
    }
    let system = body.get("system").filter(|s| !s.is_null());
    server::json_response(Api::Anthropic, &json!({"input_tokens": prompt::prompt_tokens(messages, system)}))
}

/// Frames before the first content delta: message_start, content_block_start, ping.
const FRAMES_BEFORE_CONTENT: usize = 3;

/// `POST /v1/messages`.
pub(crate) async fn messages(State(state): State<Arc<AppState>>, headers: HeaderMap, raw: Bytes) -> Response {
    let Parsed { body, behavior } = match server::preflight(&state, Api::Anthropic, &headers, &raw).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Api::Anthropic.invalid_request("model: Field required", None);
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Api::Anthropic.invalid_request("messages: Field required", None);
    };
    match body.get("max_tokens") {
        None | Some(Value::Null) => {
            return Api::Anthropic.invalid_request("max_tokens: Field required", None);
        }
        Some(n) if n.as_u64().is_none() => {
            return Api::Anthropic.invalid_request("max_tokens: Input should be a valid integer", None);
        }
        Some(_) => {}
    }
    let system = body.get("system").filter(|s| !s.is_null());
    if system.is_some_and(|s| !s.is_string() && !s.is_array()) {
        return Api::Anthropic.invalid_request("system: Input should be a valid string or list", None);
    }
    let tool = tool_use::forced(&body);
    let text = match (&tool, behavior) {
        (Some((_, input)), _) => input.to_string(),
        (None, Behavior::EchoRequest) => prompt::compact_json(&raw),
        (None, _) => prompt::reply_text(messages),
    };
    let usage = Usage::new(&headers, prompt::prompt_tokens(messages, system), &text, true);
    let usage = (behavior != Behavior::NoUsage).then_some(usage);
    let tool = tool.map(|(name, input)| (server::new_id("toolu_"), name, input));
    let reply = Reply { id: server::new_id("msg_"), model, text: &text, tool };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let cut = behavior == Behavior::StreamCut;
        server::sse_response(Api::Anthropic, reply.events(usage, cut), cut)
    } else {
        server::json_response(Api::Anthropic, &reply.message(usage))
    }
}

struct Reply<'a> {
    id: String,
    model: &'a str,
    /// The text, or the forced tool call's input as JSON text.
    text: &'a str,
    /// A forced tool call: its id, name and input.
    tool: Option<(String, String, Value)>,
}

impl Reply<'_> {
    /// The non-streaming `message` object; `usage` is left out for `no-usage`.
    fn message(&self, usage: Option<Usage>) -> Value {
        let (content, stop_reason) = match &self.tool {
            Some((id, name, input)) => {
                (json!([{"type": "tool_use", "id": id, "name": name, "input": input}]), "tool_use")
            }
            None => (json!([{"type": "text", "text": self.text}]), "end_turn"),
        };
        let mut message = self.shell(content, json!(stop_reason));
        if let (Some(usage), Some(object)) = (usage, message.as_object_mut()) {
            object.insert("usage".to_owned(), usage_json(usage, usage.completion));
        }
        message
    }

    /// Every SSE frame. message_start reports `output_tokens: 1` like the real API; the final count
    /// arrives in message_delta. `cut` stops after [`CUT_AFTER_CHUNKS`] text deltas.
    fn events(&self, usage: Option<Usage>, cut: bool) -> Vec<Bytes> {
        let pieces = prompt::word_pieces(self.text);
        let mut frames = Vec::with_capacity(pieces.len() + 6);
        let mut start = self.shell(json!([]), Value::Null);
        if let (Some(usage), Some(object)) = (usage, start.as_object_mut()) {
            object.insert("usage".to_owned(), usage_json(usage, 1));
        }
        frames.push(event("message_start", &json!({"type": "message_start", "message": start})));
        let (block, stop_reason) = match &self.tool {
            Some((id, name, _)) => {
                (json!({"type": "tool_use", "id": id, "name": name, "input": {}}), "tool_use")
            }
            None => (json!({"type": "text", "text": ""}), "end_turn"),
        };
        frames.push(event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": 0, "content_block": block}),
        ));
        frames.push(event("ping", &json!({"type": "ping"})));
        for piece in &pieces {
            let delta = match self.tool {
                Some(_) => json!({"type": "input_json_delta", "partial_json": piece}),
                None => json!({"type": "text_delta", "text": piece}),
            };
            frames.push(event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": 0, "delta": delta}),
            ));
        }
        if cut {
            frames.truncate(FRAMES_BEFORE_CONTENT + CUT_AFTER_CHUNKS);
            return frames;
        }
        frames.push(event("content_block_stop", &json!({"type": "content_block_stop", "index": 0})));
        let mut delta =
            json!({"type": "message_delta", "delta": {"stop_reason": stop_reason, "stop_sequence": null}});
        if let (Some(usage), Some(object)) = (usage, delta.as_object_mut()) {
            object.insert("usage".to_owned(), json!({"output_tokens": usage.completion}));
        }
        frames.push(event("message_delta", &delta));
        frames.push(event("message_stop", &json!({"type": "message_stop"})));
        frames
    }

    /// The message object without usage.
    fn shell(&self, content: Value, stop_reason: Value) -> Value {
        json!({
            "id": self.id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": null,
        })
    }
}

/// Anthropic's `usage`: `input_tokens` excludes cache reads and writes.
fn usage_json(usage: Usage, output_tokens: u64) -> Value {
    json!({
        "input_tokens": usage.uncached_input(),
        "output_tokens": output_tokens,
        "cache_read_input_tokens": usage.cached,
        "cache_creation_input_tokens": usage.cache_write,
    })
}

/// One `event: NAME\ndata: {json}\n\n` SSE frame.
fn event(name: &str, data: &Value) -> Bytes {
    let mut frame = format!("event: {name}\ndata: ").into_bytes();
    // Serialising a `Value` into a Vec cannot fail (no I/O, string keys only).
    let _ = serde_json::to_writer(&mut frame, data);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}
