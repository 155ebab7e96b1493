//! ProviderRoute: which upstream providers serve a set of model names.

use kube::{CustomResource, KubeSchema};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::common::{Condition, Policy, SecretKeyRef};

/// Serves one or more model names from weighted, prioritised upstream backends.
#[derive(CustomResource, Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[kube(
    group = "switchboard.dev",
    version = "v1alpha1",
    kind = "ProviderRoute",
    namespaced,
    status = "ProviderRouteStatus",
    shortname = "pr",
    category = "switchboard",
    derive = "PartialEq",
    doc = "Upstream LLM providers serving a set of model names, with weights, fallbacks, retries and prices.",
    printcolumn(name = "Models", type_ = "string", json_path = ".spec.models[*].name"),
    printcolumn(name = "Backends", type_ = "string", json_path = ".spec.backends[*].name"),
    printcolumn(name = "Healthy", type_ = "integer", json_path = ".status.healthyBackends"),
    printcolumn(
        name = "Ready",
        type_ = "string",
        json_path = ".status.conditions[?(@.type==\"Ready\")].status"
    ),
    printcolumn(name = "Age", type_ = "date", json_path = ".metadata.creationTimestamp")
)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct ProviderRouteSpec {
    /// Model names clients may request, with their upstream names and prices.
    #[schemars(length(min = 1, max = 64))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("model names must be unique"))]
    pub models: Vec<ModelSpec>,
    /// Upstream backends. Lower `priority` is tried first; `weight` splits traffic within a priority.
    #[schemars(length(min = 1, max = 32))]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["name"]))]
    #[x_kube(validation = Rule::new("self.all(a, self.exists_one(b, b.name == a.name))").message("backend names must be unique"))]
    pub backends: Vec<Backend>,
    /// Retries on retryable upstream failures (429, 5xx, timeouts, connection errors).
    #[serde(default)]
    pub retries: RetryPolicy,
    /// Deadline for one request across every attempt, fallback and backoff, seconds. A request
    /// still unanswered then ends with 504.
    #[serde(default = "default_route_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub timeout_seconds: u32,
    /// Ejects a failing backend for a while so requests go straight to healthy ones.
    #[serde(default)]
    pub circuit_breaker: CircuitBreakerPolicy,
    /// Exact-match response cache for deterministic requests (`temperature: 0` or a `seed`).
    /// Absent: off, unless a request opts in with `x-switchboard-cache: on`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cache: Option<CachePolicy>,
    /// How much an upstream may send. A reply past a limit ends the request with 502 (a stream:
    /// with an error event), so a faulty or hostile upstream cannot exhaust the gateway's memory.
    #[serde(default)]
    pub response_limits: ResponseLimits,
    /// What this route's requests put on their OpenTelemetry spans beyond the defaults.
    #[serde(default, skip_serializing_if = "RouteTelemetry::is_default")]
    pub telemetry: RouteTelemetry,
    /// A Rego policy every request to this route's models must pass, after the tenant's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub policy: Option<Policy>,
}

/// Tracing options of a route.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RouteTelemetry {
    /// Record the messages and the reply on the request's span, as the OpenTelemetry GenAI
    /// conventions' opt-in attributes (`gen_ai.system_instructions`, `gen_ai.input.messages`,
    /// `gen_ai.output.messages`), with the config's secret values and credential-like text removed
    /// and each cut to 16 KiB. Off by default: prompts and replies are never recorded.
    #[serde(default)]
    pub capture_content: bool,
}

impl RouteTelemetry {
    fn is_default(&self) -> bool {
        *self == RouteTelemetry::default()
    }
}

/// Size limits on what the route's upstreams send, in KiB.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResponseLimits {
    /// A complete (non-streamed) reply body.
    #[serde(default = "default_max_body_kib", rename = "maxBodyKiB")]
    #[schemars(range(min = 1, max = 1048576))]
    pub max_body_kib: u32,
    /// An error reply's body; only its message is kept, redacted and cut to 500 characters.
    #[serde(default = "default_max_error_kib", rename = "maxErrorBodyKiB")]
    #[schemars(range(min = 1, max = 16384))]
    pub max_error_body_kib: u32,
    /// One server-sent event of a stream (its `data:` lines together).
    #[serde(default = "default_max_event_kib", rename = "maxEventKiB")]
    #[schemars(range(min = 1, max = 262144))]
    pub max_event_kib: u32,
    /// One line of a stream.
    #[serde(default = "default_max_line_kib", rename = "maxLineKiB")]
    #[schemars(range(min = 1, max = 262144))]
    pub max_line_kib: u32,
}

