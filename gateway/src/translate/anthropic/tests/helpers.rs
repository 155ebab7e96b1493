use super::*;

#[test]
fn ids_are_derived_and_reversible() {
    assert_eq!(chat_id_from_message_id("msg_01AbC"), "chatcmpl-01AbC");
    assert_eq!(message_id_from_chat_id("chatcmpl-01AbC"), "msg_01AbC");
    assert_eq!(message_id_from_chat_id("msg_01AbC"), "msg_01AbC");
    assert_eq!(message_id_from_chat_id("abc"), "msg_abc");
    assert_eq!(message_id_from_chat_id(""), "msg_switchboard");
    assert_eq!(chat_id_from_message_id(""), "chatcmpl-switchboard");
}

#[test]
fn data_urls_parse_only_when_base64() {
    assert_eq!(parse_data_url("data:image/png;base64,AAAA"), Some(("image/png", "AAAA")));
    assert_eq!(parse_data_url("data:image/jpeg;name=x.jpg;base64,/9j/"), Some(("image/jpeg", "/9j/")));
    assert_eq!(parse_data_url("data:text/plain,hello"), None);
    assert_eq!(parse_data_url("https://example.com/a.png"), None);
    assert_eq!(parse_data_url("data:;base64,AAAA"), None);
}

#[test]
fn tool_arguments_parse_leniently() {
    assert_eq!(parse_tool_arguments(Some(&json!("{\"a\":1}"))), json!({"a": 1}));
    assert_eq!(parse_tool_arguments(Some(&json!(""))), json!({}));
    assert_eq!(parse_tool_arguments(Some(&json!("{\"a\":"))), json!({}));
    assert_eq!(parse_tool_arguments(Some(&json!("[1,2]"))), json!({}));
    assert_eq!(parse_tool_arguments(Some(&json!({"already": "object"}))), json!({"already": "object"}));
    assert_eq!(parse_tool_arguments(None), json!({}));
}

#[test]
fn finish_and_stop_reasons_map_both_ways() {
    let cases = [
        (Some("stop"), false, "end_turn"),
        (Some("length"), false, "max_tokens"),
        (Some("tool_calls"), true, "tool_use"),
        (Some("function_call"), false, "tool_use"),
        (Some("content_filter"), false, "refusal"),
        (Some("stop"), true, "tool_use"),
        (None, false, "end_turn"),
        (Some("something_new"), false, "end_turn"),
    ];
    for (finish, tools, want) in cases {
        assert_eq!(stop_reason_from_finish(finish, tools), want, "{finish:?} tools={tools}");
    }
    let cases = [
        (Some("end_turn"), "stop"),
        (Some("stop_sequence"), "stop"),
        (Some("pause_turn"), "stop"),
        (Some("max_tokens"), "length"),
        (Some("model_context_window_exceeded"), "length"),
        (Some("tool_use"), "tool_calls"),
        (Some("refusal"), "content_filter"),
        (None, "stop"),
    ];
    for (stop, want) in cases {
        assert_eq!(finish_reason_from_stop(stop), want, "{stop:?}");
    }
}

#[test]
fn usage_converts_both_ways_with_cache_numbers() {
    let anthropic = json!({
        "input_tokens": 100, "output_tokens": 20,
        "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 50,
    });
    let usage = TokenUsage::from_anthropic(&anthropic);
    let chat = usage.to_chat();
    assert_eq!(
        chat,
        json!({
            "prompt_tokens": 1150, "completion_tokens": 20, "total_tokens": 1170,
            "prompt_tokens_details": {"cached_tokens": 1000, "cache_write_tokens": 50},
            "cache_read_input_tokens": 1000, "cache_creation_input_tokens": 50,
        })
    );
    assert_eq!(TokenUsage::from_chat(&chat), usage);
    assert_eq!(TokenUsage::from_chat(&chat).to_anthropic(), anthropic);

    // Plain OpenAI usage: cached tokens come out of input_tokens, no cache writes.
    let openai = json!({"prompt_tokens": 500, "completion_tokens": 7, "total_tokens": 507,
        "prompt_tokens_details": {"cached_tokens": 128, "audio_tokens": 0}});
    assert_eq!(
        TokenUsage::from_chat(&openai).to_anthropic(),
        json!({"input_tokens": 372, "output_tokens": 7, "cache_read_input_tokens": 128,
            "cache_creation_input_tokens": 0})
    );
    // OpenAI's own cache-write field is understood too.
    let openai = json!({"prompt_tokens": 500, "completion_tokens": 7,
        "prompt_tokens_details": {"cached_tokens": 100, "cache_write_tokens": 300}});
    assert_eq!(
        TokenUsage::from_chat(&openai),
        TokenUsage { input: 100, output: 7, cache_read: 100, cache_creation: 300 }
    );
    // Inconsistent numbers never underflow.
    let odd =
        json!({"prompt_tokens": 5, "completion_tokens": 1, "prompt_tokens_details": {"cached_tokens": 9}});
    assert_eq!(TokenUsage::from_chat(&odd).input, 0);
    assert_eq!(TokenUsage::from_chat(&Value::Null), TokenUsage::default());
}

#[test]
fn message_delta_usage_merges_only_present_fields() {
    let mut usage = TokenUsage::from_anthropic(&json!({"input_tokens": 10, "output_tokens": 1,
        "cache_read_input_tokens": 3, "cache_creation_input_tokens": 4}));
    usage.merge_anthropic(&json!({"output_tokens": 42, "input_tokens": null}));
    assert_eq!(usage, TokenUsage { input: 10, output: 42, cache_read: 3, cache_creation: 4 });
}

#[test]
fn errors_display_clearly() {
    assert_eq!(invalid("`model` is required").to_string(), "invalid request: `model` is required");
    let upstream =
        TranslateError::Upstream { error_type: "overloaded_error".into(), message: "Overloaded".into() };
    assert_eq!(upstream.to_string(), "upstream error (overloaded_error): Overloaded");
}
