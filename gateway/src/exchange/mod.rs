//! One request's exchange with the backends, for a request [`crate::chat_request::ChatRequest::parse`]
//! checked: begin (resolve the model, the limits and budgets that apply), admit, forward to a
//! backend with fallback and retries, and account for usage and cost (ledger + metrics) exactly
//! once. [`crate::pipeline`] runs these steps in order.

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime};

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use bytes::Bytes;
use futures::StreamExt;
use http::{HeaderMap, HeaderName, HeaderValue};
use opentelemetry::KeyValue;
use serde_json::Value;

use crate::auth::Authenticated;
use crate::budget::Reservation;
use crate::cache::{self, CacheKey};
use crate::drain::Deadline;
use crate::error::ApiError;
use crate::guardrails::Hit;
use crate::guardrails::reply::ReplyGuard;
use crate::ledger::LedgerSender;
use crate::metrics::Metrics;
use crate::payload::Payload;
use crate::persona::turn::MODEL_PREFIX;
use crate::providers::{Call, ChunkStream, Completion, Reply, UpstreamError};
use crate::queue::Permit;
use crate::ratelimit::{Check, Decision, RateLimiter};
use crate::redact::Redactor;
use crate::serving::runtime::{BackendRuntime, Caller, Target};
use crate::state::AppState;
use crate::telemetry::Tracer;
use crate::usage::{TokenUsage, estimate_tokens};

mod admission;
mod assemble;
mod checks;
mod encoded;
mod endpoint;
mod metering;
mod order;
mod policy;
mod stream;
mod trail;

pub use self::endpoint::Endpoint;
pub use self::metering::{Unrouted, refused_unrouted};
pub use self::policy::enforce as enforce_policies;

use self::admission::{applies, budget_refusal, structured_output_schema};
pub(crate) use self::admission::{rate_checks, rate_limited};
use self::encoded::Encoded;
use self::order::{backoff, candidate_order, next_admitted};
use self::trail::Trail;

pub use self::stream::metered;
use switchboard_crds::config::{BudgetConfig, PersonaConfig};
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::BudgetEnforcement;

/// An authenticated, parsed and routed request.
pub struct Exchange {
    pub id: String,
    pub caller: Arc<Caller>,
    /// The persona spoken to, if any (the ledger's `persona`).
    pub persona: Option<String>,
    pub target: Target,
    pub endpoint: Endpoint,
    /// The model name the client asked for.
    pub model: String,
    pub stream: bool,
    /// Whether the client asked for the usage chunk (`stream_options.include_usage`).
    pub include_usage: bool,
    started: Instant,
    /// When the route's total timeout runs out, streams included.
    deadline: Instant,
    prompt_chars: usize,
    /// Text the persona's context added once admitted (see [`Exchange::count_context`]).
    context_chars: AtomicUsize,
    /// `response_format: json_schema`: the schema replies must match.
    schema: Option<jsonschema::Validator>,
    /// Where and how long the reply may be cached.
    cache: Option<(CacheKey, Duration)>,
    /// The tenant's concurrency limit and queue priority.
    max_concurrent: Option<u32>,
    priority: u8,
    /// Rate limits that apply (tenant, API key), costed with this request's estimates.
    rate_checks: Vec<Check>,
    /// Tokens admitted before the response (prompt estimate plus `max_tokens`).
    estimated_tokens: u64,
    /// Budgets that apply, and the amount reserved against them.
    budgets: Vec<Arc<BudgetConfig>>,
    reserve: NanoUsd,
    /// The client's output limit (`max_completion_tokens` or `max_tokens`) times the answers it
    /// asked for (`n`), if it set one.
    asked_output: Option<u64>,
    /// Text bytes past which the reply is ended (see [`stream::CAPPED_BYTES_PER_TOKEN`]): set when
    /// a hard budget applies and the client set an output limit. A reply the client wants whole
    /// is then read as a stream too ([`assemble`]) from a backend known to overrun `max_tokens`.
    output_cap: Option<usize>,
    /// Whether a whole reply was cut at `output_cap` (the ledger's `output_capped`).
    capped: AtomicBool,
    /// Held until the exchange is accounted: the concurrency slot and the budget reservation.
    permit: Mutex<Option<Permit>>,
    reservation: Mutex<Option<Reservation>>,
    limiter: RateLimiter,
    ledger: LedgerSender,
    metrics: Metrics,
    /// The config's secrets, removed from everything an upstream sends before it goes further.
    redactor: Arc<Redactor>,
    tracer: Tracer,
    /// When a graceful stop ends this request if it is still running.
    drain: Deadline,
    /// The end user, the trace id, the attempts and timings, for the request log.
    trail: Trail,
    /// What the policies ask of the reply (guardrails), if anything.
    reply_guard: Option<Arc<ReplyGuard>>,
}

