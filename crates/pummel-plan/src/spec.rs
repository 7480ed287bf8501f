//! The validated plan file (the "high" form, ripgrep's `HiArgs`): every duration parsed, every
//! rule, template, JSONPath and regex compiled, every conflict settled. Its fields are public
//! so the command line can apply its overrides (`-d`, `-r`, `--threshold`, `-e`, `-H`, ...)
//! before [`PlanSpec::to_plan`] resolves the target and builds the engine's [`Plan`].

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use pummel_engine::flow::feeder::{Feeder, FeederFormat, FeederMode, WhenExhausted};
use pummel_engine::flow::payload::random_payload;
use pummel_engine::flow::sigv4::{Credentials, SigV4};
use pummel_engine::flow::template::{Globals, Template, Vars};
use pummel_engine::flow::{
    Block, Body, Branch, CheckStep, Choice, Flow, JsonTemplate, NamedStats, RenderedRequest, RequestStep, Scenario,
    Scenarios, Step, Think, UserStage, WsCloseStep, WsConnectStep, WsExpectStep, WsMatcher, WsSendStep,
};
use pummel_engine::inspect::check::Check;
use pummel_engine::inspect::extract::Extractor;
use pummel_engine::plan::{
    Arrival, ClosedLoad, Http2Settings, Load, NamedTarget, OpenLoad, Plan, PlanError, RateStage, StatusSet, Stop,
    Target,
};
use pummel_engine::proto::http1::encode_request;
use pummel_engine::writes::{ReadStep, WriteStep};
use pummel_results::expr::Expr;

/// Per-request timeout when the plan gives none (as `pummel run`).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// Redirects a plan's request follows when `[target]` does not say (k6's default).
pub const DEFAULT_REDIRECTS: u32 = 10;
/// TCP connect timeout when the plan gives none (as `pummel run`).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Open-model connection pool bound (as `pummel run -r`).
pub const DEFAULT_POOL: usize = 1000;
/// Sliding window of abort rules when `[abort].window` is not given.
pub const DEFAULT_ABORT_WINDOW: Duration = Duration::from_secs(5);
/// How long `ws_expect` waits when the plan gives no `timeout`.
pub const DEFAULT_WS_EXPECT_TIMEOUT: Duration = Duration::from_secs(10);

/// The signer of `auth.aws_sigv4`, its keys read from the environment now.
fn signer(sigv4: &SigV4Spec) -> Result<SigV4, PlanError> {
    let credentials = Credentials::from_env(&sigv4.access_key_env, &sigv4.secret_key_env)
        .map_err(|e| PlanError::Invalid(format!("auth.aws_sigv4: {e}")))?;
    Ok(SigV4 { region: sigv4.region.clone(), service: sigv4.service.clone(), credentials })
}

/// How many placeholders `--dry-run` shows in place of each exported list.
const DRY_RUN_EXPORTED: usize = 10_000;

/// A validated plan file.
#[derive(Debug, Clone)]
pub struct PlanSpec {
    /// `[target]`, or the first `[targets.NAME]`: where requests go unless they name a target.
    pub target: TargetSpec,
    /// The name of `target` when the plan has several (`[targets.NAME]`; `[target]` is
    /// `"default"`); empty for a plan of one host.
    pub target_name: String,
    /// The other `[targets.NAME]`, in file order: index `i` here is host `i + 1`.
    pub other_targets: Vec<(String, TargetSpec)>,
    /// The scenarios, all run at once.
    pub scenarios: Vec<ScenarioSpec>,
    /// Global thresholds, judged on the whole run.
    pub thresholds: Vec<Expr>,
    /// Thresholds per request name (`"GET /api" = [...]`), judged on that name's statistics.
    pub named_thresholds: Vec<(String, Vec<Expr>)>,
    /// Abort rules, judged every second over `abort_window`.
    pub abort_when: Vec<Expr>,
    /// Sliding window of the abort rules.
    pub abort_window: Duration,
    /// `[variables]` (and `-e KEY=VALUE`), visible to every template.
    pub variables: BTreeMap<String, String>,
    /// `[feeders.NAME]`, checked to exist; opened when the plan is built.
    pub feeders: Vec<FeederSpec>,
    /// `seed = N`: the seed of the run's randomness; `None`: a fresh one each run.
    pub seed: Option<u64>,
    /// `[[fault]]` and `[proxy.NAME]`: what the run does to its target, and when.
    pub faults: pummel_faults::FaultPlan,
    /// Every file the plan refers to (feeders, bodies), as written in it and where it was
    /// found: what a coordinator ships to its agents with the plan.
    pub files: Vec<(String, std::path::PathBuf)>,
    /// `[verify]`: how the writes are read back after the load.
    pub verify: Option<VerifySpec>,
}

/// `[verify]`, with defaults applied: after the load, its faults and `settle`, every key the
/// run wrote is read back by `request`, at `rate` over at most `connections`.
#[derive(Debug, Clone)]
pub struct VerifySpec {
    /// Time between the end of the load (and its faults) and the first read.
    pub settle: Duration,
    /// Reads per second.
    pub rate: f64,
    /// Connections the reads share, at most.
    pub connections: usize,
    /// Time limit of each read.
    pub timeout: Duration,
    /// The read of one key (its templates read `{{ key }}` and `{{ value }}`).
    pub request: RequestStepSpec,
    /// Statuses meaning the key is there.
    pub found: StatusSet,
    /// Statuses meaning it is not.
    pub missing: StatusSet,
    /// Where the stored value is in the answer (`None`: the whole body).
    pub value: Option<Extractor>,
}

