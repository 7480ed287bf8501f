//! The end-of-run summary: the figures users read, compare and gate CI on.
//!
//! Its JSON form is what `pummel run --json` prints and the `summary` of the results file;
//! field names are part of pummel's public contract (see `schema/results.schema.json`). The
//! engine fills it in at the end of a run; `report` and `compare` only read it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::expr::{Expr, MetricSource, Stat};
use crate::histogram::{LatencyHistogram, histogram_stat_ms};
use crate::observed::TargetTotals;

/// The summary of a run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Summary {
    /// Version of pummel that ran it.
    pub pummel_version: String,
    /// True when the run did not go to its planned end (interrupted or aborted).
    pub partial: bool,
    /// Why an abort rule ended the run, if one did.
    pub aborted: Option<String>,
    /// True when the user interrupted the run.
    pub interrupted: bool,
    /// Seconds over which the statistics were collected (warmup excluded).
    pub duration_s: f64,
    /// Request counts.
    pub requests: RequestCounts,
    /// Offered and achieved rates.
    pub rate: Rates,
    /// Bytes moved.
    pub bytes: Bytes,
    /// Latency from the intended start (coordinated omission corrected) of the requests that
    /// succeeded, milliseconds.
    pub latency_ms: Option<LatencyFigures>,
    /// Service time, from the write of the request to the end of the response, of the requests
    /// that succeeded, milliseconds.
    pub service_time_ms: Option<LatencyFigures>,
    /// Latency of every request that ended, failures included; a request pummel gave up on
    /// (timeout, unanswered) counts at the time it was given up, so figures at or above
    /// [`AllLatencyFigures::given_up_from_ms`] are lower bounds.
    #[serde(default)]
    pub latency_all_ms: Option<AllLatencyFigures>,
    /// TCP connect times, milliseconds.
    pub connect_ms: ConnectFigures,
    /// TLS handshake times, milliseconds (`https://`; absent when no handshake completed).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<TlsFigures>,
    /// Time of the run's one DNS resolution, milliseconds.
    pub dns_ms: f64,
    /// Failures by kind (only kinds that occurred).
    pub errors: BTreeMap<String, u64>,
    /// Responses by status code.
    pub status: BTreeMap<String, u64>,
    /// Threshold verdicts.
    pub thresholds: Vec<ThresholdVerdict>,
    /// The generator's own health.
    pub generator: GeneratorFigures,
    /// What limited the run, when something did: the generator, its connection pool, or the
    /// target; `None` when the offered load was carried.
    #[serde(default)]
    pub limit: Option<LimitVerdict>,
    /// The seed of the run's randomness: `--seed` with it repeats the run's arrivals and every
    /// user's random choices exactly.
    #[serde(default)]
    pub seed: Option<u64>,
    /// Seconds that requests still in flight when sending stopped were given to end
    /// (`--drain`); what was still unanswered then counts as `unanswered`.
    #[serde(default)]
    pub drain_s: f64,
    /// One row per load stage.
    pub stages: Vec<StageSummary>,
    /// Each probe's figures (`--probe`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<ProbeSummary>,
    /// The watched target's figures (`--watch-pid`, `--watch-port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<TargetTotals>,
    /// Plan files: figures per request name and WebSocket exchange.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_name: Vec<NamedSummary>,
    /// Plan files: each check's passes and failures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub checks: Vec<CheckSummary>,
    /// Plan files: how often each `choose` branch was taken.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub branches: Vec<BranchSummary>,
    /// Plan files: iterations started per scenario.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub scenarios: Vec<ScenarioSummary>,
    /// The part of the plan this run was (`--segment i/N`, or `FROM:TO` such as `1/4:1/2`);
    /// absent for the whole plan.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment: Option<String>,
    /// The sequence a `FROM:TO` segment is one of (`0,1/4,1/2,1`): `pummel merge` joins only
    /// segments of one sequence. Absent for `i/N` (its sequence is N equal parts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub segment_sequence: Option<String>,
    /// A document made by `pummel merge`: the segments it joined, and what it could not join
    /// exactly.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged: Option<MergedSegments>,
    /// Plans of several hosts (`[targets.NAME]`): each host's figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub by_target: Vec<TargetSummary>,
    /// Plan files with setup or teardown scenarios: each phase of the run, in order (the
    /// figures above are the load phase's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub phases: Vec<PhaseSummary>,
    /// The request log (`--log-requests`): lines written, and what its bounds left out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_log: Option<RequestLogSummary>,
    /// The faults injected during the run (`[[fault]]`, `--fault`), each with the target's
    /// recovery.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::fault::FaultSummary>,
    /// What the faults' recoveries were judged against; present when faults ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<crate::fault::SteadyState>,
    /// A run spread over agents (`--agents`, `--workers`): each agent's part; the figures above
    /// are all of them merged.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub agents: Vec<AgentSummary>,
    /// Plans with writes (`write = { key = ... }`): their outcomes, and what the `[verify]`
    /// read-back found of them (see `writes`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub writes: Option<crate::writes::WritesSummary>,
}

