//! `pummel-proxy`: a TCP proxy that injects faults, for any protocol (HTTP, Redis, PostgreSQL,
//! AMQP, ...), with toxiproxy's toxics and its HTTP API.
//!
//! A proxy listens on one address and connects each client to its upstream. Toxics act on
//! either direction of every connection — latency, bandwidth, slow close, timeout, reset,
//! slicing, a data limit — with toxiproxy's attributes, units and semantics, rolled per
//! connection by their toxicity, and applied at once to live connections when they change. A
//! disabled proxy (`down`) closes its listener and its connections. The HTTP API has
//! toxiproxy's paths and JSON shapes, so toxiproxy clients drive it unchanged. With no toxic a
//! direction is a plain copy loop on the sockets' readiness, cheap enough to sit in a
//! benchmark's path.
//!
//! ```no_run
//! use pummel_proxy::{Options, quick};
//!
//! let redis = quick::parse_proxy("redis=26379,6379").unwrap();
//! let proxy = pummel_proxy::start(Options { proxies: vec![redis], ..Options::default() }, None).unwrap();
//! let (name, toxics) = quick::parse_toxic("redis:latency:latency=20").unwrap();
//! for toxic in toxics {
//!     proxy.block_on(proxy.proxies().add_toxic(&name, toxic)).unwrap();
//! }
//! proxy.block_on(proxy.proxies().set_enabled("redis", false)).unwrap(); // down
//! proxy.shutdown();
//! ```
//!
//! Files, one job each: `toxic` (what a toxic is, in toxiproxy's names and units), `pipeline`
//! (the toxic maths of one direction, no I/O), `link` (one proxied connection and its two
//! directions), `collection` ([`Proxies`]: proxies and toxics and every change to them),
//! `api` (the toxiproxy-compatible HTTP API), `config` (the TOML file), `quick` (the
//! command line's one-line forms), `stats` (counters), `error` (errors with their HTTP status).

pub mod api;
mod collection;
pub mod config;
mod error;
mod link;
mod pipeline;
pub mod quick;
mod stats;
mod toxic;

use std::future::Future;
use std::net::SocketAddr;
use std::time::Duration;

use tokio::sync::mpsc::UnboundedSender;

pub use collection::{Notice, Proxies, ProxyInfo, ProxySnapshot, ProxySpec, ProxyUpdate, ToxicUpdate};
pub use error::{ProxyError, StartError};
pub use stats::StatsSnapshot;
pub use toxic::{Stream, TYPES, Toxic, ToxicKind};

/// What [`start`] starts.
#[derive(Debug, Clone)]
pub struct Options {
    /// The proxies, with their toxics.
    pub proxies: Vec<ProxySpec>,
    /// Where to serve the toxiproxy API (`127.0.0.1:8474`), if anywhere.
    pub api: Option<String>,
    /// Threads that move the bytes.
    pub threads: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options { proxies: Vec::new(), api: None, threads: 1 }
    }
}

/// Starts the proxies (and the API) on threads of their own; returns once every listener is
/// bound. `notices` hears about every change (proxies up and down, toxics), for printing.
pub fn start(options: Options, notices: Option<UnboundedSender<Notice>>) -> Result<ProxyHandle, StartError> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(options.threads.max(1))
        .thread_name("pummel-proxy")
        .enable_all()
        .build()
        .map_err(StartError::Runtime)?;
    let proxies = Proxies::new(notices);
    let mut handle = ProxyHandle { runtime: Some(runtime), proxies: proxies.clone(), api_addr: None };
    for spec in options.proxies {
        let name = spec.name.clone();
        handle.block_on(proxies.create(spec)).map_err(|source| StartError::Proxy { name, source })?;
    }
    if let Some(addr) = options.api {
        let (listener, local) =
            handle.block_on(api::bind(&addr)).map_err(|source| StartError::Api { addr: addr.clone(), source })?;
        handle.api_addr = Some(local);
        if let Some(runtime) = &handle.runtime {
            runtime.spawn(api::serve(listener, proxies));
        }
    }
    Ok(handle)
}

/// Running proxies; dropping the handle stops them (listeners and connections closed).
#[derive(Debug)]
pub struct ProxyHandle {
    runtime: Option<tokio::runtime::Runtime>,
    proxies: Proxies,
    api_addr: Option<SocketAddr>,
}

impl ProxyHandle {
    /// Where the API listens, if it was started.
    pub fn api_addr(&self) -> Option<SocketAddr> {
        self.api_addr
    }

    /// The proxies, to change them (through [`ProxyHandle::block_on`] from outside the runtime).
    pub fn proxies(&self) -> &Proxies {
        &self.proxies
    }

    /// Runs `future` on the proxy's runtime and waits for it (call it from outside the runtime).
    pub fn block_on<F: Future>(&self, future: F) -> F::Output {
        match &self.runtime {
            Some(runtime) => runtime.block_on(future),
            None => unreachable_runtime(),
        }
    }

    /// Every proxy's settings and counters now.
    pub fn snapshot(&self) -> Vec<ProxySnapshot> {
        self.block_on(self.proxies.snapshot())
    }

    /// Stops everything: listeners, connections, the API.
    pub fn shutdown(self) {
        // `Drop` does it.
    }
}

impl Drop for ProxyHandle {
    fn drop(&mut self) {
        if let Some(runtime) = self.runtime.take() {
            runtime.block_on(self.proxies.shutdown());
            runtime.shutdown_timeout(Duration::from_secs(1));
        }
    }
}

/// The runtime is only taken by `drop`, after which no method can be called.
#[cold]
fn unreachable_runtime() -> ! {
    panic!("pummel-proxy: the runtime is gone (the handle was dropped)")
}
