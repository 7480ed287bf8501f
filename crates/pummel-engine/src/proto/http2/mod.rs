//! HTTP/2 load (`pummel run --http2`): the request loops of the closed model and the stream
//! pool of the open model, on the `h2` crate over tokio's `TcpStream` (prior knowledge, h2c,
//! for `http://`; TLS with ALPN `h2` via tokio-rustls for `https://`).
//!
//! Counting follows HTTP/1.1 exactly (see `shard`): a request is `sent` and in flight from its
//! intended start, its latency runs from the intended start to the end of its response body
//! (waiting for a free stream slot included), its service time from the moment its stream
//! opened. Connections are counted when the TCP (and TLS) handshake is done, with their connect
//! and handshake times recorded under the request that needed them.
//!
//! - Closed model: `-c C --streams S` is exactly C connections (over all shards), each running
//!   S request loops; a loop sends its next request when its previous response is complete. A
//!   connection that breaks fails its in-flight requests and is opened again.
//! - Open model: arrivals queue in order; a queued request goes to a connection with a free
//!   stream slot, and a new connection is opened (up to the pool bound) only when every slot of
//!   every open or opening connection is taken. `-c 1 -r R --streams S` never opens a second
//!   connection while the first one lives.
//! - Plan flows (`http_version = "2"`): each scenario's users on a shard share a `FlowPool`
//!   of such connections (the same `Slots`), at most `ceil(users / streams)` of them in the
//!   closed model and the pool bound in the open one. A user's request, rendered per request
//!   (`H2Request`), waits in line for a free slot; the response's head and first MiB of body
//!   are kept for checks and extraction when the step asks (`Capture`).
//!
//! Flow control: the client announces a 16 MiB stream window and a 64 MiB connection window, so
//! a large answer is never throttled by the generator, and body bytes are handed back to the
//! window as they are read. Errors: `RST_STREAM` from the server is `stream_reset`, `GOAWAY`
//! is `goaway`, socket errors keep their usual kinds, protocol errors h2 detects are
//! `malformed_response`.

use std::cell::{Cell, RefCell};
use std::collections::VecDeque;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use ::h2::client::{self, SendRequest};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::sync::{Notify, oneshot};
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

use crate::dial::{Alpn, TransportError};
use crate::engine::shard::Shard;
use crate::flow::Scenario;
use crate::load::arrivals::{Arrivals, share};
use crate::plan::{Load, OpenLoad, Plan, Scheme};
use pummel_results::error_kind::ErrorKind;

/// The receive window announced for each stream: large, so the target is never throttled.
const STREAM_WINDOW: u32 = 16 << 20;
/// The receive window announced for the whole connection.
const CONNECTION_WINDOW: u32 = 64 << 20;
/// Largest frame the target may send (the default is 16 KiB; fewer frames for large bodies).
const MAX_FRAME: u32 = 256 << 10;
/// Header fields HTTP/2 forbids (RFC 9113 §8.2.2) or carries otherwise (`host` is the
/// `:authority`); dropped from the user's headers.
const CONNECTION_SPECIFIC: [&str; 7] =
    ["connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade", "host", "content-length"];

/// How the shard's HTTP/2 connections are made: streams per connection.
struct Link {
    /// Concurrent streams per connection.
    streams: usize,
}

impl Link {
    fn new(_shard: &Shard, streams: usize) -> Link {
        Link { streams }
    }
}

/// What every connection of a quick run shares: how they are made, and the one request.
struct Common {
    link: Rc<Link>,
    request: H2Request,
}

/// A request in HTTP/2 form (pseudo-headers from the URL, no connection-specific fields):
/// built once for a quick run, per request for a flow.
pub(crate) struct H2Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
}

impl H2Request {
    /// The request in HTTP/2 form; an error names the part that does not fit. Header names
    /// are lowercased, fields HTTP/2 forbids dropped, `user-agent` added when missing and
    /// `content-length` set for a body.
    fn new<'a>(
        method: &str,
        uri: Uri,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: Bytes,
    ) -> Result<H2Request, String> {
        let method = Method::from_bytes(method.as_bytes()).map_err(|_| format!("method {method:?}"))?;
        let mut headers = HeaderMap::new();
        for (name, value) in fields {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| format!("header name {name:?}"))?;
            if CONNECTION_SPECIFIC.contains(&name.as_str()) || (name == "te" && !value.eq_ignore_ascii_case("trailers"))
            {
                continue;
            }
            let value = HeaderValue::from_str(value).map_err(|_| format!("header value {value:?}"))?;
            headers.append(name, value);
        }
        if !headers.contains_key(USER_AGENT) {
            headers.insert(USER_AGENT, HeaderValue::from_static(crate::proto::http1::USER_AGENT));
        }
        if !body.is_empty() {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        Ok(H2Request { method, uri, headers, body })
    }

    /// The quick run's request.
    fn of_plan(plan: &Plan) -> Result<H2Request, String> {
        let spec = &plan.request;
        let url = format!("{}://{}{}", scheme(plan), plan.target.host_header, plan.target.path_and_query);
        let uri = url.parse::<Uri>().map_err(|e| format!("URL {url:?}: {e}"))?;
        let fields = spec.headers.iter().map(|(n, v)| (n.as_str(), v.as_str()));
        H2Request::new(&spec.method, uri, fields, Bytes::from(spec.body.clone()))
    }

    fn request(&self) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

