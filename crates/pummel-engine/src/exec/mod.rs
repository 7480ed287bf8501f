//! Scenarios of virtual users walking their flows: plan files, and every closed- and
//! open-model quick run, which is a one-scenario plan whose flow is its one request (encoded
//! once, like wrk's). One engine path for both.
//!
//! Closed model: each user of a scenario is one task that runs the flow again and again
//! (`iterations` times, or until the scenario ends), keeping its connection, its WebSocket
//! session and its variables across steps and iterations; with stages of users, a user is
//! active only in its windows. Open model: the dispatcher starts an iteration per arrival on a
//! pool of users (each with its own connection, or sharing the scenario's HTTP/2
//! connections), whose variables start over at every arrival.
//!
//! Latency counts from when the user wanted to send: the arrival for an iteration's first
//! request in the open model, the tick of an `every` block for the block's first request, and
//! the moment the previous step ended otherwise — so a slow target that delays a user's
//! schedule shows up in its latency instead of being omitted.
//!
//! A user is small: its task, its variables, an idle connection (see `hold`) and an optional
//! WebSocket session. Waiting (think times, `every` ticks) is a timer; a held WebSocket session
//! is kept alive while the user waits, and a session the peer closes is counted then.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::SeedableRng;
use rand::rngs::SmallRng;
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};
use tokio_util::sync::CancellationToken;

use crate::dial::TransportError;
use crate::engine::shard::Shard;
use crate::flow::template::Vars;
use crate::flow::{
    Flow, RenderedRequest, RequestStep, Scenario, Scenarios, Step, WsExpectStep, WsMatcher, user_windows,
};
use crate::inspect::check::json_equals;
use crate::inspect::{JsonBody, ResponseView};
use crate::load::arrivals::{Arrivals, share};
use crate::plan::{Load, OpenLoad};
use crate::proto::http1::Connection;
use crate::proto::http1::encode_head;
use crate::proto::http2::{Capture, FlowPool, Kept};
use crate::proto::ws::{WsSession, WsTarget};
use pummel_results::error_kind::ErrorKind;
use pummel_results::histogram::record;

pub mod hold;

/// Most body bytes kept for checks and extraction.
const CAPTURE_LIMIT: usize = 1 << 20;

/// One scenario as a shard runs it.
pub(crate) struct ScenarioRun {
    /// Index in [`Scenarios::list`].
    index: usize,
    scenarios: Arc<Scenarios>,
    /// Cancelled when the scenario may start nothing more (its end, or the run's).
    stop: CancellationToken,
    /// Open model: iterations this shard may still start, if bounded.
    iterations_left: Cell<Option<u64>>,
    /// Open model: arrivals so far, numbering the users of this shard.
    arrivals: Cell<u64>,
    shards: u64,
    shard: u64,
    /// The scenario's HTTP/2 connections on this shard, shared by its users; `None`: HTTP/1.1.
    http2: Option<Rc<FlowPool>>,
}

impl ScenarioRun {
    fn scenario(&self) -> &Scenario {
        &self.scenarios.list[self.index]
    }

    /// The scenario's planned length (open model), for the dispatcher.
    pub(crate) fn planned(&self) -> Option<Duration> {
        self.scenario().planned_duration()
    }

    /// Open model: users one pooled connection serves at once (its HTTP/2 streams; 1 for HTTP/1.1).
    pub(crate) fn users_per_connection(&self) -> usize {
        self.scenario().http2.as_ref().map_or(1, |settings| settings.streams.max(1))
    }

    /// The statistics of the flow's first step when it is a request: an open-model arrival
    /// counts that request as started when it is due.
    pub(crate) fn first_request(&self) -> Option<usize> {
        match self.scenario().flow.steps.first() {
            Some(Step::Request(request)) => Some(request.stats),
            _ => None,
        }
    }

    /// Takes one iteration of the open model's budget; false when it is spent.
    pub(crate) fn take_iteration(&self) -> bool {
        crate::load::arrivals::take_one(&self.iterations_left)
    }
}

