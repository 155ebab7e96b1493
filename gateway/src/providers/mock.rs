//! The built-in `mock` provider: a deterministic reply that reveals what it received, so the
//! samples work offline and tests can see what the gateway sent.
//!
//! Reply: `echo (<model>, <n> messages, system prompt: yes|no): <last user text>`.
//! Usage: prompt = words of every message + 3 per message; completion = words of the reply.
//! Legacy completions: `echo (<model>): <prompt>` for each prompt, `n` times; usage as above.
//! Embeddings: see [`super::mock_embeddings`].

use std::time::{SystemTime, UNIX_EPOCH};

use futures::stream;
use serde_json::{Value, json};

use super::{Call, Chunk, Completion, Reply, UpstreamError, mock_embeddings};
use crate::chat_request::{ChatRequest, Message, Role};
use crate::completions_request::CompletionsRequest;
use crate::embeddings_request::Input;
use crate::payload::Payload;

pub(super) fn reply(call: &Call<'_>) -> Result<Reply, UpstreamError> {
    match call.request {
        Payload::Chat(request) => chat(request, call.model, call.stream),
        Payload::Completions(request) => completions(request, call.model, call.stream),
        Payload::Embeddings(request) => mock_embeddings::reply(request, call.model).map(Reply::Complete),
    }
}

fn chat(request: &ChatRequest, model: &str, stream: bool) -> Result<Reply, UpstreamError> {
    let messages = &request.messages;
    let last_user = messages.iter().rev().find(|m| m.role == Role::User).map(text_of);
    let has_system = messages.iter().any(|m| matches!(m.role, Role::System | Role::Developer));
    let text = format!(
        "echo ({model}, {} messages, system prompt: {}): {}",
        messages.len(),
        if has_system { "yes" } else { "no" },
        last_user.unwrap_or_default()
    );
    let prompt_tokens = prompt_tokens(messages);
    let completion_tokens = words(&text);
    let usage = json!({
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
        "prompt_tokens_details": {"cached_tokens": 0},
    });
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let id = format!("chatcmpl-mock-{}", uuid::Uuid::new_v4().simple());
    if !stream {
        let body = json!({
            "id": id, "object": "chat.completion", "created": created, "model": model,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text, "refusal": null},
                         "logprobs": null, "finish_reason": "stop"}],
            "usage": usage,
        });
        return Completion::from_value(&body).map(Reply::Complete);
    }
    let chunk = |delta: Value, finish: Value| {
        json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
               "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let mut chunks = vec![chunk(json!({"role": "assistant", "content": ""}), Value::Null)];
    let pieces: Vec<&str> = text.split_inclusive(' ').collect();
    chunks.extend(pieces.iter().map(|piece| chunk(json!({"content": piece}), Value::Null)));
    chunks.push(chunk(json!({}), json!("stop")));
    chunks.push(json!({"id": id, "object": "chat.completion.chunk", "created": created, "model": model,
                       "choices": [], "usage": usage}));
    Ok(Reply::Stream(Box::pin(stream::iter(chunks.iter().map(Chunk::from_value).collect::<Vec<_>>()))))
}

