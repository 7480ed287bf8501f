//! HTTP/2 for the sink: h2c with prior knowledge (a plain connection that opens with the
//! HTTP/2 preface) and `h2` chosen by ALPN on `--tls`, served with the `h2` crate.
//!
//! `connection` reads the first bytes of every connection as usual; when they are the start of
//! the preface ([`is_preface`]) it hands the connection here with those bytes ([`serve`]). The
//! answers are the HTTP/1.1 ones: the configured status and body (shared, never copied),
//! `500` at the error rate, `503` beyond the capacity, after the configured delay; requests,
//! answers and bytes are counted in the same [`SinkStats`](crate::SinkStats) (one connection
//! however many streams). With `--echo`, normal answers describe the request as over HTTP/1.1
//! (`echo`: JSON body, `x-request-id`); with `--store`, they are the store's (`store`). With
//! `--record`, each request is written to the record file
//! as HTTP/1.1 ones are (method, path, header fields in HTTP/2's lower case, pseudo-headers
//! left out, body).
//!
//! The TLS side drives the connection's rustls session by hand on the tokio socket, as
//! `stream` does for HTTP/1.1 (the session was set up there, and its handshake is done by the
//! time the preface arrives).

use std::io::{self, Read, Write};
use std::pin::{Pin, pin};
use std::sync::Arc;
use std::task::{Context, Poll, ready};
use std::time::Duration;

use ::h2::server::{self, SendResponse};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, CONTENT_TYPE, HeaderValue};
use http::{Method, Response, StatusCode};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep_until};

use crate::connection::Shared;
use crate::echo::Echo;
use crate::record::Captured;
use crate::response::{Answer, ConnMode, Outcome};
use crate::stats::SinkStats;
use crate::store::StoreAnswer;
use crate::stream::{Stream, TlsStream};

/// What an HTTP/2 client sends first (RFC 9113 §3.4).
const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// The receive windows the sink announces: large, so request bodies never stall on them.
const STREAM_WINDOW: u32 = 16 << 20;
const CONNECTION_WINDOW: u32 = 64 << 20;
/// Concurrent streams a client may open on one connection.
const MAX_STREAMS: u32 = 1000;
/// Largest frame the sink accepts.
const MAX_FRAME: u32 = 256 << 10;
/// The header naming an echo answer's id (`--echo`).
const X_REQUEST_ID: http::HeaderName = http::HeaderName::from_static("x-request-id");

/// True when `first` (the first bytes of a connection) start the HTTP/2 preface: at least
/// `PRI`, which no HTTP/1.1 request starts with.
pub(crate) fn is_preface(first: &[u8]) -> bool {
    let n = first.len().min(PREFACE.len());
    n >= 3 && first[..n] == PREFACE[..n]
}

/// The answers of this sink in HTTP/2 form.
struct Answers {
    status: StatusCode,
    /// The configured body (empty for 204 and 304), shared with the HTTP/1.1 answers.
    body: Bytes,
    /// 204 and 304 carry no body and no `Content-Length`.
    bodyless: bool,
}

/// The configured body of a sink, owned through its `Shared`: no copy, however large.
struct SharedBody(Arc<Shared>);

impl AsRef<[u8]> for SharedBody {
    fn as_ref(&self) -> &[u8] {
        self.0.responses.bytes(normal_answer()).1
    }
}

fn normal_answer() -> Answer {
    Answer::Reply { outcome: Outcome::Normal, mode: ConnMode::Default, head_only: false }
}

impl Answers {
    fn new(shared: &Arc<Shared>) -> Self {
        let (head, _) = shared.responses.bytes(normal_answer());
        // The pre-built head starts `HTTP/1.1 NNN `; it is the one place the status is kept.
        let status = head
            .get(9..12)
            .and_then(|code| std::str::from_utf8(code).ok())
            .and_then(|code| code.parse::<u16>().ok())
            .and_then(|code| StatusCode::from_u16(code).ok())
            .unwrap_or(StatusCode::OK);
        let bodyless = matches!(status.as_u16(), 204 | 304);
        Answers { status, body: Bytes::from_owner(SharedBody(Arc::clone(shared))), bodyless }
    }

