//! The report's tables, built once and rendered by both the page ([`crate::html`]) and the
//! markdown ([`crate::markdown`]), so the two always show the same figures: latency, requests,
//! connections and generator health, failures by kind, status codes, thresholds, faults, writes
//! and their read-back, and the per-stage or, for find-limit runs, per-step table users used to
//! write by hand.

use pummel_results::document::{FindLimitReport, ResultsDocument};
use pummel_results::error_kind::ErrorKind;
use pummel_results::summary::{LatencyFigures, StageSummary};
use pummel_system::watch::{FD_LIMIT_SHARE, SELECT_FD_LIMIT, WatchSample};

use crate::charts::observers::{probe_label, probe_seconds};
use crate::fmt;

/// How a cell is coloured on the page (markdown ignores it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Tone {
    /// Normal text.
    #[default]
    Plain,
    /// A good outcome (green).
    Good,
    /// A bad outcome (red).
    Bad,
    /// A caution (amber).
    Warn,
}

/// One table cell.
#[derive(Debug, Clone, PartialEq)]
pub struct Cell {
    /// The text shown.
    pub text: String,
    /// Its colour.
    pub tone: Tone,
}

impl Cell {
    /// A cell in normal text.
    pub fn plain(text: impl Into<String>) -> Cell {
        Cell { text: text.into(), tone: Tone::Plain }
    }

    /// A coloured cell.
    pub fn toned(text: impl Into<String>, tone: Tone) -> Cell {
        Cell { text: text.into(), tone }
    }
}

/// A titled table.
#[derive(Debug, Clone, PartialEq)]
pub struct Table {
    /// The heading above it (`Summary`, `Steps`).
    pub title: String,
    /// Column headings.
    pub headers: Vec<String>,
    /// Per column: right-aligned (numbers) or not.
    pub numeric: Vec<bool>,
    /// The rows, each as long as `headers`.
    pub rows: Vec<Vec<Cell>>,
}

impl Table {
    fn new(title: &str, columns: &[(&str, bool)]) -> Table {
        Table {
            title: title.into(),
            headers: columns.iter().map(|(h, _)| h.to_string()).collect(),
            numeric: columns.iter().map(|(_, n)| *n).collect(),
            rows: Vec::new(),
        }
    }

    fn row(&mut self, cells: Vec<Cell>) {
        self.rows.push(cells);
    }

    fn pair(&mut self, label: &str, value: impl Into<String>) {
        self.rows.push(vec![Cell::plain(label), Cell::plain(value)]);
    }
}

/// Every table of a report, in the order shown.
pub fn all(doc: &ResultsDocument) -> Vec<Table> {
    let mut tables = vec![latency(doc), requests(doc), generator(doc)];
    tables.extend(failures(doc));
    tables.extend(statuses(doc));
    tables.extend(thresholds(doc));
    tables.extend(by_name(doc));
    tables.extend(checks(doc));
    tables.extend(phases(doc));
    tables.extend(scenario_times(doc));
    tables.extend(probes(doc));
    tables.extend(target(doc));
    tables.extend(crate::faults::table(doc));
    tables.extend(crate::writes::tables(doc));
    match &doc.find_limit {
        Some(report) => tables.push(steps(doc, report)),
        None => tables.push(stages(doc)),
    }
    tables
}

