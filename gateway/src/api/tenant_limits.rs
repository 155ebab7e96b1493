//! A tenant's limits and spend cap through the admin API, as the console sets them:
//! `PUT /admin/v1/tenants/{name}/rate_limits` (the Tenant's `spec.rateLimits`, `{}` for none) and
//! `PUT`/`DELETE /admin/v1/tenants/{name}/default_budget` (its `spec.defaultBudget`). Bodies are
//! the Tenant's own fields as its manifest writes them (and the tenant's detail shows its
//! limits), checked here as the CRD's schema would; written and answered like the other
//! changes ([`super::tenant_changes`]).

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::resources::{BudgetEnforcement, BudgetPeriod, BudgetScopeKind, RateLimits};

use super::budget_changes::positive_usd;
use super::tenant_changes::{answered, known, parse, served};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::serving::runtime::Runtime;
use crate::state::AppState;

/// The CRD's bounds: the limiter counts requests and tokens per minute in microseconds.
const MAX_PER_MINUTE: u64 = 60_000_000;
const MAX_CONCURRENT: u64 = 1_000_000;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Limits {
    requests_per_minute: Option<u64>,
    tokens_per_minute: Option<u64>,
    max_concurrent: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct DefaultBudget {
    limit_usd: String,
    period: BudgetPeriod,
    #[serde(default)]
    enforcement: BudgetEnforcement,
}

pub async fn put_rate_limits(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        known(&state, &tenant)?;
        let limits = checked(parse(&headers, body)?)?;
        let value = (limits != RateLimits::default()).then(|| json!(limits));
        let edit = state.edits.set_spec(caller.author(), &tenant, "rateLimits", value);
        let shows = |runtime: &Runtime| runtime.tenant(&tenant).is_some_and(|t| t.rate_limits == limits);
        let served = served(&state, edit, shows).await?;
        Ok::<_, ApiError>((
            answered(served, StatusCode::OK),
            Json(json!({"tenant": tenant, "rate_limits": limits})),
        ))
    };
    answer.await.into_response()
}

pub async fn put_default_budget(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        known(&state, &tenant)?;
        let budget: DefaultBudget = parse(&headers, body)?;
        let limit = positive_usd(&budget.limit_usd)?;
        overridden(&state.runtime.load(), &tenant)?;
        let value =
            json!({"limitUsd": budget.limit_usd, "period": budget.period, "enforcement": budget.enforcement});
        let edit = state.edits.set_spec(caller.author(), &tenant, "defaultBudget", Some(value.clone()));
        let shows = |runtime: &Runtime| {
            default_budget(runtime, &tenant).is_some_and(|b| {
                (b.limit, b.period, b.enforcement) == (limit, budget.period, budget.enforcement)
            })
        };
        let served = served(&state, edit, shows).await?;
        Ok::<_, ApiError>((
            answered(served, StatusCode::OK),
            Json(json!({"tenant": tenant, "default_budget": value})),
        ))
    };
    answer.await.into_response()
}

pub async fn delete_default_budget(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
) -> Response {
    let answer = async {
        known(&state, &tenant)?;
        let edit = state.edits.set_spec(caller.author(), &tenant, "defaultBudget", None);
        let served = served(&state, edit, |runtime| default_budget(runtime, &tenant).is_none()).await?;
        Ok::<_, ApiError>(answered(served, StatusCode::NO_CONTENT))
    };
    answer.await.into_response()
}

/// The limits, range-checked as the Tenant's schema does.
fn checked(limits: Limits) -> Result<RateLimits, ApiError> {
    let within = |name: &str, value: Option<u64>, max: u64| match value {
        Some(n) if n == 0 || n > max => {
            Err(ApiError::invalid_request(format!("{name} must be from 1 to {max}, not {n}")))
        }
        _ => Ok(value),
    };
    let narrow = |name: &str, value: Option<u64>, max: u64| {
        within(name, value, max).map(|v| v.map(|n| u32::try_from(n).unwrap_or(u32::MAX)))
    };
    Ok(RateLimits {
        requests_per_minute: narrow("requestsPerMinute", limits.requests_per_minute, MAX_PER_MINUTE)?,
        tokens_per_minute: within("tokensPerMinute", limits.tokens_per_minute, MAX_PER_MINUTE)?,
        max_concurrent: narrow("maxConcurrent", limits.max_concurrent, MAX_CONCURRENT)?,
    })
}

/// The tenant's default budget as served.
fn default_budget<'a>(runtime: &'a Runtime, tenant: &str) -> Option<&'a BudgetConfig> {
    runtime.budgets_of(tenant).iter().map(AsRef::as_ref).find(|b| b.is_tenant_default())
}

/// Refuses a default budget that a Budget of the tenant's would override (it would never apply).
fn overridden(runtime: &Runtime, tenant: &str) -> Result<(), ApiError> {
    let budget = runtime
        .budgets_of(tenant)
        .iter()
        .find(|b| b.scope == BudgetScopeKind::Tenant && !b.is_tenant_default());
    match budget {
        Some(budget) => Err(ApiError::Conflict(format!(
            "Budget {} applies to tenant {tenant}, so a default budget would not: change that Budget",
            budget.name
        ))),
        None => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_checked_as_the_schema_does() {
        let limits = |rpm, tpm, concurrent| Limits {
            requests_per_minute: rpm,
            tokens_per_minute: tpm,
            max_concurrent: concurrent,
        };
        let ok = checked(limits(Some(600), Some(60_000_000), None)).unwrap();
        assert_eq!(
            (ok.requests_per_minute, ok.tokens_per_minute, ok.max_concurrent),
            (Some(600), Some(60_000_000), None)
        );
        for wrong in [
            limits(Some(0), None, None),
            limits(None, Some(60_000_001), None),
            limits(None, None, Some(u64::MAX)),
        ] {
            assert!(checked(wrong).is_err());
        }
        assert_eq!(checked(limits(None, None, None)).unwrap(), RateLimits::default());
    }
}
