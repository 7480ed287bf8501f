//! Runs in phases: a setup before the load and a teardown after it, each a run of its own.
//!
//! A journey often needs data before the load (5,000 subscriptions to notify, accounts to log
//! into) and cleaning up after it. The setup runs to its end first; the values its iterations
//! extracted and `export`ed become lists that the load's and the teardown's templates read
//! (`{{ sub_ids[iteration] }}`). The teardown runs after the load however it ended (completed,
//! aborted, interrupted), under a fresh control and bounded in time, so that cleaning up never
//! hangs a run. Setup and teardown figures are their own: they never change the load's.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use pummel_results::summary::PhaseSummary;

use super::{EngineError, RunControl, RunOutcome, StopReason};
use crate::measure::summary::round_ms;
use crate::plan::Plan;

/// The longest a teardown without a length of its own runs.
pub const DEFAULT_TEARDOWN_BOUND: Duration = Duration::from_secs(60);

/// Makes a setup's exported values readable by `plan`'s templates, as lists named after the
/// exported variables.
pub fn export_into(plan: &mut Plan, exported: &BTreeMap<String, Vec<String>>) {
    if exported.is_empty() {
        return;
    }
    let scenarios = Arc::make_mut(&mut plan.scenarios);
    scenarios.globals = Arc::new(scenarios.globals.with_lists(exported));
}

/// The lists a setup run exported (every `export` variable, empty when no iteration set it).
pub fn exported(plan: &Plan, outcome: &RunOutcome) -> BTreeMap<String, Vec<String>> {
    let mut lists = BTreeMap::new();
    for name in plan.scenarios.list.iter().flat_map(|s| &s.export) {
        lists.insert(name.clone(), outcome.flows.exports.get(name).cloned().unwrap_or_default());
    }
    lists
}

/// Runs a teardown plan to its end, whatever happened to the load before it: under its own
/// control (the load's may be interrupted) and bounded by its own length, or by
/// [`DEFAULT_TEARDOWN_BOUND`] when it has none. True with the outcome when the bound cut it.
pub fn run_teardown(plan: &Plan) -> Result<(RunOutcome, bool), EngineError> {
    let mut bounded = plan.clone();
    let cut_by_bound = bounded.stop.duration.is_none() && bounded.planned_duration().is_none();
    if cut_by_bound {
        bounded.stop.duration = Some(DEFAULT_TEARDOWN_BOUND);
    }
    let outcome = super::run(&bounded, &RunControl::new(), |_| {})?;
    let timed_out = cut_by_bound && outcome.elapsed >= DEFAULT_TEARDOWN_BOUND;
    Ok((outcome, timed_out))
}

/// What one phase did, for the results; `started` counts from the first phase's start.
pub fn summarize_phase(name: &str, plan: &Plan, outcome: &RunOutcome, started: Duration) -> PhaseSummary {
    let total = &outcome.total;
    let errors: BTreeMap<String, u64> = total.errors.non_zero().map(|(kind, n)| (kind.name().to_string(), n)).collect();
    let failed_checks = plan
        .scenarios
        .checks
        .iter()
        .zip(&outcome.flows.checks)
        .filter(|(_, tally)| tally[1] > 0)
        .map(|(name, tally)| (name.clone(), tally[1]))
        .collect();
    let exported = plan
        .scenarios
        .list
        .iter()
        .flat_map(|s| &s.export)
        .map(|name| (name.clone(), outcome.flows.exports.get(name).map_or(0, |v| v.len() as u64)))
        .collect();
    PhaseSummary {
        name: name.to_string(),
        scenarios: plan.scenarios.list.iter().map(|s| s.name.clone()).collect(),
        started_s: round_ms(started),
        duration_s: round_ms(outcome.elapsed),
        ok: total.ok,
        failed: total.failed,
        errors,
        failed_checks,
        exported,
        ended: ended(&outcome.stop).to_string(),
    }
}

/// A phase that did not run (an earlier one was interrupted).
pub fn skipped_phase(name: &str, plan: &Plan, started: Duration) -> PhaseSummary {
    PhaseSummary {
        name: name.to_string(),
        scenarios: plan.scenarios.list.iter().map(|s| s.name.clone()).collect(),
        started_s: round_ms(started),
        duration_s: 0.0,
        ok: 0,
        failed: 0,
        errors: BTreeMap::new(),
        failed_checks: BTreeMap::new(),
        exported: BTreeMap::new(),
        ended: "skipped".to_string(),
    }
}

fn ended(stop: &StopReason) -> &'static str {
    match stop {
        StopReason::Completed => "completed",
        StopReason::Interrupted => "interrupted",
        StopReason::Aborted(_) => "aborted",
    }
}
