//! The request log over HTTP: `GET /admin/v1/requests[/{id}]` (admin token, every tenant) and
//! `GET /v1/usage/requests[/{id}]` (a tenant key, that tenant's requests only). Pages are newest
//! first and follow `next_cursor`.

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Json, Response};

use super::params::{self, Params};
use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::request_log::{Filter, RequestLog};
use crate::state::AppState;

/// Rows per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 50;

pub async fn admin_list(State(state): State<AppState>, params: Params) -> Response {
    match filter(params, None) {
        Ok(filter) => page(&state.request_log, &filter).await,
        Err(error) => error.into_response(),
    }
}

pub async fn admin_get(State(state): State<AppState>, Path(id): Path<String>) -> Response {
    one(&state.request_log, &id, None).await
}

pub async fn tenant_list(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    params: Params,
) -> Response {
    match filter(params, Some(&auth.caller.tenant)) {
        Ok(filter) => page(&state.request_log, &filter).await,
        Err(error) => error.into_response(),
    }
}

pub async fn tenant_get(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Path(id): Path<String>,
) -> Response {
    one(&state.request_log, &id, Some(&auth.caller.tenant)).await
}

async fn page(log: &RequestLog, filter: &Filter) -> Response {
    match log.page(filter).await {
        Ok(page) => Json(page).into_response(),
        Err(error) => params::unavailable("request log", &error),
    }
}

async fn one(log: &RequestLog, id: &str, tenant: Option<&str>) -> Response {
    match log.get(id, tenant).await {
        Ok(Some(row)) => Json(row).into_response(),
        Ok(None) => ApiError::NotFound(format!("no request {id:?} in the request log")).into_response(),
        Err(error) => params::unavailable("request log", &error),
    }
}

/// The filter the query string asks for. `own_tenant`: the caller's tenant, which a tenant key
/// cannot look past.
fn filter(params: Params, own_tenant: Option<&str>) -> Result<Filter, ApiError> {
    let mut filter = Filter { limit: DEFAULT_PAGE, ..Filter::default() };
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "tenant" => filter.tenant = Some(params::name(&name, value)?),
            "model" => filter.model = Some(params::name(&name, value)?),
            "persona" => filter.persona = Some(params::name(&name, value)?),
            "route" => filter.route = Some(params::name(&name, value)?),
            "status" => filter.status = Some(value.parse().map_err(ApiError::invalid_request)?),
            "since_ms" => filter.since_ms = Some(params::integer(&name, &value)?),
            "until_ms" => filter.until_ms = Some(params::integer(&name, &value)?),
            "error" => filter.error = Some(error_text(value)?),
            "cursor" => filter.before = Some(value.parse().map_err(ApiError::invalid_request)?),
            "limit" => filter.limit = params::limit(&value, crate::request_log::MAX_PAGE)?,
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    filter.tenant = params::tenant(filter.tenant, own_tenant, "requests")?;
    Ok(filter)
}

/// The text an `error` filter looks for in error codes: at most 64 characters, no control ones.
fn error_text(value: String) -> Result<String, ApiError> {
    if value.is_empty() || value.chars().count() > 64 || value.chars().any(char::is_control) {
        return Err(ApiError::invalid_request(
            "`error` must be 1 to 64 characters without control characters".into(),
        ));
    }
    Ok(value.to_lowercase())
}
