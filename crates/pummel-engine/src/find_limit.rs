//! Finding the breaking point: open-model steps at rising rates until the target breaks its
//! SLO, then bisection down to the capacity.
//!
//! Each step is one engine run at a constant rate: a short settle (excluded from the step's
//! statistics, like a warmup) and then `step` of measurement. A step is *good* when every SLO
//! holds (on the latency of the requests that succeeded), the error rate stays under the
//! limit, the target kept up — its successful answers inside the step's window reached 95 % of
//! the offered rate and no arrival was dropped — and the generator was not the limit (a step
//! the generator limited judges nothing about the target, and the search stops there). A step
//! whose error rate passes `abort_step` over a short window is cut short, as load testers do
//! when half the requests fail.
//!
//! Steps start clean: after a bad step the target may still be working through the backlog
//! the step left, which would poison the next one. So before the next step a probe request is
//! sent until one is answered within the SLO (up to `cooldown`); a step that starts before
//! that says so. A borderline step (a figure within 10 % of its limit) is run once more when
//! `confirm` is set, and is good only when both runs are: the verdict stays the same from run
//! to run.
//!
//! The search either runs explicit steps, or grows geometrically from `start` by `factor`
//! until a step breaks (never above `max_rate`), then bisects between the last good and first
//! bad rate until they are within `precision` of each other.

use std::sync::Arc;
use std::time::Duration;

use crate::engine::{self, GeneratorHealth, RunControl, RunOutcome, StageOutcome, StopReason};
use crate::measure::limit::KEPT_UP_SHARE;
use crate::measure::stats::Stats;
use crate::measure::summary::stage_summary;
use crate::plan::{ClosedLoad, Load, Plan, RateStage, Stop};
use pummel_results::document::{CapacityPlan, FindLimitReport, StepVerdict};
use pummel_results::expr::{CmpOp, Expr, Metric, MetricSource};
use pummel_results::summary::{LimitSide, StageSummary, ThresholdVerdict};
use pummel_results::timeline::TimelineEntry;

/// Most steps a search runs, whatever the precision asks: a bound on the run's length.
const MAX_STEPS: usize = 40;
/// Window over which a failing step is judged for cutting short.
const ABORT_WINDOW: Duration = Duration::from_secs(3);
/// A figure this close to its limit (relative) makes a step borderline.
const BORDERLINE: f64 = 0.10;
/// Successful answers between these shares of the offered rate make a step borderline.
const BORDERLINE_KEPT_UP: std::ops::Range<f64> = 0.90..0.98;
/// Without a latency SLO, the target has drained when a probe is answered within this.
const DRAINED_WITHOUT_SLO: Duration = Duration::from_secs(1);
/// Pause between two cooldown probes that found the target still busy.
const PROBE_PAUSE: Duration = Duration::from_millis(250);
/// A cooldown shorter than this is not worth a note in the step's row.
const NOTED_COOLDOWN: Duration = Duration::from_millis(500);
/// A step whose requests in flight grew by more than this share of its requests (and by more
/// than [`BACKLOG_MIN`]) over its measured seconds did not keep up: the target queued what it
/// could not serve, and would have fallen further behind with a longer step.
const BACKLOG_SHARE: f64 = 0.02;
const BACKLOG_MIN: u64 = 5;

/// Which rates to try.
#[derive(Debug, Clone, PartialEq)]
pub enum Search {
    /// Exactly these rates, in this order (req/s).
    Steps(Vec<f64>),
    /// Geometric growth, then bisection.
    Grow {
        /// First rate (req/s).
        start: f64,
        /// Growth factor between steps (> 1).
        factor: f64,
        /// Bisection stops when (bad − good) / good ≤ precision.
        precision: f64,
        /// No step above this rate.
        max_rate: f64,
    },
}

/// Everything a capacity search needs.
#[derive(Debug, Clone)]
pub struct FindLimitSpec {
    /// The plan each step starts from: target, request, connections, timeouts. Its load must be
    /// the open model; its rate stages are replaced by each step's rate.
    pub base: Plan,
    /// Which rates to try.
    pub search: Search,
    /// Measured length of each step.
    pub step: Duration,
    /// Settle time before each step's measurement.
    pub settle: Duration,
    /// SLO expressions every good step meets (threshold grammar).
    pub slo: Vec<Expr>,
    /// Highest error rate of a good step (fraction).
    pub max_error_rate: f64,
    /// Error rate (fraction) over a 3 s window that cuts a step short.
    pub abort_step: f64,
    /// `(peak req/s, headroom fraction)` for the capacity-planning estimate.
    pub planning: Option<(f64, f64)>,
    /// Longest wait after a bad step for the target to drain before the next step starts.
    pub cooldown: Duration,
    /// Run a borderline step once more; it is good only when both runs are.
    pub confirm: bool,
}

