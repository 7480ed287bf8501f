//! The merge, on documents made here: segments whose values are known, so that the merged
//! figures can be compared with one histogram of all the values.

use std::collections::BTreeMap;
use std::time::Duration;

use proptest::prelude::*;
use serde_json::json;

use super::*;
use crate::document::SCHEMA_VERSION;
use crate::fingerprint::plan_fingerprint;
use crate::histogram::{LatencyHistogram, record};
use crate::summary::{
    Bytes, ConnectFigures, GeneratorFigures, LatencyFigures, NamedHistograms, NamedSummary, Rates, RequestCounts,
    StageSummary, Summary,
};
use crate::timeline::{SecondHistograms, TimelineEntry};

fn plan(rate: f64) -> serde_json::Value {
    json!({
        "target": { "url": "http://127.0.0.1:8090/", "addrs": ["127.0.0.1:8090"], "dns_time": 0.0 },
        "scenarios": {
            "list": [ { "name": "default", "load": { "open": { "stages": [ { "rate": rate } ] } } } ],
            "named_thresholds": { "GET /": ["p99<1h"] },
        },
        "thresholds": ["p99<1h", "error_rate<1%"],
        "threads": 1,
    })
}

fn histogram_of(values: &[u64]) -> LatencyHistogram {
    let mut h = new_histogram();
    for &v in values {
        record(&mut h, Duration::from_micros(v));
    }
    h
}

/// The document of segment `label` that started at `started_at` and recorded `seconds` (each
/// second's successful latencies, microseconds), one request name.
fn segment(label: &str, started_at: &str, seconds: &[Vec<u64>], plan: serde_json::Value) -> ResultsDocument {
    let all: Vec<u64> = seconds.iter().flatten().copied().collect();
    let total = histogram_of(&all);
    let n = all.len() as u64;
    let duration_s = seconds.len() as f64;
    let empty = to_base64(&new_histogram());
    let histograms = Histograms {
        latency: to_base64(&total),
        service_time: to_base64(&total),
        latency_all: to_base64(&total),
        connect_time: empty.clone(),
        schedule_lag: empty.clone(),
        tls_handshake: Some(empty.clone()),
    };
    let timeline = seconds
        .iter()
        .enumerate()
        .map(|(i, values)| {
            let h = histogram_of(values);
            let count = values.len() as u64;
            TimelineEntry {
                second: i as u64 + 1,
                target_rate: Some(100.0),
                sent: count,
                completed: count,
                ok: count,
                cpu_percent: 1.0,
                latency_ms: crate::timeline::TimelineLatency::from_histogram(&h),
                histograms: Some(SecondHistograms::of(&h, &h, &new_histogram())),
                ..TimelineEntry::default()
            }
        })
        .collect();
    let figures = LatencyFigures::from_histogram(&total);
    let summary = Summary {
        pummel_version: "0.1.0".into(),
        partial: false,
        aborted: None,
        interrupted: false,
        duration_s,
        requests: RequestCounts {
            sent: n,
            completed: n,
            ok: n,
            failed: 0,
            unanswered: 0,
            redirects: 0,
            dropped: 0,
            error_rate: 0.0,
        },
        rate: Rates { offered: Some(100.0), sent: n as f64 / duration_s, achieved: n as f64 / duration_s, failed: 0.0 },
        bytes: Bytes { received: n * 10, sent: n * 5, decoded: 0 },
        latency_ms: figures,
        service_time_ms: figures,
        latency_all_ms: None,
        connect_ms: ConnectFigures { count: 1, reconnects: 0, mean: None, p99: None },
        tls_ms: None,
        dns_ms: 0.1,
        errors: BTreeMap::new(),
        status: BTreeMap::from([("200".to_string(), n)]),
        thresholds: Vec::new(),
        generator: GeneratorFigures {
            threads: 1,
            cpu_seconds: 0.1,
            busiest_thread_percent: Some(3.0),
            schedule_lag_p99_ms: None,
        },
        limit: None,
        seed: Some(7),
        drain_s: 1.0,
        stages: vec![StageSummary {
            target_rate: Some(100.0),
            duration_s,
            achieved_rate: n as f64 / duration_s,
            sent: n,
            ok: n,
            completed: n,
            failed: 0,
            unanswered: 0,
            dropped: 0,
            error_rate: 0.0,
            latency_ms: figures,
            latency_all_p99_ms: None,
            top_error: None,
            note: None,
        }],
        probes: Vec::new(),
        target: None,
        by_name: vec![NamedSummary {
            name: "GET /".into(),
            scenario: "default".into(),
            kind: "http".into(),
            sent: n,
            completed: n,
            ok: n,
            error_rate: 0.0,
            rate: n as f64 / duration_s,
            latency_ms: figures,
            errors: BTreeMap::new(),
            target: None,
            histograms: Some(NamedHistograms {
                latency: to_base64(&total),
                service_time: to_base64(&total),
                latency_all: to_base64(&total),
            }),
        }],
        checks: Vec::new(),
        branches: Vec::new(),
        scenarios: Vec::new(),
        segment: Some(label.into()),
        segment_sequence: None,
        merged: None,
        by_target: Vec::new(),
        phases: Vec::new(),
        request_log: None,
        faults: Vec::new(),
        steady_state: None,
        agents: Vec::new(),
        writes: None,
    };
    let mut plan = plan;
    plan["segment"] = json!(label);
    ResultsDocument {
        schema_version: SCHEMA_VERSION,
        pummel_version: "0.1.0".into(),
        started_at: started_at.into(),
        plan_fingerprint: Some(plan_fingerprint(&plan)),
        plan,
        summary,
        timeline,
        histograms: histograms.clone(),
        stage_histograms: vec![histograms],
        other_errors: Vec::new(),
        find_limit: None,
    }
}

