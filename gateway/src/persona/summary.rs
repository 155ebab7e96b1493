//! Conversation summaries by the persona's own model (`spec.memory.summaries`): the conversation
//! so far goes to the model with an instruction and a JSON schema for the answer, and what comes
//! back is checked before it is stored as a memory of kind `summary`.

use serde::Deserialize;
use serde_json::{Value, json};

use super::memory::{MemoryKind, NewMemory};
use crate::chat_request::{ChatRequest, Message, Role};

/// The longest summary kept, in characters, and the output tokens allowed for it.
const MAX_SUMMARY: usize = 1000;
const MAX_TOKENS: u64 = 400;
/// The most of a conversation kept for its summary, in bytes: its latest part.
pub const MAX_TRANSCRIPT: usize = 16 * 1024;

const INSTRUCTION: &str = "You summarise a conversation between a user and an assistant for the \
assistant's long-term memory. Write what the user said about themselves, what was decided or \
promised, and what remains open, in at most five short sentences, in the third person about the \
user. Score importance from 1 (small talk) to 10 (must never be forgotten). Answer with JSON only: \
{\"summary\": \"...\", \"importance\": 1-10}.";

/// The conversation of a chat, for its summary: each message but the system's as `role: text`,
/// the latest [`MAX_TRANSCRIPT`] bytes of it.
pub fn transcript(request: &ChatRequest) -> String {
    let mut text = String::new();
    for message in request.messages.iter().filter(|m| m.role != Role::System) {
        let content = message.texts().collect::<Vec<_>>().join(" ");
        if !content.trim().is_empty() {
            text.push_str(&format!("{}: {}\n", message.role.as_str(), content.trim()));
        }
    }
    latest(&text, MAX_TRANSCRIPT).to_owned()
}

/// The latest part of `text`: its last `max_bytes` at most, from a character boundary.
pub fn latest(text: &str, max_bytes: usize) -> &str {
    let mut start = text.len().saturating_sub(max_bytes);
    while !text.is_char_boundary(start) {
        start += 1;
    }
    &text[start..]
}

/// The chat request that asks `model` for the summary of `transcript`.
pub fn request(model: &str, transcript: &str) -> ChatRequest {
    let rest = json!({
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "summary", "strict": true, "schema": {
                "type": "object",
                "additionalProperties": false,
                "required": ["summary", "importance"],
                "properties": {
                    "summary": {"type": "string", "minLength": 1, "maxLength": MAX_SUMMARY},
                    "importance": {"type": "integer", "minimum": 1, "maximum": 10},
                },
            }},
        },
    });
    ChatRequest {
        model: model.to_owned(),
        messages: vec![Message::new(Role::System, INSTRUCTION), Message::new(Role::User, transcript)],
        max_tokens: Some(MAX_TOKENS),
        rest: rest.as_object().cloned().unwrap_or_default(),
        ..ChatRequest::default()
    }
}

#[derive(Deserialize)]
struct Answer {
    summary: String,
    importance: u8,
}

/// The summary memory in a chat completion answering [`request`], or why there is none.
pub fn summary_in_reply(body: &Value) -> Result<NewMemory, String> {
    let text = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| "the reply has no text".to_owned())?;
    let answer: Answer =
        serde_json::from_str(text).map_err(|e| format!("the reply is not the summary JSON: {e}"))?;
    let summary = answer.summary.trim();
    if summary.is_empty() || summary.chars().count() > MAX_SUMMARY {
        return Err(format!("the summary is empty or over {MAX_SUMMARY} characters"));
    }
    Ok(NewMemory {
        kind: MemoryKind::Summary,
        content: summary.to_owned(),
        importance: answer.importance.clamp(1, 10),
        slot: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_transcript_keeps_the_conversation_latest_last_within_its_bound() {
        let mut request = ChatRequest {
            messages: vec![
                Message::new(Role::System, "You are Sage."),
                Message::new(Role::User, "I moved to York."),
                Message::new(Role::Assistant, "Welcome to York!"),
                Message::new(Role::User, "  "),
            ],
            ..ChatRequest::default()
        };
        assert_eq!(transcript(&request), "user: I moved to York.\nassistant: Welcome to York!\n");
        request.messages = vec![Message::new(Role::User, "é".repeat(MAX_TRANSCRIPT))];
        let cut = transcript(&request);
        assert!(cut.len() <= MAX_TRANSCRIPT && cut.ends_with("é\n"), "cut at a character boundary");
    }

    #[test]
    fn a_summary_is_read_from_its_json_and_checked() {
        let reply =
            |content: &str| json!({"choices": [{"message": {"role": "assistant", "content": content}}]});
        let memory =
            summary_in_reply(&reply(r#"{"summary": " Grace moved to York. ", "importance": 12}"#)).unwrap();
        assert_eq!(
            (memory.kind, memory.content.as_str(), memory.importance),
            (MemoryKind::Summary, "Grace moved to York.", 10)
        );
        assert!(summary_in_reply(&reply(r#"{"summary": " ", "importance": 3}"#)).is_err());
        assert!(summary_in_reply(&reply("Grace moved to York.")).is_err());
        let request = request("m", "user: hi").to_value();
        assert_eq!(request["messages"][1]["content"], "user: hi");
        assert!(jsonschema::validator_for(&request["response_format"]["json_schema"]["schema"]).is_ok());
    }
}