fn scheme(plan: &Plan) -> &'static str {
    match plan.target.scheme {
        Scheme::Http => "http",
        Scheme::Https => "https",
    }
}

/// Runs this shard's share of an HTTP/2 run (closed or open model) until it ends.
pub(crate) async fn drive(shard: Rc<Shard>, shards: usize) {
    let streams = shard.plan.http2.as_ref().map_or(1, |settings| settings.streams);
    let request = match H2Request::of_plan(&shard.plan) {
        Ok(request) => request,
        Err(e) => {
            // `Plan::validate` checks this; nothing can be sent if it fails all the same.
            shard.stats.borrow_mut().other_errors.push(format!("HTTP/2 request: {e}"));
            return;
        }
    };
    let common = Rc::new(Common { link: Rc::new(Link::new(&shard, streams)), request });
    let load = shard.plan.load.clone();
    match &load {
        crate::plan::Load::Closed(closed) => {
            let mut connections = JoinSet::new();
            for _ in 0..share(closed.connections as u64, shards, shard.index) {
                connections.spawn_local(closed_connection(shard.clone(), common.clone()));
            }
            while connections.join_next().await.is_some() {}
        }
        crate::plan::Load::Open(open) => open_dispatcher(shard, common, open.clone(), shards).await,
        // `Plan::validate` refuses HTTP/2 for hold.
        crate::plan::Load::Hold(_) => {}
    }
}

/// A live HTTP/2 connection: the handle streams are opened with, and its driver task.
struct Live {
    sender: SendRequest<Bytes>,
    /// Set when the connection ended (closed by either side, or broken).
    closed: Rc<Cell<bool>>,
    driver: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Counts a connection in the shard's open-connections gauge for as long as its driver lives.
struct Gauge(Rc<Shard>, Rc<Cell<bool>>);

impl Drop for Gauge {
    fn drop(&mut self) {
        self.1.set(true);
        self.0.connections.set(self.0.connections.get().saturating_sub(1));
    }
}

/// Opens a connection (TCP, TLS with ALPN `h2` for `https://`, then the HTTP/2 preface) and
/// records its connect and handshake times under the request `intended`.
async fn open(shard: &Rc<Shard>, _link: &Link, intended: Instant) -> Result<Live, TransportError> {
    let (stream, opened) = shard.dialer.open(Alpn::H2).await?;
    if opened.tls.is_some_and(|tls| !tls.h2) {
        return Err(TransportError::other("the target did not agree to HTTP/2 (no ALPN h2); drop --http2"));
    }
    let (sender, driver) = handshake(Counted { io: stream, shard: shard.clone() }, shard.dialer.timeout()).await?;
    let driver = boxed(driver);
    shard.record_opened(None, intended, &opened);
    shard.connections.set(shard.connections.get() + 1);
    let closed = Rc::new(Cell::new(false));
    let gauge = Gauge(shard.clone(), closed.clone());
    let driver = tokio::task::spawn_local(async move {
        let _gauge = gauge;
        driver.await;
    });
    Ok(Live { sender, closed, driver })
}

/// The connection's driver (it reads and writes the frames of every stream), as one type for
/// plain and TLS connections. How it ended shows in the streams' own errors.
fn boxed<T>(driver: client::Connection<T, Bytes>) -> Pin<Box<dyn Future<Output = ()>>>
where
    T: AsyncRead + AsyncWrite + Unpin + 'static,
{
    Box::pin(async move {
        let _ = driver.await;
    })
}

/// The HTTP/2 client handshake (preface and SETTINGS; it does not wait for the server's).
async fn handshake<T>(
    io: T,
    timeout: Duration,
) -> Result<(SendRequest<Bytes>, client::Connection<T, Bytes>), TransportError>
where
    T: AsyncRead + AsyncWrite + Unpin,
{
    let mut builder = client::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_frame_size(MAX_FRAME)
        .enable_push(false);
    match tokio::time::timeout(timeout, builder.handshake(io)).await {
        Err(_elapsed) => Err(TransportError {
            kind: ErrorKind::Timeout,
            detail: format!("HTTP/2 handshake not complete within {timeout:?}"),
        }),
        Ok(result) => result.map_err(h2_error),
    }
}

/// What one request did to its connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    /// The connection can carry more requests.
    Usable,
    /// The connection is gone (closed, broken or going away): open another.
    Gone,
    /// The server's `GOAWAY` said it did not process the request (it was refused before its
    /// stream opened, or its stream was past the last one the server handles): it was neither
    /// answered nor failed, and goes out once more on a new connection (RFC 9113 §6.8).
    Retry,
}

/// A request that is counted as started but not yet answered: its intended start, and
/// whether a `GOAWAY` already sent it back once (a second time, it fails as `goaway`).
#[derive(Debug, Clone, Copy)]
struct Pending {
    intended: Instant,
    retried: bool,
}

impl Pending {
    fn new(intended: Instant) -> Self {
        Pending { intended, retried: false }
    }
}

