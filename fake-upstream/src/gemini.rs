//! Google Gemini's `POST /v1beta/models/{model}:generateContent` and
//! `:streamGenerateContent?alt=sse`: a reply of `fake-upstream reply to: <last user text>` (of the
//! last user turn with text: function responses have none), or,
//! when `toolConfig` forces one function (`mode: ANY` naming one, or one declared), a
//! `functionCall` with an example of its parameters. `usageMetadata` counts words: the prompt's
//! text (system instruction included) and the reply's. Streams send one chunk per word, the last
//! with `finishReason` and the usage. `:countTokens` answers the prompt's count as
//! `generateContent` would bill it.

use std::sync::Arc;

use axum::{
    body::Bytes,
    extract::{Path, State},
    http::HeaderMap,
    response::Response,
};
use serde_json::{Value, json};

use crate::{
    errors::Api,
    openai::data_frame,
    prompt::{self, REPLY_PREFIX},
    server::{self, AppState, Parsed},
    tool_use,
};

/// `POST /v1beta/models/{model}:{method}`.
pub(crate) async fn generate(
    State(state): State<Arc<AppState>>,
    Path(target): Path<String>,
    headers: HeaderMap,
    raw: Bytes,
) -> Response {
    let Parsed { body, .. } = match server::preflight(&state, Api::OpenAi, &headers, &raw).await {
        Ok(parsed) => parsed,
        Err(response) => return response,
    };
    let (stream, body) = match target.rsplit_once(':') {
        Some((_, "generateContent")) => (false, body),
        Some((_, "streamGenerateContent")) => (true, body),
        // The input tokens `generateContent` would bill for the same request.
        Some((_, "countTokens")) => {
            let request = body.get("generateContentRequest").cloned().unwrap_or(body);
            return server::json_response(Api::OpenAi, &json!({"totalTokens": prompt_tokens(&request)}));
        }
        _ => return Api::OpenAi.invalid_request("unknown method: expected generateContent", None),
    };
    let Some(contents) = body.get("contents").and_then(Value::as_array).filter(|c| !c.is_empty()) else {
        return Api::OpenAi
            .invalid_request("* GenerateContentRequest.contents: contents is not specified", None);
    };
    let prompt_tokens = prompt_tokens(&body);
    let last_user = contents
        .iter()
        .rev()
        .filter(|c| c["role"] == "user")
        .map(|c| texts(&c["parts"]).join(" "))
        .find(|text| !text.is_empty());
    let (part, reply_text) = match forced_function(&body) {
        Some((name, args)) => (json!({"functionCall": {"name": name, "args": args}}), args.to_string()),
        None => {
            let text = format!("{REPLY_PREFIX}{}", last_user.unwrap_or_default());
            (json!({"text": text}), text)
        }
    };
    let usage = |candidates: u64| {
        json!({"promptTokenCount": prompt_tokens, "candidatesTokenCount": candidates,
               "totalTokenCount": prompt_tokens + candidates})
    };
    let total = prompt::tokens(&reply_text);
    let candidate = |part: Value, finish: Option<&str>| {
        let mut candidate = json!({"content": {"role": "model", "parts": [part]}, "index": 0});
        if let Some(finish) = finish {
            candidate["finishReason"] = json!(finish);
        }
        candidate
    };
    let response_id = server::new_id("fake-");
    if !stream {
        let reply = json!({"candidates": [candidate(part, Some("STOP"))], "usageMetadata": usage(total),
                           "modelVersion": "fake", "responseId": response_id});
        return server::json_response(Api::OpenAi, &reply);
    }
    let pieces: Vec<Value> = match part.get("text").and_then(Value::as_str) {
        Some(text) => prompt::word_pieces(text).into_iter().map(|piece| json!({"text": piece})).collect(),
        None => vec![part.clone()],
    };
    let count = pieces.len();
    let mut so_far = 0;
    let frames = pieces
        .into_iter()
        .enumerate()
        .map(|(i, piece)| {
            so_far += piece["text"].as_str().map_or(total, prompt::tokens);
            let finish = (i + 1 == count).then_some("STOP");
            data_frame(
                &json!({"candidates": [candidate(piece, finish)], "usageMetadata": usage(so_far.min(total)),
                               "modelVersion": "fake", "responseId": response_id}),
            )
        })
        .collect();
    server::sse_response(Api::OpenAi, frames, false)
}

/// The text parts of `parts`.
fn texts(parts: &Value) -> Vec<String> {
    parts.as_array().into_iter().flatten().filter_map(|p| p["text"].as_str()).map(str::to_owned).collect()
}

/// Words of a request's text: its system instruction and contents.
fn prompt_tokens(request: &Value) -> u64 {
    let mut all = texts(&request["systemInstruction"]["parts"]);
    all.extend(request["contents"].as_array().into_iter().flatten().flat_map(|c| texts(&c["parts"])));
    all.iter().map(|t| prompt::tokens(t)).sum()
}

/// The function `toolConfig` forces, with an example of its parameters.
fn forced_function(body: &Value) -> Option<(String, Value)> {
    let config = body.pointer("/toolConfig/functionCallingConfig")?;
    if config["mode"] != "ANY" {
        return None;
    }
    let declarations: Vec<&Value> = body["tools"]
        .as_array()?
        .iter()
        .flat_map(|tool| tool["functionDeclarations"].as_array().into_iter().flatten())
        .collect();
    let allowed = config["allowedFunctionNames"].as_array();
    let name = match (allowed.and_then(|a| a.first()).and_then(Value::as_str), declarations.as_slice()) {
        (Some(name), _) => name.to_owned(),
        (None, [only]) => only["name"].as_str()?.to_owned(),
        _ => return None,
    };
    let declaration = declarations.iter().find(|d| d["name"] == name.as_str())?;
    Some((name, tool_use::example(&declaration["parameters"], 0)))
}
