//! Small misbehaving HTTP servers, as threads of the test process (std::net only): each one
//! shows pummel one way a real target goes wrong, so that the test can check how it is counted.
//!
//! A [`TestServer`] accepts on `127.0.0.1:0` and hands each connection to its [`Behaviour`] on a
//! thread of its own. Every blocking read has a short timeout and checks the stop flag, so all
//! threads end soon after the server is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// How a server answers each request of a connection.
#[derive(Debug, Clone, Copy)]
pub enum Behaviour {
    /// `200 OK` at once, except that every answer due in `[from, from + length)` after the
    /// server's first connection is held back until `from + length`: the target stalls once.
    StallOnce { from: Duration, length: Duration },
    /// Bytes that are not HTTP (`not http at all\r\n\r\n`); the connection stays open.
    Garbage,
    /// A head announcing 100 body bytes, 10 of them, then the connection is closed.
    Partial,
    /// Reads the request and never answers; holds the connection until the client leaves.
    Silent,
    /// `200 OK` to every request (bodies read), keep-alive, and closes a connection once it
    /// has been idle for `idle` — a server whose idle timeout is shorter than a user's pause.
    IdleClose { idle: Duration },
    /// An object store refusing uploads: a request with a body gets `403` at once, before its
    /// body is read, and the connection is closed (the unread body makes it a reset), without
    /// `Connection: close`; other requests get `200 OK`, keep-alive.
    RefuseUploads,
    /// Reads a whole request, then closes the connection without answering.
    CloseAfterRequest,
    /// A login-based app: `POST /login?user=N` answers `200` and sets the cookie `session=N`
    /// (`Path=/`, `HttpOnly`); `GET /me` with `X-User: N` answers `200` when the request carries
    /// N's session, `403` when it carries another user's, `401` without one. Counts requests.
    Login,
    /// A target that fails fast: of the requests the server receives (counted over all its
    /// connections, in order of arrival), every `ok_every`-th gets `200 OK` after `ok_delay`,
    /// every other one `503 Service Unavailable` at once; keep-alive throughout.
    FastErrors { ok_every: u64, ok_delay: Duration },
    /// A leaky error page: every request gets `500` with the request's own head (its
    /// `Authorization` header included) as the body, keep-alive — what the request log must
    /// not copy secrets from.
    EchoHeadAs500,
}

const OK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
const OK_RESPONSE_TEXT: &str = "HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
const FORBIDDEN: &[u8] = b"HTTP/1.1 403 Forbidden\r\nContent-Length: 9\r\n\r\nforbidden";
const UNAVAILABLE: &[u8] = b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 11\r\n\r\nunavailable";
const GARBAGE: &[u8] = b"not http at all\r\n\r\n";
const PARTIAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";

/// A misbehaving server on a loopback port; stops when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    accepted: Arc<AtomicU64>,
    requests: Arc<AtomicU64>,
    acceptor: Option<JoinHandle<()>>,
}

/// What the connection threads of one server share.
struct Shared {
    behaviour: Behaviour,
    accepted: Arc<AtomicU64>,
    /// Requests received, over all connections (counted by the behaviours that number them).
    requests: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
    /// When the first connection was accepted: the stall is timed from it, since the client
    /// starts its clock at about the same moment (the server's own start is earlier by however
    /// long the client process takes to start).
    first_accept: OnceLock<Instant>,
}

impl TestServer {
    /// Starts a server with `behaviour` on `127.0.0.1:0`.
    pub fn start(behaviour: Behaviour) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        let addr = listener.local_addr().expect("local address");
        let stop = Arc::new(AtomicBool::new(false));
        let accepted = Arc::new(AtomicU64::new(0));
        let requests = Arc::new(AtomicU64::new(0));
        let shared = Arc::new(Shared {
            behaviour,
            accepted: accepted.clone(),
            requests: requests.clone(),
            stop: stop.clone(),
            first_accept: OnceLock::new(),
        });
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                shared.first_accept.get_or_init(Instant::now);
                shared.accepted.fetch_add(1, Ordering::SeqCst);
                let shared = shared.clone();
                thread::spawn(move || serve(stream, &shared));
            }
        });
        TestServer { addr, stop, accepted, requests, acceptor: Some(acceptor) }
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> u64 {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Requests received so far (by the behaviours that count them: [`Behaviour::FastErrors`]).
    pub fn requests(&self) -> u64 {
        self.requests.load(Ordering::SeqCst)
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }
}