/// How admission ended for a request it let through.
pub enum Admitted {
    /// Go on to the backends; these headers (rate limits, cache status) go with the answer.
    Forward(Vec<(HeaderName, HeaderValue)>),
    /// Answered from the response cache, already accounted.
    Cached(Served),
}

/// What a served request answers, with headers for the response.
pub struct Served {
    pub reply: ServedReply,
    pub headers: Vec<(HeaderName, HeaderValue)>,
}

pub enum ServedReply {
    Complete(Completion),
    Stream(ChunkStream),
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
    /// Resolves a checked request's model for the caller, and the limits and budgets that apply.
    /// A request that speaks as `persona` gets the persona's context only once admitted:
    /// `context_bytes` is the most it adds to the prompt, which the estimates and the budget
    /// reservation count.
    pub fn begin(
        state: &AppState,
        auth: Authenticated,
        request: Payload<'_>,
        endpoint: Endpoint,
        headers: &HeaderMap,
        persona: Option<&PersonaConfig>,
        context_bytes: usize,
    ) -> Result<Exchange, ApiError> {
        let Authenticated { runtime, caller } = auth;
        let model = match persona {
            Some(persona) => format!("{MODEL_PREFIX}{}", persona.name),
            None => request.model().to_owned(),
        };
        // All answers together (`n`): what budgets reserve, the cap and an overrun are judged on.
        let asked_output = request.total_output();
        let max_output = request.reserved_output();
        let stream = request.stream();
        let schema = request.chat().map(structured_output_schema).transpose()?.flatten();
        // A persona's model is served as its owner may: the persona may be shared with the caller.
        let target = match persona {
            None => runtime.resolve(&caller, &model),
            Some(persona) => runtime.resolve_for(&persona.tenant, request.model()),
        }
        .ok_or_else(|| ApiError::ModelNotFound(model.clone()))?
        .clone();
        request.check_kind(target.model.kind)?;
        if !target.route.backends.iter().any(|backend| backend.provider.serves(request)) {
            let message = format!(
                "model {:?} is served by Anthropic's Messages API, which has no {} API: use /v1/chat/completions or /v1/messages",
                request.model(),
                endpoint.as_str()
            );
            return Err(ApiError::BadRequest(message, Some("model_not_supported")));
        }
        let include_usage = request.include_usage();
        let prompt_chars = request.prompt_chars();
        // A persona's answer depends on its memories and mood, which change with every turn.
        let cache = cache::ttl_for(target.route.config.cache.as_ref(), headers)
            .filter(|_| persona.is_none())
            .and_then(|ttl| Some((cache::key_for(&caller.tenant, request.chat()?)?, ttl)));
        let tenant = runtime.tenant(&caller.tenant);
        let estimated_input = estimate_tokens(prompt_chars.saturating_add(context_bytes));
        let estimated_tokens = estimated_input.saturating_add(max_output);
        let pricing = &target.model.pricing;
        let persona_name = persona.map(|p| p.name.as_str());
        let budgets: Vec<Arc<BudgetConfig>> = runtime
            .budgets_of(&caller.tenant)
            .iter()
            .filter(|b| applies(b, &caller, persona_name))
            .cloned()
            .collect();
        // Budgets reserve for the most the prompt can cost, not the estimate rate limits use.
        let reserve = if budgets.is_empty() {
            NanoUsd::default()
        } else {
            let context = if context_bytes > 0 { context_tokens_at_most(context_bytes) } else { 0 };
            pricing.input.per_million_times(request.input_tokens_at_most().saturating_add(context))
                + pricing.output.per_million_times(max_output)
        };
        let hard_budget = budgets.iter().any(|b| b.enforcement == BudgetEnforcement::Hard);
        // The cap ends a reply as a chat ends (`finish_reason: length`): chats only.
        let output_cap = asked_output.filter(|_| hard_budget && request.chat().is_some()).map(|tokens| {
            usize::try_from(tokens).unwrap_or(usize::MAX).saturating_mul(stream::CAPPED_BYTES_PER_TOKEN)
        });
        let rate_checks = rate_checks(tenant, &caller, persona, estimated_tokens);
        let started = Instant::now();
        let trace = state.tracer.start(headers, endpoint.operation());
        let capture = target.route.config.capture_content;
        let trail = Trail::new(request, headers, caller.subject.as_deref(), trace, started, capture);
        Ok(Exchange {
            id: uuid::Uuid::now_v7().to_string(),
            max_concurrent: tenant.and_then(|t| t.rate_limits.max_concurrent),
            priority: tenant.map_or(0, |t| t.priority),
            persona: persona.map(|p| p.name.clone()),
            caller,
            deadline: started + Duration::from_millis(target.route.config.timeout_ms),
            target,
            endpoint,
            model,
            stream,
            include_usage,
            started,
            prompt_chars,
            context_chars: AtomicUsize::new(0),
            schema,
            cache,
            rate_checks,
            estimated_tokens,
            budgets,
            reserve,
            asked_output,
            output_cap,
            capped: AtomicBool::new(false),
            permit: Mutex::new(None),
            reservation: Mutex::new(None),
            limiter: state.limiter.clone(),
            ledger: state.ledger.clone(),
            metrics: state.metrics.clone(),
            redactor: runtime.redactor.clone(),
            tracer: state.tracer.clone(),
            drain: state.drain.clone(),
            trail,
            reply_guard: None,
        })
    }

