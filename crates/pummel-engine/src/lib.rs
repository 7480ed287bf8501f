//! pummel's load engine.
//!
//! The engine runs a validated [`plan::Plan`]: it spreads the work over one single-threaded
//! runtime per core ("shards"), drives HTTP/1.1 connections on loopback or real networks,
//! records every latency in HdrHistograms with identical bounds, and reports a per-second
//! timeline plus final summaries. It holds no terminal or command-line code: the `pummel`
//! binary turns user input into a `Plan` and renders what the engine reports.
#![forbid(unsafe_code)]
#![warn(missing_docs)]

pub mod duration;
pub mod engine;
pub mod error_kind;
pub mod expr;
pub mod feeder;
pub mod find_limit;
pub mod flow;
pub mod histogram;
pub mod http1;
pub mod inspect;
pub mod limits;
pub mod observe;
pub mod payload;
pub mod plan;
pub mod results;
pub mod schedule;
pub mod sigv4;
pub mod stats;
pub mod summary;
pub mod template;
pub mod tls;
pub mod transport;
pub mod ws;

/// The version written into every results document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
