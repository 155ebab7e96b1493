//! One request's life once authenticated: parse, resolve the model, dispatch to a backend with
//! fallback and retries, and account for usage and cost (ledger + metrics) exactly once.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use futures::{Stream, StreamExt};
use rand::Rng;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::ledger::{LedgerRecord, LedgerSender};
use crate::metrics::Metrics;
use crate::providers::{Call, ChunkStream, Reply, UpstreamError};
use crate::runtime::{BackendRuntime, Caller, Target};
use crate::state::AppState;
use crate::usage::{TokenUsage, estimate_tokens};

/// Which public API the request came through.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Endpoint {
    ChatCompletions,
    Messages,
}

impl Endpoint {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::ChatCompletions => "chat_completions",
            Self::Messages => "messages",
        }
    }
}

/// An authenticated, parsed and routed request.
pub struct Exchange {
    pub id: String,
    pub caller: Caller,
    pub target: Target,
    pub endpoint: Endpoint,
    /// The model name the client asked for.
    pub model: String,
    pub stream: bool,
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    started: Instant,
    prompt_chars: usize,
    ledger: LedgerSender,
    metrics: Metrics,
}

/// Parses a JSON request body, mapping size and syntax problems to their API errors.
pub fn parse_json(
    body: Result<Bytes, axum::extract::rejection::BytesRejection>,
    limit: usize,
) -> Result<Value, ApiError> {
    let bytes = body.map_err(|rejection| {
        if rejection.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::PayloadTooLarge(limit)
        } else {
            ApiError::BadRequest(format!("cannot read request body: {rejection}"), None)
        }
    })?;
    let value: Value = serde_json::from_slice(&bytes).map_err(|e| {
        ApiError::BadRequest(format!("request body is not valid JSON: {e}"), Some("invalid_json"))
    })?;
    if !value.is_object() {
        return Err(ApiError::BadRequest("request body must be a JSON object".into(), Some("invalid_json")));
    }
    Ok(value)
}

