//! HTTP/2 (`run --http2`): pummel against `pummel sink` over h2c (prior knowledge) and over
//! TLS with ALPN h2. The stream and connection counts are honoured exactly, seen from both
//! ends: one connection of 100 streams is one connection in pummel's results and in the
//! sink's own count. Plan flows over HTTP/2 (`http_version = "2"`, per target or scenario):
//! users share their scenario's connections, and extraction and checks work as over HTTP/1.1.

use std::time::Duration;

use crate::support::{self, count, read_json};

/// Stops a sink started with `--stats` and returns its (requests, connections) totals from
/// the line `pummel sink: N requests on C connections`, less the one connection with which
/// `spawn_sink` checked that the sink accepts (it stops at the first that succeeds).
fn sink_totals(sink: support::Running) -> (u64, u64) {
    sink.signal("INT");
    let out = sink.wait(Duration::from_secs(10));
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("requests on"))
        .unwrap_or_else(|| panic!("no totals from the sink:\n{}", out.stderr));
    let numbers: Vec<u64> = line.split_whitespace().filter_map(|w| w.parse().ok()).collect();
    assert_eq!(numbers.len(), 2, "{line}");
    (numbers[0], numbers[1] - 1)
}

#[test]
fn one_connection_of_100_streams_is_one_connection_at_the_sink() {
    let _load = support::shared();
    let (sink, addr) = support::spawn_sink(&["--stats", "1s"]);
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "results.json");
    let url = format!("http://{addr}/");
    let args = ["run", &url, "--http2", "-c", "1", "--streams", "100", "-n", "3000", "-o", &results_arg, "--plain"];
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    assert!(out.stderr.contains("HTTP/2, h2c, prior knowledge, 100 streams"), "{}", out.stderr);

    let document = read_json(&results);
    support::assert_valid_results(&document);
    assert_eq!(count(&document, "/summary/requests/ok"), 3000);
    assert_eq!(count(&document, "/summary/requests/failed"), 0);
    assert_eq!(count(&document, "/summary/connect_ms/count"), 1, "{}", document["summary"]["connect_ms"]);
    assert_eq!(sink_totals(sink), (3000, 1));
}

#[test]
fn https_negotiates_h2_by_alpn_and_verifies_the_sink() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_, ca) = support::path_in(&dir, "sink-ca.pem");
    let (sink, addr) = support::spawn_sink(&["--tls", "--tls-cert-out", &ca, "--stats", "1s"]);
    let url = format!("https://{addr}/");
    let args =
        ["run", &url, "--http2", "-c", "2", "--streams", "10", "-n", "500", "--cacert", &ca, "--json", "-t", "1"];
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 500, "{summary}");
    assert_eq!(count(&summary, "/connect_ms/count"), 2, "{summary}");
    assert_eq!(sink_totals(sink), (500, 2));
}

#[test]
fn the_open_model_keeps_to_one_connection_while_its_streams_suffice() {
    let _load = support::shared();
    let (sink, addr) = support::spawn_sink(&["--stats", "1s", "--delay", "20ms"]);
    let url = format!("http://{addr}/");
    let args = ["run", &url, "--http2", "-c", "1", "-r", "1000", "-d", "2s", "--streams", "100", "--json", "-t", "1"];
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let ok = count(&summary, "/requests/ok");
    assert!((1900..=2000).contains(&ok), "{summary}");
    assert_eq!(count(&summary, "/connect_ms/count"), 1, "{summary}");
    assert_eq!(sink_totals(sink).1, 1);
}

#[test]
fn streams_need_http2_and_a_sane_count() {
    let _load = support::shared();
    let out = support::run(&["run", "http://127.0.0.1:9/", "--streams", "10"], Duration::from_secs(10));
    out.assert_code(2);
    let out = support::run(&["run", "http://127.0.0.1:9/", "--http2", "--streams", "0"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("--streams"), "{}", out.stderr);
    let out = support::run(&["run", "http://127.0.0.1:9/", "--http2", "--no-keepalive"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("--no-keepalive"), "{}", out.stderr);
}

/// The `summary` entry of `list` (`by_name` or `checks`) named `name`.
fn named<'a>(summary: &'a serde_json::Value, list: &str, name: &str) -> &'a serde_json::Value {
    let entries = summary[list].as_array().unwrap_or_else(|| panic!("no {list} in\n{summary:#}"));
    entries.iter().find(|e| e["name"] == name).unwrap_or_else(|| panic!("no {list} entry {name:?} in\n{summary:#}"))
}

