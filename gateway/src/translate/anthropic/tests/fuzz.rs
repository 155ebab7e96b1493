//! Fuzz targets (bolero) for both directions of the translation: request and reply bodies, and
//! event streams, generated from the corpus's real ones (see `fuzz_json.rs`). Whatever comes in,
//! a translation fails with an error or yields what the other API's clients can read.

use std::fmt;
use std::time::Duration;

use bolero::{Driver, TypeGenerator};

use super::fuzz_json::{Vocabulary, below, document, edit, object, one_in, pick, raw_input, string, value};
use super::*;
use crate::validate;

const BODIES: [&str; 4] = [
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__bodies_translate_or_fail_cleanly/corpus/anthropic-request.json"
    ),
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__bodies_translate_or_fail_cleanly/corpus/chat-request.json"
    ),
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__bodies_translate_or_fail_cleanly/corpus/anthropic-response.json"
    ),
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__bodies_translate_or_fail_cleanly/corpus/chat-response.json"
    ),
];

const STREAMS: [&str; 4] = [
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__event_streams_translate_in_order/corpus/anthropic-stream.txt"
    ),
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__event_streams_translate_in_order/corpus/anthropic-thinking-error.txt"
    ),
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__event_streams_translate_in_order/corpus/openai-stream.txt"
    ),
    include_str!(
        "__fuzz__/translate__anthropic__tests__fuzz__event_streams_translate_in_order/corpus/openai-tool-call-crlf.txt"
    ),
];

#[rustfmt::skip]
const VOCABULARY: Vocabulary = Vocabulary {
    keys: &[
        "model", "messages", "role", "content", "type", "text", "source", "media_type", "data", "url",
        "tool_use_id", "id", "name", "input", "system", "max_tokens", "max_completion_tokens", "temperature",
        "top_p", "top_k", "stop_sequences", "stop", "stream", "metadata", "user_id", "user", "tools",
        "input_schema", "tool_choice", "disable_parallel_tool_use", "parallel_tool_calls", "cache_control",
        "function", "arguments", "parameters", "tool_calls", "tool_call_id", "image_url", "file", "file_data",
        "filename", "title", "n", "choices", "message", "finish_reason", "stop_reason", "usage",
        "input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens",
        "prompt_tokens", "completion_tokens", "prompt_tokens_details", "cached_tokens", "refusal", "index",
        "delta", "partial_json", "content_block", "thinking", "error",
    ],
    strings: &[
        "user", "assistant", "system", "developer", "tool", "text", "image", "document", "tool_result",
        "tool_use", "thinking", "redacted_thinking", "base64", "url", "image/png",
        "data:image/png;base64,AAAA", "https://example.com/a.png", "auto", "any", "none", "required",
        "function", "custom", "ephemeral", "end_turn", "max_tokens", "stop", "length", "tool_calls",
        "content_filter", "{\"a\":1}", "{\"a\":", "", "hi", "msg_01", "chatcmpl-01", "message_start",
        "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop",
        "ping", "error", "text_delta", "input_json_delta", "thinking_delta", "overloaded_error",
    ],
};

/// A JSON document shown as its text when a case fails.
struct Doc(Value);

