//! The validated plan: everything a run needs, checked before the engine sees it.
//!
//! The command line and plan files produce a [`Plan`]; the engine only ever runs a validated
//! `Plan`, so it never has to second-guess its input. What a run does is its scenarios, and
//! only those: a quick `pummel run URL` (or `find-limit`, or `hold`) is a plan of one scenario,
//! built by [`quick::QuickRun`] where the plan is built.
//!
//! - [`target`]: where requests go, resolved once; the local addresses they leave from;
//! - [`load`]: the load models (closed, open in stages, hold);
//! - [`status`]: which statuses count as success;
//! - [`quick`]: a quick run as a one-scenario plan.

pub mod load;
pub mod quick;
pub mod status;
pub mod target;

use std::net::IpAddr;
use std::sync::Arc;
use std::time::Duration;

use pummel_results::error_kind::ErrorKind;
use pummel_results::expr::{Expr, Metric};
use serde::Serialize;

pub use self::load::{
    Arrival, ClosedLoad, HoldLoad, HoldMode, Http2Settings, Load, MAX_STREAMS, MIN_DEFAULT_POOL, OpenLoad, RateStage,
    default_pool,
};
pub use self::quick::{QuickRun, RequestSpec};
pub use self::status::StatusSet;
pub(crate) use self::target::UrlParts;
pub use self::target::{MAX_SOURCE_ADDRS, Scheme, Target, parse_source_addrs};
use crate::dial::tls_config::{TlsClient, TlsConfigError, TlsSettings};
use crate::flow::{Scenario, Scenarios};
/// The part of a plan a process runs (`--segment i/N`, `--segment FROM:TO` with
/// `--segment-sequence`): shared with `pummel merge`, which checks that segments cover the plan.
pub use pummel_results::segment::Segment;

/// The longest default drain time: a run whose requests time out after 30 s need not wait that
/// long for its last answers.
pub const DEFAULT_DRAIN_CAP: Duration = Duration::from_secs(10);