/// Runs the plan `text` (`--base-url` is the sink's) with `threads` shards against a sink of
/// its own (`--echo`); the results' summary and the sink's (requests, connections) totals.
fn run_plan(text: &str, threads: &str) -> (serde_json::Value, (u64, u64)) {
    let (sink, addr) = support::spawn_sink(&["--echo", "--stats", "1s"]);
    let dir = support::temp_dir();
    let plan = support::plans::write_plan(&dir, "plan.toml", text);
    let (results, results_arg) = support::path_in(&dir, "results.json");
    let base = format!("http://{addr}");
    let args = ["run", &plan, "--base-url", &base, "-t", threads, "-o", &results_arg, "-q"];
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let document = read_json(&results);
    support::assert_valid_results(&document);
    (document["summary"].clone(), sink_totals(sink))
}

/// A plan flow over HTTP/2: 100 users on 50 streams per connection share exactly 2
/// connections (one per shard), and the echo's id, extracted from each POST's JSON answer,
/// makes the path of the GET that follows; checks see the answers' headers and bodies.
#[test]
fn a_flow_of_100_users_shares_two_connections_of_50_streams() {
    let _load = support::shared();
    let plan = r#"
[target]
http_version = "2"
streams = 50

[[scenario]]
users = 100
iterations = 10
flow = [
  { request = { method = "POST", path = "/items", json = { n = 1 }, name = "create", extract = { id = { json = "$.id" } }, check = [ { json = "$.body_bytes", equals = 7, name = "body sent" }, { header = "X-Request-Id", exists = true, name = "has id" } ] } },
  { request = { path = "/items/{{ id }}", name = "read", check = [ { body_regex = "\"path\":\"/items/[1-9][0-9]*\"", name = "id in path" } ] } },
]
"#;
    let (summary, sink) = run_plan(plan, "2");
    for name in ["create", "read"] {
        let entry = named(&summary, "by_name", name);
        assert_eq!((count(entry, "/completed"), count(entry, "/ok")), (1000, 1000), "{entry}");
    }
    for name in ["body sent", "has id", "id in path"] {
        let check = named(&summary, "checks", name);
        assert_eq!((count(check, "/passed"), count(check, "/failed")), (1000, 0), "{check}");
    }
    assert_eq!(count(&summary, "/requests/failed"), 0, "{summary:#}");
    assert_eq!(count(&summary, "/connect_ms/count"), 2, "{}", summary["connect_ms"]);
    assert_eq!(sink, (2000, 2));
}

/// Per scenario: an HTTP/1.1 scenario's users each own a connection while an HTTP/2 one's
/// share theirs; the sink sees 3 + ceil(20 / 10) connections.
#[test]
fn scenarios_choose_their_http_version() {
    let _load = support::shared();
    let plan = r#"
[[scenario]]
name = "h1"
users = 3
iterations = 20
flow = [ { request = { path = "/one", name = "one" } } ]

[[scenario]]
name = "h2"
http_version = "2"
streams = 10
users = 20
iterations = 20
flow = [ { request = { path = "/two", name = "two", check = [ { json = "$.path", equals = "/two", name = "echoed" } ] } } ]
"#;
    let (summary, sink) = run_plan(plan, "1");
    assert_eq!(count(named(&summary, "by_name", "one"), "/ok"), 60, "{summary:#}");
    assert_eq!(count(named(&summary, "by_name", "two"), "/ok"), 400, "{summary:#}");
    assert_eq!(count(named(&summary, "checks", "echoed"), "/passed"), 400, "{summary:#}");
    assert_eq!(sink, (460, 5));
}