/// Runs every scenario of the plan on this shard until each ends.
pub(crate) async fn drive(shard: Rc<Shard>, scenarios: Arc<Scenarios>, shards: usize) {
    let mut running = JoinSet::new();
    for index in 0..scenarios.list.len() {
        let scenario = &scenarios.list[index];
        let iterations_left = match scenario.load {
            Load::Open(_) => scenario.iterations.map(|n| share(n, shards, shard.index)),
            Load::Closed(_) | Load::Hold(_) => None,
        };
        let http2 = match FlowPool::for_scenario(&shard, scenario, shards) {
            Ok(pool) => pool,
            Err(e) => {
                shard.note_error(format!("scenario {}: {e}", scenario.name));
                continue;
            }
        };
        let run = Rc::new(ScenarioRun {
            index,
            scenarios: scenarios.clone(),
            stop: shard.stop_sending.child_token(),
            iterations_left: Cell::new(iterations_left),
            arrivals: Cell::new(0),
            shards: shards as u64,
            shard: shard.index as u64,
            http2,
        });
        running.spawn_local(run_scenario(shard.clone(), run));
    }
    while running.join_next().await.is_some() {}
}

/// Runs one scenario's users (or dispatcher) until they finish or the scenario's time is up.
async fn run_scenario(shard: Rc<Shard>, run: Rc<ScenarioRun>) {
    let mut users = JoinSet::new();
    match &run.scenario().load {
        Load::Closed(closed) => {
            let total = closed.connections as u64;
            let scenario = run.scenario();
            // User k of the scenario lives on shard k mod shards; it is active during its
            // windows (from k/total into the ramp-up, or while the user stages count above k).
            for k in (run.shard..total).step_by(run.shards as usize) {
                let windows = user_windows(&scenario.user_stages, scenario.ramp_up, k, total);
                users.spawn_local(closed_user(shard.clone(), run.clone(), k, windows));
            }
        }
        Load::Open(open) => {
            users.spawn_local(open_dispatcher(shard.clone(), run.clone(), open.clone()));
        }
        Load::Hold(_) => {}
    }
    let all_done = async { while users.join_next().await.is_some() {} };
    tokio::pin!(all_done);
    // The scenario's time is its duration, or its stages' length (open model).
    let slack = crate::engine::shard::dispatch_slack(&run.scenario().load);
    let deadline = run.scenario().planned_duration().map(|d| shard.start + d + slack);
    tokio::select! {
        () = &mut all_done => {}
        () = async { match deadline { Some(d) => sleep_until(d).await, None => std::future::pending().await } } => {
            // Users finish the request in flight; the shard's grace bounds the wait.
            run.stop.cancel();
            all_done.await;
        }
    }
    run.stop.cancel();
}

/// A closed-model user: iterations back to back during each of its active windows, until its
/// budget, the feeders or the scenario end. When a window closes (fewer users wanted), the
/// user leaves at the end of its current step, closing its connection and session.
async fn closed_user(shard: Rc<Shard>, run: Rc<ScenarioRun>, id: u64, windows: Vec<(Duration, Option<Duration>)>) {
    let mut user = User::new(&shard, &run);
    user.vars = Vars::new(run.scenarios.globals.clone(), id);
    let iterations = run.scenario().iterations;
    let mut iteration = 0;
    'windows: for (start, end) in windows {
        let start = shard.start + start;
        if Instant::now() < start {
            tokio::select! {
                () = sleep_until(start) => {}
                () = run.stop.cancelled() => break,
            }
        }
        user.leave_at = end.map(|end| shard.start + end);
        while iterations.is_none_or(|n| iteration < n) && !run.stop.is_cancelled() && !user.must_leave() {
            if !user.begin_iteration(&shard, &run, iteration) {
                break 'windows;
            }
            let mut intended = None;
            let walked = walk_steps(&shard, &run, &mut user, &run.scenario().flow, &mut intended).await;
            iteration += 1;
            if !walked {
                break;
            }
        }
        user.leave(&shard);
        if run.stop.is_cancelled() || iterations.is_some_and(|n| iteration >= n) {
            break;
        }
    }
    user.leave(&shard);
}

/// An open-model arrival: one iteration of the flow by `user`, a new user each time.
async fn arrival(shard: &Rc<Shard>, run: &Rc<ScenarioRun>, user: &mut User, intended: Instant) {
    let n = run.arrivals.get();
    run.arrivals.set(n + 1);
    let id = n * run.shards + run.shard;
    user.vars = Vars::new(run.scenarios.globals.clone(), id);
    user.close_ws(shard, false);
    user.started = run.first_request().is_some();
    if !user.begin_iteration(shard, run, 0) {
        if std::mem::take(&mut user.started) {
            // The first request counted at dispatch never goes out: it is not sent after all.
            shard.finish();
            let stats = run.first_request();
            shard.record_in(stats, intended, |s| s.sent = s.sent.saturating_sub(1));
        }
        run.stop.cancel();
        return;
    }
    let mut first = Some(intended);
    walk_steps(shard, run, user, &run.scenario().flow, &mut first).await;
}

