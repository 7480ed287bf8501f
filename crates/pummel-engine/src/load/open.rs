//! The open model: iterations start on schedule, whether or not earlier ones came back.
//!
//! The dispatcher walks the shard's arrivals ([`super::arrivals`]), waits for each on the
//! microsecond timer ([`super::timer`]), and hands it to an idle
//! user of the scenario's pool, or to a new one while the pool allows (`max_connections`
//! users, each with its own connection; with HTTP/2, `streams` users per connection);
//! otherwise it waits in line, and that wait counts in its latency. A user runs one iteration
//! per arrival, a new virtual user each time (its connection stays).
//!
//! When the flow starts with a request (a quick run is such a flow), that request is due when
//! the arrival is: it is in flight from then on, takes its permit (`-n`) then, and the
//! in-flight bound (`--max-inflight`, by default rate × timeout: `OpenLoad::inflight_bound`)
//! drops it (`dropped`) when that many are already due and unanswered. One still waiting for a
//! user when the run ends was never sent: it counts as dropped. For other flows the bound
//! applies to the iterations waiting or under way.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::rc::Rc;
use std::time::Duration;

use pummel_results::histogram::record;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::arrivals::Arrivals;
use super::timer::ArrivalTimer;
use crate::engine::shard::Shard;
use crate::exec::{Arrival, ScenarioRun, User, arrival};
use crate::plan::OpenLoad;

/// Waits for an arrival longer than this also watch for the scenario's end; shorter ones only
/// check it before and after (registering with the stop token costs more than a short wait).
const WATCH_STOP_ABOVE: Duration = Duration::from_millis(10);
/// Behind schedule, the dispatcher lets the shard's other tasks run after this many arrivals in
/// a row without a wait: otherwise a generator that cannot keep up would dispatch the whole
/// schedule in one go, starving its own users, the per-second tick and every connection, and
/// its lag would show in no second but the first.
const DISPATCH_BURST: u32 = 256;

/// Arrivals waiting for a free user of the pool, with the users serving them.
struct Queue {
    /// Iterations due and waiting for a user.
    waiting: RefCell<VecDeque<Arrival>>,
    /// Wakes an idle user.
    wake: Notify,
    /// Users parked on `wake` that no one has woken yet.
    idle: Cell<usize>,
    /// Users in the pool.
    users: Cell<usize>,
    /// Set when the schedule is exhausted.
    done: Cell<bool>,
}

