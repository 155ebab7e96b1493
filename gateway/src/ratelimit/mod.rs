//! Request and token rate limits per minute, in this process or shared by replicas through Redis.
//!
//! One algorithm, GCRA ([`gcra`]), serves both stores with identical semantics: the in-process
//! store applies it under a lock, the Redis store in one Lua script over all keys of a request.
//! We do not use the `governor` crate: it can only admit or refuse, while an LLM gateway must also
//! record debt (tokens a response used beyond the estimate admitted before it), and its in-memory
//! state could not be the same algorithm as the one in Redis.

mod gcra;
mod local;
mod redis;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use http::{HeaderName, HeaderValue};

use self::gcra::Limit;
use self::local::LocalStore;
use self::redis::RedisStore;

/// How long Redis is left alone after a failure: requests meanwhile use the local store at once
/// instead of each waiting for a connection attempt.
const REDIS_COOLDOWN_US: u64 = 1_000_000;

/// Which dimension a limit counts, for the OpenAI-style headers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dimension {
    Requests,
    Tokens,
}

/// One limit to check. `key` is already namespaced by the caller, e.g. "tenant/team-a/rpm".
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Check {
    pub key: String,
    pub dimension: Dimension,
    pub per_minute: u64,
    pub cost: u64,
}

#[derive(Debug, thiserror::Error)]
pub enum RateLimitError {
    #[error("invalid Redis URL for rate limits: {0}")]
    InvalidUrl(#[source] ::redis::RedisError),
}

/// What [`RateLimiter::acquire`] decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    Allowed(RateInfo),
    /// Nothing was taken. `retry_after` is when every check would fit, barring other traffic;
    /// `Duration::MAX` when one never can: its cost exceeds the whole per-minute limit.
    Limited {
        retry_after: Duration,
        info: RateInfo,
    },
}

/// The most restrictive quota per dimension, for `x-ratelimit-*` headers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct RateInfo {
    pub requests: Option<Quota>,
    pub tokens: Option<Quota>,
}

/// One limit's state after the decision (before it, when nothing was taken).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Quota {
    pub limit: u64,
    /// The largest cost that would be admitted now.
    pub remaining: u64,
    /// Time until the allowance is whole again.
    pub reset: Duration,
}

