//! The validated plan: everything a run needs, checked before the engine sees it.
//!
//! The command line (and, later, plan files) produce a [`Plan`]; the engine only ever runs a
//! validated `Plan`, so it never has to second-guess its input. A quick `pummel run URL` is a
//! plan with one request and one load stage.

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Serialize;

use crate::dial::tls_config::{TlsClient, TlsConfigError, TlsSettings};
use crate::proto::http1::encode_request;
use pummel_results::error_kind::ErrorKind;
use pummel_results::expr::{Expr, Metric};

/// Everything a run needs.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Where requests go.
    pub target: Target,
    /// What is sent.
    pub request: RequestSpec,
    /// How load is offered over time.
    pub load: Load,
    /// When the run ends (whichever comes first).
    pub stop: Stop,
    /// Number of shards (OS threads, one single-threaded runtime each).
    pub threads: usize,
    /// Per-request time limit, from the write of the request to the end of the response.
    #[serde(with = "secs")]
    pub timeout: Duration,
    /// Time limit for establishing a TCP connection.
    #[serde(with = "secs")]
    pub connect_timeout: Duration,
    /// Reuse connections (HTTP keep-alive); when false, a new connection per request.
    pub keepalive: bool,
    /// Time at the start whose requests are excluded from the statistics.
    #[serde(with = "secs")]
    pub warmup: Duration,
    /// Which statuses count as success.
    pub ok_status: StatusSet,
    /// Pass/fail expressions evaluated at the end of the run.
    #[serde(serialize_with = "exprs")]
    pub thresholds: Vec<Expr>,
    /// Expressions that end the run early when they hold over the sliding window.
    #[serde(serialize_with = "exprs")]
    pub abort_when: Vec<Expr>,
    /// Length of the sliding window for abort rules.
    #[serde(with = "secs")]
    pub abort_window: Duration,
    /// Probes and target watch running beside the load.
    pub observers: crate::observe::Observers,
    /// Local addresses connections are bound to, in turn (port chosen by the kernel); empty
    /// lets the kernel choose. Several addresses lift the ~28k ephemeral-port ceiling of one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_addrs: Vec<IpAddr>,
    /// How `https://` connections are made (verification, client certificate, SNI, version,
    /// resumption); left at its default for `http://` targets.
    #[serde(skip_serializing_if = "TlsSettings::is_default")]
    pub tls: TlsSettings,
    /// The scenarios of a plan file (flows of templated requests, think times, blocks,
    /// WebSocket steps), run instead of `request`; `None` for a quick run, whose flow is the
    /// one fixed `request` under `load`. With one scenario, `load` is that scenario's (its
    /// stages make the run's stage table and per-second target rate); with several, a closed
    /// placeholder (no run-wide target rate, one stage).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scenarios: Option<std::sync::Arc<crate::flow::Scenarios>>,
    /// Speak HTTP/2 instead of HTTP/1.1 (`--http2`): prior knowledge (h2c) for `http://`,
    /// ALPN `h2` for `https://`, several concurrent streams per connection. `None`: HTTP/1.1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2: Option<Http2Settings>,
    /// Sign every request with AWS Signature Version 4 (`--aws-sigv4`, plan `auth.aws_sigv4`),
    /// for object stores and other AWS APIs. Holds credentials, so it is never serialised.
    #[serde(skip)]
    pub auth: Option<crate::flow::sigv4::SigV4>,
}

