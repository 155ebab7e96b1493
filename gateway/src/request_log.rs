//! The request log: one row per request that reached the exchange, served or refused, with what
//! an operator asks when something goes wrong (who, which model, route and backend, each attempt,
//! status, latency, time to first token, queue wait, tokens, cost, cache, trace). Rows come from
//! the ledger's writer, in the same batches and transaction as the usage ledger
//! ([`crate::ledger`]); the usage ledger stays the record of money, and this table alone is
//! trimmed by the retention setting.

use serde::Serialize;
use sqlx::any::AnyRow;
use sqlx::{Any, Row, Transaction};
use switchboard_crds::decimal::NanoUsd;

use crate::db::{Bind, Conditions, Database, Dialect, page_of, row_placeholders, shaped_chunks};
use crate::guardrails::Hit;
use crate::record::{Attempt, LedgerRecord, USAGE_COLUMNS, saturating};

/// Rows per page at most.
pub const MAX_PAGE: u32 = 200;
/// Rows deleted per statement when trimming, so that a large trim never holds a long lock.
const TRIM_CHUNK: i64 = 5_000;

/// The columns after the usage ledger's ([`USAGE_COLUMNS`]).
const LOG_COLUMNS: [&str; 7] =
    ["subject", "attempts", "ttft_ms", "queue_ms", "cache_hit", "trace_id", "guardrails"];

/// Every column, for the queries.
fn columns() -> String {
    USAGE_COLUMNS.iter().chain(&LOG_COLUMNS).copied().collect::<Vec<_>>().join(", ")
}

/// Writes `records` in `tx`, in statements of up to `chunk` rows (a power of two).
pub(crate) async fn insert(
    tx: &mut Transaction<'_, Any>,
    dialect: Dialect,
    records: &[LedgerRecord],
    chunk: usize,
) -> Result<(), sqlx::Error> {
    let width = USAGE_COLUMNS.len() + LOG_COLUMNS.len();
    for rows in shaped_chunks(records, chunk) {
        let sql = format!(
            "INSERT INTO request_log ({}) VALUES {}",
            columns(),
            row_placeholders(dialect, rows.len(), width)
        );
        let mut query = sqlx::query(&sql);
        for r in rows {
            let attempts = serde_json::to_string(&r.attempts).unwrap_or_else(|_| "[]".into());
            let guardrails =
                (!r.guardrails.is_empty()).then(|| serde_json::to_string(&r.guardrails).ok()).flatten();
            query = r
                .bind_usage(query)
                .bind(r.subject.as_deref())
                .bind(attempts)
                .bind(r.ttft_ms.map(saturating))
                .bind(r.queue_ms.map(saturating))
                .bind(i64::from(r.cache_hit))
                .bind(r.trace_id.as_deref())
                .bind(guardrails);
        }
        query.execute(&mut **tx).await?;
    }
    Ok(())
}

/// Which rows a page holds.
#[derive(Clone, Debug, Default)]
pub struct Filter {
    /// Forced to the caller's own tenant on `/v1/usage/requests`.
    pub tenant: Option<String>,
    pub model: Option<String>,
    pub persona: Option<String>,
    pub route: Option<String>,
    pub status: Option<StatusFilter>,
    pub since_ms: Option<i64>,
    pub until_ms: Option<i64>,
    /// Text the error code contains (lowercase): `budget`, `timeout`, ...
    pub error: Option<String>,
    /// Rows older than this one (the previous page's `next_cursor`).
    pub before: Option<Cursor>,
    pub limit: u32,
}

/// One status code, or a class of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StatusFilter {
    Code(u16),
    /// `2xx`, `4xx`, `5xx`: the hundreds digit.
    Class(u16),
}

impl std::str::FromStr for StatusFilter {
    type Err = String;

    fn from_str(text: &str) -> Result<StatusFilter, String> {
        let wrong = || format!("status must be a code (429) or a class (2xx, 4xx, 5xx), not {text:?}");
        match text.as_bytes() {
            [digit @ b'1'..=b'5', b'x', b'x'] => Ok(StatusFilter::Class(u16::from(digit - b'0'))),
            _ => match text.parse::<u16>() {
                Ok(code @ 100..=599) => Ok(StatusFilter::Code(code)),
                _ => Err(wrong()),
            },
        }
    }
}

/// A position in the log: the id of the last row of a page. Ids are UUIDv7, whose text sorts by
/// the time the request began, so the id is the log's order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cursor(pub String);

impl std::str::FromStr for Cursor {
    type Err = String;

    fn from_str(text: &str) -> Result<Cursor, String> {
        let id_like =
            !text.is_empty() && text.len() <= 64 && text.bytes().all(|b| b.is_ascii_hexdigit() || b == b'-');
        if !id_like {
            return Err("cursor must be a next_cursor from an earlier page".to_owned());
        }
        Ok(Cursor(text.to_owned()))
    }
}

