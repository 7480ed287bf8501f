//! pummel's Prometheus side: the exposition endpoint of a running test (`--metrics-listen`).
//!
//! The engine merges its shards' figures once a second; the [`Exporter`] is handed each merged
//! second through the engine's [`LiveFeed`](pummel_engine::engine::live::LiveFeed), adds it to
//! cumulative figures ([`figures`]) under one lock taken once a second and once per scrape —
//! never on a shard's hot path — and serves them in the Prometheus text format
//! (version 0.0.4, written by the `prometheus-client` crate, [`encode`]) from a small HTTP
//! listener on its own thread ([`server`]).
//!
//! `--out prometheus=URL` sends the same series by remote write, once a second
//! ([`remote_write`]).
//!
//! Histograms are made from pummel's own HdrHistograms ([`buckets`]): classic cumulative
//! buckets always, and native (sparse, exponential) buckets in the protobuf format that a
//! Prometheus with native histograms on asks for (the crate's protobuf encoding, its messages
//! compiled at build time by `protox`, in Rust: no `protoc` needed).

pub mod buckets;
pub mod encode;
pub mod figures;
pub mod remote_write;
pub mod server;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use pummel_engine::engine::live::{LiveFeed, LiveSecond};

use crate::figures::Figures;
use crate::remote_write::{RemoteWrite, RemoteWriteTotals};

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
    /// Remote write cannot send to the URL given.
    #[error("remote write: {0}")]
    RemoteWrite(#[from] remote_write::RemoteWriteError),
}

/// The figures the exporter serves, shared by the collector's thread (which adds each second)
/// and the listener and remote write (which encode them).
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

/// A running exporter: an endpoint scrapers read, remote write to a receiver, or both; fed
/// by the engine until stopped.
#[derive(Debug)]
pub struct Exporter {
    shared: Arc<Shared>,
    server: Option<server::Server>,
    remote: Option<Arc<RemoteFeed>>,
}

/// The feed when remote write is on: adds each second, then sends the exposition.
#[derive(Debug)]
struct RemoteFeed {
    shared: Arc<Shared>,
    registry: prometheus_client::registry::Registry,
    remote: RemoteWrite,
}

impl LiveFeed for RemoteFeed {
    fn second(&self, second: &LiveSecond<'_>) {
        self.shared.second(second);
        if let Ok(text) = encode::text(&self.registry) {
            self.remote.push(&text);
        }
    }
}

impl Exporter {
    /// Serves `/metrics` on `listen` (if given) from its own thread, and sends every second to
    /// the remote-write `remote_url` (if given).
    pub fn start(listen: Option<SocketAddr>, remote_url: Option<&str>) -> Result<Exporter, MetricsError> {
        let shared = Arc::new(Shared::default());
        let remote = match remote_url {
            Some(url) => Some(Arc::new(RemoteFeed {
                shared: shared.clone(),
                registry: encode::registry(shared.clone()),
                remote: RemoteWrite::start(url)?,
            })),
            None => None,
        };
        let server = listen.map(|addr| server::Server::start(addr, shared.clone())).transpose()?;
        Ok(Exporter { shared, server, remote })
    }

    /// The address the endpoint listens on (the port chosen when asked for port 0).
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.server.as_ref().map(server::Server::local_addr)
    }

    /// The `run_id` label remote write puts on every series.
    pub fn run_id(&self) -> Option<&str> {
        self.remote.as_ref().map(|r| r.remote.run_id.as_str())
    }

    /// What the engine hands each second to (`RunControl::with_feed`).
    pub fn feed(&self) -> Arc<dyn LiveFeed> {
        match &self.remote {
            Some(remote) => remote.clone(),
            None => self.shared.clone(),
        }
    }

    /// The figures it serves.
    pub fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    /// Stops listening (a scrape under way is finished first) and sends what remote write
    /// still has queued; returns what remote write did, if it was on.
    pub fn stop(self) -> Option<RemoteWriteTotals> {
        if let Some(server) = self.server {
            server.stop();
        }
        self.remote.map(|r| r.remote.finish())
    }
}
