//! Terminal output: per-second progress, the end summary, and number formatting.

pub mod dashboard;
pub mod format;
pub mod progress;
pub mod summary;
