//! The collector: starts the shards, merges what they report each second into the timeline,
//! judges which side limited each second, evaluates abort rules over a sliding window, and
//! assembles the outcome.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Arc;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use cpu_time::ProcessTime;

use super::live::{self, LiveSecond, NameCounts};
use super::shard::{self, ShardReport, ShardSetup};
use super::{EngineError, GeneratorHealth, RunControl, RunOutcome, StageOutcome, StopReason};
use crate::dial::TlsClient;
use crate::measure::limit::{self, LoadShape, RunFigures, SecondJudge};
use crate::measure::stats::Stats;
use crate::measure::tallies::FlowTallies;
use crate::measure::timeline::{Gauges, entry};
use crate::observe;
use crate::plan::{Load, Plan};
use crate::request_log::Writer as RequestLogWriter;
use crate::writes::spill::Writer as WriteLogWriter;
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
    waiting: u64,
    connections: u64,
    /// The largest share of the second (or of the tail) one shard's thread was busy.
    busiest_thread: f64,
    /// Shards that reported the second (its thread figure is only known from those).
    reported: usize,
    /// Scenarios that started in it (on any shard).
    started: Vec<usize>,
    /// Per-name counts of the second, for the live feed.
    named: Vec<NameCounts>,
    /// Per-agent counts of the second (a coordinator's run), for the live feed.
    agents: Vec<NameCounts>,
}

/// Where the shards' reports come from: threads of this process, or shards in agent processes
/// (`engine::remote`) whose reports a coordinator receives.
pub(super) enum Source {
    /// Shard threads this collector starts.
    Local,
    /// Shards elsewhere; the caller relays their reports.
    Remote(super::remote::RemoteShards),
}

