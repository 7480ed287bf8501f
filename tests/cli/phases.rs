//! Plans in phases and scenarios that start later: a setup that exports what it extracted to the
//! load, a teardown that runs however the load ended, `start` and `after` on time, and the
//! field report's connections stress test as an example plan.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::Value;

use crate::support::plans::{example, recorded, write_plan};
use crate::support::{self, count, num, spawn_sink, text};

/// The targets of every recorded request whose path starts with `prefix`.
fn targets(records: &[Value], prefix: &str) -> Vec<String> {
    records.iter().filter_map(|r| r["target"].as_str()).filter(|t| t.starts_with(prefix)).map(str::to_string).collect()
}

/// The phase named `name` of a summary.
fn phase<'a>(summary: &'a Value, name: &str) -> &'a Value {
    summary["phases"]
        .as_array()
        .and_then(|phases| phases.iter().find(|p| p["name"] == name))
        .unwrap_or_else(|| panic!("no phase {name:?} in {summary:#}"))
}

/// The setup creates 20 items (the echo sink numbers each request), exports their ids, and
/// the load reads each of them back by that id; the teardown deletes them all. The sink's own
/// record is the judge: every id the setup was given is read and deleted, and no other.
#[test]
fn a_setups_exported_ids_reach_the_load_and_the_teardown() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--echo", "--record", &record]);
    let plan = write_plan(
        &dir,
        "phases.toml",
        r#"
[[scenario]]
name = "create"
phase = "setup"
users = 4
iterations = 5
export = ["item"]
flow = [ { request = { method = "POST", path = "/items", body = "{}", extract = { item = { json = "$.id" } } } } ]

[[scenario]]
name = "read"
users = 1
iterations = 20
flow = [ { request = { path = "/items/{{ item[iteration] }}", name = "GET /items/:id" } } ]

[[scenario]]
name = "delete"
phase = "teardown"
users = 1
iterations = 1
flow = [ { request = { method = "DELETE", path = "/items?ids={{ item | join(',') }}" } } ]
"#,
    );
    let base = format!("http://{addr}");
    let (results_path, results) = support::path_in(&dir, "results.json");
    let out = support::run(&["run", &plan, "--base-url", &base, "--json", "-o", &results], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    support::assert_valid_results(&support::read_json(&results_path));
    assert_eq!(count(phase(&summary, "setup"), "/exported/item"), 20, "{summary:#}");
    let report = support::run(&["report", &results, "-f", "md"], Duration::from_secs(30));
    report.assert_code(0).assert_no_panic();
    assert!(report.stdout.contains("Phases") && report.stdout.contains("exported item ×20"), "{}", report.stdout);
    assert_eq!(count(phase(&summary, "setup"), "/ok"), 20);
    // The load's own figures are the load's: 20 reads, not the setup's or teardown's requests.
    assert_eq!(count(&summary, "/requests/ok"), 20, "{summary:#}");
    assert_eq!(count(phase(&summary, "teardown"), "/ok"), 1);
    assert!(out.stderr.contains("-- setup: 20 ok, 0 failed"), "{}", out.stderr);

    let records = recorded(&record_path, 41, Duration::from_secs(10));
    // The echo sink answered the creations with ids; which ones is the sink's business.
    let created: Vec<u64> =
        records.iter().enumerate().filter(|(_, r)| r["method"] == "POST").map(|(index, _)| index as u64).collect();
    assert_eq!(created.len(), 20);
    let read: BTreeSet<String> =
        targets(&records, "/items/").iter().map(|t| t.trim_start_matches("/items/").to_string()).collect();
    assert_eq!(read.len(), 20, "every exported id read once: {read:?}");
    assert!(read.iter().all(|id| id.parse::<u64>().is_ok()), "ids, not template text: {read:?}");
    let deleted = targets(&records, "/items?ids=");
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    let deleted: BTreeSet<String> =
        deleted[0].trim_start_matches("/items?ids=").split(',').map(str::to_string).collect();
    assert_eq!(deleted, read, "the teardown deletes what the setup created and the load read");
}

