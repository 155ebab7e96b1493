//! Request recording, so tests can assert on exactly what the gateway sent upstream.
//!
//! In-process tests read records through [`crate::FakeUpstream::requests`]; out-of-process tests
//! (Python) use `GET /_fake/requests` and reset with `DELETE /_fake/requests`.

use std::sync::{Arc, Mutex, PoisonError, atomic::Ordering};

use axum::{
    Json,
    body::{Body, to_bytes},
    extract::{Request, State},
    http::StatusCode,
    middleware::Next,
    response::{IntoResponse, Response},
};
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::server::{AppState, BODY_LIMIT};

/// One request as the fake received it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedRequest {
    /// HTTP method, e.g. `POST`.
    pub method: String,
    /// Path without the query string, e.g. `/v1/chat/completions`.
    pub path: String,
    /// Headers in received order, names lower-cased; repeated headers appear once per value.
    /// Serialised as `[name, value]` pairs.
    pub headers: Vec<(String, String)>,
    /// The body parsed as JSON, or `Null` when it is empty or not JSON.
    pub body: Value,
}

impl RecordedRequest {
    /// The first value of header `name` (give it lower-cased).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }
}

/// The recorded requests, in arrival order. A plain mutex is enough: it exists only when recording
/// is on, and then correctness matters more than throughput.
#[derive(Default)]
pub(crate) struct Recorder {
    requests: Mutex<Vec<RecordedRequest>>,
}

impl Recorder {
    pub(crate) fn snapshot(&self) -> Vec<RecordedRequest> {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    fn push(&self, request: RecordedRequest) {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).push(request);
    }

    fn clear(&self) {
        self.requests.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

/// Middleware on the API routes: counts every request and, when recording, buffers the body,
/// records it before the handler runs (so arrival order is kept even for `hang`) and hands the
/// same bytes on.
pub(crate) async fn record(State(state): State<Arc<AppState>>, request: Request, next: Next) -> Response {
    state.count.fetch_add(1, Ordering::Relaxed);
    let Some(recorder) = &state.recorder else {
        return next.run(request).await;
    };
    let (parts, body) = request.into_parts();
    let bytes = match to_bytes(body, BODY_LIMIT).await {
        Ok(bytes) => bytes,
        Err(_) => {
            return (StatusCode::PAYLOAD_TOO_LARGE, "request body too large or unreadable").into_response();
        }
    };
    recorder.push(RecordedRequest {
        method: parts.method.to_string(),
        path: parts.uri.path().to_owned(),
        headers: parts
            .headers
            .iter()
            .map(|(name, value)| {
                (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
            })
            .collect(),
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    });
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

/// `GET /_fake/requests`: the recorded requests as a JSON array (empty when recording is off).
pub(crate) async fn list(State(state): State<Arc<AppState>>) -> Json<Vec<RecordedRequest>> {
    Json(state.recorder.as_ref().map(Recorder::snapshot).unwrap_or_default())
}

/// `DELETE /_fake/requests`: forgets the recorded requests and resets the request count, so a
/// test can start from a clean fake without restarting it.
pub(crate) async fn clear(State(state): State<Arc<AppState>>) -> StatusCode {
    if let Some(recorder) = &state.recorder {
        recorder.clear();
    }
    state.count.store(0, Ordering::Relaxed);
    StatusCode::NO_CONTENT
}
