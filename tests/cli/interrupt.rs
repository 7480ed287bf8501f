//! SIGINT in the middle of a run: exit 130, and the results written, marked partial.

use std::thread;
use std::time::{Duration, Instant};

use crate::support::{self, Sink, count, num};

#[test]
fn sigint_writes_partial_results_and_exits_130() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "interrupted.json");
    let running = support::spawn(&["run", &sink.url("/"), "-d", "10s", "-c", "4", "-o", &file, "--quiet"], None);
    thread::sleep(Duration::from_millis(1500));
    let signalled = Instant::now();
    running.signal("INT");
    let out = running.wait(Duration::from_secs(10));
    let took = signalled.elapsed();
    out.assert_code(130).assert_no_panic();
    assert!(took < Duration::from_secs(4), "pummel took {took:?} to stop after SIGINT");

    assert!(path.exists(), "the results file must be written when interrupted");
    let doc = support::read_json(&path);
    support::assert_valid_results(&doc);
    let summary = &doc["summary"];
    assert_eq!(summary["partial"], true);
    assert_eq!(summary["interrupted"], true);
    assert_eq!(summary["aborted"], serde_json::Value::Null);
    let completed = count(summary, "/requests/completed");
    assert!(completed > 0, "requests before the signal must be counted");
    let timeline = doc["timeline"].as_array().expect("timeline is an array");
    let in_timeline: u64 = timeline.iter().map(|e| count(e, "/completed")).sum();
    assert_eq!(in_timeline, completed, "the timeline of an interrupted run adds up to its summary");
    let measured = num(summary, "/duration_s");
    assert!((1.0..4.0).contains(&measured), "measured {measured} s of a run interrupted after 1.5 s");
    let note = summary["stages"][0]["note"].as_str().unwrap_or_default();
    assert!(note.contains("interrupted"), "the stage should say it was interrupted, note: {note:?}");
}
