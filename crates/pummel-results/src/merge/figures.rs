//! The merged summary: counts summed, every latency figure read from merged histograms, rates
//! over the merged window, thresholds judged again on the merged figures. What cannot be
//! joined exactly is taken from one segment and noted.

use std::collections::BTreeMap;

use super::seconds::{Sources, telling};
use super::{MergeError, MergedHistograms, Part, sum_histograms};
use crate::error_kind::ErrorKind;
use crate::expr::{Expr, Metric, MetricSource, Stat};
use crate::fault::FaultSummary;
use crate::histogram::{LatencyHistogram, histogram_stat_ms, new_histogram, to_base64};
use crate::summary::{
    AllLatencyFigures, BranchSummary, Bytes, CheckSummary, ConnectFigures, GeneratorFigures, LatencyFigures,
    NamedHistograms, NamedSummary, PhaseSummary, ProbeSummary, Rates, RequestCounts, ScenarioSummary, StageSummary,
    Summary, TargetSummary, ThresholdVerdict, TlsFigures,
};

/// A count that was written as a rate over a duration (`rate × duration_s`), read back. The
/// rate was the count divided by the duration, so rounding recovers the count exactly.
fn count_of(rate: f64, duration_s: f64) -> u64 {
    (rate * duration_s).round().max(0.0) as u64
}

fn per_second(count: u64, duration_s: f64) -> f64 {
    if duration_s > 0.0 { count as f64 / duration_s } else { 0.0 }
}

fn ratio(part: u64, whole: u64) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

fn add_counts(into: &mut BTreeMap<String, u64>, from: &BTreeMap<String, u64>) {
    for (key, n) in from {
        *into.entry(key.clone()).or_default() += n;
    }
}

fn max_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.max(b)),
        (a, b) => a.or(b),
    }
}

fn add_opt(a: Option<f64>, b: Option<f64>) -> Option<f64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a + b),
        (a, b) => a.or(b),
    }
}

