//! The target's side of the story, charted per second beside the load: the probes (one request
//! at a time on a fresh connection: latency, OK/NOK, and the number read from the body with
//! `--probe-json`) and the watched process (`--watch-pid` / `--watch-port`: file descriptors
//! against the limit, TCP sockets by state, accept queue and listen overflows).
//!
//! Each chart exists only when the run recorded its data, so a run without probes or watch
//! shows none of them. Like every chart over time, each has one x position per timeline entry
//! (`data-points`); a second without a sample has no value (the line breaks there).

use pummel_results::timeline::TimelineEntry;
use pummel_system::watch::{WarningKind, WatchSample};

use super::{Frame, colour, max_of, over_time};
use crate::axis::Axis;
use crate::fmt;
use crate::svg::{Band, Chart, Marker, Marks, Series};

/// The identifiers of the observer charts, in the order shown; each appears only when the run
/// has its data (probes: `probes`, plus `probe-values` with `--probe-json`; watch: the three
/// `target-*`).
pub const OBSERVER_CHARTS: [&str; 5] = ["probes", "probe-values", "target-fds", "target-tcp", "target-queue"];

/// Colours of the probes, in order of first appearance.
const PROBES: [&str; 4] = ["#2563eb", "#7c3aed", "#0891b2", "#65a30d"];
/// Colours of TCP states.
const ESTABLISHED: &str = "#2563eb";
const CLOSE_WAIT: &str = "#dc2626";
const TIME_WAIT: &str = "#f59e0b";
/// Colour of the fd limit and of the target's warnings.
const LIMIT: &str = "#b91c1c";

/// One probe during one second: what its samples that completed in that second add up to.
#[derive(Debug, Clone, PartialEq)]
pub struct ProbeSecond {
    /// Every sample of the second was OK.
    pub ok: bool,
    /// The slowest answer's latency, ms (`None` when no sample got an answer).
    pub latency_ms: Option<f64>,
    /// The last number read from a body.
    pub value: Option<f64>,
    /// Why the first NOK sample was NOK (status, error), empty when all were OK.
    pub why: String,
}

/// The probes' URLs, in order of first appearance in the timeline.
pub fn probe_urls(timeline: &[TimelineEntry]) -> Vec<&str> {
    let mut urls: Vec<&str> = Vec::new();
    for sample in timeline.iter().flat_map(|e| &e.probes) {
        if !urls.contains(&sample.url.as_str()) {
            urls.push(&sample.url);
        }
    }
    urls
}

/// Probe `url` in each second of `timeline` (`None` for seconds where none of its requests
/// completed).
pub fn probe_seconds(timeline: &[TimelineEntry], url: &str) -> Vec<Option<ProbeSecond>> {
    timeline
        .iter()
        .map(|e| {
            let mut samples = e.probes.iter().filter(|s| s.url == url).peekable();
            samples.peek()?;
            let mut second = ProbeSecond { ok: true, latency_ms: None, value: None, why: String::new() };
            for s in samples {
                if let Some(ms) = s.latency_ms {
                    second.latency_ms = Some(second.latency_ms.map_or(ms, |m: f64| m.max(ms)));
                }
                second.value = s.value.or(second.value);
                if !s.ok && second.ok {
                    second.ok = false;
                    second.why = match (s.status, &s.error) {
                        (Some(status), Some(error)) => format!("status {status}: {error}"),
                        (Some(status), None) => format!("status {status}"),
                        (None, Some(error)) => error.clone(),
                        (None, None) => "failed".into(),
                    };
                }
            }
            Some(second)
        })
        .collect()
}

/// A probe's URL as the legend shows it: without the `http://` every probe has.
pub fn probe_label(url: &str) -> &str {
    url.strip_prefix("http://").unwrap_or(url)
}

/// The charts of the probes and the watched target, in the order of [`OBSERVER_CHARTS`];
/// empty when the run had neither.
pub fn observer_charts(doc: &pummel_results::document::ResultsDocument) -> Vec<Chart> {
    let frame = Frame::of(doc);
    let mut charts = Vec::new();
    let urls = probe_urls(frame.timeline);
    if !urls.is_empty() {
        let probes: Vec<(&str, Vec<Option<ProbeSecond>>)> =
            urls.iter().map(|url| (*url, probe_seconds(frame.timeline, url))).collect();
        charts.push(probes_chart(&frame, &probes));
        if probes.iter().any(|(_, seconds)| seconds.iter().flatten().any(|s| s.value.is_some())) {
            charts.push(probe_values_chart(&frame, &probes));
        }
    }
    if frame.timeline.iter().any(|e| e.target.is_some()) {
        charts.push(fds_chart(&frame));
        charts.push(tcp_chart(&frame));
        charts.push(queue_chart(&frame));
    }
    charts
}

