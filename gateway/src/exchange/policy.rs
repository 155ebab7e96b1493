//! Admission by policy: the tenant's Rego policy and then the route's, evaluated on who asks and
//! what is asked, before any rate limit, budget or backend is touched. A policy denies (any
//! `deny` reason, or a model outside its `models`) or caps the reply (`max_tokens`, written into
//! the request before the estimates and the budget reservation see it). A policy that cannot be
//! evaluated refuses the request: a policy never fails open. Policies see what the guardrails
//! detect in the messages (`input.detected`, counts by kind) and may have kinds replaced before
//! the upstream call (`redact`), and ask the same of the reply (`redact_reply`, `deny_reply`: see
//! [`crate::guardrails::reply`]).

use std::sync::Arc;

use serde_json::{Value, json};

use super::Endpoint;
use crate::error::ApiError;
use crate::guardrails::reply::ReplyGuard;
use crate::guardrails::{self, Action, Hit, Kind, Side};
use crate::metrics::Metrics;
use crate::payload::Governed;
use crate::serving::policies::Compiled;
use crate::serving::runtime::{Caller, Runtime};

/// Evaluates the policies that apply to `request` (a chat in the OpenAI form, persona already
/// resolved, or an embedding), and applies their cap on output tokens and their redactions to it;
/// returns what they ask of the reply, if anything. What the guardrails found is added to `hits`,
/// refused or not.
pub fn enforce(
    runtime: &Runtime,
    metrics: &Metrics,
    caller: &Caller,
    request: &mut dyn Governed,
    endpoint: Endpoint,
    persona: Option<&str>,
    hits: &mut Vec<Hit>,
) -> Result<Option<Arc<ReplyGuard>>, ApiError> {
    if runtime.policies.is_empty() {
        return Ok(None);
    }
    let route =
        runtime.resolve(caller, request.payload().model()).map(|target| target.route.config.name.as_str());
    let mut applying = runtime.policies.applying(&caller.tenant, route).peekable();
    if applying.peek().is_none() {
        return Ok(None);
    }
    let detected = guardrails::detect(request.texts_mut().into_iter().map(|text| text.as_str()));
    guardrails::record(hits, metrics, Side::Request, Action::Detected, &detected);
    let mut input = input(caller, request, route, endpoint, persona);
    input["detected"] = guardrails::as_input(&detected);
    let input = regorus::Value::from(input);
    let mut reply = ReplyGuard::default();
    for compiled in applying {
        let decision = compiled.decide(input.clone()).map_err(|error| {
            tracing::warn!(policy = %compiled.owner, %error, "a policy could not be evaluated; the request is refused");
            ApiError::PolicyDenied(format!("the policy of {} could not be evaluated", compiled.owner))
        })?;
        let decision = serde_json::to_value(decision).unwrap_or_default();
        apply(compiled, &decision, request)?;
        let redacted = guardrails::redact(request.texts_mut(), &kinds(compiled, &decision, "redact")?);
        guardrails::record(hits, metrics, Side::Request, Action::Redacted, &redacted);
        let (redact, deny) =
            (kinds(compiled, &decision, "redact_reply")?, kinds(compiled, &decision, "deny_reply")?);
        reply.add(&compiled.owner, &redact, &deny);
    }
    Ok((!reply.is_empty()).then(|| Arc::new(reply)))
}

/// The detectors a decision's `field` (`redact`, `redact_reply`, `deny_reply`) names.
fn kinds(compiled: &Compiled, decision: &Value, field: &str) -> Result<Vec<Kind>, ApiError> {
    let names = decision[field].as_array().into_iter().flatten();
    names
        .map(|name| {
            name.as_str().and_then(Kind::named).ok_or_else(|| {
                let known: Vec<&str> = Kind::ALL.iter().map(|kind| kind.name()).collect();
                let message = format!(
                    "the policy of {} names {name} in `{field}`, not one of {}",
                    compiled.owner,
                    known.join(", ")
                );
                ApiError::PolicyDenied(message)
            })
        })
        .collect()
}

/// What a policy sees: the caller, the request's shape and its estimates; never the messages.
fn input(
    caller: &Caller,
    request: &dyn Governed,
    route: Option<&str>,
    endpoint: Endpoint,
    persona: Option<&str>,
) -> Value {
    let kind = match (&caller.claims, caller.key_id.starts_with("system:serviceaccount:")) {
        (None, _) => "api_key",
        (Some(_), true) => "service_account",
        (Some(_), false) => "token",
    };
    let request = request.payload();
    json!({
        "tenant": caller.tenant,
        "key": caller.key_id,
        "identity": {"kind": kind, "subject": caller.subject, "claims": caller.claims.as_deref()},
        "model": request.model(),
        "route": route,
        "persona": persona,
        "endpoint": endpoint.as_str(),
        "stream": request.stream(),
        "max_tokens": request.asked_output(),
        "estimated_input_tokens": request.input_tokens_at_most(),
        "user": request.user(),
        "metadata": request.metadata(),
    })
}

/// Refuses what `decision` denies, and caps the request's output at its `max_tokens`.
fn apply(compiled: &Compiled, decision: &Value, request: &mut dyn Governed) -> Result<(), ApiError> {
    let owner = &compiled.owner;
    let reasons: Vec<&str> =
        decision["deny"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    if !reasons.is_empty() {
        return Err(ApiError::PolicyDenied(format!(
            "denied by the policy of {owner}: {}",
            reasons.join("; ")
        )));
    }
    if let Some(models) = decision["models"].as_array() {
        let model = request.payload().model();
        if !models.iter().any(|m| m.as_str() == Some(model)) {
            return Err(ApiError::PolicyDenied(format!(
                "the policy of {owner} does not allow model {model:?}"
            )));
        }
    }
    match &decision["max_tokens"] {
        Value::Null => {}
        cap => {
            let cap = cap.as_u64().filter(|cap| *cap >= 1).ok_or_else(|| {
                ApiError::PolicyDenied(format!(
                    "the policy of {owner} set `max_tokens` to {cap}, not a positive integer"
                ))
            })?;
            request.cap_output(cap);
        }
    }
    Ok(())
}