    /// The exchange with what the policies' guardrails found in the request and ask of the reply.
    pub fn guarded(self, hits: Vec<Hit>, reply_guard: Option<Arc<ReplyGuard>>) -> Exchange {
        self.trail.guardrails(hits);
        Exchange { reply_guard, ..self }
    }

    /// Admits the request: rate limits, cache, budgets, the concurrency queue. A refusal is
    /// accounted here, before anything else reads or calls anything for the request.
    pub async fn admit(self: &Arc<Self>, state: &AppState) -> Result<Admitted, ApiError> {
        let mut headers = Vec::new();
        if !self.rate_checks.is_empty() {
            match self.limiter.acquire(&self.rate_checks).await {
                Decision::Allowed(info) => headers.extend(info.headers()),
                Decision::Limited { retry_after, info } => {
                    return Err(self.refuse(rate_limited(retry_after, info.headers())));
                }
            }
        }
        if let Some((key, _)) = &self.cache {
            let hit = state.cache.get(key).await;
            self.metrics.cache_lookup(hit.is_some());
            headers.push((
                HeaderName::from_static(cache::CACHE_HEADER),
                HeaderValue::from_static(if hit.is_some() { "hit" } else { "miss" }),
            ));
            if let Some(body) = hit {
                self.account_cache_hit();
                return Ok(Admitted::Cached(Served { reply: ServedReply::Complete(body), headers }));
            }
        }
        if !self.budgets.is_empty() {
            let reservation = state
                .budgets
                .reserve(&self.budgets, self.reserve, SystemTime::now())
                .await
                .map_err(|refusal| self.refuse(budget_refusal(refusal)))?;
            self.trail.event("switchboard.budget.reserved", || {
                vec![KeyValue::new("switchboard.budget.reserved_usd", self.reserve.0 as f64 / 1e9)]
            });
            for warning in reservation.warnings() {
                self.metrics.budget_warning(&warning.budget, warning.exhausted);
            }
            *lock(&self.reservation) = Some(reservation);
        }
        let queued = Instant::now();
        let permit = tokio::select! {
            permit = state.scheduler.acquire(&self.caller.tenant, self.max_concurrent, self.priority) => permit,
            () = self.drain.reached() => Err(ApiError::Stopping),
        };
        self.trail.queued(queued.elapsed());
        let permit = permit.map_err(|error| self.refuse(error))?;
        *lock(&self.permit) = Some(permit);
        Ok(Admitted::Forward(headers))
    }

    /// `traceresponse` for the client, when the gateway traces the request.
    pub fn trace_header(&self) -> Option<(HeaderName, HeaderValue)> {
        self.trail.response_header()
    }

    /// Counts the text the persona's context added to the prompt once admitted, for the usage
    /// estimate of a reply whose provider reports none.
    pub fn count_context(&self, chars: usize) {
        self.context_chars.store(chars, Ordering::Relaxed);
    }

    /// Admits, then forwards: a request with nothing to do between the two (no persona context).
    pub async fn serve(self: &Arc<Self>, state: &AppState, request: Payload<'_>) -> Result<Served, ApiError> {
        match self.admit(state).await? {
            Admitted::Cached(served) => Ok(served),
            Admitted::Forward(headers) => self.forward(state, request, headers).await,
        }
    }

