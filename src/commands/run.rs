//! `pummel run URL`: turns the flags into a validated plan, runs it, shows progress and the
//! summary, writes the results file and picks the exit code.

use std::path::Path;
use std::time::Duration;

use anyhow::{Context, anyhow};
use pummel_engine::dial::{TlsSettings, TlsVersion};
use pummel_engine::engine::{self, RunControl, RunOutcome, StopReason};
use pummel_engine::flow::payload::{parse_size, random_payload};
use pummel_engine::flow::sigv4::{Credentials, SigV4, parse_cli};
use pummel_engine::limits::raise_open_file_limit;
use pummel_engine::measure::{results::document as results_document, summary::summarize};
use pummel_engine::observe::probe::{ProbeExpect, ProbeSpec};
use pummel_engine::observe::{Observers, WatchTarget};
use pummel_engine::plan::{
    Arrival, ClosedLoad, Http2Settings, Load, OpenLoad, Plan, QuickRun, RateStage, RequestSpec, Scheme, Segment,
    StatusSet, Stop, Target,
};
use pummel_results::duration::parse_duration;
use pummel_results::expr::Expr;
use pummel_system::doctor::{DoctorRequest, quick_check_with};

use super::{CliError, ExitStatus, install_interrupt_handler};
use crate::cli::{ArrivalArg, ConnectionArgs, DisplayArgs, ObserveArgs, OnOff, RequestArgs, RunArgs, TlsVersionArg};
use crate::output::progress::Progress;
use crate::output::summary::summary_table;
use pummel_results::summary::Summary;

/// Default closed-model concurrency, as in hey/oha.
const DEFAULT_CONNECTIONS: usize = 50;
/// Default run length when neither -d nor -n is given.
const DEFAULT_DURATION: Duration = Duration::from_secs(10);

/// Runs `pummel run`.
pub fn run(args: RunArgs) -> Result<ExitStatus, CliError> {
    if let Some(path) = super::run_plan::plan_path(&args)? {
        return super::run_plan::run(&args, &path);
    }
    let plan = build_plan(&args)?;
    if super::coordinate::is_coordinator(&args.cluster) {
        let title = format!("run {} {}", args.request.method, plan.target.url);
        let how = coordinated(&args, title);
        let files = flag_files(&args.request, &args.connection);
        return super::coordinate::run(how, &plan, &files, |p, e| p.second(e), |_, s| summary_table(s));
    }
    warn_about_limits(&plan, args.display);
    if args.require_target {
        check_target(&plan)?;
    }
    let metrics = super::metrics::Metrics::start(&args.metrics, args.display)?;
    let control = metrics.attach(RunControl::new());
    install_interrupt_handler(&control);
    let mut title = format!("{} {}", args.request.method, plan.target.url);
    if args.http2 {
        let how = match plan.target.scheme {
            Scheme::Http => "h2c, prior knowledge",
            Scheme::Https => "TLS, ALPN h2",
        };
        title.push_str(&format!(" (HTTP/2, {how}, {} streams per connection)", args.streams));
        if !args.display.quiet && !args.display.json {
            eprintln!("pummel  {title}");
        }
    }
    let mut progress = Progress::new(args.display, title, plan.planned_duration())?;
    let outcome =
        engine::run(&plan, &control, |entry| progress.second(entry)).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    let suite = format!("pummel run {} {}", args.request.method, plan.target.url);
    let files = OutputFiles { results: args.output.as_deref(), junit: args.junit.as_deref(), suite: &suite };
    let status = finish(&plan, &outcome, args.display, files);
    metrics.finish(&control);
    status
}

/// What `run`'s flags say about coordinating agents.
pub fn coordinated(args: &RunArgs, title: String) -> super::coordinate::Coordinated<'_> {
    super::coordinate::Coordinated {
        cluster: &args.cluster,
        display: args.display,
        metrics: &args.metrics,
        output: args.output.as_deref(),
        junit: args.junit.as_deref(),
        title,
        segment_given: args.segment.is_some() || args.segment_sequence.is_some() || args.start_at.is_some(),
    }
}

