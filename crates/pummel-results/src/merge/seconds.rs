//! The merged timeline: each segment's second `s` added into the merged second `s + offset`
//! (its start in whole seconds after the earliest segment's). Counts and gauges of the
//! segments' processes add up; each second's percentiles are read from the sum of the
//! segments' histograms of that second; observers' samples come from the one segment the
//! summary takes them from.

use std::collections::BTreeMap;

use super::{MergeError, Part};
use crate::histogram::{LatencyHistogram, merge as add, new_histogram};
use crate::summary::LimitSide;
use crate::timeline::{LagFigures, SecondHistograms, TimelineEntry, TimelineLatency};

/// One merged second being added up.
struct Second {
    entry: TimelineEntry,
    latency: LatencyHistogram,
    service_time: LatencyHistogram,
    schedule_lag: LatencyHistogram,
}

/// Which segment the observers' samples and the fault marks come from (an index of `parts`).
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Sources {
    /// Probes and the target watch.
    pub observers: Option<usize>,
    /// Fault marks.
    pub faults: Option<usize>,
}

/// The merged timeline of `parts`.
pub(super) fn merge(parts: &[Part<'_>], sources: Sources) -> Result<Vec<TimelineEntry>, MergeError> {
    let mut seconds: BTreeMap<u64, Second> = BTreeMap::new();
    for (index, part) in parts.iter().enumerate() {
        for e in &part.doc.timeline {
            let at = e.second + part.offset_s;
            let second = seconds.entry(at).or_insert_with(|| Second {
                entry: TimelineEntry { second: at, warmup: e.warmup, ..TimelineEntry::default() },
                latency: new_histogram(),
                service_time: new_histogram(),
                schedule_lag: new_histogram(),
            });
            if let Some(h) = &e.histograms {
                let what = |name| format!("timeline second {} {name}", e.second);
                add(&mut second.latency, &part.decode(&h.latency, &what("latency"))?);
                add(&mut second.service_time, &part.decode(&h.service_time, &what("service_time"))?);
                add(&mut second.schedule_lag, &part.decode(&h.schedule_lag, &what("schedule_lag"))?);
            }
            add_second(&mut second.entry, e);
            if sources.observers == Some(index) {
                second.entry.probes.extend(e.probes.iter().cloned());
                second.entry.target = e.target.clone();
                second.entry.watch_gap = e.watch_gap.clone();
            }
            if sources.faults == Some(index) {
                let shift = part.offset_ms as f64 / 1000.0;
                second.entry.faults.extend(e.faults.iter().cloned().map(|mut m| {
                    m.at_s += shift;
                    m
                }));
            }
        }
    }
    Ok(seconds
        .into_values()
        .map(|mut s| {
            s.entry.latency_ms = TimelineLatency::from_histogram(&s.latency);
            s.entry.service_time_ms = TimelineLatency::from_histogram(&s.service_time);
            s.entry.schedule_lag_ms = LagFigures::from_histogram(&s.schedule_lag);
            s.entry.histograms = Some(SecondHistograms::of(&s.latency, &s.service_time, &s.schedule_lag));
            s.entry.started.sort();
            s.entry.started.dedup();
            s.entry
        })
        .collect())
}

/// Adds one segment's second into the merged one: counts, offered rates (each segment was
/// offered its share) and the processes' gauges sum (CPU too: several processes), the busiest
/// thread is the busiest of any, and the side that limited the second is
/// the most telling one any segment saw (its generator, then its pool, then the target).
fn add_second(into: &mut TimelineEntry, e: &TimelineEntry) {
    into.warmup |= e.warmup;
    into.target_rate = match (into.target_rate, e.target_rate) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    };
    into.sent += e.sent;
    into.completed += e.completed;
    into.ok += e.ok;
    into.failed += e.failed;
    for (kind, n) in &e.errors {
        *into.errors.entry(kind.clone()).or_default() += n;
    }
    into.dropped += e.dropped;
    into.unanswered += e.unanswered;
    into.reconnects += e.reconnects;
    into.in_flight += e.in_flight;
    into.waiting += e.waiting;
    into.connections += e.connections;
    into.connections_opened += e.connections_opened;
    into.closed_by_peer += e.closed_by_peer;
    into.bytes_in += e.bytes_in;
    into.bytes_out += e.bytes_out;
    into.cpu_percent += e.cpu_percent;
    into.busiest_thread_percent = match (into.busiest_thread_percent, e.busiest_thread_percent) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    };
    into.limit = [into.limit, e.limit].into_iter().flatten().min_by_key(|side| telling(*side));
    into.started.extend(e.started.iter().cloned());
}

/// The order in which a limit explains a merged second: the generator first (the figures are
/// not the target's then), its pool next, the target last.
pub(super) fn telling(side: LimitSide) -> u8 {
    match side {
        LimitSide::Generator => 0,
        LimitSide::Pool => 1,
        LimitSide::Target => 2,
    }
}
