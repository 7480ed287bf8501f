//! A shard's side of the request log: decides, with a few integer operations and no
//! allocation, whether a request is logged (its kind's bound this second, the success sample),
//! and hands the lines it keeps to the writer's bounded channel without ever waiting.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::mpsc::{SyncSender, TrySendError};

use pummel_results::error_kind::ErrorKind;
use tokio::time::Instant;

use super::RequestLogSpec;
use super::writer::{Message, Record};

/// One slot per error kind, and the last for sampled successes.
pub(crate) const SLOTS: usize = ErrorKind::COUNT + 1;
/// The slot of sampled successes.
pub(crate) const OK_SLOT: usize = ErrorKind::COUNT;

/// The slot of `kind` (`None`: a success).
pub(crate) fn slot(kind: Option<ErrorKind>) -> usize {
    kind.map_or(OK_SLOT, |k| k.index())
}

/// A shard's log: its bounds this second, its sampler, what it left out.
#[derive(Debug)]
pub struct ShardLog {
    spec: Arc<RequestLogSpec>,
    start: Instant,
    lines: SyncSender<Message>,
    /// This shard's share of the per-second bound.
    per_second: u32,
    /// The second the counts are of.
    second: Cell<u64>,
    /// Lines kept this second, per slot.
    kept: RefCell<[u32; SLOTS]>,
    /// Lines left out over the run, per slot (over the bound, or the writer had no room).
    left_out: RefCell<[u64; SLOTS]>,
    /// The success sample, parts per million.
    sample_ppm: u32,
    /// The success sampler: logs each time it passes a million.
    sampled: Cell<u32>,
}

/// The sample share, clamped to 0..=1.
fn spec_sample(spec: &RequestLogSpec) -> f64 {
    if spec.sample.is_finite() { spec.sample.clamp(0.0, 1.0) } else { 0.0 }
}

impl ShardLog {
    /// A shard's log of a run that started at `start`, writing through `lines`, at most
    /// `per_second` lines a second per kind.
    pub(crate) fn new(
        spec: Arc<RequestLogSpec>,
        start: Instant,
        lines: SyncSender<Message>,
        per_second: u32,
    ) -> ShardLog {
        let sample_ppm = (spec_sample(&spec) * 1e6).round() as u32;
        ShardLog {
            spec,
            start,
            lines,
            per_second,
            second: Cell::new(0),
            kept: RefCell::new([0; SLOTS]),
            left_out: RefCell::new([0; SLOTS]),
            sample_ppm,
            sampled: Cell::new(0),
        }
    }

    /// The most answer bytes a line holds (what a connection should keep of each answer).
    pub fn body_bytes(&self) -> usize {
        self.spec.body_bytes
    }

    /// Whether the request that just ended with `failure` (`None`: it succeeded) is to be
    /// logged now; counts it as left out when its kind's bound for this second is reached.
    pub fn wants(&self, failure: Option<ErrorKind>, now: Instant) -> bool {
        if failure.is_none() {
            if self.sample_ppm == 0 {
                return false;
            }
            // An exact share, without a random number: 1% logs every 100th success.
            let next = self.sampled.get() + self.sample_ppm;
            if next < 1_000_000 {
                self.sampled.set(next);
                return false;
            }
            self.sampled.set(next - 1_000_000);
        }
        let second = now.saturating_duration_since(self.start).as_secs();
        let mut kept = self.kept.borrow_mut();
        if second != self.second.get() {
            self.second.set(second);
            *kept = [0; SLOTS];
        }
        let slot = slot(failure);
        if kept[slot] >= self.per_second {
            self.left_out.borrow_mut()[slot] += 1;
            return false;
        }
        kept[slot] += 1;
        true
    }

    /// Hands a line to the writer; when it has no room the line is left out (counted).
    pub(crate) fn send(&self, record: Record) {
        let slot = slot(record.kind);
        match self.lines.try_send(Message::Line(Box::new(record))) {
            Ok(()) => {}
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.left_out.borrow_mut()[slot] += 1,
        }
    }

    /// Seconds since the run's start, for a line's time.
    pub(crate) fn since_start(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }

    /// At the shard's end: what it left out, to the writer (waiting for room: it is the last
    /// message and must arrive).
    pub fn finish(&self) {
        let left_out = *self.left_out.borrow();
        let _ = self.lines.send(Message::LeftOut(left_out));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn log(sample: f64, per_second: u32) -> (ShardLog, std::sync::mpsc::Receiver<Message>) {
        let mut spec = RequestLogSpec::new("x".into());
        spec.sample = sample;
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        (ShardLog::new(Arc::new(spec), Instant::now(), tx, per_second), rx)
    }

    #[test]
    fn each_kind_is_bounded_per_second_and_the_rest_counted() {
        let (log, _rx) = log(0.0, 3);
        let now = Instant::now();
        let timeouts = (0..5).filter(|_| log.wants(Some(ErrorKind::Timeout), now)).count();
        let resets = (0..2).filter(|_| log.wants(Some(ErrorKind::Reset), now)).count();
        assert_eq!((timeouts, resets), (3, 2), "bounds are per kind");
        assert_eq!(log.left_out.borrow()[ErrorKind::Timeout.index()], 2);
        let later = now + Duration::from_secs(1);
        assert!(log.wants(Some(ErrorKind::Timeout), later), "a new second, a new bound");
        assert!(!log.wants(None, later), "no sample: successes are not logged");
    }

    #[test]
    fn the_sample_is_an_exact_share() {
        let (log, _rx) = log(0.01, 1_000_000);
        let now = Instant::now();
        assert_eq!((0..10_000).filter(|_| log.wants(None, now)).count(), 100);
        let (all, _rx) = log_all();
        assert_eq!((0..50).filter(|_| all.wants(None, now)).count(), 50);
    }

    fn log_all() -> (ShardLog, std::sync::mpsc::Receiver<Message>) {
        log(1.0, 1_000_000)
    }

    #[test]
    fn a_full_channel_leaves_lines_out_without_waiting() {
        let (log, _rx) = log(0.0, 100);
        for _ in 0..10 {
            log.send(Record::test(Some(ErrorKind::Status5xx)));
        }
        assert_eq!(log.left_out.borrow()[ErrorKind::Status5xx.index()], 2, "8 fit in the channel");
    }
}
