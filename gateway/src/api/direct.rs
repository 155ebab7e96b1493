//! The OpenAI APIs the chat machinery serves without persona or cache ([`pipeline::run_direct`]):
//! `POST /v1/embeddings`, on the models a route declares `kind: Embedding`, and the legacy
//! `POST /v1/completions` (streamed as chat is), each metered like any other request.

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::Response;
use bytes::Bytes;
use serde_json::Value;

use super::chat::answer;
use crate::auth::Authenticated;
use crate::chat_request::Invalid;
use crate::completions_request::CompletionsRequest;
use crate::embeddings_request::EmbeddingsRequest;
use crate::exchange::{Endpoint, parse_json};
use crate::payload::Governed;
use crate::pipeline;
use crate::state::AppState;

pub async fn embeddings(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(&state, auth, &headers, body, Endpoint::Embeddings, EmbeddingsRequest::parse).await
}

pub async fn completions(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    serve(&state, auth, &headers, body, Endpoint::Completions, CompletionsRequest::parse).await
}

/// Runs the request; the answer is shaped as chat's is.
async fn serve<R: Governed>(
    state: &AppState,
    auth: Authenticated,
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
    endpoint: Endpoint,
    parse: fn(Value) -> Result<R, Invalid>,
) -> Response {
    let request = parse_json(body, state.limits.max_request_bytes);
    answer(pipeline::run_direct(state, auth, request, endpoint, headers, parse).await)
}
