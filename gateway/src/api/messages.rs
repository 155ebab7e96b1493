//! `POST /v1/messages`: Anthropic's Messages API, served by any backend through the canonical
//! OpenAI form.

use std::convert::Infallible;
use std::sync::Arc;

use axum::Extension;
use axum::extract::State;
use axum::extract::rejection::BytesRejection;
use axum::response::sse::{Event, Sse};
use axum::response::{Json, Response};
use bytes::Bytes;
use futures::StreamExt;

use super::with_request_id;
use crate::auth::Authenticated;
use crate::error::{ApiError, Dialect};
use crate::exchange::{Endpoint, Exchange, metered, parse_json};
use crate::providers::Reply;
use crate::state::AppState;
use crate::translate::anthropic::{
    ChatToMessagesStream, chat_response_to_messages, messages_request_to_chat,
};

pub async fn messages(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let begun = parse_json(body, state.limits.max_request_bytes).and_then(|body| {
        let request =
            messages_request_to_chat(&body).map_err(|e| ApiError::BadRequest(e.to_string(), None))?;
        Ok((Exchange::begin(&state, auth, &request, Endpoint::Messages)?, request))
    });
    let (exchange, request) = match begun {
        Ok(begun) => begun,
        Err(error) => return error.into_response_for(Dialect::Anthropic),
    };
    let exchange = Arc::new(exchange);
    let id = exchange.id.clone();
    let response = match exchange.dispatch(&request).await {
        Err(failure) => failure.account(&exchange).into_response_for(Dialect::Anthropic),
        Ok((Reply::Complete(body), backend)) => {
            exchange.account(Some(&backend), 200, exchange.usage_of(&body), None);
            axum::response::IntoResponse::into_response(Json(chat_response_to_messages(
                &body,
                &exchange.model,
            )))
        }
        Ok((Reply::Stream(chunks), backend)) => {
            let message_id = format!("msg_{}", exchange.id.replace('-', ""));
            let mut translator = ChatToMessagesStream::new(&exchange.model, &message_id);
            let events = async_stream::stream! {
                let mut chunks = std::pin::pin!(metered(exchange, backend, chunks));
                while let Some(item) = chunks.next().await {
                    match item {
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
            axum::response::IntoResponse::into_response(Sse::new(events))
        }
    };
    with_request_id(response, &id)
}
