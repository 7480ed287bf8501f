//! The command line as users type it (the "low" form, in ripgrep's terms). Turning it into a
//! validated engine `Plan` happens in `commands::run`; nothing here is the engine's API.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// pummel: load and stress testing that is honest about latency.
#[derive(Debug, Parser)]
#[command(name = "pummel", version, about, long_about = None, after_help = EXIT_CODES)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Documented in `--help` so scripts can rely on them.
const EXIT_CODES: &str = "Exit codes: 0 pass, 1 thresholds failed, 2 bad usage, 3 could not start, 130 interrupted.";

/// pummel's subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Load one URL (quick mode, in the style of wrk / hey / oha), or run a plan file (PLAN.toml).
    Run(Box<RunArgs>),
    /// Validate plan files without running them; every error with its file:line:col.
    Check(crate::commands::check::CheckArgs),
    /// Serve HTTP as a test target: fast, with optional delays, errors and sizes.
    Sink(Box<SinkArgs>),
    /// Run a short stepped test against a built-in target: pummel's main job, nothing to set up.
    Demo(DemoArgs),
    /// Find the highest rate the target sustains within its SLO, step by step.
    FindLimit(Box<crate::commands::find_limit::FindLimitArgs>),
    /// Turn a results file into an HTML report, markdown tables or a CSV timeline.
    Report(crate::commands::report::ReportArgs),
    /// Compare two results files metric by metric (a CI regression gate).
    Compare(crate::commands::compare::CompareArgs),
    /// Join the results of a plan's segments (--segment i/N or FROM:TO) into the results of the whole plan.
    Merge(crate::commands::merge::MergeArgs),
    /// Check the system limits a load test hits (open files, ports, backlog) and explain fixes.
    Doctor(crate::commands::doctor::DoctorArgs),
    /// Watch a process every second: fds vs its limit, CPU, memory, TCP sockets by state.
    Watch(crate::commands::watch::WatchArgs),
    /// Open many connections and hold them (idle, slow request, pending response, WebSocket).
    Hold(Box<crate::commands::hold::HoldArgs>),
    /// A TCP proxy that injects faults (toxiproxy's toxics and API), for any protocol.
    Proxy(Box<crate::commands::proxy::ProxyArgs>),
    /// Write a plan from recorded traffic: a HAR file, or curl command lines.
    Convert(crate::commands::convert::ConvertArgs),
    /// Take part of a run from a coordinator (`pummel run PLAN --agents N`), on this machine.
    Agent(AgentArgs),
    /// Run on Kubernetes: render the manifests of a distributed run (coordinator and agents), or
    /// carry it out through the Kubernetes API.
    K8s(crate::commands::k8s::K8sArgs),
}

/// Running one plan over several processes or machines: the coordinator's flags.
#[derive(Debug, Args, Clone)]
pub struct ClusterArgs {
    /// Coordinate N agents (`pummel agent --coordinator ADDR`, on this or other machines): each
    /// runs part i of N of the plan; the figures, thresholds and abort rules are global.
    #[arg(long, value_name = "N", conflicts_with = "workers")]
    pub agents: Option<usize>,
    /// With --agents: where agents dial in.
    #[arg(long, value_name = "ADDR", default_value = "0.0.0.0:7070", requires = "agents")]
    pub listen: String,
    /// Run the plan in N local agent processes that pummel starts and stops itself (past one
    /// process's file descriptor limit; one process per core).
    #[arg(long, value_name = "N")]
    pub workers: Option<usize>,
    /// With --agents: the shared token, from this file (else from $PUMMEL_TOKEN).
    #[arg(long, value_name = "FILE", requires = "agents")]
    pub token_file: Option<PathBuf>,
    /// With --agents: how long to wait for every agent to join.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub agents_timeout: String,
    /// What a lost agent (no word for 3 s) does to the run: abort it, or continue without it.
    /// Either way the results are partial and name the agent.
    #[arg(long, value_enum, default_value_t = OnAgentLoss::Abort)]
    pub on_agent_loss: OnAgentLoss,
    /// Also wait for one `pummel agent --watch-only` (on the target's machine) and record the
    /// target's side from it, as --watch-pid/--watch-port do for a local target.
    #[arg(long)]
    pub watch_agent: bool,
    /// Unequal parts for agents of unequal size: NAME=WEIGHT,... (agents named with `pummel
    /// agent --name`; `--workers` are worker-1, worker-2, ...), e.g. big=3,small=1 gives `big`
    /// 3/4 of the plan, agents not named weighing 1; or `cores`: each agent's CPUs. Equal
    /// weights are the parts i/N
    #[arg(long, value_name = "NAME=W,...|cores")]
    pub agent_weights: Option<String>,
}

