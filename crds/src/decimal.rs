//! Exact money: US dollars as integer nano-dollars, parsed from decimal strings.
//!
//! Prices and budgets are decimal strings in the resources so that no amount ever passes
//! through a float; costs are sums of integer nano-dollars.

use std::fmt;

use serde::{Deserialize, Serialize};

/// An amount of US dollars in units of 1e-9 USD.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(transparent)]
pub struct NanoUsd(pub i64);

const NANOS_PER_USD: i64 = 1_000_000_000;

impl NanoUsd {
    /// Parses `"12"`, `"0.15"`, `"3.000000001"` (at most 9 decimals, non-negative).
    pub fn parse(text: &str) -> Result<Self, String> {
        let (whole, frac) = text.split_once('.').unwrap_or((text, ""));
        let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
        if !digits(whole) || (text.contains('.') && !digits(frac)) || frac.len() > 9 || whole.len() > 9 {
            return Err(format!("{text:?} is not a decimal amount like \"12.50\" (at most 9 decimals)"));
        }
        let whole: i64 = whole.parse().map_err(|e| format!("{text:?}: {e}"))?;
        let frac_nanos: i64 = format!("{frac:0<9}").parse().map_err(|e| format!("{text:?}: {e}"))?;
        Ok(Self(whole * NANOS_PER_USD + frac_nanos))
    }

    /// The cost of `tokens` at `self` per million tokens, rounded half up to a nano-dollar.
    pub fn per_million_times(self, tokens: u64) -> NanoUsd {
        let product = i128::from(self.0) * i128::from(tokens);
        let rounded = (product + 500_000) / 1_000_000;
        NanoUsd(i64::try_from(rounded).unwrap_or(i64::MAX))
    }

    /// The amount as a float, for metrics only (never for accounting).
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / NANOS_PER_USD as f64
    }
}

impl std::ops::Add for NanoUsd {
    type Output = NanoUsd;
    fn add(self, rhs: NanoUsd) -> NanoUsd {
        NanoUsd(self.0.saturating_add(rhs.0))
    }
}

impl fmt::Display for NanoUsd {
    /// Dollars with trailing zeros trimmed: `0.000105`, `12.5`, `3`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let abs = self.0.unsigned_abs();
        let whole = abs / NANOS_PER_USD as u64;
        let frac = abs % NANOS_PER_USD as u64;
        if frac == 0 {
            write!(f, "{sign}{whole}")
        } else {
            let frac = format!("{frac:09}");
            write!(f, "{sign}{whole}.{}", frac.trim_end_matches('0'))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::NanoUsd;

    #[test]
    fn parses_decimal_strings_exactly() {
        assert_eq!(NanoUsd::parse("12"), Ok(NanoUsd(12_000_000_000)));
        assert_eq!(NanoUsd::parse("0.15"), Ok(NanoUsd(150_000_000)));
        assert_eq!(NanoUsd::parse("3.000000001"), Ok(NanoUsd(3_000_000_001)));
        for bad in ["", "-1", "1.", ".5", "1.0000000001", "1e3", "abc", "1,5"] {
            assert!(NanoUsd::parse(bad).is_err(), "{bad:?} should be rejected");
        }
    }

    #[test]
    fn prices_tokens_per_million_with_rounding() {
        let price = NanoUsd::parse("0.15").unwrap_or_default();
        assert_eq!(price.per_million_times(1_000_000), NanoUsd(150_000_000));
        assert_eq!(price.per_million_times(7), NanoUsd(1_050));
        let odd = NanoUsd::parse("0.0375").unwrap_or_default();
        assert_eq!(odd.per_million_times(3), NanoUsd(113)); // 112.5 rounds half up
        assert_eq!(NanoUsd::default().per_million_times(u64::MAX), NanoUsd(0));
    }

    #[test]
    fn displays_trimmed_dollars() {
        assert_eq!(NanoUsd(105_000).to_string(), "0.000105");
        assert_eq!(NanoUsd(12_500_000_000).to_string(), "12.5");
        assert_eq!(NanoUsd(3_000_000_000).to_string(), "3");
        assert_eq!(NanoUsd(-1).to_string(), "-0.000000001");
    }
}
