//! People signing in to the admin API (and the console that reads it) with the company's OpenID
//! Connect provider: the authorization code flow with PKCE (`/auth/login` -> the provider ->
//! `/auth/callback`), an ID token checked like any token ([`crate::identity`]), a session in the
//! database behind an HttpOnly cookie, and roles from `--roles-file` ([`roles`]). Every sign-in,
//! and every refused one, is in the audit trail.

pub mod cluster_roles;
pub mod kube_user;
pub mod members;
pub mod roles;
pub mod store;

use std::path::PathBuf;
use std::time::Duration;

use std::net::SocketAddr;

use axum::Extension;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Json, Response};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::Deserialize;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use self::cluster_roles::ClusterRoles;
use self::members::Members;
use self::roles::{Roles, RolesFile, Scope};
use self::store::{Pending, Person, Store};
use crate::api::params::{self, Params};
use crate::audit::AuditEvent;
use crate::db::{Database, now_ms};
use crate::error::ApiError;
use crate::identity::jwks::read_bounded;
use crate::state::AppState;

/// The session cookie's name.
pub const COOKIE: &str = "switchboard_session";
/// How long a session lasts.
const SESSION: Duration = Duration::from_secs(8 * 3600);
/// How long a sign-in may take at the identity provider.
const PENDING: Duration = Duration::from_secs(600);
/// Bounds on what the identity provider sends.
const MAX_RESPONSE_BYTES: usize = 256 * 1024;
const MAX_GROUPS: usize = 256;

/// `--oidc-*` and `--roles-file`.
#[derive(Clone, Debug)]
pub struct SignInSettings {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// Where the provider sends people back; default: this request's own `/auth/callback`.
    pub redirect_url: Option<String>,
    pub scopes: String,
    /// The ID token claim that lists the person's groups.
    pub groups_claim: String,
    pub roles_file: Option<PathBuf>,
}

/// The provider's endpoints, from its discovery document.
#[derive(Deserialize)]
struct Endpoints {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
}

/// Where people's roles come from.
enum Authority {
    /// `--roles-file`.
    File(RolesFile),
    /// The cluster's RBAC, through SubjectAccessReviews (in cluster mode without a roles file).
    Cluster(Box<ClusterRoles>),
}

pub struct SignIn {
    settings: SignInSettings,
    store: Store,
    authority: Authority,
    http: reqwest::Client,
    endpoints: OnceCell<Endpoints>,
}

