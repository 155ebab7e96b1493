//! A deterministic fake of the OpenAI (Chat Completions, legacy completions, embeddings),
//! Anthropic Messages and Google Gemini APIs.
//!
//! It plays the upstream model server in three places: the gateway's integration tests (in-process,
//! through [`FakeUpstream::spawn`]), the Python SDK tests and `make run` demos (the `fake-upstream`
//! binary on `127.0.0.1:18080`), and the direct-upstream baseline of `make bench` (so it does no
//! per-request logging and takes no lock when recording is off).
//!
//! # Endpoints
//! - `POST /v1/chat/completions`: OpenAI, streaming when `"stream": true`; with
//!   `stream_options.include_usage` every chunk has `"usage": null` and a last chunk with
//!   `"choices": []` carries the usage, before `data: [DONE]`.
//! - `POST /v1/messages`: Anthropic; `max_tokens` is required, `system` may be a string or an array
//!   of text blocks; streams have an `event:` line on every frame.
//! - `POST /v1/messages/count_tokens`: Anthropic; the input tokens `/v1/messages` would bill.
//! - `GET /v1/models`: OpenAI's list shape (Anthropic's when `anthropic-version` is sent).
//! - `POST /v1/embeddings`: OpenAI, floats or base64, `dimensions` honoured (see `embeddings`).
//! - `POST /v1/completions`: OpenAI's legacy completions, streaming too (see `completions`).
//! - `POST /v1beta/models/{model}:generateContent` and `:streamGenerateContent?alt=sse`: Google
//!   Gemini, forced function calls included (see `gemini`).
//! - `GET /healthz`; `GET /_fake/requests` (recorded requests as JSON) and `DELETE /_fake/requests`
//!   (forget them and reset the count); `PUT /_fake/behavior` (body: a behaviour name, applied to
//!   every request without the header) and `DELETE /_fake/behavior`. These control routes are
//!   neither recorded nor counted.
//!
//! Errors use each API's real shape: OpenAI `{"error":{"message","type","param","code"}}`,
//! Anthropic `{"type":"error","error":{"type","message"},"request_id"}`.
//!
//! # Deterministic content and usage
//! Tests elsewhere rely on these formulas; change them only together with those tests.
//! - `text(content)`: a string as is; an array of parts: the `text` of each part joined with one
//!   space (parts without text, e.g. images or tool calls, contribute nothing).
//! - `tokens(s)` = number of whitespace-separated words of `s`.
//! - Reply `TEXT` = `"fake-upstream reply to: "` + `text` of the last `user` message (`""` if none).
//!   With `echo-request`, `TEXT` is the request body as compact JSON instead (whitespace outside
//!   strings removed from the received bytes: key order and escapes as sent).
//! - `P` (prompt tokens, OpenAI meaning, includes cached) = sum over messages of
//!   `tokens(text(content)) + 3`, plus `tokens(text(system)) + 3` when an Anthropic `system` is
//!   present (so an OpenAI system message and an Anthropic `system` count the same).
//! - `C` (completion/output tokens) = `tokens(TEXT)`; a stream sends exactly `C` content pieces
//!   (each word with the whitespace before it) whose concatenation is `TEXT`.
//! - `K` (cached) = header `x-fake-cached-tokens` (default 0), clamped to `P`.
//! - `W` (cache writes, Anthropic only) = header `x-fake-cache-write-tokens` (default 0), clamped
//!   to `P - K`.
//! - OpenAI usage: `prompt_tokens = P`, `completion_tokens = C`, `total_tokens = P + C`,
//!   `prompt_tokens_details.cached_tokens = K`.
//! - Anthropic usage: `input_tokens = P - K - W`, `output_tokens = C`,
//!   `cache_read_input_tokens = K`, `cache_creation_input_tokens = W`; in a stream, message_start
//!   has the input fields with `output_tokens: 1` and message_delta has `output_tokens: C`.
//!
//! # Scripted behaviours
//! Chosen by the request's `model`, by the instance's forced behaviour (`PUT /_fake/behavior`,
//! [`FakeUpstream::set_behavior`]), or by the `x-fake-behavior` header with the same syntax (the
//! header wins, then the forced behaviour; a header naming no behaviour, e.g. `normal`, forces
//! normal answers):
//! - `error-<status>` (400-599): that status with the API's error body; 429 adds `retry-after: 1`.
//! - `slow-<ms>`: wait, then answer normally (streams: before the first byte).
//! - `hang`: never answer, until the client disconnects (or the fake stops: then a 503).
//! - `stream-cut`: stream the first two content chunks (after the role chunk, or after
//!   message_start/content_block_start/ping), then drop the connection: no finish chunk, no usage,
//!   no `[DONE]`/message_stop, and no terminating HTTP chunk.
//! - `no-usage`: no usage anywhere (`include_usage` is ignored, no `"usage": null` either).
//! - `echo-request`: see `TEXT` above.
//! - Faults of broken or hostile upstreams (`leak-key-mid`, `usage-max`, `big-body-<MiB>`, ...):
//!   the table in `src/faults.rs`.
//!
//! Scripted errors, hangs and delays apply before validation, so their requests need not be valid.

