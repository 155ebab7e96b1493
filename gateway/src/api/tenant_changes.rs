//! Changes to tenants through the admin API, as the console makes them: `POST /admin/v1/tenants`
//! (a new tenant), `POST /admin/v1/tenants/{name}/keys` (a new API key, its value answered once
//! and never again) and `DELETE /admin/v1/tenants/{name}/keys/{key}` (a key revoked). Standalone,
//! they are written to the config folder ([`crate::serving::folder_edits`]) and answered once the
//! hot reload serves them, so a new key works as soon as its answer arrives. In a cluster they
//! are not built yet: Tenants and Secrets are changed with the Kubernetes API there.

use std::time::Duration;

use axum::Json;
use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;

use crate::error::ApiError;
use crate::serving::folder_edits::{EditError, Folder};
use crate::serving::runtime::Runtime;
use crate::state::AppState;

/// How long a change may take to be served after it is written (the folder watch and a build).
const APPLIED_WITHIN: Duration = Duration::from_secs(10);

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewTenant {
    name: String,
    #[serde(default)]
    display_name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewKey {
    name: String,
}

pub async fn create_tenant(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let folder = folder(&state)?;
        let new: NewTenant = parse(&headers, body)?;
        let exists = state.runtime.load().config.tenants.contains_key(&new.name);
        let installs = state.runtime.installs();
        folder.create_tenant(&new.name, new.display_name.as_deref(), exists).map_err(refusal)?;
        applied(&state, installs, |runtime| runtime.config.tenants.contains_key(&new.name)).await?;
        Ok::<_, ApiError>((
            StatusCode::CREATED,
            Json(json!({"name": new.name, "display_name": new.display_name})),
        ))
    };
    answer.await.into_response()
}

pub async fn create_key(
    State(state): State<AppState>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let folder = folder(&state)?;
        known(&state, folder, &tenant)?;
        let new: NewKey = parse(&headers, body)?;
        let value = format!("sk-sb-{}", hex::encode(rand::random::<[u8; 24]>()));
        let installs = state.runtime.installs();
        folder.add_key(&tenant, &new.name, &value).map_err(refusal)?;
        applied(&state, installs, |runtime| runtime.authenticate(&value).is_some()).await?;
        // The key's value, this once: the gateway keeps only its Secret's file and hash.
        Ok::<_, ApiError>((
            StatusCode::CREATED,
            Json(json!({"tenant": tenant, "name": new.name, "key": value})),
        ))
    };
    answer.await.into_response()
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Path((tenant, key)): Path<(String, String)>,
) -> Response {
    let answer = async {
        let folder = folder(&state)?;
        known(&state, folder, &tenant)?;
        let installs = state.runtime.installs();
        folder.revoke_key(&tenant, &key).map_err(refusal)?;
        let gone = |runtime: &Runtime| {
            runtime.config.tenants.get(&tenant).is_none_or(|t| t.api_keys.iter().all(|k| k.id != key))
        };
        applied(&state, installs, gone).await?;
        Ok::<_, ApiError>(StatusCode::NO_CONTENT)
    };
    answer.await.into_response()
}

/// The config folder, or why there is none to change.
fn folder(state: &AppState) -> Result<&Folder, ApiError> {
    state.folder.as_ref().ok_or_else(|| {
        ApiError::NotImplemented(
            "changes through the admin API are built for a standalone gateway (--config-dir) only; \
             in a cluster, change the Tenant and Secret objects (kubectl, GitOps)"
                .into(),
        )
    })
}

/// A tenant that exists: served, or written by the console (and about to be).
fn known(state: &AppState, folder: &Folder, tenant: &str) -> Result<(), ApiError> {
    if state.runtime.load().config.tenants.contains_key(tenant) || folder.manages(tenant) {
        Ok(())
    } else {
        Err(ApiError::NotFound(format!("no tenant {tenant:?}")))
    }
}

/// The JSON body of a change. `Content-Type: application/json` is required: a browser sends it
/// to another site only after a CORS preflight, which the gateway never grants, so a page of
/// another origin cannot make a signed-in person's browser change anything (as a form could).
fn parse<T: for<'de> Deserialize<'de>>(
    headers: &HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<T, ApiError> {
    let json = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).is_some_and(|v| {
        v.split(';').next().is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    });
    if !json {
        return Err(ApiError::BadRequest(
            "Content-Type must be application/json".into(),
            Some("invalid_request"),
        ));
    }
    let bytes = body.map_err(|e| ApiError::BadRequest(format!("cannot read request body: {e}"), None))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::BadRequest(format!("invalid request body: {e}"), Some("invalid_request")))
}

fn refusal(error: EditError) -> ApiError {
    match error {
        EditError::Invalid(message) => ApiError::BadRequest(message, Some("invalid_request")),
        EditError::Conflict(message) => ApiError::Conflict(message),
        EditError::NotFound(message) => ApiError::NotFound(message),
        EditError::Io(error) => ApiError::Internal(format!("cannot write the config folder: {error}")),
    }
}

/// Waits until the served config shows the change, waking at each config the folder watch
/// offers after the write (`installs`, subscribed before it); a reload that refuses it answers
/// why at once.
async fn applied(
    state: &AppState,
    mut installs: watch::Receiver<u64>,
    shows: impl Fn(&Runtime) -> bool,
) -> Result<(), ApiError> {
    let deadline = tokio::time::Instant::now() + APPLIED_WITHIN;
    loop {
        if shows(&state.runtime.load()) {
            return Ok(());
        }
        let why = match tokio::time::timeout_at(deadline, installs.changed()).await {
            Ok(Ok(())) => match state.runtime.sync().last_error {
                None => continue,
                Some(refused) => refused,
            },
            _ => "no reload served it in time".to_owned(),
        };
        return Err(ApiError::Internal(format!(
            "the change is written to the config folder but not served: {why}"
        )));
    }
}
