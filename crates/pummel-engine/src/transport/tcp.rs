//! Plain TCP connections driving the HTTP/1.1 codec.
//!
//! This is the hot path, hand-written on `AsyncFd` instead of going through hyper or tokio's
//! `TcpStream`, for two reasons that decide the per-core speed target (≤ 1.10× wrk's CPU per
//! request):
//! - after a response has been read completely with a short read, the socket is known to be
//!   drained, so we clear tokio's readiness ourselves instead of paying one more `read` syscall
//!   that would only return `EAGAIN` (tokio's ticks make this race-free: an event that arrived
//!   after our read is kept);
//! - responses are parsed from one 64 KiB scratch buffer per thread, so an idle connection
//!   holds no read buffer at all (10,000 held connections must fit in a few KiB each).
//!
//! `https://` connections are the same `Connection` with a TLS session beside the socket (see
//! `tls.rs`, which keeps both tricks); for plain ones the seam is an empty `Option` and one
//! branch per call, no allocation or indirection per request.

use std::cell::RefCell;
use std::io::{self, Read, Write};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::tls::TlsSession;
use crate::error_kind::ErrorKind;
use crate::http1::{ParseError, Progress, ResponseInfo, ResponseParser};

const SCRATCH_SIZE: usize = 64 * 1024;
/// `EINPROGRESS` on Linux: a non-blocking connect has started.
const EINPROGRESS: i32 = 115;

thread_local! {
    /// The read buffer shared by every connection of this thread (see the module doc); TLS
    /// connections read their ciphertext into it too.
    pub(super) static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// A failure of one request at the transport level.
#[derive(Debug, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct TransportError {
    /// The counted kind.
    pub kind: ErrorKind,
    /// Human-readable detail, kept for the first few `other` errors.
    pub detail: String,
}

impl TransportError {
    pub(super) fn io(error: &io::Error, connecting: bool) -> Self {
        let kind = if connecting { ErrorKind::from_connect_error(error) } else { ErrorKind::from_io_error(error) };
        TransportError { kind, detail: error.to_string() }
    }

    /// Binding to a source address failed: its ports are used up (`EADDRINUSE`), or anything
    /// else (e.g. the address is not one of this machine's); the message names the address.
    fn bind(error: &io::Error, source: std::net::IpAddr) -> Self {
        // EADDRINUSE (98) from a port-0 bind: no ephemeral port left on this address.
        let kind = if error.raw_os_error() == Some(98) { ErrorKind::NoLocalPorts } else { ErrorKind::Other };
        TransportError { kind, detail: format!("cannot bind source address {source}: {error}") }
    }

    pub(super) fn parse(error: ParseError) -> Self {
        let kind = match error {
            ParseError::ClosedBeforeResponse | ParseError::ClosedMidResponse => ErrorKind::Reset,
            _ => ErrorKind::MalformedResponse,
        };
        TransportError { kind, detail: error.to_string() }
    }
}

/// An open HTTP/1.1 connection, plain or over TLS.
#[derive(Debug)]
pub struct Connection {
    pub(super) socket: AsyncFd<std::net::TcpStream>,
    parser: ResponseParser,
    /// Set when the peer sent more than the response we asked for: the connection is not reused.
    tainted: bool,
    /// The TLS session of an `https://` connection; `None` (one word, nothing per request)
    /// for plain ones, which take the branches below unchanged.
    pub(super) tls: Option<Box<TlsSession>>,
}

/// Opens a TCP connection to `addr`; returns it with the time the handshake took.
pub async fn connect(addr: SocketAddr, timeout: Duration) -> Result<(Connection, Duration), TransportError> {
    connect_from(addr, None, timeout).await
}

/// As [`connect`], from the local address `source` (port chosen by the kernel) when given.
pub async fn connect_from(
    addr: SocketAddr,
    source: Option<std::net::IpAddr>,
    timeout: Duration,
) -> Result<(Connection, Duration), TransportError> {
    let started = Instant::now();
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP))
        .map_err(|e| TransportError::io(&e, true))?;
    socket.set_tcp_nodelay(true).map_err(|e| TransportError::io(&e, true))?;
    if let Some(ip) = source {
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0))).map_err(|e| TransportError::bind(&e, ip))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(TransportError::io(&e, true)),
    }
    let socket = register(std::net::TcpStream::from(socket)).map_err(|e| TransportError::io(&e, true))?;
    match tokio::time::timeout(timeout, socket.writable()).await {
        Err(_) => {
            return Err(TransportError {
                kind: ErrorKind::ConnectTimeout,
                detail: format!("no connection to {addr} within {timeout:?}"),
            });
        }
        Ok(Err(e)) => return Err(TransportError::io(&e, true)),
        Ok(Ok(_guard)) => {}
    }
    if let Some(e) = socket.get_ref().take_error().map_err(|e| TransportError::io(&e, true))? {
        return Err(TransportError::io(&e, true));
    }
    let connection = Connection { socket, parser: ResponseParser::new(), tainted: false, tls: None };
    Ok((connection, started.elapsed()))
}

