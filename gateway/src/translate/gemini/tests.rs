use serde_json::{Value, json};

use super::*;

#[test]
fn a_chat_request_becomes_contents_instructions_tools_and_config() {
    let chat = json!({
        "model": "m", "temperature": 0.3, "top_p": 0.9, "max_completion_tokens": 99, "stop": "END", "n": 2,
        "reasoning_effort": "medium", "user": "u", "stream_options": {"include_usage": true},
        "response_format": {"type": "json_schema", "json_schema": {"name": "s", "schema": {"type": "object"}}},
        "tools": [{"type": "function", "function": {"name": "f", "description": "d", "parameters": {"type": "object"}}}],
        "tool_choice": "required",
        "messages": [
            {"role": "system", "content": "be brief"},
            {"role": "user", "content": [{"type": "text", "text": "look"},
                                         {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBO"}}]},
            {"role": "user", "content": "and this"},
            {"role": "assistant", "content": null, "tool_calls": [{"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]},
            {"role": "tool", "tool_call_id": "c1", "content": "done"},
        ],
    });
    assert_eq!(
        chat_request_to_gemini(&chat).unwrap(),
        json!({
            "systemInstruction": {"parts": [{"text": "be brief"}]},
            "contents": [
                {"role": "user", "parts": [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "iVBO"}}, {"text": "and this"}]},
                {"role": "model", "parts": [{"functionCall": {"name": "f", "args": {"a": 1}}}]},
                {"role": "user", "parts": [{"functionResponse": {"name": "f", "response": {"content": "done"}}}]},
            ],
            "tools": [{"functionDeclarations": [{"name": "f", "description": "d", "parameters": {"type": "object"}}]}],
            "toolConfig": {"functionCallingConfig": {"mode": "ANY"}},
            "generationConfig": {"temperature": 0.3, "topP": 0.9, "candidateCount": 2, "maxOutputTokens": 99,
                                 "stopSequences": ["END"], "responseMimeType": "application/json",
                                 "responseJsonSchema": {"type": "object"}, "thinkingConfig": {"thinkingBudget": 8192}},
        })
    );
}

#[test]
fn what_gemini_cannot_do_is_refused_by_name() {
    let base = json!({"model": "m", "messages": [{"role": "user", "content": "x"}]});
    for (field, value) in
        [("logprobs", json!(true)), ("logit_bias", json!({"1": 1})), ("modalities", json!(["audio"]))]
    {
        let mut request = base.clone();
        request[field] = value;
        let error = chat_request_to_gemini(&request).unwrap_err().to_string();
        assert!(error.contains(&format!("`{field}`")), "{error}");
    }
    let orphan =
        json!({"model": "m", "messages": [{"role": "tool", "tool_call_id": "nope", "content": "x"}]});
    assert!(chat_request_to_gemini(&orphan).unwrap_err().to_string().contains("tool_call_id"));
    let url_image = json!({"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://x/y.png"}}]}]});
    assert!(chat_request_to_gemini(&url_image).is_err());
    let mut modalities = base;
    modalities["modalities"] = json!(["text"]);
    assert!(chat_request_to_gemini(&modalities).is_ok(), "text only asks for nothing");
}

#[test]
fn a_reply_becomes_a_completion_with_calls_and_usage() {
    let reply = json!({
        "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"text": "thinking...", "thought": true}, {"text": "Calling."}, {"functionCall": {"name": "f", "args": {"a": 1}}}]}}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 4, "thoughtsTokenCount": 3,
                          "cachedContentTokenCount": 6, "totalTokenCount": 17},
    });
    let chat = gemini_response_to_chat(&reply, "m", "chatcmpl-1", 7);
    let message = &chat["choices"][0]["message"];
    assert_eq!(message["content"], "Calling.");
    assert_eq!(message["tool_calls"][0]["function"], json!({"name": "f", "arguments": "{\"a\":1}"}));
    assert_eq!(chat["choices"][0]["finish_reason"], "tool_calls");
    assert_eq!(chat["usage"]["prompt_tokens"], 10);
    assert_eq!(chat["usage"]["prompt_tokens_details"]["cached_tokens"], 6);
    assert_eq!(chat["usage"]["completion_tokens"], 7, "thoughts are billed as output");
    let length =
        json!({"candidates": [{"finishReason": "MAX_TOKENS", "content": {"parts": [{"text": "a"}]}}]});
    assert_eq!(gemini_response_to_chat(&length, "m", "c", 0)["choices"][0]["finish_reason"], "length");
    let blocked = json!({"candidates": [{"finishReason": "SAFETY", "content": {"parts": []}}]});
    assert_eq!(
        gemini_response_to_chat(&blocked, "m", "c", 0)["choices"][0]["finish_reason"],
        "content_filter"
    );
}

#[test]
fn stream_chunks_become_deltas_a_finish_and_one_usage_chunk() {
    let mut stream = GeminiToChatStream::new("m", "chatcmpl-1".into(), 7);
    let chunks = [
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}}], "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 1}}),
        json!({"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}, {"functionCall": {"name": "f", "args": {}}}]}, "finishReason": "STOP"}],
               "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2}}),
    ];
    let mut out: Vec<Value> = chunks.iter().flat_map(|c| stream.feed(c)).collect();
    out.extend(stream.finish());
    assert_eq!(out[0]["choices"][0]["delta"]["role"], "assistant");
    let text: String =
        out.iter().filter_map(|c| c.pointer("/choices/0/delta/content").and_then(Value::as_str)).collect();
    assert_eq!(text, "Hello");
    let calls: Vec<&Value> = out.iter().filter_map(|c| c.pointer("/choices/0/delta/tool_calls/0")).collect();
    assert_eq!((calls.len(), calls[0]["function"]["name"].as_str()), (1, Some("f")));
    let finishes: Vec<&str> =
        out.iter().filter_map(|c| c.pointer("/choices/0/finish_reason").and_then(Value::as_str)).collect();
    assert_eq!(finishes, ["tool_calls"]);
    let last = out.last().unwrap();
    assert_eq!((last["choices"].clone(), last["usage"]["completion_tokens"].clone()), (json!([]), json!(2)));
}
