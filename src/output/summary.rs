//! The end summary as a readable table, and the per-stage table users used to write by hand.

use std::fmt::Write;

use pummel_results::error_kind::ErrorKind;
use pummel_results::summary::{AllLatencyFigures, LatencyFigures, Summary};

use super::format::{bytes, ms, percent, rate, thousands};

/// Renders the summary for a terminal.
pub fn summary_table(s: &Summary) -> String {
    let mut out = String::new();
    let status = match (&s.aborted, s.interrupted) {
        (Some(reason), _) => format!("ABORTED: {reason} — partial results"),
        (None, true) => "INTERRUPTED — partial results".to_string(),
        (None, false) => "complete".to_string(),
    };
    let seed = s.seed.map(|n| format!(", seed {n}")).unwrap_or_default();
    let _ = writeln!(out, "\nSummary ({:.1} s measured, {status}{seed})", s.duration_s);
    let r = &s.requests;
    let _ = writeln!(
        out,
        "  requests    sent {}  ok {}  failed {} ({})  dropped {}{}",
        thousands(r.sent),
        thousands(r.ok),
        thousands(r.failed),
        percent(r.error_rate),
        thousands(r.dropped),
        if r.redirects > 0 { format!("  ({} redirects followed)", thousands(r.redirects)) } else { String::new() },
    );
    if r.unanswered > 0 {
        let _ = writeln!(
            out,
            "              of the failed, unanswered {}: no answer {:.1} s after sending stopped (--drain)",
            thousands(r.unanswered),
            s.drain_s
        );
    }
    let offered = s.rate.offered.map(|t| format!("offered {} req/s, ", rate(t))).unwrap_or_default();
    let _ = writeln!(
        out,
        "  rate        {} req/s successful  ({offered}sent {}/s, failed {}/s)",
        rate(s.rate.achieved),
        rate(s.rate.sent),
        rate(s.rate.failed)
    );
    let secs = s.duration_s.max(1e-9);
    let decoded = if s.bytes.decoded > 0 {
        format!(" ({} decoded from compressed bodies)", bytes(s.bytes.decoded as f64))
    } else {
        String::new()
    };
    let _ = writeln!(
        out,
        "  throughput  {}/s in, {}/s out{decoded}",
        bytes(s.bytes.received as f64 / secs),
        bytes(s.bytes.sent as f64 / secs)
    );
    let _ = writeln!(
        out,
        "\n  {:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "", "min", "mean", "p50", "p90", "p95", "p99", "p99.9", "max"
    );
    latency_row(&mut out, "latency", s.latency_ms.as_ref());
    latency_row(&mut out, "service time", s.service_time_ms.as_ref());
    let all = s.latency_all_ms.filter(|all| Some(all.figures) != s.latency_ms);
    if let Some(all) = &all {
        all_latency_row(&mut out, all);
    }
    connect_lines(&mut out, s, 14, true);
    let _ = writeln!(out, "  (latency counts from each request's intended start, so waiting in line is included;");
    let _ = writeln!(out, "   service time counts from the actual write; both are of the requests that succeeded.");
    if all.is_some() {
        let _ = writeln!(out, "   latency, all: every request that ended, failures included; ≥ marks a lower bound,");
        let _ = writeln!(out, "   since a request given up (timeout, unanswered) counts at the time it was given up.");
    }
    let _ = writeln!(out, "   See README: \"Honest latency\".)");

    let statuses = s.status.iter().map(|(code, n)| format!("{code}: {}", thousands(*n))).collect::<Vec<_>>();
    let _ = writeln!(out, "\n  status      {}", if statuses.is_empty() { "none".into() } else { statuses.join("  ") });
    if s.errors.is_empty() {
        let _ = writeln!(out, "  errors      none");
    } else {
        let _ = writeln!(out, "  errors");
        for (kind, n) in &s.errors {
            let local = ErrorKind::ALL.iter().find(|k| k.name() == kind).and_then(|k| k.local_fix());
            let _ = writeln!(out, "    {kind:<20} {:>10}", thousands(*n));
            if let Some(fix) = local {
                let _ = writeln!(out, "      local limit on the generator, not the target: {fix}");
            }
        }
    }
    if let Some(limit) = &s.limit {
        let _ = writeln!(out, "\n  ! {}", limit.text);
        let _ = writeln!(
            out,
            "    in {} of {} measured seconds: {}",
            limit.seconds,
            limit.of_seconds,
            limit.evidence.join("; ")
        );
    }
    observers_and_thresholds(&mut out, s);
    out
}

