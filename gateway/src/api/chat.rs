//! `POST /v1/chat/completions`: OpenAI's Chat Completions API, streaming and not.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::Value;

use super::{begin, learn, with_headers, with_request_id};
use crate::auth::Authenticated;
use crate::error::Dialect;
use crate::exchange::{Endpoint, Served, ServedReply, parse_json};
use crate::state::AppState;

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let begun = match parse_json(body, state.limits.max_request_bytes) {
        Ok(request) => begin(&state, auth, request, Endpoint::ChatCompletions, &headers).await,
        Err(error) => Err(error),
    };
    let (exchange, request, turn) = match begun {
        Ok(begun) => begun,
        Err(error) => return error.into_response(),
    };
    let exchange = Arc::new(exchange);
    let served = exchange.serve(&state, &request).await;
    if served.is_ok() {
        learn(&state, turn);
    }
    let response = match served {
        Err(error) => error.into_response(),
        Ok(Served { reply: ServedReply::Complete(body), headers }) => {
            with_headers(Json(body).into_response(), headers)
        }
        Ok(Served { reply: ServedReply::Stream(chunks), headers }) => {
            let include_usage = exchange.include_usage;
            let events = async_stream::stream! {
                let mut chunks = chunks;
                while let Some(item) = chunks.next().await {
                    match item {
                        Ok(chunk) if include_usage || !is_usage_only(&chunk) => {
                            yield Ok::<_, Infallible>(Event::default().data(chunk.to_string()));
                        }
                        Ok(_) => {}
                        Err(error) => {
                            // A top-level `error` frame makes the OpenAI SDKs raise instead of
                            // returning a silently truncated answer.
                            let body = error.into_api_error().body(Dialect::OpenAi);
                            yield Ok(Event::default().data(body.to_string()));
                            return;
                        }
                    }
                }
                yield Ok(Event::default().data("[DONE]"));
            };
            with_headers(Sse::new(events).into_response(), headers)
        }
    };
    with_request_id(response, &exchange.id)
}

/// The final usage chunk (`choices: []`), which goes only to clients that asked for it.
fn is_usage_only(chunk: &Value) -> bool {
    chunk.get("choices").and_then(Value::as_array).is_some_and(Vec::is_empty) && chunk.get("usage").is_some()
}
