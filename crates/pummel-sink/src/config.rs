//! The sink's settings ([`SinkConfig`]) and their validation.
//!
//! The CLI (or a test) fills a `SinkConfig`; [`start`](crate::start) validates it and reports every
//! bad setting at once, so a user fixes them in one go.

use std::path::PathBuf;
use std::time::Duration;

use crate::delay::Delay;
use crate::error::ConfigError;
use crate::tls::SinkTls;

/// The most worker threads the sink accepts; more is almost surely a typo.
pub(crate) const MAX_THREADS: usize = 1024;

/// The largest response body the sink builds (1 GiB); the body is kept in memory once.
pub(crate) const MAX_BODY_SIZE: usize = 1 << 30;

/// How the sink answers: delay, status, errors, body size, connection handling and threads.
///
/// Build it with struct update syntax from [`SinkConfig::default`], which is a fast sink that
/// answers `200 OK` with the 3-byte body `ok\n` right away and keeps connections alive.
#[derive(Debug, Clone, PartialEq)]
pub struct SinkConfig {
    /// How long the sink holds each request before answering, counted from when the request
    /// (head and body) was read. Pipelined requests read together wait together, and their
    /// answers still leave in order. A client that closes the connection while its requests
    /// are held is dropped at once (as nginx does) and its requests are counted as
    /// [`abandoned`](crate::StatsSnapshot::abandoned).
    pub delay: Delay,
    /// The fraction (`0.0..=1.0`) of answers that are `500 Internal Server Error` instead of
    /// `status`, chosen at random per request. Use it to test how a client counts errors.
    pub error_rate: f64,
    /// The status code of normal answers (`200..=599`, default `200`). For `204` and `304` the
    /// answer has no body, whatever `body_size` says.
    pub status: u16,
    /// Bytes in the body of normal answers (default 3: `ok\n`); the body repeats `ok\n`. It is
    /// built once at start and shared by every answer. `500` answers carry the short body
    /// `error\n`.
    pub body_size: usize,
    /// Send `Connection: close` on every answer and close the connection after it, so that each
    /// request costs a new connection (to test connect rates and `TIME_WAIT` handling).
    pub close: bool,
    /// Close a client that sends nothing (and reads nothing the sink has to send) for this long.
    /// Default 60 s. Time spent holding a delayed request does not count as idle.
    pub idle_timeout: Duration,
    /// Requests per second the sink accepts before it answers `503 Service Unavailable`, as an
    /// overloaded server would (a token bucket with a 50 ms burst). `None`: no limit. Gives
    /// tests and demos a target with a known capacity.
    pub capacity: Option<f64>,
    /// How many OS threads serve connections, each running its own single-threaded tokio
    /// runtime (default 1). All threads accept from the same listening socket.
    pub threads: usize,
    /// Keep every complete request received in this file, as JSON lines (method, target,
    /// headers, and the body decoded from its framing, at most 1 MiB of it). The file is
    /// created (or truncated) at start; a file that cannot be created stops the start. `None`
    /// (the default): record nothing, at no cost.
    pub record: Option<PathBuf>,
    /// Serve HTTPS (HTTP/1.1 over TLS 1.2 or 1.3) with this certificate instead of plain HTTP.
    /// `None` (the default): plain HTTP. A certificate that cannot be made or read stops the
    /// start.
    pub tls: Option<SinkTls>,
    /// How long a WebSocket session holds each message before echoing it back, counted from
    /// its arrival (default 0: at once). Lets tests provoke `ws_expect` timeouts.
    pub ws_delay: Duration,
    /// Answer every request with a small JSON body describing it (`{"id":N,"method":...,
    /// "path":...,"query":...,"body_bytes":...}`, `N` counting from 1) and `X-Request-Id: N`,
    /// instead of the fixed body. Off by default: the fixed answers are the fast path.
    pub echo: bool,
    /// Bind the listening socket with `SO_REUSEPORT` (Unix), so that several sink processes
    /// can listen on one port and the kernel spreads new connections over them
    /// (`pummel sink --processes N`). Off by default: then a second sink started on a port in
    /// use fails to bind instead of silently taking part of the traffic.
    pub reuse_port: bool,
    /// Be a small key-value store (`--store`): `PUT`/`POST` keep the body under the path,
    /// `GET` gives it back (or `404`), `DELETE` removes it; see `store`. Off by default.
    pub store: bool,
    /// With `store`: answer every N-th write `201` and drop it (`--drop-every N`), counted in
    /// [`StoreCounts::dropped`](crate::StoreCounts::dropped). A store that loses writes, for
    /// testing a read-back.
    pub drop_every: Option<u64>,
    /// With `store`: keep the store in this file too (`--store-file`), read back at start, so
    /// that a sink killed and started again holds what it acknowledged.
    pub store_file: Option<PathBuf>,
}