/// Registers a socket with the runtime.
///
/// `AsyncFd::new` is deprecated because a generic `T` could hand out a different or closed fd
/// over its life. Here `T` is a `TcpStream` that owns its fd, and the `AsyncFd` owns the stream
/// and never exposes it mutably, so the fd stays valid and the same until the `AsyncFd` drops:
/// the safe constructor is sound for this use, and lets the crate keep `forbid(unsafe_code)`.
#[allow(deprecated)]
fn register(stream: std::net::TcpStream) -> io::Result<AsyncFd<std::net::TcpStream>> {
    AsyncFd::new(stream)
}

/// What one read did to the response being parsed.
enum ReadStep {
    More,
    Eof,
    Done { info: ResponseInfo, drained: bool },
}

impl Connection {
    /// Writes the whole request.
    pub async fn write_all(&self, mut bytes: &[u8]) -> Result<(), TransportError> {
        if let Some(tls) = &self.tls {
            // Boxed (see `tls.rs`): the plain path's future keeps its size.
            return Box::pin(tls.write_all(&self.socket, bytes)).await;
        }
        while !bytes.is_empty() {
            let mut guard = self.socket.writable().await.map_err(|e| TransportError::io(&e, false))?;
            match guard.try_io(|inner| inner.get_ref().write(bytes)) {
                Ok(Ok(0)) => {
                    return Err(TransportError { kind: ErrorKind::Reset, detail: "write returned 0".into() });
                }
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(TransportError::io(&e, false)),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Reads one complete response. `head_request` tells that no body follows.
    pub async fn read_response(&mut self, head_request: bool) -> Result<ResponseInfo, TransportError> {
        let Connection { socket, parser, tainted, tls } = self;
        parser.start(head_request);
        if let Some(tls) = tls {
            return Box::pin(tls.read_response(socket, parser, tainted)).await;
        }
        loop {
            let mut guard = socket.readable().await.map_err(|e| TransportError::io(&e, false))?;
            let step = guard.try_io(|inner| {
                SCRATCH.with_borrow_mut(|scratch| {
                    let n = inner.get_ref().read(scratch)?;
                    if n == 0 {
                        return Ok(Ok(ReadStep::Eof));
                    }
                    Ok(match parser.feed(&scratch[..n]) {
                        Ok((_, Progress::NeedMore)) => Ok(ReadStep::More),
                        Ok((used, Progress::Complete(info))) => {
                            if used < n {
                                *tainted = true;
                            }
                            Ok(ReadStep::Done { info, drained: n < scratch.len() })
                        }
                        Err(e) => Err(e),
                    })
                })
            });
            match step {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(TransportError::io(&e, false)),
                Ok(Ok(Err(e))) => return Err(TransportError::parse(e)),
                Ok(Ok(Ok(ReadStep::More))) => continue,
                Ok(Ok(Ok(ReadStep::Eof))) => return parser.finish_on_eof().map_err(TransportError::parse),
                Ok(Ok(Ok(ReadStep::Done { info, drained }))) => {
                    if drained {
                        guard.clear_ready();
                    }
                    return Ok(info);
                }
            }
        }
    }

    /// Waits for bytes, reads once into the thread's scratch buffer and hands them to `f` (an
    /// empty slice means the peer closed). For callers that look at raw bytes with no buffer of
    /// their own: a held connection waiting for its close, a WebSocket reading frames.
    pub async fn read_some<R>(&self, mut f: impl FnMut(&[u8]) -> R) -> Result<R, TransportError> {
        if let Some(tls) = &self.tls {
            return Box::pin(tls.read_some(&self.socket, f)).await;
        }
        loop {
            let mut guard = self.socket.readable().await.map_err(|e| TransportError::io(&e, false))?;
            let step = guard.try_io(|inner| {
                SCRATCH.with_borrow_mut(|scratch| {
                    let n = inner.get_ref().read(scratch)?;
                    Ok(f(&scratch[..n]))
                })
            });
            match step {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(TransportError::io(&e, false)),
                Ok(Ok(value)) => return Ok(value),
            }
        }
    }

    /// Keeps the head (`headers`) and up to `body_limit` bytes of the body of each response
    /// read from now on, for checks and extraction; off (nothing kept) by default.
    pub fn capture(&mut self, headers: bool, body_limit: usize) {
        self.parser.capture_headers(headers);
        self.parser.capture_body(body_limit);
    }

    /// The body bytes of the last response kept by [`capture`](Self::capture).
    pub fn captured_body(&self) -> &[u8] {
        self.parser.body()
    }

    /// The header fields of the last response kept by [`capture`](Self::capture), in order.
    pub fn captured_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.parser.headers()
    }

    /// True when the connection can carry another request after `info`.
    pub fn reusable(&self, info: &ResponseInfo) -> bool {
        info.keep_alive && !self.tainted
    }

    /// The plain TCP socket, taken out of the runtime's registration (to hand it to another
    /// protocol stack, e.g. HTTP/2 on tokio's `TcpStream`); `None` for a TLS connection.
    pub fn into_std(self) -> Option<std::net::TcpStream> {
        if self.tls.is_some() {
            return None;
        }
        Some(self.socket.into_inner())
    }
}
