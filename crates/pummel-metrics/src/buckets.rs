//! Classic Prometheus buckets made from an HdrHistogram of microseconds.
//!
//! pummel records every latency in HdrHistograms (µs, 3 significant digits); a scrape turns one
//! into cumulative counts at fixed bounds in seconds. The bounds reach from 100 µs (loopback
//! answers) to a minute (timeouts); the count at a bound is exact to the histogram's resolution
//! (0.1 %), and the sum is the histogram's mean times its count, as exact.

use pummel_results::histogram::LatencyHistogram;

/// Upper bounds of the buckets, seconds (`+Inf` is added by the encoder).
pub const BOUNDS: [f64; 19] = [
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 15.0, 30.0,
    60.0,
];

/// A histogram as a scrape shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct Buckets {
    /// Sum of the values, seconds.
    pub sum: f64,
    /// How many values.
    pub count: u64,
    /// `(upper bound, values at or below it)`, cumulative, ending with `+Inf`.
    pub cumulative: Vec<(f64, u64)>,
}

impl Buckets {
    /// The count of each bucket alone, as `prometheus-client`'s encoder takes them (it sums
    /// them up again as it writes).
    pub fn per_bucket(&self) -> Vec<(f64, u64)> {
        let mut below = 0;
        self.cumulative
            .iter()
            .map(|&(bound, n)| {
                let own = n.saturating_sub(below);
                below = n;
                (bound, own)
            })
            .collect()
    }
}

/// The buckets of `histogram`.
pub fn buckets(histogram: &LatencyHistogram) -> Buckets {
    let count = histogram.len();
    let mut cumulative = Vec::with_capacity(BOUNDS.len() + 1);
    for bound in BOUNDS {
        let micros = (bound * 1e6).round() as u64;
        let at_or_below = if count == 0 { 0 } else { histogram.count_between(0, micros) };
        cumulative.push((bound, at_or_below.min(count)));
    }
    cumulative.push((f64::INFINITY, count));
    let sum = if count == 0 { 0.0 } else { histogram.mean() * count as f64 / 1e6 };
    Buckets { sum, count, cumulative }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_results::histogram::{new_histogram, record};
    use std::time::Duration;

    #[test]
    fn counts_are_cumulative_and_end_with_the_total() {
        let mut h = new_histogram();
        for ms in [1u64, 3, 3, 40, 700] {
            record(&mut h, Duration::from_millis(ms));
        }
        let b = buckets(&h);
        assert_eq!(b.count, 5);
        let at = |bound: f64| b.cumulative.iter().find(|(le, _)| *le == bound).map(|(_, n)| *n);
        assert_eq!(at(0.0005), Some(0));
        assert_eq!(at(0.001), Some(1), "1 ms falls in le=0.001");
        assert_eq!(at(0.005), Some(3));
        assert_eq!(at(0.05), Some(4));
        assert_eq!(at(1.0), Some(5));
        assert_eq!(b.cumulative.last(), Some(&(f64::INFINITY, 5)));
        assert!(b.cumulative.windows(2).all(|w| w[0].1 <= w[1].1));
        assert!((b.sum - 0.747).abs() < 0.002, "{}", b.sum);
        let own: Vec<u64> = b.per_bucket().iter().map(|(_, n)| *n).filter(|n| *n > 0).collect();
        assert_eq!(own, [1, 2, 1, 1]);
    }

    #[test]
    fn an_empty_histogram_is_all_zero() {
        let b = buckets(&new_histogram());
        assert_eq!((b.sum, b.count), (0.0, 0));
        assert!(b.cumulative.iter().all(|(_, n)| *n == 0));
    }
}
