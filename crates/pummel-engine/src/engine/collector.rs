//! The collector: starts the shards, merges what they report each second into the timeline,
//! evaluates abort rules over a sliding window, and assembles the outcome.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use cpu_time::ProcessTime;

use super::shard::{self, ShardReport, ShardSetup};
use super::{EngineError, GeneratorHealth, RunControl, RunOutcome, StageOutcome, StopReason};
use crate::measure::stats::Stats;
use crate::measure::tallies::FlowTallies;
use crate::measure::timeline::{Gauges, entry};
use crate::observe;
use crate::plan::Plan;
use pummel_results::expr::{MetricSource, Stat};
use pummel_results::histogram::histogram_stat_ms;
use pummel_results::timeline::TimelineEntry;

/// Delay between spawning the shards and their common start, so they all begin together.
const START_DELAY: Duration = Duration::from_millis(30);

/// One second being assembled from the shards' reports.
#[derive(Default)]
struct SecondInProgress {
    stats: Stats,
    in_flight: u64,
    connections: u64,
}

pub(super) fn run(
    plan: &Plan,
    control: &RunControl,
    mut on_second: impl FnMut(&TimelineEntry),
) -> Result<RunOutcome, EngineError> {
    let shards = effective_shards(plan);
    let watch = plan.observers.open_watch()?;
    let mut observers = (!plan.observers.is_empty()).then(|| observe::Running::start(&plan.observers, watch));
    let tls = plan.tls_client()?.map(Arc::new);
    let plan_arc = Arc::new(plan.clone());
    let stop = control.token().child_token();
    let (reports_tx, reports) = mpsc::channel();
    let cpu_at_start = ProcessTime::now();
    let started_at = SystemTime::now();
    let start = Instant::now() + START_DELAY;

    let mut threads = Vec::with_capacity(shards);
    for index in 0..shards {
        let setup = ShardSetup {
            index,
            shards,
            plan: plan_arc.clone(),
            tls: tls.clone(),
            start,
            stop: stop.clone(),
            reports: reports_tx.clone(),
        };
        let spawned =
            std::thread::Builder::new().name(format!("pummel-shard-{index}")).spawn(move || shard::run(setup));
        match spawned {
            Ok(handle) => threads.push(handle),
            Err(e) => {
                stop.cancel();
                return Err(EngineError::Spawn(e));
            }
        }
    }
    drop(reports_tx);

    let window_len = plan.abort_window.as_secs().max(1) as usize;
    let mut window: VecDeque<Stats> = VecDeque::with_capacity(window_len + 1);
    let mut pending: BTreeMap<u64, SecondInProgress> = BTreeMap::new();
    let mut last_reported = vec![0u64; shards];
    let mut finished = vec![false; shards];
    let mut stage_totals: Vec<Stats> = (0..plan.stage_count()).map(|_| Stats::default()).collect();
    let mut timeline = Vec::new();
    let mut next_second = 1u64;
    let mut other_errors = Vec::new();
    let mut flows = FlowTallies::for_scenarios(&plan.scenarios);
    let mut aborted: Option<String> = None;
    let mut cpu_last = Duration::ZERO;
    let mut elapsed = Duration::ZERO;

    while let Ok(report) = reports.recv() {
        match report {
            ShardReport::Second { shard, second, stats, in_flight, connections } => {
                last_reported[shard] = last_reported[shard].max(second);
                let slot = pending.entry(second).or_default();
                slot.stats.merge(&stats);
                slot.in_flight += in_flight;
                slot.connections += connections;
            }
            ShardReport::Finished {
                shard,
                tail_second,
                tail,
                stages,
                flows: shard_flows,
                other_errors: messages,
                sending_stopped,
            } => {
                let slot = pending.entry(tail_second).or_default();
                slot.stats.merge(&tail);
                finished[shard] = true;
                elapsed = elapsed.max(sending_stopped);
                for (total, stage) in stage_totals.iter_mut().zip(&stages) {
                    total.merge(stage);
                }
                flows.merge(&shard_flows);
                for message in messages {
                    if other_errors.len() < 10 {
                        other_errors.push(message);
                    }
                }
            }
        }
        // A second is complete once every shard has reported it (or a later one) or finished.
        let complete_up_to =
            (0..shards).map(|i| if finished[i] { u64::MAX } else { last_reported[i] }).min().unwrap_or(u64::MAX);
        while next_second <= complete_up_to {
            let Some(done) = pending.remove(&next_second) else {
                if pending.is_empty() {
                    break;
                }
                next_second += 1;
                continue;
            };
            let cpu_now = cpu_at_start.elapsed();
            let gauges = Gauges {
                warmup: Duration::from_secs(next_second - 1) < plan.warmup,
                target_rate: plan.target_rate_at(Duration::from_secs(next_second - 1)),
                in_flight: done.in_flight,
                connections: done.connections,
                cpu_percent: (cpu_now - cpu_last).as_secs_f64() * 100.0,
            };
            cpu_last = cpu_now;
            let entry = entry(next_second, &done.stats, gauges);
            // The shards' final reports cover the tail after the last whole second; an empty
            // tail is not worth a line of its own.
            let idle_tail = finished.iter().all(|f| *f) && entry.sent == 0 && entry.completed == 0;
            if !idle_tail {
                let mut entry = entry;
                if let Some(running) = observers.as_mut() {
                    running.fill(&mut entry);
                }
                on_second(&entry);
                timeline.push(entry);
            }
            window.push_back(done.stats);
            if window.len() > window_len {
                window.pop_front();
            }
            if aborted.is_none() && !gauges.warmup {
                aborted = check_abort_rules(plan, &window);
                if aborted.is_some() {
                    stop.cancel();
                }
            }
            next_second += 1;
        }
    }
    for handle in threads {
        let _ = handle.join();
    }

    // Statistics cover the planned window, not the grace after it.
    let elapsed = plan.planned_duration().map_or(elapsed, |planned| elapsed.min(planned));
    let measured = elapsed.saturating_sub(plan.warmup);
    let stop_reason = match (aborted, control.is_interrupted()) {
        (Some(reason), _) => StopReason::Aborted(reason),
        (None, true) => StopReason::Interrupted,
        (None, false) => StopReason::Completed,
    };
    let mut total = Stats::default();
    for stage in &stage_totals {
        total.merge(stage);
    }
    let stages = stage_outcomes(plan, stage_totals, elapsed, &stop_reason);
    let cpu_seconds = cpu_at_start.elapsed().as_secs_f64();
    let generator = generator_health(plan, &total, &timeline, measured, cpu_seconds, shards);
    let (probes, target) = observers.map(|o| o.finish(&timeline)).unwrap_or_default();
    Ok(RunOutcome {
        started_at,
        elapsed,
        measured,
        stop: stop_reason,
        stages,
        total,
        timeline,
        other_errors,
        generator,
        probes,
        target,
        flows,
    })
}

