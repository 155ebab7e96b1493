//! What one request leaves behind, written by the ledger's writer to the usage ledger
//! ([`crate::ledger`]) and the request log ([`crate::request_log`]).

use std::borrow::Cow;

use serde::{Deserialize, Serialize};

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
    /// Whether the request reached the backends or the cache, and so has a usage ledger row;
    /// refusals (limits, budgets, the queue) are in the request log only.
    pub billed: bool,
}

/// One attempt on one backend.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attempt {
    pub backend: String,
    /// `ok`, or the error's kind (`server_error`, `timeout`, `connect`, `rate_limited`, ...).
    pub outcome: Cow<'static, str>,
    /// Until the reply (or a stream's first chunk) was in, or the attempt failed.
    pub ms: u64,
}
