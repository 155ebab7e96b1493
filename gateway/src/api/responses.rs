//! OpenAI's Responses API on every backend: `POST /v1/responses` (whole or streamed, continuing a
//! stored conversation with `previous_response_id`), `GET` and `DELETE /v1/responses/{id}`. A
//! request is translated to a chat and runs through the same pipeline (limits, budgets, ledger,
//! request log); its answer is translated back and, unless `store: false`, kept for its tenant.

use std::convert::Infallible;

use axum::Extension;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, Sse};
use axum::response::{IntoResponse, Json, Response};
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value, json};

use super::{with_headers, with_ids};
use crate::auth::Authenticated;
use crate::error::{ApiError, Dialect};
use crate::exchange::{Endpoint, Exchange, Served, ServedReply, parse_json};
use crate::pipeline;
use crate::providers::ChunkStream;
use crate::state::AppState;
use crate::stored_responses::MAX_CONVERSATION_BYTES;
use crate::translate::responses::{
    ChatToResponsesStream, Echo, assistant_message, output_of_chat, responses_request_to_chat,
};

/// What is kept of a request once it runs: how to answer it and what to store.
struct Asked {
    echo: Echo,
    tenant: String,
    store: bool,
    /// The conversation this request adds to (history and input, without the instructions).
    conversation: Vec<Value>,
}

pub async fn create(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let tenant = auth.caller.tenant.clone();
    let (chat, request) =
        match translated(&state, &tenant, parse_json(body, state.limits.max_request_bytes)).await {
            Ok(translated) => translated,
            // Refused before it began: the pipeline writes its request log row, as for a chat.
            Err(error) => {
                return match pipeline::run(&state, auth, Err(error), Endpoint::Responses, &headers).await {
                    Err(error) => error.into_response(),
                    Ok(_) => ApiError::Internal("a refused request began".into()).into_response(),
                };
            }
        };
    let messages = chat["messages"].clone();
    let (exchange, served) = match pipeline::run(&state, auth, Ok(chat), Endpoint::Responses, &headers).await
    {
        Ok(ran) => ran,
        Err(error) => return error.into_response(),
    };
    let asked = asked(&exchange, &request, &messages, tenant);
    let response = match served {
        Err(error) => error.into_response(),
        Ok(Served { reply: ServedReply::Complete(body), headers }) => match body.to_value() {
            Ok(reply) => {
                let response = whole(&state, asked, &reply).await;
                with_headers(Json(response).into_response(), headers)
            }
            Err(error) => error.into_api_error().into_response(),
        },
        Ok(Served { reply: ServedReply::Stream(chunks), headers }) => {
            with_headers(streamed(state.clone(), asked, chunks), headers)
        }
    };
    with_ids(response, &exchange)
}

pub async fn get(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Path(id): Path<String>,
) -> Response {
    match state.responses.response(&auth.caller.tenant, &id).await {
        Ok(Some(response)) => Json(response).into_response(),
        Ok(None) => not_found(&id).into_response(),
        Err(error) => store_failed(&error).into_response(),
    }
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Path(id): Path<String>,
) -> Response {
    match state.responses.delete(&auth.caller.tenant, &id).await {
        Ok(true) => Json(json!({"id": id, "object": "response", "deleted": true})).into_response(),
        Ok(false) => not_found(&id).into_response(),
        Err(error) => store_failed(&error).into_response(),
    }
}

/// The request as a chat (after the conversation it continues), and the request itself.
async fn translated(
    state: &AppState,
    tenant: &str,
    body: Result<Value, ApiError>,
) -> Result<(Value, Map<String, Value>), ApiError> {
    let Value::Object(request) = body? else {
        return Err(ApiError::BadRequest("request body must be a JSON object".into(), Some("invalid_json")));
    };
    let history = match request.get("previous_response_id") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::String(id)) => match state.responses.conversation(tenant, id).await {
            Ok(Some(history)) => history,
            Ok(None) => return Err(not_found(id)),
            Err(error) => return Err(store_failed(&error)),
        },
        Some(_) => {
            let message = "`previous_response_id` must be a string".into();
            return Err(ApiError::BadRequest(message, Some("invalid_request")));
        }
    };
    if serde_json::to_vec(&history).map_or(0, |text| text.len()) > MAX_CONVERSATION_BYTES {
        let message = format!("the conversation is over {MAX_CONVERSATION_BYTES} bytes: start a new one");
        return Err(ApiError::BadRequest(message, Some("conversation_too_long")));
    }
    let chat = responses_request_to_chat(&request, history)?;
    Ok((chat, request))
}

