//! `pummel find-limit URL`: steps of constant rate until the target breaks its SLO, then the
//! table users used to assemble by hand, the capacity verdict and a capacity-planning estimate.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use pummel_engine::engine::RunControl;
use pummel_engine::find_limit::{FindLimitError, FindLimitSpec, Search, StepObserver, find_limit, find_limit_with};
use pummel_engine::measure::{results::document as results_document, summary::summarize};
use pummel_engine::plan::{Load, OpenLoad, RateStage, Stop};
use pummel_results::document::StepVerdict;
use pummel_results::summary::StageSummary;
use pummel_results::timeline::TimelineEntry;

use super::run::{arrival, base_plan, duration_flag, parse_exprs, parse_ok_status, parse_rate, validate};
use super::{CliError, ExitStatus, install_interrupt_handler, print_stdout};
use crate::cli::{ArrivalArg, ConnectionArgs, DisplayArgs, RequestArgs};
use crate::output::format::{ms, percent, rate, thousands};
use crate::output::progress::Progress;

/// Flags of `pummel find-limit`.
#[derive(Debug, Args)]
#[command(after_help = "A step is good when every --slo holds (on the latency of the requests that succeeded), \
its error rate is at most --max-error-rate, the target kept up (its successful answers reached 95 % of the offered \
rate, nothing dropped) and the generator was not the limit. After a bad step, the next starts once a probe request is \
answered within the SLO (--cooldown); a borderline step runs twice (--no-confirm: once).\n\
Exit codes: 0 done, 1 an agent was lost (the search ended early), 2 bad usage, 3 could not start, 130 interrupted \
(results still written).")]
pub struct FindLimitArgs {
    /// The URL to load.
    pub url: String,
    #[command(flatten)]
    pub request: RequestArgs,

    /// Explicit rates to run, in order (e.g. 1,10,100,1000,2000,2500,10000); no search.
    #[arg(long, value_delimiter = ',', value_name = "RATES", conflicts_with_all = ["start", "factor", "precision"])]
    pub steps: Vec<String>,
    /// First rate of the search (req/s).
    #[arg(long, default_value = "100", value_name = "REQ/S")]
    pub start: String,
    /// Growth factor between steps until one breaks.
    #[arg(long, default_value_t = 2.0)]
    pub factor: f64,
    /// Bisection stops when the good and bad rates are this close.
    #[arg(long, default_value = "5%", value_name = "PERCENT")]
    pub precision: String,
    /// Never step above this rate (req/s).
    #[arg(long, default_value = "100000", value_name = "REQ/S")]
    pub max_rate: String,
    /// Measured length of each step.
    #[arg(long = "step", default_value = "10s", value_name = "DURATION")]
    pub step_length: String,
    /// Settle time before each step's measurement (excluded from its statistics).
    #[arg(long, default_value = "2s", value_name = "DURATION")]
    pub settle: String,
    /// After a bad step, wait up to this long for the target to drain (a probe request answered
    /// within the SLO) before the next step; a step that starts before says so.
    #[arg(long, default_value = "30s", value_name = "DURATION")]
    pub cooldown: String,
    /// Run a borderline step (a figure within 10 % of its limit) once more; it is good only when
    /// both runs are. On by default.
    #[arg(long, overrides_with = "no_confirm")]
    pub confirm: bool,
    /// Run every step once, borderline or not.
    #[arg(long)]
    pub no_confirm: bool,

    /// Service-level objective a good step meets, e.g. 'p99<200ms' (repeatable).
    #[arg(long = "slo", value_name = "EXPR")]
    pub slo: Vec<String>,
    /// Highest error rate of a good step.
    #[arg(long, default_value = "1%", value_name = "PERCENT")]
    pub max_error_rate: String,
    /// Cut a step short when its error rate passes this over 3 s.
    #[arg(long, default_value = "50%", value_name = "PERCENT")]
    pub abort_step: String,
    /// Statuses that count as success, e.g. 200-399,404 (default 100-399).
    #[arg(long, value_name = "SET")]
    pub ok_status: Option<String>,

