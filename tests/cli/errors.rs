//! Failures are counted under their kind, and the exit code follows the documented rules:
//! 0 without thresholds (failures alone do not fail a run), 1 with `--threshold 'error_rate<1%'`.

use std::time::Duration;

use serde_json::Value;

use crate::support::servers::{Behaviour, TestServer};
use crate::support::{self, Sink, count, num};

/// Runs `url` with `args` twice, without and with an error-rate threshold, checks the exit codes
/// (0, then 1) and that every one of the `n` requests failed as `kind`; returns the first summary.
fn assert_all_fail_as(url: &str, args: &[&str], n: u64, kind: &str) -> Value {
    let n_text = n.to_string();
    let mut base = vec!["run", url, "-n", n_text.as_str(), "--json"];
    base.extend_from_slice(args);

    let out = support::run(&base, Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/completed"), n, "{kind}: completed");
    assert_eq!(count(&summary, "/requests/failed"), n, "{kind}: failed");
    assert_eq!(count(&summary, "/requests/ok"), 0, "{kind}: ok");
    assert_eq!(count(&summary, &format!("/errors/{kind}")), n, "{kind}: counted under its kind\n{summary:#}");
    let kinds: Vec<&String> = summary["errors"].as_object().expect("errors is an object").keys().collect();
    assert_eq!(kinds, vec![kind], "{kind}: no other kind expected");
    assert_eq!(num(&summary, "/requests/error_rate"), 1.0);

    let mut gated = base.clone();
    gated.extend_from_slice(&["--threshold", "error_rate<1%"]);
    let out = support::run(&gated, Duration::from_secs(30));
    out.assert_code(1).assert_no_panic();
    let verdict = &out.json()["thresholds"][0];
    assert_eq!(verdict["pass"], false, "{verdict}");
    assert_eq!(num(verdict, "/value"), 1.0, "{verdict}");
    summary
}

/// Nothing listens at the port: `connect_refused`, and no latency figures (nothing answered).
#[test]
fn nothing_listening_is_connect_refused() {
    let _load = support::shared();
    let url = format!("http://127.0.0.1:{}/", support::free_port());
    let summary = assert_all_fail_as(&url, &["-c", "2"], 20, "connect_refused");
    assert_eq!(summary["latency_ms"], Value::Null);
    assert_eq!(count(&summary, "/connect_ms/count"), 0);
}

/// Bytes that are not HTTP: `malformed_response`.
#[test]
fn garbage_is_malformed_response() {
    let _load = support::shared();
    let server = TestServer::start(Behaviour::Garbage);
    assert_all_fail_as(&server.url(), &["-c", "2"], 20, "malformed_response");
}

/// A response cut short (Content-Length: 100, 10 bytes, close): `reset`.
#[test]
fn close_mid_response_is_reset() {
    let _load = support::shared();
    let server = TestServer::start(Behaviour::Partial);
    assert_all_fail_as(&server.url(), &["-c", "2"], 20, "reset");
}

/// A server that never answers, with `--timeout 300ms`: `timeout`, after about 300 ms each.
#[test]
fn no_answer_is_timeout() {
    let _load = support::shared();
    let server = TestServer::start(Behaviour::Silent);
    let summary = assert_all_fail_as(&server.url(), &["-c", "2", "--timeout", "300ms"], 4, "timeout");
    // Two loops, two requests each, 300 ms per request.
    let took = num(&summary, "/duration_s");
    assert!((0.5..3.0).contains(&took), "4 timeouts of 300 ms on 2 connections took {took} s");
}

/// `503` answers: `status_5xx`, and the status itself counted; the document records it too.
#[test]
fn service_unavailable_is_status_5xx() {
    let _load = support::shared();
    let sink = Sink::start(&["--status", "503"]);
    let summary = assert_all_fail_as(&sink.url("/"), &["-c", "2"], 20, "status_5xx");
    assert_eq!(count(&summary, "/status/503"), 20);
    // Failed answers are not in the latency of successes, but in the latency of every request.
    assert!(summary["latency_ms"].is_null(), "no success, so no latency: {summary:#}");
    assert!(num(&summary, "/latency_all_ms/max") > 0.0);
    assert_eq!(count(&summary, "/latency_all_ms/given_up"), 0, "answered failures are not given up");
}

/// `--error-rate 100%` on the sink answers 500: also `status_5xx`.
#[test]
fn sink_error_rate_is_status_5xx() {
    let _load = support::shared();
    let sink = Sink::start(&["--error-rate", "100%"]);
    let summary = assert_all_fail_as(&sink.url("/"), &["-c", "2"], 20, "status_5xx");
    assert_eq!(count(&summary, "/status/500"), 20);
}

/// `--require-target` with nothing listening: exit 3 before any load, with a clear message.
#[test]
fn require_target_without_a_target_exits_3() {
    let _load = support::shared();
    let port = support::free_port();
    let url = format!("http://127.0.0.1:{port}/");
    let out = support::run(&["run", &url, "-n", "10", "--require-target", "--json"], Duration::from_secs(20));
    out.assert_code(3).assert_no_panic();
    assert!(out.stdout.trim().is_empty(), "no summary expected when the run did not start:\n{}", out.stdout);
    assert!(
        out.stderr.contains("nothing answers") && out.stderr.contains(&port.to_string()),
        "stderr should say that nothing answers at the port:\n{}",
        out.stderr
    );
}