/// The files the request and connection flags name (`--body-file`, `--cacert`, `--cert`,
/// `--key`), as typed: what a coordinator ships to its agents.
pub fn flag_files(request: &RequestArgs, connection: &ConnectionArgs) -> Vec<(String, std::path::PathBuf)> {
    [&request.body_file, &connection.cacert, &connection.cert, &connection.key]
        .into_iter()
        .flatten()
        .map(|p| (p.display().to_string(), p.clone()))
        .collect()
}

/// The files a run writes when it ends: the results document (`-o`) and JUnit XML (`--junit`),
/// whose one test suite is called `suite` (e.g. `pummel run GET http://127.0.0.1:8090/`).
#[derive(Debug, Clone, Copy)]
pub struct OutputFiles<'a> {
    /// `-o FILE`.
    pub results: Option<&'a Path>,
    /// `--junit FILE`.
    pub junit: Option<&'a Path>,
    /// The JUnit suite's name.
    pub suite: &'a str,
}

/// Prints the summary, writes the results, and maps the outcome to an exit status.
pub fn finish(
    plan: &Plan,
    outcome: &RunOutcome,
    display: DisplayArgs,
    files: OutputFiles<'_>,
) -> Result<ExitStatus, CliError> {
    finish_with(plan, outcome, display, files, summary_table)
}

/// As [`finish`], with `table` rendering the summary for a terminal (`hold` has its own).
pub fn finish_with(
    plan: &Plan,
    outcome: &RunOutcome,
    display: DisplayArgs,
    files: OutputFiles<'_>,
    table: impl FnOnce(&Summary) -> String,
) -> Result<ExitStatus, CliError> {
    finish_summary(plan, outcome, summarize(plan, outcome), display, files, table)
}

/// As [`finish_with`], with the summary already made (a run in phases adds its phases to it).
pub fn finish_summary(
    plan: &Plan,
    outcome: &RunOutcome,
    summary: Summary,
    display: DisplayArgs,
    files: OutputFiles<'_>,
    table: impl FnOnce(&Summary) -> String,
) -> Result<ExitStatus, CliError> {
    super::request_log::report(outcome.request_log.as_ref(), display);
    // A count of `tls_error`s does not say why; the reason usually does (unknown issuer, ...).
    if let Some(first) = outcome.other_errors.iter().find(|m| m.starts_with("TLS: ")) {
        eprintln!("note: first TLS failure: {}", first.trim_start_matches("TLS: "));
    }
    if display.json {
        let json = serde_json::to_string_pretty(&summary).map_err(|e| CliError::internal(e.into()))?;
        super::print_stdout(&format!("{json}\n"));
    } else {
        super::print_stdout(&table(&summary));
    }
    super::faults::report_end(outcome, &summary, display);
    if files.results.is_some() || files.junit.is_some() || crate::output::dashboard::is_open() {
        let doc = results_document(plan, outcome, summary.clone());
        crate::output::dashboard::finish(&doc, &display);
        if let Some(path) = files.results {
            doc.write_atomically(path).map_err(|e| CliError::internal(anyhow!(e)))?;
            if !display.json && !display.quiet {
                super::print_stdout(&format!(
                    "\nresults written to {}{}\n",
                    path.display(),
                    if summary.partial { " (partial)" } else { "" }
                ));
            }
        }
        if let Some(path) = files.junit {
            super::write_junit(&doc, files.suite, path)?;
        }
    }
    Ok(match outcome.stop {
        StopReason::Interrupted => ExitStatus::Interrupted,
        StopReason::Aborted(_) => ExitStatus::ThresholdsFailed,
        StopReason::Completed if !summary.thresholds_pass() => ExitStatus::ThresholdsFailed,
        StopReason::Completed => ExitStatus::Pass,
    })
}

