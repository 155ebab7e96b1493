//! Bearer JWTs as credentials: tokens of an identity provider a tenant trusts (its `jwtIssuers`),
//! and Kubernetes ServiceAccount tokens of pods in a tenant's namespaces.
//!
//! A token is accepted only when every check passes: an asymmetric algorithm from the allow-list
//! (never `none`, never HMAC, so a public key can never serve as a shared secret), a signature by
//! a key of the issuer's current key set, `exp` (required), `nbf` and `iat` within
//! [`LEEWAY_SECONDS`], the issuer, an accepted audience, and the tenant's required claims.
//!
//! A client presents the same token for as long as it is valid (a projected ServiceAccount token
//! for up to an hour), and checking a signature again costs tens of microseconds: a token that
//! passed is remembered by its SHA-256 for at most [`ACCEPTED_FOR_SECONDS`], never past its `exp`,
//! and only under the config it was checked against.

use std::sync::Arc;
use std::time::Duration;

use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, Header, Validation, decode, decode_header, get_current_timestamp};
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

use super::jwks::{KeyCache, KeyError, KeySource};
use crate::error::ApiError;
use crate::persona::turn::checked_subject;
use crate::serving::identities::Trust;
use crate::serving::runtime::{Caller, Runtime};

/// Longer tokens are refused unread.
pub const MAX_TOKEN_BYTES: usize = 16 * 1024;
/// Clock skew tolerated on `exp`, `nbf` and `iat`.
pub const LEEWAY_SECONDS: u64 = 30;
/// Signature algorithms accepted: asymmetric ones only.
const ALLOWED: [Algorithm; 9] = [
    Algorithm::RS256,
    Algorithm::RS384,
    Algorithm::RS512,
    Algorithm::PS256,
    Algorithm::PS384,
    Algorithm::PS512,
    Algorithm::ES256,
    Algorithm::ES384,
    Algorithm::EdDSA,
];
/// The claim in which Kubernetes names a ServiceAccount token's namespace and account.
const KUBERNETES_CLAIM: &str = "kubernetes.io";
/// How long a token that passed is taken without its checks again: a key its issuer withdraws
/// stops being honoured within this (plus the key cache's own refresh).
pub const ACCEPTED_FOR_SECONDS: u64 = 60;
/// Tokens remembered at most.
const MAX_ACCEPTED: u64 = 10_000;

/// Checks bearer JWTs: the signing keys, and the audience ServiceAccount tokens must carry.
pub struct TokenVerifier {
    keys: KeyCache,
    /// `None`: ServiceAccount tokens are not accepted.
    service_account_audience: Option<String>,
    /// Tokens that passed, by the SHA-256 of the token and the audience asked for.
    accepted: moka::sync::Cache<[u8; 32], Arc<Accepted>>,
}

/// A token that passed: whom it identifies, under which config, until when.
struct Accepted {
    caller: Arc<Caller>,
    config_version: String,
    /// Unix seconds: the earlier of its `exp` (with leeway) and [`ACCEPTED_FOR_SECONDS`] from when
    /// it was checked.
    until: u64,
}

/// Which audience a token must be for.
#[derive(Clone, Copy, Debug)]
pub enum Audience<'a> {
    /// The LLM APIs: one of the trusting tenant's `audiences` (ServiceAccount tokens: the
    /// gateway's `--service-account-audience`).
    OfTenant,
    /// Exactly this resource, whatever the tenant: the MCP server's URL (RFC 8707), so that a
    /// token a client got for another MCP server or API is worthless here.
    Resource(&'a str),
}

/// Whether a presented credential is a JWT rather than an API key (three base64url parts, the
/// first a JSON object).
pub fn looks_like_jwt(credential: &str) -> bool {
    credential.starts_with("eyJ") && credential.bytes().filter(|b| *b == b'.').count() == 2
}

impl TokenVerifier {
    pub fn new(keys: KeyCache, service_account_audience: Option<String>) -> TokenVerifier {
        let accepted = moka::sync::Cache::builder()
            .max_capacity(MAX_ACCEPTED)
            .time_to_live(Duration::from_secs(ACCEPTED_FOR_SECONDS))
            .build();
        TokenVerifier { keys, service_account_audience, accepted }
    }

