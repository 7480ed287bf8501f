//! The end-of-run summary, filled in from what a run measured ([`summarize`]); its types are
//! `pummel_results::summary`'s, the contract that `--json`, the results file, `report` and
//! `compare` share.

use std::collections::BTreeMap;
use std::time::Duration;

use pummel_results::expr::{Metric, MetricSource, Stat};
use pummel_results::histogram::{histogram_stat_ms, to_base64};
use pummel_results::summary::{
    AllLatencyFigures, BranchSummary, Bytes, CheckSummary, ConnectFigures, GeneratorFigures, LatencyFigures,
    NamedHistograms, NamedSummary, ProbeSummary, Rates, RequestCounts, ScenarioSummary, StageSummary, Summary,
    TargetSummary, ThresholdVerdict, TlsFigures,
};

use pummel_results::fault::{FaultSummary, SteadyState};
use pummel_results::recovery::judge;
use pummel_results::timeline::TimelineEntry;

use crate::engine::{RunOutcome, StopReason};
use crate::measure::stats::{Stats, StatsOver};
use crate::measure::tallies::FlowTallies;
use crate::observe::ProbeTotals;
use crate::plan::Plan;

/// The figures thresholds read: the request stats, plus the probes and the faults.
pub struct RunMetrics<'a> {
    /// Request stats over the measured time.
    pub stats: StatsOver<'a>,
    /// Share of OK probes over all probes, if any ran.
    pub probe_ok: Option<f64>,
    /// The run's faults with their recoveries (empty for the figures of one request name).
    pub faults: &'a [FaultSummary],
}

impl<'a> RunMetrics<'a> {
    /// The figures of `outcome`, whose faults were judged into `faults`.
    pub fn of(outcome: &'a RunOutcome, faults: &'a [FaultSummary]) -> Self {
        let (sent, ok) = outcome.probes.iter().fold((0, 0), |(s, o), p| (s + p.sent, o + p.ok));
        RunMetrics {
            stats: outcome.total.over(outcome.measured),
            probe_ok: (sent > 0).then(|| ok as f64 / sent as f64),
            faults,
        }
    }

    /// The slowest recovery, milliseconds; `None` without faults or when one did not recover.
    fn recovery_time(&self) -> Option<f64> {
        let recoveries: Option<Vec<f64>> =
            self.faults.iter().filter_map(|f| f.recovery).map(|r| r.recover_s.map(|s| s * 1000.0)).collect();
        recoveries?.into_iter().reduce(f64::max)
    }
}

impl MetricSource for RunMetrics<'_> {
    fn metric_value(&self, metric: &Metric) -> Option<f64> {
        match metric {
            Metric::ProbeOk => self.probe_ok,
            Metric::RecoveryTime => self.recovery_time(),
            Metric::FaultErrors => {
                let judged = self.faults.iter().filter_map(|f| f.recovery);
                judged.map(|r| r.failed as f64).reduce(|a, b| a + b)
            }
            other => self.stats.metric_value(other),
        }
    }
}

/// The run's faults, each with the target's recovery judged from the timeline's sending
/// window (`pummel_results::recovery`), and the steady state they were judged against.
pub fn fault_summaries(plan: &Plan, outcome: &RunOutcome) -> (Vec<FaultSummary>, Option<SteadyState>) {
    if outcome.faults.is_empty() {
        return (Vec::new(), None);
    }
    let sending_end = outcome.elapsed.as_secs_f64().ceil() as u64;
    let seconds: Vec<TimelineEntry> = outcome.timeline.iter().filter(|e| e.second <= sending_end).cloned().collect();
    let (steady, recoveries) = judge(&seconds, &outcome.faults, plan.faults.steady_state.unwrap_or_default());
    let faults = outcome
        .faults
        .iter()
        .zip(recoveries)
        .map(|(window, recovery)| FaultSummary { window: window.clone(), recovery })
        .collect();
    (faults, Some(steady))
}

