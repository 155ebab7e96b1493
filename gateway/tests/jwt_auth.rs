//! Bearer JWTs from identity providers a Tenant trusts (`spec.jwtIssuers`): accepted with every
//! check passing, mapped to the right tenant, key name and subject; refused, with the reason in
//! the API's error shape, for each way a token can be wrong; and the issuer's keys cached across
//! a rotation and an outage.
//!
//! The identity provider here is a small in-test OIDC discovery + JWKS server with Ed25519 keys,
//! so that the tests can sign the tokens real providers never issue (expired, foreign, `alg:
//! none`). The same flow against a real OpenID Connect provider is in `tests/sdk/test_oidc.py`.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use common::{ADMIN_TOKEN, Harness, TEAM_KEY, eventually};
use jsonwebtoken::jwk::Jwk;
use jsonwebtoken::{Algorithm, EncodingKey, Header, encode, get_current_timestamp};
use serde_json::{Value, json};

/// An identity provider: its signing keys, whether it answers, and how often its keys were read.
#[derive(Default)]
struct Provider {
    keys: Vec<Jwk>,
    down: bool,
    key_fetches: u32,
}

type Shared = Arc<Mutex<Provider>>;

struct Idp {
    addr: SocketAddr,
    state: Shared,
}

impl Idp {
    async fn start() -> Idp {
        let state = Shared::default();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let app = axum::Router::new()
            .route("/.well-known/openid-configuration", get(discovery))
            .route("/keys", get(keys))
            .with_state(state.clone());
        tokio::spawn(async move { axum::serve(listener, app).await });
        Idp { addr, state }
    }

    fn issuer(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn publish(&self, key: &SigningKey) {
        self.state.lock().unwrap().keys.push(key.jwk.clone());
    }

    fn set_down(&self, down: bool) {
        self.state.lock().unwrap().down = down;
    }

    fn key_fetches(&self) -> u32 {
        self.state.lock().unwrap().key_fetches
    }
}

async fn discovery(State(state): State<Shared>, headers: axum::http::HeaderMap) -> Response {
    if state.lock().unwrap().down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    let host = headers.get("host").and_then(|h| h.to_str().ok()).unwrap_or_default().to_owned();
    Json(json!({"issuer": format!("http://{host}"), "jwks_uri": format!("http://{host}/keys")}))
        .into_response()
}

async fn keys(State(state): State<Shared>) -> Response {
    let mut provider = state.lock().unwrap();
    if provider.down {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    }
    provider.key_fetches += 1;
    Json(json!({"keys": provider.keys})).into_response()
}

/// An Ed25519 signing key and its public JWK.
struct SigningKey {
    kid: String,
    encoding: EncodingKey,
    jwk: Jwk,
}

impl SigningKey {
    fn new(kid: &str) -> SigningKey {
        // PKCS#8 DER of an Ed25519 private key: a fixed header, then the 32-byte seed.
        let mut der = hex_bytes("302e020100300506032b657004220420");
        der.extend(rand::random::<[u8; 32]>());
        let encoding = EncodingKey::from_ed_der(&der);
        let mut jwk = Jwk::from_encoding_key(&encoding, Algorithm::EdDSA).unwrap();
        jwk.common.key_id = Some(kid.to_owned());
        SigningKey { kid: kid.to_owned(), encoding, jwk }
    }

    fn sign(&self, claims: &Value) -> String {
        let mut header = Header::new(Algorithm::EdDSA);
        header.kid = Some(self.kid.clone());
        encode(&header, claims, &self.encoding).unwrap()
    }
}

fn hex_bytes(hex: &str) -> Vec<u8> {
    (0..hex.len()).step_by(2).map(|i| u8::from_str_radix(&hex[i..i + 2], 16).unwrap()).collect()
}

fn b64(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, b)| n | u32::from(*b) << (16 - 8 * i));
        for i in 0..=chunk.len() {
            out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
        }
    }
    out
}

/// Claims that pass every check for tenant `team` of `idp`.
fn claims(idp: &Idp, team: &str) -> Value {
    let now = get_current_timestamp();
    json!({"iss": idp.issuer(), "aud": ["other-service", "switchboard"], "sub": "client-7",
        "email": "ada@example.com", "team": team, "iat": now, "nbf": now, "exp": now + 300})
}

fn with(mut claims: Value, changes: Value) -> Value {
    for (name, value) in changes.as_object().unwrap() {
        if value.is_null() {
            claims.as_object_mut().unwrap().remove(name);
        } else {
            claims[name] = value.clone();
        }
    }
    claims
}

const TENANTS: &str = r#"
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: alpha}
spec:
  jwtIssuers:
    - name: sso
      issuer: "{ISSUER}"
      audiences: [switchboard]
      requiredClaims: {team: alpha}
      subjectClaim: email
      rateLimits: {requestsPerMinute: 1000}
  allowedRoutes: [echo]
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: beta}
spec:
  jwtIssuers:
    - {name: sso, issuer: "{ISSUER}", audiences: [switchboard], requiredClaims: {team: beta}}
  allowedRoutes: [openai-route]
