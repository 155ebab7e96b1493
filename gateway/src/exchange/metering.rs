//! Accounting an exchange exactly once: the ledger row, usage metrics, the budget settlement,
//! token-limit debt and the concurrency slot, and the usage of a reply (reported or estimated).

use std::sync::atomic::Ordering;
use std::time::Instant;

use http::HeaderMap;

use opentelemetry::KeyValue;

use switchboard_crds::decimal::NanoUsd;

use super::{Endpoint, Exchange, lock};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::guardrails::Hit;
use crate::ledger::{LedgerRecord, LedgerSender};
use crate::providers::Completion;
use crate::ratelimit::Dimension;
use crate::serving::runtime::{BackendRuntime, Caller};
use crate::telemetry::context::remote;
use crate::telemetry::genai_metrics::Observed;
use crate::telemetry::spans::RequestFacts;
use crate::usage::{TokenUsage, estimate_tokens};

/// The longest model name a refused request's row keeps of what the client sent.
const MAX_LOGGED_MODEL_CHARS: usize = 200;

/// A request refused before it had a route.
pub struct Unrouted<'a> {
    pub error: &'a ApiError,
    /// The model as the client sent it, if it sent one.
    pub model: Option<&'a str>,
    /// What the guardrails found before the refusal.
    pub guardrails: Vec<Hit>,
}

/// The request log row of a request refused before it had a route: its body was no valid request,
/// a policy denied it, or it named a model the caller cannot use. Nothing was spent, so there is
/// no usage ledger row.
pub fn refused_unrouted(
    ledger: &LedgerSender,
    caller: &Caller,
    endpoint: Endpoint,
    headers: &HeaderMap,
    started: Instant,
    refused: Unrouted<'_>,
) {
    let Unrouted { error, model, guardrails } = refused;
    let model = model.map_or_else(String::new, |m| m.chars().take(MAX_LOGGED_MODEL_CHARS).collect());
    ledger.record(LedgerRecord {
        id: uuid::Uuid::now_v7().to_string(),
        created_at_ms: now_ms(),
        tenant: caller.tenant.clone(),
        api_key: caller.key_id.clone(),
        model,
        endpoint: endpoint.as_str(),
        status: error.status().as_u16(),
        // Invalid requests without a code of their own on the wire are `invalid_request` here.
        error_code: Some(error.code().unwrap_or("invalid_request").to_owned()),
        latency_ms: u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX),
        trace_id: remote(headers).map(|client| client.trace_id.to_string()),
        subject: caller.subject.clone(),
        guardrails,
        billed: false,
        ..LedgerRecord::default()
    });
}

/// How a request ended, for its record.
#[derive(Clone, Copy)]
enum Outcome<'a> {
    /// It reached a backend (or failed on the way to one).
    Billed { backend: &'a str, provider: &'a str },
    /// Answered from the response cache.
    CacheHit,
    /// Refused by a limit, a budget or the queue before any backend.
    Refused,
}

impl Exchange {
    /// Writes the ledger row and metrics for this request and frees its slot. Called exactly
    /// once per exchange that reached dispatch.
    pub fn account(
        &self,
        backend: Option<&BackendRuntime>,
        status: u16,
        usage: TokenUsage,
        error_code: Option<&str>,
    ) {
        let provider = backend.map(|b| b.provider.kind()).unwrap_or_default();
        let error_code = error_code.or(self.capped.load(Ordering::Relaxed).then_some("output_capped"));
        if let (Some(backend), Some(asked)) = (backend, self.asked_output)
            && usage.output > asked
            && !backend.overruns_max_tokens.swap(true, Ordering::Relaxed)
        {
            let backend = &backend.config.name;
            tracing::warn!(%backend, "the backend answered past max_tokens; whole replies under hard budgets are read from it as streams from now on");
        }
        let backend_name = backend.map(|b| b.config.name.as_str()).unwrap_or_default();
        let cost =
            self.write_ledger(Outcome::Billed { backend: backend_name, provider }, status, usage, error_code);
        if let Some(reservation) = lock(&self.reservation).take() {
            reservation.settle(cost);
        }
        self.charge_tokens(usage.total());
        lock(&self.permit).take();
    }