/// Arrivals waiting for a free user of the open model's pool, with the users serving them.
struct OpenQueue {
    /// Intended start times of iterations waiting for a user.
    waiting: RefCell<VecDeque<Instant>>,
    /// Wakes an idle user.
    wake: Notify,
    /// Users parked on `wake` that no one has woken yet.
    idle: Cell<usize>,
    /// Users in the pool.
    users: Cell<usize>,
    /// Set when the schedule is exhausted.
    dispatch_done: Cell<bool>,
}

/// The open model: starts iterations on schedule, whether or not earlier ones came back.
///
/// An arrival goes to an idle user of the pool, or to a new one while the pool allows
/// (`max_connections` users, each with its own connection; with HTTP/2, `streams` users per
/// connection); otherwise it waits in line, and that wait counts in its latency. When the
/// flow starts with a request (a quick run is such a flow), that request is counted as sent
/// when it is due: it takes its permit (`-n`) then, `--max-inflight` drops it when too many
/// are queued or in flight, and one still queued when the run ends counts as unfinished. For
/// other flows `--max-inflight` bounds the iterations waiting or under way.
async fn open_dispatcher(shard: Rc<Shard>, run: Rc<ScenarioRun>, open: OpenLoad) {
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let shards = run.shards as usize;
    let pool = share(open.max_connections as u64, shards, shard.index).max(1) as usize * run.users_per_connection();
    let max_inflight = open.max_inflight.map(|m| share(m as u64, shards, shard.index).max(1));
    let first_request = run.first_request();
    let queue = Rc::new(OpenQueue {
        waiting: RefCell::new(VecDeque::new()),
        wake: Notify::new(),
        idle: Cell::new(0),
        users: Cell::new(0),
        dispatch_done: Cell::new(false),
    });
    let mut workers = JoinSet::new();
    let planned = run.planned().unwrap_or(Duration::MAX);
    for offset in Arrivals::new(&open.stages, open.arrival, shard.index, shards, seed) {
        // Behind schedule, the dispatcher does not sleep: it must see the scenario's end here.
        if offset >= planned || run.stop.is_cancelled() {
            break;
        }
        let intended = shard.start + offset;
        if Instant::now() < intended {
            tokio::select! {
                () = sleep_until(intended) => {}
                () = run.stop.cancelled() => break,
            }
        }
        let lag = Instant::now().saturating_duration_since(intended);
        if !run.take_iteration() {
            break;
        }
        if let Some(stats) = first_request {
            match shard.admit(Some(stats), intended, lag, max_inflight) {
                None => break,
                Some(false) => continue,
                Some(true) => {}
            }
        } else {
            // No request is due yet: the bound applies to iterations waiting or under way.
            let busy = queue.users.get() - queue.idle.get();
            let pending = (queue.waiting.borrow().len() + busy) as u64;
            let dropped = max_inflight.is_some_and(|max| pending >= max);
            shard.record(intended, |s| {
                s.dropped += u64::from(dropped);
                record(&mut s.schedule_lag, lag);
            });
            if dropped {
                continue;
            }
        }
        queue.waiting.borrow_mut().push_back(intended);
        if queue.idle.get() > 0 {
            queue.idle.set(queue.idle.get() - 1);
            queue.wake.notify_one();
        } else if queue.users.get() < pool {
            queue.users.set(queue.users.get() + 1);
            workers.spawn_local(open_user(shard.clone(), run.clone(), queue.clone()));
        }
    }
    queue.dispatch_done.set(true);
    queue.wake.notify_waiters();
    while workers.join_next().await.is_some() {}
}