/// Lowers the flags into a validated plan; every mistake is a usage error (exit 2).
pub fn build_plan(args: &RunArgs) -> Result<Plan, CliError> {
    if args.rate.is_none() {
        let typed = super::run_plan::typed_flags();
        for (id, flag) in [("max_inflight", "--max-inflight"), ("arrival", "--arrival")] {
            if typed.contains(id) {
                return Err(CliError::usage(anyhow!("{flag} applies to the open model: add -r RATE")));
            }
        }
    }
    let duration = args.duration.as_deref().map(|d| duration_flag("--duration", d)).transpose()?;
    let stop = Stop {
        duration: match (duration, args.requests) {
            (None, None) => Some(DEFAULT_DURATION),
            (d, _) => d,
        },
        requests: args.requests,
    };
    let load = match &args.rate {
        None => Load::Closed(ClosedLoad { connections: args.connections.unwrap_or(DEFAULT_CONNECTIONS) }),
        Some(rate_text) => {
            let rate = parse_rate(rate_text)?;
            // Without -d, an -n run at a fixed rate lasts as long as the requests take to send.
            let length = stop
                .duration
                .or_else(|| stop.requests.map(|n| Duration::from_secs_f64((n as f64 / rate).ceil() + 1.0)))
                .unwrap_or(DEFAULT_DURATION);
            Load::Open(OpenLoad {
                stages: vec![RateStage::level(rate, length)],
                arrival: arrival(args.arrival),
                // Without -c, sized once the timeout is known: `default_open_pool`.
                max_connections: args.connections.unwrap_or(pummel_engine::plan::MIN_DEFAULT_POOL),
                max_inflight: args.max_inflight,
            })
        }
    };
    let http2 = args.http2.then_some(Http2Settings { streams: args.streams });
    let mut plan = base_plan(&args.url, &args.request, &args.connection, load, http2, stop)?;
    if args.connections.is_none() {
        default_open_pool(&mut plan);
    }
    plan.warmup = duration_flag("--warmup", &args.warmup)?;
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    plan.ok_status = parse_ok_status(args.ok_status.as_deref())?;
    plan.thresholds = parse_exprs("--threshold", &args.thresholds)?;
    no_write_rules("--threshold", &plan.thresholds)?;
    plan.abort_when = parse_exprs("--abort-when", &args.abort_when)?;
    plan.abort_window = duration_flag("--abort-window", &args.abort_window)?;
    plan.observers = observers(&args.observe, plan.timeout)?;
    segment_flags(&mut plan, args)?;
    let headers = args.request.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    plan.request_log = super::request_log::spec(&args.request_log, &headers)?;
    super::faults::add_flags(&mut plan.faults, &args.faults, args.steady_state.as_deref())?;
    validate(&plan)?;
    Ok(plan)
}

/// The parts of a plan that `run`, `find-limit` and `hold` build the same way: the target, the
/// one-scenario plan of the request under `load`, connection settings; no thresholds, abort
/// rules or warmup.
pub fn base_plan(
    url: &str,
    request: &RequestArgs,
    connection: &ConnectionArgs,
    load: Load,
    http2: Option<Http2Settings>,
    stop: Stop,
) -> Result<Plan, CliError> {
    let target = Target::resolve(url).map_err(|e| match e {
        pummel_engine::plan::PlanError::Resolve { .. } => CliError::cannot_start(anyhow!(e)),
        other => CliError::usage(anyhow!(other)),
    })?;
    let mut headers = request.headers.iter().map(|h| parse_header(h)).collect::<Result<Vec<_>, _>>()?;
    if request.compressed && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding")) {
        headers.push(("Accept-Encoding".to_string(), accept_encoding()));
    }
    let body = match (&request.body, &request.body_file) {
        (Some(text), _) => text.clone().into_bytes(),
        (None, Some(path)) => std::fs::read(path)
            .with_context(|| format!("--body-file: cannot read {}", path.display()))
            .map_err(CliError::usage)?,
        (None, None) => match &request.object_size {
            Some(size) => {
                let size = parse_size(size).map_err(|e| CliError::usage(anyhow!("--object-size: {e}")))?;
                random_payload(size).bytes.to_vec()
            }
            None => Vec::new(),
        },
    };
    let auth = request.aws_sigv4.as_deref().map(sigv4_signer).transpose()?;
    let keepalive = !connection.no_keepalive;
    let quick = QuickRun { request: RequestSpec { method: request.method.clone(), headers, body }, load, http2 };
    let scenarios =
        quick.scenarios(&target, keepalive, auth.is_some(), stop.duration).map_err(|e| CliError::usage(anyhow!(e)))?;
    let mut plan = Plan::new(target, scenarios, stop);
    plan.threads = connection.threads.unwrap_or_else(available_cpus);
    plan.timeout = duration_flag("--timeout", &connection.timeout)?;
    plan.connect_timeout = duration_flag("--connect-timeout", &connection.connect_timeout)?;
    plan.drain = drain_flag(connection)?;
    plan.keepalive = keepalive;
    plan.redirects = request.redirects.unwrap_or(0);
    plan.cookies = request.cookies;
    plan.source_addrs = super::hold::source_addrs_flag(connection.source_addrs.as_deref())?;
    plan.tls = tls_settings(connection);
    plan.auth = auth;
    Ok(plan)
}

