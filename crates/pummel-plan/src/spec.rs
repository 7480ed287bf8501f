//! The validated plan file (the "high" form, ripgrep's `HiArgs`): every duration parsed, every
//! rule compiled, every conflict settled. Its fields are public so the command line can apply
//! its overrides (`-d`, `-r`, `--threshold`, `-e`, `--base-url`, ...) before
//! [`PlanSpec::to_plan`] resolves the target and builds the engine's [`Plan`].
//!
//! It holds only what the engine runs today: one scenario whose flow is one request.

use std::collections::BTreeMap;
use std::time::Duration;

use pummel_engine::expr::Expr;
use pummel_engine::observe::Observers;
use pummel_engine::plan::{
    Arrival, ClosedLoad, Load, OpenLoad, Plan, PlanError, RateStage, RequestSpec, StatusSet, Stop, Target,
};

/// Per-request timeout when the plan gives none (as `pummel run`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// TCP connect timeout when the plan gives none (as `pummel run`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Open-model connection pool bound (as `pummel run -r`).
pub const DEFAULT_POOL: usize = 1000;
/// Sliding window of abort rules when `[abort].window` is not given.
pub const DEFAULT_ABORT_WINDOW: Duration = Duration::from_secs(5);

/// A validated plan file.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// `[target]`.
    pub target: TargetSpec,
    /// The one scenario.
    pub scenario: ScenarioSpec,
    /// Global thresholds, judged on the whole run.
    pub thresholds: Vec<Expr>,
    /// Abort rules, judged every second over `abort_window`.
    pub abort_when: Vec<Expr>,
    /// Sliding window of the abort rules.
    pub abort_window: Duration,
    /// `[variables]` (and `-e KEY=VALUE`), as text; kept for templates, which come later.
    pub variables: BTreeMap<String, String>,
}

/// `[target]`, with defaults applied.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Joined with each request's path; `None` when every request has a full `url`.
    pub base_url: Option<String>,
    /// Headers sent with every request.
    pub headers: Vec<(String, String)>,
    /// Per-request time limit.
    pub timeout: Duration,
    /// TCP connect time limit.
    pub connect_timeout: Duration,
    /// Reuse connections.
    pub keepalive: bool,
    /// Statuses that count as success.
    pub ok_status: StatusSet,
}

/// One scenario: its load model, its length and its (one-request) flow.
#[derive(Debug, Clone)]
pub struct ScenarioSpec {
    /// Its name.
    pub name: String,
    /// How load is offered.
    pub load: LoadSpec,
    /// Spacing of open-model arrivals.
    pub arrival: Arrival,
    /// `duration`: how long the scenario runs (with stages: a cap set from the command line).
    pub duration: Option<Duration>,
    /// `iterations`: per user in the closed model, in all in the open model.
    pub iterations: Option<u64>,
    /// A total request count that replaces `iterations` (`-n`).
    pub requests: Option<u64>,
    /// The request each iteration sends.
    pub request: RequestStepSpec,
}

/// How a scenario offers load.
#[derive(Debug, Clone)]
pub enum LoadSpec {
    /// Open model, one constant rate (req/s) for the scenario's duration.
    Rate(f64),
    /// Open model, constant levels one after the other.
    Stages(Vec<RateStage>),
    /// Closed model: this many users, each sending its next request when the last one returned.
    Users(usize),
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Path and query, joined with the base URL.
    Path(String),
    /// A full URL (query included).
    Url(String),
}

/// One `request` step.
#[derive(Debug, Clone)]
pub struct RequestStepSpec {
    /// Name of its statistics (default `METHOD path`).
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Path or URL, query parameters appended.
    pub location: Location,
    /// `[target].headers` overlaid with the request's own, in file order.
    pub headers: Vec<(String, String)>,
    /// The body bytes (from `body`, `json` or `form`).
    pub body: Vec<u8>,
}

impl PlanSpec {
    /// The URL of the request: `base_url` + `path`, or its own `url`.
    pub fn url(&self) -> String {
        match &self.scenario.request.location {
            Location::Url(url) => url.clone(),
            Location::Path(path) => join_url(self.target.base_url.as_deref().unwrap_or(""), path),
        }
    }