/// Sends the quick run's request (already counted as started) on `sender` and records its
/// outcome.
async fn one_request(
    shard: &Shard,
    common: &Common,
    sender: &mut SendRequest<Bytes>,
    closed: &Cell<bool>,
    pending: Pending,
) -> After {
    let intended = pending.intended;
    let mut kept = Kept::default();
    let (after, result) =
        attempt(shard, sender, closed, &common.request, Capture::NONE, &mut kept, pending.retried).await;
    if after == After::Retry {
        return after;
    }
    shard.finish();
    match result {
        Ok(answered) => {
            let ok = shard.plan.ok_status.contains(answered.status);
            let (latency, service) = (answered.done - intended, answered.done - answered.sent_at);
            shard.record(intended, |s| s.record_response(answered.status, ok, latency, service));
        }
        Err(e) => shard.record_failure(intended, &e),
    }
    after
}

/// What of a response is kept for checks and extraction.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Capture {
    /// Keep the header fields.
    pub headers: bool,
    /// Keep up to this many body bytes.
    pub body_limit: usize,
}

impl Capture {
    /// Keep nothing (a quick run).
    const NONE: Capture = Capture { headers: false, body_limit: 0 };
}

/// The parts of a response kept as [`Capture`] asked.
#[derive(Debug, Default)]
pub(crate) struct Kept {
    /// The header fields; empty unless asked for.
    pub headers: HeaderMap,
    /// The first bytes of the body; empty unless asked for.
    pub body: Vec<u8>,
}

impl Kept {
    /// The header fields as `(name, value)` pairs, as [`crate::inspect::ResponseView`] takes them.
    pub(crate) fn header_pairs(&self) -> Vec<(&[u8], &[u8])> {
        self.headers.iter().map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())).collect()
    }
}

/// A complete response: its status, when its stream opened and when its end arrived.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Answered {
    /// The status code.
    pub status: u16,
    /// When the stream opened (service time runs from here).
    pub sent_at: Instant,
    /// When the end of the response arrived.
    pub done: Instant,
}

/// Sends `request` on `sender` within the plan's timeout and reads its answer, keeping what
/// `capture` asks for in `kept`. Says what the exchange left the connection as; with
/// [`After::Retry`] (a first `GOAWAY` refusal, unless `retried`) the request was neither
/// answered nor failed.
async fn attempt(
    shard: &Shard,
    sender: &mut SendRequest<Bytes>,
    closed: &Cell<bool>,
    request: &H2Request,
    capture: Capture,
    kept: &mut Kept,
    retried: bool,
) -> (After, Result<Answered, TransportError>) {
    let result = tokio::time::timeout(shard.plan.timeout, exchange(sender, request, capture, kept)).await;
    let done = Instant::now();
    match result {
        Ok(Ok((status, sent_at))) => (After::Usable, Ok(Answered { status, sent_at, done })),
        Ok(Err(e)) if e.kind == ErrorKind::GoAway && !retried => (After::Retry, Err(e)),
        Ok(Err(e)) => {
            let gone = matches!(e.kind, ErrorKind::GoAway | ErrorKind::Reset) || closed.get();
            (if gone { After::Gone } else { After::Usable }, Err(e))
        }
        Err(_elapsed) => {
            // Dropping the exchange resets the stream (RST_STREAM CANCEL); the connection stays.
            let timeout = TransportError {
                kind: ErrorKind::Timeout,
                detail: format!("no complete response within {:?}", shard.plan.timeout),
            };
            (if closed.get() { After::Gone } else { After::Usable }, Err(timeout))
        }
    }
}

