//! `pummel agent --coordinator HOST:PORT`: takes part of a run from a coordinator. It dials
//! out, proves the shared token, receives the command line and files of the plan with its
//! segment, builds the plan exactly as `pummel run` would (from copies of the files), starts at
//! the agreed instant and streams its shards' reports until the run ends or the coordinator
//! says stop. It writes no results of its own: the coordinator's are the run's.

use std::collections::BTreeMap;
use std::path::PathBuf;

use anyhow::anyhow;
use base64::Engine as _;
use clap::Parser;
use pummel_cluster::agent::{Ended, Next, Session};
use pummel_cluster::protocol::Job;
use pummel_cluster::{ClusterError, Token};
use pummel_engine::engine::RunControl;
use pummel_engine::engine::remote;
use pummel_engine::observe::{Observers, WatchTarget};
use pummel_engine::plan::{Plan, Segment};

use super::{CliError, ExitStatus, install_interrupt_handler};
use crate::cli::{AgentArgs, Cli, Command, ConnectionArgs, RequestArgs};

/// Runs `pummel agent`.
pub fn run(args: AgentArgs) -> Result<ExitStatus, CliError> {
    let token = Token::load(args.token_file.as_deref()).map_err(|e| CliError::usage(anyhow!(e)))?;
    let wait = super::run::duration_flag("--connect-wait", &args.connect_wait)?;
    let name = args.name.clone().unwrap_or_else(default_name);
    let control = RunControl::new();
    install_interrupt_handler(&control);
    let say = |line: &str| {
        if !args.quiet {
            eprintln!("pummel agent {name}: {line}");
        }
    };
    if args.watch_only {
        return watch_only(&args, &token, &name, wait, &control);
    }
    let mut session = Session::connect(&args.coordinator, &token, &name, false, wait, &control)
        .map_err(|e| cannot_start(e, &control))?;
    say(&format!("joined the coordinator at {}; waiting for the job", session.coordinator));
    let mut job = session.job(&control).map_err(|e| cannot_start(e, &control))?;
    let files = tempfile::tempdir()
        .map_err(|e| CliError::cannot_start(anyhow!("cannot make a folder for the plan's files: {e}")))?;
    // One job, or one per step of a search, until the coordinator says it is over.
    loop {
        let mut plan = match agent_plan(&job, files.path()) {
            Ok(plan) => plan,
            Err(e) => {
                let reason = format!("{:#}", e.error);
                session.refuse(&reason);
                return Err(e);
            }
        };
        let shards = remote::shard_count(&plan);
        plan.start_at = Some(session.ready(shards).map_err(|e| cannot_start(e, &control))?);
        match job.step_rate {
            Some(rate) => say(&format!("segment {} of a step at {rate} req/s on {shards} threads", job.segment)),
            None => say(&format!("segment {} on {shards} threads; starting at the agreed instant", job.segment)),
        }
        let this_job = control.child();
        let (ran, next) = session.run(&this_job, &control, |outbox| {
            // A request log's lines go to the coordinator, which writes them into its file.
            let log = plan.request_log.as_ref().map(|_| outbox.request_log());
            let ran = remote::run_shards(&plan, &this_job, |report| outbox.report(report), log);
            if let Ok(Some(totals)) = &ran {
                outbox.request_log_totals(totals.clone());
            }
            ran
        });
        ran.map_err(|e| CliError::cannot_start(anyhow!(e)))?;
        match next {
            Next::Job(next) if !control.is_interrupted() => job = next,
            Next::Job(_) | Next::End(Ended::Interrupted) => {
                say("interrupted");
                return Ok(ExitStatus::Interrupted);
            }
            Next::End(Ended::Finished) if control.is_interrupted() => {
                say("interrupted; the coordinator ended the run");
                return Ok(ExitStatus::Interrupted);
            }
            Next::End(Ended::Finished) => {
                say("done: the coordinator ended the run");
                return Ok(ExitStatus::Pass);
            }
            // The coordinator is gone: this agent stopped its part on its own, and says so
            // (exit 1, as a run cut short), so that a supervisor such as a Kubernetes Job sees it.
            Next::End(Ended::Lost(why)) => {
                eprintln!("pummel agent {name}: stopped: lost the coordinator ({why})");
                return Ok(ExitStatus::ThresholdsFailed);
            }
        }
    }
}

