//! Synthetic results documents for unit tests: an open-model run with failures of two kinds,
//! the same run with two probes and a watched target, and a find-limit run with four steps.
//! Deterministic, so outputs can be compared exactly.

use std::collections::BTreeMap;

use pummel_results::document::{FindLimitReport, Histograms, ResultsDocument, StepVerdict};
use pummel_results::histogram::{new_histogram, to_base64};
use pummel_results::observed::ProbeSample;
use pummel_results::observed::TargetTotals;
use pummel_results::summary::{
    Bytes, ConnectFigures, GeneratorFigures, LatencyFigures, ProbeSummary, Rates, RequestCounts, StageSummary, Summary,
    ThresholdVerdict,
};
use pummel_results::timeline::{LagFigures, TimelineEntry, TimelineLatency};
use pummel_system::proc_text::tcp::TcpStates;
use pummel_system::watch::{ListenRates, Warning, WarningKind, WatchSample};

/// Latency figures around `p50` milliseconds.
pub fn figures(p50: f64) -> LatencyFigures {
    LatencyFigures {
        min: p50 * 0.2,
        mean: p50 * 1.05,
        p50,
        p90: p50 * 1.6,
        p95: p50 * 1.7,
        p99: p50 * 1.8,
        p999: p50 * 1.9,
        max: p50 * 2.1,
    }
}

fn histograms() -> Histograms {
    let empty = to_base64(&new_histogram());
    Histograms {
        latency: empty.clone(),
        service_time: empty.clone(),
        latency_all: empty.clone(),
        connect_time: empty.clone(),
        schedule_lag: empty,
        tls_handshake: None,
    }
}

/// One second at `rate` req/s with latency around `p50` and `errors`.
pub fn entry(second: u64, rate: f64, p50: f64, errors: &[(&str, u64)]) -> TimelineEntry {
    let failed: u64 = errors.iter().map(|(_, n)| n).sum();
    let completed = rate as u64 + second % 3;
    TimelineEntry {
        second,
        warmup: second == 1,
        target_rate: Some(rate),
        sent: rate as u64,
        completed,
        ok: completed - failed,
        failed,
        errors: errors.iter().map(|(k, n)| (k.to_string(), *n)).collect(),
        dropped: 0,
        unanswered: 0,
        reconnects: 0,
        in_flight: 20 + second,
        waiting: 0,
        connections: 30,
        connections_opened: 0,
        closed_by_peer: 0,
        bytes_in: completed * 60,
        bytes_out: completed * 50,
        latency_ms: Some(TimelineLatency { p50, p90: p50 * 1.6, p99: p50 * 1.8, max: p50 * 2.1 + second as f64 }),
        service_time_ms: Some(TimelineLatency { p50, p90: p50 * 1.5, p99: p50 * 1.7, max: p50 * 2.0 + second as f64 }),
        schedule_lag_ms: Some(LagFigures { p99: 1.5, max: 3.0 }),
        cpu_percent: 6.5,
        busiest_thread_percent: Some(4.0),
        limit: None,
        probes: Vec::new(),
        target: None,
        watch_gap: None,
        started: Vec::new(),
        faults: Vec::new(),
        histograms: None,
    }
}

fn stage(rate: f64, p50: f64, error_rate: f64, note: Option<&str>) -> StageSummary {
    StageSummary {
        target_rate: Some(rate),
        duration_s: 2.0,
        achieved_rate: rate * (1.0 - error_rate / 2.0),
        sent: (rate * 2.0) as u64,
        ok: (rate * 2.0) as u64 - (rate * 2.0 * error_rate) as u64,
        completed: (rate * 2.0) as u64,
        failed: (rate * 2.0 * error_rate) as u64,
        unanswered: 0,
        dropped: 0,
        error_rate,
        latency_ms: Some(figures(p50)),
        latency_all_p99_ms: Some(p50 * 1.8),
        top_error: (error_rate > 0.0).then(|| "status_5xx".to_string()),
        note: note.map(str::to_string),
    }
}

