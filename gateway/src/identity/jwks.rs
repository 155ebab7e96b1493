//! The signing keys of the identity providers tenants trust, fetched from their JWKS and cached.
//!
//! A key set is fetched on first use and again when a token names a key it does not hold (a
//! rotation) or when it is older than [`MAX_AGE`]; one issuer is fetched at most once per
//! [`MIN_REFRESH`], however many tokens name unknown keys, so forged `kid`s cannot make the
//! gateway hammer an identity provider. When a fetch fails the last good keys keep serving; a key
//! never fetched fails closed.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use futures::StreamExt;
use jsonwebtoken::jwk::{AlgorithmParameters, Jwk, KeyAlgorithm, PublicKeyUse};
use jsonwebtoken::{Algorithm, DecodingKey};
use serde::Deserialize;
use serde_json::Value;

/// A key set older than this is fetched again before use (keys that left it stop working then).
pub const MAX_AGE: Duration = Duration::from_secs(300);
/// One issuer's keys are fetched at most this often.
pub const MIN_REFRESH: Duration = Duration::from_secs(10);
/// Bounds on what an identity provider sends: the discovery document and the key set.
const MAX_DOCUMENT_BYTES: usize = 256 * 1024;
const MAX_KEYS: usize = 64;
const FETCH_TIMEOUT: Duration = Duration::from_secs(5);

/// Where an issuer's keys are: over HTTP(S) (its OIDC discovery, or a JWKS URL), or through the
/// Kubernetes API server the gateway runs against (its ServiceAccount issuer).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum KeySource {
    Http { issuer: String, jwks_uri: Option<String> },
    Kubernetes,
}

/// One verification key: the issuer it signs for, and the algorithm its JWK pins, if any.
pub struct Key {
    pub key: DecodingKey,
    pub algorithm: Option<Algorithm>,
    pub issuer: Arc<str>,
}

/// Why no key could be had.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    #[error("the token names no key (`kid`) and its issuer has {0} keys")]
    NoKid(usize),
    #[error("the issuer has no key {0:?}")]
    UnknownKid(String),
    #[error("{0}")]
    Unavailable(String),
}

/// Every trusted issuer's keys, shared by all requests and kept across config reloads.
pub struct KeyCache {
    http: reqwest::Client,
    kube: Option<kube::Client>,
    issuers: Mutex<HashMap<KeySource, Arc<IssuerKeys>>>,
}

#[derive(Default)]
struct IssuerKeys {
    current: RwLock<Option<Arc<KeySet>>>,
    /// Held while fetching (one fetch at a time), with when the last one was tried and why it failed.
    fetch: tokio::sync::Mutex<Option<(Instant, Option<String>)>>,
}

struct KeySet {
    keys: HashMap<String, Arc<Key>>,
    /// The keys without a `kid`, usable only when the set has a single key.
    anonymous: Option<Arc<Key>>,
    fetched: Instant,
}

impl KeySet {
    fn find(&self, kid: Option<&str>) -> Result<Arc<Key>, KeyError> {
        match kid {
            Some(kid) => self.keys.get(kid).cloned().ok_or_else(|| KeyError::UnknownKid(kid.to_owned())),
            None => match (self.keys.len(), &self.anonymous) {
                (0, Some(key)) => Ok(key.clone()),
                (1, None) => Ok(self.keys.values().next().cloned().ok_or(KeyError::NoKid(0))?),
                (n, _) => Err(KeyError::NoKid(n + usize::from(self.anonymous.is_some()))),
            },
        }
    }
}

impl KeyCache {
    pub fn new(kube: Option<kube::Client>) -> Result<KeyCache, reqwest::Error> {
        let http = reqwest::Client::builder()
            .timeout(FETCH_TIMEOUT)
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()?;
        Ok(KeyCache { http, kube, issuers: Mutex::default() })
    }

    /// Whether ServiceAccount tokens can be checked (the gateway talks to an API server).
    pub fn has_kubernetes(&self) -> bool {
        self.kube.is_some()
    }

