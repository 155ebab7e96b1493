//! Rolling a batch of records up into `request_stats` and `request_stats_errors`, in the ledger
//! writer's transaction: counts per minute, hour and day, per tenant, model, route and persona,
//! added to what the rows already hold (an upsert), so several replicas can write the same rows.

use std::collections::BTreeMap;

use sqlx::{Any, Transaction};

use super::histogram::{BINS, Histogram};
use super::{RESOLUTIONS, Resolution, SLICES, Slice};
use crate::db::{Dialect, row_placeholders, shaped_chunks};
use crate::record::{LedgerRecord, saturating};

/// The key columns, then the counters, then the two histograms (`l00..`, `t00..`).
const KEY_COLUMNS: [&str; 7] = ["resolution_ms", "slice", "bucket_ms", "tenant", "model", "route", "persona"];
pub(super) const COUNTERS: [&str; 13] = [
    "requests",
    "errors",
    "server_errors",
    "refused",
    "cache_hits",
    "input_tokens",
    "cached_input_tokens",
    "cache_write_tokens",
    "output_tokens",
    "cost_nanos",
    "latency_ms_sum",
    "ttft_count",
    "ttft_ms_sum",
];
/// Rows per statement at most (a power of two): 256 x 90 values, under SQLite's 32,766 bound
/// parameters.
const ROWS_PER_STATEMENT: usize = 256;

/// `l00, .., l31, t00, .., t31`.
pub(super) fn histogram_columns() -> impl Iterator<Item = String> {
    (0..BINS).map(|i| format!("l{i:02}")).chain((0..BINS).map(|i| format!("t{i:02}")))
}

#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Key<'a> {
    resolution_ms: i64,
    slice: Slice,
    bucket_ms: i64,
    tenant: &'a str,
    model: &'a str,
    route: &'a str,
    persona: &'a str,
}

/// What one row counts.
#[derive(Clone, Debug, Default)]
pub(super) struct Counts {
    pub counters: [i64; COUNTERS.len()],
    pub latency: Histogram,
    pub ttft: Histogram,
}

impl Counts {
    fn add_record(&mut self, record: &LedgerRecord) {
        let ttft = record.ttft_ms;
        let values = [
            1,
            i64::from(record.status >= 400),
            i64::from(record.status >= 500),
            i64::from(!record.billed),
            i64::from(record.cache_hit),
            saturating(record.input_tokens),
            saturating(record.cached_input_tokens),
            saturating(record.cache_write_tokens),
            saturating(record.output_tokens),
            record.cost_nanos,
            saturating(record.latency_ms),
            i64::from(ttft.is_some()),
            ttft.map_or(0, saturating),
        ];
        for (counter, value) in self.counters.iter_mut().zip(values) {
            *counter = counter.saturating_add(value);
        }
        self.latency.record(record.latency_ms);
        if let Some(ms) = ttft {
            self.ttft.record(ms);
        }
    }

    pub(super) fn add(&mut self, other: &Counts) {
        for (mine, theirs) in self.counters.iter_mut().zip(other.counters) {
            *mine = mine.saturating_add(theirs);
        }
        self.latency.add(&other.latency);
        self.ttft.add(&other.ttft);
    }
}

/// A batch's statistics, ready to be added to the tables.
#[derive(Debug, Default)]
pub struct Rollup<'a> {
    rows: BTreeMap<Key<'a>, Counts>,
    errors: BTreeMap<(Key<'a>, &'a str), i64>,
}

