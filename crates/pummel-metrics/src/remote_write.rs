//! `--out prometheus=URL`: Prometheus remote write (protocol 1.0) of the same series the
//! endpoint serves, once a second, with a `run_id` label.
//!
//! Each second the exporter's exposition is read back into samples (one timestamp for all),
//! encoded as a `WriteRequest` protobuf by hand (four small messages: not worth a protobuf
//! compiler in the build), snappy-compressed and queued for a sender thread. The queue is
//! bounded ([`QUEUE`] seconds): when the receiver is slower than that, a second is dropped
//! and counted, never waited for. A send that fails on the way (connection, 5xx, 429) is tried
//! again with a growing pause, up to [`TRIES`] times; a 4xx other than 429 is final. At the
//! end what is queued is still sent, for at most [`FLUSH_WAIT`].

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pummel_engine::observe::exposition::samples;

/// Seconds of samples queued at most.
pub const QUEUE: usize = 60;
/// Attempts per batch.
pub const TRIES: u32 = 3;
/// The longest the end of the run waits for the queue to be sent.
pub const FLUSH_WAIT: Duration = Duration::from_secs(10);
/// Time limit of one request to the receiver.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(3);

/// Why remote write cannot start.
#[derive(Debug, thiserror::Error)]
pub enum RemoteWriteError {
    /// The URL is not one pummel can send to.
    #[error("{0}")]
    Url(String),
}

/// What remote write did over the run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RemoteWriteTotals {
    /// Seconds (write requests) the receiver accepted.
    pub sent: u64,
    /// Seconds dropped: the queue was full, the receiver refused them, or every try failed.
    pub dropped: u64,
    /// Samples in the seconds sent.
    pub samples: u64,
    /// The last failure, if any.
    pub last_error: Option<String>,
}

/// Where a run's samples go.
#[derive(Debug)]
pub struct RemoteWrite {
    queue: Mutex<Option<SyncSender<Vec<u8>>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    shared: Arc<SenderState>,
    /// The `run_id` label of every series.
    pub run_id: String,
    last_ms: AtomicU64,
}

/// What the sender thread and the feeding side share.
#[derive(Debug, Default)]
struct SenderState {
    sent: AtomicU64,
    dropped: AtomicU64,
    samples: AtomicU64,
    last_error: Mutex<Option<String>>,
    /// Set at the end: no more pauses between tries, and a deadline.
    finishing: AtomicBool,
}

/// Where to POST.
#[derive(Debug, Clone)]
struct Endpoint {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl RemoteWrite {
    /// Checks `url` (plain `http://`) and starts the sender thread.
    pub fn start(url: &str) -> Result<RemoteWrite, RemoteWriteError> {
        let endpoint = endpoint(url).map_err(RemoteWriteError::Url)?;
        let (queue, batches) = sync_channel(QUEUE);
        let shared = Arc::new(SenderState::default());
        let sending = shared.clone();
        let thread = std::thread::Builder::new()
            .name("pummel-remote-write".into())
            .spawn(move || send_all(&endpoint, &batches, &sending))
            .map_err(|e| RemoteWriteError::Url(format!("cannot start its thread: {e}")))?;
        Ok(RemoteWrite {
            queue: Mutex::new(Some(queue)),
            thread: Mutex::new(Some(thread)),
            shared,
            run_id: run_id(),
            last_ms: AtomicU64::new(0),
        })
    }

    /// Queues the samples of `exposition`, stamped now; a full queue drops them (counted).
    pub fn push(&self, exposition: &str) {
        let mut now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64);
        // Strictly increasing per series, or the receiver refuses them as out of order.
        let last = self.last_ms.load(Ordering::Relaxed);
        if now <= last {
            now = last + 1;
        }
        self.last_ms.store(now, Ordering::Relaxed);
        let (body, count) = write_request(exposition, &self.run_id, now as i64);
        let Ok(queue) = self.queue.lock() else { return };
        let Some(queue) = queue.as_ref() else { return };
        match queue.try_send(snap::raw::Encoder::new().compress_vec(&body).unwrap_or_default()) {
            Ok(()) => {
                self.shared.samples.fetch_add(count, Ordering::Relaxed);
            }
            Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                self.shared.dropped.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Sends what is queued (for at most [`FLUSH_WAIT`]) and returns the totals.
    pub fn finish(&self) -> RemoteWriteTotals {
        self.shared.finishing.store(true, Ordering::Relaxed);
        if let Ok(mut queue) = self.queue.lock() {
            queue.take();
        }
        if let Some(thread) = self.thread.lock().ok().and_then(|mut t| t.take()) {
            let _ = thread.join();
        }
        RemoteWriteTotals {
            sent: self.shared.sent.load(Ordering::Relaxed),
            dropped: self.shared.dropped.load(Ordering::Relaxed),
            samples: self.shared.samples.load(Ordering::Relaxed),
            last_error: self.shared.last_error.lock().ok().and_then(|e| e.clone()),
        }
    }
}

/// A run id: 16 hex digits from the clock and the process id.
fn run_id() -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos() as u64);
    let mixed = (nanos ^ (u64::from(std::process::id()) << 32)).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    format!("{mixed:016x}")
}