pub(super) fn run(
    plan: &Plan,
    control: &RunControl,
    source: Source,
    mut on_second: impl FnMut(&TimelineEntry),
) -> Result<RunOutcome, EngineError> {
    let mut source = source;
    let watch: Option<Box<dyn observe::Sampler>> = match &mut source {
        Source::Remote(remote) if remote.watch.is_some() => remote.watch.take(),
        _ => plan.observers.open_watch()?.map(|w| Box::new(w) as Box<dyn observe::Sampler>),
    };
    let mut observers =
        (!plan.observers.is_empty() || watch.is_some()).then(|| observe::Running::start(&plan.observers, watch));
    let request_log = match (&plan.request_log, &source) {
        (Some(spec), Source::Local) => Some(
            RequestLogWriter::start(spec, plan.scenarios.clone(), base_url(plan))
                .map_err(|source| EngineError::RequestLog { path: spec.path.display().to_string(), source })?,
        ),
        _ => None,
    };
    let write_log = match (&plan.write_log, &source) {
        (Some(spec), Source::Local) => Some(
            WriteLogWriter::start(spec)
                .map_err(|source| EngineError::WriteLog { path: spec.path.display().to_string(), source })?,
        ),
        _ => None,
    };
    let stop = match &source {
        Source::Local => control.token().child_token(),
        Source::Remote(remote) => remote.stop.clone(),
    };
    let (started_at, start) = match &source {
        Source::Local => start_instant(plan)?,
        Source::Remote(remote) => (remote.started_at, remote.start),
    };
    // The faults' proxies are up before the first request; every fault is undone when this
    // handle finishes or is dropped (an early return below, a panic), or at once when the run
    // is cut short (Ctrl-C, an abort rule).
    let faults = if plan.faults.is_empty() {
        None
    } else {
        let cut = stop.clone();
        Some(pummel_faults::Running::start(&plan.faults, start, move || cut.is_cancelled())?)
    };

    let remote = matches!(source, Source::Remote(_));
    // A coordinator's live feed counts per agent: which agent runs each shard, and its name.
    let (agent_names, agent_of_shard): (Vec<String>, Vec<usize>) = match &source {
        Source::Remote(remote) => (
            remote.agents.iter().map(|(name, _)| name.clone()).collect(),
            remote
                .agents
                .iter()
                .enumerate()
                .flat_map(|(index, (_, shards))| std::iter::repeat_n(index, *shards))
                .collect(),
        ),
        Source::Local => (Vec::new(), Vec::new()),
    };
    let (shards, threads, reports, cpu): (usize, Vec<_>, Box<dyn Iterator<Item = ShardReport>>, CpuClock) = match source
    {
        Source::Local => {
            let shards = effective_shards(plan);
            let (reports_tx, reports) = mpsc::channel();
            let cpu_at_start = ProcessTime::now();
            let links = ShardLinks {
                log: request_log.as_ref().map(RequestLogWriter::link),
                writes: write_log.as_ref().map(WriteLogWriter::link),
            };
            let threads = spawn_shards(plan, shards, start, &stop, &reports_tx, links)?;
            (shards, threads, Box::new(reports.into_iter()), Box::new(move || cpu_at_start.elapsed()))
        }
        Source::Remote(remote) => {
            (remote.shards, Vec::new(), Box::new(remote.inbox.into_iter().map(|i| i.0)), remote.cpu)
        }
    };

    let window_len = plan.abort_window.as_secs().max(1) as usize;
    let mut window: VecDeque<Stats> = VecDeque::with_capacity(window_len + 1);
    let mut pending: BTreeMap<u64, SecondInProgress> = BTreeMap::new();
    let mut last_reported = vec![0u64; shards];
    let mut finished = vec![false; shards];
    let mut stage_totals: Vec<Stats> = (0..plan.stage_count()).map(|_| Stats::default()).collect();
    // Shards elsewhere may be lost before their final report, which carries their totals:
    // until then, what each reported second by second stands in, stage by stage (warmup out).
    let mut reported_so_far: Vec<Vec<Stats>> = if remote { vec![Vec::new(); shards] } else { Vec::new() };
    let mut timeline = Vec::new();
    let mut next_second = 1u64;
    let mut other_errors = Vec::new();
    let mut flows = FlowTallies::for_scenarios(&plan.scenarios);
    let mut aborted: Option<String> = None;
    let mut cpu_last = Duration::ZERO;
    let mut elapsed = Duration::ZERO;
    let mut judge = SecondJudge::new(load_shape(plan, shards));
    let window_seconds = plan.planned_duration().map(|d| d.as_secs_f64().ceil() as u64);

    for report in reports {
        match report {
            ShardReport::Gone { shard, abort } => {
                finished[shard] = true;
                // Its totals never came: the seconds it reported count instead.
                if let Some(stages) = reported_so_far.get_mut(shard) {
                    for (total, stage) in stage_totals.iter_mut().zip(stages.drain(..)) {
                        total.merge(&stage);
                    }
                }
                if let Some(reason) = abort
                    && aborted.is_none()
                {
                    aborted = Some(reason);
                    stop.cancel();
                }
            }
            ShardReport::Second {
                shard,
                second,
                stats,
                in_flight,
                waiting,
                connections,
                thread_busy,
                started,
                named,
            } => {
                last_reported[shard] = last_reported[shard].max(second);
                let offset = Duration::from_secs(second - 1);
                if let Some(stages) = reported_so_far.get_mut(shard)
                    && offset >= plan.warmup
                {
                    stages.resize_with(stage_totals.len(), Stats::default);
                    if let Some(stage) = stages.get_mut(plan.stage_at(offset)) {
                        stage.merge(&stats);
                    }
                }
                let slot = pending.entry(second).or_default();
                slot.stats.merge(&stats);
                slot.in_flight += in_flight;
                slot.waiting += waiting;
                slot.connections += connections;
                slot.busiest_thread = slot.busiest_thread.max(thread_busy);
                slot.reported += 1;
                slot.started.extend(started);
                live::add_all(&mut slot.named, &named);
                add_for_agent(&mut slot.agents, agent_of_shard.get(shard), &stats);
            }
            ShardReport::Finished {
                shard,
                tail_second,
                tail,
                tail_named,
                stages,
                flows: shard_flows,
                other_errors: messages,
                sending_stopped,
                thread_busy,
                started,
            } => {
                let slot = pending.entry(tail_second).or_default();
                slot.started.extend(started);
                slot.stats.merge(&tail);
                live::add_all(&mut slot.named, &tail_named);
                add_for_agent(&mut slot.agents, agent_of_shard.get(shard), &tail);
                slot.busiest_thread = slot.busiest_thread.max(thread_busy);
                slot.reported += 1;
                finished[shard] = true;
                if let Some(stages) = reported_so_far.get_mut(shard) {
                    stages.clear();
                }
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
            let cpu_now = cpu();
            let gauges = Gauges {
                warmup: Duration::from_secs(next_second - 1) < plan.warmup,
                // Nothing is offered in the drain after the window.
                target_rate: plan
                    .target_rate_at(Duration::from_secs(next_second - 1))
                    .filter(|_| window_seconds.is_none_or(|end| next_second <= end)),
                in_flight: done.in_flight,
                waiting: done.waiting,
                connections: done.connections,
                cpu_percent: (cpu_now - cpu_last).as_secs_f64() * 100.0,
                busiest_thread_percent: (done.reported > 0).then_some(done.busiest_thread * 100.0),
            };
            cpu_last = cpu_now;
            let mut entry = entry(next_second, &done.stats, gauges, !plan.segment.is_whole());
            let mut started = done.started.clone();
            started.sort_unstable();
            started.dedup();
            // Only the scenarios that start later than the run (`start`, `after`) are news.
            entry.started = started
                .iter()
                .map(|&i| &plan.scenarios.list[i])
                .filter(|scenario| scenario.starts_later())
                .map(|scenario| scenario.name.clone())
                .collect();
            // The shards' final reports cover the tail after the last whole second; an empty
            // tail is not worth a line of its own.
            let idle_tail =
                finished.iter().all(|f| *f) && entry.sent == 0 && entry.completed == 0 && entry.started.is_empty();
            if !idle_tail {
                let mut entry = entry;
                if let Some(running) = observers.as_mut() {
                    running.fill(&mut entry);
                }
                if let Some(faults) = &faults {
                    entry.faults = faults.take_marks(Duration::from_secs(entry.second));
                }
                // The drain after the window is not judged: nothing is offered then.
                if window_seconds.is_none_or(|end| entry.second <= end) {
                    entry.limit = judge.judge(&entry);
                }
                feed_second(control, &entry, &done, plan, &agent_names);
                on_second(&entry);
                timeline.push(entry);
            } else {
                // Not a line of its own, but its drops still count.
                feed_second(control, &entry, &done, plan, &agent_names);
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
    // Every shard's log went with its thread: the writer has all there is.
    let request_log = request_log.map(RequestLogWriter::finish);
    let write_log = write_log.map(WriteLogWriter::finish);
    let (fault_windows, faults_undone_at_exit) = faults.map(pummel_faults::Running::finish).unwrap_or_default();
    if let Some(last) = timeline.last_mut() {
        last.faults.extend(faults_undone_at_exit.iter().cloned());
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
    let cpu_seconds = cpu().as_secs_f64();
    let judged = measured_seconds(plan, &timeline, measured);
    let generator = generator_health(&total, &judged, cpu_seconds, shards);
    let limit = run_limit(plan, &total, &judged, measured, &generator);
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
        limit,
        request_log,
        write_log,
        faults: fault_windows,
        faults_undone_at_exit,
    })
}

/// The process's CPU time since the run began (every agent's, for shards elsewhere).
pub(super) type CpuClock = Box<dyn Fn() -> Duration + Send>;

/// When the run starts: a little ahead, so that every shard begins together, or at the instant
/// agreed with other processes (`--start-at`).
fn start_instant(plan: &Plan) -> Result<(SystemTime, Instant), EngineError> {
    match plan.start_at {
        Some(at) => {
            let wait = at.duration_since(SystemTime::now()).map_err(|_| {
                EngineError::Plan(crate::plan::PlanError::Invalid(
                    "--start-at is already past: agree on an instant a little ahead".into(),
                ))
            })?;
            Ok((at, Instant::now() + wait))
        }
        None => Ok((SystemTime::now(), Instant::now() + START_DELAY)),
    }
}

/// What the shards log through, besides their reports: the request log and the write log.
#[derive(Default)]
pub(super) struct ShardLinks {
    pub log: Option<crate::request_log::LogLink>,
    pub writes: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

/// Starts `shards` shard threads of `plan`, each reporting to `reports`; on failure the ones
/// started are stopped.
pub(super) fn spawn_shards(
    plan: &Plan,
    shards: usize,
    start: Instant,
    stop: &tokio_util::sync::CancellationToken,
    reports: &mpsc::Sender<ShardReport>,
    links: ShardLinks,
) -> Result<Vec<std::thread::JoinHandle<std::io::Result<()>>>, EngineError> {
    let tls: Vec<Option<Arc<TlsClient>>> = plan.tls_clients()?.into_iter().map(|c| c.map(Arc::new)).collect();
    let plan_arc = Arc::new(plan.clone());
    let ends = Arc::new(crate::load::ScenarioEnds::new(plan.scenarios.list.len(), shards));
    let mut threads = Vec::with_capacity(shards);
    for index in 0..shards {
        let setup = ShardSetup {
            index,
            shards,
            plan: plan_arc.clone(),
            tls: tls.clone(),
            start,
            stop: stop.clone(),
            reports: reports.clone(),
            ends: ends.clone(),
            log: links.log.clone(),
            writes: links.writes.clone(),
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
    Ok(threads)
}

/// `scheme://host[:port]` of the target, which the request log puts before each path.
pub(super) fn base_url(plan: &Plan) -> String {
    let url = &plan.target.url;
    match url.find("://").map(|at| at + 3) {
        Some(host_start) => match url[host_start..].find('/') {
            Some(path_start) => url[..host_start + path_start].to_string(),
            None => url.clone(),
        },
        None => url.clone(),
    }
}

/// Adds a shard's counts of a second to its agent's (a coordinator's run; nothing otherwise).
fn add_for_agent(agents: &mut Vec<NameCounts>, agent: Option<&usize>, stats: &Stats) {
    if let Some(&agent) = agent {
        if agents.len() <= agent {
            agents.resize(agent + 1, NameCounts::default());
        }
        agents[agent].add(&NameCounts::of(stats));
    }
}

/// Hands a closed second to the control's live feeds, if it has any.
fn feed_second(
    control: &RunControl,
    entry: &TimelineEntry,
    done: &SecondInProgress,
    plan: &Plan,
    agent_names: &[String],
) {
    let feeds = control.feeds();
    if feeds.is_empty() {
        return;
    }
    let agents: Vec<(String, NameCounts)> = agent_names
        .iter()
        .enumerate()
        .map(|(index, name)| (name.clone(), done.agents.get(index).copied().unwrap_or_default()))
        .collect();
    for feed in feeds {
        feed.second(&LiveSecond {
            entry,
            stats: &done.stats,
            named: &done.named,
            scenarios: &plan.scenarios,
            agents: &agents,
        });
    }
}

/// What the per-second judgement needs to know of the plan's load.
fn load_shape(plan: &Plan, threads: usize) -> LoadShape {
    let open: Vec<u64> = plan
        .scenarios
        .list
        .iter()
        .filter_map(|s| match &s.load {
            Load::Open(open) => Some(open.max_connections as u64),
            Load::Closed(_) | Load::Hold(_) => None,
        })
        .collect();
    let all_open = !plan.scenarios.list.is_empty() && open.len() == plan.scenarios.list.len();
    LoadShape { open: all_open, pool_connections: all_open.then(|| open.iter().sum()), threads }
}

/// The timeline's measured seconds: out of the warmup, inside the sending window (the tail
/// entry after it holds only the drain).
fn measured_seconds<'a>(plan: &Plan, timeline: &'a [TimelineEntry], measured: Duration) -> Vec<&'a TimelineEntry> {
    let sending_end = (plan.warmup + measured).as_secs_f64().ceil() as u64;
    timeline.iter().filter(|e| !e.warmup && e.second <= sending_end).collect()
}

/// Which side limited the run, judged over its measured seconds; runs shorter than a second
/// are too short to judge.
fn run_limit(
    plan: &Plan,
    total: &Stats,
    seconds: &[&TimelineEntry],
    measured: Duration,
    generator: &GeneratorHealth,
) -> Option<pummel_results::summary::LimitVerdict> {
    if measured < Duration::from_secs(1) {
        return None;
    }
    let view = total.over(measured);
    let figures = RunFigures {
        threads: generator.threads,
        offered: plan.mean_target_rate(),
        sent_rate: view.per_second(total.sent),
        achieved: view.achieved_rate(),
        lag_p99_ms: generator.lag_p99_ms,
        service_p99_ms: histogram_stat_ms(&total.service_time, &Stat::Percentile(99.0)),
        busiest_thread_percent: generator.busiest_thread_percent,
        dropped: total.dropped,
        failures: total.errors.non_zero().collect(),
    };
    let judged: Vec<_> = seconds.iter().map(|e| (*e, e.limit)).collect();
    limit::verdict(&judged, &figures)
}

/// More shards than connections would leave some idle; fewer than asked is fine. Every
/// scenario is spread over the shards, so a plan of several uses as many as its connections
/// allow.
pub(super) fn effective_shards(plan: &Plan) -> usize {
    // A segment's threads serve its share of the connections (an idle thread would hold a
    // share of the request count that no user of it could send).
    let connections = plan.segment.share(plan.wanted_connections()).max(1);
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
    match plan.rate_stages().as_slice() {
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
                    // A segment is offered its share of the stage's rate.
                    let target_rate = Some(stage.rate * plan.segment.fraction());
                    StageOutcome { target_rate, measured, stats, note }
                })
                .collect()
        }
    }
}

/// The generator's own figures: CPU, the busiest thread's median busy share over the measured
/// seconds, schedule lag.
fn generator_health(total: &Stats, seconds: &[&TimelineEntry], cpu_seconds: f64, threads: usize) -> GeneratorHealth {
    let lag_p99_ms = histogram_stat_ms(&total.schedule_lag, &Stat::Percentile(99.0));
    let mut busiest: Vec<f64> = seconds.iter().filter_map(|e| e.busiest_thread_percent).collect();
    busiest.sort_by(f64::total_cmp);
    let busiest_thread_percent = busiest.get(busiest.len() / 2).copied();
    GeneratorHealth { cpu_seconds, threads, lag_p99_ms, busiest_thread_percent }
}
