//! `pummel sink`: the built-in target as a standalone server.

use std::net::{SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use pummel_engine::engine::RunControl;
use pummel_results::duration::parse_duration;
use pummel_sink::{Delay, SinkConfig, SinkError, SinkTls};

use super::{CliError, ExitStatus, install_interrupt_handler};
use crate::cli::SinkArgs;

/// Runs `pummel sink` until interrupted or `--duration` passes.
pub fn run(args: SinkArgs) -> Result<ExitStatus, CliError> {
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
        store: args.store,
        drop_every: args.drop_every,
        store_file: args.store_file.clone(),
    };
    let scheme = if config.tls.is_some() { "https" } else { "http" };
    let stats_every = parse_duration(&args.stats).map_err(|e| usage(anyhow!("--stats: {e}")))?;
    let stop_after =
        args.duration.as_deref().map(parse_duration).transpose().map_err(|e| usage(anyhow!("--duration: {e}")))?;
    pummel_engine::limits::raise_open_file_limit().ok();
    let sink = pummel_sink::start(addr, config).map_err(|e| match e {
        // A certificate file that cannot be read or used is a bad flag.
        SinkError::Tls(_) => CliError::usage(anyhow!(e)),
        other => CliError::cannot_start(anyhow!(other)),
    })?;
    if let (Some(path), Some(pem)) = (&args.tls_cert_out, sink.tls_ca_pem()) {
        std::fs::write(path, pem)
            .map_err(|e| CliError::cannot_start(anyhow!("--tls-cert-out: cannot write {}: {e}", path.display())))?;
        eprintln!("pummel sink: CA certificate written to {} (use it with --cacert)", path.display());
    }
    // Tests and scripts wait for this line: it comes once the port is bound and the
    // certificate written.
    eprintln!("pummel sink listening on {scheme}://{}", sink.local_addr());

    let control = RunControl::new();
    install_interrupt_handler(&control);
    let started = Instant::now();
    let mut last_report = Instant::now();
    let mut last_received = 0;
    while !control.is_interrupted() && stop_after.is_none_or(|d| started.elapsed() < d) {
        std::thread::sleep(Duration::from_millis(50));
        if !stats_every.is_zero() && last_report.elapsed() >= stats_every {
            let snapshot = sink.stats().snapshot();
            let secs = last_report.elapsed().as_secs_f64();
            let rate = (snapshot.requests - last_received) as f64 / secs;
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
    if !stats_every.is_zero() {
        let snapshot = stats.snapshot();
        eprintln!("pummel sink: {} requests on {} connections", snapshot.requests, snapshot.connections);
    }
    if scheme == "https" {
        let snapshot = stats.snapshot();
        eprintln!(
            "pummel sink: {} requests, {} TLS handshakes ({} resumed)",
            snapshot.requests, snapshot.tls_handshakes, snapshot.tls_resumed
        );
    }
    let snapshot = stats.snapshot();
    if snapshot.ws_sessions > 0 {
        eprintln!(
            "pummel sink: {} WebSocket sessions, {} messages received, {} echoed",
            snapshot.ws_sessions, snapshot.ws_messages_in, snapshot.ws_messages_out
        );
    }
    if let Some(path) = &args.record {
        let snapshot = stats.snapshot();
        eprintln!("pummel sink recorded {} requests to {}", snapshot.recorded, path.display());
        closed.map_err(|e| CliError::internal(anyhow!(e)))?;
        if snapshot.not_recorded > 0 {
            eprintln!(
                "warning: {} requests were not recorded: the record file's writer fell behind (a slow disk?)",
                snapshot.not_recorded
            );
        }
    }
    Ok(ExitStatus::Pass)
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