/// Everything a run needs.
#[derive(Debug, Clone, Serialize)]
pub struct Plan {
    /// Where requests go.
    pub target: Target,
    /// What runs: the scenarios, all at once, each with its own load model and flow (a quick
    /// run's is one scenario of its one request).
    pub scenarios: Arc<Scenarios>,
    /// When the run ends (whichever comes first), over every scenario's own bounds.
    pub stop: Stop,
    /// Number of shards (OS threads, one single-threaded runtime each).
    pub threads: usize,
    /// Per-request time limit, from the write of the request to the end of the response.
    #[serde(with = "crate::seconds")]
    pub timeout: Duration,
    /// Time limit for establishing a TCP connection.
    #[serde(with = "crate::seconds")]
    pub connect_timeout: Duration,
    /// Time that requests still in flight when sending stops get to end (`--drain`); what is
    /// still unanswered then fails as `unanswered`. `None`: [`Plan::drain_time`]'s default.
    #[serde(serialize_with = "crate::seconds::optional")]
    pub drain: Option<Duration>,
    /// Reuse connections (HTTP keep-alive); when false, a new connection per request.
    pub keepalive: bool,
    /// Keep a cookie jar per virtual user (plans by default; `--cookies` for a quick run): see
    /// `exec::cookies`.
    pub cookies: bool,
    /// Redirects a request follows at most (`redirects = N` in plans, 10 by default there, as
    /// k6; `--redirects N`, 0 by default in quick runs, as wrk and oha): see `exec::redirect`.
    pub redirects: u32,
    /// Time at the start whose requests are excluded from the statistics.
    #[serde(with = "crate::seconds")]
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
    #[serde(with = "crate::seconds")]
    pub abort_window: Duration,
    /// Probes and target watch running beside the load.
    pub observers: crate::observe::Observers,
    /// Local addresses connections are bound to, in turn (port chosen by the kernel); empty
    /// lets the kernel choose. Several addresses lift the ~28k ephemeral-port ceiling of one.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub source_addrs: Vec<IpAddr>,
    /// How `https://` (and `wss://`) connections are made (verification, client certificate,
    /// SNI, version, resumption); left at its default for `http://` targets.
    #[serde(skip_serializing_if = "TlsSettings::is_default")]
    pub tls: TlsSettings,
    /// The seed everything random in the run derives from (`--seed`, plan `seed`; a fresh one
    /// otherwise), written in the results so that any run can be repeated (see `flow::seed`).
    pub seed: u64,
    /// Sign every request with AWS Signature Version 4 (`--aws-sigv4`, plan `auth.aws_sigv4`),
    /// for object stores and other AWS APIs. Holds credentials, so it is never serialised.
    #[serde(skip)]
    pub auth: Option<crate::flow::sigv4::SigV4>,
    /// The name of [`Plan::target`] in a plan of several hosts (`[targets.NAME]`); empty for
    /// one host.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub target_name: String,
    /// The part of the plan this process runs (`--segment i/N`, or `FROM:TO` of a
    /// `--segment-sequence`): the whole plan by default. Arrival `k` of an open-model scenario,
    /// user or connection `k`, and row `k` of a `unique` or `sequential` feeder go to the
    /// segment that owns item `k` (see [`Segment`]); iterations, request counts and pool bounds
    /// are split so that the segments add up to the whole.
    #[serde(skip_serializing_if = "Segment::is_whole")]
    pub segment: Segment,
    /// When the run starts, agreed between the processes that run segments of one plan
    /// (`--start-at`); `None`: at once.
    #[serde(skip)]
    pub start_at: Option<std::time::SystemTime>,
    /// The plan's other hosts (`[targets.NAME]`), each with its own connections, addresses,
    /// TLS client and signing; a request names its host by index (0: [`Plan::target`], `i`:
    /// `other_targets[i - 1]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub other_targets: Vec<NamedTarget>,
    /// Log failed (and a sample of successful) requests to a file, bounded (`--log-requests`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_log: Option<crate::request_log::RequestLogSpec>,
    /// Log the writes (plan requests with `write = { key = ... }`) and their outcomes to a
    /// spill file, for the read-back after the run (see `writes`).
    #[serde(skip)]
    pub write_log: Option<crate::writes::spill::WriteLogSpec>,
    /// Faults injected during the run, and the proxies it starts for them (`[[fault]]`,
    /// `[proxy.NAME]`, `--fault`): see the `pummel-faults` crate.
    #[serde(skip_serializing_if = "pummel_faults::FaultPlan::is_empty")]
    pub faults: pummel_faults::FaultPlan,
}

/// One more host of a plan that sends to several (`[targets.NAME]`).
#[derive(Debug, Clone, Serialize)]
pub struct NamedTarget {
    /// Its name in the plan: requests say `target = "NAME"`.
    pub name: String,
    /// Where its requests go.
    pub target: Target,
    /// Its requests are signed with AWS Signature Version 4 (`auth.aws_sigv4` in its table).
    #[serde(skip)]
    pub auth: Option<crate::flow::sigv4::SigV4>,
    /// Its per-request time limit (see [`Plan::timeout`]).
    #[serde(with = "crate::seconds")]
    pub timeout: Duration,
    /// Its TCP connect time limit.
    #[serde(with = "crate::seconds")]
    pub connect_timeout: Duration,
    /// Its connections are reused (keep-alive).
    pub keepalive: bool,
    /// Which of its statuses count as success.
    pub ok_status: StatusSet,
}

/// When the run ends: whichever limit comes first.
#[derive(Debug, Clone, Serialize)]
pub struct Stop {
    /// Wall-clock length of the run (warmup included).
    #[serde(serialize_with = "crate::seconds::optional")]
    pub duration: Option<Duration>,
    /// Total number of requests to send.
    pub requests: Option<u64>,
}

