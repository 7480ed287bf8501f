//! The generator's own system limits, checked before a run so that a local limit is reported
//! as such instead of showing up as mysterious target errors.

/// The open-file limits of this process after [`raise_open_file_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFileLimits {
    /// Soft limit before pummel raised it.
    pub soft_before: u64,
    /// Soft limit now in force.
    pub soft: u64,
    /// Hard limit (the ceiling for the soft limit without privileges).
    pub hard: u64,
}

impl OpenFileLimits {
    /// Descriptors left for connections after a reserve for stdio, the runtime and files.
    pub fn connections_that_fit(&self) -> u64 {
        self.soft.saturating_sub(64)
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit, as every serious load tool must: the
/// default soft limit (often 1024) is far below what thousands of connections need.
pub fn raise_open_file_limit() -> std::io::Result<OpenFileLimits> {
    let (soft_before, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE)?;
    let soft = rlimit::increase_nofile_limit(u64::MAX)?;
    Ok(OpenFileLimits { soft_before, soft, hard })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn raising_never_lowers() {
        let limits = raise_open_file_limit().unwrap();
        assert!(limits.soft >= limits.soft_before);
        assert!(limits.soft <= limits.hard);
    }
}
