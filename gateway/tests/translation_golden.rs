//! Translation golden files (`tests/golden/`): for each pair of wire formats, what goes in and what
//! must come out, requests, whole replies and streams, one case per folder.
//!
//! - `messages-client/CASE/`: an Anthropic Messages client served through the canonical (OpenAI
//!   Chat) form. `request.json` -> `canonical_request.json`; `canonical_reply.json` ->
//!   `reply.json`; `canonical_stream.json` (chunks) -> `stream.json` (events).
//! - `anthropic-upstream/CASE/`: the canonical form sent to an Anthropic upstream.
//!   `request.json` -> `upstream_request.json`; `upstream_reply.json` -> `reply.json`;
//!   `upstream_stream.json` (events) -> `stream.json` (chunks, then the usage).
//!
//! A request the translation refuses gives `{"error": "..."}`. `created` (the clock, in chat
//! replies and chunks made from Anthropic ones) is written as 0. `SWITCHBOARD_BLESS=1 cargo test
//! --test translation_golden` writes the outputs from the current code instead of comparing: read
//! the diff before committing it.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use std::path::{Path, PathBuf};

use serde_json::{Value, json};
use switchboard_gateway::translate::anthropic::{
    ChatToMessagesStream, MessagesToChatStream, chat_request_to_messages, chat_response_to_messages,
    messages_request_to_chat, messages_response_to_chat,
};

/// The model name the gateway answers with, and the one it sends upstream.
const CLIENT_MODEL: &str = "claude-sonnet";
const UPSTREAM_MODEL: &str = "claude-upstream";

fn cases(pair: &str) -> Vec<PathBuf> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden").join(pair);
    let mut cases: Vec<PathBuf> =
        std::fs::read_dir(&root).unwrap().map(|entry| entry.unwrap().path()).filter(|p| p.is_dir()).collect();
    cases.sort();
    assert!(!cases.is_empty(), "no cases in {}", root.display());
    cases
}

fn read(case: &Path, file: &str) -> Option<Value> {
    let text = std::fs::read_to_string(case.join(file)).ok()?;
    Some(serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}/{file}: {e}", case.display())))
}

/// Compares `actual` with the golden file, or writes it when blessing. Returns a mismatch.
fn check(case: &Path, file: &str, actual: &Value) -> Option<String> {
    let path = case.join(file);
    let mut actual = actual.clone();
    without_clock(&mut actual);
    let text = format!("{}\n", serde_json::to_string_pretty(&actual).unwrap());
    if std::env::var_os("SWITCHBOARD_BLESS").is_some() {
        std::fs::write(&path, text).unwrap();
        return None;
    }
    let expected = std::fs::read_to_string(&path).unwrap_or_default();
    (expected != text).then(|| format!("{}:\nexpected:\n{expected}\nactual:\n{text}", path.display()))
}

/// Sets every numeric `created` to 0.
fn without_clock(value: &mut Value) {
    match value {
        Value::Object(fields) => {
            for (key, field) in fields.iter_mut() {
                if key == "created" && field.is_number() {
                    *field = json!(0);
                } else {
                    without_clock(field);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(without_clock),
        _ => {}
    }
}

fn outcome<E: std::fmt::Display>(result: Result<Value, E>) -> Value {
    result.unwrap_or_else(|error| json!({"error": error.to_string()}))
}

fn assert_all(mismatches: Vec<String>) {
    assert!(mismatches.is_empty(), "{} golden file(s) differ:\n{}", mismatches.len(), mismatches.join("\n"));
}

#[test]
fn anthropic_clients_through_the_canonical_form() {
    let mut mismatches = Vec::new();
    for case in cases("messages-client") {
        let request = read(&case, "request.json").expect("every case has a request.json");
        mismatches.extend(check(
            &case,
            "canonical_request.json",
            &outcome(messages_request_to_chat(&request)),
        ));
        if let Some(reply) = read(&case, "canonical_reply.json") {
            mismatches.extend(check(&case, "reply.json", &chat_response_to_messages(&reply, CLIENT_MODEL)));
        }
        if let Some(chunks) = read(&case, "canonical_stream.json") {
            let mut stream = ChatToMessagesStream::new(CLIENT_MODEL, "msg_golden");
            let mut events: Vec<_> = chunks.as_array().unwrap().iter().flat_map(|c| stream.feed(c)).collect();
            events.extend(stream.finish());
            let events: Vec<Value> =
                events.into_iter().map(|(event, data)| json!({"event": event, "data": data})).collect();
            mismatches.extend(check(&case, "stream.json", &Value::Array(events)));
        }
    }
    assert_all(mismatches);
}

#[test]
fn the_canonical_form_through_anthropic_upstreams() {
    let mut mismatches = Vec::new();
    for case in cases("anthropic-upstream") {
        let request = read(&case, "request.json").expect("every case has a request.json");
        let upstream = outcome(chat_request_to_messages(&request, UPSTREAM_MODEL));
        mismatches.extend(check(&case, "upstream_request.json", &upstream));
        if let Some(reply) = read(&case, "upstream_reply.json") {
            mismatches.extend(check(&case, "reply.json", &messages_response_to_chat(&reply, UPSTREAM_MODEL)));
        }
        if let Some(events) = read(&case, "upstream_stream.json") {
            let mut stream = MessagesToChatStream::new(UPSTREAM_MODEL);
            let mut chunks = Vec::new();
            for event in events.as_array().unwrap() {
                let name = event["event"].as_str().unwrap();
                match stream.feed(name, &event["data"]) {
                    Ok(more) => chunks.extend(more),
                    Err(error) => chunks.push(json!({"error": error.to_string()})),
                }
            }
            chunks.push(json!({"usage": stream.usage()}));
            mismatches.extend(check(&case, "stream.json", &Value::Array(chunks)));
        }
    }
    assert_all(mismatches);
}
