//! Client side: Anthropic request -> chat request.

use super::*;

fn err(body: Value) -> String {
    match messages_request_to_chat(&body) {
        Err(TranslateError::InvalidRequest(message)) => message,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn text_request_with_system_string() {
    let body = json!({
        "model": "claude-sonnet-4-5",
        "max_tokens": 1024,
        "system": "You are terse.",
        "messages": [
            {"role": "user", "content": "Hello"},
            {"role": "assistant", "content": "Hi."},
            {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
        ],
        "temperature": 0.2,
        "top_p": 0.9,
        "top_k": 40,
        "stop_sequences": ["END"],
        "metadata": {"user_id": "user-42"},
    });
    assert_eq!(
        messages_request_to_chat(&body).unwrap(),
        json!({
            "model": "claude-sonnet-4-5",
            "max_tokens": 1024,
            "messages": [
                {"role": "system", "content": "You are terse."},
                {"role": "user", "content": "Hello"},
                {"role": "assistant", "content": "Hi."},
                {"role": "user", "content": [{"type": "text", "text": "How are you?"}]},
            ],
            "temperature": 0.2,
            "top_p": 0.9,
            "top_k": 40,
            "stop": ["END"],
            "user": "user-42",
        })
    );
}

#[test]
fn system_blocks_keep_cache_control() {
    let body = json!({
        "model": "m", "max_tokens": 10,
        "system": [
            {"type": "text", "text": "Rules."},
            {"type": "text", "text": "Big context.", "cache_control": {"type": "ephemeral"}},
        ],
        "messages": [{"role": "user", "content": "q"}],
    });
    let chat = messages_request_to_chat(&body).unwrap();
    assert_eq!(
        chat["messages"][0],
        json!({"role": "system", "content": [
            {"type": "text", "text": "Rules."},
            {"type": "text", "text": "Big context.", "cache_control": {"type": "ephemeral"}},
        ]})
    );
}

#[test]
fn images_base64_and_url_become_image_url_parts() {
    let body = json!({
        "model": "m", "max_tokens": 10,
        "messages": [{"role": "user", "content": [
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "Compare these."},
        ]}],
    });
    assert_eq!(
        messages_request_to_chat(&body).unwrap()["messages"],
        json!([{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
            {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
            {"type": "text", "text": "Compare these."},
        ]}])
    );
}

#[test]
fn tools_tool_use_and_tool_results() {
    let body = json!({
        "model": "m", "max_tokens": 100,
        "tools": [
            {"name": "get_weather", "description": "Weather for a city",
             "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}},
            {"name": "screenshot", "input_schema": {"type": "object"}, "type": "custom"},
        ],
        "tool_choice": {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": true},
        "messages": [
            {"role": "user", "content": "Weather in Paris and a screenshot?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "I should call tools.", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                {"type": "tool_use", "id": "toolu_2", "name": "screenshot", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "18C, sunny"},
                {"type": "tool_result", "tool_use_id": "toolu_2", "content": [
                    {"type": "text", "text": "Screenshot taken."},
                    {"type": "image", "source": {"type": "base64", "media_type": "image/jpeg", "data": "/9j/"}},
                ]},
                {"type": "text", "text": "Thanks!"},
            ]},
        ],
    });
    assert_eq!(
        messages_request_to_chat(&body).unwrap(),
        json!({
            "model": "m",
            "max_tokens": 100,
            "messages": [
                {"role": "user", "content": "Weather in Paris and a screenshot?"},
                {"role": "assistant", "content": "Checking.", "tool_calls": [
                    {"id": "toolu_1", "type": "function",
                     "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                    {"id": "toolu_2", "type": "function", "function": {"name": "screenshot", "arguments": "{}"}},
                ]},
                {"role": "tool", "tool_call_id": "toolu_1", "content": "18C, sunny"},
                {"role": "tool", "tool_call_id": "toolu_2", "content": [{"type": "text", "text": "Screenshot taken."}]},
                {"role": "user", "content": [
                    {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/"}},
                    {"type": "text", "text": "Thanks!"},
                ]},
            ],
            "tools": [
                {"type": "function", "function": {"name": "get_weather", "description": "Weather for a city",
                    "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                        "required": ["city"]}}},
                {"type": "function", "function": {"name": "screenshot", "parameters": {"type": "object"}}},
            ],
            "tool_choice": {"type": "function", "function": {"name": "get_weather"}},
            "parallel_tool_calls": false,
        })
    );
}

#[test]
fn assistant_with_only_tool_use_has_null_content() {
    let body = json!({"model": "m", "max_tokens": 5, "messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"x": [1]}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t"}]},
    ]});
    let chat = messages_request_to_chat(&body).unwrap();
    assert_eq!(chat["messages"][1]["content"], Value::Null);
    assert_eq!(chat["messages"][1]["tool_calls"][0]["function"]["arguments"], "{\"x\":[1]}");
    assert_eq!(chat["messages"][2], json!({"role": "tool", "tool_call_id": "t", "content": ""}));
    assert_eq!(chat["messages"].as_array().unwrap().len(), 3);
}

#[test]
fn tool_choice_variants() {
    let tools = json!([{"name": "f", "input_schema": {"type": "object"}}]);
    let cases = [
        (json!({"type": "auto"}), json!("auto")),
        (json!({"type": "any"}), json!("required")),
        (json!({"type": "none"}), json!("none")),
    ];
    for (choice, want) in cases {
        let body = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tools": tools, "tool_choice": choice});
        let chat = messages_request_to_chat(&body).unwrap();
        assert_eq!(chat["tool_choice"], want);
        assert!(chat.get("parallel_tool_calls").is_none());
    }
    // Without tools OpenAI rejects tool_choice, so it is dropped.
    let body = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}],
        "tool_choice": {"type": "auto"}});
    let chat = messages_request_to_chat(&body).unwrap();
    assert!(chat.get("tool_choice").is_none() && chat.get("tools").is_none());
    assert!(
        err(
            json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}], "tools": tools,
        "tool_choice": {"type": "tool"}})
        )
        .contains("tool_choice.name")
    );
}