fn endpoint(url: &str) -> Result<Endpoint, String> {
    let parsed = url::Url::parse(url).map_err(|e| format!("{url:?}: {e}"))?;
    if parsed.scheme() != "http" {
        return Err(format!("{url:?}: remote write speaks plain http:// only"));
    }
    let host = parsed.host_str().ok_or_else(|| format!("{url:?}: no host"))?.to_string();
    let port = parsed.port_or_known_default().unwrap_or(80);
    let addr = (host.as_str(), port)
        .to_socket_addrs()
        .map_err(|e| format!("{url:?}: {e}"))?
        .next()
        .ok_or_else(|| format!("{url:?}: the host has no address"))?;
    let mut path = parsed.path().to_string();
    if let Some(query) = parsed.query() {
        path = format!("{path}?{query}");
    }
    let host_header = match parsed.port() {
        Some(port) => format!("{host}:{port}"),
        None => host,
    };
    Ok(Endpoint { addr, host: host_header, path })
}

/// The sender thread: every batch, tried up to [`TRIES`] times.
fn send_all(endpoint: &Endpoint, batches: &Receiver<Vec<u8>>, state: &SenderState) {
    let mut deadline: Option<Instant> = None;
    while let Ok(body) = batches.recv() {
        if state.finishing.load(Ordering::Relaxed) {
            let end = *deadline.get_or_insert_with(|| Instant::now() + FLUSH_WAIT);
            if Instant::now() > end {
                state.dropped.fetch_add(1, Ordering::Relaxed);
                continue;
            }
        }
        let mut outcome = Err(String::new());
        for attempt in 0..TRIES {
            outcome = post(endpoint, &body);
            match &outcome {
                Ok(()) => break,
                Err(e) if e.starts_with("final: ") => break,
                Err(_) => {}
            }
            if attempt + 1 < TRIES && !state.finishing.load(Ordering::Relaxed) {
                std::thread::sleep(Duration::from_millis(100 << attempt));
            }
        }
        match outcome {
            Ok(()) => {
                state.sent.fetch_add(1, Ordering::Relaxed);
            }
            Err(e) => {
                state.dropped.fetch_add(1, Ordering::Relaxed);
                if let Ok(mut last) = state.last_error.lock() {
                    *last = Some(e.trim_start_matches("final: ").to_string());
                }
            }
        }
    }
}

/// One POST; `Err("final: ...")` for an answer a retry would not change.
fn post(endpoint: &Endpoint, body: &[u8]) -> Result<(), String> {
    let mut stream =
        TcpStream::connect_timeout(&endpoint.addr, REQUEST_TIMEOUT).map_err(|e| format!("connect: {e}"))?;
    stream.set_read_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
    stream.set_write_timeout(Some(REQUEST_TIMEOUT)).map_err(|e| e.to_string())?;
    let head = format!(
        "POST {} HTTP/1.1\r\nHost: {}\r\nContent-Type: application/x-protobuf\r\nContent-Encoding: snappy\r\n\
         X-Prometheus-Remote-Write-Version: 0.1.0\r\nUser-Agent: pummel/{}\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n",
        endpoint.path,
        endpoint.host,
        pummel_engine::VERSION,
        body.len()
    );
    stream.write_all(head.as_bytes()).and_then(|()| stream.write_all(body)).map_err(|e| format!("write: {e}"))?;
    let mut answer = Vec::new();
    let mut chunk = [0u8; 4096];
    // The status line, and enough of the body to say why.
    while answer.len() < 2048 {
        match stream.read(&mut chunk) {
            Ok(0) => break,
            Ok(n) => answer.extend_from_slice(&chunk[..n]),
            Err(e) if answer.is_empty() => return Err(format!("read: {e}")),
            Err(_) => break,
        }
    }
    let text = String::from_utf8_lossy(&answer);
    let status: u16 = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).ok_or("no HTTP answer")?;
    let why = || text.split_once("\r\n\r\n").map_or("", |(_, b)| b.trim()).chars().take(200).collect::<String>();
    match status {
        200..=299 => Ok(()),
        429 | 500..=599 => Err(format!("{status} {}", why())),
        _ => Err(format!("final: {status} {}", why())),
    }
}

