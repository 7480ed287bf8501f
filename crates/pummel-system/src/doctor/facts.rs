//! What doctor reads from the system before judging it: this process's open-file limits, the
//! sysctls that bound connections, and optionally a target process's limits and usage.
//!
//! Gathering is kept apart from judging ([`super::checks`]) so the judgement can be tested on
//! made-up machines.

use procfs::process::Process;

use crate::proc_text::limits::{ProcessLimits, ResourceLimit};
use crate::proc_text::sysctl::{parse_file_nr, parse_number, parse_port_range, read_sysctl};
use crate::watch::WatchError;

/// The system as doctor found it; `None` where a value could not be read (a sysctl missing in
/// this kernel or namespace).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SystemFacts {
    /// This process's RLIMIT_NOFILE (what pummel started from this shell would get).
    pub open_files: Option<ResourceLimit>,
    /// `fs.file-max`: open files of all processes together.
    pub file_max: Option<u64>,
    /// The first figure of `fs.file-nr`: file handles allocated now, system-wide.
    pub files_allocated: Option<u64>,
    /// `fs.nr_open`: the ceiling of any process's open-file limit.
    pub nr_open: Option<u64>,
    /// `net.ipv4.ip_local_port_range`: first and last ephemeral port.
    pub port_range: Option<(u16, u16)>,
    /// `net.core.somaxconn`: the cap on every listen() backlog.
    pub somaxconn: Option<u64>,
    /// `net.ipv4.tcp_max_syn_backlog`: half-open connections per listener.
    pub tcp_max_syn_backlog: Option<u64>,
    /// `net.ipv4.tcp_tw_reuse`: 0 off, 1 on, 2 on for loopback only.
    pub tcp_tw_reuse: Option<u64>,
    /// Connection tracking, when the nf_conntrack module is loaded.
    pub conntrack: Option<Conntrack>,
}

/// The state of netfilter's connection tracking table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Conntrack {
    /// `net.netfilter.nf_conntrack_max`: connections it can track.
    pub max: u64,
    /// `net.netfilter.nf_conntrack_count`: connections it tracks now.
    pub count: Option<u64>,
}

/// A target process as doctor found it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TargetFacts {
    /// Its PID.
    pub pid: u32,
    /// Its name (`comm`).
    pub name: String,
    /// Its limits, from `/proc/PID/limits`.
    pub limits: ProcessLimits,
    /// Its open fds now; `None` when this user may not count them.
    pub open_fds: Option<u64>,
    /// Its threads now.
    pub threads: u64,
}

/// Reads a sysctl holding one number.
fn number(name: &str) -> Option<u64> {
    read_sysctl(name).and_then(|text| parse_number(name, &text).ok())
}

impl SystemFacts {
    /// Reads everything doctor judges from this system.
    pub fn gather() -> SystemFacts {
        let open_files =
            rlimit::getrlimit(rlimit::Resource::NOFILE).ok().map(|(soft, hard)| ResourceLimit::from_rlimit(soft, hard));
        let conntrack = number("net.netfilter.nf_conntrack_max")
            .map(|max| Conntrack { max, count: number("net.netfilter.nf_conntrack_count") });
        SystemFacts {
            open_files,
            file_max: number("fs.file-max"),
            files_allocated: read_sysctl("fs.file-nr").and_then(|text| parse_file_nr(&text).ok()),
            nr_open: number("fs.nr_open"),
            port_range: read_sysctl("net.ipv4.ip_local_port_range").and_then(|text| parse_port_range(&text).ok()),
            somaxconn: number("net.core.somaxconn"),
            tcp_max_syn_backlog: number("net.ipv4.tcp_max_syn_backlog"),
            tcp_tw_reuse: number("net.ipv4.tcp_tw_reuse"),
            conntrack,
        }
    }
}

impl TargetFacts {
    /// Reads the limits and usage of process `pid`.
    pub fn gather(pid: u32) -> Result<TargetFacts, WatchError> {
        let missing = |what: &str, e| match WatchError::from_proc(pid, what, e) {
            WatchError::Gone { .. } => WatchError::NoSuchProcess { pid },
            other => other,
        };
        let raw_pid = i32::try_from(pid).ok().filter(|p| *p > 0).ok_or(WatchError::NoSuchProcess { pid })?;
        let process = Process::new(raw_pid).map_err(|e| missing("", e))?;
        let stat = process.stat().map_err(|e| missing("stat", e))?;
        if matches!(stat.state, 'Z' | 'X') {
            return Err(WatchError::NoSuchProcess { pid });
        }
        let limits = process.limits().map_err(|e| missing("limits", e))?;
        Ok(TargetFacts {
            pid,
            name: stat.comm,
            limits: ProcessLimits::from(&limits),
            open_fds: process.fd_count().ok().and_then(|n| u64::try_from(n).ok()),
            threads: u64::try_from(stat.num_threads).unwrap_or(0),
        })
    }
}
