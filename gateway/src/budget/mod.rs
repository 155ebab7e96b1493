//! Budget enforcement by reserve-then-settle: before a provider is called, the request's
//! estimated cost is reserved against every budget that applies; when it completes, the
//! reservation is settled with the actual cost, which replaces the hold.
//!
//! A `Hard` budget admits a reservation only if `spent + held + amount <= limit`, where `held` is
//! the sum of the reservations not yet settled; the check and the new hold are one atomic step
//! (one lock in process, row locks in one PostgreSQL transaction across replicas). `Soft` budgets
//! never refuse; they report a warning once `spent + amount` reaches `warnAtPercent` or the limit.
//!
//! # Overspend bound
//!
//! When every reservation is at least its request's actual cost, a hard budget's spend never
//! exceeds its limit, whatever the concurrency and the number of replicas. When requests cost
//! more than they reserved (say the client sent no `max_tokens`), the overspend is bounded:
//!
//! `spent - limit <= sum of max(0, actual - reserved) over the reservations in flight at the last
//! admission (that one included)`.
//!
//! Every admission re-checks `spent + held`, so excess settled before it is already counted; once
//! `spent + held` passes the limit, nothing more is admitted until the period ends.
//!
//! The bound assumes the counters know all spend. Spend from before a counter existed comes from
//! the ledger (the seed, taken at a budget's first request in a period), which misses rows still
//! queued in the ledger writer, and may itself be over the limit. A counter that cannot be seeded
//! or reserved against (the database is failing) refuses requests with 503 for a hard budget whose
//! `failureMode` is `Closed` (the default); only a budget that says `Open` admits them unenforced
//! (logged), trading the limit for availability. With the shared store, the counters also miss
//! holds of a replica that could not refresh them for the hold TTL (one minute), and settles still failing after their retries
//! (logged; the ledger keeps the cost). A request is charged to the period it was admitted in;
//! the ledger dates it at completion, so the two can differ around a period boundary.
//!
//! Stores: [`Budgets::local`] keeps counters in memory for a single replica; [`Budgets::shared`]
//! keeps them in PostgreSQL so replicas share them (see `postgres.rs` for the design).

mod local;
mod period;
mod postgres;
#[cfg(test)]
mod tests;

use std::borrow::Borrow;
use std::sync::Arc;
use std::time::SystemTime;

use k8s_openapi::jiff::Timestamp;
use switchboard_crds::config::BudgetConfig;
use switchboard_crds::decimal::NanoUsd;
use switchboard_crds::resources::{BudgetEnforcement, BudgetFailureMode};

use self::local::{LocalHold, LocalStore};
pub use self::period::{period_end, period_start};
use self::postgres::{SharedHold, SharedStore};
use crate::ledger::{Ledger, LedgerError, Scope};

/// Budget counters and the reservations against them. Cheap to clone: clones share the counters.
#[derive(Clone)]
pub struct Budgets {
    store: Store,
}

#[derive(Clone)]
enum Store {
    Local(Arc<LocalStore>),
    Shared(Arc<SharedStore>),
}

