//! One WebSocket session ([`WsSession`]): connect and upgrade, send, expect, idle, close.

use std::collections::VecDeque;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role};
use tokio_tungstenite::tungstenite::{self, Message};

use pummel_results::error_kind::ErrorKind;

use super::handshake;
use super::{CLOSE_WAIT, MAX_KEPT_MESSAGES, WsOpened, WsTarget, small_config};
use crate::dial::{Alpn, Stream, TlsFor, TransportError};

/// An open WebSocket session of one virtual user.
///
/// One pointer wide: everything lives in one box, so the executor's per-user task stays small
/// whether or not it holds a session. The futures of its methods only borrow it, and
/// [`idle`](Self::idle) and [`expect`](Self::expect) lose nothing when they are dropped: a
/// message is either still in tungstenite's buffer or already kept by the session.
#[derive(Debug)]
pub struct WsSession {
    inner: Box<Inner>,
}

#[derive(Debug)]
struct Inner {
    ws: WebSocketStream<Stream>,
    /// Data messages received but not yet taken by an `expect`, oldest first (at most
    /// [`MAX_KEPT_MESSAGES`]). Copies, so that they never pin tungstenite's read buffer.
    kept: VecDeque<Box<str>>,
    /// Set once the session is over (closed by either side, or broken): why.
    ended: Option<String>,
}

/// What one read from the peer brought.
enum Incoming {
    /// A text message, or a binary one that is valid UTF-8.
    Data(Box<str>),
    /// A ping, pong, or binary message that is not text: nothing for a flow.
    Nothing,
}

impl WsSession {
    /// Connects to `target` (from the local address `source`, if given), runs the TLS
    /// handshake for `wss://`, and upgrades with `headers` added to the request (a header that
    /// the upgrade itself sets, such as `Host` or `Sec-WebSocket-Protocol`, is replaced; others
    /// are added). Each of the three steps has `timeout`.
    pub async fn connect(
        target: &WsTarget,
        headers: &[(String, String)],
        source: Option<IpAddr>,
        timeout: Duration,
    ) -> Result<(WsSession, WsOpened), TransportError> {
        // Boxed: the handshake's state is large and short-lived; the caller's task keeps the
        // size of a pointer for it.
        Box::pin(connect(target, headers, source, timeout)).await
    }

    /// Upgrades `stream`, a connection already open to `target`'s address (plain or TLS),
    /// with `headers` added to the request; the upgrade has `timeout`. Returns the session and
    /// how long the upgrade took.
    pub async fn upgrade(
        stream: Stream,
        target: &WsTarget,
        headers: &[(String, String)],
        timeout: Duration,
    ) -> Result<(WsSession, Duration), TransportError> {
        Box::pin(upgrade(stream, target, headers, timeout)).await
    }

    /// Sends a ping (a held session's keep-alive).
    pub async fn ping(&mut self) -> Result<(), TransportError> {
        let inner = &mut *self.inner;
        inner.check_open()?;
        let sent = inner.ws.send(Message::Ping(Default::default())).await;
        sent.map_err(|e| inner.broken(e))
    }

    /// Sends one text message.
    pub async fn send_text(&mut self, text: &str) -> Result<(), TransportError> {
        let inner = &mut *self.inner;
        inner.check_open()?;
        let sent = inner.ws.send(Message::text(text)).await;
        sent.map_err(|e| inner.broken(e))
    }

