//! [`FlowPool`]: the HTTP/2 connections a scenario's users share on one shard.
//!
//! A request takes a free stream slot (or waits in line for one, which counts in its latency),
//! and a connection is opened only when every slot of every open one is busy and the bound
//! allows. Closed model: `ceil(users / streams)` connections for the shard's users, so that all
//! of them can have a request out at once; open model: the scenario's pool bound.

use std::cell::{Cell, RefCell};
use std::collections::{HashMap, VecDeque};
use std::pin::Pin;
use std::rc::Rc;
use std::time::Duration;

use ::h2::client::{self, SendRequest};
use bytes::Bytes;
use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::{Notify, oneshot};
use tokio::task::JoinHandle;
use tokio::time::Instant;

use super::counted::{Counted, Failure};
use super::{After, Answered, Ask, Capture, H2Request, Kept, attempt, handshake};
use crate::dial::{Alpn, Dialer, TransportError};
use crate::flow::body_bytes::BodyBytes;
use crate::measure::meter::Meter;

/// The HTTP/2 connections of one scenario on a shard, shared by its users.
pub struct FlowPool {
    slots: Slots,
    /// Users waiting for a stream slot, oldest first.
    waiting: RefCell<VecDeque<oneshot::Sender<Slot>>>,
    scheme: http::uri::Scheme,
    authority: http::uri::Authority,
    /// The request timeout.
    timeout: Duration,
    /// Requests that never change, in HTTP/2 form, built once: by the address of their step.
    fixed: RefCell<HashMap<usize, Rc<H2Request>>>,
}

/// How a pool's connections are made and how many there may be.
struct Slots {
    meter: Rc<Meter>,
    dialer: Rc<Dialer>,
    /// Concurrent streams per connection.
    streams: usize,
    /// Most connections open (or opening) at once.
    max_connections: usize,
    /// Connections open or opening; dead ones are dropped from the list.
    connections: RefCell<Vec<Rc<Pooled>>>,
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
    Dead(TransportError),
}

/// A live HTTP/2 connection: the handle streams are opened with, and its driver task.
struct Live {
    sender: SendRequest<Bytes>,
    /// The connection's own failure, classified below h2 (a TLS alert), once it failed.
    failure: Failure,
    /// Set when the connection ended (closed by either side, or broken), or was retired.
    closed: Rc<Cell<bool>>,
    driver: JoinHandle<()>,
}

impl Drop for Live {
    fn drop(&mut self) {
        self.driver.abort();
    }
}

/// Who asks for a connection to be opened: its first request (whose latency includes it).
#[derive(Clone, Copy)]
struct Opener {
    name: Option<usize>,
    intended: Instant,
}

impl FlowPool {
    /// A pool of at most `max_connections` connections of `streams` streams each, opened by
    /// `dialer` (ALPN `h2` over TLS) to `authority` (the target's `Host`), figures into `meter`.
    pub fn new(
        meter: Rc<Meter>,
        dialer: Rc<Dialer>,
        streams: usize,
        max_connections: usize,
        https: bool,
        authority: &str,
        timeout: Duration,
    ) -> Result<Rc<FlowPool>, String> {
        let scheme = if https { http::uri::Scheme::HTTPS } else { http::uri::Scheme::HTTP };
        let authority = authority.parse().map_err(|e| format!("HTTP/2 authority {authority:?}: {e}"))?;
        Ok(Rc::new(FlowPool {
            slots: Slots {
                meter,
                dialer,
                streams: streams.max(1),
                max_connections: max_connections.max(1),
                connections: RefCell::new(Vec::new()),
            },
            waiting: RefCell::new(VecDeque::new()),
            scheme,
            authority,
            timeout,
            fixed: RefCell::new(HashMap::new()),
        }))
    }

