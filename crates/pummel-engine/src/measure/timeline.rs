//! One second of the run: the timeline entry the live view, the per-second lines and the
//! results file show, built from the second's merged stats and the gauges read at its end.
//! Its latency figures are of the requests that succeeded in the second.

use pummel_results::expr::Stat;
use pummel_results::histogram::{LatencyHistogram, histogram_stat_ms};
use pummel_results::timeline::{LagFigures, TimelineEntry, TimelineLatency};

use crate::measure::stats::Stats;

/// Point-in-time values that are not sums over the second.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Gauges {
    pub warmup: bool,
    pub target_rate: Option<f64>,
    pub in_flight: u64,
    pub waiting: u64,
    pub connections: u64,
    pub cpu_percent: f64,
    pub busiest_thread_percent: Option<f64>,
}

/// The entry for `second` from the merged interval stats and the gauges.
pub(crate) fn entry(second: u64, stats: &Stats, gauges: Gauges) -> TimelineEntry {
    let latency_ms = percentiles(&stats.latency);
    let schedule_lag_ms = histogram_stat_ms(&stats.schedule_lag, &Stat::Percentile(99.0))
        .map(|p99| LagFigures { p99, max: histogram_stat_ms(&stats.schedule_lag, &Stat::Max).unwrap_or(p99) });
    TimelineEntry {
        second,
        warmup: gauges.warmup,
        target_rate: gauges.target_rate,
        sent: stats.sent,
        completed: stats.completed,
        ok: stats.ok,
        failed: stats.failed,
        errors: stats.errors.non_zero().map(|(k, n)| (k.name().to_string(), n)).collect(),
        dropped: stats.dropped,
        unanswered: stats.unanswered,
        reconnects: stats.reconnects,
        in_flight: gauges.in_flight,
        waiting: gauges.waiting,
        connections: gauges.connections,
        connections_opened: stats.connections_opened,
        closed_by_peer: stats.closed_by_peer,
        bytes_in: stats.bytes_in,
        bytes_out: stats.bytes_out,
        latency_ms,
        service_time_ms: percentiles(&stats.service_time),
        schedule_lag_ms,
        cpu_percent: gauges.cpu_percent,
        busiest_thread_percent: gauges.busiest_thread_percent,
        limit: None,
        probes: Vec::new(),
        target: None,
        watch_gap: None,
        started: Vec::new(),
        faults: Vec::new(),
    }
}
/// p50, p90, p99 and max of `histogram`; `None` when it is empty.
fn percentiles(histogram: &LatencyHistogram) -> Option<TimelineLatency> {
    let pct = |p| histogram_stat_ms(histogram, &Stat::Percentile(p));
    pct(50.0).map(|p50| TimelineLatency {
        p50,
        p90: pct(90.0).unwrap_or(p50),
        p99: pct(99.0).unwrap_or(p50),
        max: histogram_stat_ms(histogram, &Stat::Max).unwrap_or(p50),
    })
}
