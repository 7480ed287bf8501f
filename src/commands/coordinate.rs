//! `pummel run … --agents N` and `--workers N` (and `hold`'s): the coordinator. It waits for its agents (or
//! starts `--workers` of its own on loopback), ships them the command line and the plan's files
//! with a segment each, starts them together and runs the very collector a local run uses on
//! their reports: the live view, timeline, abort rules, thresholds and results are global and
//! exact, with a per-agent breakdown beside them.

use std::collections::BTreeMap;
use std::os::unix::process::CommandExt as _;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::time::{Duration, Instant};

use anyhow::anyhow;
use base64::Engine as _;
use pummel_cluster::coordinator::{AgentFigures, Coordinator, Event, Gathered, LogFile, OnLoss};
use pummel_cluster::protocol::{Job, ShippedFile};
use pummel_cluster::{ClusterError, Token};
use pummel_engine::engine::{EngineError, RunControl, RunOutcome, remote};
use pummel_engine::measure::summary::summarize;
use pummel_engine::plan::Plan;
use pummel_engine::request_log::RequestLogTotals;
use pummel_results::summary::{AgentSummary, Summary};
use pummel_results::timeline::TimelineEntry;

use super::run::{OutputFiles, duration_flag, finish_summary};
use super::{CliError, ExitStatus, install_interrupt_handler, print_stdout};
use crate::cli::{ClusterArgs, DisplayArgs, OnAgentLoss};
use crate::output::progress::Progress;

/// True when `run` (or `hold`) coordinates agents instead of running the plan itself.
pub fn is_coordinator(cluster: &ClusterArgs) -> bool {
    cluster.agents.is_some() || cluster.workers.is_some()
}

/// What a command that coordinates agents brings: its flags beyond the plan.
pub struct Coordinated<'a> {
    /// `--agents`, `--workers` and their companions.
    pub cluster: &'a ClusterArgs,
    /// How progress and the summary show.
    pub display: DisplayArgs,
    /// `--metrics-listen`, `--out prometheus=URL`.
    pub metrics: &'a super::metrics::MetricsArgs,
    /// `-o FILE`.
    pub output: Option<&'a Path>,
    /// `--junit FILE`.
    pub junit: Option<&'a Path>,
    /// The run's title line (also the JUnit suite's name).
    pub title: String,
    /// `--segment` or `--start-at` was given (the coordinator hands those out itself).
    pub segment_given: bool,
}

impl<'a> Coordinated<'a> {
    /// The flags of a command that has no `--segment` (`hold`, `find-limit`).
    pub fn unsegmented(
        cluster: &'a ClusterArgs,
        display: DisplayArgs,
        metrics: &'a super::metrics::MetricsArgs,
        files: (Option<&'a Path>, Option<&'a Path>),
        title: String,
    ) -> Coordinated<'a> {
        let (output, junit) = files;
        Coordinated { cluster, display, metrics, output, junit, title, segment_given: false }
    }
}

/// Runs `plan` over agents; `files` are what the command line and the plan refer to (as
/// written, and where they are here), shipped to every agent. `on_second` shows each merged
/// second; `table` renders the summary for a terminal.
pub fn run(
    how: Coordinated<'_>,
    plan: &Plan,
    files: &[(String, PathBuf)],
    mut on_second: impl FnMut(&mut Progress, &TimelineEntry),
    table: impl FnOnce(&RunOutcome, &Summary) -> String,
) -> Result<ExitStatus, CliError> {
    let display = how.display;
    let metrics = super::metrics::Metrics::start(how.metrics, display)?;
    let control = metrics.attach(RunControl::new());
    install_interrupt_handler(&control);
    let mut cluster = Cluster::gather(&how, plan, files, &control)?;
    let mut progress = Progress::new(display, how.title.clone(), plan.planned_duration())?;
    let ran = cluster.run(plan, &control, None, &mut |entry| on_second(&mut progress, entry));
    let figures = cluster.finish();
    let outcome = ran.map_err(|e| CliError::cannot_start(anyhow!(e)))?;

    let mut summary = summarize(plan, &outcome);
    let lost = add_agents(&mut summary, &figures, display);
    let suite = format!("pummel {}", how.title);
    let files = OutputFiles { results: how.output, junit: how.junit, suite: &suite };
    let status = finish_summary(plan, &outcome, summary, display, files, |summary| table(&outcome, summary));
    metrics.finish(&control);
    judge_losses(status, &lost)
}