    /// Token limits admitted an estimate; usage beyond it becomes debt that later requests wait
    /// out, so the limit holds for what was really used. One request adds at most a minute of
    /// debt, so that an upstream reporting absurd usage cannot lock a tenant out for days.
    fn charge_tokens(&self, used: u64) {
        let extra = used.saturating_sub(self.estimated_tokens);
        let token_checks: Vec<(String, u64)> = self
            .rate_checks
            .iter()
            .filter(|c| c.dimension == Dimension::Tokens)
            .map(|c| (c.key.clone(), c.per_minute))
            .collect();
        if extra == 0 || token_checks.is_empty() {
            return;
        }
        let limiter = self.limiter.clone();
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                for (key, per_minute) in token_checks {
                    limiter.charge(&key, per_minute, extra.min(per_minute)).await;
                }
            });
        }
    }

    /// A reply served from the cache: a ledger row at zero cost.
    pub(super) fn account_cache_hit(&self) {
        self.write_ledger(Outcome::CacheHit, 200, TokenUsage::default(), None);
    }

    /// Counts a request refused before dispatch (queue, limits, budget) and returns its error.
    pub(super) fn refuse(&self, error: ApiError) -> ApiError {
        if let Some(reason) = error.code() {
            self.metrics.refusal(&self.caller.tenant, reason);
        }
        self.write_ledger(Outcome::Refused, error.status().as_u16(), TokenUsage::default(), error.code());
        error
    }

    /// Writes the request's record (a usage ledger row unless refused, a request log row always)
    /// and its metrics; returns the cost.
    fn write_ledger(
        &self,
        outcome: Outcome<'_>,
        status: u16,
        usage: TokenUsage,
        error_code: Option<&str>,
    ) -> NanoUsd {
        let (backend, provider) = match outcome {
            Outcome::Billed { backend, provider } => (backend, provider),
            Outcome::CacheHit => ("", "cache"),
            Outcome::Refused => ("", ""),
        };
        let cost = usage.cost(&self.target.model.pricing);
        let elapsed = self.started.elapsed();
        let tenant = &self.caller.tenant;
        let route = &self.target.route.config.name;
        if usage.is_clamped() {
            tracing::warn!(request_id = %self.id, %route, %backend, "the upstream reported an impossible token count; charged at the clamp");
            self.metrics.upstream_error(route, backend, "usage_clamped");
        }
        self.metrics.request(tenant, &self.model, self.endpoint.as_str(), status, elapsed.as_secs_f64());
        if !matches!(outcome, Outcome::Refused) {
            self.metrics.usage(tenant, &self.model, &usage, cost.0);
        }
        let mut record = LedgerRecord {
            id: self.id.clone(),
            created_at_ms: now_ms(),
            tenant: tenant.clone(),
            api_key: self.caller.key_id.clone(),
            persona: self.persona.clone(),
            model: self.model.clone(),
            route: route.clone(),
            backend: backend.to_owned(),
            provider: provider.to_owned(),
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
            subject: None,
            attempts: Vec::new(),
            ttft_ms: None,
            queue_ms: None,
            cache_hit: matches!(outcome, Outcome::CacheHit),
            trace_id: None,
            guardrails: Vec::new(),
            billed: !matches!(outcome, Outcome::Refused),
        };
        if self.trail.sampled() && lock(&self.reservation).is_some() {
            let settled = KeyValue::new("switchboard.budget.settled_usd", cost.0 as f64 / 1e9);
            self.trail.event("switchboard.budget.settled", || vec![settled]);
        }
        self.trail.fill(&mut record);
        self.metrics.genai(&Observed {
            operation: self.endpoint.operation(),
            provider,
            model: &self.model,
            tokens: record.billed.then(|| (usage.input_total(), usage.output)),
            seconds: elapsed.as_secs_f64(),
            time_to_first_token: record.ttft_ms.map(|ms| ms as f64 / 1e3),
            error: error_code,
        });
        let facts = RequestFacts {
            operation: self.endpoint.operation(),
            response_model: &self.target.model.upstream_model,
            max_tokens: self.asked_output,
            finish_reasons: &[],
            response_id: None,
            budgeted: !self.budgets.is_empty(),
            rate_limited: !self.rate_checks.is_empty(),
            content: Vec::new(),
        };
        self.trail.export(&self.tracer, &record, facts, &self.redactor);
        self.ledger.record(record);
        cost
    }

    /// Usage of a complete reply, estimated if the provider reported none.
    pub fn usage_of(&self, reply: &Completion) -> TokenUsage {
        reply.usage().unwrap_or_else(|| self.estimated_usage(reply.content_len()))
    }

    pub(super) fn estimated_usage(&self, output_chars: usize) -> TokenUsage {
        TokenUsage {
            input: estimate_tokens(self.prompt_chars + self.context_chars.load(Ordering::Relaxed)),
            output: estimate_tokens(output_chars),
            ..Default::default()
        }
    }
}
