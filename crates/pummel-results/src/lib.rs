//! pummel's results: what a run leaves behind and everything that reads it needs.
//!
//! The results document ([`document::ResultsDocument`]) is the contract between a run and
//! `report`, `compare` and the merge of segments from several machines. This crate holds its
//! types and JSON Schema, the error kinds that key its counters, the threshold grammar its
//! verdicts come from, and the one histogram shape (bounds, V2+DEFLATE encoding, exact merge).
//! It has no load engine in it (no tokio, TLS or HTTP stack), so a reader of results pulls in
//! only this.

pub mod document;
pub mod duration;
pub mod error_kind;
pub mod expr;
pub mod fault;
pub mod fingerprint;
pub mod histogram;
pub mod merge;
pub mod observed;
pub mod recovery;
pub mod segment;
pub mod summary;
pub mod timeline;
pub mod writes;

/// The version written into every results document.
pub const VERSION: &str = env!("CARGO_PKG_VERSION");
