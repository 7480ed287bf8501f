//! Where a shard's figures go ([`Meter`]), and the values that count by construction:
//! a [`Request`] is in flight from the moment it is due until it is answered, failed or
//! abandoned, and a [`ConnectionGauge`] counts an open connection for as long as it lives.
//!
//! Nothing is counted by hand and undone later. A request is `sent` once its first byte is
//! written ([`Request::written`]); it ends exactly once: answered, failed (by kind), or, when
//! its value is dropped without either (the drain time after the run ran out under it), failed
//! as `unanswered` if it was sent and `dropped` if it never was. So at the end of every run
//! `due = ok + failed + dropped`, whatever path a request took.
//!
//! Figures are recorded into the current second (the collector takes it every second) and,
//! outside the warmup, into the totals of the stage the request was due in, and of its name
//! (plan files' per-request statistics). Successful answers and failures that happen inside the
//! measured window are also counted by the time they happened (`window_ok`, `window_failed`),
//! into the stage that time falls in: the achieved rate is what the target carried while it
//! was loaded, not what trickled in during the drain. One shard, one thread: plain `Cell`s and
//! a `RefCell`.

use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

use pummel_results::error_kind::ErrorKind;
use pummel_results::histogram::record;
use tokio::time::Instant;

use crate::dial::{Opened, TransportError};
use crate::engine::live::NameCounts;
use crate::flow::Scenarios;
use crate::measure::stats::Stats;
use crate::measure::tallies::FlowTallies;
use crate::plan::{RateStage, stage_at};
use crate::writes::spill::ShardWrites;
use crate::writes::{WriteOutcome, WriteValue, outcome_of_answer, outcome_of_failure};

/// [`Request::name`] of a request counted under no name.
const NO_NAME: u32 = u32::MAX;
/// How many distinct `other` / `tls_error` / `malformed_response` messages a shard keeps.
const KEPT_MESSAGES: usize = 5;

/// The figures of one shard: the current second, per-stage and per-name totals, gauges.
#[derive(Debug)]
pub struct Meter {
    start: Instant,
    warmup_end: Instant,
    /// The run's stages (`Plan::rate_stages`); empty: one stage.
    stages: Vec<RateStage>,
    /// The end of the measured window: the planned end, or when sending stopped if earlier.
    window_end: Cell<Instant>,
    figures: RefCell<Figures>,
    in_flight: Cell<u64>,
    /// Of `in_flight`: due and not yet written.
    waiting: Cell<u64>,
    connections: Cell<u64>,
    /// Scenarios started since the last second was reported.
    started: RefCell<Vec<usize>>,
    /// This shard's side of the write log, when the plan has writes (`writes::spill`).
    writes: Option<ShardWrites>,
}

#[derive(Debug)]
struct Figures {
    interval: Stats,
    stages: Vec<Stats>,
    flows: FlowTallies,
    other_errors: Vec<String>,
    /// The per-name counts handed over so far (`take_named`).
    named_reported: Vec<NameCounts>,
}

/// What a shard measured, handed over when it ends.
#[derive(Debug)]
pub struct Totals {
    /// The stats since the last whole second.
    pub tail: Stats,
    /// Per stage, outside the warmup.
    pub stages: Vec<Stats>,
    /// Per name, check, branch and scenario.
    pub flows: FlowTallies,
    /// Distinct messages of `other`, `tls_error` and `malformed_response` failures.
    pub other_errors: Vec<String>,
}