/// Why a search could not run.
#[derive(Debug, thiserror::Error)]
pub enum FindLimitError {
    /// The settings do not make sense.
    #[error("{0}")]
    Invalid(String),
    /// A step could not start.
    #[error(transparent)]
    Engine(#[from] engine::EngineError),
}

/// Sees the search as it goes: for the live view.
pub trait StepObserver {
    /// A step at `rate` req/s starts.
    fn step_started(&mut self, index: usize, rate: f64);
    /// A second of the current step completed (seconds count across the whole search).
    fn second(&mut self, entry: &TimelineEntry);
    /// A step ended with this verdict.
    fn step_finished(&mut self, index: usize, row: &StageSummary, verdict: &StepVerdict);
    /// Something happened between steps (a cooldown, a confirmation), in words.
    fn note(&mut self, _text: &str) {}
}

/// What the search found, with everything measured.
#[derive(Debug)]
pub struct FindLimitOutcome {
    /// A plan describing the steps that ran (one rate stage per step), for the results file.
    pub plan: Plan,
    /// All steps as one run: one stage per step, the timeline end to end.
    pub outcome: RunOutcome,
    /// The verdicts and the capacity.
    pub report: FindLimitReport,
}

/// Runs the search. Stops early, with what it has, when `control` is interrupted.
pub fn find_limit(
    spec: &FindLimitSpec,
    control: &RunControl,
    observer: &mut dyn StepObserver,
) -> Result<FindLimitOutcome, FindLimitError> {
    find_limit_with(spec, control, observer, &mut LocalSteps)
}

/// Runs one step's plan: in this process ([`LocalSteps`]), or over agents (a coordinator's).
pub trait StepRunner {
    /// Runs `plan`, a step at `rate` req/s, handing each second to `on_second`. An
    /// [`EngineError::Remote`] ends the search with the steps run so far, as partial.
    fn run_step(
        &mut self,
        rate: f64,
        plan: &Plan,
        control: &RunControl,
        on_second: &mut dyn FnMut(&TimelineEntry),
    ) -> Result<RunOutcome, engine::EngineError>;
}

/// Steps run by this process's own shards.
pub struct LocalSteps;

impl StepRunner for LocalSteps {
    fn run_step(
        &mut self,
        _rate: f64,
        plan: &Plan,
        control: &RunControl,
        on_second: &mut dyn FnMut(&TimelineEntry),
    ) -> Result<RunOutcome, engine::EngineError> {
        engine::run(plan, control, on_second)
    }
}

/// As [`find_limit`], each step run by `runner`.
pub fn find_limit_with(
    spec: &FindLimitSpec,
    control: &RunControl,
    observer: &mut dyn StepObserver,
    runner: &mut dyn StepRunner,
) -> Result<FindLimitOutcome, FindLimitError> {
    check(spec)?;
    let mut search = Searcher { spec, control, observer, runner, steps: Vec::new() };
    let cut_short = match search_all(&mut search) {
        Ok(()) => control.is_interrupted().then(|| "interrupted".to_string()),
        Err(FindLimitError::Engine(engine::EngineError::Remote(why))) if !search.steps.is_empty() => {
            search.observer.note(&format!("   the search ends: {why}"));
            Some(why)
        }
        Err(e) => return Err(e),
    };
    let steps = search.steps;
    Ok(conclude(spec, steps, cut_short))
}

/// Runs the steps the search calls for, until it is done or cannot go on.
fn search_all(search: &mut Searcher<'_>) -> Result<(), FindLimitError> {
    let (spec, control) = (search.spec, search.control);
    match &spec.search {
        Search::Steps(rates) => {
            for &rate in rates {
                if control.is_interrupted() {
                    break;
                }
                search.step(rate)?;
            }
        }
        Search::Grow { start, factor, precision, max_rate } => {
            let (mut good, mut bad): (Option<f64>, Option<f64>) = (None, None);
            let mut rate = start.min(*max_rate);
            // Grow until a step breaks, the generator saturates, or max_rate held.
            while !control.is_interrupted() && search.steps.len() < MAX_STEPS {
                if search.step(rate)? {
                    good = Some(rate);
                    if rate >= *max_rate {
                        break;
                    }
                    rate = (rate * factor).min(*max_rate);
                } else {
                    bad = Some(rate);
                    break;
                }
            }
            // The first step already broke: come down until one holds.
            while good.is_none()
                && !search.generator_stopped()
                && !control.is_interrupted()
                && search.steps.len() < MAX_STEPS
            {
                rate /= factor;
                if rate < 1.0 {
                    break;
                }
                if search.step(rate)? {
                    good = Some(rate);
                } else {
                    bad = Some(rate);
                }
            }
            // Bisect between the last good and the first bad rate.
            while let (Some(g), Some(b)) = (good, bad) {
                if (b - g) / g <= *precision
                    || search.generator_stopped()
                    || control.is_interrupted()
                    || search.steps.len() >= MAX_STEPS
                {
                    break;
                }
                let mid = ((g + b) / 2.0).round().max(g + 1.0);
                if mid >= b {
                    break;
                }
                if search.step(mid)? {
                    good = Some(mid);
                } else {
                    bad = Some(mid);
                }
            }
        }
    }
    Ok(())
}

/// The search's state: the steps run so far, and how to run one more.
struct Searcher<'a> {
    spec: &'a FindLimitSpec,
    control: &'a RunControl,
    observer: &'a mut dyn StepObserver,
    runner: &'a mut dyn StepRunner,
    steps: Vec<Step>,
}