    /// The key `kid` of `source`, fetching the set when it is missing, stale or lacks the key.
    pub async fn key(&self, source: &KeySource, kid: Option<&str>) -> Result<Arc<Key>, KeyError> {
        let issuer = self.issuer(source);
        let cached = issuer.current();
        if let Some(set) = &cached
            && set.fetched.elapsed() < MAX_AGE
            && let Ok(key) = set.find(kid)
        {
            return Ok(key);
        }
        let mut fetch = issuer.fetch.lock().await;
        // Another request may have fetched while this one waited.
        let cached = issuer.current();
        if let Some(set) = &cached
            && set.fetched.elapsed() < MAX_AGE
            && let Ok(key) = set.find(kid)
        {
            return Ok(key);
        }
        let recently = fetch.as_ref().is_some_and(|(at, _)| at.elapsed() < MIN_REFRESH);
        if !recently {
            let outcome = self.fetch(source).await;
            *fetch = Some((Instant::now(), outcome.as_ref().err().cloned()));
            match outcome {
                Ok(set) => *issuer.current.write().unwrap_or_else(|e| e.into_inner()) = Some(Arc::new(set)),
                Err(problem) => {
                    tracing::warn!(?source, %problem, "cannot fetch an identity provider's keys; keeping the last good ones")
                }
            }
        }
        match (issuer.current(), fetch.as_ref().and_then(|(_, problem)| problem.clone())) {
            (Some(set), _) => set.find(kid),
            (None, problem) => {
                Err(KeyError::Unavailable(problem.unwrap_or_else(|| "not fetched yet".into())))
            }
        }
    }

    fn issuer(&self, source: &KeySource) -> Arc<IssuerKeys> {
        let mut issuers = self.issuers.lock().unwrap_or_else(|e| e.into_inner());
        issuers.entry(source.clone()).or_default().clone()
    }

    async fn fetch(&self, source: &KeySource) -> Result<KeySet, String> {
        let (issuer, jwks) = match source {
            KeySource::Http { issuer, jwks_uri: Some(uri) } => (issuer.clone(), self.get_http(uri).await?),
            KeySource::Http { issuer, jwks_uri: None } => {
                let url = format!("{}/.well-known/openid-configuration", issuer.trim_end_matches('/'));
                let discovery = self.get_http(&url).await?;
                let uri = discovered_jwks_uri(&discovery, issuer)?;
                (issuer.clone(), self.get_http(&uri).await?)
            }
            KeySource::Kubernetes => {
                let discovery = self.get_kube("/.well-known/openid-configuration").await?;
                let issuer =
                    discovery.get("issuer").and_then(Value::as_str).ok_or("no `issuer` in the discovery")?;
                let uri = discovered_jwks_uri(&discovery, issuer)?;
                // The advertised URL may name the issuer's public address; the keys are read
                // through the API server the gateway already trusts, at the same path.
                let path = uri.parse::<http::Uri>().map_err(|e| format!("`jwks_uri` {uri:?}: {e}"))?;
                (issuer.to_owned(), self.get_kube(path.path()).await?)
            }
        };
        key_set(&jwks, issuer.into())
    }

    async fn get_http(&self, url: &str) -> Result<Value, String> {
        let response = self.http.get(url).send().await.map_err(|e| format!("GET {url}: {e}"))?;
        let status = response.status();
        if !status.is_success() {
            return Err(format!("GET {url}: HTTP {status}"));
        }
        let body = read_bounded(response, MAX_DOCUMENT_BYTES).await.map_err(|e| format!("GET {url}: {e}"))?;
        serde_json::from_slice(&body).map_err(|e| format!("GET {url}: not JSON: {e}"))
    }

    async fn get_kube(&self, path: &str) -> Result<Value, String> {
        let client = self.kube.as_ref().ok_or("the gateway has no Kubernetes API server to ask")?;
        let request = http::Request::get(path).body(Vec::new()).map_err(|e| e.to_string())?;
        let text = tokio::time::timeout(FETCH_TIMEOUT, client.request_text(request))
            .await
            .map_err(|_| format!("GET {path} from the API server: timed out"))?
            .map_err(|e| format!("GET {path} from the API server: {e}"))?;
        if text.len() > MAX_DOCUMENT_BYTES {
            return Err(format!("GET {path}: larger than {MAX_DOCUMENT_BYTES} bytes"));
        }
        serde_json::from_str(&text).map_err(|e| format!("GET {path}: not JSON: {e}"))
    }
}

