//! The results document: one JSON file that holds everything a run measured.
//!
//! It is the contract between a run and whatever reads it later (`report`, `compare`, merging
//! segments from several machines): the summary, the plan, the per-second timeline and the
//! final histograms in HdrHistogram's V2+DEFLATE interchange encoding, so percentiles can be
//! recomputed and histograms merged exactly. `schema_version` changes whenever a field changes
//! meaning; [`SCHEMA`] (`schema/results.schema.json`) describes the current one.

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::summary::Summary;
use crate::timeline::TimelineEntry;

/// The JSON Schema of the current results document.
pub const SCHEMA: &str = include_str!("../schema/results.schema.json");

/// The version of the results document's shape.
pub const SCHEMA_VERSION: u32 = 3;

/// The full results of a run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ResultsDocument {
    /// Shape version of this document.
    pub schema_version: u32,
    /// Version of pummel that wrote it.
    pub pummel_version: String,
    /// Start of the run, RFC 3339 UTC.
    pub started_at: String,
    /// The plan that ran, as pummel understood it.
    pub plan: serde_json::Value,
    /// Identity of the plan, the same in every segment of it ([`crate::fingerprint`]): what
    /// `pummel merge` checks before it joins documents. Absent in documents written before it
    /// was recorded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_fingerprint: Option<String>,
    /// The summary.
    pub summary: Summary,
    /// One entry per second.
    pub timeline: Vec<TimelineEntry>,
    /// Final histograms of the whole run (warmup excluded).
    pub histograms: Histograms,
    /// Final histograms per stage, in stage order.
    pub stage_histograms: Vec<Histograms>,
    /// The first messages of errors of kind `other`.
    pub other_errors: Vec<String>,
    /// For `pummel find-limit`: the verdict of every step and the capacity found. The steps are
    /// the stages of `summary.stages` (same order) and `stage_histograms`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub find_limit: Option<FindLimitReport>,
}

/// What `pummel find-limit` concluded.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct FindLimitReport {
    /// The service-level objectives every good step met (threshold grammar).
    pub slo: Vec<String>,
    /// Highest error rate a good step may have (fraction).
    pub max_error_rate: f64,
    /// One verdict per step, in the order run.
    pub steps: Vec<StepVerdict>,
    /// Highest target rate that was good, req/s.
    pub capacity_rps: Option<f64>,
    /// Lowest target rate that broke the SLO, req/s.
    pub breaking_rps: Option<f64>,
    /// True when the generator, not the target, limited the search.
    pub generator_limited: bool,
    /// The one-line verdict, as printed.
    pub verdict: String,
    /// The capacity-planning estimate, when `--peak` was given.
    pub planning: Option<CapacityPlan>,
}

/// The verdict of one find-limit step.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StepVerdict {
    /// Target rate of the step, req/s.
    pub target_rate: f64,
    /// True when every SLO held and the generator kept up.
    pub good: bool,
    /// Why the step is not good (the SLOs that failed, or the generator), if it is not.
    pub reason: Option<String>,
}

/// How many instances a peak needs, assuming capacity scales linearly with instances.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CapacityPlan {
    /// The expected peak, req/s.
    pub peak_rps: f64,
    /// Spare capacity kept on each instance (fraction).
    pub headroom: f64,
    /// Measured capacity of one instance, req/s.
    pub per_instance_rps: f64,
    /// Instances needed.
    pub instances: u64,
}

/// Serialized histograms (HdrHistogram V2+DEFLATE, base64), microseconds.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Histograms {
    /// Latency from the intended start, of the requests that succeeded.
    pub latency: String,
    /// Service time, of the requests that succeeded.
    pub service_time: String,
    /// Latency from the intended start of every request that ended (failures at the time they
    /// failed or were given up).
    #[serde(default)]
    pub latency_all: String,
    /// Connect time.
    pub connect_time: String,
    /// Schedule lag.
    pub schedule_lag: String,
    /// TLS handshake time. Written by segments (`--segment`), so that their merge recomputes
    /// the handshake percentiles exactly; absent otherwise (the summary holds its figures).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_handshake: Option<String>,
}

/// Why the results could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ResultsError {
    /// A file operation failed.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a results document pummel can read.
    #[error("{path} is not a pummel results file: {source}")]
    Format {
        /// The file.
        path: PathBuf,
        /// The error.
        source: serde_json::Error,
    },
}

/// The oldest document version this crate still reads (version 1 had a quick run's `load` and
/// `request` in `plan` instead of its one scenario; versions 1 and 2 counted failed requests in
/// `latency` and `service_time`, had `unfinished` requests outside `failed`, and an achieved
/// rate of every completion, failures and the drain after the window included).
pub const OLDEST_READABLE_VERSION: u32 = 1;

impl ResultsDocument {
    /// The load of the run's one scenario (a quick run's), as it ran; `None` with several.
    pub fn load(&self) -> Option<&serde_json::Value> {
        match self.scenario_list() {
            Some([only]) => only.get("load"),
            Some(_) => None,
            None => self.plan.get("load"),
        }
    }

    /// The method of a run of one request (a quick run), e.g. `GET`.
    pub fn method(&self) -> Option<&str> {
        match self.scenario_list() {
            Some([only]) => only.pointer("/flow/0/request/method").and_then(|m| m.as_str()),
            Some(_) => None,
            None => self.plan.pointer("/request/method").and_then(|m| m.as_str()),
        }
    }

    /// The names of the scenarios that ran (none for a version-1 document).
    pub fn scenario_names(&self) -> Vec<&str> {
        self.scenario_list().unwrap_or_default().iter().filter_map(|s| s.get("name")?.as_str()).collect()
    }

    fn scenario_list(&self) -> Option<&[serde_json::Value]> {
        self.plan.pointer("/scenarios/list").and_then(|l| l.as_array()).map(Vec::as_slice)
    }

    /// Writes the document atomically: to a temporary file beside `path`, then renamed over it,
    /// so a reader never sees half a file even if pummel is killed while writing.
    pub fn write_atomically(&self, path: &Path) -> Result<(), ResultsError> {
        let io = |action, source| ResultsError::Io { action, path: path.to_path_buf(), source };
        let mut tmp = path.as_os_str().to_owned();
        tmp.push(".tmp");
        let tmp = PathBuf::from(tmp);
        let json = serde_json::to_vec_pretty(self).map_err(|e| io("serializing results for", e.into()))?;
        let mut file = std::fs::File::create(&tmp).map_err(|e| io("creating", e))?;
        file.write_all(&json).map_err(|e| io("writing", e))?;
        file.sync_all().map_err(|e| io("syncing", e))?;
        drop(file);
        std::fs::rename(&tmp, path).map_err(|e| io("renaming into place", e))
    }

    /// Reads a results document.
    pub fn read(path: &Path) -> Result<Self, ResultsError> {
        let bytes = std::fs::read(path).map_err(|source| ResultsError::Io {
            action: "reading",
            path: path.to_path_buf(),
            source,
        })?;
        serde_json::from_slice(&bytes).map_err(|source| ResultsError::Format { path: path.to_path_buf(), source })
    }
}