fn asked(exchange: &Exchange, request: &Map<String, Value>, messages: &Value, tenant: String) -> Asked {
    let id = format!("resp_{}", exchange.id.replace('-', ""));
    let created_at = u64::try_from(crate::db::now_ms() / 1000).unwrap_or(0);
    let instructions = request.get("instructions").is_some_and(|i| !i.is_null());
    let messages = messages.as_array().map(Vec::as_slice).unwrap_or_default();
    Asked {
        echo: Echo::of_request(request, id, created_at),
        tenant,
        store: request.get("store").and_then(Value::as_bool) != Some(false),
        conversation: messages[usize::from(instructions).min(messages.len())..].to_vec(),
    }
}

/// A whole reply as a `response`, stored.
async fn whole(state: &AppState, asked: Asked, reply: &Value) -> Value {
    let item_id = message_id(&asked.echo.id);
    let (output, usage, incomplete) = output_of_chat(reply, &item_id);
    let status = if incomplete.is_some() { "incomplete" } else { "completed" };
    let response = asked.echo.response(status, output, usage, incomplete);
    keep(state, asked, &response).await;
    response
}

/// The chat chunks as the Responses API's events; the final response is stored before its
/// `response.completed` leaves.
fn streamed(state: AppState, asked: Asked, chunks: ChunkStream) -> Response {
    let mut translator = ChatToResponsesStream::new(asked.echo.clone(), message_id(&asked.echo.id));
    let events = async_stream::stream! {
        let mut chunks = chunks;
        for (name, data) in translator.start() {
            yield Ok::<_, Infallible>(Event::default().event(name).data(data.to_string()));
        }
        while let Some(item) = chunks.next().await {
            match item.and_then(|chunk| chunk.to_value()) {
                Ok(chunk) => {
                    for (name, data) in translator.feed(&chunk) {
                        yield Ok(Event::default().event(name).data(data.to_string()));
                    }
                }
                Err(error) => {
                    let body = error.into_api_error().body(Dialect::OpenAi);
                    let error = &body["error"];
                    let data = json!({"type": "error", "code": error["code"], "message": error["message"],
                                      "param": null, "error": error});
                    yield Ok(Event::default().event("error").data(data.to_string()));
                    return;
                }
            }
        }
        let finished = translator.finish();
        if let Some((_, last)) = finished.last() {
            keep(&state, asked, &last["response"]).await;
        }
        for (name, data) in finished {
            yield Ok(Event::default().event(name).data(data.to_string()));
        }
    };
    Sse::new(events).into_response()
}

/// Stores the response and its conversation, unless the request said `store: false`. A failure
/// is logged: the answer was served (and metered), and goes out all the same.
async fn keep(state: &AppState, asked: Asked, response: &Value) {
    if !asked.store {
        return;
    }
    let mut conversation = asked.conversation;
    conversation
        .push(assistant_message(response["output"].as_array().map(Vec::as_slice).unwrap_or_default()));
    if let Err(error) = state.responses.put(&asked.tenant, response, &conversation).await {
        tracing::error!(%error, id = %asked.echo.id, "cannot store the response; it cannot be fetched or continued");
    }
}

fn message_id(response_id: &str) -> String {
    format!("msg_{}", response_id.trim_start_matches("resp_"))
}

fn not_found(id: &str) -> ApiError {
    ApiError::NotFound(format!("no response with id {id:?}"))
}

fn store_failed(error: &sqlx::Error) -> ApiError {
    tracing::warn!(%error, "the stored responses cannot be read");
    ApiError::Internal("the stored responses cannot be read".into())
}
