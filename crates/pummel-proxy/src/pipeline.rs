//! The toxic maths of one direction of one connection, without any I/O: chunks go in with the
//! time they were read, timed events come out (write these bytes at T, end the stream at T,
//! close or reset the connection at T).
//!
//! toxiproxy runs each toxic of a link as a goroutine, chained by channels: every toxic handles
//! one chunk at a time, in order, and hands it on when its time comes. This is the same chain,
//! simulated in one place: each [`Stage`] has a queue of what reached it and the timed outputs
//! of the chunk in hand; it takes the next chunk when the last output of the previous one has
//! left, at `max(arrival, free)`. So latency is counted from when a chunk was read (a stream of
//! chunks is delayed once, not once per chunk), bandwidth from when the toxic got the chunk,
//! and chained toxics compose as in toxiproxy. Times are exact instants, not sleeps, so timer
//! granularity never adds up: pieces due within the same millisecond are written one after the
//! other at that tick, on time on average.
//!
//! A change of toxics applies at once (`Pipeline::update`): what a removed or updated toxic
//! held in hand is handed on now (as toxiproxy's interrupt does: a chunk waiting out its latency
//! leaves at once), its queue goes to the next toxic; a new toxic joins the end of the chain.
//! A connection's toxicity is rolled when a toxic joins its chain, and again when it is updated.
//!
//! Every time here is a `tokio::time::Instant`, so the direction loop in `link` runs these
//! maths on tokio's clock (paused in tests).

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use rand::rngs::SmallRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use crate::toxic::{Toxic, ToxicKind};

/// What flows through a direction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Event {
    /// Bytes to forward.
    Data(Bytes),
    /// The source ended its stream: end ours (half-close) once everything before is written.
    Eof,
    /// Close the whole connection (both sides, FIN).
    Close,
    /// Reset the whole connection (both sides, RST).
    Reset,
}

/// An event and when it is due.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Timed {
    /// When it reaches the next toxic (or the socket).
    pub at: Instant,
    /// The chunk's own time: when it was read, moved on by latency toxics (what the next
    /// latency is counted from).
    pub stamp: Instant,
    /// What it is.
    pub event: Event,
}

/// One toxic in the chain of one direction of one connection.
#[derive(Debug)]
struct Stage {
    toxic: Arc<Toxic>,
    /// The toxicity roll: false makes the stage pass everything on at once.
    active: bool,
    /// Events that reached this toxic, not yet taken.
    queue: VecDeque<Timed>,
    /// The timed outputs of the event in hand, in time order.
    out: VecDeque<Timed>,
    /// When the event before the one in hand was done with.
    free_at: Instant,
    /// `limit_data`: bytes let through so far (kept across updates, as toxiproxy's state).
    sent: u64,
    /// The toxic has ended its stream (reset sent, limit reached, timed out): drop the rest.
    tripped: bool,
    /// `timeout`: when the connection closes unless data comes first.
    deadline: Option<Instant>,
}

impl Stage {
    fn new(toxic: Arc<Toxic>, now: Instant, rng: &mut SmallRng) -> Stage {
        let mut stage = Stage {
            active: roll(toxic.toxicity, rng),
            toxic,
            queue: VecDeque::new(),
            out: VecDeque::new(),
            free_at: now,
            sent: 0,
            tripped: false,
            deadline: None,
        };
        stage.arm_timer(now);
        stage
    }

    /// Starts the `timeout` countdown from `from` (when the toxic starts, and at each chunk).
    fn arm_timer(&mut self, from: Instant) {
        self.deadline = match self.toxic.kind {
            ToxicKind::Timeout { timeout } if self.active && !self.tripped && timeout > 0 => {
                Some(later(from, Duration::from_millis(timeout)))
            }
            _ => None,
        };
    }

    /// Fires the `timeout` countdown if it ran out by `t`: the connection closes then.
    fn fire_timer_by(&mut self, t: Instant) {
        if let Some(deadline) = self.deadline.filter(|d| *d <= t) {
            self.deadline = None;
            self.tripped = true;
            self.out.push_back(Timed { at: deadline, stamp: deadline, event: Event::Close });
        }
    }