impl Default for ResponseLimits {
    fn default() -> Self {
        Self {
            max_body_kib: default_max_body_kib(),
            max_error_body_kib: default_max_error_kib(),
            max_event_kib: default_max_event_kib(),
            max_line_kib: default_max_line_kib(),
        }
    }
}

impl ResponseLimits {
    /// The limits in bytes: body, error body, event, line.
    pub fn bytes(&self) -> (usize, usize, usize, usize) {
        let bytes = |kib: u32| usize::try_from(kib).unwrap_or(usize::MAX).saturating_mul(1024);
        (
            bytes(self.max_body_kib),
            bytes(self.max_error_body_kib),
            bytes(self.max_event_kib),
            bytes(self.max_line_kib),
        )
    }
}

fn default_max_body_kib() -> u32 {
    32 * 1024
}
fn default_max_error_kib() -> u32 {
    64
}
fn default_max_event_kib() -> u32 {
    4 * 1024
}
fn default_max_line_kib() -> u32 {
    1024
}

fn default_route_timeout() -> u32 {
    300
}

/// Per-backend circuit breaker: after `consecutiveFailures` retryable failures in a row the backend
/// is ejected for `openSeconds`; then one probe request decides whether it rejoins.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CircuitBreakerPolicy {
    /// Retryable failures in a row (429, 5xx, timeouts, connection errors) that open the breaker.
    #[serde(default = "default_breaker_failures")]
    #[schemars(range(min = 1, max = 100))]
    pub consecutive_failures: u32,
    /// How long an open breaker keeps the backend out before a probe, seconds.
    #[serde(default = "default_breaker_open")]
    #[schemars(range(min = 1, max = 3600))]
    pub open_seconds: u32,
}

impl Default for CircuitBreakerPolicy {
    fn default() -> Self {
        Self { consecutive_failures: default_breaker_failures(), open_seconds: default_breaker_open() }
    }
}

fn default_breaker_failures() -> u32 {
    5
}
fn default_breaker_open() -> u32 {
    30
}

/// Response cache settings of a route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct CachePolicy {
    /// How long a cached reply is served, seconds.
    #[serde(default = "default_cache_ttl")]
    #[schemars(range(min = 1, max = 604800))]
    pub ttl_seconds: u32,
}

impl Default for CachePolicy {
    fn default() -> Self {
        Self { ttl_seconds: default_cache_ttl() }
    }
}

fn default_cache_ttl() -> u32 {
    300
}

/// A model name served by the route.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelSpec {
    /// The name clients send in `model`. Must be unique across all ProviderRoutes.
    #[schemars(length(min = 1, max = 128), pattern(r"^[A-Za-z0-9][A-Za-z0-9._:/-]*$"))]
    pub name: String,
    /// The model name sent upstream. Defaults to `name`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(length(min = 1, max = 256))]
    pub upstream_model: Option<String>,
    /// What the model does: `Chat` (Chat Completions, Messages, personas) or `Embedding`
    /// (`/v1/embeddings`, priced per input token). A request to the other API is refused with a
    /// 400 that says which one to call.
    #[serde(default, skip_serializing_if = "ModelKind::is_chat")]
    pub kind: ModelKind,
    /// Prices per million tokens, in US dollars.
    #[serde(default)]
    pub pricing: ModelPricing,
}

/// The API a model serves.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
pub enum ModelKind {
    /// A chat model: Chat Completions, Messages, the MCP `chat` tool, personas.
    #[default]
    Chat,
    /// An embedding model: `/v1/embeddings` on OpenAI-type and mock backends.
    Embedding,
}

impl ModelKind {
    pub fn is_chat(&self) -> bool {
        *self == ModelKind::Chat
    }
}

/// Prices per million tokens as decimal strings (`"0.15"`), so money never goes through floats.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct ModelPricing {
    /// Price of a million uncached input (prompt) tokens.
    #[serde(default = "zero")]
    #[schemars(pattern(r"^[0-9]{1,6}(\.[0-9]{1,9})?$"))]
    pub input_per_million: String,
    /// Price of a million output (completion) tokens.
    #[serde(default = "zero")]
    #[schemars(pattern(r"^[0-9]{1,6}(\.[0-9]{1,9})?$"))]
    pub output_per_million: String,
    /// Price of a million input tokens read from the provider's prompt cache. Defaults to the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]{1,6}(\.[0-9]{1,9})?$"))]
    pub cached_input_per_million: Option<String>,
    /// Price of a million input tokens written to the provider's prompt cache. Defaults to the input price.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^[0-9]{1,6}(\.[0-9]{1,9})?$"))]
    pub cache_write_per_million: Option<String>,
}