/// Where each part sits: the merged window runs from the earliest start to the latest end.
fn merged_duration(parts: &[Part<'_>]) -> f64 {
    parts.iter().map(|p| p.offset_ms as f64 / 1000.0 + p.doc.summary.duration_s).fold(0.0, f64::max)
}

/// The merged summary of `parts` (the timeline already merged), with its notes.
pub(super) fn summary(
    parts: &[Part<'_>],
    h: &MergedHistograms,
    sources: Sources,
    notes: &mut Vec<String>,
) -> Result<Summary, MergeError> {
    let first = &parts[0].doc.summary;
    let duration_s = merged_duration(parts);
    let sum = |f: &dyn Fn(&Summary) -> u64| parts.iter().map(|p| f(&p.doc.summary)).sum::<u64>();

    let mut requests = RequestCounts {
        sent: sum(&|s| s.requests.sent),
        completed: sum(&|s| s.requests.completed),
        ok: sum(&|s| s.requests.ok),
        failed: sum(&|s| s.requests.failed),
        unanswered: sum(&|s| s.requests.unanswered),
        redirects: sum(&|s| s.requests.redirects),
        dropped: sum(&|s| s.requests.dropped),
        error_rate: 0.0,
    };
    requests.error_rate = ratio(requests.failed, requests.completed);
    let window_ok = sum(&|s| count_of(s.rate.achieved, s.duration_s));
    let window_failed = sum(&|s| count_of(s.rate.failed, s.duration_s));
    let rate = Rates {
        // Each segment was offered its share of the plan's rate.
        offered: parts.iter().map(|p| p.doc.summary.rate.offered).fold(None, add_opt),
        sent: per_second(requests.sent, duration_s),
        achieved: per_second(window_ok, duration_s),
        failed: per_second(window_failed, duration_s),
    };
    let mut errors = BTreeMap::new();
    let mut status = BTreeMap::new();
    for part in parts {
        add_counts(&mut errors, &part.doc.summary.errors);
        add_counts(&mut status, &part.doc.summary.status);
    }
    let given_up_from_ms =
        parts.iter().filter_map(|p| p.doc.summary.latency_all_ms.and_then(|a| a.given_up_from_ms)).reduce(f64::min);
    let latency_all_ms = LatencyFigures::from_histogram(&h.latency_all).map(|figures| AllLatencyFigures {
        figures,
        given_up: parts.iter().filter_map(|p| p.doc.summary.latency_all_ms).map(|a| a.given_up).sum(),
        given_up_from_ms,
    });

    let seeds: Vec<Option<u64>> = parts.iter().map(|p| p.doc.summary.seed).collect();
    let seed = if seeds.windows(2).all(|w| w[0] == w[1]) {
        first.seed
    } else {
        notes.push("the segments ran with different seeds (no --seed): the merged summary has none".into());
        None
    };
    let versions: Vec<&str> = parts.iter().map(|p| p.doc.pummel_version.as_str()).collect();
    if versions.windows(2).any(|w| w[0] != w[1]) {
        notes.push(format!("the segments were run by different pummel versions: {}", versions.join(", ")));
    }

    let observers = sources.observers.map(|i| &parts[i]);
    if let Some(part) = observers {
        let others = parts.iter().filter(|p| !p.doc.summary.probes.is_empty() || p.doc.summary.target.is_some());
        if others.count() > 1 {
            notes.push(format!(
                "probes and the target watch are segment {}'s ({}); other segments' are left out",
                part.label, part.source
            ));
        }
    }
    let probes: Vec<ProbeSummary> = observers.map(|p| p.doc.summary.probes.clone()).unwrap_or_default();
    let faults_part = sources.faults.map(|i| &parts[i]);
    let (faults, steady_state) = match faults_part {
        Some(part) => {
            notes.push(format!(
                "faults and their recoveries are segment {}'s ({}), judged on its own traffic",
                part.label, part.source
            ));
            let shift = part.offset_ms as f64 / 1000.0;
            let faults = part.doc.summary.faults.iter().cloned().map(|mut f| {
                f.window.started_s = f.window.started_s.map(|s| s + shift);
                f.window.ended_s = f.window.ended_s.map(|s| s + shift);
                f
            });
            (faults.collect(), part.doc.summary.steady_state)
        }
        None => (Vec::new(), None),
    };

    let mut summary = Summary {
        pummel_version: first.pummel_version.clone(),
        partial: parts.iter().any(|p| p.doc.summary.partial),
        aborted: joined(parts, |s| s.aborted.as_deref()),
        interrupted: parts.iter().any(|p| p.doc.summary.interrupted),
        duration_s,
        requests,
        rate,
        bytes: Bytes {
            received: sum(&|s| s.bytes.received),
            sent: sum(&|s| s.bytes.sent),
            decoded: sum(&|s| s.bytes.decoded),
        },
        latency_ms: LatencyFigures::from_histogram(&h.latency),
        service_time_ms: LatencyFigures::from_histogram(&h.service_time),
        latency_all_ms,
        connect_ms: ConnectFigures {
            count: sum(&|s| s.connect_ms.count),
            reconnects: sum(&|s| s.connect_ms.reconnects),
            mean: histogram_stat_ms(&h.connect_time, &Stat::Mean),
            p99: histogram_stat_ms(&h.connect_time, &Stat::Percentile(99.0)),
        },
        tls_ms: tls(parts, h.tls_handshake.as_ref()),
        // Each process resolved the names once; the slowest is the one that delayed a start.
        dns_ms: parts.iter().map(|p| p.doc.summary.dns_ms).fold(0.0, f64::max),
        errors,
        status,
        thresholds: Vec::new(),
        generator: GeneratorFigures {
            threads: parts.iter().map(|p| p.doc.summary.generator.threads).sum(),
            cpu_seconds: parts.iter().map(|p| p.doc.summary.generator.cpu_seconds).sum(),
            busiest_thread_percent: parts
                .iter()
                .map(|p| p.doc.summary.generator.busiest_thread_percent)
                .fold(None, max_opt),
            schedule_lag_p99_ms: histogram_stat_ms(&h.schedule_lag, &Stat::Percentile(99.0)),
        },
        limit: limit(parts, notes),
        seed,
        drain_s: parts.iter().map(|p| p.doc.summary.drain_s).fold(0.0, f64::max),
        stages: stages(parts, notes)?,
        probes,
        target: observers.and_then(|p| p.doc.summary.target.clone()),
        by_name: by_name(parts, duration_s)?,
        checks: checks(parts),
        branches: branches(parts),
        scenarios: scenarios(parts),
        segment: None,
        segment_sequence: None,
        merged: None,
        by_target: by_target(parts, notes),
        phases: phases(parts),
        request_log: None,
        faults,
        steady_state,
        agents: Vec::new(),
        writes: None,
    };
    if parts.iter().any(|p| p.doc.summary.request_log.is_some()) {
        notes.push("request logs stay with their segments (--log-requests wrote one file per process)".into());
    }
    summary.thresholds = thresholds(parts, &summary, h, window_ok)?;
    Ok(summary)
}

/// Each segment's `pick`, labelled with its segment and joined; `None` when none has one.
fn joined(parts: &[Part<'_>], pick: impl Fn(&Summary) -> Option<&str>) -> Option<String> {
    let all: Vec<String> =
        parts.iter().filter_map(|p| pick(&p.doc.summary).map(|text| format!("segment {}: {text}", p.label))).collect();
    (!all.is_empty()).then(|| all.join("; "))
}

/// TLS handshakes: counts summed, figures from the merged histogram (when every segment that
/// made handshakes wrote one; else the mean weighted by count, and no p99).
fn tls(parts: &[Part<'_>], merged: Option<&LatencyHistogram>) -> Option<TlsFigures> {
    let all: Vec<TlsFigures> = parts.iter().filter_map(|p| p.doc.summary.tls_ms).collect();
    if all.is_empty() {
        return None;
    }
    let count = all.iter().map(|t| t.count).sum();
    let weighted = all.iter().filter_map(|t| t.mean.map(|m| m * t.count as f64)).sum::<f64>();
    Some(TlsFigures {
        count,
        mean: match merged {
            Some(h) => histogram_stat_ms(h, &Stat::Mean),
            None => (count > 0).then(|| weighted / count as f64),
        },
        p99: merged.and_then(|h| histogram_stat_ms(h, &Stat::Percentile(99.0))),
        resumed: all.iter().map(|t| t.resumed).sum(),
    })
}

/// Which side limited the run: a segment whose generator limited it says so for the merge
/// (its share was not offered as planned); otherwise the first segment's verdict.
fn limit(parts: &[Part<'_>], notes: &mut Vec<String>) -> Option<crate::summary::LimitVerdict> {
    let (part, verdict) =
        parts.iter().filter_map(|p| p.doc.summary.limit.as_ref().map(|v| (p, v))).min_by_key(|(_, v)| telling(v.by))?;
    let mut verdict = verdict.clone();
    verdict.text = format!("segment {}: {}", part.label, verdict.text);
    if parts.len() > 1 {
        notes.push(format!("the limit verdict is segment {}'s ({})", part.label, part.source));
    }
    Some(verdict)
}

/// One row per stage, by position: counts summed, latency from the merged stage histograms.
fn stages(parts: &[Part<'_>], notes: &mut Vec<String>) -> Result<Vec<StageSummary>, MergeError> {
    let count = parts.iter().map(|p| p.doc.summary.stages.len()).max().unwrap_or(0);
    let mut rows = Vec::with_capacity(count);
    for index in 0..count {
        let rows_of: Vec<(&Part<'_>, &StageSummary)> =
            parts.iter().filter_map(|p| p.doc.summary.stages.get(index).map(|s| (p, s))).collect();
        let what = format!("stage_histograms[{index}]");
        let histograms: Vec<_> =
            parts.iter().filter_map(|p| p.doc.stage_histograms.get(index).map(|h| (p, h))).collect();
        let latency = sum_histograms(histograms.iter().map(|(p, h)| (*p, h.latency.as_str())), &what)?;
        let latency_all = sum_histograms(
            histograms.iter().filter(|(_, h)| !h.latency_all.is_empty()).map(|(p, h)| (*p, h.latency_all.as_str())),
            &what,
        )?;
        let duration_s = rows_of.iter().map(|(_, s)| s.duration_s).fold(0.0, f64::max);
        let stage_sum = |f: &dyn Fn(&StageSummary) -> u64| rows_of.iter().map(|(_, s)| f(s)).sum::<u64>();
        let (completed, failed) = (stage_sum(&|s| s.completed), stage_sum(&|s| s.failed));
        let tops: Vec<&str> = rows_of.iter().filter_map(|(_, s)| s.top_error.as_deref()).collect();
        if tops.windows(2).any(|w| w[0] != w[1]) {
            notes.push(format!(
                "stage {}: the segments' most frequent failures differ ({}); the row names the one of the segment \
                 with the most failures",
                index + 1,
                tops.join(", ")
            ));
        }
        rows.push(StageSummary {
            target_rate: rows_of.iter().map(|(_, s)| s.target_rate).fold(None, add_opt),
            duration_s,
            achieved_rate: per_second(stage_sum(&|s| count_of(s.achieved_rate, s.duration_s)), duration_s),
            sent: stage_sum(&|s| s.sent),
            ok: stage_sum(&|s| s.ok),
            completed,
            failed,
            unanswered: stage_sum(&|s| s.unanswered),
            dropped: stage_sum(&|s| s.dropped),
            error_rate: ratio(failed, completed),
            latency_ms: LatencyFigures::from_histogram(&latency),
            latency_all_p99_ms: histogram_stat_ms(&latency_all, &Stat::Percentile(99.0)),
            top_error: rows_of
                .iter()
                .filter(|(_, s)| s.top_error.is_some())
                .max_by_key(|(_, s)| s.failed)
                .and_then(|(_, s)| s.top_error.clone()),
            note: rows_of.iter().find_map(|(p, s)| s.note.as_ref().map(|n| format!("segment {}: {n}", p.label))),
        });
    }
    Ok(rows)
}

/// A request name's merged figures, with its merged histograms (kept to judge its thresholds).
struct MergedName {
    summary: NamedSummary,
    window_ok: u64,
    latency: LatencyHistogram,
    service_time: LatencyHistogram,
    latency_all: LatencyHistogram,
}

/// Figures per request name, matched by scenario, name and kind, in the order first seen.
fn merged_names(parts: &[Part<'_>], duration_s: f64) -> Result<Vec<MergedName>, MergeError> {
    let mut names: Vec<MergedName> = Vec::new();
    for part in parts {
        let measured = part.doc.summary.duration_s;
        for n in &part.doc.summary.by_name {
            let at = names.iter().position(|m| {
                (&m.summary.scenario, &m.summary.name, &m.summary.kind) == (&n.scenario, &n.name, &n.kind)
            });
            let merged = match at {
                Some(at) => &mut names[at],
                None => {
                    names.push(MergedName {
                        summary: NamedSummary {
                            sent: 0,
                            completed: 0,
                            ok: 0,
                            error_rate: 0.0,
                            rate: 0.0,
                            latency_ms: None,
                            errors: BTreeMap::new(),
                            histograms: None,
                            ..n.clone()
                        },
                        window_ok: 0,
                        latency: new_histogram(),
                        service_time: new_histogram(),
                        latency_all: new_histogram(),
                    });
                    names.last_mut().expect("just pushed")
                }
            };
            let s = &mut merged.summary;
            s.sent += n.sent;
            s.completed += n.completed;
            s.ok += n.ok;
            add_counts(&mut s.errors, &n.errors);
            merged.window_ok += count_of(n.rate, measured);
            if let Some(h) = &n.histograms {
                let what = |kind| format!("by_name {:?} {kind}", n.name);
                crate::histogram::merge(&mut merged.latency, &part.decode(&h.latency, &what("latency"))?);
                crate::histogram::merge(
                    &mut merged.service_time,
                    &part.decode(&h.service_time, &what("service_time"))?,
                );
                crate::histogram::merge(&mut merged.latency_all, &part.decode(&h.latency_all, &what("latency_all"))?);
            }
        }
    }
    for m in &mut names {
        let s = &mut m.summary;
        s.error_rate = ratio(s.completed.saturating_sub(s.ok), s.completed);
        s.rate = per_second(m.window_ok, duration_s);
        s.latency_ms = LatencyFigures::from_histogram(&m.latency);
        s.histograms = Some(NamedHistograms {
            latency: to_base64(&m.latency),
            service_time: to_base64(&m.service_time),
            latency_all: to_base64(&m.latency_all),
        });
    }
    Ok(names)
}

fn by_name(parts: &[Part<'_>], duration_s: f64) -> Result<Vec<NamedSummary>, MergeError> {
    Ok(merged_names(parts, duration_s)?.into_iter().map(|m| m.summary).collect())
}

fn checks(parts: &[Part<'_>]) -> Vec<CheckSummary> {
    let mut all: Vec<CheckSummary> = Vec::new();
    for c in parts.iter().flat_map(|p| &p.doc.summary.checks) {
        match all.iter_mut().find(|a| a.name == c.name) {
            Some(a) => {
                a.passed += c.passed;
                a.failed += c.failed;
            }
            None => all.push(c.clone()),
        }
    }
    for c in &mut all {
        let runs = c.passed + c.failed;
        c.pass_rate = (runs > 0).then(|| c.passed as f64 / runs as f64);
    }
    all
}

fn branches(parts: &[Part<'_>]) -> Vec<BranchSummary> {
    let mut all: Vec<BranchSummary> = Vec::new();
    for b in parts.iter().flat_map(|p| &p.doc.summary.branches) {
        match all.iter_mut().find(|a| a.name == b.name) {
            Some(a) => a.taken += b.taken,
            None => all.push(b.clone()),
        }
    }
    let taken: u64 = all.iter().map(|b| b.taken).sum();
    for b in &mut all {
        b.share = (taken > 0).then(|| b.taken as f64 / taken as f64);
    }
    all
}

/// Iterations summed; a scenario started at its earliest start and ended at its latest end on
/// the merged clock.
fn scenarios(parts: &[Part<'_>]) -> Vec<ScenarioSummary> {
    let mut all: Vec<ScenarioSummary> = Vec::new();
    for part in parts {
        let shift = part.offset_ms as f64 / 1000.0;
        for s in &part.doc.summary.scenarios {
            let (started, ended) = (s.started_s.map(|t| t + shift), s.ended_s.map(|t| t + shift));
            match all.iter_mut().find(|a| a.name == s.name) {
                Some(a) => {
                    a.iterations += s.iterations;
                    a.started_s = [a.started_s, started].into_iter().flatten().reduce(f64::min);
                    a.ended_s = max_opt(a.ended_s, ended);
                }
                None => all.push(ScenarioSummary { started_s: started, ended_s: ended, ..s.clone() }),
            }
        }
    }
    all
}

/// Each host's figures: counts summed, connect and TLS means weighted by count; their p99s
/// are not in the documents as histograms, so they are left out (and said so).
fn by_target(parts: &[Part<'_>], notes: &mut Vec<String>) -> Vec<TargetSummary> {
    let mut all: Vec<(TargetSummary, u64, f64, f64)> = Vec::new();
    for t in parts.iter().flat_map(|p| &p.doc.summary.by_target) {
        let failed: u64 = t.errors.values().sum();
        let connect = t.connect_ms.mean.unwrap_or(0.0) * t.connect_ms.count as f64;
        let tls = t.tls_ms.and_then(|x| x.mean.map(|m| m * x.count as f64)).unwrap_or(0.0);
        match all.iter_mut().find(|(a, ..)| a.name == t.name) {
            Some((a, a_failed, a_connect, a_tls)) => {
                a.sent += t.sent;
                a.ok += t.ok;
                add_counts(&mut a.errors, &t.errors);
                a.connect_ms.count += t.connect_ms.count;
                a.connect_ms.reconnects += t.connect_ms.reconnects;
                a.tls_ms = match (a.tls_ms, t.tls_ms) {
                    (Some(mut x), Some(y)) => {
                        x.count += y.count;
                        x.resumed += y.resumed;
                        Some(x)
                    }
                    (x, y) => x.or(y),
                };
                a.dns_ms = a.dns_ms.max(t.dns_ms);
                *a_failed += failed;
                *a_connect += connect;
                *a_tls += tls;
            }
            None => all.push((t.clone(), failed, connect, tls)),
        }
    }
    if !all.is_empty() {
        notes.push("per-host connect and TLS p99s are not recomputed (no per-host histograms): left out".into());
    }
    all.into_iter()
        .map(|(mut t, failed, connect, tls)| {
            t.error_rate = ratio(failed, t.ok + failed);
            let count = t.connect_ms.count;
            t.connect_ms.mean = (count > 0).then(|| connect / count as f64);
            t.connect_ms.p99 = None;
            if let Some(x) = &mut t.tls_ms {
                x.mean = (x.count > 0).then(|| tls / x.count as f64);
                x.p99 = None;
            }
            t
        })
        .collect()
}

/// Setup, load and teardown, each summed over the segments by name.
fn phases(parts: &[Part<'_>]) -> Vec<PhaseSummary> {
    let mut all: Vec<PhaseSummary> = Vec::new();
    for p in parts.iter().flat_map(|p| &p.doc.summary.phases) {
        match all.iter_mut().find(|a| a.name == p.name) {
            Some(a) => {
                a.started_s = a.started_s.min(p.started_s);
                a.duration_s = a.duration_s.max(p.duration_s);
                a.ok += p.ok;
                a.failed += p.failed;
                add_counts(&mut a.errors, &p.errors);
                add_counts(&mut a.failed_checks, &p.failed_checks);
                add_counts(&mut a.exported, &p.exported);
                if a.ended == "completed" {
                    a.ended = p.ended.clone();
                }
            }
            None => all.push(p.clone()),
        }
    }
    all
}

/// The figures a threshold reads, over merged histograms and counts.
struct Figures<'a> {
    latency: &'a LatencyHistogram,
    service_time: &'a LatencyHistogram,
    latency_all: &'a LatencyHistogram,
    sent: u64,
    completed: u64,
    ok: u64,
    /// `None` where it is not known (one request name's drops).
    dropped: Option<u64>,
    errors: &'a BTreeMap<String, u64>,
    window_ok: u64,
    duration_s: f64,
    probe_ok: Option<f64>,
    faults: &'a [FaultSummary],
}

impl MetricSource for Figures<'_> {
    fn metric_value(&self, metric: &Metric) -> Option<f64> {
        let failed = self.completed.saturating_sub(self.ok);
        match metric {
            Metric::Latency(stat) => histogram_stat_ms(self.latency, stat),
            Metric::ServiceTime(stat) => histogram_stat_ms(self.service_time, stat),
            Metric::LatencyAll(stat) => histogram_stat_ms(self.latency_all, stat),
            Metric::ErrorRate => (self.completed > 0).then(|| ratio(failed, self.completed)),
            Metric::ProbeOk => self.probe_ok,
            Metric::Rate => Some(per_second(self.window_ok, self.duration_s)),
            Metric::Dropped => self.dropped.map(|n| n as f64),
            Metric::Failed => Some(failed as f64),
            Metric::Completed => Some(self.completed as f64),
            Metric::Sent => Some(self.sent as f64),
            Metric::Unanswered => Some(self.errors.get("unanswered").copied().unwrap_or(0) as f64),
            Metric::ErrorCount(name) => ErrorKind::ALL
                .iter()
                .find(|k| k.name() == name)
                .map(|k| self.errors.get(k.name()).copied().unwrap_or(0) as f64),
            Metric::RecoveryTime => {
                let recoveries: Option<Vec<f64>> =
                    self.faults.iter().filter_map(|f| f.recovery).map(|r| r.recover_s.map(|s| s * 1000.0)).collect();
                recoveries?.into_iter().reduce(f64::max)
            }
            Metric::FaultErrors => {
                self.faults.iter().filter_map(|f| f.recovery).map(|r| r.failed as f64).reduce(|a, b| a + b)
            }
            // Each segment read back its own writes; a merge has no read-back of its own.
            Metric::Lost | Metric::Recovered | Metric::Unexpected | Metric::Unread => None,
        }
    }
}

/// The plan's thresholds (its global ones, then each request name's), judged on the merged
/// figures as the run judges them on its own.
fn thresholds(
    parts: &[Part<'_>],
    s: &Summary,
    h: &MergedHistograms,
    window_ok: u64,
) -> Result<Vec<ThresholdVerdict>, MergeError> {
    let plan = &parts[0].doc.plan;
    let parse = |text: &str| {
        Expr::parse(text).map_err(|e| MergeError::NotMergeable {
            source_name: parts[0].source.to_string(),
            what: format!("its plan's threshold {text:?} does not parse: {e}"),
        })
    };
    let (probe_sent, probe_ok) = s.probes.iter().fold((0, 0), |(a, b), p| (a + p.sent, b + p.ok));
    let global = Figures {
        latency: &h.latency,
        service_time: &h.service_time,
        latency_all: &h.latency_all,
        sent: s.requests.sent,
        completed: s.requests.completed,
        ok: s.requests.ok,
        dropped: Some(s.requests.dropped),
        errors: &s.errors,
        window_ok,
        duration_s: s.duration_s,
        probe_ok: (probe_sent > 0).then(|| ratio(probe_ok, probe_sent)),
        faults: &s.faults,
    };
    let mut verdicts = Vec::new();
    for text in plan.get("thresholds").and_then(|t| t.as_array()).into_iter().flatten().filter_map(|t| t.as_str()) {
        let expr = parse(text)?;
        let mut verdict = ThresholdVerdict::evaluate(&expr, &global);
        if expr.metric == Metric::RecoveryTime && verdict.value.is_none() {
            let stuck: Vec<&str> = s
                .faults
                .iter()
                .filter(|f| f.recovery.is_some_and(|r| !r.recovered()))
                .map(|f| f.window.name.as_str())
                .collect();
            verdict.shown = Some(match stuck.as_slice() {
                [] => "no fault ran".to_string(),
                names => format!("did not recover ({})", names.join(", ")),
            });
        }
        verdicts.push(verdict);
    }
    let named = plan.pointer("/scenarios/named_thresholds").and_then(|t| t.as_object());
    if let Some(named) = named {
        for m in merged_names(parts, s.duration_s)? {
            let Some(exprs) = named.get(&m.summary.name).and_then(|e| e.as_array()) else { continue };
            let figures = Figures {
                latency: &m.latency,
                service_time: &m.service_time,
                latency_all: &m.latency_all,
                sent: m.summary.sent,
                completed: m.summary.completed,
                ok: m.summary.ok,
                dropped: None,
                errors: &m.summary.errors,
                window_ok: m.window_ok,
                duration_s: s.duration_s,
                probe_ok: None,
                faults: &[],
            };
            for text in exprs.iter().filter_map(|t| t.as_str()) {
                let mut verdict = ThresholdVerdict::evaluate(&parse(text)?, &figures);
                verdict.expr = format!("{}: {}", m.summary.name, verdict.expr);
                verdicts.push(verdict);
            }
        }
    }
    Ok(verdicts)
}
