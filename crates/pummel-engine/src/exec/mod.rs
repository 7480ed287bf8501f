//! What a virtual user does: it walks its scenario's flow step by step (requests, think times,
//! blocks, choices, WebSocket exchanges, held connections), whichever load model started it.
//!
//! - this file: the user's state between steps (`User`), the scenario as a shard runs it
//!   (`ScenarioRun`), and the walk;
//! - `request.rs`: an HTTP request over HTTP/1.1 or HTTP/2, its checks and extraction;
//! - `ws.rs`: the WebSocket steps;
//! - `hold.rs`: a held connection (`pummel hold`).
//!
//! Latency counts from when the user wanted to send: the arrival for an iteration's first
//! request in the open model, the tick of an `every` block for the block's first request, and
//! the moment the previous step ended otherwise — so a slow target that delays a user's
//! schedule shows up in its latency instead of being omitted.
//!
//! A user is small: its task, its variables, an idle connection and an optional WebSocket
//! session. Waiting (think times, `every` ticks) is a timer; a held WebSocket session is kept
//! alive while the user waits, and a session the peer closes is counted then.

mod cookies;
mod hold;
mod redirect;
mod request;
mod ws;

use std::cell::Cell;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

pub(crate) use self::hold::held_user;
use self::ws::WsState;
use crate::engine::shard::Shard;
use crate::flow::seed;
use crate::flow::template::Vars;
use crate::flow::{Flow, Scenario, Scenarios, Step};
use crate::load::closed::users_on;
use crate::load::stripe::Stripe;
use crate::measure::meter::{ConnectionGauge, Request};
use crate::plan::{Load, Scheme};
use crate::proto::http1::Connection;
use crate::proto::http2::FlowPool;

/// One scenario as a shard runs it.
pub(crate) struct ScenarioRun {
    /// Index in [`Scenarios::list`].
    index: usize,
    scenarios: Arc<Scenarios>,
    /// Cancelled when the scenario may start nothing more (its end, or the run's).
    pub stop: CancellationToken,
    /// Open model: iterations this shard may still start, if bounded.
    iterations_left: std::cell::Cell<Option<u64>>,
    /// Open model: arrivals so far, numbering the users of this shard.
    arrivals: std::cell::Cell<u64>,
    /// The plan's arrivals this shard takes: its `n`-th arrival is user `stripe.item(n)` of
    /// the scenario, unique over every shard of every segment.
    stripe: Stripe,
    /// The scenario's HTTP/2 connections on this shard, shared by its users; `None`: HTTP/1.1.
    http2: Option<Rc<FlowPool>>,
    /// When the scenario started on this shard: its schedule's zero (see [`ScenarioRun::clock`]).
    pub began: Cell<Instant>,
}

impl ScenarioRun {
    /// Scenario `index` of the plan on `shard`; an error when its HTTP/2 pool cannot be made.
    pub fn new(shard: &Shard, index: usize) -> Result<ScenarioRun, String> {
        let scenarios = shard.plan.scenarios.clone();
        let scenario = &scenarios.list[index];
        // Users and open-model arrivals are striped over every shard of every segment.
        let stripe = shard.stripe();
        let iterations_left = match scenario.load {
            Load::Open(_) => scenario.iterations.map(|n| shard.share_of(n)),
            Load::Closed(_) | Load::Hold(_) => None,
        };
        let http2 = match &scenario.http2 {
            None => None,
            Some(settings) => {
                let streams = settings.streams.max(1);
                let max_connections = match &scenario.load {
                    Load::Closed(closed) => {
                        users_on(closed.connections as u64, streams as u64, &stripe).div_ceil(streams as u64)
                    }
                    Load::Open(open) => shard.share_of(open.max_connections as u64),
                    Load::Hold(_) => 1,
                };
                let plan = &shard.plan;
                Some(FlowPool::new(
                    shard.meter.clone(),
                    shard.dialer.clone(),
                    streams,
                    max_connections.max(1) as usize,
                    plan.target.scheme == Scheme::Https,
                    &plan.target.host_header,
                    plan.timeout,
                )?)
            }
        };
        Ok(ScenarioRun {
            index,
            scenarios,
            stop: shard.stop_sending.child_token(),
            iterations_left: std::cell::Cell::new(iterations_left),
            arrivals: std::cell::Cell::new(0),
            stripe,
            http2,
            began: Cell::new(shard.start),
        })
    }

