//! Per-backend circuit breaker: closed, open (ejected), half-open (one probe at a time).
//!
//! Each gateway replica keeps its own breakers, as Envoy's outlier detection does: a replica
//! ejects what it sees failing, without a shared store on the request path. Breakers survive
//! config reloads for backends whose config did not change (see [`crate::serving::runtime::Runtime::build`]).

use std::sync::Mutex;
use std::time::{Duration, Instant};

use switchboard_crds::resources::CircuitBreakerPolicy;

#[derive(Debug)]
pub struct Breaker {
    threshold: u32,
    open_for: Duration,
    state: Mutex<State>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum State {
    Closed {
        failures: u32,
    },
    Open {
        until: Instant,
    },
    /// The open period has passed; one probe is (or may be) in flight. A probe that never reports
    /// (its client went away) stops blocking others after another open period.
    HalfOpen {
        probe_started: Instant,
    },
}

/// Whether a request may use the backend now.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Admission {
    Allowed,
    /// Ejected until then.
    Ejected {
        until: Instant,
    },
}

impl Breaker {
    pub fn new(policy: &CircuitBreakerPolicy) -> Breaker {
        Breaker {
            threshold: policy.consecutive_failures.max(1),
            open_for: Duration::from_secs(u64::from(policy.open_seconds)),
            state: Mutex::new(State::Closed { failures: 0 }),
        }
    }

    /// Admits a request; once the open period is over, admits exactly one probe.
    pub fn admit(&self, now: Instant) -> Admission {
        let mut state = self.lock();
        let ejected_until = match *state {
            State::Closed { .. } => return Admission::Allowed,
            State::Open { until } => until,
            State::HalfOpen { probe_started } => probe_started + self.open_for,
        };
        if now < ejected_until {
            return Admission::Ejected { until: ejected_until };
        }
        *state = State::HalfOpen { probe_started: now };
        Admission::Allowed
    }

    /// Records an attempt's outcome: `healthy` unless the backend itself failed.
    pub fn record(&self, healthy: bool, now: Instant) {
        let mut state = self.lock();
        *state = match (*state, healthy) {
            (_, true) => State::Closed { failures: 0 },
            (State::Closed { failures }, false) if failures + 1 < self.threshold => {
                State::Closed { failures: failures + 1 }
            }
            (_, false) => State::Open { until: now + self.open_for },
        };
    }

    /// Closed: taking traffic normally (for status and metrics).
    pub fn is_closed(&self) -> bool {
        matches!(*self.lock(), State::Closed { .. })
    }

    /// The state's name, for traces: `closed`, `open` or `half_open`.
    pub fn state_name(&self) -> &'static str {
        match *self.lock() {
            State::Closed { .. } => "closed",
            State::Open { .. } => "open",
            State::HalfOpen { .. } => "half_open",
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // The state is a plain value: a panic elsewhere cannot leave it half-written.
        self.state.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn breaker(failures: u32, open_seconds: u32) -> Breaker {
        Breaker::new(&CircuitBreakerPolicy { consecutive_failures: failures, open_seconds })
    }

    #[test]
    fn opens_after_consecutive_failures_only() {
        let b = breaker(3, 10);
        let t = Instant::now();
        b.record(false, t);
        b.record(false, t);
        b.record(true, t);
        b.record(false, t);
        b.record(false, t);
        assert_eq!(b.admit(t), Admission::Allowed, "a success resets the count");
        b.record(false, t);
        assert_eq!(b.admit(t), Admission::Ejected { until: t + Duration::from_secs(10) });
        assert!(!b.is_closed());
    }

    #[test]
    fn half_open_admits_one_probe_then_recovers_or_reopens() {
        let b = breaker(1, 10);
        let t = Instant::now();
        b.record(false, t);
        let later = t + Duration::from_secs(10);
        assert_eq!(b.admit(later), Admission::Allowed, "the probe");
        assert!(matches!(b.admit(later), Admission::Ejected { .. }), "only one probe at a time");
        b.record(false, later);
        assert_eq!(
            b.admit(later + Duration::from_secs(9)),
            Admission::Ejected { until: later + Duration::from_secs(10) }
        );
        let again = later + Duration::from_secs(10);
        assert_eq!(b.admit(again), Admission::Allowed);
        b.record(true, again);
        assert!(b.is_closed());
        assert_eq!(b.admit(again), Admission::Allowed);
    }

    #[test]
    fn a_lost_probe_does_not_eject_forever() {
        let b = breaker(1, 5);
        let t = Instant::now();
        b.record(false, t);
        assert_eq!(b.admit(t + Duration::from_secs(5)), Admission::Allowed);
        // The probe's client went away: no record. Another open period later, a new probe goes.
        assert!(matches!(b.admit(t + Duration::from_secs(9)), Admission::Ejected { .. }));
        assert_eq!(b.admit(t + Duration::from_secs(10)), Admission::Allowed);
    }
}
