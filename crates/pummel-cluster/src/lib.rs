//! One plan run by many processes or machines: a coordinator and its agents.
//!
//! An agent (`pummel agent`) dials out to its coordinator (so it works behind NAT and from
//! Kubernetes pods), proves it knows the shared token, and waits for work. The coordinator
//! (`pummel run PLAN --agents N`, or `--workers N` on one machine) waits for N agents, ships
//! each the command line and the files of the plan with a segment of it (`--segment i/N`),
//! measures each agent's clock offset, and broadcasts one start instant. Agents stream their
//! shards' per-second reports, whole histograms included, and heartbeats; the coordinator feeds
//! them to the very collector a local run uses (`pummel_engine::engine::remote`), so the live
//! view, the timeline, abort rules and thresholds are global and the merged figures exact.
//!
//! - [`protocol`]: the messages and their framing; [`auth`]: the token and the mutual proof;
//! - [`coordinator`]: gathering agents, starting them together, relaying their reports,
//!   noticing a lost one; [`agent`]: the agent's side of the same conversation.
//!
//! Wire format: length-delimited frames (tokio-util's codec) holding one JSON message each
//! (serde_json). JSON because every message but the per-second report is tiny and rare, the
//! reports carry histograms already compressed (HdrHistogram V2 + DEFLATE), and a protocol one
//! can read with `tcpdump` is worth more here than the bytes a binary format would save; the
//! length prefix bounds what a peer can make us buffer. Authentication is an HMAC-SHA256
//! challenge in both directions: the token never crosses the wire, and an agent runs nothing
//! from a peer that did not prove it knows the token. The rest of the conversation is not
//! encrypted: keep it on a network you trust, or tunnel it.

pub mod agent;
pub mod auth;
pub mod coordinator;
pub mod protocol;

pub use auth::Token;

/// Why a coordinator or an agent gave up.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// A socket could not be bound, dialed, read or written.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// Why it failed.
        source: std::io::Error,
    },
    /// The peer broke the protocol (a malformed or unexpected message).
    #[error("{0}")]
    Protocol(String),
    /// The peer does not know the token, or the protocols differ.
    #[error("{0}")]
    Refused(String),
    /// Fewer agents joined than the run needs, in the time given.
    #[error("{0}")]
    Timeout(String),
    /// The token cannot be read or is empty.
    #[error("{0}")]
    Token(String),
}

impl ClusterError {
    pub(crate) fn io(context: impl Into<String>) -> impl FnOnce(std::io::Error) -> ClusterError {
        let context = context.into();
        move |source| ClusterError::Io { context, source }
    }
}