/// Puts each agent's figures in `summary` (a lost agent makes it partial) and shows their
/// table; gives a line for each agent lost, for [`judge_losses`].
pub fn add_agents(summary: &mut Summary, figures: &[AgentFigures], display: DisplayArgs) -> Vec<String> {
    summary.agents = figures.iter().map(agent_summary).collect();
    if summary.agents.is_empty() {
        return Vec::new();
    }
    let lost: Vec<String> = summary
        .agents
        .iter()
        .filter(|a| a.lost_at_s.is_some())
        .map(|a| {
            format!(
                "agent {} lost {:.1} s into the run: {}; the results are partial",
                a.name,
                a.lost_at_s.unwrap_or_default(),
                a.lost_reason.as_deref().unwrap_or("")
            )
        })
        .collect();
    if !lost.is_empty() {
        summary.partial = true;
    }
    if !display.json && !display.quiet {
        print_stdout(&format!("\nAgents\n{}\n", agents_table(&summary.agents)));
    }
    lost
}

/// Says which agents were lost; a run that lost one did not offer the load it planned: it
/// does not pass.
pub fn judge_losses(status: Result<ExitStatus, CliError>, lost: &[String]) -> Result<ExitStatus, CliError> {
    for line in lost {
        eprintln!("{line}");
    }
    match status {
        Ok(ExitStatus::Pass) if !lost.is_empty() => Ok(ExitStatus::ThresholdsFailed),
        other => other,
    }
}

/// A coordinator with its agents gathered: runs plans over them, one after the other (a
/// search's steps), then lets them go.
pub struct Cluster {
    coordinator: Coordinator,
    gathered: Option<Gathered>,
    local_agents: Workers,
    count: usize,
    job_args: Vec<String>,
    shipped: Vec<ShippedFile>,
    on_loss: OnLoss,
    quiet: bool,
    /// Each agent's figures, summed over the runs so far.
    figures: Vec<AgentFigures>,
    /// What a setup phase here exported, for the agents' load.
    exports: BTreeMap<String, Vec<String>>,
    /// `--agent-weights`.
    weights: Weights,
}

impl Cluster {
    /// Checks the flags, listens, starts `--workers`, and waits for the agents.
    pub fn gather(
        how: &Coordinated<'_>,
        plan: &Plan,
        files: &[(String, PathBuf)],
        control: &RunControl,
    ) -> Result<Cluster, CliError> {
        let cluster = how.cluster;
        let (count, workers) = match (cluster.agents, cluster.workers) {
            (Some(n), _) => (n, false),
            (None, Some(n)) => (n, true),
            (None, None) => return Err(CliError::usage(anyhow!("--agents or --workers is needed to coordinate"))),
        };
        if count == 0 {
            return Err(CliError::usage(anyhow!("--{} needs at least 1", if workers { "workers" } else { "agents" })));
        }
        if how.segment_given {
            return Err(CliError::usage(anyhow!(
                "--segment, --segment-sequence and --start-at are given to each agent by the coordinator: drop them"
            )));
        }
        if plan.write_log.is_some() {
            return Err(CliError::usage(anyhow!("writes and their [verify] read-back do not run over agents yet")));
        }
        if cluster.watch_agent && plan.observers.watch.is_some() {
            return Err(CliError::usage(anyhow!(
                "--watch-agent and --watch-pid/--watch-port: the target is watched by one or the other"
            )));
        }
        let weights = match &cluster.agent_weights {
            Some(text) => Weights::parse(text).map_err(|e| CliError::usage(anyhow!("--agent-weights: {e}")))?,
            None => Weights::Named(BTreeMap::new()),
        };
        let wait = duration_flag("--agents-timeout", &cluster.agents_timeout)?;
        let token = if workers {
            Token::random()
        } else {
            Token::load(cluster.token_file.as_deref()).map_err(|e| CliError::usage(anyhow!(e)))?
        };
        let shipped = ship(files)?;
        let quiet = how.display.quiet;
        let say = |line: &str| {
            if !quiet {
                eprintln!("pummel  {line}");
            }
        };
        let listen = if workers { "127.0.0.1:0" } else { cluster.listen.as_str() };
        let coordinator = Coordinator::bind(listen, token.clone()).map_err(|e| CliError::cannot_start(anyhow!(e)))?;
        say(&format!("coordinator on {}: waiting for {count} agent{}", coordinator.address(), plural(count)));
        let local_agents =
            if workers { Workers::start(count, &coordinator.address().to_string(), &token)? } else { Workers::none() };
        let gathered = coordinator
            .gather(count, cluster.watch_agent, wait, &control.child_token(), |event| match event {
                Event::Joined { name, address, count, wanted } => {
                    say(&format!("agent {name} joined from {address} ({count}/{wanted})"))
                }
                Event::Watcher { name, address } => say(&format!("watch agent {name} joined from {address}")),
                Event::Refused { address, reason } => eprintln!("warning: refused {address}: {reason}"),
            })
            .map_err(|e| interrupted_or(e, control))?;
        if let Some(name) = weights.named().find(|name| !gathered.agents.iter().any(|a| &a.name == *name)) {
            let joined: Vec<&str> = gathered.agents.iter().map(|a| a.name.as_str()).collect();
            return Err(CliError::usage(anyhow!(
                "--agent-weights names {name:?}, which is none of the agents that joined ({})",
                joined.join(", ")
            )));
        }
        let on_loss = match cluster.on_agent_loss {
            OnAgentLoss::Abort => OnLoss::Abort,
            OnAgentLoss::Continue => OnLoss::Continue,
        };
        Ok(Cluster {
            coordinator,
            gathered: Some(gathered),
            local_agents,
            count,
            job_args: job_args(),
            shipped,
            on_loss,
            quiet,
            figures: Vec::new(),
            exports: BTreeMap::new(),
            weights,
        })
    }

