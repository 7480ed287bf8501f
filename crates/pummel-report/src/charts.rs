//! Which charts a report shows, and what goes in each: the series groups over time (one chart
//! per group, one point per timeline entry) and, for find-limit runs, the latency-vs-throughput
//! curve with the capacity point. The probes' and the watched target's charts, shown only when
//! the run has them, are in [`observers`].

use std::collections::BTreeSet;

use pummel_results::document::{FindLimitReport, ResultsDocument};
use pummel_results::expr::{CmpOp, Expr, Metric, Stat};
use pummel_results::timeline::TimelineEntry;

use crate::axis::Axis;
use crate::fmt;
use crate::svg::{Band, Chart, Marker, Marks, Series};

pub mod observers;

pub use observers::{OBSERVER_CHARTS, observer_charts};

/// Colours of the figures that recur across charts.
mod colour {
    pub const TARGET: &str = "#9ca3af";
    pub const ACHIEVED: &str = "#2563eb";
    pub const DROPPED: &str = "#dc2626";
    pub const P50: &str = "#2563eb";
    pub const P90: &str = "#0d9488";
    pub const P99: &str = "#f59e0b";
    pub const MAX: &str = "#dc2626";
    pub const CONNECTIONS: &str = "#2563eb";
    pub const IN_FLIGHT: &str = "#7c3aed";
    pub const CPU: &str = "#059669";
    pub const GOOD: &str = "#16a34a";
    pub const BAD: &str = "#dc2626";
    pub const CAPACITY: &str = "#16a34a";
    pub const SLO: &str = "#6b7280";
    /// Failure kinds, in order of appearance.
    pub const KINDS: [&str; 8] =
        ["#dc2626", "#f59e0b", "#7c3aed", "#0891b2", "#db2777", "#65a30d", "#92400e", "#4b5563"];
}

/// The identifiers of the charts over time, in the order shown. Every report has all of them.
pub const TIMELINE_CHARTS: [&str; 6] = ["rate", "latency", "errors", "connections", "lag", "cpu"];

/// The charts over time, one per series group: request rate, latency, failures by kind,
/// connections and in-flight requests, schedule lag, generator CPU.
pub fn timeline_charts(doc: &ResultsDocument) -> Vec<Chart> {
    let frame = Frame::of(doc);
    vec![
        rate_chart(&frame),
        latency_chart(&frame),
        errors_chart(&frame),
        connections_chart(&frame),
        lag_chart(&frame),
        cpu_chart(&frame),
    ]
}

/// What every chart over time shares: the timeline, the shaded bands and the stage dividers.
struct Frame<'a> {
    timeline: &'a [TimelineEntry],
    bands: Vec<Band>,
    dividers: Vec<Marker>,
}

impl<'a> Frame<'a> {
    fn of(doc: &'a ResultsDocument) -> Frame<'a> {
        let timeline = doc.timeline.as_slice();
        let mut bands = Vec::new();
        // Each run of warmup seconds (find-limit settles before every step) is shaded; only the
        // first is labelled, so that labels do not pile up.
        for run in timeline.chunk_by(|a, b| a.warmup == b.warmup).filter(|run| run[0].warmup) {
            let label = if bands.is_empty() { "warmup" } else { "" };
            let (first, last) = (run[0].second, run[run.len() - 1].second);
            bands.push(Band {
                from: first.saturating_sub(1) as f64,
                to: last as f64,
                label: label.into(),
                fault: false,
            });
        }
        // Seconds after the planned end: sending has stopped, answers still arrive. Shaded so
        // the fall of every line at the end is not read as a collapse of the target.
        if let (Some(end), Some(last)) = (planned_end(doc), timeline.last()) {
            if last.second as f64 > end.ceil() {
                bands.push(Band { from: end, to: last.second as f64, label: "drain".into(), fault: false });
            }
        }
        // Each fault's window, named (issue 13); one still on when the run ended runs to its end.
        for fault in &doc.summary.faults {
            let w = &fault.window;
            if let Some(from) = w.started_s {
                let to = w.ended_s.unwrap_or_else(|| timeline.last().map_or(from, |e| e.second as f64));
                bands.push(Band { from, to, label: format!("fault: {}", w.name), fault: true });
            }
        }
        // A change of target rate is a stage boundary: at the end of the last second of a stage.
        let dividers = timeline
            .windows(2)
            .filter(|w| w[0].target_rate != w[1].target_rate)
            .map(|w| Marker::Divider { x: w[0].second as f64 })
            .collect();
        Frame { timeline, bands, dividers }
    }
}

/// When the plan meant sending to stop, in seconds from the start (warmup included); `None`
/// for find-limit runs, whose steps each run (and drain) on their own.
fn planned_end(doc: &ResultsDocument) -> Option<f64> {
    if doc.find_limit.is_some() {
        return None;
    }
    let staged: Option<f64> = doc
        .plan
        .pointer("/load/stages")
        .and_then(|s| s.as_array())
        .map(|stages| stages.iter().filter_map(|s| s.get("duration").and_then(|d| d.as_f64())).sum());
    let stop = doc.plan.pointer("/stop/duration").and_then(|d| d.as_f64());
    match (staged, stop) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// A chart over time with the shared x axis, bands, stage dividers and tooltips.
fn over_time(id: &str, title: &str, frame: &Frame<'_>, y_axis: Axis, series: Vec<Series>) -> Chart {
    let timeline = frame.timeline;
    let xs: Vec<f64> = timeline.iter().map(|e| e.second as f64).collect();
    let last = xs.last().copied().unwrap_or(1.0);
    let tooltips = timeline
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut tip = format!("second {}", e.second);
            if e.warmup {
                tip.push_str(" (warmup)");
            }
            for s in &series {
                let value = s.values.get(i).copied().flatten();
                tip.push_str(&format!("\n{}: {}", s.name, fmt::or_dash(value, |v| value_text(&y_axis.title, v))));
            }
            tip
        })
        .collect();
    Chart {
        id: id.into(),
        title: title.into(),
        xs,
        x_axis: Axis::time("time since start", last),
        y_axis,
        series,
        bands: frame.bands.clone(),
        markers: frame.dividers.clone(),
        tooltips,
        note: None,
    }
}

