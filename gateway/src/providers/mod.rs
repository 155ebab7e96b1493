//! Provider adapters: an enum of small adapters, one per wire protocol.
//!
//! Every adapter takes a request in OpenAI Chat Completions form (the gateway's canonical form)
//! and answers in the same form, a complete response or a stream of chunks, so routing, usage
//! and cost accounting never depend on the provider.

mod anthropic;
mod body;
mod chunk;
mod client;
mod completion;
mod gemini;
mod mock;
mod mock_embeddings;
mod openai;
mod relayed;
mod sse;
mod wire;

pub use chunk::Chunk;
pub use completion::Completion;
pub(crate) use mock::text_len;
pub use relayed::Relayed;
pub use wire::{WireFormat, encode};

use std::collections::HashMap;
use std::fmt;
use std::pin::Pin;
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

use bytes::Bytes;
use futures::Stream;
use http::header::{AUTHORIZATION, RETRY_AFTER};
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use switchboard_crds::config::BackendConfig;
use switchboard_crds::resources::{ProviderKind, ResponseLimits};

use self::client::{Endpoint, HttpClient, HttpError, Sent};
use crate::chat_request::ChatRequest;
use crate::error::ApiError;
use crate::payload::Payload;
use crate::redact::Redactor;

/// A stream of `chat.completion.chunk` objects.
pub type ChunkStream = Pin<Box<dyn Stream<Item = Result<Chunk, UpstreamError>> + Send>>;

/// What a provider answered.
pub enum Reply {
    Complete(Completion),
    Stream(ChunkStream),
}

/// One call to a provider.
#[derive(Debug)]
pub struct Call<'a> {
    /// The request as admitted (the client's model name still in it).
    pub request: Payload<'a>,
    /// The upstream's name for the model.
    pub model: &'a str,
    /// The request in the provider's wire format ([`wire::encode`]); empty for the mock.
    pub body: Bytes,
    pub stream: bool,
    pub timeout: Duration,
    /// How much the upstream may send (the route's `responseLimits`).
    pub limits: ResponseLimits,
    /// The trace context headers (`traceparent`, `tracestate`) for the upstream.
    pub trace: &'a [(HeaderName, HeaderValue)],
}

/// A failed upstream attempt.
#[derive(Debug, thiserror::Error)]
pub enum UpstreamError {
    #[error("HTTP {status}: {message}")]
    Status { status: u16, message: String, retry_after: Option<u64> },
    #[error("timed out after {0} ms")]
    Timeout(u64),
    #[error("cannot connect: {0}")]
    Connect(String),
    #[error("invalid response: {0}")]
    Protocol(String),
    #[error("the upstream's {what} exceeds the route's limit of {limit} bytes")]
    TooLarge { what: &'static str, limit: usize },
    /// Not the upstream's doing: the gateway is stopping and ends the stream (see [`crate::drain`]).
    #[error("the gateway is stopping")]
    Stopping,
    /// Not the upstream's doing either: a policy's guardrail withholds the rest of the reply.
    #[error("{0}")]
    Withheld(String),
    /// Nor this: the request cannot be said in the backend's wire format (the gateway's own
    /// translator refused it before anything was sent).
    #[error("{0}")]
    Untranslatable(String),
}

impl UpstreamError {
    /// Worth trying again, on this backend or the next.
    pub fn retryable(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout(_) | Self::Connect(_) => true,
            Self::Protocol(_)
            | Self::TooLarge { .. }
            | Self::Stopping
            | Self::Withheld(_)
            | Self::Untranslatable(_) => false,
        }
    }

    /// The backend itself failed (as opposed to rejecting this request): counts toward its
    /// circuit breaker.
    pub fn is_backend_fault(&self) -> bool {
        match self {
            Self::Status { status, .. } => *status == 429 || *status >= 500,
            Self::Timeout(_) | Self::Connect(_) | Self::Protocol(_) | Self::TooLarge { .. } => true,
            Self::Stopping | Self::Withheld(_) | Self::Untranslatable(_) => false,
        }
    }

