//! The request log over HTTP: `GET /admin/v1/requests[/{id}]` (admin token, every tenant) and
//! `GET /v1/usage/requests[/{id}]` (a tenant key, that tenant's requests only). Pages are newest
//! first and follow `next_cursor`.

use std::collections::HashMap;

use axum::Extension;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Json, Response};

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::request_log::{Filter, RequestLog};
use crate::state::AppState;

/// Rows per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 50;

type Params = Result<Query<HashMap<String, String>>, QueryRejection>;

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
        Err(error) => unavailable(&error),
    }
}

async fn one(log: &RequestLog, id: &str, tenant: Option<&str>) -> Response {
    match log.get(id, tenant).await {
        Ok(Some(row)) => Json(row).into_response(),
        Ok(None) => ApiError::NotFound(format!("no request {id:?} in the request log")).into_response(),
        Err(error) => unavailable(&error),
    }
}

/// The database's words stay in the log: they can name tables, hosts and users.
fn unavailable(error: &sqlx::Error) -> Response {
    tracing::error!(%error, "cannot read the request log");
    ApiError::Internal("the request log is unavailable; retry later".into()).into_response()
}

/// The longest name a filter compares with (resource and model names are far shorter).
const MAX_NAME_BYTES: usize = 512;

/// A name to filter by: no control characters (PostgreSQL refuses NUL in text, and no name has
/// one) and a bounded length.
fn name_value(parameter: &str, value: String) -> Result<String, ApiError> {
    if value.len() > MAX_NAME_BYTES || value.chars().any(char::is_control) {
        let message =
            format!("{parameter} must be a name: at most {MAX_NAME_BYTES} bytes, no control characters");
        return Err(ApiError::BadRequest(message, Some("invalid_request")));
    }
    Ok(value)
}

/// The filter the query string asks for. `own_tenant`: the caller's tenant, which a tenant key
/// cannot look past.
fn filter(params: Params, own_tenant: Option<&str>) -> Result<Filter, ApiError> {
    let Query(params) = params.map_err(|rejection| ApiError::BadRequest(rejection.body_text(), None))?;
    let bad = |message: String| ApiError::BadRequest(message, Some("invalid_request"));
    let mut filter = Filter { limit: DEFAULT_PAGE, ..Filter::default() };
    for (name, value) in params {
        let number = |what: &str| value.parse::<i64>().map_err(|_| bad(format!("{what} must be an integer")));
        match name.as_str() {
            "tenant" => filter.tenant = Some(name_value(&name, value)?),
            "model" => filter.model = Some(name_value(&name, value)?),
            "persona" => filter.persona = Some(name_value(&name, value)?),
            "route" => filter.route = Some(name_value(&name, value)?),
            "status" => filter.status = Some(value.parse().map_err(bad)?),
            "since_ms" => filter.since_ms = Some(number("since_ms")?),
            "until_ms" => filter.until_ms = Some(number("until_ms")?),
            "cursor" => filter.before = Some(value.parse().map_err(bad)?),
            "limit" => {
                filter.limit = value
                    .parse()
                    .ok()
                    .filter(|limit| (1..=crate::request_log::MAX_PAGE).contains(limit))
                    .ok_or_else(|| bad(format!("limit must be 1 to {}", crate::request_log::MAX_PAGE)))?;
            }
            other => return Err(bad(format!("unknown parameter `{other}`"))),
        }
    }
    if let Some(own) = own_tenant {
        if filter.tenant.as_deref().is_some_and(|asked| asked != own) {
            return Err(ApiError::Forbidden("a tenant key reads its own tenant's requests only".into()));
        }
        filter.tenant = Some(own.to_owned());
    }
    Ok(filter)
}
