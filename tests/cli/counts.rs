//! Request counting in the closed model: `-n` is exact, and keep-alive reuses connections.

use std::time::Duration;

use crate::support::{self, Sink, count};

/// `-n 5000 -c 10`: exactly 5000 requests, all answered, none failed.
#[test]
fn closed_model_sends_exactly_n_requests() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(&["run", &sink.url("/"), "-n", "5000", "-c", "10", "--json"], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 5000);
    assert_eq!(count(&summary, "/requests/completed"), 5000);
    assert_eq!(count(&summary, "/requests/ok"), 5000);
    assert_eq!(count(&summary, "/requests/failed"), 0);
    assert_eq!(count(&summary, "/requests/unanswered"), 0);
    assert_eq!(count(&summary, "/status/200"), 5000);
    assert_eq!(summary["errors"], serde_json::json!({}), "no failure kinds expected");
    assert_eq!(summary["partial"], false);
}

/// Keep-alive: two connections (one per loop) carry all 200 requests.
#[test]
fn keepalive_reuses_connections() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(&["run", &sink.url("/"), "-n", "200", "-c", "2", "--json"], Duration::from_secs(30));
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 200);
    let opened = count(&summary, "/connect_ms/count");
    assert!((1..=2).contains(&opened), "keep-alive opened {opened} connections for 200 requests, expected at most 2");
}

/// `--no-keepalive`: one new connection per request.
#[test]
fn no_keepalive_opens_a_connection_per_request() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(
        &["run", &sink.url("/"), "-n", "200", "-c", "2", "--no-keepalive", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 200);
    assert_eq!(count(&summary, "/connect_ms/count"), 200, "--no-keepalive must open one connection per request");
    assert_eq!(count(&summary, "/requests/failed"), 0);
}