impl Plan {
    /// Total scheduled length of the run, if it is bounded by time.
    pub fn planned_duration(&self) -> Option<Duration> {
        if let Some(scenarios) = &self.scenarios {
            // The run lasts as long as its longest scenario; one bounded only by iterations
            // has no planned length.
            let lengths: Option<Vec<Duration>> = scenarios.list.iter().map(|s| s.planned_duration()).collect();
            let longest = lengths.and_then(|l| l.into_iter().max());
            return match (longest, self.stop.duration) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
        }
        let staged = match &self.load {
            Load::Open(open) => Some(open.stages.iter().map(|s| s.duration).sum::<Duration>()),
            Load::Closed(_) | Load::Hold(_) => None,
        };
        match (staged, self.stop.duration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// The open-model stage that covers `offset` from the run's start (the last one after the end).
    pub fn stage_at(&self, offset: Duration) -> usize {
        match &self.load {
            Load::Closed(_) | Load::Hold(_) => 0,
            Load::Open(open) => {
                let mut end = Duration::ZERO;
                for (index, stage) in open.stages.iter().enumerate() {
                    end += stage.duration;
                    if offset < end {
                        return index;
                    }
                }
                open.stages.len().saturating_sub(1)
            }
        }
    }

    /// Number of stages whose statistics are kept apart.
    pub fn stage_count(&self) -> usize {
        match &self.load {
            Load::Closed(_) | Load::Hold(_) => 1,
            Load::Open(open) => open.stages.len().max(1),
        }
    }

    /// Checks that the plan's parts agree with each other.
    pub fn validate(&self) -> Result<(), PlanError> {
        if self.threads == 0 {
            return Err(PlanError::Invalid("threads must be at least 1".into()));
        }
        // A plan file's scenarios are bounded one by one (its validation sees to that).
        if self.stop.duration.is_none() && self.stop.requests.is_none() && self.scenarios.is_none() {
            if let Load::Closed(_) = self.load {
                return Err(PlanError::Invalid("a run needs a duration or a request count".into()));
            }
            if let Load::Hold(_) = self.load {
                return Err(PlanError::Invalid("hold needs a duration".into()));
            }
        }
        if self.stop.requests == Some(0) {
            return Err(PlanError::Invalid("the request count must be at least 1".into()));
        }
        if self.stop.duration == Some(Duration::ZERO) {
            return Err(PlanError::Invalid("the duration must be longer than 0s".into()));
        }
        match &self.load {
            Load::Closed(closed) if closed.connections == 0 => {
                return Err(PlanError::Invalid("connections must be at least 1".into()));
            }
            Load::Open(open) => {
                if open.stages.is_empty() {
                    return Err(PlanError::Invalid("an open-model run needs a rate".into()));
                }
                if open.max_connections == 0 {
                    return Err(PlanError::Invalid("connections must be at least 1".into()));
                }
                for stage in &open.stages {
                    // A ramp may start or end at 0; a level may not be 0.
                    let peak = stage.rate.max(stage.ramp_from.unwrap_or(0.0));
                    let finite = stage.rate.is_finite() && stage.ramp_from.is_none_or(f64::is_finite);
                    if !(finite && stage.rate >= 0.0 && stage.ramp_from.is_none_or(|r| r >= 0.0) && peak > 0.0) {
                        return Err(PlanError::Invalid(format!(
                            "rate must be a positive number of requests per second, not {}",
                            stage.rate
                        )));
                    }
                }
                if open.max_inflight == Some(0) {
                    return Err(PlanError::Invalid("--max-inflight must be at least 1".into()));
                }
            }
            Load::Hold(hold) => hold.validate()?,
            Load::Closed(_) => {}
        }
        if self.auth.is_some() && (self.http2.is_some() || matches!(self.load, Load::Hold(_))) {
            return Err(PlanError::Invalid(
                "--aws-sigv4 signs HTTP/1.1 requests of run and find-limit; not --http2 or hold".into(),
            ));
        }
        self.validate_source_addrs()?;
        if let Some(http2) = &self.http2 {
            http2.validate(self)?;
        }
        for scenario in self.scenarios.iter().flat_map(|scenarios| &scenarios.list) {
            if let Some(http2) = &scenario.http2 {
                http2.validate_streams(self.keepalive)?;
            }
        }
        self.tls_client()?;
        for expr in self.thresholds.iter().chain(&self.abort_when) {
            if let Metric::ErrorCount(name) = &expr.metric {
                if !ErrorKind::ALL.iter().any(|k| k.name() == name) {
                    let known: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
                    return Err(PlanError::Invalid(format!(
                        "{}: unknown error kind {name:?} (known: {})",
                        expr.text,
                        known.join(", ")
                    )));
                }
            }
        }
        if self.timeout.is_zero() || self.connect_timeout.is_zero() {
            return Err(PlanError::Invalid("timeouts must be longer than 0s".into()));
        }
        Ok(())
    }
}

impl Plan {
    /// The TLS client configuration of an `https://` target, built from `tls` (files read,
    /// names checked); `None` for `http://`. TLS settings on an `http://` target are an
    /// error rather than silently unused.
    pub fn tls_client(&self) -> Result<Option<TlsClient>, PlanError> {
        match self.target.scheme {
            Scheme::Https => Ok(Some(TlsClient::new(&self.tls, &self.target.host)?)),
            Scheme::Http if self.tls.is_default() => Ok(None),
            Scheme::Http => Err(PlanError::Invalid(format!(
                "TLS options (--insecure, --cacert, --cert/--key, --sni, --tls-version, --tls-resume) need an \
                 https:// URL, not {}",
                self.target.url
            ))),
        }
    }

    /// Source addresses must share the targets' address family, or no connection could be made.
    fn validate_source_addrs(&self) -> Result<(), PlanError> {
        let Some(first) = self.source_addrs.first() else { return Ok(()) };
        if self.source_addrs.iter().any(|a| a.is_ipv4() != first.is_ipv4()) {
            return Err(PlanError::Invalid("--source-addrs: mix of IPv4 and IPv6 addresses".into()));
        }
        if let Some(addr) = self.target.addrs.iter().find(|a| a.is_ipv4() != first.is_ipv4()) {
            return Err(PlanError::Invalid(format!(
                "--source-addrs are {} but the target address {addr} is not",
                if first.is_ipv4() { "IPv4" } else { "IPv6" }
            )));
        }
        Ok(())
    }
}

/// Why a plan cannot run.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// The URL is not one pummel can load.
    #[error("invalid URL {url:?}: {reason}")]
    Url {
        /// The URL as given.
        url: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The host name did not resolve.
    #[error("cannot resolve {host}: {source}")]
    Resolve {
        /// The host that was looked up.
        host: String,
        /// The resolver's error.
        source: std::io::Error,
    },
    /// The request cannot be encoded (bad method or header).
    #[error(transparent)]
    Request(#[from] crate::proto::http1::RequestError),
    /// The parts of the plan disagree.
    #[error("{0}")]
    Invalid(String),
    /// The TLS settings cannot be used (an unreadable `--cacert`, a `--cert` without `--key`).
    #[error(transparent)]
    Tls(#[from] TlsConfigError),
}

/// The scheme of the target URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain-text HTTP/1.1.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
}

/// Where requests go: the URL as given, plus its addresses resolved once per run.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The URL as the user wrote it.
    pub url: String,
    /// Its scheme.
    pub scheme: Scheme,
    /// Host name or address, as in the URL.
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
    /// Path and query sent in the request line.
    pub path_and_query: String,
    /// The `Host` header value.
    pub host_header: String,
    /// Addresses the host resolved to; connections go to the first, in turn over the others.
    pub addrs: Vec<SocketAddr>,
    /// How long the one DNS resolution of this run took.
    #[serde(with = "secs")]
    pub dns_time: Duration,
}

impl Target {
    /// Parses an `http://` or `https://` URL and resolves its host once.
    pub fn resolve(url: &str) -> Result<Target, PlanError> {
        let bad = |reason: &str| PlanError::Url { url: url.to_string(), reason: reason.to_string() };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let scheme = match parsed.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(bad(&format!("unsupported scheme {other:?}; use http:// or https://"))),
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let UrlParts { host, port, path_and_query, host_header } =
            UrlParts::of(&parsed, default_port).ok_or_else(|| bad("it has no host"))?;
        let started = Instant::now();
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|source| PlanError::Resolve { host: host.clone(), source })?
            .collect();
        let dns_time = started.elapsed();
        if addrs.is_empty() {
            return Err(PlanError::Resolve {
                host,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        Ok(Target { url: url.to_string(), scheme, host, port, path_and_query, host_header, addrs, dns_time })
    }
}

/// What a connection to a URL needs from it: the host (without brackets), the port, the
/// request target and the `Host` header. Shared by HTTP targets and WebSocket URLs.
pub(crate) struct UrlParts {
    pub host: String,
    pub port: u16,
    pub path_and_query: String,
    pub host_header: String,
}

impl UrlParts {
    /// The parts of `parsed`; `None` when it has no host.
    pub(crate) fn of(parsed: &url::Url, default_port: u16) -> Option<UrlParts> {
        let host = match parsed.host()? {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        let port = parsed.port_or_known_default().unwrap_or(default_port);
        let mut path_and_query = parsed.path().to_string();
        if let Some(query) = parsed.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let host_header = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => host.clone(),
        };
        Some(UrlParts { host, port, path_and_query, host_header })
    }
}

/// What each request sends.
#[derive(Debug, Clone, Serialize)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (empty for none).
    #[serde(serialize_with = "body_len")]
    pub body: Vec<u8>,
}

impl RequestSpec {
    /// Renders the request bytes once; every request of the run writes them unchanged.
    pub fn encode(&self, target: &Target, keepalive: bool) -> Result<Vec<u8>, PlanError> {
        Ok(encode_request(
            &self.method,
            &target.path_and_query,
            &target.host_header,
            &self.headers,
            &self.body,
            keepalive,
        )?)
    }

    /// True for HEAD requests, whose responses carry no body.
    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }
}

/// How load is offered.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "model", rename_all = "lowercase")]
pub enum Load {
    /// N loops, each sending the next request when the previous response arrived.
    Closed(ClosedLoad),
    /// Requests started on a schedule, whether or not earlier ones came back.
    Open(OpenLoad),
    /// Many connections opened at a paced rate and held open until the end (`pummel hold`).
    Hold(HoldLoad),
}

/// The hold model: open `connections` at `open_rate` and keep them, each in `mode`.
#[derive(Debug, Clone, Serialize)]
pub struct HoldLoad {
    /// Connections wanted (the sum over all shards).
    pub connections: usize,
    /// Connections opened per second at most (initial opens and re-opens alike), so the
    /// target's accept backlog is not flooded.
    pub open_rate: f64,
    /// What each connection does while held.
    pub mode: HoldMode,
    /// Interval between the bytes of a slow request, or between WebSocket pings.
    #[serde(with = "secs")]
    pub drip: Duration,
    /// Re-open a connection the target closed (or that failed to open), counting it again.
    pub reopen: bool,
}

impl HoldLoad {
    fn validate(&self) -> Result<(), PlanError> {
        if self.connections == 0 {
            return Err(PlanError::Invalid("connections must be at least 1".into()));
        }
        if !(self.open_rate.is_finite() && self.open_rate > 0.0) {
            return Err(PlanError::Invalid(format!(
                "the open rate must be a positive number of connections per second, not {}",
                self.open_rate
            )));
        }
        if self.drip.is_zero() {
            return Err(PlanError::Invalid("--drip must be longer than 0s".into()));
        }
        Ok(())
    }
}

/// What a held connection does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum HoldMode {
    /// One request and its response, then an idle keep-alive connection.
    Idle,
    /// The request head sent a few bytes every `drip` and never finished (slow-client attack).
    SlowRequest,
    /// One request whose response the target holds; waited for until the run ends.
    Pending,
    /// A WebSocket upgrade, then a ping every `drip`.
    #[serde(rename = "ws")]
    WebSocket,
}

impl HoldMode {
    /// The name used on the command line and in results (`idle`, `slow-request`, `pending`, `ws`).
    pub fn name(self) -> &'static str {
        match self {
            HoldMode::Idle => "idle",
            HoldMode::SlowRequest => "slow-request",
            HoldMode::Pending => "pending",
            HoldMode::WebSocket => "ws",
        }
    }
}

