//! `pummel sink`: the built-in target as a standalone server, in one process or in several
//! that share the port (`--processes N`, see `sink_processes`).

use std::net::{SocketAddr, ToSocketAddrs};
use std::path::Path;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use pummel_engine::engine::RunControl;
use pummel_results::duration::parse_duration;
use pummel_sink::{Delay, SinkConfig, SinkError, SinkHandle, SinkTls, StatsSnapshot};

use super::sink_processes::{self, ProcessGroup};
use super::{CliError, ExitStatus, install_interrupt_handler};
use crate::cli::SinkArgs;

/// The sink's flags, parsed and checked.
pub(super) struct Settings {
    /// Where to listen.
    pub addr: SocketAddr,
    /// How to answer.
    pub config: SinkConfig,
    /// How often to print the counters (zero: never).
    pub stats_every: Duration,
    /// Stop by itself after this long.
    pub stop_after: Option<Duration>,
}

impl Settings {
    /// Parses the flags; a bad one is a usage error.
    fn from_args(args: &SinkArgs) -> Result<Settings, CliError> {
        let usage = |e: anyhow::Error| CliError::usage(e);
        let addr: SocketAddr = args
            .listen
            .to_socket_addrs()
            .map_err(|e| usage(anyhow!("--listen {:?}: {e}", args.listen)))?
            .next()
            .ok_or_else(|| usage(anyhow!("--listen {:?}: no address", args.listen)))?;
        let config = SinkConfig {
            delay: args.delay.parse::<Delay>().map_err(|e| usage(anyhow!("--delay: {e}")))?,
            error_rate: parse_fraction(&args.error_rate).map_err(|e| usage(anyhow!("--error-rate: {e}")))?,
            status: args.status,
            body_size: args.body_size,
            close: args.close,
            idle_timeout: parse_duration(&args.idle_timeout).map_err(|e| usage(anyhow!("--idle-timeout: {e}")))?,
            capacity: args.capacity,
            threads: args.threads,
            record: args.record.clone(),
            tls: match (&args.cert, &args.key) {
                (Some(cert), Some(key)) => Some(SinkTls::Files { cert: cert.clone(), key: key.clone() }),
                _ if args.tls => Some(SinkTls::SelfSigned),
                _ => None,
            },
            ws_delay: parse_duration(&args.ws_delay).map_err(|e| usage(anyhow!("--ws-delay: {e}")))?,
            echo: args.echo,
            reuse_port: args.processes > 1 || args.process_index.is_some(),
            store: args.store,
            drop_every: args.drop_every,
            store_file: args.store_file.clone(),
        };
        let stats_every = parse_duration(&args.stats).map_err(|e| usage(anyhow!("--stats: {e}")))?;
        let stop_after =
            args.duration.as_deref().map(parse_duration).transpose().map_err(|e| usage(anyhow!("--duration: {e}")))?;
        Ok(Settings { addr, config, stats_every, stop_after })
    }
}