/// An abort rule ends the load early; the teardown still runs, and says so.
#[test]
fn the_teardown_runs_after_an_abort() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = write_plan(
        &dir,
        "abort.toml",
        r#"
[[scenario]]
name = "load"
rate = 20
duration = "30s"
flow = [ { request = { path = "/load" } } ]

[[scenario]]
name = "cleanup"
phase = "teardown"
users = 1
iterations = 3
flow = [ { request = { method = "DELETE", path = "/cleanup/{{ iteration }}" } } ]

[abort]
when = ["completed>10"]
window = "1s"
"#,
    );
    let base = format!("http://{addr}");
    let out = support::run(&["run", &plan, "--base-url", &base, "--json"], Duration::from_secs(60));
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    assert!(num(&summary, "/duration_s") < 10.0, "the abort cut the 30 s load short: {summary:#}");
    assert_eq!(text(phase(&summary, "load"), "/ended"), "aborted");
    let teardown = phase(&summary, "teardown");
    assert_eq!(text(teardown, "/ended"), "completed", "{summary:#}");
    assert_eq!(count(teardown, "/ok"), 3);
    let sent = count(&summary, "/requests/sent") as usize;
    let records = recorded(&record_path, sent + 3, Duration::from_secs(10));
    let cleanups = targets(&records, "/cleanup/");
    assert_eq!(cleanups, ["/cleanup/0", "/cleanup/1", "/cleanup/2"], "after the load's requests");
    let last_load = records.iter().rposition(|r| r["target"] == "/load").expect("the load ran");
    let first_cleanup = records.iter().position(|r| r["target"] == "/cleanup/0").expect("cleaned up");
    assert!(first_cleanup > last_load, "the teardown starts after the load ended");
}

/// Ctrl-C during the load: the teardown runs, and the results are written, partial.
#[test]
fn the_teardown_runs_after_ctrl_c() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_, record) = support::path_in(&dir, "record.jsonl");
    let (_, results) = support::path_in(&dir, "results.json");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = write_plan(
        &dir,
        "interrupted.toml",
        r#"
[[scenario]]
name = "load"
rate = 20
duration = "60s"
flow = [ { request = { path = "/load" } } ]

[[scenario]]
name = "cleanup"
phase = "teardown"
users = 1
iterations = 2
flow = [ { request = { method = "DELETE", path = "/cleanup" } } ]
"#,
    );
    let base = format!("http://{addr}");
    let running = support::spawn(&["run", &plan, "--base-url", &base, "-o", &results], None);
    std::thread::sleep(Duration::from_secs(2));
    running.signal("INT");
    let out = running.wait(Duration::from_secs(60));
    out.assert_code(130).assert_no_panic();
    assert!(out.stdout.contains("-- teardown: 2 ok, 0 failed"), "{}", out.stdout);
    let doc = support::read_json(std::path::Path::new(&results));
    assert_eq!(doc["summary"]["partial"], true);
    assert_eq!(text(phase(&doc["summary"], "load"), "/ended"), "interrupted");
    assert_eq!(count(phase(&doc["summary"], "teardown"), "/ok"), 2);
}

/// `start = "1.5s"` and `after = NAME` start their scenarios on time (±100 ms), as the target
/// saw it: the sink's record times the first request of each.
#[test]
fn start_and_after_start_scenarios_on_time() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = write_plan(
        &dir,
        "timing.toml",
        r#"
[[scenario]]
name = "first"
rate = 20
duration = "1s"
flow = [ { request = { path = "/first" } } ]

[[scenario]]
name = "second"
after = "first"
rate = 20
duration = "1s"
flow = [ { request = { path = "/second" } } ]

[[scenario]]
name = "late"
start = "1.5s"
rate = 20
duration = "500ms"
flow = [ { request = { path = "/late" } } ]
"#,
    );
    let base = format!("http://{addr}");
    let (results_path, results) = support::path_in(&dir, "results.json");
    let out = support::run(&["run", &plan, "--base-url", &base, "--json", "-o", &results], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let doc = support::read_json(&results_path);
    support::assert_valid_results(&doc);
    // The timeline says in which second each later scenario started.
    let started_in = |name: &str| {
        doc["timeline"]
            .as_array()
            .and_then(|t| t.iter().find(|e| e["started"].as_array().is_some_and(|s| s.iter().any(|n| n == name))))
    };
    assert_eq!(started_in("second").map(|e| count(e, "/second")), Some(2), "second started in the 2nd second");
    assert_eq!(started_in("late").map(|e| count(e, "/second")), Some(2), "late started in the 2nd second");
    let records = recorded(&record_path, 50, Duration::from_secs(10));
    let first_at = |path: &str| {
        records
            .iter()
            .find(|r| r["target"] == path)
            .map(|r| r["t_ms"].as_f64().unwrap_or(0.0))
            .unwrap_or_else(|| panic!("no {path} in the record"))
    };
    let zero = first_at("/first");
    let second = (first_at("/second") - zero) / 1000.0;
    let late = (first_at("/late") - zero) / 1000.0;
    assert!((0.9..=1.1).contains(&second), "after = first: {second:.3}s, not 1s\n{summary:#}");
    assert!((1.4..=1.6).contains(&late), "start = 1.5s: {late:.3}s\n{summary:#}");
    // The summary says when each started, on pummel's clock.
    let started = |i: usize| num(&summary, &format!("/scenarios/{i}/started_s"));
    assert!(started(0) < 0.1 && (0.9..=1.1).contains(&started(1)) && (1.4..=1.6).contains(&started(2)));
    // Nothing of "second" before "first" ended, nothing of "late" before its start.
    let last_first =
        records.iter().filter(|r| r["target"] == "/first").filter_map(|r| r["t_ms"].as_f64()).fold(0.0, f64::max);
    assert!(first_at("/second") >= last_first, "second began before first ended");
    assert_eq!(records.iter().filter(|r| r["target"] == "/late").count(), 10, "20/s for 0.5 s");
}

