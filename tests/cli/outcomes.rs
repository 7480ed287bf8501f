//! Every request that was due has an outcome: ok, failed by kind (`unanswered` when the target
//! still held it after the drain), or dropped. Nothing a user sent vanishes from the counts,
//! and what the target never answered fails the error-rate threshold.

use std::time::{Duration, Instant};

use crate::support::servers::{Behaviour, TestServer};
use crate::support::{self, Sink, count, num};

/// A target that holds every answer 5 s, offered 200 req/s for 2 s with a 500 ms drain: all 400
/// requests were sent and none was answered, so all 400 end as `unanswered` failures — in the
/// counts, in `errors`, in the last second of the timeline — `unanswered==0` and
/// `error_rate<1%` fail, and the run ends soon after its drain.
#[test]
fn requests_still_unanswered_after_the_drain_are_failures() {
    let _load = support::shared();
    let sink = Sink::start(&["--delay", "5s"]);
    let dir = support::temp_dir();
    let (path, results) = support::path_in(&dir, "results.json");
    let started = Instant::now();
    let out = support::run(
        &["run", &sink.url("/"), "-r", "200", "-d", "2s", "--drain", "500ms", "--json", "-o", &results]
            .into_iter()
            .chain(["--threshold", "unanswered==0", "--threshold", "error_rate<1%"])
            .collect::<Vec<_>>(),
        Duration::from_secs(30),
    );
    let took = started.elapsed();
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 400, "{summary:#}");
    assert_eq!(count(&summary, "/requests/ok"), 0, "{summary:#}");
    assert_eq!(count(&summary, "/requests/failed"), 400, "{summary:#}");
    assert_eq!(count(&summary, "/requests/unanswered"), 400, "{summary:#}");
    assert_eq!(count(&summary, "/errors/unanswered"), 400, "{summary:#}");
    assert_eq!(num(&summary, "/requests/error_rate"), 1.0);
    assert!(summary["thresholds"].as_array().is_some_and(|t| t.iter().all(|v| v["pass"] == false)), "{summary:#}");
    // Given up at the end of the drain: at least 500 ms after the last one was due, a lower bound.
    let all = &summary["latency_all_ms"];
    assert_eq!(count(all, "/given_up"), 400, "{all:#}");
    assert!(num(all, "/min") >= 500.0, "{all:#}");
    assert!(num(all, "/given_up_from_ms") <= num(all, "/min"), "{all:#}");
    assert!(summary["latency_ms"].is_null(), "no success, no latency of successes");
    assert!(took < Duration::from_secs(10), "the run waits its drain, not the target's 5 s: {took:?}");
    let doc = support::read_json(&path);
    let timeline = doc["timeline"].as_array().expect("timeline");
    let unanswered: u64 = timeline.iter().map(|e| count(e, "/unanswered")).sum();
    assert_eq!(unanswered, 400, "the timeline says when they were given up");
}

/// The same target with a drain long enough: the answers that come during the drain are ok,
/// but they are not in the achieved rate, which counts only what arrived inside the window.
#[test]
fn answers_during_the_drain_are_ok_but_not_achieved() {
    let _load = support::shared();
    let sink = Sink::start(&["--delay", "1500ms"]);
    let out = support::run(
        &["run", &sink.url("/"), "-r", "100", "-d", "1s", "--drain", "5s", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 100, "{summary:#}");
    assert_eq!(count(&summary, "/requests/unanswered"), 0, "{summary:#}");
    assert_eq!(num(&summary, "/rate/achieved"), 0.0, "nothing was answered inside the 1 s window: {summary:#}");
    assert_eq!(num(&summary, "/rate/offered"), 100.0);
}

/// A body cut short by the server still moved bytes: they are counted in `bytes.in`, and the
/// failure keeps no latency of successes.
#[test]
fn bytes_of_an_answer_cut_short_are_counted() {
    let _load = support::shared();
    let server = TestServer::start(Behaviour::Partial);
    let out = support::run(&["run", &server.url(), "-n", "5", "-c", "1", "--json"], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/errors/reset"), 5, "{summary:#}");
    // Each answer: a 40-byte head and 10 of its 100 body bytes.
    assert!(count(&summary, "/bytes/in") >= 5 * 50, "{summary:#}");
}

/// Bytes that are not HTTP fail as `malformed_response`, and the reason is kept with the
/// results, as `other`'s messages are.
#[test]
fn a_malformed_answer_keeps_its_reason() {
    let _load = support::shared();
    let server = TestServer::start(Behaviour::Garbage);
    let dir = support::temp_dir();
    let (path, results) = support::path_in(&dir, "results.json");
    let out = support::run(
        &["run", &server.url(), "-n", "3", "-c", "1", "--timeout", "2s", "-o", &results, "--quiet"],
        Duration::from_secs(30),
    );
    out.assert_no_panic();
    let doc = support::read_json(&path);
    assert_eq!(count(&doc, "/summary/errors/malformed_response"), 3, "{doc:#}");
    let messages = doc["other_errors"].to_string();
    assert!(messages.contains("malformed response:"), "the reason is kept: {messages}");
}
