//! Opening a TCP connection: the one connect every protocol uses.
//!
//! Hand-written on `socket2` and tokio's `AsyncFd` rather than `tokio::net::TcpStream`, because
//! the connection it opens is read and written through [`super::Stream`], whose fast path
//! needs the raw readiness of `AsyncFd` (see `stream.rs`). Every socket gets `TCP_NODELAY`,
//! an optional source address (`--source-addrs`, port chosen by the kernel) and the connect
//! timeout; failures are classified by `failure.rs`.

use std::cell::RefCell;
use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::unix::AsyncFd;

use super::failure::TransportError;

/// Bytes of the read buffer every connection of a thread shares.
const SCRATCH_SIZE: usize = 64 * 1024;
/// `EINPROGRESS` on Linux: a non-blocking connect has started.
const EINPROGRESS: i32 = 115;

thread_local! {
    /// The read buffer shared by every connection of this thread: a connection holds no read
    /// buffer of its own while idle, so 10,000 held connections fit in a few KiB each. TLS
    /// connections read their ciphertext into it too.
    pub(super) static SCRATCH: RefCell<Box<[u8]>> = RefCell::new(vec![0; SCRATCH_SIZE].into_boxed_slice());
}

/// Opens a TCP connection to `addr` (from the local address `source` when given) within
/// `timeout`; returns the registered socket and the time the handshake took.
pub(super) async fn connect(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<(AsyncFd<TcpStream>, Duration), TransportError> {
    let started = Instant::now();
    let failed = |e: io::Error| TransportError::connect(&e, addr);
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP)).map_err(failed)?;
    socket.set_tcp_nodelay(true).map_err(failed)?;
    if let Some(ip) = source {
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0))).map_err(|e| TransportError::bind(&e, ip))?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(failed(e)),
    }
    let socket = register(TcpStream::from(socket)).map_err(failed)?;
    match tokio::time::timeout(timeout, socket.writable()).await {
        Err(_) => return Err(TransportError::connect_timeout(addr, timeout)),
        Ok(Err(e)) => return Err(failed(e)),
        Ok(Ok(_guard)) => {}
    }
    if let Some(e) = socket.get_ref().take_error().map_err(failed)? {
        return Err(failed(e));
    }
    Ok((socket, started.elapsed()))
}

/// Registers a socket with the runtime.
///
/// `AsyncFd::new` is deprecated because a generic `T` could hand out a different or closed fd
/// over its life. Here `T` is a `TcpStream` that owns its fd, and the `AsyncFd` owns the stream
/// and never exposes it mutably, so the fd stays valid and the same until the `AsyncFd` drops:
/// the safe constructor is sound for this use, and lets the crate keep `forbid(unsafe_code)`.
#[allow(deprecated)]
fn register(stream: TcpStream) -> io::Result<AsyncFd<TcpStream>> {
    AsyncFd::new(stream)
}
