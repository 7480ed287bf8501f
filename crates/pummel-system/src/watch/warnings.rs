//! Warnings computed from a series of samples: the ways a server breaks under many
//! connections, told as they begin.
//!
//! Each rule is edge-triggered: it warns once when its condition starts and again only after
//! the condition has cleared, so a target stuck at its limit does not repeat the same line
//! every second.

use serde::{Deserialize, Serialize};

use super::sample::WatchSample;

/// Share of the soft open-file limit past which [`WarningKind::FdsNearLimit`] fires.
pub const FD_LIMIT_SHARE: f64 = 0.9;
/// FD_SETSIZE: select() cannot watch fd numbers from here on.
pub const SELECT_FD_LIMIT: u64 = 1024;
/// Consecutive increases of CLOSE_WAIT that make [`WarningKind::CloseWaitGrowing`] fire.
pub const CLOSE_WAIT_GROWTH_SAMPLES: u32 = 3;

/// What a warning is about; a stable snake_case name in JSON.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WarningKind {
    /// Open fds passed 90 % of the soft limit: accept() will soon fail with EMFILE.
    FdsNearLimit,
    /// An fd number reached 1024, the ceiling of select() (FD_SETSIZE), in a process that holds
    /// no epoll instance. A note rather than a verdict: /proc cannot tell whether the process
    /// waits with select() or with poll() (which has no ceiling). A process that holds an epoll
    /// instance (nginx, tokio, Node.js, Go, Netty...) never gets it.
    FdAboveSelectLimit,
    /// CLOSE_WAIT grew over consecutive samples: the target does not close sockets its
    /// clients have closed.
    CloseWaitGrowing,
    /// The listen queue overflowed: connections were dropped before the target accepted them.
    ListenOverflows,
}

/// One warning: its kind and a sentence with the numbers and what they mean.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Warning {
    /// What it is about.
    pub kind: WarningKind,
    /// The explanation, for people.
    pub text: String,
}

/// The state of the warning rules between samples.
#[derive(Debug, Default, Clone)]
pub struct WarningRules {
    fds_near_limit: bool,
    above_select: bool,
    overflowing: bool,
    previous_close_wait: Option<u64>,
    close_wait_increases: u32,
}

