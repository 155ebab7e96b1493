//! Budget objects through the admin API, as the console makes them: `PUT /admin/v1/budgets/{name}`
//! (a new Budget, or a new spec for one the console made) and `DELETE /admin/v1/budgets/{name}`.
//! The body is the Budget's `spec` as its manifest writes it, checked as the CRD's schema would
//! and against the served config (its tenant, persona or key must exist, or the config that
//! names them would be refused), then written and answered like the other changes
//! ([`super::tenant_changes`]). Standalone, platform admins only; in a cluster, as the signed-in
//! person, so RBAC on `budgets.switchboard.dev` decides.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::{Value, json};
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::{BudgetEnforcement, BudgetFailureMode, BudgetPeriod, BudgetScopeKind};

use super::tenant_changes::{answered, parse, served};
use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::serving::runtime::Runtime;
use crate::state::AppState;

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Spec {
    scope: Scope,
    limit_usd: String,
    period: BudgetPeriod,
    #[serde(default)]
    enforcement: BudgetEnforcement,
    #[serde(default = "default_warn")]
    warn_at_percent: u8,
    #[serde(default)]
    failure_mode: BudgetFailureMode,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
struct Scope {
    kind: BudgetScopeKind,
    tenant: String,
    persona: Option<String>,
    api_key: Option<String>,
}

fn default_warn() -> u8 {
    80
}

pub async fn put(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(name): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let spec: Spec = parse(&headers, body)?;
        let runtime = state.runtime.load();
        let limit = checked(&spec, &runtime)?;
        let value = json!({
            "scope": {"kind": spec.scope.kind, "tenant": spec.scope.tenant, "persona": spec.scope.persona,
                "apiKey": spec.scope.api_key},
            "limitUsd": spec.limit_usd, "period": spec.period, "enforcement": spec.enforcement,
            "warnAtPercent": spec.warn_at_percent, "failureMode": spec.failure_mode,
        });
        let value = without_nulls(value);
        let exists = budget(&runtime, &name).is_some();
        let edit = state.edits.put_budget(caller.author(), &name, &value, exists);
        let shows = |runtime: &Runtime| {
            budget(runtime, &name).is_some_and(|b| {
                (b.limit, b.period, b.enforcement, b.warn_at_percent)
                    == (limit, spec.period, spec.enforcement, spec.warn_at_percent)
                    && (&b.tenant, &b.persona, &b.api_key)
                        == (&spec.scope.tenant, &spec.scope.persona, &spec.scope.api_key)
            })
        };
        let served = served(&state, edit, shows).await?;
        let status = answered(served, StatusCode::OK);
        Ok::<_, ApiError>((status, Json(json!({"name": name, "spec": value}))))
    };
    answer.await.into_response()
}

pub async fn delete(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(name): Path<String>,
) -> Response {
    let answer = async {
        let exists = budget(&state.runtime.load(), &name).is_some();
        let edit = state.edits.delete_budget(caller.author(), &name, exists);
        let served = served(&state, edit, |runtime| budget(runtime, &name).is_none()).await?;
        Ok::<_, ApiError>(answered(served, StatusCode::NO_CONTENT))
    };
    answer.await.into_response()
}

/// The Budget `name` as served (a tenant's default budget is no Budget object).
fn budget<'a>(runtime: &'a Runtime, name: &str) -> Option<&'a BudgetConfig> {
    runtime.config.budgets.iter().map(AsRef::as_ref).find(|b| b.name == name && !b.is_tenant_default())
}

/// A budget's limit: a positive decimal amount of US dollars.
pub(super) fn positive_usd(text: &str) -> Result<NanoUsd, ApiError> {
    NanoUsd::parse(text).ok().filter(|limit| limit.0 > 0).ok_or_else(|| {
        ApiError::invalid_request(format!(
            "limitUsd must be a positive decimal such as \"25\" or \"12.50\", not {text:?}"
        ))
    })
}

/// The limit, once the spec is what the CRD's schema allows and names what is served: a config
/// naming a tenant, persona or key that is not there would be refused whole.
fn checked(spec: &Spec, runtime: &Runtime) -> Result<NanoUsd, ApiError> {
    let limit = positive_usd(&spec.limit_usd)?;
    if !(1..=100).contains(&spec.warn_at_percent) {
        return Err(ApiError::invalid_request(format!(
            "warnAtPercent must be from 1 to 100, not {}",
            spec.warn_at_percent
        )));
    }
    let scope = &spec.scope;
    let tenant = runtime
        .tenant(&scope.tenant)
        .ok_or_else(|| ApiError::NotFound(format!("no tenant {:?}", scope.tenant)))?;
    match (scope.kind, &scope.persona, &scope.api_key) {
        (BudgetScopeKind::Tenant, None, None) => Ok(limit),
        (BudgetScopeKind::Persona, Some(persona), None) => match runtime.config.personas.get(persona) {
            Some(found) if found.tenant == tenant.name => Ok(limit),
            _ => Err(ApiError::invalid_request(format!("tenant {} has no persona {persona:?}", tenant.name))),
        },
        (BudgetScopeKind::ApiKey, None, Some(key)) if tenant.api_keys.iter().any(|k| k.id == *key) => {
            Ok(limit)
        }
        (BudgetScopeKind::ApiKey, None, Some(key)) => {
            Err(ApiError::invalid_request(format!("tenant {} has no API key named {key:?}", tenant.name)))
        }
        (kind, _, _) => Err(ApiError::invalid_request(format!(
            "scope.kind {kind:?} takes {}",
            match kind {
                BudgetScopeKind::Tenant => "neither scope.persona nor scope.apiKey",
                BudgetScopeKind::Persona => "scope.persona (and no scope.apiKey)",
                BudgetScopeKind::ApiKey => "scope.apiKey (and no scope.persona)",
            }
        ))),
    }
}

/// The spec without its absent fields, as a manifest would leave them out.
fn without_nulls(mut value: Value) -> Value {
    if let Some(scope) = value.get_mut("scope").and_then(Value::as_object_mut) {
        scope.retain(|_, v| !v.is_null());
    }
    value
}
