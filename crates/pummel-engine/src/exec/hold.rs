//! The hold model (`pummel hold`): many connections opened at a paced rate and kept open
//! until the run ends — the connection stress test of a server (idle keep-alive clients, slow
//! clients, requests whose answers the server holds, WebSocket clients).
//!
//! Each shard opens its share of the connections at its share of the open rate. Every held
//! connection is one small task (a "slot") with no buffer of its own: reads go through the
//! transport's per-thread scratch buffer, so an idle connection costs its task, its socket
//! registration and its socket — a few hundred bytes of pummel's memory. A slot:
//! - `idle`: sends the request once, records the response, then waits on the idle socket;
//! - `slow-request`: writes the request head [`DRIP_BYTES`] bytes every `drip`, never the
//!   final empty line (after the head it keeps sending a harmless `X-a: b` header line);
//! - `pending`: sends the request and waits for the answer however long the target holds it
//!   (`--timeout` does not apply, only the run's end), then stays idle on the connection;
//! - `ws`: a WebSocket upgrade (RFC 6455, `Sec-WebSocket-Accept` checked), then a ping every
//!   `drip`. Frames are written and skipped by hand here: an empty masked ping is six bytes,
//!   and reading needs only to skip frames and notice a close, so a WebSocket library (which
//!   wants its own stream type and per-connection buffers) would cost more than it brings.
//!
//! Counting: each opening is a request started (`sent`, in flight until its response or its
//! failure), a failure to open is counted by kind, a connection the target closes (EOF or reset)
//! after it was established is counted in `closed_by_peer` — and, if a request was still
//! unanswered on it, also as a failed request (`reset`). With `reopen`, a slot opens again
//! after a close or a failure; re-opens go through the same pacing as the first opens.

use std::cell::Cell;
use std::rc::Rc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until};

use crate::dial::TransportError;
use crate::engine::shard::Shard;
use crate::load::arrivals::share;
use crate::plan::{HoldLoad, HoldMode};
use crate::proto::http1::Connection;
use pummel_results::error_kind::ErrorKind;

/// Bytes of the request head written at each drip of a slow request.
const DRIP_BYTES: usize = 2;
/// Sent, [`DRIP_BYTES`] at a time, once the real head (minus its final CRLF) is out: a valid
/// header line, so the target keeps waiting for the end of the head. Its length is a multiple
/// of `DRIP_BYTES`, so a drip never wraps around it.
const FILLER: &[u8] = b"X-a: b\r\n";
/// The GUID of RFC 6455 §1.3, appended to the key for `Sec-WebSocket-Accept`.
const WS_GUID: &str = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";
/// Largest WebSocket handshake answer accepted.
const MAX_HANDSHAKE: usize = 16 * 1024;

/// Hands out opening times `1/rate` apart, never in the past: a slot reserves its time, then
/// sleeps until it. First opens and re-opens share it, so the target never sees more than the
/// open rate.
struct Pacer {
    period: Duration,
    next: Cell<Instant>,
}

impl Pacer {
    fn reserve(&self) -> Instant {
        let at = self.next.get().max(Instant::now());
        self.next.set(at + self.period);
        at
    }
}

/// What every slot of the shard needs besides the shard itself.
struct Spec {
    load: HoldLoad,
    /// Bytes of the request up to the last header line's CRLF (slow-request mode).
    slow_head_len: usize,
    /// The WebSocket upgrade request without its key line and final CRLF (ws mode).
    ws_head: String,
}

/// Counts a connection as established for as long as it lives.
struct Held<'a>(&'a Shard);

impl<'a> Held<'a> {
    fn new(shard: &'a Shard) -> Self {
        shard.connections.set(shard.connections.get() + 1);
        Held(shard)
    }
}

impl Drop for Held<'_> {
    fn drop(&mut self) {
        self.0.connections.set(self.0.connections.get().saturating_sub(1));
    }
}