/// `[verify]`'s settle time when it gives none.
pub const DEFAULT_SETTLE: Duration = Duration::from_secs(1);
/// `[verify]`'s reads per second when it gives none.
pub const DEFAULT_VERIFY_RATE: f64 = 500.0;
/// `[verify]`'s connections when it gives none.
pub const DEFAULT_VERIFY_CONNECTIONS: usize = 50;
/// `[verify]`'s time limit per read when it gives none: the read-back is patient, whatever the
/// load's own (often short) timeout was.
pub const DEFAULT_VERIFY_TIMEOUT: Duration = Duration::from_secs(10);

/// `[target]`, with defaults applied.
#[derive(Debug, Clone)]
pub struct TargetSpec {
    /// Joined with each request's path; `None` when every request has a full `url`.
    pub base_url: Option<String>,
    /// Headers sent with every request (merged into each request at validation).
    pub headers: Vec<(String, String)>,
    /// Per-request time limit.
    pub timeout: Duration,
    /// TCP connect time limit.
    pub connect_timeout: Duration,
    /// Reuse connections.
    pub keepalive: bool,
    /// Statuses that count as success.
    pub ok_status: StatusSet,
    /// `http_version = "2"`: streams per connection; `None` for HTTP/1.1.
    pub http2_streams: Option<usize>,
    /// `auth.aws_sigv4`: every request signed.
    pub sigv4: Option<SigV4Spec>,
    /// Redirects a request follows at most.
    pub redirects: u32,
    /// Each virtual user keeps a cookie jar.
    pub cookies: bool,
}

/// `auth.aws_sigv4`, with the names of the variables holding the keys (read when the plan runs,
/// so `pummel check` needs no secrets).
#[derive(Debug, Clone)]
pub struct SigV4Spec {
    /// Region of the credential scope.
    pub region: String,
    /// Service of the credential scope.
    pub service: String,
    /// Variable holding the access key.
    pub access_key_env: String,
    /// Variable holding the secret key.
    pub secret_key_env: String,
}

/// One `[feeders.NAME]`.
#[derive(Debug, Clone)]
pub struct FeederSpec {
    /// Its name in templates: `{{ NAME.column }}`.
    pub name: String,
    /// The file, relative paths resolved against the plan's folder.
    pub path: PathBuf,
    /// CSV or JSON lines.
    pub format: FeederFormat,
    /// Row order.
    pub mode: FeederMode,
    /// What happens after the last row.
    pub when_exhausted: WhenExhausted,
    /// Its columns, read at validation.
    pub columns: Vec<String>,
}

/// One scenario: its load model, its length and its flow.
#[derive(Debug, Clone)]
pub struct ScenarioSpec {
    /// Its name.
    pub name: String,
    /// How load is offered.
    pub load: LoadSpec,
    /// Spacing of open-model arrivals.
    pub arrival: Arrival,
    /// Closed model: time over which the users start.
    pub ramp_up: Duration,
    /// `duration`: how long the scenario runs (with stages: a cap set from the command line).
    pub duration: Option<Duration>,
    /// `iterations`: per user in the closed model, in all in the open model.
    pub iterations: Option<u64>,
    /// The steps of each iteration.
    pub flow: Vec<StepSpec>,
    /// `http_version = "2"` (the scenario's own, else the target's): streams per connection;
    /// `None` for HTTP/1.1.
    pub http2_streams: Option<usize>,
    /// `start`: when it starts, from its phase's start (or from the end of `after`).
    pub start: Duration,
    /// `after`: the name of the scenario (of the same phase) whose end starts this one.
    pub after: Option<String>,
    /// `phase`: which part of the run it belongs to.
    pub phase: Phase,
    /// `export`: variables a setup scenario collects for the later phases.
    pub export: Vec<String>,
}

/// The parts of a run, in order: each is a run of its own scenarios, and the values a setup
/// exports reach the templates of the load and the teardown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub enum Phase {
    /// Runs once before the load (creating data, logging in); its figures are its own.
    Setup,
    /// The load whose figures the run reports.
    #[default]
    Load,
    /// Runs after the load, also after an abort or an interrupt (cleaning up).
    Teardown,
}

impl Phase {
    /// Its name in plans and output.
    pub fn name(self) -> &'static str {
        match self {
            Phase::Setup => "setup",
            Phase::Load => "load",
            Phase::Teardown => "teardown",
        }
    }
}

/// How a scenario offers load.
#[derive(Debug, Clone)]
pub enum LoadSpec {
    /// Open model, one constant rate (iterations per second) for the scenario's duration.
    Rate(f64),
    /// Open model, levels and linear ramps one after the other.
    Stages(Vec<RateStage>),
    /// Closed model: this many users, each starting its next iteration when the last one ended.
    Users(usize),
    /// Closed model with a changing number of users: levels and linear ramps of users.
    UserStages(Vec<UserStage>),
}

/// One validated step.
#[derive(Debug, Clone)]
pub enum StepSpec {
    /// An HTTP request.
    Request(Box<RequestStepSpec>),
    /// A pause.
    Think(Think),
    /// `repeat` / `every` with a nested flow.
    Block {
        /// How many times.
        repeat: Option<u64>,
        /// Interval between starts.
        every: Option<Duration>,
        /// The nested steps.
        flow: Vec<StepSpec>,
    },
    /// `choose`: weighted sub-flows.
    Choose(Vec<BranchSpec>),
    /// `ws_connect`.
    WsConnect {
        /// Statistics name.
        name: String,
        /// `ws://` or `wss://` URL (a template).
        url: Template,
        /// Upgrade request headers.
        headers: Vec<(String, Template)>,
    },
    /// `ws_send`.
    WsSend {
        /// Statistics name of the exchange.
        name: String,
        /// The message.
        text: Template,
    },
    /// `ws_expect`.
    WsExpect {
        /// Statistics name when no send comes before it.
        name: String,
        /// What the message must look like.
        matcher: WsMatcher,
        /// How long to wait.
        timeout: Duration,
        /// Values taken from the message.
        extract: Vec<Extractor>,
    },
    /// `ws_close`.
    WsClose(WsCloseStep),
}

