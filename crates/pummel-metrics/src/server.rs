//! The HTTP listener of the exposition: one thread, one short connection at a time.
//!
//! Scrapers send a small GET every few seconds; a blocking loop on its own thread answers them
//! without touching the shards' runtimes. `GET /metrics` gets the exposition (protobuf when the
//! `Accept` header asks for `application/vnd.google.protobuf`, text otherwise), `GET /` a line
//! saying where it is, anything else 404. Each connection is read with a deadline and closed
//! after one answer, so a stuck client cannot hold the listener for long.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crate::{MetricsError, Shared, encode};

/// How long a client gets to send its request.
const READ_DEADLINE: Duration = Duration::from_secs(2);
/// The most request bytes read (a scrape's request is a few hundred).
const MAX_REQUEST: usize = 16 * 1024;
/// How often the listener looks at the stop flag when nobody connects.
const POLL: Duration = Duration::from_millis(20);

/// The listener thread.
#[derive(Debug)]
pub struct Server {
    addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Server {
    /// Binds `addr` and starts serving `shared`.
    pub fn start(addr: SocketAddr, shared: Arc<Shared>) -> Result<Server, MetricsError> {
        let listener = TcpListener::bind(addr).map_err(|source| MetricsError::Listen { addr, source })?;
        listener.set_nonblocking(true).map_err(|source| MetricsError::Listen { addr, source })?;
        let local = listener.local_addr().map_err(|source| MetricsError::Listen { addr, source })?;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let registry = encode::registry(shared);
        let thread = std::thread::Builder::new()
            .name("pummel-metrics".into())
            .spawn(move || {
                while !stopping.load(Ordering::Relaxed) {
                    match listener.accept() {
                        Ok((stream, _)) => serve(stream, &registry),
                        Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => std::thread::sleep(POLL),
                        Err(_) => std::thread::sleep(POLL),
                    }
                }
            })
            .map_err(|source| MetricsError::Listen { addr, source })?;
        Ok(Server { addr: local, stop, thread: Some(thread) })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops the listener and waits for its thread.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.shutdown();
    }
}

/// Answers one connection.
fn serve(mut stream: TcpStream, registry: &prometheus_client::registry::Registry) {
    let _ = stream.set_nonblocking(false);
    let Some(head) = read_head(&mut stream) else { return };
    let line = head.lines().next().unwrap_or("");
    let mut parts = line.split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let path = target.split('?').next().unwrap_or("");
    let wants_protobuf = head.lines().any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("accept:") && lower.contains("application/vnd.google.protobuf")
    });
    let text = |body: &str| body.as_bytes().to_vec();
    let (status, content_type, body) = match (method, path) {
        ("GET" | "HEAD", "/metrics") if wants_protobuf => match encode::protobuf(registry) {
            Ok(bytes) => ("200 OK", encode::PROTOBUF_CONTENT_TYPE, bytes),
            Err(_) => ("500 Internal Server Error", "text/plain", text("encoding failed\n")),
        },
        ("GET" | "HEAD", "/metrics") => match encode::text(registry) {
            Ok(exposition) => ("200 OK", encode::CONTENT_TYPE, exposition.into_bytes()),
            Err(_) => ("500 Internal Server Error", "text/plain", text("encoding failed\n")),
        },
        ("GET" | "HEAD", "/") => ("200 OK", "text/plain", text("pummel: metrics at /metrics\n")),
        ("GET" | "HEAD", _) => ("404 Not Found", "text/plain", text("not found: try /metrics\n")),
        _ => ("405 Method Not Allowed", "text/plain", text("GET only\n")),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.set_write_timeout(Some(READ_DEADLINE));
    let _ = stream.write_all(head.as_bytes());
    if method != "HEAD" {
        let _ = stream.write_all(&body);
    }
    let _ = stream.flush();
}

/// Reads up to the end of the request head, within the deadline and the size bound.
fn read_head(stream: &mut TcpStream) -> Option<String> {
    let deadline = Instant::now() + READ_DEADLINE;
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 2048];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || buf.len() > MAX_REQUEST {
            return None;
        }
        stream.set_read_timeout(Some(left)).ok()?;
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return None,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    Some(String::from_utf8_lossy(&buf).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn get(addr: SocketAddr, path: &str) -> String {
        let mut stream = TcpStream::connect(addr).expect("connect");
        write!(stream, "GET {path} HTTP/1.1\r\nHost: x\r\n\r\n").expect("write");
        let mut answer = String::new();
        stream.read_to_string(&mut answer).expect("read");
        answer
    }

    #[test]
    fn serves_the_exposition_and_stops() {
        let server = Server::start("127.0.0.1:0".parse().unwrap(), Arc::new(Shared::default())).unwrap();
        let addr = server.local_addr();
        let answer = get(addr, "/metrics");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.contains("\npummel_requests_sent_total 0\n"), "{answer}");
        assert!(answer.contains("pummel_request_latency_seconds_bucket{le=\"+Inf\"} 0"), "{answer}");
        assert!(get(addr, "/nothing").starts_with("HTTP/1.1 404"));
        let mut stream = TcpStream::connect(addr).expect("connect");
        let accept = "application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily;encoding=delimited";
        write!(stream, "GET /metrics HTTP/1.1\r\nHost: x\r\nAccept: {accept};q=0.7,text/plain;q=0.5\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).expect("read");
        let head =
            String::from_utf8_lossy(&answer[..answer.windows(4).position(|w| w == b"\r\n\r\n").unwrap()]).to_string();
        assert!(head.contains("Content-Type: application/vnd.google.protobuf"), "{head}");
        server.stop();
        assert!(TcpStream::connect(addr).is_err(), "nothing listens after stop");
    }
}
