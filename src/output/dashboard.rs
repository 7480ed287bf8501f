//! The live web dashboard of a run (`--dashboard ADDR`), fed by the same seconds and notes as
//! the terminal (see `pummel-dashboard`). One per process: every command's progress reaches it
//! through [`Progress`](super::progress::Progress), and its end through the results.

use std::sync::OnceLock;

use anyhow::anyhow;
use pummel_dashboard::Dashboard;
use pummel_results::document::ResultsDocument;
use pummel_results::timeline::TimelineEntry;

use crate::cli::DisplayArgs;
use crate::commands::CliError;

static LIVE: OnceLock<Dashboard> = OnceLock::new();

/// Starts the dashboard when `--dashboard` asks for it (once per process), titled `title`.
pub fn open(display: &DisplayArgs, title: &str) -> Result<(), CliError> {
    let Some(addr) = display.dashboard else { return Ok(()) };
    let dashboard = match LIVE.get() {
        Some(running) => running,
        None => {
            let started = Dashboard::start(addr)
                .map_err(|e| CliError::usage(anyhow!("--dashboard {addr}: cannot listen: {e}")))?;
            if !pummel_dashboard::is_loopback(started.addr()) {
                eprintln!(
                    "note: the dashboard listens on {} (not loopback): anyone who reaches this machine can read it",
                    started.addr()
                );
            }
            eprintln!("dashboard: http://{}/", started.addr());
            LIVE.get_or_init(|| started)
        }
    };
    dashboard.title(title);
    Ok(())
}

/// One more second, when a dashboard runs.
pub fn second(entry: &TimelineEntry) {
    if let Some(dashboard) = LIVE.get() {
        dashboard.second(entry);
    }
}

/// A note (phase, scenario, fault, warning), when a dashboard runs.
pub fn note(text: &str) {
    if let Some(dashboard) = LIVE.get() {
        dashboard.note(text);
    }
}

/// True when a dashboard runs: the results document is then made even without `-o`.
pub fn is_open() -> bool {
    LIVE.get().is_some()
}

/// The run ended: the dashboard shows `doc`'s report, and keeps serving it for `linger`.
pub fn finish(doc: &ResultsDocument, display: &DisplayArgs) {
    let Some(dashboard) = LIVE.get() else { return };
    dashboard.finish(pummel_report::html::render(doc, "live run"));
    if !display.dashboard_linger.is_zero() {
        eprintln!(
            "dashboard: the report stays at http://{}/report for {}",
            dashboard.addr(),
            humantime::format_duration(display.dashboard_linger)
        );
        // Ctrl-C ends the wait (a run already interrupted waits for the next one, which exits).
        let was_interrupted = crate::commands::interrupted();
        let until = std::time::Instant::now() + display.dashboard_linger;
        while std::time::Instant::now() < until && (was_interrupted || !crate::commands::interrupted()) {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}