/// One agent of a distributed run: its part, its clock, how it fared, and whether it was lost.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct AgentSummary {
    /// Its name (`pummel agent --name`).
    pub name: String,
    /// Where it connected from.
    pub address: String,
    /// Its part of the plan, `i/N`.
    pub segment: String,
    /// Shards (threads) it ran.
    pub threads: usize,
    /// Its clock minus the coordinator's, measured before the start, milliseconds: the start
    /// instant it was given was corrected by it.
    pub clock_offset_ms: f64,
    /// The shortest round trip of the clock probes, milliseconds (the offset is known to half
    /// of it).
    pub round_trip_ms: f64,
    /// Requests it sent, warmup (and a search's settle times) included: its share of the
    /// timeline.
    pub sent: u64,
    /// Of them, succeeded.
    pub ok: u64,
    /// Failed.
    pub failed: u64,
    /// Its schedule lag p99 (open model), milliseconds: high means it could not keep up.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_p99_ms: Option<f64>,
    /// The median busy share of its shard threads over the run, percent of a core.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thread_busy_median_percent: Option<f64>,
    /// CPU seconds it used.
    pub cpu_seconds: f64,
    /// When it was lost, seconds from the start; absent when it finished.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_at_s: Option<f64>,
    /// Why it was lost.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lost_reason: Option<String>,
}

/// One phase of a run in phases (setup, load, teardown): when it ran and what it did.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct PhaseSummary {
    /// `setup`, `load`, `verify` or `teardown`.
    pub name: String,
    /// Its scenarios.
    pub scenarios: Vec<String>,
    /// When it started, seconds from the start of the first phase.
    pub started_s: f64,
    /// How long it ran, seconds.
    pub duration_s: f64,
    /// Requests that ended in it: succeeded and failed.
    pub ok: u64,
    /// Requests that failed.
    pub failed: u64,
    /// Its failures by kind.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub errors: BTreeMap<String, u64>,
    /// Its checks that failed, by name, with how often.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub failed_checks: BTreeMap<String, u64>,
    /// Setup: how many values of each exported variable it collected.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub exported: BTreeMap<String, u64>,
    /// How it ended: `completed`, `interrupted`, `aborted`, `skipped` (not run: an earlier phase
    /// was interrupted) or `timed out` (a teardown cut at its bound).
    pub ended: String,
}

/// What the request log (`--log-requests FILE`) holds and what it left out.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct RequestLogSummary {
    /// The file.
    pub path: String,
    /// Lines written.
    pub written: u64,
    /// Lines left out (over the per-second bound of their kind, or the writer fell behind),
    /// per kind; `ok` for sampled successes.
    pub left_out: BTreeMap<String, u64>,
    /// Why the file could not be written in full, if it could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// One request name's (or WebSocket exchange's) figures.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct NamedSummary {
    /// The name (a request's `name`, or its method and path).
    pub name: String,
    /// The scenario it belongs to.
    pub scenario: String,
    /// `http` or `ws`.
    pub kind: String,
    /// Requests (or messages) started.
    pub sent: u64,
    /// Completed, successfully or not.
    pub completed: u64,
    /// Completed and accepted (status, checks, extraction).
    pub ok: u64,
    /// failed / completed.
    pub error_rate: f64,
    /// Successful answers per second that arrived inside the measured window.
    pub rate: f64,
    /// Latency from the intended start of the requests (or messages) that succeeded.
    pub latency_ms: Option<LatencyFigures>,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
    /// The host its requests go to, in a plan of several (`[targets.NAME]`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    /// The name's histograms, written by segments (`--segment`) so that `pummel merge`
    /// recomputes its figures and judges its thresholds exactly; absent otherwise.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<NamedHistograms>,
}