    /// Runs `plan` over the agents (with `step_rate`: a search's step at that rate), merged
    /// live: `on_second` sees each merged second. A lost agent leaves this cluster (the next
    /// run is refused).
    pub fn run(
        &mut self,
        plan: &Plan,
        control: &RunControl,
        step_rate: Option<f64>,
        on_second: &mut dyn FnMut(&TimelineEntry),
    ) -> Result<RunOutcome, EngineError> {
        let Some(gathered) = self.gathered.take() else {
            return Err(EngineError::Remote("an agent was lost: the run cannot go on".into()));
        };
        let count = self.count;
        let (job_args, shipped, exports) = (&self.job_args, &self.shipped, &self.exports);
        let each: Vec<u64> = gathered.agents.iter().map(|a| self.weights.of(&a.name, a.cores)).collect();
        let parts = weighted_parts(&each);
        let job = |index: usize| Job {
            args: job_args.clone(),
            files: shipped.clone(),
            segment: parts[index].0.clone(),
            segment_sequence: parts[index].1.clone(),
            step_rate,
            exports: exports.clone(),
        };
        // The agents' request-log lines all go into the coordinator's one file.
        let request_log = match &plan.request_log {
            Some(spec) => Some(
                LogFile::create(&spec.path)
                    .map_err(|source| EngineError::RequestLog { path: spec.path.display().to_string(), source })?,
            ),
            None => None,
        };
        let (shards, relay) = self
            .coordinator
            .start(gathered, job, self.on_loss, control.child_token(), request_log.clone())
            .map_err(|e| EngineError::Remote(e.to_string()))?;
        if !self.quiet && step_rate.is_none() {
            eprintln!("pummel  {count} agent{} on {} threads: started", plural(count), shards.shards);
        }
        let mut outcome = remote::run_remote(plan, control, shards, on_second);
        let (figures, agents) = relay.finish();
        if let (Ok(outcome), Some(spec), Some(log)) = (&mut outcome, &plan.request_log, &request_log) {
            outcome.request_log = Some(log_totals(&spec.path, &figures, LogFile::finish(log)));
        }
        let lost = figures.iter().find_map(|f| f.lost.as_ref().map(|(_, why)| format!("agent {} lost: {why}", f.name)));
        self.add_figures(figures);
        if agents.len() == count {
            self.gathered = Some(Gathered { agents, watcher: None });
        } else {
            self.coordinator.release(agents);
        }
        match (outcome, lost) {
            (Ok(_), Some(why)) if step_rate.is_some() => Err(EngineError::Remote(why)),
            (outcome, _) => outcome,
        }
    }

    /// The values a setup phase exported: every agent's load reads them.
    pub fn ship_exports(&mut self, exported: BTreeMap<String, Vec<String>>) {
        self.exports = exported;
    }

