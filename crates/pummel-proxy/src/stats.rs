//! Live counters of one proxy: bytes each way, connections accepted and open, upstreams that
//! could not be reached. Relaxed atomics, bumped once per chunk or connection, read once a
//! second for the output lines; an open connection is counted by a guard that un-counts it
//! when dropped, so no exit path can leave it counted.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use crate::toxic::Stream;

/// Counters of one proxy, since it was created.
#[derive(Debug, Default)]
pub struct ProxyStats {
    bytes: [AtomicU64; 2],
    accepted: AtomicU64,
    open: AtomicU64,
    upstream_failures: AtomicU64,
}

impl ProxyStats {
    /// `n` bytes written in direction `stream`.
    pub(crate) fn add_bytes(&self, stream: Stream, n: usize) {
        self.bytes[stream.index()].fetch_add(n as u64, Ordering::Relaxed);
    }

    /// A client was accepted; it counts as open until the guard is dropped.
    pub(crate) fn accepted(self: &Arc<Self>) -> OpenConnection {
        self.accepted.fetch_add(1, Ordering::Relaxed);
        self.open.fetch_add(1, Ordering::Relaxed);
        OpenConnection(Arc::clone(self))
    }

    /// The upstream could not be reached for a client (its connection was closed).
    pub(crate) fn upstream_failed(&self) {
        self.upstream_failures.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters now.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            bytes_up: self.bytes[0].load(Ordering::Relaxed),
            bytes_down: self.bytes[1].load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            open: self.open.load(Ordering::Relaxed),
            upstream_failures: self.upstream_failures.load(Ordering::Relaxed),
        }
    }
}

/// Counts one connection as open while it lives.
#[derive(Debug)]
pub(crate) struct OpenConnection(Arc<ProxyStats>);

impl Drop for OpenConnection {
    fn drop(&mut self) {
        self.0.open.fetch_sub(1, Ordering::Relaxed);
    }
}

/// A proxy's counters at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StatsSnapshot {
    /// Bytes written to the upstream (client to upstream).
    pub bytes_up: u64,
    /// Bytes written to clients (upstream to client).
    pub bytes_down: u64,
    /// Clients accepted.
    pub accepted: u64,
    /// Connections open now.
    pub open: u64,
    /// Clients whose upstream could not be reached.
    pub upstream_failures: u64,
}