/// A legacy completion of each prompt (`n` of each), whole or as `text_completion` chunks.
fn completions(request: &CompletionsRequest, model: &str, stream: bool) -> Result<Reply, UpstreamError> {
    let prompts: Vec<String> = match &request.prompt {
        Input::Tokens(tokens) => vec![format!("{} tokens", tokens.len())],
        Input::TokenLists(lists) => lists.iter().map(|l| format!("{} tokens", l.len())).collect(),
        prompt => prompt.texts().map(str::to_owned).collect(),
    };
    let n = request.field("n").and_then(Value::as_u64).unwrap_or(1).clamp(1, 128) as usize;
    let texts: Vec<String> = prompts
        .iter()
        .flat_map(|prompt| std::iter::repeat_n(format!("echo ({model}): {prompt}"), n))
        .collect();
    let prompt_tokens: u64 = prompts.iter().map(|p| words(p)).sum();
    let completion_tokens: u64 = texts.iter().map(|t| words(t)).sum();
    let usage = json!({"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens});
    let created = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
    let id = format!("cmpl-mock-{}", uuid::Uuid::new_v4().simple());
    let object = |choices: Value| json!({"id": id, "object": "text_completion", "created": created, "model": model, "choices": choices});
    if !stream {
        let choices: Vec<Value> = texts
            .iter()
            .enumerate()
            .map(|(index, text)| json!({"index": index, "text": text, "logprobs": null, "finish_reason": "stop"}))
            .collect();
        let mut body = object(json!(choices));
        body["usage"] = usage;
        return Completion::from_value(&body).map(Reply::Complete);
    }
    let mut chunks = Vec::new();
    for (index, text) in texts.iter().enumerate() {
        for piece in text.split_inclusive(' ') {
            chunks.push(object(
                json!([{"index": index, "text": piece, "logprobs": null, "finish_reason": null}]),
            ));
        }
        chunks.push(object(json!([{"index": index, "text": "", "logprobs": null, "finish_reason": "stop"}])));
    }
    let mut last = object(json!([]));
    last["usage"] = usage;
    chunks.push(last);
    Ok(Reply::Stream(Box::pin(stream::iter(chunks.iter().map(Chunk::from_value).collect::<Vec<_>>()))))
}

/// The prompt tokens the mock bills: words of every message, and 3 per message.
pub(super) fn prompt_tokens(messages: &[Message]) -> u64 {
    messages.iter().map(|m| words(&text_of(m)) + 3).sum()
}

/// The length in bytes of a message's text, without copying it (for usage estimates).
pub(crate) fn text_len(content: &Value) -> usize {
    match content {
        Value::String(text) => text.len(),
        Value::Array(parts) => {
            parts.iter().filter_map(|p| p.get("text").and_then(Value::as_str)).map(str::len).sum()
        }
        _ => 0,
    }
}

/// The text of a message: its string content, or its text parts joined by spaces.
fn text_of(message: &Message) -> String {
    message.texts().collect::<Vec<_>>().join(" ")
}

fn words(text: &str) -> u64 {
    text.split_whitespace().count() as u64
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use futures::StreamExt;

    use super::*;

    fn call(request: &ChatRequest, stream: bool) -> Call<'_> {
        Call {
            request: Payload::Chat(request),
            model: "demo-echo",
            body: Default::default(),
            stream,
            timeout: Duration::from_secs(1),
            limits: Default::default(),
            trace: &[],
        }
    }

    fn request() -> ChatRequest {
        let request = json!({"model": "alias", "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "hello there"}]}
        ]});
        ChatRequest::parse(request).unwrap()
    }

    #[test]
    fn complete_reply_reveals_input_and_counts_tokens() {
        let Ok(Reply::Complete(body)) = reply(&call(&request(), false)) else {
            panic!("expected a complete reply")
        };
        let body = body.to_value().unwrap();
        assert_eq!(
            body["choices"][0]["message"]["content"],
            "echo (demo-echo, 2 messages, system prompt: yes): hello there"
        );
        assert_eq!(body["usage"]["prompt_tokens"], 2 + 3 + 2 + 3);
        assert_eq!(body["usage"]["completion_tokens"], 9);
    }

    #[tokio::test]
    async fn stream_carries_the_same_text_and_usage() {
        let Ok(Reply::Stream(stream)) = reply(&call(&request(), true)) else { panic!("expected a stream") };
        let chunks: Vec<Value> = stream.map(|c| c.unwrap().to_value().unwrap()).collect().await;
        let text: String = chunks
            .iter()
            .filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str))
            .collect();
        assert_eq!(text, "echo (demo-echo, 2 messages, system prompt: yes): hello there");
        assert_eq!(chunks.last().unwrap()["usage"]["completion_tokens"], 9);
    }
}
