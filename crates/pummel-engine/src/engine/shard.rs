//! One shard: a single-threaded runtime that owns its connections, its slice of every
//! scenario and its own figures. Nothing here is shared with other threads except the report
//! channel.
//!
//! A shard runs the plan's scenarios (`crate::load` decides when their work starts,
//! `crate::exec` what their users do), reports each second's figures, and stops sending at the
//! planned end, on an abort or an interrupt. Requests in flight then get the plan's drain time
//! (`--drain`); what is still under way after it is abandoned, and counts as failed
//! `unanswered` (sent) or dropped (never sent) as its value is dropped (see `measure::meter`).

use std::cell::Cell;
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dial::{Dialer, TlsClient};
use crate::engine::live::NameCounts;
use crate::load::stripe::Stripe;
use crate::measure::meter::{Meter, Totals};
use crate::measure::stats::Stats;
use crate::measure::tallies::FlowTallies;
use crate::plan::Plan;
use crate::request_log::ShardLog;

/// Time after the planned end during which an open-model arrival may still go out: the
/// dispatcher ends with its schedule, and this only lets its last arrivals, which a busy
/// machine wakes slightly late, leave.
pub(crate) const DISPATCH_SLACK: Duration = Duration::from_millis(100);

/// What a shard tells the collector.
pub(crate) enum ShardReport {
    /// The stats of one second (the last one may be shorter), the gauges at its end, and the
    /// share of it the shard's thread was busy.
    Second {
        shard: usize,
        second: u64,
        stats: Box<Stats>,
        in_flight: u64,
        waiting: u64,
        connections: u64,
        thread_busy: f64,
        /// Scenarios that started in the second.
        started: Vec<usize>,
        /// Per-name counts of the second (`engine::live`).
        named: Vec<NameCounts>,
    },
    /// The shard ended; its per-stage totals.
    Finished {
        shard: usize,
        /// The stats since the last whole second, and the second they are reported under.
        tail_second: u64,
        tail: Box<Stats>,
        /// Per-name counts since the last whole second.
        tail_named: Vec<NameCounts>,
        stages: Vec<Stats>,
        /// Plan-file tallies (per request name, check, branch and scenario).
        flows: Box<FlowTallies>,
        other_errors: Vec<String>,
        /// When this shard stopped starting requests, from the common start.
        sending_stopped: Duration,
        /// The share of the time since the last whole second the shard's thread was busy.
        thread_busy: f64,
        /// Scenarios that started since the last whole second.
        started: Vec<usize>,
    },
    /// A shard in another process that will report no more (its agent was lost): the seconds
    /// stop waiting for it; with `abort`, the run ends for that reason.
    Gone { shard: usize, abort: Option<String> },
}

/// Everything a shard needs to start; built by the collector.
pub(crate) struct ShardSetup {
    pub index: usize,
    pub shards: usize,
    pub plan: Arc<Plan>,
    /// The TLS client configuration of each host (`https://`), in the plan's order of hosts.
    pub tls: Vec<Option<Arc<TlsClient>>>,
    pub start: std::time::Instant,
    pub stop: CancellationToken,
    pub reports: Sender<ShardReport>,
    /// Where the shards tell each other that a scenario ended (for `after`).
    pub ends: Arc<crate::load::ScenarioEnds>,
    /// The request log's writer, when the plan logs requests.
    pub log: Option<crate::request_log::LogLink>,
    /// The write log's writer, when the plan has writes (`writes::spill`).
    pub writes: Option<std::sync::mpsc::SyncSender<Vec<u8>>>,
}

/// Runs the shard to its end on the current thread.
pub(crate) fn run(setup: ShardSetup) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(setup));
    Ok(())
}

/// What every task of a shard shares: the plan, the shard's place among the others, its
/// request budget, its figures and its way to the target.
pub(crate) struct Shard {
    /// This shard's number, 0-based.
    pub index: usize,
    /// How many shards run.
    pub shards: usize,
    pub plan: Arc<Plan>,
    /// The common start of every shard.
    pub start: Instant,
    /// Cancelled when no new request may start (deadline, abort or interrupt).
    pub stop_sending: CancellationToken,
    /// Requests this shard may still start (`-n`), if bounded.
    permits: Cell<Option<u64>>,
    /// Where this shard's figures go.
    pub meter: Rc<Meter>,
    /// How this shard opens connections to the target (addresses and source addresses in
    /// turn, timeouts, its own TLS client and session cache).
    pub dialer: Rc<Dialer>,
    /// The dialers of the plan's other hosts (`Plan::other_targets`), in order.
    other_dialers: Vec<Rc<Dialer>>,
    /// The last whole second handed to the collector.
    seconds_reported: Cell<u64>,
    /// The thread's CPU clock at the last report, and when it was read.
    cpu_mark: Cell<Option<(cpu_time::ThreadTime, Instant)>>,
    /// Which scenarios ended on every shard (a scenario `after` another waits for it).
    pub ends: Arc<crate::load::ScenarioEnds>,
    /// This shard's side of the request log (`--log-requests`).
    pub log: Option<ShardLog>,
}