/// Waits for a stream slot, sends the request and reads the whole answer (keeping what
/// `capture` asks for); returns its status and when the stream was opened.
async fn exchange(
    sender: &mut SendRequest<Bytes>,
    request: &H2Request,
    capture: Capture,
    kept: &mut Kept,
) -> Result<(u16, Instant), TransportError> {
    std::future::poll_fn(|cx| sender.poll_ready(cx)).await.map_err(h2_error)?;
    let sent_at = Instant::now();
    let body = &request.body;
    let (response, mut outgoing) = sender.send_request(request.request(), body.is_empty()).map_err(h2_error)?;
    if !body.is_empty() {
        // h2 buffers what the window does not take yet and sends it as the window opens.
        outgoing.send_data(body.clone(), true).map_err(h2_error)?;
    }
    let (head, mut incoming) = response.await.map_err(h2_error)?.into_parts();
    if capture.headers {
        kept.headers = head.headers;
    }
    while let Some(chunk) = incoming.data().await {
        let chunk = chunk.map_err(h2_error)?;
        let _ = incoming.flow_control().release_capacity(chunk.len());
        let room = capture.body_limit.saturating_sub(kept.body.len());
        if room > 0 {
            kept.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    if !incoming.is_end_stream() {
        incoming.trailers().await.map_err(h2_error)?;
    }
    Ok((head.status.as_u16(), sent_at))
}

/// One connection of the closed model: S request loops on it; opened again when it breaks.
async fn closed_connection(shard: Rc<Shard>, common: Rc<Common>) {
    // Requests a `GOAWAY` sent back, to go out first on the next connection.
    let mut carried: Vec<Pending> = Vec::new();
    loop {
        if shard.stop_sending.is_cancelled() {
            return;
        }
        // The connection is opened for a request, whose latency includes the opening.
        let first = match carried.pop() {
            Some(pending) => pending,
            None if shard.take_permit() => {
                let intended = Instant::now();
                shard.start_request(intended);
                Pending::new(intended)
            }
            None => return,
        };
        let live = match open(&shard, &common.link, first.intended).await {
            Ok(live) => live,
            Err(e) => {
                shard.finish();
                shard.record_failure(first.intended, &e);
                continue;
            }
        };
        carried.push(first);
        let mut loops = JoinSet::new();
        for _ in 0..common.link.streams {
            let first = carried.pop();
            loops.spawn_local(request_loop(
                shard.clone(),
                common.clone(),
                live.sender.clone(),
                live.closed.clone(),
                first,
            ));
        }
        let mut gone = false;
        while let Some(result) = loops.join_next().await {
            match result {
                Ok((After::Usable, _)) => {}
                Ok((_, retry)) => {
                    gone = true;
                    carried.extend(retry);
                }
                Err(_) => gone = true,
            }
        }
        let closed = live.closed.get();
        drop(live);
        if !(gone || closed) {
            // The loops ended because sending stopped or the permits ran out.
            return;
        }
    }
}

/// One stream of a closed-model connection: send, read the whole answer, send the next. Ends
/// with how the connection was left, and the request a `GOAWAY` sent back, if any.
async fn request_loop(
    shard: Rc<Shard>,
    common: Rc<Common>,
    mut sender: SendRequest<Bytes>,
    closed: Rc<Cell<bool>>,
    mut next: Option<Pending>,
) -> (After, Option<Pending>) {
    loop {
        let pending = match next.take() {
            Some(pending) => pending,
            None if closed.get() => return (After::Gone, None),
            None if shard.take_permit() => {
                let intended = Instant::now();
                shard.start_request(intended);
                Pending::new(intended)
            }
            None => return (After::Usable, None),
        };
        match one_request(&shard, &common, &mut sender, &closed, pending).await {
            After::Usable => {}
            After::Gone => return (After::Gone, None),
            After::Retry => return (After::Retry, Some(Pending { retried: true, ..pending })),
        }
    }
}

/// Connections that stream slots are taken from, shared by the requests of a pool: a slot goes
/// to an open (or opening) connection with a free one, and a new connection is made only when
/// every slot of every connection is taken and the bound allows.
struct Slots {
    shard: Rc<Shard>,
    link: Rc<Link>,
    /// Most connections open (or opening) at once.
    max_connections: usize,
    /// Connections open or opening; dead ones are dropped from the list.
    connections: RefCell<Vec<Rc<Pooled>>>,
}

impl Slots {
    /// Takes a free stream slot (the caller gives it back by decrementing `active`); `None`
    /// when every slot is busy and no connection may be added.
    fn take(&self) -> Option<Rc<Pooled>> {
        self.connections.borrow_mut().retain(|c| !c.is_dead());
        let free = self.connections.borrow().iter().find(|c| c.active.get() < self.link.streams).cloned();
        let connection = match free {
            Some(connection) => connection,
            None if self.connections.borrow().len() < self.max_connections => {
                let connection = Rc::new(Pooled {
                    state: RefCell::new(PoolState::New),
                    opened: Notify::new(),
                    active: Cell::new(0),
                });
                self.connections.borrow_mut().push(connection.clone());
                connection
            }
            None => return None,
        };
        connection.active.set(connection.active.get() + 1);
        Some(connection)
    }
}

/// One pooled connection: opened by its first stream, shared by up to `streams` of them.
struct Pooled {
    state: RefCell<PoolState>,
    /// Signalled when the opening is over (either way).
    opened: Notify,
    /// Streams assigned to it (running or waiting for the opening).
    active: Cell<usize>,
}

enum PoolState {
    /// No stream has started opening it yet.
    New,
    Opening,
    Open(Live),
    /// The opening failed (every stream waiting for it fails alike) or the connection ended.
    Dead(ErrorKind, String),
}

impl Pooled {
    fn is_dead(&self) -> bool {
        match &*self.state.borrow() {
            PoolState::Dead(..) => true,
            PoolState::Open(live) => live.closed.get(),
            PoolState::New | PoolState::Opening => false,
        }
    }

    /// Takes the connection out of service (it is gone, or going away): no new stream goes to it.
    fn retire(&self) {
        if let PoolState::Open(live) = &*self.state.borrow() {
            live.closed.set(true);
        }
    }

    /// The stream handle, opening the connection first if no one has yet; `Err` when the
    /// opening failed.
    async fn sender(
        &self,
        slots: &Slots,
        intended: Instant,
    ) -> Result<(SendRequest<Bytes>, Rc<Cell<bool>>), TransportError> {
        loop {
            let opened = self.opened.notified();
            let start_opening = match &*self.state.borrow() {
                PoolState::Open(live) => return Ok((live.sender.clone(), live.closed.clone())),
                PoolState::Dead(kind, detail) => return Err(TransportError { kind: *kind, detail: detail.clone() }),
                PoolState::New => true,
                PoolState::Opening => false,
            };
            if !start_opening {
                opened.await;
                continue;
            }
            *self.state.borrow_mut() = PoolState::Opening;
            let result = open(&slots.shard, &slots.link, intended).await;
            *self.state.borrow_mut() = match result {
                Ok(live) => PoolState::Open(live),
                Err(e) => PoolState::Dead(e.kind, e.detail),
            };
            self.opened.notify_waiters();
        }
    }
}

/// The open model's pool of HTTP/2 connections and its queue of requests waiting for a slot.
struct Pool {
    slots: Slots,
    common: Rc<Common>,
    /// Requests waiting for a stream slot, oldest first.
    waiting: RefCell<VecDeque<Pending>>,
    /// Stream tasks running.
    tasks: Cell<usize>,
    /// Signalled when the last stream task ends.
    idle: Notify,
    /// Stream tasks, kept so that they end with the dispatcher.
    joins: RefCell<JoinSet<()>>,
}

impl Pool {
    /// Hands waiting requests to free stream slots, opening connections while the pool allows
    /// and every slot of every live connection is taken.
    fn pump(self: &Rc<Self>) {
        if self.slots.shard.stop_sending.is_cancelled() {
            return;
        }
        while !self.waiting.borrow().is_empty() {
            // Every slot is busy: the request waits for the next one to free up.
            let Some(connection) = self.slots.take() else { return };
            let Some(pending) = self.waiting.borrow_mut().pop_front() else { return };
            self.tasks.set(self.tasks.get() + 1);
            self.joins.borrow_mut().spawn_local(pool_stream(self.clone(), connection, pending));
        }
    }
}

/// A stream slot of a pooled connection: serves `pending`, then the oldest waiting requests
/// while there are any, then frees the slot.
async fn pool_stream(pool: Rc<Pool>, connection: Rc<Pooled>, mut pending: Pending) {
    let shard = &pool.slots.shard;
    loop {
        let after = match connection.sender(&pool.slots, pending.intended).await {
            Ok((mut sender, closed)) => one_request(shard, &pool.common, &mut sender, &closed, pending).await,
            Err(e) => {
                shard.finish();
                shard.record_failure(pending.intended, &e);
                After::Gone
            }
        };
        if after == After::Retry {
            // First in line again, for a slot on another connection.
            pool.waiting.borrow_mut().push_front(Pending { retried: true, ..pending });
        }
        if after != After::Usable {
            connection.retire();
            break;
        }
        if shard.stop_sending.is_cancelled() {
            break;
        }
        let next = pool.waiting.borrow_mut().pop_front();
        match next {
            Some(next) => pending = next,
            None => break,
        }
    }
    connection.active.set(connection.active.get() - 1);
    // Requests may be waiting for a slot this connection can no longer give.
    pool.pump();
    pool.tasks.set(pool.tasks.get() - 1);
    if pool.tasks.get() == 0 {
        pool.idle.notify_waiters();
    }
}

/// The open model over HTTP/2: starts requests on schedule and hands them to the pool.
async fn open_dispatcher(shard: Rc<Shard>, common: Rc<Common>, open: OpenLoad, shards: usize) {
    let seed =
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_nanos() as u64).unwrap_or(0);
    let max_inflight = open.max_inflight.map(|m| share(m as u64, shards, shard.index).max(1));
    let pool = Rc::new(Pool {
        slots: Slots {
            shard: shard.clone(),
            link: common.link.clone(),
            max_connections: share(open.max_connections as u64, shards, shard.index).max(1) as usize,
            connections: RefCell::new(Vec::new()),
        },
        common,
        waiting: RefCell::new(VecDeque::new()),
        tasks: Cell::new(0),
        idle: Notify::new(),
        joins: RefCell::new(JoinSet::new()),
    });
    let planned = shard.plan.planned_duration().unwrap_or(Duration::MAX);
    for offset in Arrivals::new(&open.stages, open.arrival, shard.index, shards, seed) {
        if offset >= planned {
            break;
        }
        let intended = shard.start + offset;
        if Instant::now() < intended {
            tokio::select! {
                () = tokio::time::sleep_until(intended) => {}
                () = shard.stop_sending.cancelled() => break,
            }
        }
        let lag = Instant::now().saturating_duration_since(intended);
        match shard.admit(None, intended, lag, max_inflight) {
            None => break,
            Some(false) => continue,
            Some(true) => {}
        }
        pool.waiting.borrow_mut().push_back(Pending::new(intended));
        pool.pump();
        // Finished stream tasks are reaped as we go, so the set stays small.
        while pool.joins.borrow_mut().try_join_next().is_some() {}
    }
    // Wait for the streams still running (after a stop, `drive` gives them its grace period;
    // requests still queued then are unfinished).
    loop {
        let idle = pool.idle.notified();
        if pool.tasks.get() == 0 {
            break;
        }
        idle.await;
    }
}

/// The HTTP/2 connections of one plan-file scenario on a shard, shared by its users: a
/// request takes a free stream slot (or waits for one, which counts in its latency), and a
/// connection is opened only when every slot of every open one is busy and the bound allows.
/// Closed model: `ceil(users / streams)` connections for the shard's users, so that all of
/// them can have a request out at once; open model: the scenario's pool bound.
pub(crate) struct FlowPool {
    slots: Slots,
    /// Users waiting for a stream slot, oldest first.
    waiting: RefCell<VecDeque<oneshot::Sender<Slot>>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
}

/// A stream slot a user holds for one exchange; given back (to the next waiting user) on drop.
struct Slot {
    pool: Rc<FlowPool>,
    connection: Rc<Pooled>,
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.connection.active.set(self.connection.active.get().saturating_sub(1));
        self.pool.pump();
    }
}