impl SignIn {
    /// `cluster`: the API server and namespace of cluster mode, which decide roles unless a roles
    /// file is given.
    pub fn new(
        settings: SignInSettings,
        db: Database,
        cluster: Option<ClusterRoles>,
    ) -> Result<SignIn, String> {
        let authority = match (&settings.roles_file, cluster) {
            (Some(path), _) => Authority::File(RolesFile::load(path)?),
            (None, Some(cluster)) => Authority::Cluster(Box::new(cluster)),
            (None, None) => {
                tracing::warn!("sign-in without --roles-file: signed-in people have no role");
                Authority::File(RolesFile::default())
            }
        };
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| e.to_string())?;
        Ok(SignIn { settings, store: Store::new(db), authority, http, endpoints: OnceCell::new() })
    }

    /// The signed-in person of a request's session cookie.
    pub async fn person(&self, headers: &HeaderMap) -> Result<Option<Person>, ApiError> {
        let Some(id) = session_cookie(headers) else { return Ok(None) };
        self.store.person(id).await.map_err(|e| ApiError::Internal(format!("sessions: {e}")))
    }

    /// Whether `person` may read what `scope` covers.
    pub async fn may_read(&self, person: &Person, scope: &Scope) -> Result<bool, ApiError> {
        match &self.authority {
            Authority::File(file) => Ok(file.roles_of(person).may(scope)),
            Authority::Cluster(cluster) => cluster.may_read(person, scope).await,
        }
    }

    /// Whether `person` may change `tenant` (its keys, its budget), or make a change only
    /// platform admins make (`None`: creating tenants, setting rate limits). With roles from the cluster's RBAC, the API server decides as it takes the
    /// change, which the gateway makes as the person ([`crate::serving::edits::cluster`]), and a
    /// refusal is in its words.
    pub async fn may_change(&self, person: &Person, tenant: Option<&str>) -> Result<bool, ApiError> {
        match (tenant, &self.authority) {
            (_, Authority::Cluster(_)) => Ok(true),
            (Some(tenant), Authority::File(_)) => Ok(self.access(person, tenant).await?.1),
            (None, Authority::File(file)) => Ok(file.roles_of(person).platform_admin),
        }
    }

    /// Who has access to `tenant`: from the roles file; in a cluster from RBAC, read as the
    /// signed-in `person` (nobody to read it as with the admin token).
    pub async fn members(&self, person: Option<&Person>, tenant: &str) -> Result<Members, ApiError> {
        match (&self.authority, person) {
            (Authority::File(file), _) => Ok(file.members_of(tenant)),
            (Authority::Cluster(cluster), Some(person)) => cluster.members(person, tenant).await,
            (Authority::Cluster(_), None) => Ok(Members::new(
                "the cluster's RBAC",
                Vec::new(),
                Some("Sign in to see who has access: in a cluster it is read from RBAC as you.".into()),
            )),
        }
    }

    /// Whether `person` may create tenants: a platform admin's right from a roles file; RBAC's
    /// `create tenants` in a cluster.
    async fn may_create_tenants(&self, person: &Person, roles: &Roles) -> Result<bool, ApiError> {
        match &self.authority {
            Authority::File(_) => Ok(roles.platform_admin),
            Authority::Cluster(cluster) => cluster.may_create(person).await,
        }
    }

    /// What `person` may do with `tenant`: read its views, change it.
    async fn access(&self, person: &Person, tenant: &str) -> Result<(bool, bool), ApiError> {
        let read = self.may_read(person, &Scope::Tenant(tenant.to_owned())).await?;
        let update = match &self.authority {
            Authority::File(file) => {
                let roles = file.roles_of(person);
                roles.platform_admin || roles.tenant_admin.contains(tenant)
            }
            Authority::Cluster(cluster) => cluster.may_update(person, tenant).await?,
        };
        Ok((read, update))
    }

    /// `person`'s roles as `/auth/me` shows them. From the cluster's RBAC, tenant admin rights
    /// cannot be listed (ask `/auth/access` per tenant).
    async fn roles(&self, person: &Person) -> Result<Roles, ApiError> {
        match &self.authority {
            Authority::File(file) => Ok(file.roles_of(person)),
            Authority::Cluster(cluster) => Ok(Roles {
                platform_admin: cluster.may_read(person, &Scope::Platform).await?,
                viewer: cluster.may_read(person, &Scope::Global).await?,
                tenant_admin: Default::default(),
            }),
        }
    }

    async fn endpoints(&self) -> Result<&Endpoints, String> {
        self.endpoints
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.settings.issuer.trim_end_matches('/')
                );
                let endpoints: Endpoints =
                    serde_json::from_slice(&self.get_bounded(self.http.get(&url)).await?)
                        .map_err(|e| format!("{url}: {e}"))?;
                if endpoints.issuer != self.settings.issuer {
                    return Err(format!("{url} names issuer {:?}", endpoints.issuer));
                }
                Ok(endpoints)
            })
            .await
    }

    /// The provider's answer, read no further than [`MAX_RESPONSE_BYTES`]; an error status with
    /// the start of its body.
    async fn get_bounded(&self, request: reqwest::RequestBuilder) -> Result<Vec<u8>, String> {
        let response = request.send().await.map_err(|e| e.to_string())?;
        let status = response.status();
        let body = read_bounded(response, MAX_RESPONSE_BYTES)
            .await
            .map_err(|e| format!("the identity provider's answer: {e}"))?;
        if !status.is_success() {
            let mut text = String::from_utf8_lossy(&body).into_owned();
            crate::redact::truncate_to(&mut text, 500);
            return Err(format!("the identity provider answered {status}: {text}"));
        }
        Ok(body)
    }

    fn redirect_uri(&self, headers: &HeaderMap) -> String {
        self.settings.redirect_url.clone().unwrap_or_else(|| {
            let host = headers.get(header::HOST).and_then(|h| h.to_str().ok()).unwrap_or("localhost");
            let https = headers.get("x-forwarded-proto").and_then(|p| p.to_str().ok()) == Some("https");
            format!("{}://{host}/auth/callback", if https { "https" } else { "http" })
        })
    }

    /// The person an authorization `code` stands for, once the provider has exchanged it and its
    /// ID token checks out.
    async fn exchange(
        &self,
        state: &AppState,
        code: &str,
        pending: &Pending,
        headers: &HeaderMap,
    ) -> Result<Person, String> {
        let endpoints = self.endpoints().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.redirect_uri(headers)),
            ("code_verifier", &pending.verifier),
        ];
        let request = self
            .http
            .post(&endpoints.token_endpoint)
            .basic_auth(&self.settings.client_id, Some(&self.settings.client_secret))
            .form(&form);
        let tokens: Value =
            serde_json::from_slice(&self.get_bounded(request).await?).map_err(|e| e.to_string())?;
        let id_token =
            tokens.get("id_token").and_then(Value::as_str).ok_or("the provider sent no ID token")?;
        let claims = state
            .tokens
            .verified_id_token(id_token, &self.settings.issuer, &self.settings.client_id)
            .await
            .map_err(|e| e.to_string())?;
        if claims.get("nonce").and_then(Value::as_str) != Some(pending.nonce.as_str()) {
            return Err("the ID token's nonce is not this sign-in's".into());
        }
        let text = |name: &str| claims.get(name).and_then(Value::as_str).map(str::to_owned);
        let subject = text("sub").ok_or("the ID token has no subject")?;
        let groups = claims.get(&self.settings.groups_claim).and_then(Value::as_array);
        let groups =
            groups.into_iter().flatten().filter_map(Value::as_str).take(MAX_GROUPS).map(str::to_owned);
        Ok(Person {
            subject,
            email: text("email"),
            groups: groups.collect(),
            issuer: self.settings.issuer.clone(),
        })
    }
}

