//! Cost by day, tenant, model and persona, from the day rows of the statistics (kept for good):
//! what the costs view and its CSV export show.

use serde::Serialize;
use sqlx::Row;
use switchboard_crds::decimal::NanoUsd;

use super::{Resolution, Slice, Stats};
use crate::db::{Bind, Conditions};

/// Which days and whose costs.
#[derive(Clone, Debug, Default)]
pub struct CostQuery {
    pub since_ms: i64,
    pub until_ms: i64,
    pub tenant: Option<String>,
    pub model: Option<String>,
    pub persona: Option<String>,
}

/// One day's cost of one tenant, model and persona.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct CostRow {
    /// The UTC day, `YYYY-MM-DD`.
    pub day: String,
    pub tenant: String,
    pub model: String,
    pub persona: Option<String>,
    pub requests: i64,
    pub input_tokens: i64,
    pub cached_input_tokens: i64,
    pub cache_write_tokens: i64,
    pub output_tokens: i64,
    pub cost_nanos: i64,
    pub cost_usd: String,
}

/// The CSV header, in [`CostRow::csv`]'s order.
pub const CSV_HEADER: &str = "day,tenant,model,persona,requests,input_tokens,cached_input_tokens,cache_write_tokens,output_tokens,cost_usd\n";

impl CostRow {
    /// One CSV line (RFC 4180: fields with a comma, quote or line break are quoted).
    pub fn csv(&self) -> String {
        let field = |text: &str| {
            if text.contains([',', '"', '\n', '\r']) {
                format!("\"{}\"", text.replace('"', "\"\""))
            } else {
                text.to_owned()
            }
        };
        format!(
            "{},{},{},{},{},{},{},{},{},{}\n",
            self.day,
            field(&self.tenant),
            field(&self.model),
            field(self.persona.as_deref().unwrap_or_default()),
            self.requests,
            self.input_tokens,
            self.cached_input_tokens,
            self.cache_write_tokens,
            self.output_tokens,
            self.cost_usd
        )
    }
}

impl Stats {
    /// Costs per day, tenant, model and persona, oldest day first.
    pub async fn costs(&self, query: &CostQuery) -> Result<Vec<CostRow>, sqlx::Error> {
        let mut conditions = Conditions::new(self.db.dialect());
        conditions.compare("resolution_ms", "=", Bind::Int(Resolution::Day.ms()));
        conditions.compare("slice", "=", Bind::Text(Slice::Full.as_str().to_owned()));
        conditions.compare("bucket_ms", ">=", Bind::Int(Resolution::Day.floor(query.since_ms)));
        conditions.compare("bucket_ms", "<", Bind::Int(query.until_ms));
        conditions.equal_where_set(&[
            ("tenant", &query.tenant),
            ("model", &query.model),
            ("persona", &query.persona),
        ]);
        let sums = [
            "requests",
            "input_tokens",
            "cached_input_tokens",
            "cache_write_tokens",
            "output_tokens",
            "cost_nanos",
        ]
        .map(|c| format!("CAST(SUM({c}) AS BIGINT)"))
        .join(", ");
        let sql = format!(
            "SELECT bucket_ms, tenant, model, persona, {sums} FROM request_stats {} \
             GROUP BY bucket_ms, tenant, model, persona ORDER BY bucket_ms, tenant, model, persona",
            conditions.clause()
        );
        let rows = conditions.query(&sql).fetch_all(self.db.pool()).await?;
        rows.iter()
            .map(|row| {
                let persona: String = row.try_get(3)?;
                let cost_nanos: i64 = row.try_get(9)?;
                Ok(CostRow {
                    day: utc_day(row.try_get(0)?),
                    tenant: row.try_get(1)?,
                    model: row.try_get(2)?,
                    persona: Some(persona).filter(|p| !p.is_empty()),
                    requests: row.try_get(4)?,
                    input_tokens: row.try_get(5)?,
                    cached_input_tokens: row.try_get(6)?,
                    cache_write_tokens: row.try_get(7)?,
                    output_tokens: row.try_get(8)?,
                    cost_nanos,
                    cost_usd: NanoUsd(cost_nanos).to_string(),
                })
            })
            .collect()
    }
}

/// `YYYY-MM-DD` of a UTC day's start in Unix ms (the civil-from-days algorithm).
fn utc_day(ms: i64) -> String {
    let days = ms.div_euclid(86_400_000) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days.rem_euclid(146_097);
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn days_are_utc_dates() {
        assert_eq!(utc_day(0), "1970-01-01");
        assert_eq!(utc_day(1_796_644_185_908), "2026-12-07");
        assert_eq!(utc_day(951_782_400_000), "2000-02-29");
        assert_eq!(utc_day(-86_400_000), "1969-12-31");
    }

    #[test]
    fn csv_fields_with_commas_or_quotes_are_quoted() {
        let row = CostRow {
            day: "2026-12-07".into(),
            tenant: "a,b".into(),
            model: "say \"hi\"".into(),
            persona: None,
            requests: 2,
            input_tokens: 3,
            cached_input_tokens: 0,
            cache_write_tokens: 0,
            output_tokens: 4,
            cost_nanos: 1_500_000_000,
            cost_usd: NanoUsd(1_500_000_000).to_string(),
        };
        assert_eq!(row.csv(), "2026-12-07,\"a,b\",\"say \"\"hi\"\"\",,2,3,0,0,4,1.5\n");
    }
}
