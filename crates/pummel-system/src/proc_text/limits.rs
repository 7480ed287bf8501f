//! A process's resource limits, from `/proc/PID/limits` (parsed by the procfs crate): the two
//! that decide how many connections a process can hold, open files and processes (threads).
//!
//! `/proc/PID/limits` is the only way to see *another* process's limits without privileges,
//! and the place to check them after a service was started by an init system, which does not
//! read `/etc/security/limits.conf` (as the seed found on CentOS 6).

use procfs::FromRead;
use procfs::process::{Limit, LimitValue, Limits};
use serde::Serialize;

use super::ParseError;

/// A soft and a hard limit; `None` means unlimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ResourceLimit {
    /// The limit in force; the process may raise it up to `hard`.
    pub soft: Option<u64>,
    /// The ceiling for `soft`; only a privileged process can raise it.
    pub hard: Option<u64>,
}

impl ResourceLimit {
    /// Whether `needed` fits under the soft limit.
    pub fn soft_allows(&self, needed: u64) -> bool {
        self.soft.is_none_or(|soft| needed <= soft)
    }

    /// Whether `needed` fits under the hard limit.
    pub fn hard_allows(&self, needed: u64) -> bool {
        self.hard.is_none_or(|hard| needed <= hard)
    }

    /// From a raw `getrlimit` pair, in which `u64::MAX` (RLIM_INFINITY) means unlimited.
    pub fn from_rlimit(soft: u64, hard: u64) -> Self {
        let finite = |value: u64| (value != u64::MAX).then_some(value);
        ResourceLimit { soft: finite(soft), hard: finite(hard) }
    }
}

impl From<&Limit> for ResourceLimit {
    fn from(limit: &Limit) -> Self {
        let value = |v: &LimitValue| match v {
            LimitValue::Unlimited => None,
            LimitValue::Value(n) => Some(*n),
        };
        ResourceLimit { soft: value(&limit.soft_limit), hard: value(&limit.hard_limit) }
    }
}

/// The limits of a process that matter under many connections.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ProcessLimits {
    /// `Max open files` (RLIMIT_NOFILE): every socket is one open file, and no fd number can
    /// reach the soft limit.
    pub open_files: ResourceLimit,
    /// `Max processes` (RLIMIT_NPROC): threads of all processes of the user; it caps a server
    /// that runs a thread per connection.
    pub processes: ResourceLimit,
}

impl From<&Limits> for ProcessLimits {
    fn from(limits: &Limits) -> Self {
        ProcessLimits {
            open_files: ResourceLimit::from(&limits.max_open_files),
            processes: ResourceLimit::from(&limits.max_processes),
        }
    }
}

/// Parses the text of `/proc/PID/limits`.
pub fn parse_limits(text: &str) -> Result<ProcessLimits, ParseError> {
    let limits = Limits::from_read(text.as_bytes()).map_err(|e| ParseError::new("/proc/PID/limits", e.to_string()))?;
    Ok(ProcessLimits::from(&limits))
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: &str = "\
Limit                     Soft Limit           Hard Limit           Units     
Max cpu time              unlimited            unlimited            seconds   
Max file size             unlimited            unlimited            bytes     
Max data size             unlimited            unlimited            bytes     
Max stack size            8388608              unlimited            bytes     
Max core file size        0                    unlimited            bytes     
Max resident set          unlimited            unlimited            bytes     
Max processes             10240                63704                processes 
Max open files            1024                 524288               files     
Max locked memory         8388608              8388608              bytes     
Max address space         unlimited            unlimited            bytes     
Max file locks            unlimited            unlimited            locks     
Max pending signals       63704                63704                signals   
Max msgqueue size         819200               819200               bytes     
Max nice priority         0                    0                    
Max realtime priority     0                    0                    
Max realtime timeout      unlimited            unlimited            us        
";

    #[test]
    fn open_files_and_processes() {
        let limits = parse_limits(LIMITS).unwrap();
        assert_eq!(limits.open_files, ResourceLimit { soft: Some(1024), hard: Some(524_288) });
        assert_eq!(limits.processes, ResourceLimit { soft: Some(10240), hard: Some(63704) });
    }

    #[test]
    fn unlimited_values() {
        let text = LIMITS.replace(
            "Max processes             10240                63704",
            "Max processes             unlimited            unlimited",
        );
        let limits = parse_limits(&text).unwrap();
        assert_eq!(limits.processes, ResourceLimit { soft: None, hard: None });
        assert!(limits.processes.soft_allows(u64::MAX));
    }

    #[test]
    fn truncated_text_is_an_error() {
        let text: String = LIMITS.lines().take(5).map(|l| format!("{l}\n")).collect();
        assert!(parse_limits(&text).is_err());
    }

    #[test]
    fn comparisons() {
        let limit = ResourceLimit { soft: Some(1024), hard: Some(4096) };
        assert!(limit.soft_allows(1024));
        assert!(!limit.soft_allows(1025));
        assert!(limit.hard_allows(4096));
        assert!(!limit.hard_allows(4097));
        assert_eq!(ResourceLimit::from_rlimit(u64::MAX, u64::MAX), ResourceLimit { soft: None, hard: None });
        assert_eq!(ResourceLimit::from_rlimit(256, 256), ResourceLimit { soft: Some(256), hard: Some(256) });
    }
}
