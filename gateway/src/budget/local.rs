//! The in-process store: every counter behind one lock, for a single replica. Checking and
//! holding several budgets under one lock makes reservations all-or-nothing for free; the lock
//! is never held across an await, so settling from a `Drop` never blocks on I/O.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use super::{Balance, Claim, CounterKey, Hold, Refusal, Reservation, decide};
use crate::ledger::Ledger;

pub(super) struct LocalStore {
    ledger: Ledger,
    counters: Mutex<HashMap<CounterKey, Balance>>,
    /// Serialises seeding so that a burst of requests at a period start queries the ledger once
    /// per counter, not once per request.
    seeding: tokio::sync::Mutex<()>,
}

impl LocalStore {
    pub(super) fn new(ledger: Ledger) -> Self {
        LocalStore { ledger, counters: Mutex::default(), seeding: tokio::sync::Mutex::const_new(()) }
    }

    fn counters(&self) -> MutexGuard<'_, HashMap<CounterKey, Balance>> {
        // Every update leaves the map consistent, so a panic elsewhere cannot have broken it.
        self.counters.lock().unwrap_or_else(PoisonError::into_inner)
    }

    pub(super) async fn reserve(
        self: &Arc<Self>,
        claims: &[&Claim<'_>],
        amount: i64,
    ) -> Result<Reservation, Refusal> {
        let mut claims = claims.to_vec();
        loop {
            {
                let mut counters = self.counters();
                let balances: Option<Vec<Balance>> =
                    claims.iter().map(|c| counters.get(&c.counter).copied()).collect();
                if let Some(balances) = balances {
                    let warnings = decide(&claims, &balances, amount)?;
                    let mut held = Vec::with_capacity(claims.len());
                    for claim in &claims {
                        if let Some(balance) = counters.get_mut(&claim.counter) {
                            if claim.hard() {
                                balance.held = balance.held.saturating_add(amount);
                                balance.holds += 1;
                            }
                            held.push((claim.counter.clone(), claim.hard()));
                        }
                    }
                    let hold = LocalHold { store: Arc::clone(self), amount, counters: held };
                    return Ok(Reservation::new(warnings, Some(Hold::Local(hold))));
                }
            }
            self.seed(&mut claims).await?;
        }
    }

    /// Creates the missing counters from the ledger. A budget whose ledger query fails refuses
    /// the request if it fails closed; otherwise it is left out of this request (logged) and
    /// seeded again by the next one.
    async fn seed(&self, claims: &mut Vec<&Claim<'_>>) -> Result<(), Refusal> {
        let _seeding = self.seeding.lock().await;
        let mut failed = Vec::new();
        for claim in claims.iter() {
            if self.counters().contains_key(&claim.counter) {
                continue;
            }
            match self.ledger.totals(&claim.scope(), claim.counter.period_start_ms).await {
                Ok(totals) => {
                    let mut counters = self.counters();
                    // Older periods of this budget are over; settles still arriving for them are dropped.
                    counters.retain(|key, _| {
                        key.budget != claim.counter.budget
                            || key.period_start_ms >= claim.counter.period_start_ms
                    });
                    counters.insert(
                        claim.counter.clone(),
                        Balance { spent: totals.cost_nanos, ..Balance::default() },
                    );
                }
                Err(error) => {
                    let budget = &claim.counter.budget;
                    if claim.fails_closed() {
                        tracing::error!(%error, %budget, "cannot seed a budget; refusing its requests");
                        return Err(Refusal::Unavailable { budget: claim.config.name.clone() });
                    }
                    tracing::error!(%error, %budget, "cannot seed a budget; not enforcing it this time (failureMode: Open)");
                    failed.push(claim.counter.clone());
                }
            }
        }
        claims.retain(|c| !failed.contains(&c.counter));
        Ok(())
    }
}

/// A reservation's holds in the in-process store.
pub(super) struct LocalHold {
    store: Arc<LocalStore>,
    amount: i64,
    /// Each counter charged, and whether it holds `amount` (hard budgets).
    counters: Vec<(CounterKey, bool)>,
}

impl LocalHold {
    pub(super) fn settle(self, actual: i64) {
        self.finish(actual);
    }

    pub(super) fn release(self) {
        self.finish(0);
    }

    fn finish(self, charge: i64) {
        let mut counters = self.store.counters();
        for (key, hard) in &self.counters {
            // A counter of a period that has since ended is gone: nothing left to charge.
            if let Some(balance) = counters.get_mut(key) {
                if *hard {
                    balance.held = balance.held.saturating_sub(self.amount);
                    balance.holds -= 1;
                }
                balance.spent = balance.spent.saturating_add(charge);
            }
        }
    }
}