fn summary(timeline: &[TimelineEntry], stages: Vec<StageSummary>) -> Summary {
    let measured: Vec<&TimelineEntry> = timeline.iter().filter(|e| !e.warmup).collect();
    let completed: u64 = measured.iter().map(|e| e.completed).sum();
    let failed: u64 = measured.iter().map(|e| e.failed).sum();
    let mut errors = BTreeMap::new();
    for e in &measured {
        for (k, n) in &e.errors {
            *errors.entry(k.clone()).or_insert(0) += n;
        }
    }
    let duration_s = measured.len() as f64;
    Summary {
        pummel_version: "0.1.0".into(),
        partial: false,
        aborted: None,
        interrupted: false,
        duration_s,
        requests: RequestCounts {
            sent: completed,
            completed,
            ok: completed - failed,
            failed,
            dropped: 0,
            unanswered: 0,
            redirects: 0,
            error_rate: failed as f64 / completed as f64,
        },
        rate: Rates {
            offered: Some(1000.0),
            sent: completed as f64 / duration_s,
            achieved: (completed - failed) as f64 / duration_s,
            failed: failed as f64 / duration_s,
        },
        bytes: Bytes { received: completed * 60, sent: completed * 50, decoded: 0 },
        latency_ms: Some(figures(10.0)),
        service_time_ms: Some(figures(9.0)),
        latency_all_ms: None,
        connect_ms: ConnectFigures { count: 30, reconnects: 0, mean: Some(0.1), p99: Some(0.3) },
        tls_ms: None,
        dns_ms: 0.0,
        status: [("200".to_string(), completed - failed), ("500".to_string(), failed)].into_iter().collect(),
        errors,
        thresholds: vec![ThresholdVerdict {
            expr: "p99<250ms".into(),
            pass: true,
            value: Some(18.0),
            shown: Some("18.0ms".into()),
        }],
        generator: GeneratorFigures {
            threads: 2,
            cpu_seconds: 0.7,
            busiest_thread_percent: Some(4.0),
            schedule_lag_p99_ms: Some(1.5),
        },
        limit: None,
        seed: Some(7),
        drain_s: 10.0,
        stages,
        probes: Vec::new(),
        target: None,
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
        request_log: None,
        faults: Vec::new(),
        steady_state: None,
        writes: None,
    }
}

fn plan(url: &str, rates: &[f64], seconds_per_stage: f64) -> serde_json::Value {
    serde_json::json!({
        "target": { "url": url },
        "stop": { "duration": null, "requests": null },
        "scenarios": { "list": [{
            "name": "quick",
            "load": { "model": "open", "arrival": "uniform", "max_connections": 1000, "max_inflight": null,
                      "stages": rates.iter().map(|r| serde_json::json!({"rate": r, "duration": seconds_per_stage})).collect::<Vec<_>>() },
            "flow": [{ "request": { "stats": 0, "method": "GET", "path": "/" } }],
        }]},
    })
}

/// A 10-second open-model run at 1,000 req/s with `status_5xx` failures and a timeout burst.
pub fn open_run() -> ResultsDocument {
    let timeline: Vec<TimelineEntry> = (1..=10)
        .map(|s| {
            let errors: Vec<(&str, u64)> =
                if (4..=5).contains(&s) { vec![("status_5xx", 10), ("timeout", 3)] } else { vec![("status_5xx", 10)] };
            entry(s, 1000.0, 10.0 + (s % 2) as f64 * 0.2, &errors)
        })
        .collect();
    let stages = vec![stage(1000.0, 10.0, 0.011, None)];
    ResultsDocument {
        schema_version: pummel_results::document::SCHEMA_VERSION,
        pummel_version: "0.1.0".into(),
        started_at: "2025-01-02T03:04:05.678Z".into(),
        plan_fingerprint: None,
        plan: plan("http://127.0.0.1:8090/api?x=<1>&y=2", &[1000.0], 10.0),
        summary: summary(&timeline, stages),
        timeline,
        histograms: histograms(),
        stage_histograms: vec![histograms()],
        other_errors: vec![],
        find_limit: None,
    }
}

/// Seconds of [`observed_run`] in which the health probe is NOK: a 503 at 4 and 5, no answer
/// (timeout) at 6.
pub const FAILING_SECONDS: std::ops::RangeInclusive<u64> = 4..=6;

/// The health probe's and the stats probe's samples of `second`.
fn probe_samples(second: u64) -> Vec<ProbeSample> {
    let failing = FAILING_SECONDS.contains(&second);
    let timed_out = second == *FAILING_SECONDS.end();
    let health = ProbeSample {
        url: "http://127.0.0.1:8090/health".into(),
        ok: !failing,
        latency_ms: (!timed_out).then_some(if failing { 2.5 } else { 1.0 + second as f64 * 0.1 }),
        status: (!timed_out).then_some(if failing { 503 } else { 200 }),
        value: None,
        error: failing.then(|| if timed_out { "timeout after 1s" } else { "status 503 not accepted" }.to_string()),
    };
    let stats = ProbeSample {
        url: "http://127.0.0.1:8090/stats".into(),
        ok: true,
        latency_ms: Some(1.5),
        status: Some(200),
        value: Some(second as f64 + 9.0),
        error: None,
    };
    vec![health, stats]
}