    /// Expected peak (req/s): estimate how many instances it needs.
    #[arg(long, value_name = "REQ/S")]
    pub peak: Option<String>,
    /// Spare capacity to keep on each instance for the estimate.
    #[arg(long, default_value = "30%", value_name = "PERCENT", requires = "peak")]
    pub headroom: String,

    /// Connection pool bound (opened on demand).
    #[arg(short, long, default_value_t = 2000, value_name = "N")]
    pub connections: usize,
    /// Spacing of arrivals.
    #[arg(long, value_enum, default_value_t = ArrivalArg::Uniform)]
    pub arrival: ArrivalArg,
    /// Speak HTTP/2: prior knowledge (h2c) for http://, ALPN h2 for https://.
    #[arg(long)]
    pub http2: bool,
    /// HTTP/2: concurrent streams per connection; a new connection opens only when all are busy.
    #[arg(long, value_name = "N", default_value_t = 1, requires = "http2")]
    pub streams: usize,
    #[command(flatten)]
    pub connection: ConnectionArgs,

    /// Seed of the run's randomness (Poisson arrivals, `choose`, `random_int`, `uuid()`, random
    /// feeder rows): the same seed repeats them exactly [default: a fresh one, written in the
    /// results]
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
    /// Write the results document (every step, timeline, histograms) here.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Write JUnit XML here: a test case per step (a step that broke the SLO is a failure, with
    /// why) and one for the capacity found; also written when interrupted (marked).
    #[arg(long, value_name = "FILE")]
    pub junit: Option<PathBuf>,
    #[command(flatten)]
    pub metrics: super::metrics::MetricsArgs,
    #[command(flatten)]
    pub cluster: crate::cli::ClusterArgs,
    #[command(flatten)]
    pub display: DisplayArgs,
}

/// Runs `pummel find-limit`.
pub fn run(args: FindLimitArgs) -> Result<ExitStatus, CliError> {
    let spec = build_spec(&args)?;
    super::run::warn_about_limits(&spec.base, args.display);
    let metrics = super::metrics::Metrics::start(&args.metrics, args.display)?;
    let control = metrics.attach(RunControl::new());
    install_interrupt_handler(&control);
    let title = format!("{} {}", args.request.method, spec.base.target.url);
    let mut cluster = if super::coordinate::is_coordinator(&args.cluster) {
        if args.cluster.watch_agent {
            return Err(CliError::usage(anyhow!("--watch-agent does not run with find-limit yet")));
        }
        let outputs = (args.output.as_deref(), args.junit.as_deref());
        let how = super::coordinate::Coordinated::unsegmented(
            &args.cluster,
            args.display,
            &args.metrics,
            outputs,
            title.clone(),
        );
        let files = super::run::flag_files(&args.request, &args.connection);
        Some(super::coordinate::Cluster::gather(&how, &spec.base, &files, &control)?)
    } else {
        None
    };
    let mut view = LiveSteps { progress: Progress::new(args.display, title, None)?, quiet: args.display.quiet };
    let searched = match cluster.as_mut() {
        Some(cluster) => find_limit_with(&spec, &control, &mut view, &mut super::coordinate::RemoteSteps(cluster)),
        None => find_limit(&spec, &control, &mut view),
    };
    let agents = cluster.map(super::coordinate::Cluster::finish).unwrap_or_default();
    let found = searched.map_err(|e| match e {
        FindLimitError::Invalid(_) => CliError::usage(anyhow!(e)),
        FindLimitError::Engine(_) => CliError::cannot_start(anyhow!(e)),
    })?;

    let mut summary = summarize(&found.plan, &found.outcome);
    let lost = super::coordinate::add_agents(&mut summary, &agents, args.display);
    let route = format!("{} {}", args.request.method, spec.base.target.path_and_query);
    if args.display.json {
        let value = serde_json::json!({ "find_limit": found.report, "summary": summary });
        let text = serde_json::to_string_pretty(&value).map_err(|e| CliError::internal(e.into()))?;
        print_stdout(&format!("{text}\n"));
    } else {
        print_stdout(&steps_table(&route, &summary.stages, &found.report.steps));
        print_stdout(&format!("\n{}\n", found.report.verdict));
        if let Some(plan) = &found.report.planning {
            print_stdout(&format!(
                "at ~{} req/s per instance, a peak of {} req/s needs {} instances with {} headroom \
                 (an estimate that assumes capacity scales linearly with instances)\n",
                thousands(plan.per_instance_rps.round() as u64),
                thousands(plan.peak_rps.round() as u64),
                plan.instances,
                percent(plan.headroom)
            ));
        } else if args.peak.is_some() {
            print_stdout("no good step, so no capacity estimate for --peak\n");
        }
    }
    if args.output.is_some() || args.junit.is_some() || crate::output::dashboard::is_open() {
        let mut doc = results_document(&found.plan, &found.outcome, summary.clone());
        doc.find_limit = Some(found.report.clone());
        crate::output::dashboard::finish(&doc, &args.display);
        if let Some(path) = &args.output {
            doc.write_atomically(path).map_err(|e| CliError::internal(anyhow!(e)))?;
            if !args.display.json && !args.display.quiet {
                print_stdout(&format!("results written to {}\n", path.display()));
            }
        }
        if let Some(path) = &args.junit {
            super::write_junit(&doc, &format!("pummel find-limit {route} ({})", spec.base.target.url), path)?;
        }
    }
    // A Ctrl-C while the endpoint lingers ends the lingering, not the search's verdict.
    let status = if control.is_interrupted() { ExitStatus::Interrupted } else { ExitStatus::Pass };
    metrics.finish(&control);
    super::coordinate::judge_losses(Ok(status), &lost)
}

