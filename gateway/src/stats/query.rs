//! Reading the statistics: series of points per group (tenant, model, route or persona), the
//! groups with the most requests in the range first, each with its total over the range.

use std::collections::BTreeMap;

use serde::Serialize;
use sqlx::Row;
use sqlx::any::AnyRow;
use switchboard_crds::decimal::NanoUsd;

use super::histogram::{BINS, Histogram};
use super::rollup::{COUNTERS, Counts, histogram_columns};
use super::{Resolution, Slice, Stats};
use crate::db::{Bind, Conditions};

/// What series are made of.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GroupBy {
    /// One series for everything selected.
    None,
    Tenant,
    Model,
    Route,
    Persona,
}

/// What makes a group one of the top ones: its requests, its spend or its errors.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RankBy {
    #[default]
    Requests,
    Cost,
    Errors,
}

impl RankBy {
    fn column(self) -> &'static str {
        match self {
            RankBy::Requests => "requests",
            RankBy::Cost => "cost_nanos",
            RankBy::Errors => "errors",
        }
    }

    fn of(self, point: &Point) -> i64 {
        match self {
            RankBy::Requests => point.requests,
            RankBy::Cost => point.cost_nanos,
            RankBy::Errors => point.errors,
        }
    }
}

impl GroupBy {
    /// The slice keeping only this name.
    fn slice(self) -> Slice {
        match self {
            GroupBy::None => Slice::All,
            GroupBy::Tenant => Slice::Tenant,
            GroupBy::Model => Slice::Model,
            GroupBy::Route => Slice::Route,
            GroupBy::Persona => Slice::Persona,
        }
    }

    fn column(self) -> Option<&'static str> {
        match self {
            GroupBy::None => None,
            GroupBy::Tenant => Some("tenant"),
            GroupBy::Model => Some("model"),
            GroupBy::Route => Some("route"),
            GroupBy::Persona => Some("persona"),
        }
    }
}

/// Which statistics to read.
#[derive(Clone, Debug)]
pub struct StatsQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    pub bucket: Resolution,
    pub group_by: GroupBy,
    pub tenant: Option<String>,
    pub model: Option<String>,
    pub route: Option<String>,
    /// `""` selects requests without a persona.
    pub persona: Option<String>,
    /// Series at most (the top groups by `rank_by`).
    pub limit: u32,
    pub rank_by: RankBy,
}

impl StatsQuery {
    /// `bucket`s from `since_ms` to `until_ms` grouped by `group_by`, unfiltered, the ten busiest
    /// groups.
    pub fn new(since_ms: i64, until_ms: i64, bucket: Resolution, group_by: GroupBy) -> StatsQuery {
        StatsQuery {
            since_ms,
            until_ms,
            bucket,
            group_by,
            tenant: None,
            model: None,
            route: None,
            persona: None,
            limit: 10,
            rank_by: RankBy::Requests,
        }
    }

    /// The smallest slice that answers the query: the one of its group (or of its one filter),
    /// when it filters on nothing else; else the full one.
    fn slice(&self) -> Slice {
        let filters = [
            (Slice::Tenant, &self.tenant),
            (Slice::Model, &self.model),
            (Slice::Route, &self.route),
            (Slice::Persona, &self.persona),
        ];
        let filtered: Vec<Slice> =
            filters.iter().filter(|(_, value)| value.is_some()).map(|(slice, _)| *slice).collect();
        match (self.group_by, filtered.as_slice()) {
            (GroupBy::None, []) => Slice::All,
            (GroupBy::None, [one]) => *one,
            (group, []) => group.slice(),
            (group, [one]) if *one == group.slice() => *one,
            _ => Slice::Full,
        }
    }
}

/// One group's points and its total over the range.
#[derive(Clone, Debug, Serialize)]
pub struct Series {
    /// The group's value (`null` for no grouping, and for requests without a persona).
    pub key: Option<String>,
    pub total: Point,
    pub points: Vec<Point>,
}

/// What a bucket (or the whole range) holds.
#[derive(Clone, Debug, Serialize)]
pub struct Point {
    /// The bucket's start (absent on totals).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub t_ms: Option<i64>,
    pub requests: i64,
    /// Status 400 and above; of which 500 and above; refused by limits, budgets or the queue.
    pub errors: i64,
    pub server_errors: i64,
    pub refused: i64,
    pub errors_by_code: BTreeMap<String, i64>,
    pub cache_hits: i64,
    pub latency_ms: Percentiles,
    /// Streams only; `null` when none.
    pub ttft_ms: Option<Percentiles>,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub cost_usd: String,
}

/// A distribution's mean and percentiles, estimated from its histogram.
#[derive(Clone, Debug, Serialize)]
pub struct Percentiles {
    pub mean: f64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
}

