//! The one way a model request goes through the gateway, whatever API it came in by (Chat
//! Completions, Messages, the MCP `chat` tool), and the gateway's own model calls (persona memory
//! extraction):
//!
//! resolve the persona ([`Turn::resolve`], no database) -> the Rego policies that apply
//! ([`enforce_policies`]: deny, models, a `max_tokens` cap) -> begin ([`Exchange::begin`]: validate,
//! route, the limits and budgets that apply) -> admit ([`Exchange::admit`]: rate limits, cache,
//! budget reservation, queue) -> the persona's context ([`Turn::add_context`]: the database, read
//! only once admitted) -> forward ([`Exchange::forward`]: backends, retries, fallbacks, metering)
//! -> learn (after a served persona turn, off the request path; the gateway's own calls for it
//! are in [`crate::persona_calls`]). Embeddings and legacy
//! completions ([`run_direct`]) take the same steps without the persona's.

use std::sync::Arc;
use std::time::Instant;

use http::HeaderMap;
use serde_json::Value;
use switchboard_crds::resources::MemoryExtraction;

use crate::auth::Authenticated;
use crate::chat_request::{ChatRequest, Invalid};
use crate::db::now_ms;
use crate::error::ApiError;
use crate::exchange::{Admitted, Endpoint, Exchange, Served, Unrouted, enforce_policies, refused_unrouted};
use crate::guardrails::Hit;
use crate::payload::{Governed, Payload};
use crate::persona::turn::Turn;
use crate::persona_calls;
use crate::serving::runtime::{Caller, Runtime};
use crate::state::AppState;

/// A request that began: its exchange (id, model, usage) and what it served, or why not.
pub type Ran = (Arc<Exchange>, Result<Served, ApiError>);

/// Runs one OpenAI-form request: `request` is its body as parsed, or why it could not be. `Err`
/// when it never began (invalid, unknown model): then only its request log row was written (none
/// while the ledger is behind); otherwise every outcome, refusals included, is in the ledger and
/// the metrics.
pub async fn run(
    state: &AppState,
    auth: Authenticated,
    request: Result<Value, ApiError>,
    endpoint: Endpoint,
    headers: &HeaderMap,
) -> Result<Ran, ApiError> {
    let caller = auth.caller.clone();
    let refusals = Refusals { state, caller: &caller, endpoint, headers, started: Instant::now() };
    let mut request = refusals.checked(request, ChatRequest::parse)?;
    let runtime = auth.runtime.clone();
    let mut hits = Vec::new();
    let (exchange, turn) = match begin(state, auth, &mut request, endpoint, headers, &mut hits) {
        Ok(begun) => begun,
        Err(error) => return Err(refusals.refuse(error, Some(&request.model), hits)),
    };
    let served = serve(state, &exchange, &runtime, request, turn.as_ref()).await;
    if let (Ok(_), Some(turn)) = (&served, turn) {
        let state = state.clone();
        tokio::spawn(async move { learn(&state, turn).await });
    }
    Ok((exchange, served))
}

/// Runs a request the chat machinery serves without persona or cache (embeddings, legacy
/// completions), read by `parse`, as [`run`] runs a chat. Policies apply, their redactions to the
/// text inputs; their reply guardrails read chat replies only, so a completion a policy wants
/// guarded is refused (never served unguarded), and an embedding, which holds no text, is served.
pub async fn run_direct<R: Governed>(
    state: &AppState,
    auth: Authenticated,
    request: Result<Value, ApiError>,
    endpoint: Endpoint,
    headers: &HeaderMap,
    parse: fn(Value) -> Result<R, Invalid>,
) -> Result<Ran, ApiError> {
    let (runtime, caller) = (auth.runtime.clone(), auth.caller.clone());
    let refusals = Refusals { state, caller: &caller, endpoint, headers, started: Instant::now() };
    let mut request = refusals.checked(request, parse)?;
    let mut hits = Vec::new();
    let guard = enforce_policies(&runtime, &state.metrics, &caller, &mut request, endpoint, None, &mut hits);
    let begun = guard.and_then(|guard| match (guard, request.payload()) {
        (Some(_), Payload::Completions(_)) => Err(ApiError::PolicyDenied(
            "a policy guards replies, which it cannot read in legacy completions: use /v1/chat/completions"
                .into(),
        )),
        (_, payload) => Exchange::begin(state, auth, payload, endpoint, headers, None, 0),
    });
    let exchange = match begun {
        Ok(exchange) => Arc::new(exchange.guarded(hits, None)),
        Err(error) => return Err(refusals.refuse(error, Some(request.payload().model()), hits)),
    };
    let served = exchange.serve(state, request.payload()).await;
    Ok((exchange, served))
}