const START: &str = "2025-01-02T03:04:05.000Z";

fn input(name: &str, document: ResultsDocument) -> MergeInput {
    MergeInput { source: name.into(), document }
}

fn three(seconds: [&[Vec<u64>]; 3]) -> Vec<MergeInput> {
    (0..3)
        .map(|i| {
            input(&format!("seg-{}.json", i + 1), segment(&format!("{}/3", i + 1), START, seconds[i], plan(100.0)))
        })
        .collect()
}

fn strict() -> MergeOptions {
    MergeOptions::default()
}

proptest! {
    /// Whatever the values and however they are dealt out over three segments and their
    /// seconds, the merged document's histogram is the histogram of all the values, so its
    /// percentiles (p99 included) are those of one histogram of all values, exactly; so are
    /// each merged second's and the request name's.
    #[test]
    fn merged_percentiles_are_those_of_all_values(
        values in proptest::collection::vec(1u64..10_000_000, 1..400),
        deal in proptest::collection::vec(0usize..6, 400),
    ) {
        // Value k goes to segment deal[k] % 3, second deal[k] / 3 + 1 (two seconds each).
        let mut seconds: Vec<Vec<Vec<u64>>> = vec![vec![Vec::new(), Vec::new()]; 3];
        for (k, &v) in values.iter().enumerate() {
            seconds[deal[k] % 3][deal[k] / 3].push(v);
        }
        let merged = merge(&three([&seconds[0], &seconds[1], &seconds[2]]), strict()).unwrap();
        let all = histogram_of(&values);
        let back = from_base64(&merged.histograms.latency).unwrap();
        prop_assert_eq!(&back, &all);
        prop_assert_eq!(merged.summary.latency_ms, LatencyFigures::from_histogram(&all));
        let p99 = merged.summary.latency_ms.map(|l| l.p99);
        prop_assert_eq!(p99, Some(all.value_at_quantile(0.99) as f64 / 1000.0));
        prop_assert_eq!(merged.summary.requests.ok, values.len() as u64);
        prop_assert_eq!(merged.summary.by_name[0].latency_ms, LatencyFigures::from_histogram(&all));
        prop_assert_eq!(merged.summary.stages[0].latency_ms, LatencyFigures::from_histogram(&all));
        for (i, e) in merged.timeline.iter().enumerate() {
            let of_second: Vec<u64> = (0..3).flat_map(|s| seconds[s][i].iter().copied()).collect();
            prop_assert_eq!(e.ok, of_second.len() as u64);
            prop_assert_eq!(e.latency_ms, crate::timeline::TimelineLatency::from_histogram(&histogram_of(&of_second)));
        }
        let verdict = &merged.summary.thresholds[0];
        prop_assert_eq!((verdict.expr.as_str(), verdict.value), ("p99<1h", p99));
    }
}

#[test]
fn counts_add_up_and_the_merge_says_what_it_joined() {
    let merged = merge(&three([&[vec![1000, 2000]], &[vec![3000]], &[vec![4000, 5000, 6000]]]), strict()).unwrap();
    let s = &merged.summary;
    assert_eq!((s.requests.sent, s.requests.ok, s.status["200"], s.bytes.received), (6, 6, 6, 60));
    assert_eq!(s.rate.achieved, 6.0, "6 answers over the 1 s window");
    assert_eq!(s.generator.threads, 3);
    assert_eq!(s.rate.offered, Some(300.0), "each segment was offered its share");
    assert_eq!(s.segment, None);
    let info = s.merged.as_ref().unwrap();
    assert_eq!(info.segments, ["1/3", "2/3", "3/3"]);
    assert!(info.missing.is_empty());
    assert!(!s.partial);
    assert_eq!(merged.timeline.len(), 1);
    assert_eq!(merged.plan.get("segment"), None, "the merged plan is the whole plan");
    assert_eq!(merged.plan["threads"], 3);
    let names: Vec<&str> = s.thresholds.iter().map(|t| t.expr.as_str()).collect();
    assert_eq!(names, ["p99<1h", "error_rate<1%", "GET /: p99<1h"]);
    assert!(s.thresholds_pass());
}

