//! A property of the ledger: a request costs the same streamed or not, on every wire format (an
//! OpenAI upstream, an Anthropic one translated, the built-in mock), for random conversations.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

mod common;

use common::*;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::{Value, json};

const WORDS: [&str; 12] = [
    "a",
    "café",
    "tokens",
    "supercalifragilistic",
    "42",
    "über",
    "x-y",
    "🙂",
    "the",
    "of",
    "budget",
    "\"q\"",
];

/// A conversation of 1 to 4 messages of 0 to 30 words, with or without a system message.
fn conversation(rng: &mut StdRng) -> Vec<Value> {
    let text = |rng: &mut StdRng| {
        let n = rng.random_range(0..30);
        (0..n).map(|_| WORDS[rng.random_range(0..WORDS.len())]).collect::<Vec<_>>().join(" ")
    };
    let mut messages = Vec::new();
    if rng.random_bool(0.5) {
        messages.push(json!({"role": "system", "content": text(rng)}));
    }
    for i in 0..rng.random_range(1..=4) {
        let role = if i % 2 == 0 { "user" } else { "assistant" };
        messages.push(json!({"role": role, "content": text(rng)}));
    }
    if messages.last().is_some_and(|m| m["role"] == "assistant") {
        messages.push(json!({"role": "user", "content": text(rng)}));
    }
    messages
}

#[tokio::test]
async fn streamed_and_whole_replies_cost_the_same() {
    let mut h = Harness::start().await;
    let mut rng = StdRng::seed_from_u64(0x5eed);
    let models = ["fake-model", "claude-fake", "demo-echo"];
    let mut pairs = 0;
    for round in 0..12 {
        let messages = conversation(&mut rng);
        let model = models[round % models.len()];
        for stream in [false, true] {
            let body = json!({"model": model, "stream": stream, "max_tokens": 500, "messages": messages});
            let response = h.post("/v1/chat/completions", TEAM_KEY, &body).await;
            assert_eq!(response.status(), 200, "{model} stream={stream}: {}", response.text().await.unwrap());
            response.text().await.unwrap();
        }
        pairs += 1;
    }
    h.stop_gateway().await;
    let rows = h.ledger_rows().await;
    assert_eq!(rows.len(), 2 * pairs);
    let counts = |row: &Value| {
        ["input_tokens", "cached_input_tokens", "cache_write_tokens", "output_tokens", "cost_nanos"]
            .map(|column| row[column].as_i64().unwrap())
    };
    for pair in rows.chunks(2) {
        assert_eq!((pair[0]["stream"].as_bool(), pair[1]["stream"].as_bool()), (Some(false), Some(true)));
        assert_eq!(counts(&pair[0]), counts(&pair[1]), "{} and {}", pair[0], pair[1]);
        assert!(pair[0]["output_tokens"].as_i64() > Some(0), "{}", pair[0]);
    }
}