mod anthropic;
mod behavior;
mod completions;
mod embeddings;
mod errors;
mod faults;
mod gemini;
mod openai;
mod prompt;
mod recording;
mod server;
mod tool_use;

use std::{io, net::SocketAddr, sync::Arc};

use axum::serve::ListenerExt;
use tokio::{sync::watch, task::JoinHandle};

pub use crate::{behavior::BEHAVIOR_HEADER, recording::RecordedRequest};

/// Request header setting `K`, the cached prompt tokens to report.
pub const CACHED_TOKENS_HEADER: &str = prompt::CACHED_TOKENS_HEADER;
/// Request header setting `W`, the cache-write tokens to report (Anthropic only).
pub const CACHE_WRITE_TOKENS_HEADER: &str = prompt::CACHE_WRITE_TOKENS_HEADER;
/// Prefix of every normal reply text.
pub const REPLY_PREFIX: &str = prompt::REPLY_PREFIX;

/// How the fake runs.
#[derive(Debug, Clone)]
pub struct Options {
    /// Record every API request (see [`FakeUpstream::requests`]). On by default, since tests are
    /// the main users; benchmarks turn it off to keep the hot path lock-free.
    pub record: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { record: true }
    }
}

impl Options {
    /// The defaults: recording on.
    pub fn new() -> Options {
        Options::default()
    }

    /// Recording off, for benchmarks.
    pub fn without_recording() -> Options {
        Options { record: false }
    }
}

/// A running fake server. Dropping it stops the server (in the background; use
/// [`FakeUpstream::shutdown`] to wait for it).
pub struct FakeUpstream {
    addr: SocketAddr,
    state: Arc<server::AppState>,
    stop: watch::Sender<bool>,
    task: Option<JoinHandle<io::Result<()>>>,
}

impl FakeUpstream {
    /// Binds `addr` (use `127.0.0.1:0` in tests) and serves in a background tokio task.
    pub async fn spawn(addr: SocketAddr, options: Options) -> io::Result<FakeUpstream> {
        let listener = tokio::net::TcpListener::bind(addr).await?;
        let addr = listener.local_addr()?;
        let (stop, stopped) = watch::channel(false);
        let state = Arc::new(server::AppState::new(options.record, stopped.clone()));
        let app = server::router(state.clone());
        let mut stopped = stopped;
        // Without TCP_NODELAY, SSE frames written one by one wait on the client's delayed ACK
        // (~40 ms per stream): a real upstream flushes each token at once.
        let listener = listener.tap_io(|tcp| {
            let _ = tcp.set_nodelay(true);
        });
        let task = tokio::spawn(async move {
            axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|stop| *stop).await;
                })
                .await
        });
        Ok(FakeUpstream { addr, state, stop, task: Some(task) })
    }

    /// The bound address (with the real port when bound to port 0).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The OpenAI-style base URL, `http://ADDR/v1`; Anthropic clients use the same host.
    pub fn base_url(&self) -> String {
        format!("http://{}/v1", self.addr)
    }

    /// The recorded requests in arrival order (empty when recording is off).
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.recorder.as_ref().map(|r| r.snapshot()).unwrap_or_default()
    }

    /// How many API requests arrived (counted even when recording is off).
    pub fn request_count(&self) -> usize {
        self.state.request_count()
    }

    /// Applies `behavior` (same syntax as the model name) to every request without the
    /// `x-fake-behavior` header; `None` goes back to choosing by model.
    pub fn set_behavior(&self, behavior: Option<&str>) {
        self.state.forced.store(behavior.map(|b| Arc::new(b.to_owned())));
    }

    /// Requests hanging right now (`hang`): zero once every client let go.
    pub fn hanging(&self) -> usize {
        self.state.hanging.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Stops accepting, ends hanging requests and waits for open connections to finish.
    pub async fn shutdown(mut self) -> io::Result<()> {
        let _ = self.stop.send(true);
        match self.task.take() {
            Some(task) => task.await.map_err(io::Error::other)?,
            None => Ok(()),
        }
    }
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        let _ = self.stop.send(true);
    }
}
