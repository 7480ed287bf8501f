//! HTTP/2 (`run --http2`): pummel against `pummel sink` over h2c (prior knowledge) and over
//! TLS with ALPN h2. The stream and connection counts are honoured exactly, seen from both
//! ends: one connection of 100 streams is one connection in pummel's results and in the
//! sink's own count.

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
