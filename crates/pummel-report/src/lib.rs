//! Reports and comparisons built from pummel results documents.
//!
//! A results document (`pummel run -o`, `demo`, `find-limit`) holds everything a run measured.
//! This crate turns one into something people read, and two into a verdict CI can act on:
//!
//! - [`html::render`]: one self-contained page (inline CSS and SVG charts drawn by [`svg`], no
//!   script, nothing fetched), with the summary tables, a chart per series group over time and,
//!   for find-limit runs, the latency-vs-throughput curve with the capacity point;
//! - [`markdown::render`]: the same tables as markdown, ready to paste in a README;
//! - [`csv::render`]: the per-second timeline, one row per second;
//! - [`junit::render`]: JUnit XML, a test case per threshold, check and find-limit step, for CI;
//! - [`compare::Comparison`]: two runs side by side, with a verdict per metric that treats
//!   changes within the runs' own per-second noise as "same", and `--fail-if` rules
//!   ([`compare::fail_if`]) for regression gates.
//!
//! Everything here is pure: it reads a [`ResultsDocument`] (see [`load::load`]) and returns
//! text. Writing files and choosing exit codes is the binary's job.

pub mod axis;
pub mod charts;
pub mod compare;
pub mod csv;
pub mod error;
pub mod faults;
pub mod fmt;
pub mod headline;
pub mod html;
pub mod junit;
pub mod load;
pub mod markdown;
pub mod svg;
pub mod tables;
pub mod writes;

#[cfg(test)]
pub(crate) mod fixture;

pub use error::ReportError;
pub use load::load;
pub use pummel_results::document::ResultsDocument;