    /// Waits for the first text message for which `matches` is true, answering pings;
    /// Err(WsExpectTimeout) after `timeout`, Err(WsClosed) when the session ends first.
    ///
    /// The kept messages (received while idle, or skipped by an earlier `expect`)
    /// are looked at first, oldest first; then new ones as they arrive. A binary message that
    /// is valid UTF-8 counts as text. Non-matching messages are not lost but kept (the most
    /// recent [`MAX_KEPT_MESSAGES`]), so several requests can be in flight and their replies
    /// taken in any order (JSON-RPC `id` matching). Cancel-safe.
    pub async fn expect(
        &mut self,
        matches: &mut dyn FnMut(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, TransportError> {
        let inner = &mut *self.inner;
        if let Some(at) = inner.kept.iter().position(|message| matches(message)) {
            let message = inner.kept.remove(at).unwrap_or_default();
            return Ok(message.into());
        }
        inner.check_open()?;
        let wait = async {
            loop {
                match inner.next().await? {
                    Incoming::Data(message) if matches(&message) => return Ok(String::from(message)),
                    Incoming::Data(message) => inner.keep(message),
                    Incoming::Nothing => {}
                }
            }
        };
        match tokio::time::timeout(timeout, wait).await {
            Ok(result) => result,
            Err(_) => Err(TransportError::new(
                ErrorKind::WsExpectTimeout,
                format!("no matching message within {}", pummel_results::duration::format_duration(timeout)),
            )),
        }
    }

    /// Keeps the session alive while the user thinks: answers pings, keeps the most recent
    /// [`MAX_KEPT_MESSAGES`] data messages for a later `expect`, and returns only when the
    /// session breaks or the peer closes (a `WsClosed` error). Cancel-safe: race it against a
    /// sleep; dropping it loses nothing already received.
    pub async fn idle(&mut self) -> TransportError {
        let inner = &mut *self.inner;
        if let Err(e) = inner.check_open() {
            return e;
        }
        loop {
            match inner.next().await {
                Ok(Incoming::Data(message)) => inner.keep(message),
                Ok(Incoming::Nothing) => {}
                Err(e) => return e,
            }
        }
    }

    /// Sends a close frame with `code` and `reason`, then waits (at most [`CLOSE_WAIT`]) for
    /// the peer to answer it, so that the peer closes the TCP connection first. Err(WsClosed)
    /// when the session had already ended.
    pub async fn close(&mut self, code: u16, reason: &str) -> Result<(), TransportError> {
        let inner = &mut *self.inner;
        inner.check_open()?;
        let frame = CloseFrame { code: CloseCode::from(code), reason: reason.into() };
        let sent = inner.ws.close(Some(frame)).await;
        sent.map_err(|e| inner.broken(e))?;
        let _ = tokio::time::timeout(CLOSE_WAIT, async {
            // The peer's close frame, then the end of the stream (or an error): done either way.
            while let Some(Ok(_)) = inner.ws.next().await {}
        })
        .await;
        inner.ended = Some("closed by this side".into());
        Ok(())
    }

    /// True once the session has ended (closed by either side, or broken).
    pub fn is_ended(&self) -> bool {
        self.inner.ended.is_some()
    }

    /// How many received messages are kept for a later `expect`.
    pub fn kept_messages(&self) -> usize {
        self.inner.kept.len()
    }
}

impl Inner {
    fn check_open(&self) -> Result<(), TransportError> {
        match &self.ended {
            Some(why) => Err(TransportError::ws_closed(format!("the session has ended ({why})"))),
            None => Ok(()),
        }
    }

    /// Reads the next message (answering pings on the way). A close from the peer, the end of
    /// the stream or a broken connection ends the session: Err(WsClosed).
    async fn next(&mut self) -> Result<Incoming, TransportError> {
        match self.ws.next().await {
            Some(Ok(Message::Text(text))) => Ok(Incoming::Data(Box::from(text.as_str()))),
            Some(Ok(Message::Binary(bytes))) => match std::str::from_utf8(&bytes) {
                Ok(text) => Ok(Incoming::Data(Box::from(text))),
                Err(_) => Ok(Incoming::Nothing),
            },
            Some(Ok(Message::Ping(_) | Message::Pong(_) | Message::Frame(_))) => Ok(Incoming::Nothing),
            Some(Ok(Message::Close(frame))) => {
                let why = match frame {
                    Some(frame) => {
                        format!("closed by the peer (code {}, {:?})", u16::from(frame.code), frame.reason.as_str())
                    }
                    None => "closed by the peer".to_string(),
                };
                // tungstenite queued the answering close frame (RFC 6455 §5.5.1); send it now,
                // without waiting long for a peer that no longer reads.
                let _ = tokio::time::timeout(CLOSE_WAIT, self.ws.flush()).await;
                self.ended = Some(why.clone());
                Err(TransportError::ws_closed(why))
            }
            None => {
                let why = "closed by the peer (end of stream)".to_string();
                self.ended = Some(why.clone());
                Err(TransportError::ws_closed(why))
            }
            Some(Err(e)) => Err(self.broken(e)),
        }
    }

    /// Ends the session after a tungstenite error; the error to report.
    fn broken(&mut self, error: tungstenite::Error) -> TransportError {
        let why = match error {
            tungstenite::Error::ConnectionClosed | tungstenite::Error::AlreadyClosed => "closed".to_string(),
            tungstenite::Error::Io(e) => format!("broken: {e}"),
            other => format!("broken: {other}"),
        };
        self.ended = Some(why.clone());
        TransportError::ws_closed(why)
    }

    fn keep(&mut self, message: Box<str>) {
        if self.kept.len() >= MAX_KEPT_MESSAGES {
            self.kept.pop_front();
        }
        self.kept.push_back(message);
    }
}

async fn connect(
    target: &WsTarget,
    headers: &[(String, String)],
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<(WsSession, WsOpened), TransportError> {
    let tls = target.tls.as_ref().map(|client| TlsFor { client, alpn: Alpn::Http1 });
    let (stream, opened) = crate::dial::open(target.addr, source, timeout, tls).await?;
    let (session, handshake) = upgrade(stream, target, headers, timeout).await?;
    Ok((session, WsOpened { opened, handshake }))
}

async fn upgrade(
    mut io: Stream,
    target: &WsTarget,
    headers: &[(String, String)],
    timeout: Duration,
) -> Result<(WsSession, Duration), TransportError> {
    let (request, key) = handshake::request(target, headers)?;
    let started = Instant::now();
    let upgraded = tokio::time::timeout(timeout, handshake::upgrade(&mut io, &request, &key)).await;
    let rest = match upgraded {
        Err(_) => return Err(TransportError::timeout(timeout)),
        Ok(result) => result?,
    };
    let handshake = started.elapsed();
    let ws = WebSocketStream::from_partially_read(io, rest, Role::Client, Some(small_config())).await;
    Ok((WsSession { inner: Box::new(Inner { ws, kept: VecDeque::new(), ended: None }) }, handshake))
}

#[cfg(test)]
mod tests;
