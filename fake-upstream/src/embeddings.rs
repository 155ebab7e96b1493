//! `POST /v1/embeddings` in OpenAI's wire format: one `embedding` object per input, in order,
//! as floats or as base64 of little-endian `f32`s (`encoding_format`, which the OpenAI SDKs set to
//! `base64` by default), `dimensions` numbers each (8 unless asked), and `usage` with
//! `prompt_tokens` (words of the text, or the token ids sent) and `total_tokens`.
//!
//! The vectors are fixed by the input's position and length, not its meaning: this fake checks
//! the wire, not the quality of a model.

use std::sync::Arc;

use axum::{body::Bytes, extract::State, http::HeaderMap, response::Response};
use base64::Engine;
use serde_json::{Value, json};

use crate::{
    errors::Api,
    prompt,
    server::{self, AppState, Parsed},
};

const DEFAULT_DIMENSIONS: u64 = 8;
/// Bounds the reply the fake builds: it answers only what a test asks.
const MAX_DIMENSIONS: u64 = 4096;

/// `POST /v1/embeddings`.
pub(crate) async fn embeddings(
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
    let Some(inputs) = inputs(body.get("input")) else {
        return Api::OpenAi.invalid_request("'input' is a required property", Some("input"));
    };
    let dimensions = body.get("dimensions").and_then(Value::as_u64).unwrap_or(DEFAULT_DIMENSIONS);
    if !(1..=MAX_DIMENSIONS).contains(&dimensions) {
        return Api::OpenAi.invalid_request("'dimensions' is out of range", Some("dimensions"));
    }
    let base64 = body.get("encoding_format").and_then(Value::as_str) == Some("base64");
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, (_, length))| {
            let vector: Vec<f32> =
                (0..dimensions).map(|d| ((index as u64 + d + length) % 7) as f32 / 7.0).collect();
            let embedding = if base64 {
                let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
                json!(base64::engine::general_purpose::STANDARD.encode(bytes))
            } else {
                json!(vector)
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    let tokens: u64 = inputs.iter().map(|(tokens, _)| tokens).sum();
    server::json_response(
        Api::OpenAi,
        &json!({"object": "list", "data": data, "model": model,
                "usage": {"prompt_tokens": tokens, "total_tokens": tokens}}),
    )
}

/// Each input's tokens and length: a string, strings, token ids, or lists of token ids.
fn inputs(input: Option<&Value>) -> Option<Vec<(u64, u64)>> {
    let one = |item: &Value| match item {
        Value::String(text) => Some((prompt::tokens(text), text.len() as u64)),
        Value::Array(ids) => Some((ids.len() as u64, ids.len() as u64)),
        _ => None,
    };
    match input? {
        Value::Array(items) if items.iter().all(Value::is_number) => one(input?).map(|i| vec![i]),
        Value::Array(items) if !items.is_empty() => items.iter().map(one).collect(),
        text @ Value::String(_) => one(text).map(|i| vec![i]),
        _ => None,
    }
}
