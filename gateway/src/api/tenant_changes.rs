//! Changes to tenants through the admin API, as the console makes them: `POST /admin/v1/tenants`
//! (a new tenant), `POST /admin/v1/tenants/{name}/keys` (a new API key, its value answered once
//! and never again) and `DELETE /admin/v1/tenants/{name}/keys/{key}` (a key revoked), written
//! where the truth lives ([`crate::serving::edits`]) and answered once the gateway serves them,
//! so a new key works as soon as its answer arrives. A change written but not served in time
//! (the operator slow to reconcile) is answered 202, with the key all the same.

use axum::extract::rejection::BytesRejection;
use axum::extract::{Path, State};
use axum::http::header::CONTENT_TYPE;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use bytes::Bytes;
use serde::Deserialize;
use serde_json::json;

use crate::auth::AdminCaller;
use crate::error::ApiError;
use crate::serving::edits::rules::EditError;
use crate::serving::runtime::Runtime;
use crate::state::AppState;

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
    Extension(caller): Extension<AdminCaller>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        let new: NewTenant = parse(&headers, body)?;
        let exists = state.runtime.load().config.tenants.contains_key(&new.name);
        let edit = state.edits.create_tenant(caller.author(), &new.name, new.display_name.as_deref(), exists);
        let served = served(&state, edit, |runtime| runtime.config.tenants.contains_key(&new.name)).await?;
        Ok::<_, ApiError>((
            answered(served, StatusCode::CREATED),
            Json(json!({"name": new.name, "display_name": new.display_name})),
        ))
    };
    answer.await.into_response()
}

pub async fn create_key(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let answer = async {
        known(&state, &tenant)?;
        let new: NewKey = parse(&headers, body)?;
        let value = format!("sk-sb-{}", hex::encode(rand::random::<[u8; 24]>()));
        let edit = state.edits.add_key(caller.author(), &tenant, &new.name, &value);
        let served = served(&state, edit, |runtime| runtime.authenticate(&value).is_some()).await?;
        // The key's value, this once: the gateway keeps only its hash, the Secret its value.
        Ok::<_, ApiError>((
            answered(served, StatusCode::CREATED),
            Json(json!({"tenant": tenant, "name": new.name, "key": value})),
        ))
    };
    answer.await.into_response()
}

pub async fn revoke_key(
    State(state): State<AppState>,
    Extension(caller): Extension<AdminCaller>,
    Path((tenant, key)): Path<(String, String)>,
) -> Response {
    let answer = async {
        known(&state, &tenant)?;
        let gone = |runtime: &Runtime| {
            runtime.config.tenants.get(&tenant).is_none_or(|t| t.api_keys.iter().all(|k| k.id != key))
        };
        let served = served(&state, state.edits.revoke_key(caller.author(), &tenant, &key), gone).await?;
        Ok::<_, ApiError>(answered(served, StatusCode::NO_CONTENT))
    };
    answer.await.into_response()
}

pub(super) fn known(state: &AppState, tenant: &str) -> Result<(), ApiError> {
    let served = state.runtime.load().config.tenants.contains_key(tenant);
    state.edits.check_known(tenant, served).map_err(refusal)
}

/// `done` for a change served, 202 for one written and still on its way.
pub(super) fn answered(served: bool, done: StatusCode) -> StatusCode {
    if served { done } else { StatusCode::ACCEPTED }
}

/// The JSON body of a change. `Content-Type: application/json` is required: a browser sends it
/// to another site only after a CORS preflight, which the gateway never grants, so a page of
/// another origin cannot make a signed-in person's browser change anything (as a form could).
pub(super) fn parse<T: for<'de> Deserialize<'de>>(
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
        EditError::Forbidden(message) => ApiError::Forbidden(message),
        EditError::Unavailable(message) => ApiError::NotReady(message),
        EditError::Io(error) => ApiError::Internal(format!("cannot write the config folder: {error}")),
    }
}

/// Makes the change `edit` and waits until the served config shows it, waking at each config its
/// source offers after the write (subscribed to before it): `true` once served, `false` if not
/// yet within [`crate::serving::edits::Edits::applied_within`]. A config the gateway refuses
/// answers why at once: the change is written, but something in it (or beside it) is wrong.
pub(super) async fn served(
    state: &AppState,
    edit: impl Future<Output = Result<(), EditError>>,
    shows: impl Fn(&Runtime) -> bool,
) -> Result<bool, ApiError> {
    let mut installs = state.runtime.installs();
    edit.await.map_err(refusal)?;
    let deadline = tokio::time::Instant::now() + state.edits.applied_within();
    loop {
        if shows(&state.runtime.load()) {
            return Ok(true);
        }
        match tokio::time::timeout_at(deadline, installs.changed()).await {
            Ok(Ok(())) => {
                if let Some(refused) = state.runtime.sync().last_error {
                    return Err(ApiError::Internal(format!(
                        "the change is written but not served: {refused}"
                    )));
                }
            }
            _ => return Ok(false),
        }
    }
}
