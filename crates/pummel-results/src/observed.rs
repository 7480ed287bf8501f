//! What the observers beside a run saw: probe samples and the watched target's totals.

use pummel_system::watch::WatchSample;
use serde::{Deserialize, Serialize};

/// The outcome of one probe request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ProbeSample {
    /// Which probe (its URL).
    pub url: String,
    /// True when the target answered in time with an accepted status (and the expectation held).
    pub ok: bool,
    /// Time from connect to the end of the response, milliseconds (also for NOK answers).
    pub latency_ms: Option<f64>,
    /// The response status, if one came.
    pub status: Option<u16>,
    /// The number read from the JSON body, if asked for and found.
    pub value: Option<f64>,
    /// Why it is NOK.
    pub error: Option<String>,
}

/// The watched target's figures over the whole run.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct TargetTotals {
    /// The process.
    pub pid: u32,
    /// Its name.
    pub name: String,
    /// Samples taken.
    pub samples: u64,
    /// Most open fds seen.
    pub peak_open_fds: u64,
    /// Its open-file soft limit (last seen; `None` = unlimited or never sampled).
    pub fd_soft_limit: Option<u64>,
    /// Highest fd number seen.
    pub peak_max_fd: Option<u64>,
    /// Most ESTABLISHED sockets seen.
    pub peak_established: u64,
    /// Most CLOSE_WAIT sockets seen.
    pub peak_close_wait: u64,
    /// Most threads seen.
    pub peak_threads: u64,
    /// Largest RSS seen, bytes.
    pub peak_rss_bytes: u64,
    /// Every warning raised, in order.
    pub warnings: Vec<String>,
    /// Set when the process went away during the run.
    pub gone: Option<String>,
}

impl TargetTotals {
    /// No samples yet, for process `pid` named `name`.
    pub fn new(pid: u32, name: &str) -> Self {
        TargetTotals {
            pid,
            name: name.to_string(),
            samples: 0,
            peak_open_fds: 0,
            fd_soft_limit: None,
            peak_max_fd: None,
            peak_established: 0,
            peak_close_wait: 0,
            peak_threads: 0,
            peak_rss_bytes: 0,
            warnings: Vec::new(),
            gone: None,
        }
    }

    /// Counts one sample in.
    pub fn add(&mut self, s: &WatchSample) {
        self.samples += 1;
        self.peak_open_fds = self.peak_open_fds.max(s.open_fds);
        self.fd_soft_limit = s.fd_soft_limit;
        self.peak_max_fd = self.peak_max_fd.max(s.max_fd);
        self.peak_established = self.peak_established.max(s.tcp.established);
        self.peak_close_wait = self.peak_close_wait.max(s.tcp.close_wait);
        self.peak_threads = self.peak_threads.max(s.threads);
        self.peak_rss_bytes = self.peak_rss_bytes.max(s.rss_bytes);
        self.warnings.extend(s.warnings.iter().map(|w| w.text.clone()));
    }

    /// Notes (once) that the process went away, and why.
    pub fn note_gone(&mut self, why: String) {
        self.gone.get_or_insert(why);
    }
}