    /// Sends the answer of `outcome` on `respond`; a normal one describes the request when
    /// `echo` is given (`--echo`).
    fn send(
        &self,
        respond: &mut SendResponse<Bytes>,
        outcome: Outcome,
        head_only: bool,
        echo: Option<(&Echo, &Echoed)>,
    ) -> Result<(), ::h2::Error> {
        let mut response = Response::new(());
        let mut content_type = HeaderValue::from_static("text/plain");
        let (status, body) = match (outcome, echo) {
            (Outcome::Normal, Some((echo, request))) => {
                let (id, json) = echo.describe(&request.method, &request.target, request.body_bytes);
                response.headers_mut().insert(X_REQUEST_ID, HeaderValue::from(id));
                content_type = HeaderValue::from_static("application/json");
                (self.status, if self.bodyless { Bytes::new() } else { Bytes::from(json) })
            }
            (Outcome::Normal, None) => (self.status, self.body.clone()),
            (Outcome::Error, _) => (StatusCode::INTERNAL_SERVER_ERROR, Bytes::from_static(b"error\n")),
            (Outcome::Overloaded, _) => (StatusCode::SERVICE_UNAVAILABLE, Bytes::from_static(b"overloaded\n")),
        };
        *response.status_mut() = status;
        if !(outcome == Outcome::Normal && self.bodyless) {
            let headers = response.headers_mut();
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
            headers.insert(CONTENT_TYPE, content_type);
        }
        let end = head_only || body.is_empty() || (outcome == Outcome::Normal && self.bodyless);
        let mut stream = respond.send_response(response, end)?;
        if !end {
            // h2 holds what the client's window does not take yet (the body is shared, not copied).
            stream.send_data(body, true)?;
        }
        Ok(())
    }
}

/// What an echo answer (`--echo`) tells of an HTTP/2 request, what `--record` keeps of it, and
/// what `--store` writes.
struct Echoed {
    method: String,
    /// Path and query.
    target: String,
    body_bytes: u64,
    /// The request as recorded, when the sink records.
    captured: Option<Captured>,
    /// The body (at most 1 MiB), when the sink is a store.
    store_body: Option<Vec<u8>>,
}

impl Echoed {
    fn of<T>(request: &http::Request<T>, recording: bool, storing: bool) -> Echoed {
        let target = request.uri().path_and_query().map_or("/", |p| p.as_str()).to_string();
        let method = request.method().as_str().to_string();
        let captured = recording.then(|| Captured {
            method: method.clone(),
            target: target.clone(),
            headers: request
                .headers()
                .iter()
                .map(|(name, value)| {
                    (name.as_str().to_string(), String::from_utf8_lossy(value.as_bytes()).into_owned())
                })
                .collect(),
            ..Captured::default()
        });
        Echoed { method, target, body_bytes: 0, captured, store_body: storing.then(Vec::new) }
    }

    /// Applies the request to the store (`--store`), unless the sink refused it (`503` over
    /// capacity): the store's answer.
    fn store(&self, shared: &Shared, outcome: Outcome) -> Option<StoreAnswer> {
        let store = shared.store.as_ref()?;
        let body = self.store_body.as_deref()?;
        (outcome != Outcome::Overloaded).then(|| store.apply(&self.method, &self.target, body))
    }

    /// Hands the recorded request to the recorder, once.
    fn record(&mut self, shared: &Shared) {
        if let (Some(recorder), Some(captured)) = (&shared.recorder, self.captured.take()) {
            recorder.record(captured);
        }
    }
}

/// Sends the store's answer on `respond`.
fn send_stored(respond: &mut SendResponse<Bytes>, stored: StoreAnswer, head_only: bool) -> Result<(), ::h2::Error> {
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(stored.status).unwrap_or(StatusCode::OK);
    if stored.status != 204 {
        let headers = response.headers_mut();
        headers.insert(CONTENT_LENGTH, HeaderValue::from(stored.body.len()));
        headers.insert(CONTENT_TYPE, HeaderValue::from_static(stored.content_type));
    }
    let end = head_only || stored.body.is_empty();
    let mut stream = respond.send_response(response, end)?;
    if !end {
        stream.send_data(Bytes::from(stored.body), true)?;
    }
    Ok(())
}

/// Sends the answer of `outcome`: the store's when it has one for a normal answer, else the
/// configured (or echo) answer.
fn send_answer(
    shared: &Shared,
    answers: &Answers,
    respond: &mut SendResponse<Bytes>,
    outcome: Outcome,
    head_only: bool,
    echoed: Option<&Echoed>,
    stored: Option<StoreAnswer>,
) -> Result<(), ::h2::Error> {
    match stored {
        Some(stored) if outcome == Outcome::Normal => send_stored(respond, stored, head_only),
        _ => answers.send(respond, outcome, head_only, shared.echo.as_ref().zip(echoed)),
    }
}