#[test]
fn stream_requests_ask_for_usage() {
    let body = json!({"model": "m", "max_tokens": 1, "stream": true, "messages": [{"role": "user", "content": "x"}]});
    let chat = messages_request_to_chat(&body).unwrap();
    assert_eq!(chat["stream"], true);
    assert_eq!(chat["stream_options"], json!({"include_usage": true}));
    let body = json!({"model": "m", "max_tokens": 1, "stream": false, "messages": [{"role": "user", "content": "x"}]});
    let chat = messages_request_to_chat(&body).unwrap();
    assert!(chat.get("stream").is_none() && chat.get("stream_options").is_none());
}

#[test]
fn pdf_and_text_documents() {
    let body = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": [
        {"type": "document", "title": "report.pdf",
         "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        {"type": "document", "source": {"type": "text", "media_type": "text/plain", "data": "plain text doc"}},
    ]}]});
    assert_eq!(
        messages_request_to_chat(&body).unwrap()["messages"][0]["content"],
        json!([
            {"type": "file", "file": {"filename": "report.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
            {"type": "text", "text": "plain text doc"},
        ])
    );
}

#[test]
fn required_fields_are_checked_by_name() {
    let msgs = json!([{"role": "user", "content": "x"}]);
    assert_eq!(err(json!({"max_tokens": 1, "messages": msgs})), "`model` is required");
    assert_eq!(
        err(json!({"model": "", "max_tokens": 1, "messages": msgs})),
        "`model` must be a non-empty string"
    );
    assert_eq!(
        err(json!({"model": 7, "max_tokens": 1, "messages": msgs})),
        "`model` must be a non-empty string"
    );
    assert_eq!(err(json!({"model": "m", "max_tokens": 1})), "`messages` is required");
    assert_eq!(err(json!({"model": "m", "max_tokens": 1, "messages": "hi"})), "`messages` must be an array");
    assert_eq!(err(json!({"model": "m", "messages": msgs})), "`max_tokens` is required");
    for bad in [json!(0), json!(-1), json!("10"), json!(1.5)] {
        assert_eq!(
            err(json!({"model": "m", "max_tokens": bad, "messages": msgs})),
            "`max_tokens` must be a positive integer"
        );
    }
    assert_eq!(err(json!([1, 2])), "request body must be a JSON object");
}

#[test]
fn invalid_content_names_the_path() {
    let base = |messages: Value| json!({"model": "m", "max_tokens": 1, "messages": messages});
    assert!(err(base(json!([{"role": "system", "content": "x"}]))).contains("messages[0].role"));
    assert!(err(base(json!([{"role": "user"}]))).contains("messages[0].content"));
    assert!(err(base(json!([{"role": "user", "content": 5}]))).contains("messages[0].content"));
    let e =
        err(base(json!([{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "video"}]}])));
    assert!(e.contains("messages[0].content[1]") && e.contains("video"), "{e}");
    let e = err(base(
        json!([{"role": "user", "content": [{"type": "image", "source": {"type": "file", "file_id": "f"}}]}]),
    ));
    assert!(e.contains("messages[0].content[0].source.type"), "{e}");
    let e = err(base(json!([{"role": "user", "content": [{"type": "tool_result"}]}])));
    assert!(e.contains("messages[0].content[0].tool_use_id"), "{e}");
    let e =
        err(base(json!([{"role": "assistant", "content": [{"type": "tool_use", "id": "x", "input": {}}]}])));
    assert!(e.contains("messages[0].content[0].name"), "{e}");
}

#[test]
fn unsupported_fields_are_rejected() {
    let base = json!({"model": "m", "max_tokens": 1, "messages": [{"role": "user", "content": "x"}]});
    let mut body = base.clone();
    body["tools"] = json!([{"type": "web_search_20250305", "name": "web_search"}]);
    let e = err(body);
    assert!(e.contains("tools[0]") && e.contains("web_search_20250305"), "{e}");
    let mut body = base.clone();
    body["tools"] = json!([{"name": "f"}]);
    assert!(err(body).contains("tools[0].input_schema"));
    let mut body = base.clone();
    body["system"] = json!([{"type": "image"}]);
    assert!(err(body).contains("system[0]"));
    let mut body = base.clone();
    body["temperature"] = json!("hot");
    assert_eq!(err(body), "`temperature` must be a number");
    let mut body = base;
    body["stop_sequences"] = json!("END");
    assert!(err(body).contains("stop_sequences"));
}