/// Latency per probe, with every NOK second marked by a red dot (on the latency when there
/// was an answer, on the floor of the axis when there was none) and shaded.
fn probes_chart(frame: &Frame<'_>, probes: &[(&str, Vec<Option<ProbeSecond>>)]) -> Chart {
    let latencies = probes.iter().flat_map(|(_, seconds)| seconds.iter().flatten().filter_map(|s| s.latency_ms));
    let axis = Axis::latency("latency (ms)", latencies);
    let floor = axis.min;
    let mut series = Vec::new();
    for (i, (url, seconds)) in probes.iter().enumerate() {
        let label = probe_label(url);
        let latency = seconds.iter().map(|s| s.as_ref().and_then(|s| s.latency_ms)).collect();
        series.push(Series::line(format!("{label} latency"), PROBES[i % PROBES.len()], latency));
        let nok: Vec<Option<f64>> =
            seconds.iter().map(|s| s.as_ref().filter(|s| !s.ok).map(|s| s.latency_ms.unwrap_or(floor))).collect();
        if nok.iter().any(Option::is_some) {
            series.push(Series { marks: Marks::Dots, ..Series::line(format!("{label} NOK"), colour::BAD, nok) });
        }
    }
    let mut chart = over_time("probes", "Probes: latency, and NOK seconds in red", frame, axis, series);
    let t = frame.timeline;
    // Shade each run of seconds where some probe was NOK; label only the first.
    let failing: Vec<bool> =
        (0..t.len()).map(|i| probes.iter().any(|(_, s)| s[i].as_ref().is_some_and(|s| !s.ok))).collect();
    let mut start = None;
    for i in 0..=t.len() {
        match (start, failing.get(i).copied().unwrap_or(false)) {
            (None, true) => start = Some(i),
            (Some(from), false) => {
                let first_band = !chart.bands.iter().any(|b| b.label == "NOK");
                chart.bands.push(Band {
                    from: t[from].second.saturating_sub(1) as f64,
                    to: t[i - 1].second as f64,
                    label: if first_band { "NOK".into() } else { String::new() },
                    fault: false,
                });
                start = None;
            }
            _ => {}
        }
    }
    chart.tooltips = t
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let mut tip = format!("second {}", e.second);
            for (url, seconds) in probes {
                let state = match &seconds[i] {
                    None => "no probe completed".to_string(),
                    Some(s) if s.ok => format!("OK, {}", fmt::or_dash(s.latency_ms, fmt::ms)),
                    Some(s) => match s.latency_ms {
                        Some(ms) => format!("NOK ({}) after {}", s.why, fmt::ms(ms)),
                        None => format!("NOK ({})", s.why),
                    },
                };
                tip.push_str(&format!("\n{}: {state}", probe_label(url)));
            }
            tip
        })
        .collect();
    if probes.iter().all(|(_, seconds)| seconds.iter().flatten().all(|s| s.latency_ms.is_none())) {
        chart.note = Some("no probe got an answer".into());
    }
    chart
}

/// The numbers the probes read from their answers' JSON (`--probe-json URL#$.path`).
fn probe_values_chart(frame: &Frame<'_>, probes: &[(&str, Vec<Option<ProbeSecond>>)]) -> Chart {
    let series: Vec<Series> = probes
        .iter()
        .enumerate()
        .filter(|(_, (_, seconds))| seconds.iter().flatten().any(|s| s.value.is_some()))
        .map(|(i, (url, seconds))| {
            let values = seconds.iter().map(|s| s.as_ref().and_then(|s| s.value)).collect();
            Series::line(format!("{} value", probe_label(url)), PROBES[i % PROBES.len()], values)
        })
        .collect();
    let axis = Axis::from_zero("value read from the answer", max_of(&series));
    over_time("probe-values", "Probes: the number read from each answer", frame, axis, series)
}

