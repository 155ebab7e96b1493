//! `POST /v1/messages`: Anthropic's Messages API, served by any backend through the canonical
//! OpenAI form.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{Json, Response};
use bytes::Bytes;
use futures::StreamExt;

use super::{with_headers, with_ids};
use crate::auth::Authenticated;
use crate::error::{ApiError, Dialect};
use crate::exchange::{Endpoint, Served, ServedReply, parse_json};
use crate::pipeline;
use crate::state::AppState;
use crate::translate::anthropic::{
    ChatToMessagesStream, chat_response_to_messages, messages_request_to_chat,
};

pub async fn messages(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let request = parse_json(body, state.limits.max_request_bytes).and_then(|body| {
        messages_request_to_chat(&body).map_err(|e| ApiError::BadRequest(e.to_string(), None))
    });
    let ran = pipeline::run(&state, auth, request, Endpoint::Messages, &headers).await;
    let (exchange, served) = match ran {
        Ok(ran) => ran,
        Err(error) => return error.into_response_for(Dialect::Anthropic),
    };
    let response = match served {
        Err(error) => error.into_response_for(Dialect::Anthropic),
        Ok(Served { reply: ServedReply::Complete(body), headers }) => match body.to_value() {
            Ok(body) => {
                let reply = Json(chat_response_to_messages(&body, &exchange.model));
                with_headers(axum::response::IntoResponse::into_response(reply), headers)
            }
            Err(error) => error.into_api_error().into_response_for(Dialect::Anthropic),
        },
        Ok(Served { reply: ServedReply::Stream(chunks), headers }) => {
            let message_id = format!("msg_{}", exchange.id.replace('-', ""));
            let mut translator = ChatToMessagesStream::new(&exchange.model, &message_id);
            let events = async_stream::stream! {
                let mut chunks = chunks;
                while let Some(item) = chunks.next().await {
                    match item.and_then(|chunk| chunk.to_value()) {
                        Ok(chunk) => {
                            for (name, data) in translator.feed(&chunk) {
                                yield Ok::<_, Infallible>(Event::default().event(name).data(data.to_string()));
                            }
                        }
                        Err(error) => {
                            let body = error.into_api_error().body(Dialect::Anthropic);
                            yield Ok(Event::default().event("error").data(body.to_string()));
                            return;
                        }
                    }
                }
                for (name, data) in translator.finish() {
                    yield Ok(Event::default().event(name).data(data.to_string()));
                }
            };
            with_headers(axum::response::IntoResponse::into_response(Sse::new(events)), headers)
        }
    };
    with_ids(response, &exchange)
}
