//! Admission by concurrency: per-tenant limits (`rateLimits.maxConcurrent`) and a gateway-wide
//! limit, with a bounded priority queue in front of them.
//!
//! A request that cannot start waits in the queue, highest tenant priority first, then oldest
//! first, for at most the queue timeout. A full queue refuses at once (503): overload never
//! turns into unbounded memory or latency. A freed slot goes to the best waiter that may run,
//! so one tenant at its own limit never blocks others behind it.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::sync::oneshot;

use crate::error::ApiError;

/// Queue sizing, from the gateway's settings.
#[derive(Clone, Copy, Debug)]
pub struct QueueSettings {
    /// Requests in flight across all tenants; `None`: unlimited.
    pub max_in_flight: Option<usize>,
    /// Requests waiting at most.
    pub capacity: usize,
    pub timeout: Duration,
}

#[derive(Clone)]
pub struct Scheduler {
    settings: QueueSettings,
    state: Arc<Mutex<State>>,
}

#[derive(Default)]
struct State {
    in_flight: usize,
    per_tenant: HashMap<String, usize>,
    /// Ordered by (priority descending, arrival).
    waiting: BTreeMap<(std::cmp::Reverse<u8>, u64), Waiter>,
    arrivals: u64,
}

struct Waiter {
    tenant: String,
    limit: Option<usize>,
    wake: oneshot::Sender<Permit>,
}

/// A request's slot; dropping it frees the slot for the next waiter.
pub struct Permit {
    tenant: String,
    /// `None` once the slot was given back by other means.
    scheduler: Option<Scheduler>,
}

impl Scheduler {
    pub fn new(settings: QueueSettings) -> Scheduler {
        Scheduler { settings, state: Arc::new(Mutex::new(State::default())) }
    }

    /// A slot for a request of `tenant`, waiting in the queue if needed.
    pub async fn acquire(&self, tenant: &str, limit: Option<u32>, priority: u8) -> Result<Permit, ApiError> {
        let limit = limit.map(|l| l as usize);
        let (position, receiver) = {
            let mut state = self.lock();
            // Start at once if allowed and no waiter that could run now is ahead.
            let ahead = state.waiting.values().any(|w| self.fits(&state, &w.tenant, w.limit));
            if !ahead && self.fits(&state, tenant, limit) {
                state.start(tenant);
                return Ok(self.permit(tenant));
            }
            if state.waiting.len() >= self.settings.capacity {
                return Err(ApiError::Overloaded(format!(
                    "{} requests are already queued; retry shortly",
                    self.settings.capacity
                )));
            }
            let (wake, receiver) = oneshot::channel();
            state.arrivals += 1;
            let position = (std::cmp::Reverse(priority), state.arrivals);
            state.waiting.insert(position, Waiter { tenant: tenant.to_owned(), limit, wake });
            (position, receiver)
        };
        // However the wait ends (granted, timed out, or the client went away), leave the queue.
        // A permit granted at that very moment is dropped with the receiver and frees its slot.
        let _leave = Leave { scheduler: self, position };
        match tokio::time::timeout(self.settings.timeout, receiver).await {
            Ok(Ok(permit)) => Ok(permit),
            Ok(Err(_)) | Err(_) => Err(ApiError::Overloaded(format!(
                "no capacity within the queue timeout of {} ms",
                self.settings.timeout.as_millis()
            ))),
        }
    }

    /// Requests waiting now (for metrics).
    pub fn waiting(&self) -> usize {
        self.lock().waiting.len()
    }

    fn fits(&self, state: &State, tenant: &str, limit: Option<usize>) -> bool {
        let global = self.settings.max_in_flight.is_none_or(|max| state.in_flight < max);
        let own = limit.is_none_or(|max| state.per_tenant.get(tenant).copied().unwrap_or(0) < max);
        global && own
    }

    fn permit(&self, tenant: &str) -> Permit {
        Permit { tenant: tenant.to_owned(), scheduler: Some(self.clone()) }
    }