impl fmt::Debug for Doc {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl TypeGenerator for Doc {
    fn generate<D: Driver>(d: &mut D) -> Option<Doc> {
        if let Some(raw) = raw_input(d, |bytes| serde_json::from_slice::<Value>(bytes).is_ok()) {
            return serde_json::from_slice(&raw).ok().map(Doc);
        }
        document(d, &VOCABULARY, &BODIES).map(Doc)
    }
}

/// Whether `value` is an integer `u64` holds.
fn is_count(value: &Value) -> bool {
    value.is_u64()
}

/// Checks a chat request made from a Messages request, and sends it on the way the gateway does.
fn check_chat_request(request: &Value, chat: &Value) {
    assert_eq!(chat["model"], request["model"]);
    assert_eq!(chat["max_tokens"], request["max_tokens"]);
    for message in chat["messages"].as_array().expect("`messages` is an array") {
        let role = message["role"].as_str().unwrap_or_default();
        assert!(["system", "user", "assistant", "tool"].contains(&role), "{message}");
    }
    if chat.get("stream") == Some(&Value::Bool(true)) {
        assert_eq!(chat["stream_options"]["include_usage"], true, "an Anthropic stream needs the usage");
    }
    assert!(chat.get("tool_choice").is_none() || chat.get("tools").is_some(), "`tool_choice` without tools");
    if let Some(chat) = chat.as_object() {
        let _ = validate::chat_request(chat);
    }
    let _ = chat_request_to_messages(chat, "upstream");
}

/// Checks a Messages request made from a chat request: Anthropic's rules for one, and that the
/// gateway's own Messages reader takes it.
fn check_messages_request(messages: &Value) {
    assert_eq!(messages["model"], "upstream");
    assert!(messages["max_tokens"].as_u64().is_some_and(|n| n > 0));
    let turns = messages["messages"].as_array().expect("`messages` is an array");
    assert!(!turns.is_empty(), "no turn");
    for pair in turns.windows(2) {
        assert_ne!(pair[0]["role"], pair[1]["role"], "turns alternate");
    }
    for turn in turns {
        let content = &turn["content"];
        assert!(
            content.as_str().is_some_and(|s| !s.is_empty())
                || content.as_array().is_some_and(|a| !a.is_empty())
        );
        let blocks = content.as_array().map(Vec::as_slice).unwrap_or_default();
        let results = blocks.iter().take_while(|b| b["type"] == "tool_result").count();
        assert!(blocks[results..].iter().all(|b| b["type"] != "tool_result"), "tool results come first");
    }
    if let Some(temperature) = messages.get("temperature") {
        assert!(temperature.as_f64().is_some_and(|t| (0.0..=1.0).contains(&t)), "{temperature}");
    }
    assert!(messages.get("tool_choice").is_none() || messages.get("tools").is_some());
    if let Err(error) = messages_request_to_chat(messages) {
        panic!("the gateway's own Messages request is refused: {error}\n{messages}");
    }
}

fn check_chat_response(chat: &Value) {
    assert_eq!(chat["object"], "chat.completion");
    let finish = chat["choices"][0]["finish_reason"].as_str().unwrap_or_default();
    assert!(["stop", "length", "tool_calls", "content_filter"].contains(&finish), "{finish}");
    let usage = &chat["usage"];
    for key in ["prompt_tokens", "completion_tokens", "total_tokens", "cache_read_input_tokens"] {
        assert!(is_count(&usage[key]), "{key}: {usage}");
    }
    let (prompt, completion) = (usage["prompt_tokens"].as_u64(), usage["completion_tokens"].as_u64());
    assert_eq!(usage["total_tokens"].as_u64(), prompt.zip(completion).map(|(p, c)| p.saturating_add(c)));
    assert!(
        usage["prompt_tokens_details"]["cached_tokens"].as_u64() <= prompt,
        "cached tokens are prompt tokens"
    );
    for call in chat["choices"][0]["message"]["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default()
    {
        let arguments = call["function"]["arguments"].as_str().expect("arguments are a string");
        assert!(serde_json::from_str::<Value>(arguments).is_ok(), "arguments are JSON: {arguments}");
    }
}

fn check_messages_response(message: &Value) {
    assert_eq!((&message["type"], &message["role"]), (&json!("message"), &json!("assistant")));
    for block in message["content"].as_array().expect("`content` is an array") {
        match block["type"].as_str() {
            Some("text") => assert!(block["text"].as_str().is_some_and(|t| !t.is_empty()), "{block}"),
            Some("tool_use") => assert!(block["input"].is_object() && block["id"].is_string(), "{block}"),
            _ => panic!("unexpected block {block}"),
        }
    }
    let stop = message["stop_reason"].as_str().unwrap_or_default();
    assert!(["end_turn", "max_tokens", "tool_use", "refusal"].contains(&stop), "{stop}");
    for key in ["input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"] {
        assert!(is_count(&message["usage"][key]), "{key}");
    }
}

/// Fuzz target: any JSON body, given to all four translations, is refused with an error or
/// translated into what the other API takes (a Messages request that the gateway's own Messages
/// reader accepts in turn; replies with known stop reasons, usage counts and JSON arguments).
#[test]
fn bodies_translate_or_fail_cleanly() {
    bolero::check!().with_type::<Doc>().with_test_time(Duration::from_secs(2)).for_each(|doc| {
        let body = &doc.0;
        // Every body goes through every translation: a request read as a reply, and the other way
        // round, must fail cleanly too.
        if let Ok(chat) = messages_request_to_chat(body) {
            check_chat_request(body, &chat);
        }
        if let Ok(messages) = chat_request_to_messages(body, "upstream") {
            check_messages_request(&messages);
        }
        check_chat_response(&messages_response_to_chat(body, "model"));
        check_messages_response(&chat_response_to_messages(body, "model"));
    });
}

/// An event stream: `(event name, data)` in order; a chat stream's frames have no name.
struct Events(Vec<(String, Value)>);

impl fmt::Debug for Events {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (name, data) in &self.0 {
            writeln!(f, "event: {name}\ndata: {data}\n")?;
        }
        Ok(())
    }
}

/// The events of an event-stream text whose data is JSON (as the providers' SSE reader hands
/// them over; a line is enough here).
fn parse_stream(text: &str) -> Vec<(String, Value)> {
    let mut events = Vec::new();
    let mut name = String::new();
    for line in text.lines() {
        let line = line.trim_end_matches('\r');
        if let Some(rest) = line.strip_prefix("event:") {
            name = rest.trim().to_owned();
        } else if let Some(data) = line.strip_prefix("data:") {
            if let Ok(data) = serde_json::from_str(data.trim()) {
                events.push((std::mem::take(&mut name), data));
            }
        } else if line.is_empty() {
            name.clear();
        }
    }
    events
}

const EVENT_NAMES: [&str; 10] = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
    "",
    "surprise",
];

