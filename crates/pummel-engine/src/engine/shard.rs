//! One shard: a single-threaded runtime that owns its connections, its slice of the load and
//! its own stats. Nothing here is shared with other threads except the report channel.
//!
//! The load itself is driven by child modules that share the shard's state and bookkeeping
//! (`record`, `start_request`, `open`, ...): `users` runs scenarios of virtual users — plan
//! files, and every closed- and open-model quick run as a one-scenario plan —, `http2` runs
//! `--http2` quick runs, and `hold` runs `pummel hold`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::sync::Arc;
use std::sync::mpsc::Sender;
use std::time::Duration;

use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use crate::dial::TlsClient;
use crate::dial::{Alpn, Dialer, Opened, TransportError};
use crate::flow::FlowTallies;
use crate::load::arrivals::share;
use crate::measure::stats::Stats;
use crate::plan::{Load, Plan};
use crate::proto::http1::Connection;
use pummel_results::error_kind::ErrorKind;
use pummel_results::histogram::record;

use crate::exec::{self as users, hold};
use crate::proto::http2;

/// How long in-flight requests may finish after sending stopped.
pub(crate) const GRACE: Duration = Duration::from_secs(2);
/// How many `other` error messages a shard keeps.
const KEPT_MESSAGES: usize = 5;

/// What a shard tells the collector.
pub(crate) enum ShardReport {
    /// The stats of one second (the last one may be shorter).
    Second { shard: usize, second: u64, stats: Box<Stats>, in_flight: u64, connections: u64 },
    /// The shard ended; its per-stage totals.
    Finished {
        shard: usize,
        /// The stats since the last whole second, and the second they are reported under.
        tail_second: u64,
        tail: Box<Stats>,
        connections: u64,
        stages: Vec<Stats>,
        /// Plan-file tallies (per request name, check, branch and scenario).
        flows: FlowTallies,
        unfinished: u64,
        other_errors: Vec<String>,
        /// When this shard stopped starting requests, from the common start.
        sending_stopped: Duration,
    },
}

/// Everything a shard needs to start; built by the collector.
pub(crate) struct ShardSetup {
    pub index: usize,
    pub shards: usize,
    pub plan: Arc<Plan>,
    pub request: Arc<[u8]>,
    /// The TLS client configuration of an `https://` run.
    pub tls: Option<Arc<TlsClient>>,
    pub start: std::time::Instant,
    pub stop: CancellationToken,
    pub reports: Sender<ShardReport>,
}

/// Runs the shard to its end on the current thread.
pub(crate) fn run(setup: ShardSetup) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime, drive(setup));
    Ok(())
}

pub(crate) struct Shard {
    pub(crate) index: usize,
    pub(crate) plan: Arc<Plan>,
    pub(crate) request: Arc<[u8]>,
    pub(crate) head_request: bool,
    /// How this shard opens connections to the target (addresses and source addresses in
    /// turn, timeouts, its own TLS client and session cache).
    pub(crate) dialer: Dialer,
    pub(crate) start: Instant,
    pub(crate) warmup_end: Instant,
    /// Cancelled when no new request may start (deadline, abort or interrupt).
    pub(crate) stop_sending: CancellationToken,
    /// Requests this shard may still start (`-n`), if bounded.
    pub(crate) permits: Cell<Option<u64>>,
    pub(crate) stats: RefCell<ShardStats>,
    pub(crate) in_flight: Cell<u64>,
    pub(crate) connections: Cell<u64>,
    /// The last whole second handed to the collector.
    pub(crate) seconds_reported: Cell<u64>,
}

pub(crate) struct ShardStats {
    pub(crate) interval: Stats,
    pub(crate) stages: Vec<Stats>,
    /// Plan-file tallies; empty for a quick run.
    pub(crate) flows: FlowTallies,
    pub(crate) other_errors: Vec<String>,
}

