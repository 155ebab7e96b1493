//! The order backends are tried in: by priority, weighted within a priority, skipping those
//! their circuit breaker ejects, with jittered exponential backoff between attempts.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand::Rng;

use crate::breaker::Admission;
use crate::serving::runtime::BackendRuntime;

/// The next candidate (cyclically from `cursor`) whose breaker admits a request; remembers the
/// earliest time an ejected one comes back, for `retry-after`.
pub(super) fn next_admitted(
    candidates: &[Arc<BackendRuntime>],
    cursor: &mut usize,
    ejected_until: &mut Option<Instant>,
) -> Option<Arc<BackendRuntime>> {
    let now = Instant::now();
    for _ in 0..candidates.len() {
        let backend = &candidates[*cursor % candidates.len()];
        *cursor += 1;
        match backend.breaker.admit(now) {
            Admission::Allowed => return Some(backend.clone()),
            Admission::Ejected { until } => {
                *ejected_until = Some(ejected_until.map_or(until, |t: Instant| t.min(until)));
            }
        }
    }
    None
}

/// Backends in the order to try: ascending priority; within a priority, a weighted random
/// permutation. Weight-zero backends are drained: never chosen.
pub(super) fn candidate_order<R: Rng>(
    backends: &[Arc<BackendRuntime>],
    rng: &mut R,
) -> Vec<Arc<BackendRuntime>> {
    let mut priorities: Vec<u32> = backends.iter().map(|b| b.config.priority).collect();
    priorities.sort_unstable();
    priorities.dedup();
    let mut order = Vec::with_capacity(backends.len());
    for priority in priorities {
        let mut group: Vec<&Arc<BackendRuntime>> =
            backends.iter().filter(|b| b.config.priority == priority && b.config.weight > 0).collect();
        while !group.is_empty() {
            let total: u64 = group.iter().map(|b| u64::from(b.config.weight)).sum();
            let mut pick = rng.random_range(0..total);
            let index = group
                .iter()
                .position(|b| {
                    let weight = u64::from(b.config.weight);
                    if pick < weight {
                        true
                    } else {
                        pick -= weight;
                        false
                    }
                })
                .unwrap_or(0);
            order.push(group.remove(index).clone());
        }
    }
    order
}

/// `base * 2^(attempt-1)`, with up to 50% jitter, capped at 10 s.
pub(super) fn backoff(base_ms: u32, attempt: usize) -> Duration {
    let exponent = u32::try_from(attempt.saturating_sub(1)).unwrap_or(16).min(16);
    let full = u64::from(base_ms).saturating_mul(1 << exponent).min(10_000);
    let jitter = if full > 1 { rand::rng().random_range(0..=full / 2) } else { 0 };
    Duration::from_millis(full - jitter)
}

#[cfg(test)]
mod tests {
    use rand::SeedableRng;
    use switchboard_crds::config::BackendConfig;
    use switchboard_crds::resources::ProviderKind;

    use super::*;
    use crate::providers::Provider;

    fn backend(name: &str, weight: u32, priority: u32) -> Arc<BackendRuntime> {
        let config = BackendConfig {
            name: name.into(),
            provider: ProviderKind::Mock,
            base_url: None,
            api_key: None,
            weight,
            priority,
            request_timeout_ms: 1000,
            connect_timeout_ms: 1000,
            first_token_timeout_ms: None,
        };
        let breaker = crate::breaker::Breaker::new(&Default::default());
        Arc::new(BackendRuntime {
            config,
            provider: Provider::Mock,
            breaker,
            recent: Default::default(),
            overruns_max_tokens: Default::default(),
        })
    }

    #[test]
    fn lower_priority_first_and_zero_weight_never() {
        let backends = vec![backend("b", 1, 1), backend("a", 1, 0), backend("off", 0, 0)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        let order: Vec<String> =
            candidate_order(&backends, &mut rng).iter().map(|b| b.config.name.clone()).collect();
        assert_eq!(order, ["a", "b"]);
    }

    #[test]
    fn weights_split_first_choices_proportionally() {
        let backends = vec![backend("heavy", 3, 0), backend("light", 1, 0)];
        let mut rng = rand::rngs::StdRng::seed_from_u64(42);
        let heavy =
            (0..4000).filter(|_| candidate_order(&backends, &mut rng)[0].config.name == "heavy").count();
        assert!((2800..3200).contains(&heavy), "heavy chosen first {heavy} of 4000 times");
    }

    #[test]
    fn backoff_doubles_with_bounded_jitter() {
        for attempt in 1..5 {
            let full = 100u64 << (attempt - 1);
            let delay = backoff(100, attempt).as_millis() as u64;
            assert!(delay <= full && delay >= full / 2, "attempt {attempt}: {delay} ms");
        }
        assert!(backoff(10_000, 10) <= Duration::from_secs(10));
    }
}