impl<'a> Rollup<'a> {
    /// Counts `records` at every resolution and in every slice: per minute in the full slice
    /// first, then those rows into the others (a batch spans a few minutes, so few rows).
    pub fn of(records: &'a [LedgerRecord]) -> Rollup<'a> {
        let mut minutes: BTreeMap<Key<'a>, Counts> = BTreeMap::new();
        let mut minute_errors: BTreeMap<(Key<'a>, &'a str), i64> = BTreeMap::new();
        for record in records {
            let key = key(record, RESOLUTIONS[0]);
            minutes.entry(key.clone()).or_default().add_record(record);
            if let Some(code) = record.error_code.as_deref().filter(|_| record.status >= 400) {
                *minute_errors.entry((key, code)).or_default() += 1;
            }
        }
        let mut rollup = Rollup::default();
        for resolution in RESOLUTIONS {
            for slice in SLICES {
                for (key, counts) in &minutes {
                    rollup.rows.entry(projected(key, resolution, slice)).or_default().add(counts);
                }
                for ((key, code), count) in &minute_errors {
                    *rollup.errors.entry((projected(key, resolution, slice), code)).or_default() += count;
                }
            }
        }
        rollup
    }

    /// Adds the batch's counts to the tables, rows in key order (so that replicas writing the
    /// same rows lock them in the same order).
    pub async fn write(&self, tx: &mut Transaction<'_, Any>, dialect: Dialect) -> Result<(), sqlx::Error> {
        let rows: Vec<_> = self.rows.iter().collect();
        let columns: Vec<String> =
            KEY_COLUMNS.iter().chain(&COUNTERS).map(|c| (*c).to_owned()).chain(histogram_columns()).collect();
        let added = columns[KEY_COLUMNS.len()..]
            .iter()
            .map(|c| format!("{c} = request_stats.{c} + excluded.{c}"))
            .collect::<Vec<_>>()
            .join(", ");
        for chunk in shaped_chunks(&rows, ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO request_stats ({}) VALUES {} ON CONFLICT ({}) DO UPDATE SET {added}",
                columns.join(", "),
                row_placeholders(dialect, chunk.len(), columns.len()),
                KEY_COLUMNS.join(", "),
            );
            let mut query = sqlx::query(&sql);
            for (key, counts) in chunk {
                query = query
                    .bind(key.resolution_ms)
                    .bind(key.slice.as_str())
                    .bind(key.bucket_ms)
                    .bind(key.tenant)
                    .bind(key.model)
                    .bind(key.route)
                    .bind(key.persona);
                for value in counts.counters {
                    query = query.bind(value);
                }
                for value in counts.latency.0.iter().chain(&counts.ttft.0) {
                    query = query.bind(saturating(*value));
                }
            }
            query.execute(&mut **tx).await?;
        }
        let errors: Vec<_> = self.errors.iter().collect();
        for chunk in shaped_chunks(&errors, ROWS_PER_STATEMENT) {
            let sql = format!(
                "INSERT INTO request_stats_errors ({}, error_code, requests) VALUES {} \
                 ON CONFLICT ({}, error_code) DO UPDATE SET requests = request_stats_errors.requests + excluded.requests",
                KEY_COLUMNS.join(", "),
                row_placeholders(dialect, chunk.len(), KEY_COLUMNS.len() + 2),
                KEY_COLUMNS.join(", "),
            );
            let mut query = sqlx::query(&sql);
            for ((key, code), count) in chunk {
                query = query
                    .bind(key.resolution_ms)
                    .bind(key.slice.as_str())
                    .bind(key.bucket_ms)
                    .bind(key.tenant)
                    .bind(key.model)
                    .bind(key.route)
                    .bind(key.persona)
                    .bind(*code)
                    .bind(*count);
            }
            query.execute(&mut **tx).await?;
        }
        Ok(())
    }
}

fn key(record: &LedgerRecord, resolution: Resolution) -> Key<'_> {
    Key {
        resolution_ms: resolution.ms(),
        slice: Slice::Full,
        bucket_ms: resolution.floor(record.created_at_ms),
        tenant: &record.tenant,
        // A request refused before routing (no route) names whatever model the client sent: the
        // statistics count it without the name, so that made-up names add no rows.
        model: if record.route.is_empty() { "" } else { &record.model },
        route: &record.route,
        persona: record.persona.as_deref().unwrap_or_default(),
    }
}

