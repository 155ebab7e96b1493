//! HTTP handlers, thin: parsing and wire shapes here, the request's life in [`crate::pipeline`].

pub mod admin;
pub mod audit;
pub mod budget_changes;
pub mod budgets;
pub mod chat;
pub mod count_tokens;
pub mod direct;
pub mod health;
pub mod members;
pub mod messages;
pub mod models;
pub mod params;
pub mod personas;
pub mod requests;
pub mod responses;
pub mod routes;
pub mod stats;
pub mod subjects;
pub mod tenant_changes;
pub mod tenant_limits;
pub mod tenants;

use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderName, HeaderValue};
use axum::response::{IntoResponse, Response};

use crate::exchange::Exchange;
use crate::providers::Completion;

/// Adds the request id headers both SDKs read (`x-request-id` for OpenAI, `request-id` for Anthropic)
/// and, when the request is traced, `traceresponse`.
fn with_ids(mut response: Response, exchange: &Exchange) -> Response {
    if let Ok(value) = HeaderValue::from_str(&exchange.id) {
        response.headers_mut().insert("x-request-id", value.clone());
        response.headers_mut().insert("request-id", value);
    }
    if let Some((name, value)) = exchange.trace_header() {
        response.headers_mut().insert(name, value);
    }
    response
}

/// Adds headers computed while serving (rate limits, cache status).
fn with_headers(mut response: Response, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    response.headers_mut().extend(headers);
    response
}

/// A whole reply, as the upstream sent it, with the headers computed while serving.
fn whole_reply(body: &Completion, headers: Vec<(HeaderName, HeaderValue)>) -> Response {
    let json = ([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body.json().clone());
    with_headers(json.into_response(), headers)
}
