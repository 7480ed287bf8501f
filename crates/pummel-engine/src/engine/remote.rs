//! Shards in other processes: what an agent's shards report, in a form that crosses a wire,
//! and the two ends of a run spread over processes.
//!
//! An agent runs its segment of the plan on shards of its own ([`run_shards`]) and hands every
//! report on as a [`WireReport`] instead of merging it. A coordinator runs the very collector a
//! local run uses ([`run_remote`]), fed with those reports ([`Inbound`]): its timeline, live
//! view, abort rules, thresholds and summary are global, and exact, because every histogram
//! crosses the wire whole (HdrHistogram V2 + DEFLATE) and merges without loss.

use std::collections::BTreeMap;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::time::{Duration, Instant, SystemTime};

use pummel_results::error_kind::ErrorCounts;
use pummel_results::histogram::{LatencyHistogram, from_base64, to_base64};
use pummel_results::timeline::TimelineEntry;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::collector::{self, CpuClock, Source};
use super::live::NameCounts;
use super::shard::ShardReport;
use super::{EngineError, RunControl, RunOutcome};
use crate::measure::stats::Stats;
use crate::measure::tallies::{FlowTallies, ScenarioWindow};
use crate::plan::Plan;
use crate::request_log::{LineSink, RequestLogTotals, Writer as RequestLogWriter};

/// How many shards this process runs `plan` on: what an agent tells its coordinator.
pub fn shard_count(plan: &Plan) -> usize {
    collector::effective_shards(plan)
}

/// Runs `plan` (an agent's segment of it, starting at `plan.start_at`) on this process's shards
/// and hands each report to `forward` as it comes, until every shard has finished or
/// `forward` returns false. `control` stops the shards early (the coordinator said stop).
///
/// With a request log in the plan (`--log-requests`), its lines go to `log` (the way to the
/// coordinator, which writes every agent's lines into its one file), bounded by this
/// segment's share of the per-second bound; what it wrote and left out is returned.
pub fn run_shards(
    plan: &Plan,
    control: &RunControl,
    mut forward: impl FnMut(WireReport) -> bool,
    log: Option<Box<dyn LineSink>>,
) -> Result<Option<RequestLogTotals>, EngineError> {
    plan.validate()?;
    let shards = shard_count(plan);
    let start = match plan.start_at {
        Some(at) => Instant::now() + at.duration_since(SystemTime::now()).unwrap_or_default(),
        None => Instant::now(),
    };
    let request_log = match (&plan.request_log, log) {
        (Some(spec), Some(sink)) => {
            let mut share = spec.clone();
            share.per_second = ((f64::from(spec.per_second) * plan.segment.fraction()).ceil() as u32).max(1);
            let writer = RequestLogWriter::start_into(&share, plan.scenarios.clone(), collector::base_url(plan), sink)
                .map_err(|source| EngineError::RequestLog { path: spec.path.display().to_string(), source })?;
            Some(writer)
        }
        _ => None,
    };
    let stop = control.token().child_token();
    let (reports_tx, reports) = channel();
    let links = collector::ShardLinks { log: request_log.as_ref().map(RequestLogWriter::link), writes: None };
    let threads = collector::spawn_shards(plan, shards, start, &stop, &reports_tx, links)?;
    drop(reports_tx);
    for report in reports {
        let Some(wire) = WireReport::of(&report) else { continue };
        if !forward(wire) {
            stop.cancel();
            break;
        }
    }
    for thread in threads {
        let _ = thread.join();
    }
    // Every shard's log went with its thread: the writer has all there is.
    Ok(request_log.map(RequestLogWriter::finish))
}