/// Runs this shard's share of the hold until the run stops.
pub(crate) async fn drive(shard: Rc<Shard>, load: HoldLoad, shards: usize) {
    let mine = share(load.connections as u64, shards, shard.index);
    if mine > 0 {
        let rate = load.open_rate * mine as f64 / load.connections as f64;
        let pacer = Rc::new(Pacer { period: Duration::from_secs_f64(1.0 / rate), next: Cell::new(Instant::now()) });
        let spec =
            Rc::new(Spec { slow_head_len: head_without_final_crlf(&shard.request), ws_head: ws_head(&shard), load });
        let mut slots = JoinSet::new();
        for _ in 0..mine {
            slots.spawn_local(slot(shard.clone(), pacer.clone(), spec.clone()));
        }
        while slots.join_next().await.is_some() {}
    }
    // Connections that closed for good do not end the run: it lasts its duration.
    shard.stop_sending.cancelled().await;
}

/// One held connection, re-opened after a close when `reopen` is set; ends when the run stops.
async fn slot(shard: Rc<Shard>, pacer: Rc<Pacer>, spec: Rc<Spec>) {
    loop {
        let at = pacer.reserve();
        tokio::select! {
            biased;
            () = shard.stop_sending.cancelled() => return,
            () = sleep_until(at) => {}
        }
        tokio::select! {
            biased;
            () = shard.stop_sending.cancelled() => return,
            () = hold_one(&shard, &spec, at) => {}
        }
        if !spec.load.reopen {
            return;
        }
    }
}

/// Opens one connection and holds it in the plan's mode until the target closes it (returns)
/// or the run stops (the caller drops this future, which closes the connection).
async fn hold_one(shard: &Shard, spec: &Spec, intended: Instant) {
    shard.start_request(intended);
    let conn = match shard.open(None, intended).await {
        Ok(conn) => conn,
        Err(e) => {
            shard.finish();
            shard.record_failure(intended, &e);
            return;
        }
    };
    let _held = Held::new(shard);
    let closed = match spec.load.mode {
        HoldMode::Idle => exchange_then_idle(shard, conn, intended, Some(shard.plan.timeout)).await,
        HoldMode::Pending => exchange_then_idle(shard, conn, intended, None).await,
        HoldMode::SlowRequest => slow_request(shard, spec, &conn, intended).await,
        HoldMode::WebSocket => websocket(shard, spec, &conn, intended).await,
    };
    if closed {
        shard.record(Instant::now(), |s| s.closed_by_peer += 1);
    }
}

/// Sends the request, records its response (waiting at most `timeout`, if given), then waits
/// on the idle connection. True when the target closed it.
async fn exchange_then_idle(shard: &Shard, mut conn: Connection, intended: Instant, timeout: Option<Duration>) -> bool {
    let sent_at = Instant::now();
    let exchange = async {
        conn.write_all(&shard.request).await?;
        shard.record(intended, |s| s.bytes_out += shard.request.len() as u64);
        conn.read_response(shard.head_request).await
    };
    let result = match timeout {
        Some(limit) => tokio::time::timeout(limit, exchange).await.map_err(|_| TransportError {
            kind: ErrorKind::Timeout,
            detail: format!("no complete response within {limit:?}"),
        }),
        None => Ok(exchange.await),
    };
    let done = Instant::now();
    shard.finish();
    match result.and_then(|r| r) {
        Ok(info) => {
            let ok = shard.plan.ok_status.contains(info.status);
            shard.record(intended, |s| {
                s.bytes_in += info.head_bytes + info.body_bytes;
                s.record_response(info.status, ok, done - intended, done - sent_at);
            });
            wait_closed(&conn).await
        }
        Err(e) => {
            shard.record_failure(intended, &e);
            e.kind == ErrorKind::Reset
        }
    }
}

