//! The set of proxies and their toxics, and every change to them: what the HTTP API, the
//! command line and (later) a plan's fault timeline all act through.
//!
//! The rules are toxiproxy's (`proxy_collection.go`, `proxy.go`, `toxic_collection.go`):
//! names are unique; a proxy is enabled on creation unless told otherwise; disabling it closes
//! its listener (new clients are refused) and every open connection; changing its listen or
//! upstream address restarts it; `populate` creates or replaces a list of proxies, keeping a
//! proxy whose addresses did not change; `reset` enables every proxy and removes every toxic;
//! a toxic's name defaults to `<type>_<stream>` and is unique within its proxy. Toxics are
//! published to live connections at once (see `link`).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use tokio::net::TcpListener;
use tokio::sync::Mutex;
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::error::ProxyError;
use crate::link::{self, ToxicBoard};
use crate::stats::{ProxyStats, StatsSnapshot};
use crate::toxic::{Stream, Toxic, ToxicKind};

/// How long disabling a proxy waits for its connections to be closed before it answers.
const CLOSE_WAIT: Duration = Duration::from_secs(2);
/// How long an accept loop pauses after an error such as "too many open files".
const ACCEPT_PAUSE: Duration = Duration::from_millis(20);

/// What a proxy is: the fields of toxiproxy's proxy JSON, plus the toxics to start with.
#[derive(Debug, Clone, PartialEq)]
pub struct ProxySpec {
    /// Unique name.
    pub name: String,
    /// Where clients connect (`127.0.0.1:26379`; port 0 picks a free one).
    pub listen: String,
    /// Where the proxy connects for each client (`127.0.0.1:6379`, or a host name).
    pub upstream: String,
    /// False: created down (listening on nothing).
    pub enabled: bool,
    /// Toxics set from the start.
    pub toxics: Vec<Toxic>,
}

/// Something that happened, for the command line to print.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Notice {
    /// A proxy listens (created, enabled, restarted).
    Listening {
        /// The proxy.
        name: String,
        /// Where it listens.
        listen: SocketAddr,
        /// Where it connects.
        upstream: String,
    },
    /// A proxy was disabled: its listener and connections are closed.
    Down {
        /// The proxy.
        name: String,
    },
    /// A proxy was deleted.
    Deleted {
        /// The proxy.
        name: String,
    },
    /// A toxic was added, updated or removed.
    Toxic {
        /// The proxy.
        proxy: String,
        /// What happened: `added latency_downstream (...)`.
        what: String,
    },
    /// Every proxy enabled and every toxic removed.
    Reset,
}

impl std::fmt::Display for Notice {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Notice::Listening { name, listen, upstream } => {
                write!(f, "{name} listening on {listen} -> {upstream}")?;
                if !listen.ip().is_loopback() {
                    write!(f, " (not loopback: reachable from other machines)")?;
                }
                Ok(())
            }
            Notice::Down { name } => write!(f, "{name} down: listener and connections closed"),
            Notice::Deleted { name } => write!(f, "{name} deleted"),
            Notice::Toxic { proxy, what } => write!(f, "{proxy}: toxic {what}"),
            Notice::Reset => write!(f, "reset: every proxy enabled, every toxic removed"),
        }
    }
}

/// One proxy: its settings, its toxics, its counters, and its listener while enabled.
#[derive(Debug)]
struct Entry {
    name: String,
    /// As given, then the address really bound once started.
    listen: String,
    upstream: String,
    /// Upstream toxics, then downstream ones, each in the order added.
    toxics: [Vec<Arc<Toxic>>; 2],
    board: Arc<ToxicBoard>,
    stats: Arc<ProxyStats>,
    running: Option<Running>,
}

/// An enabled proxy's listener and connections.
#[derive(Debug)]
struct Running {
    stop: CancellationToken,
    accept: JoinHandle<()>,
    connections: TaskTracker,
}

/// A proxy as the API shows it (toxiproxy's `proxyWithToxics`).
#[derive(Debug, Clone, Serialize)]
pub struct ProxyInfo {
    /// Unique name.
    pub name: String,
    /// Where it listens (the bound address once started).
    pub listen: String,
    /// Where it connects.
    pub upstream: String,
    /// False when down.
    pub enabled: bool,
    /// Its toxics, upstream ones first.
    pub toxics: Vec<Toxic>,
}