/// The shards of agents, as a coordinator sees them.
pub struct RemoteShards {
    /// How many shards every agent runs, together.
    pub shards: usize,
    /// The agreed start, on this machine's clocks.
    pub start: Instant,
    /// The agreed start as wall-clock time.
    pub started_at: SystemTime,
    /// The agents' reports (and losses), relayed by the caller; the run ends when every shard
    /// finished or was lost and every sender is dropped.
    pub inbox: Receiver<Inbound>,
    /// Cancelled by the collector when an abort rule holds; the caller tells the agents to stop.
    pub stop: CancellationToken,
    /// Every agent's CPU time since the start, as last reported.
    pub cpu: CpuClock,
    /// The target, watched by an agent on its machine (`pummel agent --watch-only`): asked for
    /// a sample at every second, as a local watch is.
    pub watch: Option<Box<dyn crate::observe::Sampler>>,
    /// Each agent's name and how many shards it runs, in shard order (its shards follow the
    /// previous agent's): the live feed's per-agent counts.
    pub agents: Vec<(String, usize)>,
}

impl RemoteShards {
    /// A channel for the caller to relay reports on, and its receiving end for
    /// [`RemoteShards::inbox`].
    pub fn channel() -> (Sender<Inbound>, Receiver<Inbound>) {
        channel()
    }
}

/// Runs the collector over shards in other processes: the coordinator's half of a distributed
/// run. `plan` is the whole plan (not a segment); its observers and faults run here.
pub fn run_remote(
    plan: &Plan,
    control: &RunControl,
    remote: RemoteShards,
    on_second: impl FnMut(&TimelineEntry),
) -> Result<RunOutcome, EngineError> {
    plan.validate()?;
    collector::run(plan, control, Source::Remote(remote), on_second)
}

/// One report of a shard elsewhere, decoded and numbered among all the run's shards.
pub struct Inbound(pub(super) ShardReport);

impl Inbound {
    /// Decodes `wire`, a report of the agent whose shards are numbered from `first_shard` in
    /// the run; `shards` is how many it runs (a report of another shard is refused).
    pub fn decode(wire: WireReport, first_shard: usize, shards: usize) -> Result<Inbound, WireError> {
        let local = |shard: usize| {
            if shard < shards { Ok(first_shard + shard) } else { Err(WireError::Shard(shard)) }
        };
        Ok(Inbound(match wire {
            WireReport::Second {
                shard,
                second,
                stats,
                in_flight,
                waiting,
                connections,
                thread_busy,
                started,
                named,
            } => ShardReport::Second {
                shard: local(shard)?,
                second,
                stats: Box::new(stats.decode()?),
                in_flight,
                waiting,
                connections,
                thread_busy,
                started,
                named: named.into_iter().map(WireNameCounts::decode).collect(),
            },
            WireReport::Finished {
                shard,
                tail_second,
                tail,
                tail_named,
                stages,
                flows,
                other_errors,
                sending_stopped_us,
                thread_busy,
                started,
            } => ShardReport::Finished {
                shard: local(shard)?,
                tail_second,
                tail: Box::new(tail.decode()?),
                tail_named: tail_named.into_iter().map(WireNameCounts::decode).collect(),
                stages: stages.into_iter().map(WireStats::decode).collect::<Result<_, _>>()?,
                flows: Box::new((*flows).decode()?),
                other_errors,
                sending_stopped: Duration::from_micros(sending_stopped_us),
                thread_busy,
                started,
            },
        }))
    }

    /// Shard `shard` of the run will report no more; with `abort`, the run ends for that reason.
    pub fn gone(shard: usize, abort: Option<String>) -> Inbound {
        Inbound(ShardReport::Gone { shard, abort })
    }

    /// The requests this report counts, for a per-agent breakdown: sent, ok, failed.
    pub fn counts(&self) -> (u64, u64, u64) {
        match &self.0 {
            ShardReport::Second { stats, .. } => (stats.sent, stats.ok, stats.failed),
            ShardReport::Finished { tail, .. } => (tail.sent, tail.ok, tail.failed),
            ShardReport::Gone { .. } => (0, 0, 0),
        }
    }

    /// The schedule lag this report measured (open model), for a per-agent breakdown.
    pub fn schedule_lag(&self) -> Option<&LatencyHistogram> {
        match &self.0 {
            ShardReport::Second { stats, .. } => Some(&stats.schedule_lag),
            ShardReport::Finished { tail, .. } => Some(&tail.schedule_lag),
            ShardReport::Gone { .. } => None,
        }
    }

