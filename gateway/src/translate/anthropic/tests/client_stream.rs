//! Client side streaming: chat chunks -> Anthropic events.

use super::*;

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": "chatcmpl-C1", "object": "chat.completion.chunk", "created": 1, "model": "up",
        "choices": [{"index": 0, "delta": delta, "logprobs": null, "finish_reason": finish}]})
}

fn usage_chunk(usage: Value) -> Value {
    json!({"id": "chatcmpl-C1", "object": "chat.completion.chunk", "created": 1, "model": "up",
        "choices": [], "usage": usage})
}

fn run(stream: &mut ChatToMessagesStream, chunks: &[Value]) -> Vec<(&'static str, Value)> {
    let mut out: Vec<_> = chunks.iter().flat_map(|c| stream.feed(c)).collect();
    out.extend(stream.finish());
    out
}

#[test]
fn text_stream_golden() {
    let mut stream = ChatToMessagesStream::new("claude-sonnet-4-5", "msg_abc");
    let out = run(
        &mut stream,
        &[
            chunk(json!({"role": "assistant", "content": "", "refusal": null}), Value::Null),
            chunk(json!({"content": "Hel"}), Value::Null),
            chunk(json!({"content": "lo"}), Value::Null),
            chunk(json!({}), json!("stop")),
            usage_chunk(json!({"prompt_tokens": 30, "completion_tokens": 2, "total_tokens": 32,
                "prompt_tokens_details": {"cached_tokens": 10}})),
        ],
    );
    let delta = |text: &str| json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": text}});
    assert_eq!(
        out,
        vec![
            (
                "message_start",
                json!({"type": "message_start", "message": {
                "id": "msg_abc", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": {"input_tokens": 0, "output_tokens": 0,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}}})
            ),
            ("ping", json!({"type": "ping"})),
            (
                "content_block_start",
                json!({"type": "content_block_start", "index": 0,
                "content_block": {"type": "text", "text": ""}})
            ),
            ("content_block_delta", delta("Hel")),
            ("content_block_delta", delta("lo")),
            ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            (
                "message_delta",
                json!({"type": "message_delta",
                "delta": {"stop_reason": "end_turn", "stop_sequence": null},
                "usage": {"input_tokens": 20, "output_tokens": 2,
                    "cache_creation_input_tokens": 0, "cache_read_input_tokens": 10}})
            ),
            ("message_stop", json!({"type": "message_stop"})),
        ]
    );
    // Once finished, the stream is closed for good.
    assert!(stream.finish().is_empty());
    assert!(stream.feed(&chunk(json!({"content": "late"}), Value::Null)).is_empty());
}

/// Text, then two parallel tool calls with fragmented arguments, as OpenAI streams them.
fn tool_chunks() -> Vec<Value> {
    let call = |v: Value| chunk(json!({"tool_calls": [v]}), Value::Null);
    vec![
        chunk(json!({"role": "assistant", "content": null}), Value::Null),
        chunk(json!({"content": "Checking both."}), Value::Null),
        call(
            json!({"index": 0, "id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": ""}}),
        ),
        call(json!({"index": 0, "function": {"arguments": "{\"city\": "}})),
        call(json!({"index": 0, "function": {"arguments": "\"Paris\"}"}})),
        call(
            json!({"index": 1, "id": "call_B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"ci"}}),
        ),
        call(json!({"index": 1, "function": {"arguments": "ty\": \"Rome\"}"}})),
        chunk(json!({}), json!("tool_calls")),
        usage_chunk(json!({"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940,
            "prompt_tokens_details": {"cached_tokens": 512},
            "cache_read_input_tokens": 512, "cache_creation_input_tokens": 300})),
    ]
}

#[test]
fn tool_stream_is_sdk_valid_and_matches_non_stream() {
    let mut stream = ChatToMessagesStream::new("claude-x", "msg_C1");
    let out = run(&mut stream, &tool_chunks());
    let streamed = accumulate_anthropic(&out);
    let completion = json!({
        "id": "chatcmpl-C1", "object": "chat.completion", "created": 1, "model": "up",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {
            "role": "assistant", "content": "Checking both.", "tool_calls": [
                {"id": "call_A", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
                {"id": "call_B", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Rome\"}"}},
            ]}}],
        "usage": {"prompt_tokens": 900, "completion_tokens": 40, "total_tokens": 940,
            "prompt_tokens_details": {"cached_tokens": 512},
            "cache_read_input_tokens": 512, "cache_creation_input_tokens": 300},
    });
    assert_eq!(streamed, chat_response_to_messages(&completion, "claude-x"));
    assert_eq!(
        streamed["usage"],
        json!({"input_tokens": 88, "output_tokens": 40,
            "cache_read_input_tokens": 512, "cache_creation_input_tokens": 300})
    );
    // The block structure: text 0, tool 1, tool 2, each closed before the next opens.
    let names: Vec<_> = out.iter().map(|(n, d)| format!("{n}:{}", d["index"])).collect();
    assert_eq!(
        names,
        [
            "message_start:null",
            "ping:null",
            "content_block_start:0",
            "content_block_delta:0",
            "content_block_stop:0",
            "content_block_start:1",
            "content_block_delta:1",
            "content_block_delta:1",
            "content_block_stop:1",
            "content_block_start:2",
            "content_block_delta:2",
            "content_block_delta:2",
            "content_block_stop:2",
            "message_delta:null",
            "message_stop:null",
        ]
    );
    assert_eq!(
        out[5].1["content_block"],
        json!({"type": "tool_use", "id": "call_A", "name": "get_weather", "input": {}})
    );
}

#[test]
fn usage_in_first_chunk_shows_in_message_start() {
    let mut stream = ChatToMessagesStream::new("m", "msg_1");
    let mut first = chunk(json!({"role": "assistant", "content": "x"}), Value::Null);
    first["usage"] = json!({"prompt_tokens": 12, "completion_tokens": 1});
    let out = stream.feed(&first);
    assert_eq!(out[0].1["message"]["usage"]["input_tokens"], 12);
    assert_eq!(out[0].1["message"]["usage"]["output_tokens"], 0);
    // OpenAI sends `"usage": null` on every chunk when include_usage is on; that changes nothing.
    let mut next = chunk(json!({"content": "y"}), json!("length"));
    next["usage"] = Value::Null;
    stream.feed(&next);
    let end = stream.finish();
    assert_eq!(end[0].1["delta"]["stop_reason"], "max_tokens");
    assert_eq!(end[0].1["usage"]["input_tokens"], 12);
    assert_eq!(end[0].1["usage"]["output_tokens"], 1);
}

#[test]
fn empty_stream_still_yields_a_valid_message() {
    let mut stream = ChatToMessagesStream::new("m", "msg_empty");
    let out = stream.finish();
    let message = accumulate_anthropic(&out);
    assert_eq!(message["content"], json!([]));
    assert_eq!(message["stop_reason"], "end_turn");
    assert_eq!(message["id"], "msg_empty");
}

#[test]
fn stream_without_finish_reason_closes_blocks_in_finish() {
    let mut stream = ChatToMessagesStream::new("m", "msg_1");
    let out = run(
        &mut stream,
        &[json!({"choices": [{"index": 0, "delta": {"tool_calls": [
            {"index": 0, "function": {"name": "f", "arguments": "{}"}}]}}]})],
    );
    let message = accumulate_anthropic(&out);
    // Missing ids are generated; tool calls without a finish reason still mean tool_use.
    assert_eq!(
        message["content"],
        json!([{"type": "tool_use", "id": "toolu_1_0", "name": "f", "input": {}}])
    );
    assert_eq!(message["stop_reason"], "tool_use");
}

#[test]
fn refusal_deltas_become_text_and_refusal_stop() {
    let mut stream = ChatToMessagesStream::new("m", "msg_1");
    let out = run(
        &mut stream,
        &[
            chunk(json!({"role": "assistant", "refusal": "I can't."}), Value::Null),
            chunk(json!({}), json!("stop")),
        ],
    );
    let message = accumulate_anthropic(&out);
    assert_eq!(message["content"], json!([{"type": "text", "text": "I can't."}]));
    assert_eq!(message["stop_reason"], "refusal");
}

#[test]
fn error_frame_becomes_error_event_and_ends_stream() {
    let mut stream = ChatToMessagesStream::new("m", "msg_1");
    stream.feed(&chunk(json!({"content": "partial"}), Value::Null));
    let out =
        stream.feed(&json!({"error": {"message": "upstream died", "type": "server_error", "code": null}}));
    assert_eq!(
        out,
        vec![
            ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
            ("error", json!({"type": "error", "error": {"type": "api_error", "message": "upstream died"}})),
        ]
    );
    assert!(stream.finish().is_empty());
    let mut stream = ChatToMessagesStream::new("m", "msg_2");
    let out = stream.feed(&json!({"error": {"message": "slow down", "type": "rate_limit_error"}}));
    assert_eq!(out.iter().map(|(n, _)| *n).collect::<Vec<_>>(), ["message_start", "ping", "error"]);
    assert_eq!(out[2].1["error"]["type"], "rate_limit_error");
}

#[test]
fn other_choices_are_ignored() {
    let mut stream = ChatToMessagesStream::new("m", "msg_1");
    let out = run(
        &mut stream,
        &[json!({"choices": [
            {"index": 1, "delta": {"content": "second candidate"}, "finish_reason": null},
            {"index": 0, "delta": {"content": "first"}, "finish_reason": null},
        ]})],
    );
    assert_eq!(accumulate_anthropic(&out)["content"], json!([{"type": "text", "text": "first"}]));
}
