//! A subject's memories across the caller's personas: `GET /v1/subjects/{subject}/memories`
//! exports them, `DELETE` forgets them (a user's right to be forgotten; `?persona=` narrows it
//! to one persona). Always within the caller's tenant.

use axum::Extension;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Json, Response};
use serde::Deserialize;
use serde_json::json;

use crate::auth::Authenticated;
use crate::error::ApiError;
use crate::persona::turn::checked_subject;
use crate::state::AppState;

#[derive(Debug, Deserialize)]
pub struct Filter {
    persona: Option<String>,
}

pub async fn export(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    subject: Result<Path<String>, PathRejection>,
) -> Response {
    let subject = match path_subject(subject) {
        Ok(subject) => subject,
        Err(error) => return error.into_response(),
    };
    match state.personas.memories.export(&auth.caller.tenant, &subject).await {
        Ok(memories) => Json(json!({"subject": subject, "memories": memories})).into_response(),
        Err(error) => store_error(&error).into_response(),
    }
}

pub async fn forget(
    State(state): State<AppState>,
    Extension(auth): Extension<Authenticated>,
    subject: Result<Path<String>, PathRejection>,
    filter: Result<Query<Filter>, QueryRejection>,
) -> Response {
    let (subject, Query(filter)) = match (path_subject(subject), filter) {
        (Ok(subject), Ok(filter)) => (subject, filter),
        (Err(error), _) => return error.into_response(),
        (_, Err(rejection)) => return ApiError::BadRequest(rejection.body_text(), None).into_response(),
    };
    if filter
        .persona
        .as_deref()
        .is_some_and(|p| p.is_empty() || p.len() > 253 || p.chars().any(char::is_control))
    {
        let message = "`persona` must be a persona's name".to_owned();
        return ApiError::BadRequest(message, Some("invalid_request")).into_response();
    }
    let persona = filter.persona.as_deref();
    match state.personas.forget(&auth.caller.tenant, &subject, persona, None).await {
        Ok(deleted) => Json(json!({"subject": subject, "deleted": deleted})).into_response(),
        Err(error) => store_error(&error).into_response(),
    }
}

/// The subject of the path, decoded and checked as every subject is.
fn path_subject(subject: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    let Path(subject) = subject.map_err(|rejection| ApiError::BadRequest(rejection.body_text(), None))?;
    checked_subject(&subject)
}

/// The database's error stays in the log; the client learns only that the store failed.
fn store_error(error: &sqlx::Error) -> ApiError {
    tracing::error!(%error, "memory store failed");
    ApiError::Internal("the memory store is unavailable; retry later".into())
}
