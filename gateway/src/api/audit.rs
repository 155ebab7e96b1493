//! `GET /admin/v1/audit`: the audit trail, newest first, filtered by action, actor and time, in
//! pages that follow `next_cursor`.

use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};

use super::params::{self, Params};
use crate::audit::{Filter, MAX_PAGE};
use crate::error::ApiError;
use crate::request_log::Cursor;
use crate::state::AppState;

/// Events per page unless `limit` says otherwise.
const DEFAULT_PAGE: u32 = 100;

pub async fn list(State(state): State<AppState>, params: Params) -> Response {
    let filter = match filter(params) {
        Ok(filter) => filter,
        Err(error) => return error.into_response(),
    };
    match state.audit.page(&filter).await {
        Ok(page) => Json(page).into_response(),
        Err(error) => params::unavailable("audit trail", &error),
    }
}

fn filter(params: Params) -> Result<Filter, ApiError> {
    let mut filter = Filter { limit: DEFAULT_PAGE, ..Filter::default() };
    for (name, value) in params::parse(params)? {
        match name.as_str() {
            "action" => filter.action = Some(params::name(&name, value)?),
            "actor" => filter.actor = Some(params::name(&name, value)?),
            "since_ms" => filter.since_ms = Some(params::integer(&name, &value)?),
            "cursor" => filter.before = Some(value.parse::<Cursor>().map_err(ApiError::invalid_request)?.0),
            "limit" => filter.limit = params::limit(&value, MAX_PAGE)?,
            other => return Err(ApiError::invalid_request(format!("unknown parameter `{other}`"))),
        }
    }
    Ok(filter)
}
