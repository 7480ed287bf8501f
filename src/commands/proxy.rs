//! `pummel proxy`: the fault-injection proxy as a standalone process — proxies from flags or a
//! TOML file, toxics from flags, the toxiproxy-compatible API, a line per proxy every second,
//! and a clean stop on Ctrl-C (exit 130) or after `--duration` (exit 0).

use std::io::{IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use pummel_plan::{Diagnostic, DiagnosticKind, Report};
use pummel_proxy::{Options, ProxySnapshot, StartError, quick};
use pummel_results::duration::parse_duration;
use tokio::sync::mpsc::UnboundedReceiver;

use super::{CliError, ExitStatus};

/// Where the API listens when `--api` is given without an address, or when no proxy is.
const DEFAULT_API: &str = "127.0.0.1:8474";

/// Flags of `pummel proxy`.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 stopped after --duration, 2 bad usage or config, 3 could not start \
                        (an address in use), 130 interrupted.")]
pub struct ProxyArgs {
    /// A proxy: NAME=LISTEN,UPSTREAM, e.g. redis=26379,127.0.0.1:6379 (repeatable; a port alone
    /// means 127.0.0.1:PORT).
    #[arg(long = "proxy", value_name = "NAME=LISTEN,UPSTREAM")]
    pub proxies: Vec<String>,
    /// Proxies and toxics from a TOML file ([proxy.NAME] listen, upstream, enabled, toxics).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// A toxic: PROXY:TYPE[:KEY=VALUE,...], e.g. redis:latency:latency=20,jitter=5 (repeatable).
    /// Keys: the type's attributes in toxiproxy's units, stream=downstream|upstream|both,
    /// toxicity=0..1, name=NAME.
    #[arg(long = "toxic", value_name = "PROXY:TYPE[:K=V,...]")]
    pub toxics: Vec<String>,
    /// Serve the toxiproxy-compatible HTTP API on this address [default: 127.0.0.1:8474 when
    /// given without one, or when no proxy is given].
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = DEFAULT_API)]
    pub api: Option<String>,
    /// Stop by itself after this long (default: run until interrupted).
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Threads that move the bytes (default: the CPUs this process may use).
    #[arg(short, long, value_name = "N")]
    pub threads: Option<usize>,
    /// One plain line per proxy per second, also on a terminal.
    #[arg(long)]
    pub plain: bool,
    /// No per-second lines (changes are still printed).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `pummel proxy` until interrupted or `--duration` passes.
pub fn run(args: ProxyArgs) -> Result<ExitStatus, CliError> {
    let usage = |e: String| CliError::usage(anyhow!(e));
    let mut file = match &args.config {
        Some(path) => read_config(path)?,
        None => pummel_proxy::config::ProxyFile::default(),
    };
    for text in &args.proxies {
        let spec = quick::parse_proxy(text).map_err(|e| usage(format!("--proxy {e}")))?;
        if file.proxies.iter().any(|p| p.name == spec.name) {
            return Err(usage(format!("--proxy {text:?}: a proxy named {:?} is already defined", spec.name)));
        }
        file.proxies.push(spec);
    }
    for text in &args.toxics {
        let (name, toxics) = quick::parse_toxic(text).map_err(|e| usage(format!("--toxic {e}")))?;
        let proxy = file.proxies.iter_mut().find(|p| p.name == name).ok_or_else(|| {
            usage(format!("--toxic {text:?}: no proxy named {name:?} (define it with --proxy {name}=LISTEN,UPSTREAM)"))
        })?;
        for toxic in toxics {
            if proxy.toxics.iter().any(|t| t.name == toxic.name) {
                return Err(usage(format!(
                    "--toxic {text:?}: proxy {name:?} has a toxic named {:?} already (add name=... to tell them apart)",
                    toxic.name
                )));
            }
            proxy.toxics.push(toxic);
        }
    }
    let api = match (&args.api, &file.api) {
        (Some(flag), _) => Some(quick::address(flag).map_err(|e| usage(format!("--api {e}")))?),
        (None, Some(from_file)) => Some(from_file.clone()),
        (None, None) if file.proxies.is_empty() => Some(DEFAULT_API.to_string()),
        (None, None) => None,
    };
    let stop_after =
        args.duration.as_deref().map(parse_duration).transpose().map_err(|e| usage(format!("--duration: {e}")))?;
    let threads = match args.threads {
        Some(0) => return Err(usage("--threads must be at least 1".into())),
        Some(n) => n,
        None => std::thread::available_parallelism().map_or(1, |n| n.get()),
    };

    pummel_engine::limits::raise_open_file_limit().ok();
    let (tx, mut notices) = tokio::sync::mpsc::unbounded_channel();
    let options = Options { proxies: file.proxies, api, threads };
    let handle = pummel_proxy::start(options, Some(tx)).map_err(|e| match e {
        StartError::Runtime(_) => CliError::internal(anyhow!(e)),
        other => CliError::cannot_start(anyhow!(other)),
    })?;
    print_notices(&mut notices, &mut Display::none());
    for proxy in handle.block_on(handle.proxies().list()) {
        for toxic in &proxy.toxics {
            eprintln!("pummel proxy: {}: toxic {}", proxy.name, toxic.describe());
        }
    }
    if let Some(addr) = handle.api_addr() {
        let warning = if addr.ip().is_loopback() { "" } else { " (not loopback: reachable from other machines)" };
        // Tests and scripts wait for this line.
        eprintln!("pummel proxy: API listening on http://{addr}{warning}");
    }
    eprintln!("pummel proxy: ready");

    let interrupted = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&interrupted);
    if let Err(e) = ctrlc::set_handler(move || {
        if flag.swap(true, Ordering::SeqCst) {
            std::process::exit(130);
        }
    }) {
        eprintln!("warning: cannot handle Ctrl-C ({e}); it will end the proxy without closing connections first");
    }

    let mut display = Display::new(args.plain, args.quiet);
    let started = Instant::now();
    let mut last = handle.snapshot();
    let mut last_at = Instant::now();
    while !interrupted.load(Ordering::SeqCst) && stop_after.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
        print_notices(&mut notices, &mut display);
        if last_at.elapsed() >= Duration::from_secs(1) {
            let now = handle.snapshot();
            display.second(started.elapsed(), &last, &now, last_at.elapsed());
            last = now;
            last_at = Instant::now();
        }
    }
    let end = handle.snapshot();
    display.clear();
    handle.shutdown();
    for proxy in &end {
        eprintln!(
            "pummel proxy: {}: {} connections, {} up, {} down",
            proxy.name,
            proxy.stats.accepted,
            bytes(proxy.stats.bytes_up as f64),
            bytes(proxy.stats.bytes_down as f64)
        );
    }
    if interrupted.load(Ordering::SeqCst) {
        eprintln!("pummel proxy: interrupted; listeners and connections closed");
        Ok(ExitStatus::Interrupted)
    } else {
        Ok(ExitStatus::Pass)
    }
}

