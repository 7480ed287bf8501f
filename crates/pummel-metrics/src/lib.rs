//! pummel's Prometheus side: the exposition endpoint of a running test (`--metrics-listen`).
//!
//! The engine merges its shards' figures once a second; the [`Exporter`] is handed each merged
//! second through the engine's [`LiveFeed`](pummel_engine::engine::live::LiveFeed), adds it to
//! cumulative figures ([`figures`]) under one lock taken once a second and once per scrape —
//! never on a shard's hot path — and serves them in the Prometheus text format
//! (version 0.0.4, written by the `prometheus-client` crate, [`encode`]) from a small HTTP
//! listener on its own thread ([`server`]).
//!
//! Histograms are classic, cumulative buckets made from pummel's own HdrHistograms
//! ([`buckets`]); native histograms would need the crate's protobuf encoding and a protobuf
//! compiler at build time, which a load tester's build does not carry for this.

pub mod buckets;
pub mod encode;
pub mod figures;
pub mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pummel_engine::engine::live::{LiveFeed, LiveSecond};

use crate::figures::Figures;

/// Why the exporter could not start.
#[derive(Debug, thiserror::Error)]
pub enum MetricsError {
    /// The address could not be listened on.
    #[error("cannot listen on {addr}: {source}")]
    Listen {
        /// The address asked for.
        addr: SocketAddr,
        /// Why.
        source: std::io::Error,
    },
}

/// The figures the exporter serves, shared by the collector's thread (which adds each second)
/// and the listener (which encodes them at each scrape).
#[derive(Debug, Default)]
pub struct Shared {
    figures: Mutex<Figures>,
}

impl Shared {
    /// The figures as of now (for tests and the encoder).
    pub fn with_figures<T>(&self, f: impl FnOnce(&Figures) -> T) -> T {
        match self.figures.lock() {
            Ok(figures) => f(&figures),
            Err(poisoned) => f(&poisoned.into_inner()),
        }
    }
}

impl LiveFeed for Shared {
    fn second(&self, second: &LiveSecond<'_>) {
        let mut figures = match self.figures.lock() {
            Ok(figures) => figures,
            Err(poisoned) => poisoned.into_inner(),
        };
        figures.add(second);
    }
}

/// A running exposition endpoint: fed by the engine, read by scrapers until stopped.
#[derive(Debug)]
pub struct Exporter {
    shared: Arc<Shared>,
    server: server::Server,
}

impl Exporter {
    /// Listens on `addr` and serves `/metrics` from its own thread.
    pub fn start(addr: SocketAddr) -> Result<Exporter, MetricsError> {
        let shared = Arc::new(Shared::default());
        let server = server::Server::start(addr, shared.clone())?;
        Ok(Exporter { shared, server })
    }

    /// The address it listens on (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.server.local_addr()
    }

    /// What the engine hands each second to (`RunControl::with_feed`).
    pub fn feed(&self) -> Arc<dyn LiveFeed> {
        self.shared.clone()
    }

    /// The figures it serves.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops listening; a scrape under way is finished first.
    pub fn stop(self) {
        self.server.stop();
    }
}
