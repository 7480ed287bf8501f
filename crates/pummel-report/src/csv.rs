//! The per-second timeline as CSV: a header row, then one row per timeline entry, for
//! spreadsheets and plotting tools. Failures get one column per kind that occurs anywhere in
//! the run (`errors_status_5xx`, ...), so the columns are the same on every row. Figures that
//! do not exist in a second (latency when nothing completed, schedule lag in the closed model)
//! are empty cells.
//!
//! Runs with probes get, after the failure columns, `probe_ok` (`true` when every probe request
//! of the second was OK), `probe_latency_ms` (the slowest) and, for `--probe-json`,
//! `probe_value`; with several probes these are numbered in order of first appearance
//! (`probe_1_ok`, `probe_2_ok`, ...). Runs that watched the target then get its figures at the
//! end of each second (`target_open_fds`, `target_fd_limit`, `target_established`,
//! `target_close_wait`, ...). A second without a sample has empty cells there.

use std::collections::BTreeSet;
use std::fmt::Write;

use pummel_results::document::ResultsDocument;
use pummel_system::watch::WatchSample;

use crate::charts::observers::{ProbeSecond, probe_seconds, probe_urls};

/// The fixed columns, before the per-kind failure columns.
pub const COLUMNS: [&str; 19] = [
    "second",
    "warmup",
    "target_rate",
    "sent",
    "completed",
    "ok",
    "failed",
    "dropped",
    "in_flight",
    "connections",
    "bytes_in",
    "bytes_out",
    "latency_p50_ms",
    "latency_p90_ms",
    "latency_p99_ms",
    "latency_max_ms",
    "schedule_lag_p99_ms",
    "schedule_lag_max_ms",
    "cpu_percent",
];

/// The watched target's columns, after the probes' (when a target was watched).
pub const TARGET_COLUMNS: [&str; 10] = [
    "target_open_fds",
    "target_fd_limit",
    "target_established",
    "target_close_wait",
    "target_time_wait",
    "target_accept_queue",
    "target_listen_overflows_per_s",
    "target_threads",
    "target_cpu_percent",
    "target_rss_bytes",
];

/// The target's figures of one sample, in the order of [`TARGET_COLUMNS`].
fn target_cells(s: &WatchSample) -> [String; 10] {
    let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    [
        s.open_fds.to_string(),
        s.fd_soft_limit.map(|l| l.to_string()).unwrap_or_default(),
        s.tcp.established.to_string(),
        s.tcp.close_wait.to_string(),
        s.tcp.time_wait.to_string(),
        s.accept_queue.to_string(),
        num(s.system_listen.map(|l| l.listen_overflows_per_s)),
        s.threads.to_string(),
        s.cpu_percent.map(|c| format!("{c:.2}")).unwrap_or_default(),
        s.rss_bytes.to_string(),
    ]
}

/// One probe's columns: its seconds, and whether it read numbers (a `probe_value` column).
struct ProbeColumns {
    seconds: Vec<Option<ProbeSecond>>,
    values: bool,
}

