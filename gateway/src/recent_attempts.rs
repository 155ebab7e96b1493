//! What one replica saw of a backend lately: its attempts, how many the backend itself failed, and
//! their latency over the last five minutes, for the live health in `/admin/v1/routes`.
//!
//! Ten 30-second slots in a ring: recording touches one slot, reading sums the ones still inside
//! the window, so the figures move smoothly and cost nothing to keep. Kept beside the circuit
//! breaker, and like it across config reloads for backends that did not change.

use std::sync::Mutex;
use std::time::{Duration, Instant};

const SLOT: Duration = Duration::from_secs(30);
const SLOTS: usize = 10;

/// The window [`RecentAttempts::summary`] covers.
pub const WINDOW: Duration = Duration::from_secs(30 * SLOTS as u64);

#[derive(Debug)]
pub struct RecentAttempts {
    origin: Instant,
    slots: Mutex<[Slot; SLOTS]>,
}

#[derive(Clone, Copy, Debug, Default)]
struct Slot {
    /// Which 30-second period since `origin` the counts belong to.
    period: u64,
    attempts: u64,
    failures: u64,
    latency_ms_total: u64,
    latency_ms_max: u64,
}

/// Attempts over the window.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Summary {
    pub attempts: u64,
    /// Attempts the backend itself failed (what also counts for the circuit breaker).
    pub failures: u64,
    pub latency_ms_total: u64,
    pub latency_ms_max: u64,
}

impl Summary {
    pub fn error_rate(&self) -> f64 {
        if self.attempts == 0 { 0.0 } else { self.failures as f64 / self.attempts as f64 }
    }

    pub fn mean_latency_ms(&self) -> Option<f64> {
        (self.attempts > 0).then(|| self.latency_ms_total as f64 / self.attempts as f64)
    }
}

impl Default for RecentAttempts {
    fn default() -> RecentAttempts {
        RecentAttempts { origin: Instant::now(), slots: Mutex::new([Slot::default(); SLOTS]) }
    }
}

impl RecentAttempts {
    /// Records an attempt that began at `began` and ended at `now`.
    pub fn record(&self, healthy: bool, began: Instant, now: Instant) {
        let period = self.period(now);
        let latency_ms = u64::try_from(now.saturating_duration_since(began).as_millis()).unwrap_or(u64::MAX);
        let mut slots = self.lock();
        let slot = &mut slots[(period % SLOTS as u64) as usize];
        if slot.period != period {
            *slot = Slot { period, ..Slot::default() };
        }
        slot.attempts = slot.attempts.saturating_add(1);
        slot.failures = slot.failures.saturating_add(u64::from(!healthy));
        slot.latency_ms_total = slot.latency_ms_total.saturating_add(latency_ms);
        slot.latency_ms_max = slot.latency_ms_max.max(latency_ms);
    }

    /// The attempts of the last [`WINDOW`] (at most one slot more: the current one is partial).
    pub fn summary(&self, now: Instant) -> Summary {
        let current = self.period(now);
        let slots = self.lock();
        let mut summary = Summary::default();
        for slot in slots.iter().filter(|s| s.attempts > 0 && current - s.period < SLOTS as u64) {
            summary.attempts += slot.attempts;
            summary.failures += slot.failures;
            summary.latency_ms_total = summary.latency_ms_total.saturating_add(slot.latency_ms_total);
            summary.latency_ms_max = summary.latency_ms_max.max(slot.latency_ms_max);
        }
        summary
    }

    fn period(&self, now: Instant) -> u64 {
        now.saturating_duration_since(self.origin).as_secs() / SLOT.as_secs()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, [Slot; SLOTS]> {
        // Plain counters: a panic elsewhere cannot leave them half-written in a way that matters.
        self.slots.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_attempts_failures_and_latency_within_the_window() {
        let recent = RecentAttempts::default();
        let t = recent.origin;
        recent.record(true, t, t + Duration::from_millis(40));
        recent.record(false, t, t + Duration::from_millis(100));
        recent.record(true, t + Duration::from_secs(31), t + Duration::from_millis(31_010));
        let now = t + Duration::from_secs(40);
        let summary = recent.summary(now);
        assert_eq!((summary.attempts, summary.failures), (3, 1));
        assert_eq!((summary.latency_ms_total, summary.latency_ms_max), (150, 100));
        assert!((summary.error_rate() - 1.0 / 3.0).abs() < 1e-12);
        assert_eq!(summary.mean_latency_ms(), Some(50.0));
    }

    #[test]
    fn old_slots_leave_the_window_and_are_reused() {
        let recent = RecentAttempts::default();
        let t = recent.origin;
        recent.record(false, t, t);
        assert_eq!(recent.summary(t + Duration::from_secs(299)).attempts, 1);
        assert_eq!(recent.summary(t + WINDOW).attempts, 0, "five minutes later, gone");
        // The same slot, ten periods on: the old counts do not add to the new.
        recent.record(true, t + WINDOW, t + WINDOW);
        let summary = recent.summary(t + WINDOW);
        assert_eq!((summary.attempts, summary.failures), (1, 0));
        assert_eq!(RecentAttempts::default().summary(Instant::now()).mean_latency_ms(), None);
    }
}