/// Waits until the target closes the connection (EOF or an error), discarding whatever it
/// sends meanwhile. Always true: it returns only on a close.
async fn wait_closed(conn: &Connection) -> bool {
    loop {
        match conn.read_some(|bytes| bytes.is_empty()).await {
            Ok(false) => continue,
            Ok(true) | Err(_) => return true,
        }
    }
}

/// What the target did while a slow request or a WebSocket was being held.
enum PeerEvent {
    /// It closed the connection (EOF, reset, or a WebSocket close frame).
    Closed,
    /// It sent bytes (`n` of them; for a slow request the first ones carry its answer's status).
    Sent { n: usize, status: Option<u16> },
}

/// Writes the request head a few bytes every `drip`, never finishing it. True when the target
/// closed the connection.
async fn slow_request(shard: &Shard, spec: &Spec, conn: &Connection, intended: Instant) -> bool {
    let head = &shard.request[..spec.slow_head_len];
    let mut offset = 0usize;
    let sent_at = Instant::now();
    loop {
        let chunk = if offset < head.len() {
            &head[offset..(offset + DRIP_BYTES).min(head.len())]
        } else {
            let at = (offset - head.len()) % FILLER.len();
            &FILLER[at..at + DRIP_BYTES]
        };
        if let Err(e) = conn.write_all(chunk).await {
            shard.finish();
            shard.record_failure(intended, &e);
            return e.kind == ErrorKind::Reset;
        }
        offset += chunk.len();
        shard.record(intended, |s| s.bytes_out += chunk.len() as u64);
        let event = tokio::select! {
            () = sleep(spec.load.drip) => continue,
            event = conn.read_some(|bytes| match bytes {
                [] => PeerEvent::Closed,
                _ => PeerEvent::Sent { n: bytes.len(), status: status_code(bytes) },
            }) => event.unwrap_or(PeerEvent::Closed),
        };
        let done = Instant::now();
        shard.finish();
        return match event {
            PeerEvent::Closed => {
                let closed = TransportError {
                    kind: ErrorKind::Reset,
                    detail: "the target closed a slow request before its head was complete".into(),
                };
                shard.record_failure(intended, &closed);
                true
            }
            // The target answered the unfinished request (typically 408 or 400).
            PeerEvent::Sent { n, status: Some(status) } => {
                let ok = shard.plan.ok_status.contains(status);
                shard.record(intended, |s| {
                    s.bytes_in += n as u64;
                    s.record_response(status, ok, done - intended, done - sent_at);
                });
                wait_closed(conn).await
            }
            PeerEvent::Sent { .. } => {
                let bad = TransportError {
                    kind: ErrorKind::MalformedResponse,
                    detail: "the target answered a slow request with bytes that are not HTTP".into(),
                };
                shard.record_failure(intended, &bad);
                wait_closed(conn).await
            }
        };
    }
}

/// The status code of an answer starting `HTTP/1.x NNN`, if the bytes start that way.
fn status_code(bytes: &[u8]) -> Option<u16> {
    let code = bytes.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok().filter(|c| (100..1000).contains(c))
}