/// Runs this shard's share of an open scenario: dispatches its arrivals until the schedule,
/// the iteration budget or the scenario ends, then waits for the iterations under way.
pub(crate) async fn run(shard: &Rc<Shard>, run: &Rc<ScenarioRun>, open: &OpenLoad) {
    // Each scenario's arrivals from the run's seed (the shard's own share is mixed in below).
    let seed = crate::flow::seed::mix(shard.plan.seed, &[run.index() as u64]);
    let per_connection = run.scenario().users_per_connection();
    let pool = shard.share_of(open.max_connections as u64).max(1) as usize * per_connection;
    let bound = open.inflight_bound(shard.plan.timeout, open.max_connections.saturating_mul(per_connection));
    let max_inflight = Some(shard.share_of(bound as u64).max(1));
    let first_request = run.first_request();
    let queue = Rc::new(Queue {
        waiting: RefCell::new(VecDeque::new()),
        wake: Notify::new(),
        idle: Cell::new(0),
        users: Cell::new(0),
        done: Cell::new(false),
    });
    let mut users = JoinSet::new();
    let timer = ArrivalTimer::new();
    let planned = run.scenario().planned_duration().unwrap_or(Duration::MAX);
    let mut without_wait = 0u32;
    let mut arrivals = Arrivals::new(&open.stages, open.arrival, &shard.stripe(), seed);
    // The arrival the dispatcher was at when the scenario was stopped, if it was.
    let mut stopped_at = None;
    for offset in arrivals.by_ref() {
        // Behind schedule, the dispatcher does not sleep: it must see the scenario's end here.
        if offset >= planned {
            break;
        }
        if run.stop.is_cancelled() {
            stopped_at = Some(offset);
            break;
        }
        let intended = run.clock() + offset;
        let left = intended.saturating_duration_since(Instant::now());
        if left > WATCH_STOP_ABOVE {
            tokio::select! {
                () = timer.sleep_until(intended) => {}
                () = run.stop.cancelled() => {
                    stopped_at = Some(offset);
                    break;
                }
            }
        } else if !left.is_zero() {
            // A short wait: the stop is seen at the next arrival, without registering for it.
            timer.sleep_until(intended).await;
        }
        if left.is_zero() {
            without_wait += 1;
            if without_wait >= DISPATCH_BURST {
                without_wait = 0;
                tokio::task::yield_now().await;
                if run.stop.is_cancelled() {
                    stopped_at = Some(offset);
                    break;
                }
            }
        } else {
            without_wait = 0;
        }
        let lag = Instant::now().saturating_duration_since(intended);
        if !run.take_iteration() {
            break;
        }
        shard.meter.record(intended, |s| record(&mut s.schedule_lag, lag));
        let first = match first_request {
            Some(name) => {
                if !shard.take_permit() {
                    stopped_at = run.stop.is_cancelled().then_some(offset);
                    break;
                }
                let request = shard.meter.begin(Some(name), intended);
                if max_inflight.is_some_and(|max| shard.meter.in_flight() > max) {
                    request.drop_unsent();
                    continue;
                }
                Some(request)
            }
            None => {
                // No request is due yet: the bound applies to iterations waiting or under way.
                let busy = queue.users.get() - queue.idle.get();
                let pending = (queue.waiting.borrow().len() + busy) as u64;
                if max_inflight.is_some_and(|max| pending >= max) {
                    shard.meter.record(intended, |s| s.dropped += 1);
                    continue;
                }
                None
            }
        };
        queue.waiting.borrow_mut().push_back(Arrival { intended, first });
        if queue.idle.get() > 0 {
            queue.idle.set(queue.idle.get() - 1);
            // The user idle the shortest time: its connection is the warmest, and few
            // connections stay busy instead of every one of the pool waking now and then.
            queue.wake.notify_last();
        } else if queue.users.get() < pool {
            queue.users.set(queue.users.get() + 1);
            users.spawn_local(open_user(shard.clone(), run.clone(), queue.clone()));
        }
    }
    if let Some(offset) = stopped_at {
        count_undispatched(shard, run, planned, std::iter::once(offset).chain(arrivals));
    }
    queue.done.set(true);
    queue.wake.notify_waiters();
    while users.join_next().await.is_some() {}
}

/// Counts as `dropped` the arrivals that were due when the scenario stopped but that a
/// dispatcher behind schedule never sent out: the schedule offered them, so they are not left
/// out of the counts. A run bounded by a request or iteration count has no such debt: what it
/// did not start was never due.
fn count_undispatched(shard: &Shard, run: &ScenarioRun, planned: Duration, rest: impl Iterator<Item = Duration>) {
    if shard.plan.stop.requests.is_some() || run.scenario().iterations.is_some() {
        return;
    }
    let due_until = Instant::now().saturating_duration_since(run.clock()).min(planned);
    for offset in rest.take_while(|offset| *offset < due_until) {
        shard.meter.record(run.clock() + offset, |s| s.dropped += 1);
    }
}

/// One user of the pool: runs queued iterations, a new virtual user each time (its
/// connection stays), until the queue is done.
async fn open_user(shard: Rc<Shard>, run: Rc<ScenarioRun>, queue: Rc<Queue>) {
    let mut user = User::new(&shard, &run);
    loop {
        if run.stop.is_cancelled() {
            break;
        }
        let next = queue.waiting.borrow_mut().pop_front();
        match next {
            Some(due) => arrival(&shard, &run, &mut user, due).await,
            None if queue.done.get() => break,
            None => {
                // The dispatcher takes us off the idle count when it wakes us.
                queue.idle.set(queue.idle.get() + 1);
                tokio::select! {
                    () = queue.wake.notified() => {}
                    () = run.stop.cancelled() => {}
                }
            }
        }
    }
    user.leave();
}