/// A proxy's settings and counters at one moment, for the per-second output.
#[derive(Debug, Clone)]
pub struct ProxySnapshot {
    /// Unique name.
    pub name: String,
    /// Where it listens.
    pub listen: String,
    /// Where it connects.
    pub upstream: String,
    /// False when down.
    pub enabled: bool,
    /// Names of its toxics.
    pub toxics: Vec<String>,
    /// Its counters.
    pub stats: StatsSnapshot,
}

/// A toxic as a request gives it: any field may be missing (toxiproxy's defaults apply).
#[derive(Debug, Clone, Default)]
pub struct ToxicUpdate {
    /// New attribute values (the others are kept).
    pub attributes: serde_json::Map<String, serde_json::Value>,
    /// New toxicity, if given.
    pub toxicity: Option<f64>,
}

/// The changes a proxy update asks for (toxiproxy's `POST /proxies/{name}`): missing fields
/// keep their values.
#[derive(Debug, Clone, Default)]
pub struct ProxyUpdate {
    /// New listen address.
    pub listen: Option<String>,
    /// New upstream address.
    pub upstream: Option<String>,
    /// Enable or disable.
    pub enabled: Option<bool>,
}

/// Every proxy of one `pummel proxy` (or of one run), shared by the API and the caller.
#[derive(Debug, Clone)]
pub struct Proxies {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    proxies: Mutex<BTreeMap<String, Entry>>,
    notices: Option<UnboundedSender<Notice>>,
    /// Cancelled when everything stops.
    shutdown: CancellationToken,
}

impl Proxies {
    /// An empty set; `notices` hears about every change.
    pub fn new(notices: Option<UnboundedSender<Notice>>) -> Proxies {
        Proxies {
            inner: Arc::new(Inner {
                proxies: Mutex::new(BTreeMap::new()),
                notices,
                shutdown: CancellationToken::new(),
            }),
        }
    }

    fn notify(&self, notice: Notice) {
        if let Some(tx) = &self.inner.notices {
            let _ = tx.send(notice);
        }
    }

    /// Creates a proxy (started unless `spec.enabled` is false); 409 when the name is taken.
    pub async fn create(&self, spec: ProxySpec) -> Result<ProxyInfo, ProxyError> {
        check_spec(&spec)?;
        let mut proxies = self.inner.proxies.lock().await;
        if proxies.contains_key(&spec.name) {
            return Err(ProxyError::ProxyAlreadyExists);
        }
        let mut entry = new_entry(&spec)?;
        if spec.enabled {
            self.start(&mut entry).await?;
        }
        let info = info(&entry);
        proxies.insert(spec.name.clone(), entry);
        Ok(info)
    }

    /// toxiproxy's `/populate`: creates each proxy, or replaces one of the same name whose
    /// listen or upstream address differs (a proxy that did not change is left as it is).
    /// Returns the proxies, and the first error with the proxies handled before it.
    pub async fn populate(&self, specs: Vec<ProxySpec>) -> (Vec<ProxyInfo>, Option<ProxyError>) {
        let mut done = Vec::new();
        for spec in &specs {
            if let Err(e) = check_spec(spec) {
                return (done, Some(e));
            }
        }
        let mut proxies = self.inner.proxies.lock().await;
        for spec in specs {
            if let Some(existing) = proxies.get(&spec.name) {
                match differs(existing, &spec.listen, &spec.upstream).await {
                    Ok(false) => {
                        done.push(info(existing));
                        continue;
                    }
                    Ok(true) => {}
                    Err(e) => return (done, Some(e)),
                }
                if let Some(mut old) = proxies.remove(&spec.name) {
                    self.stop(&mut old).await;
                }
            }
            let mut entry = match new_entry(&spec) {
                Ok(entry) => entry,
                Err(e) => return (done, Some(e)),
            };
            if spec.enabled {
                if let Err(e) = self.start(&mut entry).await {
                    return (done, Some(e));
                }
            }
            done.push(info(&entry));
            proxies.insert(spec.name.clone(), entry);
        }
        (done, None)
    }

    /// Every proxy, by name.
    pub async fn list(&self) -> Vec<ProxyInfo> {
        self.inner.proxies.lock().await.values().map(info).collect()
    }

    /// One proxy.
    pub async fn get(&self, name: &str) -> Result<ProxyInfo, ProxyError> {
        self.inner.proxies.lock().await.get(name).map(info).ok_or(ProxyError::ProxyNotFound)
    }

