//! A held connection (`pummel hold`): what a held user does once `load::hold` let it open.
//!
//! Every held connection is one small task with no buffer of its own: reads go through the
//! stream's per-thread scratch buffer, so an idle connection costs its task, its socket
//! registration and its socket — a few hundred bytes of pummel's memory. By mode:
//! - `idle`: sends the request once, records the response, then waits on the idle socket;
//! - `slow-request`: writes the request head [`DRIP_BYTES`] bytes every `drip`, never the
//!   final empty line (after the head it keeps sending a harmless `X-a: b` header line);
//! - `pending`: sends the request and waits for the answer however long the target holds it
//!   (`--timeout` does not apply, only the run's end), then stays idle on the connection;
//! - `ws`: a WebSocket session through the same client as plan flows (so `wss://` too), with
//!   a ping every `drip`.
//!
//! Counting: each opening is a request due at its paced time (in flight until its response or
//! its failure; sent once its first byte went out); a failure to open is counted by kind, and
//! a connection the target closes (EOF, reset, close frame) after it was established is counted
//! in `closed_by_peer` — and, if a request was still unanswered on it, also as a failed
//! request (`reset`). A request still unanswered when the run ends is unfinished.

use std::time::Duration;

use pummel_results::error_kind::ErrorKind;
use tokio::time::{Instant, sleep};

use super::ScenarioRun;
use crate::dial::{Alpn, TransportError};
use crate::engine::shard::Shard;
use crate::flow::{HoldStep, Step};
use crate::measure::meter::{Answer, Request};
use crate::plan::HoldMode;
use crate::proto::http1::Connection;
use crate::proto::ws::WsSession;

/// Bytes of the request head written at each drip of a slow request.
const DRIP_BYTES: usize = 2;
/// Sent, [`DRIP_BYTES`] at a time, once the real head (minus its final CRLF) is out: a valid
/// header line, so the target keeps waiting for the end of the head. Its length is a multiple
/// of `DRIP_BYTES`, so a drip never wraps around it.
const FILLER: &[u8] = b"X-a: b\r\n";

/// Opens one connection due at `intended` and holds it in the scenario's mode until the
/// target closes it (returns) or the run stops (the caller drops this future, which closes
/// the connection).
pub(crate) async fn held_user(shard: &Shard, run: &ScenarioRun, intended: Instant) {
    let Some(Step::Hold(step)) = run.scenario().flow.steps.first() else { return };
    let request = shard.meter.begin(None, intended);
    let closed = match step.mode {
        // Boxed: an idle held connection's task does not carry a WebSocket session's futures.
        HoldMode::WebSocket => Box::pin(websocket(shard, step, request)).await,
        mode => {
            // The opening and the exchange are boxed: they last a moment, and the state of
            // what lasts (an idle connection) is then all a held connection's task carries.
            let mut held = match Box::pin(super::request::open(shard, 0, None, intended)).await {
                Ok(held) => held,
                Err(e) => return request.failed(&e),
            };
            let conn = &mut held.io;
            let answered = match mode {
                HoldMode::Idle => Box::pin(exchange(shard, step, conn, request, Some(shard.plan.timeout))).await,
                HoldMode::Pending => Box::pin(exchange(shard, step, conn, request, None)).await,
                HoldMode::SlowRequest | HoldMode::WebSocket => Box::pin(slow_request(shard, step, conn, request)).await,
            };
            match answered {
                Exchanged::Answered => wait_closed(conn).await,
                Exchanged::Closed => true,
                Exchanged::Failed => false,
            }
        }
    };
    if closed {
        shard.meter.record(Instant::now(), |s| s.closed_by_peer += 1);
    }
}

/// How a held connection's exchange ended.
enum Exchanged {
    /// Answered: the connection is held idle now.
    Answered,
    /// The target closed the connection.
    Closed,
    /// It failed otherwise; the connection is given up.
    Failed,
}