    /// A bounded label for metrics and the ledger's error code.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Status { status: 429, .. } => "rate_limited",
            Self::Status { status, .. } if *status >= 500 => "server_error",
            Self::Status { .. } => "rejected",
            Self::Timeout(_) => "timeout",
            Self::Connect(_) => "connect",
            Self::Protocol(_) => "protocol",
            Self::TooLarge { .. } => "too_large",
            Self::Stopping => "gateway_stopping",
            Self::Withheld(_) => "policy_denied",
            Self::Untranslatable(_) => "unsupported_parameter",
        }
    }

    pub fn into_api_error(self) -> ApiError {
        match self {
            Self::Status { status: 429, message, retry_after } => {
                ApiError::UpstreamRateLimited { message, retry_after }
            }
            Self::Status { status: 529, message, .. } => ApiError::UpstreamOverloaded(message),
            Self::Status { status, message, .. } if (400..500).contains(&status) => {
                ApiError::UpstreamRejected {
                    status: axum::http::StatusCode::from_u16(status)
                        .unwrap_or(axum::http::StatusCode::BAD_GATEWAY),
                    message,
                }
            }
            Self::Status { status, message, .. } => {
                ApiError::UpstreamFailed(format!("HTTP {status}: {message}"))
            }
            Self::Timeout(ms) => ApiError::UpstreamTimeout(ms),
            Self::Connect(message) => ApiError::UpstreamUnavailable(message),
            Self::Protocol(message) => ApiError::UpstreamFailed(message),
            too_large @ Self::TooLarge { .. } => ApiError::UpstreamFailed(too_large.to_string()),
            Self::Stopping => ApiError::Stopping,
            Self::Withheld(reason) => ApiError::PolicyDenied(reason),
            Self::Untranslatable(reason) => ApiError::BadRequest(reason, Some("unsupported_parameter")),
        }
    }

    /// The error with its upstream text made fit to show: the config's secrets and anything
    /// shaped like a credential removed, then cut to length (see [`Redactor::message`]).
    pub fn redacted(self, redactor: &Redactor) -> UpstreamError {
        match self {
            Self::Status { status, message, retry_after } => {
                Self::Status { status, message: redactor.message(&message), retry_after }
            }
            Self::Connect(message) => Self::Connect(redactor.message(&message)),
            Self::Protocol(message) => Self::Protocol(redactor.message(&message)),
            ours @ (Self::Timeout(_)
            | Self::TooLarge { .. }
            | Self::Stopping
            | Self::Withheld(_)
            | Self::Untranslatable(_)) => ours,
        }
    }

    /// Maps a failure of the HTTP client (whose messages never include a URL's credentials or
    /// a header).
    fn from_http(error: HttpError, timeout: Duration) -> UpstreamError {
        match error {
            HttpError::Timeout => {
                UpstreamError::Timeout(u64::try_from(timeout.as_millis()).unwrap_or(u64::MAX))
            }
            HttpError::Connect(message) => UpstreamError::Connect(message),
            HttpError::Protocol(message) => UpstreamError::Protocol(message),
        }
    }
}

/// The HTTP client for backends with this connect timeout, one per timeout for the whole process.
/// A client holds a connection pool; a config with 500 routes built 500 of them, and rebuilt them
/// with every changed route. Pools are keyed by upstream, so sharing a client changes no
/// backend's connections.
fn shared_client(connect_timeout: Duration) -> Result<Arc<HttpClient>, String> {
    static CLIENTS: LazyLock<Mutex<HashMap<Duration, Arc<HttpClient>>>> = LazyLock::new(Mutex::default);
    let mut clients = CLIENTS.lock().unwrap_or_else(PoisonError::into_inner);
    if let Some(client) = clients.get(&connect_timeout) {
        return Ok(client.clone());
    }
    let client = Arc::new(HttpClient::new(connect_timeout)?);
    clients.insert(connect_timeout, client.clone());
    Ok(client)
}

/// An upstream's URL and the headers every call to it carries, made once per config.
pub(crate) struct Upstream {
    client: Arc<HttpClient>,
    endpoint: Endpoint,
    /// The provider API key in use, to tell whether a reload changed it.
    api_key: Option<String>,
}

impl Upstream {
    fn new(
        backend: &BackendConfig,
        path: &str,
        api_key: Option<String>,
        headers: HeaderMap,
    ) -> Result<Upstream, String> {
        let client = shared_client(Duration::from_millis(backend.connect_timeout_ms))?;
        let base = backend.base_url.as_deref().unwrap_or_default();
        let endpoint = client
            .endpoint(&format!("{base}{path}"), headers)
            .map_err(|e| format!("invalid baseUrl: {e}"))?;
        Ok(Upstream { client, endpoint, api_key })
    }

