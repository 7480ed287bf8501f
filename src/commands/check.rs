//! `pummel check PLAN.toml...`: validates plan files without running them.
//!
//! Every error of every file is printed at once, each as `FILE:LINE:COL: error: ...` with the
//! source line, a caret and the expected form; a valid file gets one line saying what it would
//! run. Exit 0 when every file is valid, 2 otherwise (as `run` with a bad plan).

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use pummel_plan::{LoadError, Options};

use super::{CliError, ExitStatus, print_stdout};

/// Flags of `pummel check`.
#[derive(Debug, Args)]
#[command(after_help = "Exit codes: 0 every plan is valid, 2 a plan has errors or cannot be read.")]
pub struct CheckArgs {
    /// Plan files to validate.
    #[arg(required = true, value_name = "PLAN.toml")]
    pub files: Vec<PathBuf>,
    /// Validate as if run with --base-url URL (a plan without [target].base_url is then complete).
    #[arg(long, value_name = "URL")]
    pub base_url: Option<String>,
}

/// Runs `pummel check`.
pub fn run(args: CheckArgs) -> Result<ExitStatus, CliError> {
    let options = Options { base_url: args.base_url.clone(), ..Options::default() };
    let mut failed = Vec::new();
    for path in &args.files {
        match pummel_plan::load_file(path, &options) {
            Ok(spec) => print_stdout(&format!("{}: ok: {}\n", path.display(), spec.describe())),
            Err(LoadError::Invalid(report)) => {
                let n = report.diagnostics.len();
                eprint!("{report}");
                eprintln!("{}: {n} error{}\n", path.display(), if n == 1 { "" } else { "s" });
                failed.push(path.display().to_string());
            }
            Err(e @ LoadError::Read { .. }) => {
                eprintln!("error: {e}");
                failed.push(path.display().to_string());
            }
        }
    }
    match failed.len() {
        0 => Ok(ExitStatus::Pass),
        _ => Err(CliError::usage(anyhow!("invalid plan: {}", failed.join(", ")))),
    }
}
