//! pummel's load engine.
//!
//! The engine runs a validated [`plan::Plan`]: it spreads the work over one single-threaded
//! runtime per core ("shards"), opens connections and speaks HTTP/1.1, HTTP/2 and WebSocket to
//! the target, records every latency in HdrHistograms with identical bounds, and reports a
//! per-second timeline plus final summaries. It holds no terminal or command-line code: the
//! `pummel` binary turns user input into a `Plan` and renders what the engine reports.
//!
//! The folders are the architecture:
//! - [`plan`] and [`flow`]: what a run is (targets, load models, scenarios of user journeys,
//!   templates, feeders), validated before the engine sees it;
//! - [`load`]: *when* work starts (closed users, open arrivals, stages, hold pacing);
//! - [`exec`]: *what* a virtual user does, step by step;
//! - [`proto`]: *how* bytes are framed (HTTP/1.1, HTTP/2, WebSocket);
//! - [`dial`]: *how* a connection opens (TCP, TLS, source addresses) and the one classifier of
//!   failures into counted kinds;
//! - [`measure`]: statistics, the timeline, the summary and the results document;
//! - [`engine`]: shards and the collector that runs it all; [`observe`]: probes and the
//!   target watch beside the load; [`request_log`]: the bounded log of failed (and sampled)
//!   requests; [`find_limit`]: the capacity search on top; [`writes`]: the write log and the
//!   read-back that finds lost writes.
//!
//! The results document's types live in the `pummel-results` crate, which readers of results
//! use without this engine.

pub mod dial;
pub mod engine;
pub mod exec;
pub mod find_limit;
pub mod flow;
pub mod inspect;
pub mod limits;
pub mod load;
pub mod measure;
pub mod observe;
pub mod plan;
pub mod proto;
pub mod request_log;
mod seconds;
pub mod writes;

/// The version written into every results document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