/// The `WriteRequest` of `exposition`'s samples at `timestamp_ms`, and how many samples.
fn write_request(exposition: &str, run_id: &str, timestamp_ms: i64) -> (Vec<u8>, u64) {
    let mut request = Vec::new();
    let mut count = 0;
    for (name, labels, value) in samples(exposition) {
        let mut all: Vec<(&str, &str)> = vec![("__name__", name.as_str()), ("run_id", run_id)];
        all.extend(labels.iter().map(|(k, v)| (k.as_str(), v.as_str())));
        all.sort_by(|a, b| a.0.cmp(b.0));
        let mut series = Vec::new();
        for (k, v) in all {
            let mut label = Vec::new();
            bytes_field(&mut label, 1, k.as_bytes());
            bytes_field(&mut label, 2, v.as_bytes());
            bytes_field(&mut series, 1, &label);
        }
        let mut sample = Vec::new();
        key(&mut sample, 1, 1);
        sample.extend_from_slice(&value.to_le_bytes());
        key(&mut sample, 2, 0);
        varint(&mut sample, timestamp_ms as u64);
        bytes_field(&mut series, 2, &sample);
        bytes_field(&mut request, 1, &series);
        count += 1;
    }
    (request, count)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn key(out: &mut Vec<u8>, field: u64, wire: u64) {
    varint(out, field << 3 | wire);
}

fn bytes_field(out: &mut Vec<u8>, field: u64, data: &[u8]) {
    key(out, field, 2);
    varint(out, data.len() as u64);
    out.extend_from_slice(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_fields_are_protobuf() {
        let mut out = Vec::new();
        varint(&mut out, 300);
        assert_eq!(out, [0xAC, 0x02]);
        let mut field = Vec::new();
        bytes_field(&mut field, 1, b"ab");
        assert_eq!(field, [0x0A, 2, b'a', b'b']);
    }

    #[test]
    fn a_write_request_holds_every_sample_with_sorted_labels() {
        let (body, count) = write_request("# TYPE x counter\nx_total{b=\"2\",a=\"1\"} 5\ny 1.5\n", "r1", 1000);
        assert_eq!(count, 2);
        // The first series: labels __name__, a, b, run_id in that order, then the sample.
        let text = String::from_utf8_lossy(&body);
        let mut at = 0;
        for needle in ["__name__", "x_total", "\n\u{1}a\u{12}\u{1}1", "\n\u{1}b\u{12}\u{1}2", "run_id", "y"] {
            let found = text[at..].find(needle).map(|i| i + at);
            assert!(found.is_some(), "{needle:?} after {at} in {text:?}");
            at = found.unwrap_or(at);
        }
        assert!(body.windows(8).any(|w| w == 5f64.to_le_bytes()), "the value as a double");
    }

    #[test]
    fn only_plain_http_urls() {
        assert!(endpoint("https://127.0.0.1:9090/api/v1/write").is_err());
        assert!(endpoint("not a url").is_err());
        let e = endpoint("http://127.0.0.1:9090/api/v1/write").unwrap();
        assert_eq!((e.host.as_str(), e.path.as_str()), ("127.0.0.1:9090", "/api/v1/write"));
    }

    #[test]
    fn a_receiver_that_is_not_there_drops_after_the_tries() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        drop(listener);
        let remote = RemoteWrite::start(&format!("http://{addr}/api/v1/write")).unwrap();
        remote.push("x 1\n");
        let totals = remote.finish();
        assert_eq!((totals.sent, totals.dropped, totals.samples), (0, 1, 1));
        assert!(totals.last_error.is_some_and(|e| e.contains("connect")));
    }
}