    /// Sends an admitted request to the backends and accounts it.
    pub async fn forward(
        self: &Arc<Self>,
        state: &AppState,
        request: Payload<'_>,
        headers: Vec<(HeaderName, HeaderValue)>,
    ) -> Result<Served, ApiError> {
        let reply = match self.dispatch(request).await {
            Err(failure) => return Err(failure.account(self)),
            Ok(Dispatched { reply: Reply::Complete(body), backend, discarded }) => {
                let usage = self.usage_of(&body) + discarded;
                let body = match self.guard_reply(body) {
                    Ok(body) => body,
                    Err(withheld) => {
                        // Spent all the same: the upstream answered.
                        self.account(Some(&backend), withheld.status().as_u16(), usage, withheld.code());
                        return Err(withheld);
                    }
                };
                self.trail.reply(&body);
                self.account(Some(&backend), 200, usage, None);
                if let Some((key, ttl)) = self.cache.filter(|_| !self.capped.load(Ordering::Relaxed)) {
                    state.cache.put(key, body.clone(), ttl);
                }
                ServedReply::Complete(body)
            }
            Ok(Dispatched { reply: Reply::Stream(chunks), backend, .. }) => {
                ServedReply::Stream(Box::pin(metered(self.clone(), backend, chunks)))
            }
        };
        Ok(Served { reply, headers })
    }

    /// Sends the request to the route's backends within the route's deadline: by priority,
    /// weighted within a priority, skipping ejected backends, retrying retryable failures on the
    /// next candidate with jittered exponential backoff.
    async fn dispatch(&self, request: Payload<'_>) -> Result<Dispatched, Failure> {
        let timeout_ms = self.target.route.config.timeout_ms;
        let failure = |error| Err(Failure { error, backend: None, discarded: TokenUsage::default() });
        tokio::select! {
            dispatched = tokio::time::timeout_at(self.deadline.into(), self.attempts(request)) => {
                dispatched.unwrap_or_else(|_| failure(ApiError::UpstreamTimeout(timeout_ms)))
            }
            () = self.drain.reached() => failure(ApiError::Stopping),
        }
    }

    async fn attempts(&self, request: Payload<'_>) -> Result<Dispatched, Failure> {
        let route = &self.target.route;
        let mut candidates = candidate_order(&route.backends, &mut rand::rng());
        candidates.retain(|backend| backend.provider.serves(request));
        if candidates.is_empty() {
            return Err(Failure {
                error: ApiError::NoBackend,
                backend: None,
                discarded: TokenUsage::default(),
            });
        }
        let mut attempts = 1 + route.config.retries.attempts as usize;
        let mut cursor = 0;
        let mut ejected_until = None;
        let mut discarded = TokenUsage::default();
        let mut schema_retried = false;
        let mut encoded = Encoded::default();
        let mut last: Option<(ApiError, Arc<BackendRuntime>)> = None;
        let mut attempt = 0;
        while attempt < attempts {
            if attempt > 0 {
                tokio::time::sleep(backoff(route.config.retries.backoff_ms, attempt)).await;
            }
            attempt += 1;
            let Some(backend) = next_admitted(&candidates, &mut cursor, &mut ejected_until) else {
                break;
            };
            let (start, trace) = self.trail.begin_attempt(&self.tracer, || backend.breaker.state_name());
            let result = self.attempt(&backend, request, &mut encoded, &trace).await;
            let outcome = result.as_ref().map_or_else(UpstreamError::kind, |_| trail::OK);
            let address = backend.provider.address();
            let (began, ended) = (start.began(), Instant::now());
            self.trail.attempt(start, ended, &backend.config.name, address, outcome);
            // Unhealthy only if the backend itself failed (not a bad request, not a cancel).
            let healthy = result.as_ref().map_or_else(|error| !error.is_backend_fault(), |_| true);
            backend.breaker.record(healthy, ended);
            backend.recent.record(healthy, began, ended);
            match result {
                Ok(reply) => {
                    let Reply::Complete(body) = &reply else {
                        return Ok(Dispatched { reply, backend, discarded });
                    };
                    let Err(problem) = self.check_structured(body) else {
                        return Ok(Dispatched { reply, backend, discarded });
                    };
                    // The backend answered, just not in shape: its tokens are spent all the same.
                    discarded = discarded + self.usage_of(body);
                    tracing::warn!(request_id = %self.id, backend = %backend.config.name, %problem, "reply does not match the JSON schema");
                    last = Some((ApiError::InvalidStructuredOutput(problem), backend));
                    if schema_retried {
                        break;
                    }
                    schema_retried = true;
                    attempts = attempts.max(attempt + 1);
                }
                Err(error) => {
                    // The gateway's own translator refusing the request is no upstream's failure.
                    if !matches!(error, UpstreamError::Untranslatable(_)) {
                        self.metrics.upstream_error(&route.config.name, &backend.config.name, error.kind());
                        tracing::warn!(
                            request_id = %self.id, route = %route.config.name, backend = %backend.config.name,
                            attempt, %error, "upstream attempt failed"
                        );
                    }
                    let retry = error.retryable();
                    last = Some((error.into_api_error(), backend));
                    if !retry {
                        break;
                    }
                }
            }
        }
        Err(match last {
            Some((error, backend)) => Failure { error, backend: Some(backend), discarded },
            None => {
                let wait = ejected_until.map_or(1, |until: Instant| {
                    until.saturating_duration_since(Instant::now()).as_secs() + 1
                });
                Failure { error: ApiError::BackendsEjected { retry_after: wait }, backend: None, discarded }
            }
        })
    }

