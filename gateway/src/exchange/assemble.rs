//! A complete reply built from a stream. A request that did not ask for a stream but runs under a
//! hard budget is sent upstream as a stream, so that a provider ignoring `max_tokens` can be cut
//! off at the reservation like a streamed one (a complete reply arrives only once it has all been
//! generated, and billed); the client still gets one `chat.completion`.

use std::collections::BTreeMap;

use futures::StreamExt;
use serde_json::{Map, Value, json};

use crate::providers::{ChunkStream, Completion, UpstreamError};
use crate::redact::Redactor;

/// One choice as its deltas add up.
#[derive(Default)]
struct Choice {
    content: Option<String>,
    refusal: Option<String>,
    /// Tool calls by their index: `id`, `type`, `function.name` come once, `arguments` in pieces.
    tool_calls: BTreeMap<u64, Map<String, Value>>,
    finish_reason: Option<Value>,
}

/// Reads `chunks` to their end, or until more than `cap` bytes of text came (then the reply ends
/// as the provider should have ended it: `finish_reason: length`, and the upstream connection is
/// dropped). Returns the reply and whether it was cut.
pub(super) async fn complete(
    mut chunks: ChunkStream,
    cap: usize,
    redactor: &Redactor,
) -> Result<(Completion, bool), UpstreamError> {
    let mut head = Map::new();
    let mut choices: BTreeMap<u64, Choice> = BTreeMap::new();
    let mut usage = None;
    let mut text_bytes = 0usize;
    let mut cut = false;
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk?.redacted(redactor)?;
        text_bytes = text_bytes.saturating_add(chunk.content_len());
        let value = chunk.to_value()?;
        for field in ["id", "created", "model", "system_fingerprint"] {
            if let (false, Some(v)) = (head.contains_key(field), value.get(field)) {
                head.insert(field.to_owned(), v.clone());
            }
        }
        if let Some(reported) = value.get("usage").filter(|u| u.is_object()) {
            usage = Some(reported.clone());
        }
        for delta in value.get("choices").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
            let index = delta.get("index").and_then(Value::as_u64).unwrap_or(0);
            add(choices.entry(index).or_default(), delta);
        }
        if text_bytes > cap {
            cut = true;
            break;
        }
    }
    let choices: Vec<Value> = choices
        .into_iter()
        .map(|(index, choice)| {
            let finish = if cut { json!("length") } else { choice.finish_reason.unwrap_or(json!("stop")) };
            let mut message = json!({"role": "assistant", "content": choice.content});
            if let Some(refusal) = choice.refusal {
                message["refusal"] = json!(refusal);
            }
            if !choice.tool_calls.is_empty() {
                message["tool_calls"] =
                    Value::Array(choice.tool_calls.into_values().map(Value::Object).collect());
            }
            json!({"index": index, "message": message, "finish_reason": finish})
        })
        .collect();
    let mut reply = head;
    reply.insert("object".into(), json!("chat.completion"));
    reply.insert("choices".into(), Value::Array(choices));
    if let Some(usage) = usage {
        reply.insert("usage".into(), usage);
    }
    Ok((Completion::from_value(&Value::Object(reply))?, cut))
}

/// Adds one chunk's delta for a choice.
fn add(choice: &mut Choice, delta_choice: &Value) {
    if let Some(reason) = delta_choice.get("finish_reason").filter(|r| !r.is_null()) {
        choice.finish_reason = Some(reason.clone());
    }
    let Some(delta) = delta_choice.get("delta") else { return };
    if let Some(text) = delta.get("content").and_then(Value::as_str) {
        choice.content.get_or_insert_with(String::new).push_str(text);
    }
    if let Some(text) = delta.get("refusal").and_then(Value::as_str) {
        choice.refusal.get_or_insert_with(String::new).push_str(text);
    }
    for call in delta.get("tool_calls").and_then(Value::as_array).map(Vec::as_slice).unwrap_or_default() {
        let index = call.get("index").and_then(Value::as_u64).unwrap_or(0);
        let entry = choice.tool_calls.entry(index).or_default();
        for field in ["id", "type"] {
            if let Some(value) = call.get(field).filter(|v| !v.is_null()) {
                entry.insert(field.to_owned(), value.clone());
            }
        }
        let Some(function) = call.get("function") else { continue };
        let target = entry.entry("function").or_insert_with(|| json!({"name": "", "arguments": ""}));
        for field in ["name", "arguments"] {
            if let (Some(piece), Some(Value::String(sum))) =
                (function.get(field).and_then(Value::as_str), target.get_mut(field))
            {
                sum.push_str(piece);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;
    use crate::providers::Chunk;

    fn stream(chunks: &[Value]) -> ChunkStream {
        let chunks: Vec<_> = chunks.iter().map(|c| Chunk::parse(Bytes::from(c.to_string()))).collect();
        Box::pin(futures::stream::iter(chunks))
    }

    #[tokio::test]
    async fn deltas_add_up_to_one_reply_with_its_usage() {
        let chunks = stream(&[
            json!({"id": "c1", "created": 7, "model": "m", "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"content": "lo", "tool_calls": [
                {"index": 0, "id": "t1", "type": "function", "function": {"name": "get", "arguments": "{\"a\""}}]}}]}),
            json!({"id": "c1", "choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]},
                   "finish_reason": "tool_calls"}]}),
            json!({"id": "c1", "choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2}}),
        ]);
        let (reply, cut) = complete(chunks, 1000, &Redactor::default()).await.unwrap();
        assert!(!cut);
        let reply = reply.to_value().unwrap();
        assert_eq!((reply["id"].as_str(), reply["object"].as_str()), (Some("c1"), Some("chat.completion")));
        let message = &reply["choices"][0]["message"];
        assert_eq!(message["content"], "Hello");
        assert_eq!(message["tool_calls"][0]["function"], json!({"name": "get", "arguments": "{\"a\":1}"}));
        assert_eq!(reply["choices"][0]["finish_reason"], "tool_calls");
        assert_eq!(reply["usage"]["completion_tokens"], 2);
    }

    #[tokio::test]
    async fn a_reply_past_the_cap_ends_at_the_length_limit() {
        let word = json!({"choices": [{"index": 0, "delta": {"content": "word "}}]});
        let chunks = stream(&vec![word; 100]);
        let (reply, cut) = complete(chunks, 20, &Redactor::default()).await.unwrap();
        assert!(cut);
        let reply = reply.to_value().unwrap();
        assert_eq!(reply["choices"][0]["finish_reason"], "length");
        assert_eq!(reply["choices"][0]["message"]["content"], "word word word word word ");
    }
}
