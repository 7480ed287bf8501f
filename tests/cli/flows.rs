//! Multi-step flows of plan files, end to end: the real binary runs a plan against `pummel sink`
//! (`--echo` answers describe each request, `--record` keeps what arrived) and its results
//! document is read: `summary.by_name`, `checks`, `branches` and `scenarios`.
//!
//! Each test checks one promise of issue 3: values extracted from a response feed the next
//! request; checks count passes and failures; `choose` splits by weight; a `unique` feeder never
//! repeats a row; `every` ticks and latency is counted from the tick; open-model flows and
//! linear ramps run at their rate; scenarios run side by side; WebSocket exchanges round-trip
//! and time out; `--dry-run` sends nothing. (That every example passes `pummel check` is
//! `plans::every_example_passes_check`, which globs `examples/*.toml`.)

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;

use crate::support::plans::{header, recorded, write_plan};
use crate::support::{self, Output, count, num, spawn_sink, text};

/// Runs `pummel run PLAN --base-url http://ADDR -o results.json -q extra...` for the plan
/// `body` (written to `dir`), waits at most `limit`, and returns what it printed and the
/// results document.
fn run_plan(
    dir: &tempfile::TempDir,
    addr: std::net::SocketAddr,
    body: &str,
    extra: &[&str],
    limit: Duration,
) -> (Output, Value) {
    let plan = write_plan(dir, "plan.toml", body);
    let (results_path, results) = support::path_in(dir, "results.json");
    let base = format!("http://{addr}");
    let mut args = vec!["run", plan.as_str(), "--base-url", base.as_str(), "-o", results.as_str(), "-q"];
    args.extend_from_slice(extra);
    let out = support::run(&args, limit);
    out.assert_no_panic();
    let document = if results_path.exists() { support::read_json(&results_path) } else { Value::Null };
    (out, document)
}

/// The `by_name` entry named `name`; panics listing the names otherwise.
fn by_name<'a>(summary: &'a Value, name: &str) -> &'a Value {
    let list = summary["by_name"].as_array().unwrap_or_else(|| panic!("no by_name in\n{summary:#}"));
    list.iter().find(|n| n["name"] == name).unwrap_or_else(|| panic!("no by_name entry {name:?} in\n{summary:#}"))
}

/// The `checks` entry named `name`.
fn check<'a>(summary: &'a Value, name: &str) -> &'a Value {
    let list = summary["checks"].as_array().unwrap_or_else(|| panic!("no checks in\n{summary:#}"));
    list.iter().find(|c| c["name"] == name).unwrap_or_else(|| panic!("no check {name:?} in\n{summary:#}"))
}

/// Iterations of scenario `name` (`summary.scenarios`).
fn iterations(summary: &Value, name: &str) -> u64 {
    let list = summary["scenarios"].as_array().unwrap_or_else(|| panic!("no scenarios in\n{summary:#}"));
    let entry = list.iter().find(|s| s["name"] == name).unwrap_or_else(|| panic!("no scenario {name:?}"));
    count(entry, "/iterations")
}

/// `summary.errors` as a map.
fn errors(summary: &Value) -> BTreeMap<String, u64> {
    summary["errors"]
        .as_object()
        .map(|m| m.iter().map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0))).collect())
        .unwrap_or_default()
}

/// The values after `key=` in a query string.
fn query_value<'a>(target: &'a str, key: &str) -> Option<&'a str> {
    let query = target.split_once('?')?.1;
    query.split('&').find_map(|pair| pair.strip_prefix(key)?.strip_prefix('='))
}

/// POST /items answers `{"id": N}` (the echo); the GET that follows uses `{{ id }}`. The sink's
/// record shows that every GET asks for exactly the id the sink gave the same user's POST just
/// before it (a one-thread sink numbers requests in the order it records them).
#[test]
fn extraction_feeds_the_next_request() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "received.jsonl");
    let (_sink, addr) = spawn_sink(&["--echo", "--threads", "1", "--record", &record]);
    let plan = r#"
[target]
base_url = "http://127.0.0.1:9"   # replaced by --base-url