/// The smallest id of a request that began at `ms` or later: the UUIDv7 text starts with its
/// 48-bit millisecond timestamp in hex (`tttttttt-tttt-7...`), so ids compare like their times.
fn first_id_at(ms: i64) -> String {
    let ms = u64::try_from(ms).unwrap_or(0).min((1 << 48) - 1);
    format!("{:08x}-{:04x}", ms >> 16, ms & 0xffff)
}

/// One request as the API shows it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct RequestRow {
    pub id: String,
    pub created_at_ms: i64,
    pub tenant: String,
    pub api_key: String,
    pub subject: Option<String>,
    pub persona: Option<String>,
    pub model: String,
    pub route: String,
    pub backend: String,
    pub provider: String,
    pub endpoint: String,
    pub stream: bool,
    pub status: i64,
    pub error_code: Option<String>,
    pub attempts: Vec<Attempt>,
    pub latency_ms: i64,
    pub ttft_ms: Option<i64>,
    pub queue_ms: Option<i64>,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub cost_usd: String,
    pub cache_hit: bool,
    pub trace_id: Option<String>,
    /// What the guardrails found and did, by side, kind and action (never the text).
    pub guardrails: Vec<Hit>,
}

/// A page of the log, newest first.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Page {
    pub data: Vec<RequestRow>,
    /// Pass as `cursor` for the next page; absent on the last one.
    pub next_cursor: Option<String>,
}

/// The log in the gateway's database.
#[derive(Clone, Debug)]
pub struct RequestLog {
    db: Database,
}

impl RequestLog {
    pub fn new(db: Database) -> RequestLog {
        RequestLog { db }
    }

    /// The page `filter` selects.
    pub async fn page(&self, filter: &Filter) -> Result<Page, sqlx::Error> {
        let mut conditions = Conditions::new(self.db.dialect());
        conditions.equal_where_set(&[
            ("tenant", &filter.tenant),
            ("model", &filter.model),
            ("persona", &filter.persona),
            ("route", &filter.route),
        ]);
        match filter.status {
            Some(StatusFilter::Code(code)) => conditions.compare("status", "=", Bind::Int(i64::from(code))),
            Some(StatusFilter::Class(class)) => {
                conditions.compare("status", ">=", Bind::Int(i64::from(class) * 100));
                conditions.compare("status", "<", Bind::Int(i64::from(class) * 100 + 100));
            }
            None => {}
        }
        if let Some(text) = &filter.error {
            // The text literally: `%`, `_` and the escape itself escaped.
            let escaped = text.replace('\\', "\\\\").replace('%', "\\%").replace('_', "\\_");
            let pattern = conditions.bind(Bind::Text(format!("%{escaped}%")));
            conditions.push(format!("LOWER(error_code) LIKE {pattern} ESCAPE '\\'"));
        }
        // Times select by when the request began, through its id (the primary key).
        if let Some(since) = filter.since_ms {
            conditions.compare("id", ">=", Bind::Text(first_id_at(since)));
        }
        if let Some(until) = filter.until_ms {
            conditions.compare("id", "<", Bind::Text(first_id_at(until)));
        }
        if let Some(Cursor(before)) = &filter.before {
            conditions.compare("id", "<", Bind::Text(before.clone()));
        }
        let limit = filter.limit.clamp(1, MAX_PAGE);
        let sql = format!(
            "SELECT {} FROM request_log {} ORDER BY id DESC LIMIT {}",
            columns(),
            conditions.clause(),
            limit + 1
        );
        let query = conditions.query(&sql);
        let rows = query.fetch_all(self.db.pool()).await?;
        let rows = rows.iter().map(row).collect::<Result<Vec<_>, _>>()?;
        let (data, next_cursor) = page_of(rows, limit, |last| last.id.clone());
        Ok(Page { data, next_cursor })
    }

    /// One request by id; with `tenant`, only if it is that tenant's.
    pub async fn get(&self, id: &str, tenant: Option<&str>) -> Result<Option<RequestRow>, sqlx::Error> {
        let (first, second) = match self.db.dialect() {
            Dialect::Sqlite => ("?", "?"),
            Dialect::Postgres => ("$1", "$2"),
        };
        let scope = if tenant.is_some() { format!(" AND tenant = {second}") } else { String::new() };
        let sql = format!("SELECT {} FROM request_log WHERE id = {first}{scope}", columns());
        let mut query = sqlx::query(&sql).bind(id);
        if let Some(tenant) = tenant {
            query = query.bind(tenant);
        }
        let found = query.fetch_optional(self.db.pool()).await?;
        found.as_ref().map(row).transpose()
    }

