//! The live web dashboard (`--dashboard`), watched in headless Chromium: its charts gain points
//! while the run goes on, and the final report replaces them at the end.

use std::time::Duration;

use serde_json::Value;

use crate::support::browser::node_script;
use crate::support::{self, Sink};

#[test]
fn the_dashboard_charts_grow_during_the_run_and_end_with_the_report() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let port = support::free_port();
    let addr = format!("127.0.0.1:{port}");
    let running = support::spawn(
        &["run", &sink.url("/"), "-r", "50", "-d", "6s", "--dashboard", &addr, "--dashboard-linger", "20s", "--plain"],
        None,
    );
    assert!(running.wait_for_stderr("dashboard: http://", Duration::from_secs(30)), "the dashboard did not start");
    let (done, out) = node_script("watch-dashboard.mjs", &[&format!("http://{addr}/")]);
    assert!(done, "the browser did not see the run through:\n{out}");
    let seen: Value = out.lines().find_map(|l| serde_json::from_str(l).ok()).expect("a JSON line");
    let (first, later) = (seen["first"].as_u64().unwrap_or(0), seen["later"].as_u64().unwrap_or(0));
    assert!(first >= 1 && later > first, "points grew during the run: {seen}");
    assert_eq!(seen["report"], true, "{seen}");
    assert!(seen["title"].as_str().unwrap_or("").contains(&sink.url("/")), "{seen}");
    // The run itself ends as usual once the dashboard's linger is over.
    running.signal("INT");
    let out = running.wait(Duration::from_secs(60));
    out.assert_no_panic();
}

/// A dashboard address that cannot be bound is a clear usage error, before any load.
#[test]
fn a_dashboard_address_in_use_is_a_usage_error() {
    let _load = support::shared();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("binds");
    let addr = taken.local_addr().expect("an address").to_string();
    let out = support::run(&["run", "http://127.0.0.1:9/", "-n", "1", "--dashboard", &addr], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("--dashboard") && out.stderr.contains("cannot listen"), "{}", out.stderr);
}