/// `--on-agent-loss`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnAgentLoss {
    /// End the run; every other agent stops.
    Abort,
    /// Go on with the other agents.
    Continue,
}

/// Flags of `pummel agent`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct AgentArgs {
    /// The coordinator to dial (`pummel run PLAN --agents N --listen ADDR`), HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub coordinator: String,
    /// The shared token, from this file (else from $PUMMEL_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// This agent's name in the coordinator's results [default: host name and PID].
    #[arg(long, value_name = "NAME")]
    pub name: Option<String>,
    /// How long to keep dialing a coordinator that is not listening yet.
    #[arg(long, value_name = "DURATION", default_value = "60s")]
    pub connect_wait: String,
    /// Send no load: watch the target on this machine for the coordinator (started with
    /// --watch-agent): its fds against its limit, sockets by state, CPU, RSS, accept queue.
    #[arg(long, requires = "watch")]
    pub watch_only: bool,
    /// With --watch-only: the target's PID.
    #[arg(long, value_name = "PID", group = "watch", requires = "watch_only")]
    pub watch_pid: Option<u32>,
    /// With --watch-only: the target is the process listening on this TCP port.
    #[arg(long, value_name = "PORT", group = "watch", requires = "watch_only")]
    pub watch_port: Option<u16>,
    /// Print nothing but errors.
    #[arg(short, long)]
    pub quiet: bool,
}

/// Flags of `pummel run`.
#[derive(Debug, Args)]
#[command(after_help = EXIT_CODES)]
pub struct RunArgs {
    /// The URL to load (http:// or https://), or a plan file ending in .toml.
    pub url: String,
    /// Plan files: use this base URL instead of the plan's [target].base_url.
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
    /// Plan files: set a [variables] value, e.g. -e users=100 (repeatable).
    #[arg(short = 'e', long = "var", value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Plan files: print the first N rendered requests of each scenario and exit (default 5).
    #[arg(long, value_name = "N", num_args = 0..=1, default_missing_value = "5")]
    pub dry_run: Option<usize>,
    /// Seed of the run's randomness (Poisson arrivals, `choose`, `random_int`, `uuid()`, random
    /// feeder rows): the same seed repeats them exactly [default: a fresh one, written in the
    /// results]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Run part of the load, for several processes or machines that run one plan together:
    /// `i/N` (part i of N equal parts, 1 ≤ i ≤ N) or, as k6, a range FROM:TO of 0..1 (`1/3:2/3`,
    /// `0.5:1`, `50%:100%`). Arrivals, users, iterations and feeder rows are dealt out exactly,
    /// so the parts together are the whole plan (`pummel merge` joins their results).
    #[arg(long, value_name = "i/N|FROM:TO")]
    pub segment: Option<String>,
    /// The cuts of 0..1 into the segments that run one plan together (`0,1/4,1/2,1`): give the
    /// same to every process, since how items are dealt out depends on every segment
    /// [default: 0,FROM,TO,1 for --segment FROM:TO; N equal parts for i/N]
    #[arg(long, value_name = "0,R,...,1")]
    pub segment_sequence: Option<String>,
    /// Start at this instant (RFC 3339, e.g. 2026-12-06T20:00:00Z, or unix milliseconds), so
    /// that every segment of one plan starts together.
    #[arg(long, value_name = "WHEN")]
    pub start_at: Option<String>,
    #[command(flatten)]
    pub cluster: ClusterArgs,