/// Serves one HTTP/2 connection whose first bytes, `received`, were read already, until the
/// client closes it, it stays idle past the idle timeout, or the sink stops.
pub(crate) async fn serve(stream: Stream, received: Vec<u8>, shared: Arc<Shared>) {
    let io = Io { stream, received, at: 0, stats: Arc::clone(&shared.stats), close_notify_sent: false };
    let mut builder = server::Builder::new();
    builder
        .initial_window_size(STREAM_WINDOW)
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_concurrent_streams(MAX_STREAMS)
        .max_frame_size(MAX_FRAME);
    let mut connection = match tokio::time::timeout(shared.idle_timeout, builder.handshake::<_, Bytes>(io)).await {
        Ok(Ok(connection)) => connection,
        _ => return,
    };
    let answers = Arc::new(Answers::new(&shared));
    // Answers held for the delay, and requests whose bodies are still arriving.
    let mut held = JoinSet::new();
    let mut idle = pin!(sleep_until(after(Instant::now(), shared.idle_timeout)));
    let mut closing = false;
    loop {
        tokio::select! {
            biased;
            accepted = connection.accept() => match accepted {
                Some(Ok((request, respond))) => {
                    let head_only = request.method() == Method::HEAD;
                    let recording = shared.recorder.is_some();
                    let storing = shared.store.is_some();
                    let echoed = (shared.echo.is_some() || recording || storing)
                        .then(|| Echoed::of(&request, recording, storing));
                    let body = request.into_body();
                    if body.is_end_stream() {
                        shared.stats.add_requests(1);
                        answer(&shared, &answers, &mut held, respond, head_only, echoed);
                    } else {
                        let (shared, answers) = (Arc::clone(&shared), Arc::clone(&answers));
                        held.spawn(read_body_then_answer(shared, answers, body, respond, echoed));
                    }
                    idle.as_mut().reset(after(Instant::now(), shared.idle_timeout));
                }
                // The client closed the connection, broke the protocol, or said GOAWAY.
                Some(Err(_)) | None => break,
            },
            Some(_) = held.join_next(), if !held.is_empty() => {}
            () = &mut idle, if !closing => {
                if connection.has_streams() || !held.is_empty() {
                    idle.as_mut().reset(after(Instant::now(), shared.idle_timeout));
                } else {
                    // GOAWAY; `accept` ends once the client has seen it.
                    connection.graceful_shutdown();
                    closing = true;
                }
            }
        }
    }
    // Answers still held belong to a client that left.
    shared.stats.add_abandoned(held.len() as u64);
}

/// Answers a complete request now, or after the delay in a task of `held`.
fn answer(
    shared: &Arc<Shared>,
    answers: &Arc<Answers>,
    held: &mut JoinSet<()>,
    mut respond: SendResponse<Bytes>,
    head_only: bool,
    mut echoed: Option<Echoed>,
) {
    if let Some(echoed) = &mut echoed {
        echoed.record(shared);
    }
    let outcome = outcome(shared);
    // The store writes now, before the delay.
    let stored = echoed.as_ref().and_then(|e| e.store(shared, outcome));
    if shared.delay.is_zero() {
        if send_answer(shared, answers, &mut respond, outcome, head_only, echoed.as_ref(), stored).is_ok() {
            shared.stats.add_responses(1);
        }
        return;
    }
    let due = after(Instant::now(), shared.delay.sample());
    let (shared, answers) = (Arc::clone(shared), Arc::clone(answers));
    held.spawn(async move {
        sleep_until(due).await;
        if send_answer(&shared, &answers, &mut respond, outcome, head_only, echoed.as_ref(), stored).is_ok() {
            shared.stats.add_responses(1);
        }
    });
}

