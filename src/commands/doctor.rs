//! `pummel doctor`: the system limits a load test runs into, explained. One entry per setting
//! (OK / WARN / FAIL, the current value, what it limits, why this verdict) with the exact
//! commands that fix it; `--json` prints the same report as one JSON document.
//!
//! Exit 0 when nothing will limit the test, 1 when something will (a FAIL), 3 when the
//! `--pid` target cannot be read.

use std::fmt::Write as _;

use anyhow::anyhow;
use clap::Args;
use pummel_system::doctor::{Check, DoctorRequest, Report, Status, examine};

use super::{CliError, ExitStatus, print_stdout};

/// Flags of `pummel doctor`.
#[derive(Debug, Args)]
pub struct DoctorArgs {
    /// Judge for a test holding this many connections at once (without it, low values only warn).
    #[arg(short, long, value_name = "N")]
    pub connections: Option<u64>,
    /// Also check a target process on this machine: its open-file and process limits.
    #[arg(long, value_name = "PID")]
    pub pid: Option<u32>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// Runs `pummel doctor`.
pub fn run(args: DoctorArgs) -> Result<ExitStatus, CliError> {
    let request = DoctorRequest { connections: args.connections, pid: args.pid, ..DoctorRequest::default() };
    let report = examine(&request).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
    if args.json {
        let text = serde_json::to_string_pretty(&report)
            .map_err(|e| CliError::internal(anyhow!(e).context("serializing the doctor report")))?;
        print_stdout(&(text + "\n"));
    } else {
        print_stdout(&render(&report));
    }
    Ok(if report.will_limit { ExitStatus::ThresholdsFailed } else { ExitStatus::Pass })
}

/// The report as text: a heading, one block per check, and the verdict.
fn render(report: &Report) -> String {
    let mut out = String::new();
    let test = match report.connections {
        Some(n) => format!("a test of {n} connections"),
        None => "a load test".to_string(),
    };
    let target = report.target.as_ref().map(|t| format!(" and {} (PID {})", t.name, t.pid)).unwrap_or_default();
    let _ = writeln!(out, "pummel doctor: the limits of this machine{target} for {test}\n");
    for check in &report.checks {
        block(&mut out, check);
    }
    let (fail, warn, ok) = (report.count(Status::Fail), report.count(Status::Warn), report.count(Status::Ok));
    let _ = write!(out, "{fail} FAIL, {warn} WARN, {ok} OK: ");
    if report.will_limit {
        let names: Vec<&str> = report.failures().map(|c| c.title.as_str()).collect();
        let _ = writeln!(out, "{} will limit {test}.", names.join(", "));
    } else if report.connections.is_some() {
        let _ = writeln!(out, "nothing here will limit {test}.");
    } else {
        let _ = writeln!(out, "nothing here limits a test by itself; give --connections N to check one size.");
    }
    out
}

/// One check: `FAIL  title = value`, its verdict, what it limits, and the fix.
fn block(out: &mut String, check: &Check) {
    const INDENT: &str = "      ";
    let _ = writeln!(out, "{:<5} {} = {}", check.status.label(), check.title, check.value);
    let _ = writeln!(out, "{INDENT}{}", check.detail);
    let _ = writeln!(out, "{INDENT}limits: {}", check.limits);
    for (index, fix) in check.fix.iter().enumerate() {
        let label = if index == 0 { "fix:   " } else { "       " };
        let _ = writeln!(out, "{INDENT}{label}{fix}");
    }
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use pummel_system::doctor::{SystemFacts, judge};
    use pummel_system::proc_text::limits::ResourceLimit;

    use super::*;

    #[test]
    fn a_failing_check_reads_well() {
        let facts = SystemFacts {
            open_files: Some(ResourceLimit { soft: Some(256), hard: Some(256) }),
            nr_open: Some(1_048_576),
            ..SystemFacts::default()
        };
        let request = DoctorRequest::for_connections(1000);
        let checks = judge(&facts, None, &request);
        let report = Report { connections: Some(1000), target: None, will_limit: true, checks };
        let text = render(&report);
        assert!(
            text.starts_with("pummel doctor: the limits of this machine for a test of 1000 connections\n"),
            "{text}"
        );
        assert!(text.contains("\nFAIL  open files (this shell) = soft 256, hard 256\n"), "{text}");
        assert!(text.contains("      fix:   ulimit -n 1048576"), "{text}");
        assert!(text.contains("\nOK    fs.nr_open = 1048576\n"), "{text}");
        assert!(text.ends_with("open files (this shell) will limit a test of 1000 connections.\n"), "{text}");
    }
}