    #[command(flatten)]
    pub request: RequestArgs,

    /// How long to run (e.g. 30s, 2m). Default 10s unless -n is given.
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Total number of requests; the run stops at whichever of -d and -n comes first.
    #[arg(short = 'n', long = "requests", value_name = "N")]
    pub requests: Option<u64>,
    /// Closed model: concurrent connections (default 50). Open model: pool upper bound (default 1000).
    #[arg(short, long, value_name = "N")]
    pub connections: Option<usize>,
    /// Open model: requests per second, started on schedule whether or not responses came back.
    #[arg(short, long, value_name = "REQ/S")]
    pub rate: Option<String>,
    /// Spacing of open-model arrivals (with -r, or a plan's open-model scenarios).
    #[arg(long, value_enum, default_value_t = ArrivalArg::Uniform)]
    pub arrival: ArrivalArg,
    /// Open model (-r, or a plan's): most requests queued or in flight; beyond it a request is
    /// counted as dropped.
    #[arg(long, value_name = "N")]
    pub max_inflight: Option<usize>,
    /// Speak HTTP/2: prior knowledge (h2c) for http://, ALPN h2 for https://.
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection (closed model: -c connections x N streams).
    #[arg(long, value_name = "N", default_value_t = 1, requires = "http2")]
    pub streams: usize,
    #[command(flatten)]
    pub connection: ConnectionArgs,
    /// Time at the start excluded from the statistics.
    #[arg(long, default_value = "0s", value_name = "DURATION")]
    pub warmup: String,
    /// Statuses that count as success, e.g. 200-399,404 (default 100-399).
    #[arg(long, value_name = "SET")]
    pub ok_status: Option<String>,
    /// Pass/fail rule, e.g. 'p99<250ms', 'error_rate<1%' (repeatable). Exit 1 when one fails.
    #[arg(long = "threshold", value_name = "EXPR")]
    pub thresholds: Vec<String>,
    /// End the run early when this holds over the sliding window, e.g. 'error_rate>50%'.
    #[arg(long = "abort-when", value_name = "EXPR")]
    pub abort_when: Vec<String>,
    /// Length of the sliding window for --abort-when.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub abort_window: String,
    /// Inject a fault during the run, e.g. 'at=30s for=10s signal=STOP pid=1234' or
    /// 'at=5s for=2s proxy=db listen=15432 upstream=5432 down' (repeatable; with a plan, added
    /// to its [[fault]] tables). Undone when it ends and on every exit.
    #[arg(long = "fault", value_name = "WORDS")]
    pub faults: Vec<String>,
    /// What a second in steady state is, for the faults' recovery: 'error_rate=2% p99_factor=3
    /// p99_slack=50ms ok_share=50%' (default: error rate at most 1 %, p99 at most 2x the
    /// baseline's or + 20 ms, half the baseline's answers).
    #[arg(long, value_name = "WORDS")]
    pub steady_state: Option<String>,
    /// Exit 3 without running when nothing answers at the target at the start.
    #[arg(long)]
    pub require_target: bool,
    #[command(flatten)]
    pub observe: ObserveArgs,
    #[command(flatten)]
    pub metrics: crate::commands::metrics::MetricsArgs,
    #[command(flatten)]
    pub request_log: crate::commands::request_log::RequestLogArgs,