impl WarningRules {
    /// Rules that have seen no sample yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// The warnings that begin with `sample` (the next sample of the same process).
    pub fn check(&mut self, sample: &WatchSample) -> Vec<Warning> {
        let mut warnings = Vec::new();
        let mut warn = |kind, text: String| warnings.push(Warning { kind, text });

        let near_limit =
            sample.fd_soft_limit.is_some_and(|limit| sample.open_fds as f64 >= limit as f64 * FD_LIMIT_SHARE);
        if near_limit && !self.fds_near_limit {
            let limit = sample.fd_soft_limit.unwrap_or_default();
            warn(
                WarningKind::FdsNearLimit,
                format!(
                    "{} open fds, {:.0}% of the soft limit {limit}: at the limit accept() fails with EMFILE and \
                     new connections wait or are dropped (raise it: prlimit --pid {} --nofile=1048576:1048576, \
                     or LimitNOFILE= in its systemd unit)",
                    sample.open_fds,
                    sample.open_fds as f64 * 100.0 / limit.max(1) as f64,
                    sample.pid
                ),
            );
        }
        self.fds_near_limit = near_limit;

        let above_select = sample.max_fd.is_some_and(|fd| fd >= SELECT_FD_LIMIT) && !sample.holds_epoll;
        if above_select && !self.above_select {
            warn(
                WarningKind::FdAboveSelectLimit,
                format!(
                    "fd numbers pass {SELECT_FD_LIMIT} (highest {}) and the process holds no epoll instance: a target \
                     using select() would fail here (it cannot watch these fds, so connections on them are accepted \
                     but never served)",
                    sample.max_fd.unwrap_or_default()
                ),
            );
        }
        self.above_select = above_select;

        let close_wait = sample.tcp.close_wait;
        match self.previous_close_wait {
            Some(previous) if close_wait > previous => self.close_wait_increases += 1,
            _ => self.close_wait_increases = 0,
        }
        self.previous_close_wait = Some(close_wait);
        if self.close_wait_increases == CLOSE_WAIT_GROWTH_SAMPLES {
            warn(
                WarningKind::CloseWaitGrowing,
                format!(
                    "CLOSE_WAIT grew for {CLOSE_WAIT_GROWTH_SAMPLES} samples in a row (now {close_wait}): the target does \
                     not close sockets its clients closed, and each one keeps an fd"
                ),
            );
        }

        let overflows = sample.system_listen.map_or(0.0, |rates| rates.listen_overflows_per_s);
        let overflowing = overflows > 0.0;
        if overflowing && !self.overflowing {
            warn(
                WarningKind::ListenOverflows,
                format!(
                    "listen queue overflows: {overflows:.0}/s (system-wide): completed connections are dropped because \
                     the target does not accept() fast enough or its backlog is small (net.core.somaxconn)"
                ),
            );
        }
        self.overflowing = overflowing;
        warnings
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proc_text::tcp::TcpStates;
    use crate::watch::sample::ListenRates;

    fn sample(open_fds: u64, max_fd: u64, close_wait: u64, overflows: f64) -> WatchSample {
        WatchSample {
            pid: 42,
            elapsed_ms: 1000,
            open_fds,
            max_fd: Some(max_fd),
            holds_epoll: false,
            fd_soft_limit: Some(1000),
            fd_hard_limit: Some(4096),
            threads: 1,
            cpu_percent: None,
            rss_bytes: 0,
            tcp: TcpStates { close_wait, ..TcpStates::default() },
            accept_queue: 0,
            system_listen: Some(ListenRates { listen_overflows_per_s: overflows, ..ListenRates::default() }),
            system_listen_overflows: None,
            warnings: Vec::new(),
        }
    }

    fn kinds(warnings: &[Warning]) -> Vec<WarningKind> {
        warnings.iter().map(|w| w.kind).collect()
    }

    #[test]
    fn fds_near_the_limit_warn_once_per_crossing() {
        let mut rules = WarningRules::new();
        assert!(rules.check(&sample(899, 900, 0, 0.0)).is_empty());
        assert_eq!(kinds(&rules.check(&sample(900, 901, 0, 0.0))), [WarningKind::FdsNearLimit]);
        assert!(rules.check(&sample(950, 951, 0, 0.0)).is_empty(), "still near: no repeat");
        assert!(rules.check(&sample(100, 101, 0, 0.0)).is_empty());
        assert_eq!(kinds(&rules.check(&sample(990, 991, 0, 0.0))), [WarningKind::FdsNearLimit]);
    }

    #[test]
    fn unlimited_fds_never_warn() {
        let mut rules = WarningRules::new();
        let mut unlimited = sample(1_000_000, 10, 0, 0.0);
        unlimited.fd_soft_limit = None;
        assert!(rules.check(&unlimited).is_empty());
    }

    #[test]
    fn fd_numbers_past_select_ceiling() {
        let mut rules = WarningRules::new();
        assert!(rules.check(&sample(10, 1023, 0, 0.0)).is_empty());
        let warnings = rules.check(&sample(10, 1024, 0, 0.0));
        assert_eq!(kinds(&warnings), [WarningKind::FdAboveSelectLimit]);
        assert!(warnings[0].text.contains("select()"));
        assert!(rules.check(&sample(10, 2000, 0, 0.0)).is_empty());
    }

    #[test]
    fn an_epoll_process_is_not_bound_by_select() {
        let mut rules = WarningRules::new();
        let mut epoll = sample(10, 5000, 0, 0.0);
        epoll.holds_epoll = true;
        assert!(rules.check(&epoll).is_empty(), "epoll has no fd ceiling");
        // The same fd numbers without epoll: the note.
        assert_eq!(kinds(&rules.check(&sample(10, 5000, 0, 0.0))), [WarningKind::FdAboveSelectLimit]);
    }

    #[test]
    fn close_wait_growing_over_consecutive_samples() {
        let mut rules = WarningRules::new();
        for close_wait in [0, 5, 10] {
            assert!(rules.check(&sample(10, 10, close_wait, 0.0)).is_empty());
        }
        assert_eq!(kinds(&rules.check(&sample(10, 10, 15, 0.0))), [WarningKind::CloseWaitGrowing]);
        assert!(rules.check(&sample(10, 10, 20, 0.0)).is_empty(), "one warning per streak");
        assert!(rules.check(&sample(10, 10, 20, 0.0)).is_empty(), "flat: the streak ends");
        for close_wait in [21, 22] {
            assert!(rules.check(&sample(10, 10, close_wait, 0.0)).is_empty());
        }
        assert_eq!(kinds(&rules.check(&sample(10, 10, 23, 0.0))), [WarningKind::CloseWaitGrowing]);
    }

    #[test]
    fn stable_close_wait_is_fine() {
        let mut rules = WarningRules::new();
        for close_wait in [50, 50, 49, 50, 50, 50] {
            assert!(rules.check(&sample(10, 10, close_wait, 0.0)).is_empty());
        }
    }

    #[test]
    fn listen_overflows() {
        let mut rules = WarningRules::new();
        assert!(rules.check(&sample(10, 10, 0, 0.0)).is_empty());
        assert_eq!(kinds(&rules.check(&sample(10, 10, 0, 3.0))), [WarningKind::ListenOverflows]);
        assert!(rules.check(&sample(10, 10, 0, 5.0)).is_empty());
        assert!(rules.check(&sample(10, 10, 0, 0.0)).is_empty());
        assert_eq!(kinds(&rules.check(&sample(10, 10, 0, 1.0))), [WarningKind::ListenOverflows]);
    }

    #[test]
    fn kinds_serialize_in_snake_case() {
        let warning = Warning { kind: WarningKind::FdAboveSelectLimit, text: "x".into() };
        let json = serde_json::to_string(&warning).unwrap();
        assert_eq!(json, r#"{"kind":"fd_above_select_limit","text":"x"}"#);
    }
}