    /// POSTs the call's body; a non-success status becomes [`UpstreamError::Status`] with the
    /// provider's own message (from at most the route's error body limit) and `retry-after`.
    async fn post(&self, call: &Call<'_>) -> Result<Sent, UpstreamError> {
        self.post_body(call.body.clone(), call.timeout, call.limits, call.trace).await
    }

    async fn post_body(
        &self,
        body: Bytes,
        timeout: Duration,
        limits: ResponseLimits,
        trace: &[(HeaderName, HeaderValue)],
    ) -> Result<Sent, UpstreamError> {
        let sent = self
            .client
            .post(&self.endpoint, body, timeout, trace)
            .await
            .map_err(|e| UpstreamError::from_http(e, timeout))?;
        if sent.status.is_success() {
            return Ok(sent);
        }
        let retry_after = retry_after(&sent.headers);
        let (_, max_error, _, _) = limits.bytes();
        let body = body::read_prefix(sent.body, max_error).await;
        let message = error_message(&String::from_utf8_lossy(&body));
        Err(UpstreamError::Status { status: sent.status.as_u16(), message, retry_after })
    }
}

/// A header value that holds a secret: never printed by `Debug`, kept out of HTTP/2's index.
fn secret_header(value: &str) -> Result<HeaderValue, String> {
    let mut value =
        HeaderValue::from_str(value).map_err(|_| "the API key is not a valid header value".to_owned())?;
    value.set_sensitive(true);
    Ok(value)
}

/// A provider client for one backend.
pub enum Provider {
    Mock,
    OpenAi(openai::OpenAi),
    Anthropic(anthropic::Anthropic),
    Gemini(gemini::Gemini),
}

impl fmt::Debug for Provider {
    /// Never prints the API key.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mock => "Provider::Mock",
            Self::OpenAi(_) => "Provider::OpenAi",
            Self::Anthropic(_) => "Provider::Anthropic",
            Self::Gemini(_) => "Provider::Gemini",
        })
    }
}

impl Provider {
    pub fn new(backend: &BackendConfig, api_key: Option<String>) -> Result<Provider, String> {
        Ok(match backend.provider {
            ProviderKind::Mock => Provider::Mock,
            ProviderKind::Openai => {
                let mut headers = HeaderMap::new();
                if let Some(key) = &api_key {
                    headers.insert(AUTHORIZATION, secret_header(&format!("Bearer {key}"))?);
                }
                Provider::OpenAi(openai::OpenAi {
                    chat: Upstream::new(backend, "/chat/completions", api_key.clone(), headers.clone())?,
                    embeddings: Box::new(Upstream::new(
                        backend,
                        "/embeddings",
                        api_key.clone(),
                        headers.clone(),
                    )?),
                    completions: Box::new(Upstream::new(backend, "/completions", api_key, headers)?),
                })
            }
            ProviderKind::Anthropic => {
                let mut headers = HeaderMap::new();
                headers.insert("anthropic-version", HeaderValue::from_static(anthropic::ANTHROPIC_VERSION));
                if let Some(key) = &api_key {
                    headers.insert("x-api-key", secret_header(key)?);
                }
                Provider::Anthropic(anthropic::Anthropic {
                    messages: Upstream::new(backend, "/messages", api_key.clone(), headers.clone())?,
                    count_tokens: Box::new(Upstream::new(
                        backend,
                        "/messages/count_tokens",
                        api_key,
                        headers,
                    )?),
                })
            }
            ProviderKind::Gemini => Provider::Gemini(gemini::Gemini::new(backend, api_key)?),
        })
    }

    /// The provider API key in use, to tell whether a reload changed it.
    pub fn api_key(&self) -> Option<&str> {
        match self {
            Self::Mock => None,
            Self::OpenAi(provider) => provider.chat.api_key.as_deref(),
            Self::Anthropic(provider) => provider.messages.api_key.as_deref(),
            Self::Gemini(provider) => provider.base.api_key.as_deref(),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            Self::Mock => "mock",
            Self::OpenAi(_) => "openai",
            Self::Anthropic(_) => "anthropic",
            Self::Gemini(_) => "gemini",
        }
    }

    /// The upstream's `host:port`; `None` for the mock.
    pub fn address(&self) -> Option<&str> {
        match self {
            Self::Mock => None,
            Self::OpenAi(provider) => Some(provider.chat.endpoint.authority()),
            Self::Anthropic(provider) => Some(provider.messages.endpoint.authority()),
            Self::Gemini(provider) => Some(provider.base.endpoint.authority()),
        }
    }

