//! Faults in the results: what a run did to its target, when, and how the target fared.
//!
//! A run with `[[fault]]` tables (or `--fault`) injects each fault at its time and undoes it
//! at its end or when the run ends. The timeline carries a [`FaultMark`] in the second each
//! fault started, ended or was undone; the summary carries one [`FaultSummary`] per fault, with
//! its [`Recovery`] judged from the timeline (`recovery.rs`) against the run's [`SteadyState`].

use serde::{Deserialize, Serialize};

/// Something that happened to a fault during one second of the timeline.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultMark {
    /// The fault's name.
    pub name: String,
    /// What happened: `started`, `ended` (its `for` elapsed and it was undone), `undone` (the
    /// run ended first and pummel undid it), or `failed` (it could not be started or undone).
    pub event: FaultEvent,
    /// Seconds from the run's start.
    pub at_s: f64,
    /// What was done, or why it failed (`SIGSTOP sent to 1234`, `proxy db healed`).
    pub detail: String,
}

/// The kinds of [`FaultMark`].
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum FaultEvent {
    /// The fault began.
    Started,
    /// The fault's time was over; what it did was undone.
    Ended,
    /// The run ended (completed, aborted or interrupted) while the fault was on; pummel undid it.
    Undone,
    /// Starting or undoing the fault failed (the detail says why).
    Failed,
}

impl FaultEvent {
    /// The word used in output: `started`, `ended`, `undone`, `failed`.
    pub fn word(self) -> &'static str {
        match self {
            FaultEvent::Started => "started",
            FaultEvent::Ended => "ended",
            FaultEvent::Undone => "undone",
            FaultEvent::Failed => "failed",
        }
    }
}

/// A fault's window in the run, as it happened.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultWindow {
    /// The fault's name.
    pub name: String,
    /// What it does, in words (`proxy db down`, `SIGSTOP port 8080`).
    pub action: String,
    /// Seconds from the run's start at which it began; `None` when the run ended before its
    /// `at` (or it could not be started).
    pub started_s: Option<f64>,
    /// Seconds from the run's start at which it was undone; `None` when it never began.
    pub ended_s: Option<f64>,
    /// True when the run's end, not the fault's `for`, ended it.
    pub undone_at_exit: bool,
    /// Why starting or undoing it failed, if it did.
    pub error: Option<String>,
}

/// One fault in the summary: its window and the target's recovery.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FaultSummary {
    /// When it was on.
    #[serde(flatten)]
    pub window: FaultWindow,
    /// How the target fared; `None` when the fault never began.
    pub recovery: Option<Recovery>,
}

/// How the target fared through one fault, judged per second against the steady state.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Recovery {
    /// Seconds from the fault's start to the start of the first second out of steady state at
    /// or after it; `None` when no second was (the fault went unnoticed).
    pub detect_s: Option<f64>,
    /// Seconds from the fault's end to the start of the first of three consecutive seconds in
    /// steady state; `None` when that never happened before the run ended ("did not recover").
    pub recover_s: Option<f64>,
    /// Requests that failed from the fault's start until the recovery (or the run's end).
    pub failed: u64,
    /// Successful answers short of the baseline rate over the same seconds (0 when the target
    /// kept up).
    pub deficit: u64,
    /// Seconds judged out of steady state over the same seconds.
    pub bad_seconds: u64,
}

impl Recovery {
    /// True when the target came back to its steady state after the fault.
    pub fn recovered(&self) -> bool {
        self.recover_s.is_some()
    }
}

/// What "in steady state" meant for a run's seconds: the defaults of issue 13, with the
/// baseline measured over the seconds before the first fault.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct SteadyState {
    /// Highest error rate of a good second (fraction; 1 % by default).
    pub max_error_rate: f64,
    /// How many times the baseline p99 a good second's p99 may be (2 by default).
    pub p99_factor: f64,
    /// Milliseconds over the baseline p99 a good second's p99 may always be (20 by default),
    /// whatever the factor allows: on a sub-millisecond baseline, twice is a scheduler hiccup.
    #[serde(default)]
    pub p99_slack_ms: f64,
    /// Smallest share of the baseline's successful answers a good second must carry (0.5): a
    /// stalled target fails nothing and has no latency until it answers, so a second it
    /// answered little in is out of steady state too.
    pub min_ok_share: f64,
    /// Seconds before the first fault the baseline was measured over.
    pub baseline_seconds: u64,
    /// Median of the baseline seconds' p99 latency, milliseconds.
    pub baseline_p99_ms: Option<f64>,
    /// Mean successful answers per second over the baseline seconds.
    pub baseline_rate: Option<f64>,
}

impl Default for SteadyState {
    fn default() -> Self {
        SteadyState {
            max_error_rate: 0.01,
            p99_factor: 2.0,
            p99_slack_ms: 20.0,
            min_ok_share: 0.5,
            baseline_seconds: 0,
            baseline_p99_ms: None,
            baseline_rate: None,
        }
    }
}
