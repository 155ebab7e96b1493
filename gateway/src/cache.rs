//! Exact-match response cache for deterministic, non-streamed requests.
//!
//! Opt-in: a route's `cache` policy turns it on; a request overrides with `x-switchboard-cache:
//! on|off`. Only requests that ask for a deterministic answer (`temperature: 0` or a `seed`, one
//! choice) are cached, keyed per tenant, so one tenant never sees another's replies. Entries live
//! in process (moka, bounded by bytes) and, with Redis configured, in Redis for every replica: a
//! local miss asks Redis, and a Redis hit is kept locally for the rest of its TTL. Redis is
//! best effort: an error or a reply slower than [`REDIS_TIMEOUT`] counts as a miss.
//! A hit costs nothing and is recorded in the ledger with zero cost.

use std::time::{Duration, Instant};

use bytes::Bytes;
use http::HeaderMap;
use redis::RedisError;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use serde_json::Value;
use sha2::{Digest, Sha256};
use switchboard_crds::resources::CachePolicy;

use crate::chat_request::ChatRequest;
use crate::providers::Completion;

/// The request header that opts a request in or out.
pub const CACHE_HEADER: &str = "x-switchboard-cache";

/// Cache key: SHA-256 over the tenant, the model and the request.
pub type CacheKey = [u8; 32];

/// The longest a cache lookup or store may wait for Redis: a slow cache must not slow requests.
const REDIS_TIMEOUT: Duration = Duration::from_millis(100);

#[derive(Clone)]
pub struct ResponseCache {
    local: moka::sync::Cache<CacheKey, Entry>,
    shared: Option<ConnectionManager>,
}

#[derive(Clone)]
struct Entry {
    body: Completion,
    ttl: Duration,
}

struct PerEntryTtl;

impl moka::Expiry<CacheKey, Entry> for PerEntryTtl {
    fn expire_after_create(&self, _key: &CacheKey, entry: &Entry, _created: Instant) -> Option<Duration> {
        Some(entry.ttl)
    }
}

impl ResponseCache {
    /// A cache holding at most `max_bytes` of serialized replies in process, shared through
    /// Redis when `redis_url` is set. Connects lazily: Redis may be down at startup.
    pub fn new(max_bytes: u64, redis_url: Option<&str>) -> Result<ResponseCache, RedisError> {
        let local = moka::sync::Cache::builder()
            .max_capacity(max_bytes)
            .weigher(|_key, entry: &Entry| u32::try_from(entry.body.json().len()).unwrap_or(u32::MAX))
            .expire_after(PerEntryTtl)
            .build();
        let shared = match redis_url {
            None => None,
            Some(url) => {
                let config = ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_TIMEOUT))
                    .set_response_timeout(Some(REDIS_TIMEOUT))
                    .set_number_of_retries(0);
                Some(ConnectionManager::new_lazy_with_config(redis::Client::open(url)?, config)?)
            }
        };
        Ok(ResponseCache { local, shared })
    }

    pub async fn get(&self, key: &CacheKey) -> Option<Completion> {
        if let Some(entry) = self.local.get(key) {
            return Some(entry.body);
        }
        let mut redis = self.shared.clone()?;
        let (text, ttl_ms): (Option<Vec<u8>>, i64) =
            match redis::pipe().get(redis_key(key)).pttl(redis_key(key)).query_async(&mut redis).await {
                Ok(reply) => reply,
                Err(error) => {
                    tracing::debug!(%error, "shared cache lookup failed; treating it as a miss");
                    return None;
                }
            };
        let body = Completion::parse(Bytes::from(text?)).ok()?;
        let ttl = Duration::from_millis(u64::try_from(ttl_ms).ok().filter(|ms| *ms > 0)?);
        self.local.insert(*key, Entry { body: body.clone(), ttl });
        Some(body)
    }

    /// Stores a reply; the Redis write happens in the background.
    pub fn put(&self, key: CacheKey, body: Completion, ttl: Duration) {
        if let Some(mut redis) = self.shared.clone() {
            let text = body.json().to_vec();
            let ttl_ms = u64::try_from(ttl.as_millis()).unwrap_or(u64::MAX);
            tokio::spawn(async move {
                let stored: Result<(), RedisError> = redis::cmd("SET")
                    .arg(redis_key(&key))
                    .arg(text)
                    .arg("PX")
                    .arg(ttl_ms)
                    .query_async(&mut redis)
                    .await;
                if let Err(error) = stored {
                    tracing::debug!(%error, "shared cache store failed");
                }
            });
        }
        self.local.insert(key, Entry { body, ttl });
    }
}