/// HTTP/2 settings (`--http2`). The closed model's `connections` are HTTP/2 connections, each
/// running `streams` request loops at once; the open model's pool holds connections of
/// `streams` stream slots and opens another only when every slot of every open one is busy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Http2Settings {
    /// Concurrent streams per connection (`--streams`, 1 to [`MAX_STREAMS`]). The server's
    /// `SETTINGS_MAX_CONCURRENT_STREAMS` may hold a connection to fewer; the rest then wait.
    pub streams: usize,
}

/// Most streams per HTTP/2 connection `--streams` accepts (servers usually allow 100 to 256).
pub const MAX_STREAMS: usize = 1000;

impl Http2Settings {
    fn validate(&self, plan: &Plan) -> Result<(), PlanError> {
        self.validate_streams(plan.keepalive)?;
        if matches!(plan.load, Load::Hold(_)) {
            return Err(PlanError::Invalid("HTTP/2 is for run and find-limit, not for hold".into()));
        }
        if plan.scenarios.is_some() {
            return Err(PlanError::Invalid(
                "a plan file's scenarios speak HTTP/2 each on their own (Scenario::http2), not through the run's --http2"
                    .into(),
            ));
        }
        if plan.auth.is_some() {
            return Err(PlanError::Invalid("HTTP/2 does not sign requests (--aws-sigv4) yet".into()));
        }
        // What HTTP/1.1 accepts but HTTP/2's header encoding does not.
        let request = &plan.request;
        if http::Method::from_bytes(request.method.as_bytes()).is_err() {
            return Err(PlanError::Invalid(format!("method {:?} cannot be sent over HTTP/2", request.method)));
        }
        for (name, value) in &request.headers {
            if http::HeaderName::from_bytes(name.as_bytes()).is_err() || http::HeaderValue::from_str(value).is_err() {
                return Err(PlanError::Invalid(format!("header {name:?} cannot be sent over HTTP/2")));
            }
        }
        Ok(())
    }

