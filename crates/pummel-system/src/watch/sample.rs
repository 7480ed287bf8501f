//! One observation of the target: what [`super::TargetWatch::sample`] returns each second and
//! what goes into the timeline of a results file, so its field names are stable snake_case.

use serde::{Deserialize, Serialize};

use super::warnings::Warning;
use crate::proc_text::netstat::ListenCounters;
use crate::proc_text::tcp::TcpStates;

/// The target process at one moment.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct WatchSample {
    /// The watched process.
    pub pid: u32,
    /// Milliseconds since the watch began.
    pub elapsed_ms: u64,
    /// Open file descriptors (sockets, files, pipes, ...).
    pub open_fds: u64,
    /// The highest open fd number; past 1023 a server using select() breaks (see
    /// `holds_epoll`). `None` when the process has no fd open.
    pub max_fd: Option<u64>,
    /// True when the process holds an epoll instance (an fd linked to `anon_inode:[eventpoll]`):
    /// it waits on its sockets with epoll, which has no fd ceiling, so fd numbers past 1023 do
    /// not trouble it the way they trouble a select() loop.
    #[serde(default)]
    pub holds_epoll: bool,
    /// Soft limit of open files (`Max open files` in `/proc/PID/limits`): no fd number can
    /// reach it, and accept() fails with EMFILE there. `None` means unlimited.
    pub fd_soft_limit: Option<u64>,
    /// Hard limit of open files: how far the process could raise its soft limit itself.
    pub fd_hard_limit: Option<u64>,
    /// Threads of the process.
    pub threads: u64,
    /// CPU used since the previous sample, in % of one core (400 % = four busy cores), as top
    /// shows it. `None` when too little time passed to measure.
    pub cpu_percent: Option<f64>,
    /// Resident memory, in bytes.
    pub rss_bytes: u64,
    /// The process's TCP sockets by state (see [`crate::watch`] for how sockets without an fd
    /// are attributed).
    pub tcp: TcpStates,
    /// Connections completed by the kernel and waiting for the target to accept() them, summed
    /// over its listening sockets. A queue that stays full means the target accepts too slowly.
    pub accept_queue: u64,
    /// The system's listen-queue drops per second since the previous sample, for the whole
    /// network namespace of the target (the kernel does not count them per process). `None`
    /// when `/proc/PID/net/netstat` could not be read.
    pub system_listen: Option<ListenRates>,
    /// Listen-queue overflows (`ListenOverflows`) counted since the watch began, for the whole
    /// network namespace like `system_listen`; the run's total is the last sample's. `None`
    /// when `/proc/PID/net/netstat` could not be read.
    #[serde(default)]
    pub system_listen_overflows: Option<u64>,
    /// Warnings that began with this sample (each is given once, when its condition starts).
    pub warnings: Vec<Warning>,
}

/// Listen-queue drops per second (the `TcpExt` counters of `/proc/net/netstat`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct ListenRates {
    /// Connections dropped because a listener's accept queue was full (`ListenOverflows`).
    pub listen_overflows_per_s: f64,
    /// Every connection or SYN dropped by a listener, overflows included (`ListenDrops`).
    pub listen_drops_per_s: f64,
    /// SYNs dropped because the SYN queue was full (`TCPReqQFullDrop`).
    pub syn_queue_drops_per_s: f64,
    /// SYNs answered with syncookies because the SYN queue was full (`TCPReqQFullDoCookies`).
    pub syncookies_per_s: f64,
}

impl ListenRates {
    /// The rates of the counter increases `delta` over `seconds`.
    pub fn from_delta(delta: &ListenCounters, seconds: f64) -> ListenRates {
        let rate = |count: u64| if seconds > 0.0 { count as f64 / seconds } else { 0.0 };
        ListenRates {
            listen_overflows_per_s: rate(delta.listen_overflows),
            listen_drops_per_s: rate(delta.listen_drops),
            syn_queue_drops_per_s: rate(delta.syn_queue_drops),
            syncookies_per_s: rate(delta.syncookies),
        }
    }
}