[[scenario]]
users = 4
iterations = 25
flow = [
  { request = { method = "POST", path = "/items", json = { key = "{{ user }}.{{ iteration }}" }, name = "create", extract = { id = { json = "$.id" } } } },
  { request = { path = "/items/{{ id }}", query = { key = "{{ user }}.{{ iteration }}" }, name = "read" } },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    assert_eq!(count(by_name(summary, "create"), "/ok"), 100, "{summary:#}");
    assert_eq!(count(by_name(summary, "read"), "/ok"), 100, "{summary:#}");
    assert_eq!(iterations(summary, "scenario 1"), 100);

    let requests = recorded(&record_path, 200, Duration::from_secs(10));
    assert_eq!(requests.len(), 200);
    // Request n (from 1) of the record got echo id n: the POST of each key, by id.
    let mut post_ids: HashMap<String, u64> = HashMap::new();
    let mut read_ids = BTreeSet::new();
    for (index, request) in requests.iter().enumerate() {
        let id = index as u64 + 1;
        let target = text(request, "/target");
        match text(request, "/method") {
            "POST" => {
                assert_eq!(target, "/items", "{request}");
                let body: Value = serde_json::from_str(text(request, "/body")).expect("a JSON body");
                let key = text(&body, "/key").to_string();
                assert!(post_ids.insert(key, id).is_none(), "two POSTs of one user and iteration: {request}");
            }
            "GET" => {
                let key = query_value(target, "key").unwrap_or_else(|| panic!("no key in {target}"));
                let asked: u64 = target
                    .strip_prefix("/items/")
                    .and_then(|rest| rest.split('?').next())
                    .and_then(|n| n.parse().ok())
                    .unwrap_or_else(|| panic!("GET {target} is not /items/<number>"));
                let given = post_ids.get(key).unwrap_or_else(|| panic!("GET {target} before its POST"));
                assert_eq!(asked, *given, "GET {target} should ask for the id its POST got");
                assert!(asked < id, "an id is asked for after it was given");
                assert!(read_ids.insert(asked), "id {asked} read twice");
            }
            other => panic!("unexpected {other} {target}"),
        }
    }
    assert_eq!((post_ids.len(), read_ids.len()), (100, 100));
}

/// A check that always holds passes every time; one that never holds and fails its request
/// makes every request fail with `check_failed`; one that only counts (`fail = false`) tallies
/// the sink's 20 % of 500s while only those 500s fail requests.
#[test]
fn checks_count_passes_and_failures() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--echo"]);
    let plan = r#"
[[scenario]]
users = 2
iterations = 50
flow = [
  { request = { path = "/strict", name = "strict", check = [ { status = 200, name = "is 200" }, { body_contains = "no such text", name = "never", fail = true } ] } },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    let always = check(summary, "is 200");
    assert_eq!((count(always, "/passed"), count(always, "/failed")), (100, 0), "{always}");
    assert_eq!(num(always, "/pass_rate"), 1.0);
    let never = check(summary, "never");
    assert_eq!((count(never, "/passed"), count(never, "/failed")), (0, 100), "{never}");
    let strict = by_name(summary, "strict");
    assert_eq!((count(strict, "/completed"), count(strict, "/ok")), (100, 0), "{strict}");
    assert_eq!(count(strict, "/errors/check_failed"), 100, "{strict}");
    assert_eq!(count(summary, "/requests/failed"), 100);
    assert_eq!(errors(summary), BTreeMap::from([("check_failed".to_string(), 100)]));

    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--echo", "--error-rate", "20%"]);
    let plan = r#"
[[scenario]]
users = 4
iterations = 250
flow = [
  { request = { path = "/counted", name = "counted", check = [ { status = 200, fail = false, name = "status 200" } ] } },
]
"#;
    let (_out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(60));
    let summary = &results["summary"];
    let counted = check(summary, "status 200");
    let (passed, failed) = (count(counted, "/passed"), count(counted, "/failed"));
    assert_eq!(passed + failed, 1000, "{counted}");
    let pass_rate = num(counted, "/pass_rate");
    assert!((0.75..=0.85).contains(&pass_rate), "pass rate {pass_rate} with 20 % of 500s: {counted}");
    // Requests fail only for their 500s, never for the check that only counts.
    let status_500 = count(summary, "/status/500");
    assert_eq!(status_500, failed, "{summary:#}");
    assert_eq!(count(summary, "/requests/failed"), status_500);
    assert_eq!(errors(summary), BTreeMap::from([("status_5xx".to_string(), status_500)]));
}

/// `choose` 90 / 10 over 5,000 iterations: each branch is taken its share within ±3 points,
/// and the requests of each branch match its tally.
#[test]
fn weights_split_the_iterations() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
users = 8
iterations = 625
flow = [
  { choose = [
      { weight = 90, name = "browse", flow = [ { request = { path = "/browse", name = "browse" } } ] },
      { weight = 10, name = "buy", flow = [ { request = { path = "/buy", name = "buy" } } ] },
  ] },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(60));
    out.assert_code(0);
    let summary = &results["summary"];
    assert_eq!(iterations(summary, "scenario 1"), 5000);
    let branches = summary["branches"].as_array().expect("branches");
    let taken: Vec<(&str, u64, f64)> =
        branches.iter().map(|b| (b["name"].as_str().unwrap_or(""), count(b, "/taken"), num(b, "/share"))).collect();
    assert_eq!(taken.len(), 2, "{taken:?}");
    assert_eq!(taken[0].1 + taken[1].1, 5000, "{taken:?}");
    let (browse, buy) = (taken[0], taken[1]);
    assert_eq!((browse.0, buy.0), ("browse", "buy"));
    assert!((browse.2 - 0.9).abs() <= 0.03, "browse share {}", browse.2);
    assert!((buy.2 - 0.1).abs() <= 0.03, "buy share {}", buy.2);
    assert_eq!(count(by_name(summary, "browse"), "/completed"), browse.1);
    assert_eq!(count(by_name(summary, "buy"), "/completed"), buy.1);
}

