//! The two APIs' error bodies, so clients and the gateway see the shapes the real services send.
//!
//! OpenAI: `{"error":{"message","type","param","code"}}` with an `x-request-id` header.
//! Anthropic: `{"type":"error","error":{"type","message"},"request_id"}` with a `request-id` header.

use axum::{
    Json,
    http::{HeaderName, HeaderValue, StatusCode, header},
    response::{IntoResponse, Response},
};
use serde_json::{Value, json};

use crate::server::new_id;

/// Which API a response must look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Api {
    OpenAi,
    Anthropic,
}

impl Api {
    /// A validation error (400) naming the offending parameter where the API does.
    pub(crate) fn invalid_request(self, message: &str, param: Option<&str>) -> Response {
        match self {
            Api::OpenAi => openai(StatusCode::BAD_REQUEST, "invalid_request_error", message, param, None),
            Api::Anthropic => anthropic(StatusCode::BAD_REQUEST, message),
        }
    }

    /// The error answered for the scripted `error-<status>` behaviour.
    pub(crate) fn scripted(self, status: StatusCode) -> Response {
        let message = format!("fake-upstream scripted error {}", status.as_u16());
        let mut response = match self {
            Api::OpenAi => {
                let (kind, code) = openai_kind(status);
                openai(status, kind, &message, None, code)
            }
            Api::Anthropic => anthropic(status, &message),
        };
        if status == StatusCode::TOO_MANY_REQUESTS {
            response.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        }
        response
    }

    /// The header carrying the request id in this API.
    pub(crate) fn request_id_header(self) -> HeaderName {
        match self {
            Api::OpenAi => HeaderName::from_static("x-request-id"),
            Api::Anthropic => HeaderName::from_static("request-id"),
        }
    }
}

/// An OpenAI error response.
pub(crate) fn openai(
    status: StatusCode,
    kind: &str,
    message: &str,
    param: Option<&str>,
    code: Option<&str>,
) -> Response {
    let body = json!({"error": {"message": message, "type": kind, "param": param, "code": code}});
    with_request_id(status, body, Api::OpenAi, new_id("req_"))
}

/// An Anthropic error response; the type follows the documented status table.
pub(crate) fn anthropic(status: StatusCode, message: &str) -> Response {
    let request_id = new_id("req_");
    let body = json!({
        "type": "error",
        "error": {"type": anthropic_kind(status), "message": message},
        "request_id": request_id,
    });
    with_request_id(status, body, Api::Anthropic, request_id)
}

fn with_request_id(status: StatusCode, body: Value, api: Api, request_id: String) -> Response {
    let mut response = (status, Json(body)).into_response();
    if let Ok(value) = HeaderValue::from_str(&request_id) {
        response.headers_mut().insert(api.request_id_header(), value);
    }
    response
}

/// OpenAI's `type` and `code` for a status, as its API returns them.
fn openai_kind(status: StatusCode) -> (&'static str, Option<&'static str>) {
    match status.as_u16() {
        401 => ("invalid_request_error", Some("invalid_api_key")),
        403 => ("invalid_request_error", Some("unsupported_country_region_territory")),
        404 => ("invalid_request_error", Some("model_not_found")),
        429 => ("requests", Some("rate_limit_exceeded")),
        400..=499 => ("invalid_request_error", None),
        _ => ("server_error", None),
    }
}

/// Anthropic's error `type` for a status (other 4xx are `invalid_request_error`).
fn anthropic_kind(status: StatusCode) -> &'static str {
    match status.as_u16() {
        401 => "authentication_error",
        402 => "billing_error",
        403 => "permission_error",
        404 => "not_found_error",
        413 => "request_too_large",
        429 => "rate_limit_error",
        504 => "timeout_error",
        529 => "overloaded_error",
        400..=499 => "invalid_request_error",
        _ => "api_error",
    }
}
