//! Unit tests of plan loading: `format` shows every key of the format is read (and what the
//! validated form holds), `errors` shows each kind of mistake at its line:col (snapshots).
//! `fixtures/` holds the small data files the feeder tests read.

mod errors;
mod faults;
mod format;
mod writes;

use crate::{Options, PlanSpec, Report};

/// Validates `text` as `plan.toml`, with no command-line options.
pub(crate) fn load(text: &str) -> Result<PlanSpec, Report> {
    crate::parse("plan.toml", text, &Options::default())
}

/// The valid plan in `text`; panics with the rendered errors otherwise.
pub(crate) fn valid(text: &str) -> PlanSpec {
    load(text).unwrap_or_else(|report| panic!("expected a valid plan, got:\n{report}"))
}

/// The rendered errors of `text`; panics when it is valid.
pub(crate) fn rendered(text: &str) -> String {
    match load(text) {
        Ok(spec) => panic!("expected errors, got a valid plan: {}", spec.describe()),
        Err(report) => report.to_string(),
    }
}

/// `plan.toml:L:C: error: ...` lines of `text`'s errors.
pub(crate) fn short(text: &str) -> Vec<String> {
    match load(text) {
        Ok(spec) => panic!("expected errors, got a valid plan: {}", spec.describe()),
        Err(report) => report.short_lines(),
    }
}

/// A valid one-request plan, to which tests add or change lines.
pub(crate) const BASE: &str = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
rate = 100
duration = "10s"
flow = [ { request = { path = "/" } } ]
"#;