/// One branch of `choose`.
#[derive(Debug, Clone)]
pub struct BranchSpec {
    /// Relative weight.
    pub weight: f64,
    /// Its name in the results.
    pub name: String,
    /// Its steps.
    pub flow: Vec<StepSpec>,
}

/// Where a request goes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Location {
    /// Path and query (a template's text), joined with the base URL.
    Path(String),
    /// A full URL (query included); its path and query may hold templates.
    Url(String),
}

/// One `request` step.
#[derive(Debug, Clone)]
pub struct RequestStepSpec {
    /// Name of its statistics (default `METHOD path`).
    pub name: String,
    /// HTTP method.
    pub method: String,
    /// Path or URL, fixed query parameters appended.
    pub location: Location,
    /// Query parameters with templates in their values, encoded and appended once rendered;
    /// empty when every value is fixed (then they are part of `location`).
    pub query: Vec<(String, Template)>,
    /// `[target].headers` overlaid with the request's own, in file order; values are templates.
    pub headers: Vec<(String, Template)>,
    /// The body.
    pub body: BodySpec,
    /// Values taken from the response.
    pub extract: Vec<Extractor>,
    /// Checks on the response.
    pub checks: Vec<Check>,
    /// The host it goes to: 0 for [`PlanSpec::target`], `i` for `other_targets[i - 1]`.
    pub target: usize,
    /// `write = { key = ... }`: the request writes a key (see `pummel_engine::writes`).
    pub write: Option<WriteStep>,
}

/// A request body.
#[derive(Debug, Clone)]
pub enum BodySpec {
    /// Fixed bytes (possibly empty).
    Fixed(Vec<u8>),
    /// A template rendered per request.
    Template(Template),
    /// `random_body`: a random payload of this many bytes, generated once and shared.
    Random(usize),
    /// A `json` body with templates in its strings (a fixed one is `Fixed`).
    Json(JsonTemplate),
    /// A `form` body with templates in its values (a fixed one is `Fixed`).
    Form(Vec<(String, Template)>),
    /// A `multipart` body with templated fields (a fixed one is `Fixed`).
    Multipart(Vec<pummel_engine::flow::multipart::Part>),
}

impl RequestStepSpec {
    /// The request's path (and query) template text, without the origin of a full URL.
    pub fn path_text(&self) -> &str {
        match &self.location {
            Location::Path(path) => path,
            Location::Url(url) => url_path(url),
        }
    }
}

impl PlanSpec {
    /// The URL connections go to: the base URL, or the first request's own URL.
    pub fn origin(&self) -> Option<String> {
        if let Some(base) = &self.target.base_url {
            return Some(base.clone());
        }
        self.requests().find_map(|r| match &r.location {
            Location::Url(url) => Some(url.clone()),
            Location::Path(_) => None,
        })
    }

    /// The URL of the first request: `base_url` + `path`, or its own `url`.
    pub fn url(&self) -> String {
        match self.requests().next() {
            Some(request) => self.request_url(request),
            None => self.target.base_url.clone().unwrap_or_default(),
        }
    }

    /// A request's full URL (template text for templated paths).
    pub fn request_url(&self, request: &RequestStepSpec) -> String {
        match &request.location {
            Location::Url(url) => url.clone(),
            Location::Path(path) => join_url(self.target_spec(request.target).base_url.as_deref().unwrap_or(""), path),
        }
    }

    /// Host `index` of the plan (0: [`PlanSpec::target`]).
    pub fn target_spec(&self, index: usize) -> &TargetSpec {
        match index {
            0 => &self.target,
            i => self.other_targets.get(i - 1).map_or(&self.target, |(_, t)| t),
        }
    }

    /// Every request step of every scenario, in file order.
    pub fn requests(&self) -> impl Iterator<Item = &RequestStepSpec> {
        let mut all = Vec::new();
        for scenario in &self.scenarios {
            collect_requests(&scenario.flow, &mut all);
        }
        all.into_iter()
    }

    /// Every request step, mutably (for the command line's `-H`, `-m`, `-b`).
    pub fn requests_mut(&mut self) -> Vec<&mut RequestStepSpec> {
        let mut all = Vec::new();
        for scenario in &mut self.scenarios {
            collect_requests_mut(&mut scenario.flow, &mut all);
        }
        all
    }

    /// Builds the engine's plan: resolves the target's host once (the only I/O besides opening
    /// the feeders' files) and fills in what the file leaves to defaults. `threads` is the
    /// number of shards.
    /// The plan is the load phase's: see [`PlanSpec::phase_plan`] for setup and teardown.
    pub fn to_plan(&self, threads: usize) -> Result<Plan, PlanError> {
        let mut plan = self.build(threads, Phase::Load)?;
        plan.thresholds = self.thresholds.clone();
        plan.abort_when = self.abort_when.clone();
        plan.abort_window = self.abort_window;
        plan.faults = self.faults.clone();
        Arc::make_mut(&mut plan.scenarios).named_thresholds = self.named_thresholds.clone();
        Ok(plan)
    }

    /// The engine plan of the setup or teardown phase (its scenarios only, the target's
    /// settings, no thresholds or abort rules: their figures are reported, not judged);
    /// `None` when the plan has no scenario of that phase.
    pub fn phase_plan(&self, phase: Phase, threads: usize) -> Result<Option<Plan>, PlanError> {
        if !self.scenarios.iter().any(|s| s.phase == phase) {
            return Ok(None);
        }
        self.build(threads, phase).map(Some)
    }

    /// True when the plan has setup or teardown scenarios.
    pub fn has_phases(&self) -> bool {
        self.scenarios.iter().any(|s| s.phase != Phase::Load)
    }

