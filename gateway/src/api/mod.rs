//! HTTP handlers, thin: parsing and wire shapes here, the request's life in [`crate::pipeline`].

pub mod admin;
pub mod chat;
pub mod health;
pub mod messages;
pub mod models;
pub mod requests;
pub mod subjects;

use axum::http::{HeaderName, HeaderValue};
use axum::response::Response;

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