/// What `pummel hold` counts besides the summary: its connections.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct HoldFigures {
    /// Connections asked for (`-c`).
    pub wanted: u64,
    /// Most connections open at the end of a second.
    pub peak_held: u64,
    /// Connections established (re-opens included).
    pub opened: u64,
    /// Established connections the target closed.
    pub closed_by_target: u64,
}

/// True for the kinds of failure that keep a connection from opening (TCP, TLS, or the
/// WebSocket upgrade of `--mode ws`), as opposed to failures on a connection already held.
fn fails_opening(kind: ErrorKind) -> bool {
    matches!(
        kind,
        ErrorKind::ConnectRefused
            | ErrorKind::ConnectTimeout
            | ErrorKind::TlsError
            | ErrorKind::TooManyOpenFiles
            | ErrorKind::NoLocalPorts
            | ErrorKind::WsHandshake
    )
}

/// Renders the end of `pummel hold` for a terminal: connections held, opened, failed to open
/// (by kind) and closed by the target; the one request of each connection; connect times; then
/// the probes, the target and the thresholds as `run` shows them. No request rate: a hold
/// sends one request per connection, so a rate would say nothing.
pub fn hold_table(s: &Summary, h: &HoldFigures) -> String {
    let mut out = String::new();
    let status = match (&s.aborted, s.interrupted) {
        (Some(reason), _) => format!("ABORTED: {reason} — partial results"),
        (None, true) => "INTERRUPTED — partial results".to_string(),
        (None, false) => "complete".to_string(),
    };
    let _ = writeln!(out, "\nHold summary ({:.1} s held, {status})", s.duration_s);
    let kinds = |opening: bool| -> Vec<(String, u64)> {
        let of = |name: &str| ErrorKind::ALL.iter().copied().find(|k| k.name() == name);
        s.errors
            .iter()
            // A held request still unanswered at the end is no failure of the connection: the
            // requests line says how many.
            .filter(|(kind, _)| of(kind) != Some(ErrorKind::Unanswered))
            .filter(|(kind, _)| of(kind).is_some_and(fails_opening) == opening)
            .map(|(kind, n)| (kind.clone(), *n))
            .collect()
    };
    let (opening, after) = (kinds(true), kinds(false));
    let failed_to_open: u64 = opening.iter().map(|(_, n)| n).sum();
    let _ = writeln!(
        out,
        "  connections  held {} of {} wanted (at most)  opened {}  failed to open {}  closed by the target {}",
        thousands(h.peak_held),
        thousands(h.wanted),
        thousands(h.opened),
        thousands(failed_to_open),
        thousands(h.closed_by_target)
    );
    if s.requests.dropped > 0 {
        let _ = writeln!(out, "               {} still opening when the hold ended", thousands(s.requests.dropped));
    }
    let listed = |list: &[(String, u64)]| {
        list.iter().map(|(kind, n)| format!("{kind} {}", thousands(*n))).collect::<Vec<_>>().join("  ")
    };
    if !opening.is_empty() {
        let _ = writeln!(out, "  failed to open  {}", listed(&opening));
    }
    if !after.is_empty() {
        let _ = writeln!(out, "  failed once held  {}", listed(&after));
    }
    for (kind, _) in opening.iter().chain(&after) {
        let fix = ErrorKind::ALL.iter().find(|k| k.name() == kind).and_then(|k| k.local_fix());
        if let Some(fix) = fix {
            let _ = writeln!(out, "    {kind}: local limit on the generator, not the target: {fix}");
        }
    }
    let r = &s.requests;
    let statuses = s.status.iter().map(|(code, n)| format!("{code}: {}", thousands(*n))).collect::<Vec<_>>();
    let statuses = if statuses.is_empty() { String::new() } else { format!("  (status {})", statuses.join("  ")) };
    let _ = writeln!(
        out,
        "  requests     sent {}  answered ok {}  unanswered at the end {}{statuses}",
        thousands(r.sent),
        thousands(r.ok),
        thousands(r.unanswered)
    );
    connect_lines(&mut out, s, 13, false);
    observers_and_thresholds(&mut out, s);
    out
}