impl TypeGenerator for Events {
    fn generate<D: Driver>(d: &mut D) -> Option<Events> {
        let looks_like_sse =
            |bytes: &[u8]| std::str::from_utf8(bytes).is_ok_and(|text| text.contains("data:"));
        if let Some(raw) = raw_input(d, looks_like_sse) {
            return Some(Events(parse_stream(&String::from_utf8_lossy(&raw))));
        }
        let seed = parse_stream(pick(d, &STREAMS)?);
        let mut events = if one_in(d, 4)? { Vec::new() } else { seed.clone() };
        for _ in 0..below(d, 8)? {
            let at = below(d, events.len() + 1)?;
            match below(d, 5)? {
                0 if at < events.len() => {
                    events.remove(at);
                }
                1 if at < events.len() => {
                    let copy = events[below(d, events.len())?].clone();
                    events.insert(at, copy);
                }
                2 if at < events.len() => edit(d, &VOCABULARY, &mut events[at].1, 0)?,
                3 if !seed.is_empty() => {
                    let (name, mut data) = seed[below(d, seed.len())?].clone();
                    edit(d, &VOCABULARY, &mut data, 0)?;
                    events.insert(at, (name, data));
                }
                _ => {
                    let name = (*pick(d, &EVENT_NAMES)?).to_owned();
                    let mut data = if one_in(d, 8)? {
                        value(d, &VOCABULARY, 1)?
                    } else {
                        Value::Object(object(d, &VOCABULARY, 1)?)
                    };
                    let kind = if one_in(d, 4)? { string(d, &VOCABULARY)? } else { name.clone() };
                    if let Some(map) = data.as_object_mut() {
                        map.insert("type".into(), Value::String(kind));
                    }
                    events.insert(at, (name, data));
                }
            }
        }
        Some(Events(events))
    }
}

