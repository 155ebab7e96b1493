//! Latency histograms that add up: fixed bins (about x1.5 apart, 1 ms to 200 s and beyond), so
//! rolled-up rows merge by adding counts and any percentile of any range is estimated from the
//! sum. Within a bin the estimate interpolates linearly; its error is bounded by the bin's width.

/// Upper bounds of the bins, in ms; the last bin holds everything above the one before.
pub const BOUNDS_MS: [u64; BINS] = [
    1,
    2,
    3,
    5,
    7,
    10,
    15,
    20,
    30,
    50,
    70,
    100,
    150,
    200,
    300,
    500,
    700,
    1_000,
    1_500,
    2_000,
    3_000,
    5_000,
    7_000,
    10_000,
    15_000,
    20_000,
    30_000,
    50_000,
    70_000,
    100_000,
    200_000,
    u64::MAX,
];
pub const BINS: usize = 32;

/// Counts per bin.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Histogram(pub [u64; BINS]);

impl Default for Histogram {
    fn default() -> Histogram {
        Histogram([0; BINS])
    }
}

impl Histogram {
    pub fn record(&mut self, ms: u64) {
        let bin = BOUNDS_MS.partition_point(|bound| *bound < ms);
        self.0[bin] = self.0[bin].saturating_add(1);
    }

    pub fn add(&mut self, other: &Histogram) {
        for (mine, theirs) in self.0.iter_mut().zip(other.0) {
            *mine = mine.saturating_add(theirs);
        }
    }

    pub fn count(&self) -> u64 {
        self.0.iter().fold(0, |sum, n| sum.saturating_add(*n))
    }

    /// The `q` quantile (0 < q <= 1) in ms, `None` when empty. A value in the last, open bin is
    /// reported as that bin's lower bound.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let total = self.count();
        if total == 0 {
            return None;
        }
        // The rank of the value sought, 1-based: the ceil of q x total, at least the first.
        let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
        let mut below = 0u64;
        for (bin, count) in self.0.iter().enumerate() {
            if below + count >= rank {
                let low = if bin == 0 { 0 } else { BOUNDS_MS[bin - 1] };
                if bin == BINS - 1 {
                    return Some(low as f64);
                }
                let high = BOUNDS_MS[bin];
                let within = (rank - below) as f64 / *count as f64;
                return Some(low as f64 + within * (high - low) as f64);
            }
            below += count;
        }
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_fall_in_the_bin_their_bound_closes() {
        let mut histogram = Histogram::default();
        for ms in [0, 1, 2, 1_000, 1_001, 250_000, u64::MAX] {
            histogram.record(ms);
        }
        let bin = |ms: u64| BOUNDS_MS.partition_point(|b| *b < ms);
        assert_eq!(histogram.0[0], 2, "0 and 1 ms");
        assert_eq!(histogram.0[bin(2)], 1);
        assert_eq!(histogram.0[bin(1_000)], 1);
        assert_eq!(bin(1_000) + 1, bin(1_001));
        assert_eq!(histogram.0[BINS - 1], 2, "past the last bound");
        assert_eq!(histogram.count(), 7);
        assert!(BOUNDS_MS.windows(2).all(|w| w[0] < w[1]));
    }

    #[test]
    fn quantiles_are_within_their_bin_and_merge_across_histograms() {
        let (mut fast, mut slow) = (Histogram::default(), Histogram::default());
        (0..90).for_each(|_| fast.record(40));
        (0..10).for_each(|_| slow.record(4_000));
        let mut both = fast;
        both.add(&slow);
        let p50 = both.quantile(0.5).unwrap();
        assert!((30.0..=50.0).contains(&p50), "{p50}");
        let p99 = both.quantile(0.99).unwrap();
        assert!((3_000.0..=5_000.0).contains(&p99), "{p99}");
        assert!(both.quantile(0.5) <= both.quantile(0.95));
        assert_eq!(Histogram::default().quantile(0.5), None);
        let mut huge = Histogram::default();
        huge.record(1 << 40);
        assert_eq!(huge.quantile(0.99), Some(200_000.0));
    }
}