impl Shard {
    /// The share of its time this shard's thread was busy since the last call, 0..=1 (call
    /// it on the shard's own thread: the clock is the calling thread's). A tick that comes late
    /// (a busy thread delays its own tick) is measured over the time that really passed.
    fn thread_busy_since_mark(&self) -> f64 {
        let now = cpu_time::ThreadTime::try_now().ok().map(|cpu| (cpu, Instant::now()));
        let busy = match (now, self.cpu_mark.get()) {
            (Some((cpu, at)), Some((last_cpu, last_at))) => {
                let wall = at.saturating_duration_since(last_at).as_secs_f64();
                if wall > 0.0 { (cpu.duration_since(last_cpu).as_secs_f64() / wall).min(1.0) } else { 0.0 }
            }
            _ => 0.0,
        };
        self.cpu_mark.set(now);
        busy
    }

    /// The dialer of host `target` (0: the plan's first).
    pub fn dialer_for(&self, target: usize) -> &Rc<Dialer> {
        match target {
            0 => &self.dialer,
            i => self.other_dialers.get(i - 1).unwrap_or(&self.dialer),
        }
    }

    /// The arrivals, users and connections this shard takes: its thread's stripe of its
    /// segment's (see `load::stripe`). Exact whatever thread count each segment's process runs.
    pub fn stripe(&self) -> Stripe {
        Stripe::new(&self.plan.segment, self.shards, self.index)
    }

    /// This shard's part of `total` items (iterations, requests, pool bounds): its segment's
    /// share, split over the segment's shards; the parts add up to `total`.
    pub fn share_of(&self, total: u64) -> u64 {
        self.plan.segment.thread_share(total, self.shards, self.index)
    }

    /// Takes one request permit; false when the request budget is spent or sending stopped.
    pub fn take_permit(&self) -> bool {
        !self.stop_sending.is_cancelled() && crate::load::take_one(&self.permits)
    }
}

/// This shard's part of a run's request count `n` (`-n`). In a plan of closed scenarios only,
/// the count is dealt out over the users (user `g` of all the plan's users gets its share of
/// `n`), so a shard, or a segment, gets what its own users are owed: one with no users (more
/// segments than users) gets none, and nothing is lost. Otherwise it is dealt out as the
/// arrivals are, by stripe.
fn request_budget(plan: &Plan, n: u64, shards: usize, index: usize) -> u64 {
    let closed: Option<Vec<(u64, u64)>> = plan
        .scenarios
        .list
        .iter()
        .map(|scenario| match &scenario.load {
            crate::plan::Load::Closed(closed) => {
                Some((closed.connections as u64, scenario.users_per_connection() as u64))
            }
            _ => None,
        })
        .collect();
    let Some(closed) = closed else { return plan.segment.thread_share(n, shards, index) };
    let total: u64 = closed.iter().map(|(users, _)| users).sum();
    let stripe = Stripe::new(&plan.segment, shards, index);
    let mut budget = 0;
    let mut first = 0;
    for (users, per_connection) in closed {
        for user in 0..users {
            if stripe.owns(crate::load::closed::connection_of(user, per_connection)) {
                budget += crate::load::share(n, total as usize, (first + user) as usize);
            }
        }
        first += users;
    }
    budget
}