impl Meter {
    /// A meter for a run that starts at `start`, whose first `warmup` is not in the totals and
    /// whose measured window ends `planned` after the start (`None`: when sending stops).
    pub fn new(
        start: Instant,
        warmup: Duration,
        planned: Option<Duration>,
        stages: &[RateStage],
        scenarios: &Scenarios,
    ) -> Meter {
        // Far enough for any run; `sending_stopped` brings it in.
        let unbounded = start + Duration::from_secs(100 * 365 * 24 * 3600);
        Meter {
            start,
            warmup_end: start + warmup,
            window_end: Cell::new(planned.map_or(unbounded, |p| start + p)),
            stages: stages.to_vec(),
            figures: RefCell::new(Figures {
                interval: Stats::default(),
                stages: (0..stages.len().max(1)).map(|_| Stats::default()).collect(),
                flows: FlowTallies::for_scenarios(scenarios),
                other_errors: Vec::new(),
                named_reported: Vec::new(),
            }),
            in_flight: Cell::new(0),
            waiting: Cell::new(0),
            connections: Cell::new(0),
            started: RefCell::new(Vec::new()),
            writes: None,
        }
    }

    /// This meter, logging the writes whose requests end in it through `batches` (the
    /// write log's writer: see `writes::spill`).
    pub(crate) fn with_write_log(mut self, batches: std::sync::mpsc::SyncSender<Vec<u8>>) -> Meter {
        self.writes = Some(ShardWrites::new(batches));
        self
    }

    /// A write's request ended: counted by outcome, and logged with its key and value.
    fn write_ended(&self, write: &PendingWrite, outcome: WriteOutcome) {
        self.figures.borrow_mut().flows.writes.wrote(outcome);
        if let Some(log) = &self.writes {
            log.record(&write.key, write.value.as_ref(), outcome);
        }
    }

    /// Judges the read-back of the key a verify user holds (see `writes::verify`).
    pub fn read_judged(&self, vars: &crate::flow::template::Vars, read: crate::writes::judge::Read) {
        crate::writes::verify::judge_read(vars, read, &mut self.figures.borrow_mut().flows.writes);
    }

    /// Hands the write log's buffered records to its writer, at the shard's end, and lets the
    /// writer go.
    pub fn finish_writes(&self) {
        if let Some(log) = &self.writes {
            log.finish();
        }
    }

    /// Sending stopped now: the measured window ends here if it has not already.
    pub fn sending_stopped(&self) {
        self.window_end.set(self.window_end.get().min(Instant::now()));
    }

    /// Counts an outcome that happened at `at` into the window counts of the stage `at` falls
    /// in and of `name`, when `at` is inside the measured window.
    fn record_outcome_at(&self, name: Option<usize>, at: Instant, ok: bool) {
        if at < self.warmup_end || at > self.window_end.get() {
            return;
        }
        let count = |s: &mut Stats| {
            if ok {
                s.window_ok += 1;
            } else {
                s.window_failed += 1;
            }
        };
        let mut figures = self.figures.borrow_mut();
        // The current second too: abort rules read `rate` from the last seconds.
        count(&mut figures.interval);
        let stage = stage_at(&self.stages, at.saturating_duration_since(self.start));
        if let Some(totals) = figures.stages.get_mut(stage) {
            count(totals);
        }
        if let Some(named) = name.and_then(|n| figures.flows.named.get_mut(n)) {
            count(named);
        }
    }

    /// Applies `f` to the current second's stats and, outside the warmup, to the totals of the
    /// stage `intended` falls in and of the statistics `name`.
    pub fn record_in(&self, name: Option<usize>, intended: Instant, f: impl Fn(&mut Stats)) {
        let mut figures = self.figures.borrow_mut();
        f(&mut figures.interval);
        if intended >= self.warmup_end {
            let stage = stage_at(&self.stages, intended.saturating_duration_since(self.start));
            if let Some(totals) = figures.stages.get_mut(stage) {
                f(totals);
            }
            if let Some(named) = name.and_then(|n| figures.flows.named.get_mut(n)) {
                f(named);
            }
        }
    }

    /// As [`record_in`](Self::record_in), for no name.
    pub fn record(&self, intended: Instant, f: impl Fn(&mut Stats)) {
        self.record_in(None, intended, f);
    }

