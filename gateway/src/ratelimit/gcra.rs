//! The generic cell rate algorithm as pure functions of a key's stored state and the time.
//!
//! A key stores one number, its theoretical arrival time (TAT, in microseconds): the time at which
//! its allowance is whole again. A cost of n cells pushes the TAT n emission intervals later, and is
//! admitted if the TAT then lies at most one window (a minute) ahead of now: a full minute's
//! allowance may be spent at once, and it refills one cell per interval. A key whose TAT has passed
//! is full, exactly like a key never seen, so the stores may forget it.
//!
//! Both stores call [`step`]; the Redis script (`gcra.lua`) repeats only its comparison, on
//! increments computed here by [`Limit::cost_us`], so the two cannot drift apart.

use std::time::Duration;

use super::{Check, Decision, Dimension, Quota, RateInfo};

/// The window a limit counts over, and so the burst tolerance, in microseconds.
pub(crate) const WINDOW_US: u64 = 60_000_000;

/// Limits above this would need cells shorter than the microsecond a TAT resolves.
const MAX_PER_MINUTE: u64 = WINDOW_US;

/// Debt beyond a year ahead is dropped; it keeps TATs exact in a Lua number (a double).
pub(crate) const MAX_AHEAD_US: u64 = 365 * 24 * 3600 * 1_000_000;

/// A per-minute allowance, clamped to what microsecond TATs can express.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Limit(u64);

impl Limit {
    pub(crate) fn per_minute(per_minute: u64) -> Limit {
        Limit(per_minute.min(MAX_PER_MINUTE))
    }

    /// Microseconds of the window that `cost` cells occupy, rounded down: under a microsecond per
    /// request, so a minute's allowance always fits in a minute. A zero limit fits no cost.
    pub(crate) fn cost_us(self, cost: u64) -> u64 {
        if cost == 0 {
            return 0;
        }
        if self.0 == 0 {
            return MAX_AHEAD_US;
        }
        let us = u128::from(cost) * u128::from(WINDOW_US) / u128::from(self.0);
        u64::try_from(us).unwrap_or(u64::MAX).min(MAX_AHEAD_US)
    }

    /// The largest single cost that would be admitted now: the inverse of [`Limit::cost_us`].
    pub(crate) fn remaining(self, tat: u64, now: u64) -> u64 {
        let headroom = WINDOW_US.saturating_sub(tat.saturating_sub(now));
        // cost_us(n) <= h  <=>  n * WINDOW < (h + 1) * limit
        let cells =
            ((u128::from(headroom) + 1) * u128::from(self.0)).saturating_sub(1) / u128::from(WINDOW_US);
        u64::try_from(cells).unwrap_or(self.0)
    }
}

/// What GCRA makes of one cost against one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Step {
    /// Whether the cost is taken: it fits, or it is forced.
    pub(crate) taken: bool,
    /// The key's TAT after this step (unchanged when the cost is not taken).
    pub(crate) tat: u64,
    /// How long until the cost fits: zero when it fits now, `None` when it never can (more cells
    /// than the limit allows in a window).
    pub(crate) wait_us: Option<u64>,
}

/// One GCRA step: `cost` cells at time `now` against a key whose TAT is `tat` (0 for a new key).
/// `force` takes the cost even when it does not fit, recording debt.
pub(crate) fn step(tat: u64, now: u64, limit: Limit, cost: u64, force: bool) -> Step {
    let cost_us = limit.cost_us(cost);
    let after = tat.max(now).saturating_add(cost_us).min(now.saturating_add(MAX_AHEAD_US));
    let ahead = after - now;
    let fits = ahead <= WINDOW_US;
    let wait_us = (cost_us <= WINDOW_US).then(|| ahead.saturating_sub(WINDOW_US));
    let taken = fits || force;
    Step { taken, tat: if taken { after } else { tat }, wait_us }
}

/// The outcome of checking several keys at once.
#[derive(Debug)]
pub(crate) struct Verdict {
    pub(crate) decision: Decision,
    /// Each check's TAT to store: advanced if the decision admits, as they were otherwise.
    pub(crate) tats: Vec<u64>,
}