    /// The caller `token` identifies under `runtime`'s tenants, or why it identifies none.
    pub async fn authenticate(
        &self,
        token: &str,
        runtime: &Runtime,
        audience: Audience<'_>,
    ) -> Result<Arc<Caller>, ApiError> {
        let fingerprint = fingerprint(token, audience);
        let now = get_current_timestamp();
        if let Some(accepted) = self.accepted.get(&fingerprint)
            && now < accepted.until
            && accepted.config_version == runtime.config.version
        {
            return Ok(accepted.caller.clone());
        }
        let caller = self.checked(token, runtime, audience).await?;
        let expires = caller.claims.as_ref().and_then(|c| c.get("exp")).and_then(Value::as_u64);
        let until = remembered_until(expires, now);
        let config_version = runtime.config.version.clone();
        self.accepted
            .insert(fingerprint, Arc::new(Accepted { caller: caller.clone(), config_version, until }));
        Ok(caller)
    }

    /// `authenticate` without the memory of tokens that passed: every check.
    async fn checked(
        &self,
        token: &str,
        runtime: &Runtime,
        audience: Audience<'_>,
    ) -> Result<Arc<Caller>, ApiError> {
        let header = checked_header(token)?;
        let unverified: Map<String, Value> = jsonwebtoken::dangerous::insecure_decode_claims(token)
            .map_err(|e| invalid(format!("its claims cannot be read: {e}")))?;
        let issuer =
            unverified.get("iss").and_then(Value::as_str).ok_or_else(|| invalid("no `iss` claim"))?;
        let trusting = runtime.identities.trusting(issuer);
        if let Some(first) = trusting.first() {
            let source =
                KeySource::Http { issuer: issuer.to_owned(), jwks_uri: first.issuer.jwks_uri.clone() };
            let claims = self.verified(token, &header, &source).await?;
            return caller_of_issuer(trusting, claims, audience).map(Arc::new);
        }
        if let Some(accepted) = &self.service_account_audience
            && unverified.contains_key(KUBERNETES_CLAIM)
        {
            let claims = self.verified(token, &header, &KeySource::Kubernetes).await?;
            let audience = match audience {
                Audience::OfTenant => accepted,
                Audience::Resource(resource) => resource,
            };
            return service_account_caller(claims, audience, runtime).map(Arc::new);
        }
        Err(invalid(format!("no tenant trusts its issuer {:?}", shortened(issuer))))
    }

    /// The claims of an OpenID Connect ID token `issuer` issued to `client_id` (a person signing
    /// in), after the same checks as any token.
    pub async fn verified_id_token(
        &self,
        token: &str,
        issuer: &str,
        client_id: &str,
    ) -> Result<Map<String, Value>, ApiError> {
        let header = checked_header(token)?;
        let source = KeySource::Http { issuer: issuer.to_owned(), jwks_uri: None };
        let claims = self.verified(token, &header, &source).await?;
        if !has_audience(&claims, client_id) {
            return Err(invalid("the ID token is not for this gateway's client"));
        }
        Ok(claims)
    }

    /// The token's claims, once its signature, issuer and times check out.
    async fn verified(
        &self,
        token: &str,
        header: &Header,
        source: &KeySource,
    ) -> Result<Map<String, Value>, ApiError> {
        let key = self.keys.key(source, header.kid.as_deref()).await.map_err(|error| match error {
            KeyError::Unavailable(problem) => ApiError::IdentityUnavailable(problem),
            other => invalid(other.to_string()),
        })?;
        if key.algorithm.is_some_and(|pinned| pinned != header.alg) {
            return Err(invalid(format!("algorithm {:?} is not the one its key is for", header.alg)));
        }
        let mut validation = Validation::new(header.alg);
        validation.leeway = LEEWAY_SECONDS;
        validation.validate_nbf = true;
        // The audience is each tenant's to accept (below).
        validation.validate_aud = false;
        validation.set_required_spec_claims(&["exp", "iss"]);
        validation.set_issuer(&[key.issuer.as_ref()]);
        let claims = decode::<Map<String, Value>>(token, &key.key, &validation)
            .map_err(|e| invalid(reason(e.kind())))?
            .claims;
        let now = get_current_timestamp();
        if claims
            .get("iat")
            .and_then(Value::as_u64)
            .is_some_and(|iat| iat > now.saturating_add(LEEWAY_SECONDS))
        {
            return Err(invalid("issued in the future (`iat`)"));
        }
        Ok(claims)
    }
}

