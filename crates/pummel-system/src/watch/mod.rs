//! Target watch: the target process seen from `/proc` once a second, with no agent on it.
//!
//! [`TargetWatch`] is made once ([`TargetWatch::for_pid`] or
//! [`TargetWatch::for_listening_port`]) and then asked for a [`WatchSample`] every second by
//! whoever drives it: `pummel watch`, or the collector of `run` / `hold`. A sample holds the
//! process's open fds against its open-file limit and its highest fd number, threads, CPU since
//! the previous sample, RSS, its TCP sockets by state, the connections waiting in its accept
//! queue, and the system's listen-queue drops per second; plus the [`Warning`]s that began
//! with it.
//!
//! Sockets are the process's when an fd of it refers to their inode; sockets that no fd refers
//! to (not yet accepted, half-open, TIME_WAIT after the target closed) are counted as its when
//! their local port is one of its listening ports. Counting is one read of each socket table
//! per sample and one hash lookup per line, so 10,000 sockets cost a few milliseconds.
//!
//! A process that exits is the end state [`WatchError::Gone`], from then on; a PID reused by a
//! new process is noticed (its start time differs) and also reported as gone.

mod error;
mod find;
mod sample;
mod sockets;
mod warnings;

use std::time::Instant;

use procfs::process::Process;

pub use self::error::WatchError;
pub use self::find::{ListeningProcess, listening_processes};
pub use self::sample::{ListenRates, WatchSample};
use self::sockets::SocketScanner;
pub use self::warnings::{
    CLOSE_WAIT_GROWTH_SAMPLES, FD_LIMIT_SHARE, SELECT_FD_LIMIT, Warning, WarningKind, WarningRules,
};
use crate::proc_text::limits::ProcessLimits;
use crate::proc_text::netstat::{ListenCounters, parse_netstat};

/// Less time than this between two samples gives no CPU figure (too few clock ticks to mean
/// anything).
const MIN_CPU_INTERVAL_SECS: f64 = 0.05;

/// A watched process; call [`TargetWatch::sample`] about once a second.
#[derive(Debug)]
pub struct TargetWatch {
    /// An open handle on `/proc/PID`, so a reused PID cannot be read by mistake.
    process: Process,
    pid: u32,
    name: String,
    /// The kernel's start time of the process (clock ticks since boot), to notice PID reuse.
    start_time: u64,
    began: Instant,
    /// CPU ticks used by the process at the previous sample, and when.
    cpu_mark: (Instant, u64),
    /// Listen-queue counters at the previous sample, and when.
    listen_mark: Option<(Instant, ListenCounters)>,
    /// Listen-queue counters when the watch began.
    listen_base: Option<ListenCounters>,
    scanner: SocketScanner,
    rules: WarningRules,
    gone: bool,
}

impl TargetWatch {
    /// Starts watching the process `pid`; checks at once that it exists and that its fds can
    /// be read. The CPU and listen-queue figures of the first sample count from here.
    pub fn for_pid(pid: u32) -> Result<TargetWatch, WatchError> {
        let no_such = WatchError::NoSuchProcess { pid };
        let raw_pid = i32::try_from(pid).map_err(|_| no_such.clone())?;
        if raw_pid <= 0 {
            return Err(no_such);
        }
        let not_found_is_missing = |what: &str, e| match WatchError::from_proc(pid, what, e) {
            WatchError::Gone { .. } => no_such.clone(),
            other => other,
        };
        let process = Process::new(raw_pid).map_err(|e| not_found_is_missing("", e))?;
        let stat = process.stat().map_err(|e| not_found_is_missing("stat", e))?;
        if matches!(stat.state, 'Z' | 'X') {
            return Err(no_such);
        }
        // Fail now, not at the first sample, when another user's fds cannot be read.
        process.fd().map_err(|e| not_found_is_missing("fd", e))?;
        let now = Instant::now();
        let listen_mark = read_listen_counters(&process).map(|counters| (now, counters));
        Ok(TargetWatch {
            pid,
            name: stat.comm.clone(),
            start_time: stat.starttime,
            began: now,
            cpu_mark: (now, stat.utime + stat.stime),
            listen_mark,
            listen_base: listen_mark.map(|(_, counters)| counters),
            process,
            scanner: SocketScanner::default(),
            rules: WarningRules::new(),
            gone: false,
        })
    }

