//! HTTP/2 on the `h2` crate, over the same `dial::Stream` as every protocol (prior knowledge,
//! h2c, for `http://`; TLS with ALPN `h2` for `https://`).
//!
//! Users share connections ([`FlowPool`], `pool.rs`): a request takes a free stream slot of an
//! open connection, or waits in line for one (the wait counts in its latency); a connection is
//! opened only when every slot of every open one is busy and the pool's bound allows. A quick
//! `run --http2 -c C --streams S` is a scenario of C × S users in such a pool, so exactly C
//! connections carry S streams each; an open-model run's arrivals fill the streams of one
//! connection before a second one opens.
//!
//! A request's service time runs from the moment its stream opened; its latency, as
//! everywhere, from when it was due. Each connection counts its bytes (frames, before TLS) as
//! they pass (`counted.rs`).
//!
//! Flow control: the client announces a 16 MiB stream window and a 64 MiB connection window, so
//! a large answer is never throttled by the generator, and body bytes are handed back to the
//! window as they are read. Errors are classified by `dial::failure` (`RST_STREAM` is
//! `stream_reset`, `GOAWAY` is `goaway`, a request a `GOAWAY` says was not processed goes out
//! once more on another connection).

mod counted;
mod pool;

use std::time::Duration;

use ::h2::client::{self, SendRequest};
use bytes::Bytes;
use http::header::{CONTENT_LENGTH, HeaderName, HeaderValue, USER_AGENT};
use http::{HeaderMap, Method, Request, Uri};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant;

pub use self::pool::FlowPool;
use pummel_results::error_kind::ErrorKind;

use crate::dial::TransportError;
use crate::flow::body_bytes::BodyBytes;

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

/// A request in HTTP/2 form (pseudo-headers from the URL, no connection-specific fields):
/// built once for a request that never changes, per request otherwise.
pub struct H2Request {
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Option<BodyBytes>,
    /// The body's pieces as h2 sends them, wrapped once with the request: a request built
    /// once is sent many times without wrapping its body again.
    frames: Frames,
}

/// A body's pieces as `Bytes` (sharing the body's bytes, not copying them).
enum Frames {
    /// No body.
    None,
    /// One piece, the usual body.
    One(Bytes),
    /// Several (a multipart form's fields and shared files).
    Pieces(Vec<Bytes>),
}

impl Frames {
    fn of(body: Option<&BodyBytes>) -> Frames {
        match body.map(BodyBytes::pieces) {
            None => Frames::None,
            Some([one]) => Frames::One(Bytes::from_owner(one.clone())),
            Some(pieces) => Frames::Pieces(pieces.iter().map(|p| Bytes::from_owner(p.clone())).collect()),
        }
    }

    fn as_slice(&self) -> &[Bytes] {
        match self {
            Frames::None => &[],
            Frames::One(bytes) => std::slice::from_ref(bytes),
            Frames::Pieces(pieces) => pieces,
        }
    }
}

impl H2Request {
    /// Its path and query.
    pub fn path(&self) -> &str {
        self.uri.path_and_query().map_or("/", |p| p.as_str())
    }

    /// Its body.
    pub fn body(&self) -> Option<&BodyBytes> {
        self.body.as_ref()
    }

    /// The request in HTTP/2 form; an error names the part that does not fit. Header names
    /// are lowercased, fields HTTP/2 forbids dropped, `user-agent` added when missing and
    /// `content-length` set for a body.
    pub fn new<'a>(
        method: &str,
        uri: Uri,
        fields: impl IntoIterator<Item = (&'a str, &'a str)>,
        body: Option<BodyBytes>,
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
        let body = body.filter(|b| !b.is_empty());
        if let Some(body) = &body {
            headers.insert(CONTENT_LENGTH, HeaderValue::from(body.len()));
        }
        let frames = Frames::of(body.as_ref());
        Ok(H2Request { method, uri, headers, body, frames })
    }

    fn request(&self) -> Request<()> {
        let mut request = Request::new(());
        *request.method_mut() = self.method.clone();
        *request.uri_mut() = self.uri.clone();
        *request.headers_mut() = self.headers.clone();
        request
    }
}

/// What of a response is kept for checks and extraction.
#[derive(Debug, Clone, Copy)]
pub struct Capture {
    /// Keep the header fields.
    pub headers: bool,
    /// Keep up to this many body bytes.
    pub body_limit: usize,
}

