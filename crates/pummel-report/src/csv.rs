//! The per-second timeline as CSV: a header row, then one row per timeline entry, for
//! spreadsheets and plotting tools. Failures get one column per kind that occurs anywhere in
//! the run (`errors_status_5xx`, ...), so the columns are the same on every row. Figures that
//! do not exist in a second (latency when nothing completed, schedule lag in the closed model)
//! are empty cells.

use std::collections::BTreeSet;
use std::fmt::Write;

use pummel_engine::results::ResultsDocument;

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

/// Renders the timeline of `doc` as CSV (RFC 4180, `\n` line ends).
pub fn render(doc: &ResultsDocument) -> String {
    let kinds: BTreeSet<&str> = doc.timeline.iter().flat_map(|e| e.errors.keys().map(String::as_str)).collect();
    let mut out = String::with_capacity(64 + doc.timeline.len() * 160);
    let header: Vec<String> =
        COLUMNS.iter().map(|c| c.to_string()).chain(kinds.iter().map(|k| field(&format!("errors_{k}")))).collect();
    let _ = writeln!(out, "{}", header.join(","));
    let num = |v: Option<f64>| v.map(|v| format!("{v}")).unwrap_or_default();
    for e in &doc.timeline {
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
    fn missing_figures_are_empty_cells() {
        let mut doc = fixture::open_run();
        doc.timeline[0].latency_ms = None;
        let text = render(&doc);
        assert!(text.lines().nth(1).unwrap().contains(",,,,"));
        assert_eq!(field("a,b"), "\"a,b\"");
    }
}