    /// How busy the shard's thread was in the report's second (a share of one core).
    pub fn thread_busy(&self) -> Option<f64> {
        match &self.0 {
            ShardReport::Second { thread_busy, .. } | ShardReport::Finished { thread_busy, .. } => Some(*thread_busy),
            ShardReport::Gone { .. } => None,
        }
    }

    /// The shard (numbered among all the run's shards) this report is of.
    pub fn shard(&self) -> usize {
        match &self.0 {
            ShardReport::Second { shard, .. }
            | ShardReport::Finished { shard, .. }
            | ShardReport::Gone { shard, .. } => *shard,
        }
    }

    /// True for a shard's last report.
    pub fn is_final(&self) -> bool {
        matches!(self.0, ShardReport::Finished { .. } | ShardReport::Gone { .. })
    }
}

/// Why an agent's report cannot be used: it came from a broken or hostile peer.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// A histogram did not decode.
    #[error(transparent)]
    Histogram(#[from] pummel_results::histogram::HistogramDecodeError),
    /// The report names a shard the agent does not run.
    #[error("a report of shard {0}, which the agent does not run")]
    Shard(usize),
}

/// A shard's report, as it crosses the wire (see [`Inbound::decode`]).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
#[allow(missing_docs)] // the fields are `ShardReport`'s, documented there
pub enum WireReport {
    /// One second of one shard.
    Second {
        shard: usize,
        second: u64,
        stats: WireStats,
        in_flight: u64,
        waiting: u64,
        connections: u64,
        thread_busy: f64,
        started: Vec<usize>,
        named: Vec<WireNameCounts>,
    },
    /// The shard's end: its tail and totals.
    Finished {
        shard: usize,
        tail_second: u64,
        tail: WireStats,
        tail_named: Vec<WireNameCounts>,
        stages: Vec<WireStats>,
        flows: Box<WireTallies>,
        other_errors: Vec<String>,
        sending_stopped_us: u64,
        thread_busy: f64,
        started: Vec<usize>,
    },
}

impl WireReport {
    /// The wire form of a local shard's report (`None` for `Gone`, which only a coordinator
    /// makes up).
    fn of(report: &ShardReport) -> Option<WireReport> {
        Some(match report {
            ShardReport::Second {
                shard,
                second,
                stats,
                in_flight,
                waiting,
                connections,
                thread_busy,
                started,
                named,
            } => WireReport::Second {
                shard: *shard,
                second: *second,
                stats: WireStats::from(stats.as_ref()),
                in_flight: *in_flight,
                waiting: *waiting,
                connections: *connections,
                thread_busy: *thread_busy,
                started: started.clone(),
                named: named.iter().map(WireNameCounts::from).collect(),
            },
            ShardReport::Finished {
                shard,
                tail_second,
                tail,
                tail_named,
                stages,
                flows,
                other_errors,
                sending_stopped,
                thread_busy,
                started,
            } => WireReport::Finished {
                shard: *shard,
                tail_second: *tail_second,
                tail: WireStats::from(tail.as_ref()),
                tail_named: tail_named.iter().map(WireNameCounts::from).collect(),
                stages: stages.iter().map(WireStats::from).collect(),
                flows: Box::new(WireTallies::from(flows.as_ref())),
                other_errors: other_errors.clone(),
                sending_stopped_us: sending_stopped.as_micros() as u64,
                thread_busy: *thread_busy,
                started: started.clone(),
            },
            ShardReport::Gone { .. } => return None,
        })
    }
}

/// [`Stats`] on the wire: the counters as they are, the histograms whole.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)] // the fields are `Stats`'s, documented there
pub struct WireStats {
    pub sent: u64,
    pub completed: u64,
    pub ok: u64,
    pub failed: u64,
    pub dropped: u64,
    pub unanswered: u64,
    pub window_ok: u64,
    pub window_failed: u64,
    pub reconnects: u64,
    pub redirects: u64,
    /// One count per error kind, in `ErrorKind::ALL`'s order.
    pub errors: Vec<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub bytes_decoded: u64,
    pub connections_opened: u64,
    pub closed_by_peer: u64,
    pub given_up: u64,
    pub given_up_min_us: Option<u64>,
    pub tls_resumed: u64,
    /// `(status, count)` of the statuses seen.
    pub status: Vec<(u16, u64)>,
    /// latency, service_time, latency_all, connect_time, tls_handshake_time, schedule_lag;
    /// each HdrHistogram V2 + DEFLATE, base64; empty ones as "".
    pub histograms: [String; 6],
}

