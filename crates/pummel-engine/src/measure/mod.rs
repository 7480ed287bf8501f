//! What a run measured: counters and histograms ([`stats`]), one second of the run
//! ([`timeline`]), the end-of-run summary ([`summary`]) and the results document ([`results`]).
//! The document's types are `pummel-results`'; this module fills them in.

pub mod results;
pub mod stats;
pub mod summary;
pub mod timeline;
