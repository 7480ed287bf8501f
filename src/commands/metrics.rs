//! `--metrics-listen ADDR` (run, hold, find-limit): a Prometheus exposition endpoint for the
//! length of the run, from the `pummel-metrics` crate, fed by the engine once a second; and
//! `--out prometheus=URL`, the same series by remote write.
//!
//! The endpoint listens on loopback unless told otherwise (a bare port is a loopback port),
//! says on stderr when it was told another address, and stays up until the run has ended and
//! its summary is out — then `--metrics-linger` longer, so a scraper gets the last values.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::Args;
use pummel_engine::engine::RunControl;
use pummel_metrics::Exporter;

use super::CliError;
use crate::cli::DisplayArgs;

/// The Prometheus flags, shared by `run`, `hold` and `find-limit`.
#[derive(Debug, Args, Default, Clone)]
pub struct MetricsArgs {
    /// Serve Prometheus metrics at http://ADDR/metrics while the run goes on: requests and
    /// failures by kind (and by scenario and request name), in flight, connections, latency and
    /// service time histograms, probes, target watch, generator health. ADDR is HOST:PORT, or
    /// a PORT on 127.0.0.1; listening beyond loopback is said on stderr
    #[arg(long, value_name = "ADDR", help_heading = METRICS_HEADING)]
    pub metrics_listen: Option<String>,
    /// Keep serving the final values this long after the run (give the scraper an interval or
    /// two to read them)
    #[arg(long, value_name = "DURATION", default_value = "0s", requires = "metrics_listen", help_heading = METRICS_HEADING)]
    pub metrics_linger: String,
    /// Send the same series every second by Prometheus remote write: prometheus=URL (plain
    /// http://, e.g. prometheus=http://127.0.0.1:9090/api/v1/write), each with a run_id label;
    /// a bounded queue, retries, and a count of what was dropped
    #[arg(long = "out", value_name = "prometheus=URL", help_heading = METRICS_HEADING)]
    pub out: Option<String>,
}

/// Where the Prometheus flags show in `--help`.
const METRICS_HEADING: &str = "Prometheus";

/// The exporter of a run, if one was asked for.
#[derive(Debug)]
pub struct Metrics {
    exporter: Option<Exporter>,
    linger: Duration,
    quiet: bool,
}

impl Metrics {
    /// Starts the endpoint when `--metrics-listen` was given; a bad address is a usage error
    /// (exit 2), one that cannot be listened on means the run cannot start (exit 3).
    pub fn start(args: &MetricsArgs, display: DisplayArgs) -> Result<Metrics, CliError> {
        let linger = super::run::duration_flag("--metrics-linger", &args.metrics_linger)?;
        let listen = args
            .metrics_listen
            .as_deref()
            .map(|text| parse_addr(text).map_err(|e| CliError::usage(anyhow!("--metrics-listen {text:?}: {e}"))))
            .transpose()?;
        let remote = args.out.as_deref().map(parse_out).transpose().map_err(CliError::usage)?;
        if listen.is_none() && remote.is_none() {
            return Ok(Metrics { exporter: None, linger, quiet: display.quiet });
        }
        let exporter = Exporter::start(listen, remote).map_err(|e| match e {
            pummel_metrics::MetricsError::RemoteWrite(_) => CliError::usage(anyhow!("--out: {e}")),
            _ => CliError::cannot_start(anyhow!("--metrics-listen: {e}")),
        })?;
        if let Some(bound) = exporter.local_addr() {
            if !bound.ip().is_loopback() {
                eprintln!(
                    "note: --metrics-listen {bound} is not a loopback address: anyone who reaches this machine on \
                     that port can read the run's figures"
                );
            }
            if !display.quiet {
                eprintln!("metrics: http://{bound}/metrics");
            }
        }
        if let (Some(url), Some(run_id)) = (remote, exporter.run_id()) {
            if !display.quiet {
                eprintln!("metrics: remote write to {url}, run_id=\"{run_id}\"");
            }
        }
        Ok(Metrics { exporter: Some(exporter), linger, quiet: display.quiet })
    }

    /// `control`, feeding the endpoint when there is one.
    pub fn attach(&self, control: RunControl) -> RunControl {
        match &self.exporter {
            Some(exporter) => control.with_feed(exporter.feed()),
            None => control,
        }
    }

    /// After the run: serves the final values `--metrics-linger` longer (cut short by Ctrl-C),
    /// then stops.
    pub fn finish(self, control: &RunControl) {
        let Some(exporter) = self.exporter else { return };
        if !self.linger.is_zero() && exporter.local_addr().is_some() {
            if !self.quiet {
                eprintln!("metrics: serving the final values for {:?} more", self.linger);
            }
            let until = Instant::now() + self.linger;
            while Instant::now() < until && !control.is_interrupted() {
                std::thread::sleep(until.saturating_duration_since(Instant::now()).min(Duration::from_millis(50)));
            }
        }
        if let Some(totals) = exporter.stop() {
            let error = totals.last_error.map(|e| format!("; last failure: {e}")).unwrap_or_default();
            if totals.dropped > 0 {
                eprintln!(
                    "warning: remote write sent {} seconds ({} samples) and dropped {}{error}",
                    totals.sent, totals.samples, totals.dropped
                );
            } else if !self.quiet {
                eprintln!("metrics: remote write sent {} seconds ({} samples)", totals.sent, totals.samples);
            }
        }
    }
}

/// `--out prometheus=URL` → the URL.
fn parse_out(text: &str) -> Result<&str, anyhow::Error> {
    match text.split_once('=') {
        Some(("prometheus", url)) if !url.is_empty() => Ok(url),
        _ => Err(anyhow!("--out {text:?}: expected prometheus=URL (the only output so far)")),
    }
}

/// `HOST:PORT`, `[v6]:PORT`, `:PORT` or `PORT` (the last two on 127.0.0.1).
fn parse_addr(text: &str) -> Result<SocketAddr, String> {
    let text = text.trim();
    let port_only = text.strip_prefix(':').unwrap_or(text);
    if let Ok(port) = port_only.parse::<u16>() {
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    if let Some(port) = text.strip_prefix("localhost:") {
        let port = port.parse::<u16>().map_err(|_| format!("{port:?} is not a port"))?;
        return Ok(SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), port));
    }
    Err("expected HOST:PORT with an IP address (127.0.0.1:9464, [::1]:9464, 0.0.0.0:9464) or a PORT".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses_default_to_loopback() {
        assert_eq!(parse_addr("9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse_addr(":9464").unwrap(), "127.0.0.1:9464".parse().unwrap());
        assert_eq!(parse_addr("localhost:80").unwrap(), "127.0.0.1:80".parse().unwrap());
        assert_eq!(parse_addr("0.0.0.0:9464").unwrap(), "0.0.0.0:9464".parse().unwrap());
        assert_eq!(parse_addr("[::1]:9464").unwrap(), "[::1]:9464".parse().unwrap());
        assert!(parse_addr("example.com:80").is_err());
        assert!(parse_addr("127.0.0.1:99999").is_err());
        assert!(parse_addr("").is_err());
    }

    #[test]
    fn outs_name_their_kind() {
        assert_eq!(
            parse_out("prometheus=http://127.0.0.1:9090/api/v1/write").unwrap(),
            "http://127.0.0.1:9090/api/v1/write"
        );
        assert!(parse_out("influxdb=http://x").is_err());
        assert!(parse_out("prometheus=").is_err());
        assert!(parse_out("http://x").is_err());
    }
}