    /// Checks the stream count, and that connections are kept open (streams share them); for
    /// a quick run and for each plan-file scenario that speaks HTTP/2.
    fn validate_streams(&self, keepalive: bool) -> Result<(), PlanError> {
        if !(1..=MAX_STREAMS).contains(&self.streams) {
            return Err(PlanError::Invalid(format!(
                "--streams must be between 1 and {MAX_STREAMS}, not {}",
                self.streams
            )));
        }
        if !keepalive {
            return Err(PlanError::Invalid(
                "HTTP/2 keeps its connections open and multiplexes streams on them; drop --no-keepalive".into(),
            ));
        }
        Ok(())
    }
}

/// The closed model.
#[derive(Debug, Clone, Serialize)]
pub struct ClosedLoad {
    /// Number of concurrent loops, each with its own connection.
    pub connections: usize,
}

/// The open model.
#[derive(Debug, Clone, Serialize)]
pub struct OpenLoad {
    /// Rate stages, run one after the other.
    pub stages: Vec<RateStage>,
    /// How arrivals are spaced.
    pub arrival: Arrival,
    /// Upper bound of the connection pool; connections are opened on demand.
    pub max_connections: usize,
    /// Bound on requests waiting or in flight; beyond it a request is counted as dropped.
    pub max_inflight: Option<usize>,
}