/// The `Accept-Encoding` value of `--compressed`: every coding pummel decodes.
pub fn accept_encoding() -> String {
    pummel_engine::inspect::encoding::ALL.join(", ")
}

/// `--drain`, when given.
/// `--segment` (with `--segment-sequence`) and `--start-at WHEN`, laid over `plan`.
pub fn segment_flags(plan: &mut Plan, args: &RunArgs) -> Result<(), CliError> {
    if let Some(segment) = segment_flag(args)? {
        plan.segment = segment;
    }
    if let Some(text) = &args.start_at {
        plan.start_at = Some(parse_instant(text).map_err(|e| CliError::usage(anyhow!(e)))?);
    }
    Ok(())
}

/// `--segment i/N` or `--segment FROM:TO` with `--segment-sequence`, when given; a usage
/// error (exit 2) that quotes them when they are not a segment of a sequence.
pub fn segment_flag(args: &RunArgs) -> Result<Option<Segment>, CliError> {
    let sequence = args.segment_sequence.as_deref();
    let Some(text) = args.segment.as_deref() else {
        return match sequence {
            Some(_) => Err(CliError::usage(anyhow!(
                "--segment-sequence needs --segment (the segment of the sequence this process runs)"
            ))),
            None => Ok(None),
        };
    };
    Segment::parse(text, sequence).map(Some).map_err(|e| {
        let with = sequence.map(|s| format!(" with --segment-sequence {s:?}")).unwrap_or_default();
        CliError::usage(anyhow!("--segment {text:?}{with}: {e}"))
    })
}

/// An instant given as RFC 3339 (`2026-12-06T20:00:00Z`) or as unix milliseconds.
fn parse_instant(text: &str) -> Result<std::time::SystemTime, String> {
    let text = text.trim();
    if let Ok(ms) = text.parse::<u64>() {
        return Ok(std::time::UNIX_EPOCH + Duration::from_millis(ms));
    }
    humantime::parse_rfc3339_weak(text)
        .map_err(|e| format!("--start-at {text:?}: {e} (expected RFC 3339, e.g. 2026-12-06T20:00:00Z, or unix ms)"))
}

pub fn drain_flag(connection: &ConnectionArgs) -> Result<Option<Duration>, CliError> {
    connection.drain.as_deref().map(|d| duration_flag("--drain", d)).transpose()
}

/// `--aws-sigv4 REGION:SERVICE` with the keys from the standard AWS environment variables.
pub fn sigv4_signer(spec: &str) -> Result<SigV4, CliError> {
    let usage = |e: pummel_engine::flow::sigv4::SigV4Error| CliError::usage(anyhow!("--aws-sigv4: {e}"));
    let (region, service) = parse_cli(spec).map_err(usage)?;
    let credentials = Credentials::from_env("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY").map_err(usage)?;
    Ok(SigV4 { region, service, credentials })
}