    /// Records what opening a connection took, under the request due at `intended` (`name`).
    pub fn opened(&self, name: Option<usize>, intended: Instant, opened: &Opened) {
        self.record_in(name, intended, |s| {
            s.connections_opened += 1;
            record(&mut s.connect_time, opened.connect);
            if let Some(tls) = &opened.tls {
                record(&mut s.tls_handshake_time, tls.took);
                s.tls_resumed += u64::from(tls.resumed);
            }
        });
    }

    /// Counts a connection opened to host `target` (plans of several hosts): its own
    /// connection, DNS and TLS figures, whichever request's chain opened it.
    pub fn opened_to(&self, target: usize, intended: Instant, opened: &Opened) {
        if intended < self.warmup_end {
            return;
        }
        let mut figures = self.figures.borrow_mut();
        let targets = &mut figures.flows.targets;
        if targets.len() <= target {
            targets.resize_with(target + 1, Stats::default);
        }
        let s = &mut targets[target];
        s.connections_opened += 1;
        record(&mut s.connect_time, opened.connect);
        if let Some(tls) = &opened.tls {
            record(&mut s.tls_handshake_time, tls.took);
            s.tls_resumed += u64::from(tls.resumed);
        }
    }

    /// Counts a connection that had closed while idle and was replaced before a request used
    /// it: pummel's own doing, never a failure of the target.
    pub fn reconnected(&self, intended: Instant) {
        self.record(intended, |s| s.reconnects += 1);
    }

    /// Counts a redirect the request due at `intended` followed, and the bytes of the answer
    /// that redirected it.
    pub fn redirected(&self, intended: Instant, received: u64) {
        self.record(intended, |s| {
            s.redirects += 1;
            s.bytes_in += received;
        });
    }

    /// Bytes moved on a connection that many requests share (HTTP/2), counted as they pass.
    pub fn bytes(&self, received: u64, sent: u64) {
        self.record(Instant::now(), |s| {
            s.bytes_in += received;
            s.bytes_out += sent;
        });
    }

    /// Keeps a message about a failure (once per distinct message, a few at most).
    pub fn note_error(&self, message: String) {
        let mut figures = self.figures.borrow_mut();
        if figures.other_errors.len() < KEPT_MESSAGES && !figures.other_errors.contains(&message) {
            figures.other_errors.push(message);
        }
    }

    /// `other`, `tls_error` and `malformed_response` say little without their message (an
    /// endless header and bad chunking are both malformed); keep it.
    fn note_failure(&self, error: &TransportError) {
        match error.kind {
            ErrorKind::Other | ErrorKind::TlsError => self.note_error(error.detail.clone()),
            ErrorKind::MalformedResponse => self.note_error(format!("malformed response: {}", error.detail)),
            _ => {}
        }
    }

    /// Tallies a check's result on a response due at `intended`.
    pub fn check(&self, id: usize, passed: bool, intended: Instant) {
        if intended >= self.warmup_end {
            if let Some(tally) = self.figures.borrow_mut().flows.checks.get_mut(id) {
                tally[usize::from(!passed)] += 1;
            }
        }
    }

    /// Tallies a `choose` branch taken.
    pub fn branch(&self, id: usize) {
        if let Some(count) = self.figures.borrow_mut().flows.branches.get_mut(id) {
            *count += 1;
        }
    }

    /// Tallies an iteration of scenario `scenario` started.
    pub fn iteration(&self, scenario: usize) {
        if let Some(count) = self.figures.borrow_mut().flows.iterations.get_mut(scenario) {
            *count += 1;
        }
    }