/// One step of an open-model run: a constant rate for a while, or a linear ramp.
#[derive(Debug, Clone, Serialize)]
pub struct RateStage {
    /// Requests per second (at the end of a ramp).
    pub rate: f64,
    /// How long the stage lasts.
    #[serde(with = "secs")]
    pub duration: Duration,
    /// For a linear ramp: the rate at the stage's start, rising or falling evenly to `rate`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_from: Option<f64>,
}

impl RateStage {
    /// A constant rate for `duration`.
    pub fn level(rate: f64, duration: Duration) -> RateStage {
        RateStage { rate, duration, ramp_from: None }
    }

    /// The rate `offset` into the stage.
    pub fn rate_at(&self, offset: Duration) -> f64 {
        match self.ramp_from {
            None => self.rate,
            Some(from) => {
                let t = (offset.as_secs_f64() / self.duration.as_secs_f64().max(1e-9)).clamp(0.0, 1.0);
                from + (self.rate - from) * t
            }
        }
    }

    /// Requests the stage plans: rate × duration, averaged over a ramp.
    pub fn planned_requests(&self) -> f64 {
        (self.rate + self.ramp_from.unwrap_or(self.rate)) / 2.0 * self.duration.as_secs_f64()
    }
}

/// How open-model arrivals are spaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Arrival {
    /// Evenly spaced, 1/rate apart.
    Uniform,
    /// Exponentially distributed gaps with mean 1/rate (a Poisson process).
    Poisson,
}