    /// True when a request of the load writes keys (`write = { key = ... }`).
    pub fn has_writes(&self) -> bool {
        self.scenarios.iter().filter(|s| s.phase == Phase::Load).any(|s| {
            let mut requests = Vec::new();
            collect_requests(&s.flow, &mut requests);
            requests.iter().any(|r| r.write.is_some())
        })
    }

    /// True when a write of the plan records a value, so that reads compare values.
    pub fn writes_values(&self) -> bool {
        self.requests().filter_map(|r| r.write.as_ref()).any(|w| w.value.is_some() || w.body)
    }

    /// The engine plan of the verify phase: one closed-model scenario of `[verify]`'s
    /// connections as users, each reading the key of one row of `feeder` (the grouped write
    /// log, see `pummel_engine::writes::verify`) per iteration and pausing so that together they
    /// read at most `[verify]`'s rate, until the `keys` rows are read; `None` without
    /// `[verify]`. (Closed, not open: a read waiting for a connection when a schedule ends would
    /// be dropped, its key never read; users just stop when the keys run out.)
    pub fn verify_plan(&self, threads: usize, feeder: Feeder, keys: u64) -> Result<Option<Plan>, PlanError> {
        let Some(verify) = &self.verify else { return Ok(None) };
        let compare = self.writes_values();
        let plan = self.assemble(threads, |builder| {
            let mut step = builder.request(&verify.request, 0)?;
            step.read = Some(Arc::new(ReadStep {
                found: verify.found.clone(),
                missing: verify.missing.clone(),
                value: verify.value.clone(),
                compare,
            }));
            let users = (verify.connections as u64).min(keys).max(1);
            let mut steps = vec![Step::Request(Arc::new(step))];
            // Each user reads one key every `users / rate` seconds at most.
            let pause = Duration::from_secs_f64(users as f64 / verify.rate);
            if pause >= Duration::from_micros(100) {
                steps.push(Step::Think(Think::Fixed(pause)));
            }
            let scenario = Scenario {
                name: "verify".to_string(),
                load: Load::Closed(ClosedLoad { connections: users as usize }),
                ramp_up: Duration::ZERO,
                user_stages: Vec::new(),
                feeders: vec![0],
                // A bound no user reaches: users stop when the keys run out.
                iterations: Some(keys),
                duration: None,
                flow: Flow { steps },
                http2: self.target.http2_streams.map(|streams| Http2Settings { streams }),
                start: Duration::ZERO,
                after: None,
                export: Vec::new(),
            };
            Ok((vec![scenario], vec![Arc::new(feeder)]))
        })?;
        let mut plan = plan;
        plan.timeout = verify.timeout;
        for other in &mut plan.other_targets {
            other.timeout = verify.timeout;
        }
        Ok(Some(plan))
    }

    /// Every host of the plan resolved (the only I/O of building a plan besides the feeders),
    /// in the order of `Plan::target_of`.
    fn resolve_targets(&self) -> Result<Vec<Target>, PlanError> {
        let origin = self.origin().ok_or_else(|| PlanError::Invalid("the plan has no URL to send to".into()))?;
        let mut targets = vec![Target::resolve(&origin)?];
        for (name, spec) in &self.other_targets {
            let base = spec
                .base_url
                .as_deref()
                .ok_or_else(|| PlanError::Invalid(format!("[targets.{name}] has no base_url")))?;
            targets.push(Target::resolve(base)?);
        }
        Ok(targets)
    }

    fn build(&self, threads: usize, phase: Phase) -> Result<Plan, PlanError> {
        self.assemble(threads, |builder| self.phase_scenarios(builder, phase))
    }

    /// The scenarios of `phase`, and the plan's feeders, opened.
    fn phase_scenarios(
        &self,
        builder: &mut Builder,
        phase: Phase,
    ) -> Result<(Vec<Scenario>, Vec<Arc<Feeder>>), PlanError> {
        let mut list = Vec::new();
        let in_phase: Vec<&ScenarioSpec> = self.scenarios.iter().filter(|s| s.phase == phase).collect();
        for (index, scenario) in in_phase.iter().enumerate() {
            let flow = builder.flow(&scenario.flow, index)?;
            list.push(Scenario {
                name: scenario.name.clone(),
                load: scenario.engine_load(),
                ramp_up: scenario.ramp_up,
                user_stages: match &scenario.load {
                    LoadSpec::UserStages(stages) => stages.clone(),
                    _ => Vec::new(),
                },
                feeders: {
                    let mut read = std::collections::BTreeSet::new();
                    flow_variables(&scenario.flow, &mut read);
                    (0..self.feeders.len()).filter(|&i| read.contains(&self.feeders[i].name)).collect()
                },
                iterations: scenario.iterations,
                duration: scenario.duration,
                flow,
                http2: scenario.http2_streams.map(|streams| Http2Settings { streams }),
                start: scenario.start,
                after: scenario.after.as_ref().and_then(|name| in_phase.iter().position(|s| &s.name == name)),
                export: scenario.export.clone(),
            });
        }
        let mut feeders = Vec::new();
        for feeder in &self.feeders {
            let opened = Feeder::open(&feeder.name, &feeder.path, feeder.format, feeder.mode, feeder.when_exhausted)
                .map_err(|e| PlanError::Invalid(format!("feeder {:?}: {e}", feeder.name)))?;
            feeders.push(Arc::new(opened));
        }
        Ok((list, feeders))
    }