/// The TLS flags as plan settings (checked, files read, by `validate`).
pub fn tls_settings(connection: &ConnectionArgs) -> TlsSettings {
    TlsSettings {
        insecure: connection.insecure,
        ca_cert: connection.cacert.clone(),
        client_cert: connection.cert.clone(),
        client_key: connection.key.clone(),
        server_name: connection.sni.clone(),
        version: connection.tls_version.map(|v| match v {
            TlsVersionArg::Tls12 => TlsVersion::Tls12,
            TlsVersionArg::Tls13 => TlsVersion::Tls13,
        }),
        resume: connection.tls_resume == OnOff::On,
    }
}

/// The probes and target watch asked for. A probe waits at most its interval or the request
/// timeout, whichever is shorter, so a stalled target shows as one NOK a second.
pub fn observers(args: &ObserveArgs, request_timeout: Duration) -> Result<Observers, CliError> {
    let every = duration_flag("--probe-every", &args.probe_every)?;
    if every < Duration::from_millis(100) {
        return Err(CliError::usage(anyhow!("--probe-every must be at least 100ms")));
    }
    let expect = args
        .probe_expect
        .as_deref()
        .map(|text| text.parse::<ProbeExpect>().map_err(|e| CliError::usage(anyhow!("--probe-expect: {e}"))))
        .transpose()?;
    let timeout = every.min(request_timeout);
    let mut probes = Vec::new();
    for url in &args.probes {
        if url.contains('#') {
            return Err(CliError::usage(anyhow!("--probe {url:?}: use --probe-json for URL#$.path")));
        }
        probes
            .push(ProbeSpec::new(url, expect.clone(), timeout).map_err(|e| CliError::usage(anyhow!("--probe: {e}")))?);
    }
    for url in &args.probe_json {
        if !url.contains('#') {
            return Err(CliError::usage(anyhow!("--probe-json {url:?}: expected URL#$.path.to.number")));
        }
        let spec =
            ProbeSpec::new(url, expect.clone(), timeout).map_err(|e| CliError::usage(anyhow!("--probe-json: {e}")))?;
        probes.push(spec);
    }
    for url in &args.probe_metric {
        let spec = ProbeSpec::for_metric(url, expect.clone(), timeout)
            .map_err(|e| CliError::usage(anyhow!("--probe-metric: {e}")))?;
        probes.push(spec);
    }
    let watch = match (args.watch_pid, args.watch_port) {
        (Some(pid), _) => Some(WatchTarget::Pid(pid)),
        (None, Some(port)) => Some(WatchTarget::Port(port)),
        (None, None) => None,
    };
    Ok(Observers { probes, probe_every: every, watch })
}

/// Checks the plan as the engine will; a failure is a usage error.
pub fn validate(plan: &Plan) -> Result<(), CliError> {
    plan.validate().map_err(|e| CliError::usage(anyhow!(e)))
}

/// Parses a duration flag; a mistake names the flag.
pub fn duration_flag(name: &str, text: &str) -> Result<Duration, CliError> {
    parse_duration(text).map_err(|e| CliError::usage(anyhow!("{name}: {e}")))
}

/// Parses repeated threshold-grammar flags; a mistake names the flag and points at the error.
pub fn parse_exprs(flag: &str, exprs: &[String]) -> Result<Vec<Expr>, CliError> {
    exprs.iter().map(|e| Expr::parse(e).map_err(|err| CliError::usage(anyhow!("{flag}: {err}")))).collect()
}

/// Refuses a rule on the read-back of writes (`lost==0`) where there is none: a quick run, or
/// a plan without writes and `[verify]`.
pub fn no_write_rules(flag: &str, exprs: &[Expr]) -> Result<(), CliError> {
    match exprs.iter().find(|e| e.metric.is_of_writes()) {
        Some(e) => Err(CliError::usage(anyhow!(
            "{flag} {}: {} reads the read-back of a plan's writes (write = {{ key = ... }} and [verify])",
            e.text,
            e.metric
        ))),
        None => Ok(()),
    }
}