/// Request counts, rates and bytes.
pub fn requests(doc: &ResultsDocument) -> Table {
    let s = &doc.summary;
    let r = &s.requests;
    let secs = s.duration_s.max(1e-9);
    let mut t = Table::new("Requests", &[("figure", false), ("value", true)]);
    t.pair("requests sent", fmt::thousands(r.sent));
    t.pair("completed", fmt::thousands(r.completed));
    t.pair("ok", fmt::thousands(r.ok));
    t.row(vec![
        Cell::plain("failed"),
        Cell::toned(
            format!("{} ({})", fmt::thousands(r.failed), fmt::percent(r.error_rate)),
            if r.failed > 0 { Tone::Bad } else { Tone::Plain },
        ),
    ]);
    t.row(vec![
        Cell::plain("dropped (never sent)"),
        Cell::toned(fmt::thousands(r.dropped), if r.dropped > 0 { Tone::Warn } else { Tone::Plain }),
    ]);
    t.row(vec![
        Cell::plain(format!("of the failed: unanswered after the {} drain", fmt::seconds(s.drain_s))),
        Cell::toned(fmt::thousands(r.unanswered), if r.unanswered > 0 { Tone::Bad } else { Tone::Plain }),
    ]);
    t.pair("offered rate", fmt::or_dash(s.rate.offered, |v| format!("{} req/s", fmt::rate(v))));
    t.pair("sent rate", format!("{} req/s", fmt::rate(s.rate.sent)));
    t.pair("achieved rate (successful answers)", format!("{} req/s", fmt::rate(s.rate.achieved)));
    t.pair("failure rate", format!("{} /s", fmt::rate(s.rate.failed)));
    t.pair(
        "received",
        format!("{} ({}/s)", fmt::bytes(s.bytes.received as f64), fmt::bytes(s.bytes.received as f64 / secs)),
    );
    t.pair("sent", format!("{} ({}/s)", fmt::bytes(s.bytes.sent as f64), fmt::bytes(s.bytes.sent as f64 / secs)));
    t
}

/// Connections, DNS, and the generator's own health (threads, CPU, lag, bottleneck).
pub fn generator(doc: &ResultsDocument) -> Table {
    let s = &doc.summary;
    let mut t = Table::new("Connections and generator", &[("figure", false), ("value", true)]);
    t.pair("connections opened", fmt::thousands(s.connect_ms.count));
    t.pair(
        "connect time mean / p99",
        format!("{} / {}", fmt::or_dash(s.connect_ms.mean, fmt::ms), fmt::or_dash(s.connect_ms.p99, fmt::ms)),
    );
    if let Some(tls) = &s.tls_ms {
        t.pair(
            "TLS handshake mean / p99",
            format!("{} / {}", fmt::or_dash(tls.mean, fmt::ms), fmt::or_dash(tls.p99, fmt::ms)),
        );
        t.pair("TLS handshakes (resumed)", format!("{} ({})", fmt::thousands(tls.count), fmt::thousands(tls.resumed)));
    }
    t.pair("DNS lookup", fmt::ms(s.dns_ms));
    t.pair("generator threads", s.generator.threads.to_string());
    t.pair("generator CPU", format!("{:.2} s", s.generator.cpu_seconds));
    t.pair(
        "busiest generator thread (of a core)",
        fmt::or_dash(s.generator.busiest_thread_percent, |p| format!("{p:.0} %")),
    );
    t.pair("schedule lag p99", fmt::or_dash(s.generator.schedule_lag_p99_ms, fmt::ms));
    t.row(vec![
        Cell::plain("what limited the run"),
        match &s.limit {
            Some(limit) => {
                let tone = if limit.by == pummel_results::summary::LimitSide::Target { Tone::Bad } else { Tone::Warn };
                Cell::toned(format!("{} ({})", limit.text, limit.evidence.join("; ")), tone)
            }
            None => Cell::toned("nothing: the offered load was carried", Tone::Good),
        },
    ]);
    t
}

const LATENCY_COLUMNS: [(&str, bool); 9] = [
    ("", false),
    ("min", true),
    ("mean", true),
    ("p50", true),
    ("p90", true),
    ("p95", true),
    ("p99", true),
    ("p99.9", true),
    ("max", true),
];

