//! What a run measured: where each shard's figures go and the values that count by
//! construction ([`meter`]), counters and histograms ([`stats`]), one second of the run
//! ([`timeline`]), the scenarios' own tallies ([`tallies`]), which side limited the run
//! ([`limit`]), the end-of-run summary ([`summary`]) and the results document ([`results`]).
//! The document's types are `pummel-results`'; this module fills them in.

pub mod limit;
pub mod meter;
pub mod results;
pub mod stats;
pub mod summary;
pub mod tallies;
pub mod timeline;