impl Default for SinkConfig {
    fn default() -> Self {
        SinkConfig {
            delay: Delay::None,
            error_rate: 0.0,
            status: 200,
            body_size: 3,
            close: false,
            idle_timeout: Duration::from_secs(60),
            capacity: None,
            threads: 1,
            record: None,
            tls: None,
            ws_delay: Duration::ZERO,
            echo: false,
            reuse_port: false,
            store: false,
            drop_every: None,
            store_file: None,
        }
    }
}

impl SinkConfig {
    /// Checks every setting and returns all the problems found, not only the first one.
    ///
    /// [`start`](crate::start) calls this; the CLI may call it earlier to report bad flags
    /// before it prints anything else.
    pub fn validate(&self) -> Result<(), Vec<ConfigError>> {
        let mut problems = Vec::new();
        if let Some(capacity) = self.capacity {
            if !(capacity.is_finite() && capacity > 0.0) {
                problems.push(ConfigError::Capacity(capacity));
            }
        }
        if !(0.0..=1.0).contains(&self.error_rate) {
            // NaN fails `contains` too.
            problems.push(ConfigError::ErrorRate(self.error_rate));
        }
        if let Delay::Range(min, max) = self.delay {
            if min > max {
                problems.push(ConfigError::InvertedDelay { min, max });
            }
        }
        if !(200..=599).contains(&self.status) {
            problems.push(ConfigError::Status(self.status));
        }
        if self.body_size > MAX_BODY_SIZE {
            problems.push(ConfigError::BodySize(self.body_size));
        }
        if self.idle_timeout.is_zero() {
            problems.push(ConfigError::IdleTimeout);
        }
        if !(1..=MAX_THREADS).contains(&self.threads) {
            problems.push(ConfigError::Threads(self.threads));
        }
        if self.drop_every.is_some_and(|n| n == 0 || !self.store) || (self.store_file.is_some() && !self.store) {
            problems.push(ConfigError::DropEvery);
        }
        if self.store && self.echo {
            problems.push(ConfigError::StoreAndEcho);
        }
        if problems.is_empty() { Ok(()) } else { Err(problems) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_is_valid() {
        assert_eq!(SinkConfig::default().validate(), Ok(()));
        assert_eq!(SinkConfig::default().status, 200);
        assert_eq!(SinkConfig::default().body_size, 3);
        assert_eq!(SinkConfig::default().threads, 1);
    }

    #[test]
    fn edge_values_are_valid() {
        let config = SinkConfig {
            error_rate: 1.0,
            delay: Delay::Range(Duration::from_millis(5), Duration::from_millis(5)),
            status: 599,
            body_size: 0,
            ..SinkConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let config = SinkConfig {
            error_rate: 1.5,
            delay: Delay::Range(Duration::from_millis(50), Duration::from_millis(10)),
            status: 99,
            body_size: MAX_BODY_SIZE + 1,
            idle_timeout: Duration::ZERO,
            threads: 0,
            ..SinkConfig::default()
        };
        let problems = config.validate().unwrap_err();
        assert_eq!(problems.len(), 6, "{problems:?}");
        assert!(matches!(problems[1], ConfigError::InvertedDelay { .. }));
    }

    #[test]
    fn nan_and_negative_error_rates_are_rejected() {
        for rate in [f64::NAN, -0.1, f64::INFINITY] {
            let config = SinkConfig { error_rate: rate, ..SinkConfig::default() };
            assert!(config.validate().is_err(), "{rate}");
        }
    }
}