async fn drive(setup: ShardSetup) {
    let plan = setup.plan.clone();
    let start = Instant::from_std(setup.start);
    let stop_sending = setup.stop.child_token();
    let shard = Rc::new(Shard {
        index: setup.index,
        shards: setup.shards,
        start,
        stop_sending: stop_sending.clone(),
        permits: Cell::new(plan.stop.requests.map(|n| request_budget(&plan, n, setup.shards, setup.index))),
        meter: Rc::new({
            let meter = Meter::new(start, plan.warmup, plan.planned_duration(), &plan.rate_stages(), &plan.scenarios);
            match setup.writes {
                Some(batches) => meter.with_write_log(batches),
                None => meter,
            }
        }),
        dialer: Rc::new(Dialer::new(
            setup.index,
            plan.target.addrs.clone(),
            plan.source_addrs.clone(),
            plan.connect_timeout,
            setup.tls.first().and_then(|t| t.as_deref()),
        )),
        other_dialers: plan
            .other_targets
            .iter()
            .enumerate()
            .map(|(i, other)| {
                Rc::new(Dialer::new(
                    setup.index,
                    other.target.addrs.clone(),
                    plan.source_addrs.clone(),
                    other.connect_timeout,
                    setup.tls.get(i + 1).and_then(|t| t.as_deref()),
                ))
            })
            .collect(),
        seconds_reported: Cell::new(0),
        cpu_mark: Cell::new(None),
        ends: setup.ends.clone(),
        log: setup.log.map(|link| link.shard_log(start, setup.shards)),
        plan,
    });

    // A start agreed with other processes (`--start-at`) may be a while ahead: an interrupt
    // ends the wait.
    tokio::select! {
        () = tokio::time::sleep_until(start) => {}
        () = stop_sending.cancelled() => {}
    }
    shard.thread_busy_since_mark();
    let deadline = shard.plan.planned_duration().map(|d| start + d + DISPATCH_SLACK);
    let ticker = tokio::task::spawn_local(tick_seconds(shard.clone(), setup.reports.clone()));

    let mut workers = JoinSet::new();
    workers.spawn_local(crate::load::run(shard.clone()));

    // Sending stops at the deadline, on abort/interrupt, or when every scenario is done.
    let sending_stopped = {
        let all_done = async { while workers.join_next().await.is_some() {} };
        tokio::pin!(all_done);
        let deadline_sleep = async {
            match deadline {
                Some(d) => tokio::time::sleep_until(d).await,
                None => std::future::pending().await,
            }
        };
        let workers_done = tokio::select! {
            _ = &mut all_done => true,
            _ = deadline_sleep => false,
            _ = stop_sending.cancelled() => false,
        };
        stop_sending.cancel();
        shard.meter.sending_stopped();
        let sending_stopped = Instant::now().saturating_duration_since(start);
        if !workers_done {
            // In-flight requests may still end; what is left after the drain is abandoned.
            let _ = tokio::time::timeout(shard.plan.drain_time(), &mut all_done).await;
        }
        sending_stopped
    };
    // Every task is dropped before the totals are read, so that the requests they held are
    // counted (unanswered or dropped) as their values drop.
    workers.shutdown().await;
    abandon_the_rest(&shard).await;
    ticker.abort();

    if let Some(log) = &shard.log {
        log.finish();
    }
    shard.meter.finish_writes();
    let tail_named = shard.meter.take_named();
    let Totals { tail, stages, flows, other_errors } = shard.meter.totals();
    // Everything since the last tick belongs to the next second, however far into it we are.
    let _ = setup.reports.send(ShardReport::Finished {
        shard: shard.index,
        tail_second: shard.seconds_reported.get() + 1,
        tail: Box::new(tail),
        tail_named,
        stages,
        flows: Box::new(flows),
        other_errors,
        sending_stopped,
        thread_busy: shard.thread_busy_since_mark(),
        started: shard.meter.take_started(),
    });
}

/// Lets the runtime drop the tasks that the shutdown aborted further down (a load model's own
/// users are tasks of a set that its aborted task only dropped: tokio drops their futures the
/// next time it runs them, not at once), so that every request they held ends before the
/// totals are read. Bounded: it gives up after [`ABANDON_WAIT`].
async fn abandon_the_rest(shard: &Shard) {
    let deadline = std::time::Instant::now() + ABANDON_WAIT;
    while shard.meter.in_flight() > 0 && std::time::Instant::now() < deadline {
        tokio::task::yield_now().await;
    }
}

/// The longest wait for aborted tasks to be dropped at a shard's end.
const ABANDON_WAIT: Duration = Duration::from_secs(2);

/// Hands the interval stats to the collector at every whole second since the start.
/// The tick runs on the shard's own thread, so the thread's CPU clock it reads is the shard's.
async fn tick_seconds(shard: Rc<Shard>, reports: Sender<ShardReport>) {
    let mut second = 0;
    loop {
        second += 1;
        tokio::time::sleep_until(shard.start + Duration::from_secs(second)).await;
        let thread_busy = shard.thread_busy_since_mark();
        let report = ShardReport::Second {
            shard: shard.index,
            second,
            stats: Box::new(shard.meter.take_second()),
            in_flight: shard.meter.in_flight(),
            waiting: shard.meter.waiting(),
            connections: shard.meter.connections(),
            thread_busy,
            started: shard.meter.take_started(),
            named: shard.meter.take_named(),
        };
        if reports.send(report).is_err() {
            return;
        }
        shard.seconds_reported.set(second);
    }
}