/// How a value reads in a tooltip, given the unit in the axis title.
fn value_text(axis_title: &str, v: f64) -> String {
    if axis_title.starts_with("latency") || axis_title.starts_with("lag") {
        fmt::ms(v)
    } else if axis_title.starts_with("CPU") {
        format!("{v:.1}%")
    } else {
        fmt::rate(v)
    }
}

fn max_of<'a>(series: impl IntoIterator<Item = &'a Series>) -> f64 {
    series.into_iter().flat_map(|s| s.values.iter().flatten()).copied().fold(0.0, f64::max)
}

fn rate_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let mut series = Vec::new();
    if t.iter().any(|e| e.target_rate.is_some()) {
        let target = t.iter().map(|e| e.target_rate).collect();
        series.push(Series { dashed: true, ..Series::line("target", colour::TARGET, target) });
    }
    series.push(Series::line(
        "achieved (completed/s)",
        colour::ACHIEVED,
        t.iter().map(|e| Some(e.completed as f64)).collect(),
    ));
    if t.iter().any(|e| e.dropped > 0) {
        series.push(Series::line("dropped/s", colour::DROPPED, t.iter().map(|e| Some(e.dropped as f64)).collect()));
    }
    let axis = Axis::from_zero("requests per second", max_of(&series));
    over_time("rate", "Request rate: target vs achieved", frame, axis, series)
}

fn latency_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let pick = |f: fn(&pummel_results::timeline::TimelineLatency) -> f64| -> Vec<Option<f64>> {
        t.iter().map(|e| e.latency_ms.as_ref().map(f)).collect()
    };
    let series = vec![
        Series::line("p50", colour::P50, pick(|l| l.p50)),
        Series::line("p90", colour::P90, pick(|l| l.p90)),
        Series::line("p99", colour::P99, pick(|l| l.p99)),
        Series::line("max", colour::MAX, pick(|l| l.max)),
    ];
    let axis = Axis::latency("latency (ms)", series.iter().flat_map(|s| s.values.iter().flatten().copied()));
    let mut chart = over_time("latency", "Latency from intended start, per second", frame, axis, series);
    if t.iter().all(|e| e.latency_ms.is_none()) {
        chart.note = Some("no request completed".into());
    }
    chart
}

fn errors_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let kinds: BTreeSet<&str> = t.iter().flat_map(|e| e.errors.keys().map(String::as_str)).collect();
    let mut series: Vec<Series> = kinds
        .iter()
        .enumerate()
        .map(|(i, kind)| {
            let values = t.iter().map(|e| Some(e.errors.get(*kind).copied().unwrap_or(0) as f64)).collect();
            Series::line(*kind, colour::KINDS[i % colour::KINDS.len()], values)
        })
        .collect();
    let none = series.is_empty();
    if none {
        series.push(Series::line("failures", colour::KINDS[0], t.iter().map(|e| Some(e.failed as f64)).collect()));
    }
    let axis = Axis::from_zero("failures per second", max_of(&series));
    let mut chart = over_time("errors", "Failures by kind, per second", frame, axis, series);
    if none {
        chart.note = Some("no failures".into());
    }
    chart
}

