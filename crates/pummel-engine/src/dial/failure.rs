//! The one classifier of failures into counted kinds.
//!
//! Whatever the protocol (HTTP/1.1, HTTP/2, WebSocket) and whatever the path (a quick run, a
//! plan flow, a held connection), a failure goes through here and comes out as one
//! [`TransportError`]: its [`ErrorKind`], which is counted, and a detail for people. The same
//! failure therefore always gets the same kind:
//!
//! | what happened | kind |
//! |---|---|
//! | nothing listens, or the backlog is full | `connect_refused` |
//! | the TCP handshake did not finish in time | `connect_timeout` |
//! | the local machine is out of ports / file descriptors | `no_local_ports` / `too_many_open_files` |
//! | a certificate was rejected, the server sent an alert, the handshake was cut off or stalled | `tls_error` |
//! | the peer reset or closed before the answer was complete | `reset` |
//! | the answer is not valid HTTP (an upgrade answer included) | `malformed_response` |
//! | no complete answer within `--timeout` | `timeout` |
//! | HTTP/2: the server reset the stream / sent `GOAWAY` | `stream_reset` / `goaway` |
//! | WebSocket: the upgrade was answered, but not with a valid `101` | `ws_handshake` |
//! | WebSocket: the session closed or broke while in use | `ws_closed` |
//!
//! The table test in `dial/tests.rs` holds each row over every protocol.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use pummel_results::duration::format_duration;
use pummel_results::error_kind::ErrorKind;

/// Linux errno values the classifier looks at.
const ENFILE: i32 = 23;
const EMFILE: i32 = 24;
const EADDRINUSE: i32 = 98;
const EADDRNOTAVAIL: i32 = 99;
const ECONNREFUSED: i32 = 111;

/// A failure of one request, connection or session, classified.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct TransportError {
    /// The counted kind.
    pub kind: ErrorKind,
    /// Human-readable detail, kept for the first few `other` and `tls_error` failures.
    pub detail: String,
}

impl TransportError {
    /// A failure of `kind`, described by `detail`.
    pub fn new(kind: ErrorKind, detail: impl Into<String>) -> Self {
        TransportError { kind, detail: detail.into() }
    }

    /// An I/O error met while opening a TCP connection to `addr`.
    pub fn connect(error: &io::Error, addr: SocketAddr) -> Self {
        TransportError::new(connect_kind(error), format!("connect to {addr}: {error}"))
    }

    /// The TCP handshake with `addr` did not finish within `timeout`.
    pub fn connect_timeout(addr: SocketAddr, timeout: Duration) -> Self {
        TransportError::new(
            ErrorKind::ConnectTimeout,
            format!("no connection to {addr} within {}", format_duration(timeout)),
        )
    }

    /// Binding to the source address `source` failed: its ports are used up (`EADDRINUSE` from
    /// a port-0 bind), or anything else (the address is not one of this machine's, say).
    pub fn bind(error: &io::Error, source: IpAddr) -> Self {
        let kind = if error.raw_os_error() == Some(EADDRINUSE) { ErrorKind::NoLocalPorts } else { ErrorKind::Other };
        TransportError::new(kind, format!("cannot bind source address {source}: {error}"))
    }

    /// An I/O error met on an established connection (writing a request, reading an answer).
    /// A failure that a lower layer already classified and carried through an `io::Error`
    /// (TLS inside a stream that h2 or tungstenite read) keeps its kind.
    pub fn io(error: &io::Error) -> Self {
        if let Some(inner) = error.get_ref().and_then(|e| e.downcast_ref::<TransportError>()) {
            return inner.clone();
        }
        if let Some(tls) = error.get_ref().and_then(|e| e.downcast_ref::<rustls::Error>()) {
            return TransportError::tls(tls);
        }
        TransportError::new(io_kind(error), error.to_string())
    }

    /// This failure as an `io::Error`, for a stream read by a library (h2, tungstenite); it
    /// comes back out of [`TransportError::io`] unchanged.
    pub fn into_io(self) -> io::Error {
        io::Error::other(self)
    }

    /// A TLS failure rustls reported: a rejected certificate, an alert, a protocol violation.
    pub fn tls(error: &rustls::Error) -> Self {
        TransportError::new(ErrorKind::TlsError, format!("TLS: {error}"))
    }

    /// The server closed the connection in the middle of the TLS handshake.
    pub fn tls_cut_off() -> Self {
        TransportError::new(ErrorKind::TlsError, "TLS: the server closed the connection during the handshake")
    }

    /// The TLS handshake with `addr` did not finish within `timeout`.
    pub fn tls_timeout(addr: SocketAddr, timeout: Duration) -> Self {
        TransportError::new(
            ErrorKind::TlsError,
            format!("TLS: handshake with {addr} not complete within {}", format_duration(timeout)),
        )
    }

    /// No complete answer within the request timeout.
    pub fn timeout(timeout: Duration) -> Self {
        TransportError::new(ErrorKind::Timeout, format!("no complete response within {}", format_duration(timeout)))
    }