impl FlowPool {
    /// The pool of `scenario` on this shard, `None` when it speaks HTTP/1.1; an error when the
    /// target's authority cannot be an HTTP/2 `:authority`.
    pub(crate) fn for_scenario(
        shard: &Rc<Shard>,
        scenario: &Scenario,
        shards: usize,
    ) -> Result<Option<Rc<FlowPool>>, String> {
        let Some(settings) = &scenario.http2 else { return Ok(None) };
        let streams = settings.streams.max(1);
        let max_connections = match &scenario.load {
            Load::Closed(closed) => share(closed.connections as u64, shards, shard.index).div_ceil(streams as u64),
            Load::Open(open) => share(open.max_connections as u64, shards, shard.index),
            Load::Hold(_) => 1,
        }
        .max(1) as usize;
        let scheme = scheme(&shard.plan).parse().map_err(|e| format!("HTTP/2 scheme: {e}"))?;
        let host = &shard.plan.target.host_header;
        let authority = host.parse().map_err(|e| format!("HTTP/2 authority {host:?}: {e}"))?;
        Ok(Some(Rc::new(FlowPool {
            slots: Slots {
                shard: shard.clone(),
                link: Rc::new(Link::new(shard, streams)),
                max_connections,
                connections: RefCell::new(Vec::new()),
            },
            waiting: RefCell::new(VecDeque::new()),
            scheme,
            authority,
        })))
    }