    /// Adds one run's per-agent figures to the totals.
    fn add_figures(&mut self, figures: Vec<AgentFigures>) {
        if self.figures.is_empty() {
            self.figures = figures;
            return;
        }
        for (total, run) in self.figures.iter_mut().zip(figures) {
            total.sent += run.sent;
            total.ok += run.ok;
            total.failed += run.failed;
            total.cpu_seconds += run.cpu_seconds;
            total.lag_p99_ms = match (total.lag_p99_ms, run.lag_p99_ms) {
                (Some(a), Some(b)) => Some(a.max(b)),
                (a, b) => a.or(b),
            };
            total.thread_busy_median_percent = run.thread_busy_median_percent.or(total.thread_busy_median_percent);
            total.lost = total.lost.take().or(run.lost);
        }
    }

    /// Lets the agents go (they exit), waits for `--workers`, and gives each agent's figures.
    pub fn finish(mut self) -> Vec<AgentFigures> {
        if let Some(gathered) = self.gathered.take() {
            self.coordinator.release(gathered.agents);
        }
        self.local_agents.finish();
        self.figures
    }
}

/// A search's steps run over a cluster's agents.
pub struct RemoteSteps<'a>(pub &'a mut Cluster);

impl pummel_engine::find_limit::StepRunner for RemoteSteps<'_> {
    fn run_step(
        &mut self,
        rate: f64,
        plan: &Plan,
        control: &RunControl,
        on_second: &mut dyn FnMut(&TimelineEntry),
    ) -> Result<RunOutcome, EngineError> {
        self.0.run(plan, control, Some(rate), on_second)
    }
}

/// The arguments the user typed after `pummel`: each agent builds its plan from them.
fn job_args() -> Vec<String> {
    std::env::args().skip(1).collect()
}

/// Reads every file to ship.
fn ship(files: &[(String, PathBuf)]) -> Result<Vec<ShippedFile>, CliError> {
    files
        .iter()
        .map(|(reference, path)| {
            let bytes =
                std::fs::read(path).map_err(|e| CliError::usage(anyhow!("cannot read {}: {e}", path.display())))?;
            Ok(ShippedFile {
                reference: reference.clone(),
                base64: base64::engine::general_purpose::STANDARD.encode(bytes),
            })
        })
        .collect()
}

/// A failure before the start: exit 3, or 130 when Ctrl-C caused it.
fn interrupted_or(error: ClusterError, control: &RunControl) -> CliError {
    if control.is_interrupted() {
        return CliError { status: ExitStatus::Interrupted, error: anyhow!("interrupted before the start: {error}") };
    }
    CliError::cannot_start(anyhow!(error))
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// How big each agent's part is (`--agent-weights`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Weights {
    /// Named agents' weights; the others weigh 1 (no flag: all weigh 1).
    Named(BTreeMap<String, u64>),
    /// Each agent's CPUs, as it said when it joined.
    Cores,
}

impl Weights {
    /// `cores`, or `NAME=WEIGHT,...` with whole weights from 1 to 1000.
    fn parse(text: &str) -> Result<Weights, String> {
        if text.trim() == "cores" {
            return Ok(Weights::Cores);
        }
        parse_named_weights(text).map(Weights::Named)
    }

    /// The weight of the agent `name` with `cores` CPUs.
    fn of(&self, name: &str, cores: usize) -> u64 {
        match self {
            Weights::Named(weights) => weights.get(name).copied().unwrap_or(1),
            Weights::Cores => cores.max(1) as u64,
        }
    }

    /// The agents named.
    fn named(&self) -> impl Iterator<Item = &String> {
        match self {
            Weights::Named(weights) => Some(weights.keys()),
            Weights::Cores => None,
        }
        .into_iter()
        .flatten()
    }
}

/// `NAME=WEIGHT,...` of `--agent-weights`: whole weights from 1 to 1000.
fn parse_named_weights(text: &str) -> Result<BTreeMap<String, u64>, String> {
    let mut weights = BTreeMap::new();
    for item in text.split(',').map(str::trim).filter(|i| !i.is_empty()) {
        let (name, weight) = item.split_once('=').ok_or_else(|| format!("{item:?}: expected NAME=WEIGHT"))?;
        let weight: u64 = match weight.trim().parse() {
            Ok(w) if (1..=1000).contains(&w) => w,
            _ => return Err(format!("{item:?}: a weight is a whole number from 1 to 1000")),
        };
        if weights.insert(name.trim().to_string(), weight).is_some() {
            return Err(format!("{:?} is named twice", name.trim()));
        }
    }
    if weights.is_empty() {
        return Err("expected NAME=WEIGHT,... or cores".into());
    }
    Ok(weights)
}

