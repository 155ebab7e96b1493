//! The cost ledger: one row per request, written in batches off the hot path.
//!
//! Handlers hand records to a channel (never blocking a request, never dropping a record); one
//! writer task drains it, inserting everything that queued up while the previous batch was
//! written, so batches grow with load. On shutdown the channel closes and the writer drains it
//! before the process exits. SQLite by default, PostgreSQL for several replicas.
//!
//! The rows not yet written are counted ([`Backlog`]): when the database falls that far behind
//! (down, locked, too slow), new requests are refused until it catches up, instead of the queue
//! growing without bound. Memory stays bounded and no row is dropped.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use serde::Serialize;
use sqlx::Row;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use crate::db::{Database, Dialect, row_placeholders, shaped_chunks};
use crate::record::USAGE_COLUMNS;
pub use crate::record::{Attempt, LedgerRecord};
use crate::request_log;
use crate::stats::rollup::Rollup;

/// Rows the writer takes at once, at most four times this.
const MAX_BATCH: usize = 500;
/// Rows per INSERT statement at most (a power of two, see [`shaped_chunks`]).
const MAX_ROWS_PER_STATEMENT: usize = 256;
/// How long the writer waits for more rows before writing a small batch.
const LINGER: Duration = Duration::from_millis(20);

#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    #[error("ledger query failed: {0}")]
    Query(#[from] sqlx::Error),
}

/// The ledger, in the gateway's database.
#[derive(Clone, Debug)]
pub struct Ledger {
    db: Database,
    /// Whether the writer fills the request log too.
    request_log: bool,
}

/// What [`Ledger::totals`] sums over.
#[derive(Clone, Copy, Debug)]
pub struct Scope<'a> {
    pub tenant: &'a str,
    pub persona: Option<&'a str>,
    pub api_key: Option<&'a str>,
}

/// Sums over a scope and period.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Totals {
    pub requests: i64,
    pub tokens: i64,
    pub cost_nanos: i64,
}

/// Usage and spend of one tenant.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct TenantUsage {
    pub tenant: String,
    pub requests: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub cost_usd: String,
}

impl Ledger {
    /// The ledger in `db`, whose migrations created its table.
    pub fn new(db: Database) -> Ledger {
        Ledger { db, request_log: true }
    }

    /// The same ledger, writing the usage ledger only (`--request-log=false`).
    pub fn without_request_log(self) -> Ledger {
        Ledger { request_log: false, ..self }
    }

    /// The database the ledger is kept in, which other stores share.
    pub fn database(&self) -> &Database {
        &self.db
    }

    /// Inserts records in statements of up to [`MAX_ROWS_PER_STATEMENT`] rows, in one transaction: the billed
    /// ones into the usage ledger, all of them into the request log and its statistics.
    pub async fn insert(&self, records: &[LedgerRecord]) -> Result<(), LedgerError> {
        let mut tx = self.db.pool().begin().await?;
        let billed: Vec<&LedgerRecord> = records.iter().filter(|r| r.billed).collect();
        for chunk in shaped_chunks(&billed, MAX_ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO usage_ledger ({}) VALUES {}",
                USAGE_COLUMNS.join(", "),
                row_placeholders(self.db.dialect(), chunk.len(), USAGE_COLUMNS.len())
            );
            let mut query = sqlx::query(&sql);
            for record in chunk {
                query = record.bind_usage(query);
            }
            query.execute(&mut *tx).await?;
        }
        if self.request_log {
            request_log::insert(&mut tx, self.db.dialect(), records, MAX_ROWS_PER_STATEMENT).await?;
            Rollup::of(records).write(&mut tx, self.db.dialect()).await?;
        }
        tx.commit().await?;
        Ok(())
    }

    /// Requests, tokens and spend of one tenant (optionally one persona or key) since `since_ms`.
    pub async fn totals(&self, scope: &Scope<'_>, since_ms: i64) -> Result<Totals, LedgerError> {
        let mut conditions = vec!["tenant = {}", "created_at_ms >= {}"];
        if scope.persona.is_some() {
            conditions.push("persona = {}");
        }
        if scope.api_key.is_some() {
            conditions.push("api_key = {}");
        }
        let mut next = 0;
        let mut placeholder = || {
            next += 1;
            match self.db.dialect() {
                Dialect::Sqlite => "?".to_owned(),
                Dialect::Postgres => format!("${next}"),
            }
        };
        let filter: Vec<String> = conditions.iter().map(|c| c.replace("{}", &placeholder())).collect();
        let sql = format!(
            "SELECT CAST(COUNT(*) AS BIGINT), \
             CAST(COALESCE(SUM(input_tokens + cached_input_tokens + cache_write_tokens + output_tokens), 0) AS BIGINT), \
             CAST(COALESCE(SUM(cost_nanos), 0) AS BIGINT) FROM usage_ledger WHERE {}",
            filter.join(" AND ")
        );
        let mut query = sqlx::query(&sql).bind(scope.tenant.to_owned()).bind(since_ms);
        if let Some(persona) = scope.persona {
            query = query.bind(persona.to_owned());
        }
        if let Some(api_key) = scope.api_key {
            query = query.bind(api_key.to_owned());
        }
        let row = query.fetch_one(self.db.pool()).await?;
        Ok(Totals { requests: row.try_get(0)?, tokens: row.try_get(1)?, cost_nanos: row.try_get(2)? })
    }

    /// Usage and spend per tenant since `since_ms` (epoch milliseconds).
    pub async fn usage_by_tenant(&self, since_ms: i64) -> Result<Vec<TenantUsage>, LedgerError> {
        let placeholder = match self.db.dialect() {
            Dialect::Sqlite => "?",
            Dialect::Postgres => "$1",
        };
        // PostgreSQL's SUM(bigint) is numeric: cast back so both databases return a BIGINT.
        let sum = |column: &str| format!("CAST(COALESCE(SUM({column}), 0) AS BIGINT)");
        let sql = format!(
            "SELECT tenant, CAST(COUNT(*) AS BIGINT), {}, {}, {}, {}, {} FROM usage_ledger \
             WHERE created_at_ms >= {placeholder} GROUP BY tenant ORDER BY tenant",
            sum("input_tokens"),
            sum("cached_input_tokens"),
            sum("cache_write_tokens"),
            sum("output_tokens"),
            sum("cost_nanos"),
        );
        let rows = sqlx::query(&sql).bind(since_ms).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|row| {
                let cost_nanos: i64 = row.try_get(6)?;
                Ok(TenantUsage {
                    tenant: row.try_get(0)?,
                    requests: row.try_get(1)?,
                    input_tokens: row.try_get(2)?,
                    cached_input_tokens: row.try_get(3)?,
                    cache_write_tokens: row.try_get(4)?,
                    output_tokens: row.try_get(5)?,
                    cost_nanos,
                    cost_usd: switchboard_crds::decimal::NanoUsd(cost_nanos).to_string(),
                })
            })
            .collect()
    }

    /// Starts the batching writer; new requests are refused while `max_backlog` rows are not yet
    /// written. Records sent after the last [`LedgerSender`] is dropped are impossible, so
    /// awaiting the returned handle after dropping them flushes everything.
    pub fn spawn_writer(self, max_backlog: usize) -> (LedgerSender, JoinHandle<()>) {
        let (tx, rx) = mpsc::unbounded_channel();
        let backlog = Arc::new(Backlog { rows: AtomicUsize::new(0), limit: max_backlog.max(1) });
        let handle = tokio::spawn(write_loop(self, rx, backlog.clone()));
        (LedgerSender { tx, backlog }, handle)
    }
}