    /// An engine plan of the scenarios `scenarios` makes (with the builder that numbers their
    /// names, checks and branches), over the plan's targets and their settings.
    fn assemble(
        &self,
        threads: usize,
        scenarios: impl FnOnce(&mut Builder) -> Result<(Vec<Scenario>, Vec<Arc<Feeder>>), PlanError>,
    ) -> Result<Plan, PlanError> {
        let resolved = self.resolve_targets()?;
        let refs: Vec<&Target> = resolved.iter().collect();
        let mut builder =
            Builder { spec: self, targets: &refs, names: Vec::new(), checks: Vec::new(), branches: Vec::new() };
        let (list, feeders) = scenarios(&mut builder)?;
        let Builder { names, checks, branches, .. } = builder;
        let scenarios = Scenarios {
            list,
            names,
            checks,
            branches,
            globals: Arc::new(Globals::new(&self.variables)),
            feeders,
            named_thresholds: Vec::new(),
        };
        let mut resolved = resolved.into_iter();
        let target = resolved.next().ok_or_else(|| PlanError::Invalid("the plan has no URL to send to".into()))?;
        let mut plan = Plan::new(target, scenarios, Stop { duration: None, requests: None });
        plan.target_name = self.target_name.clone();
        for ((name, spec), target) in self.other_targets.iter().zip(resolved) {
            let auth = spec.sigv4.as_ref().map(signer).transpose()?;
            plan.other_targets.push(NamedTarget {
                name: name.clone(),
                target,
                auth,
                timeout: spec.timeout,
                connect_timeout: spec.connect_timeout,
                keepalive: spec.keepalive,
                ok_status: spec.ok_status.clone(),
            });
        }
        plan.threads = threads;
        plan.timeout = self.target.timeout;
        plan.connect_timeout = self.target.connect_timeout;
        plan.keepalive = self.target.keepalive;
        plan.redirects = self.target.redirects;
        plan.cookies = self.target.cookies;
        plan.ok_status = self.target.ok_status.clone();
        if let Some(seed) = self.seed {
            plan.seed = seed;
        }
        plan.auth = self.target.sigv4.as_ref().map(signer).transpose()?;
        Ok(plan)
    }

    /// One line per scenario saying what it does, e.g.
    /// `scenario "api": 3 steps (2 requests), rate 50 → 200 → 500 /s over 9s`.
    pub fn describe(&self) -> String {
        let mut lines: Vec<String> = self.scenarios.iter().map(|s| self.describe_scenario(s)).collect();
        if let Some(verify) = &self.verify {
            let writes = self.requests().filter(|r| r.write.is_some()).count();
            lines.push(format!(
                "verify: {} {} per key written ({writes} request{} write{}), {} reads/s over at most {} connections, {}",
                verify.request.method,
                self.request_url(&verify.request),
                if writes == 1 { "" } else { "s" },
                if writes == 1 { "s" } else { "" },
                number(verify.rate),
                verify.connections,
                if verify.settle.is_zero() { "at once".to_string() } else { seconds(verify.settle) + " after the load" },
            ));
        }
        lines.join("\n")
    }

    fn describe_scenario(&self, s: &ScenarioSpec) -> String {
        let load = match &s.load {
            LoadSpec::Rate(rate) => format!("{} iterations/s", number(*rate)),
            LoadSpec::Users(users) => format!("{users} users"),
            LoadSpec::UserStages(stages) => {
                let levels: Vec<String> = stages
                    .iter()
                    .map(|st| match st.ramp_from {
                        Some(_) => format!("ramp to {}", st.users),
                        None => st.users.to_string(),
                    })
                    .collect();
                let total: Duration = stages.iter().map(|st| st.duration).sum();
                format!("users {} over {}", levels.join(" → "), seconds(total))
            }
            LoadSpec::Stages(stages) => {
                let rates: Vec<String> = stages
                    .iter()
                    .map(|st| match st.ramp_from {
                        Some(_) => format!("ramp to {}", number(st.rate)),
                        None => number(st.rate),
                    })
                    .collect();
                let total: Duration = stages.iter().map(|st| st.duration).sum();
                format!("rate {} /s over {}", rates.join(" → "), seconds(total))
            }
        };
        let mut limits = Vec::new();
        if let Some(d) = s.duration {
            limits.push(format!("for {}", seconds(d)));
        }
        if let Some(n) = s.iterations {
            limits.push(format!(
                "{n} iterations{}",
                if matches!(s.load, LoadSpec::Users(_) | LoadSpec::UserStages(_)) { " per user" } else { "" }
            ));
        }
        let limits = if limits.is_empty() { String::new() } else { format!(", {}", limits.join(", ")) };
        let mut requests = Vec::new();
        collect_requests(&s.flow, &mut requests);
        let what = match (count_steps(&s.flow), requests.first()) {
            (1, Some(r)) => format!("{} {}", r.method, self.request_url(r)),
            (steps, _) => format!("{steps} steps ({} requests)", requests.len()),
        };
        let http2 = match s.http2_streams {
            Some(streams) => format!(", over HTTP/2 ({streams} streams per connection)"),
            None => String::new(),
        };
        let mut when = String::new();
        if s.phase != Phase::Load {
            when.push_str(&format!(", {}", s.phase.name()));
        }
        if let Some(after) = &s.after {
            when.push_str(&format!(", after {after:?}"));
        }
        if !s.start.is_zero() {
            when.push_str(&format!(", starting at {}", seconds(s.start)));
        }
        if !s.export.is_empty() {
            when.push_str(&format!(", exports {}", s.export.join(", ")));
        }
        format!("scenario {:?}: {what}, {load}{limits}{http2}{when}", s.name)
    }