/// Each agent's part (`--segment`, `--segment-sequence`) for its weight, in segment order:
/// `i/N` when every agent weighs the same, else consecutive ranges of one sequence, each as
/// long as its weight's share of all (weights 3 and 1: `0:3/4` and `3/4:1` of `0,3/4,1`).
fn weighted_parts(each: &[u64]) -> Vec<(String, Option<String>)> {
    let count = each.len() as u64;
    if each.windows(2).all(|w| w[0] == w[1]) {
        return (0..count).map(|i| (pummel_engine::plan::Segment::part(i, count).to_string(), None)).collect();
    }
    let total: u64 = each.iter().sum();
    let point = |sum: u64| -> String {
        let divisor = gcd(sum, total);
        match (sum / divisor, total / divisor) {
            (0, _) => "0".to_string(),
            (n, d) if n == d => "1".to_string(),
            (n, d) => format!("{n}/{d}"),
        }
    };
    let mut points = vec![point(0)];
    let mut sum = 0;
    for weight in each {
        sum += weight;
        points.push(point(sum));
    }
    let sequence = points.join(",");
    points.windows(2).map(|p| (format!("{}:{}", p[0], p[1]), Some(sequence.clone()))).collect()
}

/// The greatest common divisor (of a numerator and a denominator above 0).
fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a.max(1) } else { gcd(b, a % b) }
}

/// The request log of a run over agents: what every agent's log wrote and left out, in the
/// coordinator's file (`error`: the coordinator's own trouble writing it, or an agent's).
fn log_totals(path: &std::path::Path, figures: &[AgentFigures], error: Option<String>) -> RequestLogTotals {
    let mut totals = RequestLogTotals { path: path.display().to_string(), error, ..RequestLogTotals::default() };
    for f in figures {
        match &f.request_log {
            Some(agent) => {
                totals.written += agent.written;
                for (kind, n) in &agent.left_out {
                    *totals.left_out.entry(kind.clone()).or_default() += n;
                }
                if let Some(e) = &agent.error {
                    totals.error.get_or_insert_with(|| format!("agent {}: {e}", f.name));
                }
            }
            None => {
                totals.error.get_or_insert_with(|| format!("agent {} sent no totals of its log", f.name));
            }
        }
    }
    totals
}

/// The results' form of an agent's figures.
fn agent_summary(f: &AgentFigures) -> AgentSummary {
    AgentSummary {
        name: f.name.clone(),
        address: f.address.clone(),
        segment: f.segment.clone(),
        threads: f.shards,
        clock_offset_ms: f.clock_offset_ms,
        round_trip_ms: f.round_trip_ms,
        sent: f.sent,
        ok: f.ok,
        failed: f.failed,
        lag_p99_ms: f.lag_p99_ms,
        thread_busy_median_percent: f.thread_busy_median_percent,
        cpu_seconds: f.cpu_seconds,
        lost_at_s: f.lost.as_ref().map(|(at, _)| *at),
        lost_reason: f.lost.as_ref().map(|(_, why)| why.clone()),
    }
}

/// One line per agent: its part, clock, figures and health, so the bottleneck shows.
fn agents_table(agents: &[AgentSummary]) -> String {
    let mut out = format!(
        "{:<20} {:>7} {:>7} {:>10} {:>10} {:>8} {:>10} {:>9} {:>7}  {}\n",
        "agent", "segment", "threads", "sent", "ok", "failed", "lag p99", "busy p50", "cpu s", "clock"
    );
    for a in agents {
        let lag = a.lag_p99_ms.map(|l| format!("{l:.1}ms")).unwrap_or_else(|| "-".into());
        let busy = a.thread_busy_median_percent.map(|b| format!("{b:.0}%")).unwrap_or_else(|| "-".into());
        let mut clock = format!("{:+.1}ms ±{:.1}", a.clock_offset_ms, a.round_trip_ms / 2.0);
        if let (Some(at), Some(why)) = (a.lost_at_s, &a.lost_reason) {
            clock.push_str(&format!("  LOST at {at:.1}s: {why}"));
        }
        out.push_str(&format!(
            "{:<20} {:>7} {:>7} {:>10} {:>10} {:>8} {:>10} {:>9} {:>7.1}  {}\n",
            a.name, a.segment, a.threads, a.sent, a.ok, a.failed, lag, busy, a.cpu_seconds, clock
        ));
    }
    let offsets: Vec<f64> = agents.iter().map(|a| a.clock_offset_ms).collect();
    if offsets.len() > 1 {
        let skew = offsets.iter().cloned().fold(f64::MIN, f64::max) - offsets.iter().cloned().fold(f64::MAX, f64::min);
        out.push_str(&format!("clock skew between agents: {skew:.1} ms (corrected at the start)\n"));
    }
    out
}