/// Runs `pummel sink` until interrupted or `--duration` passes.
pub fn run(args: SinkArgs) -> Result<ExitStatus, CliError> {
    let settings = Settings::from_args(&args)?;
    if let Some(index) = args.process_index {
        return sink_processes::serve_as_member(settings, index);
    }
    if args.processes > 1 {
        sink_processes::check_flags(&args)?;
    }
    let scheme = if settings.config.tls.is_some() { "https" } else { "http" };
    pummel_engine::limits::raise_open_file_limit().ok();
    let sink = start(settings.addr, settings.config)?;
    if let (Some(path), Some(pem)) = (&args.tls_cert_out, sink.tls_ca_pem()) {
        std::fs::write(path, pem)
            .map_err(|e| CliError::cannot_start(anyhow!("--tls-cert-out: cannot write {}: {e}", path.display())))?;
        eprintln!("pummel sink: CA certificate written to {} (use it with --cacert)", path.display());
    }
    // The other processes bind the port this one got (also when --listen asked for port 0).
    let mut group = if args.processes > 1 {
        let group = ProcessGroup::start(&args, sink.local_addr())?;
        let pids: Vec<String> = group.pids().iter().map(u32::to_string).collect();
        eprintln!(
            "pummel sink: {} processes share the port (this one, {}, and pids {})",
            args.processes,
            std::process::id(),
            pids.join(" ")
        );
        Some(group)
    } else {
        None
    };
    // Tests and scripts wait for this line: it comes once the port is bound (by every
    // process) and the certificate written.
    eprintln!("pummel sink listening on {scheme}://{}", sink.local_addr());

    let control = RunControl::new();
    install_interrupt_handler(&control);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut last_received = 0;
    while !control.is_interrupted() && settings.stop_after.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if let Some(group) = group.as_mut() {
            group.poll();
        }
        if !settings.stats_every.is_zero() && last_report.elapsed() >= settings.stats_every {
            let snapshot = current_total(&sink, group.as_ref());
            let secs = last_report.elapsed().as_secs_f64();
            let rate = snapshot.requests.saturating_sub(last_received) as f64 / secs;
            let tls = if scheme == "https" {
                format!(" TLS handshakes {} resumed {}", snapshot.tls_handshakes, snapshot.tls_resumed)
            } else {
                String::new()
            };
            let ws = if snapshot.ws_sessions > 0 {
                format!(
                    " WebSocket sessions {} open {} messages in {} out {}",
                    snapshot.ws_sessions, snapshot.ws_open, snapshot.ws_messages_in, snapshot.ws_messages_out
                )
            } else {
                String::new()
            };
            let store = sink
                .store_counts()
                .map(|c| format!(" store keys {} writes {} dropped {}", c.keys, c.writes, c.dropped))
                .unwrap_or_default();
            println!(
                "Received {} Rate {:.0} r/s open connections {}{tls}{ws}{store}",
                snapshot.requests, rate, snapshot.open_connections
            );
            last_received = snapshot.requests;
            last_report = Instant::now();
        }
    }
    let stats = sink.stats();
    if let Some(c) = sink.store_counts() {
        // Tests compare a read-back's lost writes with this line's dropped count.
        eprintln!(
            "pummel sink: store holds {} keys; {} writes received, {} dropped{}",
            c.keys,
            c.writes,
            c.dropped,
            args.drop_every.map(|n| format!(" (--drop-every {n})")).unwrap_or_default()
        );
    }
    // Flushes and closes the record file, if any, before the summary below is printed.
    let closed = sink.close();
    let own = stats.snapshot();
    let mut snapshot = own;
    if let Some(group) = group.take() {
        let members = group.stop();
        for member in &members {
            snapshot.add(member);
        }
        let per_process: Vec<String> = std::iter::once(&own).chain(&members).map(|s| s.requests.to_string()).collect();
        eprintln!(
            "pummel sink: {} requests on {} connections over {} processes (requests per process: {})",
            snapshot.requests,
            snapshot.connections,
            per_process.len(),
            per_process.join(", ")
        );
        if let Some(path) = &args.record {
            sink_processes::gather_records(path, members.len())
                .map_err(|e| CliError::internal(anyhow!("--record {}: {e}", path.display())))?;
        }
    } else if !settings.stats_every.is_zero() {
        eprintln!("pummel sink: {} requests on {} connections", snapshot.requests, snapshot.connections);
    }
    print_summary(&snapshot, scheme, args.record.as_deref());
    if args.record.is_some() {
        closed.map_err(|e| CliError::internal(anyhow!(e)))?;
    }
    Ok(ExitStatus::Pass)
}

/// Starts the sink; a certificate that cannot be used is a bad flag, anything else (the port
/// is taken) means it could not start.
pub(super) fn start(addr: SocketAddr, config: SinkConfig) -> Result<SinkHandle, CliError> {
    pummel_sink::start(addr, config).map_err(|e| match e {
        SinkError::Tls(_) => CliError::usage(anyhow!(e)),
        other => CliError::cannot_start(anyhow!(other)),
    })
}

/// This process's counters plus the latest ones of the others.
fn current_total(sink: &SinkHandle, group: Option<&ProcessGroup>) -> StatsSnapshot {
    let mut total = sink.stats().snapshot();
    if let Some(group) = group {
        total.add(&group.latest());
    }
    total
}

/// The closing lines: TLS handshakes, WebSocket sessions, what was recorded.
fn print_summary(snapshot: &StatsSnapshot, scheme: &str, record: Option<&Path>) {
    if scheme == "https" {
        eprintln!(
            "pummel sink: {} requests, {} TLS handshakes ({} resumed)",
            snapshot.requests, snapshot.tls_handshakes, snapshot.tls_resumed
        );
    }
    if snapshot.ws_sessions > 0 {
        eprintln!(
            "pummel sink: {} WebSocket sessions, {} messages received, {} echoed",
            snapshot.ws_sessions, snapshot.ws_messages_in, snapshot.ws_messages_out
        );
    }
    if let Some(path) = record {
        eprintln!("pummel sink recorded {} requests to {}", snapshot.recorded, path.display());
        if snapshot.not_recorded > 0 {
            eprintln!(
                "warning: {} requests were not recorded: the record file's writer fell behind (a slow disk?)",
                snapshot.not_recorded
            );
        }
    }
}

/// `1%`, `0.5%` or `0.01` → a fraction in 0..=1.
fn parse_fraction(text: &str) -> anyhow::Result<f64> {
    let value = match text.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => text.trim().parse::<f64>(),
    }
    .map_err(|_| anyhow!("{text:?} is not a percentage (e.g. 1% or 0.01)"))?;
    if (0.0..=1.0).contains(&value) { Ok(value) } else { Err(anyhow!("{text:?} is outside 0%..100%")) }
}
