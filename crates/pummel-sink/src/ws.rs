//! WebSocket echo: a request with `Upgrade: websocket` and a valid key, on any path, gets
//! `101 Switching Protocols` and its connection becomes a WebSocket session (RFC 6455, over
//! plain TCP or TLS alike) driven by tokio-tungstenite.
//!
//! The session echoes every text and binary message back as it came, so a JSON-RPC request
//! `{"id":7,...}` is answered by a message with the same id; after [`SinkConfig::ws_delay`]
//! when set, counted from the message's arrival (messages received meanwhile wait their own
//! turn, and the order is kept). Pings get pongs and a close is answered (tungstenite does both).
//! A text message `close` makes the sink close the session (code 1000), so tests can provoke a
//! close by the peer; a session silent for the idle timeout is closed (code 1001).
//!
//! Per session the sink keeps tungstenite's state with a small read buffer ([`READ_BUFFER`]),
//! no write batching, and the messages waiting for their delay.
//!
//! [`SinkConfig::ws_delay`]: crate::SinkConfig::ws_delay

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::AsyncWriteExt;
use tokio::time::{Instant, sleep_until, timeout};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;
use tokio_tungstenite::tungstenite::protocol::{CloseFrame, Role, WebSocketConfig};

use crate::connection::Shared;
use crate::stream::Stream;
use crate::ws_io::WsIo;

/// Bytes tungstenite reads per call and keeps as a session's read buffer (grown for bigger
/// frames as needed).
const READ_BUFFER: usize = 512;
/// The largest message accepted; a bigger one ends the session.
const MAX_MESSAGE: usize = 16 << 20;
/// The most echoes waiting for their delay; beyond it the sink stops reading until one left.
const MAX_WAITING: usize = 256;
/// How long a closing session waits for the client to answer the close frame.
const CLOSE_WAIT: Duration = Duration::from_secs(1);
/// The text message that asks the sink to close the session.
const CLOSE_REQUEST: &str = "close";

/// An accepted upgrade: what the `101` says, and the bytes the client sent after its request
/// (the start of its first frames).
#[derive(Debug)]
pub(crate) struct Upgrade {
    accept: String,
    leftover: Vec<u8>,
}

/// The upgrade of the request head `head` (its bytes, request line to blank line), if it asks
/// for a WebSocket properly: `GET`, `Upgrade: websocket`, `Sec-WebSocket-Version: 13` and a
/// key of 16 bytes in base64. `rest` is what followed the head.
pub(crate) fn upgrade(head: &[u8], rest: &[u8]) -> Option<Upgrade> {
    let mut headers = [httparse::EMPTY_HEADER; 64];
    let mut request = httparse::Request::new(&mut headers);
    if !matches!(request.parse(head), Ok(httparse::Status::Complete(_))) || request.method != Some("GET") {
        return None;
    }
    let value =
        |name: &str| request.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim_ascii());
    let wants_ws = value("upgrade")?.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(b"websocket"));
    let key = value("sec-websocket-key")?;
    // 16 bytes in base64: 22 characters and `==`.
    let key_ok = key.len() == 24
        && key.ends_with(b"==")
        && key[..22].iter().all(|b| b.is_ascii_alphanumeric() || *b == b'+' || *b == b'/');
    if !wants_ws || !key_ok || value("sec-websocket-version")? != b"13" {
        return None;
    }
    Some(Upgrade { accept: derive_accept_key(key), leftover: rest.to_vec() })
}

/// tungstenite's settings for the sink's sessions: small buffers, bounded messages.
fn config() -> WebSocketConfig {
    WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(MAX_MESSAGE))
        .max_frame_size(Some(MAX_MESSAGE))
}

/// Answers the upgrade with `101`, then echoes until the session ends.
pub(crate) async fn serve(stream: Stream, shared: Arc<Shared>, upgrade: Upgrade) {
    let mut io = WsIo(stream);
    if !switch(&mut io, &shared, &upgrade.accept).await {
        return;
    }
    let _open = shared.stats.ws_session_opened();
    let ws = WebSocketStream::from_partially_read(io, upgrade.leftover, Role::Server, Some(config())).await;
    echo(ws, &shared).await;
}

/// Writes the `101` answer (within the idle timeout); false when the client is gone.
async fn switch(io: &mut WsIo, shared: &Shared, accept: &str) -> bool {
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    let written = timeout(shared.idle_timeout, async {
        io.write_all(answer.as_bytes()).await?;
        io.flush().await
    })
    .await;
    if !matches!(written, Ok(Ok(()))) {
        return false;
    }
    shared.stats.add_bytes_out(answer.len());
    shared.stats.add_responses(1);
    true
}

/// The echo loop of one session.
async fn echo(mut ws: WebSocketStream<WsIo>, shared: &Shared) {
    let delay = shared.ws_delay;
    let mut waiting: VecDeque<(Instant, Message)> = VecDeque::new();
    let mut last_active = Instant::now();
    loop {
        let due = waiting.front().map(|(due, _)| *due);
        let idle_deadline = last_active + shared.idle_timeout;
        tokio::select! {
            biased;
            () = sleep_until(due.unwrap_or(idle_deadline)), if due.is_some() => {
                if let Some((_, message)) = waiting.pop_front() {
                    if ws.send(message).await.is_err() {
                        return;
                    }
                    shared.stats.add_ws_messages_out(1);
                }
            }
            incoming = ws.next(), if waiting.len() < MAX_WAITING => {
                last_active = Instant::now();
                let message = match incoming {
                    Some(Ok(message)) => message,
                    // The client closed (tungstenite answered its close) or the session broke.
                    None | Some(Err(_)) => return,
                };
                if !(message.is_text() || message.is_binary()) {
                    // Pings are answered by tungstenite; pongs and closes need nothing here.
                    continue;
                }
                shared.stats.add_ws_messages_in(1);
                if message.to_text().is_ok_and(|text| text == CLOSE_REQUEST) && message.is_text() {
                    close(&mut ws, CloseCode::Normal, "close requested").await;
                    return;
                }
                if delay.is_zero() {
                    if ws.send(message).await.is_err() {
                        return;
                    }
                    shared.stats.add_ws_messages_out(1);
                } else {
                    waiting.push_back((last_active + delay, message));
                }
            }
            () = sleep_until(idle_deadline), if waiting.is_empty() => {
                close(&mut ws, CloseCode::Away, "idle").await;
                return;
            }
        }
    }
}

/// Sends a close frame and waits a little for the client's answer (tungstenite then ends the
/// stream), so that the client sees a clean close.
async fn close(ws: &mut WebSocketStream<WsIo>, code: CloseCode, reason: &str) {
    if ws.close(Some(CloseFrame { code, reason: reason.into() })).await.is_err() {
        return;
    }
    let _ = timeout(CLOSE_WAIT, async { while let Some(Ok(_)) = ws.next().await {} }).await;
}

#[cfg(test)]
mod tests;
