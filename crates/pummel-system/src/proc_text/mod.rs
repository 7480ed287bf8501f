//! Parsers for the text files of `/proc` that target watch and doctor read: socket tables
//! (`/proc/net/tcp`, `tcp6`), the `TcpExt` counters of `/proc/net/netstat`, process limits
//! (`/proc/PID/limits`) and sysctl values (`/proc/sys/...`).
//!
//! Each parser takes text and returns values, with no I/O, so that it can be tested on fixed
//! samples of what the kernel prints; the callers in [`crate::watch`] and [`crate::doctor`] do
//! the reading.

pub mod limits;
pub mod netstat;
pub mod sysctl;
pub mod tcp;

/// A `/proc` file whose text did not have the expected shape.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unexpected text in {file}: {reason}")]
pub struct ParseError {
    /// Which file (or kind of file) it was, e.g. `/proc/sys/net/ipv4/ip_local_port_range`.
    pub file: String,
    /// What was wrong with it.
    pub reason: String,
}

impl ParseError {
    /// A parse error for `file`, saying `reason`.
    pub fn new(file: impl Into<String>, reason: impl Into<String>) -> Self {
        ParseError { file: file.into(), reason: reason.into() }
    }
}
