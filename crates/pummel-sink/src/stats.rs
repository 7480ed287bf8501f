//! Counters shared by every sink thread ([`SinkStats`]) and their plain copy ([`StatsSnapshot`]).
//!
//! Each counter is a relaxed atomic: the threads only ever add to them, and a reader wants
//! recent totals, not a consistent cut across counters.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// Live counters of a running sink, shared by all its threads.
///
/// Get it from [`SinkHandle::stats`](crate::SinkHandle::stats) and call
/// [`SinkStats::snapshot`] whenever numbers are wanted (every second for a live view, or once
/// at the end to check what a load test really delivered).
#[derive(Debug, Default)]
pub struct SinkStats {
    requests: AtomicU64,
    responses: AtomicU64,
    bad_requests: AtomicU64,
    abandoned: AtomicU64,
    open_connections: AtomicU64,
    connections: AtomicU64,
    bytes_in: AtomicU64,
    bytes_out: AtomicU64,
    accept_errors: AtomicU64,
    recorded: AtomicU64,
    not_recorded: AtomicU64,
    tls_handshakes: AtomicU64,
    tls_resumed: AtomicU64,
    ws_sessions: AtomicU64,
    ws_open: AtomicU64,
    ws_messages_in: AtomicU64,
    ws_messages_out: AtomicU64,
}

/// The counters of a [`SinkStats`] at one moment, as plain numbers.
///
/// It serializes (as a JSON object of these fields) so that the processes of one
/// multi-process sink can send their counters to the process that reports them, which adds
/// them up with [`StatsSnapshot::add`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(default)]
pub struct StatsSnapshot {
    /// Complete requests (head and body) read from clients.
    pub requests: u64,
    /// Final answers written in full (normal, `500` and `400` answers; not `100 Continue`).
    pub responses: u64,
    /// Requests answered `400 Bad Request` because they were not valid HTTP/1.1.
    pub bad_requests: u64,
    /// Requests dropped unanswered because their client closed the connection while the sink
    /// held them for the delay (usually a client-side timeout).
    pub abandoned: u64,
    /// Client connections open right now.
    pub open_connections: u64,
    /// Client connections accepted since the start.
    pub connections: u64,
    /// Bytes read from clients.
    pub bytes_in: u64,
    /// Bytes written to clients.
    pub bytes_out: u64,
    /// Failed `accept` calls (for example out of file descriptors: raise `ulimit -n`).
    pub accept_errors: u64,
    /// Requests written to the record file (with [`SinkConfig::record`](crate::SinkConfig::record)).
    /// A request counts once its line is in the writer's buffer; the file has it after the next
    /// flush (within a second) and surely once the sink is shut down.
    pub recorded: u64,
    /// Requests a recording sink could not record: the writer was too far behind (a very slow
    /// disk) or writing the file failed. Zero when all is well.
    pub not_recorded: u64,
    /// TLS handshakes completed (with [`SinkConfig::tls`](crate::SinkConfig::tls)).
    pub tls_handshakes: u64,
    /// Those of `tls_handshakes` that resumed a session (no certificate sent).
    pub tls_resumed: u64,
    /// WebSocket sessions accepted (upgrades answered `101`) since the start.
    pub ws_sessions: u64,
    /// WebSocket sessions open right now.
    pub ws_open: u64,
    /// WebSocket text and binary messages received.
    pub ws_messages_in: u64,
    /// WebSocket messages echoed back.
    pub ws_messages_out: u64,
}

impl StatsSnapshot {
    /// Adds `other`'s counters to these: the totals of several sinks (processes) serving one
    /// port. Every field is a count, so the sum of each is the total's.
    pub fn add(&mut self, other: &StatsSnapshot) {
        let StatsSnapshot {
            requests,
            responses,
            bad_requests,
            abandoned,
            open_connections,
            connections,
            bytes_in,
            bytes_out,
            accept_errors,
            recorded,
            not_recorded,
            tls_handshakes,
            tls_resumed,
            ws_sessions,
            ws_open,
            ws_messages_in,
            ws_messages_out,
        } = *other;
        self.requests += requests;
        self.responses += responses;
        self.bad_requests += bad_requests;
        self.abandoned += abandoned;
        self.open_connections += open_connections;
        self.connections += connections;
        self.bytes_in += bytes_in;
        self.bytes_out += bytes_out;
        self.accept_errors += accept_errors;
        self.recorded += recorded;
        self.not_recorded += not_recorded;
        self.tls_handshakes += tls_handshakes;
        self.tls_resumed += tls_resumed;
        self.ws_sessions += ws_sessions;
        self.ws_open += ws_open;
        self.ws_messages_in += ws_messages_in;
        self.ws_messages_out += ws_messages_out;
    }
}