/// Lowers the flags into the search's settings (an agent of a search over agents builds the
/// same, for each step's plan).
pub fn build_spec(args: &FindLimitArgs) -> Result<FindLimitSpec, CliError> {
    let load = Load::Open(OpenLoad {
        // Replaced by each step's rate; one placeholder stage keeps the plan valid.
        stages: vec![RateStage::level(1.0, Duration::from_secs(1))],
        arrival: arrival(args.arrival),
        max_connections: args.connections,
        max_inflight: None,
    });
    let http2 = args.http2.then_some(pummel_engine::plan::Http2Settings { streams: args.streams });
    let stop = Stop { duration: None, requests: None };
    let mut base = base_plan(&args.url, &args.request, &args.connection, load, http2, stop)?;
    base.ok_status = parse_ok_status(args.ok_status.as_deref())?;
    if let Some(seed) = args.seed {
        base.seed = seed;
    }
    validate(&base)?;
    let search = if args.steps.is_empty() {
        Search::Grow {
            start: parse_rate(&args.start)?,
            factor: args.factor,
            precision: parse_percent("--precision", &args.precision)?,
            max_rate: parse_rate(&args.max_rate)?,
        }
    } else {
        let rates = args.steps.iter().map(|s| {
            parse_rate(s).map_err(|_| CliError::usage(anyhow!("--steps: {s:?} is not a positive rate (req/s)")))
        });
        Search::Steps(rates.collect::<Result<_, _>>()?)
    };
    let planning = match &args.peak {
        Some(peak) => Some((parse_rate(peak)?, parse_percent("--headroom", &args.headroom)?)),
        None => None,
    };
    let slo = parse_exprs("--slo", &args.slo)?;
    super::run::no_write_rules("--slo", &slo)?;
    Ok(FindLimitSpec {
        base,
        search,
        step: duration_flag("--step", &args.step_length)?,
        settle: duration_flag("--settle", &args.settle)?,
        slo,
        max_error_rate: parse_percent("--max-error-rate", &args.max_error_rate)?,
        abort_step: parse_percent("--abort-step", &args.abort_step)?,
        planning,
        cooldown: duration_flag("--cooldown", &args.cooldown)?,
        confirm: !args.no_confirm,
    })
}

