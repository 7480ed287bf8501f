//! `pummel hold URL...`: opens many connections at a paced rate and holds them for the run's
//! duration — idle keep-alive clients, slow requests, requests whose answers the target
//! holds, or WebSockets — showing every second how many are wanted, established, opened,
//! failed, and closed by the target. It ends with its own summary (held, opened, failed to open
//! by kind, closed by the target; no request rate), then `run`'s probe, target and threshold
//! sections; the JSON summary, results file and exit codes are those of `run`.
//!
//! Also home of `--source-addrs` parsing, shared with `run` and `find-limit`.

use std::collections::BTreeMap;
use std::net::{IpAddr, UdpSocket};
use std::path::PathBuf;

use anyhow::anyhow;
use clap::{Args, ValueEnum};
use pummel_engine::engine::{self, RunControl};
use pummel_engine::plan::{HoldLoad, HoldMode, Load, Plan, PlanError, Stop, Target, parse_source_addrs};
use pummel_results::timeline::TimelineEntry;

use super::run::{
    OutputFiles, base_plan, duration_flag, finish_with, observers, parse_exprs, parse_rate, validate, warn_about_limits,
};
use super::{CliError, ExitStatus, install_interrupt_handler};
use crate::cli::{ConnectionArgs, DisplayArgs, ObserveArgs, RequestArgs};
use crate::output::progress::Progress;
use crate::output::summary::{HoldFigures, hold_table};

/// Flags of `pummel hold`.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 pass, 1 thresholds failed, 2 bad usage, 3 could not start, 130 interrupted.")]
pub struct HoldArgs {
    /// The URLs to connect to (all http://, or all https://). Connections are spread over the
    /// addresses of all of them; the request (path, Host header) is the first URL's.
    #[arg(required = true, num_args = 1.., value_name = "URL")]
    pub urls: Vec<String>,

    #[command(flatten)]
    pub request: RequestArgs,

    /// Connections to open and hold.
    #[arg(short, long, default_value_t = 1000, value_name = "N")]
    pub connections: usize,
    /// Most connections opened per second (first opens and re-opens), so the target's accept
    /// backlog is not flooded: 1000, 1000/s or 6000/m.
    #[arg(long, default_value = "1000/s", value_name = "CONN/S")]
    pub open_rate: String,
    /// What each connection does while held.
    #[arg(long, value_enum, default_value_t = ModeArg::Idle)]
    pub mode: ModeArg,
    /// slow-request: time between the few bytes of the request head; ws: time between pings.
    #[arg(long, default_value = "10s", value_name = "DURATION")]
    pub drip: String,
    /// Re-open connections the target closed or that failed to open (counted again as opened).
    #[arg(long)]
    pub reopen: bool,
    /// How long to hold the connections.
    #[arg(short, long, default_value = "30s", value_name = "DURATION")]
    pub duration: String,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    #[command(flatten)]
    pub observe: ObserveArgs,
    #[command(flatten)]
    pub metrics: super::metrics::MetricsArgs,
    #[command(flatten)]
    pub cluster: crate::cli::ClusterArgs,
    /// Pass/fail rule, e.g. 'errors.connect_refused==0' (repeatable). Exit 1 when one fails.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,

    /// Write the full results document (JSON) here; also written when interrupted.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write JUnit XML here: a test case per threshold; also written when interrupted (marked).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// `--mode`, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ModeArg {
    /// One request and its response, then an idle keep-alive connection.
    Idle,
    /// The request head a few bytes every --drip, never finished (the slow-client attack).
    SlowRequest,
    /// One request whose answer the target holds, waited for until the run ends.
    Pending,
    /// A WebSocket upgrade, then a ping every --drip.
    Ws,
}

impl From<ModeArg> for HoldMode {
    fn from(mode: ModeArg) -> Self {
        match mode {
            ModeArg::Idle => HoldMode::Idle,
            ModeArg::SlowRequest => HoldMode::SlowRequest,
            ModeArg::Pending => HoldMode::Pending,
            ModeArg::Ws => HoldMode::WebSocket,
        }
    }
}

/// Runs `pummel hold`.
pub fn run(args: HoldArgs) -> Result<ExitStatus, CliError> {
    let plan = build_plan(&args)?;
    let wanted = args.connections;
    let title = format!("hold {} x {} {}", wanted, HoldMode::from(args.mode).name(), plan.target.url);
    if super::coordinate::is_coordinator(&args.cluster) {
        let outputs = (args.output.as_deref(), args.junit.as_deref());
        let how =
            super::coordinate::Coordinated::unsegmented(&args.cluster, args.display, &args.metrics, outputs, title);
        let files = super::run::flag_files(&args.request, &args.connection);
        let mut totals = HoldTotals::default();
        let on_second = |progress: &mut Progress, entry: &TimelineEntry| {
            totals.add(entry);
            progress.hold_second(entry, &totals.line(entry, wanted));
        };
        return super::coordinate::run(how, &plan, &files, on_second, |outcome, summary| {
            hold_table(summary, &hold_figures(outcome, wanted))
        });
    }
    warn_about_limits(&plan, args.display);
    let metrics = super::metrics::Metrics::start(&args.metrics, args.display)?;
    let control = metrics.attach(RunControl::new());
    install_interrupt_handler(&control);
    let mut progress = Progress::new(args.display, title.clone(), plan.planned_duration())?;
    let mut totals = HoldTotals::default();
    let outcome = engine::run(&plan, &control, |entry| {
        totals.add(entry);
        progress.hold_second(entry, &totals.line(entry, wanted));
    })
    .map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    // The JSON summary and the results document are `run`'s; the table is hold's own.
    let figures = hold_figures(&outcome, wanted);
    let suite = format!("pummel {title}");
    let files = OutputFiles { results: args.output.as_deref(), junit: args.junit.as_deref(), suite: &suite };
    let status = finish_with(&plan, &outcome, args.display, files, |summary| hold_table(summary, &figures));
    metrics.finish(&control);
    status
}

