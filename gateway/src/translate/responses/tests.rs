use serde_json::{Map, Value, json};

use super::*;

fn object(value: Value) -> Map<String, Value> {
    value.as_object().cloned().unwrap()
}

#[test]
fn a_request_becomes_the_chat_it_asks_for() {
    let request = object(json!({
        "model": "m", "instructions": "Be brief.", "max_output_tokens": 50, "temperature": 0.2,
        "store": true, "previous_response_id": "resp_1", "metadata": {"k": "v"}, "stream": true,
        "reasoning": {"effort": "low"}, "tool_choice": {"type": "function", "name": "f"},
        "text": {"format": {"type": "json_schema", "name": "s", "schema": {"type": "object"}, "strict": true}},
        "tools": [{"type": "function", "name": "f", "description": "d", "parameters": {"type": "object"}}],
        "input": [
            {"role": "user", "content": [{"type": "input_text", "text": "hi"},
                                         {"type": "input_image", "image_url": "https://x/y.png"}]},
            {"type": "function_call", "call_id": "c1", "name": "f", "arguments": "{}"},
            {"type": "function_call", "call_id": "c2", "name": "f", "arguments": "{\"a\":1}"},
            {"type": "function_call_output", "call_id": "c1", "output": "one"},
            {"type": "function_call_output", "call_id": "c2", "output": "two"},
            {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "done"}]},
        ],
    }));
    let history = vec![json!({"role": "user", "content": "earlier"})];
    let chat = responses_request_to_chat(&request, history).unwrap();
    assert_eq!(
        chat,
        json!({
            "model": "m", "max_tokens": 50, "temperature": 0.2, "reasoning_effort": "low",
            "stream": true, "stream_options": {"include_usage": true},
            "tool_choice": {"type": "function", "function": {"name": "f"}},
            "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}, "strict": true}},
            "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": "earlier"},
                {"role": "user", "content": [{"type": "text", "text": "hi"},
                                             {"type": "image_url", "image_url": {"url": "https://x/y.png", "detail": "auto"}}]},
                {"role": "assistant", "content": null, "tool_calls": [
                    {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}},
                    {"id": "c2", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
                {"role": "tool", "tool_call_id": "c1", "content": "one"},
                {"role": "tool", "tool_call_id": "c2", "content": "two"},
                {"role": "assistant", "content": "done"},
            ],
        })
    );
}

#[test]
fn what_chat_cannot_express_is_refused_naming_it() {
    let refused = [
        (json!({"model": "m", "input": "x", "tools": [{"type": "web_search"}]}), "tools[0].type"),
        (json!({"model": "m", "input": "x", "prompt": {"id": "p"}}), "prompt"),
        (json!({"model": "m", "input": "x", "background": true}), "background"),
        (json!({"model": "m", "input": "x", "truncation": "auto"}), "truncation"),
        (json!({"model": "m", "input": [{"type": "file_search_call"}]}), "input[0].type"),
        (
            json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}]}),
            "input[0].content[0].type",
        ),
        (json!({"model": "m", "input": "x", "reasoning": {"summary": "auto"}}), "reasoning.summary"),
    ];
    for (request, field) in refused {
        let error = responses_request_to_chat(&object(request.clone()), Vec::new()).unwrap_err();
        assert_eq!(error.code(), Some("unsupported_parameter"), "{request}");
        assert!(error.to_string().contains(field), "{request}: {error}");
    }
    for (request, field) in [
        (json!({"input": "x"}), "model"),
        (json!({"model": "m"}), "input"),
        (json!({"model": "m", "input": [{"role": "robot", "content": "x"}]}), "input[0].role"),
        (json!({"model": "m", "input": [{"type": "function_call", "name": "f"}]}), "input[0].call_id"),
    ] {
        let error = responses_request_to_chat(&object(request.clone()), Vec::new()).unwrap_err();
        assert_eq!((error.status().as_u16(), error.code()), (400, Some("invalid_request")), "{request}");
        assert!(error.to_string().contains(field), "{request}: {error}");
    }
}

#[test]
fn a_whole_chat_reply_becomes_output_items_usage_and_a_status() {
    let chat = json!({
        "choices": [{"index": 0, "finish_reason": "length", "message": {"role": "assistant", "content": "Hel",
            "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}]}}],
        "usage": {"prompt_tokens": 10, "completion_tokens": 3, "prompt_tokens_details": {"cached_tokens": 4},
                  "completion_tokens_details": {"reasoning_tokens": 1}},
    });
    let (output, usage, incomplete) = output_of_chat(&chat, "msg_1");
    assert_eq!(output[0]["content"][0]["text"], "Hel");
    assert_eq!(
        output[1],
        json!({"type": "function_call", "id": "fc_c1", "call_id": "c1", "name": "f", "arguments": "{}", "status": "completed"})
    );
    assert_eq!(
        usage,
        Some(json!({"input_tokens": 10, "input_tokens_details": {"cached_tokens": 4}, "output_tokens": 3,
                    "output_tokens_details": {"reasoning_tokens": 1}, "total_tokens": 13}))
    );
    assert_eq!(incomplete, Some("max_output_tokens"));
    let message = assistant_message(&output);
    assert_eq!(message["content"], "Hel");
    assert_eq!(message["tool_calls"][0]["function"]["name"], "f");

    let echo = Echo::of_request(&object(json!({"model": "m", "instructions": "i"})), "resp_1".into(), 7);
    let response = echo.response("incomplete", output, usage, incomplete);
    assert_eq!(
        (response["object"].as_str(), response["instructions"].as_str()),
        (Some("response"), Some("i"))
    );
    assert_eq!(response["incomplete_details"], json!({"reason": "max_output_tokens"}));
    assert_eq!((response["store"].as_bool(), response["tools"].clone()), (Some(true), json!([])));
}

#[test]
fn a_chat_stream_becomes_typed_events_in_order_with_the_whole_response_last() {
    let echo = Echo::of_request(&object(json!({"model": "m"})), "resp_1".into(), 7);
    let mut stream = ChatToResponsesStream::new(echo, "msg_1".into());
    let mut events = stream.start();
    let chunks = [
        json!({"choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "Hel"}}]}),
        json!({"choices": [{"index": 0, "delta": {"content": "lo"}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "id": "c1", "function": {"name": "f", "arguments": "{\"a\""}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [{"index": 0, "function": {"arguments": ":1}"}}]}}]}),
        json!({"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}),
        json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
    ];
    for chunk in &chunks {
        events.extend(stream.feed(chunk));
    }
    events.extend(stream.finish());
    let kinds: Vec<&str> = events.iter().map(|(kind, _)| *kind).collect();
    assert_eq!(
        kinds,
        [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
            "response.output_text.delta",
            "response.output_text.delta",
            "response.output_item.added",
            "response.function_call_arguments.delta",
            "response.function_call_arguments.delta",
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.function_call_arguments.done",
            "response.output_item.done",
            "response.completed",
        ]
    );
    let numbers: Vec<u64> =
        events.iter().map(|(_, data)| data["sequence_number"].as_u64().unwrap()).collect();
    assert_eq!(numbers, (0..events.len() as u64).collect::<Vec<_>>());
    let (_, last) = events.last().unwrap();
    let response = &last["response"];
    assert_eq!(response["status"], "completed");
    assert_eq!(response["output"][0]["content"][0]["text"], "Hello");
    assert_eq!(response["output"][1]["arguments"], "{\"a\":1}");
    assert_eq!(response["usage"]["total_tokens"], 7);
    assert!(events.iter().all(|(kind, data)| data["type"] == *kind));
}
