//! `pummel find-limit` against targets of known capacity: the capacity it reports, explicit
//! steps, and steps cut short by the abort rule.

use std::time::{Duration, Instant};

use crate::support::{self, Sink, assert_valid_results, num, path_in, read_json, temp_dir, text};

/// A sink that answers 503 beyond 1,500 req/s: the search lands within ±15 % of 1,500, and the
/// breaking step's note names the cause.
#[test]
fn finds_the_capacity_of_a_rate_limited_target() {
    let _load = support::exclusive();
    let sink = Sink::start(&["--capacity", "1500"]);
    let dir = temp_dir();
    let (path, path_arg) = path_in(&dir, "limit.json");
    let out = support::run(
        &[
            "find-limit",
            &sink.url("/"),
            "--start",
            "400",
            "--precision",
            "10%",
            "--step",
            "1s",
            "--settle",
            "500ms",
            "--slo",
            "p99<500ms",
            "--peak",
            "15000",
            "--plain",
            "-o",
            &path_arg,
        ],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let doc = read_json(&path);
    assert_valid_results(&doc);
    let capacity = num(&doc, "/find_limit/capacity_rps");
    assert!(
        (1275.0..=1725.0).contains(&capacity),
        "capacity {capacity} req/s, expected 1500 ± 15 %\n{}{}",
        out.stdout,
        out.stderr
    );
    let breaking = num(&doc, "/find_limit/breaking_rps");
    assert!(breaking > capacity, "breaks at {breaking}, above the capacity {capacity}");
    let steps = doc["find_limit"]["steps"].as_array().expect("steps");
    let breaking_step = steps.iter().find(|s| s["target_rate"].as_f64() == Some(breaking)).expect("breaking step");
    let reason = breaking_step["reason"].as_str().expect("a bad step has a reason");
    assert!(reason.contains("status_503"), "the breaking step names the cause: {reason}");
    assert_eq!(doc["summary"]["stages"].as_array().map(Vec::len), Some(steps.len()), "one stage per step");
    let instances = num(&doc, "/find_limit/planning/instances");
    let expected = (15000.0 / (capacity * 0.7)).ceil();
    assert_eq!(instances, expected, "instances for a 15,000 req/s peak at 30 % headroom");
    let verdict = text(&doc, "/find_limit/verdict");
    assert!(verdict.starts_with("capacity ≈ "), "{verdict}");
    assert!(out.stdout.contains("| Route | Target RPS"), "the per-step table is printed:\n{}", out.stdout);
}

/// `--steps` runs exactly those rates, in order, one row each.
#[test]
fn explicit_steps_give_exactly_those_rows() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let out = support::run(
        &["find-limit", &sink.url("/"), "--steps", "50,200,100", "--step", "1s", "--settle", "0s", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    let doc = out.json();
    let rates: Vec<f64> = doc["find_limit"]["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .filter_map(|s| s["target_rate"].as_f64())
        .collect();
    assert_eq!(rates, vec![50.0, 200.0, 100.0]);
    let stages = doc["summary"]["stages"].as_array().expect("stages");
    assert_eq!(stages.len(), 3);
    for (stage, rate) in stages.iter().zip([50.0, 200.0, 100.0]) {
        let achieved = stage["achieved_rate"].as_f64().expect("achieved");
        assert!((achieved - rate).abs() <= rate * 0.05, "step at {rate}: achieved {achieved}");
    }
    assert_eq!(num(&doc, "/find_limit/capacity_rps"), 200.0);
    assert!(doc["find_limit"]["breaking_rps"].is_null());
}

/// A step whose error rate passes 50 % is cut short, and its note says so.
#[test]
fn a_failing_step_ends_early() {
    let _load = support::exclusive();
    let sink = Sink::start(&["--error-rate", "100%"]);
    let started = Instant::now();
    let out = support::run(
        &["find-limit", &sink.url("/"), "--steps", "100", "--step", "10s", "--settle", "0s", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    assert!(started.elapsed() < Duration::from_secs(8), "the step should end after ~3 s, took {:?}", started.elapsed());
    let doc = out.json();
    let reason = text(&doc, "/find_limit/steps/0/reason");
    assert!(reason.contains("ended after") && reason.contains("100 % failures"), "{reason}");
    assert!(doc["find_limit"]["capacity_rps"].is_null());
}

/// Nonsense settings are usage errors.
#[test]
fn bad_search_settings_exit_2() {
    let _load = support::shared();
    for args in [
        &["find-limit", "http://127.0.0.1:9/", "--factor", "1"][..],
        &["find-limit", "http://127.0.0.1:9/", "--start", "500", "--max-rate", "100"],
        &["find-limit", "http://127.0.0.1:9/", "--steps", "10,abc"],
        &["find-limit", "http://127.0.0.1:9/", "--max-error-rate", "150%"],
    ] {
        let out = support::run(args, Duration::from_secs(10));
        out.assert_code(2).assert_no_panic();
    }
}