/// Reads a request body to its end (giving the window back as it goes), then answers.
async fn read_body_then_answer(
    shared: Arc<Shared>,
    answers: Arc<Answers>,
    mut body: ::h2::RecvStream,
    mut respond: SendResponse<Bytes>,
    mut echoed: Option<Echoed>,
) {
    while let Some(chunk) = body.data().await {
        let Ok(chunk) = chunk else { return };
        let _ = body.flow_control().release_capacity(chunk.len());
        if let Some(echoed) = &mut echoed {
            echoed.body_bytes += chunk.len() as u64;
            if let Some(captured) = &mut echoed.captured {
                captured.push_body(&chunk);
            }
            if let Some(body) = &mut echoed.store_body {
                let room = crate::record::MAX_RECORDED_BODY.saturating_sub(body.len());
                body.extend_from_slice(&chunk[..chunk.len().min(room)]);
            }
        }
    }
    shared.stats.add_requests(1);
    if let Some(echoed) = &mut echoed {
        echoed.record(&shared);
    }
    let outcome = outcome(&shared);
    let stored = echoed.as_ref().and_then(|e| e.store(&shared, outcome));
    if !shared.delay.is_zero() {
        sleep_until(after(Instant::now(), shared.delay.sample())).await;
    }
    if send_answer(&shared, &answers, &mut respond, outcome, false, echoed.as_ref(), stored).is_ok() {
        shared.stats.add_responses(1);
    }
}

/// The normal answer, a drawn `500`, or `503` beyond the capacity (as for HTTP/1.1).
fn outcome(shared: &Shared) -> Outcome {
    let overloaded =
        shared.capacity.as_ref().is_some_and(|bucket| bucket.lock().map(|mut b| !b.admit()).unwrap_or(false));
    if overloaded {
        Outcome::Overloaded
    } else if shared.error_rate > 0.0 && (shared.error_rate >= 1.0 || rand::random::<f64>() < shared.error_rate) {
        Outcome::Error
    } else {
        Outcome::Normal
    }
}

/// `now + delay`, saturating far in the future instead of overflowing.
fn after(now: Instant, delay: Duration) -> Instant {
    now.checked_add(delay).or_else(|| now.checked_add(Duration::from_secs(30 * 365 * 86_400))).unwrap_or(now)
}

/// The connection's bytes for h2: first the ones `connection` read already, then the socket
/// (plain, or through the TLS session); every byte counted in the sink's stats.
struct Io {
    stream: Stream,
    received: Vec<u8>,
    at: usize,
    stats: Arc<SinkStats>,
    close_notify_sent: bool,
}

impl AsyncRead for Io {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if this.at < this.received.len() {
            // Counted already when `connection` read them.
            let n = (this.received.len() - this.at).min(buf.remaining());
            buf.put_slice(&this.received[this.at..this.at + n]);
            this.at += n;
            if this.at == this.received.len() {
                this.received = Vec::new();
                this.at = 0;
            }
            return Poll::Ready(Ok(()));
        }
        let before = buf.filled().len();
        let result = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            Stream::Tls(tls) => poll_tls_read(tls, cx, buf),
        };
        this.stats.add_bytes_in(buf.filled().len() - before);
        result
    }
}

impl AsyncWrite for Io {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            Stream::Tls(tls) => poll_tls_write(tls, cx, buf),
        };
        if let Poll::Ready(Ok(n)) = result {
            this.stats.add_bytes_out(n);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_write_vectored(cx, bufs),
            Stream::Tls(tls) => {
                let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
                poll_tls_write(tls, cx, first)
            }
        };
        if let Poll::Ready(Ok(n)) = result {
            this.stats.add_bytes_out(n);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        matches!(self.stream, Stream::Plain(_))
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            Stream::Tls(tls) => poll_tls_flush(tls, cx),
        }
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = &mut *self;
        match &mut this.stream {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => {
                if !this.close_notify_sent {
                    tls.conn.send_close_notify();
                    this.close_notify_sent = true;
                }
                ready!(poll_tls_flush(tls, cx))?;
                Pin::new(&mut tls.tcp).poll_shutdown(cx)
            }
        }
    }
}