    /// Notes that scenario `scenario` started (`ended` false) or ended, `at` from the run's start.
    pub fn scenario_window(&self, scenario: usize, at: Duration, ended: bool) {
        use crate::measure::tallies::ScenarioWindow;
        if !ended {
            self.started.borrow_mut().push(scenario);
        }
        if let Some(window) = self.figures.borrow_mut().flows.windows.get_mut(scenario) {
            *window = match (*window, ended) {
                (Some(w), true) => Some(ScenarioWindow { ended: Some(at), ..w }),
                (_, false) | (None, true) => Some(ScenarioWindow { started: at, ended: ended.then_some(at) }),
            };
        }
    }

    /// The scenarios that started since the last call.
    pub fn take_started(&self) -> Vec<usize> {
        std::mem::take(&mut *self.started.borrow_mut())
    }

    /// Collects an exported variable's value at the end of an iteration.
    pub fn export(&self, name: &str, value: String) {
        self.figures.borrow_mut().flows.exports.entry(name.to_string()).or_default().push(value);
    }

    /// Requests due and not yet answered (waiting for a connection, or on the wire).
    pub fn in_flight(&self) -> u64 {
        self.in_flight.get()
    }

    /// Requests due and not yet written (waiting for a connection or a user of the pool).
    pub fn waiting(&self) -> u64 {
        self.waiting.get()
    }

    /// Connections open now.
    pub fn connections(&self) -> u64 {
        self.connections.get()
    }

    /// The current second's stats, handed to the collector; a new second starts.
    pub fn take_second(&self) -> Stats {
        std::mem::take(&mut self.figures.borrow_mut().interval)
    }

    /// The per-name counts since the last call (a few integers per name: the live feed's
    /// per-name series are made of these, see `engine::live`).
    pub fn take_named(&self) -> Vec<NameCounts> {
        let mut figures = self.figures.borrow_mut();
        let Figures { flows, named_reported, .. } = &mut *figures;
        if named_reported.len() < flows.named.len() {
            named_reported.resize(flows.named.len(), NameCounts::default());
        }
        flows
            .named
            .iter()
            .zip(named_reported.iter_mut())
            .map(|(stats, reported)| {
                let now = NameCounts::of(stats);
                let delta = now.since(reported);
                *reported = now;
                delta
            })
            .collect()
    }

    /// Everything not yet handed over, at the shard's end.
    pub fn totals(&self) -> Totals {
        let mut figures = self.figures.borrow_mut();
        Totals {
            tail: std::mem::take(&mut figures.interval),
            stages: std::mem::take(&mut figures.stages),
            flows: std::mem::take(&mut figures.flows),
            other_errors: std::mem::take(&mut figures.other_errors),
        }
    }

    /// A request of `name` due at `intended`: in flight from now until it ends.
    pub fn begin(self: &Rc<Self>, name: Option<usize>, intended: Instant) -> Request {
        self.in_flight.set(self.in_flight.get() + 1);
        self.waiting.set(self.waiting.get() + 1);
        let name = name.and_then(|n| u32::try_from(n).ok()).filter(|&n| n != NO_NAME).unwrap_or(NO_NAME);
        Request { meter: self.clone(), name, intended, sent_at: None, ended: false, write: None }
    }

    /// Counts an open connection for as long as the gauge lives.
    pub fn connection_gauge(self: &Rc<Self>) -> ConnectionGauge {
        self.connections.set(self.connections.get() + 1);
        ConnectionGauge(self.clone())
    }
}

/// A request from the moment it is due until it is answered, failed or abandoned (see the
/// module doc). Whoever holds it answers for it; dropping it unended counts it as failed
/// `unanswered` (sent) or `dropped` (never sent).
#[derive(Debug)]
pub struct Request {
    meter: Rc<Meter>,
    intended: Instant,
    /// The statistics name, [`NO_NAME`] for none (a `u32`, not an `Option<usize>`: a held
    /// user holds one of these, and 10,000 of them are counted in KiB).
    name: u32,
    /// When its first byte was written.
    sent_at: Option<Instant>,
    ended: bool,
    /// The write it makes, when its step is one (`write = { key = ... }`): its outcome is
    /// decided when the request ends, whichever way (see `writes`).
    write: Option<Box<PendingWrite>>,
}

