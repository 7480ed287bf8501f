//! How much a figure wobbles from one second to the next within one run: the yardstick that
//! decides whether a difference between two runs is a change or just noise.
//!
//! The timeline is cut into segments of constant target rate (stages; a closed-model run is one
//! segment), warmup seconds left out. Within each segment every per-second value is compared
//! with the segment's median; the spread is the median of those relative deviations, scaled by
//! 1.4826 so that it estimates a standard deviation (the "MAD" estimator). A median, not a mean:
//! the partial last second of a run or of a stage would otherwise dominate the estimate.
//!
//! - rate: per-second completed counts;
//! - latency p50, p90, p99, max: the same per-second percentile (the mean uses p50's spread);
//! - service-time p99: the per-second service-time p99, its own series: latency counts the
//!   wait in line, so when the target breaks it swings by seconds while service time holds
//!   steady, and its band must not be lent to service time. Results written before the
//!   timeline kept service time have no such series ([`Noise::service_p99`] is `None`): their
//!   service-time row gets the fixed band [`SERVICE_FALLBACK`] instead;
//! - error rate: an absolute spread, the standard deviation of the per-second error rate around
//!   its segment mean (seconds with fewer than half the segment's median completions, such as
//!   the last partial one, are left out), since a rate near zero has no useful relative spread.
//!
//! The tolerance of a comparison is [`NOISE_FACTOR`] times the larger spread of the two runs,
//! and never below [`MIN_RELATIVE`] (relative figures) or [`MIN_ERROR_RATE`] (error rate).

use pummel_results::timeline::TimelineEntry;
use serde::Serialize;

/// Tolerance = this many times the larger per-second spread of the two runs.
pub const NOISE_FACTOR: f64 = 2.0;
/// Smallest relative tolerance: 2 %.
pub const MIN_RELATIVE: f64 = 0.02;
/// Smallest error-rate tolerance: 0.1 percentage point.
pub const MIN_ERROR_RATE: f64 = 0.001;
/// The relative tolerance of the service-time row when neither run's timeline has per-second
/// service times: fixed, since no spread of its own is known (±10 %).
pub const SERVICE_FALLBACK: f64 = 0.10;
/// Scales a median absolute deviation to estimate a standard deviation (normal data).
const MAD_TO_SD: f64 = 1.4826;

/// The per-second spread of one run's figures.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Noise {
    /// Seconds used (warmup excluded).
    pub seconds: usize,
    /// Relative spread of per-second completed counts (0.01 = 1 %).
    pub rate: f64,
    /// Relative spread of per-second latency p50.
    pub p50: f64,
    /// Relative spread of per-second latency p90.
    pub p90: f64,
    /// Relative spread of per-second latency p99.
    pub p99: f64,
    /// Relative spread of per-second latency max.
    pub max: f64,
    /// Relative spread of per-second service-time p99; `None` when the timeline has no
    /// service-time series (results from before it was recorded).
    pub service_p99: Option<f64>,
    /// Absolute spread of the per-second error rate (0.001 = 0.1 percentage point).
    pub error_rate: f64,
}

impl Noise {
    /// Estimates the noise of a run from its timeline.
    pub fn estimate(timeline: &[TimelineEntry]) -> Noise {
        let segments = segments(timeline);
        let latency = |f: fn(&pummel_results::timeline::TimelineLatency) -> f64| {
            relative_spread(
                segments.iter().map(|seg| seg.iter().filter_map(|e| e.latency_ms.as_ref().map(f)).collect()),
            )
        };
        Noise {
            seconds: segments.iter().map(Vec::len).sum(),
            rate: relative_spread(segments.iter().map(|seg| seg.iter().map(|e| e.completed as f64).collect())),
            p50: latency(|l| l.p50),
            p90: latency(|l| l.p90),
            p99: latency(|l| l.p99),
            max: latency(|l| l.max),
            service_p99: timeline.iter().any(|e| e.service_time_ms.is_some()).then(|| {
                relative_spread(
                    segments.iter().map(|seg| seg.iter().filter_map(|e| e.service_time_ms.map(|s| s.p99)).collect()),
                )
            }),
            error_rate: error_rate_spread(&segments),
        }
    }
}