impl Searcher<'_> {
    /// Runs a step at `rate` (and its confirmation when it is borderline); true when it is good.
    /// A step the generator limited is run once more before it stops the search: a machine
    /// busy with something else for a moment is not the generator's ceiling.
    fn step(&mut self, rate: f64) -> Result<bool, FindLimitError> {
        let mut step = self.run_once(rate, None)?;
        if step.generator_limited && !self.control.is_interrupted() {
            let first = self.steps.len();
            self.steps.push(step);
            self.observer.note(&format!("   step {}: the generator fell behind: running it once more", first + 1));
            step = self.run_once(rate, Some(first))?;
            // The verdict is the second run's; the first stays in the table, marked.
            let superseded = &mut self.steps[first];
            superseded.superseded = true;
            let note = format!("generator fell behind: judged by step {}", first + 2);
            superseded.row.note = Some(match superseded.row.note.take() {
                Some(earlier) => format!("{earlier}; {note}"),
                None => note,
            });
        }
        if self.spec.confirm && step.borderline && !self.control.is_interrupted() {
            let first = self.steps.len();
            self.steps.push(step);
            self.observer.note(&format!("   step {} was borderline: running it once more", first + 1));
            let mut again = self.run_once(rate, Some(first))?;
            let both_good = self.steps[first].verdict.good && again.verdict.good;
            for confirmed in [&mut self.steps[first], &mut again] {
                if confirmed.verdict.good && !both_good {
                    confirmed.verdict.good = false;
                    confirmed.verdict.reason = Some("not confirmed: the other run of this rate was bad".into());
                    confirmed.row.note = confirmed.verdict.reason.clone();
                }
            }
            step = again;
        }
        let good = step.verdict.good;
        self.steps.push(step);
        Ok(good)
    }

    /// Runs one step at `rate`, after a cooldown when the last step was bad; `repeat_of` is
    /// the index of the step this one confirms.
    fn run_once(&mut self, rate: f64, repeat_of: Option<usize>) -> Result<Step, FindLimitError> {
        let start_note = match self.steps.last() {
            Some(last) if !last.verdict.good && !self.control.is_interrupted() => {
                // The target's own pace: the fastest median any step saw.
                let floor = self.steps.iter().filter_map(|s| s.row.latency_ms.map(|l| l.p50)).reduce(f64::min);
                let floor = floor.map(|ms| Duration::from_secs_f64(ms.max(0.0) / 1000.0));
                cool_down(self.spec, self.control, self.observer, floor)?
            }
            _ => None,
        };
        let index = self.steps.len();
        self.observer.step_started(index, rate);
        let offset = self.steps.iter().map(|s| s.outcome.timeline.len() as u64).sum::<u64>();
        let plan = step_plan(self.spec, rate);
        let observer = &mut *self.observer;
        let outcome = self.runner.run_step(rate, &plan, self.control, &mut |entry| {
            let mut shifted = entry.clone();
            shifted.second += offset;
            observer.second(&shifted);
        })?;
        let mut step = judge(self.spec, rate, outcome);
        let mut notes: Vec<String> = step.row.note.take().into_iter().collect();
        if let Some(repeat) = repeat_of {
            notes.insert(0, format!("repeat of step {}", repeat + 1));
        }
        if let Some(cooled) = start_note {
            notes.insert(0, cooled);
        }
        step.row.note = (!notes.is_empty()).then(|| notes.join("; "));
        self.observer.step_finished(index, &step.row, &step.verdict);
        Ok(step)
    }

    fn generator_stopped(&self) -> bool {
        self.steps.last().is_some_and(|s| s.generator_limited)
    }
}

