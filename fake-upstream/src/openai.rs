//! `POST /v1/chat/completions` and `GET /v1/models` in OpenAI's wire format.
//!
//! Field names and chunk order follow openai-python's `ChatCompletion` / `ChatCompletionChunk`
//! types: a role chunk, one chunk per word, a finish chunk, the optional usage chunk with
//! `"choices": []`, then `data: [DONE]`.

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde_json::{Map, Value, json};

use crate::{
    behavior::Behavior,
    errors::Api,
    prompt::{self, Usage},
    server::{self, AppState, Parsed},
};

/// Model ids listed by `GET /v1/models`. Any model name is accepted by the chat endpoints.
pub(crate) const MODELS: [&str; 2] = ["fake-model", "local-model"];
/// Reported `system_fingerprint`, fixed so responses are reproducible.
const FINGERPRINT: &str = "fake";
/// Content chunks sent before a `stream-cut` drops the connection.
pub(crate) const CUT_AFTER_CHUNKS: usize = 2;

/// `POST /v1/chat/completions`.
pub(crate) async fn chat_completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let Parsed { body, behavior } = match server::preflight(&state, Api::OpenAi, &headers, &raw).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Api::OpenAi.invalid_request("you must provide a model parameter", None);
    };
    let Some(messages) = body.get("messages").and_then(Value::as_array) else {
        return Api::OpenAi.invalid_request("Missing required parameter: 'messages'.", Some("messages"));
    };
    let text = match behavior {
        Behavior::EchoRequest => prompt::compact_json(&raw),
        _ => prompt::reply_text(messages),
    };
    let usage = Usage::new(&headers, prompt::prompt_tokens(messages, None), &text, false);
    let usage = (behavior != Behavior::NoUsage).then_some(usage);
    let reply = Reply { id: server::new_id("chatcmpl-"), created: server::unix_now(), model, text: &text };
    if body.get("stream").and_then(Value::as_bool) == Some(true) {
        let include_usage =
            body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
        let frames = reply.chunks(usage.filter(|_| include_usage), behavior == Behavior::StreamCut);
        server::sse_response(Api::OpenAi, frames, behavior == Behavior::StreamCut)
    } else {
        server::json_response(Api::OpenAi, &reply.completion(usage))
    }
}

/// `GET /v1/models`: OpenAI's list shape, or Anthropic's when the client sends `anthropic-version`
/// (both APIs serve this path).
pub(crate) async fn models(headers: HeaderMap) -> Response {
    if headers.contains_key("anthropic-version") {
        let data: Vec<Value> = MODELS
            .iter()
            .map(|id| json!({"type": "model", "id": id, "display_name": id, "created_at": "2025-01-01T00:00:00Z"}))
            .collect();
        let body =
            json!({"data": data, "has_more": false, "first_id": MODELS.first(), "last_id": MODELS.last()});
        return server::json_response(Api::Anthropic, &body);
    }
    let data: Vec<Value> = MODELS
        .iter()
        .map(|id| json!({"id": id, "object": "model", "created": 1_735_689_600, "owned_by": "switchboard-fake"}))
        .collect();
    server::json_response(Api::OpenAi, &json!({"object": "list", "data": data}))
}

/// What one completion says, shared by the streaming and non-streaming renderings.
struct Reply<'a> {
    id: String,
    created: u64,
    model: &'a str,
    text: &'a str,
}

impl Reply<'_> {
    /// The non-streaming `chat.completion` object; `usage` is left out for `no-usage`.
    fn completion(&self, usage: Option<Usage>) -> Value {
        let mut body = json!({
            "id": self.id,
            "object": "chat.completion",
            "created": self.created,
            "model": self.model,
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": self.text, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "system_fingerprint": FINGERPRINT,
        });
        if let (Some(usage), Some(object)) = (usage, body.as_object_mut()) {
            object.insert("usage".to_owned(), usage_json(usage));
        }
        body
    }

    /// Every SSE frame of the stream. `usage` is `Some` when the client asked for
    /// `stream_options.include_usage` (and the behaviour is not `no-usage`): then every chunk carries
    /// `"usage": null` and a last chunk with `"choices": []` carries it. `cut` stops after
    /// [`CUT_AFTER_CHUNKS`] content chunks.
    fn chunks(&self, usage: Option<Usage>, cut: bool) -> Vec<Bytes> {
        let include_usage = usage.is_some();
        let pieces = prompt::word_pieces(self.text);
        let mut frames = Vec::with_capacity(pieces.len() + 4);
        let role = json!({"role": "assistant", "content": "", "refusal": null});
        frames.push(self.chunk(role, Value::Null, include_usage));
        for piece in &pieces {
            frames.push(self.chunk(json!({"content": piece}), Value::Null, include_usage));
        }
        if cut {
            frames.truncate(1 + CUT_AFTER_CHUNKS);
            return frames;
        }
        frames.push(self.chunk(json!({}), json!("stop"), include_usage));
        if let Some(usage) = usage {
            let mut last = self.chunk_object(Vec::new());
            last.insert("usage".to_owned(), usage_json(usage));
            frames.push(data_frame(&Value::Object(last)));
        }
        frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
        frames
    }

    fn chunk(&self, delta: Value, finish_reason: Value, include_usage: bool) -> Bytes {
        let choice = json!({"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish_reason});
        let mut chunk = self.chunk_object(vec![choice]);
        if include_usage {
            chunk.insert("usage".to_owned(), Value::Null);
        }
        data_frame(&Value::Object(chunk))
    }

    fn chunk_object(&self, choices: Vec<Value>) -> Map<String, Value> {
        let mut chunk = Map::new();
        chunk.insert("id".to_owned(), json!(self.id));
        chunk.insert("object".to_owned(), json!("chat.completion.chunk"));
        chunk.insert("created".to_owned(), json!(self.created));
        chunk.insert("model".to_owned(), json!(self.model));
        chunk.insert("system_fingerprint".to_owned(), json!(FINGERPRINT));
        chunk.insert("choices".to_owned(), Value::Array(choices));
        chunk
    }
}

/// OpenAI's `usage` object: `prompt_tokens` includes the cached ones.
fn usage_json(usage: Usage) -> Value {
    json!({
        "prompt_tokens": usage.prompt,
        "completion_tokens": usage.completion,
        "total_tokens": usage.prompt + usage.completion,
        "prompt_tokens_details": {"cached_tokens": usage.cached},
    })
}

/// One `data: {json}\n\n` SSE frame.
pub(crate) fn data_frame(value: &Value) -> Bytes {
    let mut frame = b"data: ".to_vec();
    // Serialising a `Value` into a Vec cannot fail (no I/O, string keys only).
    let _ = serde_json::to_writer(&mut frame, value);
    frame.extend_from_slice(b"\n\n");
    Bytes::from(frame)
}