/// Latency (from the intended start) and service time (from the send), one row each.
pub fn latency(doc: &ResultsDocument) -> Table {
    let mut t = Table::new("Latency", &LATENCY_COLUMNS);
    let row = |name: &str, f: Option<LatencyFigures>| -> Vec<Cell> {
        let mut cells = vec![Cell::plain(name)];
        match f {
            Some(f) => cells
                .extend([f.min, f.mean, f.p50, f.p90, f.p95, f.p99, f.p999, f.max].map(|v| Cell::plain(fmt::ms(v)))),
            None => cells.extend((0..8).map(|_| Cell::plain("—"))),
        }
        cells
    };
    t.row(row("latency of successes (from intended start)", doc.summary.latency_ms));
    t.row(row("service time of successes (from send)", doc.summary.service_time_ms));
    if let Some(all) = doc.summary.latency_all_ms.filter(|all| Some(all.figures) != doc.summary.latency_ms) {
        let f = all.figures;
        let mut cells = vec![Cell::plain("latency of every request (≥: a lower bound)")];
        let mean = (f.mean, all.mean_is_lower_bound());
        let others = [f.p50, f.p90, f.p95, f.p99, f.p999, f.max].map(|v| (v, all.is_lower_bound(v)));
        cells.extend(
            std::iter::once((f.min, all.is_lower_bound(f.min)))
                .chain([mean])
                .chain(others)
                .map(|(v, lower)| Cell::plain(format!("{}{}", if lower { "≥" } else { "" }, fmt::ms(v)))),
        );
        t.row(cells);
    }
    t
}

/// Failures by kind with their share of completed requests and what the kind means; `None`
/// when nothing failed.
pub fn failures(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.errors.is_empty() {
        return None;
    }
    let mut t =
        Table::new("Failures by kind", &[("kind", false), ("count", true), ("share", true), ("meaning", false)]);
    let completed = s.requests.completed.max(1) as f64;
    let mut kinds: Vec<(&String, &u64)> = s.errors.iter().collect();
    kinds.sort_by(|a, b| b.1.cmp(a.1).then(a.0.cmp(b.0)));
    for (kind, n) in kinds {
        t.row(vec![
            Cell::toned(kind.clone(), Tone::Bad),
            Cell::plain(fmt::thousands(*n)),
            Cell::plain(fmt::percent(*n as f64 / completed)),
            Cell::plain(meaning(kind)),
        ]);
    }
    Some(t)
}

/// What an error kind means, with the fix when the generator's own machine ran out of
/// something.
pub fn meaning(kind: &str) -> String {
    let known = ErrorKind::ALL.iter().find(|k| k.name() == kind);
    let text = match known {
        Some(ErrorKind::ConnectRefused) => "the target refused the connection (nothing listening, or backlog full)",
        Some(ErrorKind::ConnectTimeout) => "no connection within --connect-timeout",
        Some(ErrorKind::Timeout) => "no complete response within --timeout",
        Some(ErrorKind::TooManyRedirects) => "a redirect chain longer than the plan's redirects allow",
        Some(ErrorKind::RedirectOffTarget) => "a redirect to a host the plan does not load: not followed",
        Some(ErrorKind::Unanswered) => "sent, and still unanswered when the drain time after the run ran out",
        Some(ErrorKind::Reset) => "the peer closed the connection mid-request",
        Some(ErrorKind::MalformedResponse) => "the answer was not valid HTTP/1.1",
        Some(ErrorKind::TlsError) => "TLS failed: certificate rejected, handshake failed or stalled, or an alert",
        Some(ErrorKind::TooManyOpenFiles) => "the generator ran out of file descriptors",
        Some(ErrorKind::NoLocalPorts) => "the generator ran out of ephemeral ports",
        Some(ErrorKind::Status4xx) => "4xx status not accepted by --ok-status",
        Some(ErrorKind::Status5xx) => "5xx status: the server failed",
        Some(ErrorKind::StreamReset) => "HTTP/2: the server reset the stream",
        Some(ErrorKind::GoAway) => "HTTP/2: the server sent GOAWAY before handling the stream",
        Some(ErrorKind::WsHandshake) => "WebSocket upgrade refused or invalid",
        Some(ErrorKind::WsClosed) => "WebSocket session closed by the peer while still in use",
        Some(ErrorKind::WsExpectTimeout) => "no matching WebSocket message within the ws_expect timeout",
        Some(ErrorKind::CheckFailed) => "a plan check (fail = true) did not pass",
        Some(ErrorKind::ExtractFailed) => "a plan extract found nothing and had no default",
        Some(ErrorKind::Other) => "another failure (first messages in the results file)",
        None => "unknown kind",
    };
    match known.and_then(|k| k.local_fix()) {
        Some(fix) => format!("{text}; fix: {fix}"),
        None => text.to_string(),
    }
}

