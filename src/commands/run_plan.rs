//! `pummel run PLAN.toml`: loads and validates a plan file, lays the command line over it, and
//! runs it through the same engine path as a quick `pummel run URL`.
//!
//! Flags override the plan (issue 3): `-d` sets the length (with stages: cuts the run short),
//! `-n` the total request count, `-r` replaces the load model with a constant rate, `-c` sets
//! the users (closed model) or the pool bound (open model), `-m`/`-H`/`-b` change the request,
//! `--timeout`, `--connect-timeout`, `--ok-status`, `--arrival`, `--abort-window` and
//! `--no-keepalive` replace the plan's values, `--threshold` and `--abort-when` add rules,
//! `--base-url` replaces `[target].base_url`, and `-e KEY=VALUE` sets a `[variables]` value.
//! Flags that have a default (`--timeout 30s`, `-m GET`, ...) override only when typed, so a plan's
//! `timeout = "2s"` is not replaced by a default the user never asked for.

use std::collections::{BTreeMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use clap::CommandFactory;
use clap::parser::ValueSource;
use pummel_engine::engine::phases;
use pummel_engine::engine::{self, RunControl};
use pummel_engine::flow::template::Template;
use pummel_engine::measure::summary::summarize;
use pummel_engine::plan::{Load, Plan, PlanError};
use pummel_plan::{BodySpec, LoadError, LoadSpec, Options, Phase, PlanSpec};
use pummel_results::summary::PhaseSummary;

use super::run::{self as quick, duration_flag, parse_exprs};
use super::{CliError, ExitStatus, install_interrupt_handler, print_stdout};
use crate::cli::{Cli, RunArgs};
use crate::output::progress::Progress;
use crate::output::summary::{flow_tables, stages_table, summary_table};

/// The plan file `run` was given, if its argument is one: not an `http(s)://` URL, and a
/// path ending in `.toml`. With a URL, the plan-only flags are refused.
pub fn plan_path(args: &RunArgs) -> Result<Option<PathBuf>, CliError> {
    let arg = args.url.as_str();
    let lower = arg.to_ascii_lowercase();
    let is_url = lower.starts_with("http://") || lower.starts_with("https://");
    if !is_url && lower.ends_with(".toml") {
        return Ok(Some(PathBuf::from(arg)));
    }
    if args.base_url.is_some() {
        return Err(CliError::usage(anyhow!("--base-url applies to plan files (PLAN.toml), not to a URL")));
    }
    if !args.vars.is_empty() {
        return Err(CliError::usage(anyhow!("-e/--var applies to plan files (PLAN.toml), not to a URL")));
    }
    Ok(None)
}

/// Loads a plan, printing every error in it; a bad plan is a usage error (exit 2).
pub fn load(path: &Path, options: &Options) -> Result<PlanSpec, CliError> {
    pummel_plan::load_file(path, options).map_err(|e| match e {
        LoadError::Read { .. } => CliError::usage(anyhow!(e)),
        LoadError::Invalid(report) => {
            eprint!("{report}");
            let n = report.diagnostics.len();
            CliError::usage(anyhow!("{}: {n} error{}; nothing was run", path.display(), if n == 1 { "" } else { "s" }))
        }
    })
}

/// Runs `pummel run PLAN.toml`.
pub fn run(args: &RunArgs, path: &Path) -> Result<ExitStatus, CliError> {
    let spec = load_with_flags(args, path, BTreeMap::new())?;
    if let Some(n) = args.dry_run {
        let text = spec.dry_run(n).map_err(|e| CliError::usage(anyhow!(e)))?;
        print_stdout(&text);
        return Ok(ExitStatus::Pass);
    }
    let mut plan = build_plan(&spec, args)?;
    let write_log = super::writes::attach(&spec, &mut plan)?;
    let setup = phase_plan(&spec, args, Phase::Setup)?;
    let mut teardown = phase_plan(&spec, args, Phase::Teardown)?;
    quick::warn_about_limits(&plan, args.display);
    if args.require_target {
        quick::check_target(&plan)?;
    }
    let metrics = super::metrics::Metrics::start(&args.metrics, args.display)?;
    let control = metrics.attach(RunControl::new());
    install_interrupt_handler(&control);
    let names: Vec<&str> = spec.scenarios.iter().filter(|s| s.phase == Phase::Load).map(|s| s.name.as_str()).collect();
    let title = format!("{} ({}): {}", path.display(), names.join(", "), plan.target.url);
    // Over agents: the load runs on them; the setup and teardown run here, once, and what
    // the setup exported is shipped with the load.
    let mut cluster = if super::coordinate::is_coordinator(&args.cluster) {
        let mut files = vec![(args.url.clone(), path.to_path_buf())];
        files.extend(spec.files.iter().cloned());
        files.extend(quick::flag_files(&args.request, &args.connection));
        let how = quick::coordinated(args, format!("run {}", path.display()));
        Some(super::coordinate::Cluster::gather(&how, &plan, &files, &control)?)
    } else {
        None
    };
    let mut progress = Progress::new(args.display, title, plan.planned_duration())?;
    let first_start = Instant::now();
    let mut summaries = Vec::new();
    if let Some(setup) = &setup {
        let (summary, exported) = run_setup(setup, &mut plan, teardown.as_mut(), &control, &mut progress)?;
        summaries.push(summary);
        if let Some(cluster) = cluster.as_mut() {
            cluster.ship_exports(exported);
        }
        // The load follows its setup at once; an agreed start was the setup's.
        plan.start_at = None;
    }
    let load_start = first_start.elapsed();
    let setup_interrupted = control.is_interrupted();
    let phased = setup.is_some() || teardown.is_some() || spec.verify.is_some();
    if phased {
        progress.note(&format!("-- load: {}", scenario_names(&plan)));
    }
    let staged = plan.stage_count() > 1;
    let mut last_rate = None;
    // A scenario's shards may start it in different seconds: it is announced once.
    let mut announced = HashSet::new();
    let mut on_second = |entry: &pummel_results::timeline::TimelineEntry| {
        let level = entry.target_rate.map(|r| r.round());
        if staged && level != last_rate {
            last_rate = level;
            if let Some(rate) = level {
                progress.note(&format!("-- stage: {rate:.0} /s"));
            }
        }
        for name in &entry.started {
            if announced.insert(name.clone()) {
                progress.note(&format!("-- scenario {name} started"));
            }
        }
        progress.second(entry);
    };
    let ran = match cluster.as_mut() {
        Some(cluster) => cluster.run(&plan, &control, None, &mut on_second),
        None => engine::run(&plan, &control, on_second),
    };
    let agents = cluster.map(super::coordinate::Cluster::finish).unwrap_or_default();
    let mut outcome = ran.map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    let mut summary = summarize(&plan, &outcome);
    let lost = super::coordinate::add_agents(&mut summary, &agents, args.display);
    if phased {
        let mut load = phases::summarize_phase("load", &plan, &outcome, load_start);
        if setup_interrupted {
            load = phases::skipped_phase("load", &plan, load_start);
        }
        summaries.push(load);
    }
    if let Some(log) = &write_log {
        // After the load and its faults: the writes read back, before the teardown cleans up.
        let read_back = super::writes::read_back(&spec, args, log, &outcome, &control, &mut progress, first_start);
        summaries.extend(read_back.phase);
        if read_back.interrupted {
            outcome.stop = engine::StopReason::Interrupted;
            summary.partial = true;
            summary.interrupted = true;
        }
        pummel_engine::measure::summary::add_writes(&plan, &mut summary, read_back.writes);
    }
    drop(write_log);
    if let Some(teardown) = &teardown {
        summaries.push(run_teardown(teardown, first_start.elapsed(), &mut progress)?);
    }
    summary.phases = summaries;
    if !args.display.json && !args.display.quiet {
        if let Some(tables) = flow_tables(&summary) {
            print_stdout(&tables);
        }
    }
    let suite = format!("pummel run {}", path.display());
    let files = quick::OutputFiles { results: args.output.as_deref(), junit: args.junit.as_deref(), suite: &suite };
    let status = quick::finish_summary(&plan, &outcome, summary.clone(), args.display, files, summary_table);
    if status.is_ok() && staged && !args.display.json && !args.display.quiet {
        print_stdout(&format!("\nPer stage\n{}", stages_table(&summary)));
    }
    metrics.finish(&control);
    super::coordinate::judge_losses(status, &lost)
}

/// The plan file at `path` with the command line laid over it; `shipped` are the copies of
/// the files it refers to (an agent's).
fn load_with_flags(args: &RunArgs, path: &Path, shipped: BTreeMap<String, PathBuf>) -> Result<PlanSpec, CliError> {
    let mut options = Options { base_url: args.base_url.clone(), shipped, ..Options::default() };
    options.vars = parse_vars(&args.vars)?;
    options.object_size = args.request.object_size.clone();
    options.length_given = args.duration.is_some();
    let mut spec = load(path, &options)?;
    let typed = typed_flags();
    apply_flags(&mut spec, args, &typed)?;
    if let Some(seed) = args.seed {
        spec.seed = Some(seed);
    }
    Ok(spec)
}

/// The plan an agent runs: `args` as its coordinator's user typed them (with its segment),
/// the files they refer to read from their `shipped` copies.
pub fn agent_plan(args: &RunArgs, shipped: BTreeMap<String, PathBuf>) -> Result<Plan, CliError> {
    let Some(path) = plan_path(args)? else {
        return quick::build_plan(args);
    };
    let local = shipped.get(&args.url).cloned().unwrap_or_else(|| path.clone());
    let spec = load_with_flags(args, &local, shipped)?;
    build_plan(&spec, args)
}

/// Runs the setup phase, and hands the values it exported to the load's and teardown's plans;
/// gives them too, for agents.
fn run_setup(
    setup: &Plan,
    load: &mut Plan,
    teardown: Option<&mut Plan>,
    control: &RunControl,
    progress: &mut Progress,
) -> Result<(PhaseSummary, BTreeMap<String, Vec<String>>), CliError> {
    progress.note(&format!("-- setup: {}", scenario_names(setup)));
    let outcome = engine::run(setup, control, |_| {}).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    let exported = phases::exported(setup, &outcome);
    phases::export_into(load, &exported);
    if let Some(teardown) = teardown {
        phases::export_into(teardown, &exported);
    }
    let summary = phases::summarize_phase("setup", setup, &outcome, Duration::ZERO);
    progress.note(&phase_line(&summary));
    Ok((summary, exported))
}

/// Runs the teardown phase, `started` after the first phase began, however the load ended.
fn run_teardown(teardown: &Plan, started: Duration, progress: &mut Progress) -> Result<PhaseSummary, CliError> {
    progress.note(&format!("-- teardown: {}", scenario_names(teardown)));
    let (outcome, timed_out) = phases::run_teardown(teardown).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    let mut phase = phases::summarize_phase("teardown", teardown, &outcome, started);
    if timed_out {
        phase.ended = "timed out".to_string();
    }
    progress.note(&phase_line(&phase));
    Ok(phase)
}

/// The plan of a setup or teardown phase, with the command line's connection settings.
fn phase_plan(spec: &PlanSpec, args: &RunArgs, phase: Phase) -> Result<Option<Plan>, CliError> {
    let threads = args.connection.threads.unwrap_or_else(quick::available_cpus);
    let Some(mut plan) = spec.phase_plan(phase, threads).map_err(|e| CliError::usage(anyhow!(e)))? else {
        return Ok(None);
    };
    connection_flags(&mut plan, args)?;
    if let Some(segment) = quick::segment_flag(args)? {
        // Each segment's setup does its part (its own ids for its own load), as its load does.
        plan.segment = segment;
    }
    if phase == Phase::Setup {
        // An agreed start starts the first phase.
        quick::segment_flags(&mut plan, args)?;
    }
    quick::validate(&plan)?;
    Ok(Some(plan))
}

fn scenario_names(plan: &Plan) -> String {
    plan.scenarios.list.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
}

/// `-- setup: 5000 ok, 0 failed in 2.1s (completed); exported sub_id ×5000`.
pub(super) fn phase_line(phase: &PhaseSummary) -> String {
    let mut line = format!(
        "-- {}: {} ok, {} failed in {:.1}s ({})",
        phase.name, phase.ok, phase.failed, phase.duration_s, phase.ended
    );
    if !phase.errors.is_empty() {
        let kinds: Vec<String> = phase.errors.iter().map(|(kind, n)| format!("{kind} {n}")).collect();
        line.push_str(&format!(" [{}]", kinds.join(", ")));
    }
    if !phase.exported.is_empty() {
        let exported: Vec<String> = phase.exported.iter().map(|(name, n)| format!("{name} ×{n}")).collect();
        line.push_str(&format!("; exported {}", exported.join(", ")));
    }
    line
}

/// `-e KEY=VALUE` flags.
fn parse_vars(vars: &[String]) -> Result<BTreeMap<String, String>, CliError> {
    let mut out = BTreeMap::new();
    for var in vars {
        let (key, value) =
            var.split_once('=').ok_or_else(|| CliError::usage(anyhow!("-e {var:?}: expected KEY=VALUE")))?;
        if !pummel_plan::is_variable_name(key) {
            return Err(CliError::usage(anyhow!("-e {var:?}: {key:?} is not a variable name (letters, digits, _)")));
        }
        out.insert(key.to_string(), value.to_string());
    }
    Ok(out)
}

/// Lays the command line over the plan file's values.
fn apply_flags(spec: &mut PlanSpec, args: &RunArgs, typed: &HashSet<String>) -> Result<(), CliError> {
    if let Some(base_url) = &args.base_url {
        spec.target.base_url = Some(base_url.clone());
    }
    // The command line scales the load; setup and teardown keep the plan's values.
    let one_scenario = spec.scenarios.iter().filter(|s| s.phase == Phase::Load).count() == 1;
    for scenario in spec.scenarios.iter_mut().filter(|s| s.phase == Phase::Load) {
        if let Some(d) = &args.duration {
            scenario.duration = Some(duration_flag("--duration", d)?);
        }
        if let Some(rate) = &args.rate {
            if !one_scenario {
                return Err(CliError::usage(anyhow!("-r replaces one scenario's load; this plan has several")));
            }
            // A constant rate lasts as long as the stages it replaces did, unless -d says otherwise.
            if let (LoadSpec::Stages(stages), None) = (&scenario.load, scenario.duration) {
                scenario.duration = Some(stages.iter().map(|s| s.duration).sum());
            }
            scenario.load = LoadSpec::Rate(quick::parse_rate(rate)?);
        }
        if let (Some(c), LoadSpec::Users(_)) = (args.connections, &scenario.load) {
            scenario.load = LoadSpec::Users(c);
        }
        if typed.contains("arrival") {
            scenario.arrival = quick::arrival(args.arrival);
        }
    }
    let single_request = spec.requests().count() == 1;
    let wants_single = typed.contains("method") || args.request.body.is_some() || args.request.body_file.is_some();
    if wants_single && !single_request {
        return Err(CliError::usage(anyhow!(
            "-m, -b and --body-file change the plan's one request; this plan has {} requests",
            spec.requests().count()
        )));
    }
    let mut headers = Vec::new();
    for header in &args.request.headers {
        let (name, value) = quick::parse_header(header)?;
        let template = Template::compile(&value).map_err(|e| CliError::usage(anyhow!("-H {header:?}: {e}")))?;
        headers.push((name, template));
    }
    if args.request.compressed && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("accept-encoding")) {
        let value = Template::compile(&quick::accept_encoding()).map_err(|e| CliError::internal(anyhow!(e)))?;
        headers.push(("Accept-Encoding".to_string(), value));
    }
    let body = match (&args.request.body, &args.request.body_file) {
        (Some(body), _) => Some(body.clone().into_bytes()),
        (None, Some(file)) => Some(
            std::fs::read(file)
                .map_err(|e| CliError::usage(anyhow!("--body-file: cannot read {}: {e}", file.display())))?,
        ),
        (None, None) => None,
    };
    for request in spec.requests_mut() {
        if typed.contains("method") {
            request.method = args.request.method.clone();
        }
        for (name, value) in &headers {
            request.headers.retain(|(n, _)| !n.eq_ignore_ascii_case(name));
            request.headers.push((name.clone(), value.clone()));
        }
        if let Some(body) = &body {
            request.body = BodySpec::Fixed(body.clone());
        }
    }
    let target = &mut spec.target;
    if typed.contains("timeout") {
        target.timeout = duration_flag("--timeout", &args.connection.timeout)?;
    }
    if typed.contains("connect_timeout") {
        target.connect_timeout = duration_flag("--connect-timeout", &args.connection.connect_timeout)?;
    }
    if args.connection.no_keepalive {
        target.keepalive = false;
    }
    if args.ok_status.is_some() {
        target.ok_status = quick::parse_ok_status(args.ok_status.as_deref())?;
    }
    let thresholds = parse_exprs("--threshold", &args.thresholds)?;
    if spec.verify.is_none() {
        quick::no_write_rules("--threshold", &thresholds)?;
    }
    spec.thresholds.extend(thresholds);
    spec.abort_when.extend(parse_exprs("--abort-when", &args.abort_when)?);
    if typed.contains("abort_window") {
        spec.abort_window = duration_flag("--abort-window", &args.abort_window)?;
    }
    Ok(())
}

