//! The command line's side of faults: `--fault` flags into the plan, and what is said about
//! them when the run ends (faults undone then, the recovery table).

use anyhow::anyhow;
use pummel_engine::engine::RunOutcome;
use pummel_faults::FaultPlan;
use pummel_results::summary::Summary;

use super::CliError;
use crate::cli::DisplayArgs;

/// Adds each `--fault` to `faults` (a plan's, or an empty one) and sets `--steady-state`; a
/// bad one is a usage error naming the flag, and a fault name given twice gets `#2`, `#3`.
pub fn add_flags(faults: &mut FaultPlan, flags: &[String], steady: Option<&str>) -> Result<(), CliError> {
    if let Some(text) = steady {
        let parsed = pummel_faults::parse_steady_state(text)
            .map_err(|e| CliError::usage(anyhow!("--steady-state {text:?}: {e}")))?;
        faults.steady_state = Some(parsed);
    }
    for flag in flags {
        let (mut fault, proxy) = pummel_faults::parse_fault(flag, &faults.proxies)
            .map_err(|e| CliError::usage(anyhow!("--fault {flag:?}: {e}")))?;
        if let Some(proxy) = proxy {
            faults.proxies.push(proxy);
        }
        let base = fault.name.clone();
        let mut n = 1;
        while faults.faults.iter().any(|f| f.name == fault.name) {
            n += 1;
            fault.name = format!("{base} #{n}");
        }
        faults.faults.push(fault);
    }
    Ok(())
}

/// Says which faults were still on when the run ended and how they were undone (these come
/// after the last per-second line), then the recovery table.
pub fn report_end(outcome: &RunOutcome, summary: &Summary, display: DisplayArgs) {
    for mark in &outcome.faults_undone_at_exit {
        // Undoing is a safety matter: said even with --quiet, on stderr when stdout is JSON.
        let line = format!("fault {}, {} ({})", mark.name, mark.event.word(), mark.detail);
        if display.json || display.quiet {
            eprintln!("{line}");
        } else {
            super::print_stdout(&format!("{line}\n"));
        }
    }
    if display.json || display.quiet {
        return;
    }
    if let Some(table) = pummel_report::faults::markdown(summary) {
        super::print_stdout(&format!("\nFaults and recovery\n{table}"));
    }
}
