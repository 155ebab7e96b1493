//! Non-stream responses, both directions.

use super::to_chat_response::messages_response_to_chat_at;
use super::*;

#[test]
fn chat_text_response_to_messages() {
    let chat = json!({
        "id": "chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT",
        "object": "chat.completion",
        "created": 1741569952,
        "model": "gpt-4.1-2025-04-14",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Hello! How can I help?", "refusal": null, "annotations": []},
            "logprobs": null,
            "finish_reason": "stop",
        }],
        "usage": {
            "prompt_tokens": 1200, "completion_tokens": 10, "total_tokens": 1210,
            "prompt_tokens_details": {"cached_tokens": 1024, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0},
        },
        "service_tier": "default",
    });
    assert_eq!(
        chat_response_to_messages(&chat, "claude-sonnet-4-5"),
        json!({
            "id": "msg_B9MBs8CjcvOU2jLn4n570S5qMJKcT",
            "type": "message",
            "role": "assistant",
            "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Hello! How can I help?"}],
            "stop_reason": "end_turn",
            "stop_sequence": null,
            "usage": {"input_tokens": 176, "output_tokens": 10,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 1024},
        })
    );
}

#[test]
fn chat_tool_call_response_to_messages() {
    let chat = json!({
        "id": "chatcmpl-abc",
        "object": "chat.completion",
        "created": 1,
        "model": "local",
        "choices": [{
            "index": 0,
            "message": {"role": "assistant", "content": "Let me look.", "tool_calls": [
                {"id": "call_9", "type": "function",
                 "function": {"name": "search", "arguments": "{\"q\":\"rust\",\"limit\":3}"}},
                {"id": "call_10", "type": "function", "function": {"name": "noop", "arguments": ""}},
            ]},
            "finish_reason": "tool_calls",
        }],
        "usage": {"prompt_tokens": 50, "completion_tokens": 20, "total_tokens": 70},
    });
    assert_eq!(
        chat_response_to_messages(&chat, "m"),
        json!({
            "id": "msg_abc", "type": "message", "role": "assistant", "model": "m",
            "content": [
                {"type": "text", "text": "Let me look."},
                {"type": "tool_use", "id": "call_9", "name": "search", "input": {"q": "rust", "limit": 3}},
                {"type": "tool_use", "id": "call_10", "name": "noop", "input": {}},
            ],
            "stop_reason": "tool_use",
            "stop_sequence": null,
            "usage": {"input_tokens": 50, "output_tokens": 20,
                "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0},
        })
    );
}

#[test]
fn chat_finish_reasons_and_refusals() {
    let with = |message: Value, finish: Value| {
        let chat = json!({"id": "chatcmpl-1", "choices": [{"index": 0, "message": message, "finish_reason": finish}]});
        chat_response_to_messages(&chat, "m")
    };
    let text = json!({"role": "assistant", "content": "x"});
    assert_eq!(with(text.clone(), json!("length"))["stop_reason"], "max_tokens");
    assert_eq!(with(text.clone(), json!("content_filter"))["stop_reason"], "refusal");
    assert_eq!(with(text.clone(), Value::Null)["stop_reason"], "end_turn");
    let refused = with(
        json!({"role": "assistant", "content": null, "refusal": "I can't help with that."}),
        json!("stop"),
    );
    assert_eq!(refused["stop_reason"], "refusal");
    assert_eq!(refused["content"], json!([{"type": "text", "text": "I can't help with that."}]));
    // Servers that say "stop" next to tool calls still mean tool use.
    let tools = json!({"role": "assistant", "content": "", "tool_calls": [
        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{}"}}]});
    let out = with(tools, json!("stop"));
    assert_eq!(out["stop_reason"], "tool_use");
    assert_eq!(out["content"], json!([{"type": "tool_use", "id": "c", "name": "f", "input": {}}]));
    // Nothing at all is still a well-formed message; missing usage reads as zeros.
    let empty = chat_response_to_messages(&json!({}), "m");
    assert_eq!(empty["content"], json!([]));
    assert_eq!(empty["id"], "msg_switchboard");
    assert_eq!(empty["usage"]["input_tokens"], 0);
}

#[test]
fn messages_text_response_to_chat() {
    let message = json!({
        "id": "msg_01XFDUDYJgAACzvnptvVoYEL",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-5-20250929",
        "content": [{"type": "text", "text": "Hello!"}, {"type": "text", "text": " Again."}],
        "stop_reason": "end_turn",
        "stop_sequence": null,
        "usage": {"input_tokens": 12, "output_tokens": 6,
            "cache_creation_input_tokens": 2048, "cache_read_input_tokens": 4096,
            "cache_creation": {"ephemeral_5m_input_tokens": 2048, "ephemeral_1h_input_tokens": 0},
            "service_tier": "standard"},
    });
    assert_eq!(
        messages_response_to_chat_at(&message, "persona/ada", 1_700_000_000),
        json!({
            "id": "chatcmpl-01XFDUDYJgAACzvnptvVoYEL",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": "persona/ada",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": "Hello! Again.", "refusal": null},
                "logprobs": null,
                "finish_reason": "stop",
            }],
            "usage": {
                "prompt_tokens": 6156, "completion_tokens": 6, "total_tokens": 6162,
                "prompt_tokens_details": {"cached_tokens": 4096, "cache_write_tokens": 2048},
                "cache_read_input_tokens": 4096, "cache_creation_input_tokens": 2048,
            },
        })
    );
    let live = messages_response_to_chat(&message, "persona/ada");
    assert!(live["created"].as_u64().unwrap() > 1_700_000_000);
}

#[test]
fn messages_tool_use_and_thinking_response_to_chat() {
    let message = json!({
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude",
        "content": [
            {"type": "thinking", "thinking": "Need weather.", "signature": "EqQB"},
            {"type": "tool_use", "id": "toolu_01A", "name": "get_weather", "input": {"location": "San Francisco, CA"}},
            {"type": "server_tool_use", "id": "srvtoolu_1", "name": "web_search", "input": {"query": "x"}},
        ],
        "stop_reason": "tool_use", "stop_sequence": null,
        "usage": {"input_tokens": 10, "output_tokens": 5},
    });
    assert_eq!(
        messages_response_to_chat_at(&message, "m", 5),
        json!({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 5, "model": "m",
            "choices": [{
                "index": 0,
                "message": {
                    "role": "assistant", "content": null, "refusal": null,
                    "reasoning_content": "Need weather.",
                    "tool_calls": [{"id": "toolu_01A", "type": "function", "function": {
                        "name": "get_weather", "arguments": "{\"location\":\"San Francisco, CA\"}"}}],
                },
                "logprobs": null,
                "finish_reason": "tool_calls",
            }],
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15,
                "prompt_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0},
        })
    );
}

#[test]
fn messages_stop_reasons_to_chat() {
    for (stop, want) in [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
    ] {
        let message = json!({"id": "msg_x", "content": [], "stop_reason": stop, "usage": {}});
        let chat = messages_response_to_chat_at(&message, "m", 0);
        assert_eq!(chat["choices"][0]["finish_reason"], want, "{stop}");
        assert_eq!(chat["choices"][0]["message"]["content"], "");
    }
}