    /// Write the full results document (JSON) here; also written when interrupted.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write JUnit XML here: a test case per threshold and per named check, failures with the
    /// measured value and the limit; also written when interrupted or aborted (marked).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// What each request sends; shared by `run` and `find-limit`.
#[derive(Debug, Args)]
pub struct RequestArgs {
    /// HTTP method.
    #[arg(short, long, default_value = "GET")]
    pub method: String,
    /// Request header 'Name: value' (repeatable).
    #[arg(short = 'H', long = "header", value_name = "NAME: VALUE")]
    pub headers: Vec<String>,
    /// Request body.
    #[arg(short, long, conflicts_with = "body_file")]
    pub body: Option<String>,
    /// Read the request body from a file.
    #[arg(long, value_name = "PATH")]
    pub body_file: Option<PathBuf>,
    /// Request body of SIZE random bytes (e.g. 64KiB, 1MiB, 1MB = 10^6), generated once and
    /// sent by every request.
    #[arg(long, value_name = "SIZE", conflicts_with_all = ["body", "body_file"])]
    pub object_size: Option<String>,
    /// Sign every request with AWS Signature V4 for REGION:SERVICE (e.g. us-east-1:s3); keys
    /// from AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY (and AWS_SESSION_TOKEN if set).
    #[arg(long, value_name = "REGION:SERVICE")]
    pub aws_sigv4: Option<String>,
    /// Keep a cookie jar per connection's user (a plan keeps one per virtual user unless
    /// `cookies = false`)
    #[arg(long)]
    pub cookies: bool,
    /// Follow at most N redirects (301, 302, 303, 307, 308) on the target; a chain is one
    /// request [default: 0 for a URL, as wrk and oha; a plan's own, 10 by default, as k6]
    #[arg(long, value_name = "N")]
    pub redirects: Option<u32>,
    /// Ask for compressed answers (Accept-Encoding: gzip, deflate, br, zstd); a body that a
    /// plan's checks or extraction read is decoded, no other
    #[arg(long)]
    pub compressed: bool,
}

/// How the generator connects; shared by `run` and `find-limit`.
#[derive(Debug, Args)]
pub struct ConnectionArgs {
    /// Generator threads (default: the CPUs this process may use).
    #[arg(short, long, value_name = "N")]
    pub threads: Option<usize>,
    /// Per-request timeout, from the write to the end of the response.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub timeout: String,
    /// TCP connect timeout.
    #[arg(long, default_value = "5s", value_name = "DURATION")]
    pub connect_timeout: String,
    /// Time requests still in flight when sending stops get to end; what is still unanswered
    /// then fails as `unanswered` [default: --timeout, at most 10s].
    #[arg(long, value_name = "DURATION")]
    pub drain: Option<String>,
    /// A new connection per request.
    #[arg(long)]
    pub no_keepalive: bool,
    /// Local addresses to connect from, in turn: a range 127.0.0.2-127.0.0.9 or a list a,b
    /// (each address has its own ~28k ephemeral ports).
    #[arg(long, value_name = "ADDRS")]
    pub source_addrs: Option<String>,
    /// https: accept any server certificate, unverified (self-signed test targets).
    #[arg(long, conflicts_with = "cacert", help_heading = TLS_HEADING)]
    pub insecure: bool,
    /// https: trust the CA certificates of this PEM file instead of the system's.
    #[arg(long, value_name = "PATH", help_heading = TLS_HEADING)]
    pub cacert: Option<PathBuf>,
    /// https: client certificate chain (PEM), sent when the server asks for one; needs --key.
    #[arg(long, value_name = "PATH", requires = "key", help_heading = TLS_HEADING)]
    pub cert: Option<PathBuf>,
    /// https: the client certificate's private key (PEM); needs --cert.
    #[arg(long, value_name = "PATH", requires = "cert", help_heading = TLS_HEADING)]
    pub key: Option<PathBuf>,
    /// https: server name sent in SNI and checked against the certificate (default: the URL's host).
    #[arg(long, value_name = "NAME", help_heading = TLS_HEADING)]
    pub sni: Option<String>,
    /// https: allow only this TLS version (default: 1.2 and 1.3).
    #[arg(long, value_enum, value_name = "VERSION", help_heading = TLS_HEADING)]
    pub tls_version: Option<TlsVersionArg>,
    /// https: resume TLS sessions on new connections; off makes every new connection (every
    /// request with --no-keepalive) pay a full handshake.
    #[arg(long, value_enum, default_value_t = OnOff::On, value_name = "ON|OFF", help_heading = TLS_HEADING)]
    pub tls_resume: OnOff,
}

/// Where the TLS flags show in `--help`.
const TLS_HEADING: &str = "TLS (https://)";

/// `--tls-version`, as typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum TlsVersionArg {
    /// TLS 1.2 only.
    #[value(name = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[value(name = "1.3")]
    Tls13,
}