#[derive(Debug, thiserror::Error)]
pub enum BudgetError {
    #[error("budgets shared between replicas need a PostgreSQL ledger")]
    NotPostgres,
    #[error("cannot connect to the budget database: {0}")]
    Connect(#[source] sqlx::Error),
    #[error("budget query failed: {0}")]
    Query(#[from] sqlx::Error),
    #[error("cannot seed a budget counter from the ledger: {0}")]
    Seed(#[from] LedgerError),
    #[error("the counter of budget {0} disappeared")]
    CounterMissing(String),
}

/// Why a reservation was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error(transparent)]
    Exceeded(#[from] BudgetExceeded),
    /// A hard budget that fails closed could not be read.
    #[error("budget {budget} cannot be checked right now")]
    Unavailable { budget: String },
    /// A hard budget has room for this request but no other: it is admitted only once no other
    /// request holds the budget.
    #[error("budget {budget} has room for one more request, and another is in flight")]
    Busy { budget: String },
}

/// Why a request was refused: the first hard budget (in the order given) it would exceed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("budget {budget} is exhausted: {spent} of {limit} USD spent, {held} held, {requested} requested")]
pub struct BudgetExceeded {
    /// The Budget's name.
    pub budget: String,
    pub limit: NanoUsd,
    /// Settled spend in the current period.
    pub spent: NanoUsd,
    /// Reserved by requests still in flight.
    pub held: NanoUsd,
    /// The refused reservation's amount.
    pub requested: NanoUsd,
    /// When the period ends and spend starts again from zero; `None` for `Total`.
    pub resets_at: Option<SystemTime>,
}

/// A budget at or past its warning threshold, including this request's reservation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BudgetWarning {
    /// The Budget's name.
    pub budget: String,
    /// `(spent + reserved) * 100 / limit`, rounded down, at most 255.
    pub percent: u8,
    /// Whether `spent + reserved` reaches the limit.
    pub exhausted: bool,
}

impl Budgets {
    /// One replica: counters in memory, seeded once per (budget, period) from the ledger's totals
    /// for the budget's scope since the period start.
    pub fn local(ledger: Ledger) -> Self {
        Budgets { store: Store::Local(Arc::new(LocalStore::new(ledger))) }
    }

    /// Several replicas: counters and holds in the ledger's PostgreSQL database (its own pool of
    /// connections, so reservations never queue behind ledger writes), seeded from the ledger when
    /// a period's counter row is first created. Spawns the task that keeps this replica's holds
    /// alive; settles are written on the runtime this is called on.
    pub async fn shared(ledger: Ledger) -> Result<Self, BudgetError> {
        Ok(Budgets { store: Store::Shared(SharedStore::connect(ledger).await?) })
    }

    /// Reserves `amount` against every budget in `budgets` for the period containing `now`,
    /// all-or-nothing. A budget listed twice counts once.
    pub async fn reserve<B>(
        &self,
        budgets: &[B],
        amount: NanoUsd,
        now: SystemTime,
    ) -> Result<Reservation, Refusal>
    where
        B: Borrow<BudgetConfig> + Sync,
    {
        let claims = claims(budgets, now);
        let claims: Vec<&Claim<'_>> = claims.iter().collect();
        let amount = amount.0.max(0);
        match &self.store {
            Store::Local(store) => store.reserve(&claims, amount).await,
            Store::Shared(store) => store.reserve(&claims, amount).await,
        }
    }

    /// Waits until the settles and releases still being written to the shared store are done;
    /// call it on shutdown after the last request, before the runtime stops.
    pub async fn drain(&self) {
        if let Store::Shared(store) = &self.store {
            store.drain().await;
        }
    }
}

/// A hold on budget until it is settled. Dropping an unsettled reservation releases the hold
/// without charging (the request failed before costing anything).
pub struct Reservation {
    warnings: Vec<BudgetWarning>,
    /// `None` once settled, or when no budget applied.
    hold: Option<Hold>,
}

enum Hold {
    Local(LocalHold),
    Shared(SharedHold),
}

impl Reservation {
    fn new(warnings: Vec<BudgetWarning>, hold: Option<Hold>) -> Self {
        Reservation { warnings, hold }
    }

    /// Replaces the hold by the actual cost. Synchronous so that it can run in a `Drop`: the
    /// in-process store updates its counters at once; the shared store spawns the write on the
    /// runtime captured by [`Budgets::shared`] (so it works from any thread), keeps the hold
    /// alive while it retries transient failures, and [`Budgets::drain`] waits for it.
    pub fn settle(mut self, actual: NanoUsd) {
        let actual = actual.0.max(0);
        match self.hold.take() {
            Some(Hold::Local(hold)) => hold.settle(actual),
            Some(Hold::Shared(hold)) => hold.settle(actual),
            None => {}
        }
    }

    /// Budgets at or past their warning threshold; empty when none is.
    pub fn warnings(&self) -> &[BudgetWarning] {
        &self.warnings
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        match self.hold.take() {
            Some(Hold::Local(hold)) => hold.release(),
            Some(Hold::Shared(hold)) => hold.release(),
            None => {}
        }
    }
}

/// One budget's counter: the budget (`namespace/name`) and the start of its current period.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
struct CounterKey {
    budget: String,
    period_start_ms: i64,
}

/// One budget of a reservation, resolved for the period containing `now`.
struct Claim<'a> {
    config: &'a BudgetConfig,
    counter: CounterKey,
    resets_at: Option<SystemTime>,
}

impl Claim<'_> {
    fn hard(&self) -> bool {
        self.config.enforcement == BudgetEnforcement::Hard
    }