/// The probes, the watched target and the thresholds: the end of every summary, `run`'s and
/// `hold`'s.
fn observers_and_thresholds(out: &mut String, s: &Summary) {
    if !s.probes.is_empty() {
        let _ = writeln!(out, "\n  probes");
        for p in &s.probes {
            let latency = p
                .latency_ms
                .map(|l| format!("  p50 {}  p99 {}  max {}", ms(l.p50), ms(l.p99), ms(l.max)))
                .unwrap_or_default();
            let value = match (p.last_value, p.max_value) {
                (Some(last), Some(max)) => format!("  value last {last} max {max}"),
                _ => String::new(),
            };
            let ok = p.ok_rate.map(percent).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "    {}  OK {}/{} ({ok}){latency}{value}", p.url, p.ok, p.sent);
        }
    }
    if let Some(t) = &s.target {
        let limit = t.fd_soft_limit.map(thousands).unwrap_or_else(|| "unlimited".into());
        let gaps = match t.watch_gaps {
            0 => String::new(),
            1 => ", 1 second without one (see the timeline's watch_gap)".to_string(),
            n => format!(", {n} seconds without one (see the timeline's watch_gap)"),
        };
        let _ = writeln!(out, "\n  target process {} ({}), {} samples{gaps}", t.pid, t.name, t.samples);
        let _ = writeln!(
            out,
            "    peak fds {} of limit {limit} (highest fd {}), established {}, close_wait {}, threads {}, rss {}",
            thousands(t.peak_open_fds),
            t.peak_max_fd.map(thousands).unwrap_or_else(|| "-".into()),
            thousands(t.peak_established),
            thousands(t.peak_close_wait),
            t.peak_threads,
            bytes(t.peak_rss_bytes as f64)
        );
        let overflows = t
            .listen_overflows
            .map(|n| format!(", listen overflows {} (system-wide)", thousands(n)))
            .unwrap_or_default();
        let _ = writeln!(out, "    peak accept queue {}{overflows}", thousands(t.peak_accept_queue));
        for warning in &t.warnings {
            let _ = writeln!(out, "    warning: {warning}");
        }
        if let Some(gone) = &t.gone {
            let _ = writeln!(out, "    the process went away: {gone}");
        }
    }
    if let Some(writes) = pummel_report::writes::terminal(s) {
        out.push_str(&writes);
    }
    if !s.thresholds.is_empty() {
        let _ = writeln!(out, "\n  thresholds");
        for t in &s.thresholds {
            let value = t.value.map(|v| format!("{v:.3}")).unwrap_or_else(|| "no data".into());
            let shown = t.shown.clone().unwrap_or(value);
            let _ = writeln!(out, "    {}  {:<24} measured {}", if t.pass { "PASS" } else { "FAIL" }, t.expr, shown);
        }
    }
}

fn latency_row(out: &mut String, name: &str, figures: Option<&LatencyFigures>) {
    match figures {
        Some(l) => {
            let _ = writeln!(
                out,
                "  {name:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
                ms(l.min),
                ms(l.mean),
                ms(l.p50),
                ms(l.p90),
                ms(l.p95),
                ms(l.p99),
                ms(l.p999),
                ms(l.max)
            );
        }
        None => {
            let _ = writeln!(out, "  {name:<13} no response received");
        }
    }
}

/// The connect and TLS lines, their labels `width` wide; `opened` adds how many connections.
fn connect_lines(out: &mut String, s: &Summary, width: usize, opened: bool) {
    let connect = match (s.connect_ms.mean, s.connect_ms.p99) {
        (Some(mean), Some(p99)) => {
            let count = if opened { format!("  ({} opened)", thousands(s.connect_ms.count)) } else { String::new() };
            format!("mean {}  p99 {}{count}", ms(mean), ms(p99))
        }
        _ => "no connection opened".to_string(),
    };
    let _ = writeln!(out, "  {:<width$}{connect};  DNS {}", "connect", ms(s.dns_ms));
    if let Some(tls) = &s.tls_ms {
        let (mean, p99) = (tls.mean.map(ms).unwrap_or_default(), tls.p99.map(ms).unwrap_or_default());
        let _ = writeln!(
            out,
            "  {:<width$}mean {mean}  p99 {p99}  ({} handshakes, {} resumed)",
            "TLS",
            thousands(tls.count),
            thousands(tls.resumed)
        );
    }
}

/// A row of every request's latency, `≥` on the figures that are lower bounds.
fn all_latency_row(out: &mut String, all: &AllLatencyFigures) {
    let l = &all.figures;
    let bound = |v: f64, lower: bool| if lower { format!("≥{}", ms(v)) } else { ms(v) };
    let cell = |v: f64| bound(v, all.is_lower_bound(v));
    let _ = writeln!(
        out,
        "  {:<13} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency, all",
        cell(l.min),
        bound(l.mean, all.mean_is_lower_bound()),
        cell(l.p50),
        cell(l.p90),
        cell(l.p95),
        cell(l.p99),
        cell(l.p999),
        cell(l.max)
    );
}