/// Waits, up to `spec.cooldown`, until the target answers a probe request within the SLO (or
/// within twice its own pace, `floor`, for a target that never met the SLO): the backlog a bad
/// step left is gone. Returns the note for the next step's row, if the wait was worth one.
fn cool_down(
    spec: &FindLimitSpec,
    control: &RunControl,
    observer: &mut dyn StepObserver,
    floor: Option<Duration>,
) -> Result<Option<String>, FindLimitError> {
    let paced = floor.map_or(Duration::ZERO, |f| f * 2 + Duration::from_millis(1));
    let bound = drained_within(spec).max(paced);
    let started = std::time::Instant::now();
    let deadline = started + spec.cooldown;
    observer.note(&format!(
        "   waiting for the target to drain (a probe answered within {} ms, up to {} s)",
        bound.as_millis(),
        spec.cooldown.as_secs()
    ));
    loop {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || control.is_interrupted() {
            return Ok(Some(format!(
                "started dirty: the target had not drained after {:.0} s",
                started.elapsed().as_secs_f64()
            )));
        }
        let outcome = engine::run(&probe_plan(spec, left), control, |_| {})?;
        let answered = outcome.total.ok == 1
            && crate::measure::stats::StatsOver { stats: &outcome.total, elapsed: Duration::ZERO }
                .metric_value(&Metric::Latency(pummel_results::expr::Stat::Max))
                .is_some_and(|ms| ms <= bound.as_secs_f64() * 1000.0);
        if answered {
            let waited = started.elapsed();
            return Ok(
                (waited >= NOTED_COOLDOWN).then(|| format!("started after a {:.1} s cooldown", waited.as_secs_f64()))
            );
        }
        std::thread::sleep(PROBE_PAUSE.min(deadline.saturating_duration_since(std::time::Instant::now())));
    }
}

/// The latency within which a probe shows the target has drained: the tightest latency SLO
/// (`p99<200ms`), or [`DRAINED_WITHOUT_SLO`].
fn drained_within(spec: &FindLimitSpec) -> Duration {
    spec.slo
        .iter()
        .filter(|e| matches!(e.metric, Metric::Latency(_) | Metric::ServiceTime(_) | Metric::LatencyAll(_)))
        .filter(|e| matches!(e.op, CmpOp::Lt | CmpOp::Le))
        .map(|e| Duration::from_secs_f64(e.value.max(0.0) / 1000.0))
        .min()
        .unwrap_or(DRAINED_WITHOUT_SLO)
}

/// One request of the base plan on one connection, answered within `timeout` at most.
fn probe_plan(spec: &FindLimitSpec, timeout: Duration) -> Plan {
    let mut plan = spec.base.clone();
    let scenarios = Arc::make_mut(&mut plan.scenarios);
    for scenario in &mut scenarios.list {
        scenario.load = Load::Closed(ClosedLoad { connections: 1 });
        scenario.duration = None;
        scenario.iterations = None;
    }
    plan.stop = Stop { duration: None, requests: Some(1) };
    plan.threads = 1;
    plan.warmup = Duration::ZERO;
    plan.timeout = plan.timeout.min(timeout).max(Duration::from_millis(1));
    plan.thresholds = Vec::new();
    plan.abort_when = Vec::new();
    plan.observers = Default::default();
    plan
}

/// One step that ran.
struct Step {
    rate: f64,
    outcome: RunOutcome,
    row: StageSummary,
    verdict: StepVerdict,
    /// The generator, not the target, limited the step: it judges nothing about the target.
    generator_limited: bool,
    /// A figure was within 10 % of its limit: worth a second run.
    borderline: bool,
    /// Run again because the generator fell behind: the search judges by the other run.
    superseded: bool,
}