    /// Deletes the rows older than `before_ms`, a chunk at a time; returns how many went.
    pub async fn trim(&self, before_ms: i64) -> Result<u64, sqlx::Error> {
        let sql = match self.db.dialect() {
            Dialect::Sqlite => {
                "DELETE FROM request_log WHERE id IN \
                 (SELECT id FROM request_log WHERE created_at_ms < ? LIMIT ?)"
            }
            Dialect::Postgres => {
                "DELETE FROM request_log WHERE id IN \
                 (SELECT id FROM request_log WHERE created_at_ms < $1 LIMIT $2)"
            }
        };
        let mut deleted = 0;
        loop {
            let done = sqlx::query(sql).bind(before_ms).bind(TRIM_CHUNK).execute(self.db.pool()).await?;
            deleted += done.rows_affected();
            if done.rows_affected() < TRIM_CHUNK as u64 {
                return Ok(deleted);
            }
        }
    }
}

/// How often the retention sweep runs.
const TRIM_EVERY: std::time::Duration = std::time::Duration::from_secs(3600);

impl RequestLog {
    /// Trims the log to its last `days` days, at start and hourly; `days == 0` keeps everything.
    pub fn spawn_retention(&self, days: u32) -> Option<tokio::task::JoinHandle<()>> {
        if days == 0 {
            return None;
        }
        let log = self.clone();
        Some(tokio::spawn(async move {
            let mut tick = tokio::time::interval(TRIM_EVERY);
            loop {
                tick.tick().await;
                let before = crate::db::now_ms().saturating_sub(i64::from(days) * 86_400_000);
                match log.trim(before).await {
                    Ok(0) => {}
                    Ok(deleted) => tracing::info!(deleted, days, "trimmed the request log"),
                    Err(error) => tracing::warn!(%error, "cannot trim the request log"),
                }
            }
        }))
    }
}

fn row(row: &AnyRow) -> Result<RequestRow, sqlx::Error> {
    let attempts: String = row.try_get("attempts")?;
    let cost_nanos: i64 = row.try_get("cost_nanos")?;
    let flag = |name: &str| row.try_get::<i64, _>(name).map(|v| v != 0);
    Ok(RequestRow {
        id: row.try_get("id")?,
        created_at_ms: row.try_get("created_at_ms")?,
        tenant: row.try_get("tenant")?,
        api_key: row.try_get("api_key")?,
        subject: row.try_get("subject")?,
        persona: row.try_get("persona")?,
        model: row.try_get("model")?,
        route: row.try_get("route")?,
        backend: row.try_get("backend")?,
        provider: row.try_get("provider")?,
        endpoint: row.try_get("endpoint")?,
        stream: flag("stream")?,
        status: row.try_get("status")?,
        error_code: row.try_get("error_code")?,
        // Written by this module only; a row that does not parse shows no attempts.
        attempts: serde_json::from_str(&attempts).unwrap_or_default(),
        latency_ms: row.try_get("latency_ms")?,
        ttft_ms: row.try_get("ttft_ms")?,
        queue_ms: row.try_get("queue_ms")?,
        input_tokens: row.try_get("input_tokens")?,
        cached_input_tokens: row.try_get("cached_input_tokens")?,
        cache_write_tokens: row.try_get("cache_write_tokens")?,
        output_tokens: row.try_get("output_tokens")?,
        cost_nanos,
        cost_usd: NanoUsd(cost_nanos).to_string(),
        cache_hit: flag("cache_hit")?,
        trace_id: row.try_get("trace_id")?,
        guardrails: row
            .try_get::<Option<String>, _>("guardrails")?
            .and_then(|hits| serde_json::from_str(&hits).ok())
            .unwrap_or_default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_filters_read_codes_and_classes() {
        assert_eq!("429".parse(), Ok(StatusFilter::Code(429)));
        assert_eq!("5xx".parse(), Ok(StatusFilter::Class(5)));
        for wrong in ["", "6xx", "99", "600", "4x", "abc", "-1"] {
            assert!(wrong.parse::<StatusFilter>().is_err(), "{wrong}");
        }
    }

    #[test]
    fn ids_of_later_requests_sort_after_the_bound_of_their_time() {
        let id = |ms: u64| {
            uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
                uuid::NoContext,
                ms / 1000,
                (ms % 1000) as u32 * 1_000_000,
            ))
            .to_string()
        };
        for ms in [0, 1, 65_535, 65_536, 1_765_000_000_000, 1_765_000_000_001] {
            assert!(id(ms) >= first_id_at(ms as i64), "{ms}");
            assert!(id(ms) < first_id_at(ms as i64 + 1), "{ms}");
        }
        assert_eq!(first_id_at(-5), "00000000-0000");
    }

    #[test]
    fn cursors_are_ids_and_nothing_else() {
        assert_eq!("0193a5b2-c3d4-7abc".parse(), Ok(Cursor("0193a5b2-c3d4-7abc".into())));
        for wrong in ["", "x_abc", "1_2", "a b", "a'--", &"a".repeat(65)] {
            assert!(wrong.parse::<Cursor>().is_err(), "{wrong}");
        }
    }
}