/// All-or-nothing GCRA over `checks`, whose keys hold `tats` (same order): admits only if every
/// check fits, and then takes the cost from all of them. A key listed twice takes both costs.
pub(crate) fn decide(checks: &[Check], tats: &[u64], now: u64) -> Verdict {
    let mut steps: Vec<Step> = Vec::with_capacity(checks.len());
    for (i, (check, &stored)) in checks.iter().zip(tats).enumerate() {
        let earlier = checks[..i].iter().rposition(|c| c.key == check.key);
        let tat = earlier.map_or(stored, |j| steps[j].tat);
        steps.push(step(tat, now, Limit::per_minute(check.per_minute), check.cost, false));
    }
    let admitted = steps.iter().all(|s| s.taken);
    let tats: Vec<u64> =
        if admitted { steps.iter().map(|s| s.tat).collect() } else { tats[..steps.len()].to_vec() };
    let info = rate_info(checks, &tats, now);
    let decision = if admitted {
        Decision::Allowed(info)
    } else {
        // Waiting for the slowest refusing check makes every check fit, barring other traffic;
        // one that never fits (None) makes the whole request never fit.
        let waits: Option<Vec<u64>> = steps.iter().filter(|s| !s.taken).map(|s| s.wait_us).collect();
        let wait = waits.and_then(|waits| waits.into_iter().max());
        let retry_after = wait.map_or(Duration::MAX, Duration::from_micros);
        Decision::Limited { retry_after, info }
    };
    Verdict { decision, tats }
}