/// Upgrades to a WebSocket, then pings every `drip` until the target closes. True when the
/// target closed the connection.
async fn websocket(shard: &Shard, spec: &Spec, conn: &Connection, intended: Instant) -> bool {
    let key = BASE64.encode(rand::random::<[u8; 16]>());
    let request = format!("{}Sec-WebSocket-Key: {key}\r\n\r\n", spec.ws_head);
    let sent_at = Instant::now();
    let mut frames = FrameReader::default();
    let handshake = async {
        conn.write_all(request.as_bytes()).await?;
        shard.record(intended, |s| s.bytes_out += request.len() as u64);
        read_handshake(conn, &key, &mut frames).await
    };
    let result = tokio::time::timeout(shard.plan.timeout, handshake).await.unwrap_or_else(|_| {
        Err(TransportError { kind: ErrorKind::Timeout, detail: "no WebSocket handshake answer in time".into() })
    });
    let done = Instant::now();
    shard.finish();
    match result {
        Ok((101, head_bytes)) => shard.record(intended, |s| {
            s.bytes_in += head_bytes;
            s.record_response(101, true, done - intended, done - sent_at);
        }),
        Ok((status, head_bytes)) => {
            // Not upgraded: counted as a failed request, and the connection is given up.
            shard.record(intended, |s| {
                s.bytes_in += head_bytes;
                s.record_response(status, false, done - intended, done - sent_at);
            });
            return false;
        }
        Err(e) => {
            shard.record_failure(intended, &e);
            return e.kind == ErrorKind::Reset;
        }
    }
    if frames.close_seen {
        let _ = conn.write_all(&masked_frame(0x8)).await;
        return true;
    }
    loop {
        tokio::select! {
            () = sleep(spec.load.drip) => {
                if conn.write_all(&masked_frame(0x9)).await.is_err() {
                    return true;
                }
            }
            event = conn.read_some(|bytes| if bytes.is_empty() || frames.feed(bytes) {
                PeerEvent::Closed
            } else {
                PeerEvent::Sent { n: bytes.len(), status: None }
            }) => match event {
                Ok(PeerEvent::Sent { n, .. }) => shard.record(Instant::now(), |s| s.bytes_in += n as u64),
                Ok(PeerEvent::Closed) | Err(_) => {
                    // Answer a close frame with ours, as RFC 6455 §5.5.1 asks; best effort.
                    if frames.close_seen {
                        let _ = conn.write_all(&masked_frame(0x8)).await;
                    }
                    return true;
                }
            },
        }
    }
}

/// Reads the answer to the upgrade; returns its status and size once it is `101` with the
/// right `Sec-WebSocket-Accept`, or any other status. Frames right after the head go to `frames`.
async fn read_handshake(conn: &Connection, key: &str, frames: &mut FrameReader) -> Result<(u16, u64), TransportError> {
    let malformed = |detail: &str| TransportError { kind: ErrorKind::MalformedResponse, detail: detail.to_string() };
    let mut answer = Vec::new();
    loop {
        let closed = conn
            .read_some(|bytes| {
                answer.extend_from_slice(bytes);
                bytes.is_empty()
            })
            .await?;
        if closed {
            return Err(TransportError {
                kind: ErrorKind::Reset,
                detail: "closed before the WebSocket handshake answer".into(),
            });
        }
        let mut headers = [httparse::EMPTY_HEADER; 32];
        let mut response = httparse::Response::new(&mut headers);
        let head_len = match response.parse(&answer) {
            Ok(httparse::Status::Complete(n)) => n,
            Ok(httparse::Status::Partial) if answer.len() < MAX_HANDSHAKE => continue,
            Ok(httparse::Status::Partial) => return Err(malformed("WebSocket handshake answer too large")),
            Err(e) => return Err(malformed(&format!("WebSocket handshake answer: {e}"))),
        };
        let status = response.code.unwrap_or(0);
        if status != 101 {
            return Ok((status, head_len as u64));
        }
        let accept = response.headers.iter().find(|h| h.name.eq_ignore_ascii_case("sec-websocket-accept"));
        if accept.map(|h| h.value.trim_ascii()) != Some(expected_accept(key).as_bytes()) {
            return Err(malformed("101 without the right Sec-WebSocket-Accept"));
        }
        frames.feed(&answer[head_len..]);
        return Ok((101, head_len as u64));
    }
}

/// `Sec-WebSocket-Accept` for `key` (RFC 6455 §4.2.2).
fn expected_accept(key: &str) -> String {
    let mut sha1 = sha1_smol::Sha1::new();
    sha1.update(key.as_bytes());
    sha1.update(WS_GUID.as_bytes());
    BASE64.encode(sha1.digest().bytes())
}

