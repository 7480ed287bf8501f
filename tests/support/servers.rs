//! Small misbehaving HTTP servers, as threads of the test process (std::net only): each one
//! shows pummel one way a real target goes wrong, so that the test can check how it is counted.
//!
//! A [`TestServer`] accepts on `127.0.0.1:0` and hands each connection to its [`Behaviour`] on a
//! thread of its own. Every blocking read has a short timeout and checks the stop flag, so all
//! threads end soon after the server is dropped.

use std::io::{ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
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
}

const OK_RESPONSE: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Type: text/plain\r\n\r\nok";
const GARBAGE: &[u8] = b"not http at all\r\n\r\n";
const PARTIAL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789";

/// A misbehaving server on a loopback port; stops when dropped.
pub struct TestServer {
    /// Where it listens.
    pub addr: SocketAddr,
    stop: Arc<AtomicBool>,
    acceptor: Option<JoinHandle<()>>,
}

/// What the connection threads of one server share.
struct Shared {
    behaviour: Behaviour,
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
        let shared = Arc::new(Shared { behaviour, stop: stop.clone(), first_accept: OnceLock::new() });
        let acceptor = thread::spawn(move || {
            for stream in listener.incoming() {
                if shared.stop.load(Ordering::SeqCst) {
                    break;
                }
                let Ok(stream) = stream else { continue };
                shared.first_accept.get_or_init(Instant::now);
                let shared = shared.clone();
                thread::spawn(move || serve(stream, &shared));
            }
        });
        TestServer { addr, stop, acceptor: Some(acceptor) }
    }

    /// `http://127.0.0.1:PORT/`.
    pub fn url(&self) -> String {
        format!("http://{}/", self.addr)
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

/// Reads request heads (no bodies: pummel's test requests are GETs) off one connection.
struct Requests {
    stream: TcpStream,
    buffer: Vec<u8>,
}

impl Requests {
    /// Waits for the next complete request head; false when the client left or the server stops.
    fn next(&mut self, stop: &AtomicBool) -> bool {
        let mut chunk = [0u8; 4096];
        loop {
            if let Some(end) = self.buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                self.buffer.drain(..end + 4);
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
    }
}