/// A target whose errors are fast and whose successes are slow: of every 10 requests (in order
/// of arrival, over all connections) the first 9 get `503` at once and the 10th gets `200 OK`
/// after 100 ms. A thread per connection: with 100 connections it carries well over 1,000 req/s
/// (each connection spends 10 ms per request on average). Stops when dropped.
pub struct FastErrors {
    /// The server (its address, its counts).
    pub server: TestServer,
}

impl FastErrors {
    /// One request in this many gets `200 OK`; the others `503`.
    pub const OK_EVERY: u64 = 10;
    /// How long a `200 OK` takes.
    pub const OK_DELAY: Duration = Duration::from_millis(100);

    /// Starts it on `127.0.0.1:0`.
    pub fn start() -> FastErrors {
        FastErrors {
            server: TestServer::start(Behaviour::FastErrors { ok_every: Self::OK_EVERY, ok_delay: Self::OK_DELAY }),
        }
    }

    /// Where it listens.
    pub fn addr(&self) -> SocketAddr {
        self.server.addr
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        self.server.url()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept so that the thread sees the flag.
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_millis(500));
        if let Some(acceptor) = self.acceptor.take() {
            let _ = acceptor.join();
        }
    }
}

/// Reads requests off one connection: heads, and bodies by their `Content-Length` when asked.
struct Requests {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Requests {
    /// Waits for the next complete request head; false when the client left or the server stops.
    fn next(&mut self, stop: &AtomicBool) -> bool {
        self.next_head(stop, None).is_some()
    }

    /// Waits for the next complete request head and returns its `Content-Length` (0 without
    /// one); `None` when the client left, the server stops, or nothing came within `idle`.
    fn next_head(&mut self, stop: &AtomicBool, idle: Option<Duration>) -> Option<usize> {
        self.next_request(stop, idle).map(|(_, length)| length)
    }

    /// As [`next_head`](Self::next_head), with the head itself (lowercased).
    fn next_request(&mut self, stop: &AtomicBool, idle: Option<Duration>) -> Option<(String, usize)> {
        let mut chunk = [0u8; 4096];
        let quiet_since = Instant::now();
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&self.buffer[..end]).to_ascii_lowercase();
                self.buffer.drain(..end + 4);
                let length = head
                    .lines()
                    .find_map(|line| line.strip_prefix("content-length:"))
                    .and_then(|n| n.trim().parse().ok())
                    .unwrap_or(0);
                return Some((head, length));
            }
            if stop.load(Ordering::SeqCst)
                || idle.is_some_and(|idle| self.buffer.is_empty() && quiet_since.elapsed() >= idle)
            {
                return None;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return None,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => return None,
            }
        }
    }

    /// Reads and discards a body of `length` bytes; false when the client left first.
    fn skip_body(&mut self, mut length: usize, stop: &AtomicBool) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            let buffered = length.min(self.buffer.len());
            self.buffer.drain(..buffered);
            length -= buffered;
            if length == 0 {
                return true;
            }
            if stop.load(Ordering::SeqCst) {
                return false;
            }
            match self.stream.read(&mut chunk) {
                Ok(0) => return false,
                Ok(n) => self.buffer.extend_from_slice(&chunk[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => return false,
            }
        }
    }

    /// Holds the connection open, reading and discarding, until the client leaves or the
    /// server stops.
    fn hold(&mut self, stop: &AtomicBool) {
        let mut chunk = [0u8; 4096];
        while !stop.load(Ordering::SeqCst) {
            match self.stream.read(&mut chunk) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted) => {}
                Err(_) => return,
            }
        }
    }
}