fn connections_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let series = vec![
        Series::line("open connections", colour::CONNECTIONS, t.iter().map(|e| Some(e.connections as f64)).collect()),
        Series::line("requests in flight", colour::IN_FLIGHT, t.iter().map(|e| Some(e.in_flight as f64)).collect()),
    ];
    let axis = Axis::from_zero("count (end of each second)", max_of(&series));
    over_time("connections", "Connections and requests in flight", frame, axis, series)
}

fn lag_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let series = vec![
        Series::line("lag p99", colour::P99, t.iter().map(|e| e.schedule_lag_ms.map(|l| l.p99)).collect()),
        Series::line("lag max", colour::MAX, t.iter().map(|e| e.schedule_lag_ms.map(|l| l.max)).collect()),
    ];
    let axis = Axis::latency("lag (ms)", series.iter().flat_map(|s| s.values.iter().flatten().copied()));
    let mut chart = over_time("lag", "Schedule lag: how late the generator sent", frame, axis, series);
    if t.iter().all(|e| e.schedule_lag_ms.is_none()) {
        chart.note = Some("closed model: no schedule to lag behind".into());
    }
    chart
}

fn cpu_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let series = vec![Series::line("pummel CPU", colour::CPU, t.iter().map(|e| Some(e.cpu_percent)).collect())];
    let axis = Axis::from_zero("CPU (% of one core)", max_of(&series));
    over_time("cpu", "Generator CPU", frame, axis, series)
}

/// One find-limit step with the figures the curve and the step table need.
#[derive(Debug, Clone, PartialEq)]
pub struct Step {
    /// Position in the order run (0-based).
    pub index: usize,
    /// Target rate, req/s.
    pub target_rate: f64,
    /// Completed requests per second.
    pub achieved_rate: f64,
    /// Latency median and 99th percentile, ms (None when nothing completed).
    pub p50: Option<f64>,
    /// See `p50`.
    pub p99: Option<f64>,
    /// Whether the step met the SLO.
    pub good: bool,
}

/// The steps of a find-limit run, paired with their stage summaries (in the order run).
pub fn steps(doc: &ResultsDocument, report: &FindLimitReport) -> Vec<Step> {
    report
        .steps
        .iter()
        .zip(&doc.summary.stages)
        .enumerate()
        .map(|(index, (verdict, stage))| Step {
            index,
            target_rate: verdict.target_rate,
            achieved_rate: stage.achieved_rate,
            p50: stage.latency_ms.map(|l| l.p50),
            p99: stage.latency_ms.map(|l| l.p99),
            good: verdict.good,
        })
        .collect()
}