/// `5%` or `0.05` → 0.05.
fn parse_percent(flag: &str, text: &str) -> Result<f64, CliError> {
    let value = match text.trim().strip_suffix('%') {
        Some(p) => p.trim().parse::<f64>().map(|v| v / 100.0),
        None => text.trim().parse::<f64>(),
    };
    match value {
        Ok(v) if v.is_finite() && (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(CliError::usage(anyhow!("{flag} {text:?}: expected a percentage between 0% and 100%"))),
    }
}

/// The per-step live view: a header per step, the engine's seconds, a verdict line.
struct LiveSteps {
    progress: Progress,
    quiet: bool,
}

impl StepObserver for LiveSteps {
    fn step_started(&mut self, index: usize, rate: f64) {
        self.progress.note(&format!("-- step {}: {} req/s", index + 1, thousands(rate.round() as u64)));
    }

    fn second(&mut self, entry: &TimelineEntry) {
        self.progress.second(entry);
    }

    fn note(&mut self, text: &str) {
        if !self.quiet {
            self.progress.note(text);
        }
    }

    fn step_finished(&mut self, index: usize, row: &StageSummary, verdict: &StepVerdict) {
        if self.quiet {
            return;
        }
        let p99 = row.latency_ms.map(|l| ms(l.p99)).unwrap_or_else(|| "-".into());
        let judgement = match &verdict.reason {
            None => "good".to_string(),
            Some(why) => format!("BAD: {why}"),
        };
        // How the step started (a cooldown, dirty): the first part of its note, when it says so.
        let started = row
            .note
            .as_deref()
            .and_then(|n| n.split("; ").next())
            .filter(|n| n.starts_with("started"))
            .map(|n| format!(" ({n})"));
        self.progress.note(&format!(
            "   step {}: {} req/s answered successfully, p99 {p99}, {} errors, {} dropped -> {judgement}{}",
            index + 1,
            rate(row.achieved_rate),
            percent(row.error_rate),
            thousands(row.dropped),
            started.unwrap_or_default()
        ));
    }
}

/// The table of seed 002, with a verdict column. Achieved is successful answers per second;
/// latency is of the successes; the note says why a step is bad and how it started.
fn steps_table(route: &str, rows: &[StageSummary], verdicts: &[StepVerdict]) -> String {
    let mut out = String::from(
        "\n| Route | Target RPS | Achieved RPS | Throughput | Latency mean | p50 | p99 | Error rate | Dropped | Verdict | Note |\n\
         |-------|-----------:|-------------:|-----------:|-------------:|----:|----:|-----------:|--------:|---------|------|\n",
    );
    // Rows by rate, as people read a capacity table; the search order is in the results file.
    let mut ordered: Vec<_> = rows.iter().zip(verdicts).collect();
    ordered.sort_by(|a, b| a.1.target_rate.total_cmp(&b.1.target_rate));
    for (row, verdict) in ordered {
        let (mean, p50, p99) = match &row.latency_ms {
            Some(l) => (ms(l.mean), ms(l.p50), ms(l.p99)),
            None => ("-".into(), "-".into(), "-".into()),
        };
        out.push_str(&format!(
            "| {route} | {} | {} | {} req/s, {} RPM | {mean} | {p50} | {p99} | {} | {} | {} | {} |\n",
            rate(verdict.target_rate),
            rate(row.achieved_rate),
            rate(row.achieved_rate),
            thousands((row.achieved_rate * 60.0).round() as u64),
            percent(row.error_rate),
            thousands(row.dropped),
            if verdict.good { "good" } else { "bad" },
            row.note.as_deref().or(verdict.reason.as_deref()).unwrap_or("")
        ));
    }
    out
}