/// How a request that never began is refused: with its request log row (and no row while the
/// ledger is behind, so that the backlog stops growing; the metric counts it).
struct Refusals<'a> {
    state: &'a AppState,
    caller: &'a Caller,
    endpoint: Endpoint,
    headers: &'a HeaderMap,
    started: Instant,
}

impl Refusals<'_> {
    /// The request read by `parse`, or its refusal; none while the ledger cannot keep up.
    fn checked<T>(
        &self,
        request: Result<Value, ApiError>,
        parse: fn(Value) -> Result<T, Invalid>,
    ) -> Result<T, ApiError> {
        if let Some(rows) = self.state.ledger.behind() {
            self.state.metrics.refusal(&self.caller.tenant, "ledger_behind");
            return Err(ApiError::LedgerBehind(rows));
        }
        let body = request.map_err(|error| self.refuse(error, None, Vec::new()))?;
        parse(body).map_err(|Invalid { error, model }| self.refuse(error, model.as_deref(), Vec::new()))
    }

    fn refuse(&self, error: ApiError, model: Option<&str>, guardrails: Vec<Hit>) -> ApiError {
        let refusal = Unrouted { error: &error, model, guardrails };
        refused_unrouted(&self.state.ledger, self.caller, self.endpoint, self.headers, self.started, refusal);
        error
    }
}

/// Resolves the persona and begins the exchange: validated, routed, its limits and budgets known.
/// What the policies' guardrails found is in `hits` if it is refused.
fn begin(
    state: &AppState,
    auth: Authenticated,
    request: &mut ChatRequest,
    endpoint: Endpoint,
    headers: &HeaderMap,
    hits: &mut Vec<Hit>,
) -> Result<(Arc<Exchange>, Option<Turn>), ApiError> {
    let turn = Turn::resolve(&auth.runtime, &auth.caller, request, headers)?;
    let persona_name = turn.as_ref().map(|t| t.persona.name.as_str());
    let (runtime, metrics, caller) = (&auth.runtime, &state.metrics, &auth.caller);
    let reply_guard = enforce_policies(runtime, metrics, caller, request, endpoint, persona_name, hits)?;
    let (persona, context_bytes) =
        turn.as_ref().map_or((None, 0), |t| (Some(t.persona.as_ref()), t.context_bound()));
    let chat = Payload::Chat(request);
    let exchange = Exchange::begin(state, auth, chat, endpoint, headers, persona, context_bytes)?
        .guarded(std::mem::take(hits), reply_guard);
    Ok((Arc::new(exchange), turn))
}

async fn serve(
    state: &AppState,
    exchange: &Arc<Exchange>,
    runtime: &Runtime,
    mut request: ChatRequest,
    turn: Option<&Turn>,
) -> Result<Served, ApiError> {
    let headers = match exchange.admit(state).await? {
        Admitted::Cached(served) => return Ok(served),
        Admitted::Forward(headers) => headers,
    };
    if let Some(turn) = turn {
        let meaning = match turn.recalls() {
            true => persona_calls::query_meaning(state, &turn.caller, &turn.persona, &turn.message).await,
            false => None,
        };
        let added =
            turn.add_context(&state.personas, runtime, &mut request, meaning.as_ref(), now_ms()).await;
        exchange.count_context(added);
    }
    exchange.forward(state, Payload::Chat(&request), headers).await
}

/// After a persona answered: its mood and bond move, what the user's message says worth
/// remembering is stored (found by the rules, or by the persona's model, falling back to the
/// rules when the model's answer is unusable) and embedded, and the conversation is summarised
/// when its turn has come.
async fn learn(state: &AppState, turn: Turn) {
    let now = now_ms();
    turn.feel(&state.personas, now).await;
    if let (Some(extraction), Some(subject)) = (turn.extraction(), &turn.subject) {
        let found = match extraction {
            MemoryExtraction::Model => persona_calls::extract(state, &turn).await.unwrap_or_else(|problem| {
                tracing::warn!(persona = %turn.persona.name, %problem, "model memory extraction failed; using the rules");
                turn.memories_by_rules()
            }),
            _ => turn.memories_by_rules(),
        };
        turn.remember(&state.personas, found, now).await;
        persona_calls::embed_new(state, &turn.caller, &turn.persona, subject).await;
    }
    persona_calls::summarize_if_due(state, &turn).await;
}
