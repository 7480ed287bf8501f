//! The kinds of failure a request can meet, each with its own counter.
//!
//! A failure is never fatal to a run: it is classified into one [`ErrorKind`], counted in the
//! summary and in the second of the timeline where it happened, and the run goes on. Kinds
//! caused by the generator's own machine (not the target) are flagged as local and come
//! with a one-line fix, so a user does not blame the target for their own limits.
//!
//! The kinds are part of the results document (their names are its keys); which I/O, TLS or
//! protocol failure becomes which kind is decided in one place, the engine's `dial::failure`.

use serde::{Deserialize, Serialize};

/// Why a request failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorKind {
    /// The target refused the connection: nothing listens there, or its backlog is full.
    ConnectRefused,
    /// The connection was not established within `--connect-timeout`.
    ConnectTimeout,
    /// The response did not complete within `--timeout`.
    Timeout,
    /// Sent, and still unanswered when the run's drain time (`--drain`) ran out: the target
    /// never answered it while pummel waited.
    Unanswered,
    /// The peer closed or reset the connection before the response was complete.
    Reset,
    /// The bytes that came back are not a valid HTTP/1.1 response.
    MalformedResponse,
    /// TLS failed: the certificate was rejected, the handshake failed, stalled past
    /// `--connect-timeout` or was cut off, or the server sent an alert.
    TlsError,
    /// The generator ran out of file descriptors (local EMFILE/ENFILE).
    TooManyOpenFiles,
    /// The generator ran out of ephemeral ports (local EADDRNOTAVAIL).
    NoLocalPorts,
    /// The response had a 4xx status not accepted by `--ok-status`.
    #[serde(rename = "status_4xx")]
    Status4xx,
    /// The response had a 5xx status not accepted by `--ok-status`.
    #[serde(rename = "status_5xx")]
    Status5xx,
    /// HTTP/2: the server reset the stream (RST_STREAM) before the response was complete.
    StreamReset,
    /// HTTP/2: the server sent GOAWAY and the stream was not processed.
    #[serde(rename = "goaway")]
    GoAway,
    /// WebSocket: the upgrade was refused or its answer was not a valid handshake.
    WsHandshake,
    /// WebSocket: the peer closed the session (or it broke) while the flow still used it.
    WsClosed,
    /// WebSocket: no matching message arrived within the `ws_expect` timeout.
    WsExpectTimeout,
    /// A plan check marked as failing the request (`check`, `fail = true`) did not pass.
    CheckFailed,
    /// A plan `extract` found nothing and had no `default`.
    ExtractFailed,
    /// A redirect chain was longer than the plan allows (`redirects = N`, `--redirects N`).
    TooManyRedirects,
    /// A redirect led to a host or scheme that the plan does not load; it was not followed.
    RedirectOffTarget,
    /// Any other failure; the first few messages are kept in the results.
    Other,
}

impl ErrorKind {
    /// Every kind, in the order they are reported.
    pub const ALL: [ErrorKind; 21] = [
        ErrorKind::ConnectRefused,
        ErrorKind::ConnectTimeout,
        ErrorKind::Timeout,
        ErrorKind::Unanswered,
        ErrorKind::Reset,
        ErrorKind::MalformedResponse,
        ErrorKind::TlsError,
        ErrorKind::TooManyOpenFiles,
        ErrorKind::NoLocalPorts,
        ErrorKind::Status4xx,
        ErrorKind::Status5xx,
        ErrorKind::StreamReset,
        ErrorKind::GoAway,
        ErrorKind::WsHandshake,
        ErrorKind::WsClosed,
        ErrorKind::WsExpectTimeout,
        ErrorKind::CheckFailed,
        ErrorKind::ExtractFailed,
        ErrorKind::TooManyRedirects,
        ErrorKind::RedirectOffTarget,
        ErrorKind::Other,
    ];

    /// Number of kinds; sizes the per-kind counter arrays.
    pub const COUNT: usize = Self::ALL.len();

    /// Stable position of this kind in [`ErrorKind::ALL`], used to index counter arrays.
    pub fn index(self) -> usize {
        self as usize
    }

