//! Provider side streaming: Anthropic events -> chat chunks.

use super::to_chat_response::messages_response_to_chat_at;
use super::*;

fn replay(stream: &mut MessagesToChatStream, events: &[(&'static str, Value)]) -> Vec<Value> {
    let mut out = Vec::new();
    for (name, data) in events {
        out.extend(stream.feed(name, data).unwrap().into_iter().map(without_created));
    }
    out
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-01Xy", "object": "chat.completion.chunk", "model": "persona/ada",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

/// A text answer as Anthropic streams it (shape from the streaming docs), with cache numbers.
fn text_events() -> Vec<(&'static str, Value)> {
    events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_01Xy", "type": "message", "role": "assistant", "content": [],
            "model": "claude-sonnet-4-5", "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 25, "output_tokens": 1,
                "cache_creation_input_tokens": 100, "cache_read_input_tokens": 2000}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "!"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "end_turn", "stop_sequence": null}, "usage": {"output_tokens": 15}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

#[test]
fn text_stream_golden() {
    let mut stream = MessagesToChatStream::new("persona/ada");
    let chunks = replay(&mut stream, &text_events());
    let usage = json!({"id": "chatcmpl-01Xy", "object": "chat.completion.chunk", "model": "persona/ada",
        "choices": [], "usage": {
            "prompt_tokens": 2125, "completion_tokens": 15, "total_tokens": 2140,
            "prompt_tokens_details": {"cached_tokens": 2000, "cache_write_tokens": 100},
            "cache_read_input_tokens": 2000, "cache_creation_input_tokens": 100}});
    assert_eq!(
        chunks,
        vec![
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Hello"}), Value::Null),
            chunk(json!({"content": "!"}), Value::Null),
            chunk(json!({}), json!("stop")),
            usage,
        ]
    );
}

/// Text, then two tool calls with the input streamed as JSON fragments, as in the docs' example.
fn tool_events() -> Vec<(&'static str, Value)> {
    let delta = |index: u64, partial: &str| {
        json!({"type": "content_block_delta", "index": index,
            "delta": {"type": "input_json_delta", "partial_json": partial}})
    };
    events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant",
            "model": "claude-sonnet-4-5", "stop_sequence": null, "content": [], "stop_reason": null,
            "usage": {"input_tokens": 472, "output_tokens": 2}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        (
            "content_block_delta",
            json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Okay, let's check"}}),
        ),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1, "content_block": {
            "type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather", "input": {}}}),
        ),
        ("content_block_delta", delta(1, "")),
        ("content_block_delta", delta(1, "{\"location\":")),
        ("content_block_delta", delta(1, " \"San Francisco, CA\"}")),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}}}),
        ),
        ("content_block_delta", delta(2, "{\"tz\": \"PST\"}")),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 2})),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 89}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ])
}

#[test]
fn tool_stream_golden() {
    let mut stream = MessagesToChatStream::new("persona/ada");
    let chunks = replay(&mut stream, &tool_events());
    let chunk = |delta: Value, finish: Value| {
        json!({"id": "chatcmpl-014p7gG3wDgGV9EUtLvnow3U", "object": "chat.completion.chunk",
            "model": "persona/ada",
            "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
    };
    let args = |index: u64, partial: &str| json!({"tool_calls": [{"index": index, "function": {"arguments": partial}}]});
    assert_eq!(chunks.len(), 9);
    assert_eq!(
        chunks[..8],
        [
            chunk(json!({"role": "assistant", "content": ""}), Value::Null),
            chunk(json!({"content": "Okay, let's check"}), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 0, "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "type": "function",
                    "function": {"name": "get_weather", "arguments": ""}}]}),
                Value::Null
            ),
            chunk(args(0, "{\"location\":"), Value::Null),
            chunk(args(0, " \"San Francisco, CA\"}"), Value::Null),
            chunk(
                json!({"tool_calls": [{"index": 1, "id": "toolu_02", "type": "function",
                    "function": {"name": "get_time", "arguments": ""}}]}),
                Value::Null
            ),
            chunk(args(1, "{\"tz\": \"PST\"}"), Value::Null),
            chunk(json!({}), json!("tool_calls")),
        ]
    );
    assert_eq!(chunks[8]["choices"], json!([]));
    assert_eq!(chunks[8]["usage"]["prompt_tokens"], 472);
    assert_eq!(chunks[8]["usage"]["completion_tokens"], 89);
}