/// One user of the open model's pool: runs queued iterations, a new virtual user each time
/// (its connection stays), until the queue is done.
async fn open_user(shard: Rc<Shard>, run: Rc<ScenarioRun>, queue: Rc<OpenQueue>) {
    let mut user = User::new(&shard, &run);
    loop {
        if run.stop.is_cancelled() {
            break;
        }
        let next = queue.waiting.borrow_mut().pop_front();
        match next {
            Some(intended) => arrival(&shard, &run, &mut user, intended).await,
            None if queue.dispatch_done.get() => break,
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
    user.leave(&shard);
}

/// A virtual user's state between steps.
pub(crate) struct User {
    vars: Vars,
    conn: Option<Connection>,
    /// The WebSocket session, with the statistics its handshake was counted under.
    ws: Option<(Box<WsSession>, usize)>,
    /// The last message sent on the session and not yet answered.
    sent: Option<SentMessage>,
    rng: SmallRng,
    /// The scenario's shared HTTP/2 connections, when it speaks HTTP/2 (then `conn` stays unused).
    http2: Option<Rc<FlowPool>>,
    /// When the user's active window ends (user stages); `None` while it lasts to the end.
    leave_at: Option<Instant>,
    /// Set when the next request was already counted as started (an open-model arrival's
    /// first request, counted when it was due).
    started: bool,
}

/// A WebSocket message waiting for its `ws_expect`.
struct SentMessage {
    stats: usize,
    intended: Instant,
    sent_at: Instant,
    /// The message, kept only when a JSON-RPC id must be matched.
    text: Option<String>,
}

impl User {
    pub(crate) fn new(shard: &Shard, run: &ScenarioRun) -> User {
        User {
            vars: Vars::new(run.scenarios.globals.clone(), shard.index as u64),
            conn: None,
            ws: None,
            sent: None,
            rng: SmallRng::from_rng(&mut rand::rng()),
            http2: run.http2.clone(),
            leave_at: None,
            started: false,
        }
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
            match feeder.next_row() {
                Ok(Some(row)) => self.vars.set_row(feeder.name(), row),
                Ok(None) => return false,
                Err(e) => {
                    shard.note_error(format!("feeder {}: {e}", feeder.name()));
                    return false;
                }
            }
        }
        let mut stats = shard.stats.borrow_mut();
        if let Some(count) = stats.flows.iterations.get_mut(run.index) {
            *count += 1;
        }
        true
    }

    /// Closes the user's connection and session at its end.
    pub(crate) fn leave(&mut self, shard: &Shard) {
        shard.close(&mut self.conn);
        self.close_ws(shard, false);
    }

    /// Closes the user's session. A message sent without a `ws_expect` after it is complete
    /// (counted when it was written) — unless the session `broke`, when its answer will never
    /// come: then it fails as `ws_closed`.
    fn close_ws(&mut self, shard: &Shard, broke: bool) {
        if self.ws.take().is_some() {
            shard.connections.set(shard.connections.get().saturating_sub(1));
        }
        if let Some(sent) = self.sent.take() {
            match broke {
                false => complete_send(shard, sent),
                true => {
                    shard.finish();
                    let detail = "the session closed before the message was answered".to_string();
                    let error = TransportError { kind: ErrorKind::WsClosed, detail };
                    shard.record_failure_in(Some(sent.stats), sent.intended, &error);
                }
            }
        }
    }
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

/// Walks `flow` once. `intended` is when the next request was due (taken by the first request
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
            Step::Request(request) => {
                // An open-model arrival's first request was counted (and took its permit)
                // when it was due, by the dispatcher.
                let started = std::mem::take(&mut user.started);
                if !started && !shard.take_permit() {
                    run.stop.cancel();
                    return false;
                }
                let due = intended.take().unwrap_or_else(Instant::now);
                send_request(shard, user, request, due, started).await;
            }
            Step::Think(think) => {
                let until = Instant::now() + think.draw(&mut user.rng);
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
                let Some(branch) = choice.pick(&mut user.rng) else { continue };
                if let Some(count) = shard.stats.borrow_mut().flows.branches.get_mut(branch.id) {
                    *count += 1;
                }
                if !walk(shard, run, user, &branch.flow, intended).await {
                    return false;
                }
            }
            Step::WsConnect(connect) => {
                let due = intended.take().unwrap_or_else(Instant::now);
                ws_connect(shard, user, connect, due).await;
            }
            Step::WsSend(send) => {
                let due = intended.take().unwrap_or_else(Instant::now);
                ws_send(shard, user, send, due).await;
            }
            Step::WsExpect(expect) => ws_expect(shard, user, expect).await,
            Step::WsClose(close) => {
                if let Some((ws, _)) = &mut user.ws {
                    let _ = tokio::time::timeout(shard.plan.timeout, ws.close(close.code, &close.reason)).await;
                }
                user.close_ws(shard, false);
            }
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
        let Some((ws, stats)) = &mut user.ws else {
            return tokio::select! {
                () = sleep_until(until) => !leaving,
                () = run.stop.cancelled() => false,
            };
        };
        let stats = *stats;
        tokio::select! {
            () = sleep_until(until) => return !leaving,
            () = run.stop.cancelled() => return false,
            error = ws.idle() => {
                // The session broke while the user held it: a failure of the session's name.
                let now = Instant::now();
                shard.in_flight.set(shard.in_flight.get() + 1);
                shard.record_in(Some(stats), now, |s| s.sent += 1);
                shard.finish();
                shard.record_failure_in(Some(stats), now, &TransportError { kind: error.kind, detail: error.detail });
                shard.record(now, |s| s.closed_by_peer += 1);
                user.close_ws(shard, true);
            }
        }
    }
}