    /// The first `n` requests each scenario would send, rendered as text (method, URL,
    /// headers, body) for `--dry-run`, by the same rendering as the run. Values extracted from
    /// responses are shown as `<name>`, since nothing is sent; feeders give their first rows;
    /// signatures are left out (they need the keys and the time of sending).
    pub fn dry_run(&self, n: usize) -> Result<String, PlanError> {
        // As a run does: the plan's seed, or a fresh one, said first so the output can be had again.
        let seed = self.seed.unwrap_or_else(pummel_engine::flow::seed::fresh_seed);
        let resolved = self.resolve_targets()?;
        let refs: Vec<&Target> = resolved.iter().collect();
        let mut builder =
            Builder { spec: self, targets: &refs, names: Vec::new(), checks: Vec::new(), branches: Vec::new() };
        // A setup's exported lists are only known when it ran: placeholders stand for them.
        let exported: BTreeMap<String, Vec<String>> = self
            .scenarios
            .iter()
            .flat_map(|s| &s.export)
            .map(|name| (name.clone(), (0..DRY_RUN_EXPORTED).map(|i| format!("<{name} {i}>")).collect()))
            .collect();
        let globals = Arc::new(Globals::new(&self.variables).with_lists(&exported));
        let mut feeders = Vec::new();
        for feeder in &self.feeders {
            let opened = Feeder::open(&feeder.name, &feeder.path, feeder.format, feeder.mode, feeder.when_exhausted)
                .map_err(|e| PlanError::Invalid(format!("feeder {:?}: {e}", feeder.name)))?;
            feeders.push(opened);
        }
        let origin_of = |t: &Target| format!("{}://{}", t.url.split("://").next().unwrap_or("http"), t.host_header);
        let bases: Vec<String> = resolved.iter().map(origin_of).collect();
        let mut out = format!("# seed {seed}\n");
        for (index, scenario) in self.scenarios.iter().enumerate() {
            // The requests of the scenario's user 0, drawn as that user draws them in a run.
            let mut rng = pummel_engine::flow::seed::user_rng(seed, index, 0);
            out.push_str(&format!("# scenario {:?}\n", scenario.name));
            let mut specs = Vec::new();
            collect_requests(&scenario.flow, &mut specs);
            let mut ws = Vec::new();
            collect_ws(&scenario.flow, &mut ws);
            if !ws.is_empty() {
                // The WebSocket messages of user 0's first iterations, in flow order.
                let mut vars = Vars::new(globals.clone(), 0);
                let mut url = String::new();
                let (mut shown, mut iteration) = (0, 0u64);
                while shown < n && iteration < n as u64 {
                    vars.set_iteration(iteration);
                    for step in &ws {
                        match step {
                            WsDry::Connect(to) => {
                                url = to.render_to_string(&vars).unwrap_or_else(|_| to.text().to_string())
                            }
                            WsDry::Send(text) if shown < n => {
                                let (rendered, advanced) =
                                    pummel_engine::flow::seed::rendering_with(rng, || text.render_to_string(&vars));
                                rng = advanced;
                                out.push_str(&match rendered {
                                    Ok(message) => format!("WS SEND {url}\n{message}\n\n"),
                                    Err(e) => format!("WS SEND {url} <error: {e}>\n\n"),
                                });
                                shown += 1;
                            }
                            WsDry::Send(_) => {}
                        }
                    }
                    iteration += 1;
                }
            }
            if specs.is_empty() {
                if ws.is_empty() {
                    out.push_str("(no HTTP requests or WebSocket messages)\n\n");
                }
                continue;
            }
            let steps = specs.iter().map(|r| builder.request(r, index)).collect::<Result<Vec<_>, _>>()?;
            let extracted: Vec<String> =
                specs.iter().flat_map(|r| r.extract.iter().map(|e| e.variable.clone())).collect();
            let mut shown = 0;
            let mut iteration = 0u64;
            while shown < n {
                let mut vars = Vars::new(globals.clone(), 0);
                vars.set_iteration(iteration);
                for name in &extracted {
                    vars.set(name, format!("<{name}>"));
                }
                for feeder in &feeders {
                    if let Ok(Some(row)) = feeder.next_row(&mut rng) {
                        vars.set_row(feeder.name(), row);
                    }
                }
                for step in steps.iter().take(n - shown) {
                    let (rendered, advanced) = pummel_engine::flow::seed::rendering_with(rng, || step.render(&vars));
                    rng = advanced;
                    out.push_str(&match rendered {
                        Ok(request) => render_text(&step.method, &bases[step.target], &request),
                        Err(e) => format!("{} <error: {e}>\n", step.method),
                    });
                    out.push('\n');
                    shown += 1;
                }
                iteration += 1;
            }
        }
        Ok(out)
    }
}

/// A rendered request as text: `METHOD URL`, headers, then the body (random bytes summarized).
fn render_text(method: &str, base: &str, request: &RenderedRequest) -> String {
    let mut text = format!("{method} {base}{}\n", request.path);
    for (name, value) in &request.headers {
        text.push_str(&format!("{name}: {value}\n"));
    }
    match (&request.body, &request.payload_sha256) {
        (Some(body), Some(_)) => text.push_str(&format!("\n<{} random bytes>\n", body.len())),
        (Some(body), None) if !body.is_empty() => {
            text.push_str(&format!("\n{}\n", String::from_utf8_lossy(&body.to_vec())))
        }
        _ => {}
    }
    text
}

impl ScenarioSpec {
    /// The most users the scenario has at once (closed model).
    pub fn max_users(&self) -> u64 {
        match &self.load {
            LoadSpec::Users(n) => *n as u64,
            LoadSpec::UserStages(stages) => {
                stages.iter().map(|s| s.users.max(s.ramp_from.unwrap_or(0))).max().unwrap_or(0).max(1)
            }
            LoadSpec::Rate(_) | LoadSpec::Stages(_) => 0,
        }
    }

