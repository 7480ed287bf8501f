//! `--log-requests FILE`: every failure up to the per-second bound of its kind, with its fields
//! as the summary counts them; what the bound left out counted in the summary and the results
//! document; `--log-sample 100%` logs every success; secrets never reach the file.

use std::time::Duration;

use serde_json::Value;

use crate::support::servers::{Behaviour, TestServer};
use crate::support::{self, Sink, count, path_in, read_json, temp_dir};

/// The log's lines, parsed.
fn lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}"))).collect()
}

#[test]
fn every_failure_is_logged_with_its_fields_and_every_success_with_a_full_sample() {
    let _shared = support::shared();
    let sink = Sink::start(&["--error-rate", "30%"]);
    let dir = temp_dir();
    let (log, log_text) = path_in(&dir, "requests.jsonl");
    let url = sink.url("/items?page=2");
    let out = support::run(
        &[
            "run",
            &url,
            "-n",
            "300",
            "-c",
            "2",
            "-t",
            "1",
            "--json",
            "--log-requests",
            &log_text,
            "--log-sample",
            "100%",
            "--log-per-second",
            "100000",
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let (ok, failed) = (count(&summary, "/requests/ok"), count(&summary, "/requests/failed"));
    assert!(failed > 30 && ok > 100, "{ok} ok, {failed} failed");
    let lines = lines(&log);
    let failures: Vec<&Value> = lines.iter().filter(|l| l["ok"] == false).collect();
    let successes: Vec<&Value> = lines.iter().filter(|l| l["ok"] == true).collect();
    assert_eq!(failures.len() as u64, failed, "every failure is in the log");
    assert_eq!(successes.len() as u64, ok, "--log-sample 100% logs every success");
    for line in &failures {
        assert_eq!(line["status"], 500, "{line}");
        assert_eq!(line["error"], "status_5xx", "{line}");
        assert_eq!(line["method"], "GET", "{line}");
        assert_eq!(line["url"], url.as_str(), "{line}");
        assert_eq!(line["body"], "error\n", "the first bytes of the answer: {line}");
        let (latency, service) = (line["latency_ms"].as_f64().unwrap_or(-1.0), line["service_time_ms"].as_f64());
        assert!(service.is_some_and(|s| s >= 0.0 && s <= latency + 0.001), "{line}");
        assert!(line["t"].as_f64().is_some_and(|t| (0.0..60.0).contains(&t)), "{line}");
    }
    assert!(successes.iter().all(|l| l["status"] == 200 && l["error"].is_null() && l["body"] == "ok\n"));
    assert_eq!(count(&summary, "/request_log/written"), ok + failed);
    assert_eq!(summary["request_log"]["left_out"], serde_json::json!({}), "nothing left out");
}

#[test]
fn the_per_second_bound_leaves_lines_out_and_counts_them() {
    let _shared = support::shared();
    let sink = Sink::start(&["--error-rate", "50%"]);
    let dir = temp_dir();
    let (log, log_text) = path_in(&dir, "requests.jsonl");
    let (results, results_text) = path_in(&dir, "results.json");
    let url = sink.url("/");
    let out = support::run(
        &[
            "run",
            &url,
            "-r",
            "200",
            "-d",
            "2s",
            "-t",
            "1",
            "--json",
            "--log-requests",
            &log_text,
            "--log-per-second",
            "10",
            "-o",
            &results_text,
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let failed = count(&summary, "/requests/failed");
    let lines = lines(&log);
    assert!(lines.iter().all(|l| l["ok"] == false), "no sample: failures only");
    let left_out = count(&summary, "/request_log/left_out/status_5xx");
    assert_eq!(lines.len() as u64 + left_out, failed, "what is not in the log is counted as left out");
    assert!(left_out > 0 && lines.len() >= 10, "{} lines, {left_out} left out", lines.len());
    // At most 10 a second: count the lines of each second of the run.
    let mut per_second = std::collections::BTreeMap::<u64, u64>::new();
    for line in &lines {
        *per_second.entry(line["t"].as_f64().unwrap_or_default() as u64).or_default() += 1;
    }
    assert!(per_second.values().all(|n| *n <= 10), "{per_second:?}");
    assert!(out.stderr.contains(&format!("{left_out} left out")), "said at the end:\n{}", out.stderr);
    let doc = read_json(&results);
    assert_eq!(doc["summary"]["request_log"], summary["request_log"], "the results document holds it too");
}

#[test]
fn secrets_never_reach_the_log() {
    let _shared = support::shared();
    // Its error page echoes the request, Authorization header included.
    let server = TestServer::start(Behaviour::EchoHeadAs500);
    let dir = temp_dir();
    let (log, log_text) = path_in(&dir, "requests.jsonl");
    let url = format!("{}private?user=7&access_token=tok-123456", server.url());
    let out = support::run(
        &["run", &url, "-n", "20", "-c", "1", "-H", "Authorization: Bearer xyz", "--json", "--log-requests", &log_text],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let text = std::fs::read_to_string(&log).expect("the log");
    assert_eq!(text.lines().count(), 20, "every failure is logged:\n{text}");
    let lower = text.to_ascii_lowercase();
    assert!(!lower.contains("xyz"), "the bearer token is not in the log:\n{text}");
    assert!(!text.contains("tok-123456"), "the query's token is not in the log:\n{text}");
    assert!(text.contains("access_token=[redacted]") && text.contains("user=7"), "{text}");
    assert!(lower.contains("authorization: [redacted]"), "the echo is kept, its secret replaced:\n{text}");
}

#[test]
fn bad_log_flags_are_usage_errors() {
    let _shared = support::shared();
    let sink = Sink::start(&[]);
    let url = sink.url("/");
    let dir = temp_dir();
    let (_, log_text) = path_in(&dir, "requests.jsonl");
    for (flag, value) in [("--log-sample", "1"), ("--log-sample", "200%"), ("--log-per-second", "0")] {
        let out =
            support::run(&["run", &url, "-n", "5", "--log-requests", &log_text, flag, value], Duration::from_secs(30));
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains(flag), "{}", out.stderr);
    }
    let out = support::run(&["run", &url, "-n", "5", "--log-sample", "1%"], Duration::from_secs(30));
    out.assert_code(2);
    let out =
        support::run(&["run", &url, "-n", "5", "--log-requests", "/nonexistent-dir/x.jsonl"], Duration::from_secs(30));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("cannot write the request log"), "{}", out.stderr);
}
