//! The subcommands, and what they share: exit statuses, error categories, signal handling.

pub mod agent;
pub mod check;
pub mod compare;
pub mod convert;
pub mod coordinate;
pub mod demo;
pub mod doctor;
pub mod faults;
pub mod find_limit;
pub mod hold;
pub mod k8s;
pub mod k8s_run;
pub mod merge;
pub mod metrics;
pub mod proxy;
pub mod report;
pub mod request_log;
pub mod run;
pub mod run_plan;
pub mod sink;
pub mod sink_processes;
pub mod watch;
pub mod writes;

use std::io::Write;
use std::process::ExitCode;
use std::sync::OnceLock;

use pummel_engine::engine::RunControl;

/// pummel's documented exit codes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitStatus {
    /// 0: the run passed.
    Pass,
    /// 1: a threshold failed or an abort rule ended the run.
    ThresholdsFailed,
    /// 2: bad usage (flags, expressions, URL).
    Usage,
    /// 3: the run could not start (nothing listening with --require-target, bind failed, ...).
    CannotStart,
    /// 130: interrupted by SIGINT/SIGTERM; results were written, marked partial.
    Interrupted,
}

impl From<ExitStatus> for ExitCode {
    fn from(status: ExitStatus) -> Self {
        ExitCode::from(match status {
            ExitStatus::Pass => 0,
            ExitStatus::ThresholdsFailed => 1,
            ExitStatus::Usage => 2,
            ExitStatus::CannotStart => 3,
            ExitStatus::Interrupted => 130,
        })
    }
}

/// An error with the exit status it maps to.
#[derive(Debug)]
pub struct CliError {
    /// The status to exit with.
    pub status: ExitStatus,
    /// What went wrong, with context.
    pub error: anyhow::Error,
}

impl CliError {
    /// Bad flags or input: exit 2.
    pub fn usage(error: anyhow::Error) -> Self {
        CliError { status: ExitStatus::Usage, error }
    }

    /// The run could not start: exit 3.
    pub fn cannot_start(error: anyhow::Error) -> Self {
        CliError { status: ExitStatus::CannotStart, error }
    }

    /// Anything else that stops pummel (e.g. the results file cannot be written): exit 3.
    pub fn internal(error: anyhow::Error) -> Self {
        CliError { status: ExitStatus::CannotStart, error }
    }
}

/// Writes the JUnit XML of `doc` to `path`, atomically (a temporary file renamed into place), as
/// the results document is; a file that cannot be written stops pummel (exit 3).
pub fn write_junit(
    doc: &pummel_results::document::ResultsDocument,
    suite: &str,
    path: &std::path::Path,
) -> Result<(), CliError> {
    let xml = pummel_report::junit::render(doc, suite).map_err(|e| CliError::internal(anyhow::anyhow!(e)))?;
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = std::path::PathBuf::from(tmp);
    std::fs::write(&tmp, xml)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CliError::internal(anyhow::anyhow!("cannot write the JUnit file {}: {e}", path.display())))
}

/// Prints to stdout, ignoring a closed pipe (`pummel run ... | head` must not panic).
pub fn print_stdout(text: &str) {
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(text.as_bytes()).and_then(|()| out.flush());
}

static ACTIVE_RUN: OnceLock<RunControl> = OnceLock::new();

/// Temporary folders a run keeps (the write log's), removed by a second Ctrl-C's exit too.
static TEMPORARY: std::sync::Mutex<Vec<std::path::PathBuf>> = std::sync::Mutex::new(Vec::new());

/// Has the exit of a second Ctrl-C remove `dir` (until [`forget_temporary`]).
pub fn remove_on_exit(dir: &std::path::Path) {
    if let Ok(mut dirs) = TEMPORARY.lock() {
        dirs.push(dir.to_path_buf());
    }
}

/// `dir` is removed by its owner: the exit need not.
pub fn forget_temporary(dir: &std::path::Path) {
    if let Ok(mut dirs) = TEMPORARY.lock() {
        dirs.retain(|d| d != dir);
    }
}

/// True once SIGINT/SIGTERM stopped the run (or no run installed a handler: false).
pub fn interrupted() -> bool {
    ACTIVE_RUN.get().is_some_and(RunControl::is_interrupted)
}

/// Makes SIGINT/SIGTERM stop `control`'s run gracefully; a second signal exits at once.
pub fn install_interrupt_handler(control: &RunControl) {
    if ACTIVE_RUN.set(control.clone()).is_err() {
        return;
    }
    let installed = ctrlc::set_handler(|| {
        if let Some(control) = ACTIVE_RUN.get() {
            if control.is_interrupted() {
                // Exiting at once skips the orderly undo: faults that are on are undone here.
                for line in pummel_faults::undo_now() {
                    eprintln!("fault undone: {line}");
                }
                if let Ok(dirs) = TEMPORARY.try_lock() {
                    for dir in dirs.iter() {
                        let _ = std::fs::remove_dir_all(dir);
                    }
                }
                std::process::exit(130);
            }
            eprintln!("\ninterrupted: stopping, waiting up to 2 s for in-flight requests, writing results...");
            control.interrupt();
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: cannot handle Ctrl-C ({e}); an interrupted run will not write results");
    }
}
