//! `GET /admin/v1/tenants/{name}/members`: who has access to a tenant, for its page: the people
//! and groups that may read or change it and through what ([`crate::signin::members`]).

use axum::Extension;
use axum::extract::{Path, State};
use axum::response::{IntoResponse, Json, Response};
use serde_json::json;

use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::signin::members::Members;
use crate::state::AppState;

pub async fn list(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
) -> Response {
    if !state.runtime.load().config.tenants.contains_key(&tenant) {
        return ApiError::NotFound(format!("no tenant {tenant:?}")).into_response();
    }
    let members = match &state.sign_in {
        Some(sign_in) => match sign_in.members(caller.person(), &tenant).await {
            Ok(members) => members,
            Err(error) => return error.into_response(),
        },
        None => Members::new(
            "the admin token",
            Vec::new(),
            Some("Nobody signs in here: only the admin token has access.".into()),
        ),
    };
    Json(
        json!({"tenant": tenant, "source": members.source, "members": members.members, "note": members.note}),
    )
    .into_response()
}