/// A write's key and value, until its request ends.
#[derive(Debug)]
pub(crate) struct PendingWrite {
    pub key: String,
    pub value: Option<WriteValue>,
}

/// How a request was answered.
#[derive(Debug, Clone, Copy)]
pub struct Answer {
    /// The status code; `None` for answers without one (WebSocket messages).
    pub status: Option<u16>,
    /// Why it counts as failed (a status not accepted, a failed check); `None`: it succeeded.
    pub failure: Option<ErrorKind>,
    /// When the answer was complete.
    pub done: Instant,
    /// Bytes of the answer on the wire (0 where the connection counts them itself).
    pub bytes_in: u64,
    /// Bytes of its body once decoded from its `Content-Encoding` (0: not decoded).
    pub bytes_decoded: u64,
}

impl Request {
    /// When the request was due: its latency counts from here.
    pub fn intended(&self) -> Instant {
        self.intended
    }

    /// The statistics name it counts under.
    pub fn name(&self) -> Option<usize> {
        (self.name != NO_NAME).then_some(self.name as usize)
    }

    /// When its first byte was written, if it was.
    pub fn sent_at(&self) -> Option<Instant> {
        self.sent_at
    }

    /// Makes the request a write of `key` (and `value`): its outcome is logged when it ends.
    pub(crate) fn make_write(&mut self, key: String, value: Option<WriteValue>) {
        self.write = Some(Box::new(PendingWrite { key, value }));
    }

    /// Logs the write the request makes, if it makes one, with `outcome`.
    fn end_write(&mut self, outcome: impl FnOnce(bool) -> WriteOutcome) {
        if let Some(write) = self.write.take() {
            self.meter.write_ended(&write, outcome(self.sent_at.is_some()));
        }
    }

    /// The request (or its first `bytes`) went out now. The first call counts it as `sent`
    /// and starts its service time; later ones (a slow request's drips, a retry on a fresh
    /// connection) count only their bytes.
    pub fn written(&mut self, bytes: u64) {
        self.written_at(bytes, Instant::now());
    }

    /// As [`written`](Self::written), at a time the caller measured.
    pub fn written_at(&mut self, bytes: u64, at: Instant) {
        let first = self.sent_at.is_none();
        if first {
            self.sent_at = Some(at);
            self.meter.waiting.set(self.meter.waiting.get().saturating_sub(1));
        }
        self.meter.record_in(self.name(), self.intended, |s| {
            s.sent += u64::from(first);
            s.bytes_out += bytes;
        });
    }

    /// Ends the request with its answer: latency from when it was due, service time from its
    /// first byte out (from `sent` when the caller measured that itself).
    pub fn answered(mut self, answer: Answer) {
        self.end_write(|_| outcome_of_answer(answer.status, answer.failure));
        let sent_at = self.sent_at.unwrap_or(answer.done);
        let intended = self.intended;
        self.meter.record_outcome_at(self.name(), answer.done, answer.failure.is_none());
        self.finish(|s| {
            s.bytes_in += answer.bytes_in;
            s.bytes_decoded += answer.bytes_decoded;
            s.record_judged_response(
                answer.status,
                answer.failure,
                answer.done.saturating_duration_since(intended),
                answer.done.saturating_duration_since(sent_at),
            );
        });
    }

    /// Ends the request with a failure, counted by its kind, now.
    pub fn failed(self, error: &TransportError) {
        self.failed_after(error, 0);
    }

    /// Ends the request with a failure that came after `bytes_in` bytes of its answer had
    /// arrived (a body cut by the timeout still moved bytes).
    pub fn failed_after(mut self, error: &TransportError, bytes_in: u64) {
        self.end_write(|sent| outcome_of_failure(error.kind, sent));
        self.meter.note_failure(error);
        let now = Instant::now();
        self.meter.record_outcome_at(self.name(), now, false);
        let latency = now.saturating_duration_since(self.intended);
        self.finish(|s| {
            s.bytes_in += bytes_in;
            s.record_failure(error.kind, latency);
        });
    }