    /// The zero of the scenario's schedule (arrivals, ramps, user stages, its length): when it
    /// started, which is the run's start unless it has a `start` or comes `after` another.
    pub fn clock(&self) -> Instant {
        self.began.get()
    }

    /// The scenario's place in the plan.
    pub fn index(&self) -> usize {
        self.index
    }

    /// The scenario.
    pub fn scenario(&self) -> &Scenario {
        &self.scenarios.list[self.index]
    }

    /// The statistics of the flow's first step when it is a request: an open-model arrival
    /// counts that request as due when the arrival is.
    pub fn first_request(&self) -> Option<usize> {
        match self.scenario().flow.steps.first() {
            Some(Step::Request(request)) => Some(request.stats),
            _ => None,
        }
    }

    /// Takes one iteration of the open model's budget; false when it is spent.
    pub fn take_iteration(&self) -> bool {
        crate::load::take_one(&self.iterations_left)
    }
}

/// An open-model arrival: when its iteration is due and, when the flow starts with a request,
/// that request (in flight since it was due).
pub(crate) struct Arrival {
    pub intended: Instant,
    pub first: Option<Request>,
}

/// A connection a user holds, counted as open for as long as it lives.
struct Held<T> {
    io: T,
    _gauge: ConnectionGauge,
}

/// A virtual user's state between steps.
pub(crate) struct User {
    vars: Vars,
    conn: Option<Held<Connection>>,
    /// Its idle connections to the plan's other hosts (`[targets.NAME]`), by host index − 1;
    /// empty for a plan of one host.
    others: Vec<Option<Held<Connection>>>,
    /// What the user's WebSocket steps keep between them; boxed, since most users of most
    /// runs never open a session (a held user is counted in KiB).
    ws: Option<Box<WsState>>,
    /// The user's own generator (see `flow::seed`): in a `Cell`, so that a render, which only
    /// borrows the user, can lend it to the plan functions.
    rng: Cell<SmallRng>,
    /// The scenario's shared HTTP/2 connections, when it speaks HTTP/2 (then `conn` stays unused).
    http2: Option<Rc<FlowPool>>,
    /// When the user's active window ends (user stages); `None` while it lasts to the end.
    leave_at: Option<Instant>,
    /// An open-model arrival's first request, due when the arrival was.
    first: Option<Request>,
    /// The user's cookies (`exec::cookies`), from its first `Set-Cookie` on.
    jar: cookies::Jar,
}

impl User {
    /// A new user of `run` on `shard`, until [`User::become_user`] numbers it.
    pub fn new(shard: &Shard, run: &ScenarioRun) -> User {
        User {
            vars: Vars::new(run.scenarios.globals.clone(), shard.index as u64),
            conn: None,
            others: Vec::new(),
            ws: None,
            rng: Cell::new(seed::user_rng(shard.plan.seed, run.index, u64::MAX - shard.index as u64)),
            http2: run.http2.clone(),
            leave_at: None,
            first: None,
            jar: None,
        }
    }

    /// Makes this the virtual user number `id` of its scenario: its variables start afresh
    /// (`{{ user }}` is `id`) and its generator is the one the run's seed gives that number.
    fn become_user(&mut self, shard: &Shard, run: &ScenarioRun, id: u64) {
        self.vars = Vars::new(run.scenarios.globals.clone(), id);
        self.rng = Cell::new(seed::user_rng(shard.plan.seed, run.index, id));
        self.jar = None;
    }

    /// Runs `render` with the user's generator behind the plan functions (`random_int`,
    /// `uuid`, ...), so that a seeded run renders the same values for the same user.
    fn rendering<R>(&self, render: impl FnOnce() -> R) -> R {
        let rng = self.rng.replace(SmallRng::seed_from_u64(0));
        let (result, rng) = seed::rendering_with(rng, render);
        self.rng.set(rng);
        result
    }

    /// True once the user's active window has ended.
    fn must_leave(&self) -> bool {
        self.leave_at.is_some_and(|at| Instant::now() >= at)
    }