    /// A flow's rendered request in HTTP/2 form, to the run's target.
    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(String, String)],
        body: Option<BodyBytes>,
    ) -> Result<H2Request, String> {
        let uri = Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query(path)
            .build()
            .map_err(|e| format!("path {path:?}: {e}"))?;
        H2Request::new(method, uri, headers.iter().map(|(n, v)| (n.as_str(), v.as_str())), body)
    }

    /// The HTTP/2 form of a request that never changes, built by `build` on first use and kept
    /// under `key` (its step's address, stable for the run).
    pub fn fixed_request(
        &self,
        key: usize,
        build: impl FnOnce() -> Result<H2Request, String>,
    ) -> Result<Rc<H2Request>, String> {
        if let Some(request) = self.fixed.borrow().get(&key) {
            return Ok(request.clone());
        }
        let request = Rc::new(build()?);
        self.fixed.borrow_mut().insert(key, request.clone());
        Ok(request)
    }

    /// Sends `request` (due at `intended`, counted under `name`) on a stream slot, keeping
    /// what `capture` asks for in `kept`; `on_sent` learns when its stream opened. A request a
    /// `GOAWAY` refused goes out once more, on another connection.
    pub async fn send(
        self: &Rc<Self>,
        name: Option<usize>,
        intended: Instant,
        request: &H2Request,
        capture: Capture,
        kept: &mut Kept,
        on_sent: &mut dyn FnMut(Instant),
    ) -> Result<Answered, TransportError> {
        let mut retried = false;
        loop {
            let slot = self.slot().await;
            let (mut sender, closed, failure) = slot.connection.sender(&self.slots, Opener { name, intended }).await?;
            let ask = Ask { request, capture, retried, timeout: self.timeout };
            let (after, result) = attempt(&mut sender, closed.get(), &ask, kept, on_sent).await;
            // The connection's own failure (a TLS alert under h2) says more than h2's words for it.
            let result = result.map_err(|e| failure.get().unwrap_or(e));
            if after != After::Usable || closed.get() {
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

impl Slots {
    /// Takes a free stream slot (the caller gives it back by decrementing `active`); `None`
    /// when every slot is busy and no connection may be added.
    fn take(&self) -> Option<Rc<Pooled>> {
        self.connections.borrow_mut().retain(|c| !c.is_dead());
        let free = self.connections.borrow().iter().find(|c| c.active.get() < self.streams).cloned();
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

    /// Opens a connection (TCP, TLS with ALPN `h2` for `https://`, then the HTTP/2 preface) and
    /// records its connect and handshake times under the request that asked for it.
    async fn open(&self, opener: Opener) -> Result<Live, TransportError> {
        let (stream, opened) = self.dialer.open(Alpn::H2).await?;
        if opened.tls.is_some_and(|tls| !tls.h2) {
            return Err(TransportError::other("the target did not agree to HTTP/2 (no ALPN h2); drop --http2"));
        }
        let failure = Failure::default();
        let io = Counted { io: stream, meter: self.meter.clone(), failure: failure.clone() };
        let (sender, driver) = handshake(io, self.dialer.timeout()).await?;
        self.meter.opened(opener.name, opener.intended, &opened);
        // HTTP/2 scenarios send to the plan's first host only.
        self.meter.opened_to(0, opener.intended, &opened);
        let closed = Rc::new(Cell::new(false));
        let ended = closed.clone();
        let gauge = self.meter.connection_gauge();
        let driver = boxed(driver);
        let driver = tokio::task::spawn_local(async move {
            let _gauge = gauge;
            driver.await;
            ended.set(true);
        });
        Ok(Live { sender, failure, closed, driver })
    }
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

impl Pooled {
    fn is_dead(&self) -> bool {
        match &*self.state.borrow() {
            PoolState::Dead(_) => true,
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
        opener: Opener,
    ) -> Result<(SendRequest<Bytes>, Rc<Cell<bool>>, Failure), TransportError> {
        loop {
            let opened = self.opened.notified();
            let start_opening = match &*self.state.borrow() {
                PoolState::Open(live) => return Ok((live.sender.clone(), live.closed.clone(), live.failure.clone())),
                PoolState::Dead(error) => return Err(error.clone()),
                PoolState::New => true,
                PoolState::Opening => false,
            };
            if !start_opening {
                opened.await;
                continue;
            }
            *self.state.borrow_mut() = PoolState::Opening;
            let result = slots.open(opener).await;
            *self.state.borrow_mut() = match result {
                Ok(live) => PoolState::Open(live),
                Err(e) => PoolState::Dead(e),
            };
            self.opened.notify_waiters();
        }
    }
}
