//! Starting and stopping a sink: the listening socket, the worker threads and their accept
//! loops ([`start`], [`SinkHandle`]).
//!
//! Threading: `threads` OS threads each run a tokio current-thread runtime and accept from one
//! shared listening socket (the same socket, duplicated once per thread). Each connection then
//! lives on the thread that accepted it, with no locks between threads except the relaxed stat
//! counters. One shared socket was chosen over one `SO_REUSEPORT` socket per thread because with
//! `SO_REUSEPORT` a second sink started on the same port by the same user binds without error
//! and silently takes half the traffic, and because a shared queue lets whichever thread is free
//! take the next connection. The cost is that every thread wakes for each new connection and
//! all but one find nothing, which is small next to serving that connection.
//! [`SinkConfig::reuse_port`] turns `SO_REUSEPORT` on for one case only: several sink
//! *processes* sharing a port (`pummel sink --processes N`), where the user asked for it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::config::SinkConfig;
use crate::connection::{self, Shared};
use crate::error::SinkError;
use crate::record::{self, RecordWriter};
use crate::stats::SinkStats;
use crate::tls;

/// The listen backlog asked for (the kernel caps it at `net.core.somaxconn`), big enough that
/// a burst of thousands of connects is queued instead of refused.
const BACKLOG: i32 = 8192;
/// How long an accept loop pauses after an error such as "too many open files", so that it
/// does not spin while the condition lasts.
const ACCEPT_PAUSE: Duration = Duration::from_millis(20);

/// Starts the sink on its own threads; returns once it listens.
///
/// The configuration is validated first (every problem is reported at once). Bind to port 0
/// to get a free port, then ask [`SinkHandle::local_addr`] which one it is. With
/// [`SinkConfig::record`] the record file is created once the port is bound. The sink runs
/// until the handle is shut down or dropped.
pub fn start(addr: SocketAddr, config: SinkConfig) -> Result<SinkHandle, SinkError> {
    config.validate().map_err(SinkError::Config)?;
    let listener = bind(addr, config.reuse_port)?;
    let local_addr = listener.local_addr().map_err(|source| SinkError::Bind { addr, source })?;
    let stats = Arc::new(SinkStats::default());
    let (recorder, writer) = match &config.record {
        Some(path) => {
            let (recorder, writer) = record::open(path, &stats)?;
            (Some(recorder), Some(writer))
        }
        None => (None, None),
    };
    let tls = config.tls.as_ref().map(tls::server).transpose()?;
    let tls_ca_pem = tls.as_ref().and_then(|t| t.ca_pem.clone());
    let mut shared = Shared { tls: tls.map(|t| t.config), ..Shared::new(&config, Arc::clone(&stats), recorder) };
    if let (true, Some(path)) = (config.store, &config.store_file) {
        let store = crate::store::Store::with_file(config.drop_every, path)
            .map_err(|source| SinkError::StoreFile { path: path.clone(), source })?;
        shared.store = Some(Arc::new(store));
    }
    let shared = Arc::new(shared);
    // If anything below fails, dropping `handle` stops the threads already started.
    let mut handle = SinkHandle {
        local_addr,
        stats,
        stop: CancellationToken::new(),
        threads: Vec::with_capacity(config.threads),
        writer,
        tls_ca_pem,
        store: shared.store.clone(),
    };
    for index in 0..config.threads {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(SinkError::Runtime)?;
        let listener = {
            // Registering the socket needs the runtime that will drive it.
            let _entered = runtime.enter();
            listener.try_clone().and_then(TcpListener::from_std).map_err(|source| SinkError::Bind { addr, source })?
        };
        let shared = Arc::clone(&shared);
        let stop = handle.stop.clone();
        let thread = std::thread::Builder::new()
            .name(format!("pummel-sink-{index}"))
            .spawn(move || {
                runtime.block_on(accept_loop(listener, shared, stop));
                // Dropping the runtime here drops every connection task, closing its socket.
            })
            .map_err(SinkError::Thread)?;
        handle.threads.push(thread);
    }
    Ok(handle)
}

/// Creates the listening socket: address reuse (so a restarted sink does not wait for
/// `TIME_WAIT`), port sharing when `reuse_port` asks for it, non-blocking, a deep backlog.
fn bind(addr: SocketAddr, reuse_port: bool) -> Result<std::net::TcpListener, SinkError> {
    let fail = |source| SinkError::Bind { addr, source };
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP)).map_err(fail)?;
    // On Windows SO_REUSEADDR would let another process take the port over.
    #[cfg(not(windows))]
    socket.set_reuse_address(true).map_err(fail)?;
    if reuse_port {
        #[cfg(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd"))]
        socket.set_reuse_port(true).map_err(fail)?;
        #[cfg(not(any(target_os = "linux", target_os = "android", target_os = "macos", target_os = "freebsd")))]
        return Err(fail(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "SO_REUSEPORT is not available on this system",
        )));
    }
    socket.set_nonblocking(true).map_err(fail)?;
    socket.bind(&addr.into()).map_err(fail)?;
    socket.listen(BACKLOG).map_err(fail)?;
    Ok(socket.into())
}