/// A `unique` feeder with `when_exhausted = "end"` hands out each of its 3,000 rows once: the
/// sink receives exactly 3,000 requests, no id twice, and the run ends by itself although the
/// users' iterations would allow more.
#[test]
fn a_unique_feeder_never_repeats_a_row_and_ends_the_run() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "received.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let rows: String = (1..=3000).map(|i| format!("{i},name{i}\n")).collect();
    let (_, csv) = support::path_in(&dir, "rows.csv");
    std::fs::write(&csv, format!("id,name\n{rows}")).expect("write the CSV");
    let plan = r#"
[feeders.rows]
file = "rows.csv"
mode = "unique"
when_exhausted = "end"

[[scenario]]
users = 8
iterations = 1000
flow = [ { request = { path = "/u/{{ rows.id }}", name = "row" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(60));
    out.assert_code(0);
    let summary = &results["summary"];
    assert_eq!(count(by_name(summary, "row"), "/completed"), 3000, "{summary:#}");
    assert_eq!(iterations(summary, "scenario 1"), 3000);

    let requests = recorded(&record_path, 3000, Duration::from_secs(10));
    assert_eq!(requests.len(), 3000, "the sink received more than the file's rows");
    let mut seen = BTreeSet::new();
    for request in &requests {
        let target = text(request, "/target");
        let id: u32 = target.strip_prefix("/u/").and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{target}"));
        assert!((1..=3000).contains(&id), "{target}");
        assert!(seen.insert(id), "row {id} was handed out twice");
    }
}

/// `every = "500ms"` for 3 s: about 6 requests per user. Against a server slower than the
/// interval the ticks fall behind, and latency counts from each tick (when the request was
/// due), not from when it could be sent.
#[test]
fn every_ticks_and_latency_counts_from_the_tick() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
users = 3
duration = "3s"
flow = [ { every = "500ms", flow = [ { request = { path = "/tick", name = "tick" } } ] } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let tick = by_name(&results["summary"], "tick");
    let per_user = count(tick, "/completed") as f64 / 3.0;
    assert!((5.0..=7.0).contains(&per_user), "{per_user} requests per user in 3 s every 500 ms: {tick}");

    // 700 ms answers, due every 500 ms: request k starts ~200 ms later than the one before.
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--delay", "700ms"]);
    let plan = r#"
[[scenario]]
users = 1
duration = "3s"
flow = [ { every = "500ms", flow = [ { request = { path = "/slow", name = "slow" } } ] } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let slow = by_name(&results["summary"], "slow");
    let completed = count(slow, "/completed");
    assert!((4..=5).contains(&completed), "{completed} answers of 700 ms in 3 s: {slow}");
    let min = num(slow, "/latency_ms/min");
    let max = num(slow, "/latency_ms/max");
    assert!((650.0..900.0).contains(&min), "the first request is on time: min {min} ms");
    assert!(max >= 1000.0, "later requests were due earlier than sent: max {max} ms should be ≥ 1 s");
}

/// An open-model flow of two requests at 200 iterations/s for 3 s: ~600 iterations, ~1,200
/// requests.
#[test]
fn open_model_flows_run_iterations_at_the_rate() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
name = "open"
rate = 200
duration = "3s"
flow = [ { request = { path = "/a", name = "a" } }, { request = { path = "/b", name = "b" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    let done = iterations(summary, "open") as f64;
    assert!((done - 600.0).abs() <= 18.0, "{done} iterations at 200/s for 3 s");
    let completed = count(summary, "/requests/completed") as f64;
    assert!((completed - 1200.0).abs() <= 36.0, "{completed} requests");
    assert_eq!(count(by_name(summary, "a"), "/completed"), count(by_name(summary, "b"), "/completed"));
}

/// A linear ramp from 0 to 400/s over 4 s sends about its area (800) and rises second by second.
#[test]
fn a_linear_ramp_rises_to_its_rate() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
stages = [ { rate = 400, ramp = "4s" } ]
flow = [ { request = { path = "/ramp" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let completed = count(&results["summary"], "/requests/completed") as f64;
    assert!((completed - 800.0).abs() <= 40.0, "{completed} requests over a 0 → 400/s ramp of 4 s");
    let timeline: Vec<u64> = results["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .filter(|s| s["warmup"] != true)
        .map(|s| count(s, "/sent"))
        .collect();
    assert!(timeline.len() >= 4, "{timeline:?}");
    // Per second: ~50, 150, 250, 350.
    assert!(timeline[0] < timeline[3], "the ramp does not rise: {timeline:?}");
    assert!(timeline.windows(2).take(3).all(|w| w[0] < w[1]), "not rising second by second: {timeline:?}");
    assert!((30..=80).contains(&timeline[0]) && (300..=400).contains(&timeline[3]), "{timeline:?}");
}

/// Two scenarios run at once, each with its own statistics under its own name.
#[test]
fn scenarios_run_side_by_side_with_their_own_stats() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
name = "browsers"
users = 2
duration = "2s"
flow = [ { request = { path = "/page", name = "page" } }, { think = "50ms" } ]

[[scenario]]
name = "api"
rate = 50
duration = "2s"
flow = [ { request = { path = "/api", name = "api call" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    let page = by_name(summary, "page");
    let api = by_name(summary, "api call");
    assert_eq!((text(page, "/scenario"), text(api, "/scenario")), ("browsers", "api"));
    assert!(count(page, "/completed") >= 20, "{page}");
    let api_done = count(api, "/completed");
    assert!((90..=110).contains(&api_done), "{api_done} api calls at 50/s for 2 s");
    assert!(iterations(summary, "browsers") >= 20 && iterations(summary, "api") >= 90, "{summary:#}");
    assert_eq!(count(page, "/completed") + api_done, count(summary, "/requests/completed"));
    // Side by side, not one after the other.
    let seconds = num(summary, "/duration_s");
    assert!(seconds < 3.0, "two 2 s scenarios took {seconds} s");
}

/// A WebSocket session: connect, then 10 JSON-RPC pings each answered by the sink's echo with
/// the same id.
#[test]
fn a_websocket_session_round_trips() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
users = 2
iterations = 1
flow = [
  { ws_connect = { path = "/ws", name = "open" } },
  { repeat = 10, flow = [
      { ws_send = { json = { id = "{{ user }}-{{ iteration }}-x", method = "ping" }, name = "rpc" } },
      { ws_expect = { match_id = "$.id", json = "$.method", equals = "ping", timeout = "2s", name = "rpc" } },
  ] },
  { ws_close = true },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    let open = by_name(summary, "open");
    assert_eq!((count(open, "/completed"), count(open, "/ok")), (2, 2), "{open}");
    let rpc = by_name(summary, "rpc");
    assert_eq!(text(rpc, "/kind"), "ws");
    assert_eq!((count(rpc, "/completed"), count(rpc, "/ok")), (20, 20), "{rpc}");
    assert!(errors(summary).is_empty(), "{summary:#}");
}

/// Messages sent without a `ws_expect` after them complete when written — also the last one,
/// which the session's close completes: every message sent is counted once, none is left
/// unfinished.
#[test]
fn websocket_messages_without_an_expectation_complete_when_written() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
users = 2
iterations = 3
flow = [
  { ws_connect = { path = "/ws", name = "open" } },
  { ws_send = { text = "one", name = "note" } },
  { ws_send = { text = "two", name = "note" } },
  { ws_close = true },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    let note = by_name(summary, "note");
    assert_eq!((count(note, "/sent"), count(note, "/completed"), count(note, "/ok")), (12, 12, 12), "{note}");
    assert_eq!(count(summary, "/requests/unanswered"), 0, "{summary:#}");
    assert!(errors(summary).is_empty(), "{summary:#}");
}

/// The sink holds each echo 1 s; an expectation that waits 200 ms times out, and each timeout
/// is counted as `ws_expect_timeout`, in all and under the exchange's name.
#[test]
fn a_websocket_expectation_times_out() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--ws-delay", "1s"]);
    let plan = r#"
[[scenario]]
users = 2
iterations = 1
flow = [
  { ws_connect = { path = "/ws", name = "open" } },
  { repeat = 3, flow = [
      { ws_send = { json = { id = "{{ user }}", method = "ping" }, name = "rpc" } },
      { ws_expect = { match_id = "$.id", timeout = "200ms", name = "rpc" } },
  ] },
]
"#;
    let (_out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    let summary = &results["summary"];
    let rpc = by_name(summary, "rpc");
    assert_eq!(count(rpc, "/errors/ws_expect_timeout"), 6, "{rpc}");
    assert_eq!(count(rpc, "/ok"), 0, "{rpc}");
    assert_eq!(errors(summary).get("ws_expect_timeout"), Some(&6), "{summary:#}");
}

/// An exchange whose answer does not come in time (the echo is held 2 s, the expect waits
/// 200 ms) counts once, as a failure under the send's name: not again under the expect's own
/// row (`ws expect`, the name of an unnamed expect), and once in the totals.
#[test]
fn a_timed_out_exchange_counts_once() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--echo", "--ws-delay", "2s"]);
    let plan = r#"
[[scenario]]
users = 2
iterations = 1
flow = [
  { ws_connect = { path = "/ws", name = "open" } },
  { repeat = 3, flow = [
      { ws_send = { json = { id = "{{ user }}", method = "ping" }, name = "rpc" } },
      { ws_expect = { match_id = "$.id", timeout = "200ms" } },
  ] },
]
"#;
    let (_out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    let summary = &results["summary"];
    let rpc = by_name(summary, "rpc");
    assert_eq!((count(rpc, "/completed"), count(rpc, "/errors/ws_expect_timeout")), (6, 6), "{rpc}");
    assert_eq!(count(by_name(summary, "ws expect"), "/completed"), 0, "{summary:#}");
    assert_eq!((count(summary, "/requests/completed"), count(summary, "/requests/failed")), (8, 6), "{summary:#}");
}

/// Ticks whose send fails (nothing listens: every reopen of the session is refused) count
/// once each, under the send's name; the expect after a failed send neither waits nor counts.
#[test]
fn a_failed_send_is_not_counted_again_by_its_expect() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let nothing: std::net::SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let plan = r#"
[[scenario]]
users = 2
iterations = 1
flow = [
  { ws_connect = { path = "/ws", name = "open" } },
  { every = "50ms", repeat = 3, flow = [
      { ws_send = { json = { id = "{{ user }}", method = "ping" }, name = "rpc" } },
      { ws_expect = { match_id = "$.id", timeout = "5s" } },
  ] },
]
"#;
    let (_out, results) = run_plan(&dir, nothing, plan, &[], Duration::from_secs(30));
    let summary = &results["summary"];
    let rpc = by_name(summary, "rpc");
    assert_eq!((count(rpc, "/completed"), count(rpc, "/errors/connect_refused")), (6, 6), "{rpc}");
    let expect = by_name(summary, "ws expect");
    assert_eq!(count(expect, "/completed"), 0, "the expects of failed sends count nothing: {expect}");
    assert_eq!((count(summary, "/requests/completed"), count(summary, "/requests/failed")), (8, 8), "{summary:#}");
    assert_eq!(errors(summary).get("connect_refused"), Some(&8), "{summary:#}");
}

/// A WebSocket user whose server goes away reconnects on its next step: while nothing listens,
/// each attempt fails as `connect_refused` (not `ws_closed`); once the server is back (a new
/// process on the same port), the exchanges succeed again on a new session.
#[test]
fn a_websocket_user_reconnects_after_its_server_restarts() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let addr: std::net::SocketAddr = ([127, 0, 0, 1], support::free_port()).into();
    let listen = addr.to_string();
    let start_sink = || {
        let mut sink = support::spawn(&["sink", "--listen", &listen, "--duration", "60s"], None);
        assert!(sink.wait_for_stderr("listening on", Duration::from_secs(10)), "the sink did not start on {addr}");
        assert!(support::wait_until_listening(addr, Duration::from_secs(5)) && sink.is_alive());
        sink
    };
    let sink = start_sink();
    let plan = write_plan(
        &dir,
        "chat.toml",
        r#"
[[scenario]]
users = 2
duration = "7s"
flow = [
  { ws_connect = { path = "/ws", name = "open" } },
  { every = "100ms", flow = [
      { ws_send = { json = { id = "{{ user }}-{{ now_ms() }}" }, name = "say" } },
      { ws_expect = { match_id = "$.id", timeout = "1s", name = "say" } },
  ] },
]
"#,
    );
    let (results_path, results) = support::path_in(&dir, "results.json");
    let base = format!("http://{addr}");
    let run = support::spawn(&["run", &plan, "--base-url", &base, "-o", &results, "-q", "-t", "1"], None);
    std::thread::sleep(Duration::from_millis(1500));
    sink.signal("KILL");
    drop(sink);
    std::thread::sleep(Duration::from_millis(1500));
    let _back = start_sink();
    let out = run.wait(Duration::from_secs(30));
    out.assert_no_panic();
    let document = support::read_json(&results_path);
    let summary = &document["summary"];
    let say = by_name(summary, "say");
    assert!(count(say, "/errors/connect_refused") > 0, "refused reconnects: {say}");
    assert!(say["errors"].get("ws_closed").is_none(), "a step after the close reconnects: {say}");
    // The last whole seconds, after the restart, answer again.
    let timeline = document["timeline"].as_array().expect("timeline");
    let late_ok: u64 = timeline.iter().filter(|e| count(e, "/second") >= 5).map(|e| count(e, "/ok")).sum();
    assert!(late_ok >= 10, "exchanges after the restart: {late_ok} in {timeline:#?}");
}

/// `--dry-run 3` prints three rendered requests of each scenario and sends nothing.
#[test]
fn dry_run_renders_requests_and_sends_nothing() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "received.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = r#"
[variables]
team = "perf"

[[scenario]]
name = "writers"
users = 2
duration = "5s"
flow = [
  { request = { method = "POST", path = "/items", headers = { X-Team = "{{ team }}" }, json = { n = "{{ iteration }}" }, extract = { id = { json = "$.id" } } } },
  { request = { path = "/items/{{ id }}" } },
]

[[scenario]]
name = "readers"
rate = 10
duration = "5s"
flow = [ { request = { path = "/list?page={{ iteration }}" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &["--dry-run", "3"], Duration::from_secs(30));
    out.assert_code(0);
    assert!(results.is_null(), "a dry run writes no results");
    let base = format!("http://{addr}");
    let lines: Vec<&str> = out
        .stdout
        .lines()
        .filter(|l| l.starts_with("GET ") || l.starts_with("POST ") || l.starts_with("# scenario"))
        .collect();
    assert_eq!(
        lines,
        [
            "# scenario \"writers\"".to_string(),
            format!("POST {base}/items"),
            format!("GET {base}/items/<id>"),
            format!("POST {base}/items"),
            "# scenario \"readers\"".to_string(),
            format!("GET {base}/list?page=0"),
            format!("GET {base}/list?page=1"),
            format!("GET {base}/list?page=2"),
        ],
        "{}",
        out.stdout
    );
    assert!(out.stdout.contains("X-Team: perf"), "{}", out.stdout);
    assert!(out.stdout.contains(r#"{"n":"0"}"#) && out.stdout.contains(r#"{"n":"1"}"#), "{}", out.stdout);
    // The sink flushes its record every second: after 1.5 s it would show any request.
    std::thread::sleep(Duration::from_millis(1500));
    let received = std::fs::read_to_string(&record_path).unwrap_or_default();
    assert!(received.is_empty(), "a dry run sent:\n{received}");
}

/// `auth.aws_sigv4` signs every request of a plan: each recorded request carries an
/// `AWS4-HMAC-SHA256` authorization with the key from the named environment variable (here
/// `CARGO_PKG_NAME`, which cargo sets for tests: no secret is needed), the date, and
/// `x-amz-content-sha256` equal to the SHA-256 of the body that arrived (the shared random
/// payload of `random_body`).
#[test]
fn signed_plans_sign_every_request_with_the_payload_hash() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "received.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = r#"
[target]
auth = { aws_sigv4 = { region = "eu-west-1", service = "s3", access_key_env = "CARGO_PKG_NAME", secret_key_env = "CARGO_MANIFEST_DIR" } }

[[scenario]]
users = 2
iterations = 5
flow = [
  { request = { method = "PUT", path = "/bucket/obj-{{ user }}-{{ iteration }}", random_body = "4KiB", name = "put" } },
  { request = { method = "DELETE", path = "/bucket/obj-{{ user }}-{{ iteration }}", name = "delete" } },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(20));
    out.assert_code(0);
    assert_eq!(count(by_name(&results["summary"], "put"), "/ok"), 10);
    let requests = recorded(&record_path, 20, Duration::from_secs(10));
    let mut signatures = BTreeSet::new();
    for request in &requests {
        let auth = crate::support::plans::header(request, "authorization").expect("an authorization header");
        assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=pummel/"), "{auth}");
        assert!(auth.contains("/eu-west-1/s3/aws4_request"), "{auth}");
        signatures.insert(auth.rsplit("Signature=").next().unwrap_or("").to_string());
        let date = crate::support::plans::header(request, "x-amz-date").expect("x-amz-date");
        assert_eq!(date.len(), 16, "{date}");
        let body = request["body_base64"].as_str().map(|b| {
            use base64::Engine as _;
            base64::engine::general_purpose::STANDARD.decode(b).expect("base64 body")
        });
        let hash = crate::support::plans::header(request, "x-amz-content-sha256").expect("x-amz-content-sha256");
        let expected = {
            use sha2::Digest as _;
            hex::encode(sha2::Sha256::digest(body.unwrap_or_default()))
        };
        assert_eq!(hash, expected, "the signed payload hash is the body's");
    }
    // Every key differs, so every signature does.
    assert_eq!(signatures.len(), 20);
}

/// Stages of users: 10 users for 2 s, then 2 for 2 s. The timeline's connection gauge shows
/// 10 held connections in the first part and 2 in the second (the 8 others left: their
/// connections closed), and the request rate falls with them.
#[test]
fn stages_of_users_add_and_remove_users() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
name = "wave"
stages = [ { users = 10, for = "2s" }, { users = 2, for = "2s" } ]
flow = [ { request = { path = "/", name = "page" } }, { think = "100ms" } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let timeline = results["timeline"].as_array().expect("a timeline");
    let second = |n: usize| &timeline[n - 1];
    assert_eq!(count(second(2), "/connections"), 10, "{:#}", second(2));
    assert_eq!(count(second(4), "/connections"), 2, "{:#}", second(4));
    // ~10 requests per user per second: ~100/s, then ~20/s.
    let (busy, quiet) = (count(second(2), "/completed"), count(second(4), "/completed"));
    assert!((70..=110).contains(&busy), "{busy}");
    assert!((12..=24).contains(&quiet), "{quiet}");
}

/// `pummel run URL --aws-sigv4 REGION:SERVICE --object-size SIZE` (quick mode) signs every
/// request with the keys of `AWS_ACCESS_KEY_ID` / `AWS_SECRET_ACCESS_KEY`, over HTTP/1.1 and
/// over HTTP/2 alike, and the random payload is the body that arrives, its hash the signed
/// one; without the keys it exits 2 naming the missing variable.
#[test]
fn quick_runs_sign_every_request_with_aws_sigv4() {
    let _load = support::shared();
    let keys = [("AWS_ACCESS_KEY_ID", Some("AKIDEXAMPLE")), ("AWS_SECRET_ACCESS_KEY", Some("secret"))];
    for http2 in [false, true] {
        let dir = support::temp_dir();
        let (record_path, record) = support::path_in(&dir, "received.jsonl");
        let (_sink, addr) = spawn_sink(&["--record", &record]);
        let url = format!("http://{addr}/bucket/key");
        let mut args =
            vec!["run", url.as_str(), "-m", "PUT", "--object-size", "2KiB", "--aws-sigv4", "us-east-1:s3", "-n", "10"];
        if http2 {
            args.push("--http2");
        }
        let out = support::spawn_with_env(&args, None, &keys).wait(Duration::from_secs(20));
        out.assert_code(0);
        let requests = recorded(&record_path, 10, Duration::from_secs(10));
        assert_eq!(requests.len(), 10, "http2: {http2}");
        for request in &requests {
            let auth = crate::support::plans::header(request, "authorization").expect("an authorization header");
            assert!(auth.starts_with("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/"), "{auth}");
            assert!(auth.contains("/us-east-1/s3/aws4_request"), "{auth}");
            let body = request["body_base64"].as_str().map(|b| {
                use base64::Engine as _;
                base64::engine::general_purpose::STANDARD.decode(b).expect("base64 body")
            });
            let body = body.unwrap_or_default();
            assert_eq!(body.len(), 2048, "http2: {http2}");
            let hash = crate::support::plans::header(request, "x-amz-content-sha256").expect("x-amz-content-sha256");
            use sha2::Digest as _;
            assert_eq!(hash, hex::encode(sha2::Sha256::digest(&body)));
        }
    }
    let args = ["run", "http://127.0.0.1:9/", "--aws-sigv4", "us-east-1:s3", "-n", "10"];
    let missing = support::spawn_with_env(&args, None, &[keys[0], ("AWS_SECRET_ACCESS_KEY", None)]);
    let out = missing.wait(Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("AWS_SECRET_ACCESS_KEY"), "{}", out.stderr);
}

/// `--max-inflight` bounds an open-model flow that starts with a think: at 200 arrivals/s,
/// iterations of 500 ms would need ~100 users; with at most 10 waiting or under way, the rest
/// are counted as dropped, and no more than 10 requests per 0.5 s go out.
#[test]
fn max_inflight_bounds_flows_that_start_with_a_pause() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
rate = 200
duration = "2s"
flow = [ { think = "500ms" }, { request = { path = "/late", name = "late" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &["--max-inflight", "10"], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    let dropped = count(summary, "/requests/dropped");
    let sent = count(by_name(summary, "late"), "/sent");
    assert!(dropped >= 300, "most of the ~400 arrivals are dropped: {dropped}");
    assert!(sent <= 45, "at most 10 iterations at a time, 500 ms each, over ~2 s: {sent}");
    assert_eq!(dropped + iterations(summary, "scenario 1"), 400, "every arrival is run or dropped");
}

/// Two open scenarios side by side, one in two rate stages: the run keeps a row per piece of
/// the schedule, each offering the scenarios' sum, with its own p99 — not one row for all.
#[test]
fn rate_stages_of_several_scenarios_keep_their_rows() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&[]);
    let plan = r#"
[[scenario]]
name = "steps"
stages = [ { rate = 100, for = "1s" }, { rate = 300, for = "1s" } ]
flow = [ { request = { path = "/steps" } } ]

[[scenario]]
name = "steady"
rate = 50
duration = "2s"
flow = [ { request = { path = "/steady" } } ]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    let stages = results["summary"]["stages"].as_array().expect("stages");
    let rates: Vec<f64> = stages.iter().map(|s| num(s, "/target_rate")).collect();
    assert_eq!(rates, [150.0, 350.0], "{stages:#?}");
    for stage in stages {
        let wanted = num(stage, "/target_rate");
        let ok = count(stage, "/ok") as f64;
        assert!((ok - wanted).abs() <= wanted * 0.05, "{wanted} req/s for 1 s: {ok} ok\n{stage:#}");
        assert!(stage["latency_ms"]["p99"].as_f64().is_some(), "each row has its p99: {stage:#}");
    }
}

/// A recorded request's body, as sent.
fn body_bytes(record: &Value) -> Vec<u8> {
    use base64::Engine as _;
    match (record["body"].as_str(), record["body_base64"].as_str()) {
        (Some(text), _) => text.as_bytes().to_vec(),
        (None, Some(encoded)) => base64::engine::general_purpose::STANDARD.decode(encoded).expect("base64"),
        _ => Vec::new(),
    }
}

/// A multipart upload with a templated field and a binary file, and a `body_file` request: the
/// sink's record holds each file byte for byte, and each field as its user rendered it.
#[test]
fn uploads_arrive_byte_for_byte() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let photo: Vec<u8> = (0..100_000u32).map(|n| (n.wrapping_mul(2_654_435_761) >> 13) as u8).collect();
    std::fs::write(dir.path().join("photo.jpg"), &photo).expect("write the photo");
    std::fs::write(dir.path().join("data.bin"), b"\x00\x01raw body\xff").expect("write the body file");
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = r#"
[[scenario]]
users = 2
iterations = 1
flow = [
  { request = { method = "POST", path = "/upload", multipart = [
      { name = "title", value = "photo of {{ user }}" },
      { name = "file", file = "photo.jpg", content_type = "image/jpeg" },
  ] } },
  { request = { method = "PUT", path = "/raw", body_file = "data.bin" } },
]
"#;
    let (out, results) = run_plan(&dir, addr, plan, &[], Duration::from_secs(30));
    out.assert_code(0);
    assert_eq!(count(&results["summary"], "/requests/ok"), 4, "{:#}", results["summary"]);
    let records = recorded(&record_path, 4, Duration::from_secs(10));
    let uploads: Vec<&Value> = records.iter().filter(|r| r["target"] == "/upload").collect();
    assert_eq!(uploads.len(), 2);
    let mut titles = Vec::new();
    for upload in uploads {
        let content_type = header(upload, "content-type").expect("a content type");
        let boundary = content_type.split("boundary=").nth(1).expect("a boundary");
        let body = body_bytes(upload);
        let text = String::from_utf8_lossy(&body).to_string();
        let title_start = text.find("name=\"title\"\r\n\r\n").expect("the title part") + 16;
        titles.push(text[title_start..].split("\r\n").next().unwrap_or_default().to_string());
        let head = b"filename=\"photo.jpg\"\r\nContent-Type: image/jpeg\r\n\r\n";
        let start = body.windows(head.len()).position(|w| w == head).expect("the file part") + head.len();
        let end = start + photo.len();
        assert_eq!(&body[start..end], &photo[..], "the file, byte for byte");
        assert!(body[end..].starts_with(format!("\r\n--{boundary}--\r\n").as_bytes()), "then the closing boundary");
    }
    titles.sort();
    assert_eq!(titles, ["photo of 0", "photo of 1"]);
    let raw: Vec<&Value> = records.iter().filter(|r| r["target"] == "/raw").collect();
    assert_eq!(raw.len(), 2);
    assert!(raw.iter().all(|r| body_bytes(r) == b"\x00\x01raw body\xff"), "{raw:?}");
}

/// WebSocket steps are templates like HTTP ones: each user opens `/ws?user=N`, and its
/// `ws_expect` matches the echo of its own message by a templated regex and a templated
/// `equals`; an expectation rendered for someone else never matches.
#[test]
fn websocket_urls_and_expectations_are_templates() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = r#"
[[scenario]]
users = 3
iterations = 1
flow = [
  { ws_connect = { path = "/ws?user={{ user }}", name = "open" } },
  { ws_send = { json = { from = "{{ user }}" }, name = "hello" } },
  { ws_expect = { regex = "\"from\":\"{{ user }}\"", timeout = "2s" } },
  { ws_send = { json = { from = "{{ user }}" }, name = "again" } },
  { ws_expect = { json = "$.from", equals = "{{ user }}WANT", timeout = "500ms" } },
]
"#;
    let (out, results) = run_plan(&dir, addr, &plan.replace("WANT", ""), &[], Duration::from_secs(30));
    out.assert_code(0);
    let summary = &results["summary"];
    assert_eq!(
        (count(by_name(summary, "hello"), "/ok"), count(by_name(summary, "again"), "/ok")),
        (3, 3),
        "{summary:#}"
    );
    let upgrades: Vec<String> = recorded(&record_path, 3, Duration::from_secs(10))
        .iter()
        .filter_map(|r| r["target"].as_str().map(str::to_string))
        .collect();
    let mut upgrades: Vec<&str> = upgrades.iter().map(String::as_str).collect();
    upgrades.sort();
    assert_eq!(upgrades, ["/ws?user=0", "/ws?user=1", "/ws?user=2"]);
    // Rendered for someone else, the expectation never matches.
    let (_, results) = run_plan(&dir, addr, &plan.replace("WANT", "x"), &[], Duration::from_secs(30));
    let again = by_name(&results["summary"], "again");
    assert_eq!(count(again, "/errors/ws_expect_timeout"), 3, "{again:#}");
}