    /// Takes `item` in hand at `start`; fills `out`. Returns the bytes it dropped.
    fn plan(&mut self, item: Timed, start: Instant, rng: &mut SmallRng) -> usize {
        let Timed { stamp, event, .. } = item;
        if self.tripped {
            return data_len(&event);
        }
        let pass = |at: Instant, event: Event| Timed { at, stamp, event };
        if !self.active {
            self.out.push_back(pass(start, event));
            return 0;
        }
        let data = match event {
            Event::Data(data) => data,
            other => {
                // The end of the stream (or of the connection).
                match self.toxic.kind {
                    ToxicKind::SlowClose { delay } => {
                        self.out.push_back(pass(later(start, Duration::from_millis(delay)), other));
                    }
                    ToxicKind::ResetPeer { timeout } => {
                        self.tripped = true;
                        let at = later(start, Duration::from_millis(timeout));
                        self.out.push_back(Timed { at, stamp: at, event: Event::Reset });
                    }
                    _ => {
                        self.deadline = None;
                        self.out.push_back(pass(start, other));
                    }
                }
                return 0;
            }
        };
        match self.toxic.kind {
            ToxicKind::Noop | ToxicKind::SlowClose { .. } => self.out.push_back(pass(start, Event::Data(data))),
            ToxicKind::Latency { latency, jitter } => {
                let mut delay = latency as i128;
                if jitter > 0 {
                    // toxiproxy: latency + rand.Int63n(2 * jitter) - jitter.
                    delay += rng.random_range(0..2 * jitter as i128) - jitter as i128;
                }
                let due = if delay <= 0 {
                    stamp
                } else {
                    later(stamp, Duration::from_millis(u64::try_from(delay).unwrap_or(u64::MAX)))
                };
                let at = due.max(start);
                self.out.push_back(Timed { at, stamp: at, event: Event::Data(data) });
            }
            ToxicKind::Bandwidth { rate } => {
                if rate == 0 {
                    self.out.push_back(pass(start, Event::Data(data)));
                } else {
                    // `rate` KB/s is `rate` bytes per millisecond; more than 100 ms worth goes
                    // out in 100 ms pieces, the rest after its own transmission time.
                    let per_piece = usize::try_from(rate.saturating_mul(100)).unwrap_or(usize::MAX);
                    let mut at = start;
                    let mut rest = data;
                    while rest.len() > per_piece {
                        at = later(at, Duration::from_millis(100));
                        self.out.push_back(pass(at, Event::Data(rest.split_to(per_piece))));
                    }
                    let nanos = (rest.len() as u128 * 1_000_000) / rate as u128;
                    at = later(at, Duration::from_nanos(u64::try_from(nanos).unwrap_or(u64::MAX)));
                    self.out.push_back(pass(at, Event::Data(rest)));
                }
            }
            ToxicKind::Timeout { .. } => {
                // Dropped; each chunk restarts the countdown (toxiproxy's time.After per loop).
                self.arm_timer(start);
                return data.len();
            }
            ToxicKind::ResetPeer { timeout } => {
                self.tripped = true;
                let at = later(start, Duration::from_millis(timeout));
                self.out.push_back(Timed { at, stamp: at, event: Event::Reset });
                return data.len();
            }
            ToxicKind::Slicer { average_size, size_variation, delay } => {
                let gap = Duration::from_micros(delay);
                let mut at = start;
                for (from, to) in slice_offsets(data.len(), average_size, size_variation, rng) {
                    self.out.push_back(pass(at, Event::Data(data.slice(from..to))));
                    at = later(at, gap);
                }
                // The gap after the last piece too: the next chunk waits for it.
                self.free_at = at;
            }
            ToxicKind::LimitData { bytes } => {
                let remaining = usize::try_from(bytes.saturating_sub(self.sent)).unwrap_or(usize::MAX);
                let mut dropped = 0;
                let mut data = data;
                if data.len() > remaining {
                    dropped = data.len() - remaining;
                    data.truncate(remaining);
                }
                if !data.is_empty() {
                    self.sent += data.len() as u64;
                    self.out.push_back(pass(start, Event::Data(data)));
                }
                if self.sent >= bytes {
                    self.tripped = true;
                    self.out.push_back(pass(start, Event::Close));
                }
                return dropped;
            }
        }
        0
    }

    /// Hands on what this toxic holds when it is removed or updated: the outputs in hand now
    /// (a close or reset already decided keeps its time), then, when removed, its queue.
    fn flush(&mut self, now: Instant, with_queue: bool) -> VecDeque<Timed> {
        let mut moved: VecDeque<Timed> = self
            .out
            .drain(..)
            .map(|mut t| {
                if matches!(t.event, Event::Data(_) | Event::Eof) {
                    t.at = t.at.min(now);
                }
                t
            })
            .collect();
        self.free_at = now;
        if with_queue {
            moved.extend(self.queue.drain(..));
        }
        moved
    }
}