    /// The peer closed the connection before any byte of the answer.
    pub fn closed_before_answer() -> Self {
        TransportError::new(ErrorKind::Reset, "connection closed before any byte of the response arrived")
    }

    /// The peer closed the connection in the middle of the answer.
    pub fn closed_mid_answer() -> Self {
        TransportError::new(ErrorKind::Reset, "connection closed in the middle of the response")
    }

    /// The answer is not valid HTTP; `what` says why.
    pub fn malformed(what: impl std::fmt::Display) -> Self {
        TransportError::new(ErrorKind::MalformedResponse, format!("malformed response: {what}"))
    }

    /// A failure of pummel's own making that no kind describes better (a template that cannot
    /// be rendered, a header HTTP/2 cannot carry).
    pub fn other(detail: impl Into<String>) -> Self {
        TransportError::new(ErrorKind::Other, detail)
    }

    /// An error of the h2 crate: the server's `RST_STREAM` is `stream_reset`, its `GOAWAY`
    /// `goaway`, socket errors keep their kinds, protocol errors are `malformed_response`.
    pub fn h2(error: h2::Error) -> Self {
        let kind = if error.is_remote() && error.is_go_away() {
            ErrorKind::GoAway
        } else if error.is_remote() && error.is_reset() {
            ErrorKind::StreamReset
        } else if let Some(io) = error.get_io() {
            return TransportError::io(io);
        } else if error.is_library() || error.reason().is_some() {
            ErrorKind::MalformedResponse
        } else {
            ErrorKind::Other
        };
        TransportError::new(kind, format!("HTTP/2: {error}"))
    }

    /// A WebSocket upgrade that was answered, but not with a valid `101`.
    pub fn ws_handshake(detail: impl Into<String>) -> Self {
        TransportError::new(ErrorKind::WsHandshake, detail)
    }

    /// A WebSocket session that ended (closed by the peer, or broken) while the flow used it.
    pub fn ws_closed(detail: impl Into<String>) -> Self {
        TransportError::new(ErrorKind::WsClosed, detail)
    }
}

/// The kind of an I/O error met while connecting.
pub fn connect_kind(error: &io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::ConnectionRefused => ErrorKind::ConnectRefused,
        io::ErrorKind::TimedOut => ErrorKind::ConnectTimeout,
        io::ErrorKind::AddrNotAvailable => ErrorKind::NoLocalPorts,
        // The peer accepted, then reset before the connection was seen established: the same
        // failure as a reset right after it, whichever side of the handshake's end it lands.
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => ErrorKind::Reset,
        _ => os_kind(error).unwrap_or(ErrorKind::Other),
    }
}

/// The kind of an I/O error met while writing a request or reading an answer.
pub fn io_kind(error: &io::Error) -> ErrorKind {
    match error.kind() {
        io::ErrorKind::ConnectionReset
        | io::ErrorKind::ConnectionAborted
        | io::ErrorKind::BrokenPipe
        | io::ErrorKind::UnexpectedEof
        | io::ErrorKind::WriteZero => ErrorKind::Reset,
        io::ErrorKind::TimedOut => ErrorKind::Timeout,
        _ => os_kind(error).unwrap_or(ErrorKind::Other),
    }
}

fn os_kind(error: &io::Error) -> Option<ErrorKind> {
    match error.raw_os_error()? {
        ENFILE | EMFILE => Some(ErrorKind::TooManyOpenFiles),
        EADDRNOTAVAIL => Some(ErrorKind::NoLocalPorts),
        ECONNREFUSED => Some(ErrorKind::ConnectRefused),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_os_errors() {
        let kind = |errno| connect_kind(&io::Error::from_raw_os_error(errno));
        assert_eq!(kind(EMFILE), ErrorKind::TooManyOpenFiles);
        assert_eq!(kind(ECONNREFUSED), ErrorKind::ConnectRefused);
        assert_eq!(kind(EADDRNOTAVAIL), ErrorKind::NoLocalPorts);
        assert_eq!(connect_kind(&io::Error::from(io::ErrorKind::ConnectionReset)), ErrorKind::Reset);
        assert_eq!(io_kind(&io::Error::from(io::ErrorKind::BrokenPipe)), ErrorKind::Reset);
        let bind = TransportError::bind(&io::Error::from_raw_os_error(EADDRINUSE), "127.0.0.2".parse().unwrap());
        assert_eq!(bind.kind, ErrorKind::NoLocalPorts);
    }

    #[test]
    fn a_classified_failure_survives_an_io_error() {
        let failure = TransportError::tls_cut_off();
        assert_eq!(TransportError::io(&failure.clone().into_io()), failure);
        let tls = io::Error::new(io::ErrorKind::InvalidData, rustls::Error::DecryptError);
        assert_eq!(TransportError::io(&tls).kind, ErrorKind::TlsError);
    }

    #[test]
    fn h2_protocol_errors_are_malformed_responses() {
        // A bare reason (not from the server's frame) is a protocol matter.
        let local = TransportError::h2(h2::Error::from(h2::Reason::PROTOCOL_ERROR));
        assert_eq!(local.kind, ErrorKind::MalformedResponse);
    }
}