/// The bytes of one request: its head, and its body when that is not in the head.
struct Rendered {
    head: Vec<u8>,
    body: Option<Arc<[u8]>>,
}

/// A request rendered for `user`, before it takes its HTTP/1.1 or HTTP/2 form.
struct Parts {
    path: String,
    headers: Vec<(String, String)>,
    body: Option<Arc<[u8]>>,
}

/// Renders a request for `user` in HTTP/1.1 form.
fn render(shard: &Shard, user: &User, step: &RequestStep) -> Result<Rendered, String> {
    let Parts { path, headers, body } = render_parts(shard, user, step)?;
    let body_len = body.as_ref().map_or(0, |b| b.len());
    let head =
        encode_head(&step.method, &path, &shard.plan.target.host_header, &headers, body_len, shard.plan.keepalive)
            .map_err(|e| e.to_string())?;
    Ok(Rendered { head, body })
}

/// Renders a request's parts for `user`: templates, then the signature when the plan signs
/// requests.
fn render_parts(shard: &Shard, user: &User, step: &RequestStep) -> Result<Parts, String> {
    let target = &shard.plan.target;
    let RenderedRequest { path, mut headers, body, payload_sha256 } = step.render(&user.vars)?;
    if let Some(signer) = &shard.plan.auth {
        let body_bytes = body.as_deref().unwrap_or(&[]);
        let hash = payload_sha256.map_or_else(|| crate::flow::sigv4::sha256_hex(body_bytes), |h| h.to_string());
        let mut signed = headers.clone();
        if !signed.iter().any(|(n, _)| n.eq_ignore_ascii_case("host")) {
            signed.push(("host".to_string(), target.host_header.clone()));
        }
        let extra = signer
            .sign(&step.method, &target.host_header, &path, &signed, &hash, std::time::SystemTime::now())
            .map_err(|e| format!("signing: {e}"))?;
        headers.extend(extra);
    }
    Ok(Parts { path, headers, body })
}