    /// A flow's rendered request in HTTP/2 form, to the run's target.
    pub(crate) fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Bytes,
    ) -> Result<H2Request, String> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| format!("path {path:?}: {e}"))?;
        H2Request::new(method, uri, headers.iter().map(|(n, v)| (n.as_str(), v.as_str())), body)
    }

    /// Sends `request` (counted as started at `intended` by the caller, who also counts it
    /// finished) on a stream slot, keeping what `capture` asks for in `kept`. A request a
    /// `GOAWAY` refused goes out once more, on another connection.
    pub(crate) async fn send(
        self: &Rc<Self>,
        intended: Instant,
        request: &H2Request,
        capture: Capture,
        kept: &mut Kept,
    ) -> Result<Answered, TransportError> {
        let mut retried = false;
        loop {
            let slot = self.slot().await;
            let (mut sender, closed) = slot.connection.sender(&self.slots, intended).await?;
            let shard = &self.slots.shard;
            let (after, result) = attempt(shard, &mut sender, &closed, request, capture, kept, retried).await;
            if after != After::Usable {
                slot.connection.retire();
            }
            drop(slot);
            match after {
                After::Retry => retried = true,
                After::Usable | After::Gone => return result,
            }
        }
    }

    /// A free stream slot: at once when no one waits before us and one is free, else in turn.
    async fn slot(self: &Rc<Self>) -> Slot {
        loop {
            // Users who gave up are cleared from the line, and those before us served first.
            self.pump();
            if self.waiting.borrow().is_empty() {
                if let Some(connection) = self.slots.take() {
                    return Slot { pool: self.clone(), connection };
                }
            }
            let (tx, rx) = oneshot::channel();
            self.waiting.borrow_mut().push_back(tx);
            // The sender is only dropped unsent with the pool, which we hold: then just retry.
            if let Ok(slot) = rx.await {
                return slot;
            }
        }
    }

    /// Hands free slots to waiting users, oldest first (those who gave up are skipped).
    fn pump(self: &Rc<Self>) {
        loop {
            let front_gone = match self.waiting.borrow().front() {
                None => return,
                Some(tx) => tx.is_closed(),
            };
            if front_gone {
                self.waiting.borrow_mut().pop_front();
                continue;
            }
            let Some(connection) = self.slots.take() else { return };
            let Some(tx) = self.waiting.borrow_mut().pop_front() else { return };
            // It cannot fail: the receiver was there just above, and nothing ran since. Had it
            // failed, the slot would come back here and go to the next user.
            let _ = tx.send(Slot { pool: self.clone(), connection });
        }
    }
}