/// Responses by status code; `None` when no response came back.
pub fn statuses(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.status.is_empty() {
        return None;
    }
    let mut t = Table::new("Responses by status", &[("status", false), ("count", true), ("share", true)]);
    let total: u64 = s.status.values().sum();
    for (code, n) in &s.status {
        let tone = if code.starts_with('5') || code.starts_with('4') { Tone::Warn } else { Tone::Plain };
        t.row(vec![
            Cell::toned(code.clone(), tone),
            Cell::plain(fmt::thousands(*n)),
            Cell::plain(fmt::percent(*n as f64 / total.max(1) as f64)),
        ]);
    }
    Some(t)
}

/// The thresholds and their verdicts; `None` when none was set.
pub fn thresholds(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.thresholds.is_empty() {
        return None;
    }
    // In a find-limit run, the SLO decided each step; its verdict on the whole run (all steps
    // together, broken ones included) is shown for completeness, titled so.
    let title = if doc.find_limit.is_some() { "Thresholds (whole run, all steps)" } else { "Thresholds" };
    let mut t = Table::new(title, &[("threshold", false), ("measured", true), ("verdict", false)]);
    for v in &s.thresholds {
        t.row(vec![
            Cell::plain(v.expr.clone()),
            Cell::plain(v.shown.clone().unwrap_or_else(|| "no data".into())),
            if v.pass { Cell::toned("pass", Tone::Good) } else { Cell::toned("FAIL", Tone::Bad) },
        ]);
    }
    Some(t)
}

/// A plan file's figures per request name and WebSocket exchange.
pub fn by_name(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.by_name.is_empty() {
        return None;
    }
    let mut t = Table::new(
        "Per request name",
        &[
            ("name", false),
            ("scenario", false),
            ("sent", true),
            ("ok", true),
            ("error rate", true),
            ("rate", true),
            ("p50", true),
            ("p99", true),
        ],
    );
    for n in s.by_name.iter().filter(|n| n.sent > 0 || n.completed > 0) {
        let (p50, p99) = match &n.latency_ms {
            Some(l) => (fmt::ms(l.p50), fmt::ms(l.p99)),
            None => ("-".into(), "-".into()),
        };
        t.row(vec![
            Cell::plain(n.name.clone()),
            Cell::plain(n.scenario.clone()),
            Cell::plain(fmt::thousands(n.sent)),
            Cell::plain(fmt::thousands(n.ok)),
            Cell::toned(fmt::percent(n.error_rate), if n.error_rate > 0.0 { Tone::Bad } else { Tone::Plain }),
            Cell::plain(format!("{}/s", fmt::rate(n.rate))),
            Cell::plain(p50),
            Cell::plain(p99),
        ]);
    }
    Some(t)
}

/// A plan file's checks with their pass rates.
pub fn checks(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.checks.is_empty() {
        return None;
    }
    let mut t = Table::new("Checks", &[("check", false), ("passed", true), ("failed", true), ("pass rate", true)]);
    for c in &s.checks {
        t.row(vec![
            Cell::plain(c.name.clone()),
            Cell::plain(fmt::thousands(c.passed)),
            Cell::toned(fmt::thousands(c.failed), if c.failed > 0 { Tone::Bad } else { Tone::Plain }),
            Cell::plain(c.pass_rate.map(fmt::percent).unwrap_or_else(|| "-".into())),
        ]);
    }
    Some(t)
}

/// The phases of a run in phases (setup, load, teardown): when each ran and what it did;
/// `None` for a run without setup or teardown.
pub fn phases(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.phases.is_empty() {
        return None;
    }
    let columns = [
        ("phase", false),
        ("scenarios", false),
        ("started", true),
        ("took", true),
        ("ok", true),
        ("failed", true),
        ("ended", false),
        ("note", false),
    ];
    let mut t = Table::new("Phases", &columns);
    for p in &s.phases {
        let mut notes: Vec<String> =
            p.errors.iter().map(|(kind, n)| format!("{kind} {}", fmt::thousands(*n))).collect();
        notes.extend(p.exported.iter().map(|(name, n)| format!("exported {name} ×{}", fmt::thousands(*n))));
        let ended_tone = if p.ended == "completed" { Tone::Plain } else { Tone::Bad };
        t.row(vec![
            Cell::plain(p.name.clone()),
            Cell::plain(p.scenarios.join(", ")),
            Cell::plain(format!("{:.1}s", p.started_s)),
            Cell::plain(format!("{:.1}s", p.duration_s)),
            Cell::plain(fmt::thousands(p.ok)),
            Cell::toned(fmt::thousands(p.failed), if p.failed > 0 { Tone::Bad } else { Tone::Plain }),
            Cell::toned(p.ended.clone(), ended_tone),
            Cell::plain(notes.join("; ")),
        ]);
    }
    Some(t)
}