async fn drive(setup: ShardSetup) {
    let plan = setup.plan.clone();
    let start = Instant::from_std(setup.start);
    let stop_sending = setup.stop.child_token();
    let shard = Rc::new(Shard {
        index: setup.index,
        head_request: plan.request.is_head(),
        request: setup.request.clone(),
        dialer: Dialer::new(
            setup.index,
            plan.target.addrs.clone(),
            plan.source_addrs.clone(),
            plan.connect_timeout,
            setup.tls.as_deref(),
        ),
        start,
        warmup_end: start + plan.warmup,
        stop_sending: stop_sending.clone(),
        permits: Cell::new(plan.stop.requests.map(|n| share(n, setup.shards, setup.index))),
        stats: RefCell::new(ShardStats {
            interval: Stats::default(),
            stages: (0..plan.stage_count()).map(|_| Stats::default()).collect(),
            flows: plan.scenarios.as_deref().map(FlowTallies::for_scenarios).unwrap_or_default(),
            other_errors: Vec::new(),
        }),
        in_flight: Cell::new(0),
        connections: Cell::new(0),
        seconds_reported: Cell::new(0),
        plan,
    });

    tokio::time::sleep_until(start).await;
    let deadline = shard.plan.planned_duration().map(|d| start + d + dispatch_slack(&shard.plan.load));
    let ticker = tokio::task::spawn_local(tick_seconds(shard.clone(), setup.reports.clone()));

    let mut workers = JoinSet::new();
    match (&shard.plan.load, shard.plan.scenarios.clone()) {
        (_, Some(scenarios)) => {
            workers.spawn_local(users::drive(shard.clone(), scenarios, setup.shards));
        }
        (_, None) if shard.plan.http2.is_some() => {
            workers.spawn_local(http2::drive(shard.clone(), setup.shards));
        }
        (Load::Hold(held), None) => {
            workers.spawn_local(hold::drive(shard.clone(), held.clone(), setup.shards));
        }
        // The collector turns a quick run into a one-scenario flow (see `Scenarios::of_quick_plan`).
        (Load::Closed(_) | Load::Open(_), None) => {}
    }

    // Sending stops at the deadline, on abort/interrupt, or when every worker is done.
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
    let sending_stopped = Instant::now().saturating_duration_since(start);
    if !workers_done {
        // In-flight requests may still complete; whatever is left after the grace is unfinished.
        let _ = tokio::time::timeout(GRACE, &mut all_done).await;
    }
    ticker.abort();

    let (last_stats, stages, flows, other_errors) = {
        let mut stats = shard.stats.borrow_mut();
        let last = std::mem::take(&mut stats.interval);
        let stages = std::mem::take(&mut stats.stages);
        (last, stages, std::mem::take(&mut stats.flows), std::mem::take(&mut stats.other_errors))
    };
    // Everything since the last tick belongs to the next second, however far into it we are.
    let _ = setup.reports.send(ShardReport::Finished {
        shard: shard.index,
        tail_second: shard.seconds_reported.get() + 1,
        tail: Box::new(last_stats),
        connections: shard.connections.get(),
        stages,
        flows,
        unfinished: shard.in_flight.get(),
        other_errors,
        sending_stopped,
    });
}

/// Time after the planned end during which sending may still happen: the open model's
/// dispatcher ends with its schedule, and this only lets the last arrivals, which the
/// millisecond timer wakes slightly late, still go out.
pub(crate) fn dispatch_slack(load: &Load) -> Duration {
    match load {
        Load::Open(_) => Duration::from_millis(100),
        Load::Closed(_) | Load::Hold(_) => Duration::ZERO,
    }
}

/// Hands the interval stats to the collector at every whole second since the start.
async fn tick_seconds(shard: Rc<Shard>, reports: Sender<ShardReport>) {
    let mut second = 0;
    loop {
        second += 1;
        tokio::time::sleep_until(shard.start + Duration::from_secs(second)).await;
        let stats = std::mem::take(&mut shard.stats.borrow_mut().interval);
        let report = ShardReport::Second {
            shard: shard.index,
            second,
            stats: Box::new(stats),
            in_flight: shard.in_flight.get(),
            connections: shard.connections.get(),
        };
        if reports.send(report).is_err() {
            return;
        }
        shard.seconds_reported.set(second);
    }
}

impl Shard {
    /// Takes one request permit; false when the request budget is spent or sending stopped.
    pub(crate) fn take_permit(&self) -> bool {
        !self.stop_sending.is_cancelled() && crate::load::arrivals::take_one(&self.permits)
    }

    /// Applies `f` to the interval stats and, outside the warmup, to the stage's totals.
    pub(crate) fn record(&self, intended: Instant, f: impl Fn(&mut Stats)) {
        self.record_in(None, intended, f);
    }