---
apiVersion: switchboard.dev/v1alpha1
kind: Tenant
metadata: {name: gamma}
spec:
  jwtIssuers:
    - {name: unreachable, issuer: "http://127.0.0.1:9", audiences: [switchboard]}
"#;

async fn chat(h: &Harness, token: &str, model: &str) -> (u16, Value) {
    let body = json!({"model": model, "messages": [{"role": "user", "content": "hi"}]});
    let response = h.post("/v1/chat/completions", token, &body).await;
    let status = response.status().as_u16();
    (status, response.json().await.unwrap())
}

/// The refusal's status, OpenAI error code and message.
async fn refusal(h: &Harness, token: &str) -> (u16, String, String) {
    let (status, body) = chat(h, token, "demo-echo").await;
    let error = &body["error"];
    (
        status,
        error["code"].as_str().unwrap_or_default().to_owned(),
        error["message"].as_str().unwrap_or_default().to_owned(),
    )
}

async fn setup() -> (Harness, Idp, SigningKey) {
    let idp = Idp::start().await;
    let key = SigningKey::new("k1");
    idp.publish(&key);
    let mut h = Harness::start().await;
    h.restart_with("jwt.yaml", &TENANTS.replace("{ISSUER}", &idp.issuer())).await;
    (h, idp, key)
}

#[tokio::test]
async fn a_trusted_token_calls_as_its_tenant_with_its_subject() {
    let (h, idp, key) = setup().await;
    let token = key.sign(&claims(&idp, "alpha"));
    let (status, body) = chat(&h, &token, "demo-echo").await;
    assert_eq!(status, 200, "{body}");

    // Beta's model is not alpha's: the same 404 as for any model a tenant may not use.
    let (status, body) = chat(&h, &token, "fake-model").await;
    assert_eq!((status, body["error"]["code"].as_str()), (404, Some("model_not_found")), "{body}");
    // A token of beta is beta's, on beta's route.
    let (status, body) = chat(&h, &key.sign(&claims(&idp, "beta")), "fake-model").await;
    assert_eq!(status, 200, "{body}");
    // API keys keep working beside tokens.
    assert_eq!(chat(&h, TEAM_KEY, "demo-echo").await.0, 200);

    eventually("three ledger rows", || async { h.ledger_rows().await.len() >= 3 }).await;
    let rows = h.ledger_rows().await;
    let callers: Vec<(&str, &str)> = rows
        .iter()
        .filter(|r| r["status"] == 200)
        .map(|r| (r["tenant"].as_str().unwrap(), r["api_key"].as_str().unwrap()))
        .collect();
    assert_eq!(callers, [("alpha", "sso"), ("beta", "sso"), ("team", "ci")]);
    // The request log names the subject from the token's `email` claim (alpha's subjectClaim).
    let (_, log) = h.get_text("/admin/v1/requests?tenant=alpha&limit=10", ADMIN_TOKEN).await;
    let log: Value = serde_json::from_str(&log).unwrap();
    let subjects: Vec<&str> =
        log["data"].as_array().unwrap().iter().filter_map(|r| r["subject"].as_str()).collect();
    assert_eq!(subjects, ["ada@example.com", "ada@example.com"], "{log}");
    let text = serde_json::to_string(&log).unwrap();
    assert!(!text.contains(&token), "a token in the request log");
    // The admin view of the tenant names whom it trusts.
    let (_, alpha) = h.get_text("/admin/v1/tenants/alpha", ADMIN_TOKEN).await;
    let alpha: Value = serde_json::from_str(&alpha).unwrap();
    assert_eq!(alpha["jwt_issuers"][0]["issuer"], idp.issuer(), "{alpha}");
    assert_eq!(alpha["jwt_issuers"][0]["subject_claim"], "email");
}