    /// Sets up iteration `n`: counts it and takes a row of every feeder the scenario reads.
    /// False when one is exhausted (`when_exhausted = "end"`): the user stops.
    fn begin_iteration(&mut self, shard: &Shard, run: &ScenarioRun, n: u64) -> bool {
        self.vars.set_iteration(n);
        for feeder in run.scenario().feeders.iter().filter_map(|&i| run.scenarios.feeders.get(i)) {
            match feeder.next_row_in(self.rng.get_mut(), &shard.plan.segment) {
                Ok(Some(row)) if feeder.is_flat() => {
                    for column in row.columns() {
                        self.vars.set(column, row.get(column).unwrap_or_default().to_string());
                    }
                }
                Ok(Some(row)) => self.vars.set_row(feeder.name(), row),
                Ok(None) => return false,
                Err(e) => {
                    shard.meter.note_error(format!("feeder {}: {e}", feeder.name()));
                    return false;
                }
            }
        }
        shard.meter.iteration(run.index);
        true
    }

    /// Ends an iteration: the values of the scenario's `export` variables it set are
    /// collected (an iteration whose extraction failed has none to give).
    fn end_iteration(&self, shard: &Shard, run: &ScenarioRun) {
        for name in &run.scenario().export {
            if let Some(value) = self.vars.get(name) {
                shard.meter.export(name, value);
            }
        }
    }

    /// The slot of the user's idle connection to host `target`.
    fn idle_slot(&mut self, target: usize) -> &mut Option<Held<Connection>> {
        match target {
            0 => &mut self.conn,
            i => {
                if self.others.len() < i {
                    self.others.resize_with(i, || None);
                }
                &mut self.others[i - 1]
            }
        }
    }

    /// Closes the user's connection and session at its end.
    pub fn leave(&mut self) {
        self.conn = None;
        self.others.clear();
        self.jar = None;
        self.close_ws(false);
        self.ws = None;
    }
}

/// A closed-model user: iterations back to back during each of its active windows, until its
/// budget, the feeders or the scenario end. When a window closes (fewer users wanted), the
/// user leaves at the end of its current step, closing its connection and session.
pub(crate) async fn closed_user(
    shard: Rc<Shard>,
    run: Rc<ScenarioRun>,
    id: u64,
    windows: Vec<(Duration, Option<Duration>)>,
) {
    let mut user = User::new(&shard, &run);
    user.become_user(&shard, &run, id);
    let iterations = run.scenario().iterations;
    let mut iteration = 0;
    'windows: for (start, end) in windows {
        let start = run.clock() + start;
        if Instant::now() < start {
            tokio::select! {
                () = sleep_until(start) => {}
                () = run.stop.cancelled() => break,
            }
        }
        user.leave_at = end.map(|end| run.clock() + end);
        while iterations.is_none_or(|n| iteration < n) && !run.stop.is_cancelled() && !user.must_leave() {
            if !user.begin_iteration(&shard, &run, iteration) {
                break 'windows;
            }
            let mut intended = None;
            let walked = walk_steps(&shard, &run, &mut user, &run.scenario().flow, &mut intended).await;
            user.end_iteration(&shard, &run);
            iteration += 1;
            if !walked {
                break;
            }
        }
        user.leave();
        if run.stop.is_cancelled() || iterations.is_some_and(|n| iteration >= n) {
            break;
        }
    }
    user.leave();
}

/// An open-model arrival: one iteration of the flow by `user`, a new virtual user each time.
pub(crate) async fn arrival(shard: &Rc<Shard>, run: &Rc<ScenarioRun>, user: &mut User, due: Arrival) {
    let n = run.arrivals.get();
    run.arrivals.set(n + 1);
    user.become_user(shard, run, run.stripe.item(n));
    user.close_ws(false);
    user.ws = None;
    if !user.begin_iteration(shard, run, 0) {
        // Its first request, if it was due, is dropped with it: it never went out.
        run.stop.cancel();
        return;
    }
    user.first = due.first;
    let mut intended = Some(due.intended);
    walk_steps(shard, run, user, &run.scenario().flow, &mut intended).await;
    user.end_iteration(shard, run);
    // A flow that ended before its first step leaves nothing behind.
    user.first = None;
}

type Walk<'a> = Pin<Box<dyn Future<Output = bool> + 'a>>;