/// When each scenario of the load started and ended, when one started later than the run
/// (`start`, `after`); `None` otherwise.
pub fn scenario_times(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if !s.scenarios.iter().any(|sc| sc.started_s.is_some_and(|t| t >= 0.5)) {
        return None;
    }
    let columns = [("scenario", false), ("started", true), ("ended", true), ("iterations", true)];
    let mut t = Table::new("Scenarios", &columns);
    let at = |v: Option<f64>| v.map_or_else(|| "-".to_string(), |s| format!("{s:.1}s"));
    for sc in &s.scenarios {
        t.row(vec![
            Cell::plain(sc.name.clone()),
            Cell::plain(at(sc.started_s)),
            Cell::plain(at(sc.ended_s)),
            Cell::plain(fmt::thousands(sc.iterations)),
        ]);
    }
    Some(t)
}

/// The probes over the run: how many were OK, their latency, the seconds they were NOK in
/// (from the timeline) and, for `--probe-json`, the numbers read; `None` without probes.
pub fn probes(doc: &ResultsDocument) -> Option<Table> {
    let s = &doc.summary;
    if s.probes.is_empty() {
        return None;
    }
    let with_values = s.probes.iter().any(|p| p.last_value.is_some());
    let mut columns = vec![
        ("probe", false),
        ("sent", true),
        ("ok", true),
        ("ok rate", true),
        ("p50", true),
        ("p99", true),
        ("max", true),
        ("NOK in seconds", false),
    ];
    if with_values {
        columns.extend([("last value", true), ("max value", true)]);
    }
    let mut t = Table::new("Probes", &columns);
    for p in &s.probes {
        let l = p.latency_ms;
        let failing: Vec<u64> = doc
            .timeline
            .iter()
            .zip(probe_seconds(&doc.timeline, &p.url))
            .filter(|(_, s)| s.as_ref().is_some_and(|s| !s.ok))
            .map(|(e, _)| e.second)
            .collect();
        let mut row = vec![
            Cell::plain(probe_label(&p.url)),
            Cell::plain(fmt::thousands(p.sent)),
            Cell::toned(fmt::thousands(p.ok), if p.ok < p.sent { Tone::Bad } else { Tone::Plain }),
            Cell::plain(fmt::or_dash(p.ok_rate, fmt::percent)),
            Cell::plain(fmt::or_dash(l.map(|l| l.p50), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.p99), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.max), fmt::ms)),
            if failing.is_empty() { Cell::plain("none") } else { Cell::toned(second_ranges(&failing), Tone::Bad) },
        ];
        if with_values {
            row.push(Cell::plain(fmt::or_dash(p.last_value, number)));
            row.push(Cell::plain(fmt::or_dash(p.max_value, number)));
        }
        t.row(row);
    }
    Some(t)
}

/// A number read from a body, as short as it can be written exactly (`19`, `1,200`, `0.25`).
fn number(v: f64) -> String {
    if v.fract() == 0.0 && v.abs() < 1e15 {
        let digits = fmt::thousands(v.abs() as u64);
        if v < 0.0 { format!("-{digits}") } else { digits }
    } else {
        format!("{v}")
    }
}

/// Seconds as ranges of consecutive ones: `4–6, 9`; past six ranges, how many more there are.
pub fn second_ranges(seconds: &[u64]) -> String {
    let mut ranges: Vec<(u64, u64)> = Vec::new();
    for &s in seconds {
        match ranges.last_mut() {
            Some((_, last)) if *last + 1 == s => *last = s,
            _ => ranges.push((s, s)),
        }
    }
    let mut parts: Vec<String> =
        ranges.iter().take(6).map(|(a, b)| if a == b { a.to_string() } else { format!("{a}–{b}") }).collect();
    if ranges.len() > 6 {
        parts.push(format!("and {} more", ranges.len() - 6));
    }
    parts.join(", ")
}

