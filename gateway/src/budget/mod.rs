//! Budgets: spend caps per calendar period (UTC).

mod period;

pub use self::period::{period_end, period_start};