/// A verdict of `recovery_time` says "did not recover" rather than "no data" when one fault
/// did not.
fn explain_recovery(verdict: &mut ThresholdVerdict, expr: &pummel_results::expr::Expr, faults: &[FaultSummary]) {
    if expr.metric == Metric::RecoveryTime && verdict.value.is_none() {
        let stuck: Vec<&str> = faults
            .iter()
            .filter(|f| f.recovery.is_some_and(|r| !r.recovered()))
            .map(|f| f.window.name.as_str())
            .collect();
        verdict.shown = Some(match stuck.as_slice() {
            [] => "no fault ran".to_string(),
            names => format!("did not recover ({})", names.join(", ")),
        });
    }
}

fn probe_summary(totals: &ProbeTotals) -> ProbeSummary {
    ProbeSummary {
        url: totals.url.clone(),
        sent: totals.sent,
        ok: totals.ok,
        ok_rate: totals.ok_rate(),
        latency_ms: LatencyFigures::from_histogram(&totals.latency),
        last_value: totals.last_value,
        max_value: totals.max_value,
    }
}

/// The TLS figures of `stats`; `None` when no TLS handshake completed.
pub fn tls_figures(stats: &Stats) -> Option<TlsFigures> {
    let h = &stats.tls_handshake_time;
    (!h.is_empty()).then(|| TlsFigures {
        count: h.len(),
        mean: histogram_stat_ms(h, &Stat::Mean),
        p99: histogram_stat_ms(h, &Stat::Percentile(99.0)),
        resumed: stats.tls_resumed,
    })
}

/// Adds the writes section (plans with writes) to `summary`, and judges the plan's thresholds
/// that read it (`lost`, `recovered`, `unexpected`, `unread`): before the read-back they had no
/// value.
pub fn add_writes(plan: &Plan, summary: &mut Summary, writes: pummel_results::writes::WritesSummary) {
    // The plan's own thresholds come first in the verdicts, in order; per-name ones follow.
    for (expr, verdict) in plan.thresholds.iter().zip(summary.thresholds.iter_mut()) {
        if expr.metric.is_of_writes() {
            *verdict = ThresholdVerdict::evaluate(expr, &writes);
            if verdict.value.is_none() {
                let why = writes.not_verified.as_deref().unwrap_or("no read-back");
                verdict.shown = Some(format!("not verified ({why})"));
            }
        }
    }
    summary.writes = Some(writes);
}