/// Mistakes in phases and order are errors at their place, nothing is run.
#[test]
fn bad_phases_and_orders_are_errors_at_their_place() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(
        &dir,
        "bad.toml",
        r#"[target]
base_url = "http://127.0.0.1:9"

[[scenario]]
name = "a"
after = "b"
users = 1
iterations = 1
export = ["x"]
flow = [ { request = { path = "/" } } ]

[[scenario]]
name = "b"
after = "a"
phase = "cleanup"
users = 1
iterations = 1
flow = [ { request = { path = "/" } } ]
"#,
    );
    let out = support::run(&["check", &plan], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    for expected in [
        format!("{plan}:9:1: error: `export` applies to setup scenarios"),
        format!("{plan}:9:11: error: \"x\" is not extracted by this scenario's flow"),
        format!("{plan}:15:9: error: unknown phase \"cleanup\""),
    ] {
        assert!(out.stderr.contains(&expected), "missing {expected:?} in:\n{}", out.stderr);
    }
    let dir = support::temp_dir();
    let looping = write_plan(
        &dir,
        "loop.toml",
        r#"[target]
base_url = "http://127.0.0.1:9"

[[scenario]]
name = "a"
after = "b"
users = 1
iterations = 1
flow = [ { request = { path = "/" } } ]

[[scenario]]
name = "b"
after = "a"
users = 1
iterations = 1
flow = [ { request = { path = "/" } } ]
"#,
    );
    let out = support::run(&["check", &looping], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    assert!(
        out.stderr.contains(&format!("{looping}:6:9: error: scenario \"a\" waits for itself through after")),
        "{}",
        out.stderr
    );
}

/// The field report's procedure, scaled down: 200 subscriptions created and exported, one
/// update, then a version probe every second until the end, and the subscriptions deleted.
#[test]
fn the_connections_stress_example_runs_against_the_echo_sink() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--echo", "--record", &record]);
    let base = format!("http://{addr}");
    let plan = example("connections-stress.toml");
    let out = support::run(&["check", &plan], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let out = support::run(
        &["run", &plan, "--base-url", &base, "-e", "subscriptions=200", "-d", "3s", "--json"],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(phase(&summary, "setup"), "/exported/subscription"), 200, "{summary:#}");
    assert_eq!(count(phase(&summary, "teardown"), "/ok"), 200, "{summary:#}");
    let records = recorded(&record_path, 400, Duration::from_secs(10));
    let update = records.iter().find(|r| r["target"] == "/v2/op/update").expect("the update was sent");
    assert!(update["body"].as_str().unwrap_or("").contains("\"subscriptions\": 200"), "{update}");
    let probes = targets(&records, "/version").len();
    assert!((3..=4).contains(&probes), "one probe a second for 3 s, not {probes}");
    let deleted: BTreeSet<String> = targets(&records, "/v2/subscriptions/").into_iter().collect();
    assert_eq!(deleted.len(), 200, "each subscription deleted once");
}