    /// The engine's load for this scenario.
    fn engine_load(&self) -> Load {
        match &self.load {
            LoadSpec::Users(users) => Load::Closed(ClosedLoad { connections: *users }),
            LoadSpec::UserStages(_) => Load::Closed(ClosedLoad { connections: self.max_users() as usize }),
            LoadSpec::Rate(rate) => {
                // Without a duration, an iteration-bounded scenario lasts as long as starting them takes.
                let length = self
                    .duration
                    .or_else(|| self.iterations.map(|n| Duration::from_secs_f64((n as f64 / rate).ceil() + 1.0)))
                    .unwrap_or(Duration::ZERO);
                Load::Open(open(vec![RateStage::level(*rate, length)], self.arrival))
            }
            LoadSpec::Stages(stages) => Load::Open(open(stages.clone(), self.arrival)),
        }
    }
}

/// Turns validated steps into the engine's flow, numbering names, checks and branches.
struct Builder<'a> {
    spec: &'a PlanSpec,
    /// Every host of the plan, resolved, in the order of `Plan::target_of`.
    targets: &'a [&'a Target],
    names: Vec<NamedStats>,
    checks: Vec<String>,
    branches: Vec<String>,
}

impl Builder<'_> {
    /// The index of the statistics named `name` (shared by every step of that name).
    fn name(&mut self, name: &str, scenario: usize, kind: &'static str, target: usize) -> usize {
        match self.names.iter().position(|n| n.name == name) {
            Some(i) => i,
            None => {
                self.names.push(NamedStats { name: name.to_string(), scenario, kind, target });
                self.names.len() - 1
            }
        }
    }

    fn flow(&mut self, steps: &[StepSpec], scenario: usize) -> Result<Flow, PlanError> {
        let mut flow = Flow::default();
        for step in steps {
            flow.steps.push(match step {
                StepSpec::Request(request) => Step::Request(Arc::new(self.request(request, scenario)?)),
                StepSpec::Think(think) => Step::Think(*think),
                StepSpec::Block { repeat, every, flow } => {
                    Step::Block(Arc::new(Block { repeat: *repeat, every: *every, flow: self.flow(flow, scenario)? }))
                }
                StepSpec::Choose(branches) => {
                    let mut built = Vec::new();
                    for branch in branches {
                        self.branches.push(branch.name.clone());
                        let id = self.branches.len() - 1;
                        built.push(Branch {
                            weight: branch.weight,
                            name: branch.name.clone(),
                            id,
                            flow: self.flow(&branch.flow, scenario)?,
                        });
                    }
                    Step::Choose(Arc::new(Choice { branches: built }))
                }
                StepSpec::WsConnect { name, url, headers } => Step::WsConnect(Arc::new(WsConnectStep {
                    stats: self.name(name, scenario, "ws", 0),
                    url: url.clone(),
                    headers: headers.clone(),
                })),
                StepSpec::WsSend { name, text } => {
                    Step::WsSend(Arc::new(WsSendStep { stats: self.name(name, scenario, "ws", 0), text: text.clone() }))
                }
                StepSpec::WsExpect { name, matcher, timeout, extract } => Step::WsExpect(Arc::new(WsExpectStep {
                    stats: self.name(name, scenario, "ws", 0),
                    matcher: matcher.clone(),
                    timeout: *timeout,
                    extract: extract.clone(),
                })),
                StepSpec::WsClose(close) => Step::WsClose(close.clone()),
            });
        }
        Ok(flow)
    }

    fn request(&mut self, r: &RequestStepSpec, scenario: usize) -> Result<RequestStep, PlanError> {
        if let Location::Url(url) = &r.location {
            let own = Target::resolve(&without_templates(url))?;
            let target = self.targets[r.target];
            if (own.scheme, own.host.as_str(), own.port) != (target.scheme, target.host.as_str(), target.port) {
                return Err(PlanError::Invalid(format!(
                    "request {:?} goes to {}, but its target is {}: name its host in [targets.NAME] \
                     (or point base_url at it)",
                    r.name, own.url, target.url
                )));
            }
        }
        // A base URL's own path (`http://host/api`) prefixes every request's path.
        let wire_path = match &r.location {
            Location::Path(path) => {
                join_url(url_path(self.spec.target_spec(r.target).base_url.as_deref().unwrap_or("")), path)
            }
            Location::Url(url) => url_path(url).to_string(),
        };
        let path = Template::compile(&wire_path)
            .map_err(|e| PlanError::Invalid(format!("request {:?}: {}", r.name, e.message)))?;
        let body = match &r.body {
            BodySpec::Fixed(bytes) if bytes.is_empty() => Body::Empty,
            BodySpec::Fixed(bytes) => Body::Fixed(Arc::from(bytes.as_slice())),
            BodySpec::Template(t) => Body::Template(t.clone()),
            BodySpec::Random(size) => Body::Payload(random_payload(*size)),
            BodySpec::Json(json) => Body::Json(json.clone()),
            BodySpec::Form(pairs) => Body::Form(pairs.clone()),
            BodySpec::Multipart(parts) => Body::Multipart(parts.clone()),
        };
        let mut checks = Vec::new();
        for check in &r.checks {
            self.checks.push(check.name.clone());
            checks.push(CheckStep { id: self.checks.len() - 1, check: check.clone() });
        }
        // A request whose every part is fixed is encoded once, like a quick run's.
        let all_static = path.is_static() && r.query.is_empty() && r.headers.iter().all(|(_, v)| v.is_static());
        let fixed = match (&body, all_static) {
            (Body::Empty | Body::Fixed(_), true) => {
                let headers: Vec<(String, String)> =
                    r.headers.iter().map(|(n, v)| (n.clone(), v.text().to_string())).collect();
                let bytes = match &body {
                    Body::Fixed(b) => b.to_vec(),
                    _ => Vec::new(),
                };
                let encoded = encode_request(
                    &r.method,
                    path.text(),
                    &self.targets[r.target].host_header,
                    &headers,
                    &bytes,
                    self.spec.target_spec(r.target).keepalive,
                )?;
                Some(Arc::from(encoded))
            }
            _ => None,
        };
        Ok(RequestStep {
            stats: self.name(&r.name, scenario, "http", r.target),
            method: r.method.clone(),
            path,
            query: r.query.clone(),
            headers: r.headers.clone(),
            body,
            extract: r.extract.clone(),
            checks,
            fixed,
            target: r.target,
            write: r.write.clone().map(Arc::new),
            read: None,
        })
    }
}