/// Builds the summary of `outcome` and evaluates the plan's thresholds on its totals.
pub fn summarize(plan: &Plan, outcome: &RunOutcome) -> Summary {
    let total = &outcome.total;
    let (aborted, interrupted) = match &outcome.stop {
        StopReason::Completed => (None, false),
        StopReason::Interrupted => (None, true),
        StopReason::Aborted(reason) => (Some(reason.clone()), false),
    };
    let view = total.over(outcome.measured);
    let (faults, steady_state) = fault_summaries(plan, outcome);
    let thresholds = plan
        .thresholds
        .iter()
        .map(|t| {
            let mut verdict = ThresholdVerdict::evaluate(t, &RunMetrics::of(outcome, &faults));
            explain_recovery(&mut verdict, t, &faults);
            verdict
        })
        .collect();
    let mut summary = Summary {
        pummel_version: crate::VERSION.to_string(),
        partial: outcome.stop != StopReason::Completed,
        aborted,
        interrupted,
        duration_s: outcome.measured.as_secs_f64(),
        requests: RequestCounts {
            sent: total.sent,
            completed: total.completed,
            ok: total.ok,
            failed: total.failed,
            dropped: total.dropped,
            unanswered: total.unanswered,
            redirects: total.redirects,
            error_rate: total.error_rate(),
        },
        rate: Rates {
            offered: plan.mean_target_rate(),
            sent: view.per_second(total.sent),
            achieved: view.achieved_rate(),
            failed: view.failed_rate(),
        },
        bytes: Bytes { received: total.bytes_in, sent: total.bytes_out, decoded: total.bytes_decoded },
        latency_ms: LatencyFigures::from_histogram(&total.latency),
        service_time_ms: LatencyFigures::from_histogram(&total.service_time),
        latency_all_ms: all_latency(total),
        connect_ms: ConnectFigures {
            count: total.connections_opened,
            reconnects: total.reconnects,
            mean: histogram_stat_ms(&total.connect_time, &Stat::Mean),
            p99: histogram_stat_ms(&total.connect_time, &Stat::Percentile(99.0)),
        },
        tls_ms: tls_figures(total),
        dns_ms: plan.target.dns_time.as_secs_f64() * 1000.0,
        errors: error_map(total),
        status: total.status_counts().map(|(code, n)| (code.to_string(), n)).collect(),
        thresholds,
        generator: GeneratorFigures {
            threads: outcome.generator.threads,
            cpu_seconds: outcome.generator.cpu_seconds,
            busiest_thread_percent: outcome.generator.busiest_thread_percent,
            schedule_lag_p99_ms: outcome.generator.lag_p99_ms,
        },
        limit: outcome.limit.clone(),
        drain_s: plan.drain_time().as_secs_f64(),
        seed: Some(plan.seed),
        stages: outcome
            .stages
            .iter()
            .map(|stage| stage_summary(stage.target_rate, stage.measured, &stage.stats, stage.note.clone()))
            .collect(),
        probes: outcome.probes.iter().map(probe_summary).collect(),
        target: outcome.target.clone(),
        by_name: Vec::new(),
        checks: Vec::new(),
        branches: Vec::new(),
        scenarios: Vec::new(),
        segment: None,
        segment_sequence: None,
        merged: None,
        by_target: Vec::new(),
        phases: Vec::new(),
        agents: Vec::new(),
        request_log: outcome.request_log.clone(),
        faults,
        steady_state,
        writes: None,
    };
    summary.segment = (!plan.segment.is_whole()).then(|| plan.segment.to_string());
    summary.segment_sequence = plan.segment.sequence_label().filter(|_| !plan.segment.is_whole());
    add_flows(&mut summary, plan, &outcome.flows, outcome.measured);
    add_targets(&mut summary, plan, &outcome.flows);
    summary
}

/// Adds each host's figures in a plan of several: the statistics of the names whose requests
/// go to it, merged (connections are counted under the name of the request that opened them).
fn add_targets(summary: &mut Summary, plan: &Plan, tallies: &FlowTallies) {
    if plan.target_count() < 2 {
        return;
    }
    for index in 0..plan.target_count() {
        let mut stats = Stats::default();
        for (named, figures) in plan.scenarios.names.iter().zip(&tallies.named) {
            if named.target == index && named.kind == "http" {
                stats.merge(figures);
            }
        }
        let target = plan.target_of(index);
        // Connections are the host's own, whichever request (or redirect) opened them.
        let opened = tallies.targets.get(index).cloned().unwrap_or_default();
        summary.by_target.push(TargetSummary {
            name: plan.target_name_of(index).to_string(),
            url: target.url.clone(),
            sent: stats.sent,
            ok: stats.ok,
            error_rate: stats.error_rate(),
            connect_ms: ConnectFigures {
                count: opened.connections_opened,
                reconnects: stats.reconnects,
                mean: histogram_stat_ms(&opened.connect_time, &Stat::Mean),
                p99: histogram_stat_ms(&opened.connect_time, &Stat::Percentile(99.0)),
            },
            tls_ms: tls_figures(&opened),
            dns_ms: target.dns_time.as_secs_f64() * 1000.0,
            errors: error_map(&stats),
        });
    }
}

