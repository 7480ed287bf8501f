//! `pummel-sink`: pummel's built-in HTTP/1.1 target server.
//!
//! The sink is both the demo target and the benchmark target of pummel, and it replaces the
//! hand-written "slow listener" servers people write to test timeouts. It answers every request
//! with a pre-built response after a configurable [`Delay`], turns a configurable fraction of the
//! answers into `500`s, counts what it received in [`SinkStats`], and can hold tens of thousands of
//! delayed requests at once for little memory.
//!
//! The server is written by hand on tokio and `httparse` instead of hyper: it must serve well over
//! 100k requests per second on one core with keep-alive and small responses, so that the sink is
//! never the bottleneck of a benchmark, and its whole job is small enough to own.
//!
//! ```no_run
//! use pummel_sink::{Delay, SinkConfig};
//! use std::time::Duration;
//!
//! let config = SinkConfig { delay: Delay::Fixed(Duration::from_millis(20)), ..SinkConfig::default() };
//! let sink = pummel_sink::start("127.0.0.1:0".parse().unwrap(), config).unwrap();
//! println!("listening on {}", sink.local_addr());
//! // ... run a test against it ...
//! println!("{:?}", sink.stats().snapshot());
//! sink.shutdown();
//! ```
//!
//! Files, one job each: [`config`](SinkConfig) (settings and their validation), `delay` (the
//! [`Delay`] type and its text form), `error` ([`SinkError`]), `stats` ([`SinkStats`]),
//! `response` (pre-built answers), `request` and `chunked` (request framing), `connection` (one
//! client), `stream` (plain TCP or TLS under a connection), `tls` ([`SinkTls`]: certificate
//! and rustls configuration for HTTPS), `record` (the record file: `SinkConfig::record`),
//! `ws` and `ws_io` (the WebSocket echo on upgraded connections, through tokio-tungstenite),
//! `echo` (answers describing the request: `SinkConfig::echo`), `store` (a small key-value
//! store: `SinkConfig::store`),
//! `server` ([`start`], threads and the listener).

mod chunked;
mod config;
mod connection;
mod delay;
mod echo;
mod error;
mod h2;
mod record;
mod request;
mod response;
mod server;
mod stats;
mod store;
mod stream;
mod tls;
mod ws;
mod ws_io;

pub use config::SinkConfig;
pub use delay::{Delay, ParseDelayError};
pub use error::{ConfigError, SinkError};
pub use server::{SinkHandle, StoreCounts, start};
pub use stats::{SinkStats, StatsSnapshot};
pub use tls::SinkTls;
