//! HTTP handlers, thin: parsing and wire shapes here, the request's life in [`crate::exchange`].

pub mod admin;
pub mod chat;
pub mod health;
pub mod messages;
pub mod models;
pub mod subjects;

use axum::http::{HeaderMap, HeaderName, HeaderValue};
use axum::response::Response;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::exchange::{Endpoint, Exchange};
use crate::persona::turn::Turn;
use crate::state::AppState;

/// Starts the exchange for an OpenAI-form request; a request to `persona/<name>` is first
/// rewritten to speak as the persona. Returns the request as it goes upstream.
pub(crate) async fn begin(
    state: &AppState,
    auth: Authenticated,
    mut request: Value,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<(Exchange, Value, Option<Turn>), ApiError> {
    let turn = Turn::prepare(&state.personas, &auth.runtime, &auth.caller, &mut request, headers).await?;
    let exchange =
        Exchange::begin(state, auth, &request, endpoint, headers, turn.as_ref().map(|t| &t.persona))?;
    Ok((exchange, request, turn))
}

/// Lets the persona learn from a turn it answered, off the request path.
pub(crate) fn learn(state: &AppState, turn: Option<Turn>) {
    if let Some(turn) = turn {
        let state = state.clone();
        tokio::spawn(async move { turn.learn(&state).await });
    }
}

/// Adds the request id headers both SDKs read (`x-request-id` for OpenAI, `request-id` for Anthropic).
fn with_request_id(mut response: Response, id: &str) -> Response {
    if let Ok(value) = HeaderValue::from_str(id) {
        response.headers_mut().insert("x-request-id", value.clone());
        response.headers_mut().insert("request-id", value);
    }
    response
}

/// Adds headers computed while serving (rate limits, cache status).
fn with_headers(mut response: Response, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    response.headers_mut().extend(headers);
    response
}