impl SinkStats {
    /// Reads every counter once and returns the numbers.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            requests: self.requests.load(Relaxed),
            responses: self.responses.load(Relaxed),
            bad_requests: self.bad_requests.load(Relaxed),
            abandoned: self.abandoned.load(Relaxed),
            open_connections: self.open_connections.load(Relaxed),
            connections: self.connections.load(Relaxed),
            bytes_in: self.bytes_in.load(Relaxed),
            bytes_out: self.bytes_out.load(Relaxed),
            accept_errors: self.accept_errors.load(Relaxed),
            recorded: self.recorded.load(Relaxed),
            not_recorded: self.not_recorded.load(Relaxed),
            tls_handshakes: self.tls_handshakes.load(Relaxed),
            tls_resumed: self.tls_resumed.load(Relaxed),
            ws_sessions: self.ws_sessions.load(Relaxed),
            ws_open: self.ws_open.load(Relaxed),
            ws_messages_in: self.ws_messages_in.load(Relaxed),
            ws_messages_out: self.ws_messages_out.load(Relaxed),
        }
    }

    pub(crate) fn add_requests(&self, n: u64) {
        if n > 0 {
            self.requests.fetch_add(n, Relaxed);
        }
    }

    pub(crate) fn add_bad_request(&self) {
        self.bad_requests.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_abandoned(&self, n: u64) {
        self.abandoned.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_bytes_in(&self, n: usize) {
        self.bytes_in.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn add_bytes_out(&self, n: usize) {
        self.bytes_out.fetch_add(n as u64, Relaxed);
    }

    pub(crate) fn add_responses(&self, n: u64) {
        self.responses.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_accept_error(&self) {
        self.accept_errors.fetch_add(1, Relaxed);
    }

    pub(crate) fn add_recorded(&self, n: u64) {
        self.recorded.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_not_recorded(&self, n: u64) {
        self.not_recorded.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_tls_handshake(&self, resumed: bool) {
        self.tls_handshakes.fetch_add(1, Relaxed);
        if resumed {
            self.tls_resumed.fetch_add(1, Relaxed);
        }
    }

    pub(crate) fn add_ws_messages_in(&self, n: u64) {
        self.ws_messages_in.fetch_add(n, Relaxed);
    }

    pub(crate) fn add_ws_messages_out(&self, n: u64) {
        self.ws_messages_out.fetch_add(n, Relaxed);
    }

    /// Counts a new WebSocket session; the returned guard counts it closed when dropped.
    pub(crate) fn ws_session_opened(self: &Arc<Self>) -> OpenWsSession {
        self.ws_sessions.fetch_add(1, Relaxed);
        self.ws_open.fetch_add(1, Relaxed);
        OpenWsSession(Arc::clone(self))
    }

    /// Counts a newly accepted connection; the returned guard counts it closed when dropped.
    pub(crate) fn connection_opened(self: &Arc<Self>) -> OpenConnection {
        self.connections.fetch_add(1, Relaxed);
        self.open_connections.fetch_add(1, Relaxed);
        OpenConnection(Arc::clone(self))
    }
}

/// Keeps a connection counted as open for as long as it lives (also when its task is dropped
/// at shutdown).
#[derive(Debug)]
pub(crate) struct OpenConnection(Arc<SinkStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open_connections.fetch_sub(1, Relaxed);
    }
}

/// Keeps a WebSocket session counted as open for as long as it lives.
#[derive(Debug)]
pub(crate) struct OpenWsSession(Arc<SinkStats>);

impl Drop for OpenWsSession {
    fn drop(&mut self) {
        self.0.ws_open.fetch_sub(1, Relaxed);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn open_connections_follow_the_guards() {
        let stats = Arc::new(SinkStats::default());
        let a = stats.connection_opened();
        let b = stats.connection_opened();
        assert_eq!(stats.snapshot().open_connections, 2);
        drop(a);
        assert_eq!(stats.snapshot().open_connections, 1);
        drop(b);
        let snap = stats.snapshot();
        assert_eq!((snap.open_connections, snap.connections), (0, 2));
    }

    #[test]
    fn snapshots_add_up_field_by_field_and_survive_json() {
        let stats = Arc::new(SinkStats::default());
        stats.add_requests(5);
        stats.add_bytes_in(40);
        let _open = stats.connection_opened();
        let one = stats.snapshot();
        let mut total = StatsSnapshot { requests: 2, recorded: 1, ..StatsSnapshot::default() };
        total.add(&one);
        assert_eq!((total.requests, total.bytes_in, total.connections, total.recorded), (7, 40, 1, 1));
        let text = serde_json::to_string(&one).unwrap();
        assert_eq!(serde_json::from_str::<StatsSnapshot>(&text).unwrap(), one);
        // A field a newer process adds, or an older one lacks, does not break the reader.
        assert_eq!(serde_json::from_str::<StatsSnapshot>(r#"{"requests":3}"#).unwrap().requests, 3);
    }

    #[test]
    fn written_counts_bytes_and_responses() {
        let stats = SinkStats::default();
        stats.add_bytes_out(100);
        stats.add_responses(2);
        stats.add_bytes_out(25);
        stats.add_requests(3);
        stats.add_bytes_in(7);
        let snap = stats.snapshot();
        assert_eq!((snap.bytes_out, snap.responses, snap.requests, snap.bytes_in), (125, 2, 3, 7));
    }
}
