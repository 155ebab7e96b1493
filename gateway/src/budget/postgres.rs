//! The shared store: counters and holds in PostgreSQL, so that every replica enforces the same
//! budgets.
//!
//! Tables (migration `20261201000001_budget_counters.sql`): `budget_counters` holds the settled
//! spend per budget and period, seeded from the ledger by whichever replica creates the row;
//! `budget_reservations` one row per reservation with an expiry; `budget_holds` what a
//! reservation holds against each of its hard budgets. Holds count while their reservation is
//! unexpired; each replica pushes back the expiry of its reservations in flight every
//! [`REFRESH_EVERY`], so a request may take any time, while the holds of a replica that died
//! mid-request stop counting within [`HOLD_TTL_MS`]. Times are the database's clock, so replicas'
//! clocks need not agree.
//!
//! Concurrency, in READ COMMITTED transactions:
//! - reserve locks the counter rows of its budgets in key order (reservations of overlapping
//!   budget sets cannot deadlock), then sums the unexpired holds in a new statement, which sees
//!   the holds committed by any transaction the lock waited for, checks, and inserts its holds;
//! - settle marks the reservation settled (insert-or-update, so a retry after a lost commit
//!   reply charges once, and a reservation whose row expired is still charged), deletes its holds
//!   and adds the actual cost to the counters, in one transaction: another reservation sees the
//!   hold or the spend, never neither.
//!
//! Every reservation of a budget queues on its counter row for a few round trips, which caps a
//! single budget at some hundreds of reservations per second across replicas.

use std::collections::HashSet;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError, Weak};
use std::time::Duration;

use sqlx::any::AnyPoolOptions;
use sqlx::{AnyPool, Row};
use tokio::runtime::Handle;
use tokio::sync::watch;

use super::{Balance, BudgetError, BudgetWarning, Claim, CounterKey, Hold, Refusal, Reservation, decide};
use crate::ledger::Ledger;

/// How long the holds of a reservation count without being refreshed.
const HOLD_TTL_MS: i64 = 60_000;
/// How often a replica refreshes its holds: several refreshes may fail before one expires.
const REFRESH_EVERY: Duration = Duration::from_secs(15);
/// How long settled reservations are remembered, against settles retried after a lost reply.
const SETTLED_KEPT_MS: i64 = 3_600_000;
/// Past this, reserve gives up on the database and admits (fails open).
const RESERVE_TIMEOUT: Duration = Duration::from_secs(3);
/// Settle attempts before the cost is given up (logged); about 20 seconds of retries.
const SETTLE_ATTEMPTS: u32 = 8;
/// Connections for reservations and settles, apart from the ledger's.
const POOL_SIZE: u32 = 8;
/// The database's clock in epoch milliseconds.
const DB_NOW_MS: &str = "CAST(EXTRACT(EPOCH FROM now()) * 1000 AS BIGINT)";
const BEGIN: &str = "BEGIN ISOLATION LEVEL READ COMMITTED";

pub(super) struct SharedStore {
    pool: AnyPool,
    ledger: Ledger,
    /// Where settles and releases are written, whichever thread drops a reservation.
    runtime: Handle,
    /// Reservations in flight on this replica, whose expiry the refresher pushes back.
    live: Mutex<HashSet<String>>,
    /// Counter rows known to exist, so the common path skips the existence check.
    known: Mutex<HashSet<CounterKey>>,
    /// Settles and releases still being written.
    pending: watch::Sender<usize>,
}

