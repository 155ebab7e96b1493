//! `GET /admin/v1/usage`: usage and spend per tenant from the ledger, and `GET /admin/v1/config`:
//! the config being served and whether it is in sync with its source (admin token required).

use std::collections::HashMap;

use axum::extract::rejection::QueryRejection;
use axum::extract::{Query, State};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::error::ApiError;
use crate::state::AppState;

/// `?since_ms=<epoch ms>` limits the window; the default is everything.
pub async fn usage(
    State(state): State<AppState>,
    query: Result<Query<HashMap<String, String>>, QueryRejection>,
) -> Response {
    let query = match query {
        Ok(Query(query)) => query,
        Err(rejection) => return ApiError::BadRequest(rejection.body_text(), None).into_response(),
    };
    let since_ms = match query.get("since_ms").map(|s| s.parse::<i64>()) {
        None => 0,
        Some(Ok(since)) => since,
        Some(Err(_)) => {
            return ApiError::BadRequest("since_ms must be an integer".into(), None).into_response();
        }
    };
    match state.ledger_reader.usage_by_tenant(since_ms).await {
        Ok(tenants) => Json(json!({"tenants": tenants})).into_response(),
        Err(error) => {
            // The database's words stay in the log: they can name tables, hosts and users.
            tracing::error!(%error, "cannot read usage from the ledger");
            ApiError::Internal("the ledger is unavailable; retry later".into()).into_response()
        }
    }
}

/// The served config's version, size, and whether the last config the source offered is the one
/// being served (`in_sync`), or why not.
pub async fn config(State(state): State<AppState>) -> Response {
    let runtime = state.runtime.load();
    let config = &runtime.config;
    let sync = state.runtime.sync();
    Json(json!({
        "version": config.version,
        "ready": state.runtime.is_ready(),
        "in_sync": sync.last_error.is_none(),
        "loaded_at_ms": sync.loaded_at_ms,
        "last_attempt_at_ms": sync.last_attempt_at_ms,
        "last_error": sync.last_error,
        "tenants": config.tenants.len(),
        "routes": config.routes.len(),
        "personas": config.personas.len(),
        "budgets": config.budgets.len(),
        "trace_url_template": state.trace_url_template,
        "gateway": {"version": env!("CARGO_PKG_VERSION"), "flags": state.flags},
    }))
    .into_response()
}
