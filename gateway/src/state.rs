//! State shared by every handler, created once at startup.

use crate::stats::Stats;
use crate::telemetry::Tracer;
use std::ops::Deref;
use std::sync::Arc;

use crate::audit::Audit;
use crate::budget::Budgets;
use crate::cache::ResponseCache;
use crate::drain::Deadline;
use crate::identity::TokenVerifier;
use crate::ledger::{Ledger, LedgerSender};
use crate::mcp::host::HostPolicy;
use crate::metrics::Metrics;
use crate::persona::Personas;
use crate::queue::Scheduler;
use crate::ratelimit::RateLimiter;
use crate::request_log::RequestLog;
use crate::serving::conditions::Conditions;
use crate::serving::edits::Edits;
use crate::serving::live::LiveRuntime;
use crate::signin::SignIn;
use crate::stored_responses::StoredResponses;

/// Cheap to clone: one reference count. Axum clones the state for every extractor and middleware
/// of every request, so a struct of a dozen handles cloned field by field showed up in profiles.
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl AppState {
    pub fn new(shared: Shared) -> AppState {
        AppState(Arc::new(shared))
    }
}

impl Deref for AppState {
    type Target = Shared;

    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// What every handler shares: handles to the runtime, stores and limiters.
pub struct Shared {
    /// The serving runtime, swapped atomically on reload.
    pub runtime: LiveRuntime,
    pub ledger: LedgerSender,
    /// For read queries (admin usage).
    pub ledger_reader: Ledger,
    /// Request statistics and costs, rolled up from the request log (its rows come through `ledger`).
    pub stats: Stats,
    /// The request log, for its queries (its rows come through `ledger`).
    pub request_log: RequestLog,
    pub metrics: Metrics,
    pub limits: Limits,
    /// Concurrency slots and the queue in front of them.
    pub scheduler: Scheduler,
    pub cache: ResponseCache,
    /// Request and token rate limits (in process, or shared through Redis).
    pub limiter: RateLimiter,
    /// Budget counters (in process, or shared in PostgreSQL).
    pub budgets: Budgets,
    /// People signing in to the admin API (`None`: only the admin token).
    pub sign_in: Option<Arc<SignIn>>,
    /// The audit trail: refused credentials, administrative requests.
    pub audit: Audit,
    /// Checks bearer JWTs (identity providers' and ServiceAccount tokens), with their keys cached.
    pub tokens: TokenVerifier,
    /// The URL of `/mcp` MCP tokens must be for (`None`: each request's own).
    pub mcp_resource: Option<String>,
    /// The Host names `/mcp` accepts (DNS-rebinding protection).
    pub mcp_hosts: HostPolicy,
    /// Persona memories, moods and relationships.
    pub personas: Personas,
    /// Responses API objects kept for `GET`, `DELETE` and `previous_response_id`.
    pub responses: StoredResponses,
    /// OpenTelemetry spans (nothing when tracing is off).
    pub tracer: Tracer,
    /// When in-flight requests must end during a graceful stop.
    pub drain: Deadline,
    /// SHA-256 of the admin token, if admin endpoints are enabled.
    pub admin_token_sha256: Option<[u8; 32]>,
    /// The flags the gateway runs with, as the admin API shows them (never a secret).
    pub flags: serde_json::Value,
    /// Where the console links a request's trace (`--trace-url-template`).
    pub trace_url_template: Option<String>,
    /// Where the admin API's changes are written: the config folder, or the cluster.
    pub edits: Edits,
    /// The operator's conditions on each resource (in a cluster only).
    pub conditions: Option<Conditions>,
}

/// Request limits.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    pub max_request_bytes: usize,
    /// How long a request body may take to arrive.
    pub body_timeout: std::time::Duration,
}
