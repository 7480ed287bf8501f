//! Per-second progress: a live view redrawn in place on a terminal, one plain line per second
//! otherwise (CI logs, pipes, `--plain`), nothing with `--quiet`.

use std::io::{IsTerminal, Write};
use std::time::Duration;

use pummel_results::timeline::TimelineEntry;

use super::format::{ms, rate};
use crate::cli::DisplayArgs;

/// How progress is shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Live,
    Plain,
    Quiet,
}

/// Prints progress for one run.
pub struct Progress {
    mode: Mode,
    to_stderr: bool,
    title: String,
    planned: Option<Duration>,
    /// Lines drawn by the last live frame, to move back over.
    drawn: usize,
    total_ok: u64,
    total_failed: u64,
}

impl Progress {
    /// Chooses the mode from the flags and whether the output is a terminal.
    pub fn new(
        display: DisplayArgs,
        title: String,
        planned: Option<Duration>,
    ) -> Result<Self, crate::commands::CliError> {
        super::dashboard::open(&display, &title)?;
        // With --json, stdout is reserved for the summary document.
        let to_stderr = display.json;
        let is_tty = if to_stderr { std::io::stderr().is_terminal() } else { std::io::stdout().is_terminal() };
        let mode = if display.quiet {
            Mode::Quiet
        } else if display.plain || !is_tty {
            Mode::Plain
        } else {
            Mode::Live
        };
        Ok(Progress { mode, to_stderr, title, planned, drawn: 0, total_ok: 0, total_failed: 0 })
    }

    /// Shows one completed second, and any warning about the watched target.
    pub fn second(&mut self, entry: &TimelineEntry) {
        super::dashboard::second(entry);
        self.fault_notes(entry);
        self.show_second(entry);
        for warning in entry.target.iter().flat_map(|t| &t.warnings) {
            self.note(&format!("warning (target): {}", warning.text));
        }
    }

    fn show_second(&mut self, entry: &TimelineEntry) {
        self.total_ok += entry.ok;
        self.total_failed += entry.failed;
        let text = match self.mode {
            Mode::Quiet => return,
            Mode::Plain => format!("{}\n", plain_line(entry)),
            Mode::Live => self.live_frame(entry),
        };
        self.write(&text);
    }

    /// Shows one second of `pummel hold` as the caller's `line` (connections wanted,
    /// established, opened, failed, closed by the target) plus the probe and target columns:
    /// as is in plain mode, redrawn in place under the title in the live view.
    pub fn hold_second(&mut self, entry: &TimelineEntry, line: &str) {
        super::dashboard::second(entry);
        self.total_ok += entry.ok;
        self.total_failed += entry.failed;
        let mut line = line.to_string();
        if let Some(probes) = probe_text(entry) {
            line.push_str(&format!(" | probes {probes}"));
        }
        if let Some(target) = target_text(entry) {
            line.push_str(&format!(" | target {target}"));
        }
        let text = match self.mode {
            Mode::Quiet => String::new(),
            Mode::Plain => format!("{line}\n"),
            Mode::Live => {
                let back = if self.drawn > 0 { format!("\x1b[{}A", self.drawn) } else { String::new() };
                let elapsed = match self.planned {
                    Some(total) => format!("{}s / {}s", entry.second, total.as_secs()),
                    None => format!("{}s", entry.second),
                };
                let bar = self
                    .planned
                    .map(|t| progress_bar(entry.second as f64 / t.as_secs_f64().max(1.0)))
                    .unwrap_or_default();
                self.drawn = 2;
                format!("{back}\x1b[2Kpummel  {}  {bar} {elapsed}\n\x1b[2K  {line}\n", self.title)
            }
        };
        if !text.is_empty() {
            self.write(&text);
        }
        self.fault_notes(entry);
        for warning in entry.target.iter().flat_map(|t| &t.warnings) {
            self.note(&format!("warning (target): {}", warning.text));
        }
    }

    /// A line for each fault that started, ended, was undone or failed in this second:
    /// `fault db down, started (proxy db down)`.
    fn fault_notes(&mut self, entry: &TimelineEntry) {
        for mark in &entry.faults {
            self.note(&format!("fault {}, {} ({})", mark.name, mark.event.word(), mark.detail));
        }
    }

    /// Prints a line outside the per-second flow (e.g. a stage header or a warning).
    pub fn note(&mut self, line: &str) {
        super::dashboard::note(line);
        if self.mode == Mode::Quiet {
            return;
        }
        self.drawn = 0;
        self.write(&format!("{line}\n"));
    }

