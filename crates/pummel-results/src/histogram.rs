//! The one histogram shape pummel uses everywhere.
//!
//! Every latency is recorded in microseconds into an HdrHistogram with 3 significant digits and
//! the same bounds (1 µs .. 1 hour), whichever thread, process or machine records it. Identical
//! bounds make merging exact: adding shard histograms gives the same counts as recording every
//! value into one histogram. Values above the upper bound are clamped to it, never dropped.

use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::{Deserializer, Serializer, V2DeflateSerializer};

use crate::expr::Stat;

/// Lowest value a histogram tracks: 1 microsecond.
pub const LOWEST_MICROS: u64 = 1;
/// Highest value a histogram tracks: one hour, in microseconds.
pub const HIGHEST_MICROS: u64 = 3_600_000_000;
/// Significant decimal digits kept for every value.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// A latency histogram in microseconds.
pub type LatencyHistogram = Histogram<u64>;

/// Creates an empty histogram with pummel's standard bounds.
pub fn new_histogram() -> LatencyHistogram {
    Histogram::new_with_bounds(LOWEST_MICROS, HIGHEST_MICROS, SIGNIFICANT_DIGITS)
        .expect("constant histogram bounds are valid")
}

/// Records a duration, clamped into the histogram's range.
pub fn record(histogram: &mut LatencyHistogram, value: Duration) {
    let micros = u64::try_from(value.as_micros()).unwrap_or(u64::MAX);
    histogram.saturating_record(micros.clamp(LOWEST_MICROS, HIGHEST_MICROS));
}

/// Adds `from` into `into`. Both have the standard bounds, so this cannot fail.
pub fn merge(into: &mut LatencyHistogram, from: &LatencyHistogram) {
    into.add(from).expect("histograms with identical bounds always merge");
}

/// Reads one statistic of a histogram in milliseconds; `None` when it is empty.
pub fn histogram_stat_ms(histogram: &LatencyHistogram, stat: &Stat) -> Option<f64> {
    if histogram.is_empty() {
        return None;
    }
    let micros = match stat {
        Stat::Min => histogram.min() as f64,
        Stat::Mean => histogram.mean(),
        Stat::Max => histogram.max() as f64,
        Stat::Percentile(p) => histogram.value_at_quantile(p / 100.0) as f64,
    };
    Some(micros / 1000.0)
}

/// Why a serialized histogram could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum HistogramDecodeError {
    /// The text is not valid base64.
    #[error("histogram is not valid base64: {0}")]
    Base64(#[from] base64::DecodeError),
    /// The bytes are not a V2 (+DEFLATE) HdrHistogram.
    #[error("histogram bytes are not a valid HdrHistogram V2 encoding: {0}")]
    Decode(String),
}

/// Serializes a histogram as HdrHistogram V2 + DEFLATE, base64 encoded: the standard
/// interchange form that HdrHistogram libraries in other languages read too.
pub fn to_base64(histogram: &LatencyHistogram) -> String {
    let mut bytes = Vec::new();
    V2DeflateSerializer::new().serialize(histogram, &mut bytes).expect("serializing into a Vec cannot fail");
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Reads back a histogram written by [`to_base64`] (or any V2 / V2+DEFLATE encoder).
pub fn from_base64(text: &str) -> Result<LatencyHistogram, HistogramDecodeError> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(text)?;
    let decoded: LatencyHistogram = Deserializer::new()
        .deserialize(&mut bytes.as_slice())
        .map_err(|e| HistogramDecodeError::Decode(format!("{e:?}")))?;
    let mut standard = new_histogram();
    standard.add(&decoded).map_err(|e| HistogramDecodeError::Decode(format!("{e:?}")))?;
    Ok(standard)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// Merging per-shard histograms equals one histogram of all values.
        #[test]
        fn merge_equals_single_histogram(
            shards in proptest::collection::vec(
                proptest::collection::vec(0u64..5_000_000_000, 0..200), 1..6)
        ) {
            let mut all = new_histogram();
            let mut merged = new_histogram();
            for shard in &shards {
                let mut h = new_histogram();
                for &v in shard {
                    record(&mut h, Duration::from_micros(v));
                    record(&mut all, Duration::from_micros(v));
                }
                merge(&mut merged, &h);
            }
            prop_assert_eq!(merged.len(), all.len());
            prop_assert_eq!(merged.max(), all.max());
            prop_assert_eq!(merged.min(), all.min());
            for q in [0.5, 0.9, 0.99, 0.999, 1.0] {
                prop_assert_eq!(merged.value_at_quantile(q), all.value_at_quantile(q));
            }
            prop_assert!(merged.iter_recorded().zip(all.iter_recorded())
                .all(|(a, b)| a.value_iterated_to() == b.value_iterated_to()
                    && a.count_at_value() == b.count_at_value()));
        }
    }

    #[test]
    fn base64_round_trip_keeps_counts() {
        let mut h = new_histogram();
        for v in [1u64, 10, 100, 1_000, 1_000_000, 10_000_000] {
            record(&mut h, Duration::from_micros(v));
        }
        let back = from_base64(&to_base64(&h)).unwrap();
        assert_eq!(back, h);
    }

    #[test]
    fn clamps_out_of_range_values() {
        let mut h = new_histogram();
        record(&mut h, Duration::ZERO);
        record(&mut h, Duration::from_secs(10 * 3600));
        assert_eq!(h.len(), 2);
        assert!(h.max() >= HIGHEST_MICROS);
    }
}