/// A full minute row's key at `resolution`, keeping the names `slice` keeps.
fn projected<'a>(key: &Key<'a>, resolution: Resolution, slice: Slice) -> Key<'a> {
    let [tenant, model, route, persona] = slice.keeps();
    let keep = |kept: bool, name: &'a str| if kept { name } else { "" };
    Key {
        resolution_ms: resolution.ms(),
        slice,
        bucket_ms: resolution.floor(key.bucket_ms),
        tenant: keep(tenant, key.tenant),
        model: keep(model, key.model),
        route: keep(route, key.route),
        persona: keep(persona, key.persona),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn record(at_ms: i64, tenant: &str, status: u16, latency_ms: u64) -> LedgerRecord {
        LedgerRecord {
            created_at_ms: at_ms,
            tenant: tenant.into(),
            model: "m".into(),
            route: "r".into(),
            status,
            error_code: (status >= 400).then(|| "upstream_error".into()),
            latency_ms,
            output_tokens: 10,
            cost_nanos: 5,
            billed: true,
            ..Default::default()
        }
    }

    #[test]
    fn a_batch_is_counted_once_at_each_resolution() {
        const MINUTE: i64 = 60_000;
        let day = 86_400_000 * 20_000;
        let records = [
            record(day + 1, "a", 200, 40),
            record(day + MINUTE + 2, "a", 502, 4_000),
            record(day + 3, "b", 200, 7),
        ];
        let rollup = Rollup::of(&records);
        let at = |resolution: Resolution, tenant: &str| -> Vec<(i64, i64)> {
            rollup
                .rows
                .iter()
                .filter(|(k, _)| {
                    k.resolution_ms == resolution.ms() && k.slice == Slice::Full && k.tenant == tenant
                })
                .map(|(k, c)| (k.bucket_ms, c.counters[0]))
                .collect()
        };
        assert_eq!(at(Resolution::Minute, "a"), vec![(day, 1), (day + MINUTE, 1)]);
        assert_eq!(at(Resolution::Hour, "a"), vec![(day, 2)]);
        assert_eq!(at(Resolution::Day, "a"), vec![(day, 2)]);
        assert_eq!(at(Resolution::Day, "b"), vec![(day, 1)]);
        let (_, hour) = rollup
            .rows
            .iter()
            .find(|(k, _)| k.resolution_ms == Resolution::Hour.ms() && k.tenant == "a")
            .unwrap();
        assert_eq!(hour.counters[1..3], [1, 1], "one error, a server error");
        assert_eq!(hour.counters[8], 20, "output tokens");
        assert_eq!(hour.latency.count(), 2);
        let day_errors = |slice: Slice| -> i64 {
            let errors = rollup.errors.iter();
            errors
                .filter(|((k, _), _)| k.resolution_ms == Resolution::Day.ms() && k.slice == slice)
                .map(|(_, n)| n)
                .sum()
        };
        assert_eq!((day_errors(Slice::Full), day_errors(Slice::Tenant), day_errors(Slice::All)), (1, 1, 1));
        let all: Vec<_> = rollup
            .rows
            .iter()
            .filter(|(k, _)| k.slice == Slice::All)
            .map(|(k, c)| (k.tenant, c.counters[0]))
            .collect();
        assert_eq!(all.iter().map(|(_, n)| n).sum::<i64>(), 3 * 3, "every record once per resolution");
        assert!(all.iter().all(|(tenant, _)| tenant.is_empty()));
    }

    #[test]
    fn requests_refused_before_routing_are_counted_without_the_model_they_named() {
        let records: Vec<LedgerRecord> = ["made-up-1", "made-up-2"]
            .into_iter()
            .map(|model| LedgerRecord {
                model: model.into(),
                route: String::new(),
                status: 404,
                error_code: Some("model_not_found".into()),
                ..record(0, "a", 404, 0)
            })
            .collect();
        let rollup = Rollup::of(&records);
        let models: Vec<(&str, i64)> = rollup
            .rows
            .iter()
            .filter(|(k, _)| k.slice == Slice::Model)
            .map(|(k, c)| (k.model, c.counters[0]))
            .collect();
        assert_eq!(models, [("", 2), ("", 2), ("", 2)], "one row per resolution, both requests in it");
    }
}