/// Sends one request step and judges its response (status, checks, extraction). `started`:
/// the request was already counted as started (sent, in flight).
async fn send_request(shard: &Shard, user: &mut User, step: &RequestStep, intended: Instant, started: bool) {
    let name = Some(step.stats);
    if !started {
        shard.start_request_in(name, intended);
    }
    if let Some(pool) = user.http2.clone() {
        // Boxed, so that an HTTP/1.1 user's task stays as small as it was.
        return Box::pin(send_over_http2(shard, user, &pool, step, intended)).await;
    }
    let rendered = match &step.fixed {
        Some(bytes) => Rendered { head: Vec::new(), body: Some(bytes.clone()) },
        None => match render(shard, user, step) {
            Ok(rendered) => rendered,
            Err(detail) => {
                shard.finish();
                shard.record_failure_in(name, intended, &TransportError { kind: ErrorKind::Other, detail });
                return;
            }
        },
    };
    // The connection leaves the user for the exchange (extraction writes the user's variables).
    let mut conn = match user.conn.take() {
        Some(c) => c,
        None => match shard.open(name, intended).await {
            Ok(c) => {
                shard.connections.set(shard.connections.get() + 1);
                c
            }
            Err(e) => {
                shard.finish();
                shard.record_failure_in(name, intended, &e);
                return;
            }
        },
    };
    let (wants_headers, wants_body) = (step.needs_headers(), step.needs_body());
    conn.capture(wants_headers, if wants_body { CAPTURE_LIMIT } else { 0 });
    let bytes_out = (rendered.head.len() + rendered.body.as_ref().map_or(0, |b| b.len())) as u64;
    let head_request = step.method.eq_ignore_ascii_case("HEAD");
    let sent_at = Instant::now();
    let conn_ref = &mut conn;
    let exchange = async {
        let conn = conn_ref;
        if !rendered.head.is_empty() {
            conn.write_all(&rendered.head).await?;
        }
        if let Some(body) = &rendered.body {
            conn.write_all(body).await?;
        }
        shard.record_in(name, intended, |s| s.bytes_out += bytes_out);
        conn.read_response(head_request).await
    };
    let result = tokio::time::timeout(shard.plan.timeout, exchange).await;
    let done = Instant::now();
    shard.finish();
    let keep = match result {
        Ok(Ok(info)) => {
            let headers: Vec<(&[u8], &[u8])> =
                if wants_headers { conn.captured_headers().collect() } else { Vec::new() };
            let view = ResponseView {
                status: info.status,
                headers: &headers,
                body: conn.captured_body(),
                // Latency as everywhere: from when the request was due.
                elapsed: done - intended,
            };
            let timing = Timing { intended, sent_at, done };
            settle(shard, user, step, timing, &view, info.head_bytes + info.body_bytes);
            shard.plan.keepalive && conn.reusable(&info)
        }
        Ok(Err(e)) => {
            shard.record_failure_in(name, intended, &e);
            false
        }
        Err(_elapsed) => {
            let timeout = TransportError {
                kind: ErrorKind::Timeout,
                detail: format!("no complete response within {:?}", shard.plan.timeout),
            };
            shard.record_failure_in(name, intended, &timeout);
            false
        }
    };
    user.conn = Some(conn);
    if !keep {
        shard.close(&mut user.conn);
    }
}

/// [`send_request`] over the scenario's shared HTTP/2 connections: the same rendering
/// (templates, signature), judging and statistics; the request waits for a free stream slot.
async fn send_over_http2(shard: &Shard, user: &mut User, pool: &Rc<FlowPool>, step: &RequestStep, intended: Instant) {
    let name = Some(step.stats);
    let request = render_parts(shard, user, step).and_then(|parts| {
        // The body's bytes are shared, not copied.
        let body = parts.body.map_or_else(Bytes::new, Bytes::from_owner);
        pool.request(&step.method, &parts.path, &parts.headers, body)
    });
    let request = match request {
        Ok(request) => request,
        Err(detail) => {
            shard.finish();
            shard.record_failure_in(name, intended, &TransportError { kind: ErrorKind::Other, detail });
            return;
        }
    };
    let capture =
        Capture { headers: step.needs_headers(), body_limit: if step.needs_body() { CAPTURE_LIMIT } else { 0 } };
    let mut kept = Kept::default();
    let result = pool.send(intended, &request, capture, &mut kept).await;
    shard.finish();
    match result {
        Ok(answered) => {
            let headers = kept.header_pairs();
            // Latency as everywhere: from when the request was due.
            let elapsed = answered.done - intended;
            let view = ResponseView { status: answered.status, headers: &headers, body: &kept.body, elapsed };
            // The connection counts its bytes (frames) as they pass.
            let timing = Timing { intended, sent_at: answered.sent_at, done: answered.done };
            settle(shard, user, step, timing, &view, 0);
        }
        Err(e) => shard.record_failure_in(name, intended, &e),
    }
}

/// When a request was due, went out, and was answered.
#[derive(Clone, Copy)]
struct Timing {
    intended: Instant,
    sent_at: Instant,
    done: Instant,
}

/// Judges a complete response (its status, the step's checks and extraction) and records it
/// under the step's name, with its latency and service time; `bytes_in` is its size on the wire.
fn settle(shard: &Shard, user: &mut User, step: &RequestStep, timing: Timing, view: &ResponseView, bytes_in: u64) {
    let Timing { intended, sent_at, done } = timing;
    let verdict = if step.checks.is_empty() && step.extract.is_empty() {
        Verdict::default()
    } else {
        judge(shard, user, step, view, intended)
    };
    let status = view.status;
    let failure =
        if shard.plan.ok_status.contains(status) { verdict.failure } else { Some(ErrorKind::from_status(status)) };
    shard.record_in(Some(step.stats), intended, |s| {
        s.bytes_in += bytes_in;
        s.record_judged_response(Some(status), failure, done - intended, done - sent_at);
    });
}