    /// Changes a proxy's addresses (which restarts it) and enables or disables it.
    pub async fn update(&self, name: &str, update: ProxyUpdate) -> Result<ProxyInfo, ProxyError> {
        let mut proxies = self.inner.proxies.lock().await;
        let entry = proxies.get_mut(name).ok_or(ProxyError::ProxyNotFound)?;
        let listen = update.listen.unwrap_or_else(|| entry.listen.clone());
        let upstream = update.upstream.unwrap_or_else(|| entry.upstream.clone());
        let enabled = update.enabled.unwrap_or(entry.running.is_some());
        if differs(entry, &listen, &upstream).await? {
            self.stop(entry).await;
            entry.listen = listen;
            entry.upstream = upstream;
        }
        if enabled && entry.running.is_none() {
            self.start(entry).await?;
        } else if !enabled && entry.running.is_some() {
            self.stop(entry).await;
        }
        Ok(info(entry))
    }

    /// Enables (true) or disables (false: `down`) a proxy.
    pub async fn set_enabled(&self, name: &str, enabled: bool) -> Result<ProxyInfo, ProxyError> {
        self.update(name, ProxyUpdate { enabled: Some(enabled), ..ProxyUpdate::default() }).await
    }

    /// Stops and removes a proxy.
    pub async fn delete(&self, name: &str) -> Result<(), ProxyError> {
        let mut proxies = self.inner.proxies.lock().await;
        let mut entry = proxies.remove(name).ok_or(ProxyError::ProxyNotFound)?;
        self.stop(&mut entry).await;
        self.notify(Notice::Deleted { name: name.to_string() });
        Ok(())
    }

    /// Enables every proxy and removes every toxic (toxiproxy's `/reset`).
    pub async fn reset(&self) -> Result<(), ProxyError> {
        let mut proxies = self.inner.proxies.lock().await;
        for entry in proxies.values_mut() {
            if entry.running.is_none() {
                self.start(entry).await?;
            }
            entry.toxics = [Vec::new(), Vec::new()];
            entry.board.publish(entry.toxics.clone());
        }
        self.notify(Notice::Reset);
        Ok(())
    }

    /// A proxy's toxics, upstream ones first.
    pub async fn toxics(&self, proxy: &str) -> Result<Vec<Toxic>, ProxyError> {
        let proxies = self.inner.proxies.lock().await;
        let entry = proxies.get(proxy).ok_or(ProxyError::ProxyNotFound)?;
        Ok(toxic_list(entry))
    }

    /// One toxic of a proxy.
    pub async fn toxic(&self, proxy: &str, name: &str) -> Result<Toxic, ProxyError> {
        let proxies = self.inner.proxies.lock().await;
        let entry = proxies.get(proxy).ok_or(ProxyError::ProxyNotFound)?;
        find(entry, name).map(|(s, i)| (*entry.toxics[s][i]).clone()).ok_or(ProxyError::ToxicNotFound)
    }

    /// Adds a toxic; it applies at once to every connection of the proxy.
    pub async fn add_toxic(&self, proxy: &str, toxic: Toxic) -> Result<Toxic, ProxyError> {
        toxic.kind.validate().map_err(ProxyError::BadRequestBody)?;
        let mut proxies = self.inner.proxies.lock().await;
        let entry = proxies.get_mut(proxy).ok_or(ProxyError::ProxyNotFound)?;
        if find(entry, &toxic.name).is_some() {
            return Err(ProxyError::ToxicAlreadyExists);
        }
        entry.toxics[toxic.stream.index()].push(Arc::new(toxic.clone()));
        entry.board.publish(entry.toxics.clone());
        self.notify(Notice::Toxic { proxy: proxy.to_string(), what: format!("added {}", toxic.describe()) });
        Ok(toxic)
    }

    /// Changes a toxic's attributes and toxicity (its name, type and stream stay).
    pub async fn update_toxic(&self, proxy: &str, name: &str, update: ToxicUpdate) -> Result<Toxic, ProxyError> {
        let mut proxies = self.inner.proxies.lock().await;
        let entry = proxies.get_mut(proxy).ok_or(ProxyError::ProxyNotFound)?;
        let (stream, index) = find(entry, name).ok_or(ProxyError::ToxicNotFound)?;
        let mut toxic = (*entry.toxics[stream][index]).clone();
        toxic.kind.merge_json(&update.attributes).map_err(ProxyError::BadRequestBody)?;
        toxic.kind.validate().map_err(ProxyError::BadRequestBody)?;
        if let Some(toxicity) = update.toxicity {
            toxic.toxicity = toxicity;
        }
        entry.toxics[stream][index] = Arc::new(toxic.clone());
        entry.board.publish(entry.toxics.clone());
        self.notify(Notice::Toxic { proxy: proxy.to_string(), what: format!("updated {}", toxic.describe()) });
        Ok(toxic)
    }