    /// Whether requests must be refused while this budget's counter cannot be read.
    fn fails_closed(&self) -> bool {
        self.hard() && self.config.failure_mode == BudgetFailureMode::Closed
    }

    /// What the budget covers in the ledger, for seeding.
    fn scope(&self) -> Scope<'_> {
        Scope {
            tenant: &self.config.tenant,
            persona: self.config.persona.as_deref(),
            api_key: self.config.api_key.as_deref(),
        }
    }
}

fn claims<B: Borrow<BudgetConfig>>(budgets: &[B], now: SystemTime) -> Vec<Claim<'_>> {
    let now = Timestamp::try_from(now).unwrap_or(Timestamp::UNIX_EPOCH);
    let mut claims: Vec<Claim<'_>> = Vec::with_capacity(budgets.len());
    for config in budgets.iter().map(Borrow::borrow) {
        let budget = format!("{}/{}", config.namespace, config.name);
        if claims.iter().any(|c| c.counter.budget == budget) {
            continue;
        }
        let period_start_ms = period_start(config.period, now).as_millisecond();
        claims.push(Claim {
            config,
            counter: CounterKey { budget, period_start_ms },
            resets_at: period_end(config.period, now).map(SystemTime::from),
        });
    }
    claims
}

/// A counter as a store read it: settled spend and unexpired holds (hard budgets only) of the
/// period, in nano-dollars, and how many reservations the holds are.
#[derive(Clone, Copy, Debug, Default)]
struct Balance {
    spent: i64,
    held: i64,
    holds: i64,
}

/// Admits `amount` or names the first hard budget it would exceed, given each claim's balance
/// (same order); on admission, the warnings to report. The last room of a hard budget (less than
/// a second `amount` would be left) goes to one request at a time, so that near the limit at
/// most one request can spend more than it reserved.
fn decide(claims: &[&Claim<'_>], balances: &[Balance], amount: i64) -> Result<Vec<BudgetWarning>, Refusal> {
    for (claim, balance) in claims.iter().zip(balances) {
        let limit = claim.config.limit;
        let after = balance.spent.saturating_add(balance.held).saturating_add(amount);
        if claim.hard() && after <= limit.0 && after.saturating_add(amount) > limit.0 && balance.holds > 0 {
            return Err(Refusal::Busy { budget: claim.config.name.clone() });
        }
        if claim.hard() && after > limit.0 {
            return Err(Refusal::Exceeded(BudgetExceeded {
                budget: claim.config.name.clone(),
                limit,
                spent: NanoUsd(balance.spent),
                held: NanoUsd(balance.held),
                requested: NanoUsd(amount),
                resets_at: claim.resets_at,
            }));
        }
    }
    let warnings = claims.iter().zip(balances);
    Ok(warnings
        .filter_map(|(claim, balance)| warning(claim.config, balance.spent.saturating_add(amount)))
        .collect())
}

fn warning(config: &BudgetConfig, used: i64) -> Option<BudgetWarning> {
    let (used, limit) = (i128::from(used), i128::from(config.limit.0));
    let exhausted = used >= limit;
    if !exhausted && used * 100 < limit * i128::from(config.warn_at_percent) {
        return None;
    }
    let percent = if limit > 0 { used * 100 / limit } else { 100 };
    Some(BudgetWarning {
        budget: config.name.clone(),
        percent: u8::try_from(percent.clamp(0, 255)).unwrap_or(u8::MAX),
        exhausted,
    })
}