/// Rows handed to the writer and not yet in the database (or, at shutdown, in the log).
#[derive(Debug)]
pub struct Backlog {
    rows: AtomicUsize,
    limit: usize,
}

async fn write_loop(ledger: Ledger, mut rx: mpsc::UnboundedReceiver<LedgerRecord>, backlog: Arc<Backlog>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while rx.recv_many(&mut batch, MAX_BATCH * 4).await > 0 {
        // Linger briefly so a trickle of requests becomes one insert, not one per request. A
        // closed channel (shutdown) skips the wait: the rest is drained at once.
        if batch.len() < MAX_BATCH && !rx.is_closed() {
            tokio::time::sleep(LINGER).await;
            while batch.len() < MAX_BATCH * 4 {
                let Ok(record) = rx.try_recv() else { break };
                batch.push(record);
            }
        }
        let mut delay = Duration::from_millis(100);
        let mut attempt = 0;
        while let Err(error) = ledger.insert(&batch).await {
            attempt += 1;
            if rx.is_closed() && attempt >= 5 {
                // Shutting down and the database stays unreachable: the log is the last place left.
                for record in &batch {
                    let row = serde_json::to_string(record).unwrap_or_default();
                    tracing::error!(%error, row, "ledger row could not be written");
                }
                break;
            }
            tracing::warn!(%error, rows = batch.len(), attempt, "ledger write failed; retrying");
            tokio::time::sleep(delay).await;
            delay = (delay * 2).min(Duration::from_secs(5));
        }
        tracing::debug!(rows = batch.len(), "ledger batch written");
        backlog.rows.fetch_sub(batch.len(), Ordering::Relaxed);
        batch.clear();
    }
}

/// Cheap to clone; hands records to the writer task.
#[derive(Clone, Debug)]
pub struct LedgerSender {
    tx: mpsc::UnboundedSender<LedgerRecord>,
    backlog: Arc<Backlog>,
}

impl LedgerSender {
    /// Rows not yet written.
    pub fn backlog(&self) -> usize {
        self.backlog.rows.load(Ordering::Relaxed)
    }

    /// The backlog, if it has reached its limit: then new requests are refused until it shrinks.
    pub fn behind(&self) -> Option<usize> {
        let rows = self.backlog();
        (rows >= self.backlog.limit).then_some(rows)
    }

    pub fn record(&self, record: LedgerRecord) {
        self.backlog.rows.fetch_add(1, Ordering::Relaxed);
        if let Err(lost) = self.tx.send(record) {
            self.backlog.rows.fetch_sub(1, Ordering::Relaxed);
            // Only possible if the writer task died; keep the row in the log.
            let row = serde_json::to_string(&lost.0).unwrap_or_default();
            tracing::error!(row, "ledger writer is gone; row logged instead");
        }
    }
}