#[test]
fn a_segment_that_started_later_is_aligned_by_wall_clock_second() {
    let inputs = vec![
        input("a.json", segment("1/2", START, &[vec![1000], vec![1000]], plan(100.0))),
        input("b.json", segment("2/2", "2025-01-02T03:04:07.000Z", &[vec![2000, 2000], vec![2000]], plan(100.0))),
    ];
    let merged = merge(&inputs, strict()).unwrap();
    let seconds: Vec<(u64, u64)> = merged.timeline.iter().map(|e| (e.second, e.ok)).collect();
    assert_eq!(seconds, [(1, 1), (2, 1), (3, 2), (4, 1)], "b's second 1 is the merged second 3");
    assert_eq!(merged.started_at, START);
    assert_eq!(merged.summary.duration_s, 4.0, "from a's start to b's end");
    assert!(merged.summary.merged.unwrap().notes.is_empty(), "whole seconds apart: nothing to say");
    // Given in the other order, the same merge.
    let reversed: Vec<MergeInput> = inputs.into_iter().rev().collect();
    assert_eq!(merge(&reversed, strict()).unwrap().timeline.len(), 4);
}

#[test]
fn segments_of_different_plans_are_refused_saying_where_they_differ() {
    let inputs = vec![
        input("a.json", segment("1/2", START, &[vec![1000]], plan(100.0))),
        input("b.json", segment("2/2", START, &[vec![1000]], plan(200.0))),
    ];
    let err = merge(&inputs, strict()).unwrap_err().to_string();
    assert!(err.starts_with("b.json ran a different plan than a.json"), "{err}");
    assert!(err.contains("plan.scenarios.list[0].load.open.stages[0].rate is 200.0 here, 100.0 in a.json"), "{err}");
}

#[test]
fn other_schema_versions_duplicates_and_whole_runs_are_refused() {
    let mut old = segment("2/2", START, &[vec![1000]], plan(100.0));
    old.schema_version = SCHEMA_VERSION - 1;
    let ok = || input("a.json", segment("1/2", START, &[vec![1000]], plan(100.0)));
    let err = merge(&[ok(), input("old.json", old)], strict()).unwrap_err().to_string();
    assert!(err.starts_with("old.json: results document version 2"), "{err}");

    let twice = input("again.json", segment("1/2", START, &[vec![1000]], plan(100.0)));
    let err = merge(&[ok(), twice], strict()).unwrap_err().to_string();
    assert_eq!(err, "again.json and a.json are both segment 1/2: each segment may be merged once");

    let mut whole = segment("2/2", START, &[vec![1000]], plan(100.0));
    whole.summary.segment = None;
    let err = merge(&[ok(), input("whole.json", whole)], strict()).unwrap_err().to_string();
    assert!(err.starts_with("whole.json is not a segment's results (it ran the whole plan)"), "{err}");

    let other_count = input("c.json", segment("2/3", START, &[vec![1000]], plan(100.0)));
    let err = merge(&[ok(), other_count], strict()).unwrap_err().to_string();
    assert!(err.starts_with("c.json is segment 2/3, but a.json is segment 1/2"), "{err}");

    let mut bare = segment("2/2", START, &[vec![1000]], plan(100.0));
    bare.timeline[0].histograms = None;
    let err = merge(&[ok(), input("bare.json", bare)], strict()).unwrap_err().to_string();
    assert!(err.contains("bare.json cannot be merged exactly: second 1 of its timeline has no histograms"), "{err}");
}

#[test]
fn missing_segments_are_refused_unless_a_partial_merge_is_asked_for() {
    let inputs = vec![input("b.json", segment("2/3", START, &[vec![1000]], plan(100.0)))];
    let err = merge(&inputs, strict()).unwrap_err().to_string();
    assert!(err.starts_with("segments 1/3, 3/3 of 3 missing"), "{err}");
    let merged = merge(&inputs, MergeOptions { allow_partial: true }).unwrap();
    assert!(merged.summary.partial);
    assert_eq!(merged.summary.merged.unwrap().missing, ["1/3", "3/3"]);
}

/// Segment `label` of `sequence` (`--segment FROM:TO --segment-sequence ...`).
fn ranged(label: &str, sequence: &str, seconds: &[Vec<u64>]) -> ResultsDocument {
    let mut doc = segment(label, START, seconds, plan(100.0));
    doc.summary.segment_sequence = Some(sequence.into());
    doc
}