/// Plaintext from the TLS session, reading (and decrypting) from the socket when it has none.
fn poll_tls_read(tls: &mut TlsStream, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
    loop {
        match tls.conn.reader().read(buf.initialize_unfilled()) {
            Ok(n) => {
                buf.advance(n);
                return Poll::Ready(Ok(()));
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
            // The client closed without close_notify: the end all the same.
            Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(())),
            Err(e) => return Poll::Ready(Err(e)),
        }
        match tls.conn.read_tls(&mut SocketReader(&tls.tcp)) {
            Ok(_) => {
                if let Err(error) = tls.conn.process_new_packets() {
                    // Send the alert rustls queued for it, then give up the connection.
                    let _ = poll_tls_flush(tls, cx);
                    return Poll::Ready(Err(io::Error::new(io::ErrorKind::InvalidData, error)));
                }
                // Key updates and tickets may want an answer; it leaves with the next write.
            }
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready!(tls.tcp.poll_read_ready(cx))?;
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
}

/// Encrypts what the session takes of `buf` and writes out what the socket takes.
fn poll_tls_write(tls: &mut TlsStream, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
    let mut taken = tls.conn.writer().write(buf)?;
    if taken == 0 && !buf.is_empty() {
        // The session's buffer is full: make room first.
        ready!(poll_tls_flush(tls, cx))?;
        taken = tls.conn.writer().write(buf)?;
    }
    // Records the socket does not take now leave on the flush h2 asks for after its writes.
    if let Poll::Ready(Err(e)) = poll_tls_flush(tls, cx) {
        return Poll::Ready(Err(e));
    }
    Poll::Ready(Ok(taken))
}

/// Writes the session's pending records until none are left or the socket is full.
fn poll_tls_flush(tls: &mut TlsStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    while tls.conn.wants_write() {
        match tls.conn.write_tls(&mut SocketWriter(&tls.tcp)) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                ready!(tls.tcp.poll_write_ready(cx))?;
            }
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

/// Reads ciphertext from the socket without waiting.
struct SocketReader<'a>(&'a TcpStream);

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.0.try_read(buf)
    }
}