/// An empty client frame with `opcode` (ping 0x9, close 0x8): FIN, masked as clients must be.
fn masked_frame(opcode: u8) -> [u8; 6] {
    let [a, b, c, d] = rand::random::<[u8; 4]>();
    [0x80 | opcode, 0x80, a, b, c, d]
}

/// Skips the server's frames (pongs, pings, data) byte by byte and notices a close frame;
/// keeps only the frame header being read, no payload.
#[derive(Default)]
struct FrameReader {
    header: [u8; 14],
    have: u8,
    payload_left: u64,
    close_seen: bool,
}

impl FrameReader {
    /// Consumes bytes; true once a close frame has begun.
    fn feed(&mut self, mut bytes: &[u8]) -> bool {
        while !bytes.is_empty() && !self.close_seen {
            if self.payload_left > 0 {
                let n = self.payload_left.min(bytes.len() as u64);
                self.payload_left -= n;
                bytes = &bytes[n as usize..];
                continue;
            }
            self.header[usize::from(self.have)] = bytes[0];
            self.have += 1;
            bytes = &bytes[1..];
            if self.have < 2 {
                continue;
            }
            let short_len = self.header[1] & 0x7f;
            let extended = match short_len {
                126 => 2,
                127 => 8,
                _ => 0,
            };
            let mask = if self.header[1] & 0x80 != 0 { 4 } else { 0 };
            let needed = 2 + extended + mask;
            if usize::from(self.have) < needed {
                continue;
            }
            self.payload_left = match extended {
                0 => u64::from(short_len),
                2 => u64::from(u16::from_be_bytes([self.header[2], self.header[3]])),
                _ => self.header[2..10].iter().fold(0u64, |n, b| n << 8 | u64::from(*b)),
            };
            self.close_seen = self.header[0] & 0x0f == 0x8;
            self.have = 0;
        }
        self.close_seen
    }
}

/// How many bytes of `request` come before its final empty line (the head minus one CRLF).
fn head_without_final_crlf(request: &[u8]) -> usize {
    request.windows(4).position(|w| w == b"\r\n\r\n").map_or(request.len(), |at| at + 2)
}

/// The upgrade request of ws mode, up to (not including) its key line and final CRLF.
fn ws_head(shard: &Shard) -> String {
    let target = &shard.plan.target;
    let mut head = format!(
        "GET {} HTTP/1.1\r\nHost: {}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n",
        target.path_and_query, target.host_header
    );
    for (name, value) in &shard.plan.request.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head
}

#[cfg(test)]
mod tests {
    use super::*;

    use std::io::{Read, Write};
    use std::net::{TcpListener, TcpStream};
    use std::sync::Arc;
    use std::sync::atomic::{AtomicU64, Ordering};

    use crate::engine::{RunControl, run};
    use crate::plan::{Load, Plan, RequestSpec, Stop, Target};

    /// A WebSocket server on a thread per connection: answers the upgrade (with a wrong
    /// accept when `bad_accept`), a pong per ping, then after two pings a close frame; counts
    /// the client's close frames.
    fn ws_server(bad_accept: bool) -> (std::net::SocketAddr, Arc<AtomicU64>) {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let closes = Arc::new(AtomicU64::new(0));
        let counted = closes.clone();
        std::thread::spawn(move || {
            for stream in listener.incoming().flatten() {
                let closes = counted.clone();
                std::thread::spawn(move || ws_connection(stream, bad_accept, &closes));
            }
        });
        (addr, closes)
    }

