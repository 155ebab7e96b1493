//! The shared store: every replica runs `gcra.lua` on one Redis, atomically over a request's keys.
//!
//! The script decides and writes; it returns the server time and the TATs it started from, and
//! [`gcra::decide`] turns them into the same [`Decision`] (remaining, reset, retry-after) the local
//! store gives, so those numbers are computed by one piece of code. Needs a single Redis endpoint
//! (Redis Cluster would refuse keys of several slots in one script) of version 5 or later.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{ErrorKind, RedisError, RedisResult, Script};

use super::gcra::{self, Limit, MAX_AHEAD_US, WINDOW_US};
use super::{Check, Decision};

/// A connection attempt or a script call that takes longer counts as Redis being unavailable:
/// the request then goes on with the local store instead of waiting.
const CONNECT_TIMEOUT: Duration = Duration::from_millis(500);
const RESPONSE_TIMEOUT: Duration = Duration::from_millis(500);

pub(crate) struct RedisStore {
    connection: ConnectionManager,
    script: Script,
}

impl RedisStore {
    /// Connects on first use, so a Redis that is down when the gateway starts is a fallback, not
    /// a startup failure. Must be called within a Tokio runtime (it spawns the reconnect task).
    pub(crate) fn new(url: &str) -> RedisResult<RedisStore> {
        let client = redis::Client::open(url)?;
        // One attempt per reconnection: retrying with backoff would hold requests that wait for
        // the connection, and the limiter answers from the local store meanwhile anyway.
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(RESPONSE_TIMEOUT))
            .set_number_of_retries(0);
        let connection = ConnectionManager::new_lazy_with_config(client, config)?;
        Ok(RedisStore { connection, script: Script::new(include_str!("gcra.lua")) })
    }

    /// Connects (or finds the connection working), within the connect and response timeouts.
    pub(crate) async fn ping(&self) -> RedisResult<()> {
        redis::cmd("PING").query_async(&mut self.connection.clone()).await
    }

    pub(crate) async fn acquire(&self, checks: &[Check]) -> RedisResult<Decision> {
        let costs = checks.iter().map(|c| Limit::per_minute(c.per_minute).cost_us(c.cost));
        let keys = checks.iter().map(|c| c.key.as_str());
        let (now, admitted, tats) = self.run(keys, costs, false).await?;
        let verdict = gcra::decide(checks, &tats, now);
        if admitted != matches!(verdict.decision, Decision::Allowed(_)) {
            return Err(RedisError::from((ErrorKind::Client, "gcra.lua and gcra.rs disagree")));
        }
        Ok(verdict.decision)
    }

    pub(crate) async fn charge(&self, key: &str, limit: Limit, cost: u64) -> RedisResult<()> {
        self.run([key], [limit.cost_us(cost)], true).await.map(drop)
    }

    /// Runs the script (EVALSHA, loading it first if the server does not know it yet). Returns
    /// the server time, whether the costs were taken, and the keys' TATs before the call.
    async fn run<'k>(
        &self,
        keys: impl IntoIterator<Item = &'k str>,
        costs_us: impl IntoIterator<Item = u64>,
        force: bool,
    ) -> RedisResult<(u64, bool, Vec<u64>)> {
        let mut invocation = self.script.prepare_invoke();
        let mut count = 0;
        for key in keys {
            invocation.key(key);
            count += 1;
        }
        invocation.arg(WINDOW_US).arg(MAX_AHEAD_US).arg(u8::from(force));
        for cost in costs_us {
            invocation.arg(cost);
        }
        let reply: Vec<u64> = invocation.invoke_async(&mut self.connection.clone()).await?;
        match reply.as_slice() {
            [now, admitted, tats @ ..] if tats.len() == count => Ok((*now, *admitted == 1, tats.to_vec())),
            _ => Err(RedisError::from((ErrorKind::UnexpectedReturnType, "gcra.lua replied unexpectedly"))),
        }
    }
}
