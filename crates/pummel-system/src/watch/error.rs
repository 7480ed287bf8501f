//! Why a target cannot be watched, or can be no longer.

use procfs::ProcError;

/// What went wrong finding or sampling the target process.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WatchError {
    /// No process has this PID (it never existed here, or exited before the watch began).
    #[error("no process with PID {pid}")]
    NoSuchProcess {
        /// The PID asked for.
        pid: u32,
    },
    /// The process exited (or its PID now belongs to another process) while it was watched.
    /// This is an end state, not a failure: every later call returns it again.
    #[error("process {pid} is gone (it exited)")]
    Gone {
        /// The PID that was watched.
        pid: u32,
    },
    /// `/proc/PID/...` exists but this user may not read it (another user's process).
    #[error("not permitted to read /proc/{pid}/{what}: watch a process of your own user, or run as root")]
    NotPermitted {
        /// The PID.
        pid: u32,
        /// The file or directory that could not be read, e.g. `fd`.
        what: String,
    },
    /// No TCP socket listens on this port in this network namespace.
    #[error("nothing listens on TCP port {port} (checked /proc/net/tcp and /proc/net/tcp6)")]
    NoListener {
        /// The port asked for.
        port: u16,
    },
    /// A socket listens on the port, but no process that this user may inspect holds it.
    #[error(
        "TCP port {port} has a listening socket, but no visible process holds it \
         ({hidden} processes could not be inspected): run as the target's user or as root, or use --pid"
    )]
    ListenerNotVisible {
        /// The port asked for.
        port: u16,
        /// How many processes' fds could not be read.
        hidden: usize,
    },
    /// Any other failure reading `/proc` (not mounted, unexpected text, I/O error).
    #[error("cannot read {what}: {message}")]
    Proc {
        /// The file, e.g. `/proc/123/limits`.
        what: String,
        /// The underlying error.
        message: String,
    },
}

impl WatchError {
    /// True for the end state [`WatchError::Gone`].
    pub fn is_gone(&self) -> bool {
        matches!(self, WatchError::Gone { .. })
    }

    /// Maps a procfs error met while reading `/proc/PID/what`; "not found" means the process
    /// is gone (its directory vanishes when it exits).
    pub(crate) fn from_proc(pid: u32, what: &str, error: ProcError) -> Self {
        match error {
            ProcError::NotFound(_) => WatchError::Gone { pid },
            ProcError::PermissionDenied(_) => WatchError::NotPermitted { pid, what: what.to_string() },
            other => WatchError::Proc { what: format!("/proc/{pid}/{what}"), message: other.to_string() },
        }
    }
}