/// One request name's histograms (HdrHistogram V2+DEFLATE, base64, microseconds).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct NamedHistograms {
    /// Latency of its requests that succeeded.
    pub latency: String,
    /// Their service time.
    pub service_time: String,
    /// Latency of every one of its requests that ended, failures included.
    pub latency_all: String,
}

/// Where a merged document came from (`pummel merge`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct MergedSegments {
    /// The segments joined, in order (`1/3`, `2/3`, ...; `0:1/4`, `1/4:1/2`, ... for ranges).
    pub segments: Vec<String>,
    /// The segments of the plan that were not given (a partial merge, `--partial`); empty when
    /// the merge is the whole plan.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub missing: Vec<String>,
    /// What the merge could not join exactly, or took from one segment only, in words.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// One host's figures in a plan of several (`[targets.NAME]`): its requests, and its own
/// connections, DNS and TLS.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetSummary {
    /// Its name in the plan (`default` for `[target]`).
    pub name: String,
    /// Its base URL.
    pub url: String,
    /// Requests sent to it.
    pub sent: u64,
    /// Of those, succeeded.
    pub ok: u64,
    /// failed / completed.
    pub error_rate: f64,
    /// Its connections and their connect time.
    pub connect_ms: ConnectFigures,
    /// Its TLS handshakes (`https://` hosts).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_ms: Option<TlsFigures>,
    /// Its name's resolution, once at the start.
    pub dns_ms: f64,
    /// Failures by kind.
    pub errors: BTreeMap<String, u64>,
}

/// One check's tally.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckSummary {
    /// Its name.
    pub name: String,
    /// Responses that passed it.
    pub passed: u64,
    /// Responses that failed it.
    pub failed: u64,
    /// passed / (passed + failed); `None` when it never ran.
    pub pass_rate: Option<f64>,
}

/// How often a `choose` branch was taken.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct BranchSummary {
    /// Its name.
    pub name: String,
    /// Times taken.
    pub taken: u64,
    /// Its share of all branch choices of the run (one `choose`: its split).
    pub share: Option<f64>,
}

/// One scenario's iteration count.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ScenarioSummary {
    /// Its name.
    pub name: String,
    /// Iterations of its flow started.
    pub iterations: u64,
    /// When it started, seconds from the run's start (`start`, `after`); absent when it never
    /// started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_s: Option<f64>,
    /// When it ended, seconds from the run's start.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_s: Option<f64>,
}

/// One probe's figures over the run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ProbeSummary {
    /// The probe's URL.
    pub url: String,
    /// Probe requests sent.
    pub sent: u64,
    /// Those that were OK.
    pub ok: u64,
    /// ok / sent.
    pub ok_rate: Option<f64>,
    /// Latency of the answered probes, milliseconds.
    pub latency_ms: Option<LatencyFigures>,
    /// The last number read from the JSON body, if asked for.
    pub last_value: Option<f64>,
    /// The highest number read from the JSON body, if asked for.
    pub max_value: Option<f64>,
}

/// One threshold's verdict.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ThresholdVerdict {
    /// The expression as written.
    pub expr: String,
    /// Whether it held.
    pub pass: bool,
    /// The measured value in the expression's normalised unit (ms, fraction, count), if any.
    pub value: Option<f64>,
    /// The measured value as shown to people (`241.3ms`, `1.20%`).
    pub shown: Option<String>,
}

