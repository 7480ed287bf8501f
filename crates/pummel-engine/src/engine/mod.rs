//! Runs a validated plan.
//!
//! [`run`] starts one OS thread per shard (`shard.rs`), each with its own single-threaded tokio
//! runtime, connections, slice of every scenario and figures — no locks on the hot path. Every
//! second each shard hands its interval stats to the collector (`collector.rs`) on the calling
//! thread, which merges them into the timeline, evaluates abort rules and tells the caller (the
//! live view). At the end, the shards' per-stage totals are merged into the outcome.

mod collector;
mod control;
pub mod live;
pub mod phases;
pub mod remote;
pub(crate) mod shard;

use std::time::{Duration, SystemTime};

pub use control::RunControl;
use pummel_results::timeline::TimelineEntry;

use crate::measure::stats::Stats;
use crate::plan::Plan;

/// Why the run ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StopReason {
    /// The duration or request count was reached.
    Completed,
    /// The user interrupted it (SIGINT/SIGTERM).
    Interrupted,
    /// An abort rule held; the text says which and with what value.
    Aborted(String),
}

/// Everything a finished (or cut short) run measured.
#[derive(Debug)]
pub struct RunOutcome {
    /// Wall-clock time the run started.
    pub started_at: SystemTime,
    /// Time from the start until sending stopped (warmup included).
    pub elapsed: Duration,
    /// Time over which the statistics were collected (elapsed minus warmup).
    pub measured: Duration,
    /// Why the run ended.
    pub stop: StopReason,
    /// Totals per stage (open model: one per rate stage; closed model: one).
    pub stages: Vec<StageOutcome>,
    /// All stages merged.
    pub total: Stats,
    /// One entry per second.
    pub timeline: Vec<TimelineEntry>,
    /// The first few messages of `other` errors, and of distinct `tls_error`s (`TLS: ...`).
    pub other_errors: Vec<String>,
    /// The generator's own health.
    pub generator: GeneratorHealth,
    /// Each probe's figures over the run.
    pub probes: Vec<crate::observe::ProbeTotals>,
    /// The watched target's figures over the run.
    pub target: Option<pummel_results::observed::TargetTotals>,
    /// The scenarios' tallies: statistics per request name, checks, branches, iterations.
    pub flows: crate::measure::tallies::FlowTallies,
    /// Which side limited the run, if one did (see `measure::limit`).
    pub limit: Option<pummel_results::summary::LimitVerdict>,
    /// What the request log wrote and left out (`--log-requests`).
    pub request_log: Option<crate::request_log::RequestLogTotals>,
    /// What the write log wrote (plans with writes): its spill file, for the read-back.
    pub write_log: Option<crate::writes::spill::WriteLogTotals>,
    /// Each fault's window, in plan order (empty without faults).
    pub faults: Vec<pummel_results::fault::FaultWindow>,
    /// What was done to the faults after the last second of the timeline: those still on when
    /// the run ended, undone then (also in the last entry's `faults`), for the caller to say so.
    pub faults_undone_at_exit: Vec<pummel_results::fault::FaultMark>,
}

/// One stage's totals.
#[derive(Debug)]
pub struct StageOutcome {
    /// Target rate of the stage (open model).
    pub target_rate: Option<f64>,
    /// Time the stage covered (after warmup).
    pub measured: Duration,
    /// Its stats.
    pub stats: Stats,
    /// Set when the run ended during or before this stage.
    pub note: Option<String>,
}

/// How the generator itself fared: the basis for saying whether results understate the target.
#[derive(Debug, Clone, Default)]
pub struct GeneratorHealth {
    /// CPU seconds the pummel process used during the run.
    pub cpu_seconds: f64,
    /// Shards (threads) that ran.
    pub threads: usize,
    /// Schedule lag p99 (open model), milliseconds.
    pub lag_p99_ms: Option<f64>,
    /// The busiest shard thread's median CPU use over the measured seconds, percent of a core.
    pub busiest_thread_percent: Option<f64>,
}

/// Why a run could not start at all.
#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    /// The plan is not consistent.
    #[error(transparent)]
    Plan(#[from] crate::plan::PlanError),
    /// A shard thread or runtime could not be created.
    #[error("cannot start shard threads: {0}")]
    Spawn(#[from] std::io::Error),
    /// The process to watch cannot be found or read.
    #[error("cannot watch the target: {0}")]
    Watch(#[from] pummel_system::watch::WatchError),
    /// The request log's file cannot be created.
    #[error("cannot write the request log {path}: {source}")]
    RequestLog {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The write log's spill file cannot be created.
    #[error("cannot write the write log {path}: {source}")]
    WriteLog {
        /// The file.
        path: String,
        /// Why.
        source: std::io::Error,
    },
    /// The faults' proxies or thread could not start.
    #[error(transparent)]
    Faults(#[from] pummel_faults::StartError),
    /// A run over agents could not go on (an agent was lost, refused or did not answer).
    #[error("{0}")]
    Remote(String),
}

/// Runs `plan` until it completes, the control stops it, or an abort rule holds.
/// `on_second` sees every timeline entry as soon as it is complete.
pub fn run(
    plan: &Plan,
    control: &RunControl,
    on_second: impl FnMut(&TimelineEntry),
) -> Result<RunOutcome, EngineError> {
    plan.validate()?;
    collector::run(plan, control, collector::Source::Local, on_second)
}
