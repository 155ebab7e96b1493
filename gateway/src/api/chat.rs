//! `POST /v1/chat/completions`: OpenAI's Chat Completions API, streaming and not.

use std::convert::Infallible;

use axum::Extension;
use axum::body::Body;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::{whole_reply, with_headers, with_ids};
use crate::auth::Authenticated;
use crate::error::{ApiError, Dialect};
use crate::exchange::{Endpoint, Served, ServedReply, parse_json};
use crate::pipeline::{self, Ran};
use crate::providers::ChunkStream;
use crate::state::AppState;

pub async fn chat_completions(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = parse_json(body, state.limits.max_request_bytes);
    answer(pipeline::run(&state, auth, request, Endpoint::ChatCompletions, &headers).await)
}

/// The answer in OpenAI's shape: the upstream's reply as it came, or its chunks as events (chat
/// and legacy completions alike), with the request's ids.
pub(super) fn answer(ran: Result<Ran, ApiError>) -> Response {
    let (exchange, served) = match ran {
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

/// Chunks ready together leave as one write.
const MAX_CHUNKS_PER_WRITE: usize = 64;

/// The chunks (chat or legacy completion) as OpenAI's `text/event-stream`: each chunk's JSON as
/// the upstream sent it, then
/// `data: [DONE]`. The usage chunk goes only to clients that asked for it. A failure mid-stream
/// ends it with a top-level `error` frame, which makes the OpenAI SDKs raise instead of
/// returning a silently truncated answer.
fn event_stream(chunks: ChunkStream, include_usage: bool) -> Response {
    let frames = async_stream::stream! {
        let mut batches = chunks.ready_chunks(MAX_CHUNKS_PER_WRITE);
        while let Some(batch) = batches.next().await {
            let mut frames = BytesMut::new();
            for item in batch {
                match item {
                    Ok(chunk) if include_usage || !chunk.is_usage_only() => data_frame(&mut frames, chunk.json()),
                    Ok(_) => {}
                    Err(error) => {
                        let body = error.into_api_error().body(Dialect::OpenAi).to_string();
                        data_frame(&mut frames, body.as_bytes());
                        yield Ok::<_, Infallible>(frames.freeze());
                        return;
                    }
                }
            }
            if !frames.is_empty() {
                yield Ok(frames.freeze());
            }
        }
        yield Ok(Bytes::from_static(b"data: [DONE]\n\n"));
    };
    let mut response = Response::new(Body::from_stream(frames));
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("text/event-stream"));
    headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}

/// Appends one event; a payload that came as several `data:` lines (joined with `\n`) goes out
/// as several again.
fn data_frame(frames: &mut BytesMut, json: &[u8]) {
    frames.reserve(json.len() + 8);
    for line in json.split(|byte| *byte == b'\n') {
        frames.extend_from_slice(b"data: ");
        frames.extend_from_slice(line);
        frames.extend_from_slice(b"\n");
    }
    frames.extend_from_slice(b"\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_payload_of_several_data_lines_keeps_its_lines() {
        let mut frames = BytesMut::new();
        data_frame(&mut frames, b"{\"a\":1}");
        data_frame(&mut frames, b"{\"b\":\n2}");
        assert_eq!(&frames[..], b"data: {\"a\":1}\n\ndata: {\"b\":\ndata: 2}\n\n");
    }
}
