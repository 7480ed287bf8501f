//! The command line's side of writes (plans whose requests have `write = { key = ... }`): the
//! write log's folder, and the read-back after the load.
//!
//! The load logs every write with its outcome to a spill file in a temporary folder of its own
//! (removed at the end, whatever happens). When the load is over, its faults undone and
//! `[verify]`'s `settle` passed, the log is sorted by key on disk and every key read back by a
//! run of its own (the verify phase), whose shards judge each read against the key's writes.
//! A Ctrl-C before the read-back skips it (the writes are then "not verified: interrupted"); one
//! during it ends it, the keys not read counting as unread; a second one exits at once, as
//! always.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::anyhow;
use pummel_engine::engine::phases;
use pummel_engine::engine::{self, RunControl, RunOutcome, StopReason};
use pummel_engine::writes::group::{RUN_BYTES, group};
use pummel_engine::writes::spill::WriteLogSpec;
use pummel_engine::writes::verify;
use pummel_plan::PlanSpec;
use pummel_results::summary::PhaseSummary;
use pummel_results::writes::WritesSummary;

use super::CliError;
use crate::cli::RunArgs;
use crate::output::progress::Progress;

/// The write log of a run: its folder (removed when this is dropped, or by the exit of a second
/// Ctrl-C) and its spill file.
pub struct WriteLog {
    dir: tempfile::TempDir,
    spill: PathBuf,
}

/// Gives `plan` a write log when the plan writes keys; `None` otherwise.
pub fn attach(spec: &PlanSpec, plan: &mut pummel_engine::plan::Plan) -> Result<Option<WriteLog>, CliError> {
    if !spec.has_writes() {
        return Ok(None);
    }
    let dir = tempfile::Builder::new()
        .prefix("pummel-writes-")
        .tempdir()
        .map_err(|e| CliError::cannot_start(anyhow!("cannot create a folder for the write log: {e}")))?;
    let spill = dir.path().join("writes.spill");
    plan.write_log = Some(WriteLogSpec { path: spill.clone() });
    super::remove_on_exit(dir.path());
    Ok(Some(WriteLog { dir, spill }))
}

impl Drop for WriteLog {
    fn drop(&mut self) {
        // The folder goes with `dir`.
        super::forget_temporary(self.dir.path());
    }
}

/// What the read-back left: the writes section, the verify phase's line of the phases (when it
/// ran), and whether a Ctrl-C cut it.
pub struct ReadBack {
    /// The results' writes section.
    pub writes: WritesSummary,
    /// The verify phase, for `summary.phases`.
    pub phase: Option<PhaseSummary>,
    /// A Ctrl-C ended the read-back early.
    pub interrupted: bool,
}

/// Reads back the writes the load logged (`load`), `started` after the first phase began. A
/// read-back that cannot be made (the log cannot be sorted, the phase cannot start) leaves the
/// writes "not verified", with why: the teardown and the results still come.
pub fn read_back(
    spec: &PlanSpec,
    args: &RunArgs,
    log: &WriteLog,
    load: &RunOutcome,
    control: &RunControl,
    progress: &mut Progress,
    first_start: Instant,
) -> ReadBack {
    let mut writes = verify::summary(&load.flows.writes, None);
    match verify_phase(spec, args, log, load, control, progress, first_start) {
        Ok(done) => done,
        Err(why) => {
            if let Some(error) = load.write_log.as_ref().and_then(|totals| totals.error.clone()) {
                writes.log_error = Some(error);
            }
            writes.not_verified = Some(why);
            ReadBack { writes, phase: None, interrupted: false }
        }
    }
}

/// The read-back itself; `Err` says why there was none.
fn verify_phase(
    spec: &PlanSpec,
    args: &RunArgs,
    log: &WriteLog,
    load: &RunOutcome,
    control: &RunControl,
    progress: &mut Progress,
    first_start: Instant,
) -> Result<ReadBack, String> {
    if let Some(error) = load.write_log.as_ref().and_then(|totals| totals.error.as_ref()) {
        return Err(format!("the write log could not be written in full ({error})"));
    }
    let Some(verify_spec) = &spec.verify else {
        return Err("the plan has no [verify]".to_string());
    };
    let interrupted = || "interrupted before the read-back".to_string();
    if load.stop == StopReason::Interrupted || control.is_interrupted() {
        return Err(interrupted());
    }
    progress.note(&format!("-- verify: settling {} after the load", seconds(verify_spec.settle)));
    if !settle(verify_spec.settle, control) {
        return Err(interrupted());
    }
    let grouped = group(&log.spill, log.dir.path(), RUN_BYTES).map_err(|e| {
        let why = format!("the write log {} could not be sorted ({e})", log.spill.display());
        eprintln!("warning: {why}");
        why
    })?;
    let settle_s = verify_spec.settle.as_secs_f64();
    if grouped.keys == 0 {
        let writes = verify::summary(&load.flows.writes, Some((&load.flows.writes, "completed", 0, settle_s, 0.0)));
        return Ok(ReadBack { writes, phase: None, interrupted: false });
    }
    let started = first_start.elapsed();
    let feeder = verify::feeder(&grouped.path, grouped.keys)
        .map_err(|e| format!("the sorted write log could not be read ({e})"))?;
    let threads = args.connection.threads.unwrap_or_else(super::run::available_cpus);
    let mut plan = spec
        .verify_plan(threads, feeder, grouped.keys)
        .map_err(|e| format!("the read-back could not start ({e})"))?
        .ok_or_else(|| "the plan has no [verify]".to_string())?;
    super::run_plan::connection_flags(&mut plan, args).map_err(|e| format!("{:#}", e.error))?;
    progress.note(&format!(
        "-- verify: reading back {} keys (at most {}/s, {} connections)",
        grouped.keys,
        number(verify_spec.rate),
        verify_spec.connections.min(usize::try_from(grouped.keys).unwrap_or(usize::MAX))
    ));
    let outcome = engine::run(&plan, control, |_| {}).map_err(|e| {
        let why = format!("the read-back could not start ({e})");
        eprintln!("warning: {why}");
        why
    })?;
    let interrupted = outcome.stop == StopReason::Interrupted;
    let ended = if interrupted { "interrupted" } else { "completed" };
    let writes = verify::summary(
        &load.flows.writes,
        Some((&outcome.flows.writes, ended, grouped.keys, settle_s, outcome.elapsed.as_secs_f64())),
    );
    let phase = phases::summarize_phase("verify", &plan, &outcome, started);
    progress.note(&super::run_plan::phase_line(&phase));
    Ok(ReadBack { writes, phase: Some(phase), interrupted })
}

/// Waits `settle`; false when a Ctrl-C came first.
fn settle(settle: Duration, control: &RunControl) -> bool {
    let until = Instant::now() + settle;
    while Instant::now() < until {
        if control.is_interrupted() {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20).min(until.saturating_duration_since(Instant::now())));
    }
    !control.is_interrupted()
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value}") }
}

fn seconds(d: Duration) -> String {
    pummel_results::duration::format_duration(d)
}