impl Default for ModelPricing {
    /// Free: a local model costs nothing per token.
    fn default() -> Self {
        Self {
            input_per_million: zero(),
            output_per_million: zero(),
            cached_input_per_million: None,
            cache_write_per_million: None,
        }
    }
}

fn zero() -> String {
    "0".to_owned()
}

/// The wire protocol a backend speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// OpenAI's Chat Completions API: OpenAI itself, llama.cpp, vLLM and other compatible servers.
    Openai,
    /// Anthropic's Messages API.
    Anthropic,
    /// Google's Gemini API (`generateContent` and `streamGenerateContent`), e.g.
    /// `https://generativelanguage.googleapis.com/v1beta`; the key goes in `x-goog-api-key`.
    Gemini,
    /// Built into the gateway: a deterministic reply that reveals what it received. Works offline.
    Mock,
}

/// One upstream endpoint.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[x_kube(validation = Rule::new("self.provider == 'mock' || has(self.baseUrl)").message("baseUrl is required unless provider is mock"))]
pub struct Backend {
    /// Backend name, unique within the route; used in metrics and the ledger.
    #[schemars(length(min = 1, max = 63), pattern(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"))]
    pub name: String,
    /// Wire protocol.
    pub provider: ProviderKind,
    /// Base URL including the version prefix, e.g. `https://api.openai.com/v1`,
    /// `https://generativelanguage.googleapis.com/v1beta`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(pattern(r"^https?://[^\s]+$"))]
    pub base_url: Option<String>,
    /// Secret key holding the provider API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key_secret_ref: Option<SecretKeyRef>,
    /// Share of traffic among backends of the same priority.
    #[serde(default = "one")]
    #[schemars(range(min = 0, max = 1000))]
    pub weight: u32,
    /// Fallback order: all backends of the lowest priority are tried before the next.
    #[serde(default)]
    #[schemars(range(min = 0, max = 100))]
    pub priority: u32,
    /// Timeout of one attempt on this backend, seconds (a stream's whole duration included).
    #[serde(default = "default_request_timeout")]
    #[schemars(range(min = 1, max = 3600))]
    pub request_timeout_seconds: u32,
    /// TCP/TLS connect timeout, seconds.
    #[serde(default = "default_connect_timeout")]
    #[schemars(range(min = 1, max = 60))]
    pub connect_timeout_seconds: u32,
    /// For streams: the first chunk must arrive within this many seconds, or the next backend is
    /// tried (nothing has reached the client yet). Absent: only `requestTimeoutSeconds` applies.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1, max = 600))]
    pub first_token_timeout_seconds: Option<u32>,
}

fn one() -> u32 {
    1
}
fn default_request_timeout() -> u32 {
    120
}
fn default_connect_timeout() -> u32 {
    5
}

/// Retry behaviour for one request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
pub struct RetryPolicy {
    /// Extra attempts after the first, each on the next candidate backend.
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 0, max = 5))]
    pub attempts: u32,
    /// Base backoff between attempts, milliseconds (jittered, doubled each time).
    #[serde(default = "default_backoff")]
    #[schemars(range(min = 0, max = 10000))]
    pub backoff_ms: u32,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self { attempts: default_attempts(), backoff_ms: default_backoff() }
    }
}

fn default_attempts() -> u32 {
    1
}
fn default_backoff() -> u32 {
    100
}

/// Observed state of a ProviderRoute.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize, KubeSchema)]
#[serde(rename_all = "camelCase")]
#[schemars(transform = super::schema::document_in_descriptions)]
pub struct ProviderRouteStatus {
    /// Conditions: `Ready`, `Accepted`, `ResolvedRefs`.
    #[serde(default)]
    #[schemars(extend("x-kubernetes-list-type" = "map", "x-kubernetes-list-map-keys" = ["type"]))]
    pub conditions: Vec<Condition>,
    /// Generation last processed by the operator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub observed_generation: Option<i64>,
    /// Backends currently passing health checks.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthy_backends: Option<u32>,
}