/// The engine plan: the spec resolved, plus what only the command line sets.
fn build_plan(spec: &PlanSpec, args: &RunArgs) -> Result<Plan, CliError> {
    let threads = args.connection.threads.unwrap_or_else(quick::available_cpus);
    let mut plan = spec.to_plan(threads).map_err(|e| match e {
        PlanError::Resolve { .. } => CliError::cannot_start(anyhow!(e)),
        other => CliError::usage(anyhow!(other)),
    })?;
    let pool = |load: &mut Load| {
        if let Load::Open(open) = load {
            if let Some(c) = args.connections {
                open.max_connections = c;
            }
            open.max_inflight = args.max_inflight;
        }
    };
    Arc::make_mut(&mut plan.scenarios).list.iter_mut().for_each(|s| pool(&mut s.load));
    if let Some(n) = args.requests {
        plan.stop.requests = Some(n);
    }
    if args.http2 {
        return Err(CliError::usage(anyhow!(
            "--http2 with a plan: set http_version = \"2\" (and streams) in [target]"
        )));
    }
    plan.warmup = duration_flag("--warmup", &args.warmup)?;
    connection_flags(&mut plan, args)?;
    plan.observers = quick::observers(&args.observe, plan.timeout)?;
    quick::segment_flags(&mut plan, args)?;
    plan.request_log = super::request_log::spec(&args.request_log, &spec.target.headers)?;
    super::faults::add_flags(&mut plan.faults, &args.faults, args.steady_state.as_deref())?;
    quick::validate(&plan)?;
    Ok(plan)
}

/// What the command line sets on every phase's plan alike: signing, seed, drain, redirects,
/// source addresses and TLS.
pub(super) fn connection_flags(plan: &mut Plan, args: &RunArgs) -> Result<(), CliError> {
    if let Some(spec) = &args.request.aws_sigv4 {
        plan.auth = Some(quick::sigv4_signer(spec)?);
    }
    if let Some(seed) = args.seed {
        plan.seed = seed;
    }
    plan.drain = quick::drain_flag(&args.connection)?;
    if let Some(n) = args.request.redirects {
        plan.redirects = n;
    }
    plan.source_addrs = super::hold::source_addrs_flag(args.connection.source_addrs.as_deref())?;
    plan.tls = quick::tls_settings(&args.connection);
    Ok(())
}

/// The `run` flags the user typed, by clap id: flags with defaults override the plan only then.
pub fn typed_flags() -> HashSet<String> {
    let Ok(matches) = Cli::command().try_get_matches_from(std::env::args_os()) else { return HashSet::new() };
    let Some(run) = matches.subcommand_matches("run") else { return HashSet::new() };
    run.ids()
        .filter(|id| run.value_source(id.as_str()) == Some(ValueSource::CommandLine))
        .map(|id| id.to_string())
        .collect()
}