    /// Ends a request that was never sent because too many were in flight (`--max-inflight`).
    pub fn drop_unsent(mut self) {
        self.end_write(|_| WriteOutcome::NotSent);
        self.finish(|s| s.dropped += 1);
    }

    fn finish(&mut self, f: impl Fn(&mut Stats)) {
        self.ended = true;
        self.meter.in_flight.set(self.meter.in_flight.get().saturating_sub(1));
        if self.sent_at.is_none() {
            self.meter.waiting.set(self.meter.waiting.get().saturating_sub(1));
        }
        self.meter.record_in(self.name(), self.intended, f);
    }
}

impl Drop for Request {
    fn drop(&mut self) {
        if !self.ended {
            // Sent and never answered: the target may have it. Never sent: no attempt.
            self.end_write(|sent| if sent { WriteOutcome::Unknown } else { WriteOutcome::NotSent });
            if self.sent_at.is_some() {
                // Given up now: the drain time after the run ran out under it.
                let latency = Instant::now().saturating_duration_since(self.intended);
                self.finish(|s| s.record_failure(ErrorKind::Unanswered, latency));
            } else {
                self.finish(|s| s.dropped += 1);
            }
        }
    }
}

/// Counts one open connection in its shard's gauge until dropped.
#[derive(Debug)]
pub struct ConnectionGauge(Rc<Meter>);