fn serve(stream: TcpStream, shared: &Shared) {
    if stream.set_read_timeout(Some(Duration::from_millis(50))).is_err() {
        return;
    }
    let _ = stream.set_nodelay(true);
    let mut requests = Requests { stream, buffer: Vec::new() };
    let stop = &*shared.stop;
    match shared.behaviour {
        Behaviour::StallOnce { from, length } => {
            let first = *shared.first_accept.get_or_init(Instant::now);
            while requests.next(stop) {
                let since = first.elapsed();
                if since >= from && since < from + length {
                    thread::sleep(from + length - since);
                }
                if requests.stream.write_all(OK_RESPONSE).is_err() {
                    return;
                }
            }
        }
        Behaviour::Garbage => {
            if requests.next(stop) && requests.stream.write_all(GARBAGE).is_ok() {
                // Keep the connection open: whatever pummel reports, it is not a closed socket.
                requests.hold(stop);
            }
        }
        Behaviour::Partial => {
            // The whole request was read, so closing sends a clean FIN (unread bytes would turn
            // it into a RST, and the test would prove nothing about a *partial* response).
            if requests.next(stop) && requests.stream.write_all(PARTIAL).is_ok() {
                let _ = requests.stream.flush();
                let _ = requests.stream.shutdown(Shutdown::Both);
            }
        }
        Behaviour::Silent => {
            if requests.next(stop) {
                requests.hold(stop);
            }
        }
        Behaviour::IdleClose { idle } => {
            while let Some(length) = requests.next_head(stop, Some(idle)) {
                if !requests.skip_body(length, stop) || requests.stream.write_all(OK_RESPONSE).is_err() {
                    return;
                }
            }
            // Idle for too long: a clean close, as a server's keep-alive timeout does.
            let _ = requests.stream.shutdown(Shutdown::Both);
        }
        Behaviour::RefuseUploads => {
            while let Some(length) = requests.next_head(stop, None) {
                if length > 0 {
                    // Answered before the body is read, then closed: the unread body resets it.
                    let _ = requests.stream.write_all(FORBIDDEN);
                    return;
                }
                if requests.stream.write_all(OK_RESPONSE).is_err() {
                    return;
                }
            }
        }
        Behaviour::FastErrors { ok_every, ok_delay } => {
            while let Some(length) = requests.next_head(stop, None) {
                if !requests.skip_body(length, stop) {
                    return;
                }
                let number = shared.requests.fetch_add(1, Ordering::SeqCst) + 1;
                let response = if number % ok_every == 0 {
                    thread::sleep(ok_delay);
                    OK_RESPONSE
                } else {
                    UNAVAILABLE
                };
                if requests.stream.write_all(response).is_err() {
                    return;
                }
            }
        }
        Behaviour::EchoHeadAs500 => {
            while let Some((head, length)) = requests.next_request(stop, None) {
                if !requests.skip_body(length, stop) {
                    return;
                }
                let response =
                    format!("HTTP/1.1 500 Internal Server Error\r\nContent-Length: {}\r\n\r\n{head}", head.len());
                if requests.stream.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
        }
        Behaviour::Login => {
            while let Some((head, length)) = requests.next_request(stop, None) {
                if !requests.skip_body(length, stop) {
                    return;
                }
                shared.requests.fetch_add(1, Ordering::SeqCst);
                let target = head.lines().next().and_then(|line| line.split(' ').nth(1)).unwrap_or("");
                let field =
                    |name: &str| head.lines().find_map(|line| line.strip_prefix(name).map(|v| v.trim().to_string()));
                let response = if let Some(user) = target.strip_prefix("/login?user=") {
                    format!(
                        "HTTP/1.1 200 OK\r\nSet-Cookie: session={user}; Path=/; HttpOnly\r\nContent-Length: 2\r\n\r\nok"
                    )
                } else {
                    let session = field("cookie:").and_then(|cookies| {
                        cookies.split(';').find_map(|c| c.trim().strip_prefix("session=").map(str::to_string))
                    });
                    match (session, field("x-user:")) {
                        (Some(session), Some(user)) if session == user => OK_RESPONSE_TEXT.to_string(),
                        (Some(_), _) => "HTTP/1.1 403 Forbidden\r\nContent-Length: 0\r\n\r\n".to_string(),
                        (None, _) => "HTTP/1.1 401 Unauthorized\r\nContent-Length: 0\r\n\r\n".to_string(),
                    }
                };
                if requests.stream.write_all(response.as_bytes()).is_err() {
                    return;
                }
            }
        }
        Behaviour::CloseAfterRequest => {
            if let Some(length) = requests.next_head(stop, None) {
                if requests.skip_body(length, stop) {
                    let _ = requests.stream.shutdown(Shutdown::Both);
                }
            }
        }
    }
}
