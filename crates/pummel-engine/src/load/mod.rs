//! When work starts: one module per load model, each starting the users of a scenario on a
//! shard and leaving what they do to `crate::exec`.
//!
//! - [`closed`]: users that loop over their flow, all at once, along a ramp-up, or in stages
//!   of users (users join as the count rises and leave as it falls);
//! - [`open`]: arrivals on a schedule ([`arrivals`]), each an iteration by a user of a pool,
//!   whether or not earlier ones came back;
//! - [`hold`]: connections opened at a paced rate and held until the run ends;
//! - [`stripe`]: which of the plan's arrivals, users and connections a shard takes;
//! - [`timer`]: the microsecond timer the open model's arrivals leave on.
//!
//! Every scenario's users and rate are spread over the shards, so a plan of several scenarios
//! uses every thread; a new load model is one more file here.

pub mod arrivals;
pub mod closed;
pub mod hold;
pub mod open;
pub mod stripe;
pub mod timer;

use std::cell::Cell;
use std::rc::Rc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::Notify;

use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::engine::shard::{DISPATCH_SLACK, Shard};
use crate::exec::ScenarioRun;
use crate::plan::Load;

/// Runs every scenario of the plan on this shard until each ends, each from its own start
/// (`start`, or the end of the scenario it comes `after`).
pub(crate) async fn run(shard: Rc<Shard>) {
    let count = shard.plan.scenarios.list.len();
    let mut running = JoinSet::new();
    for index in 0..count {
        match ScenarioRun::new(&shard, index) {
            Ok(run) => {
                running.spawn_local(run_in_turn(shard.clone(), Rc::new(run)));
            }
            Err(e) => {
                let name = &shard.plan.scenarios.list[index].name;
                shard.meter.note_error(format!("scenario {name}: {e}"));
                shard.ends.finish(index);
            }
        }
    }
    while running.join_next().await.is_some() {}
}

/// Which scenarios have ended on every shard: a scenario `after` another starts when that one
/// ended everywhere (its users may all be on one shard). Shared by the shards' threads.
pub(crate) struct ScenarioEnds {
    /// Per scenario, the shards on which it has not ended yet.
    running: Vec<AtomicUsize>,
    ended: Notify,
}

impl ScenarioEnds {
    /// `scenarios` scenarios, each running on `shards` shards.
    pub fn new(scenarios: usize, shards: usize) -> ScenarioEnds {
        ScenarioEnds { running: (0..scenarios).map(|_| AtomicUsize::new(shards)).collect(), ended: Notify::new() }
    }

    /// Scenario `index` ended on one more shard.
    pub fn finish(&self, index: usize) {
        if self.running[index].fetch_sub(1, Ordering::AcqRel) == 1 {
            self.ended.notify_waiters();
        }
    }

    /// Waits until scenario `index` has ended on every shard.
    async fn wait(&self, index: usize) {
        loop {
            let notified = self.ended.notified();
            tokio::pin!(notified);
            // Registered before the check, so an end between the two is not missed.
            notified.as_mut().enable();
            if self.running[index].load(Ordering::Acquire) == 0 {
                return;
            }
            notified.await;
        }
    }
}

/// Waits for the scenario's start, runs it, and tells the scenarios that come after it.
async fn run_in_turn(shard: Rc<Shard>, run: Rc<ScenarioRun>) {
    let scenario = run.scenario();
    let begin = async {
        if let Some(before) = scenario.after {
            shard.ends.wait(before).await;
        }
        let base = if scenario.after.is_some() { Instant::now() } else { shard.start };
        sleep_until(base + scenario.start).await;
    };
    let started = tokio::select! {
        () = begin => true,
        () = run.stop.cancelled() => false,
    };
    if started {
        let now = Instant::now();
        run.began.set(now);
        shard.meter.scenario_window(run.index(), now.saturating_duration_since(shard.start), false);
        run_scenario(&shard, &run).await;
        // A scenario that lasts a duration lasts it, even when its last arrival left earlier:
        // the scenarios after it start at its end, not at its last request.
        if scenario.iterations.is_none() && shard.plan.stop.requests.is_none() {
            if let Some(length) = scenario.planned_duration() {
                tokio::select! {
                    () = sleep_until(run.clock() + length) => {}
                    () = shard.stop_sending.cancelled() => {}
                }
            }
        }
        shard.meter.scenario_window(run.index(), Instant::now().saturating_duration_since(shard.start), true);
    }
    shard.ends.finish(run.index());
}

/// Runs one scenario's users until they finish or the scenario's time is up.
async fn run_scenario(shard: &Rc<Shard>, run: &Rc<ScenarioRun>) {
    let scenario = run.scenario();
    let users = async {
        match &scenario.load {
            Load::Closed(closed) => closed::run(shard, run, closed).await,
            Load::Open(open) => open::run(shard, run, open).await,
            Load::Hold(hold) => hold::run(shard, run, hold).await,
        }
    };
    tokio::pin!(users);
    // The scenario's time is its duration, or its stages' length.
    let slack = if matches!(scenario.load, Load::Open(_)) { DISPATCH_SLACK } else { Default::default() };
    let deadline = scenario.planned_duration().map(|d| run.clock() + d + slack);
    tokio::select! {
        () = &mut users => {}
        () = async { match deadline { Some(d) => sleep_until(d).await, None => std::future::pending().await } } => {
            // Users finish the request in flight; the shard's grace bounds the wait.
            run.stop.cancel();
            users.await;
        }
    }
    run.stop.cancel();
}

/// Takes one from a budget that may be unbounded (`None`); false when it is spent.
pub fn take_one(budget: &Cell<Option<u64>>) -> bool {
    match budget.get() {
        None => true,
        Some(0) => false,
        Some(n) => {
            budget.set(Some(n - 1));
            true
        }
    }
}

/// Splits `total` items over `parts` shares as evenly as possible; share `index` is returned.
pub fn share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts.max(1) as u64;
    let index = index as u64;
    total / parts + u64::from(index < total % parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shares_add_up() {
        for total in [0u64, 1, 7, 5000] {
            for parts in 1..6 {
                let sum: u64 = (0..parts).map(|i| share(total, parts, i)).sum();
                assert_eq!(sum, total);
            }
        }
    }

    #[test]
    fn budgets_run_out() {
        let budget = Cell::new(Some(2));
        assert!(take_one(&budget) && take_one(&budget) && !take_one(&budget));
        let unbounded = Cell::new(None);
        assert!((0..1000).all(|_| take_one(&unbounded)));
    }
}