    /// As [`record`](Self::record), and also to the totals of the plan-file statistics `name`.
    pub(crate) fn record_in(&self, name: Option<usize>, intended: Instant, f: impl Fn(&mut Stats)) {
        let mut stats = self.stats.borrow_mut();
        f(&mut stats.interval);
        if intended >= self.warmup_end {
            let stage = self.plan.stage_at(intended.saturating_duration_since(self.start));
            if let Some(totals) = stats.stages.get_mut(stage) {
                f(totals);
            }
            if let Some(named) = name.and_then(|n| stats.flows.named.get_mut(n)) {
                f(named);
            }
        }
    }

    pub(crate) fn record_failure(&self, intended: Instant, error: &TransportError) {
        self.record_failure_in(None, intended, error);
    }

    pub(crate) fn record_failure_in(&self, name: Option<usize>, intended: Instant, error: &TransportError) {
        self.record_in(name, intended, |s| s.record_failure(error.kind));
        // `other` says nothing without its message; nor does `tls_error` (unknown issuer? wrong
        // name? an alert?). Messages repeat (a template error fails every request alike), so
        // each distinct one is kept once.
        if matches!(error.kind, ErrorKind::Other | ErrorKind::TlsError) {
            self.note_error(error.detail.clone());
        }
    }

    /// Keeps a message about a failure that is not a request's (a feeder that cannot be read).
    pub(crate) fn note_error(&self, message: String) {
        let mut stats = self.stats.borrow_mut();
        if stats.other_errors.len() < KEPT_MESSAGES && !stats.other_errors.contains(&message) {
            stats.other_errors.push(message);
        }
    }

    /// Opens a connection to the target (TCP, then TLS for `https://`) and records its
    /// connect and handshake times under the request that needed it.
    pub(crate) async fn open(&self, name: Option<usize>, intended: Instant) -> Result<Connection, TransportError> {
        let (stream, opened) = self.dialer.open(Alpn::Http1).await?;
        self.record_opened(name, intended, &opened);
        Ok(Connection::new(stream))
    }

    /// Records what opening a connection took, under the request `intended` (and `name`).
    pub(crate) fn record_opened(&self, name: Option<usize>, intended: Instant, opened: &Opened) {
        self.record_in(name, intended, |s| {
            s.connections_opened += 1;
            record(&mut s.connect_time, opened.connect);
            if let Some(tls) = &opened.tls {
                record(&mut s.tls_handshake_time, tls.took);
                s.tls_resumed += u64::from(tls.resumed);
            }
        });
    }

    /// Admits an open-model request that is due now, `lag` late: takes its permit (`-n`),
    /// drops it when `max_inflight` requests already wait or are in flight, else counts it as
    /// started (under `name` too). The lag is recorded either way. `None`: the budget is
    /// spent, stop dispatching; `Some(false)`: dropped; `Some(true)`: started.
    pub(crate) fn admit(
        &self,
        name: Option<usize>,
        intended: Instant,
        lag: Duration,
        max_inflight: Option<u64>,
    ) -> Option<bool> {
        if !self.take_permit() {
            return None;
        }
        if max_inflight.is_some_and(|max| self.in_flight.get() >= max) {
            self.record(intended, |s| {
                s.dropped += 1;
                record(&mut s.schedule_lag, lag);
            });
            return Some(false);
        }
        self.record(intended, |s| record(&mut s.schedule_lag, lag));
        self.start_request_in(name, intended);
        Some(true)
    }

    /// Counts a request as started.
    pub(crate) fn start_request(&self, intended: Instant) {
        self.start_request_in(None, intended);
    }

    /// Counts a request as started, also under the plan-file statistics `name`.
    pub(crate) fn start_request_in(&self, name: Option<usize>, intended: Instant) {
        self.in_flight.set(self.in_flight.get() + 1);
        self.record_in(name, intended, |s| s.sent += 1);
    }

    /// Counts a request as no longer in flight.
    pub(crate) fn finish(&self) {
        self.in_flight.set(self.in_flight.get().saturating_sub(1));
    }

    pub(crate) fn close(&self, conn: &mut Option<Connection>) {
        if conn.take().is_some() {
            self.connections.set(self.connections.get().saturating_sub(1));
        }
    }
}