/// One figure of the watched target per second (`None` where there was no sample).
fn target_values(t: &[TimelineEntry], f: impl Fn(&WatchSample) -> Option<f64>) -> Vec<Option<f64>> {
    t.iter().map(|e| e.target.as_ref().and_then(&f)).collect()
}

/// Marks the seconds where the target raised a warning of one of `kinds`, labelling the first
/// of each kind only so that labels do not pile up.
fn warning_markers(t: &[TimelineEntry], kinds: &[(WarningKind, &str)]) -> Vec<Marker> {
    let mut labelled: Vec<WarningKind> = Vec::new();
    let mut markers = Vec::new();
    for e in t {
        let Some(sample) = &e.target else { continue };
        for w in &sample.warnings {
            let Some((kind, label)) = kinds.iter().find(|(k, _)| *k == w.kind) else { continue };
            let label = if labelled.contains(kind) { String::new() } else { label.to_string() };
            labelled.push(*kind);
            markers.push(Marker::Vertical { x: e.second as f64, label, ring: None, colour: LIMIT });
        }
    }
    markers
}

/// Adds the warnings of `kinds` raised in each second to that second's tooltip.
fn warning_tooltips(chart: &mut Chart, t: &[TimelineEntry], kinds: &[(WarningKind, &str)]) {
    for (tip, e) in chart.tooltips.iter_mut().zip(t) {
        let warnings = e.target.iter().flat_map(|s| &s.warnings).filter(|w| kinds.iter().any(|(k, _)| *k == w.kind));
        for w in warnings {
            tip.push_str(&format!("\nwarning: {}", w.text));
        }
    }
}

/// Open file descriptors with the soft limit as a reference line: drawn when it is within
/// reach of the data (at most 20 times the most fds seen), else named in the title, so that a
/// limit of a million does not flatten the line it is a limit for.
fn fds_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let open = target_values(t, |s| Some(s.open_fds as f64));
    let series = vec![Series::line("open fds", colour::CONNECTIONS, open)];
    let peak = max_of(&series);
    let limit = t.iter().rev().find_map(|e| e.target.as_ref()).and_then(|s| s.fd_soft_limit);
    let drawn = limit.filter(|l| *l as f64 <= peak.max(1.0) * 20.0);
    let axis = Axis::from_zero("file descriptors", drawn.map_or(peak, |l| peak.max(l as f64)));
    let title = match (limit, drawn) {
        (None, _) => "Target file descriptors (no limit)".to_string(),
        (Some(_), Some(_)) => "Target file descriptors against the limit".to_string(),
        (Some(l), None) => format!("Target file descriptors (limit {}, far above)", fmt::thousands(l)),
    };
    let kinds = [(WarningKind::FdsNearLimit, "near the fd limit"), (WarningKind::FdAboveSelectLimit, "fd ≥ 1024")];
    let mut chart = over_time("target-fds", &title, frame, axis, series);
    if let Some(l) = drawn {
        chart.markers.push(Marker::Horizontal {
            y: l as f64,
            label: format!("limit {}", fmt::thousands(l)),
            colour: LIMIT,
        });
    }
    chart.markers.extend(warning_markers(t, &kinds));
    for (tip, e) in chart.tooltips.iter_mut().zip(t) {
        if let Some(l) = e.target.as_ref().and_then(|s| s.fd_soft_limit) {
            tip.push_str(&format!("\nlimit: {}", fmt::thousands(l)));
        }
    }
    warning_tooltips(&mut chart, t, &kinds);
    chart
}

