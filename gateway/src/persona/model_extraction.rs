//! Memory extraction by the persona's own model (`extraction: Model`): the user's message goes to
//! the model with an instruction and a JSON schema for the answer, and what comes back is checked
//! before anything is stored. The call is an ordinary exchange, so the caller's rate limits and
//! budgets apply and the ledger records its cost (endpoint `memory_extraction`).

use serde::Deserialize;
use serde_json::{Value, json};

use super::memory::{MemoryKind, NewMemory, slot_key};
use crate::chat_request::{ChatRequest, Message, Role};

/// Memories taken from one reply at most, and the longest memory kept, in characters.
const MAX_MEMORIES: usize = 8;
const MAX_CONTENT: usize = 300;
/// Output tokens allowed for the answer.
const MAX_TOKENS: u64 = 400;

const INSTRUCTION: &str = "You extract long-term memories about the user from the user's message. \
Keep only durable, specific statements about the user (facts, preferences, notable events), each as \
one short sentence in the user's own words. Score importance from 1 (trivia) to 10 (must never be \
forgotten, such as allergies or names). When a statement gives the value of an attribute the user has \
only one of at a time (where they live, their job, their car, a favourite), name that attribute in \
\"slot\" (\"home\", \"job\", \"car\", \"favourite colour\"), so that it replaces the old value; \
otherwise null. Answer with JSON only: {\"memories\": [{\"content\": \"...\", \"kind\": \
\"fact|preference|event\", \"importance\": 1-10, \"slot\": \"...\" or null}]}; an empty list when \
nothing is worth keeping.";

/// The chat request that asks `model` for the memories in `message`.
pub fn request(model: &str, message: &str) -> ChatRequest {
    let rest = json!({
        "temperature": 0,
        "response_format": {
            "type": "json_schema",
            "json_schema": {"name": "memories", "strict": true, "schema": schema()},
        },
    });
    ChatRequest {
        model: model.to_owned(),
        messages: vec![Message::new(Role::System, INSTRUCTION), Message::new(Role::User, message)],
        max_tokens: Some(MAX_TOKENS),
        rest: rest.as_object().cloned().unwrap_or_default(),
        ..ChatRequest::default()
    }
}

/// The answer's JSON schema; the exchange validates the reply against it (retrying once on
/// another backend when it does not match).
fn schema() -> Value {
    json!({
        "type": "object",
        "additionalProperties": false,
        "required": ["memories"],
        "properties": {"memories": {"type": "array", "maxItems": 20, "items": {
            "type": "object",
            "additionalProperties": false,
            "required": ["content", "kind", "importance", "slot"],
            "properties": {
                "content": {"type": "string", "minLength": 1},
                "kind": {"type": "string", "enum": ["fact", "preference", "event"]},
                "importance": {"type": "integer", "minimum": 1, "maximum": 10},
                "slot": {"type": ["string", "null"], "maxLength": 64},
            },
        }}},
    })
}

#[derive(Deserialize)]
struct Answer {
    memories: Vec<Item>,
}

#[derive(Deserialize)]
struct Item {
    content: String,
    kind: String,
    importance: u8,
    #[serde(default)]
    slot: Option<String>,
}

/// The memories in a chat completion answering [`request`], or why there are none.
pub fn memories_in_reply(body: &Value) -> Result<Vec<NewMemory>, String> {
    let text = body
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .ok_or_else(|| "the reply has no text".to_owned())?;
    let answer: Answer =
        serde_json::from_str(text).map_err(|e| format!("the reply is not the memories JSON: {e}"))?;
    Ok(answer
        .memories
        .into_iter()
        .filter_map(|item| {
            let content = item.content.trim();
            let kind = MemoryKind::parse(&item.kind)?;
            (!content.is_empty() && content.chars().count() <= MAX_CONTENT).then(|| NewMemory {
                kind,
                content: content.to_owned(),
                importance: item.importance.clamp(1, 10),
                slot: item.slot.as_deref().and_then(slot_key),
            })
        })
        .take(MAX_MEMORIES)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(content: &str) -> Value {
        json!({"choices": [{"message": {"role": "assistant", "content": content}}]})
    }

    #[test]
    fn the_request_carries_the_message_and_a_schema() {
        let request = request("gpt-x", "I am allergic to shellfish.").to_value();
        assert_eq!(request["messages"][1]["content"], "I am allergic to shellfish.");
        assert_eq!(request["response_format"]["type"], "json_schema");
        assert!(jsonschema::validator_for(&request["response_format"]["json_schema"]["schema"]).is_ok());
    }

    #[test]
    fn valid_items_are_kept_and_odd_ones_dropped() {
        let body = reply(
            r#"{"memories": [
                {"content": " I am allergic to shellfish. ", "kind": "fact", "importance": 10, "slot": null},
                {"content": "Likes jazz", "kind": "preference", "importance": 6},
                {"content": "Lives in York", "kind": "fact", "importance": 6, "slot": " Home!"},
                {"content": "", "kind": "fact", "importance": 3},
                {"content": "Unknown kind", "kind": "rumour", "importance": 3}
            ]}"#,
        );
        let memories = memories_in_reply(&body).unwrap_or_default();
        assert_eq!(
            memories,
            [
                NewMemory {
                    kind: MemoryKind::Fact,
                    content: "I am allergic to shellfish.".into(),
                    importance: 10,
                    slot: None
                },
                NewMemory {
                    kind: MemoryKind::Preference,
                    content: "Likes jazz".into(),
                    importance: 6,
                    slot: None
                },
                NewMemory {
                    kind: MemoryKind::Fact,
                    content: "Lives in York".into(),
                    importance: 6,
                    slot: Some("home".into())
                },
            ]
        );
    }

    #[test]
    fn prose_is_not_taken_for_memories() {
        assert!(memories_in_reply(&reply("Sure! The user likes jazz.")).is_err());
        assert!(memories_in_reply(&json!({"choices": []})).is_err());
    }
}