/// `--ok-status`, or the default set.
pub fn parse_ok_status(text: Option<&str>) -> Result<StatusSet, CliError> {
    match text {
        Some(text) => text.parse::<StatusSet>().map_err(|e| CliError::usage(anyhow!("--ok-status: {e}"))),
        None => Ok(StatusSet::default()),
    }
}

/// The engine's arrival process for the flag.
pub fn arrival(arg: ArrivalArg) -> Arrival {
    match arg {
        ArrivalArg::Uniform => Arrival::Uniform,
        ArrivalArg::Poisson => Arrival::Poisson,
    }
}

/// `Name: value` → (name, value).
pub fn parse_header(text: &str) -> Result<(String, String), CliError> {
    let (name, value) =
        text.split_once(':').ok_or_else(|| CliError::usage(anyhow!("--header {text:?}: expected 'Name: value'")))?;
    let name = name.trim();
    if name.is_empty() {
        return Err(CliError::usage(anyhow!("--header {text:?}: the header name is empty")));
    }
    Ok((name.to_string(), value.trim().to_string()))
}

/// `2000`, `2000/s`, `120/m` → requests per second.
pub fn parse_rate(text: &str) -> Result<f64, CliError> {
    let (number, per) = match text.split_once('/') {
        Some((n, "s")) => (n, 1.0),
        Some((n, "m")) => (n, 60.0),
        Some(_) => return Err(CliError::usage(anyhow!("--rate {text:?}: use e.g. 2000, 2000/s or 120/m"))),
        None => (text, 1.0),
    };
    match number.trim().parse::<f64>() {
        Ok(r) if r.is_finite() && r > 0.0 => Ok(r / per),
        _ => Err(CliError::usage(anyhow!("--rate {text:?}: expected a positive number of requests per second"))),
    }
}

/// Sizes the pool of an open-model run that no `-c` bounds: `plan::default_pool` of its peak
/// rate, its timeout and the open files pummel may use (its hard limit, which it raises to).
fn default_open_pool(plan: &mut Plan) {
    let open_files = rlimit::getrlimit(rlimit::Resource::NOFILE).map(|(_, hard)| hard).unwrap_or(1024);
    let timeout = plan.timeout;
    for scenario in &mut std::sync::Arc::make_mut(&mut plan.scenarios).list {
        if let Load::Open(open) = &mut scenario.load {
            open.max_connections = pummel_engine::plan::default_pool(open.peak_rate(), timeout, open_files);
        }
    }
}

/// The CPUs this process may run on (affinity and cgroup aware, via the standard library).
pub fn available_cpus() -> usize {
    std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1)
}

/// Raises the open-file limit and says so when the requested connections cannot fit.
pub fn warn_about_limits(plan: &Plan, display: DisplayArgs) {
    let wanted = plan.wanted_connections();
    match raise_open_file_limit() {
        Ok(limits) => {
            if limits.soft > limits.soft_before && !display.quiet && wanted + 64 > limits.soft_before {
                eprintln!("note: raised the open-file limit from {} to {}", limits.soft_before, limits.soft);
            }
        }
        Err(e) => eprintln!("warning: could not read or raise the open-file limit: {e}"),
    }
    // Open files, ephemeral ports per address pair, backlog: one line when a limit will bite.
    let request = DoctorRequest {
        connections: Some(wanted),
        pid: None,
        address_pairs: (plan.source_addrs.len().max(1) * plan.target.addrs.len().max(1)) as u64,
    };
    if let Some(line) = quick_check_with(&request) {
        eprintln!("warning: {line} (details: pummel doctor --connections {wanted})");
    }
}

/// `--require-target`: one connection attempt before the run; exit 3 when nothing answers.
pub fn check_target(plan: &Plan) -> Result<(), CliError> {
    let addr = plan.target.addrs[0];
    std::net::TcpStream::connect_timeout(&addr, plan.connect_timeout)
        .map(|_| ())
        .map_err(|e| CliError::cannot_start(anyhow!("nothing answers at {addr} ({}): {e}", plan.target.url)))
}