impl ThresholdVerdict {
    /// Evaluates `expr` against `source`; a metric without data fails.
    pub fn evaluate(expr: &Expr, source: &dyn MetricSource) -> Self {
        let value = source.metric_value(&expr.metric);
        ThresholdVerdict {
            expr: expr.text.clone(),
            pass: value.is_some_and(|v| expr.holds(v)),
            value,
            shown: value.map(|v| expr.format_value(v)),
        }
    }
}

/// Request counts. Every request that was due ends as `ok`, `failed` (by kind; a request sent
/// and still unanswered when the drain time ran out is a failure of kind `unanswered`) or
/// `dropped` (never sent).
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct RequestCounts {
    /// Written to a connection.
    pub sent: u64,
    /// Ended with an outcome: `ok + failed` (a connection that could not be opened included,
    /// so a failed request may have ended without having been sent).
    pub completed: u64,
    /// Ended with an accepted answer.
    pub ok: u64,
    /// Ended with a failure, `unanswered` included.
    pub failed: u64,
    /// Of `failed`: sent, and still unanswered when the drain time ran out.
    #[serde(default, alias = "unfinished")]
    pub unanswered: u64,
    /// Redirects followed (each hop; a chain is one request).
    #[serde(default)]
    pub redirects: u64,
    /// Due but never sent: over the in-flight bound, or still waiting for a connection when
    /// the run ended.
    pub dropped: u64,
    /// failed / completed.
    pub error_rate: f64,
}

/// Offered and achieved rates, requests per second over the measured window.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Rates {
    /// The mean rate offered (open model).
    #[serde(alias = "target")]
    pub offered: Option<f64>,
    /// Requests written per second.
    #[serde(default)]
    pub sent: f64,
    /// Successful answers per second, counted by the second they arrived, inside the measured
    /// window only: what the target carried.
    pub achieved: f64,
    /// Failures per second inside the measured window.
    #[serde(default)]
    pub failed: f64,
}

/// Bytes moved.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct Bytes {
    /// Response bytes received.
    #[serde(rename = "in")]
    pub received: u64,
    /// Request bytes written.
    #[serde(rename = "out")]
    pub sent: u64,
    /// Response bodies read by checks or extraction and sent compressed, once decoded.
    #[serde(default)]
    pub decoded: u64,
}

/// Latency figures, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LatencyFigures {
    /// Lowest.
    pub min: f64,
    /// Arithmetic mean.
    pub mean: f64,
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 95th percentile.
    pub p95: f64,
    /// 99th percentile.
    pub p99: f64,
    /// 99.9th percentile.
    pub p999: f64,
    /// Highest.
    pub max: f64,
}

/// Latency figures of every request that ended, and how far they are exact.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct AllLatencyFigures {
    /// The figures, milliseconds.
    #[serde(flatten)]
    pub figures: LatencyFigures,
    /// Requests pummel gave up on (timeout, unanswered, WebSocket expect timeout), counted at
    /// the time they were given up.
    pub given_up: u64,
    /// The lowest time at which a request was given up, milliseconds: a figure at or above it
    /// may be pulled up by requests whose real latency is longer, so it is a lower bound ("≥").
    pub given_up_from_ms: Option<f64>,
}

impl AllLatencyFigures {
    /// True when `value` (milliseconds, a percentile, the min or the max of
    /// [`AllLatencyFigures::figures`]) is only a lower bound of the real figure.
    pub fn is_lower_bound(&self, value: f64) -> bool {
        self.given_up_from_ms.is_some_and(|from| value >= from)
    }

    /// True when the mean is only a lower bound: any request given up pulls it down.
    pub fn mean_is_lower_bound(&self) -> bool {
        self.given_up > 0
    }
}

impl LatencyFigures {
    /// Reads the figures from a histogram; `None` when it is empty.
    pub fn from_histogram(h: &LatencyHistogram) -> Option<Self> {
        let get = |stat: Stat| histogram_stat_ms(h, &stat);
        Some(LatencyFigures {
            min: get(Stat::Min)?,
            mean: get(Stat::Mean)?,
            p50: get(Stat::Percentile(50.0))?,
            p90: get(Stat::Percentile(90.0))?,
            p95: get(Stat::Percentile(95.0))?,
            p99: get(Stat::Percentile(99.0))?,
            p999: get(Stat::Percentile(99.9))?,
            max: get(Stat::Max)?,
        })
    }
}