/// Sends the request and records its response (waiting at most `timeout`, if given).
async fn exchange(
    shard: &Shard,
    step: &HoldStep,
    conn: &mut Connection,
    mut request: Request,
    timeout: Option<Duration>,
) -> Exchanged {
    let exchange = async {
        let sent_at = Instant::now();
        conn.write_all(&step.request).await?;
        request.written_at(step.request.len() as u64, sent_at);
        conn.read_response(step.head_request).await
    };
    let result = match timeout {
        Some(limit) => tokio::time::timeout(limit, exchange).await.map_err(|_| TransportError::timeout(limit)),
        None => Ok(exchange.await),
    };
    let done = Instant::now();
    match result.and_then(|r| r) {
        Ok(info) => {
            let failure = (!shard.plan.ok_status.contains(info.status)).then(|| ErrorKind::from_status(info.status));
            let bytes_in = info.head_bytes + info.body_bytes;
            request.answered(Answer { status: Some(info.status), failure, done, bytes_in, bytes_decoded: 0 });
            Exchanged::Answered
        }
        Err(e) => {
            let closed = e.kind == ErrorKind::Reset;
            request.failed(&e);
            if closed { Exchanged::Closed } else { Exchanged::Failed }
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

/// What the target did while a slow request was being held.
enum PeerEvent {
    /// It closed the connection (EOF or reset).
    Closed,
    /// It sent bytes (`n` of them; the first ones carry its answer's status).
    Sent { n: usize, status: Option<u16> },
}

/// Writes the request head a few bytes every `drip`, never finishing it, until the target
/// answers (then the connection is held idle) or closes it.
async fn slow_request(shard: &Shard, step: &HoldStep, conn: &Connection, mut request: Request) -> Exchanged {
    let head = &step.request[..head_without_final_crlf(&step.request)];
    let mut offset = 0usize;
    loop {
        let chunk = if offset < head.len() {
            &head[offset..(offset + DRIP_BYTES).min(head.len())]
        } else {
            let at = (offset - head.len()) % FILLER.len();
            &FILLER[at..at + DRIP_BYTES]
        };
        let at = Instant::now();
        if let Err(e) = conn.write_all(chunk).await {
            let closed = e.kind == ErrorKind::Reset;
            request.failed(&e);
            return if closed { Exchanged::Closed } else { Exchanged::Failed };
        }
        offset += chunk.len();
        request.written_at(chunk.len() as u64, at);
        let event = tokio::select! {
            () = sleep(step.drip) => continue,
            event = conn.read_some(|bytes| match bytes {
                [] => PeerEvent::Closed,
                _ => PeerEvent::Sent { n: bytes.len(), status: status_code(bytes) },
            }) => event.unwrap_or(PeerEvent::Closed),
        };
        let done = Instant::now();
        return match event {
            PeerEvent::Closed => {
                request.failed(&TransportError::new(
                    ErrorKind::Reset,
                    "the target closed a slow request before its head was complete",
                ));
                Exchanged::Closed
            }
            // The target answered the unfinished request (typically 408 or 400).
            PeerEvent::Sent { n, status: Some(status) } => {
                let failure = (!shard.plan.ok_status.contains(status)).then(|| ErrorKind::from_status(status));
                request.answered(Answer { status: Some(status), failure, done, bytes_in: n as u64, bytes_decoded: 0 });
                Exchanged::Answered
            }
            PeerEvent::Sent { .. } => {
                request.failed(&TransportError::malformed(
                    "the target answered a slow request with bytes that are not HTTP",
                ));
                Exchanged::Answered
            }
        };
    }
}

/// A WebSocket session held with a ping every `drip` until the target closes it. True when
/// the target closed it.
async fn websocket(shard: &Shard, step: &HoldStep, mut request: Request) -> bool {
    let Some(ws) = &step.ws else { return false };
    let target = match super::ws::target(shard, &ws.url) {
        Ok(target) => target,
        Err(detail) => {
            request.failed(&TransportError::other(detail));
            return false;
        }
    };
    // Opened like every connection of the run: the target's addresses in turn, its TLS.
    let (stream, opened) = match shard.dialer.open(Alpn::Http1).await {
        Ok(open) => open,
        Err(e) => {
            request.failed(&e);
            return false;
        }
    };
    shard.meter.opened(None, request.intended(), &opened);
    let _gauge = shard.meter.connection_gauge();
    let upgrading = Instant::now();
    request.written_at(0, upgrading);
    let mut session = match WsSession::upgrade(stream, &target, &ws.headers, shard.plan.timeout).await {
        Ok((session, _took)) => session,
        Err(e) => {
            let closed = e.kind == ErrorKind::Reset;
            request.failed(&e);
            return closed;
        }
    };
    request.answered(Answer { status: Some(101), failure: None, done: Instant::now(), bytes_in: 0, bytes_decoded: 0 });
    loop {
        tokio::select! {
            () = sleep(step.drip) => {
                if session.ping().await.is_err() {
                    return true;
                }
            }
            // Whatever the target sends is skipped; its close (answered) ends the hold.
            _closed = session.idle() => return true,
        }
    }
}

/// The status code of an answer starting `HTTP/1.x NNN`, if the bytes start that way.
fn status_code(bytes: &[u8]) -> Option<u16> {
    let code = bytes.strip_prefix(b"HTTP/1.")?.get(2..5)?;
    std::str::from_utf8(code).ok()?.parse().ok().filter(|c| (100..1000).contains(c))
}

/// How many bytes of `request` come before its final empty line (the head minus one CRLF).
fn head_without_final_crlf(request: &[u8]) -> usize {
    request.windows(4).position(|w| w == b"\r\n\r\n").map_or(request.len(), |at| at + 2)
}

#[cfg(test)]
mod tests;
