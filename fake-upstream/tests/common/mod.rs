//! Helpers shared by the integration tests: spawning a fake and reading SSE bodies.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use serde_json::Value;
use switchboard_fake_upstream::{FakeUpstream, Options};

pub async fn spawn() -> FakeUpstream {
    spawn_with(Options::default()).await
}

pub async fn spawn_with(options: Options) -> FakeUpstream {
    FakeUpstream::spawn("127.0.0.1:0".parse().unwrap(), options).await.unwrap()
}

/// One SSE frame: the `event:` name if any and the raw `data:` text.
#[derive(Debug, Clone)]
pub struct Frame {
    pub event: Option<String>,
    pub data: String,
}

impl Frame {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.data).unwrap_or_else(|e| panic!("frame {:?} is not JSON: {e}", self.data))
    }
}

/// Splits an SSE body into frames; asserts every frame is terminated by a blank line.
pub fn parse_sse(body: &str) -> Vec<Frame> {
    let mut frames = Vec::new();
    let mut rest = body;
    while let Some(end) = rest.find("\n\n") {
        let (block, tail) = rest.split_at(end);
        rest = &tail[2..];
        let mut frame = Frame { event: None, data: String::new() };
        for line in block.lines() {
            if let Some(name) = line.strip_prefix("event: ") {
                frame.event = Some(name.to_owned());
            } else if let Some(data) = line.strip_prefix("data: ") {
                frame.data.push_str(data);
            } else {
                panic!("unexpected SSE line {line:?}");
            }
        }
        frames.push(frame);
    }
    assert!(rest.is_empty(), "unterminated SSE frame: {rest:?}");
    frames
}

/// Reads a body chunk by chunk until it ends or fails; returns the bytes and whether it failed.
pub async fn read_until_error(response: reqwest::Response) -> (String, bool) {
    use futures::StreamExt;
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(chunk) = stream.next().await {
        match chunk {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(_) => return (String::from_utf8(body).unwrap(), true),
        }
    }
    (String::from_utf8(body).unwrap(), false)
}