/// An on/off switch.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum OnOff {
    /// Enabled.
    On,
    /// Disabled.
    Off,
}

/// Probes and target watch, beside the load; shared by `run` and `hold`.
#[derive(Debug, Args, Default)]
pub struct ObserveArgs {
    /// Send one request to this URL every --probe-every on its own fresh connection and record
    /// OK/NOK and its latency (repeatable).
    #[arg(long = "probe", value_name = "URL")]
    pub probes: Vec<String>,
    /// Like --probe, and record the number at a JSON path of the body: 'URL#$.queue.size'.
    #[arg(long = "probe-json", value_name = "URL#$.PATH")]
    pub probe_json: Vec<String>,
    /// Like --probe, and record a metric of the Prometheus text exposition the URL serves (the
    /// target's /metrics): 'URL#METRIC' or 'URL#METRIC{label="x"}' (samples that match are added up).
    #[arg(long = "probe-metric", value_name = "URL#METRIC{LABEL=\"V\"}")]
    pub probe_metric: Vec<String>,
    /// Interval between two probes.
    #[arg(long, default_value = "1s", value_name = "DURATION")]
    pub probe_every: String,
    /// What makes a probe OK besides answering: 'body contains TEXT' or 'status 200'
    /// (default: a status below 400).
    #[arg(long, value_name = "CHECK")]
    pub probe_expect: Option<String>,
    /// Watch this process every second: fds vs its limit, CPU, memory, TCP sockets by state.
    #[arg(long, value_name = "PID", conflicts_with = "watch_port")]
    pub watch_pid: Option<u32>,
    /// Watch the process listening on this TCP port.
    #[arg(long, value_name = "PORT")]
    pub watch_port: Option<u16>,
}

/// How progress and the summary are shown.
#[derive(Debug, Args, Clone, Copy)]
pub struct DisplayArgs {
    /// Print the summary as JSON on stdout (progress goes to stderr).
    #[arg(long)]
    pub json: bool,
    /// One plain line per second instead of the live view.
    #[arg(long)]
    pub plain: bool,
    /// Print only the end summary.
    #[arg(short, long)]
    pub quiet: bool,
    /// Serve a live web dashboard of the run at ADDR (default 127.0.0.1:5665): its charts,
    /// updated every second, then the final report.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:5665")]
    pub dashboard: Option<std::net::SocketAddr>,
    /// How long the dashboard keeps serving the final report after the run.
    #[arg(long, value_name = "DURATION", value_parser = humantime::parse_duration, default_value = "5s")]
    pub dashboard_linger: std::time::Duration,
}

/// Arrival processes, as typed on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum ArrivalArg {
    /// Evenly spaced.
    Uniform,
    /// Exponential gaps (a Poisson process).
    Poisson,
}