#[tokio::test]
async fn every_wrong_token_is_refused_with_its_reason() {
    let (h, idp, key) = setup().await;
    let good = claims(&idp, "alpha");
    let now = get_current_timestamp();
    let stranger = SigningKey::new("k1");
    let public_key = key.jwk.clone();
    let public_x = match &public_key.algorithm {
        jsonwebtoken::jwk::AlgorithmParameters::OctetKeyPair(okp) => okp.x.clone(),
        other => panic!("{other:?}"),
    };
    let unsigned = format!("{}.{}.", b64(br#"{"alg":"none","typ":"JWT"}"#), b64(good.to_string().as_bytes()));
    // HS256 "signed" with the issuer's public key, the classic key-confusion attack.
    let mut hmac = Header::new(Algorithm::HS256);
    hmac.kid = Some("k1".into());
    let confused = encode(&hmac, &good, &EncodingKey::from_secret(public_x.as_bytes()).unwrap()).unwrap();
    let cases: Vec<(&str, String, &str)> = vec![
        ("alg none", unsigned, "cannot be read"),
        ("HMAC with the public key", confused, "HS256"),
        ("expired", key.sign(&with(good.clone(), json!({"exp": now - 120}))), "expired"),
        ("not yet valid", key.sign(&with(good.clone(), json!({"nbf": now + 600}))), "not valid yet"),
        ("issued in the future", key.sign(&with(good.clone(), json!({"iat": now + 600}))), "future"),
        ("no exp", key.sign(&with(good.clone(), json!({"exp": null}))), "`exp`"),
        (
            "wrong issuer",
            key.sign(&with(good.clone(), json!({"iss": "https://idp.evil.example"}))),
            "no tenant trusts",
        ),
        (
            "wrong audience",
            key.sign(&with(good.clone(), json!({"aud": "another-api"}))),
            "audience or claims",
        ),
        (
            "claims of no tenant",
            key.sign(&with(good.clone(), json!({"team": "delta"}))),
            "audience or claims",
        ),
        (
            "claims of two tenants",
            key.sign(&with(good.clone(), json!({"team": ["alpha", "beta"]}))),
            "several tenants",
        ),
        ("no subject claim", key.sign(&with(good.clone(), json!({"email": null}))), "`email`"),
        ("another key, same kid", stranger.sign(&good), "signature does not verify"),
    ];
    for (what, token, reason) in cases {
        let (status, code, message) = refusal(&h, &token).await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"), "{what}: {message}");
        assert!(message.contains(reason), "{what}: {message:?} does not say {reason:?}");
        assert!(!message.contains(&token), "{what}: the token echoed");
    }
    // The Anthropic API refuses in its own shape.
    let expired = key.sign(&with(good.clone(), json!({"exp": now - 120})));
    let body =
        json!({"model": "demo-echo", "max_tokens": 8, "messages": [{"role": "user", "content": "hi"}]});
    let response = h.post("/v1/messages", &expired, &body).await;
    assert_eq!(response.status(), 401);
    assert_eq!(response.headers()["www-authenticate"], "Bearer error=\"invalid_token\"");
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["type"], "authentication_error", "{body}");
    // The ledger saw none of them: a refused credential is no tenant's request.
    assert!(h.ledger_rows().await.is_empty());
}

#[tokio::test]
async fn keys_rotate_and_survive_an_outage_then_fail_closed() {
    let (h, idp, first) = setup().await;
    assert_eq!(chat(&h, &first.sign(&claims(&idp, "alpha")), "demo-echo").await.0, 200);
    assert_eq!(idp.key_fetches(), 1);

    // Forged key ids cannot make the gateway hammer the provider: at most one fetch per 10 s.
    for i in 0..20 {
        let (status, code, _) =
            refusal(&h, &SigningKey::new(&format!("forged-{i}")).sign(&claims(&idp, "alpha"))).await;
        assert_eq!((status, code.as_str()), (401, "invalid_token"));
    }
    assert!(idp.key_fetches() <= 2, "{} fetches", idp.key_fetches());

    // A rotation: the provider publishes a new key and signs with it; the gateway fetches the
    // set again (once its refresh interval allows) and accepts it.
    let second = SigningKey::new("k2");
    idp.publish(&second);
    let rotated = second.sign(&claims(&idp, "alpha"));
    let mut status = 0;
    for _ in 0..30 {
        status = chat(&h, &rotated, "demo-echo").await.0;
        if status == 200 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    assert_eq!(status, 200, "the rotated key was never accepted");

    // The provider goes down: keys already fetched keep working, a key never seen fails closed.
    idp.set_down(true);
    assert_eq!(chat(&h, &first.sign(&claims(&idp, "alpha")), "demo-echo").await.0, 200);
    assert_eq!(chat(&h, &rotated, "demo-echo").await.0, 200);
    let (status, code, _) = refusal(&h, &SigningKey::new("k3").sign(&claims(&idp, "alpha"))).await;
    assert_eq!((status, code.as_str()), (401, "invalid_token"));

    // An issuer whose keys were never had: 503, retryable, not a silent accept.
    let mut never = claims(&idp, "alpha");
    never["iss"] = json!("http://127.0.0.1:9");
    let (status, code, message) = refusal(&h, &first.sign(&never)).await;
    assert_eq!((status, code.as_str()), (503, "identity_provider_unavailable"), "{message}");
}

#[tokio::test]
async fn a_token_that_passed_is_remembered_only_under_its_config() {
    let (h, idp, key) = setup().await;
    let token = key.sign(&claims(&idp, "alpha"));
    for _ in 0..3 {
        assert_eq!(chat(&h, &token, "demo-echo").await.0, 200);
    }
    // The config changes (alpha stops trusting the issuer's tokens): the token the gateway
    // remembers as checked is refused at once, not when its memory of it runs out.
    let untrusting = TENANTS.replace("{ISSUER}", &idp.issuer()).replacen(
        "requiredClaims: {team: alpha}",
        "requiredClaims: {team: nobody}",
        1,
    );
    common::write_config(&h.config_dir(), "jwt.yaml", &untrusting);
    eventually("the token refused under the new config", || async {
        chat(&h, &token, "demo-echo").await.0 == 401
    })
    .await;
}