/// The watched target over the run: peaks of fds (against the limit), sockets, queue, threads,
/// memory and CPU, its warnings, and whether it went away; `None` when no target was watched.
pub fn target(doc: &ResultsDocument) -> Option<Table> {
    let totals = doc.summary.target.as_ref()?;
    let samples: Vec<&WatchSample> = doc.timeline.iter().filter_map(|e| e.target.as_ref()).collect();
    let peak = |f: fn(&WatchSample) -> f64| {
        samples.iter().map(|s| f(s)).fold(None, |m: Option<f64>, v| Some(m.map_or(v, |m| m.max(v))))
    };
    let mut t = Table::new("Target", &[("figure", false), ("value", true)]);
    t.pair("process", format!("{} (pid {})", totals.name, totals.pid));
    t.pair("samples", fmt::thousands(totals.samples));
    let gaps: Vec<u64> =
        doc.timeline.iter().filter(|e| e.target.is_none() && e.watch_gap.is_some()).map(|e| e.second).collect();
    if !gaps.is_empty() {
        let why = doc.timeline.iter().find_map(|e| e.watch_gap.as_deref()).unwrap_or_default();
        t.row(vec![
            Cell::plain("seconds without a sample"),
            Cell::toned(format!("{} ({why})", second_ranges(&gaps)), Tone::Warn),
        ]);
    }
    let fds = match totals.fd_soft_limit {
        Some(limit) => {
            let share = totals.peak_open_fds as f64 / limit.max(1) as f64;
            Cell::toned(
                format!(
                    "{} of {} ({})",
                    fmt::thousands(totals.peak_open_fds),
                    fmt::thousands(limit),
                    fmt::percent(share)
                ),
                if share >= FD_LIMIT_SHARE { Tone::Bad } else { Tone::Plain },
            )
        }
        None => Cell::plain(format!("{} (no limit)", fmt::thousands(totals.peak_open_fds))),
    };
    t.row(vec![Cell::plain("peak open fds"), fds]);
    if let Some(max_fd) = totals.peak_max_fd {
        // An epoll process is not bound by select()'s ceiling.
        let epoll = samples.iter().any(|s| s.holds_epoll);
        let tone = if max_fd >= SELECT_FD_LIMIT && !epoll { Tone::Warn } else { Tone::Plain };
        t.row(vec![Cell::plain("highest fd number"), Cell::toned(fmt::thousands(max_fd), tone)]);
    }
    t.pair("peak ESTABLISHED", fmt::thousands(totals.peak_established));
    t.pair("peak CLOSE_WAIT", fmt::thousands(totals.peak_close_wait));
    if let Some(queue) = peak(|s| s.accept_queue as f64) {
        t.pair("peak accept queue", fmt::thousands(queue as u64));
    }
    if let Some(overflows) = peak(|s| s.system_listen.map_or(0.0, |l| l.listen_overflows_per_s)) {
        let tone = if overflows > 0.0 { Tone::Warn } else { Tone::Plain };
        t.row(vec![
            Cell::plain("peak listen overflows (system)"),
            Cell::toned(format!("{}/s", fmt::rate(overflows)), tone),
        ]);
    }
    if let Some(total) = totals.listen_overflows {
        let tone = if total > 0 { Tone::Warn } else { Tone::Plain };
        t.row(vec![Cell::plain("listen overflows over the run (system)"), Cell::toned(fmt::thousands(total), tone)]);
    }
    t.pair("peak threads", fmt::thousands(totals.peak_threads));
    t.pair("peak memory (RSS)", fmt::bytes(totals.peak_rss_bytes as f64));
    if let Some(cpu) = peak(|s| s.cpu_percent.unwrap_or(0.0)) {
        t.pair("peak CPU", format!("{cpu:.0}% of one core"));
    }
    for warning in &totals.warnings {
        t.row(vec![Cell::plain("warning"), Cell::toned(warning.clone(), Tone::Warn)]);
    }
    if let Some(gone) = &totals.gone {
        t.row(vec![Cell::plain("went away"), Cell::toned(gone.clone(), Tone::Bad)]);
    }
    Some(t)
}

