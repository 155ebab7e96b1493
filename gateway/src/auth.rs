//! Who is calling: a tenant API key (`Authorization: Bearer <key>` or `x-api-key: <key>`), a JWT
//! of an identity provider a tenant trusts, or a Kubernetes ServiceAccount token
//! ([`crate::identity`]); and the admin token.

use std::sync::Arc;

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, Method};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use crate::audit::AuditEvent;
use crate::error::{ApiError, Dialect};
use crate::identity::{Audience, looks_like_jwt};
use crate::serving::edits::Author;
use crate::serving::runtime::{Caller, Runtime};
use crate::signin::roles::scope;
use crate::signin::store::Person;
use crate::state::AppState;

/// Set by [`require_tenant`]: the caller and the runtime snapshot it was authenticated against,
/// so one request never mixes two configs.
#[derive(Clone)]
pub struct Authenticated {
    pub runtime: Arc<Runtime>,
    pub caller: Arc<Caller>,
}

/// Middleware for every tenant route: rejects requests without a valid key, in the error
/// shape of the API being called.
pub async fn require_tenant(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let dialect = Dialect::of_request(request.uri().path(), request.headers());
    match authenticate(&state, request.headers(), Audience::OfTenant).await {
        Ok(authenticated) => {
            request.extensions_mut().insert(authenticated);
            next.run(request).await
        }
        Err(error) => {
            audit_refusal(&state, &request, &error);
            error.into_response_for(dialect)
        }
    }
}

/// Set by [`require_admin`]: who makes an admin request, for the handlers that act as them.
#[derive(Clone)]
pub enum AdminCaller {
    AdminToken,
    Person(Arc<Person>),
}

impl AdminCaller {
    pub fn person(&self) -> Option<&Person> {
        match self {
            AdminCaller::AdminToken => None,
            AdminCaller::Person(person) => Some(person),
        }
    }

    pub fn author(&self) -> Author<'_> {
        match self {
            AdminCaller::AdminToken => Author::AdminToken,
            AdminCaller::Person(person) => Author::Person(person),
        }
    }
}

/// Middleware for admin routes: the admin token (compared by hash in constant time), or a
/// signed-in person whose roles allow what the request reads. Every administrative request is
/// audited, with who made it and its outcome.
pub async fn require_admin(State(state): State<AppState>, mut request: Request, next: Next) -> Response {
    let what = target(&request, true);
    let (mut event, caller) =
        match admin_caller(&state, request.headers(), (request.method(), request.uri()), what).await {
            Ok(answer) => answer,
            Err(error) => {
                audit_refusal(&state, &request, &error);
                return error.into_response();
            }
        };
    event.source = source(&request);
    if let Some(refusal) = event.detail.clone() {
        // Signed in, but without a role for this.
        state.audit.record(event);
        return ApiError::Forbidden(refusal).into_response();
    }
    request.extensions_mut().insert(caller);
    let response = next.run(request).await;
    event.outcome = response.status().as_u16().to_string();
    state.audit.record(event);
    response
}

/// Who is asking, and the start of their audit event: the admin token, or a signed-in person.
/// For a person whose roles do not allow the request, the event is already `denied`, with why.
async fn admin_caller(
    state: &AppState,
    headers: &HeaderMap,
    (method, uri): (&Method, &http::Uri),
    what: String,
) -> Result<(AuditEvent, AdminCaller), ApiError> {
    let sign_in = match &state.sign_in {
        // A bearer credential on the admin API is the admin token, right or wrong.
        Some(sign_in) if bearer_token(headers).is_none() => sign_in,
        _ => {
            admin(state, headers)?;
            let event = AuditEvent::new("admin.request", "admin-token", "admin_token", &what, "");
            return Ok((event, AdminCaller::AdminToken));
        }
    };
    let person = sign_in.person(headers).await?.ok_or(ApiError::MissingKey)?;
    let mut event = AuditEvent::new("admin.request", person.name(), &person.issuer, &what, "");
    event.subject = Some(person.subject.clone());
    if method == Method::GET || method == Method::HEAD {
        let scope = scope(uri.path(), uri.query());
        if !sign_in.may_read(&person, &scope).await? {
            event.outcome = "denied".into();
            event.detail =
                Some(format!("{} has no role that may read this ({scope:?}); see /auth/me", person.name()));
        }
    } else {
        let tenant = changed_tenant(uri.path());
        if !sign_in.may_change(&person, tenant).await? {
            let what = tenant.map_or_else(|| "make this change".to_owned(), |t| format!("change tenant {t}"));
            event.outcome = "denied".into();
            event.detail = Some(format!("{} has no role that may {what}; see /auth/me", person.name()));
        }
    }
    Ok((event, AdminCaller::Person(Arc::new(person))))
}