/// The session id in the request's cookies.
fn session_cookie(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|cookies| cookies.split(';'))
        .find_map(|cookie| cookie.trim().strip_prefix(COOKIE)?.strip_prefix('='))
        .filter(|id| id.len() == 64 && id.bytes().all(|b| b.is_ascii_hexdigit()))
}

fn configured(state: &AppState) -> Result<&SignIn, ApiError> {
    state
        .sign_in
        .as_deref()
        .ok_or_else(|| ApiError::NotFound("sign-in is not configured (--oidc-issuer)".into()))
}

fn random_hex<const N: usize>() -> String {
    hex::encode(rand::random::<[u8; N]>())
}

/// `GET /auth/login`: off to the identity provider.
pub async fn login(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let (sign_in, mut params) = match configured(&state).and_then(|s| Ok((s, params::parse(params)?))) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let endpoints = match sign_in.endpoints().await {
        Ok(endpoints) => endpoints,
        Err(problem) => return ApiError::IdentityUnavailable(problem).into_response(),
    };
    // Back to a path of this gateway only: never an open redirect.
    let return_to = params.remove("return_to").filter(|to| to.starts_with('/') && !to.starts_with("//"));
    let return_to = return_to.unwrap_or_else(|| "/".into());
    let verifier = URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>());
    let pending = Pending { nonce: random_hex::<16>(), verifier, return_to };
    let state_token = random_hex::<16>();
    let expires = now_ms().saturating_add(PENDING.as_millis() as i64);
    if let Err(error) = sign_in.store.begin(&state_token, &pending, expires).await {
        return ApiError::Internal(format!("sessions: {error}")).into_response();
    }
    let challenge = URL_SAFE_NO_PAD.encode(Sha256::digest(pending.verifier.as_bytes()));
    let query = form_urlencoded::Serializer::new(String::new())
        .append_pair("response_type", "code")
        .append_pair("client_id", &sign_in.settings.client_id)
        .append_pair("redirect_uri", &sign_in.redirect_uri(&headers))
        .append_pair("scope", &sign_in.settings.scopes)
        .append_pair("state", &state_token)
        .append_pair("nonce", &pending.nonce)
        .append_pair("code_challenge", &challenge)
        .append_pair("code_challenge_method", "S256")
        .finish();
    let separator = if endpoints.authorization_endpoint.contains('?') { '&' } else { '?' };
    redirect(&format!("{}{separator}{query}", endpoints.authorization_endpoint), None)
}