fn encode(histogram: &LatencyHistogram) -> String {
    if histogram.is_empty() { String::new() } else { to_base64(histogram) }
}

fn decode(text: &str) -> Result<LatencyHistogram, WireError> {
    if text.is_empty() { Ok(pummel_results::histogram::new_histogram()) } else { Ok(from_base64(text)?) }
}

impl From<&Stats> for WireStats {
    fn from(s: &Stats) -> WireStats {
        WireStats {
            sent: s.sent,
            completed: s.completed,
            ok: s.ok,
            failed: s.failed,
            dropped: s.dropped,
            unanswered: s.unanswered,
            window_ok: s.window_ok,
            window_failed: s.window_failed,
            reconnects: s.reconnects,
            redirects: s.redirects,
            errors: s.errors.0.to_vec(),
            bytes_in: s.bytes_in,
            bytes_out: s.bytes_out,
            bytes_decoded: s.bytes_decoded,
            connections_opened: s.connections_opened,
            closed_by_peer: s.closed_by_peer,
            given_up: s.given_up,
            given_up_min_us: s.given_up_min.map(|d| d.as_micros() as u64),
            tls_resumed: s.tls_resumed,
            status: s.status_counts().collect(),
            histograms: [
                encode(&s.latency),
                encode(&s.service_time),
                encode(&s.latency_all),
                encode(&s.connect_time),
                encode(&s.tls_handshake_time),
                encode(&s.schedule_lag),
            ],
        }
    }
}

impl WireStats {
    /// Back to [`Stats`]; a histogram that does not decode is an error.
    pub fn decode(self) -> Result<Stats, WireError> {
        let mut errors = ErrorCounts::default();
        for (slot, n) in errors.0.iter_mut().zip(&self.errors) {
            *slot = *n;
        }
        let [latency, service_time, latency_all, connect_time, tls_handshake_time, schedule_lag] = &self.histograms;
        let mut stats = Stats::default();
        stats.sent = self.sent;
        stats.completed = self.completed;
        stats.ok = self.ok;
        stats.failed = self.failed;
        stats.dropped = self.dropped;
        stats.unanswered = self.unanswered;
        stats.window_ok = self.window_ok;
        stats.window_failed = self.window_failed;
        stats.reconnects = self.reconnects;
        stats.redirects = self.redirects;
        stats.errors = errors;
        stats.bytes_in = self.bytes_in;
        stats.bytes_out = self.bytes_out;
        stats.bytes_decoded = self.bytes_decoded;
        stats.connections_opened = self.connections_opened;
        stats.closed_by_peer = self.closed_by_peer;
        stats.latency = decode(latency)?;
        stats.service_time = decode(service_time)?;
        stats.latency_all = decode(latency_all)?;
        stats.given_up = self.given_up;
        stats.given_up_min = self.given_up_min_us.map(Duration::from_micros);
        stats.connect_time = decode(connect_time)?;
        stats.tls_handshake_time = decode(tls_handshake_time)?;
        stats.tls_resumed = self.tls_resumed;
        stats.schedule_lag = decode(schedule_lag)?;
        for (code, n) in self.status {
            stats.add_status(code, n);
        }
        Ok(stats)
    }
}

/// [`NameCounts`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)] // the fields are `NameCounts`'s
pub struct WireNameCounts {
    pub sent: u64,
    pub ok: u64,
    pub failed: u64,
    pub errors: Vec<u64>,
}

impl From<&NameCounts> for WireNameCounts {
    fn from(n: &NameCounts) -> Self {
        WireNameCounts { sent: n.sent, ok: n.ok, failed: n.failed, errors: n.errors.0.to_vec() }
    }
}