/// Connect figures, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct ConnectFigures {
    /// Connections opened.
    pub count: u64,
    /// Idle keep-alive connections the server had closed, noticed before a request reused them
    /// and replaced by a new connection (counted in `count` too; never a failure).
    #[serde(default)]
    pub reconnects: u64,
    /// Mean connect time.
    pub mean: Option<f64>,
    /// 99th percentile connect time.
    pub p99: Option<f64>,
}

/// TLS handshake figures, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TlsFigures {
    /// Handshakes completed (one per connection opened).
    pub count: u64,
    /// Mean handshake time.
    pub mean: Option<f64>,
    /// 99th percentile handshake time.
    pub p99: Option<f64>,
    /// Handshakes that resumed a session (abbreviated: no certificate exchange).
    #[serde(default)]
    pub resumed: u64,
}

/// The generator's health.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct GeneratorFigures {
    /// Shards (threads) that ran.
    pub threads: usize,
    /// CPU seconds pummel used.
    pub cpu_seconds: f64,
    /// The busiest generator thread's CPU use over the measured seconds, percent of one core
    /// (the median of its per-second values): one saturated thread limits its share of the
    /// load however idle the others are.
    #[serde(default)]
    pub busiest_thread_percent: Option<f64>,
    /// Schedule lag p99, milliseconds (open model).
    pub schedule_lag_p99_ms: Option<f64>,
}

/// Which side limited a run.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq, Hash)]
#[serde(rename_all = "snake_case")]
pub enum LimitSide {
    /// pummel itself: a generator thread was saturated while its work fell behind.
    Generator,
    /// pummel's connection pool: every connection was busy while arrivals waited for one.
    Pool,
    /// The target: pummel kept up, and the target's successful answers stayed below the
    /// offered rate.
    Target,
}

impl LimitSide {
    /// The name used in results and output.
    pub fn name(self) -> &'static str {
        match self {
            LimitSide::Generator => "generator",
            LimitSide::Pool => "pool",
            LimitSide::Target => "target",
        }
    }
}

/// What limited a run, with the evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct LimitVerdict {
    /// Which side.
    pub by: LimitSide,
    /// The verdict in one sentence, with what to do.
    pub text: String,
    /// The figures behind it.
    pub evidence: Vec<String>,
    /// Measured seconds in which this side was the limit.
    pub seconds: u64,
    /// Measured seconds judged.
    pub of_seconds: u64,
}

/// One stage's row: what users copy into their tables.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StageSummary {
    /// Target rate (open model).
    pub target_rate: Option<f64>,
    /// Seconds measured.
    pub duration_s: f64,
    /// Successful answers per second that arrived during the stage's measured seconds.
    pub achieved_rate: f64,
    /// Requests due in the stage that were written.
    #[serde(default)]
    pub sent: u64,
    /// Requests due in the stage that succeeded.
    #[serde(default)]
    pub ok: u64,
    /// Requests due in the stage that ended (ok or failed).
    pub completed: u64,
    /// Failed requests (unanswered included).
    pub failed: u64,
    /// Of `failed`: unanswered when the drain time ran out.
    #[serde(default)]
    pub unanswered: u64,
    /// Requests due in the stage that were never sent.
    #[serde(default)]
    pub dropped: u64,
    /// failed / completed.
    pub error_rate: f64,
    /// Latency figures of the requests that succeeded.
    pub latency_ms: Option<LatencyFigures>,
    /// Latency p99 of every request that ended, failures included (a lower bound when
    /// requests were given up).
    #[serde(default)]
    pub latency_all_p99_ms: Option<f64>,
    /// The failure kind seen most, if any.
    pub top_error: Option<String>,
    /// Why the stage was cut short, if it was.
    pub note: Option<String>,
}

impl Summary {
    /// True when every threshold held.
    pub fn thresholds_pass(&self) -> bool {
        self.thresholds.iter().all(|t| t.pass)
    }
}
