//! Tenants as a platform team looks at them: `GET /admin/v1/tenants` (a page of tenants with their
//! limits, key names and usage this month) and `GET /admin/v1/tenants/{name}` (the same with each
//! budget's spend, remaining amount, burn rate and forecast, the personas and usage by model);
//! `GET /v1/usage/tenant` is the detail of the caller's own tenant. Never a key's hash or value.

use std::ops::Bound;
use std::sync::Arc;

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Json, Response};
use k8s_openapi::jiff::Timestamp;
use serde_json::{Value, json};
use switchboard_crds::Tenant;
use switchboard_crds::config::TenantConfig;
use switchboard_crds::resources::BudgetPeriod;

use super::budgets;
use super::params::{self, Params};
use crate::auth::{AdminCaller, Authenticated};
use crate::budget::period_start;
use crate::error::ApiError;
use crate::serving::conditions::Listed;
use crate::serving::runtime::{Caller, Runtime};
use crate::state::AppState;
use crate::stats::GroupBy;

/// Tenants per page unless `limit` says otherwise, and at most.
const DEFAULT_PAGE: usize = 100;
const MAX_PAGE: usize = 1_000;

pub async fn list(State(state): State<AppState>, params: Params) -> Response {
    let (prefix, after, limit) = match page_params(params) {
        Ok(page) => page,
        Err(error) => return error.into_response(),
    };
    let runtime = state.runtime.load();
    let mut page: Vec<&Arc<TenantConfig>> = runtime
        .config
        .tenants
        .range::<String, _>((after.map_or(Bound::Unbounded, Bound::Excluded), Bound::Unbounded))
        .map(|(_, tenant)| tenant)
        .filter(|tenant| tenant.name.starts_with(&prefix))
        .take(limit + 1)
        .collect();
    let next_cursor = (page.len() > limit).then(|| page[limit - 1].name.clone());
    page.truncate(limit);
    let month = period_start(BudgetPeriod::Monthly, Timestamp::now()).as_millisecond();
    let names = page.iter().map(|t| t.name.clone()).collect();
    let usage = match state.stats.day_totals(month, GroupBy::Tenant, names).await {
        Ok(usage) => usage,
        Err(error) => return params::unavailable("request statistics", &error),
    };
    let data: Vec<Value> = page
        .iter()
        .map(|tenant| {
            let mut item = summary(&runtime, tenant);
            item["usage_this_month"] = usage.get(&tenant.name).map_or(Value::Null, month_usage);
            item
        })
        .collect();
    Json(json!({"data": data, "next_cursor": next_cursor})).into_response()
}

/// The detail, and whether the admin API may change the tenant (roles permitting), or why not.
pub async fn admin_get(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(name): Path<String>,
) -> Response {
    let mut item = match detail(&state, &name).await {
        Ok(item) => item,
        Err(refusal) => return refusal,
    };
    let read_only = match state.edits.read_only(caller.author(), &name).await {
        Ok(read_only) => read_only,
        Err(error) => Some(format!("Cannot tell whether it may be changed here: {error}")),
    };
    item["changeable"] = json!(read_only.is_none());
    item["read_only_reason"] = json!(read_only);
    let (conditions, error) = Listed::one::<Tenant>(state.conditions.as_ref(), &name).await;
    item["conditions"] = conditions;
    item["conditions_error"] = json!(error);
    Json(item).into_response()
}

pub async fn tenant_get(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
) -> Response {
    detail(&state, &auth.caller.tenant)
        .await
        .map_or_else(|refusal| refusal, |item| Json(item).into_response())
}

