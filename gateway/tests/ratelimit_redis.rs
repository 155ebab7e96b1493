//! The rate limiter shared through a real Redis (`make test` starts one and sets
//! SWITCHBOARD_TEST_REDIS_URL; `scripts/redis.sh start DIR` starts one by hand).
//!
//! Limits here are small (a cell every few seconds) so that counts are exact however slowly the
//! test runs; nothing asserts on speed.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test should panic loudly

use std::time::Duration;

use redis::AsyncCommands;
use switchboard_gateway::ratelimit::{Check, Decision, Dimension, RateLimiter};

fn redis_url() -> String {
    std::env::var("SWITCHBOARD_TEST_REDIS_URL").unwrap_or_else(|_| {
        panic!("SWITCHBOARD_TEST_REDIS_URL is not set: run `make test`, which starts a throwaway Redis")
    })
}

/// A key no other test (or earlier run) uses.
fn fresh_key(name: &str) -> String {
    format!("test/{}/{name}", uuid::Uuid::new_v4().simple())
}

fn check(key: &str, dimension: Dimension, per_minute: u64, cost: u64) -> Check {
    Check { key: key.into(), dimension, per_minute, cost }
}

async fn redis_connection() -> redis::aio::MultiplexedConnection {
    let client = redis::Client::open(redis_url()).unwrap();
    client.get_multiplexed_async_connection().await.unwrap()
}