    fn ws_connection(mut stream: TcpStream, bad_accept: bool, closes: &AtomicU64) -> Option<()> {
        stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
        let mut request = Vec::new();
        let mut byte = [0u8; 1];
        while !request.ends_with(b"\r\n\r\n") {
            stream.read_exact(&mut byte).ok()?;
            request.push(byte[0]);
        }
        let text = String::from_utf8(request).ok()?;
        let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))?;
        let accept = if bad_accept { "bad".to_string() } else { expected_accept(key) };
        let answer = format!(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
        );
        stream.write_all(answer.as_bytes()).ok()?;
        for _ in 0..2 {
            let mut frame = [0u8; 6];
            stream.read_exact(&mut frame).ok()?;
            assert_eq!(&frame[..2], &[0x89, 0x80], "an empty masked ping");
            stream.write_all(&[0x8a, 0x00]).ok()?;
        }
        stream.write_all(&[0x88, 0x02, 0x03, 0xe8]).ok()?;
        let mut frame = [0u8; 6];
        stream.read_exact(&mut frame).ok()?;
        if frame[..2] == [0x88, 0x80] {
            closes.fetch_add(1, Ordering::SeqCst);
        }
        Some(())
    }

    fn ws_plan(addr: std::net::SocketAddr, connections: usize) -> Plan {
        Plan {
            target: Target::resolve(&format!("http://{addr}/ws")).unwrap(),
            request: RequestSpec { method: "GET".into(), headers: vec![("X-Test".into(), "1".into())], body: vec![] },
            load: Load::Hold(HoldLoad {
                connections,
                open_rate: 1000.0,
                mode: HoldMode::WebSocket,
                drip: Duration::from_millis(50),
                reopen: false,
            }),
            stop: Stop { duration: Some(Duration::from_millis(1500)), requests: None },
            threads: 1,
            timeout: Duration::from_secs(2),
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
            http2: None,
            auth: None,
        }
    }

    #[test]
    fn websockets_upgrade_ping_and_are_closed_by_the_target() {
        let (addr, closes) = ws_server(false);
        let outcome = run(&ws_plan(addr, 4), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.status_counts().collect::<Vec<_>>(), vec![(101, 4)]);
        assert_eq!(outcome.total.ok, 4);
        assert_eq!(outcome.total.closed_by_peer, 4);
        assert_eq!(closes.load(Ordering::SeqCst), 4, "each close frame is answered");
        assert_eq!(outcome.unfinished, 0);
    }

    #[test]
    fn a_wrong_websocket_accept_is_a_malformed_response() {
        let (addr, _) = ws_server(true);
        let outcome = run(&ws_plan(addr, 2), &RunControl::new(), |_| {}).unwrap();
        assert_eq!(outcome.total.errors.get(ErrorKind::MalformedResponse), 2);
        assert_eq!(outcome.total.closed_by_peer, 0);
    }

    #[test]
    fn accept_matches_the_rfc_example() {
        // RFC 6455 §1.3.
        assert_eq!(expected_accept("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    }

    #[test]
    fn frame_reader_skips_frames_and_sees_close() {
        let mut frames = FrameReader::default();
        // A pong with 3 bytes of payload, split across feeds, then a 200-byte binary frame.
        assert!(!frames.feed(&[0x8a, 0x03, b'a']));
        assert!(!frames.feed(b"bc"));
        let mut long = vec![0x82, 126, 0, 200];
        long.extend(std::iter::repeat_n(0u8, 200));
        assert!(!frames.feed(&long));
        assert_eq!(frames.payload_left, 0);
        assert!(frames.feed(&[0x88, 0x02, 0x03, 0xe8]));
    }

    #[test]
    fn slow_request_stops_before_the_final_crlf() {
        let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
        let head = &request[..head_without_final_crlf(request)];
        assert_eq!(head, b"GET / HTTP/1.1\r\nHost: a\r\n");
        assert_eq!(FILLER.len() % DRIP_BYTES, 0);
    }

    #[test]
    fn status_codes_are_read_from_answers() {
        assert_eq!(status_code(b"HTTP/1.1 408 Request Timeout\r\n"), Some(408));
        assert_eq!(status_code(b"HTTP/1.0 400"), Some(400));
        assert_eq!(status_code(b"garbage"), None);
        assert_eq!(status_code(b"HTTP/1.1 4"), None);
    }
}