/// The tenant a change to `/admin/v1/tenants/{name}/...` is to, which its own admins may make;
/// `None` for a change only platform admins make: creating tenants, and setting a tenant's rate
/// limits (its admins must not lift their own).
fn changed_tenant(path: &str) -> Option<&str> {
    let rest = path.strip_prefix("/admin/v1/tenants/")?;
    let (name, what) = rest.split_once('/').unwrap_or((rest, ""));
    (!name.is_empty() && what != "rate_limits").then_some(name)
}

/// Audits a refused credential: what it was refused for, never the credential. A request with
/// none at all is no attempt to sign in, and is not audited.
pub fn audit_refusal(state: &AppState, request: &Request, error: &ApiError) {
    let provider = match error {
        ApiError::MissingKey => return,
        ApiError::InvalidKey if request.uri().path().starts_with("/admin/") => "admin_token",
        ApiError::InvalidKey => "api_key",
        _ => "token",
    };
    let mut event =
        AuditEvent::new("credential.refused", "unknown", provider, &target(request, false), "denied");
    event.source = source(request);
    event.detail = Some(error.to_string());
    state.audit.record(event);
}

/// The method and path; with the query string for admin requests (their filters say whose data
/// was read), without it elsewhere.
fn target(request: &Request, with_query: bool) -> String {
    let uri = request.uri();
    let path = if with_query { uri.path_and_query().map_or(uri.path(), |p| p.as_str()) } else { uri.path() };
    format!("{} {path}", request.method())
}

fn source(request: &Request) -> Option<String> {
    request.extensions().get::<ConnectInfo<SocketAddr>>().map(|info| info.0.ip().to_string())
}

/// Whether the request carries the admin token, as `Authorization: Bearer` only: `x-api-key` is
/// a tenant's header, and a token sent there was meant for something else.
pub fn admin(state: &AppState, headers: &HeaderMap) -> Result<(), ApiError> {
    let expected = state.admin_token_sha256.ok_or(ApiError::AdminDisabled)?;
    let presented = bearer_token(headers).ok_or(ApiError::MissingKey)?;
    let hash: [u8; 32] = Sha256::digest(presented.as_bytes()).into();
    if bool::from(hash.ct_eq(&expected)) { Ok(()) } else { Err(ApiError::InvalidKey) }
}

fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim)
}

/// The key the client presented, if any.
pub fn presented_key(headers: &HeaderMap) -> Option<&str> {
    bearer_token(headers).or_else(|| headers.get("x-api-key").and_then(|v| v.to_str().ok()).map(str::trim))
}

/// Authenticates the request against the current runtime's tenant keys, then as a JWT for
/// `audience`.
pub async fn authenticate(
    state: &AppState,
    headers: &HeaderMap,
    audience: Audience<'_>,
) -> Result<Authenticated, ApiError> {
    let credential = presented_key(headers).filter(|k| !k.is_empty()).ok_or(ApiError::MissingKey)?;
    let runtime = state.runtime.load();
    if let Some(caller) = runtime.authenticate(credential) {
        return Ok(Authenticated { caller: caller.clone(), runtime });
    }
    if !looks_like_jwt(credential) {
        return Err(ApiError::InvalidKey);
    }
    match state.tokens.authenticate(credential, &runtime, audience).await {
        Ok(caller) => Ok(Authenticated { runtime, caller }),
        Err(error) => {
            tracing::info!(%error, "bearer token refused");
            Err(error)
        }
    }
}

#[cfg(test)]
mod tests {
    use axum::http::HeaderValue;

    use super::*;

    #[test]
    fn reads_bearer_or_x_api_key() {
        let mut headers = HeaderMap::new();
        assert_eq!(presented_key(&headers), None);
        headers.insert("x-api-key", HeaderValue::from_static("sk-b"));
        assert_eq!(presented_key(&headers), Some("sk-b"));
        headers.insert("authorization", HeaderValue::from_static("Bearer sk-a"));
        assert_eq!(presented_key(&headers), Some("sk-a"));
    }
}
