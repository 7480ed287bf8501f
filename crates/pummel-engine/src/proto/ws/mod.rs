//! WebSocket sessions for plan flows (`ws_connect`, `ws_send`, `ws_expect`, `ws_close`).
//!
//! A [`WsSession`] is one client connection upgraded to a WebSocket (RFC 6455) through
//! tokio-tungstenite, over a `dial::Stream`: plain TCP (`ws://`) or TLS (`wss://`, with the
//! run's TLS settings), opened like every other connection. The flow executor opens it with [`WsSession::connect`], sends with
//! [`WsSession::send_text`], waits for an answer with [`WsSession::expect`] (a predicate decides
//! which message is the answer, e.g. a JSON-RPC `id`), and keeps it open while the virtual user
//! thinks by racing [`WsSession::idle`] against a sleep.
//!
//! Memory is the design goal: a load test may hold 100,000 sessions. tungstenite is configured
//! with a small read buffer ([`READ_BUFFER`]) and no write batching; the upgrade is done here
//! (`handshake`), not by tungstenite, whose handshake would leave its 4 KiB read buffer to the
//! session; the session keeps its state in one box so that the executor's task holds a pointer;
//! and messages kept for a later `expect` are copied out of tungstenite's read buffer (so they
//! never pin it). Measured: 1.4 KiB of pummel's memory per held `ws://` session, 2.0 KiB with a
//! task idling on it (`tests/cli/ws_memory.rs`).
//!
//! Failures are classified by `dial::failure` like every protocol's: connect and TLS failures
//! as for HTTP connections, a reset or close before the upgrade answer as `reset`, an answer
//! that is not HTTP as `malformed_response`, no answer in time as `timeout`; then, WebSocket's
//! own: an upgrade answered but not with a valid `101` is `ws_handshake`, a session that the
//! peer closed or that broke is `ws_closed`, and an `expect` that saw no matching message in
//! time is `ws_expect_timeout`.

mod handshake;
mod session;
mod target;

use std::time::Duration;

pub use session::WsSession;
pub use target::WsTarget;

/// Bytes tungstenite reads per call and keeps as its read buffer (it grows for bigger frames).
/// Small, because every held session keeps it.
pub const READ_BUFFER: usize = 512;
/// The most data messages a session keeps for a later `expect` (received while idle, or
/// skipped by an earlier `expect`); beyond it the oldest is dropped.
pub const MAX_KEPT_MESSAGES: usize = 16;
/// The largest message accepted from the peer; a bigger one breaks the session (`ws_closed`).
pub const MAX_MESSAGE_SIZE: usize = 16 << 20;
/// How long [`WsSession::close`] waits for the peer to answer the close frame.
pub const CLOSE_WAIT: Duration = Duration::from_secs(2);

/// What opening a session took.
#[derive(Debug, Clone, Copy)]
pub struct WsOpened {
    /// The TCP (and, for `wss://`, TLS) handshakes.
    pub opened: crate::dial::Opened,
    /// The HTTP upgrade: from sending the request to the `101` answer checked.
    pub handshake: Duration,
}

/// tungstenite's settings for every session (client and, in the sink, server): a small read
/// buffer, frames written at once (no batching buffer), a bounded message size.
pub fn small_config() -> tokio_tungstenite::tungstenite::protocol::WebSocketConfig {
    tokio_tungstenite::tungstenite::protocol::WebSocketConfig::default()
        .read_buffer_size(READ_BUFFER)
        .write_buffer_size(0)
        .max_write_buffer_size(usize::MAX)
        .max_message_size(Some(MAX_MESSAGE_SIZE))
        .max_frame_size(Some(MAX_MESSAGE_SIZE))
}