/// The most restrictive quota per dimension: the least remaining, then the latest reset.
fn rate_info(checks: &[Check], tats: &[u64], now: u64) -> RateInfo {
    let mut info = RateInfo::default();
    for (check, &tat) in checks.iter().zip(tats) {
        let quota = Quota {
            limit: check.per_minute,
            remaining: Limit::per_minute(check.per_minute).remaining(tat, now),
            reset: Duration::from_micros(tat.saturating_sub(now)),
        };
        let slot = match check.dimension {
            Dimension::Requests => &mut info.requests,
            Dimension::Tokens => &mut info.tokens,
        };
        let tighter = slot.as_ref().is_none_or(|current| {
            (quota.remaining, std::cmp::Reverse(quota.reset))
                < (current.remaining, std::cmp::Reverse(current.reset))
        });
        if tighter {
            *slot = Some(quota);
        }
    }
    info
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOW: u64 = 1_750_000_000_000_000;

    fn check(key: &str, dimension: Dimension, per_minute: u64, cost: u64) -> Check {
        Check { key: key.into(), dimension, per_minute, cost }
    }

    /// Admissions of `cost` in a row at `now`, starting from `tat`; returns the count and final TAT.
    fn admit_all(mut tat: u64, now: u64, limit: Limit, cost: u64) -> (u64, u64) {
        let mut admitted = 0;
        loop {
            let s = step(tat, now, limit, cost, false);
            if !s.taken {
                return (admitted, tat);
            }
            admitted += 1;
            tat = s.tat;
        }
    }

    #[test]
    fn a_fresh_key_admits_exactly_a_minutes_allowance_at_once() {
        for per_minute in [1, 2, 3, 7, 10, 60, 7_745, 100_000, 1_000_000] {
            let (admitted, _) = admit_all(0, NOW, Limit::per_minute(per_minute), 1);
            assert_eq!(admitted, per_minute, "per_minute={per_minute}");
        }
        // Cost n consumes n cells: 100 per minute fits three costs of 30, not four.
        assert_eq!(admit_all(0, NOW, Limit::per_minute(100), 30).0, 3);
        assert_eq!(admit_all(0, NOW, Limit::per_minute(100), 100).0, 1);
    }

    #[test]
    fn an_exhausted_key_refills_one_cell_per_interval() {
        let limit = Limit::per_minute(60); // one cell per second
        let (_, tat) = admit_all(0, NOW, limit, 1);
        let refused = step(tat, NOW, limit, 1, false);
        assert_eq!(refused, Step { taken: false, tat, wait_us: Some(1_000_000) });
        // A microsecond early is still too early; on time one cell fits, and only one.
        assert!(!step(tat, NOW + 999_999, limit, 1, false).taken);
        assert_eq!(admit_all(tat, NOW + 1_000_000, limit, 1).0, 1);
        assert_eq!(admit_all(tat, NOW + 10_500_000, limit, 1).0, 10);
        // After a full minute idle the whole allowance is back, and not more.
        assert_eq!(admit_all(tat, NOW + 3_600_000_000, limit, 1).0, 60);
    }

    #[test]
    fn retry_after_is_the_time_until_the_cost_fits() {
        let limit = Limit::per_minute(60);
        let (_, tat) = admit_all(0, NOW, limit, 1);
        // Ten cells need ten seconds of refill.
        let wait = step(tat, NOW, limit, 10, false).wait_us;
        assert_eq!(wait, Some(10_000_000));
        assert!(step(tat, NOW + 10_000_000, limit, 10, false).taken);
        // A partly refilled key: 30 cells spent leaves room for 30, so 40 waits ten seconds.
        let half = (0..30).fold(0, |tat, _| step(tat, NOW, limit, 1, false).tat);
        assert_eq!(step(half, NOW, limit, 40, false).wait_us, Some(10_000_000));
        assert_eq!(step(half, NOW, limit, 30, false).wait_us, Some(0));
    }

    #[test]
    fn a_cost_above_the_limit_never_fits() {
        let limit = Limit::per_minute(100);
        let s = step(0, NOW, limit, 101, false);
        assert_eq!(s, Step { taken: false, tat: 0, wait_us: None });
        let verdict = decide(&[check("k", Dimension::Tokens, 100, 101)], &[0], NOW);
        assert!(
            matches!(verdict.decision, Decision::Limited { retry_after: Duration::MAX, .. }),
            "{verdict:?}"
        );
        // A zero limit fits nothing but a zero cost.
        assert!(!step(0, NOW, Limit::per_minute(0), 1, false).taken);
        assert!(step(0, NOW, Limit::per_minute(0), 0, false).taken);
    }

    #[test]
    fn forced_cost_is_debt_that_later_requests_wait_out() {
        let limit = Limit::per_minute(60);
        // Half the allowance spent, then 90 more cells charged: 60 cells beyond the window.
        let tat = NOW + 30_000_000;
        let charged = step(tat, NOW, limit, 90, true);
        assert!(charged.taken);
        assert_eq!(charged.tat, NOW + 120_000_000);
        assert_eq!(step(charged.tat, NOW, limit, 1, false).wait_us, Some(61_000_000));
        assert!(!step(charged.tat, NOW + 60_999_999, limit, 1, false).taken);
        assert!(step(charged.tat, NOW + 61_000_000, limit, 1, false).taken);
        // Debt is capped a year ahead.
        let huge = step(0, NOW, limit, u64::MAX, true);
        assert_eq!(huge.tat, NOW + MAX_AHEAD_US);
        assert_eq!(step(huge.tat, NOW, limit, u64::MAX, true).tat, NOW + MAX_AHEAD_US);
    }

    #[test]
    fn remaining_is_the_largest_cost_that_fits() {
        for per_minute in [1, 7, 60, 1_000, 7_746, 123_457, 60_000_000] {
            let limit = Limit::per_minute(per_minute);
            for spent in [0, 1, per_minute / 3, per_minute.saturating_sub(1), per_minute] {
                // Spent in one request, or in up to 50 requests of one cell (rounding differs).
                let at_once = step(0, NOW, limit, spent, false).tat;
                let one_by_one = (0..spent.min(50)).fold(0, |tat, _| step(tat, NOW, limit, 1, false).tat);
                for tat in [at_once, one_by_one] {
                    let remaining = limit.remaining(tat, NOW);
                    assert!(step(tat, NOW, limit, remaining, false).taken, "{per_minute} {spent}");
                    assert!(!step(tat, NOW, limit, remaining + 1, false).taken, "{per_minute} {spent}");
                }
            }
        }
        assert_eq!(Limit::per_minute(0).remaining(0, NOW), 0);
    }

    #[test]
    fn limits_beyond_a_cell_per_microsecond_are_clamped() {
        let limit = Limit::per_minute(u64::MAX);
        assert_eq!(limit, Limit::per_minute(60_000_000));
        assert_eq!(limit.cost_us(1), 1);
        assert_eq!(limit.remaining(0, NOW), 60_000_000);
    }

    #[test]
    fn several_checks_are_all_or_nothing() {
        let checks = [check("rpm", Dimension::Requests, 10, 1), check("tpm", Dimension::Tokens, 100, 60)];
        let first = decide(&checks, &[0, 0], NOW);
        assert!(matches!(first.decision, Decision::Allowed(_)));
        // The second check no longer fits: nothing is taken from the first either.
        let second = decide(&checks, &first.tats, NOW);
        assert_eq!(second.tats, first.tats);
        let Decision::Limited { retry_after, info } = second.decision else {
            panic!("expected Limited, got {:?}", second.decision)
        };
        // 60 tokens spent of 100 per minute: 60 cost fits again once 20 more refilled, 12 seconds.
        assert_eq!(retry_after, Duration::from_secs(12));
        assert_eq!(info.requests.map(|q| q.remaining), Some(9));
        assert_eq!(info.tokens.map(|q| q.remaining), Some(40));
        assert_eq!(admit_all(first.tats[0], NOW, Limit::per_minute(10), 1).0, 9);
    }

    #[test]
    fn a_key_listed_twice_takes_both_costs() {
        let checks = [check("k", Dimension::Requests, 10, 6), check("k", Dimension::Requests, 10, 3)];
        let verdict = decide(&checks, &[0, 0], NOW);
        assert!(matches!(verdict.decision, Decision::Allowed(_)));
        assert_eq!(verdict.tats, [NOW + 36_000_000, NOW + 54_000_000]);
        let again = decide(&checks, &[verdict.tats[1], verdict.tats[1]], NOW);
        assert!(matches!(again.decision, Decision::Limited { .. }));
        let too_much = [check("k", Dimension::Requests, 10, 6), check("k", Dimension::Requests, 10, 5)];
        assert!(matches!(decide(&too_much, &[0, 0], NOW).decision, Decision::Limited { .. }));
    }

    #[test]
    fn the_slowest_refusing_check_sets_retry_after() {
        let checks = [check("a", Dimension::Requests, 60, 1), check("b", Dimension::Requests, 6, 1)];
        let tats = [NOW + 60_000_000, NOW + 60_000_000];
        let verdict = decide(&checks, &tats, NOW);
        let Decision::Limited { retry_after, .. } = verdict.decision else { panic!("{verdict:?}") };
        assert_eq!(retry_after, Duration::from_secs(10));
        // A check that never fits outweighs any finite wait, whatever the order.
        let never = check("c", Dimension::Tokens, 100, 101);
        for checks in [[checks[1].clone(), never.clone()], [never.clone(), checks[1].clone()]] {
            let verdict = decide(&checks, &tats, NOW);
            let Decision::Limited { retry_after, .. } = verdict.decision else { panic!("{verdict:?}") };
            assert_eq!(retry_after, Duration::MAX);
        }
    }

    #[test]
    fn rate_info_reports_the_tightest_quota_of_each_dimension() {
        let checks = [
            check("tenant/rpm", Dimension::Requests, 100, 1),
            check("key/rpm", Dimension::Requests, 10, 1),
            check("tenant/tpm", Dimension::Tokens, 1_000, 400),
        ];
        let Decision::Allowed(info) = decide(&checks, &[0, 0, 0], NOW).decision else { panic!() };
        assert_eq!(info.requests, Some(Quota { limit: 10, remaining: 9, reset: Duration::from_secs(6) }));
        assert_eq!(info.tokens, Some(Quota { limit: 1_000, remaining: 600, reset: Duration::from_secs(24) }));
        let only_tokens = decide(&checks[2..], &[0], NOW);
        let Decision::Allowed(info) = only_tokens.decision else { panic!() };
        assert_eq!(info.requests, None);
    }
}