/// The per-stage table: rate, achieved (successful answers), throughput, latency of the
/// successes, error rate, dropped, note.
pub fn stages_table(s: &Summary) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "| Target RPS | Achieved RPS | Throughput | Latency mean | p50 | p99 | p99 (all) | Error rate | Dropped | Note |"
    );
    let _ = writeln!(
        out,
        "|-----------:|-------------:|-----------:|-------------:|----:|----:|----------:|-----------:|--------:|------|"
    );
    for stage in &s.stages {
        let target = stage.target_rate.map(rate).unwrap_or_else(|| "-".into());
        let (mean, p50, p99) = match &stage.latency_ms {
            Some(l) => (ms(l.mean), ms(l.p50), ms(l.p99)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let mut note = stage.note.clone().unwrap_or_default();
        if let Some(kind) = &stage.top_error {
            if note.is_empty() {
                note = format!("mostly {kind}");
            }
        }
        let _ = writeln!(
            out,
            "| {target} | {} | {} RPM | {mean} | {p50} | {p99} | {} | {} | {} | {note} |",
            rate(stage.achieved_rate),
            thousands((stage.achieved_rate * 60.0).round() as u64),
            stage.latency_all_p99_ms.map(ms).unwrap_or_else(|| "-".into()),
            percent(stage.error_rate),
            thousands(stage.dropped),
        );
    }
    out
}

/// A plan file's tables: per request name, checks, branches; `None` for a quick run.
pub fn flow_tables(s: &Summary) -> Option<String> {
    if s.by_name.is_empty() && s.checks.is_empty() {
        return None;
    }
    let mut out = String::new();
    if !s.by_name.is_empty() {
        let _ = writeln!(out, "\nPer request");
        let _ = writeln!(out, "| Name | Scenario | Sent | OK | Error rate | Rate | p50 | p99 | Errors |");
        let _ = writeln!(out, "|------|----------|-----:|---:|-----------:|-----:|----:|----:|--------|");
        // A name that never ran (an expect that always follows a send) is left out.
        for n in s.by_name.iter().filter(|n| n.sent > 0 || n.completed > 0) {
            let (p50, p99) = match &n.latency_ms {
                Some(l) => (ms(l.p50), ms(l.p99)),
                None => ("-".into(), "-".into()),
            };
            let errors: Vec<String> = n.errors.iter().map(|(k, v)| format!("{k} {}", thousands(*v))).collect();
            // In a plan of several hosts, the name says which one.
            let name = match &n.target {
                Some(target) => format!("{} → {target}", n.name),
                None => n.name.clone(),
            };
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {}/s | {p50} | {p99} | {} |",
                name,
                n.scenario,
                thousands(n.sent),
                thousands(n.ok),
                percent(n.error_rate),
                rate(n.rate),
                errors.join(", ")
            );
        }
    }
    if !s.by_target.is_empty() {
        let _ = writeln!(out, "\nPer target");
        let _ = writeln!(out, "| Target | URL | Sent | OK | Error rate | Connections | Connect p99 | TLS p99 | DNS |");
        let _ = writeln!(out, "|--------|-----|-----:|---:|-----------:|------------:|------------:|--------:|----:|");
        for t in &s.by_target {
            let connect = t.connect_ms.p99.map_or_else(|| "-".into(), ms);
            let tls = t.tls_ms.and_then(|f| f.p99).map_or_else(|| "-".into(), ms);
            let _ = writeln!(
                out,
                "| {} | {} | {} | {} | {} | {} | {connect} | {tls} | {} |",
                t.name,
                t.url,
                thousands(t.sent),
                thousands(t.ok),
                percent(t.error_rate),
                thousands(t.connect_ms.count),
                ms(t.dns_ms)
            );
        }
    }
    if !s.checks.is_empty() {
        let _ = writeln!(out, "\nChecks");
        let _ = writeln!(out, "| Check | Passed | Failed | Pass rate |");
        let _ = writeln!(out, "|-------|-------:|-------:|----------:|");
        for c in &s.checks {
            let pass_rate = c.pass_rate.map(percent).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "| {} | {} | {} | {pass_rate} |", c.name, thousands(c.passed), thousands(c.failed));
        }
    }
    if !s.branches.is_empty() {
        let _ = writeln!(out, "\nBranches taken");
        for b in &s.branches {
            let share = b.share.map(percent).unwrap_or_else(|| "-".into());
            let _ = writeln!(out, "  {}: {} ({share})", b.name, thousands(b.taken));
        }
    }
    Some(out)
}
