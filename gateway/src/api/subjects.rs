//! A subject's memories across the caller's personas: `GET /v1/subjects/{subject}/memories`
//! exports them, `DELETE` forgets them (a user's right to be forgotten; `?persona=` narrows it
//! to one persona). Always within the caller's tenant.

use axum::Extension;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct Filter {
    persona: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Path(subject): Path<String>,
) -> Response {
    match state.personas.memories.export(&auth.caller.tenant, &subject).await {
        Ok(memories) => Json(json!({"subject": subject, "memories": memories})).into_response(),
        Err(error) => store_error(&error).into_response(),
    }
}

pub async fn forget(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    Path(subject): Path<String>,
    Query(filter): Query<Filter>,
) -> Response {
    let persona = filter.persona.as_deref();
    match state.personas.memories.forget(&auth.caller.tenant, &subject, persona, None).await {
        Ok(deleted) => Json(json!({"subject": subject, "deleted": deleted})).into_response(),
        Err(error) => store_error(&error).into_response(),
    }
}

/// The database's error stays in the log; the client learns only that the store failed.
fn store_error(error: &sqlx::Error) -> ApiError {
    tracing::error!(%error, "memory store failed");
    ApiError::Internal("the memory store is unavailable; retry later".into())
}
