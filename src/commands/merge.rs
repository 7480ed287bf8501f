//! `pummel merge`: the results documents of a plan's segments (`--segment i/N`, or `FROM:TO` of
//! a `--segment-sequence`) joined into the results of the whole plan, exactly (see
//! `pummel_results::merge`).
//!
//! This command reads the files (a file that is not a results document is a usage error, exit
//! 2), hands them to the merge (a refusal — other plans, other versions or sequences, a segment
//! twice, overlapping or missing — is a usage error naming the file), prints the merged summary as `run` prints its
//! own, writes the merged document and exits 1 when a threshold judged on the merged figures
//! failed (or a segment was ended by an abort rule), 0 otherwise.

use std::path::PathBuf;

use anyhow::anyhow;
use clap::Args;
use pummel_results::merge::{MergeInput, MergeOptions, merge};

use super::{CliError, ExitStatus, print_stdout};
use crate::output::summary::{flow_tables, stages_table, summary_table};

const AFTER_HELP: &str = "\
Examples:
  # three machines, one plan, one agreed start
  pummel run plan.toml --segment 1/3 --start-at 2026-12-06T20:00:00Z -o seg-1.json   # on A
  pummel run plan.toml --segment 2/3 --start-at 2026-12-06T20:00:00Z -o seg-2.json   # on B
  pummel run plan.toml --segment 3/3 --start-at 2026-12-06T20:00:00Z -o seg-3.json   # on C
  pummel merge seg-1.json seg-2.json seg-3.json -o all.json
  # unequal parts: ranges of one sequence
  pummel run plan.toml --segment 0:1/4 --segment-sequence 0,1/4,1/2,1 -o a.json   # and 1/4:1/2, 1/2:1
  pummel merge a.json b.json c.json -o all.json

Counts are summed and every histogram is added (same bounds everywhere), so every percentile of
the merged document is the percentile of all the values; thresholds are judged again on the
merged figures. Timelines are aligned by wall-clock second.

Exit codes: 0 merged and every threshold held, 1 a threshold failed (or a segment was aborted),
2 a file is not a segment of the same plan and sequence (or is missing, repeated, overlapping,
unreadable), 3 the output
could not be written.";

/// Flags of `pummel merge`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct MergeArgs {
    /// The results documents of the plan's segments (`pummel run --segment i/N -o FILE`, or
    /// `--segment FROM:TO --segment-sequence ...`).
    #[arg(value_name = "SEGMENT.json", required = true)]
    pub inputs: Vec<PathBuf>,
    /// Where to write the merged results document.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Merge even when segments are missing: the result is marked partial and names them.
    #[arg(long)]
    pub partial: bool,
    /// Print the merged summary as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Print only the summary (no per-name and per-stage tables).
    #[arg(short, long)]
    pub quiet: bool,
}

/// Runs `pummel merge`.
pub fn run(args: MergeArgs) -> Result<ExitStatus, CliError> {
    let mut inputs = Vec::with_capacity(args.inputs.len());
    for path in &args.inputs {
        let document = pummel_report::load(path).map_err(|e| CliError::usage(anyhow!(e)))?;
        inputs.push(MergeInput { source: path.display().to_string(), document });
    }
    let merged =
        merge(&inputs, MergeOptions { allow_partial: args.partial }).map_err(|e| CliError::usage(anyhow!(e)))?;
    let summary = &merged.summary;
    if let Some(info) = &summary.merged {
        for note in &info.notes {
            eprintln!("note: {note}");
        }
        if !info.missing.is_empty() {
            eprintln!(
                "warning: partial merge: segment{} {} missing",
                plural(info.missing.len()),
                info.missing.join(", ")
            );
        }
    }
    if args.json {
        let json = serde_json::to_string_pretty(summary).map_err(|e| CliError::internal(e.into()))?;
        print_stdout(&format!("{json}\n"));
    } else {
        let segments = summary.merged.as_ref().map(|m| m.segments.join(", ")).unwrap_or_default();
        print_stdout(&format!(
            "merged segments {segments} of plan {}\n",
            merged.plan_fingerprint.as_deref().unwrap_or("?")
        ));
        if !args.quiet {
            if let Some(tables) = flow_tables(summary) {
                print_stdout(&tables);
            }
        }
        print_stdout(&summary_table(summary));
        if !args.quiet && summary.stages.len() > 1 {
            print_stdout(&format!("\nPer stage\n{}", stages_table(summary)));
        }
    }
    if let Some(path) = &args.output {
        merged.write_atomically(path).map_err(|e| CliError::internal(anyhow!(e)))?;
        if !args.json && !args.quiet {
            let partial = if summary.partial { " (partial)" } else { "" };
            print_stdout(&format!("\nmerged results written to {}{partial}\n", path.display()));
        }
    }
    Ok(if summary.aborted.is_some() || !summary.thresholds_pass() {
        ExitStatus::ThresholdsFailed
    } else {
        ExitStatus::Pass
    })
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}
