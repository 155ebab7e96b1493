//! The router and the plumbing both APIs share: state, behaviours applied before a response is
//! built, and SSE bodies.
//!
//! The hot path takes no lock when recording is off: the only shared write per request is one
//! relaxed atomic increment, so `make bench` measures the gateway and not this fake.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use arc_swap::ArcSwapOption;
use axum::extract::State;
use axum::{
    Router,
    body::{Body, Bytes},
    extract::DefaultBodyLimit,
    http::{HeaderMap, HeaderValue, StatusCode, header},
    middleware,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use futures::StreamExt;
use serde_json::Value;
use tokio::sync::watch;

use crate::{
    anthropic,
    behavior::Behavior,
    completions, embeddings,
    errors::{self, Api},
    gemini, openai,
    recording::{self, Recorder},
};

/// Largest request body accepted: far above any real API's limit, so size caps are the gateway's.
pub(crate) const BODY_LIMIT: usize = 64 * 1024 * 1024;
/// Pause before a `stream-cut` abort, so the chunks already written reach the client first.
const CUT_DELAY: Duration = Duration::from_millis(20);

/// State shared by every handler.
pub(crate) struct AppState {
    /// `None` when recording is off, so nothing is buffered or locked.
    pub recorder: Option<Recorder>,
    /// Requests received on the API routes, recorded or not.
    pub count: AtomicUsize,
    /// Flips to `true` when the server stops; wakes `hang` and `slow-` requests.
    pub shutdown: watch::Receiver<bool>,
    /// A behaviour applied to every request without the header (`PUT /_fake/behavior`), so one
    /// instance can play a failing backend beside a healthy one. Lock-free to read.
    pub forced: ArcSwapOption<String>,
    /// Requests hanging right now: shows whether clients let go of them.
    pub hanging: AtomicUsize,
}

impl AppState {
    pub(crate) fn new(record: bool, shutdown: watch::Receiver<bool>) -> AppState {
        AppState {
            recorder: record.then(Recorder::default),
            count: AtomicUsize::new(0),
            shutdown,
            forced: ArcSwapOption::empty(),
            hanging: AtomicUsize::new(0),
        }
    }

    pub(crate) fn request_count(&self) -> usize {
        self.count.load(Ordering::Relaxed)
    }

    /// Resolves once the server is stopping (or its handle is gone).
    async fn stopping(&self) {
        let mut shutdown = self.shutdown.clone();
        // An error means the sender is gone, which also means stop.
        let _ = shutdown.wait_for(|stop| *stop).await;
    }
}

/// Builds the whole router. Only the API routes (and unknown paths) go through the recording
/// middleware: the control routes `/healthz` and `/_fake/requests` are neither recorded nor counted.
pub(crate) fn router(state: Arc<AppState>) -> Router {
    let api = Router::new()
        .route("/v1/chat/completions", post(openai::chat_completions))
        .route("/v1/models", get(openai::models))
        .route("/v1/embeddings", post(embeddings::embeddings))
        .route("/v1/completions", post(completions::completions))
        .route("/v1beta/models/{*target}", post(gemini::generate))
        .route("/v1/messages", post(anthropic::messages))
        .route("/v1/messages/count_tokens", post(anthropic::count_tokens))
        .fallback(not_found)
        .layer(middleware::from_fn_with_state(state.clone(), recording::record));
    Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/_fake/requests", get(recording::list).delete(recording::clear))
        .route("/_fake/behavior", axum::routing::put(force_behavior).delete(clear_behavior))
        .merge(api)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(state)
}

/// `PUT /_fake/behavior` with a behaviour name as the body: applies it to every request.
async fn force_behavior(State(state): State<Arc<AppState>>, body: String) -> StatusCode {
    let name = body.trim();
    state.forced.store((!name.is_empty()).then(|| Arc::new(name.to_owned())));
    StatusCode::NO_CONTENT
}

/// `DELETE /_fake/behavior`: back to choosing by header or model.
async fn clear_behavior(State(state): State<Arc<AppState>>) -> StatusCode {
    state.forced.store(None);
    StatusCode::NO_CONTENT
}

/// Unknown paths answer 404 in the shape of the API the client seems to speak.
async fn not_found(headers: HeaderMap) -> Response {
    if headers.contains_key("anthropic-version") {
        errors::anthropic(StatusCode::NOT_FOUND, "Not found")
    } else {
        let message = "Invalid URL: this fake serves /v1/chat/completions, /v1/models and /v1/messages";
        errors::openai(StatusCode::NOT_FOUND, "invalid_request_error", message, None, None)
    }
}

/// A parsed request body with the behaviour it selects.
pub(crate) struct Parsed {
    pub body: Value,
    pub behavior: Behavior,
}

/// Parses the body and applies the behaviours that come before any validation: scripted errors,
/// hangs and delays. `Err` is the response to send instead of the normal one.
pub(crate) async fn preflight(
    state: &AppState,
    api: Api,
    headers: &HeaderMap,
    raw: &[u8],
) -> Result<Parsed, Response> {
    let body: Value = serde_json::from_slice(raw).map_err(|e| {
        let message = match api {
            Api::OpenAi => format!("We could not parse the JSON body of your request. ({e})"),
            Api::Anthropic => format!("There was an issue with the JSON body of your request: {e}"),
        };
        api.invalid_request(&message, None)
    })?;
    if !body.is_object() {
        return Err(api.invalid_request("The request body must be a JSON object.", None));
    }
    let forced = state.forced.load();
    let behavior = Behavior::select(
        headers,
        forced.as_deref().map(String::as_str),
        body.get("model").and_then(Value::as_str),
    );
    match behavior {
        Behavior::Error(status) => return Err(api.scripted(status)),
        Behavior::Fault(fault) => return Err(fault.respond(api, headers, &body)),
        Behavior::Hang => {
            state.hanging.fetch_add(1, Ordering::Relaxed);
            // Counted down however the wait ends, including the client going away.
            let _hanging = CountDown(&state.hanging);
            state.stopping().await;
            return Err(api.scripted(StatusCode::SERVICE_UNAVAILABLE));
        }
        Behavior::Slow(delay) => {
            tokio::select! {
                () = tokio::time::sleep(delay) => {}
                () = state.stopping() => return Err(api.scripted(StatusCode::SERVICE_UNAVAILABLE)),
            }
        }
        _ => {}
    }
    Ok(Parsed { body, behavior })
}

/// Decrements a counter when dropped.
struct CountDown<'a>(&'a AtomicUsize);