/// Consecutive non-warmup entries with the same target rate.
fn segments(timeline: &[TimelineEntry]) -> Vec<Vec<&TimelineEntry>> {
    let mut out: Vec<Vec<&TimelineEntry>> = Vec::new();
    for e in timeline.iter().filter(|e| !e.warmup) {
        match out.last_mut() {
            Some(seg) if seg.last().is_some_and(|p| p.target_rate == e.target_rate) => seg.push(e),
            _ => out.push(vec![e]),
        }
    }
    out
}

fn median(values: &mut [f64]) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    values.sort_by(f64::total_cmp);
    let mid = values.len() / 2;
    Some(if values.len() % 2 == 1 { values[mid] } else { (values[mid - 1] + values[mid]) / 2.0 })
}

/// MAD-based relative spread, pooled over segments; 0 when fewer than 3 values are usable.
fn relative_spread(segments: impl Iterator<Item = Vec<f64>>) -> f64 {
    let mut deviations = Vec::new();
    for mut values in segments {
        let Some(m) = median(&mut values) else { continue };
        if m > 0.0 {
            deviations.extend(values.iter().map(|v| (v / m - 1.0).abs()));
        }
    }
    if deviations.len() < 3 {
        return 0.0;
    }
    median(&mut deviations).map_or(0.0, |mad| MAD_TO_SD * mad)
}

/// Standard deviation of the per-second error rate around each segment's mean.
fn error_rate_spread(segments: &[Vec<&TimelineEntry>]) -> f64 {
    let mut residuals = Vec::new();
    for seg in segments {
        let mut counts: Vec<f64> = seg.iter().map(|e| e.completed as f64).collect();
        let floor = median(&mut counts).unwrap_or(0.0) / 2.0;
        let rates: Vec<f64> = seg
            .iter()
            .filter(|e| e.completed > 0 && e.completed as f64 >= floor)
            .map(|e| e.failed as f64 / e.completed as f64)
            .collect();
        if rates.is_empty() {
            continue;
        }
        let mean = rates.iter().sum::<f64>() / rates.len() as f64;
        residuals.extend(rates.iter().map(|r| r - mean));
    }
    if residuals.len() < 3 {
        return 0.0;
    }
    (residuals.iter().map(|r| r * r).sum::<f64>() / residuals.len() as f64).sqrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn steady_runs_have_small_spreads() {
        let n = Noise::estimate(&fixture::open_run().timeline);
        assert_eq!(n.seconds, 9, "the warmup second is left out");
        assert!(n.rate < 0.005, "{n:?}");
        assert!(n.p50 < 0.05 && n.max > 0.0, "{n:?}");
        assert!(n.error_rate > 0.0 && n.error_rate < 0.01, "{n:?}");
    }

    #[test]
    fn a_partial_last_second_does_not_count() {
        let mut doc = fixture::open_run();
        let mut last = doc.timeline.last().unwrap().clone();
        last.second += 1;
        last.completed = 20;
        last.failed = 15;
        doc.timeline.push(last);
        let n = Noise::estimate(&doc.timeline);
        assert!(n.rate < 0.005, "{n:?}");
        assert!(n.error_rate < 0.01, "{n:?}");
    }

    #[test]
    fn stages_are_measured_against_their_own_level() {
        let doc = fixture::find_limit_run();
        let n = Noise::estimate(&doc.timeline);
        assert!(n.rate < 0.01, "a change of stage is not noise: {n:?}");
    }

    #[test]
    fn service_time_has_its_own_spread() {
        let mut doc = fixture::open_run();
        for (i, e) in doc.timeline.iter_mut().enumerate() {
            if let Some(l) = &mut e.latency_ms {
                l.p99 *= (1.0 + i as f64).powi(2);
            }
        }
        let n = Noise::estimate(&doc.timeline);
        assert!(n.p99 > 1.0, "latency swings: {n:?}");
        assert!(n.service_p99.is_some_and(|s| s < 0.05), "service time is steady: {n:?}");
        for e in &mut doc.timeline {
            e.service_time_ms = None;
        }
        assert_eq!(Noise::estimate(&doc.timeline).service_p99, None, "no series, no spread");
    }

    #[test]
    fn too_few_seconds_means_no_estimate() {
        let doc = fixture::open_run();
        assert_eq!(Noise::estimate(&doc.timeline[..2]).rate, 0.0);
    }
}
