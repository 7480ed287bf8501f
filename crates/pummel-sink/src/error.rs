//! Errors of the sink: why it could not start ([`SinkError`]) and which setting is wrong
//! ([`ConfigError`]).
//!
//! Once it runs, the sink has no errors to report: a bad client gets a `400` and is counted in
//! [`SinkStats`](crate::SinkStats), a broken connection is simply closed.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::config::{MAX_BODY_SIZE, MAX_THREADS};

/// Why [`start`](crate::start) could not start the sink.
#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// One or more settings are invalid; every problem found is listed.
    #[error("invalid sink settings: {}", list(.0))]
    Config(Vec<ConfigError>),
    /// Creating, binding or listening on the socket failed (address in use, no permission, ...).
    #[error("could not listen on {addr}")]
    Bind {
        /// The address the sink was asked to listen on.
        addr: SocketAddr,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// A worker thread's tokio runtime could not be built (usually out of file descriptors).
    #[error("could not start the sink's tokio runtime")]
    Runtime(#[source] std::io::Error),
    /// A worker thread could not be spawned.
    #[error("could not spawn a sink thread")]
    Thread(#[source] std::io::Error),
    /// The record file ([`SinkConfig::record`](crate::SinkConfig::record)) could not be created.
    #[error("could not create the record file {}", path.display())]
    Record {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The store file ([`SinkConfig::store_file`](crate::SinkConfig::store_file)) could not be
    /// opened or read.
    #[error("could not open the store file {}", path.display())]
    StoreFile {
        /// The file asked for.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
    /// The TLS certificate could not be generated or read, or does not match its key.
    #[error("TLS: {0}")]
    Tls(String),
    /// Writing the record file failed while the sink ran or shut down (disk full, ...), so it
    /// misses requests; [`SinkHandle::close`](crate::SinkHandle::close) reports it.
    #[error("could not write the record file {}", path.display())]
    RecordWrite {
        /// The record file.
        path: PathBuf,
        /// What the operating system said.
        #[source]
        source: std::io::Error,
    },
}

/// One invalid setting of a [`SinkConfig`](crate::SinkConfig).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    /// `capacity` is not a positive number of requests per second.
    #[error("capacity must be a positive number of requests per second, got {0}")]
    Capacity(f64),
    /// `error_rate` is not a fraction in `0..=1` (or is NaN).
    #[error("error_rate must be a fraction between 0 and 1, got {0}")]
    ErrorRate(f64),
    /// A `Delay::Range` whose lower bound is above its upper bound.
    #[error("delay range {min:?}..{max:?} is inverted: the lower bound is above the upper bound")]
    InvertedDelay {
        /// The lower bound given.
        min: Duration,
        /// The upper bound given.
        max: Duration,
    },
    /// `status` is not a final HTTP status code (`200..=599`).
    #[error("status must be between 200 and 599, got {0}")]
    Status(u16),
    /// `body_size` is over the limit.
    #[error("body_size must be at most {MAX_BODY_SIZE} bytes, got {0}")]
    BodySize(usize),
    /// `idle_timeout` is zero, which would close every connection at once.
    #[error("idle_timeout must be more than zero")]
    IdleTimeout,
    /// `threads` is zero or absurdly high.
    #[error("threads must be between 1 and {MAX_THREADS}, got {0}")]
    Threads(usize),
    /// `drop_every` (or `store_file`) without `store`, or a `drop_every` of zero.
    #[error("drop_every and store_file are the store's: they need store (and drop_every at least 1)")]
    DropEvery,
    /// `store` and `echo` both: a request gets one answer.
    #[error("store and echo answer requests each their own way: choose one")]
    StoreAndEcho,
}

fn list(problems: &[ConfigError]) -> String {
    problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_error_lists_every_problem() {
        let err = SinkError::Config(vec![ConfigError::ErrorRate(2.0), ConfigError::Threads(0)]);
        assert_eq!(
            err.to_string(),
            "invalid sink settings: error_rate must be a fraction between 0 and 1, got 2; \
             threads must be between 1 and 1024, got 0"
        );
    }
}
