//! Round trips: what goes through chat and back keeps its meaning.

use super::*;

/// A request exercising every translated feature, written as Anthropic clients send it.
fn rich_request() -> Value {
    json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 2048,
        "system": [
            {"type": "text", "text": "You are a careful assistant."},
            {"type": "text", "text": "Reference manual...", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [
            {"role": "user", "content": "What's in this picture, and the weather there?"},
            {"role": "assistant", "content": "Send the picture."},
            {"role": "user", "content": [
                {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
                {"type": "image", "source": {"type": "url", "url": "https://example.com/paris.jpg"}},
                {"type": "text", "text": "Here.", "cache_control": {"type": "ephemeral"}},
            ]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "That's Paris. Checking the weather."},
                {"type": "tool_use", "id": "toolu_01", "name": "get_weather",
                 "input": {"city": "Paris", "units": ["c"], "detail": {"hourly": false}}},
                {"type": "tool_use", "id": "toolu_02", "name": "get_time", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_01", "content": "18C and sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_02",
                 "content": [{"type": "text", "text": "14:05"}, {"type": "text", "text": "CEST"}]},
                {"type": "text", "text": "And tomorrow?"},
            ]},
        ],
        "tools": [
            {"name": "get_weather", "description": "Current weather",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
             "cache_control": {"type": "ephemeral"}},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "temperature": 0.5,
        "top_p": 0.95,
        "top_k": 50,
        "stop_sequences": ["###"],
        "stream": true,
        "metadata": {"user_id": "u-1"},
    })
}

#[test]
fn anthropic_request_survives_chat_and_back() {
    let original = rich_request();
    let chat = messages_request_to_chat(&original).unwrap();
    let back = chat_request_to_messages(&chat, "claude-sonnet-4-5").unwrap();
    assert_eq!(back, original);
}

#[test]
fn simple_anthropic_request_survives_chat_and_back() {
    let original = json!({
        "model": "claude-haiku-4-5", "max_tokens": 64, "system": "Be brief.",
        "messages": [
            {"role": "user", "content": "Hi"},
            {"role": "assistant", "content": "Hello."},
            {"role": "user", "content": "Bye"},
            // A trailing assistant turn is Anthropic's prefill; it stays last.
            {"role": "assistant", "content": "Good"},
        ],
    });
    let chat = messages_request_to_chat(&original).unwrap();
    assert_eq!(chat_request_to_messages(&chat, "claude-haiku-4-5").unwrap(), original);
}

#[test]
fn chat_request_survives_anthropic_and_back() {
    let original = json!({
        "model": "gpt-ish",
        "messages": [
            {"role": "system", "content": "Sys"},
            {"role": "user", "content": [
                {"type": "text", "text": "Look"},
                {"type": "image_url", "image_url": {"url": "data:image/gif;base64,R0lGOD"}},
            ]},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "zoom", "arguments": "{\"factor\":2}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "zoomed"},
            {"role": "assistant", "content": "It is a cat."},
        ],
        "max_tokens": 100,
        "temperature": 0.7,
        "stop": ["x"],
        "user": "u",
        "tools": [{"type": "function", "function": {"name": "zoom", "description": "Zoom in",
            "parameters": {"type": "object", "properties": {"factor": {"type": "number"}}}}}],
        "tool_choice": {"type": "function", "function": {"name": "zoom"}},
    });
    let messages = chat_request_to_messages(&original, "claude").unwrap();
    let mut back = messages_request_to_chat(&messages).unwrap();
    back["model"] = json!("gpt-ish");
    assert_eq!(back, original);
}

#[test]
fn anthropic_response_survives_chat_and_back() {
    let original = json!({
        "id": "msg_01RT", "type": "message", "role": "assistant", "model": "claude-x",
        "content": [
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_9", "name": "lookup", "input": {"q": "rust", "n": 2}},
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 40, "output_tokens": 12,
            "cache_creation_input_tokens": 1000, "cache_read_input_tokens": 3000},
    });
    let chat = messages_response_to_chat(&original, "claude-x");
    assert_eq!(chat_response_to_messages(&chat, "claude-x"), original);
}

#[test]
fn anthropic_stream_survives_chat_chunks_and_back() {
    let delta =
        |index: u64, delta: Value| json!({"type": "content_block_delta", "index": index, "delta": delta});
    let upstream = events(&[
        (
            "message_start",
            json!({"type": "message_start", "message": {
            "id": "msg_S", "type": "message", "role": "assistant", "model": "claude-x", "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {"input_tokens": 7, "output_tokens": 1,
                "cache_creation_input_tokens": 11, "cache_read_input_tokens": 13}}}),
        ),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}),
        ),
        ("ping", json!({"type": "ping"})),
        ("content_block_delta", delta(0, json!({"type": "text_delta", "text": "On it"}))),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 0})),
        (
            "content_block_start",
            json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_S", "name": "run", "input": {}}}),
        ),
        (
            "content_block_delta",
            delta(1, json!({"type": "input_json_delta", "partial_json": "{\"cmd\": \"l"})),
        ),
        ("content_block_delta", delta(1, json!({"type": "input_json_delta", "partial_json": "s\"}"}))),
        ("content_block_stop", json!({"type": "content_block_stop", "index": 1})),
        (
            "message_delta",
            json!({"type": "message_delta",
            "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 21}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ]);
    let mut to_chat = MessagesToChatStream::new("claude-x");
    let mut to_messages = ChatToMessagesStream::new("claude-x", "msg_S");
    let mut out = Vec::new();
    for (name, data) in &upstream {
        for chunk in to_chat.feed(name, data).unwrap() {
            out.extend(to_messages.feed(&chunk));
        }
    }
    out.extend(to_messages.finish());
    let original = accumulate_anthropic(&upstream);
    let mut expected = original.clone();
    expected["usage"]["output_tokens"] = json!(21);
    assert_eq!(accumulate_anthropic(&out), expected);
    assert_eq!(
        accumulate_anthropic(&out)["usage"],
        json!({"input_tokens": 7, "output_tokens": 21,
            "cache_creation_input_tokens": 11, "cache_read_input_tokens": 13})
    );
}