    /// The snake_case name used in results files, thresholds and output.
    pub fn name(self) -> &'static str {
        match self {
            ErrorKind::ConnectRefused => "connect_refused",
            ErrorKind::ConnectTimeout => "connect_timeout",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Unanswered => "unanswered",
            ErrorKind::Reset => "reset",
            ErrorKind::MalformedResponse => "malformed_response",
            ErrorKind::TlsError => "tls_error",
            ErrorKind::TooManyOpenFiles => "too_many_open_files",
            ErrorKind::NoLocalPorts => "no_local_ports",
            ErrorKind::Status4xx => "status_4xx",
            ErrorKind::Status5xx => "status_5xx",
            ErrorKind::StreamReset => "stream_reset",
            ErrorKind::GoAway => "goaway",
            ErrorKind::WsHandshake => "ws_handshake",
            ErrorKind::WsClosed => "ws_closed",
            ErrorKind::WsExpectTimeout => "ws_expect_timeout",
            ErrorKind::CheckFailed => "check_failed",
            ErrorKind::ExtractFailed => "extract_failed",
            ErrorKind::TooManyRedirects => "too_many_redirects",
            ErrorKind::RedirectOffTarget => "redirect_off_target",
            ErrorKind::Other => "other",
        }
    }

    /// True when the failure is the generator's own machine running out of something.
    pub fn is_local(self) -> bool {
        matches!(self, ErrorKind::TooManyOpenFiles | ErrorKind::NoLocalPorts)
    }

    /// For local failures, the one-line fix to try.
    pub fn local_fix(self) -> Option<&'static str> {
        match self {
            ErrorKind::TooManyOpenFiles => {
                Some("raise the open-file limit: `ulimit -n 1048576` (hard limit: /etc/security/limits.conf)")
            }
            ErrorKind::NoLocalPorts => Some(
                "widen the ephemeral port range: `sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\"`, \
                 or use fewer connections / keep-alive",
            ),
            _ => None,
        }
    }

    /// True when pummel gave up waiting for the answer (`timeout`, `unanswered`, a WebSocket
    /// `ws_expect_timeout`): the request's latency is at least the time it was given up at,
    /// so a latency recorded for it is a lower bound.
    pub fn is_given_up(self) -> bool {
        matches!(self, ErrorKind::Timeout | ErrorKind::Unanswered | ErrorKind::WsExpectTimeout)
    }

    /// The kind for a response status that was not accepted.
    pub fn from_status(status: u16) -> ErrorKind {
        match status {
            400..=499 => ErrorKind::Status4xx,
            500..=599 => ErrorKind::Status5xx,
            _ => ErrorKind::Other,
        }
    }
}

impl std::fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

/// One counter per [`ErrorKind`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ErrorCounts(pub [u64; ErrorKind::COUNT]);

impl ErrorCounts {
    /// Counts one more failure of `kind`.
    pub fn add(&mut self, kind: ErrorKind) {
        self.0[kind.index()] += 1;
    }

    /// The count for `kind`.
    pub fn get(&self, kind: ErrorKind) -> u64 {
        self.0[kind.index()]
    }

    /// Sum over all kinds.
    pub fn total(&self) -> u64 {
        self.0.iter().sum()
    }

    /// Adds every counter of `other` into this one.
    pub fn merge(&mut self, other: &ErrorCounts) {
        for (a, b) in self.0.iter_mut().zip(other.0.iter()) {
            *a += b;
        }
    }

    /// The non-zero counters, by kind.
    pub fn non_zero(&self) -> impl Iterator<Item = (ErrorKind, u64)> + '_ {
        ErrorKind::ALL.iter().map(|&k| (k, self.get(k))).filter(|&(_, n)| n > 0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_match_all_order() {
        for (i, kind) in ErrorKind::ALL.iter().enumerate() {
            assert_eq!(kind.index(), i);
        }
    }

    #[test]
    fn names_are_snake_case_serde_names() {
        for kind in ErrorKind::ALL {
            let json = serde_json::to_string(&kind).unwrap();
            assert_eq!(json, format!("\"{}\"", kind.name()));
        }
    }
}