impl Plan {
    /// A plan of `scenarios` against `target`, with pummel's defaults otherwise (one thread,
    /// 30 s request timeout, 10 s connect timeout, keep-alive, no thresholds).
    pub fn new(target: Target, scenarios: Scenarios, stop: Stop) -> Plan {
        Plan {
            target,
            scenarios: Arc::new(scenarios),
            stop,
            threads: 1,
            timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            drain: None,
            keepalive: true,
            redirects: 0,
            cookies: false,
            warmup: Duration::ZERO,
            ok_status: StatusSet::default(),
            thresholds: Vec::new(),
            abort_when: Vec::new(),
            abort_window: Duration::from_secs(5),
            observers: crate::observe::Observers::default(),
            source_addrs: Vec::new(),
            tls: TlsSettings::default(),
            seed: crate::flow::seed::fresh_seed(),
            auth: None,
            target_name: String::new(),
            other_targets: Vec::new(),
            segment: Segment::default(),
            start_at: None,
            request_log: None,
            write_log: None,
            faults: pummel_faults::FaultPlan::default(),
        }
    }

    /// How many hosts the plan sends to.
    pub fn target_count(&self) -> usize {
        1 + self.other_targets.len()
    }

    /// Host `index` of the plan (0: [`Plan::target`]).
    pub fn target_of(&self, index: usize) -> &Target {
        match index {
            0 => &self.target,
            i => self.other_targets.get(i - 1).map_or(&self.target, |t| &t.target),
        }
    }

    /// The name of host `index`: its `[targets.NAME]`, or `target_name` for the first.
    pub fn target_name_of(&self, index: usize) -> &str {
        match index {
            0 => &self.target_name,
            i => self.other_targets.get(i - 1).map_or("", |t| t.name.as_str()),
        }
    }

    /// The request time limit of host `index`.
    pub fn timeout_of(&self, index: usize) -> Duration {
        self.other(index).map_or(self.timeout, |t| t.timeout)
    }

    /// The connect time limit of host `index`.
    pub fn connect_timeout_of(&self, index: usize) -> Duration {
        self.other(index).map_or(self.connect_timeout, |t| t.connect_timeout)
    }

    /// Whether connections to host `index` are reused.
    pub fn keepalive_of(&self, index: usize) -> bool {
        self.other(index).map_or(self.keepalive, |t| t.keepalive)
    }

    /// The statuses of host `index` that count as success.
    pub fn ok_status_of(&self, index: usize) -> &StatusSet {
        self.other(index).map_or(&self.ok_status, |t| &t.ok_status)
    }

    fn other(&self, index: usize) -> Option<&NamedTarget> {
        index.checked_sub(1).and_then(|i| self.other_targets.get(i))
    }

    /// How requests to host `index` are signed, if they are.
    pub fn auth_of(&self, index: usize) -> Option<&crate::flow::sigv4::SigV4> {
        match index {
            0 => self.auth.as_ref(),
            i => self.other_targets.get(i - 1).and_then(|t| t.auth.as_ref()),
        }
    }

    /// The TLS client of every host, in the order of [`Plan::target_of`] (`None` for the
    /// `http://` ones).
    pub fn tls_clients(&self) -> Result<Vec<Option<TlsClient>>, PlanError> {
        let mut clients = vec![self.tls_client()?];
        for other in &self.other_targets {
            clients.push(match other.target.scheme {
                Scheme::Https => Some(TlsClient::new(&self.tls, &other.target.host)?),
                Scheme::Http => None,
            });
        }
        Ok(clients)
    }

    /// How long requests in flight when sending stops may still end: `drain`, or by default the
    /// request timeout capped at [`DEFAULT_DRAIN_CAP`] (as k6's `gracefulStop`).
    pub fn drain_time(&self) -> Duration {
        self.drain.unwrap_or_else(|| self.timeout.min(DEFAULT_DRAIN_CAP))
    }

    /// The scenario of a one-scenario plan (every quick run), `None` with several.
    pub fn single_scenario(&self) -> Option<&Scenario> {
        match self.scenarios.list.as_slice() {
            [only] => Some(only),
            _ => None,
        }
    }

