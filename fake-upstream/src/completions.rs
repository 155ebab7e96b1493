//! `POST /v1/completions`: OpenAI's legacy completions. One `text_completion` choice per prompt,
//! `fake-upstream completion of: <prompt>`; streamed as `text_completion` chunks of one word each,
//! a finish chunk, the usage chunk (`"choices": []`) when `stream_options.include_usage` is set,
//! then `data: [DONE]`. Usage: words of the prompts and of the texts.

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use serde_json::{Value, json};

use crate::{
    errors::Api,
    openai::data_frame,
    prompt,
    server::{self, AppState, Parsed},
};

/// `POST /v1/completions`.
pub(crate) async fn completions(
    State(state): State<Arc<AppState>>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let Parsed { body, .. } = match server::preflight(&state, Api::OpenAi, &headers, &raw).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let Some(model) = body.get("model").and_then(Value::as_str) else {
        return Api::OpenAi.invalid_request("you must provide a model parameter", None);
    };
    let prompts: Vec<String> = match body.get("prompt") {
        Some(Value::String(text)) => vec![text.clone()],
        Some(Value::Array(items)) if items.iter().all(Value::is_string) => {
            items.iter().filter_map(Value::as_str).map(str::to_owned).collect()
        }
        Some(Value::Array(tokens)) => vec![format!("{} tokens", tokens.len())],
        _ => return Api::OpenAi.invalid_request("'prompt' is a required property", Some("prompt")),
    };
    let texts: Vec<String> = prompts.iter().map(|p| format!("fake-upstream completion of: {p}")).collect();
    let prompt_tokens: u64 = prompts.iter().map(|p| prompt::tokens(p)).sum();
    let completion_tokens: u64 = texts.iter().map(|t| prompt::tokens(t)).sum();
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens});
    let (id, created) = (server::new_id("cmpl-"), server::unix_now());
    let object = |choices: Value| json!({"id": id, "object": "text_completion", "created": created, "model": model, "choices": choices});
    if body.get("stream").and_then(Value::as_bool) != Some(true) {
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| json!({"text": text, "index": index, "logprobs": null, "finish_reason": "stop"}))
            .collect();
        let mut reply = object(json!(choices));
        reply["usage"] = usage;
        return server::json_response(Api::OpenAi, &reply);
    }
    let mut frames = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        for piece in prompt::word_pieces(text) {
            frames.push(data_frame(&object(
                json!([{"text": piece, "index": index, "logprobs": null, "finish_reason": null}]),
            )));
        }
        frames.push(data_frame(&object(
            json!([{"text": "", "index": index, "logprobs": null, "finish_reason": "stop"}]),
        )));
    }
    if body.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true) {
        let mut last = object(json!([]));
        last["usage"] = usage;
        frames.push(data_frame(&last));
    }
    frames.push(Bytes::from_static(b"data: [DONE]\n\n"));
    server::sse_response(Api::OpenAi, frames, false)
}