impl WireNameCounts {
    fn decode(self) -> NameCounts {
        let mut errors = ErrorCounts::default();
        for (slot, n) in errors.0.iter_mut().zip(&self.errors) {
            *slot = *n;
        }
        NameCounts { sent: self.sent, ok: self.ok, failed: self.failed, errors }
    }
}

/// [`FlowTallies`] on the wire.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[allow(missing_docs)] // the fields are `FlowTallies`'s
pub struct WireTallies {
    pub named: Vec<WireStats>,
    pub checks: Vec<[u64; 2]>,
    pub branches: Vec<u64>,
    pub iterations: Vec<u64>,
    /// `(started, ended)` in microseconds from the start.
    pub windows: Vec<Option<(u64, Option<u64>)>>,
    pub targets: Vec<WireStats>,
    pub exports: BTreeMap<String, Vec<String>>,
    /// The writes by outcome (a read-back does not run over agents).
    #[serde(default)]
    pub write_outcomes: [u64; 4],
}

impl From<&FlowTallies> for WireTallies {
    fn from(t: &FlowTallies) -> Self {
        WireTallies {
            named: t.named.iter().map(WireStats::from).collect(),
            checks: t.checks.clone(),
            branches: t.branches.clone(),
            iterations: t.iterations.clone(),
            windows: t
                .windows
                .iter()
                .map(|w| w.map(|w| (w.started.as_micros() as u64, w.ended.map(|e| e.as_micros() as u64))))
                .collect(),
            targets: t.targets.iter().map(WireStats::from).collect(),
            exports: t.exports.clone(),
            write_outcomes: t.writes.outcomes,
        }
    }
}

impl WireTallies {
    fn decode(self) -> Result<FlowTallies, WireError> {
        Ok(FlowTallies {
            named: self.named.into_iter().map(WireStats::decode).collect::<Result<_, _>>()?,
            checks: self.checks,
            branches: self.branches,
            iterations: self.iterations,
            windows: self
                .windows
                .into_iter()
                .map(|w| {
                    w.map(|(started, ended)| ScenarioWindow {
                        started: Duration::from_micros(started),
                        ended: ended.map(Duration::from_micros),
                    })
                })
                .collect(),
            targets: self.targets.into_iter().map(WireStats::decode).collect::<Result<_, _>>()?,
            exports: self.exports,
            writes: crate::writes::judge::WriteTallies { outcomes: self.write_outcomes, ..Default::default() },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pummel_results::histogram::record;

    #[test]
    fn stats_cross_the_wire_unchanged() {
        let mut stats = Stats::default();
        for ms in [1u64, 5, 9, 250, 1200] {
            stats.record_response(200, true, Duration::from_millis(ms), Duration::from_millis(ms / 2));
        }
        stats.record_response(503, false, Duration::from_millis(3), Duration::from_millis(3));
        record(&mut stats.schedule_lag, Duration::from_micros(420));
        stats.given_up_min = Some(Duration::from_millis(30));
        let json = serde_json::to_string(&WireStats::from(&stats)).unwrap();
        let back = serde_json::from_str::<WireStats>(&json).unwrap().decode().unwrap();
        assert_eq!(back.ok, 5);
        assert_eq!(back.failed, 1);
        assert_eq!(back.latency, stats.latency);
        assert_eq!(back.schedule_lag, stats.schedule_lag);
        assert_eq!(back.errors, stats.errors);
        assert_eq!(back.given_up_min, stats.given_up_min);
        assert_eq!(back.status_counts().collect::<Vec<_>>(), stats.status_counts().collect::<Vec<_>>());
    }

    #[test]
    fn a_bad_histogram_or_shard_is_refused() {
        let mut wire = WireStats::from(&Stats::default());
        wire.histograms[0] = "not base64!".into();
        assert!(wire.decode().is_err());
        let report = WireReport::Second {
            shard: 3,
            second: 1,
            stats: WireStats::from(&Stats::default()),
            in_flight: 0,
            waiting: 0,
            connections: 0,
            thread_busy: 0.0,
            started: Vec::new(),
            named: Vec::new(),
        };
        assert!(matches!(Inbound::decode(report, 0, 2), Err(WireError::Shard(3))));
    }
}