fn check(spec: &FindLimitSpec) -> Result<(), FindLimitError> {
    let invalid = |m: &str| Err(FindLimitError::Invalid(m.to_string()));
    if !matches!(spec.base.single_scenario().map(|s| &s.load), Some(Load::Open(_))) {
        return invalid("find-limit runs the open model: the base plan needs a rate");
    }
    if spec.step.is_zero() {
        return invalid("--step must be longer than 0s");
    }
    if !(0.0..=1.0).contains(&spec.max_error_rate) || !(0.0..=1.0).contains(&spec.abort_step) {
        return invalid("--max-error-rate and --abort-step must be between 0% and 100%");
    }
    match &spec.search {
        Search::Steps(rates) if rates.is_empty() => invalid("--steps needs at least one rate"),
        Search::Steps(rates) if rates.iter().any(|r| !(r.is_finite() && *r > 0.0)) => {
            invalid("every --steps rate must be a positive number")
        }
        Search::Grow { start, factor, precision, max_rate } => {
            if !(start.is_finite() && *start > 0.0 && max_rate.is_finite() && *max_rate >= *start) {
                invalid("--start must be positive and at most --max-rate")
            } else if !(factor.is_finite() && *factor > 1.0) {
                invalid("--factor must be greater than 1")
            } else if !(precision.is_finite() && *precision > 0.0) {
                invalid("--precision must be greater than 0%")
            } else {
                Ok(())
            }
        }
        Search::Steps(_) => Ok(()),
    }
}

/// The plan of one step at `rate`: the base plan at that constant rate for its settle time and
/// its measured length (an agent of a search over agents builds the same).
pub fn step_plan(spec: &FindLimitSpec, rate: f64) -> Plan {
    let mut plan = spec.base.clone();
    restage(&mut plan, vec![RateStage::level(rate, spec.settle + spec.step)]);
    plan.stop = Stop { duration: None, requests: None };
    plan.warmup = spec.settle;
    plan.thresholds = Vec::new();
    plan.abort_window = ABORT_WINDOW.min(spec.step);
    plan.abort_when = vec![Expr {
        text: format!("error_rate>{}%", spec.abort_step * 100.0),
        metric: Metric::ErrorRate,
        op: CmpOp::Gt,
        value: spec.abort_step,
    }];
    plan
}

/// Gives the base plan's one open scenario these `stages` (and no other bound on its length).
fn restage(plan: &mut Plan, stages: Vec<RateStage>) {
    let scenarios = Arc::make_mut(&mut plan.scenarios);
    for scenario in &mut scenarios.list {
        if let Load::Open(open) = &mut scenario.load {
            open.stages = stages.clone();
            scenario.duration = None;
        }
    }
}

/// The criteria a step is judged on, as they are checked: why it is bad, and how close the
/// deciding figures were to their limits.
#[derive(Default)]
struct Criteria {
    reasons: Vec<String>,
    /// Some figure was within [`BORDERLINE`] of its limit.
    any_near: bool,
    /// Some criterion failed by more than that: no second run would make the step good.
    clearly_failed: bool,
}

impl Criteria {
    /// One criterion: `failed` or not, `near` its limit or not, and why when it failed.
    fn check(&mut self, failed: bool, near: bool, why: impl FnOnce() -> String) {
        self.any_near |= near;
        if failed {
            self.clearly_failed |= !near;
            self.reasons.push(why());
        }
    }

    /// A step is worth a second run when its verdict could flip: a good one with a figure near
    /// its limit, a bad one that failed only by a little.
    fn borderline(&self) -> bool {
        if self.reasons.is_empty() { self.any_near } else { !self.clearly_failed }
    }
}

/// Decides whether a step is good, and why not.
fn judge(spec: &FindLimitSpec, rate: f64, outcome: RunOutcome) -> Step {
    let stage = outcome.stages.first();
    let (stats, measured) = match stage {
        Some(s) => (s.stats.clone(), s.measured),
        None => (Stats::default(), Duration::ZERO),
    };
    let view = stats.over(measured);
    let generator_limited = outcome.limit.as_ref().is_some_and(|l| l.by == LimitSide::Generator);
    let near = |value: f64, limit: f64| limit > 0.0 && ((value - limit) / limit).abs() < BORDERLINE;
    let mut criteria = Criteria::default();
    if let StopReason::Aborted(_) = &outcome.stop {
        criteria.check(true, false, || {
            format!(
                "ended after {:.0} s: {:.0} % failures",
                outcome.elapsed.saturating_sub(spec.settle).as_secs_f64(),
                stats.error_rate() * 100.0
            )
        });
    }
    for slo in &spec.slo {
        let verdict = ThresholdVerdict::evaluate(slo, &view);
        let close = verdict.value.is_some_and(|v| near(v, slo.value));
        criteria.check(!verdict.pass, close, || {
            format!("{} > SLO {}", verdict.shown.clone().unwrap_or_else(|| "no data".into()), slo.text)
        });
    }
    if stats.completed == 0 {
        criteria.check(true, false, || "no request completed".to_string());
    } else {
        let error_rate = stats.error_rate();
        criteria.check(error_rate > spec.max_error_rate, near(error_rate, spec.max_error_rate), || {
            format!("{:.1} % errors ({})", error_rate * 100.0, top_failure(&stats).unwrap_or_else(|| "failed".into()))
        });
    }
    // Kept up: successful answers inside the window against what was offered, nothing dropped,
    // no backlog building up in the target.
    let achieved = view.achieved_rate();
    let share = achieved / rate;
    criteria.check(share < KEPT_UP_SHARE, BORDERLINE_KEPT_UP.contains(&share), || {
        format!("only {achieved:.0} of {rate:.0} req/s answered successfully")
    });
    criteria.check(stats.dropped > 0, false, || {
        format!("{} arrivals dropped (more in flight than the bound)", stats.dropped)
    });
    if let Some(growth) = backlog_growth(&outcome.timeline, spec.settle + spec.step) {
        let allowed = (BACKLOG_SHARE * rate * measured.as_secs_f64()).max(BACKLOG_MIN as f64);
        criteria.check(growth as f64 > allowed, near(growth as f64, allowed), || {
            format!("the backlog grew by {growth} requests during the step (not kept up)")
        });
    }
    let borderline = !generator_limited && criteria.borderline();
    let mut reasons = criteria.reasons;
    if generator_limited {
        // Nothing else can be judged: pummel did not offer what the step asked.
        let why = outcome.limit.as_ref().map(|l| l.text.clone()).unwrap_or_default();
        reasons = vec![format!("generator: {why}")];
    }
    let reason = (!reasons.is_empty()).then(|| reasons.join("; "));
    let row = stage_summary(Some(rate), measured, &stats, reason.clone());
    let verdict = StepVerdict { target_rate: rate, good: reason.is_none(), reason };
    Step { rate, outcome, row, verdict, generator_limited, borderline, superseded: false }
}

