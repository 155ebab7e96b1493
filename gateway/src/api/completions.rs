//! `POST /v1/completions`: OpenAI's legacy completions, on OpenAI-type and mock backends,
//! streaming and not, metered like a chat.

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::chat::event_stream;
use super::{whole_reply, with_headers, with_ids};
use crate::auth::Authenticated;
use crate::completions_request::CompletionsRequest;
use crate::exchange::{Endpoint, Served, ServedReply, parse_json};
use crate::pipeline;
use crate::state::AppState;

pub async fn completions(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = parse_json(body, state.limits.max_request_bytes);
    let ran = pipeline::run_direct(
        &state,
        auth,
        request,
        Endpoint::Completions,
        &headers,
        CompletionsRequest::parse,
    );
    let (exchange, served) = match ran.await {
        Ok(ran) => ran,
        Err(error) => return error.into_response(),
    };
    let response = match served {
        Err(error) => error.into_response(),
        Ok(Served { reply: ServedReply::Complete(body), headers }) => whole_reply(&body, headers),
        Ok(Served { reply: ServedReply::Stream(chunks), headers }) => {
            with_headers(event_stream(chunks, exchange.include_usage), headers)
        }
    };
    with_ids(response, &exchange)
}