/// The latency-vs-throughput curve ("hockey stick"): one point per step at its achieved rate,
/// p50 and p99 latency, steps joined in order of target rate, good steps green and bad ones
/// red, the capacity step ringed and labelled, and latency SLOs drawn as horizontal lines.
pub fn hockey_stick(doc: &ResultsDocument, report: &FindLimitReport) -> Chart {
    let mut steps = steps(doc, report);
    steps.sort_by(|a, b| a.target_rate.total_cmp(&b.target_rate));
    let xs: Vec<f64> = steps.iter().map(|s| s.achieved_rate).collect();
    let p99 = Series {
        marks: Marks::ColouredDots(steps.iter().map(|s| if s.good { colour::GOOD } else { colour::BAD }).collect()),
        ..Series::line("p99", colour::P99, steps.iter().map(|s| s.p99).collect())
    };
    let p50 = Series { marks: Marks::Dots, ..Series::line("p50", colour::P50, steps.iter().map(|s| s.p50).collect()) };
    let slos: Vec<(f64, String)> = report
        .slo
        .iter()
        .filter_map(|text| Expr::parse(text).ok())
        .filter(|e| matches!(e.op, CmpOp::Lt | CmpOp::Le))
        .filter(|e| matches!(e.metric, Metric::Latency(Stat::Percentile(p)) if p == 50.0 || p == 99.0))
        .map(|e| (e.value, format!("SLO {}", e.text)))
        .collect();
    let data_max = max_of([&p99, &p50]);
    // Show an SLO line only when it is within reach of the data, so a loose SLO does not
    // squash the curve flat.
    let slos: Vec<(f64, String)> = slos.into_iter().filter(|(v, _)| *v <= data_max * 3.0).collect();
    let y_max = slos.iter().map(|(v, _)| *v).fold(data_max, f64::max);
    let mut markers: Vec<Marker> =
        slos.into_iter().map(|(y, label)| Marker::Horizontal { y, label, colour: colour::SLO }).collect();
    if let Some(capacity) = report.capacity_rps {
        let at = steps.iter().find(|s| (s.target_rate - capacity).abs() < 1e-6);
        markers.push(Marker::Vertical {
            x: at.map_or(capacity, |s| s.achieved_rate),
            label: format!("capacity ≈ {} req/s", fmt::rate(capacity)),
            ring: at.and_then(|s| s.p99),
            colour: colour::CAPACITY,
        });
    }
    let tooltips = steps
        .iter()
        .map(|s| {
            format!(
                "step {}: target {} req/s, achieved {} req/s\np50 {}, p99 {}\n{}",
                s.index + 1,
                fmt::rate(s.target_rate),
                fmt::rate(s.achieved_rate),
                fmt::or_dash(s.p50, fmt::ms),
                fmt::or_dash(s.p99, fmt::ms),
                if s.good { "good" } else { "bad" }
            )
        })
        .collect();
    let x_max = xs.iter().copied().fold(report.capacity_rps.unwrap_or(0.0), f64::max);
    Chart {
        id: "hockey-stick".into(),
        title: "Latency vs throughput, one point per step".into(),
        x_axis: Axis::from_zero("achieved rate (req/s)", x_max),
        y_axis: Axis::from_zero("latency (ms)", y_max),
        xs,
        series: vec![p50, p99],
        bands: vec![],
        markers,
        tooltips,
        note: steps.is_empty().then(|| "no steps".to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn one_chart_per_group_and_one_point_per_second() {
        let doc = fixture::open_run();
        let charts = timeline_charts(&doc);
        assert_eq!(charts.iter().map(|c| c.id.as_str()).collect::<Vec<_>>(), TIMELINE_CHARTS);
        for chart in &charts {
            assert_eq!(chart.xs.len(), doc.timeline.len(), "{}", chart.id);
            assert_eq!(chart.tooltips.len(), doc.timeline.len(), "{}", chart.id);
            for s in &chart.series {
                assert_eq!(s.values.iter().flatten().count(), doc.timeline.len(), "{} {}", chart.id, s.name);
            }
        }
        let errors = &charts[2];
        assert_eq!(errors.series.iter().map(|s| s.name.as_str()).collect::<Vec<_>>(), ["status_5xx", "timeout"]);
        assert_eq!(errors.series[1].values[3], Some(3.0));
        assert_eq!(errors.series[1].values[0], Some(0.0));
        assert_eq!(charts[0].bands.len(), 1, "the warmup second is shaded");
        assert_eq!(charts[0].bands[0].label, "warmup");
    }

    #[test]
    fn seconds_after_the_planned_end_are_shaded() {
        let mut doc = fixture::open_run();
        doc.plan["stop"] = serde_json::json!({ "duration": 8.0, "requests": null });
        let frame = Frame::of(&doc);
        assert_eq!(frame.bands.last(), Some(&Band { from: 8.0, to: 10.0, label: "drain".into(), fault: false }));
        let limit = fixture::find_limit_run();
        assert!(Frame::of(&limit).bands.is_empty());
        assert_eq!(Frame::of(&limit).dividers.len(), 3);
    }

    #[test]
    fn no_failures_still_draws_the_chart() {
        let mut doc = fixture::open_run();
        for e in &mut doc.timeline {
            e.errors.clear();
            e.failed = 0;
        }
        let chart = errors_chart(&Frame::of(&doc));
        assert_eq!(chart.series.len(), 1);
        assert_eq!(chart.note.as_deref(), Some("no failures"));
    }

    #[test]
    fn hockey_stick_marks_the_capacity_step() {
        let doc = fixture::find_limit_run();
        let report = doc.find_limit.clone().unwrap();
        let chart = hockey_stick(&doc, &report);
        assert_eq!(chart.xs.len(), 4);
        let capacity = chart.markers.iter().find_map(|m| match m {
            Marker::Vertical { x, label, ring, .. } => Some((*x, label.clone(), *ring)),
            _ => None,
        });
        let (x, label, ring) = capacity.unwrap();
        assert_eq!(x, doc.summary.stages[2].achieved_rate);
        assert_eq!(label, "capacity ≈ 2,000 req/s");
        assert_eq!(ring, Some(5.4));
        assert!(
            chart.markers.iter().any(|m| matches!(m, Marker::Horizontal { label, .. } if label == "SLO p99<200ms"))
        );
        let svg = chart.to_svg();
        assert!(svg.contains(r#"data-chart="hockey-stick" data-points="4""#));
        let dots = |colour: &str| {
            let fill = format!(r#"fill="{colour}""#);
            svg.split(r#"<circle class="dot""#)
                .skip(1)
                .filter(|d| d.split("/>").next().is_some_and(|d| d.contains(&fill)))
                .count()
        };
        assert_eq!(dots(colour::BAD), 1, "the broken step is red");
        assert_eq!(dots(colour::GOOD), 3, "good steps are green");
    }
}