    /// Removes a toxic; connections stop feeling it at once.
    pub async fn remove_toxic(&self, proxy: &str, name: &str) -> Result<(), ProxyError> {
        let mut proxies = self.inner.proxies.lock().await;
        let entry = proxies.get_mut(proxy).ok_or(ProxyError::ProxyNotFound)?;
        let (stream, index) = find(entry, name).ok_or(ProxyError::ToxicNotFound)?;
        entry.toxics[stream].remove(index);
        entry.board.publish(entry.toxics.clone());
        self.notify(Notice::Toxic { proxy: proxy.to_string(), what: format!("removed {name}") });
        Ok(())
    }

    /// Every proxy's settings and counters.
    pub async fn snapshot(&self) -> Vec<ProxySnapshot> {
        let proxies = self.inner.proxies.lock().await;
        proxies
            .values()
            .map(|e| ProxySnapshot {
                name: e.name.clone(),
                listen: e.listen.clone(),
                upstream: e.upstream.clone(),
                enabled: e.running.is_some(),
                toxics: toxic_list(e).into_iter().map(|t| t.name).collect(),
                stats: e.stats.snapshot(),
            })
            .collect()
    }

    /// Stops every proxy: listeners and connections closed. The set stays usable.
    pub async fn stop_all(&self) {
        let mut proxies = self.inner.proxies.lock().await;
        for entry in proxies.values_mut() {
            if let Some(running) = entry.running.take() {
                shut(running).await;
            }
        }
    }

    /// A token cancelled by [`Proxies::shutdown`] (the API server stops with it).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.inner.shutdown.clone()
    }

    /// Stops everything, the API included.
    pub async fn shutdown(&self) {
        self.inner.shutdown.cancel();
        self.stop_all().await;
    }

    /// Binds the proxy's listener and starts accepting.
    async fn start(&self, entry: &mut Entry) -> Result<(), ProxyError> {
        if entry.running.is_some() {
            return Ok(());
        }
        let listen_error = |source| ProxyError::Listen { addr: entry.listen.clone(), source };
        let addr = resolve(&entry.listen).await.map_err(listen_error)?;
        let listener = bind(addr).map_err(listen_error)?;
        let local = listener.local_addr().map_err(listen_error)?;
        entry.listen = local.to_string();
        let stop = self.inner.shutdown.child_token();
        let connections = TaskTracker::new();
        let accept = tokio::spawn(accept_loop(
            listener,
            Arc::from(entry.upstream.as_str()),
            Arc::clone(&entry.board),
            Arc::clone(&entry.stats),
            stop.clone(),
            connections.clone(),
        ));
        entry.running = Some(Running { stop, accept, connections });
        self.notify(Notice::Listening { name: entry.name.clone(), listen: local, upstream: entry.upstream.clone() });
        Ok(())
    }

    /// Closes the proxy's listener and connections.
    async fn stop(&self, entry: &mut Entry) {
        if let Some(running) = entry.running.take() {
            shut(running).await;
            self.notify(Notice::Down { name: entry.name.clone() });
        }
    }
}

/// Stops accepting (the port is free when this returns) and closes every connection.
async fn shut(running: Running) {
    running.stop.cancel();
    let _ = running.accept.await;
    running.connections.close();
    let _ = tokio::time::timeout(CLOSE_WAIT, running.connections.wait()).await;
}

fn new_entry(spec: &ProxySpec) -> Result<Entry, ProxyError> {
    let mut toxics: [Vec<Arc<Toxic>>; 2] = [Vec::new(), Vec::new()];
    for toxic in &spec.toxics {
        toxic.kind.validate().map_err(ProxyError::BadRequestBody)?;
        if toxics.iter().flatten().any(|t| t.name == toxic.name) {
            return Err(ProxyError::ToxicAlreadyExists);
        }
        toxics[toxic.stream.index()].push(Arc::new(toxic.clone()));
    }
    let board = Arc::new(ToxicBoard::default());
    board.publish(toxics.clone());
    Ok(Entry {
        name: spec.name.clone(),
        listen: spec.listen.clone(),
        upstream: spec.upstream.clone(),
        toxics,
        board,
        stats: Arc::new(ProxyStats::default()),
        running: None,
    })
}

