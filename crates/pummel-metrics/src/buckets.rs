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

/// The schema of the native histograms served: buckets 2^(1/8) wide (about 9 %), much finer
/// than the classic ones and still a few dozen buckets from microseconds to seconds.
pub const NATIVE_SCHEMA: i32 = 3;

/// A native (sparse, exponential) histogram's positive buckets in Prometheus's span and delta
/// form: `spans` are `(offset, length)` runs of buckets (the first offset is the first bucket's
/// index, each next one the gap after the previous run), `deltas` each bucket's count minus
/// the previous one's (the first: its count).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Native {
    /// Runs of buckets.
    pub spans: Vec<(i32, u32)>,
    /// Count differences.
    pub deltas: Vec<i64>,
}

/// The native buckets of `histogram` at `schema`: bucket `i` holds the values in
/// `(2^((i-1)/2^schema), 2^(i/2^schema)]` seconds. Each HdrHistogram bucket (0.1 % wide) goes
/// whole into the native bucket of its middle value.
pub fn native(histogram: &LatencyHistogram, schema: i32) -> Native {
    let scale = 2f64.powi(schema);
    let mut counts: Vec<(i32, u64)> = Vec::new();
    for recorded in histogram.iter_recorded() {
        let seconds = histogram.median_equivalent(recorded.value_iterated_to()) as f64 / 1e6;
        if seconds <= 0.0 {
            continue;
        }
        let index = (seconds.log2() * scale).ceil() as i32;
        match counts.last_mut() {
            Some((last, n)) if *last == index => *n += recorded.count_at_value(),
            _ => counts.push((index, recorded.count_at_value())),
        }
    }
    let mut native = Native::default();
    let mut previous_index: Option<i32> = None;
    let mut previous_count = 0i64;
    for (index, count) in counts {
        match previous_index {
            Some(p) if index == p + 1 => {
                if let Some(span) = native.spans.last_mut() {
                    span.1 += 1;
                }
            }
            Some(p) => native.spans.push((index - p - 1, 1)),
            None => native.spans.push((index, 1)),
        }
        let count = i64::try_from(count).unwrap_or(i64::MAX);
        native.deltas.push(count - previous_count);
        previous_count = count;
        previous_index = Some(index);
    }
    native
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
    fn native_buckets_are_spans_and_deltas() {
        let mut h = new_histogram();
        // At schema 3, bucket 0 is (0.917 s, 1 s], bucket 1 (1 s, 1.09 s], bucket 8 (1.83 s, 2 s].
        for (ms, n) in [(950u64, 3), (1050, 1), (1900, 2)] {
            for _ in 0..n {
                record(&mut h, Duration::from_millis(ms));
            }
        }
        let n = native(&h, 3);
        assert_eq!(n.spans, [(0, 2), (6, 1)]);
        assert_eq!(n.deltas, [3, -2, 1]);
        assert_eq!(native(&new_histogram(), 3), Native::default());
    }

    #[test]
    fn an_empty_histogram_is_all_zero() {
        let b = buckets(&new_histogram());
        assert_eq!((b.sum, b.count), (0.0, 0));
        assert!(b.cumulative.iter().all(|(_, n)| *n == 0));
    }
}