/// Renders the timeline of `doc` as CSV (RFC 4180, `\n` line ends).
pub fn render(doc: &ResultsDocument) -> String {
    let kinds: BTreeSet<&str> = doc.timeline.iter().flat_map(|e| e.errors.keys().map(String::as_str)).collect();
    let probes: Vec<ProbeColumns> = probe_urls(&doc.timeline)
        .into_iter()
        .map(|url| {
            let seconds = probe_seconds(&doc.timeline, url);
            let values = seconds.iter().flatten().any(|s| s.value.is_some());
            ProbeColumns { seconds, values }
        })
        .collect();
    let watched = doc.timeline.iter().any(|e| e.target.is_some());
    let mut out = String::with_capacity(64 + doc.timeline.len() * 160);
    let mut header: Vec<String> =
        COLUMNS.iter().map(|c| c.to_string()).chain(kinds.iter().map(|k| field(&format!("errors_{k}")))).collect();
    for (i, probe) in probes.iter().enumerate() {
        let prefix = if probes.len() == 1 { "probe".to_string() } else { format!("probe_{}", i + 1) };
        header.push(format!("{prefix}_ok"));
        header.push(format!("{prefix}_latency_ms"));
        if probe.values {
            header.push(format!("{prefix}_value"));
        }
    }
    if watched {
        header.extend(TARGET_COLUMNS.iter().map(|c| c.to_string()));
    }
    let _ = writeln!(out, "{}", header.join(","));
    let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    for (i, e) in doc.timeline.iter().enumerate() {
        let lat = e.latency_ms;
        let lag = e.schedule_lag_ms;
        let mut row = vec![
            e.second.to_string(),
            e.warmup.to_string(),
            num(e.target_rate),
            e.sent.to_string(),
            e.completed.to_string(),
            e.ok.to_string(),
            e.failed.to_string(),
            e.dropped.to_string(),
            e.in_flight.to_string(),
            e.connections.to_string(),
            e.bytes_in.to_string(),
            e.bytes_out.to_string(),
            num(lat.map(|l| l.p50)),
            num(lat.map(|l| l.p90)),
            num(lat.map(|l| l.p99)),
            num(lat.map(|l| l.max)),
            num(lag.map(|l| l.p99)),
            num(lag.map(|l| l.max)),
            format!("{:.2}", e.cpu_percent),
        ];
        row.extend(kinds.iter().map(|k| e.errors.get(*k).copied().unwrap_or(0).to_string()));
        for probe in &probes {
            let second = probe.seconds[i].as_ref();
            row.push(second.map(|s| s.ok.to_string()).unwrap_or_default());
            row.push(num(second.and_then(|s| s.latency_ms)));
            if probe.values {
                row.push(num(second.and_then(|s| s.value)));
            }
        }
        if watched {
            match &e.target {
                Some(sample) => row.extend(target_cells(sample)),
                None => row.extend(TARGET_COLUMNS.iter().map(|_| String::new())),
            }
        }
        let _ = writeln!(out, "{}", row.join(","));
    }
    out
}

/// Quotes a field when it holds a comma, a quote or a line break.
fn field(text: &str) -> String {
    if text.contains([',', '"', '\n', '\r']) { format!("\"{}\"", text.replace('"', "\"\"")) } else { text.to_string() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn header_and_one_row_per_second() {
        let doc = fixture::open_run();
        let text = render(&doc);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 1 + doc.timeline.len());
        assert!(lines[0].ends_with("cpu_percent,errors_status_5xx,errors_timeout"));
        let width = lines[0].split(',').count();
        assert!(lines.iter().all(|l| l.split(',').count() == width));
        assert!(lines[1].starts_with("1,true,1000,1000,1001,"));
        assert!(lines[4].ends_with(",10,3"), "{}", lines[4]);
        assert!(lines[1].ends_with(",10,0"), "{}", lines[1]);
    }

    #[test]
    fn probe_and_target_columns_when_the_run_has_them() {
        let mut doc = fixture::observed_run();
        doc.timeline[2].target = None;
        let text = render(&doc);
        let lines: Vec<&str> = text.lines().collect();
        let header: Vec<&str> = lines[0].split(',').collect();
        let tail = "errors_status_5xx,errors_timeout,probe_1_ok,probe_1_latency_ms,probe_2_ok,probe_2_latency_ms,\
                    probe_2_value,target_open_fds,target_fd_limit,target_established,target_close_wait";
        assert!(lines[0].contains(tail), "{}", lines[0]);
        assert!(lines.iter().all(|l| l.split(',').count() == header.len()));
        let column = |name: &str| -> Vec<&str> {
            let at = header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name}"));
            lines[1..].iter().map(|l| l.split(',').nth(at).unwrap_or("")).collect()
        };
        let nok: Vec<usize> =
            column("probe_1_ok").iter().enumerate().filter(|(_, v)| **v == "false").map(|(i, _)| i + 1).collect();
        assert_eq!(nok, fixture::FAILING_SECONDS.map(|s| s as usize).collect::<Vec<_>>());
        assert_eq!(column("probe_1_latency_ms")[5], "", "no answer in second 6");
        assert_eq!(column("probe_2_value")[9], "19");
        assert_eq!(column("target_close_wait"), ["0", "0", "", "1", "2", "3", "4", "5", "6", "7"]);
        assert_eq!(column("target_fd_limit")[0], "1024");

        let mut one = fixture::observed_run();
        for e in &mut one.timeline {
            e.probes.truncate(1);
            e.target = None;
        }
        let header = render(&one).lines().next().unwrap_or("").to_string();
        assert!(header.ends_with(",errors_timeout,probe_ok,probe_latency_ms"), "{header}");
    }

    #[test]
    fn missing_figures_are_empty_cells() {
        let mut doc = fixture::open_run();
        doc.timeline[0].latency_ms = None;
        let text = render(&doc);
        assert!(text.lines().nth(1).unwrap().contains(",,,,"));
        assert_eq!(field("a,b"), "\"a,b\"");
    }
}