/// Two limiters on one Redis, as two gateway replicas would have.
async fn two_replicas() -> (RateLimiter, RateLimiter) {
    let url = redis_url();
    (RateLimiter::redis(&url).await.unwrap(), RateLimiter::redis(&url).await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn two_replicas_sharing_a_key_admit_exactly_the_allowance_together() {
    let (a, b) = two_replicas().await;
    let key = fresh_key("rpm");
    let tasks: Vec<_> = (0..64)
        .map(|i| {
            let limiter = if i % 2 == 0 { a.clone() } else { b.clone() };
            let check = check(&key, Dimension::Requests, 10, 1);
            tokio::spawn(async move {
                let mut admitted = 0;
                for _ in 0..4 {
                    if matches!(limiter.acquire(std::slice::from_ref(&check)).await, Decision::Allowed(_)) {
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
    // One cell refills every 6 s, far longer than 256 script calls take.
    assert_eq!(admitted, 10);
    assert_eq!((a.fallbacks(), b.fallbacks()), (0, 0));
    let Decision::Limited { retry_after, info } = b.acquire(&[check(&key, Dimension::Requests, 10, 1)]).await
    else {
        panic!("the allowance is spent")
    };
    assert!(retry_after > Duration::ZERO && retry_after <= Duration::from_secs(6), "{retry_after:?}");
    let quota = info.requests.unwrap();
    assert_eq!((quota.limit, quota.remaining), (10, 0));
    assert!(quota.reset > Duration::from_secs(54) && quota.reset <= Duration::from_secs(60), "{quota:?}");
}

#[tokio::test]
async fn several_keys_are_all_or_nothing_in_redis() {
    let (a, b) = two_replicas().await;
    let (rpm, tpm) = (fresh_key("rpm"), fresh_key("tpm"));
    let request =
        |tokens| [check(&rpm, Dimension::Requests, 5, 1), check(&tpm, Dimension::Tokens, 100, tokens)];

    let Decision::Allowed(info) = a.acquire(&request(80)).await else { panic!("a fresh key admits") };
    assert_eq!(info.requests.map(|q| q.remaining), Some(4));
    assert_eq!(info.tokens.map(|q| q.remaining), Some(20));
    let mut redis = redis_connection().await;
    let rpm_tat: u64 = redis.get(&rpm).await.unwrap();

    // 30 tokens do not fit in the 20 left: the request cell is not taken either, on either replica.
    for limiter in [&a, &b, &a] {
        let Decision::Limited { retry_after, info } = limiter.acquire(&request(30)).await else {
            panic!("30 tokens do not fit")
        };
        assert!(
            retry_after > Duration::from_secs(5) && retry_after <= Duration::from_secs(6),
            "{retry_after:?}"
        );
        assert_eq!(info.requests.map(|q| q.remaining), Some(4));
    }
    assert_eq!(redis.get::<_, u64>(&rpm).await.unwrap(), rpm_tat);

    let Decision::Allowed(info) = b.acquire(&request(20)).await else { panic!("20 tokens fit") };
    assert_eq!(info.requests.map(|q| q.remaining), Some(3));
    assert_eq!(info.tokens.map(|q| q.remaining), Some(0));
    // A cost beyond the whole limit never fits.
    let Decision::Limited { retry_after, .. } =
        a.acquire(&[check(&fresh_key("tpm"), Dimension::Tokens, 100, 101)]).await
    else {
        panic!("101 tokens exceed 100 per minute")
    };
    assert_eq!(retry_after, Duration::MAX);
    assert_eq!((a.fallbacks(), b.fallbacks()), (0, 0));
}

#[tokio::test]
async fn charged_debt_is_seen_by_the_other_replica() {
    let (a, b) = two_replicas().await;
    let tpm = fresh_key("tpm");
    let tokens = |cost| [check(&tpm, Dimension::Tokens, 600, cost)];
    assert!(matches!(a.acquire(&tokens(100)).await, Decision::Allowed(_)));
    // The response used 1,100 tokens, not 100: 110 s of refill, 50 s beyond the minute allowed ahead.
    a.charge(&tpm, 600, 1_000).await;
    let Decision::Limited { retry_after, info } = b.acquire(&tokens(0)).await else {
        panic!("the debt holds back even a request of no tokens")
    };
    assert!(
        retry_after > Duration::from_secs(49) && retry_after <= Duration::from_secs(50),
        "{retry_after:?}"
    );
    let quota = info.tokens.unwrap();
    assert_eq!(quota.remaining, 0);
    assert!(quota.reset > Duration::from_secs(109) && quota.reset <= Duration::from_secs(110), "{quota:?}");
    assert_eq!((a.fallbacks(), b.fallbacks()), (0, 0));
}

#[tokio::test]
async fn keys_expire_when_their_allowance_is_whole_again() {
    let (limiter, _) = two_replicas().await;
    let mut redis = redis_connection().await;
    let key = fresh_key("rpm");
    assert!(matches!(
        limiter.acquire(&[check(&key, Dimension::Requests, 10, 1)]).await,
        Decision::Allowed(_)
    ));
    // One cell of 10 per minute is 6 s: the key vanishes then.
    let ttl: i64 = redis.pttl(&key).await.unwrap();
    assert!(ttl > 0 && ttl <= 6_000, "PTTL {ttl}");
    // The TAT is the server's time in microseconds plus those 6 s.
    let tat: u64 = redis.get(&key).await.unwrap();
    let (seconds, micros): (u64, u64) = redis::cmd("TIME").query_async(&mut redis).await.unwrap();
    let ahead = tat.saturating_sub(seconds * 1_000_000 + micros);
    assert!(ahead > 0 && ahead <= 6_000_000, "TAT {ahead} µs ahead");

    limiter.charge(&key, 10, 20).await;
    let ttl: i64 = redis.pttl(&key).await.unwrap();
    assert!(ttl > 120_000 && ttl <= 126_000, "PTTL {ttl}");
    // A zero-cost check writes nothing: no key appears for it.
    let untouched = fresh_key("rpm");
    assert!(matches!(
        limiter.acquire(&[check(&untouched, Dimension::Requests, 10, 0)]).await,
        Decision::Allowed(_)
    ));
    assert!(!redis.exists::<_, bool>(&untouched).await.unwrap());
}

#[tokio::test]
async fn the_script_is_loaded_again_after_redis_forgets_it() {
    let (limiter, _) = two_replicas().await;
    let key = fresh_key("rpm");
    assert!(matches!(limiter.acquire(&[check(&key, Dimension::Requests, 2, 1)]).await, Decision::Allowed(_)));
    let mut redis = redis_connection().await;
    let () = redis::cmd("SCRIPT").arg("FLUSH").query_async(&mut redis).await.unwrap();
    assert!(matches!(limiter.acquire(&[check(&key, Dimension::Requests, 2, 1)]).await, Decision::Allowed(_)));
    assert!(matches!(
        limiter.acquire(&[check(&key, Dimension::Requests, 2, 1)]).await,
        Decision::Limited { .. }
    ));
    assert_eq!(limiter.fallbacks(), 0);
}

/// A loopback port where nothing listens.
fn dead_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.local_addr().unwrap().port()
}

#[tokio::test]
async fn a_redis_that_refuses_connections_falls_back_to_the_local_store() {
    let limiter = RateLimiter::redis(&format!("redis://127.0.0.1:{}/", dead_port())).await.unwrap();
    let key = fresh_key("rpm");
    let request = [check(&key, Dimension::Requests, 2, 1)];
    let decisions = tokio::time::timeout(Duration::from_secs(10), async {
        let mut decisions = Vec::new();
        for _ in 0..3 {
            decisions.push(limiter.acquire(&request).await);
        }
        limiter.charge(&key, 2, 1).await;
        decisions
    })
    .await
    .expect("a dead Redis must not hold requests");
    // The local store's exact answers: two of two per minute, then limited.
    assert!(matches!(decisions[0], Decision::Allowed(_)));
    assert!(matches!(decisions[1], Decision::Allowed(_)));
    assert!(matches!(decisions[2], Decision::Limited { .. }));
    // Every call, the charge included, was answered locally.
    assert_eq!(limiter.fallbacks(), 4);
}

#[tokio::test]
async fn a_redis_that_never_answers_falls_back_within_the_timeouts() {
    // Accepts connections (the kernel completes the handshake) but never replies.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("redis://{}/", silent.local_addr().unwrap());
    let request = [check(&fresh_key("rpm"), Dimension::Requests, 1, 1)];
    // Neither the startup check nor the request (which tries Redis again) may hang.
    let (limiter, decision) = tokio::time::timeout(Duration::from_secs(10), async {
        let limiter = RateLimiter::redis(&url).await.unwrap();
        let decision = limiter.acquire(&request).await;
        (limiter, decision)
    })
    .await
    .expect("a silent Redis must not hold requests");
    assert!(matches!(decision, Decision::Allowed(_)));
    assert_eq!(limiter.fallbacks(), 1);
    drop(silent);
}

/// A redis-server of the test's own on a given port, stopped (by its PID) when dropped.
struct OwnRedis(std::process::Child);

impl OwnRedis {
    fn start(port: u16, dir: &std::path::Path) -> OwnRedis {
        let child = std::process::Command::new("redis-server")
            .args(["--bind", "127.0.0.1", "--port", &port.to_string(), "--save", "", "--appendonly", "no"])
            .current_dir(dir)
            .stdout(std::process::Stdio::null())
            .spawn()
            .expect("redis-server must be installed (apt-get install redis-server)");
        OwnRedis(child)
    }
}

impl Drop for OwnRedis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn limits_are_shared_again_once_redis_is_back() {
    let port = dead_port();
    let url = format!("redis://127.0.0.1:{port}/");
    let limiter = RateLimiter::redis(&url).await.unwrap();
    let key = fresh_key("rpm");
    let request = [check(&key, Dimension::Requests, 10, 1)];
    assert!(matches!(limiter.acquire(&request).await, Decision::Allowed(_)));
    assert_eq!(limiter.fallbacks(), 1);

    let dir = tempfile::tempdir().unwrap();
    let _redis = OwnRedis::start(port, dir.path());
    // Calls go on being answered locally until Redis is up and the cooldown has passed.
    let probe = [check(&fresh_key("probe"), Dimension::Requests, 10, 0)];
    tokio::time::timeout(Duration::from_secs(20), async {
        loop {
            let before = limiter.fallbacks();
            limiter.acquire(&probe).await;
            if limiter.fallbacks() == before {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .expect("the limiter should use Redis again once it is back");

    // Redis counts from here on: the key it never saw starts full there.
    let Decision::Allowed(info) = limiter.acquire(&request).await else { panic!("a fresh Redis admits") };
    assert_eq!(info.requests.map(|q| q.remaining), Some(9));
    let mut redis = redis::Client::open(url).unwrap().get_multiplexed_async_connection().await.unwrap();
    assert!(redis.exists::<_, bool>(&key).await.unwrap());
}

#[tokio::test]
async fn an_invalid_url_is_an_error() {
    assert!(RateLimiter::redis("not a url").await.is_err());
}
