//! Thresholds, abort rules and bad input, with their exit codes: 0 pass, 1 failed, 2 usage.

use std::time::Duration;

use crate::support::{self, Sink, num, text};

#[test]
fn passing_threshold_exits_0_with_its_value() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(
        &["run", &sink.url("/"), "-n", "200", "-c", "2", "--threshold", "p99<10s", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    let summary = out.json();
    let verdict = &summary["thresholds"][0];
    assert_eq!(verdict["expr"], "p99<10s");
    assert_eq!(verdict["pass"], true, "{verdict}");
    let value = num(verdict, "/value");
    assert!(value > 0.0 && value < 10_000.0, "p99 value {value} ms");
    // The value is the summary's own p99 (both in milliseconds).
    assert_eq!(value, num(&summary, "/latency_ms/p99"));
    assert!(!text(verdict, "/shown").is_empty());
}

#[test]
fn failing_threshold_exits_1() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(
        &["run", &sink.url("/"), "-n", "200", "-c", "2", "--threshold", "p99<1us", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(1);
    let verdict = &out.json()["thresholds"][0];
    assert_eq!(verdict["pass"], false, "{verdict}");
    assert!(num(verdict, "/value") > 0.001, "{verdict}");
}

/// An abort rule that holds ends a 10 s run after its 1 s window, with exit 1.
#[test]
fn abort_rule_ends_the_run_early() {
    let _load = support::exclusive();
    let sink = Sink::start(&["--status", "503"]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "aborted.json");
    let out = support::run(
        &[
            "run",
            &sink.url("/"),
            "-d",
            "10s",
            "-c",
            "2",
            "--abort-when",
            "error_rate>50%",
            "--abort-window",
            "1s",
            "-o",
            &file,
            "--json",
        ],
        Duration::from_secs(30),
    );
    out.assert_code(1).assert_no_panic();
    assert!(out.elapsed < Duration::from_secs(6), "an abort after a 1 s window took {:?}", out.elapsed);
    let summary = out.json();
    let reason = text(&summary, "/aborted");
    assert!(reason.contains("error_rate>50%"), "aborted: {reason:?}");
    assert_eq!(summary["partial"], true);
    assert_eq!(summary["interrupted"], false);
    assert!(num(&summary, "/duration_s") < 6.0);
    let doc = support::read_json(&path);
    support::assert_valid_results(&doc);
    assert_eq!(doc["summary"], summary, "the results file holds the same summary as --json");
}

#[test]
fn bad_expression_exits_2_with_a_caret() {
    let _load = support::shared();
    let url = format!("http://127.0.0.1:{}/", support::free_port());
    let out = support::run(&["run", &url, "-n", "1", "--threshold", "p99<<3"], Duration::from_secs(20));
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("p99<<3"), "stderr should quote the expression:\n{}", out.stderr);
    let caret = out.stderr.lines().any(|line| line.trim() == "^");
    assert!(caret, "stderr should point at the mistake with a caret:\n{}", out.stderr);
}

#[test]
fn bad_flags_exit_2_without_panicking() {
    let _load = support::shared();
    let url = format!("http://127.0.0.1:{}/", support::free_port());
    let cases: [&[&str]; 8] = [
        &["run", &url, "-n", "1", "-c", "abc"],
        &["run", &url, "-n", "1", "--max-inflight", "5"],
        &["run", &url, "-n", "1", "--arrival", "poisson"],
        &["run", &url, "-n", "1", "--frobnicate"],
        &["run", &url, "-n", "1", "-d", "5x"],
        &["run", "ftp://127.0.0.1/", "-n", "1"],
        &["run", &url, "-n", "1", "-r", "-5"],
        &["run", &url, "-n", "1", "--timeout", "0s"],
    ];
    for args in cases {
        let out = support::run(args, Duration::from_secs(20));
        assert_eq!(out.code, Some(2), "{args:?} should exit 2: {out:?}");
        assert!(!out.stderr.contains("panicked"), "{args:?} panicked:\n{}", out.stderr);
        assert!(!out.stderr.trim().is_empty(), "{args:?} should say what is wrong");
    }
}

/// An abort rule on `rate` reads the successful answers of its window: a target that answers
/// every request keeps the run going, one that answers none (it holds every answer 5 s) ends it.
#[test]
fn abort_on_rate_reads_the_successful_answers() {
    let _load = support::shared();
    let args = |url: &str| {
        ["run", url, "-r", "200", "-d", "4s", "--drain", "500ms", "--abort-when", "rate<50", "--abort-window", "2s"]
            .into_iter()
            .map(str::to_string)
            .chain(["--json".to_string()])
            .collect::<Vec<String>>()
    };
    let healthy = Sink::start(&[]);
    let url = healthy.url("/");
    let out = support::run(&args(&url).iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(30));
    out.assert_code(0);
    assert_eq!(out.json()["aborted"], serde_json::Value::Null);

    let stalled = Sink::start(&["--delay", "5s"]);
    let url = stalled.url("/");
    let out = support::run(&args(&url).iter().map(String::as_str).collect::<Vec<_>>(), Duration::from_secs(30));
    out.assert_code(1);
    let summary = out.json();
    assert!(text(&summary, "/aborted").starts_with("rate<50"), "{summary:#}");
    assert_eq!(summary["partial"], true);
}