    fn live_frame(&mut self, e: &TimelineEntry) -> String {
        let mut out = String::new();
        if self.drawn > 0 {
            out.push_str(&format!("\x1b[{}A", self.drawn));
        }
        let elapsed = match self.planned {
            Some(total) => format!("{}s / {}s", e.second, total.as_secs()),
            None => format!("{}s", e.second),
        };
        let bar = self.planned.map(|t| progress_bar(e.second as f64 / t.as_secs_f64().max(1.0))).unwrap_or_default();
        let target = e.target_rate.map(|t| format!(" / {}", rate(t))).unwrap_or_default();
        let (p50, p99, max) = match &e.latency_ms {
            Some(l) => (ms(l.p50), ms(l.p99), ms(l.max)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        let errors = if e.errors.is_empty() {
            "none".to_string()
        } else {
            e.errors.iter().map(|(k, n)| format!("{k}={n}")).collect::<Vec<_>>().join(" ")
        };
        let lag_warning = match &e.schedule_lag_ms {
            Some(lag) if lag.p99 > 10.0 => {
                format!("  ! generator is behind schedule (lag p99 {}): results understate the target", ms(lag.p99))
            }
            _ => String::new(),
        };
        let busiest = e.busiest_thread_percent.map(|p| format!(" (busiest thread {p:.0}%)")).unwrap_or_default();
        let mut lines = vec![
            format!("pummel  {}  {bar} {elapsed}{}", self.title, if e.warmup { "  (warmup)" } else { "" }),
            format!(
                "  rate     {}{target} req/s successful   ok {}  failed {}  dropped {}",
                rate(e.ok as f64),
                self.total_ok,
                self.total_failed,
                e.dropped
            ),
            format!("  latency  p50 {p50}   p99 {p99}   max {max}   (successes)"),
            format!(
                "  conns    {}   in flight {} (waiting {})   cpu {:.0}%{busiest}",
                e.connections, e.in_flight, e.waiting, e.cpu_percent
            ),
            format!("  errors   {errors}{lag_warning}"),
        ];
        if let Some(limit) = e.limit {
            lines.push(format!("  limit    the {} is the limit this second", limit.name()));
        }
        if let Some(probes) = probe_text(e) {
            lines.push(format!("  probes   {probes}"));
        }
        if let Some(target) = target_text(e) {
            lines.push(format!("  target   {target}"));
        }
        for line in &lines {
            out.push_str("\x1b[2K");
            out.push_str(line);
            out.push('\n');
        }
        self.drawn = lines.len();
        out
    }

    fn write(&self, text: &str) {
        // A closed pipe must not kill the run: its results still have to be written.
        let _ = if self.to_stderr {
            std::io::stderr().write_all(text.as_bytes())
        } else {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes()).and_then(|()| out.flush())
        };
    }
}

/// `t=3s rate=2000/2000 ok=2000 err=0 dropped=0 p50=0.4ms p99=1.1ms conns=12`: `rate` is the
/// successful answers of the second over the offered rate; latency is of the successes.
pub fn plain_line(e: &TimelineEntry) -> String {
    let mut line = format!("t={}s rate={}", e.second, e.ok);
    if let Some(target) = e.target_rate {
        line.push_str(&format!("/{target:.0}"));
    }
    line.push_str(&format!(" ok={} err={} dropped={}", e.ok, e.failed, e.dropped));
    if let Some(l) = &e.latency_ms {
        line.push_str(&format!(" p50={} p99={}", ms(l.p50), ms(l.p99)));
    }
    line.push_str(&format!(" conns={}", e.connections));
    // One arrival caught between its dispatch and its write at the tick is not worth a word.
    if e.waiting > 1 {
        line.push_str(&format!(" waiting={}", e.waiting));
    }
    if let Some(limit) = e.limit {
        line.push_str(&format!(" LIMIT={}", limit.name()));
    }
    if let Some(lag) = &e.schedule_lag_ms {
        if lag.p99 > 10.0 {
            line.push_str(&format!(" lag_p99={} GENERATOR-BEHIND", ms(lag.p99)));
        }
    }
    for (kind, n) in &e.errors {
        line.push_str(&format!(" {kind}={n}"));
    }
    if e.warmup {
        line.push_str(" (warmup)");
    }
    if let Some(probes) = probe_text(e) {
        line.push_str(&format!(" | probes {probes}"));
    }
    if let Some(target) = target_text(e) {
        line.push_str(&format!(" | target {target}"));
    }
    line
}

/// `/version OK 1.2ms, /stats NOK (connect: refused)`: the probes of one second.
fn probe_text(e: &TimelineEntry) -> Option<String> {
    if e.probes.is_empty() {
        return None;
    }
    let parts: Vec<String> = e
        .probes
        .iter()
        .map(|p| {
            let path =
                p.url.split_once("://").and_then(|(_, rest)| rest.find('/').map(|i| &rest[i..])).unwrap_or(&p.url);
            let verdict = if p.ok { "OK" } else { "NOK" };
            let latency = p.latency_ms.map(|l| format!(" {}", ms(l))).unwrap_or_default();
            let value = p.value.map(|v| format!(" value={v}")).unwrap_or_default();
            let why = p.error.as_ref().filter(|_| !p.ok).map(|w| format!(" ({w})")).unwrap_or_default();
            format!("{path} {verdict}{latency}{value}{why}")
        })
        .collect();
    Some(parts.join(", "))
}

/// `pid 1234 fds=5021/8192 established=5010 close_wait=0 time_wait=0 accept_queue=0
/// listen_overflows=0/s cpu=34%`: the watched target (listen overflows are system-wide, and
/// shown when they could be read); or `no sample (why)` for a second that has none.
fn target_text(e: &TimelineEntry) -> Option<String> {
    let Some(t) = e.target.as_ref() else {
        return e.watch_gap.as_ref().map(|why| format!("no sample ({why})"));
    };
    let limit = t.fd_soft_limit.map(|l| l.to_string()).unwrap_or_else(|| "unlimited".into());
    let cpu = t.cpu_percent.map(|c| format!(" cpu={c:.0}%")).unwrap_or_default();
    let overflows =
        t.system_listen.map(|l| format!(" listen_overflows={:.0}/s", l.listen_overflows_per_s)).unwrap_or_default();
    Some(format!(
        "pid {} fds={}/{limit} established={} close_wait={} time_wait={} accept_queue={}{overflows}{cpu}",
        t.pid, t.open_fds, t.tcp.established, t.tcp.close_wait, t.tcp.time_wait, t.accept_queue
    ))
}

fn progress_bar(fraction: f64) -> String {
    const WIDTH: usize = 20;
    let filled = ((fraction.clamp(0.0, 1.0)) * WIDTH as f64).round() as usize;
    format!("[{}{}]", "#".repeat(filled), ".".repeat(WIDTH - filled))
}