/// What checks and extraction made of a response.
#[derive(Default)]
struct Verdict {
    /// Why the request counts as failed although its status was accepted.
    failure: Option<ErrorKind>,
}

/// Runs the step's checks (tallied) and extraction (into the user's variables).
fn judge(shard: &Shard, user: &mut User, step: &RequestStep, view: &ResponseView, intended: Instant) -> Verdict {
    let json = JsonBody::new(view.body);
    let mut verdict = Verdict::default();
    let counted = intended >= shard.warmup_end;
    for check in &step.checks {
        let passed = check.check.passes(view, &json);
        if counted {
            if let Some(tally) = shard.stats.borrow_mut().flows.checks.get_mut(check.id) {
                tally[usize::from(!passed)] += 1;
            }
        }
        if !passed && check.check.fail_request && verdict.failure.is_none() {
            verdict.failure = Some(ErrorKind::CheckFailed);
        }
    }
    for extractor in &step.extract {
        match extractor.extract(view, &json).or_else(|| extractor.default.clone()) {
            Some(value) => user.vars.set(&extractor.variable, value),
            None => {
                if verdict.failure.is_none() {
                    verdict.failure = Some(ErrorKind::ExtractFailed);
                }
            }
        }
    }
    verdict
}

/// `ws_connect`: opens the user's session (replacing an open one), counted like a request.
async fn ws_connect(shard: &Shard, user: &mut User, step: &crate::flow::WsConnectStep, intended: Instant) {
    let name = Some(step.stats);
    user.close_ws(shard, false);
    shard.start_request_in(name, intended);
    let mut headers = Vec::with_capacity(step.headers.len());
    for (header, value) in &step.headers {
        let mut text = String::new();
        if let Err(e) = value.render(&user.vars, &mut text) {
            shard.finish();
            let detail = format!("header {header}: {e}");
            shard.record_failure_in(name, intended, &TransportError { kind: ErrorKind::Other, detail });
            return;
        }
        headers.push((header.clone(), text));
    }
    let result = match ws_target(shard, &step.url) {
        Ok(target) => {
            let source = shard.dialer.next_source();
            WsSession::connect(&target, &headers, source, shard.plan.connect_timeout)
                .await
                .map_err(|e| (e.kind, e.detail))
        }
        Err(detail) => Err((ErrorKind::Other, detail)),
    };
    shard.finish();
    match result {
        Ok((session, opened)) => {
            let done = Instant::now();
            shard.connections.set(shard.connections.get() + 1);
            shard.record_in(name, intended, |s| {
                s.connections_opened += 1;
                record(&mut s.connect_time, opened.connect);
                if let Some(tls) = opened.tls {
                    record(&mut s.tls_handshake_time, tls);
                }
                s.record_judged_response(Some(101), None, done - intended, opened.handshake);
            });
            user.ws = Some((Box::new(session), step.stats));
        }
        Err((kind, detail)) => shard.record_failure_in(name, intended, &TransportError { kind, detail }),
    }
}

thread_local! {
    /// WebSocket targets by URL, resolved once per shard rather than per session.
    static WS_TARGETS: std::cell::RefCell<std::collections::HashMap<String, WsTarget>> = Default::default();
}

/// The target of `url`, resolved on first use; `wss://` uses the run's TLS settings
/// (`--insecure`, `--cacert`, ...) when the plan's target is `https://`.
fn ws_target(shard: &Shard, url: &str) -> Result<WsTarget, String> {
    if let Some(target) = WS_TARGETS.with_borrow(|targets| targets.get(url).cloned()) {
        return Ok(target);
    }
    let mut target = WsTarget::from_url(url)?;
    if let (Some(tls), true) = (shard.dialer.tls(), url.starts_with("wss://")) {
        target = target.with_tls(tls);
    }
    WS_TARGETS.with_borrow_mut(|targets| targets.insert(url.to_string(), target.clone()));
    Ok(target)
}

