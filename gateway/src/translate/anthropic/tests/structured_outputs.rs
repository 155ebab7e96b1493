//! `response_format` on Anthropic routes: a forced tool out, its input back as the reply's text.

use super::*;
use crate::translate::anthropic::structured::OUTPUT_TOOL;

fn asked(format: Value) -> Value {
    json!({"model": "m", "messages": [{"role": "user", "content": "sky?"}], "response_format": format})
}

#[test]
fn json_formats_become_one_forced_tool_and_what_cannot_be_forced_is_refused() {
    let schema = json!({"type": "object", "properties": {"sky": {"type": "string"}}, "required": ["sky"]});
    let format = json!({"type": "json_schema", "json_schema": {"name": "sky", "schema": schema}});
    let body = chat_request_to_messages(&asked(format.clone()), "claude").unwrap();
    assert_eq!(body["tools"][0]["name"], OUTPUT_TOOL);
    assert_eq!(body["tools"][0]["input_schema"], schema);
    assert_eq!(body["tool_choice"], json!({"type": "tool", "name": OUTPUT_TOOL}));
    let body = chat_request_to_messages(&asked(json!({"type": "json_object"})), "claude").unwrap();
    assert_eq!(body["tools"][0]["input_schema"], json!({"type": "object"}));
    let body = chat_request_to_messages(&asked(json!({"type": "text"})), "claude").unwrap();
    assert!(body.get("tools").is_none());

    let mut with_tools = asked(format);
    with_tools["tools"] =
        json!([{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}]);
    let refused = [
        with_tools,
        asked(json!({"type": "json_schema", "json_schema": {"name": "n", "schema": {"type": "array"}}})),
        asked(json!({"type": "json_schema", "json_schema": {"name": "n"}})),
        asked(json!({"type": "yaml"})),
    ];
    for request in refused {
        let error = chat_request_to_messages(&request, "claude").unwrap_err();
        assert!(error.to_string().contains("response_format"), "{request}: {error}");
    }
}

#[test]
fn the_forced_call_comes_back_as_the_replys_text_whole_and_streamed() {
    let message = json!({"id": "msg_1", "type": "message", "role": "assistant", "stop_reason": "tool_use",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": OUTPUT_TOOL, "input": {"sky": "blue"}}],
        "usage": {"input_tokens": 5, "output_tokens": 3}});
    let chat = messages_response_to_chat(&message, "m");
    assert_eq!(chat["choices"][0]["message"]["content"], "{\"sky\":\"blue\"}");
    assert!(chat["choices"][0]["message"].get("tool_calls").is_none());
    assert_eq!(chat["choices"][0]["finish_reason"], "stop");

    let mut stream = MessagesToChatStream::new("m");
    let events = [
        ("message_start", json!({"message": {"id": "msg_1", "usage": {"input_tokens": 5}}})),
        (
            "content_block_start",
            json!({"index": 0, "content_block": {"type": "tool_use", "id": "toolu_1", "name": OUTPUT_TOOL, "input": {}}}),
        ),
        (
            "content_block_delta",
            json!({"index": 0, "delta": {"type": "input_json_delta", "partial_json": "{\"sky\": "}}),
        ),
        (
            "content_block_delta",
            json!({"index": 0, "delta": {"type": "input_json_delta", "partial_json": "\"blue\"}"}}),
        ),
        ("content_block_stop", json!({"index": 0})),
        ("message_delta", json!({"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 3}})),
        ("message_stop", json!({})),
    ];
    let chunks: Vec<Value> =
        events.iter().flat_map(|(name, data)| stream.feed(name, data).unwrap()).collect();
    let text: String =
        chunks.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
    assert_eq!(text, "{\"sky\": \"blue\"}");
    assert!(chunks.iter().all(|c| c.pointer("/choices/0/delta/tool_calls").is_none()));
    let finish: Vec<&str> =
        chunks.iter().filter_map(|c| c.pointer("/choices/0/finish_reason").and_then(Value::as_str)).collect();
    assert_eq!(finish, ["stop"]);
}