/// Writes ciphertext to the socket without waiting.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[io::IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use rustls::pki_types::pem::PemObject as _;

    use super::*;
    use crate::{SinkConfig, SinkTls};

    #[test]
    fn the_preface_is_told_from_http1() {
        assert!(is_preface(PREFACE));
        assert!(is_preface(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x12\x04"));
        assert!(is_preface(b"PRI * HT"));
        assert!(!is_preface(b"GET / HTTP/1.1\r\n\r\n"));
        assert!(!is_preface(b"PR"));
        assert!(!is_preface(b"PRIX"));
    }

    /// Sends `count` GETs over one h2 connection on `io`; returns the statuses and bodies.
    async fn get_over<T>(io: T, authority: &str, count: usize) -> Vec<(u16, Vec<u8>)>
    where
        T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, connection) = ::h2::client::handshake(io).await.unwrap();
        tokio::spawn(async move {
            let _ = connection.await;
        });
        let mut answers = Vec::new();
        for _ in 0..count {
            let mut sender = sender.clone().ready().await.unwrap();
            let request = http::Request::builder().uri(format!("https://{authority}/")).body(()).unwrap();
            let (response, _) = sender.send_request(request, true).unwrap();
            let response = response.await.unwrap();
            let status = response.status().as_u16();
            let mut body = response.into_body();
            let mut bytes = Vec::new();
            while let Some(chunk) = body.data().await {
                let chunk = chunk.unwrap();
                let _ = body.flow_control().release_capacity(chunk.len());
                bytes.extend_from_slice(&chunk);
            }
            answers.push((status, bytes));
        }
        answers
    }

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
    }

    #[test]
    fn h2c_with_prior_knowledge_gets_the_configured_answers() {
        let config = SinkConfig { body_size: 5, ..SinkConfig::default() };
        let sink = crate::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let addr = sink.local_addr();
        let answers = runtime().block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            get_over(tcp, &addr.to_string(), 3).await
        });
        assert_eq!(answers, vec![(200, b"ok\nok".to_vec()); 3]);
        let stats = sink.stats().snapshot();
        assert_eq!((stats.connections, stats.requests, stats.responses), (1, 3, 3), "{stats:?}");
        assert!(stats.bytes_in > PREFACE.len() as u64 && stats.bytes_out > 0, "{stats:?}");
    }

    #[test]
    fn echo_answers_describe_h2_requests() {
        let config = SinkConfig { echo: true, ..SinkConfig::default() };
        let sink = crate::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let addr = sink.local_addr();
        let answers = runtime().block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            get_over(tcp, &addr.to_string(), 2).await
        });
        for (n, (status, body)) in answers.iter().enumerate() {
            let json: serde_json::Value = serde_json::from_slice(body).unwrap();
            let expected = serde_json::json!({"id": n + 1, "method": "GET", "path": "/", "query": "", "body_bytes": 0});
            assert_eq!((*status, json), (200, expected));
        }
    }

    #[test]
    fn errors_and_http1_still_work_beside_h2c() {
        let config = SinkConfig { error_rate: 1.0, ..SinkConfig::default() };
        let sink = crate::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let addr = sink.local_addr();
        let answers = runtime().block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            get_over(tcp, &addr.to_string(), 1).await
        });
        assert_eq!(answers, vec![(500, b"error\n".to_vec())]);
        let mut plain = std::net::TcpStream::connect(addr).unwrap();
        plain.write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n").unwrap();
        let mut text = String::new();
        plain.read_to_string(&mut text).unwrap();
        assert!(text.starts_with("HTTP/1.1 500"), "{text}");
    }

    #[test]
    fn tls_with_alpn_h2_gets_the_configured_answers() {
        let config = SinkConfig { tls: Some(SinkTls::SelfSigned), ..SinkConfig::default() };
        let sink = crate::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
        let addr = sink.local_addr();
        let mut roots = rustls::RootCertStore::empty();
        let ca = sink.tls_ca_pem().unwrap().to_string();
        for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca.as_bytes()) {
            roots.add(cert.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut client = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        client.alpn_protocols = vec![b"h2".to_vec()];
        let answers = runtime().block_on(async {
            let tcp = TcpStream::connect(addr).await.unwrap();
            let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
            let tls = TlsClientStream::connect(Arc::new(client), name, tcp).await;
            get_over(tls, &format!("localhost:{}", addr.port()), 2).await
        });
        assert_eq!(answers, vec![(200, b"ok\n".to_vec()); 2]);
        let stats = sink.stats().snapshot();
        assert_eq!((stats.connections, stats.requests, stats.tls_handshakes), (1, 2, 1), "{stats:?}");
    }

    /// A minimal TLS client stream for the test (the sink has no tokio-rustls), driving a
    /// rustls `ClientConnection` the way `Io` drives the server side.
    struct TlsClientStream {
        tcp: TcpStream,
        conn: rustls::ClientConnection,
    }

    impl TlsClientStream {
        async fn connect(
            config: Arc<rustls::ClientConfig>,
            name: rustls::pki_types::ServerName<'static>,
            tcp: TcpStream,
        ) -> Self {
            let mut conn = rustls::ClientConnection::new(config, name).unwrap();
            while conn.is_handshaking() {
                while conn.wants_write() {
                    tcp.writable().await.unwrap();
                    let _ = conn.write_tls(&mut SocketWriter(&tcp));
                }
                if conn.is_handshaking() && conn.wants_read() {
                    tcp.readable().await.unwrap();
                    match conn.read_tls(&mut SocketReader(&tcp)) {
                        Ok(0) => panic!("closed during the handshake"),
                        Ok(_) => {
                            conn.process_new_packets().unwrap();
                        }
                        Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                        Err(e) => panic!("{e}"),
                    }
                }
            }
            assert_eq!(conn.alpn_protocol(), Some(&b"h2"[..]));
            TlsClientStream { tcp, conn }
        }
    }

    impl AsyncRead for TlsClientStream {
        fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
            let this = &mut *self;
            loop {
                match this.conn.reader().read(buf.initialize_unfilled()) {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Poll::Ready(Err(e)),
                }
                match this.conn.read_tls(&mut SocketReader(&this.tcp)) {
                    Ok(_) => {
                        this.conn.process_new_packets().map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        ready!(this.tcp.poll_read_ready(cx))?;
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
        }
    }

    impl AsyncWrite for TlsClientStream {
        fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
            let n = self.conn.writer().write(buf)?;
            ready!(self.as_mut().poll_flush(cx))?;
            Poll::Ready(Ok(n))
        }

        fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            let this = &mut *self;
            while this.conn.wants_write() {
                match this.conn.write_tls(&mut SocketWriter(&this.tcp)) {
                    Ok(_) => {}
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                        ready!(this.tcp.poll_write_ready(cx))?;
                    }
                    Err(e) => return Poll::Ready(Err(e)),
                }
            }
            Poll::Ready(Ok(()))
        }

        fn poll_shutdown(self: Pin<&mut Self>, _cx: &mut Context<'_>) -> Poll<io::Result<()>> {
            Poll::Ready(Ok(()))
        }
    }
}
