//! Pure translations between the wire formats the gateway speaks and its canonical internal format,
//! OpenAI Chat Completions JSON.
//!
//! Everything here works on `serde_json::Value` and does no IO, so the HTTP layer can call it on
//! request and response bodies (and on each streamed event) without caring how they arrived.

pub mod anthropic;
pub mod gemini;
pub mod responses;