/// More shards than connections would leave some idle; fewer than asked is fine. Every
/// scenario is spread over the shards, so a plan of several uses as many as its connections
/// allow.
fn effective_shards(plan: &Plan) -> usize {
    let connections = plan.wanted_connections().max(1);
    plan.threads.min(usize::try_from(connections).unwrap_or(usize::MAX)).max(1)
}

fn check_abort_rules(plan: &Plan, window: &VecDeque<Stats>) -> Option<String> {
    if plan.abort_when.is_empty() {
        return None;
    }
    let mut merged = Stats::default();
    for second in window {
        merged.merge(second);
    }
    let span = Duration::from_secs(window.len() as u64);
    let view = merged.over(span);
    plan.abort_when.iter().find_map(|rule| {
        let value = view.metric_value(&rule.metric)?;
        rule.holds(value).then(|| format!("{} ({} over {}s)", rule.text, rule.format_value(value), window.len()))
    })
}

fn stage_outcomes(plan: &Plan, totals: Vec<Stats>, elapsed: Duration, stop: &StopReason) -> Vec<StageOutcome> {
    let cut_short = match stop {
        StopReason::Completed => None,
        StopReason::Interrupted => Some("interrupted".to_string()),
        StopReason::Aborted(reason) => Some(format!("aborted: {reason}")),
    };
    match plan.rate_stages() {
        [] => vec![StageOutcome {
            target_rate: None,
            measured: elapsed.saturating_sub(plan.warmup),
            stats: totals.into_iter().next().unwrap_or_default(),
            note: cut_short,
        }],
        stages => {
            let mut stage_start = Duration::ZERO;
            stages
                .iter()
                .zip(totals)
                .map(|(stage, stats)| {
                    let stage_end = stage_start + stage.duration;
                    let from = stage_start.max(plan.warmup);
                    let to = stage_end.min(elapsed);
                    let measured = to.saturating_sub(from);
                    let note = if elapsed < stage_end && elapsed > stage_start {
                        cut_short
                            .as_ref()
                            .map(|why| format!("ended after {:.0} s: {why}", (elapsed - stage_start).as_secs_f64()))
                    } else if elapsed <= stage_start && cut_short.is_some() {
                        Some("not run".to_string())
                    } else {
                        None
                    };
                    stage_start = stage_end;
                    StageOutcome { target_rate: Some(stage.rate), measured, stats, note }
                })
                .collect()
        }
    }
}

/// Judges whether the generator limited the run. CPU use is read from the measured seconds of
/// the timeline only, so start-up, warmup and the final grace do not count; runs shorter than a
/// second are too short to judge by CPU.
fn generator_health(
    plan: &Plan,
    total: &Stats,
    timeline: &[TimelineEntry],
    measured: Duration,
    cpu_seconds: f64,
    threads: usize,
) -> GeneratorHealth {
    let lag_p99_ms = histogram_stat_ms(&total.schedule_lag, &Stat::Percentile(99.0));
    // Whole seconds inside the sending window; the tail entry after it holds only the grace.
    let sending_end = (plan.warmup + measured).as_secs_f64().ceil() as u64;
    let measured_seconds: Vec<&TimelineEntry> =
        timeline.iter().filter(|e| !e.warmup && e.second <= sending_end).collect();
    let cpu_share = if measured >= Duration::from_secs(1) && !measured_seconds.is_empty() {
        let busy: f64 = measured_seconds.iter().map(|e| e.cpu_percent / 100.0).sum();
        busy / (measured_seconds.len() as f64 * threads as f64)
    } else {
        0.0
    };
    let achieved = total.over(measured).achieved_rate();
    let target = plan.mean_target_rate();
    let bottleneck = if let Some(lag) = lag_p99_ms.filter(|lag| *lag > 10.0) {
        Some(format!(
            "schedule lag p99 was {lag:.1} ms (> 10 ms): pummel could not send on time, so the results understate what the target can do"
        ))
    } else if cpu_share >= 0.9 && target.is_none_or(|t| achieved < 0.95 * t) {
        Some(format!(
            "pummel used {:.0}% of its {threads} core(s): the generator may be the bottleneck; add threads or machines",
            cpu_share * 100.0
        ))
    } else {
        None
    };
    GeneratorHealth { cpu_seconds, threads, lag_p99_ms, bottleneck }
}