impl Percentiles {
    fn of(histogram: &Histogram, sum: i64, count: i64) -> Option<Percentiles> {
        let round = |ms: f64| (ms * 10.0).round() / 10.0;
        Some(Percentiles {
            mean: round(sum as f64 / count.max(1) as f64),
            p50: round(histogram.quantile(0.50)?),
            p95: round(histogram.quantile(0.95)?),
            p99: round(histogram.quantile(0.99)?),
        })
    }
}

/// A bucket's counts and error codes, as read.
#[derive(Default)]
struct Bucket {
    counts: Counts,
    errors: BTreeMap<String, i64>,
}

impl Bucket {
    fn add(&mut self, other: &Bucket) {
        self.counts.add(&other.counts);
        for (code, n) in &other.errors {
            *self.errors.entry(code.clone()).or_default() += n;
        }
    }

    fn point(&self, t_ms: Option<i64>) -> Point {
        let [
            requests,
            errors,
            server_errors,
            refused,
            cache_hits,
            input,
            cached,
            cache_write,
            output,
            cost,
            latency_sum,
            ttft_count,
            ttft_sum,
        ] = self.counts.counters;
        Point {
            t_ms,
            requests,
            errors,
            server_errors,
            refused,
            errors_by_code: self.errors.clone(),
            cache_hits,
            latency_ms: Percentiles::of(&self.counts.latency, latency_sum, requests).unwrap_or(Percentiles {
                mean: 0.0,
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
            }),
            ttft_ms: Percentiles::of(&self.counts.ttft, ttft_sum, ttft_count),
            input_tokens: input,
            cached_input_tokens: cached,
            cache_write_tokens: cache_write,
            output_tokens: output,
            cost_nanos: cost,
            cost_usd: NanoUsd(cost).to_string(),
        }
    }
}

impl Stats {
    /// The series `query` selects, the busiest groups first.
    pub async fn series(&self, query: &StatsQuery) -> Result<Vec<Series>, sqlx::Error> {
        let mut conditions = self.conditions(query);
        let group = query.group_by.column();
        if let Some(column) = group {
            let top = self.top_groups(query, column).await?;
            if top.is_empty() {
                return Ok(Vec::new());
            }
            one_of(&mut conditions, column, top);
        }
        let mut series: Vec<Series> = self
            .read(&conditions, group)
            .await?
            .into_iter()
            .map(|(key, buckets)| Series {
                key: Some(key).filter(|k| group.is_some() && !k.is_empty()),
                total: total(buckets.values()).point(None),
                points: buckets.iter().map(|(t, b)| b.point(Some(*t))).collect(),
            })
            .collect();
        let rank = query.rank_by;
        series.sort_by(|a, b| rank.of(&b.total).cmp(&rank.of(&a.total)).then_with(|| a.key.cmp(&b.key)));
        Ok(series)
    }

    /// The totals of `keys` (values of `group`) from the UTC day holding `since_ms` on, from the
    /// day rows: a list of tenants with their usage this month, say.
    pub async fn day_totals(
        &self,
        since_ms: i64,
        group: GroupBy,
        keys: Vec<String>,
    ) -> Result<BTreeMap<String, Point>, sqlx::Error> {
        let Some(column) = group.column().filter(|_| !keys.is_empty()) else { return Ok(BTreeMap::new()) };
        let mut conditions = Conditions::new(self.db.dialect());
        conditions.compare("resolution_ms", "=", Bind::Int(Resolution::Day.ms()));
        conditions.compare("slice", "=", Bind::Text(group.slice().as_str().to_owned()));
        conditions.compare("bucket_ms", ">=", Bind::Int(Resolution::Day.floor(since_ms)));
        one_of(&mut conditions, column, keys);
        let groups = self.read(&conditions, Some(column)).await?;
        Ok(groups.into_iter().map(|(key, buckets)| (key, total(buckets.values()).point(None))).collect())
    }