/// How much the requests in flight grew over a step's measured seconds: from the end of its
/// settle (its last warmup second) to the end of its window; `None` without both.
fn backlog_growth(timeline: &[TimelineEntry], window: Duration) -> Option<u64> {
    let window_end = window.as_secs_f64().ceil() as u64;
    let start = timeline.iter().rev().find(|e| e.warmup).map(|e| e.in_flight).unwrap_or(0);
    let end = timeline.iter().rev().find(|e| !e.warmup && e.second <= window_end)?;
    Some(end.in_flight.saturating_sub(start))
}

/// The failure that dominated: a status code for HTTP errors, else the error kind.
fn top_failure(stats: &Stats) -> Option<String> {
    let (kind, _) = stats.errors.non_zero().max_by_key(|&(_, n)| n)?;
    if matches!(
        kind,
        pummel_results::error_kind::ErrorKind::Status4xx | pummel_results::error_kind::ErrorKind::Status5xx
    ) {
        let status = stats.status_counts().filter(|(code, _)| *code >= 400).max_by_key(|&(_, n)| n)?;
        return Some(format!("status_{}", status.0));
    }
    Some(kind.name().to_string())
}

fn conclude(spec: &FindLimitSpec, steps: Vec<Step>, cut_short: Option<String>) -> FindLimitOutcome {
    let judged = || steps.iter().filter(|s| !s.superseded);
    let best_good = judged().filter(|s| s.verdict.good).max_by(|a, b| a.rate.total_cmp(&b.rate));
    let capacity = best_good.map(|s| s.rate);
    let first_bad = judged()
        .filter(|s| !s.verdict.good && !s.generator_limited && capacity.is_none_or(|c| s.rate > c))
        .min_by(|a, b| a.rate.total_cmp(&b.rate));
    let generator_limited = judged().any(|s| s.generator_limited);
    let describe = |s: &Step| {
        let p99 = s.row.latency_ms.map(|l| format_ms(l.p99)).unwrap_or_else(|| "no latency".into());
        (p99, s.row.error_rate * 100.0)
    };
    let mut verdict = match (best_good, first_bad) {
        (Some(good), Some(bad)) => {
            let (good_p99, good_err) = describe(good);
            let (bad_p99, _) = describe(bad);
            let why = bad.verdict.reason.as_deref().unwrap_or("bad");
            format!(
                "capacity ≈ {} req/s (p99 {good_p99}, {good_err:.1} % errors); breaks at {} req/s: {why} (p99 {bad_p99})",
                thousands(good.rate),
                thousands(bad.rate)
            )
        }
        (Some(good), None) if generator_limited => {
            let limit = judged().find(|s| s.generator_limited).map(|s| s.rate).unwrap_or(good.rate);
            format!(
                "the generator saturated at {} req/s before the target broke: capacity ≥ {} req/s (add threads or machines)",
                thousands(limit),
                thousands(good.rate)
            )
        }
        (Some(good), None) => {
            let (p99, err) = describe(good);
            format!(
                "never broke: {} req/s held (p99 {p99}, {err:.1} % errors); raise --max-rate to go further",
                thousands(good.rate)
            )
        }
        (None, Some(bad)) => {
            let (p99, err) = describe(bad);
            format!("broke at every rate tried, down to {} req/s (p99 {p99}, {err:.1} % errors)", thousands(bad.rate))
        }
        (None, None) if generator_limited => {
            "the generator saturated before any step could be judged (add threads or machines)".to_string()
        }
        (None, None) => "no step completed".to_string(),
    };
    if let Some(why) = &cut_short {
        verdict.push_str(&format!(" [{why}: partial search]"));
    }
    let planning = match (spec.planning, capacity) {
        (Some((peak, headroom)), Some(per_instance)) => Some(CapacityPlan {
            peak_rps: peak,
            headroom,
            per_instance_rps: per_instance,
            instances: instances_needed(peak, per_instance, headroom),
        }),
        _ => None,
    };
    let report = FindLimitReport {
        slo: spec.slo.iter().map(|e| e.text.clone()).collect(),
        max_error_rate: spec.max_error_rate,
        steps: steps.iter().map(|s| s.verdict.clone()).collect(),
        capacity_rps: capacity,
        breaking_rps: first_bad.map(|s| s.rate),
        generator_limited,
        verdict,
        planning,
    };
    let plan = summary_plan(spec, &steps);
    let outcome = combine(steps, cut_short);
    FindLimitOutcome { plan, outcome, report }
}

