//! Number formatting for the terminal: the same functions the report uses, so a figure reads
//! the same in the live view, the summary, the HTML page and the markdown tables.

pub use pummel_report::fmt::{bytes, ms, percent, rate, thousands};