/// Adds a plan file's figures: per name (with its thresholds judged), checks, branches.
fn add_flows(summary: &mut Summary, plan: &Plan, tallies: &FlowTallies, measured: Duration) {
    let scenarios = &plan.scenarios;
    for (index, named) in scenarios.names.iter().enumerate() {
        let Some(stats) = tallies.named.get(index) else { continue };
        summary.by_name.push(NamedSummary {
            name: named.name.clone(),
            scenario: scenarios.list.get(named.scenario).map(|s| s.name.clone()).unwrap_or_default(),
            kind: named.kind.to_string(),
            sent: stats.sent,
            completed: stats.completed,
            ok: stats.ok,
            error_rate: stats.error_rate(),
            rate: stats.over(measured).achieved_rate(),
            latency_ms: LatencyFigures::from_histogram(&stats.latency),
            errors: error_map(stats),
            target: (plan.target_count() > 1).then(|| plan.target_name_of(named.target).to_string()),
            // A segment's, for `pummel merge`: its figures and thresholds are recomputed exactly.
            histograms: (!plan.segment.is_whole()).then(|| NamedHistograms {
                latency: to_base64(&stats.latency),
                service_time: to_base64(&stats.service_time),
                latency_all: to_base64(&stats.latency_all),
            }),
        });
        for (name, exprs) in &scenarios.named_thresholds {
            if name != &named.name {
                continue;
            }
            let metrics = RunMetrics { stats: stats.over(measured), probe_ok: None, faults: &[] };
            for expr in exprs {
                let mut verdict = ThresholdVerdict::evaluate(expr, &metrics);
                verdict.expr = format!("{name}: {}", verdict.expr);
                summary.thresholds.push(verdict);
            }
        }
    }
    for (name, tally) in scenarios.checks.iter().zip(&tallies.checks) {
        let runs = tally[0] + tally[1];
        summary.checks.push(CheckSummary {
            name: name.clone(),
            passed: tally[0],
            failed: tally[1],
            pass_rate: (runs > 0).then(|| tally[0] as f64 / runs as f64),
        });
    }
    let all_taken: u64 = tallies.branches.iter().sum();
    for (name, &taken) in scenarios.branches.iter().zip(&tallies.branches) {
        summary.branches.push(BranchSummary {
            name: name.clone(),
            taken,
            share: (all_taken > 0).then(|| taken as f64 / all_taken as f64),
        });
    }
    // A quick run (its one request has no name of its own) has no scenario to list.
    let quick = scenarios.names.is_empty();
    for (index, (scenario, &iterations)) in scenarios.list.iter().zip(&tallies.iterations).enumerate() {
        if quick {
            break;
        }
        let window = tallies.windows.get(index).copied().flatten();
        summary.scenarios.push(ScenarioSummary {
            name: scenario.name.clone(),
            iterations,
            started_s: window.map(|w| round_ms(w.started)),
            ended_s: window.and_then(|w| w.ended).map(round_ms),
        });
    }
}

/// Seconds, to the millisecond.
pub(crate) fn round_ms(d: std::time::Duration) -> f64 {
    (d.as_secs_f64() * 1000.0).round() / 1000.0
}

/// The latency figures of every request that ended, with where they become lower bounds.
pub fn all_latency(stats: &Stats) -> Option<AllLatencyFigures> {
    LatencyFigures::from_histogram(&stats.latency_all).map(|figures| AllLatencyFigures {
        figures,
        given_up: stats.given_up,
        // As the histogram holds it (3 significant digits), so that the figure recorded for
        // the first request given up compares as "at or above" it.
        given_up_from_ms: stats.given_up_min.map(|d| {
            let micros = u64::try_from(d.as_micros()).unwrap_or(u64::MAX);
            stats.latency_all.lowest_equivalent(micros) as f64 / 1000.0
        }),
    })
}

/// Builds one stage's row.
pub fn stage_summary(
    target_rate: Option<f64>,
    measured: Duration,
    stats: &Stats,
    note: Option<String>,
) -> StageSummary {
    StageSummary {
        target_rate,
        duration_s: measured.as_secs_f64(),
        achieved_rate: stats.over(measured).achieved_rate(),
        sent: stats.sent,
        ok: stats.ok,
        completed: stats.completed,
        failed: stats.failed,
        unanswered: stats.unanswered,
        dropped: stats.dropped,
        error_rate: stats.error_rate(),
        latency_ms: LatencyFigures::from_histogram(&stats.latency),
        latency_all_p99_ms: histogram_stat_ms(&stats.latency_all, &Stat::Percentile(99.0)),
        top_error: stats.errors.non_zero().max_by_key(|&(_, n)| n).map(|(k, _)| k.name().to_string()),
        note,
    }
}

fn error_map(stats: &Stats) -> BTreeMap<String, u64> {
    stats.errors.non_zero().map(|(k, n)| (k.name().to_string(), n)).collect()
}