/// Feeds Anthropic events to a translator into chat chunks and checks the chunks.
fn check_anthropic_to_chat(events: &[(String, Value)]) {
    let mut stream = MessagesToChatStream::new("model");
    let mut roles = 0;
    let mut first = true;
    for (name, data) in events {
        let kind =
            if name.is_empty() { data.get("type").and_then(Value::as_str).unwrap_or_default() } else { name };
        let chunks = match stream.feed(name, data) {
            Ok(chunks) => chunks,
            Err(error) => {
                assert_eq!(kind, "error", "only an error event fails: {error}");
                assert!(matches!(error, TranslateError::Upstream { .. }));
                continue;
            }
        };
        for chunk in chunks {
            assert_eq!(
                (&chunk["object"], &chunk["model"]),
                (&json!("chat.completion.chunk"), &json!("model"))
            );
            assert!(chunk["id"].is_string() && is_count(&chunk["created"]));
            let choices = chunk["choices"].as_array().expect("`choices` is an array");
            if choices.is_empty() {
                assert_eq!(kind, "message_stop", "the usage chunk ends the message");
                for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
                    assert!(is_count(&chunk["usage"][key]), "{key}");
                }
                continue;
            }
            assert_eq!(choices.len(), 1);
            let delta = &choices[0]["delta"];
            if delta.get("role").is_some() {
                roles += 1;
            }
            assert!(!first || delta["role"] == "assistant", "the first chunk gives the role");
            first = false;
            for call in delta["tool_calls"].as_array().map(Vec::as_slice).unwrap_or_default() {
                assert!(is_count(&call["index"]) && call["function"]["arguments"].is_string(), "{call}");
            }
        }
    }
    assert!(roles <= 1, "the role chunk comes once");
    for key in ["prompt_tokens", "completion_tokens", "total_tokens"] {
        assert!(is_count(&stream.usage()[key]));
    }
}

/// Feeds chat chunks to a translator into Anthropic events and checks the event grammar the SDKs
/// rely on.
fn check_chat_to_anthropic(events: &[(String, Value)]) {
    let mut stream = ChatToMessagesStream::new("model", "msg_01");
    let mut out = Vec::new();
    for (_, chunk) in events {
        out.extend(stream.feed(chunk));
    }
    out.extend(stream.finish());
    assert!(
        stream.finish().is_empty() && stream.feed(&json!({"choices": []})).is_empty(),
        "the stream is over"
    );
    let names: Vec<&str> = out.iter().map(|(name, _)| *name).collect();
    assert_eq!(names[..2], ["message_start", "ping"]);
    let mut blocks: Vec<Value> = Vec::new();
    let mut open: Option<u64> = None;
    for (i, (name, data)) in out.iter().enumerate() {
        assert_eq!(data["type"], *name, "event name and data.type agree");
        let last = i + 1 == out.len();
        match *name {
            "message_start" | "ping" => assert!(i < 2),
            "content_block_start" => {
                assert!(open.is_none(), "a block starts while another is open");
                assert_eq!(data["index"], blocks.len(), "block indexes are consecutive");
                open = data["index"].as_u64();
                blocks.push(data["content_block"].clone());
            }
            "content_block_delta" => {
                let block = data["index"].as_u64().and_then(|index| blocks.get(index as usize));
                let block = block.expect("a delta for a block that has started");
                let want = match data["delta"]["type"].as_str() {
                    Some("text_delta") => "text",
                    Some("input_json_delta") => "tool_use",
                    other => panic!("unexpected delta {other:?}"),
                };
                assert_eq!(block["type"], want, "a delta of the block's type");
            }
            "content_block_stop" => {
                assert_eq!(data["index"].as_u64(), open, "only the open block stops");
                open = None;
            }
            "message_delta" => {
                assert!(open.is_none(), "the message ends with a block open");
                assert_eq!(names.get(i + 1), Some(&"message_stop"));
                assert!(is_count(&data["usage"]["output_tokens"]));
            }
            "message_stop" | "error" => assert!(last, "an event after the end"),
            other => panic!("unexpected event {other}"),
        }
    }
}

/// Fuzz target: any event sequence, given to both stream translators, yields chat chunks with one
/// role chunk first and usage last, and Anthropic events in the grammar the SDKs rely on.
#[test]
fn event_streams_translate_in_order() {
    bolero::check!().with_type::<Events>().with_test_time(Duration::from_secs(2)).for_each(|events| {
        // Every stream goes to both translators: a chat stream read as Anthropic events, and the
        // other way round, must come out well formed too.
        check_anthropic_to_chat(&events.0);
        check_chat_to_anthropic(&events.0);
    });
}
