//! Budget periods: calendar intervals in UTC, so every replica and the status writer agree on
//! where a period starts and ends whatever their local time zone.

use k8s_openapi::jiff::tz::TimeZone;
use k8s_openapi::jiff::{Timestamp, ToSpan, Zoned};
use switchboard_crds::resources::BudgetPeriod;

/// The start (UTC) of the period containing `now`: today, this week (Monday), this month, or
/// the Unix epoch for `Total`.
pub fn period_start(period: BudgetPeriod, now: Timestamp) -> Timestamp {
    start_zoned(period, now).map(|z| z.timestamp()).unwrap_or(Timestamp::UNIX_EPOCH)
}

/// The end of the period containing `now`, which is the next period's start; `None` for `Total`,
/// which never resets.
pub fn period_end(period: BudgetPeriod, now: Timestamp) -> Option<Timestamp> {
    let start = start_zoned(period, now)?;
    let next = match period {
        BudgetPeriod::Daily => start.checked_add(1.day()),
        BudgetPeriod::Weekly => start.checked_add(1.week()),
        BudgetPeriod::Monthly => start.checked_add(1.month()),
        BudgetPeriod::Total => return None,
    };
    next.ok().map(|z| z.timestamp())
}

/// `None` for `Total` and for instants at the edge of jiff's range.
fn start_zoned(period: BudgetPeriod, now: Timestamp) -> Option<Zoned> {
    let zoned = now.to_zoned(TimeZone::UTC);
    let start = match period {
        BudgetPeriod::Daily => zoned.start_of_day(),
        BudgetPeriod::Weekly => zoned
            .start_of_day()
            .and_then(|day| day.checked_sub(i64::from(zoned.weekday().to_monday_zero_offset()).days())),
        BudgetPeriod::Monthly => zoned.first_of_month().and_then(|first| first.start_of_day()),
        BudgetPeriod::Total => return None,
    };
    start.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn periods_start_at_utc_boundaries() {
        // Thursday 2026-11-19 15:30:00 UTC.
        let now: Timestamp = "2026-11-19T15:30:00Z".parse().unwrap();
        let at = |p| period_start(p, now).to_string();
        assert_eq!(at(BudgetPeriod::Daily), "2026-11-19T00:00:00Z");
        assert_eq!(at(BudgetPeriod::Weekly), "2026-11-16T00:00:00Z");
        assert_eq!(at(BudgetPeriod::Monthly), "2026-11-01T00:00:00Z");
        assert_eq!(at(BudgetPeriod::Total), "1970-01-01T00:00:00Z");
    }

    #[test]
    fn periods_end_where_the_next_one_starts() {
        let end = |p, now: &str| period_end(p, now.parse().unwrap()).map(|t| t.to_string());
        let thursday = "2026-11-19T15:30:00Z";
        assert_eq!(end(BudgetPeriod::Daily, thursday).as_deref(), Some("2026-11-20T00:00:00Z"));
        assert_eq!(end(BudgetPeriod::Weekly, thursday).as_deref(), Some("2026-11-23T00:00:00Z"));
        assert_eq!(end(BudgetPeriod::Monthly, thursday).as_deref(), Some("2026-12-01T00:00:00Z"));
        assert_eq!(end(BudgetPeriod::Total, thursday), None);
        // Month and year ends, a leap day, and an instant exactly on a boundary (it starts a period).
        assert_eq!(
            end(BudgetPeriod::Monthly, "2026-12-31T23:59:59Z").as_deref(),
            Some("2027-01-01T00:00:00Z")
        );
        assert_eq!(
            end(BudgetPeriod::Monthly, "2028-02-29T12:00:00Z").as_deref(),
            Some("2028-03-01T00:00:00Z")
        );
        assert_eq!(
            end(BudgetPeriod::Weekly, "2026-11-23T00:00:00Z").as_deref(),
            Some("2026-11-30T00:00:00Z")
        );
        assert_eq!(end(BudgetPeriod::Daily, "2026-11-19T00:00:00Z").as_deref(), Some("2026-11-20T00:00:00Z"));
    }
}