impl Exchange {
    /// Validates an OpenAI-form chat request and resolves its model for the caller.
    pub fn begin(
        state: &AppState,
        auth: Authenticated,
        request: &Value,
        endpoint: Endpoint,
    ) -> Result<Exchange, ApiError> {
        let Authenticated { runtime, caller } = auth;
        let model = match request.get("model") {
            Some(Value::String(model)) if !model.is_empty() => model.clone(),
            _ => {
                return Err(ApiError::BadRequest("`model` is required and must be a string".into(), None));
            }
        };
        let messages = match request.get("messages") {
            Some(Value::Array(messages)) if !messages.is_empty() => messages,
            _ => {
                return Err(ApiError::BadRequest("`messages` must be a non-empty array".into(), None));
            }
        };
        let stream = match request.get("stream") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(stream)) => *stream,
            Some(_) => return Err(ApiError::BadRequest("`stream` must be a boolean".into(), None)),
        };
        let target =
            runtime.resolve(&caller, &model).ok_or_else(|| ApiError::ModelNotFound(model.clone()))?.clone();
        let include_usage =
            request.pointer("/stream_options/include_usage").and_then(Value::as_bool) == Some(true);
        let prompt_chars = messages.iter().map(|m| crate::providers::text_len(&m["content"])).sum();
        Ok(Exchange {
            id: uuid::Uuid::now_v7().to_string(),
            caller,
            target,
            endpoint,
            model,
            stream,
            include_usage,
            started: Instant::now(),
            prompt_chars,
            ledger: state.ledger.clone(),
            metrics: state.metrics.clone(),
        })
    }

    /// Sends the request to the route's backends: by priority, weighted within a priority,
    /// retrying retryable failures on the next candidate with jittered exponential backoff.
    pub async fn dispatch(&self, request: &Value) -> Result<(Reply, Arc<BackendRuntime>), Failure> {
        let route = &self.target.route;
        let candidates = candidate_order(&route.backends, &mut rand::rng());
        if candidates.is_empty() {
            return Err(Failure { error: ApiError::NoBackend, backend: None });
        }
        let attempts = 1 + route.config.retries.attempts as usize;
        let mut last = None;
        for attempt in 0..attempts {
            let backend = candidates[attempt % candidates.len()].clone();
            if attempt > 0 {
                tokio::time::sleep(backoff(route.config.retries.backoff_ms, attempt)).await;
            }
            let mut body = request.clone();
            body["model"] = Value::String(self.target.model.upstream_model.clone());
            let timeout = Duration::from_millis(backend.config.request_timeout_ms);
            match backend.provider.send(Call { body, stream: self.stream, timeout }).await {
                Ok(reply) => return Ok((reply, backend)),
                Err(error) => {
                    self.metrics.upstream_error(&route.config.name, &backend.config.name, error.kind());
                    tracing::warn!(
                        request_id = %self.id, route = %route.config.name, backend = %backend.config.name,
                        attempt, %error, "upstream attempt failed"
                    );
                    let retry = error.retryable();
                    last = Some((error, backend));
                    if !retry {
                        break;
                    }
                }
            }
        }
        let (error, backend) = last.ok_or(Failure { error: ApiError::NoBackend, backend: None })?;
        Err(Failure { error: error.into_api_error(), backend: Some(backend) })
    }

    /// Writes the ledger row and metrics for this request. Called exactly once per exchange.
    pub fn account(
        &self,
        backend: Option<&BackendRuntime>,
        status: u16,
        usage: TokenUsage,
        error_code: Option<&str>,
    ) {
        let cost = usage.cost(&self.target.model.pricing);
        let elapsed = self.started.elapsed();
        let tenant = &self.caller.tenant;
        self.metrics.request(tenant, &self.model, self.endpoint.as_str(), status, elapsed.as_secs_f64());
        self.metrics.usage(tenant, &self.model, &usage, cost.0);
        let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        self.ledger.record(LedgerRecord {
            id: self.id.clone(),
            created_at_ms: i64::try_from(now_ms).unwrap_or(i64::MAX),
            tenant: tenant.clone(),
            api_key: self.caller.key_id.clone(),
            persona: None,
            model: self.model.clone(),
            route: self.target.route.config.name.clone(),
            backend: backend.map(|b| b.config.name.clone()).unwrap_or_default(),
            provider: backend.map(|b| b.provider.kind().to_owned()).unwrap_or_default(),
            endpoint: self.endpoint.as_str(),
            stream: self.stream,
            status,
            error_code: error_code.map(str::to_owned),
            input_tokens: usage.input,
            cached_input_tokens: usage.cached_input,
            cache_write_tokens: usage.cache_write,
            output_tokens: usage.output,
            cost_nanos: cost.0,
            latency_ms: u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX),
        });
    }

    /// Usage of a complete reply, estimated if the provider reported none.
    pub fn usage_of(&self, response: &Value) -> TokenUsage {
        response.get("usage").and_then(TokenUsage::from_openai).unwrap_or_else(|| {
            let output_chars =
                response.pointer("/choices/0/message/content").map_or(0, crate::providers::text_len);
            self.estimated_usage(output_chars)
        })
    }

    fn estimated_usage(&self, output_chars: usize) -> TokenUsage {
        TokenUsage {
            input: estimate_tokens(self.prompt_chars),
            output: estimate_tokens(output_chars),
            ..Default::default()
        }
    }
}

/// A dispatch that failed, with the last backend tried (for the ledger).
pub struct Failure {
    pub error: ApiError,
    pub backend: Option<Arc<BackendRuntime>>,
}

impl Failure {
    /// Accounts the failure and returns the error to send.
    pub fn account(self, exchange: &Exchange) -> ApiError {
        exchange.account(
            self.backend.as_deref(),
            self.error.status().as_u16(),
            TokenUsage::default(),
            self.error.code(),
        );
        self.error
    }
}

/// Backends in the order to try: ascending priority; within a priority, a weighted random
/// permutation. Weight-zero backends are drained: never chosen.
fn candidate_order<R: Rng>(backends: &[Arc<BackendRuntime>], rng: &mut R) -> Vec<Arc<BackendRuntime>> {
    let mut priorities: Vec<u32> = backends.iter().map(|b| b.config.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut order = Vec::with_capacity(backends.len());
    for priority in priorities {
        let mut group: Vec<&Arc<BackendRuntime>> =
            backends.iter().filter(|b| b.config.priority == priority && b.config.weight > 0).collect();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|b| u64::from(b.config.weight)).sum();
            let mut pick = rng.random_range(0..total);
            let index = group
                .iter()
                .position(|b| {
                    let weight = u64::from(b.config.weight);
                    if pick < weight {
                        true
                    } else {
                        pick -= weight;
                        false
                    }
                })
                .unwrap_or(0);
            order.push(group.remove(index).clone());
        }
    }
    order
}

