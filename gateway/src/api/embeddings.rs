//! `POST /v1/embeddings`: OpenAI's embeddings API, on the models a route declares as
//! `kind: Embedding`, metered per input token like any other request.

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;

use super::{whole_reply, with_ids};
use crate::auth::Authenticated;
use crate::embeddings_request::EmbeddingsRequest;
use crate::exchange::{Endpoint, Served, ServedReply, parse_json};
use crate::pipeline;
use crate::state::AppState;

pub async fn embeddings(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = parse_json(body, state.limits.max_request_bytes);
    let ran =
        pipeline::run_direct(&state, auth, request, Endpoint::Embeddings, &headers, EmbeddingsRequest::parse);
    let (exchange, served) = match ran.await {
        Ok(ran) => ran,
        Err(error) => return error.into_response(),
    };
    let response = match served {
        Err(error) => error.into_response(),
        Ok(Served { reply: ServedReply::Complete(body), headers }) => whole_reply(&body, headers),
        // An embeddings request never streams; an upstream that streams anyway is a protocol fault.
        Ok(Served { reply: ServedReply::Stream(_), .. }) => {
            crate::error::ApiError::UpstreamFailed("the upstream streamed an embeddings reply".into())
                .into_response()
        }
    };
    with_ids(response, &exchange)
}
