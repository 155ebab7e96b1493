//! The in-process store: each key's TAT in a map behind one lock.
//!
//! One lock makes a request's checks atomic together, and the critical section is a few map
//! lookups. Keys whose TAT has passed are full, the same as absent, so a sweep drops them whenever
//! the map has doubled since the last one: memory follows the keys used within the last minute.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Instant;

use super::gcra::{self, Limit};
use super::{Check, Decision};

/// Below this many keys the map is not swept.
const MIN_SWEEP_LEN: usize = 1024;

pub(crate) struct LocalStore {
    /// The clock's zero: monotonic, so a wall-clock step cannot free or freeze a key.
    origin: Instant,
    keys: Mutex<Keys>,
}

struct Keys {
    tats: HashMap<String, u64>,
    /// The map's length that triggers the next sweep.
    sweep_at: usize,
}

impl LocalStore {
    pub(crate) fn new() -> LocalStore {
        let keys = Keys { tats: HashMap::new(), sweep_at: MIN_SWEEP_LEN };
        LocalStore { origin: Instant::now(), keys: Mutex::new(keys) }
    }

    /// Microseconds since the store was created.
    pub(crate) fn now(&self) -> u64 {
        u64::try_from(self.origin.elapsed().as_micros()).unwrap_or(u64::MAX)
    }

    pub(crate) fn acquire(&self, checks: &[Check], now: u64) -> Decision {
        let mut keys = self.lock();
        let tats: Vec<u64> = checks.iter().map(|c| keys.tats.get(&c.key).copied().unwrap_or(0)).collect();
        let verdict = gcra::decide(checks, &tats, now);
        if matches!(verdict.decision, Decision::Allowed(_)) {
            for (check, tat) in checks.iter().zip(verdict.tats) {
                keys.store(&check.key, tat, now);
            }
        }
        verdict.decision
    }

    pub(crate) fn charge(&self, key: &str, limit: Limit, cost: u64, now: u64) {
        let mut keys = self.lock();
        let tat = keys.tats.get(key).copied().unwrap_or(0);
        let step = gcra::step(tat, now, limit, cost, true);
        keys.store(key, step.tat, now);
    }

    fn lock(&self) -> MutexGuard<'_, Keys> {
        // Every update is one insert after the decision, so a panicking holder leaves no half state.
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.lock().tats.len()
    }
}

impl Keys {
    fn store(&mut self, key: &str, tat: u64, now: u64) {
        if tat <= now {
            self.tats.remove(key);
            return;
        }
        match self.tats.get_mut(key) {
            Some(stored) => *stored = tat,
            None => {
                self.tats.insert(key.to_owned(), tat);
            }
        }
        if self.tats.len() >= self.sweep_at {
            self.tats.retain(|_, tat| *tat > now);
            self.sweep_at = (self.tats.len() * 2).max(MIN_SWEEP_LEN);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ratelimit::Dimension;

    fn one(key: &str, per_minute: u64, cost: u64) -> [Check; 1] {
        [Check { key: key.into(), dimension: Dimension::Requests, per_minute, cost }]
    }

    #[test]
    fn idle_keys_are_swept_once_the_map_doubles() {
        let store = LocalStore::new();
        let t0 = 1_000_000;
        for i in 0..MIN_SWEEP_LEN - 1 {
            store.acquire(&one(&format!("old/{i}"), 60, 1), t0);
        }
        assert_eq!(store.len(), MIN_SWEEP_LEN - 1);
        // A minute later every old key is full again; the next new key triggers the sweep.
        let t1 = t0 + 60_000_000;
        store.acquire(&one("new/0", 60, 1), t1);
        assert_eq!(store.len(), 1);
        // Keys still counting survive a sweep, with their state.
        for i in 0..MIN_SWEEP_LEN {
            store.acquire(&one(&format!("live/{i}"), 1, 1), t1);
        }
        assert!(store.len() > MIN_SWEEP_LEN);
        assert!(matches!(store.acquire(&one("live/0", 1, 1), t1 + 1), Decision::Limited { .. }));
    }

    #[test]
    fn a_key_back_to_full_is_forgotten() {
        let store = LocalStore::new();
        store.acquire(&one("k", 60, 1), 5_000_000);
        assert_eq!(store.len(), 1);
        // A zero-cost check on a full key leaves nothing behind.
        store.acquire(&one("k", 60, 0), 6_000_000);
        assert_eq!(store.len(), 0);
        store.acquire(&one("k", 60, 0), 7_000_000);
        assert_eq!(store.len(), 0);
    }

    #[test]
    fn charge_records_debt_beyond_the_window() {
        let store = LocalStore::new();
        let now = 10_000_000;
        store.charge("k", Limit::per_minute(60), 120, now);
        // Two minutes of cells charged: one more fits only after 61 s.
        assert!(matches!(store.acquire(&one("k", 60, 1), now + 60_999_999), Decision::Limited { .. }));
        assert!(matches!(store.acquire(&one("k", 60, 1), now + 61_000_000), Decision::Allowed(_)));
    }
}