/// The target's TCP sockets by state: ESTABLISHED and CLOSE_WAIT always (a flat zero
/// CLOSE_WAIT is the good news), the other states when they occur. LISTEN is left out: it is
/// the server's listening sockets, not connections.
fn tcp_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    type Pick = fn(&WatchSample) -> u64;
    let states: [(&str, &'static str, bool, Pick); 10] = [
        ("ESTABLISHED", ESTABLISHED, true, |s| s.tcp.established),
        ("CLOSE_WAIT", CLOSE_WAIT, true, |s| s.tcp.close_wait),
        ("TIME_WAIT", TIME_WAIT, false, |s| s.tcp.time_wait),
        ("SYN_RECV", "#7c3aed", false, |s| s.tcp.syn_recv),
        ("FIN_WAIT1", "#0891b2", false, |s| s.tcp.fin_wait1),
        ("FIN_WAIT2", "#0d9488", false, |s| s.tcp.fin_wait2),
        ("LAST_ACK", "#db2777", false, |s| s.tcp.last_ack),
        ("CLOSING", "#92400e", false, |s| s.tcp.closing),
        ("SYN_SENT", "#65a30d", false, |s| s.tcp.syn_sent),
        ("CLOSE", "#4b5563", false, |s| s.tcp.close),
    ];
    let series: Vec<Series> = states
        .iter()
        .filter(|(_, _, always, pick)| *always || t.iter().filter_map(|e| e.target.as_ref()).any(|s| pick(s) > 0))
        .map(|(name, colour, _, pick)| Series::line(*name, colour, target_values(t, |s| Some(pick(s) as f64))))
        .collect();
    let axis = Axis::from_zero("sockets (end of each second)", max_of(&series));
    let kinds = [(WarningKind::CloseWaitGrowing, "CLOSE_WAIT growing")];
    let mut chart = over_time("target-tcp", "Target TCP connections by state", frame, axis, series);
    chart.markers.extend(warning_markers(t, &kinds));
    warning_tooltips(&mut chart, t, &kinds);
    chart
}