/// The agent processes `--workers` starts on this machine, ended by PID if they outlive the run.
struct Workers {
    children: Vec<Child>,
}

impl Workers {
    fn none() -> Workers {
        Workers { children: Vec::new() }
    }

    /// Starts `count` `pummel agent` processes that dial `coordinator` with `token`.
    fn start(count: usize, coordinator: &str, token: &Token) -> Result<Workers, CliError> {
        let exe = std::env::current_exe()
            .map_err(|e| CliError::cannot_start(anyhow!("cannot find pummel's own binary: {e}")))?;
        let mut workers = Workers::none();
        for index in 0..count {
            // A process group of its own: Ctrl-C at the terminal reaches the coordinator, which
            // stops its workers through the protocol (and a worker whose coordinator is gone
            // stops by itself).
            let child = std::process::Command::new(&exe)
                .process_group(0)
                .args(["agent", "--quiet", "--coordinator", coordinator, "--name", &format!("worker-{}", index + 1)])
                .env(pummel_cluster::auth::TOKEN_ENV, token.text())
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .spawn()
                .map_err(|e| CliError::cannot_start(anyhow!("cannot start worker {}: {e}", index + 1)))?;
            workers.children.push(child);
        }
        Ok(workers)
    }

    /// Waits a little for the workers to end by themselves (they do once the run ends), then
    /// ends the rest.
    fn finish(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(5);
        for child in &mut self.children {
            while Instant::now() < deadline {
                match child.try_wait() {
                    Ok(Some(_)) | Err(_) => break,
                    Ok(None) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        }
        self.end();
    }

    /// Ends every worker still running (by its PID) and reaps it.
    fn end(&mut self) {
        for mut child in self.children.drain(..) {
            if let Ok(None) = child.try_wait() {
                let _ = child.kill();
            }
            let _ = child.wait();
        }
    }
}

impl Drop for Workers {
    fn drop(&mut self) {
        self.end();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn weights_make_consecutive_ranges_of_one_sequence() {
        let weights = Weights::parse("big=3, small=1").unwrap();
        let each: Vec<u64> = ["small", "big", "other"].iter().map(|n| weights.of(n, 8)).collect();
        let parts = weighted_parts(&each);
        let sequence = Some("0,1/5,4/5,1".to_string());
        assert_eq!(
            parts,
            [("0:1/5".to_string(), sequence.clone()), ("1/5:4/5".into(), sequence.clone()), ("4/5:1".into(), sequence)]
        );
        // Every part is a segment pummel reads, and together they cover the plan.
        let shares: u64 = parts
            .iter()
            .map(|(segment, sequence)| {
                pummel_engine::plan::Segment::parse(segment, sequence.as_deref()).expect("a segment").share(1000)
            })
            .sum();
        assert_eq!(shares, 1000);
        // Equal weights are the parts i/N, as without the flag.
        let equal = weighted_parts(&[2, 2]);
        assert_eq!(equal, [("1/2".to_string(), None), ("2/2".to_string(), None)]);
        // By cores: an agent of 6 CPUs beside one of 2 takes 3/4.
        let cores = Weights::parse("cores").unwrap();
        let parts = weighted_parts(&[cores.of("a", 6), cores.of("b", 2)]);
        assert_eq!(parts[0].0, "0:3/4");
        assert_eq!(cores.named().count(), 0);
        for bad in ["", "a", "a=0", "a=x", "a=1,a=2", "a=1001"] {
            assert!(Weights::parse(bad).is_err(), "{bad:?}");
        }
    }
}
