//! One second of the run: the timeline entry the live view, the per-second lines and the
//! results file show, built from the second's merged stats and the gauges read at its end.
//! Its latency figures are of the requests that succeeded in the second.

use pummel_results::timeline::{LagFigures, SecondHistograms, TimelineEntry, TimelineLatency};

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

/// The entry for `second` from the merged interval stats and the gauges; with `histograms`
/// (a segment's run) it carries the second's histograms too, for `pummel merge`.
pub(crate) fn entry(second: u64, stats: &Stats, gauges: Gauges, histograms: bool) -> TimelineEntry {
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
        latency_ms: TimelineLatency::from_histogram(&stats.latency),
        service_time_ms: TimelineLatency::from_histogram(&stats.service_time),
        schedule_lag_ms: LagFigures::from_histogram(&stats.schedule_lag),
        cpu_percent: gauges.cpu_percent,
        busiest_thread_percent: gauges.busiest_thread_percent,
        limit: None,
        probes: Vec::new(),
        target: None,
        watch_gap: None,
        started: Vec::new(),
        faults: Vec::new(),
        histograms: histograms.then(|| SecondHistograms::of(&stats.latency, &stats.service_time, &stats.schedule_lag)),
    }
}