/// Reads and checks the config file; every mistake is printed at its file:line:col.
fn read_config(path: &Path) -> Result<pummel_proxy::config::ProxyFile, CliError> {
    let text =
        std::fs::read_to_string(path).map_err(|e| CliError::usage(anyhow!("cannot read {}: {e}", path.display())))?;
    pummel_proxy::config::parse(&text).map_err(|diags| {
        let n = diags.len();
        let diagnostics = diags
            .into_iter()
            .map(|d| {
                let diagnostic = Diagnostic::new(DiagnosticKind::Invalid, d.span, d.message);
                match d.help {
                    Some(help) => diagnostic.with_help(help),
                    None => diagnostic,
                }
            })
            .collect();
        eprint!("{}", Report::new(path.display().to_string(), text, diagnostics));
        CliError::usage(anyhow!("{}: {n} error{}; nothing was started", path.display(), if n == 1 { "" } else { "s" }))
    })
}

/// Prints what changed (proxies up and down, toxics) on stderr.
fn print_notices(notices: &mut UnboundedReceiver<pummel_proxy::Notice>, display: &mut Display) {
    while let Ok(notice) = notices.try_recv() {
        display.clear();
        eprintln!("pummel proxy: {notice}");
    }
}

/// The per-second output: a block redrawn in place on a terminal, plain lines otherwise.
struct Display {
    live: bool,
    quiet: bool,
    /// Lines of the block drawn last, to move back over.
    drawn: usize,
}

impl Display {
    fn none() -> Display {
        Display { live: false, quiet: true, drawn: 0 }
    }

    fn new(plain: bool, quiet: bool) -> Display {
        Display { live: !plain && std::io::stdout().is_terminal(), quiet, drawn: 0 }
    }

    /// Erases the live block (before other text is printed, and at the end).
    fn clear(&mut self) {
        if self.live && self.drawn > 0 {
            let mut out = std::io::stdout().lock();
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
            let _ = out.flush();
            self.drawn = 0;
        }
    }

    fn second(&mut self, elapsed: Duration, before: &[ProxySnapshot], now: &[ProxySnapshot], span: Duration) {
        if self.quiet {
            return;
        }
        let secs = span.as_secs_f64().max(0.001);
        let t = elapsed.as_secs();
        let lines: Vec<String> = now
            .iter()
            .map(|p| {
                let prev = before.iter().find(|b| b.name == p.name).map(|b| b.stats).unwrap_or_default();
                let up = p.stats.bytes_up.saturating_sub(prev.bytes_up) as f64 / secs;
                let down = p.stats.bytes_down.saturating_sub(prev.bytes_down) as f64 / secs;
                let accepted = p.stats.accepted.saturating_sub(prev.accepted);
                let failed = p.stats.upstream_failures.saturating_sub(prev.upstream_failures);
                let state = if p.enabled { "" } else { " DOWN" };
                let toxics = if p.toxics.is_empty() { "-".to_string() } else { p.toxics.join(",") };
                format!(
                    "t={t}s {}{state} up={}/s down={}/s open={} accepted={accepted} upstream_failed={failed} toxics={toxics}",
                    p.name,
                    bytes(up),
                    bytes(down),
                    p.stats.open
                )
            })
            .collect();
        let mut out = std::io::stdout().lock();
        if self.live {
            self.clear_in(&mut out);
            self.drawn = lines.len();
        }
        for line in lines {
            let _ = writeln!(out, "{line}");
        }
        let _ = out.flush();
    }

    fn clear_in(&mut self, out: &mut impl Write) {
        if self.drawn > 0 {
            let _ = write!(out, "\x1b[{}A\x1b[J", self.drawn);
            self.drawn = 0;
        }
    }
}

/// Bytes in decimal units (as toxiproxy's KB): `812B`, `12.3kB`, `4.56MB`, `1.20GB`.
fn bytes(n: f64) -> String {
    if n < 1e3 {
        format!("{n:.0}B")
    } else if n < 1e6 {
        format!("{:.1}kB", n / 1e3)
    } else if n < 1e9 {
        format!("{:.2}MB", n / 1e6)
    } else {
        format!("{:.2}GB", n / 1e9)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bytes_read_well() {
        assert_eq!(bytes(812.0), "812B");
        assert_eq!(bytes(12_345.0), "12.3kB");
        assert_eq!(bytes(4_560_000.0), "4.56MB");
    }
}