    /// Frees `tenant`'s slot and hands slots to the best waiters that may now run.
    fn release(&self, tenant: &str) {
        let mut state = self.lock();
        state.finish(tenant);
        loop {
            let next = state
                .waiting
                .iter()
                .find(|(_, w)| self.fits(&state, &w.tenant, w.limit))
                .map(|(position, _)| *position);
            let Some(position) = next else { return };
            let Some(waiter) = state.waiting.remove(&position) else { return };
            state.start(&waiter.tenant);
            let permit = self.permit(&waiter.tenant);
            if let Err(mut permit) = waiter.wake.send(permit) {
                // The waiter gave up meanwhile: take the slot back here (we hold the lock).
                permit.scheduler = None;
                state.finish(&waiter.tenant);
            }
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // Counters stay consistent under a panic elsewhere: every update is a single statement.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl State {
    fn start(&mut self, tenant: &str) {
        self.in_flight += 1;
        *self.per_tenant.entry(tenant.to_owned()).or_default() += 1;
    }

    fn finish(&mut self, tenant: &str) {
        self.in_flight = self.in_flight.saturating_sub(1);
        if let Some(count) = self.per_tenant.get_mut(tenant) {
            *count -= 1;
            if *count == 0 {
                self.per_tenant.remove(tenant);
            }
        }
    }
}

/// Removes a waiter's queue entry when its wait ends.
struct Leave<'a> {
    scheduler: &'a Scheduler,
    position: (std::cmp::Reverse<u8>, u64),
}

impl Drop for Leave<'_> {
    fn drop(&mut self) {
        self.scheduler.lock().waiting.remove(&self.position);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        if let Some(scheduler) = self.scheduler.take() {
            scheduler.release(&self.tenant);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scheduler(max_in_flight: Option<usize>, capacity: usize, timeout_ms: u64) -> Scheduler {
        Scheduler::new(QueueSettings { max_in_flight, capacity, timeout: Duration::from_millis(timeout_ms) })
    }

    #[tokio::test]
    async fn tenant_limit_queues_then_admits_in_order() {
        let s = scheduler(None, 10, 5_000);
        let first = s.acquire("a", Some(1), 0).await.unwrap();
        let waiting = tokio::spawn({
            let s = s.clone();
            async move { s.acquire("a", Some(1), 0).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        assert_eq!(s.waiting(), 1);
        // Another tenant is not blocked by a's limit.
        let other = s.acquire("b", Some(1), 0).await.unwrap();
        drop(first);
        waiting.await.unwrap().unwrap();
        drop(other);
        assert_eq!(s.lock().in_flight, 0, "every slot returned");
    }

    #[tokio::test]
    async fn higher_priority_goes_first() {
        let s = scheduler(Some(1), 10, 5_000);
        let held = s.acquire("x", None, 0).await.unwrap();
        let order = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = Vec::new();
        for (tenant, priority) in [("low", 1u8), ("high", 90), ("mid", 50)] {
            let (s, order) = (s.clone(), order.clone());
            tasks.push(tokio::spawn(async move {
                let _permit = s.acquire(tenant, None, priority).await.unwrap();
                order.lock().unwrap().push(tenant);
            }));
            tokio::task::yield_now().await;
        }
        assert_eq!(s.waiting(), 3);
        drop(held);
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(*order.lock().unwrap(), ["high", "mid", "low"]);
    }

    #[tokio::test]
    async fn full_queue_refuses_at_once_and_timeouts_free_their_place() {
        let s = scheduler(Some(1), 1, 50);
        let _held = s.acquire("a", None, 0).await.unwrap();
        let queued = tokio::spawn({
            let s = s.clone();
            async move { s.acquire("a", None, 0).await.map(|_| ()) }
        });
        tokio::task::yield_now().await;
        let refused = s.acquire("a", None, 0).await.err().unwrap();
        assert_eq!(refused.code(), Some("overloaded"));
        let timed_out = queued.await.unwrap().err().unwrap();
        assert!(timed_out.to_string().contains("queue timeout"), "{timed_out}");
        assert_eq!(s.waiting(), 0);
    }
}