/// Counts the bytes of a connection (HTTP/2 frames, before encryption) into the shard's stats.
struct Counted<T> {
    io: T,
    shard: Rc<Shard>,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.shard.record(Instant::now(), |s| s.bytes_in += n);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = result {
            this.shard.record(Instant::now(), |s| s.bytes_out += n as u64);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        if let Poll::Ready(Ok(n)) = result {
            this.shard.record(Instant::now(), |s| s.bytes_out += n as u64);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

fn h2_error(error: ::h2::Error) -> TransportError {
    TransportError::h2(&error)
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use tokio::net::TcpStream;

    use super::*;
    use crate::engine::{RunControl, run};
    use crate::plan::{ClosedLoad, Http2Settings, Load, Plan, RateStage, RequestSpec, Stop, Target};

    /// How the test server treats requests.
    #[derive(Clone, Copy)]
    enum Serve {
        /// `200 ok\n` to every request.
        Ok,
        /// `RST_STREAM(REFUSED_STREAM)` to every request.
        Refuse,
        /// Answers this many requests per connection, then says GOAWAY (gracefully).
        GoAwayAfter(u64),
    }

    /// An HTTP/2 (h2c) server on its own thread; counts connections and requests answered.
    fn server(serve: Serve) -> (SocketAddr, Arc<AtomicU64>, Arc<AtomicU64>) {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let (connections, requests) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicU64::new(0)));
        let (c, r) = (connections.clone(), requests.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).unwrap();
                while let Ok((tcp, _)) = listener.accept().await {
                    c.fetch_add(1, Ordering::SeqCst);
                    tokio::spawn(serve_connection(tcp, serve, r.clone()));
                }
            });
        });
        (addr, connections, requests)
    }

    async fn serve_connection(tcp: TcpStream, serve: Serve, requests: Arc<AtomicU64>) {
        let Ok(mut connection) = ::h2::server::handshake(tcp).await else { return };
        let mut answered = 0;
        while let Some(Ok((_request, mut respond))) = connection.accept().await {
            if let Serve::Refuse = serve {
                respond.send_reset(::h2::Reason::REFUSED_STREAM);
                continue;
            }
            let response = http::Response::builder().status(200).header("content-length", "3").body(()).unwrap();
            if let Ok(mut body) = respond.send_response(response, false) {
                let _ = body.send_data(Bytes::from_static(b"ok\n"), true);
            }
            requests.fetch_add(1, Ordering::SeqCst);
            answered += 1;
            if let Serve::GoAwayAfter(limit) = serve {
                if answered == limit {
                    connection.graceful_shutdown();
                }
            }
        }
    }

    fn plan(addr: SocketAddr, load: Load, streams: usize, stop: Stop) -> Plan {
        Plan {
            target: Target::resolve(&format!("http://{addr}/")).unwrap(),
            request: RequestSpec { method: "GET".into(), headers: vec![("X-Test".into(), "1".into())], body: vec![] },
            load,
            stop,
            threads: 2,
            timeout: Duration::from_secs(5),
            connect_timeout: Duration::from_secs(2),
            keepalive: true,
            warmup: Duration::ZERO,
            ok_status: Default::default(),
            thresholds: vec![],
            abort_when: vec![],
            abort_window: Duration::from_secs(1),
            observers: Default::default(),
            source_addrs: vec![],
            tls: Default::default(),
            scenarios: None,
            http2: Some(Http2Settings { streams }),
            auth: None,
        }
    }

    fn closed(connections: usize) -> Load {
        Load::Closed(ClosedLoad { connections })
    }

    fn requests(n: u64) -> Stop {
        Stop { duration: Some(Duration::from_secs(20)), requests: Some(n) }
    }

    #[test]
    fn one_connection_carries_every_stream_of_the_closed_model() {
        let (addr, connections, answered) = server(Serve::Ok);
        let outcome = run(&plan(addr, closed(1), 100, requests(3000)), &RunControl::new(), |_| {}).unwrap();
        assert_eq!((outcome.total.sent, outcome.total.ok), (3000, 3000), "{:?}", outcome.other_errors);
        assert_eq!(outcome.total.connections_opened, 1);
        assert_eq!(connections.load(Ordering::SeqCst), 1);
        assert_eq!(answered.load(Ordering::SeqCst), 3000);
        assert!(outcome.total.bytes_in > 3000 * 3 && outcome.total.bytes_out > 3000, "{:?}", outcome.total.bytes_in);
        assert_eq!(outcome.unfinished, 0);
    }

    #[test]
    fn closed_model_opens_exactly_the_connections_asked_for() {
        let (addr, connections, _) = server(Serve::Ok);
        let outcome = run(&plan(addr, closed(3), 4, requests(600)), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.ok, 600);
        assert_eq!(outcome.total.connections_opened, 3);
        assert_eq!(connections.load(Ordering::SeqCst), 3);
    }

    #[test]
    fn open_model_fills_the_streams_of_one_connection_first() {
        let (addr, connections, _) = server(Serve::Ok);
        let load = Load::Open(crate::plan::OpenLoad {
            stages: vec![RateStage::level(1000.0, Duration::from_secs(1))],
            arrival: crate::plan::Arrival::Uniform,
            max_connections: 1,
            max_inflight: None,
        });
        let stop = Stop { duration: Some(Duration::from_secs(1)), requests: None };
        let outcome = run(&plan(addr, load, 100, stop), &RunControl::new(), |_| {}).unwrap();
        assert!((950..=1000).contains(&outcome.total.ok), "{}", outcome.total.ok);
        assert_eq!(outcome.total.failed, 0, "{:?}", outcome.other_errors);
        assert_eq!(outcome.total.connections_opened, 1);
        assert_eq!(connections.load(Ordering::SeqCst), 1);
    }

    #[test]
    fn refused_streams_are_stream_resets() {
        let (addr, _, _) = server(Serve::Refuse);
        let outcome = run(&plan(addr, closed(1), 10, requests(50)), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.errors.get(ErrorKind::StreamReset), 50, "{:?}", outcome.other_errors);
        assert_eq!(outcome.total.connections_opened, 1, "a reset stream leaves its connection usable");
    }

    #[test]
    fn requests_a_goaway_refused_go_out_again_on_a_new_connection() {
        let (addr, connections, answered) = server(Serve::GoAwayAfter(40));
        let outcome = run(&plan(addr, closed(1), 10, requests(400)), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.ok, 400, "{:?} {:?}", outcome.total.errors, outcome.other_errors);
        assert_eq!(answered.load(Ordering::SeqCst), 400);
        // Each connection answers its 40, plus the streams already open when its GOAWAY went
        // out (at most 10 here): 400 requests need at least 8 connections.
        let opened = connections.load(Ordering::SeqCst);
        assert!(opened >= 8, "{opened}");
        assert_eq!(outcome.total.connections_opened, opened);
    }

    /// A plan-file scenario of `users` users, each sending `iterations` requests over HTTP/2.
    fn flow_plan(addr: SocketAddr, users: usize, streams: usize, iterations: u64) -> Plan {
        let mut plan = plan(addr, closed(users), streams, requests(1));
        plan.http2 = None;
        plan.stop = Stop { duration: None, requests: None };
        let mut scenarios = crate::flow::Scenarios::of_quick_plan(&plan).expect("a valid quick plan");
        scenarios.list[0].iterations = Some(iterations);
        scenarios.list[0].duration = None;
        scenarios.list[0].http2 = Some(Http2Settings { streams });
        plan.scenarios = Some(Arc::new(scenarios));
        plan
    }

    #[test]
    fn flow_users_share_as_few_connections_as_their_streams_need() {
        let (addr, connections, answered) = server(Serve::Ok);
        // Two shards of 50 users, 50 streams per connection: one connection each.
        let outcome = run(&flow_plan(addr, 100, 50, 20), &RunControl::new(), |_| {}).unwrap();
        assert_eq!((outcome.total.sent, outcome.total.ok), (2000, 2000), "{:?}", outcome.other_errors);
        assert_eq!(answered.load(Ordering::SeqCst), 2000);
        assert_eq!(outcome.total.connections_opened, 2);
        assert_eq!(connections.load(Ordering::SeqCst), 2);
        assert_eq!(outcome.unfinished, 0);
    }

    #[test]
    fn flow_users_beyond_the_streams_wait_for_a_slot_instead_of_a_connection() {
        let (addr, connections, _) = server(Serve::Ok);
        // 40 users per shard on 10 streams: 4 connections per shard, none more.
        let outcome = run(&flow_plan(addr, 80, 10, 10), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.ok, 800, "{:?}", outcome.other_errors);
        assert_eq!(connections.load(Ordering::SeqCst), 8);
    }

    #[test]
    fn open_model_flows_fill_the_streams_of_the_pool_bound() {
        let (addr, connections, _) = server(Serve::Ok);
        let mut plan = flow_plan(addr, 1, 100, 1);
        // 500 arrivals a second over 1 s, at most one connection per shard (of 2): each
        // arrival's user takes a stream of it, however many are under way at once.
        let load = Load::Open(crate::plan::OpenLoad {
            stages: vec![RateStage::level(500.0, Duration::from_secs(1))],
            arrival: crate::plan::Arrival::Uniform,
            max_connections: 2,
            max_inflight: None,
        });
        plan.load = load.clone();
        let scenarios = Arc::get_mut(plan.scenarios.as_mut().unwrap()).unwrap();
        scenarios.list[0].load = load;
        scenarios.list[0].iterations = None;
        let outcome = run(&plan, &RunControl::new(), |_| {}).unwrap();
        assert!((480..=500).contains(&outcome.total.ok), "{} {:?}", outcome.total.ok, outcome.other_errors);
        assert_eq!(outcome.total.failed, 0);
        assert_eq!(connections.load(Ordering::SeqCst), 2);
    }

    #[test]
    fn flow_requests_a_goaway_refused_go_out_again() {
        let (addr, connections, answered) = server(Serve::GoAwayAfter(30));
        let outcome = run(&flow_plan(addr, 20, 20, 30), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.ok, 600, "{:?} {:?}", outcome.total.errors, outcome.other_errors);
        assert_eq!(answered.load(Ordering::SeqCst), 600);
        // A connection answers 30 and those already under way, then the next one takes over.
        assert!(connections.load(Ordering::SeqCst) > 2, "{}", connections.load(Ordering::SeqCst));
    }

    #[test]
    fn flow_streams_the_server_resets_are_stream_resets() {
        let (addr, connections, _) = server(Serve::Refuse);
        let outcome = run(&flow_plan(addr, 10, 10, 5), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.errors.get(ErrorKind::StreamReset), 50, "{:?}", outcome.other_errors);
        assert_eq!(connections.load(Ordering::SeqCst), 2, "a reset stream leaves its connection usable");
    }
}
