//! `pummel compare`: two results files side by side, with a verdict per metric and `--fail-if`
//! rules for CI regression gates. The comparison itself lives in `pummel_report::compare`.

use std::path::{Path, PathBuf};

use anyhow::{Context, anyhow};
use clap::Args;
use pummel_report::ResultsDocument;
use pummel_report::compare::fail_if::{FailIf, FailIfOutcome};
use pummel_report::compare::{Comparison, render};
use serde::Serialize;

use super::{CliError, ExitStatus, print_stdout};

/// How rows are judged; shown by `--help`.
macro_rules! verdicts {
    () => {
        "\
Rows: achieved rate, latency p50, p90, p99, max and mean, service-time p99 and error rate over
the whole run, then rate, p50, p99 and error rate per stage when both runs have the same number
of stages. Each row shows base, new, the change, the noise band and a verdict:

  same    the change is within the runs' own noise. Noise is measured on each file's per-second
          timeline (warmup left out, each stage on its own): the spread of per-second completed
          counts for the rate, of the per-second p50/p90/p99/max for latency (median absolute
          deviation x 1.4826, so one partial second does not count). A change is \"same\" when
          |change| <= max(2 x the larger spread of the two runs, 2 %). For the error rate the
          band is absolute: 2 x the larger per-second standard deviation, at least 0.1 point.
  better  beyond the noise, in the good direction (higher rate; lower latency or error rate)
  worse   beyond the noise, in the bad direction
  n/a     only one of the runs has the figure

"
    };
}

/// The `--fail-if` grammar and the exit codes; shown by `-h` and `--help`.
macro_rules! grammar {
    () => {
        "\
--fail-if grammar:  METRIC OP CHANGE
  METRIC  p50, p90, p99, max, mean, service.p99, rate, error_rate
  OP      > (the change is above CHANGE) or < (below it)
  CHANGE  a signed number and a unit:
            %            relative change, (new - base) / base       p99>+10%   rate<-5%
            ms, s, us    absolute change of a latency               p99>+5ms
            /s (or none) absolute change of the rate, req/s         rate<-100/s
          error_rate is itself a percentage: its change is always in percentage points,
          error_rate>+0.5% (or +0.5pp) holds when it rose by more than half a point.
Rules are judged on the whole-run figures and the raw change, noise or not. A rule whose figure
is missing from a file holds (a gate does not pass on data it does not have).

Exit codes: 0 no rule held, 1 a --fail-if rule held, 2 bad file or bad rule."
    };
}

/// Flags of `pummel compare`.
#[derive(Debug, Args)]
#[command(
    after_help = concat!("A row is \"same\" when the change is within the runs' per-second noise (see --help).\n\n", grammar!()),
    after_long_help = concat!(verdicts!(), grammar!())
)]
pub struct CompareArgs {
    /// The reference results file (e.g. from the main branch).
    #[arg(value_name = "BASE.json")]
    pub base: PathBuf,
    /// The results file under judgement.
    #[arg(value_name = "NEW.json")]
    pub new: PathBuf,
    /// Exit 1 when this holds, e.g. 'p99>+10%', 'rate<-5%', 'error_rate>+0.5%' (repeatable).
    #[arg(long = "fail-if", value_name = "RULE")]
    pub fail_if: Vec<String>,
    /// Print the comparison as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

/// What `--json` prints.
#[derive(Serialize)]
struct JsonOutput<'a> {
    #[serde(flatten)]
    comparison: &'a Comparison,
    fail_if: &'a [FailIfOutcome],
    failed: bool,
}

/// Runs `pummel compare`.
pub fn run(args: CompareArgs) -> Result<ExitStatus, CliError> {
    let rules: Vec<FailIf> = args
        .fail_if
        .iter()
        .map(|text| FailIf::parse(text))
        .collect::<Result<_, _>>()
        .map_err(|e| CliError::usage(anyhow!(e)))?;
    let base = load(&args.base)?;
    let new = load(&args.new)?;
    let comparison = Comparison::new(&base, &shown(&args.base), &new, &shown(&args.new));
    let outcomes: Vec<FailIfOutcome> = rules.iter().map(|r| r.evaluate(&comparison)).collect();
    let failed = outcomes.iter().any(|o| o.holds);
    if args.json {
        let output = JsonOutput { comparison: &comparison, fail_if: &outcomes, failed };
        let text =
            serde_json::to_string_pretty(&output).context("serializing the comparison").map_err(CliError::internal)?;
        print_stdout(&format!("{text}\n"));
    } else {
        print_stdout(&render::text(&comparison, &outcomes));
    }
    if failed {
        let held: Vec<&str> = outcomes.iter().filter(|o| o.holds).map(|o| o.rule.as_str()).collect();
        eprintln!("compare: --fail-if held: {}", held.join(", "));
        Ok(ExitStatus::ThresholdsFailed)
    } else {
        Ok(ExitStatus::Pass)
    }
}

fn load(path: &Path) -> Result<ResultsDocument, CliError> {
    pummel_report::load(path).map_err(|e| CliError::usage(anyhow!(e)))
}

fn shown(path: &Path) -> String {
    path.display().to_string()
}
