//! One second of a run, as the live view, the per-second lines and the results file show it.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::expr::Stat;
use crate::histogram::{LatencyHistogram, histogram_stat_ms, to_base64};

/// What happened during one second of the run. (`Default` is an empty second, for tests and
/// readers building entries field by field.)
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimelineEntry {
    /// End of the second, counted from the run's start (1 = the first second).
    pub second: u64,
    /// True while the warmup lasts: these requests are excluded from the summary.
    pub warmup: bool,
    /// Target rate during this second (open model).
    pub target_rate: Option<f64>,
    /// Requests written to a connection.
    pub sent: u64,
    /// Requests that ended during the second (ok or failed).
    pub completed: u64,
    /// Successful answers that arrived during the second.
    pub ok: u64,
    /// Failures during the second (unanswered included).
    pub failed: u64,
    /// Failures by kind (only kinds that occurred).
    pub errors: BTreeMap<String, u64>,
    /// Requests that were due but never sent (`--max-inflight`, or still waiting for a
    /// connection when the run ended).
    pub dropped: u64,
    /// Of `failed`: requests sent and still unanswered when the drain time ran out (the last
    /// entry only).
    #[serde(default, alias = "unfinished")]
    pub unanswered: u64,
    /// Idle connections found closed by the server and replaced before a request used them.
    #[serde(default)]
    pub reconnects: u64,
    /// Requests due but not finished at the end of the second (waiting for a connection, or
    /// sent and unanswered).
    pub in_flight: u64,
    /// Of `in_flight`: requests due and not yet written at the end of the second (waiting for a
    /// connection or a free user of the pool).
    #[serde(default)]
    pub waiting: u64,
    /// Connections open at the end of the second.
    pub connections: u64,
    /// Connections opened during the second.
    #[serde(default)]
    pub connections_opened: u64,
    /// Established connections the target closed during the second (`pummel hold`).
    #[serde(default)]
    pub closed_by_peer: u64,
    /// Response bytes received.
    pub bytes_in: u64,
    /// Request bytes written.
    pub bytes_out: u64,
    /// Latency figures of the requests that succeeded in this second.
    pub latency_ms: Option<TimelineLatency>,
    /// Service-time figures (from the actual write) of the same requests: the yardstick of
    /// `compare`'s service-time row. Absent in results written before it was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub service_time_ms: Option<TimelineLatency>,
    /// How late requests were dispatched versus plan (open model).
    pub schedule_lag_ms: Option<LagFigures>,
    /// CPU used by the pummel process, percent of one core.
    pub cpu_percent: f64,
    /// CPU used by the busiest generator thread during the second, percent of one core.
    #[serde(default)]
    pub busiest_thread_percent: Option<f64>,
    /// What limited this second, when something did (see `summary.limit`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limit: Option<crate::summary::LimitSide>,
    /// Probe requests that completed during this second (`--probe`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub probes: Vec<crate::observed::ProbeSample>,
    /// The watched target process at the end of this second (`--watch-pid`, `--watch-port`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<pummel_system::watch::WatchSample>,
    /// Why a watched target has no sample in this second (it went away, could not be read, or
    /// its sample was not ready in time); absent when it has one or none is watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watch_gap: Option<String>,
    /// Scenarios that start later than the run (`start`, `after`) and started during this
    /// second: which part of the plan ran when.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub started: Vec<String>,
    /// Faults that started, ended or were undone during this second (`[[fault]]`, `--fault`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<crate::fault::FaultMark>,
    /// The second's histograms, written by segments (`--segment`) so that `pummel merge`
    /// recomputes the merged second's percentiles exactly; absent in other runs, whose
    /// documents keep their size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub histograms: Option<SecondHistograms>,
}

/// One second's histograms (HdrHistogram V2+DEFLATE, base64, microseconds; see
/// [`crate::histogram`]): the ones its percentiles are read from.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SecondHistograms {
    /// Latency of the requests that succeeded in the second (`latency_ms`).
    pub latency: String,
    /// Their service time (`service_time_ms`).
    pub service_time: String,
    /// Schedule lag of the second's dispatches (`schedule_lag_ms`).
    pub schedule_lag: String,
}

/// Latency percentiles of one second, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct TimelineLatency {
    /// Median.
    pub p50: f64,
    /// 90th percentile.
    pub p90: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Highest.
    pub max: f64,
}

/// Schedule lag of one second, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct LagFigures {
    /// 99th percentile.
    pub p99: f64,
    /// Highest.
    pub max: f64,
}

impl TimelineLatency {
    /// p50, p90, p99 and max of `histogram`; `None` when it is empty. The one way a second's
    /// figures are read, by the run and by `pummel merge` alike.
    pub fn from_histogram(histogram: &LatencyHistogram) -> Option<Self> {
        let pct = |p| histogram_stat_ms(histogram, &Stat::Percentile(p));
        pct(50.0).map(|p50| TimelineLatency {
            p50,
            p90: pct(90.0).unwrap_or(p50),
            p99: pct(99.0).unwrap_or(p50),
            max: histogram_stat_ms(histogram, &Stat::Max).unwrap_or(p50),
        })
    }
}

impl LagFigures {
    /// p99 and max of a schedule-lag histogram; `None` when it is empty.
    pub fn from_histogram(histogram: &LatencyHistogram) -> Option<Self> {
        histogram_stat_ms(histogram, &Stat::Percentile(99.0))
            .map(|p99| LagFigures { p99, max: histogram_stat_ms(histogram, &Stat::Max).unwrap_or(p99) })
    }
}

impl SecondHistograms {
    /// The serialized histograms of one second.
    pub fn of(latency: &LatencyHistogram, service_time: &LatencyHistogram, schedule_lag: &LatencyHistogram) -> Self {
        SecondHistograms {
            latency: to_base64(latency),
            service_time: to_base64(service_time),
            schedule_lag: to_base64(schedule_lag),
        }
    }
}