/// Connections waiting for the target's accept(), and connections the kernel dropped because
/// a listen queue was full (system-wide counters: the kernel does not count them per process).
fn queue_chart(frame: &Frame<'_>) -> Chart {
    let t = frame.timeline;
    let mut series =
        vec![Series::line("accept queue", colour::IN_FLIGHT, target_values(t, |s| Some(s.accept_queue as f64)))];
    let listen: Vec<&WatchSample> = t.iter().filter_map(|e| e.target.as_ref()).collect();
    if listen.iter().any(|s| s.system_listen.is_some()) {
        series.push(Series::line(
            "listen overflows/s (system)",
            colour::BAD,
            target_values(t, |s| s.system_listen.map(|l| l.listen_overflows_per_s)),
        ));
    }
    if listen.iter().any(|s| s.system_listen.is_some_and(|l| l.syn_queue_drops_per_s > 0.0)) {
        series.push(Series::line(
            "SYN queue drops/s (system)",
            TIME_WAIT,
            target_values(t, |s| s.system_listen.map(|l| l.syn_queue_drops_per_s)),
        ));
    }
    let axis = Axis::from_zero("connections (queued; dropped per s)", max_of(&series));
    let kinds = [(WarningKind::ListenOverflows, "listen overflows")];
    let mut chart = over_time("target-queue", "Target accept queue and listen overflows", frame, axis, series);
    chart.markers.extend(warning_markers(t, &kinds));
    warning_tooltips(&mut chart, t, &kinds);
    chart
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    fn ids(charts: &[Chart]) -> Vec<&str> {
        charts.iter().map(|c| c.id.as_str()).collect()
    }

    fn names(chart: &Chart) -> Vec<&str> {
        chart.series.iter().map(|s| s.name.as_str()).collect()
    }

    #[test]
    fn runs_without_probes_or_watch_have_no_observer_charts() {
        assert!(observer_charts(&fixture::open_run()).is_empty());
        assert!(observer_charts(&fixture::find_limit_run()).is_empty());
    }

    #[test]
    fn observed_run_has_every_observer_chart_with_one_point_per_second() {
        let doc = fixture::observed_run();
        let charts = observer_charts(&doc);
        assert_eq!(ids(&charts), OBSERVER_CHARTS);
        for chart in &charts {
            assert_eq!(chart.xs.len(), doc.timeline.len(), "{}", chart.id);
            assert_eq!(chart.tooltips.len(), doc.timeline.len(), "{}", chart.id);
            let svg = chart.to_svg();
            assert!(svg.contains(&format!(r#"data-chart="{}" data-points="{}""#, chart.id, doc.timeline.len())));
        }
    }

    #[test]
    fn probe_chart_marks_the_failing_seconds() {
        let doc = fixture::observed_run();
        let charts = observer_charts(&doc);
        let probes = &charts[0];
        assert_eq!(
            names(probes),
            ["127.0.0.1:8090/health latency", "127.0.0.1:8090/health NOK", "127.0.0.1:8090/stats latency"]
        );
        let nok: Vec<u64> = doc
            .timeline
            .iter()
            .zip(&probes.series[1].values)
            .filter(|(_, v)| v.is_some())
            .map(|(e, _)| e.second)
            .collect();
        assert_eq!(nok, fixture::FAILING_SECONDS.collect::<Vec<_>>());
        // Second 6 timed out (no answer): its dot sits on the axis floor; second 5 was a 503
        // with a latency: its dot sits on the line.
        assert_eq!(probes.series[1].values[5], Some(probes.y_axis.min));
        assert_eq!(probes.series[1].values[4], probes.series[0].values[4]);
        assert_eq!(probes.series[0].values[5], None, "no answer, no latency");
        let band = probes.bands.iter().find(|b| b.label == "NOK").expect("a NOK band");
        assert_eq!((band.from, band.to), (3.0, 6.0));
        assert!(probes.tooltips[4].contains("health: NOK (status 503"), "{}", probes.tooltips[4]);
        assert!(probes.tooltips[0].contains("health: OK"), "{}", probes.tooltips[0]);
        let svg = probes.to_svg();
        assert!(svg.contains(r#"data-series="127.0.0.1:8090/health NOK" data-points="3""#), "{svg}");

        let values = &charts[1];
        assert_eq!(names(values), ["127.0.0.1:8090/stats value"]);
        assert_eq!(values.series[0].values[9], Some(19.0));
    }

    #[test]
    fn target_charts_show_the_limit_the_states_and_the_queue() {
        let doc = fixture::observed_run();
        let charts = observer_charts(&doc);
        let fds = &charts[2];
        assert_eq!(names(fds), ["open fds"]);
        assert!(fds.markers.iter().any(|m| matches!(m, Marker::Horizontal { y, .. } if *y == 1024.0)));
        assert!(fds.y_axis.max >= 1024.0);
        assert!(fds.tooltips[0].contains("limit: 1,024"));

        let tcp = &charts[3];
        assert_eq!(names(tcp), ["ESTABLISHED", "CLOSE_WAIT", "TIME_WAIT"]);
        let close_wait: Vec<f64> = tcp.series[1].values.iter().flatten().copied().collect();
        assert!(close_wait.windows(2).all(|w| w[1] >= w[0]) && close_wait.last() > close_wait.first());
        let growing =
            tcp.markers.iter().filter(|m| matches!(m, Marker::Vertical { label, .. } if label == "CLOSE_WAIT growing"));
        assert_eq!(growing.count(), 1);

        let queue = &charts[4];
        assert_eq!(names(queue), ["accept queue", "listen overflows/s (system)"]);
        assert_eq!(queue.series[1].values.iter().flatten().fold(0.0, |a: f64, b| a.max(*b)), 12.0);
    }

    #[test]
    fn a_far_limit_is_named_not_drawn_and_a_missing_sample_breaks_the_line() {
        let mut doc = fixture::observed_run();
        for e in &mut doc.timeline {
            if let Some(t) = &mut e.target {
                t.fd_soft_limit = Some(1_048_576);
            }
        }
        doc.timeline[3].target = None;
        let fds = fds_chart(&Frame::of(&doc));
        assert!(fds.title.contains("1,048,576"), "{}", fds.title);
        assert!(!fds.markers.iter().any(|m| matches!(m, Marker::Horizontal { .. })));
        assert!(fds.y_axis.max < 1000.0);
        assert_eq!(fds.series[0].values[3], None);
        assert_eq!(fds.series[0].values.iter().flatten().count(), doc.timeline.len() - 1);
    }

    #[test]
    fn probe_seconds_combine_several_samples() {
        let mut doc = fixture::observed_run();
        let url = "http://127.0.0.1:8090/health";
        let mut extra = doc.timeline[0].probes[0].clone();
        extra.latency_ms = Some(40.0);
        extra.ok = false;
        extra.status = Some(500);
        doc.timeline[0].probes.push(extra);
        let seconds = probe_seconds(&doc.timeline, url);
        let first = seconds[0].as_ref().unwrap();
        assert!(!first.ok);
        assert_eq!(first.latency_ms, Some(40.0));
        assert_eq!(first.why, "status 500");
        assert_eq!(probe_urls(&doc.timeline), [url, "http://127.0.0.1:8090/stats"]);
    }
}