/// The chain of toxics of one direction of one connection, and what is due at the socket.
#[derive(Debug)]
pub(crate) struct Pipeline {
    stages: Vec<Stage>,
    /// Past every toxic: due at the socket at its time.
    ready: VecDeque<Timed>,
    rng: SmallRng,
    /// Bytes held (read, neither written nor dropped): the reader stops past a bound.
    buffered: usize,
}

impl Pipeline {
    /// A chain of `toxics` starting at `now`, each rolled for this connection.
    pub fn new(toxics: &[Arc<Toxic>], now: Instant) -> Pipeline {
        let mut rng = SmallRng::from_rng(&mut rand::rng());
        let stages = toxics.iter().map(|t| Stage::new(Arc::clone(t), now, &mut rng)).collect();
        Pipeline { stages, ready: VecDeque::new(), rng, buffered: 0 }
    }

    /// No toxic and nothing held: the plain copy loop can take over.
    pub fn is_empty(&self) -> bool {
        self.stages.is_empty() && self.ready.is_empty()
    }

    /// Bytes read and not yet written or dropped.
    pub fn buffered(&self) -> usize {
        self.buffered
    }

    /// An event read from the source at `now`.
    pub fn push(&mut self, event: Event, now: Instant) {
        self.buffered += data_len(&event);
        self.deliver(0, Timed { at: now, stamp: now, event });
        self.advance(now);
    }

    /// The next event due at the socket by `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<Event> {
        if self.ready.front().is_some_and(|t| t.at <= now) {
            let event = self.ready.pop_front()?.event;
            self.buffered -= data_len(&event);
            Some(event)
        } else {
            None
        }
    }

    /// When something is next due (an output leaving a toxic, a timeout, the socket's next).
    pub fn next_wake(&self) -> Option<Instant> {
        let stages = self.stages.iter().flat_map(|s| s.out.front().map(|t| t.at).into_iter().chain(s.deadline));
        stages.chain(self.ready.front().map(|t| t.at)).min()
    }

    /// Moves everything whose time has come, toxic by toxic.
    pub fn advance(&mut self, now: Instant) {
        for index in 0..self.stages.len() {
            loop {
                let (left, right) = self.stages.split_at_mut(index + 1);
                let stage = &mut left[index];
                while stage.out.front().is_some_and(|t| t.at <= now) {
                    let Some(timed) = stage.out.pop_front() else { break };
                    stage.free_at = stage.free_at.max(timed.at);
                    match right.first_mut() {
                        Some(next) => next.queue.push_back(timed),
                        None => self.ready.push_back(timed),
                    }
                }
                if !stage.out.is_empty() {
                    break;
                }
                let Some(item) = stage.queue.pop_front() else {
                    stage.fire_timer_by(now);
                    if stage.out.is_empty() {
                        break;
                    }
                    continue;
                };
                let start = item.at.max(stage.free_at);
                stage.fire_timer_by(start);
                if !stage.out.is_empty() {
                    // The countdown ran out before this chunk came: the close goes first.
                    stage.queue.push_front(item);
                    continue;
                }
                stage.free_at = start;
                let dropped = stage.plan(item, start, &mut self.rng);
                self.buffered -= dropped;
            }
        }
    }

    /// Applies a new list of toxics for this direction at `now`: kept toxics keep their state,
    /// updated ones (same name, new settings) hand on what they hold and are rolled again,
    /// removed ones hand on what they hold and their queue, new ones join the end.
    pub fn update(&mut self, toxics: &[Arc<Toxic>], now: Instant) {
        let mut old: Vec<Option<Stage>> = self.stages.drain(..).map(Some).collect();
        let mut stages: Vec<Stage> = Vec::with_capacity(toxics.len());
        // For each new stage, its index in the old chain (None: new).
        let mut origin: Vec<Option<usize>> = Vec::with_capacity(toxics.len());
        // (index in the new chain, or its length for the socket; events) to hand on.
        let mut handed: Vec<(usize, VecDeque<Timed>)> = Vec::new();
        for toxic in toxics {
            let found = old.iter().position(|s| s.as_ref().is_some_and(|s| s.toxic.name == toxic.name));
            match found.and_then(|j| old[j].take().map(|s| (j, s))) {
                Some((j, mut stage)) => {
                    if !Arc::ptr_eq(&stage.toxic, toxic) {
                        handed.push((stages.len() + 1, stage.flush(now, false)));
                        stage.toxic = Arc::clone(toxic);
                        stage.active = roll(toxic.toxicity, &mut self.rng);
                        stage.arm_timer(now);
                    }
                    stages.push(stage);
                    origin.push(Some(j));
                }
                None => {
                    stages.push(Stage::new(Arc::clone(toxic), now, &mut self.rng));
                    origin.push(None);
                }
            }
        }
        for (j, removed) in old.into_iter().enumerate() {
            let Some(mut stage) = removed else { continue };
            let mut events = stage.flush(now, true);
            if matches!(stage.toxic.kind, ToxicKind::Timeout { .. }) && stage.active && !stage.tripped {
                // As toxiproxy's cleanup of a timeout: the stream lost data, close it.
                events.push_back(Timed { at: now, stamp: now, event: Event::Close });
            }
            let target = origin.iter().position(|o| o.is_none_or(|k| k > j)).unwrap_or(stages.len());
            handed.push((target, events));
        }
        self.stages = stages;
        for (target, events) in handed {
            for timed in events {
                self.deliver(target, timed);
            }
        }
        self.advance(now);
    }

    /// Puts `timed` in the queue of stage `index` (or due at the socket past the last).
    fn deliver(&mut self, index: usize, timed: Timed) {
        match self.stages.get_mut(index) {
            Some(stage) => stage.queue.push_back(timed),
            None => self.ready.push_back(timed),
        }
    }
}