/// `--watch-only`: the target is opened first (a wrong PID or port is an error before any
/// dialing), then watched for the coordinator until it says stop.
fn watch_only(
    args: &AgentArgs,
    token: &Token,
    name: &str,
    wait: std::time::Duration,
    control: &RunControl,
) -> Result<ExitStatus, CliError> {
    let target = match (args.watch_pid, args.watch_port) {
        (Some(pid), _) => WatchTarget::Pid(pid),
        (None, Some(port)) => WatchTarget::Port(port),
        (None, None) => return Err(CliError::usage(anyhow!("--watch-only needs --watch-pid or --watch-port"))),
    };
    let observers = Observers { watch: Some(target), ..Observers::default() };
    let watch = observers
        .open_watch()
        .map_err(|e| CliError::cannot_start(anyhow!("cannot watch the target: {e}")))?
        .ok_or_else(|| CliError::cannot_start(anyhow!("nothing to watch")))?;
    if !args.quiet {
        eprintln!(
            "pummel agent {name}: watching {} (PID {}) for the coordinator at {}",
            watch.name(),
            watch.pid(),
            args.coordinator
        );
    }
    let session =
        Session::connect(&args.coordinator, token, name, true, wait, control).map_err(|e| cannot_start(e, control))?;
    session.watch(Box::new(watch), control).map_err(|e| cannot_start(e, control))?;
    Ok(ExitStatus::Pass)
}

/// An agent's failure to join or start: exit 3, or 130 when Ctrl-C caused it.
fn cannot_start(error: ClusterError, control: &RunControl) -> CliError {
    if control.is_interrupted() {
        return CliError { status: ExitStatus::Interrupted, error: anyhow!("interrupted") };
    }
    CliError::cannot_start(anyhow!(error))
}

/// `host-PID`: unique enough to tell agents apart in the results.
fn default_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname").map(|h| h.trim().to_string()).unwrap_or_default();
    let host = if host.is_empty() { "agent".to_string() } else { host };
    format!("{host}-{}", std::process::id())
}

/// The plan of `job`: its files written under `dir`, its command line parsed and built as
/// `pummel run` builds it, for its segment.
fn agent_plan(job: &Job, dir: &std::path::Path) -> Result<Plan, CliError> {
    let mut shipped = BTreeMap::new();
    for (index, file) in job.files.iter().enumerate() {
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(&file.base64)
            .map_err(|e| CliError::usage(anyhow!("shipped file {}: {e}", file.reference)))?;
        let base = std::path::Path::new(&file.reference).file_name().map(|n| n.to_string_lossy().into_owned());
        let path = dir.join(format!("{index}-{}", base.unwrap_or_else(|| "file".into())));
        std::fs::write(&path, bytes)
            .map_err(|e| CliError::cannot_start(anyhow!("cannot write {}: {e}", path.display())))?;
        shipped.insert(file.reference.clone(), path);
    }
    let cli = Cli::try_parse_from(std::iter::once("pummel".to_string()).chain(job.args.iter().cloned()))
        .map_err(|e| CliError::usage(anyhow!("the job's command line: {}", e.to_string().trim())))?;
    let local = |reference: &Option<PathBuf>| {
        reference.as_ref().map(|p| shipped.get(&p.display().to_string()).cloned().unwrap_or_else(|| p.clone()))
    };
    let segment = Segment::parse(&job.segment, job.segment_sequence.as_deref())
        .map_err(|e| CliError::usage(anyhow!("segment {:?}: {e}", job.segment)))?;
    let mut plan = match cli.command {
        Command::Run(mut args) => {
            localize(&mut args.request, &mut args.connection, local);
            args.segment = Some(job.segment.clone());
            args.segment_sequence = job.segment_sequence.clone();
            args.start_at = None;
            args.cluster.agents = None;
            args.cluster.workers = None;
            super::run_plan::agent_plan(&args, shipped.clone())?
        }
        Command::Hold(mut args) => {
            localize(&mut args.request, &mut args.connection, local);
            super::hold::build_plan(&args)?
        }
        Command::FindLimit(mut args) => {
            localize(&mut args.request, &mut args.connection, local);
            let spec = super::find_limit::build_spec(&args)?;
            let rate = job.step_rate.ok_or_else(|| CliError::usage(anyhow!("a find-limit job without a step rate")))?;
            pummel_engine::find_limit::step_plan(&spec, rate)
        }
        _ => return Err(CliError::usage(anyhow!("the job is not `pummel run`, `hold` or `find-limit`"))),
    };
    plan.segment = segment;
    if !job.exports.is_empty() {
        pummel_engine::engine::phases::export_into(&mut plan, &job.exports);
    }
    Ok(plan)
}

/// Points the file flags at the shipped copies.
fn localize(
    request: &mut RequestArgs,
    connection: &mut ConnectionArgs,
    local: impl Fn(&Option<PathBuf>) -> Option<PathBuf>,
) {
    request.body_file = local(&request.body_file);
    connection.cacert = local(&connection.cacert);
    connection.cert = local(&connection.cert);
    connection.key = local(&connection.key);
}