    /// Whether the provider's API has `request`'s operation (Anthropic's and Gemini's have
    /// neither legacy completions nor embeddings here).
    pub fn serves(&self, request: Payload<'_>) -> bool {
        matches!((self, request), (Self::Mock | Self::OpenAi(_), _) | (_, Payload::Chat(_)))
    }

    /// The wire format the provider's upstream takes `request` in; `None` for the mock, which
    /// reads the request itself.
    pub fn wire_format(&self, request: Payload<'_>) -> Option<WireFormat> {
        match (self, request) {
            (Self::Mock, _) => None,
            (Self::OpenAi(_), Payload::Chat(_)) => Some(WireFormat::OpenAiChat),
            (Self::OpenAi(_), Payload::Embeddings(_)) => Some(WireFormat::OpenAiEmbeddings),
            (Self::OpenAi(_), Payload::Completions(_)) => Some(WireFormat::OpenAiCompletions),
            (Self::Anthropic(_), _) => Some(WireFormat::AnthropicMessages),
            (Self::Gemini(_), _) => Some(WireFormat::GeminiGenerateContent),
        }
    }

    /// The input tokens of a request as this backend counts them: Anthropic's own count
    /// (`/v1/messages/count_tokens`), Gemini's (`countTokens`), the mock's rule; `None` where the
    /// API has no count.
    /// Errors carry the upstream's text as it came, for the caller to redact.
    pub async fn count_tokens(&self, count: TokenCount<'_>) -> Option<Result<u64, UpstreamError>> {
        match self {
            Self::Mock => Some(Ok(mock::prompt_tokens(&count.request.messages))),
            Self::OpenAi(_) => None,
            Self::Gemini(provider) => Some(provider.count_tokens(count).await),
            Self::Anthropic(provider) => Some(provider.count_tokens(count).await),
        }
    }

    /// Sends one call. Errors carry the upstream's text as it came: the exchange redacts them
    /// with every secret of the config, not only this backend's key.
    pub async fn send(&self, call: Call<'_>) -> Result<Reply, UpstreamError> {
        match self {
            Self::Mock => mock::reply(&call),
            Self::OpenAi(provider) => provider.send(call).await,
            Self::Anthropic(provider) => provider.send(call).await,
            Self::Gemini(provider) => provider.send(call).await,
        }
    }
}

/// Reads a complete response body within the route's limit.
async fn body_bytes(response: Sent, call: &Call<'_>) -> Result<bytes::Bytes, UpstreamError> {
    let (max_body, ..) = call.limits.bytes();
    body::read_limited(response, max_body, call.timeout).await
}

/// The most an upstream's token count may hold: a number and little else.
const MAX_COUNT_BYTES: usize = 4096;

/// A request's input tokens, as [`Provider::count_tokens`] counts them.
pub struct TokenCount<'a> {
    /// The request in Anthropic's form, for the upstream's own count (the upstream's model in it).
    pub anthropic_body: Bytes,
    /// The same request in the canonical form, for the mock's and Gemini's counts.
    pub request: &'a ChatRequest,
    /// The upstream's name for the model.
    pub model: &'a str,
    pub timeout: Duration,
    pub limits: ResponseLimits,
}

/// The message of a provider's JSON error body, or its raw text (cut to length only once it
/// has been redacted).
fn error_message(body: &str) -> String {
    let parsed: Option<Value> = serde_json::from_str(body).ok();
    parsed
        .as_ref()
        .and_then(|v| v.pointer("/error/message").or_else(|| v.get("message")))
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| body.trim().to_owned())
}

fn retry_after(headers: &HeaderMap) -> Option<u64> {
    headers.get(RETRY_AFTER)?.to_str().ok()?.trim().parse().ok()
}

#[cfg(test)]
mod tests {
    use super::UpstreamError;
    use crate::redact::Redactor;

    #[test]
    fn echoed_provider_keys_are_redacted() {
        let error = UpstreamError::Status {
            status: 401,
            message: "Incorrect API key provided: live-0123456789".into(),
            retry_after: None,
        };
        let text = error.redacted(&Redactor::new([&b"live-0123456789"[..]])).to_string();
        assert_eq!(text, "HTTP 401: Incorrect API key provided: [REDACTED]");
    }
}
