//! State shared by every handler, created once at startup.

use crate::budget::Budgets;
use crate::cache::ResponseCache;
use crate::ledger::{Ledger, LedgerSender};
use crate::live::LiveRuntime;
use crate::mcp::host::HostPolicy;
use crate::metrics::Metrics;
use crate::persona::Personas;
use crate::queue::Scheduler;
use crate::ratelimit::RateLimiter;

/// Cheap to clone: every field is a handle.
#[derive(Clone)]
pub struct AppState {
    /// The serving runtime, swapped atomically on reload.
    pub runtime: LiveRuntime,
    pub ledger: LedgerSender,
    /// For read queries (admin usage).
    pub ledger_reader: Ledger,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Concurrency slots and the queue in front of them.
    pub scheduler: Scheduler,
    pub cache: ResponseCache,
    /// Request and token rate limits (in process, or shared through Redis).
    pub limiter: RateLimiter,
    /// Budget counters (in process, or shared in PostgreSQL).
    pub budgets: Budgets,
    /// The Host names `/mcp` accepts (DNS-rebinding protection).
    pub mcp_hosts: HostPolicy,
    /// Persona memories, moods and relationships.
    pub personas: Personas,
    /// SHA-256 of the admin token, if admin endpoints are enabled.
    pub admin_token_sha256: Option<[u8; 32]>,
}

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
}