/// The plan as it ran: one stage per step, each settle + step long.
fn summary_plan(spec: &FindLimitSpec, steps: &[Step]) -> Plan {
    let mut plan = spec.base.clone();
    restage(
        &mut plan,
        steps.iter().map(|s| RateStage::level(s.rate, s.outcome.elapsed.max(Duration::from_millis(1)))).collect(),
    );
    plan.stop = Stop { duration: None, requests: None };
    plan.warmup = Duration::ZERO;
    // The SLO judges each step (see `find_limit.slo` in the results), not all steps merged.
    plan.thresholds = Vec::new();
    plan
}

/// Joins the steps into one outcome: a stage per step and one continuous timeline.
fn combine(steps: Vec<Step>, cut_short: Option<String>) -> RunOutcome {
    let started_at = steps.first().map(|s| s.outcome.started_at).unwrap_or_else(std::time::SystemTime::now);
    let mut total = Stats::default();
    let mut timeline = Vec::new();
    let mut stages = Vec::new();
    let (mut elapsed, mut measured) = (Duration::ZERO, Duration::ZERO);
    let mut flows = crate::measure::tallies::FlowTallies::default();
    let mut other_errors = Vec::new();
    let mut generator = GeneratorHealth::default();
    // Each step's own limit is in its row; the search as a whole names only a generator limit.
    let mut limit = None;
    for step in steps {
        let offset = timeline.len() as u64;
        let out = step.outcome;
        timeline.extend(out.timeline.into_iter().map(|mut e| {
            e.second += offset;
            e
        }));
        elapsed += out.elapsed;
        measured += out.measured;
        flows.merge(&out.flows);
        other_errors.extend(out.other_errors);
        generator.cpu_seconds += out.generator.cpu_seconds;
        generator.threads = generator.threads.max(out.generator.threads);
        generator.lag_p99_ms = max_of(generator.lag_p99_ms, out.generator.lag_p99_ms);
        generator.busiest_thread_percent =
            max_of(generator.busiest_thread_percent, out.generator.busiest_thread_percent);
        if limit.is_none() && step.generator_limited && !step.superseded {
            limit = out.limit.map(|mut l| {
                l.text = format!("at {:.0} req/s: {}", step.rate, l.text);
                l
            });
        }
        for stage in out.stages {
            total.merge(&stage.stats);
            stages.push(StageOutcome {
                target_rate: stage.target_rate,
                measured: stage.measured,
                stats: stage.stats,
                note: step.row.note.clone(),
            });
        }
    }
    other_errors.truncate(10);
    RunOutcome {
        started_at,
        elapsed,
        measured,
        stop: match cut_short {
            None => StopReason::Completed,
            Some(why) if why == "interrupted" => StopReason::Interrupted,
            Some(why) => StopReason::Aborted(why),
        },
        stages,
        total,
        timeline,
        other_errors,
        generator,
        probes: Vec::new(),
        target: None,
        flows,
        limit,
        request_log: None,
        write_log: None,
        faults: Vec::new(),
        faults_undone_at_exit: Vec::new(),
    }
}