/// The parts of a response kept as [`Capture`] asked.
#[derive(Debug, Default)]
pub struct Kept {
    /// The header fields; empty unless asked for.
    pub headers: HeaderMap,
    /// The first bytes of the body; empty unless asked for.
    pub body: Vec<u8>,
}

impl Kept {
    /// The header fields as `(name, value)` pairs, as [`crate::inspect::ResponseView`] takes them.
    pub fn header_pairs(&self) -> Vec<(&[u8], &[u8])> {
        self.headers.iter().map(|(name, value)| (name.as_str().as_bytes(), value.as_bytes())).collect()
    }
}

/// A complete response: its status, when its stream opened and when its end arrived.
#[derive(Debug, Clone, Copy)]
pub struct Answered {
    /// The status code.
    pub status: u16,
    /// When the stream opened (service time runs from here).
    pub sent_at: Instant,
    /// When the end of the response arrived.
    pub done: Instant,
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

/// One request's exchange as [`attempt`] makes it.
#[derive(Clone, Copy)]
struct Ask<'a> {
    request: &'a H2Request,
    /// What of the answer to keep.
    capture: Capture,
    /// True when a `GOAWAY` already sent it back once.
    retried: bool,
    /// The request timeout.
    timeout: Duration,
}

/// Sends `request` on `sender` within `timeout` and reads its answer, keeping what `capture`
/// asks for in `kept`. Says what the exchange left the connection as; with [`After::Retry`] (a
/// first `GOAWAY` refusal, unless `retried`) the request was neither answered nor failed.
/// `on_sent` learns when the request's stream opened (its first frame went out).
async fn attempt(
    sender: &mut SendRequest<Bytes>,
    closed: bool,
    ask: &Ask<'_>,
    kept: &mut Kept,
    on_sent: &mut dyn FnMut(Instant),
) -> (After, Result<Answered, TransportError>) {
    let Ask { request, capture, retried, timeout } = *ask;
    let result = tokio::time::timeout(timeout, exchange(sender, request, capture, kept, on_sent)).await;
    let done = Instant::now();
    match result {
        Ok(Ok((status, sent_at))) => (After::Usable, Ok(Answered { status, sent_at, done })),
        Ok(Err(e)) if e.kind == ErrorKind::GoAway && !retried => (After::Retry, Err(e)),
        Ok(Err(e)) => {
            let gone = matches!(e.kind, ErrorKind::GoAway | ErrorKind::Reset) || closed;
            (if gone { After::Gone } else { After::Usable }, Err(e))
        }
        // Dropping the exchange resets the stream (RST_STREAM CANCEL); the connection stays.
        Err(_elapsed) => (if closed { After::Gone } else { After::Usable }, Err(TransportError::timeout(timeout))),
    }
}

/// Waits until the connection takes another stream, sends the request and reads the whole
/// answer (keeping what `capture` asks for); returns its status and when the stream opened.
async fn exchange(
    sender: &mut SendRequest<Bytes>,
    request: &H2Request,
    capture: Capture,
    kept: &mut Kept,
    on_sent: &mut dyn FnMut(Instant),
) -> Result<(u16, Instant), TransportError> {
    std::future::poll_fn(|cx| sender.poll_ready(cx)).await.map_err(TransportError::h2)?;
    let sent_at = Instant::now();
    on_sent(sent_at);
    let (response, mut outgoing) =
        sender.send_request(request.request(), request.body.is_none()).map_err(TransportError::h2)?;
    // h2 buffers what the window does not take yet and sends it as the window opens. The
    // pieces' bytes are shared with the request, not copied.
    let frames = request.frames.as_slice();
    for (index, frame) in frames.iter().enumerate() {
        outgoing.send_data(frame.clone(), index + 1 == frames.len()).map_err(TransportError::h2)?;
    }
    let (head, mut incoming) = response.await.map_err(TransportError::h2)?.into_parts();
    if capture.headers {
        kept.headers = head.headers;
    }
    while let Some(chunk) = incoming.data().await {
        let chunk = chunk.map_err(TransportError::h2)?;
        let _ = incoming.flow_control().release_capacity(chunk.len());
        let room = capture.body_limit.saturating_sub(kept.body.len());
        if room > 0 {
            kept.body.extend_from_slice(&chunk[..chunk.len().min(room)]);
        }
    }
    if !incoming.is_end_stream() {
        incoming.trailers().await.map_err(TransportError::h2)?;
    }
    Ok((head.status.as_u16(), sent_at))
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
        Ok(result) => result.map_err(TransportError::h2),
    }
}

#[cfg(test)]
mod tests;