/// `base * 2^(attempt-1)`, with up to 50% jitter, capped at 10 s.
fn backoff(base_ms: u32, attempt: usize) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(16).min(16);
    let full = u64::from(base_ms).saturating_mul(1 << exponent).min(10_000);
    let jitter = if full > 1 { rand::rng().random_range(0..=full / 2) } else { 0 };
    Duration::from_millis(full - jitter)
}

/// Meters a chunk stream: tracks usage and output, and accounts the exchange exactly once when
/// the stream ends, fails, or is dropped because the client went away.
pub fn metered(
    exchange: Arc<Exchange>,
    backend: Arc<BackendRuntime>,
    mut chunks: ChunkStream,
) -> impl Stream<Item = Result<Value, UpstreamError>> + Send {
    async_stream::stream! {
        let mut meter = Meter { exchange, backend, usage: None, output_chars: 0, outcome: Some("client_disconnected") };
        while let Some(item) = chunks.next().await {
            match &item {
                Ok(chunk) => meter.observe(chunk),
                Err(error) => meter.outcome = Some(error.kind()),
            }
            let failed = item.is_err();
            yield item;
            if failed {
                return;
            }
        }
        meter.outcome = None;
    }
}

struct Meter {
    exchange: Arc<Exchange>,
    backend: Arc<BackendRuntime>,
    usage: Option<TokenUsage>,
    output_chars: usize,
    /// The ledger's error code if the stream stopped now; `None` once it completed.
    outcome: Option<&'static str>,
}

impl Meter {
    fn observe(&mut self, chunk: &Value) {
        if let Some(usage) = chunk.get("usage").and_then(TokenUsage::from_openai) {
            self.usage = Some(usage);
        }
        for choice in chunk.get("choices").and_then(Value::as_array).into_iter().flatten() {
            if let Some(Value::String(text)) = choice.pointer("/delta/content") {
                self.output_chars += text.len();
            }
        }
    }
}

impl Drop for Meter {
    fn drop(&mut self) {
        let usage = self.usage.unwrap_or_else(|| self.exchange.estimated_usage(self.output_chars));
        self.exchange.account(Some(&self.backend), 200, usage, self.outcome);
    }
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use switchboard_crds::config::BackendConfig;
    use switchboard_crds::resources::ProviderKind;

    use super::*;
    use crate::providers::Provider;

    fn backend(name: &str, weight: u32, priority: u32) -> Arc<BackendRuntime> {
        let config = BackendConfig {
            name: name.into(),
            provider: ProviderKind::Mock,
            base_url: None,
            api_key: None,
            weight,
            priority,
            request_timeout_ms: 1000,
            connect_timeout_ms: 1000,
        };
        Arc::new(BackendRuntime { config, provider: Provider::Mock })
    }

    #[test]
    fn lower_priority_first_and_zero_weight_never() {
        let backends = vec![backend("b", 1, 1), backend("a", 1, 0), backend("off", 0, 0)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let order: Vec<String> =
            candidate_order(&backends, &mut rng).iter().map(|b| b.config.name.clone()).collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn weights_split_first_choices_proportionally() {
        let backends = vec![backend("heavy", 3, 0), backend("light", 1, 0)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let heavy =
            (0..4000).filter(|_| candidate_order(&backends, &mut rng)[0].config.name == "heavy").count();
        assert!((2800..3200).contains(&heavy), "heavy chosen first {heavy} of 4000 times");
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for attempt in 1..5 {
            let full = 100u64 << (attempt - 1);
            let delay = backoff(100, attempt).as_millis() as u64;
            assert!(delay <= full && delay >= full / 2, "attempt {attempt}: {delay} ms");
        }
        assert!(backoff(10_000, 10) <= Duration::from_secs(10));
    }
}