    /// Builds the engine's plan: resolves the target's host once (the only I/O here) and fills
    /// in what the file leaves to defaults. `threads` is the number of shards.
    pub fn to_plan(&self, threads: usize) -> Result<Plan, PlanError> {
        let target = Target::resolve(&self.url())?;
        let scenario = &self.scenario;
        let load = match &scenario.load {
            LoadSpec::Users(users) => Load::Closed(ClosedLoad { connections: *users }),
            LoadSpec::Rate(rate) => {
                // Without a duration, an iteration-bounded run lasts as long as sending takes.
                let length = scenario
                    .duration
                    .or_else(|| {
                        scenario.total_requests().map(|n| Duration::from_secs_f64((n as f64 / rate).ceil() + 1.0))
                    })
                    .unwrap_or(Duration::ZERO);
                Load::Open(open(vec![RateStage { rate: *rate, duration: length }], scenario.arrival))
            }
            LoadSpec::Stages(stages) => Load::Open(open(stages.clone(), scenario.arrival)),
        };
        let request = &scenario.request;
        Ok(Plan {
            target,
            request: RequestSpec {
                method: request.method.clone(),
                headers: request.headers.clone(),
                body: request.body.clone(),
            },
            load,
            stop: Stop { duration: scenario.duration, requests: scenario.total_requests() },
            threads,
            timeout: self.target.timeout,
            connect_timeout: self.target.connect_timeout,
            keepalive: self.target.keepalive,
            warmup: Duration::ZERO,
            ok_status: self.target.ok_status.clone(),
            thresholds: self.thresholds.clone(),
            abort_when: self.abort_when.clone(),
            abort_window: self.abort_window,
            observers: Observers::default(),
            source_addrs: Vec::new(),
            tls: Default::default(),
        })
    }

    /// One line saying what the plan does, e.g.
    /// `scenario "api": GET http://127.0.0.1:8090/api, rate 50 → 200 → 500 req/s over 9s`.
    pub fn describe(&self) -> String {
        let s = &self.scenario;
        let load = match &s.load {
            LoadSpec::Rate(rate) => format!("{} req/s", number(*rate)),
            LoadSpec::Users(users) => format!("{users} users"),
            LoadSpec::Stages(stages) => {
                let rates: Vec<String> = stages.iter().map(|st| number(st.rate)).collect();
                let total: Duration = stages.iter().map(|st| st.duration).sum();
                format!("rate {} req/s over {}", rates.join(" → "), seconds(total))
            }
        };
        let mut limits = Vec::new();
        if let Some(d) = s.duration {
            limits.push(format!("for {}", seconds(d)));
        }
        if let Some(n) = s.total_requests() {
            limits.push(format!("{n} requests at most"));
        }
        let limits = if limits.is_empty() { String::new() } else { format!(", {}", limits.join(", ")) };
        format!("scenario {:?}: {} {}, {load}{limits}", s.name, s.request.method, self.url())
    }
}

impl ScenarioSpec {
    /// The total number of requests the run may send: `-n`, or `iterations` (times the users in
    /// the closed model, where iterations count per user).
    pub fn total_requests(&self) -> Option<u64> {
        self.requests.or_else(|| {
            self.iterations.map(|n| match self.load {
                LoadSpec::Users(users) => n.saturating_mul(users as u64),
                LoadSpec::Rate(_) | LoadSpec::Stages(_) => n,
            })
        })
    }
}

fn open(stages: Vec<RateStage>, arrival: Arrival) -> OpenLoad {
    OpenLoad { stages, arrival, max_connections: DEFAULT_POOL, max_inflight: None }
}

/// `base` + `path` with exactly one `/` between them.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.starts_with('/') { format!("{base}{path}") } else { format!("{base}/{path}") }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value}") }
}

fn seconds(d: Duration) -> String {
    pummel_engine::duration::format_duration(d)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn joins_base_and_path_with_one_slash() {
        assert_eq!(join_url("http://h:1", "/a"), "http://h:1/a");
        assert_eq!(join_url("http://h:1/", "/a"), "http://h:1/a");
        assert_eq!(join_url("http://h:1/api/", "v1?x=1"), "http://h:1/api/v1?x=1");
    }
}