/// Until when a token that passed at `now` is taken without its checks: never past its `exp`
/// (with the leeway its check allows), at most [`ACCEPTED_FOR_SECONDS`].
fn remembered_until(expires: Option<u64>, now: u64) -> u64 {
    let expires = expires.map_or(0, |exp| exp.saturating_add(LEEWAY_SECONDS));
    expires.min(now.saturating_add(ACCEPTED_FOR_SECONDS))
}

/// What a token that passed is remembered by: its SHA-256 with the audience it was checked for.
fn fingerprint(token: &str, audience: Audience<'_>) -> [u8; 32] {
    let mut hash = Sha256::new();
    hash.update(token.as_bytes());
    match audience {
        Audience::OfTenant => hash.update([0]),
        Audience::Resource(resource) => {
            hash.update([1]);
            hash.update(resource.as_bytes());
        }
    }
    hash.finalize().into()
}

/// The header of a token of bounded size with an allowed algorithm (never `none`, never HMAC).
fn checked_header(token: &str) -> Result<Header, ApiError> {
    if token.len() > MAX_TOKEN_BYTES {
        return Err(invalid(format!("longer than {MAX_TOKEN_BYTES} bytes")));
    }
    let header = decode_header(token).map_err(|e| {
        invalid(format!("its header cannot be read ({e}); accepted algorithms: {}", allowed_names()))
    })?;
    if !ALLOWED.contains(&header.alg) {
        let message = format!("algorithm {:?} is not accepted; use one of {}", header.alg, allowed_names());
        return Err(invalid(message));
    }
    Ok(header)
}

/// The one tenant among those trusting the issuer whose audience and required claims the token
/// meets. None, or several, is a refusal: a token must never pick its tenant by accident.
fn caller_of_issuer(
    trusting: &[Arc<Trust>],
    claims: Map<String, Value>,
    audience: Audience<'_>,
) -> Result<Caller, ApiError> {
    if let Audience::Resource(resource) = audience
        && !has_audience(&claims, resource)
    {
        return Err(invalid(format!("it is for another resource: its audience must include {resource:?}")));
    }
    let for_us = |trust: &Trust| match audience {
        Audience::OfTenant => trust.issuer.audiences.iter().any(|accepted| has_audience(&claims, accepted)),
        Audience::Resource(resource) => has_audience(&claims, resource),
    };
    let mut matching = trusting.iter().filter(|trust| {
        for_us(trust)
            && trust.issuer.required_claims.iter().all(|(claim, value)| claim_holds(claims.get(claim), value))
    });
    let trust = match (matching.next(), matching.next()) {
        (Some(trust), None) => trust,
        (None, _) => {
            return Err(invalid(
                "its audience or claims are not those any tenant trusting its issuer requires",
            ));
        }
        (Some(a), Some(b)) => {
            let message = format!(
                "it would identify a caller of several tenants ({}, {}, ...); their requiredClaims must tell them apart",
                a.tenant, b.tenant
            );
            return Err(invalid(message));
        }
    };
    let subject = match &trust.issuer.subject_claim {
        None => None,
        Some(claim) => {
            let value = claims.get(claim).and_then(Value::as_str);
            let value =
                value.ok_or_else(|| invalid(format!("no string `{claim}` claim naming the subject")))?;
            Some(checked_subject(value)?)
        }
    };
    let (tenant, key_id) = (trust.tenant.clone(), trust.issuer.name.clone());
    Ok(Caller { tenant, key_id, subject, claims: Some(Arc::new(claims)) })
}

