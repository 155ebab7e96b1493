//! What one request leaves behind, written by the ledger's writer to the usage ledger
//! ([`crate::ledger`]) and the request log ([`crate::request_log`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};
use sqlx::Any;
use sqlx::any::AnyArguments;
use sqlx::query::Query;

use crate::guardrails::Hit;

/// One request's record: its usage and cost (the usage ledger, when it was billed) and what
/// the request log shows about it.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LedgerRecord {
    pub id: String,
    pub created_at_ms: i64,
    pub tenant: String,
    pub api_key: String,
    pub persona: Option<String>,
    pub model: String,
    pub route: String,
    pub backend: String,
    pub provider: String,
    pub endpoint: &'static str,
    pub stream: bool,
    pub status: u16,
    pub error_code: Option<String>,
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
    pub cost_nanos: i64,
    pub latency_ms: u64,
    /// The end user: the OpenAI `user` field or the subject header, when valid.
    pub subject: Option<String>,
    pub attempts: Vec<Attempt>,
    pub ttft_ms: Option<u64>,
    pub queue_ms: Option<u64>,
    pub cache_hit: bool,
    /// The W3C trace id the client sent (`traceparent`).
    pub trace_id: Option<String>,
    /// What the guardrails of the policies that applied found and did, never the text.
    pub guardrails: Vec<Hit>,
    /// Whether the request reached the backends or the cache, and so has a usage ledger row;
    /// refusals (limits, budgets, the queue) are in the request log only.
    pub billed: bool,
}

impl LedgerRecord {
    /// Every input token, cached and cache writes included.
    pub fn input_total(&self) -> u64 {
        self.input_tokens.saturating_add(self.cached_input_tokens).saturating_add(self.cache_write_tokens)
    }
}

/// One attempt on one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub backend: String,
    /// `ok`, or the error's kind (`server_error`, `timeout`, `connect`, `rate_limited`, ...).
    pub outcome: Cow<'static, str>,
    /// When it began, milliseconds after the request arrived.
    #[serde(default)]
    pub at_ms: u64,
    /// Until the reply (or a stream's first chunk) was in, or the attempt failed.
    pub ms: u64,
}

/// The usage ledger's columns, in the order [`LedgerRecord::bind_usage`] binds them; the request
/// log's start with the same.
pub const USAGE_COLUMNS: [&str; 19] = [
    "id",
    "created_at_ms",
    "tenant",
    "api_key",
    "persona",
    "model",
    "route",
    "backend",
    "provider",
    "endpoint",
    "stream",
    "status",
    "error_code",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_nanos",
    "latency_ms",
];

impl LedgerRecord {
    /// Binds [`USAGE_COLUMNS`], borrowing the strings.
    pub fn bind_usage<'q>(
        &'q self,
        query: Query<'q, Any, AnyArguments<'q>>,
    ) -> Query<'q, Any, AnyArguments<'q>> {
        query
            .bind(self.id.as_str())
            .bind(self.created_at_ms)
            .bind(self.tenant.as_str())
            .bind(self.api_key.as_str())
            .bind(self.persona.as_deref())
            .bind(self.model.as_str())
            .bind(self.route.as_str())
            .bind(self.backend.as_str())
            .bind(self.provider.as_str())
            .bind(self.endpoint)
            .bind(i64::from(self.stream))
            .bind(i64::from(self.status))
            .bind(self.error_code.as_deref())
            .bind(saturating(self.input_tokens))
            .bind(saturating(self.cached_input_tokens))
            .bind(saturating(self.cache_write_tokens))
            .bind(saturating(self.output_tokens))
            .bind(self.cost_nanos)
            .bind(saturating(self.latency_ms))
    }
}

/// Counts above `i64::MAX` (impossible, but typed `u64`) are stored as `i64::MAX`.
pub fn saturating(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}
