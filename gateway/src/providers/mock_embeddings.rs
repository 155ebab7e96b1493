//! The `mock` provider's embeddings: deterministic vectors that need no model, so the samples
//! serve `/v1/embeddings` offline and tests can predict what comes back.
//!
//! Each input's words (lowercased, split at anything not alphanumeric; a pre-tokenised input's
//! token ids) are hashed (FNV-1a, stable everywhere) into a signed bag of words of `dimensions`
//! numbers (64 unless asked), then scaled to length 1: texts sharing words point the same way.
//! Usage: one prompt token per word or token id.

use base64::Engine;
use serde_json::{Value, json};

use super::{Completion, UpstreamError};
use crate::embeddings_request::{EmbeddingsRequest, Encoding, Input};

/// Vector size when the request names none.
pub const DEFAULT_DIMENSIONS: usize = 64;
/// The most numbers one reply holds (inputs times dimensions): 16 MiB of `f32`s.
const MAX_NUMBERS: usize = 1 << 22;

pub(super) fn reply(request: &EmbeddingsRequest, model: &str) -> Result<Completion, UpstreamError> {
    let dimensions = request.dimensions.map_or(DEFAULT_DIMENSIONS, |d| d as usize);
    if request.count().saturating_mul(dimensions) > MAX_NUMBERS {
        let message =
            format!("the mock embeds at most {MAX_NUMBERS} numbers (inputs times dimensions) at once");
        return Err(UpstreamError::Status { status: 400, message, retry_after: None });
    }
    let inputs: Vec<Vec<String>> = match &request.input {
        Input::Text(text) => vec![words(text)],
        Input::Texts(texts) => texts.iter().map(|text| words(text)).collect(),
        Input::Tokens(tokens) => vec![tokens.iter().map(u32::to_string).collect()],
        Input::TokenLists(lists) => lists.iter().map(|l| l.iter().map(u32::to_string).collect()).collect(),
    };
    let tokens: usize = inputs.iter().map(Vec::len).sum();
    let data: Vec<Value> = inputs
        .iter()
        .enumerate()
        .map(|(index, words)| {
            let vector = embed(words, dimensions);
            let embedding = match request.encoding() {
                Encoding::Float => json!(vector),
                Encoding::Base64 => json!(base64_of(&vector)),
            };
            json!({"object": "embedding", "index": index, "embedding": embedding})
        })
        .collect();
    Completion::from_value(&json!({
        "object": "list", "data": data, "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }))
}

/// The vector of a bag of words: each word adds ±1 at the place its hash picks; length 1.
pub fn embed(words: &[String], dimensions: usize) -> Vec<f32> {
    let mut vector = vec![0f32; dimensions.max(1)];
    for word in words {
        let hash = fnv1a(word.as_bytes());
        let place = (hash % vector.len() as u64) as usize;
        vector[place] += if hash >> 63 == 1 { -1.0 } else { 1.0 };
    }
    let length = vector.iter().map(|x| x * x).sum::<f32>().sqrt();
    if length == 0.0 {
        vector[0] = 1.0;
    } else {
        vector.iter_mut().for_each(|x| *x /= length);
    }
    vector
}

fn words(text: &str) -> Vec<String> {
    text.split(|c: char| !c.is_alphanumeric()).filter(|w| !w.is_empty()).map(str::to_lowercase).collect()
}

fn fnv1a(bytes: &[u8]) -> u64 {
    bytes
        .iter()
        .fold(0xcbf2_9ce4_8422_2325, |hash, byte| (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3))
}

/// Little-endian `f32`s, base64-encoded, as OpenAI sends `encoding_format: base64`.
fn base64_of(vector: &[f32]) -> String {
    let bytes: Vec<u8> = vector.iter().flat_map(|x| x.to_le_bytes()).collect();
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(body: Value) -> EmbeddingsRequest {
        EmbeddingsRequest::parse(body).unwrap()
    }

    fn cosine(a: &[f32], b: &[f32]) -> f32 {
        a.iter().zip(b).map(|(x, y)| x * y).sum()
    }

    #[test]
    fn vectors_are_unit_length_deterministic_and_closer_for_shared_words() {
        let body =
            json!({"model": "e", "input": ["Peanut allergy!", "a peanut allergy", "the weather in Lyon"]});
        let reply = reply(&request(body), "mock-embed").unwrap().to_value().unwrap();
        let vectors: Vec<Vec<f32>> = reply["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|d| d["embedding"].as_array().unwrap().iter().map(|x| x.as_f64().unwrap() as f32).collect())
            .collect();
        assert_eq!(vectors[0].len(), DEFAULT_DIMENSIONS);
        assert!((cosine(&vectors[0], &vectors[0]) - 1.0).abs() < 1e-5);
        assert!(cosine(&vectors[0], &vectors[1]) > cosine(&vectors[0], &vectors[2]));
        assert_eq!(reply["usage"], json!({"prompt_tokens": 9, "total_tokens": 9}));
        assert_eq!(reply["data"][2]["index"], 2);
    }

    #[test]
    fn base64_carries_the_same_floats_and_dimensions_are_honoured() {
        let float = request(json!({"model": "e", "input": "hello", "dimensions": 8}));
        let base64 =
            request(json!({"model": "e", "input": "hello", "dimensions": 8, "encoding_format": "base64"}));
        let float = reply(&float, "m").unwrap().to_value().unwrap();
        let base64 = reply(&base64, "m").unwrap().to_value().unwrap();
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(base64["data"][0]["embedding"].as_str().unwrap())
            .unwrap();
        let decoded: Vec<f32> = bytes.chunks(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
        let floats: Vec<f32> = float["data"][0]["embedding"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap() as f32)
            .collect();
        assert_eq!((decoded.len(), decoded), (8, floats));
    }

    #[test]
    fn a_reply_past_the_size_bound_is_refused() {
        let body = json!({"model": "e", "input": vec!["x"; 2048], "dimensions": 65536});
        assert!(matches!(reply(&request(body), "m"), Err(UpstreamError::Status { status: 400, .. })));
    }
}
