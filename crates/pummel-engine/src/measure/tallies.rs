//! What a shard (and, merged, the run) counted of the scenarios beyond the run-wide
//! statistics: per request name, per check, per `choose` branch, per scenario.

use std::collections::BTreeMap;
use std::time::Duration;

use super::stats::Stats;
use crate::flow::Scenarios;
use crate::writes::judge::WriteTallies;

/// What a shard (and, merged, the run) counted of a plan file's scenarios beyond the run-wide
/// statistics. Indexes follow [`Scenarios`]: `named` by name, `checks` by check, `branches` by
/// branch, `iterations` by scenario. Outside the warmup only, like stage totals.
#[derive(Debug, Clone, Default)]
pub struct FlowTallies {
    /// Statistics per request name / WebSocket exchange.
    pub named: Vec<Stats>,
    /// `[passed, failed]` per check.
    pub checks: Vec<[u64; 2]>,
    /// Times each `choose` branch was taken.
    pub branches: Vec<u64>,
    /// Iterations of the flow started, per scenario.
    pub iterations: Vec<u64>,
    /// When each scenario started and ended, from the run's start: the earliest start and the
    /// latest end over the shards; `None` for a scenario that never started.
    pub windows: Vec<Option<ScenarioWindow>>,
    /// Connections opened per host, in plans of several (`Plan::target_of`): only their
    /// connection and TLS figures are filled.
    pub targets: Vec<Stats>,
    /// `export = [...]` values, per variable name: the value each iteration of an exporting
    /// scenario ended with, in the order the iterations ended (shard by shard).
    pub exports: BTreeMap<String, Vec<String>>,
    /// Writes by outcome (the load) and the verdicts of their read-back (the verify phase).
    pub writes: WriteTallies,
}

/// When a scenario ran, from the run's start.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ScenarioWindow {
    /// When it started.
    pub started: Duration,
    /// When it ended; `None` while it runs.
    pub ended: Option<Duration>,
}

impl ScenarioWindow {
    fn merge(self, other: ScenarioWindow) -> ScenarioWindow {
        let ended = match (self.ended, other.ended) {
            (Some(a), Some(b)) => Some(a.max(b)),
            (a, b) => a.or(b),
        };
        ScenarioWindow { started: self.started.min(other.started), ended }
    }
}

impl FlowTallies {
    /// Empty tallies shaped for `scenarios`.
    pub fn for_scenarios(scenarios: &Scenarios) -> FlowTallies {
        FlowTallies {
            named: scenarios.names.iter().map(|_| Stats::default()).collect(),
            checks: vec![[0, 0]; scenarios.checks.len()],
            branches: vec![0; scenarios.branches.len()],
            iterations: vec![0; scenarios.list.len()],
            windows: vec![None; scenarios.list.len()],
            targets: Vec::new(),
            exports: BTreeMap::new(),
            writes: WriteTallies::default(),
        }
    }

    /// Adds `other` (of the same shape) into these tallies.
    pub fn merge(&mut self, other: &FlowTallies) {
        if self.named.len() < other.named.len() {
            self.named.resize_with(other.named.len(), Default::default);
        }
        for (a, b) in self.named.iter_mut().zip(&other.named) {
            a.merge(b);
        }
        merge_counts(&mut self.checks, &other.checks, |a, b| {
            a[0] += b[0];
            a[1] += b[1];
        });
        merge_counts(&mut self.branches, &other.branches, |a, b| *a += b);
        merge_counts(&mut self.iterations, &other.iterations, |a, b| *a += b);
        merge_counts(&mut self.windows, &other.windows, |a, b| {
            *a = match (*a, *b) {
                (Some(x), Some(y)) => Some(x.merge(y)),
                (x, y) => x.or(y),
            }
        });
        if self.targets.len() < other.targets.len() {
            self.targets.resize_with(other.targets.len(), Default::default);
        }
        for (a, b) in self.targets.iter_mut().zip(&other.targets) {
            a.merge(b);
        }
        for (name, values) in &other.exports {
            self.exports.entry(name.clone()).or_default().extend(values.iter().cloned());
        }
        self.writes.merge(&other.writes);
    }
}

fn merge_counts<T: Copy + Default>(into: &mut Vec<T>, from: &[T], add: impl Fn(&mut T, &T)) {
    if into.len() < from.len() {
        into.resize(from.len(), T::default());
    }
    for (a, b) in into.iter_mut().zip(from) {
        add(a, b);
    }
}
