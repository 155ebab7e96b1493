//! What admission needs beside the exchange itself: which budgets and rate limits apply to a
//! request, the errors a refusal answers with, and the structured-output schema checked up front.

use std::time::{Duration, SystemTime};

use http::{HeaderName, HeaderValue};
use serde_json::Value;
use switchboard_crds::config::{BudgetConfig, PersonaConfig, TenantConfig};
use switchboard_crds::resources::{BudgetScopeKind, RateLimits};

use crate::budget::Refusal;
use crate::chat_request::ChatRequest;
use crate::error::ApiError;
use crate::ratelimit::{Check, Dimension};
use crate::serving::runtime::Caller;

/// Whether `budget` covers requests of `caller` (persona budgets: its chats with that persona).
pub(super) fn applies(budget: &BudgetConfig, caller: &Caller, persona: Option<&str>) -> bool {
    budget.tenant == caller.tenant
        && match budget.scope {
            BudgetScopeKind::Tenant => true,
            BudgetScopeKind::ApiKey => budget.api_key.as_deref() == Some(caller.key_id.as_str()),
            BudgetScopeKind::Persona => persona.is_some() && budget.persona.as_deref() == persona,
        }
}

/// The rate limits a request of `caller` (to `persona`, if any) must pass: the tenant's, the API
/// key's and the persona's, each for requests and for `tokens`.
pub(crate) fn rate_checks(
    tenant: Option<&TenantConfig>,
    caller: &Caller,
    persona: Option<&PersonaConfig>,
    tokens: u64,
) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(tenant) = tenant {
        out.extend(checks(&format!("tenant/{}", tenant.name), &tenant.rate_limits, tokens));
        let key_limits = tenant.api_keys.iter().find(|k| k.id == caller.key_id).map(|k| &k.rate_limits);
        let issuer_limits = || {
            let issuer = tenant.jwt_issuers.iter().find(|i| i.name == caller.key_id)?;
            issuer.rate_limits.as_ref()
        };
        if let Some(limits) = key_limits.or_else(issuer_limits) {
            out.extend(checks(&format!("key/{}/{}", tenant.name, caller.key_id), limits, tokens));
        }
    }
    if let Some(persona) = persona {
        let scope = format!("persona/{}/{}", persona.tenant, persona.name);
        out.extend(checks(&scope, &persona.rate_limits, tokens));
    }
    out
}

/// The request and token checks of one scope's limits.
fn checks(scope: &str, limits: &RateLimits, tokens: u64) -> Vec<Check> {
    let mut out = Vec::new();
    if let Some(rpm) = limits.requests_per_minute {
        let key = format!("{scope}/rpm");
        out.push(Check { key, dimension: Dimension::Requests, per_minute: u64::from(rpm), cost: 1 });
    }
    if let Some(tpm) = limits.tokens_per_minute {
        out.push(Check {
            key: format!("{scope}/tpm"),
            dimension: Dimension::Tokens,
            per_minute: tpm,
            cost: tokens,
        });
    }
    out
}

pub(crate) fn rate_limited(retry_after: Duration, headers: Vec<(HeaderName, HeaderValue)>) -> ApiError {
    if retry_after == Duration::MAX {
        return ApiError::RateLimited {
            message: "this request needs more tokens than the per-minute limit allows; lower `max_tokens` or shorten the prompt".into(),
            retry_after: None,
            headers,
        };
    }
    let seconds = retry_after.as_millis().div_ceil(1000).max(1);
    ApiError::RateLimited {
        message: format!("rate limit reached; retry in {seconds} s"),
        retry_after: Some(u64::try_from(seconds).unwrap_or(u64::MAX)),
        headers,
    }
}

pub(super) fn budget_refusal(refusal: Refusal) -> ApiError {
    let exceeded = match refusal {
        Refusal::Exceeded(exceeded) => exceeded,
        Refusal::Unavailable { budget } => return ApiError::BudgetUnavailable(budget),
        Refusal::Busy { budget } => return ApiError::BudgetBusy(budget),
    };
    let retry_after = exceeded
        .resets_at
        .and_then(|at| at.duration_since(SystemTime::now()).ok())
        .map(|wait| wait.as_secs() + 1);
    let resets = match retry_after {
        Some(seconds) => format!("; it resets in {seconds} s"),
        None => String::new(),
    };
    ApiError::BudgetExceeded {
        message: format!(
            "budget {} is exhausted: {} of {} USD spent this period, {} USD reserved by requests in flight{resets}",
            exceeded.budget, exceeded.spent, exceeded.limit, exceeded.held
        ),
        retry_after,
    }
}

/// The validator for `response_format: {type: json_schema, json_schema: {schema}}`; a schema
/// that does not compile is the client's error, reported before anything is sent upstream.
pub(super) fn structured_output_schema(
    request: &ChatRequest,
) -> Result<Option<jsonschema::Validator>, ApiError> {
    let Some(format) = request.field("response_format") else { return Ok(None) };
    if format.get("type").and_then(Value::as_str) != Some("json_schema") {
        return Ok(None);
    }
    let schema = format.pointer("/json_schema/schema").ok_or_else(|| {
        ApiError::BadRequest(
            "`response_format.json_schema.schema` is required".into(),
            Some("invalid_schema"),
        )
    })?;
    jsonschema::validator_for(schema).map(Some).map_err(|e| {
        ApiError::BadRequest(
            format!("`response_format.json_schema.schema` is not a valid JSON Schema: {e}"),
            Some("invalid_schema"),
        )
    })
}