#[test]
fn ranges_of_one_sequence_that_cover_the_plan_merge() {
    let seq = "0,1/4,1/2,1";
    let inputs = vec![
        input("c.json", ranged("1/2:1", seq, &[vec![1000, 2000]])),
        input("a.json", ranged("0:1/4", seq, &[vec![3000]])),
        input("b.json", ranged("1/4:1/2", seq, &[vec![4000]])),
    ];
    let merged = merge(&inputs, strict()).unwrap();
    assert_eq!(merged.summary.requests.ok, 4);
    assert_eq!(merged.summary.merged.unwrap().segments, ["0:1/4", "1/4:1/2", "1/2:1"], "in order of the plan");
    assert_eq!(merged.summary.segment_sequence, None);
    // i/N documents and ranges of the same equal sequence are segments of one sequence.
    let mixed = vec![
        input("a.json", segment("1/2", START, &[vec![1000]], plan(100.0))),
        input("b.json", ranged("1/2:1", "0,1/2,1", &[vec![1000]])),
    ];
    assert_eq!(merge(&mixed, strict()).unwrap().summary.merged.unwrap().segments, ["1/2", "1/2:1"]);
}

#[test]
fn gaps_overlaps_and_other_sequences_are_refused_naming_the_files() {
    let seq = "0,1/4,1/2,1";
    let a = || input("a.json", ranged("0:1/4", seq, &[vec![1000]]));
    let c = || input("c.json", ranged("1/2:1", seq, &[vec![1000]]));
    let err = merge(&[a(), c()], strict()).unwrap_err().to_string();
    assert!(err.starts_with("segment 1/4:1/2 of the sequence 0,1/4,1/2,1 missing"), "{err}");
    let partial = merge(&[a(), c()], MergeOptions { allow_partial: true }).unwrap();
    assert_eq!(partial.summary.merged.unwrap().missing, ["1/4:1/2"]);

    // 0:1/2 (of its own sequence 0,1/2,1) overlaps 1/4:1/2.
    let half = input("half.json", ranged("0:1/2", "0,1/2,1", &[vec![1000]]));
    let b = input("b.json", ranged("1/4:1/2", seq, &[vec![1000]]));
    let err = merge(&[c(), half, b], strict()).unwrap_err().to_string();
    assert_eq!(
        err,
        "b.json (segment 1/4:1/2) overlaps half.json (segment 0:1/2): merged, part of the plan would count twice"
    );

    // Cover 0..1 without overlapping, but cut from two sequences: their items were dealt out apart.
    let half = input("half.json", ranged("0:1/2", "0,1/2,1", &[vec![1000]]));
    let b = input("b.json", ranged("1/4:1/2", seq, &[vec![1000]]));
    let err = merge(&[half, c()], strict()).unwrap_err().to_string();
    assert!(
        err.starts_with("c.json is segment 1/2:1 of the sequence 0,1/4,1/2,1, but half.json is segment 0:1/2 of the sequence 0,1/2,1"),
        "{err}"
    );
    let err =
        merge(&[a(), b, input("again.json", ranged("1/4:1/2", seq, &[vec![1000]]))], strict()).unwrap_err().to_string();
    assert_eq!(err, "again.json and b.json are both segment 1/4:1/2: each segment may be merged once");

    let mut bad = ranged("1/4:1/3", seq, &[vec![1000]]);
    bad.summary.segment_sequence = Some(seq.into());
    let err = merge(&[a(), input("bad.json", bad)], strict()).unwrap_err().to_string();
    assert!(
        err.contains(
            "bad.json is not a segment's results (its segment \"1/4:1/3\": the segment 1/4:1/3 is not in the sequence"
        ),
        "{err}"
    );
}

#[test]
fn a_start_off_the_whole_second_is_noted() {
    let inputs = vec![
        input("a.json", segment("1/2", START, &[vec![1000]], plan(100.0))),
        input("b.json", segment("2/2", "2025-01-02T03:04:05.400Z", &[vec![1000]], plan(100.0))),
    ];
    let merged = merge(&inputs, strict()).unwrap();
    assert_eq!(merged.timeline.len(), 1, "0.4 s later: the same merged second");
    let notes = merged.summary.merged.unwrap().notes;
    assert!(notes.iter().any(|n| n.contains("segment 2/2 (b.json) started 0.400 s after the earliest")), "{notes:?}");
}

#[test]
fn a_merged_document_round_trips_through_json() {
    let merged = merge(&three([&[vec![1000]], &[vec![2000]], &[vec![3000]]]), strict()).unwrap();
    let text = serde_json::to_string(&merged).unwrap();
    let back: ResultsDocument = serde_json::from_str(&text).unwrap();
    assert_eq!(back.summary, merged.summary);
}