impl Drop for CountDown<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A JSON response with the API's request-id header.
pub(crate) fn json_response(api: Api, body: &Value) -> Response {
    let mut response = axum::Json(body).into_response();
    insert_request_id(api, &mut response);
    response
}

/// A `text/event-stream` response sending `frames` as separate body chunks (chunked encoding, like
/// the real APIs). With `cut`, the body ends with an I/O error after the frames, which makes the
/// server drop the connection without a terminating chunk: what a crashed upstream looks like.
pub(crate) fn sse_response(api: Api, frames: Vec<Bytes>, cut: bool) -> Response {
    let head = futures::stream::iter(frames.into_iter().map(Ok::<_, io::Error>));
    let body = if cut {
        let abort = futures::stream::once(async {
            tokio::time::sleep(CUT_DELAY).await;
            Err(io::Error::new(io::ErrorKind::ConnectionAborted, "fake-upstream stream-cut"))
        });
        Body::from_stream(head.chain(abort))
    } else {
        Body::from_stream(head)
    };
    let mut response = Response::new(body);
    let headers = response.headers_mut();
    headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/event-stream; charset=utf-8"));
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    insert_request_id(api, &mut response);
    response
}

fn insert_request_id(api: Api, response: &mut Response) {
    if let Ok(value) = HeaderValue::from_str(&new_id("req_")) {
        response.headers_mut().insert(api.request_id_header(), value);
    }
}

/// A fresh id with the API's prefix (`chatcmpl-`, `msg_`, `req_`); random so ids never repeat
/// across restarts of a demo whose ledger outlives the fake.
pub(crate) fn new_id(prefix: &str) -> String {
    format!("{prefix}{}", uuid::Uuid::new_v4().simple())
}

/// Seconds since the Unix epoch (0 if the clock is before it).
pub(crate) fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}
