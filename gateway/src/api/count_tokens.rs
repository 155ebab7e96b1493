//! `POST /v1/messages/count_tokens`: Anthropic's token counting, for any chat model the tenant
//! may use. Exact where the route's first backend can count (an Anthropic or Gemini upstream is
//! asked; the mock counts as it bills), an estimate otherwise (about four bytes of text a token, three per
//! message); `x-switchboard-token-count: exact | estimate` says which. Free and unmetered, as
//! Anthropic's own is: no ledger row, no rate limit, no budget.

use std::time::Duration;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderValue;
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use serde_json::{Value, json};

use crate::auth::Authenticated;
use crate::chat_request::{ChatRequest, Message};
use crate::error::{ApiError, Dialect};
use crate::exchange::parse_json;
use crate::payload::Payload;
use crate::providers::TokenCount;
use crate::state::AppState;
use crate::translate::anthropic::messages_request_to_chat;
use crate::usage::estimate_tokens;

/// Says whether the count is the backend's own (`exact`) or the gateway's (`estimate`).
pub const COUNT_HEADER: &str = "x-switchboard-token-count";

pub async fn count_tokens(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    match count(&state, &auth, body).await {
        Ok((tokens, how)) => {
            let mut response = Json(json!({"input_tokens": tokens})).into_response();
            response.headers_mut().insert(COUNT_HEADER, HeaderValue::from_static(how));
            response
        }
        Err(error) => error.into_response_for(Dialect::Anthropic),
    }
}

async fn count(
    state: &AppState,
    auth: &Authenticated,
    body: Result<Bytes, BytesRejection>,
) -> Result<(u64, &'static str), ApiError> {
    let mut body = parse_json(body, state.limits.max_request_bytes)?;
    // A count has no output; the canonical form wants a limit, which the upstream must not see.
    let limitless = body.get("max_tokens").is_none();
    let mut checked = body.clone();
    if limitless {
        checked["max_tokens"] = json!(1);
    }
    let chat = messages_request_to_chat(&checked).map_err(|e| ApiError::BadRequest(e.to_string(), None))?;
    let request = ChatRequest::parse(chat).map_err(|invalid| invalid.error)?;
    let target = auth
        .runtime
        .resolve(&auth.caller, &request.model)
        .ok_or_else(|| ApiError::ModelNotFound(request.model.clone()))?;
    Payload::Chat(&request).check_kind(target.model.kind)?;
    let Some(backend) =
        target.route.backends.iter().filter(|b| b.config.weight > 0).min_by_key(|b| b.config.priority)
    else {
        return Ok((estimate(&request), "estimate"));
    };
    body["model"] = Value::String(target.model.upstream_model.clone());
    let anthropic_body = Bytes::from(body.to_string());
    let timeout = Duration::from_millis(backend.config.request_timeout_ms);
    let limits = target.route.config.response_limits;
    let model = &target.model.upstream_model;
    let count = TokenCount { anthropic_body, request: &request, model, timeout, limits };
    match backend.provider.count_tokens(count).await {
        None => Ok((estimate(&request), "estimate")),
        Some(Ok(tokens)) => Ok((tokens, "exact")),
        Some(Err(error)) => {
            let error = error.redacted(&auth.runtime.redactor);
            if error.is_backend_fault() {
                let backend = &backend.config.name;
                tracing::warn!(%backend, %error, "the backend could not count tokens; answering an estimate");
                return Ok((estimate(&request), "estimate"));
            }
            Err(error.into_api_error())
        }
    }
}

/// About four bytes of text (and tool definitions) a token, and three tokens of framing a message.
fn estimate(request: &ChatRequest) -> u64 {
    let text: usize = request.messages.iter().map(Message::text_len).sum();
    let tools = request.field("tools").map_or(0, |tools| tools.to_string().len());
    estimate_tokens(text.saturating_add(tools)).saturating_add(3 * request.messages.len() as u64)
}
