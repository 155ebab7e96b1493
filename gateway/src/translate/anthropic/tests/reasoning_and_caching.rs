//! Thinking, structured outputs and top-level `cache_control` from Anthropic clients: kept for
//! Anthropic upstreams, translated for the others, refused where nothing is near.

use super::*;

fn message(extra: Value) -> Value {
    let mut body = json!({"model": "m", "max_tokens": 8000, "messages": [{"role": "user", "content": "hi"}]});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[test]
fn thinking_goes_to_anthropic_as_sent_and_to_chat_as_the_nearest_effort() {
    let thinking = json!({"type": "enabled", "budget_tokens": 2048});
    let chat = messages_request_to_chat(&message(json!({"thinking": thinking}))).unwrap();
    assert_eq!(
        (chat["thinking"].clone(), chat["reasoning_effort"].as_str()),
        (thinking.clone(), Some("low"))
    );
    let upstream = chat_request_to_messages(&chat, "claude").unwrap();
    assert_eq!(upstream["thinking"], thinking, "an Anthropic upstream gets it as the client sent it");
    let chat =
        messages_request_to_chat(&message(json!({"thinking": {"type": "enabled", "budget_tokens": 20000}})))
            .unwrap();
    assert_eq!(chat["reasoning_effort"], "high");
    let chat = messages_request_to_chat(&message(json!({"thinking": {"type": "disabled"}}))).unwrap();
    assert!(chat.get("thinking").is_none() && chat.get("reasoning_effort").is_none());
}

#[test]
fn an_openai_clients_effort_becomes_a_thinking_budget_within_max_tokens() {
    let chat = |effort: &str, max: u64| json!({"model": "m", "max_tokens": max, "reasoning_effort": effort, "messages": [{"role": "user", "content": "hi"}]});
    let upstream = chat_request_to_messages(&chat("medium", 8000), "claude").unwrap();
    assert_eq!(upstream["thinking"], json!({"type": "enabled", "budget_tokens": 4096}));
    let upstream = chat_request_to_messages(&chat("high", 8000), "claude").unwrap();
    assert_eq!(upstream["thinking"]["budget_tokens"], 7999, "below max_tokens, as Anthropic requires");
    assert!(chat_request_to_messages(&chat("none", 8000), "claude").unwrap().get("thinking").is_none());
    for (effort, max) in [("low", 1000), ("extreme", 8000)] {
        let error = chat_request_to_messages(&chat(effort, max), "claude").unwrap_err();
        assert!(error.to_string().contains("reasoning_effort"), "{error}");
    }
}

#[test]
fn output_formats_become_response_format_and_cache_control_is_kept() {
    let schema = json!({"type": "object", "properties": {"a": {"type": "string"}}});
    let expected = json!({"type": "json_schema", "json_schema": {"name": "output", "schema": schema}});
    for extra in [
        json!({"output_format": {"type": "json_schema", "schema": schema}}),
        json!({"output_config": {"format": {"type": "json_schema", "schema": schema}}}),
    ] {
        let chat = messages_request_to_chat(&message(extra)).unwrap();
        assert_eq!(chat["response_format"], expected);
    }
    let chat = messages_request_to_chat(&message(json!({"output_config": {"effort": "high"}}))).unwrap();
    assert_eq!(chat["reasoning_effort"], "high");
    let chat = messages_request_to_chat(&message(json!({"cache_control": {"type": "ephemeral"}}))).unwrap();
    let upstream = chat_request_to_messages(&chat, "claude").unwrap();
    assert_eq!(upstream["cache_control"], json!({"type": "ephemeral"}));
    for (extra, field) in [
        (json!({"output_config": {"verbosity": "low"}}), "output_config.verbosity"),
        (json!({"output_format": {"type": "xml"}}), "output_format"),
        (json!({"thinking": {"type": "enabled"}}), "thinking.budget_tokens"),
    ] {
        let error = messages_request_to_chat(&message(extra.clone())).unwrap_err();
        assert!(error.to_string().contains(field), "{extra}: {error}");
    }
    let both = message(json!({"thinking": {"type": "enabled", "budget_tokens": 2048},
                              "output_format": {"type": "json_schema", "schema": schema}}));
    let error = chat_request_to_messages(&messages_request_to_chat(&both).unwrap(), "claude").unwrap_err();
    assert!(error.to_string().contains("thinking"), "{error}");
}