/// An identity provider's answer, read no further than `max` bytes as it streams in.
pub async fn read_bounded(response: reqwest::Response, max: usize) -> Result<Vec<u8>, String> {
    let mut body = Vec::new();
    let mut chunks = response.bytes_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk = chunk.map_err(|e| e.to_string())?;
        if body.len() + chunk.len() > max {
            return Err(format!("larger than {max} bytes"));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

impl IssuerKeys {
    fn current(&self) -> Option<Arc<KeySet>> {
        self.current.read().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// The `jwks_uri` of a discovery document, which must be the issuer's own (OIDC Discovery 4.3).
fn discovered_jwks_uri(discovery: &Value, issuer: &str) -> Result<String, String> {
    let stated = discovery.get("issuer").and_then(Value::as_str).unwrap_or_default();
    if stated != issuer {
        return Err(format!("the discovery document names issuer {stated:?}, not {issuer:?}"));
    }
    let uri = discovery.get("jwks_uri").and_then(Value::as_str).ok_or("no `jwks_uri` in the discovery")?;
    Ok(uri.to_owned())
}

#[derive(Deserialize)]
struct JwkSetDocument {
    keys: Vec<Value>,
}

/// The signing keys of a JWKS document: keys for encryption, of unknown types or malformed are
/// left out (one odd key must not take the others down).
fn key_set(document: &Value, issuer: Arc<str>) -> Result<KeySet, String> {
    let document = JwkSetDocument::deserialize(document).map_err(|e| format!("not a JWK set: {e}"))?;
    if document.keys.len() > MAX_KEYS {
        return Err(format!("{} keys; at most {MAX_KEYS} are read", document.keys.len()));
    }
    let mut set = KeySet { keys: HashMap::new(), anonymous: None, fetched: Instant::now() };
    for value in document.keys {
        let Ok(jwk) = serde_json::from_value::<Jwk>(value) else { continue };
        // A shared secret has no place in a public key set: never an HMAC key.
        if matches!(jwk.common.public_key_use, Some(PublicKeyUse::Encryption))
            || matches!(jwk.algorithm, AlgorithmParameters::OctetKey(_))
        {
            continue;
        }
        let Ok(key) = DecodingKey::from_jwk(&jwk) else { continue };
        let algorithm = jwk.common.key_algorithm.and_then(signing_algorithm);
        let key = Arc::new(Key { key, algorithm, issuer: issuer.clone() });
        match jwk.common.key_id {
            Some(kid) => {
                set.keys.insert(kid, key);
            }
            None => set.anonymous = Some(key),
        }
    }
    if set.keys.is_empty() && set.anonymous.is_none() {
        return Err("the key set has no usable signing key".into());
    }
    Ok(set)
}

/// A JWK's `alg` as a signing algorithm (encryption algorithms are none).
fn signing_algorithm(alg: KeyAlgorithm) -> Option<Algorithm> {
    Some(match alg {
        KeyAlgorithm::RS256 => Algorithm::RS256,
        KeyAlgorithm::RS384 => Algorithm::RS384,
        KeyAlgorithm::RS512 => Algorithm::RS512,
        KeyAlgorithm::PS256 => Algorithm::PS256,
        KeyAlgorithm::PS384 => Algorithm::PS384,
        KeyAlgorithm::PS512 => Algorithm::PS512,
        KeyAlgorithm::ES256 => Algorithm::ES256,
        KeyAlgorithm::ES384 => Algorithm::ES384,
        KeyAlgorithm::EdDSA => Algorithm::EdDSA,
        _ => return None,
    })
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn discovery_must_name_the_issuer_itself() {
        let doc = json!({"issuer": "https://evil.example", "jwks_uri": "https://evil.example/keys"});
        assert!(discovered_jwks_uri(&doc, "https://idp.example").is_err());
        let doc = json!({"issuer": "https://idp.example", "jwks_uri": "https://idp.example/keys"});
        assert_eq!(
            discovered_jwks_uri(&doc, "https://idp.example").as_deref(),
            Ok("https://idp.example/keys")
        );
    }

    #[test]
    fn odd_keys_are_left_out_and_an_empty_set_is_an_error() {
        let ec = json!({"kty": "EC", "crv": "P-256", "kid": "ec", "use": "sig",
            "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let doc = json!({"keys": [ec, {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"}, {"kty": "weird", "kid": "weird"}, {"kty": "EC", "kid": "enc", "use": "enc",
            "crv": "P-256", "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU", "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]});
        let set = key_set(&doc, "https://idp.example".into());
        let set = set.as_ref().map(|s| s.keys.keys().cloned().collect::<Vec<_>>());
        assert_eq!(set, Ok(vec!["ec".to_owned()]));
        assert!(key_set(&json!({"keys": []}), "i".into()).is_err());
        assert!(key_set(&json!({"keys": "no"}), "i".into()).is_err());
    }
}