fn check_spec(spec: &ProxySpec) -> Result<(), ProxyError> {
    if spec.name.is_empty() {
        return Err(ProxyError::MissingField("name".into()));
    }
    if spec.upstream.is_empty() {
        return Err(ProxyError::MissingField("upstream".into()));
    }
    Ok(())
}

/// Whether `listen`/`upstream` differ from the proxy's (toxiproxy's `Differs`: the listen
/// address compared once resolved).
async fn differs(entry: &Entry, listen: &str, upstream: &str) -> Result<bool, ProxyError> {
    if upstream != entry.upstream {
        return Ok(true);
    }
    if listen == entry.listen {
        return Ok(false);
    }
    let resolved = resolve(listen).await.map_err(|source| ProxyError::Listen { addr: listen.to_string(), source })?;
    Ok(resolved.to_string() != entry.listen)
}

fn info(entry: &Entry) -> ProxyInfo {
    ProxyInfo {
        name: entry.name.clone(),
        listen: entry.listen.clone(),
        upstream: entry.upstream.clone(),
        enabled: entry.running.is_some(),
        toxics: toxic_list(entry),
    }
}

fn toxic_list(entry: &Entry) -> Vec<Toxic> {
    entry.toxics.iter().flatten().map(|t| (**t).clone()).collect()
}

fn find(entry: &Entry, name: &str) -> Option<(usize, usize)> {
    Stream::BOTH.iter().find_map(|s| {
        let index = entry.toxics[s.index()].iter().position(|t| t.name == name)?;
        Some((s.index(), index))
    })
}

/// An address as `host:port`, resolved (the first address found). An empty one is loopback
/// on a free port (toxiproxy would listen on every interface).
pub async fn resolve(text: &str) -> std::io::Result<SocketAddr> {
    let text = if text.is_empty() { "127.0.0.1:0" } else { text };
    if let Ok(addr) = text.parse::<SocketAddr>() {
        return Ok(addr);
    }
    tokio::net::lookup_host(text)
        .await?
        .next()
        .ok_or_else(|| std::io::Error::new(std::io::ErrorKind::NotFound, format!("{text}: no address found")))
}

/// A listening socket: address reuse (a proxy re-enabled at once binds again), non-blocking,
/// a deep backlog.
fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    use socket2::{Domain, Protocol, Socket, Type};
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    #[cfg(not(windows))]
    socket.set_reuse_address(true)?;
    socket.set_nonblocking(true)?;
    socket.bind(&addr.into())?;
    socket.listen(4096)?;
    TcpListener::from_std(socket.into())
}

async fn accept_loop(
    listener: TcpListener,
    upstream: Arc<str>,
    board: Arc<ToxicBoard>,
    stats: Arc<crate::stats::ProxyStats>,
    stop: CancellationToken,
    connections: TaskTracker,
) {
    loop {
        let accepted = tokio::select! {
            biased;
            () = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((client, _peer)) => {
                let _ = client.set_nodelay(true);
                connections.spawn(link::serve(
                    client,
                    Arc::clone(&upstream),
                    Arc::clone(&board),
                    Arc::clone(&stats),
                    stop.clone(),
                ));
            }
            Err(e) => {
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

/// A toxic from a request's fields, with toxiproxy's defaults (stream `downstream`, toxicity
/// 1, name `<type>_<stream>`, attributes 0).
pub fn toxic_from_fields(
    kind_name: &str,
    name: Option<&str>,
    stream: Option<&str>,
    toxicity: Option<f64>,
    attributes: &serde_json::Map<String, serde_json::Value>,
) -> Result<Toxic, ProxyError> {
    let stream = match stream {
        None | Some("") => Stream::Downstream,
        Some(text) => Stream::parse(text).ok_or(ProxyError::InvalidStream)?,
    };
    let mut kind = ToxicKind::with_defaults(kind_name).ok_or(ProxyError::InvalidToxicType)?;
    kind.merge_json(attributes).map_err(ProxyError::BadRequestBody)?;
    kind.validate().map_err(ProxyError::BadRequestBody)?;
    let mut toxic = Toxic::new(kind, stream);
    if let Some(name) = name.filter(|n| !n.is_empty()) {
        toxic.name = name.to_string();
    }
    if let Some(toxicity) = toxicity {
        toxic.toxicity = toxicity;
    }
    Ok(toxic)
}