/// `GET /auth/callback`: back from the identity provider with a code, or why not.
pub async fn callback(
    State(state): State<AppState>,
    headers: HeaderMap,
    source: Option<Extension<ConnectInfo<SocketAddr>>>,
    params: Params,
) -> Response {
    let (sign_in, mut params) = match configured(&state).and_then(|s| Ok((s, params::parse(params)?))) {
        Ok(parsed) => parsed,
        Err(error) => return error.into_response(),
    };
    let source = source.map(|Extension(ConnectInfo(peer))| peer.ip().to_string());
    let refuse = |actor: &str, reason: String| {
        let mut event =
            AuditEvent::new("auth.sign_in", actor, &sign_in.settings.issuer, "GET /auth/callback", "denied");
        event.source = source.clone();
        event.detail = Some(reason.clone());
        state.audit.record(event);
        ApiError::BadRequest(format!("sign-in failed: {reason}"), Some("sign_in_failed")).into_response()
    };
    if let Some(error) = params.remove("error") {
        let description = params.remove("error_description").unwrap_or_default();
        return refuse("unknown", format!("{error}: {description}"));
    }
    let (Some(code), Some(state_token)) = (params.remove("code"), params.remove("state")) else {
        return refuse("unknown", "no code or state".into());
    };
    let pending = match sign_in.store.finish(&state_token).await {
        Ok(Some(pending)) => pending,
        Ok(None) => {
            return refuse("unknown", "unknown or expired sign-in; start again at /auth/login".into());
        }
        Err(error) => return ApiError::Internal(format!("sessions: {error}")).into_response(),
    };
    let person = match sign_in.exchange(&state, &code, &pending, &headers).await {
        Ok(person) => person,
        Err(reason) => return refuse("unknown", reason),
    };
    let id = random_hex::<32>();
    let expires = now_ms().saturating_add(SESSION.as_millis() as i64);
    if let Err(error) = sign_in.store.open(&id, &person, expires).await {
        return ApiError::Internal(format!("sessions: {error}")).into_response();
    }
    let mut event =
        AuditEvent::new("auth.sign_in", person.name(), &person.issuer, "GET /auth/callback", "allowed");
    event.subject = Some(person.subject.clone());
    event.source = source;
    state.audit.record(event);
    let secure = if sign_in.redirect_uri(&headers).starts_with("https://") { "; Secure" } else { "" };
    let cookie =
        format!("{COOKIE}={id}; HttpOnly; SameSite=Lax; Path=/; Max-Age={}{secure}", SESSION.as_secs());
    redirect(&pending.return_to, Some(cookie))
}

/// `GET /auth/me`: who is signed in, and their roles.
pub async fn me(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let answer = async {
        let (sign_in, person) = signed_in(&state, &headers).await?;
        let roles = sign_in.roles(&person).await?;
        let may_create_tenants = sign_in.may_create_tenants(&person, &roles).await?;
        Ok::<_, ApiError>(json!({
            "subject": person.subject, "email": person.email, "groups": person.groups,
            "issuer": person.issuer, "roles": roles, "may_create_tenants": may_create_tenants,
        }))
    };
    answer.await.map_or_else(IntoResponse::into_response, |body| Json(body).into_response())
}

/// `GET /auth/access?tenant=NAME`: whether the signed-in person may read the tenant's views and
/// change it (what a console asks before it offers an edit).
pub async fn access(State(state): State<AppState>, headers: HeaderMap, params: Params) -> Response {
    let answer = async {
        let mut params = params::parse(params)?;
        let tenant = params
            .remove("tenant")
            .ok_or_else(|| ApiError::invalid_request("`tenant` is required".into()))?;
        let tenant = params::name("tenant", tenant)?;
        let (sign_in, person) = signed_in(&state, &headers).await?;
        let (read, update) = sign_in.access(&person, &tenant).await?;
        Ok::<_, ApiError>(json!({"tenant": tenant, "read": read, "update": update}))
    };
    answer.await.map_or_else(IntoResponse::into_response, |body| Json(body).into_response())
}

/// Sign-in, and the person the request's session names (401 without one).
async fn signed_in<'a>(state: &'a AppState, headers: &HeaderMap) -> Result<(&'a SignIn, Person), ApiError> {
    let sign_in = configured(state)?;
    let person = sign_in.person(headers).await?.ok_or(ApiError::MissingKey)?;
    Ok((sign_in, person))
}

/// `POST /auth/logout`: the session ends, the cookie goes.
pub async fn logout(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let sign_in = match configured(&state) {
        Ok(sign_in) => sign_in,
        Err(error) => return error.into_response(),
    };
    if let Some(id) = session_cookie(&headers)
        && let Err(error) = sign_in.store.close(id).await
    {
        return ApiError::Internal(format!("sessions: {error}")).into_response();
    }
    let mut response = StatusCode::NO_CONTENT.into_response();
    let cookie = format!("{COOKIE}=; HttpOnly; SameSite=Lax; Path=/; Max-Age=0");
    if let Ok(value) = HeaderValue::from_str(&cookie) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

fn redirect(location: &str, cookie: Option<String>) -> Response {
    let mut response = StatusCode::SEE_OTHER.into_response();
    if let Ok(value) = HeaderValue::from_str(location) {
        response.headers_mut().insert(header::LOCATION, value);
    }
    if let Some(value) = cookie.and_then(|cookie| HeaderValue::from_str(&cookie).ok()) {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}
