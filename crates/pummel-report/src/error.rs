//! Why a results file could not be used: each case says which file and what to do about it.

use std::path::PathBuf;

/// A results file that cannot be reported on or compared.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// The file could not be read (missing, unreadable).
    #[error("cannot read {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The operating system's reason.
        error: std::io::Error,
    },
    /// The file is not JSON at all.
    #[error("{} is not a pummel results file: it is not JSON ({error})", path.display())]
    NotJson {
        /// The file.
        path: PathBuf,
        /// Where the JSON broke.
        error: serde_json::Error,
    },
    /// The file is JSON but not a results document (no `schema_version`, not an object).
    #[error("{} is not a pummel results file: {reason} (write one with `pummel run ... -o FILE`)", path.display())]
    NotResults {
        /// The file.
        path: PathBuf,
        /// What is missing.
        reason: String,
    },
    /// A results document of a shape this version of pummel does not read.
    #[error(
        "{} has schema_version {found}, but this pummel reads version {expected}: \
         use the pummel version that wrote it, or run the test again",
        path.display()
    )]
    Version {
        /// The file.
        path: PathBuf,
        /// The version in the file.
        found: serde_json::Value,
        /// The version this build reads.
        expected: u32,
    },
    /// The version matches but a field is missing or of the wrong type.
    #[error("{} claims schema_version {version} but does not match it: {error}", path.display())]
    Shape {
        /// The file.
        path: PathBuf,
        /// The version it claims.
        version: u32,
        /// The first mismatch.
        error: serde_json::Error,
    },
}