    /// One attempt on one backend, its reply or error redacted before anything reads or logs it.
    async fn attempt(
        &self,
        backend: &BackendRuntime,
        request: Payload<'_>,
        encoded: &mut Encoded,
        trace: &[(HeaderName, HeaderValue)],
    ) -> Result<Reply, UpstreamError> {
        match self.attempt_raw(backend, request, encoded, trace).await {
            Ok(Reply::Complete(body)) => body.redacted(&self.redactor).map(Reply::Complete),
            Ok(stream) => Ok(stream),
            Err(error) => Err(error.redacted(&self.redactor)),
        }
    }

    /// One attempt as the provider answered it. A stream counts as answered only once its first
    /// chunk is here (within the backend's first-token timeout): until then nothing has reached
    /// the client, so a failure can still fall back to the next backend.
    async fn attempt_raw(
        &self,
        backend: &BackendRuntime,
        request: Payload<'_>,
        encoded: &mut Encoded,
        trace: &[(HeaderName, HeaderValue)],
    ) -> Result<Reply, UpstreamError> {
        let model = &self.target.model.upstream_model;
        let timeout = Duration::from_millis(backend.config.request_timeout_ms);
        let limits = self.target.route.config.response_limits;
        let overruns = backend.overruns_max_tokens.load(Ordering::Relaxed);
        let stream = self.stream || (self.output_cap.is_some() && overruns);
        let body = match backend.provider.wire_format(request) {
            None => Bytes::new(),
            Some(format) => encoded.body(format, request, model, stream)?,
        };
        let call = backend.provider.send(Call { request, model, body, stream, timeout, limits, trace });
        let answered = async {
            match (call.await?, self.output_cap) {
                (Reply::Stream(chunks), Some(cap)) if !self.stream => {
                    let (body, cut) = assemble::complete(chunks, cap, &self.redactor).await?;
                    self.capped.store(cut, Ordering::Relaxed);
                    Ok(Reply::Complete(body))
                }
                (Reply::Stream(chunks), _) => {
                    let chunks = first_chunk(chunks).await?;
                    self.trail.first_token(self.started.elapsed());
                    Ok(Reply::Stream(chunks))
                }
                (complete, _) => Ok(complete),
            }
        };
        match backend.config.first_token_timeout_ms.filter(|_| self.stream) {
            None => answered.await,
            Some(ms) => tokio::time::timeout(Duration::from_millis(ms), answered)
                .await
                .unwrap_or(Err(UpstreamError::Timeout(ms))),
        }
    }
}

/// A dispatch that succeeded, with the usage of replies thrown away on the way (invalid
/// structured output), which is still charged.
struct Dispatched {
    reply: Reply,
    backend: Arc<BackendRuntime>,
    discarded: TokenUsage,
}

/// A dispatch that failed, with the last backend tried (for the ledger).
struct Failure {
    error: ApiError,
    backend: Option<Arc<BackendRuntime>>,
    discarded: TokenUsage,
}

impl Failure {
    /// Accounts the failure and returns the error to send.
    fn account(self, exchange: &Exchange) -> ApiError {
        exchange.account(
            self.backend.as_deref(),
            self.error.status().as_u16(),
            self.discarded,
            self.error.code(),
        );
        self.error
    }
}

/// The most input tokens `bytes` of persona context can be charged for: its text (never more
/// tokens than bytes) and the system message's framing.
fn context_tokens_at_most(bytes: usize) -> u64 {
    u64::try_from(bytes).unwrap_or(u64::MAX).saturating_add(crate::usage::TOKENS_PER_MESSAGE)
}

/// Waits for a stream's first chunk and puts it back in front.
async fn first_chunk(mut chunks: ChunkStream) -> Result<ChunkStream, UpstreamError> {
    match chunks.next().await {
        Some(Ok(first)) => Ok(Box::pin(futures::stream::once(async { Ok(first) }).chain(chunks))),
        Some(Err(error)) => Err(error),
        None => Err(UpstreamError::Protocol("the stream ended before its first chunk".into())),
    }
}

fn lock<T>(mutex: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}