/// The watched target at the end of `second`: 30 ESTABLISHED, CLOSE_WAIT growing by one a
/// second from second 4 (warned at 6), fds following the sockets under a limit of 1,024, and
/// the listen queue overflowing at 12/s in second 6.
fn watch_sample(second: u64) -> WatchSample {
    let close_wait = second.saturating_sub(3);
    let mut warnings = Vec::new();
    if second == 6 {
        warnings.push(Warning { kind: WarningKind::CloseWaitGrowing, text: "CLOSE_WAIT grew 1, 2, 3".into() });
        warnings.push(Warning { kind: WarningKind::ListenOverflows, text: "12 listen overflows/s".into() });
    }
    WatchSample {
        pid: 4242,
        elapsed_ms: second * 1000,
        open_fds: 60 + close_wait,
        max_fd: Some(70 + close_wait),
        holds_epoll: true,
        fd_soft_limit: Some(1024),
        fd_hard_limit: Some(4096),
        threads: 8,
        cpu_percent: Some(35.0 + second as f64),
        rss_bytes: 50 << 20,
        tcp: TcpStates { established: 30, close_wait, time_wait: second % 2, listen: 1, ..TcpStates::default() },
        accept_queue: if second == 6 { 5 } else { 0 },
        system_listen: Some(ListenRates {
            listen_overflows_per_s: if second == 6 { 12.0 } else { 0.0 },
            listen_drops_per_s: if second == 6 { 12.0 } else { 0.0 },
            ..ListenRates::default()
        }),
        system_listen_overflows: Some(if second >= 6 { 12 } else { 0 }),
        warnings,
    }
}

/// [`open_run`] with a health probe that fails in [`FAILING_SECONDS`], a `--probe-json` stats
/// probe reading a growing number, and a watched target whose CLOSE_WAIT sockets grow.
pub fn observed_run() -> ResultsDocument {
    let mut doc = open_run();
    for e in &mut doc.timeline {
        e.probes = probe_samples(e.second);
        e.target = Some(watch_sample(e.second));
    }
    let probe = |url: &str, ok: u64, last_value: Option<f64>| ProbeSummary {
        url: url.into(),
        sent: 10,
        ok,
        ok_rate: Some(ok as f64 / 10.0),
        latency_ms: Some(figures(1.5)),
        last_value,
        max_value: last_value,
    };
    doc.summary.probes =
        vec![probe("http://127.0.0.1:8090/health", 7, None), probe("http://127.0.0.1:8090/stats", 10, Some(19.0))];
    doc.summary.target = Some(TargetTotals {
        pid: 4242,
        name: "api-server".into(),
        samples: 10,
        watch_gaps: 0,
        peak_open_fds: 67,
        fd_soft_limit: Some(1024),
        peak_max_fd: Some(77),
        peak_established: 30,
        peak_close_wait: 7,
        peak_accept_queue: 5,
        listen_overflows: Some(12),
        peak_threads: 8,
        peak_rss_bytes: 50 << 20,
        warnings: vec!["CLOSE_WAIT grew 1, 2, 3".into(), "12 listen overflows/s".into()],
        gone: None,
    });
    doc
}

/// A find-limit run: steps at 500, 1,000, 2,000 (the capacity) and 4,000 req/s (broken).
pub fn find_limit_run() -> ResultsDocument {
    let rates = [500.0, 1000.0, 2000.0, 4000.0];
    let p50s = [2.0, 2.2, 3.0, 300.0];
    let error_rates = [0.0, 0.0, 0.002, 0.457];
    let timeline: Vec<TimelineEntry> = (0..8)
        .map(|i| {
            let step = i / 2;
            let failed = (rates[step] * error_rates[step]) as u64;
            let errors: Vec<(&str, u64)> = if failed > 0 { vec![("status_5xx", failed)] } else { vec![] };
            let mut e = entry(i as u64 + 1, rates[step], p50s[step], &errors);
            e.warmup = false;
            e
        })
        .collect();
    let notes = [None, None, None, Some("ended after 1 s: 46 % failures")];
    let stages = (0..4).map(|i| stage(rates[i], p50s[i], error_rates[i], notes[i])).collect();
    let mut summary = summary(&timeline, stages);
    summary.thresholds.clear();
    ResultsDocument {
        schema_version: pummel_results::document::SCHEMA_VERSION,
        pummel_version: "0.1.0".into(),
        started_at: "2025-01-02T03:04:05.678Z".into(),
        plan_fingerprint: None,
        plan: plan("http://127.0.0.1:8090/", &rates, 2.0),
        summary,
        timeline,
        histograms: histograms(),
        stage_histograms: vec![histograms(); 4],
        other_errors: vec![],
        find_limit: Some(FindLimitReport {
            slo: vec!["p99<200ms".into()],
            max_error_rate: 0.01,
            steps: (0..4)
                .map(|i| StepVerdict {
                    target_rate: rates[i],
                    good: i < 3,
                    reason: (i == 3).then(|| "p99 540.0ms >= 200ms; error rate 45.7% > 1%".to_string()),
                })
                .collect(),
            capacity_rps: Some(2000.0),
            breaking_rps: Some(4000.0),
            generator_limited: false,
            verdict: "capacity ≈ 2,000 req/s (p99 5.40ms, 0.2% errors); breaks at 4,000 req/s: p99 540ms, 45.7% errors (status_5xx)".into(),
            planning: None,
        }),
    }
}