#[test]
fn accumulated_stream_equals_non_stream_translation() {
    let mut stream = MessagesToChatStream::new("m");
    let chunks: Vec<Value> =
        tool_events().iter().flat_map(|(name, data)| stream.feed(name, data).unwrap()).collect();
    let message = json!({
        "id": "msg_014p7gG3wDgGV9EUtLvnow3U", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "text", "text": "Okay, let's check"},
            {"type": "tool_use", "id": "toolu_01T1x1fJ34qAmk2tNTrN7Up6", "name": "get_weather",
             "input": {"location": "San Francisco, CA"}},
            {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {"tz": "PST"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 472, "output_tokens": 89},
    });
    let mut accumulated = without_created(accumulate_chat(&chunks));
    let mut expected = without_created(messages_response_to_chat_at(&message, "m", 0));
    // Streams carry arguments verbatim; compare them parsed.
    for doc in [&mut accumulated, &mut expected] {
        for call in doc["choices"][0]["message"]["tool_calls"].as_array_mut().unwrap() {
            let parsed: Value =
                serde_json::from_str(call["function"]["arguments"].as_str().unwrap()).unwrap();
            call["function"]["arguments"] = parsed;
        }
    }
    assert_eq!(accumulated, expected);
}

#[test]
fn cumulative_usage_in_message_delta_wins() {
    let mut stream = MessagesToChatStream::new("m");
    let mut all = text_events();
    all[6].1["usage"] = json!({"input_tokens": 30, "output_tokens": 16,
        "cache_read_input_tokens": 2100, "cache_creation_input_tokens": null});
    let chunks = replay(&mut stream, &all[..7]);
    assert!(chunks.iter().all(|c| c.get("usage").is_none()), "no usage chunk before message_stop");
    // A stream cut before message_stop can still be metered.
    assert_eq!(stream.usage()["prompt_tokens"], 2230);
    let chunks = replay(&mut stream, &all[7..]);
    assert_eq!(
        chunks.last().unwrap()["usage"],
        json!({"prompt_tokens": 2230, "completion_tokens": 16, "total_tokens": 2246,
            "prompt_tokens_details": {"cached_tokens": 2100, "cache_write_tokens": 100},
            "cache_read_input_tokens": 2100, "cache_creation_input_tokens": 100})
    );
}

#[test]
fn thinking_becomes_reasoning_content() {
    let mut stream = MessagesToChatStream::new("m");
    let chunks = replay(
        &mut stream,
        &events(&[
            ("message_start", json!({"type": "message_start", "message": {"id": "msg_t", "usage": {}}})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "thinking", "thinking": "", "signature": ""}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "thinking_delta", "thinking": "Hmm."}}),
            ),
            (
                "content_block_delta",
                json!({"type": "content_block_delta", "index": 0,
                "delta": {"type": "signature_delta", "signature": "EqQBCgIYAhIM"}}),
            ),
            ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 1,
                "content_block": {"type": "redacted_thinking", "data": "abc"}}),
            ),
            ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        ]),
    );
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[1]["choices"][0]["delta"], json!({"reasoning_content": "Hmm."}));
}

#[test]
fn ping_unknown_and_error_events() {
    let mut stream = MessagesToChatStream::new("m");
    assert_eq!(stream.feed("ping", &json!({"type": "ping"})).unwrap(), Vec::<Value>::new());
    assert_eq!(stream.feed("some_future_event", &json!({})).unwrap(), Vec::<Value>::new());
    let err = stream.feed(
        "error",
        &json!({"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}),
    );
    assert_eq!(
        err,
        Err(TranslateError::Upstream { error_type: "overloaded_error".into(), message: "Overloaded".into() })
    );
    let err = stream.feed("error", &json!({}));
    assert!(matches!(err, Err(TranslateError::Upstream { error_type, .. }) if error_type == "api_error"));
}

#[test]
fn event_name_falls_back_to_data_type_and_role_chunk_is_never_lost() {
    let mut stream = MessagesToChatStream::new("m");
    // No message_start at all: the role chunk still comes first.
    let chunks = stream
        .feed(
            "",
            &json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "x"}}),
        )
        .unwrap();
    assert_eq!(chunks.len(), 2);
    assert_eq!(chunks[0]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(chunks[1]["choices"][0]["delta"]["content"], "x");
    assert_eq!(chunks[1]["id"], "chatcmpl-switchboard");
}

#[test]
fn tool_use_with_complete_input_at_start() {
    let mut stream = MessagesToChatStream::new("m");
    let chunks = replay(
        &mut stream,
        &events(&[(
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}}),
        )]),
    );
    assert_eq!(chunks[1]["choices"][0]["delta"]["tool_calls"][0]["function"]["arguments"], "{\"a\":1}");
}