/// `ws_send`: sends a message; the exchange completes at the next `ws_expect` (or now, when
/// another send comes first).
async fn ws_send(shard: &Shard, user: &mut User, step: &crate::flow::WsSendStep, intended: Instant) {
    let name = Some(step.stats);
    if let Some(sent) = user.sent.take() {
        complete_send(shard, sent);
    }
    shard.start_request_in(name, intended);
    let mut text = String::new();
    if let Err(e) = step.text.render(&user.vars, &mut text) {
        shard.finish();
        shard.record_failure_in(name, intended, &TransportError { kind: ErrorKind::Other, detail: e.to_string() });
        return;
    }
    let Some((ws, _)) = &mut user.ws else {
        shard.finish();
        let detail = "ws_send without an open session (ws_connect failed or the peer closed it)".to_string();
        shard.record_failure_in(name, intended, &TransportError { kind: ErrorKind::WsClosed, detail });
        return;
    };
    let sent_at = Instant::now();
    // A peer that stops reading must not hold the user past the request timeout.
    let written = tokio::time::timeout(shard.plan.timeout, ws.send_text(&text)).await.unwrap_or_else(|_| {
        Err(TransportError {
            kind: ErrorKind::Timeout,
            detail: format!("the message could not be written within {:?}", shard.plan.timeout),
        })
    });
    match written {
        Ok(()) => {
            shard.record_in(name, intended, |s| s.bytes_out += text.len() as u64);
            user.sent = Some(SentMessage { stats: step.stats, intended, sent_at, text: Some(text) });
        }
        Err(e) => {
            shard.finish();
            shard.record_failure_in(name, intended, &TransportError { kind: e.kind, detail: e.detail });
            user.close_ws(shard, true);
        }
    }
}

/// Counts a sent message that no `ws_expect` waited for as complete when it was written.
fn complete_send(shard: &Shard, sent: SentMessage) {
    shard.finish();
    shard.record_in(Some(sent.stats), sent.intended, |s| {
        s.record_judged_response(None, None, sent.sent_at - sent.intended, Duration::ZERO)
    });
}

/// `ws_expect`: waits for a matching message; completes the exchange of the last send.
async fn ws_expect(shard: &Shard, user: &mut User, step: &WsExpectStep) {
    let (name, intended, since, sent_text) = match user.sent.take() {
        Some(sent) => (sent.stats, sent.intended, sent.sent_at, sent.text),
        None => {
            let now = Instant::now();
            shard.start_request_in(Some(step.stats), now);
            (step.stats, now, now, None)
        }
    };
    let wanted_id = match (&step.matcher.match_id, &sent_text) {
        (Some(path), Some(text)) => {
            let json = JsonBody::new(text.as_bytes());
            json.value().and_then(|v| path.first(v)).cloned()
        }
        _ => None,
    };
    let Some((ws, _)) = &mut user.ws else {
        shard.finish();
        let detail = "ws_expect without an open session".to_string();
        shard.record_failure_in(Some(name), intended, &TransportError { kind: ErrorKind::WsClosed, detail });
        return;
    };
    let mut matches = |message: &str| message_matches(&step.matcher, wanted_id.as_ref(), message);
    let result = ws.expect(&mut matches, step.timeout).await;
    let done = Instant::now();
    shard.finish();
    match result {
        Ok(message) => {
            let json = JsonBody::new(message.as_bytes());
            let mut failure = None;
            for extractor in &step.extract {
                match extractor.extract_text(&message, &json).or_else(|| extractor.default.clone()) {
                    Some(value) => user.vars.set(&extractor.variable, value),
                    None => failure = Some(ErrorKind::ExtractFailed),
                }
            }
            shard.record_in(Some(name), intended, |s| {
                s.bytes_in += message.len() as u64;
                s.record_judged_response(None, failure, done - intended, done - since);
            });
        }
        Err(e) => {
            let closed = e.kind == ErrorKind::WsClosed;
            shard.record_failure_in(Some(name), intended, &TransportError { kind: e.kind, detail: e.detail });
            if closed {
                user.close_ws(shard, true);
            }
        }
    }
}

/// True when `message` is what `matcher` waits for.
fn message_matches(matcher: &WsMatcher, wanted_id: Option<&serde_json::Value>, message: &str) -> bool {
    if let Some(regex) = &matcher.regex {
        if !regex.is_match(message) {
            return false;
        }
    }
    if matcher.json.is_none() && matcher.match_id.is_none() {
        return true;
    }
    let json = JsonBody::new(message.as_bytes());
    let Some(value) = json.value() else { return false };
    if let Some((path, equals)) = &matcher.json {
        match (path.first(value), equals) {
            (None, _) => return false,
            (Some(found), Some(expected)) if !json_equals(found, expected) => return false,
            _ => {}
        }
    }
    if let (Some(path), Some(wanted)) = (&matcher.match_id, wanted_id) {
        if path.first(value) != Some(wanted) {
            return false;
        }
    }
    true
}