/// When the run ends: whichever limit comes first.
#[derive(Debug, Clone, Serialize)]
pub struct Stop {
    /// Wall-clock length of the run (warmup included).
    #[serde(with = "opt_secs")]
    pub duration: Option<Duration>,
    /// Total number of requests to send.
    pub requests: Option<u64>,
}

/// A set of HTTP status codes (e.g. `200-399,404`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct StatusSet {
    ranges: Vec<(u16, u16)>,
}

impl Default for StatusSet {
    /// 100–399: what `--ok-status` means when it is not given.
    fn default() -> Self {
        StatusSet { ranges: vec![(100, 399)] }
    }
}

impl StatusSet {
    /// True when `status` is in the set.
    pub fn contains(&self, status: u16) -> bool {
        self.ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&status))
    }
}

impl std::str::FromStr for StatusSet {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let parse_code = |part: &str| -> Result<u16, String> {
            part.trim()
                .parse::<u16>()
                .ok()
                .filter(|c| (100..=999).contains(c))
                .ok_or_else(|| format!("{part:?} is not an HTTP status code (100-999)"))
        };
        let mut ranges = Vec::new();
        for part in text.split(',') {
            let range = match part.split_once('-') {
                Some((lo, hi)) => (parse_code(lo)?, parse_code(hi)?),
                None => {
                    let code = parse_code(part)?;
                    (code, code)
                }
            };
            if range.0 > range.1 {
                return Err(format!("{part:?} is an empty range"));
            }
            ranges.push(range);
        }
        Ok(StatusSet { ranges })
    }
}

impl std::fmt::Display for StatusSet {
    /// The set as `--ok-status` writes it: `200-299,404`.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for (i, &(lo, hi)) in self.ranges.iter().enumerate() {
            let sep = if i == 0 { "" } else { "," };
            if lo == hi { write!(f, "{sep}{lo}")? } else { write!(f, "{sep}{lo}-{hi}")? }
        }
        Ok(())
    }
}

/// Most addresses `--source-addrs` may name: more would not fit in the fds of one machine.
pub const MAX_SOURCE_ADDRS: u32 = 65_536;

