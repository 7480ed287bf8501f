//! One client connection: read requests, hold them for the configured delay, write the answers
//! in order, and close when HTTP says so, when the client goes idle, or on bad input.
//!
//! Cheap by design, because a sink may hold tens of thousands of delayed requests: a connection
//! is one tokio task with no buffer of its own while idle or waiting. Bytes are read into one
//! scratch buffer per thread (`SCRATCH`) and framed right there; only an incomplete request
//! head is copied into the connection's own `partial` buffer, which is freed again once it is
//! used. Answers are pre-built byte strings written with one vectored write per batch, so a
//! keep-alive request costs one read and one write system call. While it holds a delayed
//! request, a connection keeps reading, so a client that gives up is let go at once instead of
//! pinning a socket for the whole delay.

use std::cell::RefCell;
use std::io::{self, IoSlice};
use std::pin::pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpStream;
use tokio::time::{Instant, sleep_until, timeout, timeout_at};

use crate::config::SinkConfig;
use crate::delay::Delay;
use crate::record::Recorder;
use crate::request::{Event, Framer, Head};
use crate::response::{Answer, ConnMode, Outcome, Responses};
use crate::stats::{OpenConnection, SinkStats};
use crate::stream::Stream;

/// Bytes read per system call into the per-thread scratch buffer.
const SCRATCH_SIZE: usize = 64 * 1024;
/// The most answers in one vectored write (two buffers each; Linux allows 1024 buffers).
const MAX_BATCH: usize = 32;
/// The most answers a connection queues; past it, it stops reading until some are written.
const MAX_QUEUED: usize = 256;
/// A `partial` buffer bigger than this is freed once it is empty again.
const KEEP_PARTIAL_CAPACITY: usize = 4096;
/// How long a closing connection keeps reading what the client still sends, so that the
/// kernel does not reset the connection (and lose the last answer) over unread bytes.
const LINGER: Duration = Duration::from_secs(1);
/// How many bytes a closing connection reads at most while it lingers.
const LINGER_BYTES: usize = 1 << 20;

thread_local! {
    /// The read buffer shared by every connection of this thread. Connections only borrow it
    /// in synchronous code, between two awaits, so they never hold it at the same time.
    static SCRATCH: RefCell<Vec<u8>> = RefCell::new(vec![0; SCRATCH_SIZE]);
}

/// What every connection of a sink needs: the pre-built answers, the settings and the counters.
#[derive(Debug)]
pub(crate) struct Shared {
    /// Every answer, built once.
    pub(crate) responses: Responses,
    /// How long to hold each request.
    pub(crate) delay: Delay,
    /// Fraction of answers that are `500`.
    pub(crate) error_rate: f64,
    /// Close after every answer.
    pub(crate) close: bool,
    /// Close clients idle longer than this.
    pub(crate) idle_timeout: Duration,
    /// The sink's counters.
    pub(crate) stats: Arc<SinkStats>,
    /// Admits requests up to the configured capacity; the rest get `503`.
    pub(crate) capacity: Option<std::sync::Mutex<TokenBucket>>,
    /// Where complete requests go when the sink records them (`None`: not recording).
    pub(crate) recorder: Option<Recorder>,
    /// The TLS configuration when the sink serves HTTPS (`None`: plain HTTP).
    pub(crate) tls: Option<Arc<rustls::ServerConfig>>,
    /// How long WebSocket sessions hold each message before echoing it.
    pub(crate) ws_delay: Duration,
    /// Answers that describe the request (`--echo`); `None`: the fixed answers.
    pub(crate) echo: Option<crate::echo::Echo>,
    /// The key-value store (`--store`); `None`: the fixed answers.
    pub(crate) store: Option<Arc<crate::store::Store>>,
}

/// A token bucket shared by all threads: `rate` tokens a second, at most `burst` saved up.
#[derive(Debug)]
pub(crate) struct TokenBucket {
    rate: f64,
    burst: f64,
    tokens: f64,
    last: std::time::Instant,
}