async fn detail(state: &AppState, name: &str) -> Result<Value, Response> {
    let runtime = state.runtime.load();
    let Some(tenant) = runtime.config.tenants.get(name) else {
        return Err(ApiError::NotFound(format!("no tenant {name:?}")).into_response());
    };
    let now = Timestamp::now();
    let mut budgets = Vec::new();
    for budget in runtime.budgets_of(name) {
        match budgets::status(state, budget, now).await {
            Ok(status) => budgets.push(status),
            Err(error) => {
                tracing::error!(%error, "cannot total the ledger");
                return Err(
                    ApiError::Internal("the ledger is unavailable; retry later".into()).into_response()
                );
            }
        }
    }
    let month = period_start(BudgetPeriod::Monthly, now).as_millisecond();
    let caller = Caller { tenant: name.to_owned(), key_id: String::new(), subject: None, claims: None };
    let models: Vec<String> = runtime.models_for(&caller).into_iter().map(str::to_owned).collect();
    let (usage, by_model) = match (
        state.stats.day_totals(month, GroupBy::Tenant, vec![name.to_owned()]).await,
        state.stats.series(&by_model_query(name, month, now.as_millisecond())).await,
    ) {
        (Ok(usage), Ok(by_model)) => (usage, by_model),
        (Err(error), _) | (_, Err(error)) => return Err(params::unavailable("request statistics", &error)),
    };
    let personas: Vec<Value> = runtime
        .config
        .personas
        .values()
        .filter(|p| p.tenant == name)
        .map(|p| {
            json!({"name": p.name, "display_name": p.display_name, "model": p.model,
                        "memory": p.memory.enabled, "shared_with_tenants": p.shared_with_tenants})
        })
        .collect();
    let mut item = summary(&runtime, tenant);
    item["budgets"] = Value::Array(budgets);
    item["personas"] = Value::Array(personas);
    item["models"] = json!(models);
    item["usage_this_month"] = usage.get(name).map_or(Value::Null, month_usage);
    item["usage_this_month_by_model"] = Value::Array(
        by_model
            .iter()
            .map(|s| {
                let mut usage = month_usage(&s.total);
                usage["model"] = json!(s.key);
                usage
            })
            .collect(),
    );
    Ok(item)
}

/// What the list and the detail both show.
fn summary(runtime: &Runtime, tenant: &TenantConfig) -> Value {
    let keys: Vec<Value> =
        tenant.api_keys.iter().map(|k| json!({"name": k.id, "rate_limits": k.rate_limits})).collect();
    let issuers: Vec<Value> = tenant
        .jwt_issuers
        .iter()
        .map(|i| {
            json!({"name": i.name, "issuer": i.issuer, "audiences": i.audiences, "required_claims": i.required_claims,
                "subject_claim": i.subject_claim, "rate_limits": i.rate_limits})
        })
        .collect();
    json!({
        "name": tenant.name,
        "display_name": tenant.display_name,
        "namespaces": tenant.namespaces,
        "api_keys": keys,
        "jwt_issuers": issuers,
        "rate_limits": tenant.rate_limits,
        "priority": tenant.priority,
        "allowed_routes": tenant.allowed_routes,
        "budgets_count": runtime.budgets_of(&tenant.name).len(),
        "personas_count": runtime.config.personas.values().filter(|p| p.tenant == tenant.name).count(),
    })
}

fn month_usage(point: &crate::stats::Point) -> Value {
    json!({
        "requests": point.requests,
        "errors": point.errors,
        "input_tokens": point.input_tokens,
        "cached_input_tokens": point.cached_input_tokens,
        "cache_write_tokens": point.cache_write_tokens,
        "output_tokens": point.output_tokens,
        "cost_nanos": point.cost_nanos,
        "cost_usd": point.cost_usd,
    })
}

fn by_model_query(tenant: &str, since_ms: i64, until_ms: i64) -> crate::stats::StatsQuery {
    let range = (since_ms, until_ms.max(since_ms + 1));
    crate::stats::StatsQuery {
        tenant: Some(tenant.to_owned()),
        limit: 100,
        ..crate::stats::StatsQuery::new(range.0, range.1, crate::stats::Resolution::Day, GroupBy::Model)
    }
}

/// `prefix`, `cursor` (the last name of the previous page) and `limit`.
fn page_params(params: Params) -> Result<(String, Option<String>, usize), ApiError> {
    let (mut prefix, mut cursor, mut limit) = (String::new(), None, DEFAULT_PAGE);
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "prefix" => prefix = params::name(&name, value)?,
            "cursor" => cursor = Some(params::name(&name, value)?),
            "limit" => limit = params::limit(&value, MAX_PAGE)?,
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    Ok((prefix, cursor, limit))
}
