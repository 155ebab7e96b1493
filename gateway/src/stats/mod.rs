//! Request statistics over time: requests, errors by code, latency and time-to-first-token
//! percentiles, tokens and cost, per minute, hour or day, by tenant, model, route or persona.
//!
//! Rolled up as the request log is written ([`rollup`], in the ledger writer's transaction) into
//! `request_stats`, so `/admin/v1/stats` and `/admin/v1/costs` read a few thousand rows whatever
//! the request log holds ([`query`]). Percentiles come from histograms that add up
//! ([`histogram`]). Minute rows are kept for 3 days, hour rows for 90, day rows for good.

use std::time::Duration;

use crate::db::{Bind, Conditions, Database, now_ms};

pub mod costs;
pub mod histogram;
pub mod query;
pub mod rollup;

pub use self::query::{GroupBy, Point, RankBy, Series, StatsQuery};

/// How long one statistics row covers.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Resolution {
    Minute,
    Hour,
    Day,
}

/// Which names a statistics row keeps: all four (`Full`), one of them, or none (`All`); the
/// others are ''. A query reads the smallest slice that answers it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Slice {
    Full,
    Tenant,
    Model,
    Route,
    Persona,
    All,
}

/// Every slice written.
pub const SLICES: [Slice; 6] =
    [Slice::Full, Slice::Tenant, Slice::Model, Slice::Route, Slice::Persona, Slice::All];

impl Slice {
    pub fn as_str(self) -> &'static str {
        match self {
            Slice::Full => "full",
            Slice::Tenant => "tenant",
            Slice::Model => "model",
            Slice::Route => "route",
            Slice::Persona => "persona",
            Slice::All => "all",
        }
    }

    /// Which of tenant, model, route and persona the slice keeps.
    fn keeps(self) -> [bool; 4] {
        match self {
            Slice::Full => [true; 4],
            Slice::Tenant => [true, false, false, false],
            Slice::Model => [false, true, false, false],
            Slice::Route => [false, false, true, false],
            Slice::Persona => [false, false, false, true],
            Slice::All => [false; 4],
        }
    }
}

/// Every resolution kept, finest first.
pub const RESOLUTIONS: [Resolution; 3] = [Resolution::Minute, Resolution::Hour, Resolution::Day];

impl Resolution {
    pub fn ms(self) -> i64 {
        match self {
            Resolution::Minute => 60_000,
            Resolution::Hour => 3_600_000,
            Resolution::Day => 86_400_000,
        }
    }

    /// The start of the UTC bucket holding `ms`.
    pub fn floor(self, ms: i64) -> i64 {
        ms - ms.rem_euclid(self.ms())
    }

    /// How long rows of this resolution are kept; `None`: for good.
    pub fn kept_for_ms(self) -> Option<i64> {
        match self {
            Resolution::Minute => Some(3 * 86_400_000),
            Resolution::Hour => Some(90 * 86_400_000),
            Resolution::Day => None,
        }
    }
}

/// The statistics in the gateway's database.
#[derive(Clone, Debug)]
pub struct Stats {
    db: Database,
}

/// How often old rows are deleted.
const TRIM_EVERY: Duration = Duration::from_secs(3600);

impl Stats {
    pub fn new(db: Database) -> Stats {
        Stats { db }
    }

    /// Deletes rows past their resolution's keep time, at start and hourly.
    pub fn spawn_retention(&self) -> tokio::task::JoinHandle<()> {
        let stats = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(TRIM_EVERY);
            loop {
                tick.tick().await;
                if let Err(error) = stats.trim(now_ms()).await {
                    tracing::warn!(%error, "cannot trim the request statistics");
                }
            }
        })
    }

    async fn trim(&self, now: i64) -> Result<(), sqlx::Error> {
        for resolution in RESOLUTIONS {
            let Some(kept) = resolution.kept_for_ms() else { continue };
            for table in ["request_stats", "request_stats_errors"] {
                let mut conditions = Conditions::new(self.db.dialect());
                conditions.compare("resolution_ms", "=", Bind::Int(resolution.ms()));
                conditions.compare("bucket_ms", "<", Bind::Int(now.saturating_sub(kept)));
                let sql = format!("DELETE FROM {table} {}", conditions.clause());
                conditions.query(&sql).execute(self.db.pool()).await?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn buckets_start_on_utc_boundaries() {
        let ms = 1_796_644_185_908; // 2026-12-07T11:49:45.908Z
        assert_eq!(Resolution::Minute.floor(ms), 1_796_644_140_000);
        assert_eq!(Resolution::Hour.floor(ms), 1_796_641_200_000);
        assert_eq!(Resolution::Day.floor(ms), 1_796_601_600_000);
        assert_eq!(Resolution::Day.floor(Resolution::Day.floor(ms)), Resolution::Day.floor(ms));
    }
}