/// `t + d`, or far in the future when that would overflow (a user may set any attribute).
fn later(t: Instant, d: Duration) -> Instant {
    t.checked_add(d).or_else(|| t.checked_add(Duration::from_secs(100 * 365 * 24 * 3600))).unwrap_or(t)
}

/// The toxicity roll: true when the toxic acts on this connection.
fn roll(toxicity: f64, rng: &mut SmallRng) -> bool {
    // toxiproxy: rand.Float32() < toxicity.
    rng.random::<f64>() < toxicity
}

fn data_len(event: &Event) -> usize {
    match event {
        Event::Data(data) => data.len(),
        _ => 0,
    }
}

/// toxiproxy's slicer: halves a chunk (± `variation` around the middle) until every piece is
/// at most `average + variation` bytes; returns the pieces as `(from, to)`, in order.
fn slice_offsets(len: usize, average: u64, variation: u64, rng: &mut SmallRng) -> Vec<(usize, usize)> {
    let average = usize::try_from(average).unwrap_or(usize::MAX).max(1);
    let variation = usize::try_from(variation).unwrap_or(usize::MAX).min(average - 1);
    let mut pieces = Vec::with_capacity(len / average + 1);
    let mut stack = vec![(0usize, len)];
    while let Some((start, end)) = stack.pop() {
        let size = end - start;
        if size <= average.saturating_add(variation) || size < 2 {
            pieces.push((start, end));
            continue;
        }
        let mut mid = start + size / 2;
        if variation > 0 {
            let shift = rng.random_range(0..2 * variation);
            mid = (mid + shift).saturating_sub(variation);
        }
        let mid = mid.clamp(start + 1, end - 1);
        stack.push((mid, end));
        stack.push((start, mid));
    }
    pieces
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::toxic::Stream;

    fn toxic(kind: ToxicKind) -> Arc<Toxic> {
        Arc::new(Toxic::new(kind, Stream::Downstream))
    }

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    /// Advances to each wake-up until `until`, collecting (time since `t0`, event).
    fn run(p: &mut Pipeline, t0: Instant, until: Instant) -> Vec<(Duration, Event)> {
        let mut seen = Vec::new();
        let mut now = t0;
        loop {
            p.advance(now);
            while let Some(event) = p.pop_due(now) {
                seen.push((now - t0, event));
            }
            match p.next_wake() {
                Some(next) if next <= until => now = next.max(now),
                _ => return seen,
            }
        }
    }

    fn data(text: &'static str) -> Event {
        Event::Data(Bytes::from_static(text.as_bytes()))
    }

    #[test]
    fn latency_counts_from_when_each_chunk_was_read() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::Latency { latency: 20, jitter: 0 })], t0);
        p.push(data("a"), t0);
        p.push(data("b"), t0 + ms(5));
        let seen = run(&mut p, t0, t0 + ms(100));
        assert_eq!(seen, vec![(ms(20), data("a")), (ms(25), data("b"))]);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn jitter_stays_within_its_bounds() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::Latency { latency: 50, jitter: 10 })], t0);
        for i in 0..200 {
            // Far apart, so that each is delayed on its own.
            let at = t0 + ms(1000 * i);
            p.push(data("x"), at);
            let next = p.next_wake().unwrap();
            assert!(next >= at + ms(40) && next < at + ms(60), "{:?}", next - at);
            p.advance(next);
            assert!(p.pop_due(next).is_some());
        }
    }

    #[test]
    fn bandwidth_paces_at_its_rate_in_100ms_pieces() {
        let t0 = Instant::now();
        // 10 KB/s: 25,000 bytes take 2.5 s, in 1,000-byte pieces every 100 ms.
        let mut p = Pipeline::new(&[toxic(ToxicKind::Bandwidth { rate: 10 })], t0);
        p.push(Event::Data(Bytes::from(vec![0u8; 25_000])), t0);
        let seen = run(&mut p, t0, t0 + ms(10_000));
        let bytes: usize = seen.iter().map(|(_, e)| data_len(e)).sum();
        assert_eq!(bytes, 25_000);
        assert_eq!(seen[0].0, ms(100));
        assert_eq!(seen.last().unwrap().0, ms(2500));
        // The next chunk waits for the link to be free.
        p.push(Event::Data(Bytes::from(vec![0u8; 500])), t0 + ms(2500));
        let seen = run(&mut p, t0 + ms(2500), t0 + ms(10_000));
        assert_eq!(seen, vec![(ms(50), Event::Data(Bytes::from(vec![0u8; 500])))]);
    }

    #[test]
    fn slow_close_holds_the_end_of_stream_back() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::SlowClose { delay: 300 })], t0);
        p.push(data("bye"), t0);
        p.push(Event::Eof, t0);
        let seen = run(&mut p, t0, t0 + ms(1000));
        assert_eq!(seen, vec![(ms(0), data("bye")), (ms(300), Event::Eof)]);
    }

    #[test]
    fn timeout_drops_data_and_closes_after_a_quiet_spell() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::Timeout { timeout: 100 })], t0);
        p.push(data("lost"), t0 + ms(50));
        assert_eq!(p.buffered(), 0);
        let seen = run(&mut p, t0, t0 + ms(1000));
        // The chunk at 50 ms restarted the countdown.
        assert_eq!(seen, vec![(ms(150), Event::Close)]);
    }

    #[test]
    fn timeout_zero_never_closes_and_removing_it_closes() {
        let t0 = Instant::now();
        let t = toxic(ToxicKind::Timeout { timeout: 0 });
        let mut p = Pipeline::new(std::slice::from_ref(&t), t0);
        p.push(data("lost"), t0);
        assert_eq!(run(&mut p, t0, t0 + ms(60_000)), vec![]);
        p.update(&[], t0 + ms(70_000));
        let seen = run(&mut p, t0 + ms(70_000), t0 + ms(80_000));
        assert_eq!(seen, vec![(ms(0), Event::Close)]);
    }

    #[test]
    fn reset_peer_resets_after_the_first_data() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::ResetPeer { timeout: 200 })], t0);
        assert_eq!(run(&mut p, t0, t0 + ms(5000)), vec![]);
        p.push(data("hello"), t0 + ms(10));
        p.push(data("more"), t0 + ms(20));
        let seen = run(&mut p, t0, t0 + ms(5000));
        assert_eq!(seen, vec![(ms(210), Event::Reset)]);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn slicer_cuts_chunks_and_spaces_the_pieces() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::Slicer { average_size: 10, size_variation: 3, delay: 1000 })], t0);
        let payload: Vec<u8> = (0..=255u8).collect();
        p.push(Event::Data(Bytes::from(payload.clone())), t0);
        let seen = run(&mut p, t0, t0 + ms(10_000));
        let mut joined = Vec::new();
        for (i, (at, event)) in seen.iter().enumerate() {
            let Event::Data(piece) = event else { panic!("{event:?}") };
            assert!(!piece.is_empty() && piece.len() <= 13, "piece of {}", piece.len());
            assert_eq!(*at, ms(i as u64));
            joined.extend_from_slice(piece);
        }
        assert_eq!(joined, payload);
        assert!(seen.len() >= 256 / 13);
    }

    #[test]
    fn slice_offsets_cover_the_chunk_without_gaps() {
        let mut rng = SmallRng::seed_from_u64(7);
        for len in [1usize, 2, 5, 100, 1000, 65_536] {
            for (avg, var) in [(1u64, 0u64), (2, 1), (10, 9), (100, 0), (1000, 500)] {
                let pieces = slice_offsets(len, avg, var, &mut rng);
                let mut at = 0;
                for (from, to) in &pieces {
                    assert_eq!(*from, at);
                    assert!(to > from);
                    at = *to;
                }
                assert_eq!(at, len);
            }
        }
    }

    #[test]
    fn limit_data_lets_bytes_through_then_closes() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::LimitData { bytes: 5 })], t0);
        p.push(data("abc"), t0);
        p.push(data("defg"), t0);
        p.push(data("hij"), t0);
        let seen = run(&mut p, t0, t0 + ms(1000));
        assert_eq!(seen, vec![(ms(0), data("abc")), (ms(0), data("de")), (ms(0), Event::Close)]);
        assert_eq!(p.buffered(), 0);
    }

    #[test]
    fn toxicity_zero_passes_everything_at_once() {
        let t0 = Instant::now();
        let mut t = Toxic::new(ToxicKind::Latency { latency: 1000, jitter: 0 }, Stream::Upstream);
        t.toxicity = 0.0;
        let mut p = Pipeline::new(&[Arc::new(t)], t0);
        p.push(data("a"), t0);
        assert_eq!(run(&mut p, t0, t0), vec![(ms(0), data("a"))]);
    }

    #[test]
    fn toxicity_is_rolled_per_connection() {
        let mut t = Toxic::new(ToxicKind::Latency { latency: 1000, jitter: 0 }, Stream::Upstream);
        t.toxicity = 0.3;
        let t = Arc::new(t);
        let t0 = Instant::now();
        let delayed = (0..2000)
            .filter(|_| {
                let mut p = Pipeline::new(std::slice::from_ref(&t), t0);
                p.push(data("a"), t0);
                p.pop_due(t0).is_none()
            })
            .count();
        assert!((500..700).contains(&delayed), "{delayed} of 2000 connections got a toxicity of 0.3");
    }

    #[test]
    fn removing_a_latency_releases_what_it_holds_at_once() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[toxic(ToxicKind::Latency { latency: 1000, jitter: 0 })], t0);
        p.push(data("a"), t0);
        p.push(data("b"), t0 + ms(10));
        p.update(&[], t0 + ms(100));
        let seen = run(&mut p, t0 + ms(100), t0 + ms(100));
        assert_eq!(seen, vec![(ms(0), data("a")), (ms(0), data("b"))]);
        assert!(p.is_empty());
    }

    #[test]
    fn adding_and_updating_toxics_applies_to_what_comes_next() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(&[], t0);
        p.push(data("a"), t0);
        assert_eq!(p.pop_due(t0), Some(data("a")));
        let slow = toxic(ToxicKind::Latency { latency: 100, jitter: 0 });
        p.update(std::slice::from_ref(&slow), t0 + ms(1));
        p.push(data("b"), t0 + ms(2));
        assert_eq!(p.next_wake(), Some(t0 + ms(102)));
        // Updated to 10 ms: the chunk in hand leaves now, the next ones take 10 ms.
        let fast = toxic(ToxicKind::Latency { latency: 10, jitter: 0 });
        p.update(std::slice::from_ref(&fast), t0 + ms(50));
        assert_eq!(p.pop_due(t0 + ms(50)), Some(data("b")));
        p.push(data("c"), t0 + ms(60));
        assert_eq!(p.next_wake(), Some(t0 + ms(70)));
    }

    #[test]
    fn chained_toxics_compose_in_order() {
        let t0 = Instant::now();
        // 20 ms of latency, then 1 KB/s: 100 bytes take 100 ms once the latency is over.
        let mut p = Pipeline::new(
            &[toxic(ToxicKind::Latency { latency: 20, jitter: 0 }), toxic(ToxicKind::Bandwidth { rate: 1 })],
            t0,
        );
        p.push(Event::Data(Bytes::from(vec![1u8; 100])), t0);
        p.push(Event::Eof, t0);
        let seen = run(&mut p, t0, t0 + ms(1000));
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[0].0, ms(120));
        assert_eq!(seen[1], (ms(120), Event::Eof));
    }

    #[test]
    fn huge_attributes_do_not_overflow() {
        let t0 = Instant::now();
        let mut p = Pipeline::new(
            &[
                toxic(ToxicKind::Latency { latency: u64::MAX, jitter: u64::MAX }),
                toxic(ToxicKind::Bandwidth { rate: u64::MAX }),
            ],
            t0,
        );
        p.push(data("a"), t0);
        p.advance(t0 + ms(10));
        assert!(p.next_wake().is_some());
    }
}