/// A ServiceAccount token's caller: the tenant that lists the account's namespace.
fn service_account_caller(
    claims: Map<String, Value>,
    audience: &str,
    runtime: &Runtime,
) -> Result<Caller, ApiError> {
    if !has_audience(&claims, audience) {
        return Err(invalid(format!("a ServiceAccount token here must be for the audience {audience:?}")));
    }
    let kubernetes = claims.get(KUBERNETES_CLAIM);
    let namespace = kubernetes.and_then(|k| k.get("namespace")).and_then(Value::as_str);
    let account = kubernetes.and_then(|k| k.pointer("/serviceaccount/name")).and_then(Value::as_str);
    let (Some(namespace), Some(account)) = (namespace, account) else {
        return Err(invalid("a ServiceAccount token without its namespace and account name"));
    };
    let tenant = runtime.identities.tenant_of_namespace(namespace).ok_or_else(|| {
        invalid(format!("namespace {:?} is not one of exactly one tenant's namespaces", shortened(namespace)))
    })?;
    let (tenant, key_id) = (tenant.to_owned(), format!("system:serviceaccount:{namespace}:{account}"));
    Ok(Caller { tenant, key_id, subject: None, claims: Some(Arc::new(claims)) })
}

fn has_audience(claims: &Map<String, Value>, audience: &str) -> bool {
    claim_holds(claims.get("aud"), audience)
}

/// A string claim equal to `value`, or an array claim containing it.
fn claim_holds(claim: Option<&Value>, value: &str) -> bool {
    match claim {
        Some(Value::String(text)) => text == value,
        Some(Value::Array(items)) => items.iter().any(|item| item.as_str() == Some(value)),
        _ => false,
    }
}

fn reason(kind: &ErrorKind) -> String {
    match kind {
        ErrorKind::ExpiredSignature => "expired (`exp`)".into(),
        ErrorKind::ImmatureSignature => "not valid yet (`nbf`)".into(),
        ErrorKind::InvalidIssuer => "its issuer is not the one its key belongs to".into(),
        ErrorKind::InvalidSignature => "the signature does not verify".into(),
        ErrorKind::InvalidAlgorithm => "its algorithm does not match its key".into(),
        ErrorKind::MissingRequiredClaim(claim) => format!("no `{claim}` claim"),
        other => format!("{other:?}"),
    }
}

fn allowed_names() -> String {
    ALLOWED.iter().map(|alg| format!("{alg:?}")).collect::<Vec<_>>().join(", ")
}

/// Text from the token, cut short for an error message.
fn shortened(text: &str) -> String {
    let mut text = text.to_owned();
    crate::redact::truncate_to(&mut text, 200);
    text
}

fn invalid(reason: impl Into<String>) -> ApiError {
    ApiError::InvalidToken(reason.into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_token_is_remembered_at_most_a_minute_and_never_past_its_expiry() {
        let now = 1_000_000;
        assert_eq!(remembered_until(Some(now + 3600), now), now + ACCEPTED_FOR_SECONDS);
        assert_eq!(remembered_until(Some(now + 5), now), now + 5 + LEEWAY_SECONDS);
        assert_eq!(remembered_until(Some(u64::MAX), now), now + ACCEPTED_FOR_SECONDS);
        assert_eq!(remembered_until(None, now), 0, "no `exp`: not remembered");
    }

    #[test]
    fn the_memory_of_a_token_is_per_audience() {
        let token = "eyJhbGciOiJFZERTQSJ9.e30.sig";
        let of_tenant = fingerprint(token, Audience::OfTenant);
        assert_ne!(of_tenant, fingerprint(token, Audience::Resource("https://llm.example.com/mcp")));
        assert_ne!(of_tenant, fingerprint("eyJhbGciOiJFZERTQSJ9.e30.sih", Audience::OfTenant));
        assert_eq!(of_tenant, fingerprint(token, Audience::OfTenant));
    }
}