/// [`walk_steps`] of a nested flow, boxed: a flow's future holds its nested flows' only
/// through this indirection, so an iteration's own future stays small and unboxed.
fn walk<'a>(
    shard: &'a Rc<Shard>,
    run: &'a Rc<ScenarioRun>,
    user: &'a mut User,
    flow: &'a Flow,
    intended: &'a mut Option<Instant>,
) -> Walk<'a> {
    Box::pin(walk_steps(shard, run, user, flow, intended))
}

/// Walks `flow` once. `intended` is when the next request is due (taken by the first request
/// that needs it); false when the user must stop (the scenario ended, the budget is spent).
async fn walk_steps(
    shard: &Rc<Shard>,
    run: &Rc<ScenarioRun>,
    user: &mut User,
    flow: &Flow,
    intended: &mut Option<Instant>,
) -> bool {
    for step in &flow.steps {
        if run.stop.is_cancelled() || user.must_leave() {
            return false;
        }
        match step {
            Step::Request(step) => {
                let due = intended.take().unwrap_or_else(Instant::now);
                // An open-model arrival's first request was due (and took its permit) when
                // the arrival was.
                let request = match user.first.take() {
                    Some(request) => request,
                    None if shard.take_permit() => shard.meter.begin(Some(step.stats), due),
                    None => {
                        run.stop.cancel();
                        return false;
                    }
                };
                request::send(shard, user, step, request).await;
            }
            Step::Think(think) => {
                // The next request is due when the pause ends, not before.
                *intended = None;
                let until = Instant::now() + think.draw(user.rng.get_mut());
                if !pause(shard, run, user, until).await {
                    return false;
                }
            }
            Step::Block(block) => {
                let mut done = 0;
                let mut tick = Instant::now();
                while block.repeat.is_none_or(|n| done < n) {
                    let mut due = None;
                    if let Some(every) = block.every {
                        if done > 0 {
                            tick += every;
                            if !pause(shard, run, user, tick).await {
                                return false;
                            }
                        }
                        due = Some(tick);
                    }
                    if !walk(shard, run, user, &block.flow, &mut due).await {
                        return false;
                    }
                    done += 1;
                }
            }
            Step::Choose(choice) => {
                let Some(branch) = choice.pick(user.rng.get_mut()) else { continue };
                shard.meter.branch(branch.id);
                if !walk(shard, run, user, &branch.flow, intended).await {
                    return false;
                }
            }
            // The WebSocket steps are boxed: an HTTP user's task does not carry their futures.
            Step::WsConnect(connect) => {
                let due = intended.take().unwrap_or_else(Instant::now);
                Box::pin(ws::connect(shard, user, connect, due)).await;
            }
            Step::WsSend(send) => {
                let due = intended.take().unwrap_or_else(Instant::now);
                Box::pin(ws::send(shard, user, send, due)).await;
            }
            Step::WsExpect(expect) => Box::pin(ws::expect(shard, user, expect)).await,
            Step::WsClose(close) => Box::pin(ws::close(shard, user, close)).await,
            // A held connection is the whole flow of a hold scenario (`held_user`).
            Step::Hold(_) => {}
        }
    }
    true
}

/// Waits until `until`, keeping a WebSocket session alive meanwhile; false when the scenario
/// ended first.
async fn pause(shard: &Shard, run: &ScenarioRun, user: &mut User, until: Instant) -> bool {
    // A user whose window closes first stops waiting then, and leaves.
    let leaving = user.leave_at.is_some_and(|at| at < until);
    let until = user.leave_at.map_or(until, |at| at.min(until));
    loop {
        let Some(session) = user.ws.as_mut().and_then(|ws| ws.session.as_mut()) else {
            return tokio::select! {
                () = sleep_until(until) => !leaving,
                () = run.stop.cancelled() => false,
            };
        };
        // Boxed, like the WebSocket steps: a pause without a session stays small.
        let woke = Box::pin(async {
            tokio::select! {
                () = sleep_until(until) => Err(!leaving),
                () = run.stop.cancelled() => Err(false),
                error = session.session.idle() => Ok(error),
            }
        })
        .await;
        match woke {
            Err(done) => return done,
            Ok(error) => ws::broke_while_idle(shard, user, &error),
        }
    }
}