    /// Total scheduled length of the run, if it is bounded by time: its longest scenario's,
    /// capped by `stop.duration`; a scenario bounded only by iterations has no planned length.
    pub fn planned_duration(&self) -> Option<Duration> {
        let lengths: Option<Vec<Duration>> =
            (0..self.scenarios.list.len()).map(|index| self.scenario_end(index)).collect();
        let longest = lengths.and_then(|l| l.into_iter().max());
        match (longest, self.stop.duration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// When scenario `index` starts, from the run's start, as planned: its `start`, counted
    /// from the end of the scenario it comes `after`; `None` when that end is not known before
    /// the run (a scenario bounded by iterations or a request count ends when its users are
    /// done, maybe well before its duration) or `after` loops.
    pub fn scenario_offset(&self, index: usize) -> Option<Duration> {
        let list = &self.scenarios.list;
        let mut offset = list[index].start;
        let mut at = index;
        for _ in 0..list.len() {
            match list[at].after {
                None => return Some(offset),
                Some(before) => {
                    let ends_on_time = list[before].iterations.is_none() && self.stop.requests.is_none();
                    offset += list[before].planned_duration().filter(|_| ends_on_time)? + list[before].start;
                    at = before;
                }
            }
        }
        None
    }

    /// When scenario `index` ends, from the run's start, as planned (see
    /// [`Plan::scenario_offset`]).
    pub fn scenario_end(&self, index: usize) -> Option<Duration> {
        Some(self.scenario_offset(index)? + self.scenarios.list[index].planned_duration()?)
    }

    /// The stages whose statistics are kept apart: the open-model scenarios' rate stages, one
    /// row each. With one open scenario, its stages; with several, the run is cut at every
    /// stage boundary of any of them, and each piece offers what they offer together (a ramp
    /// where their sum changes); without any, none (the run is one stage).
    pub fn rate_stages(&self) -> Vec<RateStage> {
        let open: Vec<Vec<RateStage>> = self.open_stages().into_iter().filter(|s| !s.is_empty()).collect();
        match open.as_slice() {
            [] => Vec::new(),
            [only] => only.clone(),
            several => merged_stages(&several.iter().map(Vec::as_slice).collect::<Vec<_>>()),
        }
    }

    /// The stage that covers `offset` from the run's start (the last one after the end).
    pub fn stage_at(&self, offset: Duration) -> usize {
        stage_at(&self.rate_stages(), offset)
    }

    /// Number of stages whose statistics are kept apart.
    pub fn stage_count(&self) -> usize {
        self.rate_stages().len().max(1)
    }

    /// The rate the open-model scenarios offer together `offset` into the run (after their
    /// stages, the rate they ended at); `None` when no scenario is open or the rate is 0. A
    /// segment's is its share ([`Segment::fraction`]).
    pub fn target_rate_at(&self, offset: Duration) -> Option<f64> {
        let lists = self.open_stages();
        // With several scenarios, one whose stages ended offers nothing more.
        let alone = lists.len() == 1;
        let offered = |stages: &Vec<RateStage>| {
            let end: Duration = stages.iter().map(|s| s.duration).sum();
            if alone || offset < end { rate_at(stages, offset) } else { 0.0 }
        };
        let share = self.segment.fraction();
        lists.iter().map(offered).reduce(|a, b| a + b).filter(|r| *r > 0.0).map(|r| r * share)
    }

    /// The mean rate the open-model scenarios offer together over their stages (a segment's:
    /// its share).
    pub fn mean_target_rate(&self) -> Option<f64> {
        self.open_scenarios()
            .filter_map(|open| {
                let secs: f64 = open.stages.iter().map(|s| s.duration.as_secs_f64()).sum();
                let requests: f64 = open.stages.iter().map(RateStage::planned_requests).sum();
                (secs > 0.0).then(|| requests / secs)
            })
            .reduce(|a, b| a + b)
            .map(|r| r * self.segment.fraction())
    }

    /// Each open-model scenario's stages on the run's clock: a scenario that starts later
    /// offers nothing until then (a level of 0 first). A scenario whose start is only known as
    /// the run goes (`after` one bounded by iterations) has no place on that clock: it is left
    /// out of the rates per second and the stage table.
    fn open_stages(&self) -> Vec<Vec<RateStage>> {
        let mut lists = Vec::new();
        for (index, scenario) in self.scenarios.list.iter().enumerate() {
            let Load::Open(open) = &scenario.load else { continue };
            let Some(offset) = self.scenario_offset(index) else { continue };
            let mut stages = Vec::with_capacity(open.stages.len() + 1);
            if !offset.is_zero() && !open.stages.is_empty() {
                stages.push(RateStage::level(0.0, offset));
            }
            stages.extend_from_slice(&open.stages);
            lists.push(stages);
        }
        lists
    }

    fn open_scenarios(&self) -> impl Iterator<Item = &OpenLoad> {
        self.scenarios.list.iter().filter_map(|s| match &s.load {
            Load::Open(open) => Some(open),
            Load::Closed(_) | Load::Hold(_) => None,
        })
    }

    /// The connections the run may open at once, over every scenario: what the open-file
    /// limit and the ephemeral ports must allow.
    pub fn wanted_connections(&self) -> u64 {
        self.scenarios.list.iter().map(Scenario::connections).sum()
    }

    /// Checks that the plan's parts agree with each other.
    pub fn validate(&self) -> Result<(), PlanError> {
        let invalid = |text: &str| Err(PlanError::Invalid(text.to_string()));
        if self.threads == 0 {
            return invalid("threads must be at least 1");
        }
        if self.scenarios.list.is_empty() {
            return invalid("a plan needs at least one scenario");
        }
        if self.stop.requests == Some(0) {
            return invalid("the request count must be at least 1");
        }
        if self.stop.duration == Some(Duration::ZERO) {
            return invalid("the duration must be longer than 0s");
        }
        for (index, scenario) in self.scenarios.list.iter().enumerate() {
            self.validate_scenario(scenario)?;
            self.validate_order(index)?;
        }
        self.validate_source_addrs()?;
        self.tls_client()?;
        if let (Some(planned), Some(late)) =
            (self.planned_duration(), self.faults.faults.iter().find(|f| Some(f.at) >= self.planned_duration()))
        {
            return Err(PlanError::Invalid(format!(
                "fault {:?} starts at {:?}, when the run ({:?}) has ended",
                late.name, late.at, planned
            )));
        }
        if let Some(rule) =
            self.abort_when.iter().find(|e| matches!(e.metric, Metric::RecoveryTime | Metric::FaultErrors))
        {
            return Err(PlanError::Invalid(format!(
                "{}: recovery_time and fault_errors are judged at the end of the run, as thresholds, not as abort rules",
                rule.text
            )));
        }
        if let Some(rule) = self.abort_when.iter().find(|e| e.metric.is_of_writes()) {
            return Err(PlanError::Invalid(format!(
                "{}: lost, recovered, unexpected and unread are judged after the read-back of the writes, \
                 as thresholds, not as abort rules",
                rule.text
            )));
        }
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
            return invalid("timeouts must be longer than 0s");
        }
        Ok(())
    }

    /// `after` names another scenario of the plan, and following it never comes back.
    fn validate_order(&self, index: usize) -> Result<(), PlanError> {
        let list = &self.scenarios.list;
        let mut at = index;
        for _ in 0..list.len() {
            match list[at].after {
                None => return Ok(()),
                Some(before) if before >= list.len() => {
                    return Err(PlanError::Invalid(format!("scenario {:?}: after names no scenario", list[at].name)));
                }
                Some(before) => at = before,
            }
        }
        Err(PlanError::Invalid(format!("scenario {:?}: its after = ... comes back to itself", list[index].name)))
    }

    fn validate_scenario(&self, scenario: &Scenario) -> Result<(), PlanError> {
        let invalid = |text: String| Err(PlanError::Invalid(text));
        let bounded = scenario.planned_duration().is_some()
            || scenario.iterations.is_some()
            || self.stop.duration.is_some()
            || self.stop.requests.is_some();
        match &scenario.load {
            Load::Closed(closed) => {
                if closed.connections == 0 {
                    return invalid("connections must be at least 1".into());
                }
                if !bounded {
                    return invalid("a run needs a duration or a request count".into());
                }
            }
            Load::Open(open) => validate_open(open)?,
            Load::Hold(hold) => {
                hold.validate()?;
                if scenario.planned_duration().is_none() && self.stop.duration.is_none() {
                    return invalid("hold needs a duration".into());
                }
                if scenario.http2.is_some() {
                    return invalid("HTTP/2 is for run and find-limit, not for hold".into());
                }
                if self.auth.is_some() {
                    return invalid("--aws-sigv4 signs the requests of run and find-limit, not those of hold".into());
                }
            }
        }
        if scenario.http2.is_some() && scenario.flow.requests().iter().any(|r| r.target != 0) {
            return invalid(format!(
                "scenario {:?}: an HTTP/2 scenario sends to the default target only (not yet to [targets.NAME])",
                scenario.name
            ));
        }
        if let Some(http2) = &scenario.http2 {
            http2.validate_streams(self.keepalive)?;
            for request in scenario.flow.requests() {
                // What HTTP/1.1 accepts but HTTP/2's header encoding does not.
                if http::Method::from_bytes(request.method.as_bytes()).is_err() {
                    return invalid(format!("method {:?} cannot be sent over HTTP/2", request.method));
                }
                for (name, value) in &request.headers {
                    let bad_value = value.is_static() && http::HeaderValue::from_str(value.text()).is_err();
                    if http::HeaderName::from_bytes(name.as_bytes()).is_err() || bad_value {
                        return invalid(format!("header {name:?} cannot be sent over HTTP/2"));
                    }
                }
            }
        }
        Ok(())
    }

    /// The TLS client configuration of an `https://` target, built from `tls` (files read,
    /// names checked); `None` for `http://`. TLS settings on an `http://` target are an
    /// error rather than silently unused.
    pub fn tls_client(&self) -> Result<Option<TlsClient>, PlanError> {
        match self.target.scheme {
            Scheme::Https => Ok(Some(TlsClient::new(&self.tls, &self.target.host)?)),
            // TLS settings may be for the plan's other hosts (`[targets.NAME]`).
            Scheme::Http
                if self.tls.is_default() || self.other_targets.iter().any(|t| t.target.scheme == Scheme::Https) =>
            {
                Ok(None)
            }
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

fn validate_open(open: &OpenLoad) -> Result<(), PlanError> {
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
    Ok(())
}

/// The stage of `stages` that covers `offset` (the last one after their end; 0 without stages).
pub fn stage_at(stages: &[RateStage], offset: Duration) -> usize {
    let mut end = Duration::ZERO;
    for (index, stage) in stages.iter().enumerate() {
        end += stage.duration;
        if offset < end {
            return index;
        }
    }
    stages.len().saturating_sub(1)
}

/// Stages of several scenarios running side by side, as one list: cut at every boundary of any
/// of them, each piece offering their sum (a scenario whose stages ended offers nothing).
fn merged_stages(scenarios: &[&[RateStage]]) -> Vec<RateStage> {
    let mut bounds: Vec<Duration> = scenarios
        .iter()
        .flat_map(|stages| {
            stages.iter().scan(Duration::ZERO, |end, stage| {
                *end += stage.duration;
                Some(*end)
            })
        })
        .collect();
    bounds.sort();
    bounds.dedup();
    // The rate a scenario offers just after `from` and just before `to`, within one piece.
    let offered = |at: Duration, before: bool| -> f64 {
        scenarios
            .iter()
            .map(|stages| {
                let total: Duration = stages.iter().map(|s| s.duration).sum();
                let inside = if before { at > Duration::ZERO && at <= total } else { at < total };
                if !inside {
                    return 0.0;
                }
                let nudge = Duration::from_nanos(1);
                rate_at(stages, if before { at - nudge } else { at })
            })
            .sum()
    };
    let mut start = Duration::ZERO;
    bounds
        .into_iter()
        .filter(|end| *end > Duration::ZERO)
        .map(|end| {
            let (from, to) = (offered(start, false), offered(end, true));
            let stage =
                RateStage { rate: to, duration: end - start, ramp_from: ((from - to).abs() > 1e-9).then_some(from) };
            start = end;
            stage
        })
        .collect()
}

/// The rate `stages` offer `offset` from their start (after their end, the last one's).
fn rate_at(stages: &[RateStage], offset: Duration) -> f64 {
    let mut start = Duration::ZERO;
    for stage in stages {
        if offset < start + stage.duration {
            return stage.rate_at(offset - start);
        }
        start += stage.duration;
    }
    stages.last().map_or(0.0, |last| last.rate)
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

fn exprs<S: serde::Serializer>(exprs: &[Expr], s: S) -> Result<S::Ok, S::Error> {
    s.collect_seq(exprs.iter().map(|e| e.text.as_str()))
}

/// A quick plan for the engine's own tests: `GET url` under `load`, one thread, short timeouts.
#[cfg(test)]
pub(crate) fn test_plan(url: &str, load: Load) -> Plan {
    let target = Target::resolve(url).expect("a test URL resolves");
    let quick =
        QuickRun { request: RequestSpec { method: "GET".into(), headers: vec![], body: vec![] }, load, http2: None };
    let stop = Stop { duration: None, requests: None };
    let scenarios = quick.scenarios(&target, true, false, None).expect("a test plan builds");
    let mut plan = Plan::new(target, scenarios, stop);
    plan.timeout = Duration::from_secs(1);
    plan.connect_timeout = Duration::from_secs(1);
    plan
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stage(rate: f64, secs: u64) -> RateStage {
        RateStage::level(rate, Duration::from_secs(secs))
    }

    #[test]
    fn several_scenarios_stages_are_cut_at_every_boundary() {
        let ramp = |from: f64, to: f64, secs: u64| RateStage {
            rate: to,
            duration: Duration::from_secs(secs),
            ramp_from: Some(from),
        };
        let a = [stage(100.0, 2), stage(200.0, 2)];
        let b = [ramp(0.0, 30.0, 3)];
        let merged = merged_stages(&[&a, &b]);
        let shown: Vec<(f64, u64, Option<f64>)> =
            merged.iter().map(|s| (s.rate.round(), s.duration.as_secs(), s.ramp_from.map(f64::round))).collect();
        // 0–2 s: 100 + ramp 0→20; 2–3 s: 200 + ramp 20→30; 3–4 s: 200 (b has ended).
        assert_eq!(shown, vec![(120.0, 2, Some(100.0)), (230.0, 1, Some(220.0)), (200.0, 1, None)]);
        let planned: f64 = merged.iter().map(RateStage::planned_requests).sum();
        let expected: f64 = a.iter().chain(&b).map(RateStage::planned_requests).sum();
        assert!((planned - expected).abs() < 1e-6, "{planned} vs {expected}: no request lost in the cut");
    }

    #[test]
    fn stages_and_rates_are_read_by_offset() {
        let stages = [stage(10.0, 2), stage(20.0, 3)];
        assert_eq!(stage_at(&stages, Duration::from_millis(1999)), 0);
        assert_eq!(stage_at(&stages, Duration::from_secs(2)), 1);
        assert_eq!(stage_at(&stages, Duration::from_secs(60)), 1);
        assert_eq!(stage_at(&[], Duration::from_secs(1)), 0);
        assert_eq!(rate_at(&stages, Duration::from_secs(1)), 10.0);
        assert_eq!(rate_at(&stages, Duration::from_secs(4)), 20.0);
        assert_eq!(rate_at(&stages, Duration::from_secs(5)), 20.0);
    }
}