fn locked<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    // The sets stay consistent whatever panicked while holding them.
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl SharedStore {
    pub(super) async fn connect(ledger: Ledger) -> Result<Arc<SharedStore>, BudgetError> {
        if !ledger.database().is_postgres() {
            return Err(BudgetError::NotPostgres);
        }
        let options = ledger.database().pool().connect_options().as_ref().clone();
        let pool = AnyPoolOptions::new()
            .max_connections(POOL_SIZE)
            .acquire_timeout(RESERVE_TIMEOUT)
            .connect_with(options)
            .await
            .map_err(BudgetError::Connect)?;
        let store = Arc::new(SharedStore {
            pool,
            ledger,
            runtime: Handle::current(),
            live: Mutex::default(),
            known: Mutex::default(),
            pending: watch::Sender::new(0),
        });
        tokio::spawn(refresh_loop(Arc::downgrade(&store)));
        Ok(store)
    }

    pub(super) async fn reserve(
        self: &Arc<Self>,
        claims: &[&Claim<'_>],
        amount: i64,
    ) -> Result<Reservation, Refusal> {
        if claims.is_empty() {
            return Ok(Reservation::new(Vec::new(), None));
        }
        let id = uuid::Uuid::new_v4().simple().to_string();
        let decision = tokio::time::timeout(RESERVE_TIMEOUT, self.try_reserve(&id, claims, amount)).await;
        let problem = match decision {
            Ok(Ok(decision)) => Ok(decision?),
            Ok(Err(error)) => Err(format!("budget store failed: {error}")),
            Err(_) => Err(format!("budget store did not answer within {RESERVE_TIMEOUT:?}")),
        };
        let warnings = match problem {
            Ok(warnings) => warnings,
            Err(problem) => match claims.iter().find(|claim| claim.fails_closed()) {
                Some(closed) => {
                    tracing::error!(%problem, budget = %closed.counter.budget, "refusing the request (failureMode: Closed)");
                    // The holds may have been committed after all: release them.
                    SharedHold { store: Arc::clone(self), id, counters: Vec::new() }.release();
                    return Err(Refusal::Unavailable { budget: closed.config.name.clone() });
                }
                None => {
                    tracing::error!(%problem, "admitting without enforcing budgets (failureMode: Open or soft budgets)");
                    Vec::new()
                }
            },
        };
        // Also after a failure: if the holds were committed after all, they stay refreshed and the
        // settle removes them.
        locked(&self.live).insert(id.clone());
        let mut counters: Vec<CounterKey> = claims.iter().map(|c| c.counter.clone()).collect();
        counters.sort();
        let hold = SharedHold { store: Arc::clone(self), id, counters };
        Ok(Reservation::new(warnings, Some(Hold::Shared(hold))))
    }

    /// The decision, or the store's failure.
    async fn try_reserve(
        &self,
        id: &str,
        claims: &[&Claim<'_>],
        amount: i64,
    ) -> Result<Result<Vec<BudgetWarning>, Refusal>, BudgetError> {
        self.ensure_counters(claims).await?;
        let mut order: Vec<usize> = (0..claims.len()).collect();
        order.sort_by(|&a, &b| claims[a].counter.cmp(&claims[b].counter));
        let mut balances = vec![Balance::default(); claims.len()];
        let mut tx = self.pool.begin_with(BEGIN).await?;
        for &i in &order {
            let claim = claims[i];
            // Soft budgets only read their spend for warnings: no lock, no queue.
            let lock = if claim.hard() { " FOR UPDATE" } else { "" };
            let sql = format!(
                "SELECT spent_nanos FROM budget_counters WHERE budget = $1 AND period_start_ms = $2{lock}"
            );
            let row = sqlx::query(&sql)
                .bind(claim.counter.budget.clone())
                .bind(claim.counter.period_start_ms)
                .fetch_optional(&mut *tx)
                .await?;
            let Some(row) = row else {
                locked(&self.known).remove(&claim.counter);
                return Err(BudgetError::CounterMissing(claim.counter.budget.clone()));
            };
            balances[i].spent = row.try_get(0)?;
        }
        // Separate statements after all the locks: a statement sees what was committed before it
        // started, so a sum taken in the locking statement would miss the holds of the
        // transaction the lock waited for.
        let held_sql = format!(
            "SELECT CAST(COALESCE(SUM(h.amount_nanos), 0) AS BIGINT), CAST(COUNT(*) AS BIGINT) FROM budget_holds h \
             JOIN budget_reservations r ON r.id = h.reservation \
             WHERE h.budget = $1 AND h.period_start_ms = $2 AND r.settled_at_ms IS NULL \
             AND r.expires_at_ms > {DB_NOW_MS}"
        );
        for (claim, balance) in claims.iter().zip(&mut balances).filter(|(c, _)| c.hard()) {
            let row = sqlx::query(&held_sql)
                .bind(claim.counter.budget.clone())
                .bind(claim.counter.period_start_ms)
                .fetch_one(&mut *tx)
                .await?;
            balance.held = row.try_get(0)?;
            balance.holds = row.try_get(1)?;
        }
        let decision = decide(claims, &balances, amount);
        if decision.is_err() {
            // Dropping the transaction rolls it back.
            return Ok(decision);
        }
        if claims.iter().any(|c| c.hard()) {
            let sql =
                format!("INSERT INTO budget_reservations (id, expires_at_ms) VALUES ($1, {DB_NOW_MS} + $2)");
            sqlx::query(&sql).bind(id.to_owned()).bind(HOLD_TTL_MS).execute(&mut *tx).await?;
            for claim in claims.iter().filter(|c| c.hard()) {
                sqlx::query(
                    "INSERT INTO budget_holds (reservation, budget, period_start_ms, amount_nanos) \
                     VALUES ($1, $2, $3, $4)",
                )
                .bind(id.to_owned())
                .bind(claim.counter.budget.clone())
                .bind(claim.counter.period_start_ms)
                .bind(amount)
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(decision)
    }

    /// Creates the counter rows this replica has not seen yet, each seeded from the ledger by
    /// the first replica to get there.
    async fn ensure_counters(&self, claims: &[&Claim<'_>]) -> Result<(), BudgetError> {
        for claim in claims {
            if locked(&self.known).contains(&claim.counter) {
                continue;
            }
            let (budget, period_start_ms) = (claim.counter.budget.clone(), claim.counter.period_start_ms);
            let exists =
                sqlx::query("SELECT 1 FROM budget_counters WHERE budget = $1 AND period_start_ms = $2")
                    .bind(budget.clone())
                    .bind(period_start_ms)
                    .fetch_optional(&self.pool)
                    .await?
                    .is_some();
            if !exists {
                let spent = self.ledger.totals(&claim.scope(), period_start_ms).await?.cost_nanos;
                sqlx::query(
                    "INSERT INTO budget_counters (budget, period_start_ms, spent_nanos) VALUES ($1, $2, $3) \
                     ON CONFLICT (budget, period_start_ms) DO NOTHING",
                )
                .bind(budget)
                .bind(period_start_ms)
                .bind(spent)
                .execute(&self.pool)
                .await?;
            }
            let mut known = locked(&self.known);
            known.retain(|key| key.budget != claim.counter.budget || key.period_start_ms >= period_start_ms);
            known.insert(claim.counter.clone());
        }
        Ok(())
    }

    /// Pushes back the expiry of this replica's reservations in flight, then forgets expired
    /// reservations, their holds, and settled reservations past [`SETTLED_KEPT_MS`].
    async fn refresh(&self) -> Result<(), sqlx::Error> {
        let ids: Vec<String> = locked(&self.live).iter().cloned().collect();
        for chunk in ids.chunks(1000) {
            let placeholders: Vec<String> = (0..chunk.len()).map(|i| format!("${}", i + 2)).collect();
            let sql = format!(
                "UPDATE budget_reservations SET expires_at_ms = {DB_NOW_MS} + $1 \
                 WHERE settled_at_ms IS NULL AND id IN ({})",
                placeholders.join(", ")
            );
            let mut query = sqlx::query(&sql).bind(HOLD_TTL_MS);
            for id in chunk {
                query = query.bind(id.clone());
            }
            query.execute(&self.pool).await?;
        }
        // SKIP LOCKED: rows being refreshed or settled elsewhere are left for the next round.
        let sql = format!(
            "DELETE FROM budget_reservations WHERE id IN (SELECT id FROM budget_reservations \
             WHERE (settled_at_ms IS NULL AND expires_at_ms < {DB_NOW_MS}) \
             OR settled_at_ms < {DB_NOW_MS} - $1 FOR UPDATE SKIP LOCKED)"
        );
        sqlx::query(&sql).bind(SETTLED_KEPT_MS).execute(&self.pool).await?;
        sqlx::query(
            "DELETE FROM budget_holds WHERE NOT EXISTS \
             (SELECT 1 FROM budget_reservations r WHERE r.id = budget_holds.reservation)",
        )
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    pub(super) async fn drain(&self) {
        let mut pending = self.pending.subscribe();
        // Never fails: `self` holds the sender.
        let _ = pending.wait_for(|n| *n == 0).await;
    }

    /// Runs `write` on the store's runtime, counted until done for [`SharedStore::drain`].
    fn spawn_write<F>(&self, write: F)
    where
        F: Future<Output = ()> + Send + 'static,
    {
        self.pending.send_modify(|n| *n += 1);
        let done = Pending(self.pending.clone());
        self.runtime.spawn(async move {
            let _done = done;
            write.await;
        });
    }
}

/// Counts a write as finished when dropped, even if its task panicked or was cancelled.
struct Pending(watch::Sender<usize>);

impl Drop for Pending {
    fn drop(&mut self) {
        self.0.send_modify(|n| *n = n.saturating_sub(1));
    }
}

async fn refresh_loop(store: Weak<SharedStore>) {
    let mut tick = tokio::time::interval(REFRESH_EVERY);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        // Ends once every Budgets and Reservation using the store is gone.
        let Some(store) = store.upgrade() else { return };
        if let Err(error) = store.refresh().await {
            tracing::warn!(%error, "cannot refresh budget holds; retrying");
        }
    }
}

/// A reservation in the shared store.
pub(super) struct SharedHold {
    store: Arc<SharedStore>,
    id: String,
    /// Every counter to charge, in key order (the lock order).
    counters: Vec<CounterKey>,
}

impl SharedHold {
    pub(super) fn settle(self, actual: i64) {
        let store = Arc::clone(&self.store);
        store.spawn_write(async move { self.write_settle(actual).await });
    }

    /// Best effort: if the delete fails, the holds expire within [`HOLD_TTL_MS`] since nobody
    /// refreshes them any more.
    pub(super) fn release(self) {
        locked(&self.store.live).remove(&self.id);
        let store = Arc::clone(&self.store);
        store.spawn_write(async move {
            let released = async {
                let mut tx = self.store.pool.begin_with(BEGIN).await?;
                sqlx::query("DELETE FROM budget_holds WHERE reservation = $1")
                    .bind(self.id.clone())
                    .execute(&mut *tx)
                    .await?;
                sqlx::query("DELETE FROM budget_reservations WHERE id = $1")
                    .bind(self.id.clone())
                    .execute(&mut *tx)
                    .await?;
                tx.commit().await
            };
            if let Err(error) = released.await {
                tracing::warn!(%error, "cannot release a budget hold; it expires within a minute");
            }
        });
    }

    /// Retries transient failures with backoff; the hold stays refreshed meanwhile, so the
    /// budget stays conservative until the cost is written.
    async fn write_settle(self, actual: i64) {
        let mut delay = Duration::from_millis(100);
        for attempt in 1..=SETTLE_ATTEMPTS {
            match self.try_settle(actual).await {
                Ok(()) => {
                    locked(&self.store.live).remove(&self.id);
                    return;
                }
                Err(error) if attempt < SETTLE_ATTEMPTS => {
                    tracing::warn!(%error, attempt, "cannot settle a budget reservation; retrying");
                    tokio::time::sleep(delay).await;
                    delay = (delay * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    let budgets: Vec<&str> = self.counters.iter().map(|c| c.budget.as_str()).collect();
                    tracing::error!(
                        %error, ?budgets, actual_nanos = actual, reservation = %self.id,
                        "budget settle lost: the counters miss this cost this period (the ledger has it)"
                    );
                }
            }
        }
        locked(&self.store.live).remove(&self.id);
    }

    async fn try_settle(&self, actual: i64) -> Result<(), sqlx::Error> {
        let mut tx = self.store.pool.begin_with(BEGIN).await?;
        let sql = format!(
            "INSERT INTO budget_reservations (id, expires_at_ms, settled_at_ms) VALUES ($1, 0, {DB_NOW_MS}) \
             ON CONFLICT (id) DO UPDATE SET settled_at_ms = EXCLUDED.settled_at_ms \
             WHERE budget_reservations.settled_at_ms IS NULL"
        );
        let marked = sqlx::query(&sql).bind(self.id.clone()).execute(&mut *tx).await?.rows_affected();
        if marked == 0 {
            // An earlier attempt committed but its reply was lost.
            return Ok(());
        }
        sqlx::query("DELETE FROM budget_holds WHERE reservation = $1")
            .bind(self.id.clone())
            .execute(&mut *tx)
            .await?;
        for counter in &self.counters {
            // No row: the counter is created later, seeded from the ledger, which has this cost.
            sqlx::query(
                "UPDATE budget_counters SET spent_nanos = spent_nanos + $1 \
                 WHERE budget = $2 AND period_start_ms = $3",
            )
            .bind(actual)
            .bind(counter.budget.clone())
            .bind(counter.period_start_ms)
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await
    }
}