/// OpenAI's limit, remaining and reset header names, per dimension.
const REQUESTS_HEADERS: [&str; 3] =
    ["x-ratelimit-limit-requests", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"];
const TOKENS_HEADERS: [&str; 3] =
    ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"];

impl RateInfo {
    /// OpenAI's header names: x-ratelimit-limit-requests, x-ratelimit-remaining-requests,
    /// x-ratelimit-reset-requests (a Go duration such as "12ms", "1s", "6m0s"), and the same three
    /// for tokens; only for dimensions that had a check.
    pub fn headers(&self) -> Vec<(HeaderName, HeaderValue)> {
        let mut headers = Vec::new();
        for (quota, [limit, remaining, reset]) in
            [(&self.requests, REQUESTS_HEADERS), (&self.tokens, TOKENS_HEADERS)]
        {
            let Some(quota) = quota else { continue };
            headers.push((HeaderName::from_static(limit), HeaderValue::from(quota.limit)));
            headers.push((HeaderName::from_static(remaining), HeaderValue::from(quota.remaining)));
            // Digits and unit letters only, so always a valid header value.
            if let Ok(value) = HeaderValue::try_from(go_duration(quota.reset)) {
                headers.push((HeaderName::from_static(reset), value));
            }
        }
        headers
    }
}

/// Formats like Go's `time.Duration` (as OpenAI's headers do), rounded up to milliseconds.
fn go_duration(duration: Duration) -> String {
    let ms = duration.as_micros().div_ceil(1000);
    if ms < 1000 {
        return if ms == 0 { "0s".into() } else { format!("{ms}ms") };
    }
    let (hours, minutes) = (ms / 3_600_000, ms / 60_000 % 60);
    let (seconds, fraction) = (ms / 1000 % 60, ms % 1000);
    let mut text = String::new();
    if hours > 0 {
        text.push_str(&format!("{hours}h"));
    }
    if hours > 0 || minutes > 0 {
        text.push_str(&format!("{minutes}m"));
    }
    if fraction == 0 {
        text.push_str(&format!("{seconds}s"));
    } else {
        let fraction = format!("{fraction:03}");
        text.push_str(&format!("{seconds}.{}s", fraction.trim_end_matches('0')));
    }
    text
}

/// Rate limits, in this process or shared through Redis. Cheap to clone: clones share state.
#[derive(Clone)]
pub struct RateLimiter {
    local: Arc<LocalStore>,
    shared: Option<Arc<Shared>>,
}

/// The Redis store and how it has been faring.
struct Shared {
    store: RedisStore,
    fallbacks: AtomicU64,
    /// Whether the last call to Redis succeeded: a warning is logged once per outage, not per request.
    healthy: AtomicBool,
    /// Local clock time (µs) before which Redis is not tried again after a failure.
    retry_at: AtomicU64,
}

impl RateLimiter {
    /// Limits counted in this process only.
    pub fn local() -> Self {
        RateLimiter { local: Arc::new(LocalStore::new()), shared: None }
    }

    /// Shared across replicas; falls back to the local limiter (logging a warning, counting
    /// `fallbacks()`) while Redis is unreachable, so an outage degrades to per-replica limits, not
    /// an outage. Only an invalid URL fails: an unreachable Redis at startup is logged (after at
    /// most the connect timeout) and handled like any outage.
    pub async fn redis(url: &str) -> Result<Self, RateLimitError> {
        let store = RedisStore::new(url).map_err(RateLimitError::InvalidUrl)?;
        let startup = store.ping().await;
        let shared = Shared {
            store,
            fallbacks: AtomicU64::new(0),
            healthy: AtomicBool::new(startup.is_ok()),
            retry_at: AtomicU64::new(0),
        };
        if let Err(error) = startup {
            tracing::warn!(%error, "Redis is unreachable; rate limits are counted per replica until it is back");
        }
        Ok(RateLimiter { local: Arc::new(LocalStore::new()), shared: Some(Arc::new(shared)) })
    }

    /// All-or-nothing: admits only if every check fits, and then consumes from all of them.
    pub async fn acquire(&self, checks: &[Check]) -> Decision {
        if let Some(shared) = self.redis_to_try() {
            match shared.store.acquire(checks).await {
                Ok(decision) => {
                    self.redis_succeeded(shared);
                    return decision;
                }
                Err(error) => self.redis_failed(shared, &error),
            }
        }
        self.local.acquire(checks, self.local.now())
    }

    /// Adds `cost` to the key unconditionally (debt), e.g. tokens counted after a response
    /// beyond the estimate admitted before it. Later requests wait until the debt is repaid.
    pub async fn charge(&self, key: &str, per_minute: u64, cost: u64) {
        let limit = Limit::per_minute(per_minute);
        if let Some(shared) = self.redis_to_try() {
            match shared.store.charge(key, limit, cost).await {
                Ok(()) => {
                    self.redis_succeeded(shared);
                    return;
                }
                Err(error) => self.redis_failed(shared, &error),
            }
        }
        self.local.charge(key, limit, cost, self.local.now());
    }

    /// Times Redis was unavailable and the local store answered.
    pub fn fallbacks(&self) -> u64 {
        self.shared.as_ref().map_or(0, |shared| shared.fallbacks.load(Ordering::Relaxed))
    }

    /// The Redis store unless there is none or it failed moments ago; counts a fallback then.
    fn redis_to_try(&self) -> Option<&Shared> {
        let shared = self.shared.as_deref()?;
        if self.local.now() < shared.retry_at.load(Ordering::Relaxed) {
            shared.fallbacks.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        Some(shared)
    }

    fn redis_succeeded(&self, shared: &Shared) {
        if !shared.healthy.swap(true, Ordering::Relaxed) {
            tracing::info!("Redis is reachable again; rate limits are shared across replicas");
        }
    }

    fn redis_failed(&self, shared: &Shared, error: &::redis::RedisError) {
        shared.fallbacks.fetch_add(1, Ordering::Relaxed);
        shared.retry_at.store(self.local.now().saturating_add(REDIS_COOLDOWN_US), Ordering::Relaxed);
        if shared.healthy.swap(false, Ordering::Relaxed) {
            tracing::warn!(%error, "Redis is unreachable; rate limits are counted per replica until it is back");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_are_formatted_like_go_and_openai() {
        let cases = [
            (Duration::ZERO, "0s"),
            (Duration::from_micros(1), "1ms"),
            (Duration::from_micros(11_001), "12ms"),
            (Duration::from_millis(999), "999ms"),
            (Duration::from_secs(1), "1s"),
            (Duration::from_millis(1_500), "1.5s"),
            (Duration::from_millis(20_250), "20.25s"),
            (Duration::from_secs(60), "1m0s"),
            (Duration::from_secs(360), "6m0s"),
            (Duration::from_millis(61_001), "1m1.001s"),
            (Duration::from_secs(3_600), "1h0m0s"),
            (Duration::from_secs(3_725), "1h2m5s"),
        ];
        for (duration, expected) in cases {
            assert_eq!(go_duration(duration), expected, "{duration:?}");
        }
    }

    #[test]
    fn headers_cover_only_the_checked_dimensions() {
        let quota = Quota { limit: 60, remaining: 59, reset: Duration::from_secs(1) };
        let info = RateInfo { requests: Some(quota), tokens: None };
        let headers: Vec<(String, String)> = info
            .headers()
            .into_iter()
            .map(|(name, value)| (name.to_string(), value.to_str().unwrap().to_owned()))
            .collect();
        let expected = [
            ("x-ratelimit-limit-requests", "60"),
            ("x-ratelimit-remaining-requests", "59"),
            ("x-ratelimit-reset-requests", "1s"),
        ];
        assert_eq!(headers, expected.map(|(n, v)| (n.to_owned(), v.to_owned())));

        let tokens = Quota { limit: 150_000, remaining: 149_984, reset: Duration::from_secs(360) };
        let info = RateInfo { requests: None, tokens: Some(tokens) };
        let names: Vec<String> = info.headers().into_iter().map(|(name, _)| name.to_string()).collect();
        assert_eq!(
            names,
            ["x-ratelimit-limit-tokens", "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"]
        );
        assert_eq!(info.headers()[2].1, "6m0s");
        assert!(RateInfo::default().headers().is_empty());
    }

    #[tokio::test]
    async fn local_limiter_takes_all_checks_or_none() {
        let limiter = RateLimiter::local();
        let rpm = |cost| Check { key: "t/rpm".into(), dimension: Dimension::Requests, per_minute: 5, cost };
        let tpm = |cost| Check { key: "t/tpm".into(), dimension: Dimension::Tokens, per_minute: 100, cost };
        assert!(matches!(limiter.acquire(&[rpm(1), tpm(80)]).await, Decision::Allowed(_)));
        // 30 tokens do not fit in the 20 left, so the request cell is not taken either.
        for _ in 0..3 {
            assert!(matches!(limiter.acquire(&[rpm(1), tpm(30)]).await, Decision::Limited { .. }));
        }
        let Decision::Allowed(info) = limiter.acquire(&[rpm(1), tpm(20)]).await else { panic!() };
        assert_eq!(info.requests.map(|q| q.remaining), Some(3));
        assert_eq!(info.tokens.map(|q| q.remaining), Some(0));
        assert_eq!(limiter.fallbacks(), 0);
    }

    #[tokio::test]
    async fn charged_debt_makes_later_requests_wait() {
        let limiter = RateLimiter::local();
        let tpm = |cost| Check { key: "t/tpm".into(), dimension: Dimension::Tokens, per_minute: 600, cost };
        assert!(matches!(limiter.acquire(&[tpm(100)]).await, Decision::Allowed(_)));
        // The response used 1,100 tokens instead of 100: 1,100 tokens take 110 s to refill, 50 s
        // beyond the minute a key may run ahead, so even a request of no tokens waits 50 s.
        limiter.charge("t/tpm", 600, 1_000).await;
        let Decision::Limited { retry_after, info } = limiter.acquire(&[tpm(0)]).await else { panic!() };
        assert!(
            retry_after > Duration::from_secs(49) && retry_after <= Duration::from_secs(50),
            "{retry_after:?}"
        );
        assert_eq!(info.tokens.map(|q| q.remaining), Some(0));
        assert!(info.tokens.is_some_and(|q| q.reset > Duration::from_secs(109)));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 4)]
    async fn concurrent_tasks_on_one_key_admit_exactly_the_allowance() {
        let limiter = RateLimiter::local();
        let tasks: Vec<_> = (0..64)
            .map(|_| {
                let limiter = limiter.clone();
                tokio::spawn(async move {
                    let check =
                        Check { key: "hot".into(), dimension: Dimension::Requests, per_minute: 10, cost: 1 };
                    let mut admitted = 0;
                    for _ in 0..4 {
                        if matches!(limiter.acquire(std::slice::from_ref(&check)).await, Decision::Allowed(_))
                        {
                            admitted += 1;
                        }
                    }
                    admitted
                })
            })
            .collect();
        let mut admitted = 0;
        for task in tasks {
            admitted += task.await.unwrap();
        }
        // One cell refills every 6 s, far longer than this test takes.
        assert_eq!(admitted, 10);
    }
}