    /// Starts watching the process that listens on TCP `port` (in this network namespace).
    /// When several processes share the listening socket, the one with the most sockets is
    /// watched; [`listening_processes`] lists them all.
    pub fn for_listening_port(port: u16) -> Result<TargetWatch, WatchError> {
        let listeners = listening_processes(port)?;
        let first = listeners.first().ok_or(WatchError::NoListener { port })?;
        TargetWatch::for_pid(first.pid)
    }

    /// The watched PID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// The process's name (`comm`, at most 15 characters), as it was when the watch began.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// True once a sample found the process gone.
    pub fn is_gone(&self) -> bool {
        self.gone
    }

    /// Observes the process now. Meant to be called about once a second; CPU and drop rates
    /// cover the time since the previous call (or since the watch began).
    ///
    /// Returns [`WatchError::Gone`] once the process has exited (also for a zombie or a
    /// reused PID), and from then on.
    pub fn sample(&mut self) -> Result<WatchSample, WatchError> {
        match self.observe() {
            Err(WatchError::Gone { pid }) => {
                self.gone = true;
                Err(WatchError::Gone { pid })
            }
            other => other,
        }
    }

    fn observe(&mut self) -> Result<WatchSample, WatchError> {
        let pid = self.pid;
        if self.gone {
            return Err(WatchError::Gone { pid });
        }
        let stat = self.process.stat().map_err(|e| WatchError::from_proc(pid, "stat", e))?;
        if matches!(stat.state, 'Z' | 'X') || stat.starttime != self.start_time {
            return Err(WatchError::Gone { pid });
        }
        let now = Instant::now();
        let limits = self.process.limits().map_err(|e| WatchError::from_proc(pid, "limits", e))?;
        let limits = ProcessLimits::from(&limits);
        let fds = self.scanner.scan_fds(pid)?;
        let sockets = self.scanner.count_sockets(&self.process, pid)?;

        let ticks = stat.utime + stat.stime;
        let (cpu_at, cpu_ticks) = self.cpu_mark;
        let cpu_secs = now.duration_since(cpu_at).as_secs_f64();
        let cpu_percent = (cpu_secs >= MIN_CPU_INTERVAL_SECS).then(|| {
            let used = ticks.saturating_sub(cpu_ticks) as f64 / procfs::ticks_per_second() as f64;
            used * 100.0 / cpu_secs
        });
        if cpu_percent.is_some() {
            self.cpu_mark = (now, ticks);
        }

        let counters = read_listen_counters(&self.process);
        let system_listen = match (counters, self.listen_mark) {
            (Some(counters), Some((at, before))) => {
                Some(ListenRates::from_delta(&counters.since(&before), now.duration_since(at).as_secs_f64()))
            }
            _ => None,
        };
        if let Some(counters) = counters {
            self.listen_mark = Some((now, counters));
            self.listen_base.get_or_insert(counters);
        }
        let system_listen_overflows =
            counters.zip(self.listen_base).map(|(now, base)| now.since(&base).listen_overflows);

        let mut sample = WatchSample {
            pid,
            elapsed_ms: u64::try_from(now.duration_since(self.began).as_millis()).unwrap_or(u64::MAX),
            open_fds: fds.open,
            max_fd: fds.max_fd,
            holds_epoll: fds.epoll,
            fd_soft_limit: limits.open_files.soft,
            fd_hard_limit: limits.open_files.hard,
            threads: u64::try_from(stat.num_threads).unwrap_or(0),
            cpu_percent,
            rss_bytes: stat.rss.saturating_mul(procfs::page_size()),
            tcp: sockets.states,
            accept_queue: sockets.accept_queue,
            system_listen,
            system_listen_overflows,
            warnings: Vec::new(),
        };
        sample.warnings = self.rules.check(&sample);
        Ok(sample)
    }
}

/// The listen-queue counters of `process`'s network namespace; `None` when unreadable.
fn read_listen_counters(process: &Process) -> Option<ListenCounters> {
    let mut text = String::new();
    let mut file = process.open_relative("net/netstat").ok()?;
    std::io::Read::read_to_string(&mut file, &mut text).ok()?;
    parse_netstat(&text).ok()
}

#[cfg(test)]
mod tests;