fn redis_key(key: &CacheKey) -> String {
    format!("switchboard:cache:{}", hex::encode(key))
}

/// How long this request's reply may be cached, or `None` if it must not be.
pub fn ttl_for(route: Option<&CachePolicy>, headers: &HeaderMap) -> Option<Duration> {
    let header = headers.get(CACHE_HEADER).and_then(|v| v.to_str().ok()).map(str::trim);
    let seconds = match (header, route) {
        (Some(off), _) if off.eq_ignore_ascii_case("off") => return None,
        (_, Some(policy)) => policy.ttl_seconds,
        (Some(on), None) if on.eq_ignore_ascii_case("on") => CachePolicy::default().ttl_seconds,
        _ => return None,
    };
    Some(Duration::from_secs(u64::from(seconds)))
}

/// The key for a deterministic, non-streamed request of `tenant`; `None` for any other request.
pub fn key_for(tenant: &str, request: &ChatRequest) -> Option<CacheKey> {
    let deterministic =
        request.field("temperature").and_then(Value::as_f64) == Some(0.0) || request.field("seed").is_some();
    let one_choice = request.field("n").and_then(Value::as_u64).unwrap_or(1) == 1;
    if !deterministic || !one_choice || request.stream() {
        return None;
    }
    let mut hasher = Sha256::new();
    hasher.update(tenant.as_bytes());
    hasher.update([0]);
    // `user` labels the caller for abuse tracking; it does not change the answer.
    let canonical = ChatRequest { user: None, stream: None, ..request.clone() };
    hasher.update(serde_json::to_vec(&canonical).unwrap_or_default());
    Some(hasher.finalize().into())
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    fn key_for(tenant: &str, request: &Value) -> Option<CacheKey> {
        super::key_for(tenant, &ChatRequest::parse(request.clone()).unwrap())
    }

    #[test]
    fn only_deterministic_unstreamed_single_choice_requests_have_keys() {
        let base = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]});
        assert!(key_for("t", &base).is_none(), "sampling without a seed is not deterministic");
        let mut zero = base.clone();
        zero["temperature"] = json!(0);
        assert!(key_for("t", &zero).is_some());
        let mut seeded = base.clone();
        seeded["seed"] = json!(7);
        assert!(key_for("t", &seeded).is_some());
        let mut streamed = zero.clone();
        streamed["stream"] = json!(true);
        assert!(key_for("t", &streamed).is_none());
        let mut many = zero.clone();
        many["n"] = json!(2);
        assert!(key_for("t", &many).is_none());
    }

    #[test]
    fn keys_separate_tenants_and_requests_but_ignore_user() {
        let request =
            json!({"model": "m", "temperature": 0, "messages": [{"role": "user", "content": "hi"}]});
        let mut labelled = request.clone();
        labelled["user"] = json!("someone");
        assert_eq!(key_for("a", &request), key_for("a", &labelled));
        assert_ne!(key_for("a", &request), key_for("b", &request));
        let mut other = request.clone();
        other["messages"][0]["content"] = json!("hello");
        assert_ne!(key_for("a", &request), key_for("a", &other));
    }

    #[test]
    fn route_policy_and_header_decide_the_ttl() {
        let mut headers = HeaderMap::new();
        let policy = CachePolicy { ttl_seconds: 60 };
        assert_eq!(ttl_for(None, &headers), None);
        assert_eq!(ttl_for(Some(&policy), &headers), Some(Duration::from_secs(60)));
        headers.insert(CACHE_HEADER, "off".parse().unwrap());
        assert_eq!(ttl_for(Some(&policy), &headers), None);
        headers.insert(CACHE_HEADER, "on".parse().unwrap());
        assert_eq!(ttl_for(None, &headers), Some(Duration::from_secs(300)));
    }

    #[tokio::test]
    async fn entries_expire_after_their_ttl() {
        let cache = ResponseCache::new(1 << 20, None).unwrap();
        let key = [1; 32];
        cache.put(key, Completion::from_value(&json!({"id": "x"})).unwrap(), Duration::from_millis(30));
        assert_eq!(cache.get(&key).await.map(|body| body.to_value().unwrap()), Some(json!({"id": "x"})));
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(cache.get(&key).await.is_none());
    }
}