/// Every name the templates of `steps` read (nested flows included).
fn flow_variables(steps: &[StepSpec], out: &mut std::collections::BTreeSet<String>) {
    for step in steps {
        let templates: Vec<Template> = match step {
            StepSpec::Request(r) => {
                let mut all: Vec<Template> = r.headers.iter().chain(&r.query).map(|(_, v)| v.clone()).collect();
                all.extend(Template::compile(r.path_text()));
                match &r.body {
                    BodySpec::Template(t) => all.push(t.clone()),
                    BodySpec::Json(json) => all.extend(json.templates().into_iter().cloned()),
                    BodySpec::Form(pairs) => all.extend(pairs.iter().map(|(_, v)| v.clone())),
                    BodySpec::Multipart(parts) => all.extend(parts.iter().filter_map(|p| match p {
                        pummel_engine::flow::multipart::Part::Field { value, .. } => Some(value.clone()),
                        pummel_engine::flow::multipart::Part::File { .. } => None,
                    })),
                    BodySpec::Fixed(_) | BodySpec::Random(_) => {}
                }
                all
            }
            StepSpec::WsConnect { url, headers, .. } => {
                std::iter::once(url.clone()).chain(headers.iter().map(|(_, v)| v.clone())).collect()
            }
            StepSpec::WsSend { text, .. } => vec![text.clone()],
            StepSpec::Block { flow, .. } => {
                flow_variables(flow, out);
                Vec::new()
            }
            StepSpec::Choose(branches) => {
                branches.iter().for_each(|b| flow_variables(&b.flow, out));
                Vec::new()
            }
            StepSpec::WsExpect { matcher, .. } => {
                matcher.regex_template.iter().chain(&matcher.equals_template).cloned().collect()
            }
            StepSpec::Think(_) | StepSpec::WsClose(_) => Vec::new(),
        };
        templates.iter().for_each(|t| out.extend(t.variables()));
    }
}

fn collect_requests<'a>(steps: &'a [StepSpec], out: &mut Vec<&'a RequestStepSpec>) {
    for step in steps {
        match step {
            StepSpec::Request(r) => out.push(r),
            StepSpec::Block { flow, .. } => collect_requests(flow, out),
            StepSpec::Choose(branches) => branches.iter().for_each(|b| collect_requests(&b.flow, out)),
            _ => {}
        }
    }
}

/// A WebSocket step as `--dry-run` shows it: where the session goes, what it sends.
enum WsDry<'a> {
    Connect(&'a Template),
    Send(&'a Template),
}

fn collect_ws<'a>(steps: &'a [StepSpec], out: &mut Vec<WsDry<'a>>) {
    for step in steps {
        match step {
            StepSpec::WsConnect { url, .. } => out.push(WsDry::Connect(url)),
            StepSpec::WsSend { text, .. } => out.push(WsDry::Send(text)),
            StepSpec::Block { flow, .. } => collect_ws(flow, out),
            StepSpec::Choose(branches) => branches.iter().for_each(|b| collect_ws(&b.flow, out)),
            _ => {}
        }
    }
}

fn collect_requests_mut<'a>(steps: &'a mut [StepSpec], out: &mut Vec<&'a mut RequestStepSpec>) {
    for step in steps {
        match step {
            StepSpec::Request(r) => out.push(r),
            StepSpec::Block { flow, .. } => collect_requests_mut(flow, out),
            StepSpec::Choose(branches) => branches.iter_mut().for_each(|b| collect_requests_mut(&mut b.flow, out)),
            _ => {}
        }
    }
}

fn count_steps(steps: &[StepSpec]) -> usize {
    steps
        .iter()
        .map(|step| match step {
            StepSpec::Block { flow, .. } => 1 + count_steps(flow),
            StepSpec::Choose(branches) => 1 + branches.iter().map(|b| count_steps(&b.flow)).sum::<usize>(),
            _ => 1,
        })
        .sum()
}

fn open(stages: Vec<RateStage>, arrival: Arrival) -> OpenLoad {
    OpenLoad { stages, arrival, max_connections: DEFAULT_POOL, max_inflight: None }
}

/// `base` + `path` with exactly one `/` between them.
pub fn join_url(base: &str, path: &str) -> String {
    let base = base.trim_end_matches('/');
    if path.starts_with('/') { format!("{base}{path}") } else { format!("{base}/{path}") }
}

/// The path and query of a full URL (`/` when it has none).
fn url_path(url: &str) -> &str {
    let after_scheme = url.find("://").map_or(url, |i| &url[i + 3..]);
    match after_scheme.find('/') {
        Some(i) => &after_scheme[i..],
        None => "/",
    }
}

/// A URL with its templates blanked, for resolving its origin.
fn without_templates(url: &str) -> String {
    match url.find("{{").or_else(|| url.find("{%")) {
        Some(i) => url[..i].to_string(),
        None => url.to_string(),
    }
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 { format!("{value:.0}") } else { format!("{value}") }
}

fn seconds(d: Duration) -> String {
    pummel_results::duration::format_duration(d)
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

    #[test]
    fn paths_of_full_urls() {
        assert_eq!(url_path("http://h:1/a/b?x=1"), "/a/b?x=1");
        assert_eq!(url_path("http://h:1"), "/");
        assert_eq!(without_templates("http://h:1/items/{{ id }}"), "http://h:1/items/");
    }
}