/// Accepts connections on one thread until `stop` is cancelled, spawning a task for each.
async fn accept_loop(listener: TcpListener, shared: Arc<Shared>, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                // Answers go out in one write each; never hold them back for Nagle.
                let _ = stream.set_nodelay(true);
                let open = shared.stats.connection_opened();
                tokio::spawn(connection::serve(stream, Arc::clone(&shared), open));
            }
            Err(e) => {
                shared.stats.add_accept_error();
                let transient = matches!(
                    e.kind(),
                    std::io::ErrorKind::ConnectionAborted
                        | std::io::ErrorKind::ConnectionReset
                        | std::io::ErrorKind::Interrupted
                );
                if !transient {
                    tokio::select! {
                        () = stop.cancelled() => return,
                        () = tokio::time::sleep(ACCEPT_PAUSE) => {}
                    }
                }
            }
        }
    }
}

/// A running sink. Shut it down with [`SinkHandle::shutdown`] (or [`SinkHandle::close`] to
/// hear about record file errors), or just drop it.
#[derive(Debug)]
pub struct SinkHandle {
    local_addr: SocketAddr,
    stats: Arc<SinkStats>,
    stop: CancellationToken,
    threads: Vec<JoinHandle<()>>,
    /// The record file's writer thread, when the sink records.
    writer: Option<RecordWriter>,
    /// The PEM of the CA that signed a generated TLS certificate.
    tls_ca_pem: Option<String>,
    /// The key-value store, when the sink is one (`--store`).
    store: Option<Arc<crate::store::Store>>,
}

/// What a store sink (`--store`) holds and did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreCounts {
    /// Keys held now.
    pub keys: u64,
    /// Writes received (`PUT`, `POST`), dropped ones included.
    pub writes: u64,
    /// Writes answered `201` and not stored (`--drop-every`).
    pub dropped: u64,
}

impl SinkHandle {
    /// The address the sink listens on, with the real port when it was started on port 0.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// With a generated TLS certificate ([`SinkTls::SelfSigned`](crate::SinkTls::SelfSigned)):
    /// the PEM of the CA that signed it, for clients to trust (curl's or pummel's `--cacert`).
    pub fn tls_ca_pem(&self) -> Option<&str> {
        self.tls_ca_pem.as_deref()
    }

    /// What the store holds and did, when the sink is one ([`SinkConfig::store`]).
    pub fn store_counts(&self) -> Option<StoreCounts> {
        self.store.as_ref().map(|store| StoreCounts {
            keys: store.keys(),
            writes: store.writes(),
            dropped: store.dropped(),
        })
    }

    /// The sink's live counters; keep the `Arc` to read them while the sink runs or after.
    pub fn stats(&self) -> Arc<SinkStats> {
        Arc::clone(&self.stats)
    }

    /// Stops accepting, closes every connection (pending delayed requests are dropped
    /// unanswered) and joins the threads. It takes milliseconds: no connection is waited for.
    /// A recording sink then writes what is still queued and flushes and closes the record
    /// file before this returns (waiting at most a few seconds for a stuck disk).
    pub fn shutdown(self) {
        // `Drop` does the work.
    }

    /// As [`shutdown`](SinkHandle::shutdown), and says whether the record file was written in
    /// full: [`SinkError::RecordWrite`] when writing it failed (then
    /// [`not_recorded`](crate::StatsSnapshot::not_recorded) counts the requests it misses).
    pub fn close(mut self) -> Result<(), SinkError> {
        self.stop_threads();
        self.writer.take().map_or(Ok(()), |mut writer| writer.close())
    }

    /// Stops the worker threads and waits for them, so that no connection records any more.
    fn stop_threads(&mut self) {
        self.stop.cancel();
        for thread in self.threads.drain(..) {
            // A worker that panicked has nothing more to clean up.
            let _ = thread.join();
        }
    }
}

impl Drop for SinkHandle {
    fn drop(&mut self) {
        self.stop_threads();
        if let Some(mut writer) = self.writer.take() {
            // Nobody to tell here; `close` reports it.
            let _ = writer.close();
        }
    }
}