fn max_of(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

/// Instances needed for `peak` when each sustains `per_instance` and keeps `headroom` (a
/// fraction) spare: `ceil(peak / (per_instance × (1 − headroom)))`, assuming linear scaling.
pub fn instances_needed(peak: f64, per_instance: f64, headroom: f64) -> u64 {
    let usable = per_instance * (1.0 - headroom.clamp(0.0, 0.99));
    if usable <= 0.0 { 0 } else { (peak / usable).ceil() as u64 }
}

fn format_ms(ms: f64) -> String {
    if ms < 1.0 {
        format!("{:.0} µs", ms * 1000.0)
    } else if ms < 10.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

fn thousands(rate: f64) -> String {
    let digits = format!("{:.0}", rate.round());
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thousands_groups_digits() {
        assert_eq!(thousands(2300.0), "2,300");
        assert_eq!(thousands(50000.4), "50,000");
        assert_eq!(thousands(999.0), "999");
    }

    #[test]
    fn only_a_verdict_that_could_flip_is_borderline() {
        let mut clear = Criteria::default();
        clear.check(false, false, String::new);
        assert!(!clear.borderline(), "good by a margin");
        let mut near_good = Criteria::default();
        near_good.check(false, true, String::new);
        assert!(near_good.borderline(), "good, but a figure near its limit");
        let mut near_bad = Criteria::default();
        near_bad.check(true, true, || "just over".into());
        assert!(near_bad.borderline(), "bad by a little");
        let mut clearly_bad = Criteria::default();
        clearly_bad.check(true, true, || "just over".into());
        clearly_bad.check(true, false, || "far over".into());
        assert!(!clearly_bad.borderline(), "one criterion failed by far: a second run cannot help");
        assert_eq!(clearly_bad.reasons, ["just over", "far over"]);
    }

    #[test]
    fn the_backlog_is_measured_over_the_window() {
        let entry = |second: u64, warmup: bool, in_flight: u64| TimelineEntry {
            second,
            warmup,
            in_flight,
            ..TimelineEntry::default()
        };
        // Settle 1 s, step 2 s; the drain's tail entry (second 4) does not count.
        let timeline = [entry(1, true, 4), entry(2, false, 30), entry(3, false, 60), entry(4, false, 0)];
        assert_eq!(backlog_growth(&timeline, Duration::from_secs(3)), Some(56));
        let steady = [entry(1, true, 4), entry(2, false, 6), entry(3, false, 3)];
        assert_eq!(backlog_growth(&steady, Duration::from_secs(3)), Some(0));
        assert_eq!(backlog_growth(&[entry(1, true, 4)], Duration::from_secs(3)), None);
    }

    #[test]
    fn planning_rounds_instances_up() {
        // 50,000 / (2,300 × 0.7) = 31.06: 32 instances keep 30 % spare on each.
        assert_eq!(instances_needed(50_000.0, 2_300.0, 0.3), 32);
        assert_eq!(instances_needed(1_000.0, 1_000.0, 0.0), 1);
        assert_eq!(instances_needed(1_000.0, 0.0, 0.3), 0);
    }

    #[test]
    fn bad_settings_are_refused() {
        let base =
            crate::plan::test_plan("http://127.0.0.1:9/", Load::Closed(crate::plan::ClosedLoad { connections: 1 }));
        let spec = FindLimitSpec {
            base,
            search: Search::Steps(vec![10.0]),
            step: Duration::from_secs(1),
            settle: Duration::ZERO,
            slo: vec![],
            max_error_rate: 0.01,
            abort_step: 0.5,
            planning: None,
            cooldown: Duration::from_secs(1),
            confirm: false,
        };
        assert!(check(&spec).is_err(), "closed-model base");
        let mut open = spec.clone();
        open.base = crate::plan::test_plan(
            "http://127.0.0.1:9/",
            Load::Open(crate::plan::OpenLoad {
                stages: vec![],
                arrival: crate::plan::Arrival::Uniform,
                max_connections: 10,
                max_inflight: None,
            }),
        );
        assert!(check(&open).is_ok());
        for search in [
            Search::Steps(vec![]),
            Search::Steps(vec![0.0]),
            Search::Grow { start: 10.0, factor: 1.0, precision: 0.05, max_rate: 100.0 },
            Search::Grow { start: 200.0, factor: 2.0, precision: 0.05, max_rate: 100.0 },
            Search::Grow { start: 10.0, factor: 2.0, precision: 0.0, max_rate: 100.0 },
        ] {
            let bad = FindLimitSpec { search: search.clone(), ..open.clone() };
            assert!(check(&bad).is_err(), "{search:?}");
        }
    }
}