/// Flags of `pummel sink`.
#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(short, long, default_value = "127.0.0.1:8090", value_name = "ADDR")]
    pub listen: String,
    /// Delay before each response: 20ms, or a range 10ms..50ms (uniform).
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub delay: String,
    /// Share of responses answered 500, e.g. 1%.
    #[arg(long, default_value = "0%", value_name = "PERCENT")]
    pub error_rate: String,
    /// Status of normal responses.
    #[arg(long, default_value_t = 200)]
    pub status: u16,
    /// Bytes of response body.
    #[arg(long, default_value_t = 3, value_name = "BYTES")]
    pub body_size: usize,
    /// Send `Connection: close` on every answer and close.
    #[arg(long)]
    pub close: bool,
    /// Print received requests, rate and open connections this often (0 = never).
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub stats: String,
    /// Close clients idle for longer than this.
    #[arg(long, visible_alias = "timeout", default_value = "60s", value_name = "DURATION")]
    pub idle_timeout: String,
    /// Keep every request received (method, target, headers, body) in FILE, one JSON object per line.
    #[arg(long, value_name = "FILE")]
    pub record: Option<PathBuf>,
    /// Answer 503 beyond this many requests per second (an overloaded server of known capacity).
    #[arg(long, value_name = "REQ/S")]
    pub capacity: Option<f64>,
    /// Server threads (of each process, with --processes).
    #[arg(short, long, default_value_t = 1)]
    pub threads: usize,
    /// Serve from N processes that share the port (SO_REUSEPORT: the kernel spreads new
    /// connections over them), for a target that scales past one process; the counts printed
    /// and recorded cover them all. --capacity applies to each process; --tls needs
    /// --cert/--key (every process serves the same certificate).
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=256))]
    pub processes: u16,
    /// Internal: set by `--processes` on the processes it starts (this one's index, from 1),
    /// which then report their counts to their parent on stdout instead of printing them.
    #[arg(long, hide = true, value_name = "INDEX")]
    pub process_index: Option<u16>,
    /// Stop by itself after this long (default: run until interrupted).
    #[arg(short, long, value_name = "DURATION")]
    pub duration: Option<String>,
    /// Hold each WebSocket message this long before echoing it back (WebSocket upgrades on any
    /// path get an echo session; a text message `close` makes the sink close it).
    #[arg(long, default_value = "0", value_name = "DURATION")]
    pub ws_delay: String,
    /// Answer with a JSON description of each request ({"id":N,"method":...,"path":...,
    /// "query":...,"body_bytes":...}) and `X-Request-Id: N` instead of the fixed body.
    #[arg(long)]
    pub echo: bool,
    /// Be a small key-value store: PUT and POST keep the body under the path (201), GET gives
    /// it back (200, or 404), DELETE removes it (204); for plans whose writes a [verify] phase
    /// reads back.
    #[arg(long, conflicts_with = "echo")]
    pub store: bool,
    /// With --store: answer every N-th write 201 and drop it (a store that loses acknowledged
    /// writes); the drops are counted at exit and in --stats lines.
    #[arg(long, value_name = "N", requires = "store", value_parser = clap::value_parser!(u64).range(1..))]
    pub drop_every: Option<u64>,
    /// With --store: keep the store in FILE too (read back at start), so that a sink killed and
    /// started again with the same file holds every write it acknowledged.
    #[arg(long, value_name = "FILE", requires = "store")]
    pub store_file: Option<std::path::PathBuf>,
    /// Serve HTTPS, with a certificate for localhost, 127.0.0.1 and ::1 made at start (signed by
    /// a fresh CA; see --tls-cert-out) unless --cert/--key are given.
    #[arg(long, help_heading = TLS_HEADING)]
    pub tls: bool,
    /// Write the PEM of the generated certificate's CA here, for clients' --cacert.
    #[arg(long, value_name = "PATH", requires = "tls", conflicts_with = "cert", help_heading = TLS_HEADING)]
    pub tls_cert_out: Option<PathBuf>,
    /// Serve this PEM certificate chain instead of a generated one (implies --tls); needs --key.
    #[arg(long, value_name = "PATH", requires = "key", help_heading = TLS_HEADING)]
    pub cert: Option<PathBuf>,
    /// The private key (PEM) of --cert.
    #[arg(long, value_name = "PATH", requires = "cert", help_heading = TLS_HEADING)]
    pub key: Option<PathBuf>,
}

/// Flags of `pummel demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Where to write the results document.
    #[arg(short, long, default_value = "pummel-demo.json", value_name = "FILE")]
    pub output: PathBuf,
    /// Seconds per step (three steps: 200, 1,000 and 5,000 req/s).
    #[arg(long, default_value = "4s", value_name = "DURATION")]
    pub step: String,
    #[command(flatten)]
    pub display: DisplayArgs,
}