    /// The buckets of each group the conditions select.
    async fn read(
        &self,
        conditions: &Conditions,
        group: Option<&str>,
    ) -> Result<BTreeMap<String, BTreeMap<i64, Bucket>>, sqlx::Error> {
        let group_select = group.map_or_else(|| "''".to_owned(), str::to_owned);
        let group_by = group.map_or_else(String::new, |c| format!(", {c}"));
        let sums: Vec<String> = COUNTERS
            .iter()
            .map(|c| (*c).to_owned())
            .chain(histogram_columns())
            .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
            .collect();
        let sql = format!(
            "SELECT bucket_ms, {group_select} AS grp, {} FROM request_stats {} GROUP BY bucket_ms{group_by}",
            sums.join(", "),
            conditions.clause(),
        );
        let mut groups: BTreeMap<String, BTreeMap<i64, Bucket>> = BTreeMap::new();
        for row in conditions.query(&sql).fetch_all(self.db.pool()).await? {
            let (bucket, key) = (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?);
            groups.entry(key).or_default().entry(bucket).or_default().counts = counts(&row)?;
        }
        let sql = format!(
            "SELECT bucket_ms, {group_select} AS grp, error_code, CAST(SUM(requests) AS BIGINT) \
             FROM request_stats_errors {} GROUP BY bucket_ms{group_by}, error_code",
            conditions.clause(),
        );
        for row in conditions.query(&sql).fetch_all(self.db.pool()).await? {
            let (bucket, key) = (row.try_get::<i64, _>(0)?, row.try_get::<String, _>(1)?);
            let (code, count) = (row.try_get::<String, _>(2)?, row.try_get::<i64, _>(3)?);
            groups.entry(key).or_default().entry(bucket).or_default().errors.insert(code, count);
        }
        Ok(groups)
    }

    /// The range, the resolution and the filters.
    fn conditions(&self, query: &StatsQuery) -> Conditions {
        let mut conditions = Conditions::new(self.db.dialect());
        conditions.compare("resolution_ms", "=", Bind::Int(query.bucket.ms()));
        conditions.compare("slice", "=", Bind::Text(query.slice().as_str().to_owned()));
        conditions.compare("bucket_ms", ">=", Bind::Int(query.bucket.floor(query.since_ms)));
        conditions.compare("bucket_ms", "<", Bind::Int(query.until_ms));
        conditions.equal_where_set(&[
            ("tenant", &query.tenant),
            ("model", &query.model),
            ("route", &query.route),
            ("persona", &query.persona),
        ]);
        conditions
    }

    /// The `limit` groups with the most requests (spend, errors: `rank_by`) in the range.
    async fn top_groups(&self, query: &StatsQuery, column: &str) -> Result<Vec<String>, sqlx::Error> {
        let conditions = self.conditions(query);
        let sql = format!(
            "SELECT {column}, CAST(SUM({}) AS BIGINT) AS n FROM request_stats {} \
             GROUP BY {column} ORDER BY n DESC, {column} LIMIT {}",
            query.rank_by.column(),
            conditions.clause(),
            query.limit.max(1),
        );
        let rows = conditions.query(&sql).fetch_all(self.db.pool()).await?;
        rows.iter().map(|row| row.try_get::<String, _>(0)).collect()
    }
}

/// `column IN (keys)`.
fn one_of(conditions: &mut Conditions, column: &str, keys: Vec<String>) {
    let placeholders: Vec<String> = keys.into_iter().map(|key| conditions.bind(Bind::Text(key))).collect();
    conditions.push(format!("{column} IN ({})", placeholders.join(", ")));
}

fn total<'a>(buckets: impl Iterator<Item = &'a Bucket>) -> Bucket {
    let mut total = Bucket::default();
    buckets.for_each(|b| total.add(b));
    total
}

/// A row's counters and histograms, read from the columns after the bucket and the group.
fn counts(row: &AnyRow) -> Result<Counts, sqlx::Error> {
    let mut counts = Counts::default();
    let mut column = 2;
    for counter in &mut counts.counters {
        *counter = row.try_get(column)?;
        column += 1;
    }
    for bin in counts.latency.0.iter_mut().chain(counts.ttft.0.iter_mut()) {
        *bin = u64::try_from(row.try_get::<i64, _>(column)?).unwrap_or(0);
        column += 1;
    }
    debug_assert_eq!(column, 2 + COUNTERS.len() + 2 * BINS);
    Ok(counts)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn query(group_by: GroupBy, tenant: Option<&str>, model: Option<&str>) -> StatsQuery {
        StatsQuery {
            tenant: tenant.map(str::to_owned),
            model: model.map(str::to_owned),
            ..StatsQuery::new(0, 1, Resolution::Hour, group_by)
        }
    }

    #[test]
    fn a_query_reads_the_smallest_slice_that_answers_it() {
        assert_eq!(query(GroupBy::None, None, None).slice(), Slice::All);
        assert_eq!(query(GroupBy::Model, None, None).slice(), Slice::Model);
        assert_eq!(query(GroupBy::Tenant, Some("a"), None).slice(), Slice::Tenant);
        assert_eq!(query(GroupBy::None, Some("a"), None).slice(), Slice::Tenant);
        assert_eq!(query(GroupBy::Model, Some("a"), None).slice(), Slice::Full);
        assert_eq!(query(GroupBy::None, Some("a"), Some("m")).slice(), Slice::Full);
    }
}