/// One row per load stage.
pub fn stages(doc: &ResultsDocument) -> Table {
    let mut t = Table::new(
        "Stages",
        &[
            ("stage", true),
            ("target rate", true),
            ("measured", true),
            ("achieved rate", true),
            ("completed", true),
            ("error rate", true),
            ("mean", true),
            ("p50", true),
            ("p99", true),
            ("max", true),
            ("top error", false),
            ("note", false),
        ],
    );
    for (i, s) in doc.summary.stages.iter().enumerate() {
        let l = s.latency_ms;
        t.row(vec![
            Cell::plain((i + 1).to_string()),
            Cell::plain(fmt::or_dash(s.target_rate, |r| format!("{} req/s", fmt::rate(r)))),
            Cell::plain(fmt::seconds(s.duration_s)),
            Cell::plain(format!("{} req/s", fmt::rate(s.achieved_rate))),
            Cell::plain(fmt::thousands(s.completed)),
            error_rate_cell(s),
            Cell::plain(fmt::or_dash(l.map(|l| l.mean), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.p50), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.p99), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.max), fmt::ms)),
            Cell::plain(s.top_error.clone().unwrap_or_default()),
            Cell::plain(s.note.clone().unwrap_or_default()),
        ]);
    }
    t
}

fn error_rate_cell(s: &StageSummary) -> Cell {
    Cell::toned(fmt::percent(s.error_rate), if s.failed > 0 { Tone::Bad } else { Tone::Plain })
}