/// What hold's own table shows of `outcome`.
fn hold_figures(outcome: &engine::RunOutcome, wanted: usize) -> HoldFigures {
    HoldFigures {
        wanted: wanted as u64,
        peak_held: outcome.timeline.iter().map(|e| e.connections).max().unwrap_or(0),
        opened: outcome.total.connections_opened,
        closed_by_target: outcome.total.closed_by_peer,
    }
}

/// Lowers the flags into a validated plan; every mistake is a usage error (exit 2).
pub fn build_plan(args: &HoldArgs) -> Result<Plan, CliError> {
    let usage = |e: anyhow::Error| CliError::usage(e);
    let open_rate = parse_rate(&args.open_rate)
        .map_err(|_| usage(anyhow!("--open-rate {:?}: use e.g. 1000, 1000/s or 6000/m", args.open_rate)))?;
    let mode = HoldMode::from(args.mode);
    if mode == HoldMode::WebSocket
        && (!args.request.method.eq_ignore_ascii_case("GET")
            || args.request.body.is_some()
            || args.request.body_file.is_some())
    {
        return Err(usage(anyhow!("--mode ws: a WebSocket upgrade is a GET without a body")));
    }
    let load = Load::Hold(HoldLoad {
        connections: args.connections,
        open_rate,
        mode,
        drip: duration_flag("--drip", &args.drip)?,
        reopen: args.reopen,
    });
    let stop = Stop { duration: Some(duration_flag("--duration", &args.duration)?), requests: None };
    let mut plan = base_plan(&args.urls[0], &args.request, &args.connection, load, None, stop)?;
    for url in &args.urls[1..] {
        let more = Target::resolve(url).map_err(|e| match e {
            PlanError::Resolve { .. } => CliError::cannot_start(anyhow!(e)),
            other => CliError::usage(anyhow!(other)),
        })?;
        if more.scheme != plan.target.scheme {
            return Err(usage(anyhow!("{url}: all URLs of a hold must be http://, or all https://")));
        }
        for addr in more.addrs {
            if !plan.target.addrs.contains(&addr) {
                plan.target.addrs.push(addr);
            }
        }
    }
    plan.thresholds = parse_exprs("--threshold", &args.thresholds)?;
    super::run::no_write_rules("--threshold", &plan.thresholds)?;
    plan.observers = observers(&args.observe, plan.timeout)?;
    validate(&plan)?;
    Ok(plan)
}

/// `--source-addrs`: parsed, and each address checked to be one of this machine's (a bind
/// to it succeeds), so a typo is a usage error instead of a run of failed connections.
pub fn source_addrs_flag(text: Option<&str>) -> Result<Vec<IpAddr>, CliError> {
    let Some(text) = text else { return Ok(Vec::new()) };
    let addrs = parse_source_addrs(text).map_err(|e| CliError::usage(anyhow!("--source-addrs: {e}")))?;
    for addr in &addrs {
        UdpSocket::bind((*addr, 0)).map_err(|e| {
            CliError::usage(anyhow!(
                "--source-addrs: {addr} cannot be used as a local address ({e}); is it configured on this machine?"
            ))
        })?;
    }
    Ok(addrs)
}

/// Running totals behind the per-second line.
#[derive(Debug, Default)]
struct HoldTotals {
    opened: u64,
    failed: u64,
    closed: u64,
    ok: u64,
    errors: BTreeMap<String, u64>,
}

impl HoldTotals {
    fn add(&mut self, e: &TimelineEntry) {
        self.opened += e.connections_opened;
        self.failed += e.failed;
        self.closed += e.closed_by_peer;
        self.ok += e.ok;
        for (kind, n) in &e.errors {
            *self.errors.entry(kind.clone()).or_default() += n;
        }
    }

    /// `t=3s held=2000/2000 opened=2000 failed=0 closed_by_target=0 ok=2000 waiting=0`, then
    /// the failures so far by kind.
    fn line(&self, e: &TimelineEntry, wanted: usize) -> String {
        let mut line = format!(
            "t={}s held={}/{wanted} opened={} failed={} closed_by_target={} ok={} waiting={}",
            e.second, e.connections, self.opened, self.failed, self.closed, self.ok, e.in_flight
        );
        for (kind, n) in &self.errors {
            line.push_str(&format!(" {kind}={n}"));
        }
        line
    }
}
