//! What the observers beside a run saw: probe samples and the watched target's totals.
//!
//! The target's totals are made from the samples of the timeline only
//! ([`TargetTotals::from_timeline`]), so that every peak of the summary can be found in a second
//! of the timeline.

use pummel_system::watch::WatchSample;
use serde::{Deserialize, Serialize};

use crate::timeline::TimelineEntry;

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
    /// Samples in the timeline (one per second at most).
    pub samples: u64,
    /// Seconds of the timeline without a sample (each says why in its `watch_gap`).
    #[serde(default)]
    pub watch_gaps: u64,
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
    /// Most connections seen waiting in its accept queue (completed by the kernel, not yet
    /// accepted).
    #[serde(default)]
    pub peak_accept_queue: u64,
    /// Listen-queue overflows over the run: connections dropped because an accept queue was
    /// full, counted for the whole network namespace (the kernel does not count them per
    /// process); `None` when they could not be read.
    #[serde(default)]
    pub listen_overflows: Option<u64>,
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
            watch_gaps: 0,
            peak_open_fds: 0,
            fd_soft_limit: None,
            peak_max_fd: None,
            peak_established: 0,
            peak_close_wait: 0,
            peak_accept_queue: 0,
            listen_overflows: None,
            peak_threads: 0,
            peak_rss_bytes: 0,
            warnings: Vec::new(),
            gone: None,
        }
    }

    /// The totals of the samples that `timeline` holds, and the seconds without one (those
    /// with a `watch_gap`): a sample that no second holds counts nowhere.
    pub fn from_timeline(pid: u32, name: &str, timeline: &[TimelineEntry]) -> Self {
        let mut totals = TargetTotals::new(pid, name);
        for entry in timeline {
            match &entry.target {
                Some(sample) => totals.add(sample),
                None if entry.watch_gap.is_some() => totals.watch_gaps += 1,
                None => {}
            }
        }
        totals
    }

    /// Counts one sample in.
    fn add(&mut self, s: &WatchSample) {
        self.samples += 1;
        self.peak_open_fds = self.peak_open_fds.max(s.open_fds);
        self.fd_soft_limit = s.fd_soft_limit;
        self.peak_max_fd = self.peak_max_fd.max(s.max_fd);
        self.peak_established = self.peak_established.max(s.tcp.established);
        self.peak_close_wait = self.peak_close_wait.max(s.tcp.close_wait);
        self.peak_accept_queue = self.peak_accept_queue.max(s.accept_queue);
        self.listen_overflows = self.listen_overflows.max(s.system_listen_overflows);
        self.peak_threads = self.peak_threads.max(s.threads);
        self.peak_rss_bytes = self.peak_rss_bytes.max(s.rss_bytes);
        self.warnings.extend(s.warnings.iter().map(|w| w.text.clone()));
    }

    /// Notes (once) that the process went away, and why.
    pub fn note_gone(&mut self, why: String) {
        self.gone.get_or_insert(why);
    }
}

#[cfg(test)]
mod tests {

    use pummel_system::proc_text::tcp::TcpStates;

    use super::*;

    fn sample(close_wait: u64, open_fds: u64) -> WatchSample {
        queued(close_wait, open_fds, 0, Some(0))
    }

    fn queued(close_wait: u64, open_fds: u64, accept_queue: u64, overflows: Option<u64>) -> WatchSample {
        WatchSample {
            pid: 7,
            elapsed_ms: 1000,
            open_fds,
            max_fd: Some(open_fds),
            holds_epoll: true,
            fd_soft_limit: Some(1024),
            fd_hard_limit: Some(4096),
            threads: 2,
            cpu_percent: Some(1.0),
            rss_bytes: 1 << 20,
            tcp: TcpStates { close_wait, established: 3, ..TcpStates::default() },
            accept_queue,
            system_listen: None,
            system_listen_overflows: overflows,
            warnings: Vec::new(),
        }
    }

    fn second(n: u64, target: Option<WatchSample>, gap: Option<&str>) -> TimelineEntry {
        TimelineEntry { second: n, target, watch_gap: gap.map(str::to_string), ..TimelineEntry::default() }
    }

    #[test]
    fn totals_come_from_the_timeline_samples_only() {
        let timeline = vec![
            second(1, Some(sample(2, 10)), None),
            second(2, None, Some("late")),
            second(3, Some(sample(5, 12)), None),
            second(4, Some(sample(1, 11)), None),
        ];
        let totals = TargetTotals::from_timeline(7, "api", &timeline);
        assert_eq!(totals.samples, 3);
        assert_eq!(totals.watch_gaps, 1);
        assert_eq!(totals.peak_close_wait, 5, "the highest CLOSE_WAIT of a second");
        assert_eq!(totals.peak_open_fds, 12);
        // Every peak is the figure of some second.
        let held: Vec<u64> = timeline.iter().filter_map(|e| e.target.as_ref()).map(|s| s.tcp.close_wait).collect();
        assert!(held.contains(&totals.peak_close_wait));
    }

    #[test]
    fn the_accept_queue_and_the_overflows_of_the_timeline() {
        let timeline = vec![
            second(1, Some(queued(0, 10, 3, Some(0))), None),
            second(2, Some(queued(0, 10, 50, Some(40))), None),
            second(3, Some(queued(0, 10, 0, Some(90))), None),
            second(4, None, Some("late")),
        ];
        let totals = TargetTotals::from_timeline(7, "api", &timeline);
        assert_eq!(totals.peak_accept_queue, 50);
        assert_eq!(totals.listen_overflows, Some(90), "counted since the watch began: the last sample's");
        let unreadable = vec![second(1, Some(queued(0, 10, 0, None)), None)];
        assert_eq!(TargetTotals::from_timeline(7, "api", &unreadable).listen_overflows, None);
    }

    #[test]
    fn a_timeline_without_samples_has_no_peaks() {
        let timeline = vec![second(1, None, Some("gone")), second(2, None, None)];
        let totals = TargetTotals::from_timeline(7, "api", &timeline);
        assert_eq!((totals.samples, totals.watch_gaps, totals.peak_close_wait), (0, 1, 0));
        assert_eq!(totals.peak_max_fd, None);
    }
}
