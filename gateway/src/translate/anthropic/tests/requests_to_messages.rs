//! Provider side: chat request -> Anthropic request.

use super::*;

fn err(body: Value) -> String {
    match chat_request_to_messages(&body, "claude-up") {
        Err(TranslateError::InvalidRequest(message)) => message,
        other => panic!("expected InvalidRequest, got {other:?}"),
    }
}

#[test]
fn system_multi_turn_and_merging() {
    let chat = json!({
        "model": "persona/ada",
        "messages": [
            {"role": "system", "content": "You are Ada."},
            {"role": "developer", "content": [{"type": "text", "text": "Be brief."}]},
            {"role": "user", "content": "Hi"},
            {"role": "user", "content": [{"type": "text", "text": "Are you there?"}]},
            {"role": "assistant", "content": "Yes."},
            {"role": "assistant", "content": ""},
            {"role": "user", "content": "Good."},
        ],
        "max_tokens": 300,
        "stream": true,
        "stream_options": {"include_usage": true},
        "n": 1,
        "user": "end-user-1",
        "stop": "\n\nHuman:",
        "top_p": 0.5,
        "presence_penalty": 0,
        "frequency_penalty": 0,
        "seed": null,
        "logprobs": false,
        "response_format": {"type": "text"},
        "store": false,
    });
    assert_eq!(
        chat_request_to_messages(&chat, "claude-up").unwrap(),
        json!({
            "model": "claude-up",
            "max_tokens": 300,
            "system": [{"type": "text", "text": "You are Ada."}, {"type": "text", "text": "Be brief."}],
            "messages": [
                {"role": "user", "content": [
                    {"type": "text", "text": "Hi"}, {"type": "text", "text": "Are you there?"}]},
                {"role": "assistant", "content": "Yes."},
                {"role": "user", "content": "Good."},
            ],
            "top_p": 0.5,
            "stop_sequences": ["\n\nHuman:"],
            "stream": true,
            "metadata": {"user_id": "end-user-1"},
        })
    );
}

#[test]
fn single_system_message_stays_a_string() {
    let chat = json!({"messages": [{"role": "system", "content": "S"}, {"role": "user", "content": "U"}]});
    let out = chat_request_to_messages(&chat, "c").unwrap();
    assert_eq!(out["system"], "S");
    assert_eq!(out["max_tokens"], DEFAULT_MAX_TOKENS);
    assert_eq!(out["messages"], json!([{"role": "user", "content": "U"}]));
}