/// Parses `--source-addrs`: a comma list of addresses and inclusive IPv4 ranges, e.g.
/// `127.0.0.2-127.0.0.9` or `10.0.0.1,10.0.0.5-10.0.0.6,::1`.
pub fn parse_source_addrs(text: &str) -> Result<Vec<IpAddr>, String> {
    let parse = |part: &str| -> Result<IpAddr, String> {
        part.trim().parse::<IpAddr>().map_err(|_| format!("{:?} is not an IP address", part.trim()))
    };
    let mut addrs = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            None => addrs.push(parse(part)?),
            Some((first, last)) => {
                let (IpAddr::V4(first), IpAddr::V4(last)) = (parse(first)?, parse(last)?) else {
                    return Err(format!("{part:?}: ranges are for IPv4 addresses; list IPv6 ones"));
                };
                let (lo, hi) = (u32::from(first), u32::from(last));
                if lo > hi {
                    return Err(format!("{part:?} is an empty range"));
                }
                if hi - lo >= MAX_SOURCE_ADDRS {
                    return Err(format!("{part:?} has more than {MAX_SOURCE_ADDRS} addresses"));
                }
                addrs.extend((lo..=hi).map(|a| IpAddr::V4(a.into())));
            }
        }
        if addrs.len() > MAX_SOURCE_ADDRS as usize {
            return Err(format!("more than {MAX_SOURCE_ADDRS} addresses"));
        }
    }
    Ok(addrs)
}

fn exprs<S: serde::Serializer>(exprs: &[Expr], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(exprs.iter().map(|e| e.text.as_str()))
}

fn body_len<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(body.len() as u64)
}

pub(crate) mod secs {
    pub fn serialize<S: serde::Serializer>(d: &std::time::Duration, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_f64(d.as_secs_f64())
    }
}

mod opt_secs {
    pub fn serialize<S: serde::Serializer>(d: &Option<std::time::Duration>, s: S) -> Result<S::Ok, S::Error> {
        match d {
            Some(d) => s.serialize_f64(d.as_secs_f64()),
            None => s.serialize_none(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_sets_parse_and_match() {
        let set: StatusSet = "200-399,404".parse().unwrap();
        assert!(set.contains(200) && set.contains(399) && set.contains(404));
        assert!(!set.contains(400) && !set.contains(500));
        assert!("abc".parse::<StatusSet>().is_err());
        assert!("300-200".parse::<StatusSet>().is_err());
        assert!(StatusSet::default().contains(302));
        assert!(!StatusSet::default().contains(404));
    }

    #[test]
    fn target_parses_loopback_urls() {
        let t = Target::resolve("http://127.0.0.1:8090/a/b?x=1").unwrap();
        assert_eq!(t.port, 8090);
        assert_eq!(t.path_and_query, "/a/b?x=1");
        assert_eq!(t.host_header, "127.0.0.1:8090");
        assert_eq!(t.addrs, vec!["127.0.0.1:8090".parse().unwrap()]);
        let t = Target::resolve("http://[::1]/").unwrap();
        assert_eq!(t.port, 80);
        assert_eq!(t.host_header, "[::1]");
    }

    #[test]
    fn source_addrs_parse_ranges_and_lists() {
        let addrs = parse_source_addrs("127.0.0.2-127.0.0.4, 10.0.0.1,::1").unwrap();
        let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1", "::1"]);
        assert_eq!(parse_source_addrs("127.0.0.255-127.0.1.1").unwrap().len(), 3);
        assert!(parse_source_addrs("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_source_addrs("nope").is_err());
        assert!(parse_source_addrs("").is_err());
        assert!(parse_source_addrs("::1-::2").is_err());
        assert!(parse_source_addrs("10.0.0.0-10.255.255.255").is_err());
    }

    #[test]
    fn target_rejects_other_schemes() {
        assert!(Target::resolve("ftp://127.0.0.1/").is_err());
        assert!(Target::resolve("not a url").is_err());
    }

    #[test]
    fn https_targets_default_to_port_443() {
        let t = Target::resolve("https://127.0.0.1/x").unwrap();
        assert_eq!((t.scheme, t.port, t.host_header.as_str()), (Scheme::Https, 443, "127.0.0.1"));
        let t = Target::resolve("https://127.0.0.1:8443/").unwrap();
        assert_eq!((t.port, t.host_header.as_str()), (8443, "127.0.0.1:8443"));
    }
}