impl TokenBucket {
    /// A full bucket refilled at `rate` per second, holding 50 ms worth (at least one token).
    pub(crate) fn new(rate: f64) -> Self {
        let burst = (rate * 0.05).max(1.0);
        TokenBucket { rate, burst, tokens: burst, last: std::time::Instant::now() }
    }

    /// Takes a token if one is there.
    pub(crate) fn admit(&mut self) -> bool {
        let now = std::time::Instant::now();
        self.tokens = (self.tokens + now.duration_since(self.last).as_secs_f64() * self.rate).min(self.burst);
        self.last = now;
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

impl Shared {
    /// Builds what connections share from a validated configuration.
    pub(crate) fn new(config: &SinkConfig, stats: Arc<SinkStats>, recorder: Option<Recorder>) -> Self {
        Shared {
            responses: Responses::new(config.status, config.body_size),
            delay: config.delay,
            error_rate: config.error_rate,
            close: config.close,
            idle_timeout: config.idle_timeout,
            stats,
            capacity: config.capacity.map(|rate| std::sync::Mutex::new(TokenBucket::new(rate))),
            recorder,
            tls: None,
            ws_delay: config.ws_delay,
            echo: config.echo.then(|| crate::echo::Echo::new(config.status)),
            store: config.store.then(|| Arc::new(crate::store::Store::new(config.drop_every))),
        }
    }
}

/// An answer waiting to be written, and when (`None`: as soon as the ones before it are).
#[derive(Debug, Clone, Copy)]
struct Queued {
    answer: Answer,
    due: Option<Instant>,
    /// Written from the connection's `echoes` instead of the pre-built answers (`--echo`).
    echo: bool,
}

/// The state of one client connection.
struct Connection {
    stream: Stream,
    shared: Arc<Shared>,
    framer: Framer,
    /// The start of a request head that has not fully arrived yet (usually empty, unallocated).
    partial: Vec<u8>,
    /// Answers to write, in request order.
    queue: Vec<Queued>,
    /// An answer that closes the connection is queued: read no further requests.
    closing: bool,
    /// When the client last sent something or the sink last answered, for the idle timeout.
    last_active: Instant,
    /// The client opened with the HTTP/2 preface (kept in `partial`): `h2` serves it.
    http2: bool,
    /// The client asked for a WebSocket: `ws` serves the connection once the answers queued
    /// before are written.
    upgrade: Option<Box<crate::ws::Upgrade>>,
    /// The bytes of the queued echo answers (`--echo`), in queue order; empty otherwise.
    echoes: Vec<Box<[u8]>>,
}

/// What one read found.
enum Read {
    /// Bytes arrived and were framed.
    Data,
    /// The client closed its side.
    Eof,
    /// Nothing to read after all (the readiness was stale).
    NotReady,
}

/// Serves one accepted client until it closes, goes idle, sends bad input, or the sink stops
/// (the task is then dropped, which closes the socket). `_open` keeps it counted as open.
pub(crate) async fn serve(stream: TcpStream, shared: Arc<Shared>, _open: OpenConnection) {
    let Some(stream) = Stream::new(stream, shared.tls.as_ref(), &shared.stats) else { return };
    let capture = shared.recorder.is_some() || shared.echo.is_some() || shared.store.is_some();
    let framer = if capture { Framer::recording() } else { Framer::new() };
    let mut connection = Connection {
        stream,
        shared,
        framer,
        partial: Vec::new(),
        queue: Vec::new(),
        closing: false,
        last_active: Instant::now(),
        http2: false,
        upgrade: None,
        echoes: Vec::new(),
    };
    // An I/O error means the client went away or misbehaved: closing is all there is to do.
    let _ = connection.run().await;
    if connection.http2 {
        crate::h2::serve(connection.stream, connection.partial, connection.shared).await;
    } else if let Some(upgrade) = connection.upgrade.take() {
        crate::ws::serve(connection.stream, connection.shared, *upgrade).await;
    }
}

impl Connection {
    async fn run(&mut self) -> io::Result<()> {
        // One timer for the connection's life, pushed back lazily: it is only moved when it
        // fires, not on every request, so keep-alive traffic does not churn the timer wheel.
        let mut idle = pin!(sleep_until(self.idle_deadline()));
        loop {
            let readable = tokio::select! {
                biased;
                ready = self.stream.readable() => {
                    ready?;
                    true
                }
                () = &mut idle => false,
            };
            if !readable {
                let deadline = self.idle_deadline();
                if Instant::now() >= deadline {
                    return Ok(());
                }
                idle.as_mut().reset(deadline);
                continue;
            }
            match with_scratch(|scratch| self.read_into(scratch))? {
                Read::NotReady => continue,
                // Everything framed so far was answered after the previous read.
                Read::Eof => return Ok(()),
                Read::Data => {}
            }
            self.answer().await?;
            self.last_active = Instant::now();
            if self.upgrade.is_some() {
                return Ok(());
            }
            if self.closing {
                self.linger().await;
                return Ok(());
            }
        }
    }

    fn idle_deadline(&self) -> Instant {
        after(self.last_active, self.shared.idle_timeout)
    }

    /// Reads once into `scratch` and frames what arrived; keeps an incomplete head in `partial`.
    fn read_into(&mut self, scratch: &mut [u8]) -> io::Result<Read> {
        let n = match self.stream.try_read(scratch) {
            Ok(0) => return Ok(Read::Eof),
            Ok(n) => n,
            Err(e) if matches!(e.kind(), io::ErrorKind::WouldBlock | io::ErrorKind::Interrupted) => {
                return Ok(Read::NotReady);
            }
            Err(e) => return Err(e),
        };
        if n < scratch.len() {
            // A short read emptied the socket. Forget its readiness now, so the next wait goes
            // straight to epoll instead of first paying a read that fails with EAGAIN. This
            // loses no wake-up: epoll is edge-triggered, so bytes that arrive later raise a new
            // event, and tokio never clears the sticky "peer closed" readiness.
            self.stream.clear_read_ready();
        }
        self.shared.stats.add_bytes_in(n);
        let data = &scratch[..n];
        if self.partial.is_empty() && self.queue.is_empty() && crate::h2::is_preface(data) {
            // An HTTP/2 client (prior knowledge, or ALPN h2 over TLS): handed over, as an end.
            self.http2 = true;
            self.partial.extend_from_slice(data);
            return Ok(Read::Eof);
        }
        if self.partial.is_empty() {
            let used = self.frame(data);
            if !self.closing {
                self.partial.extend_from_slice(data.get(used..).unwrap_or_default());
            }
        } else {
            let mut partial = std::mem::take(&mut self.partial);
            partial.extend_from_slice(data);
            let used = self.frame(&partial);
            if self.closing {
                partial.clear();
            } else {
                partial.drain(..used.min(partial.len()));
            }
            if partial.is_empty() && partial.capacity() > KEEP_PARTIAL_CAPACITY {
                partial = Vec::new();
            }
            self.partial = partial;
        }
        Ok(Read::Data)
    }

    /// Frames the requests in `data`, queues their answers, and returns the bytes used.
    fn frame(&mut self, data: &[u8]) -> usize {
        let shared = &*self.shared;
        let mut used = 0;
        let mut requests = 0;
        let mut now = None;
        while !self.closing {
            let start = used;
            let (n, event) = self.framer.advance(data.get(used..).unwrap_or_default());
            used += n;
            let mut echo = false;
            let answer = match event {
                Event::NeedMore => break,
                Event::ExpectsContinue => {
                    self.queue.push(Queued { answer: Answer::Continue, due: None, echo: false });
                    continue;
                }
                Event::Request(head) => {
                    requests += 1;
                    // `Some` only when recording or echoing.
                    let captured = self.framer.take_captured();
                    let upgrade = if head.upgrade && head.body == crate::request::Body::None {
                        // A body-less head is all of `start..used`.
                        crate::ws::upgrade(
                            data.get(start..used).unwrap_or_default(),
                            data.get(used..).unwrap_or_default(),
                        )
                    } else {
                        None
                    };
                    let answer = reply(shared, head);
                    if let (Some(echoes), Some(captured), Answer::Reply { outcome: Outcome::Normal, mode, .. }, None) =
                        (&shared.echo, &captured, answer, &upgrade)
                    {
                        self.echoes.push(echoes.answer(captured, &head, mode));
                        echo = true;
                    }
                    // The store writes when the request is read (before the delay); an injected
                    // 500 comes after the write, a 503 over capacity instead of it.
                    if let (Some(store), Some(captured), Answer::Reply { outcome, mode, head_only }, None) =
                        (&shared.store, &captured, answer, &upgrade)
                    {
                        if outcome != Outcome::Overloaded {
                            let stored = store.apply(&captured.method, &captured.target, &captured.body);
                            if outcome == Outcome::Normal {
                                self.echoes.push(crate::store::encode(&stored, mode, head_only));
                                echo = true;
                            }
                        }
                    }
                    if let (Some(recorder), Some(captured)) = (&shared.recorder, captured) {
                        recorder.record(captured);
                    }
                    if let Some(upgrade) = upgrade {
                        // The rest of the input is the start of the WebSocket session.
                        self.upgrade = Some(Box::new(upgrade));
                        self.closing = true;
                        used = data.len();
                        break;
                    }
                    answer
                }
                Event::Bad(_) => {
                    shared.stats.add_bad_request();
                    Answer::BadRequest
                }
            };
            let due = if shared.delay.is_zero() || answer == Answer::BadRequest {
                None
            } else {
                Some(after(*now.get_or_insert_with(Instant::now), shared.delay.sample()))
            };
            self.closing = answer.closes();
            self.queue.push(Queued { answer, due, echo });
        }
        shared.stats.add_requests(requests);
        used
    }

    /// Writes every queued answer in order, each once it is due.
    async fn answer(&mut self) -> io::Result<()> {
        let mut next = 0;
        while next < self.queue.len() {
            // Wait for the first answer of the batch; later ones due no later come along.
            let waited = self.queue[next].due;
            if let Some(due) = waited {
                if !self.hold_until(due).await? {
                    let unanswered = self.queue[next..].iter().filter(|item| item.answer.is_final()).count();
                    self.shared.stats.add_abandoned(unanswered as u64);
                    return Err(io::ErrorKind::ConnectionAborted.into());
                }
            }
            let end = self.batch_end(next, waited);
            let mut written = 0;
            while !self.write_batch(next..end, &mut written)? {
                match timeout(self.shared.idle_timeout, self.stream.writable()).await {
                    Ok(ready) => ready?,
                    Err(_) => return Err(io::ErrorKind::TimedOut.into()),
                }
            }
            let finals = self.queue[next..end].iter().filter(|item| item.answer.is_final()).count();
            self.shared.stats.add_responses(finals as u64);
            let echoed = self.queue[next..end].iter().filter(|item| item.echo).count();
            if echoed > 0 {
                self.echoes.drain(..echoed.min(self.echoes.len()));
            }
            next = end;
        }
        self.queue.clear();
        if self.queue.capacity() > MAX_BATCH {
            self.queue = Vec::new();
        }
        Ok(())
    }

    /// Waits until `due`, reading on meanwhile so that a client that gives up is noticed at
    /// once (its connection is then dropped, as nginx does, rather than held for the whole
    /// delay). Requests that arrive meanwhile are framed and queued with their own due times;
    /// reading pauses while [`MAX_QUEUED`] answers wait. Returns false when the client closed.
    async fn hold_until(&mut self, due: Instant) -> io::Result<bool> {
        let mut delay = pin!(sleep_until(due));
        loop {
            let can_read = !self.closing && self.queue.len() < MAX_QUEUED;
            let readable = tokio::select! {
                biased;
                () = &mut delay => return Ok(true),
                ready = self.stream.readable(), if can_read => ready,
            };
            readable?;
            if let Read::Eof = with_scratch(|scratch| self.read_into(scratch))? {
                return Ok(false);
            }
        }
    }

    /// The end of the batch of answers starting at `start` that can be written now: at most
    /// [`MAX_BATCH`] answers, stopping before the first one not yet due.
    fn batch_end(&self, start: usize, waited: Option<Instant>) -> usize {
        let mut now = None;
        let mut end = start;
        for item in self.queue.iter().skip(start).take(MAX_BATCH) {
            if let Some(due) = item.due {
                // Due no later than the one just waited for, or due by the clock.
                if waited.is_none_or(|waited| due > waited) && due > *now.get_or_insert_with(Instant::now) {
                    break;
                }
            }
            end += 1;
        }
        // The first answer is always due (it was waited for).
        end.max(start + 1).min(self.queue.len())
    }

    /// Writes the answers `batch` with vectored writes, skipping the `written` bytes already
    /// sent and counting new ones there; `Ok(false)` when the client is not reading.
    ///
    /// The buffer list is rebuilt on every call (it is cheap) rather than kept across the wait
    /// for the socket, so that a waiting connection's task stays small.
    fn write_batch(&mut self, batch: std::ops::Range<usize>, written: &mut usize) -> io::Result<bool> {
        let mut slices = [IoSlice::new(&[]); 2 * MAX_BATCH];
        let mut count = 0;
        let mut echoes = self.echoes.iter();
        for item in self.queue.get(batch).unwrap_or_default() {
            let (head, body) = if item.echo {
                (echoes.next().map_or(&[][..], |answer| &answer[..]), &[][..])
            } else {
                self.shared.responses.bytes(item.answer)
            };
            for part in [head, body] {
                if !part.is_empty() && count < slices.len() {
                    slices[count] = IoSlice::new(part);
                    count += 1;
                }
            }
        }
        let total: usize = slices[..count].iter().map(|slice| slice.len()).sum();
        if *written >= total {
            return Ok(true);
        }
        let mut pending = &mut slices[..count];
        IoSlice::advance_slices(&mut pending, *written);
        while !pending.is_empty() {
            match self.stream.try_write_vectored(pending) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    *written += n;
                    self.shared.stats.add_bytes_out(n);
                    IoSlice::advance_slices(&mut pending, n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    /// Half-closes the connection and reads what the client still sends for a short while, so
    /// that the answer just written is not lost to a reset.
    async fn linger(&mut self) {
        let _ = self.stream.shutdown().await;
        let deadline = after(Instant::now(), LINGER.min(self.shared.idle_timeout));
        let mut drained = 0;
        while drained < LINGER_BYTES {
            match timeout_at(deadline, self.stream.readable()).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) | Err(_) => return,
            }
            match with_scratch(|scratch| self.stream.try_read(scratch)) {
                Ok(0) => return,
                Ok(n) => {
                    drained += n;
                    self.shared.stats.add_bytes_in(n);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(_) => return,
            }
        }
    }
}

/// Chooses the answer to a complete request.
fn reply(shared: &Shared, head: Head) -> Answer {
    let error = shared.error_rate > 0.0 && (shared.error_rate >= 1.0 || rand::random::<f64>() < shared.error_rate);
    let mode = if shared.close || !head.keep_alive {
        ConnMode::Close
    } else if head.http10 {
        ConnMode::KeepAlive
    } else {
        ConnMode::Default
    };
    let overloaded =
        shared.capacity.as_ref().is_some_and(|bucket| bucket.lock().map(|mut b| !b.admit()).unwrap_or(false));
    let outcome = if overloaded {
        Outcome::Overloaded
    } else if error {
        Outcome::Error
    } else {
        Outcome::Normal
    };
    Answer::Reply { outcome, mode, head_only: head.head_only }
}

/// Runs `f` with this thread's scratch buffer (or with a fresh one in the unexpected case
/// where it is busy or already destroyed).
fn with_scratch<R>(mut f: impl FnMut(&mut [u8]) -> R) -> R {
    let shared = SCRATCH.try_with(|cell| cell.try_borrow_mut().ok().map(|mut scratch| f(&mut scratch)));
    match shared {
        Ok(Some(result)) => result,
        _ => f(&mut vec![0; SCRATCH_SIZE]),
    }
}

/// `now + delay`, saturating far in the future instead of overflowing.
fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400))).unwrap_or(now)
}
