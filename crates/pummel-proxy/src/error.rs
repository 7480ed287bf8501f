//! What can go wrong when proxies and toxics are changed, with the HTTP status and the message
//! toxiproxy's API gives for each (`{"error": "proxy not found", "status": 404}`), so that a
//! toxiproxy client reads pummel's errors as it reads toxiproxy's.

use std::io;

/// A request to change proxies or toxics that could not be carried out.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The request's JSON could not be read, or a value in it is wrong (400).
    #[error("bad request body: {0}")]
    BadRequestBody(String),
    /// A required field is missing (400).
    #[error("missing required field: {0}")]
    MissingField(String),
    /// No proxy of that name (404).
    #[error("proxy not found")]
    ProxyNotFound,
    /// A proxy of that name exists already (409).
    #[error("proxy already exists")]
    ProxyAlreadyExists,
    /// `stream` is neither `upstream` nor `downstream` (400).
    #[error("stream was invalid, can be either upstream or downstream")]
    InvalidStream,
    /// No toxic of that type (400).
    #[error("invalid toxic type")]
    InvalidToxicType,
    /// The proxy has a toxic of that name already (409).
    #[error("toxic already exists")]
    ToxicAlreadyExists,
    /// The proxy has no toxic of that name (404).
    #[error("toxic not found")]
    ToxicNotFound,
    /// The listen address could not be resolved or bound (500, as toxiproxy).
    #[error("listen tcp {addr}: {source}")]
    Listen {
        /// The address as given.
        addr: String,
        /// Why.
        source: io::Error,
    },
}

impl ProxyError {
    /// The HTTP status toxiproxy answers this error with.
    pub fn status(&self) -> u16 {
        match self {
            ProxyError::BadRequestBody(_)
            | ProxyError::MissingField(_)
            | ProxyError::InvalidStream
            | ProxyError::InvalidToxicType => 400,
            ProxyError::ProxyNotFound | ProxyError::ToxicNotFound => 404,
            ProxyError::ProxyAlreadyExists | ProxyError::ToxicAlreadyExists => 409,
            ProxyError::Listen { .. } => 500,
        }
    }
}

/// Why [`start`](crate::start) could not start the proxies.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The tokio runtime could not be built.
    #[error("cannot start the proxy's threads: {0}")]
    Runtime(io::Error),
    /// The HTTP API's address could not be bound.
    #[error("cannot listen for the API on {addr}: {source}")]
    Api {
        /// The address as given.
        addr: String,
        /// Why.
        source: io::Error,
    },
    /// A proxy could not be started (its address is in use, ...).
    #[error("proxy {name}: {source}")]
    Proxy {
        /// The proxy's name.
        name: String,
        /// Why.
        source: ProxyError,
    },
}