#[test]
fn tool_calls_and_tool_messages() {
    let chat = json!({
        "messages": [
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Rome\"}"}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            {"role": "user", "content": "Which is warmer?"},
        ],
        "tools": [{"type": "function", "function": {
            "name": "get_weather", "description": "Weather", "strict": true,
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
    });
    assert_eq!(
        chat_request_to_messages(&chat, "c").unwrap(),
        json!({
            "model": "c",
            "max_tokens": 4096,
            "messages": [
                {"role": "user", "content": "Weather in Paris and Rome?"},
                {"role": "assistant", "content": [
                    {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {"city": "Rome"}},
                ]},
                {"role": "user", "content": [
                    {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
                    {"type": "tool_result", "tool_use_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
                    {"type": "text", "text": "Which is warmer?"},
                ]},
            ],
            "tools": [{"name": "get_weather", "description": "Weather",
                "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}],
            "tool_choice": {"type": "any", "disable_parallel_tool_use": true},
        })
    );
}

#[test]
fn assistant_text_with_tool_calls_and_bad_arguments() {
    let chat = json!({"messages": [
        {"role": "user", "content": "go"},
        {"role": "assistant", "content": "Calling.", "tool_calls": [
            {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{not json"}},
            {"id": "c2", "type": "function", "function": {"name": "g", "arguments": ""}},
        ]},
    ]});
    assert_eq!(
        chat_request_to_messages(&chat, "c").unwrap()["messages"][1]["content"],
        json!([
            {"type": "text", "text": "Calling."},
            {"type": "tool_use", "id": "c1", "name": "f", "input": {}},
            {"type": "tool_use", "id": "c2", "name": "g", "input": {}},
        ])
    );
}

#[test]
fn max_tokens_precedence() {
    let m = json!([{"role": "user", "content": "x"}]);
    let get = |body: Value| chat_request_to_messages(&body, "c").unwrap()["max_tokens"].clone();
    assert_eq!(get(json!({"messages": m})), 4096);
    assert_eq!(get(json!({"messages": m, "max_tokens": 12})), 12);
    assert_eq!(get(json!({"messages": m, "max_tokens": 12, "max_completion_tokens": 34})), 34);
    assert_eq!(get(json!({"messages": m, "max_tokens": null})), 4096);
    assert_eq!(err(json!({"messages": m, "max_tokens": 0})), "`max_tokens` must be a positive integer");
    assert_eq!(
        err(json!({"messages": m, "max_completion_tokens": "a"})),
        "`max_completion_tokens` must be a positive integer"
    );
}

#[test]
fn sampling_and_stop_mapping() {
    let m = json!([{"role": "user", "content": "x"}]);
    let out = chat_request_to_messages(
        &json!({"messages": m, "temperature": 1.7, "top_k": 5, "stop": ["a", "b"]}),
        "c",
    )
    .unwrap();
    assert_eq!(out["temperature"], 1.0);
    assert_eq!(out["top_k"], 5);
    assert_eq!(out["stop_sequences"], json!(["a", "b"]));
    let out = chat_request_to_messages(&json!({"messages": m, "temperature": 0.3, "stop": []}), "c").unwrap();
    assert_eq!(out["temperature"], 0.3);
    assert!(out.get("stop_sequences").is_none());
    assert!(err(json!({"messages": m, "stop": 5})).contains("`stop`"));
    assert!(err(json!({"messages": m, "n": 2})).contains("`n`"));
}

#[test]
fn tool_choice_variants() {
    let base = json!({"messages": [{"role": "user", "content": "x"}],
        "tools": [{"type": "function", "function": {"name": "f"}}]});
    let with = |choice: Value, parallel: Value| {
        let mut body = base.clone();
        body["tool_choice"] = choice;
        body["parallel_tool_calls"] = parallel;
        chat_request_to_messages(&body, "c").unwrap()
    };
    assert_eq!(with(json!("auto"), Value::Null)["tool_choice"], json!({"type": "auto"}));
    assert_eq!(with(json!("none"), json!(false))["tool_choice"], json!({"type": "none"}));
    assert_eq!(
        with(json!({"type": "function", "function": {"name": "f"}}), json!(true))["tool_choice"],
        json!({"type": "tool", "name": "f"})
    );
    assert_eq!(
        with(Value::Null, json!(false))["tool_choice"],
        json!({"type": "auto", "disable_parallel_tool_use": true})
    );
    assert!(with(Value::Null, Value::Null).get("tool_choice").is_none());
    // A tool without parameters gets the empty object schema Anthropic requires.
    assert_eq!(
        with(Value::Null, Value::Null)["tools"][0]["input_schema"],
        json!({"type": "object", "properties": {}})
    );
    // No tools: no tool_choice either.
    let out =
        chat_request_to_messages(&json!({"messages": base["messages"], "tool_choice": "auto"}), "c").unwrap();
    assert!(out.get("tool_choice").is_none());
    let mut bad = base.clone();
    bad["tool_choice"] = json!("sometimes");
    assert!(err(bad).contains("tool_choice"));
    let mut bad = base;
    bad["tools"] = json!([{"type": "custom", "custom": {"name": "x"}}]);
    assert_eq!(err(bad), "`tools[0].type` must be \"function\"");
}

#[test]
fn images_and_files() {
    let chat = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "data:image/webp;base64,UklGR", "detail": "high"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/x.png"}},
        {"type": "file", "file": {"filename": "a.pdf", "file_data": "data:application/pdf;base64,JVBERi0="}},
    ]}]});
    assert_eq!(
        chat_request_to_messages(&chat, "c").unwrap()["messages"][0]["content"],
        json!([
            {"type": "text", "text": "What is this?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/webp", "data": "UklGR"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/x.png"}},
            {"type": "document", "title": "a.pdf",
             "source": {"type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}},
        ])
    );
    let bad = |part: Value| err(json!({"messages": [{"role": "user", "content": [part]}]}));
    assert!(
        bad(json!({"type": "image_url", "image_url": {"url": "ftp://x"}})).contains("messages[0].content[0]")
    );
    assert!(bad(json!({"type": "input_audio", "input_audio": {}})).contains("input_audio"));
    assert!(bad(json!({"type": "file", "file": {"file_id": "file-1"}})).contains("file ids"));
}

#[test]
fn cache_control_is_carried_to_anthropic() {
    let chat = json!({
        "messages": [
            {"role": "system", "content": [{"type": "text", "text": "Long", "cache_control": {"type": "ephemeral"}}]},
            {"role": "user", "content": [{"type": "text", "text": "q", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]},
        ],
        "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}},
            "cache_control": {"type": "ephemeral"}}],
    });
    let out = chat_request_to_messages(&chat, "c").unwrap();
    assert_eq!(
        out["system"],
        json!([{"type": "text", "text": "Long", "cache_control": {"type": "ephemeral"}}])
    );
    assert_eq!(out["messages"][0]["content"][0]["cache_control"], json!({"type": "ephemeral", "ttl": "1h"}));
    assert_eq!(out["tools"][0]["cache_control"], json!({"type": "ephemeral"}));
}

#[test]
fn invalid_inputs_name_the_field() {
    assert_eq!(err(json!({})), "`messages` is required");
    assert_eq!(err(json!({"messages": {}})), "`messages` must be an array");
    assert_eq!(
        err(json!({"messages": [{"role": "system", "content": "only system"}]})),
        "`messages` must contain at least one user or assistant message"
    );
    assert!(
        err(json!({"messages": [{"role": "function", "name": "f", "content": "x"}]}))
            .contains("messages[0].role")
    );
    assert!(
        err(json!({"messages": [{"role": "tool", "content": "x"}]})).contains("messages[0].tool_call_id")
    );
    assert!(
        err(json!({"messages": [{"role": "assistant", "tool_calls": [{"id": "a", "function": {}}]}]}))
            .contains("messages[0].tool_calls[0].function.name")
    );
    assert!(
        err(json!({"messages": [{"role": "system", "content": [{"type": "image_url"}]}, {"role": "user", "content": "x"}]}))
            .contains("messages[0].content[0]")
    );
}
