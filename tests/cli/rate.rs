//! The open model keeps its rate: uniform and Poisson arrivals, and the per-second timeline.

use std::time::Duration;

use crate::support::{self, Sink, count, num};

/// Runs `-r 2000 -d 3s` with `extra` flags against a sink; returns the `--json` summary.
fn run_at_2000(extra: &[&str]) -> serde_json::Value {
    let sink = Sink::start(&[]);
    let url = sink.url("/");
    let mut args = vec!["run", url.as_str(), "-r", "2000", "-d", "3s", "--json"];
    args.extend_from_slice(extra);
    let out = support::run(&args, Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    out.json()
}

/// Uniform arrivals: 2000 req/s for 3 s completes 6000 requests, within 2 %.
#[test]
fn uniform_rate_is_accurate() {
    let _load = support::exclusive();
    let summary = run_at_2000(&[]);
    let completed = count(&summary, "/requests/completed") as f64;
    assert!((completed - 6000.0).abs() <= 120.0, "completed {completed}, expected 6000 ± 2 %");
    assert_eq!(count(&summary, "/requests/failed"), 0);
    assert_eq!(count(&summary, "/requests/dropped"), 0);
    let achieved = num(&summary, "/rate/achieved");
    assert!((achieved - 2000.0).abs() <= 40.0, "achieved {achieved} req/s, expected 2000 ± 2 %");
    assert_eq!(num(&summary, "/rate/offered"), 2000.0);
}

/// Poisson arrivals: the same mean rate, within 4 % (the count over 3 s is Poisson(6000), whose
/// standard deviation is 77: ±240 is 3.1 standard deviations).
#[test]
fn poisson_rate_is_accurate_on_average() {
    let _load = support::exclusive();
    let summary = run_at_2000(&["--arrival", "poisson"]);
    let completed = count(&summary, "/requests/completed") as f64;
    assert!((completed - 6000.0).abs() <= 240.0, "completed {completed}, expected 6000 ± 4 %");
    assert_eq!(count(&summary, "/requests/failed"), 0);
    let achieved = num(&summary, "/rate/achieved");
    assert!((achieved - 2000.0).abs() <= 80.0, "achieved {achieved} req/s, expected 2000 ± 4 %");
}

/// `-r 500 -d 3s -o FILE`: one timeline entry per second at the target rate, and the timeline
/// adds up to the summary.
#[test]
fn timeline_adds_up_to_the_summary() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "timeline.json");
    let out = support::run(
        &["run", &sink.url("/"), "-r", "500", "-d", "3s", "-o", &file, "--quiet"],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    let doc = support::read_json(&path);
    support::assert_valid_results(&doc);
    let timeline = doc["timeline"].as_array().expect("timeline is an array");
    assert!(timeline.len() >= 3, "expected at least 3 timeline entries, got {}", timeline.len());
    for (i, entry) in timeline.iter().enumerate() {
        assert_eq!(count(entry, "/second"), i as u64 + 1, "timeline seconds must count up from 1");
        if i < 3 {
            assert_eq!(num(entry, "/target_rate"), 500.0, "entry {i}: {entry}");
        } else {
            // A busy machine may end the last answers in a fourth second: the drain, where
            // nothing is offered any more.
            assert!(entry["target_rate"].is_null(), "nothing is offered after the 3 s: {entry}");
        }
    }
    for entry in &timeline[..3] {
        let sent = count(entry, "/sent") as f64;
        assert!((sent - 500.0).abs() <= 25.0, "a full second at 500 req/s sent {sent}: {entry}");
    }
    let summary = &doc["summary"];
    let sum = |field: &str| timeline.iter().map(|e| count(e, field)).sum::<u64>();
    assert_eq!(sum("/completed"), count(summary, "/requests/completed"), "timeline completed vs summary");
    assert_eq!(sum("/sent"), count(summary, "/requests/sent"), "timeline sent vs summary");
    assert_eq!(sum("/ok"), count(summary, "/requests/ok"), "timeline ok vs summary");
    let completed = count(summary, "/requests/completed") as f64;
    assert!((completed - 1500.0).abs() <= 30.0, "completed {completed}, expected 1500 ± 2 %");
}
