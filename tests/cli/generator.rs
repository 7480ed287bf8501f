//! Which side limited a run (`summary.limit`): each detection fires where its condition holds
//! and stays silent where it does not, or users stop trusting it when it is right. The target
//! side is tested against real servers that break, in `breaking.rs`.

use std::time::Duration;

use serde_json::Value;

use crate::support::nginx::Nginx;
use crate::support::{self, Sink, count, num};

/// The side the summary names, `None` when nothing was.
fn limit(summary: &Value) -> Option<&str> {
    summary["limit"]["by"].as_str()
}

/// Three requests against an idle sink: too short to judge, and nothing limited them.
#[test]
fn short_run_names_nothing() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(&["run", &sink.url("/"), "-n", "3", "-c", "1", "--json"], Duration::from_secs(20));
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 3);
    assert_eq!(limit(&summary), None, "{summary:#}");
}

/// One generator thread asked for a million requests a second: it saturates and falls behind,
/// and the verdict says so and how many threads it would take.
#[test]
fn one_thread_at_a_million_per_second_names_the_generator() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let out = support::run(
        &["run", &sink.url("/"), "-r", "1000000", "-t", "1", "-d", "3s", "--json"],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(limit(&summary), Some("generator"), "{summary:#}");
    let verdict = summary["limit"]["text"].as_str().unwrap_or_default();
    assert!(verdict.contains("generator threads (-t "), "{verdict}");
    // (How busy the thread was depends on what else the machine runs: on a loaded machine the
    // thread waits for a core, and its arrivals are late instead: the verdict is the same.)
    assert!(num(&summary, "/generator/busiest_thread_percent") > 0.0);
    // What the generator never got to send was due all the same: dropped, not left out.
    let ended = ["ok", "failed", "dropped"].map(|k| count(&summary, &format!("/requests/{k}"))).iter().sum::<u64>();
    assert_eq!(ended, 3_000_000, "every arrival of the schedule has an outcome\n{summary:#}");
}

/// 5,000 req/s over two connections to a target that answers in 10 ms: every connection is
/// busy, arrivals wait, the target answers promptly: the pool is the limit, and the verdict
/// gives the -c it would take.
#[test]
fn two_connections_at_5000_per_second_name_the_pool() {
    let _load = support::shared();
    let sink = Sink::start(&["--delay", "10ms"]);
    let out =
        support::run(&["run", &sink.url("/"), "-r", "5000", "-c", "2", "-d", "3s", "--json"], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(limit(&summary), Some("pool"), "{summary:#}");
    let verdict = summary["limit"]["text"].as_str().unwrap_or_default();
    assert!(verdict.contains("raise -c to about"), "{verdict}");
    assert_eq!(count(&summary, "/requests/failed"), 0, "waiting on pummel's own pool is never a failure");
}

/// nginx at a rate it carries easily: no side is named, not the generator, not the pool, not
/// the target.
#[test]
fn a_carried_load_names_nothing() {
    let _load = support::shared();
    let nginx = Nginx::start();
    let url = format!("http://{}/", nginx.addr);
    let out = support::run(&["run", &url, "-r", "500", "-d", "3s", "--json"], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 1500, "{summary:#}");
    assert_eq!(limit(&summary), None, "{summary:#}");
    assert!(summary["generator"]["busiest_thread_percent"].as_f64().is_some_and(|p| p < 90.0), "{summary:#}");
}