/// The find-limit table, one row per step in the order run: target and achieved rate, the
/// throughput of successful requests (`ok req/s`, `ok req/min`), latency, error rate, the note
/// and the verdict with its reason.
pub fn steps(doc: &ResultsDocument, report: &FindLimitReport) -> Table {
    let mut t = Table::new(
        "Steps",
        &[
            ("step", true),
            ("target rate", true),
            ("achieved rate", true),
            ("ok req/s", true),
            ("ok req/min", true),
            ("mean", true),
            ("p50", true),
            ("p99", true),
            ("error rate", true),
            ("note", false),
            ("verdict", false),
        ],
    );
    for (i, (verdict, s)) in report.steps.iter().zip(&doc.summary.stages).enumerate() {
        let ok_per_s =
            if s.duration_s > 0.0 { s.completed.saturating_sub(s.failed) as f64 / s.duration_s } else { 0.0 };
        let l = s.latency_ms;
        let mut note = s.note.clone().unwrap_or_default();
        if let Some(top) = &s.top_error {
            if !note.contains(top.as_str()) {
                note = if note.is_empty() { format!("mostly {top}") } else { format!("{note}; mostly {top}") };
            }
        }
        let capacity = report.capacity_rps.is_some_and(|c| (c - verdict.target_rate).abs() < 1e-6);
        // The reason is often the note already (find-limit writes it there): say it once.
        let reason = verdict.reason.as_ref().filter(|r| !note.contains(r.as_str()));
        let verdict_cell = match (verdict.good, reason) {
            (true, _) if capacity => Cell::toned("good (capacity)", Tone::Good),
            (true, _) => Cell::toned("good", Tone::Good),
            (false, Some(reason)) => Cell::toned(format!("bad: {reason}"), Tone::Bad),
            (false, None) => Cell::toned("bad", Tone::Bad),
        };
        t.row(vec![
            Cell::plain((i + 1).to_string()),
            Cell::plain(format!("{} req/s", fmt::rate(verdict.target_rate))),
            Cell::plain(format!("{} req/s", fmt::rate(s.achieved_rate))),
            Cell::plain(fmt::rate(ok_per_s)),
            Cell::plain(fmt::rate(ok_per_s * 60.0)),
            Cell::plain(fmt::or_dash(l.map(|l| l.mean), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.p50), fmt::ms)),
            Cell::plain(fmt::or_dash(l.map(|l| l.p99), fmt::ms)),
            error_rate_cell(s),
            Cell::plain(note),
            verdict_cell,
        ]);
    }
    t
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn every_row_is_as_long_as_the_headers() {
        for doc in [fixture::open_run(), fixture::find_limit_run(), fixture::observed_run()] {
            for t in all(&doc) {
                assert_eq!(t.numeric.len(), t.headers.len(), "{}", t.title);
                for row in &t.rows {
                    assert_eq!(row.len(), t.headers.len(), "{}", t.title);
                }
            }
        }
    }

    #[test]
    fn failures_are_sorted_and_explained() {
        let t = failures(&fixture::open_run()).unwrap();
        assert_eq!(t.rows[0][0].text, "status_5xx");
        assert_eq!(t.rows[1][0].text, "timeout");
        assert!(meaning("no_local_ports").contains("ip_local_port_range"));
    }

    #[test]
    fn probe_and_target_tables_only_when_the_run_has_them() {
        let plain = fixture::open_run();
        assert!(probes(&plain).is_none() && target(&plain).is_none());
        let titles: Vec<String> = all(&plain).into_iter().map(|t| t.title).collect();
        assert!(!titles.iter().any(|t| t == "Probes" || t == "Target"), "{titles:?}");

        let doc = fixture::observed_run();
        let p = probes(&doc).unwrap();
        assert_eq!(p.headers.last().map(String::as_str), Some("max value"));
        assert_eq!(p.rows[0][0].text, "127.0.0.1:8090/health");
        assert_eq!(p.rows[0][7].text, "4–6");
        assert_eq!(p.rows[0][7].tone, Tone::Bad);
        assert_eq!(p.rows[1][7].text, "none");
        assert_eq!(p.rows[1][8].text, "19");
        assert_eq!(p.rows[0][8].text, "—");

        let t = target(&doc).unwrap();
        let value = |label: &str| t.rows.iter().find(|r| r[0].text == label).map(|r| r[1].text.clone());
        assert_eq!(value("peak open fds").as_deref(), Some("67 of 1,024 (6.5%)"));
        assert_eq!(value("peak CLOSE_WAIT").as_deref(), Some("7"));
        assert_eq!(value("peak accept queue").as_deref(), Some("5"));
        assert_eq!(value("peak listen overflows (system)").as_deref(), Some("12/s"));
        assert_eq!(value("listen overflows over the run (system)").as_deref(), Some("12"));
        assert_eq!(t.rows.iter().filter(|r| r[0].text == "warning").count(), 2);
        assert_eq!(value("seconds without a sample"), None, "every second has its sample");

        let mut gaps = fixture::observed_run();
        for e in &mut gaps.timeline[3..5] {
            e.target = None;
            e.watch_gap = Some("no sample within 800 ms".into());
        }
        let t = target(&gaps).unwrap();
        let value = |label: &str| t.rows.iter().find(|r| r[0].text == label).map(|r| r[1].text.clone());
        assert_eq!(value("seconds without a sample").as_deref(), Some("4–5 (no sample within 800 ms)"));
    }

    #[test]
    fn seconds_read_as_ranges() {
        assert_eq!(second_ranges(&[4, 5, 6, 9]), "4–6, 9");
        assert_eq!(second_ranges(&[1, 3, 5, 7, 9, 11, 13, 15]), "1, 3, 5, 7, 9, 11, and 2 more");
        assert_eq!(number(-1200.0), "-1,200");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn step_table_has_throughput_per_minute_and_verdicts() {
        let doc = fixture::find_limit_run();
        let t = steps(&doc, doc.find_limit.as_ref().unwrap());
        assert_eq!(t.rows.len(), 4);
        assert_eq!(t.rows[0][3].text, "500");
        assert_eq!(t.rows[0][4].text, "30,000");
        assert_eq!(t.rows[2][10].text, "good (capacity)");
        assert!(t.rows[3][10].text.starts_with("bad: p99"));
        assert!(t.rows[3][9].text.contains("ended after 1 s"));
        assert!(t.rows[3][9].text.contains("mostly status_5xx"));
    }
}
