//! Errors on `/mcp` in JSON-RPC's shape, whoever raises them. rmcp answers a body that is not
//! JSON, a wrong content type or a wrong `Accept` with plain text, which MCP clients cannot show;
//! here a body that does not parse gets JSON-RPC's parse error (-32700) before rmcp sees it, and
//! any other plain-text error from the transport becomes an invalid-request error (-32600) with its
//! text as the message and its HTTP status kept.

use axum::body::Body;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

/// JSON-RPC's error codes.
const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;

/// The longest transport error text kept.
const MAX_TEXT: usize = 64 * 1024;

/// A JSON-RPC error response without an id (the request was refused before its id was read).
pub fn json_rpc_error(code: i64, message: &str) -> String {
    json!({"jsonrpc": "2.0", "id": null, "error": {"code": code, "message": message}}).to_string()
}

/// Refused before the transport (authentication): JSON-RPC's invalid-request error.
pub fn refused(message: &str) -> String {
    json_rpc_error(INVALID_REQUEST, message)
}

pub async fn json_rpc_errors(request: Request, next: Next) -> Response {
    let request = if request.method() == http::Method::POST {
        let (parts, body) = request.into_parts();
        // The body is already in memory (read within its deadline and size limit by the router).
        let Ok(bytes) = axum::body::to_bytes(body, usize::MAX).await else {
            return error(http::StatusCode::BAD_REQUEST, PARSE_ERROR, "cannot read the request body".into());
        };
        if let Err(problem) = serde_json::from_slice::<serde::de::IgnoredAny>(&bytes) {
            return error(http::StatusCode::BAD_REQUEST, PARSE_ERROR, format!("Parse error: {problem}"));
        }
        Request::from_parts(parts, Body::from(bytes))
    } else {
        request
    };
    let response = next.run(request).await;
    let is_json = response
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/json") || v.starts_with("text/event-stream"));
    if !(response.status().is_client_error() || response.status().is_server_error()) || is_json {
        return response;
    }
    let (parts, body) = response.into_parts();
    let text = axum::body::to_bytes(body, MAX_TEXT).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_owned();
    let message = if message.is_empty() { parts.status.to_string() } else { message };
    let mut out = error(parts.status, INVALID_REQUEST, message);
    // Headers such as `WWW-Authenticate` or `Allow` stay.
    for (name, value) in &parts.headers {
        if name != header::CONTENT_TYPE && name != header::CONTENT_LENGTH {
            out.headers_mut().insert(name.clone(), value.clone());
        }
    }
    out
}

fn error(status: http::StatusCode, code: i64, message: String) -> Response {
    let mut response = (status, json_rpc_error(code, &message)).into_response();
    response.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
