//! pummel's test-plan files: the TOML format, its validation, and the engine plan it becomes.
//!
//! Loading happens in two phases, as ripgrep's `LowArgs -> HiArgs`:
//!
//! 1. [`raw`]: the file as serde structs, key for key, for the whole format (scenarios, stages,
//!    flows of requests, think times, blocks, templates, extraction, checks, feeders, WebSocket
//!    steps, thresholds, abort rules, variables). Unknown keys and wrong types are errors.
//! 2. `validate`: every duration, rate, rule, URL and header is parsed and
//!    checked, defaults are applied, and the result is a [`PlanSpec`], from which
//!    [`PlanSpec::to_plan`] builds the engine's `Plan`.
//!
//! Every mistake in either phase is collected into one [`Report`], each at its file:line:col
//! with the source line, a caret and the expected form. The parts of the format the engine does
//! not run yet are rejected with "… is not supported yet" at their key, never ignored.
//!
//! ```
//! let text = r#"
//! [target]
//! base_url = "http://127.0.0.1:8090"
//!
//! [[scenario]]
//! rate = 200
//! duration = "30s"
//! flow = [ { request = { path = "/api" } } ]
//! "#;
//! let spec = pummel_plan::parse("plan.toml", text, &Default::default()).unwrap();
//! assert_eq!(spec.url(), "http://127.0.0.1:8090/api");
//! ```

mod de;
pub mod diag;
mod files;
pub mod raw;
pub mod spec;
mod validate;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use diag::{Diagnostic, DiagnosticKind, Report};
pub use files::referenced_files;
pub use spec::{
    BodySpec, FeederSpec, LoadSpec, Location, Phase, PlanSpec, RequestStepSpec, ScenarioSpec, StepSpec, TargetSpec,
};

/// What the caller knows beyond the file.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// A base URL given on the command line (`--base-url`): it replaces `[target].base_url`, so
    /// a file without one is still complete.
    pub base_url: Option<String>,
    /// Variables set on the command line (`-e KEY=VALUE`): they replace `[variables]` values
    /// and count as defined when templates are checked.
    pub vars: BTreeMap<String, String>,
    /// `--object-size`: replaces the size of every `random_body`.
    pub object_size: Option<String>,
    /// `-d` was given: every scenario gets a length from the command line, so one without
    /// `duration` (or with an `every` that runs until the end) is complete.
    pub length_given: bool,
    /// The folder relative feeder paths start from (the plan file's); the current one if unset.
    pub plan_dir: Option<PathBuf>,
    /// Files shipped from another machine (an agent's copy of its coordinator's plan): each
    /// file reference as the plan writes it, and where its copy is here. A reference found
    /// here is read from the copy, wherever the plan's folder is.
    pub shipped: BTreeMap<String, PathBuf>,
}

impl Options {
    /// Where the file the plan refers to as `reference` is: its shipped copy, or the path
    /// relative to the plan's folder (an absolute one as it is).
    pub fn resolve(&self, reference: &str) -> PathBuf {
        if let Some(copy) = self.shipped.get(reference) {
            return copy.clone();
        }
        match &self.plan_dir {
            Some(dir) if Path::new(reference).is_relative() => dir.join(reference),
            _ => PathBuf::from(reference),
        }
    }
}

/// Why a plan file could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    /// The file could not be read.
    #[error("cannot read plan {}: {error}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// The file has errors; the report renders all of them.
    #[error("{0}")]
    Invalid(Box<Report>),
}

/// Reads and validates the plan file at `path`; errors name the file as given.
pub fn load_file(path: &Path, options: &Options) -> Result<PlanSpec, LoadError> {
    let text = std::fs::read_to_string(path).map_err(|error| LoadError::Read { path: path.to_path_buf(), error })?;
    let mut options = options.clone();
    if options.plan_dir.is_none() {
        options.plan_dir = path.parent().map(Path::to_path_buf);
    }
    parse(&path.display().to_string(), &text, &options).map_err(|report| LoadError::Invalid(Box::new(report)))
}

/// Validates plan text; `name` starts each error's `name:line:col`.
pub fn parse(name: &str, text: &str, options: &Options) -> Result<PlanSpec, Report> {
    let mut diagnostics = Vec::new();
    let spec = match de::parse(text, &mut diagnostics) {
        None => None,
        Some(parsed) => {
            let (spec, mut found) = validate::validate(&parsed.raw, &parsed.keys, text, options);
            if parsed.had_shape_errors {
                // A key removed for its wrong shape would also show up as "missing": say it once.
                found.retain(|d| d.kind != DiagnosticKind::Missing);
            }
            diagnostics.extend(found);
            spec
        }
    };
    match spec {
        Some(spec) if diagnostics.is_empty() => Ok(spec),
        _ => Err(Report::new(name, text, diagnostics)),
    }
}

/// True for a name templates can use: letters, digits and `_`, not starting with a digit.
pub fn is_variable_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests;