impl Drop for ConnectionGauge {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get().saturating_sub(1));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn meter() -> Rc<Meter> {
        Rc::new(Meter::new(Instant::now(), Duration::ZERO, None, &[], &Scenarios::default()))
    }

    fn answer(done: Instant) -> Answer {
        Answer { status: Some(200), failure: None, done, bytes_in: 10, bytes_decoded: 0 }
    }

    #[test]
    fn every_due_request_ends_exactly_once() {
        let meter = meter();
        let now = Instant::now();
        let mut answered = meter.begin(None, now);
        answered.written(5);
        answered.written(5);
        let mut failed = meter.begin(None, now);
        failed.written(5);
        let unsent = meter.begin(None, now);
        let mut abandoned = meter.begin(None, now);
        abandoned.written(5);
        let never_written = meter.begin(None, now);
        assert_eq!(meter.in_flight(), 5);
        assert_eq!(meter.waiting(), 2, "two were never written");
        answered.answered(answer(Instant::now()));
        failed.failed(&TransportError::closed_before_answer());
        unsent.drop_unsent();
        drop(abandoned);
        drop(never_written);
        assert_eq!((meter.in_flight(), meter.waiting()), (0, 0));
        let s = meter.take_second();
        assert_eq!((s.sent, s.completed, s.ok, s.failed), (3, 3, 1, 2), "the abandoned one failed");
        assert_eq!((s.unanswered, s.dropped, s.bytes_out, s.bytes_in), (1, 2, 20, 10));
        assert_eq!(s.errors.get(ErrorKind::Reset), 1);
        assert_eq!(s.errors.get(ErrorKind::Unanswered), 1);
        assert_eq!(s.latency_all.len(), 3, "answered, failed and unanswered end with a latency");
        assert_eq!(s.given_up, 1);
    }

    #[test]
    fn bytes_of_a_failed_answer_are_counted() {
        let meter = meter();
        let mut request = meter.begin(None, Instant::now());
        request.written(10);
        request.failed_after(&TransportError::timeout(Duration::from_secs(1)), 4096);
        let s = meter.take_second();
        assert_eq!((s.failed, s.bytes_in), (1, 4096));
    }

    #[test]
    fn the_window_counts_only_what_arrived_inside_it() {
        let start = Instant::now();
        let stages = [RateStage::level(10.0, Duration::from_secs(3600))];
        let meter =
            Rc::new(Meter::new(start, Duration::ZERO, Some(Duration::from_secs(3600)), &stages, &Scenarios::default()));
        let early = meter.begin(None, start);
        early.answered(answer(Instant::now()));
        let failed = meter.begin(None, start);
        failed.failed(&TransportError::closed_before_answer());
        meter.sending_stopped();
        let late = meter.begin(None, start);
        // Arrives after the window closed: counted as ok, not in the achieved rate.
        late.answered(answer(Instant::now() + Duration::from_millis(5)));
        let Totals { tail, stages, .. } = meter.totals();
        assert_eq!((stages[0].ok, stages[0].window_ok, stages[0].window_failed), (2, 1, 1));
        assert_eq!((tail.window_ok, tail.window_failed), (1, 1), "the second's rate for abort rules");
    }

    #[test]
    fn latency_counts_from_due_and_service_from_the_first_byte() {
        let meter = meter();
        let due = Instant::now();
        let mut request = meter.begin(None, due);
        request.written_at(1, due + Duration::from_millis(40));
        request.answered(answer(due + Duration::from_millis(50)));
        let s = meter.take_second();
        assert!((49_000..=50_100).contains(&s.latency.max()), "{}", s.latency.max());
        assert!((9_900..=10_100).contains(&s.service_time.max()), "{}", s.service_time.max());
    }

    #[test]
    fn a_write_is_logged_once_whichever_way_its_request_ends() {
        let (batches, received) = std::sync::mpsc::sync_channel(8);
        let meter = Rc::new(
            Meter::new(Instant::now(), Duration::ZERO, None, &[], &Scenarios::default()).with_write_log(batches),
        );
        let now = Instant::now();
        let write = |key: &str| {
            let mut request = meter.begin(None, now);
            request.make_write(key.to_string(), Some(WriteValue::Text(format!("v-{key}"))));
            request
        };
        let mut ok = write("ok");
        ok.written(1);
        ok.answered(answer(Instant::now()));
        let mut refused = write("refused");
        refused.written(1);
        refused.answered(Answer { status: Some(409), failure: Some(ErrorKind::Status4xx), ..answer(Instant::now()) });
        let mut timed_out = write("timed-out");
        timed_out.written(1);
        timed_out.failed(&TransportError::timeout(Duration::from_secs(1)));
        write("refused-connection").failed(&TransportError::new(ErrorKind::ConnectRefused, "refused"));
        let mut abandoned = write("abandoned");
        abandoned.written(1);
        drop(abandoned);
        drop(write("never-sent"));
        // A request that is not a write logs nothing.
        meter.begin(None, now).answered(answer(Instant::now()));
        meter.finish_writes();
        let bytes: Vec<u8> = received.try_iter().flatten().collect();
        let mut reader = crate::writes::spill::Reader::new(&bytes[..]);
        let mut logged = Vec::new();
        while let Some(record) = reader.next_record().unwrap() {
            logged.push((record.key, record.outcome));
        }
        use WriteOutcome::*;
        let expected = [
            ("ok", Acknowledged),
            ("refused", Failed),
            ("timed-out", Unknown),
            ("refused-connection", NotSent),
            ("abandoned", Unknown),
            ("never-sent", NotSent),
        ];
        assert_eq!(logged, expected.map(|(k, o)| (k.to_string(), o)));
        assert_eq!(meter.totals().flows.writes.outcomes, [1, 1, 2, 2]);
    }

    #[test]
    fn connection_gauges_follow_their_connections() {
        let meter = meter();
        let a = meter.connection_gauge();
        let b = meter.connection_gauge();
        assert_eq!(meter.connections(), 2);
        drop(a);
        assert_eq!(meter.connections(), 1);
        drop(b);
        assert_eq!(meter.connections(), 0);
    }
}
