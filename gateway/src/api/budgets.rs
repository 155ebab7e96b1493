//! `GET /admin/v1/budgets[?tenant=&limit=&cursor=]`: budgets by name (Budget objects and tenants'
//! default budgets), each with its spend this period from the usage ledger, what remains, the burn
//! rate so far and the forecast at the period's end, for the console's spend against budgets
//! and burn-down. A tenant's detail shows its own the same way.

use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;

use super::params::{self, Params};
use crate::budget::{period_end, period_start};
use crate::error::ApiError;
use crate::ledger::{LedgerError, Scope};
use crate::state::AppState;

/// Budgets per page unless `limit` says otherwise, and at most: each is a ledger query.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 500;
const DAY_MS: f64 = 86_400_000.0;

pub async fn list(State(state): State<AppState>, params: Params) -> Response {
    let (tenant, after, limit) = match page_params(params) {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let runtime = state.runtime.load();
    let mut budgets: Vec<&BudgetConfig> = runtime
        .config
        .budgets
        .iter()
        .map(AsRef::as_ref)
        .filter(|b| tenant.as_ref().is_none_or(|t| b.tenant == *t))
        .filter(|b| after.as_ref().is_none_or(|after| b.name > *after))
        .collect();
    budgets.sort_by(|a, b| a.name.cmp(&b.name));
    let next_cursor = (budgets.len() > limit).then(|| budgets[limit - 1].name.clone());
    budgets.truncate(limit);
    let now = Timestamp::now();
    let mut data = Vec::with_capacity(budgets.len());
    for budget in budgets {
        match status(&state, budget, now).await {
            Ok(status) => data.push(status),
            Err(error) => {
                tracing::error!(%error, "cannot total the ledger");
                return ApiError::Internal("the ledger is unavailable; retry later".into()).into_response();
            }
        }
    }
    Json(json!({"data": data, "next_cursor": next_cursor})).into_response()
}

/// A budget with its spend this period (from the usage ledger, as the status writer reads it),
/// what remains, the burn rate so far and the spend forecast at the period's end at that rate.
pub async fn status(state: &AppState, budget: &BudgetConfig, now: Timestamp) -> Result<Value, LedgerError> {
    let start = period_start(budget.period, now);
    let scope = Scope {
        tenant: &budget.tenant,
        persona: budget.persona.as_deref(),
        api_key: budget.api_key.as_deref(),
    };
    let spent = state.ledger_reader.totals(&scope, start.as_millisecond()).await?.cost_nanos;
    // At least an hour, so that the first minutes of a period do not make a wild rate.
    let elapsed_days = ((now.as_millisecond() - start.as_millisecond()) as f64).max(DAY_MS / 24.0) / DAY_MS;
    let per_day = (spent as f64 / elapsed_days).round();
    let end = period_end(budget.period, now);
    let forecast = end.map(|end| {
        let left_days = (end.as_millisecond() - now.as_millisecond()).max(0) as f64 / DAY_MS;
        NanoUsd(spent.saturating_add((per_day * left_days) as i64)).to_string()
    });
    Ok(json!({
        "name": budget.name,
        "tenant": budget.tenant,
        "scope": budget.scope,
        "persona": budget.persona,
        "api_key": budget.api_key,
        "period": budget.period,
        "enforcement": budget.enforcement,
        "limit_usd": budget.limit.to_string(),
        "spent_usd": NanoUsd(spent).to_string(),
        "remaining_usd": NanoUsd((budget.limit.0 - spent).max(0)).to_string(),
        "burn_usd_per_day": NanoUsd(per_day as i64).to_string(),
        "forecast_usd": forecast,
        "period_start_ms": start.as_millisecond(),
        "period_end_ms": end.map(|end| end.as_millisecond()),
        "exhausted": spent >= budget.limit.0,
    }))
}

/// `tenant`, `cursor` (the last name of the previous page) and `limit`.
fn page_params(params: Params) -> Result<(Option<String>, Option<String>, usize), ApiError> {
    let (mut tenant, mut cursor, mut limit) = (None, None, DEFAULT_PAGE);
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "tenant" => tenant = Some(params::name(&name, value)?),
            // Budget names: a Budget's, or `<tenant>/default`.
            "cursor" => cursor = Some(value),
            "limit" => limit = params::limit(&value, MAX_PAGE)?,
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    Ok((tenant, cursor, limit))
}
