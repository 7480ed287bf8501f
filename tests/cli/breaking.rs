//! Real targets that break under load, for the figures pummel prints when a target gives way:
//! gunicorn with a few sync workers (a capacity known in advance), HAProxy with `maxconn` in
//! front of a slow sink, and a server whose errors are fast and whose successes are slow. These
//! smoke tests prove that each helper starts its server and that pummel gets the answers it
//! should; gunicorn and HAProxy are installed by `.ci/setup-gunicorn` and `.ci/setup-haproxy`.

use std::time::Duration;

use serde_json::Value;

use crate::support::gunicorn::Gunicorn;
use crate::support::haproxy::Haproxy;
use crate::support::servers::FastErrors;
use crate::support::{self, Sink, count, num};

/// `pummel run URL -n 50 -c 5 --json extra...`, which must exit 0; its summary.
fn run_50(url: &str, extra: &[&str]) -> Value {
    let mut args = vec!["run", url, "-n", "50", "-c", "5", "--json"];
    args.extend_from_slice(extra);
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 50, "{summary:#}");
    assert_eq!(count(&summary, "/requests/completed"), 50, "{summary:#}");
    assert_eq!(count(&summary, "/requests/unfinished"), 0, "{summary:#}");
    summary
}

/// gunicorn, 4 sync workers taking 20 ms a request: every request answered `200`, none faster
/// than the app's delay; `--watch-port` finds it by its port.
#[test]
fn gunicorn_sync_workers_answer_after_their_delay() {
    let _load = support::shared();
    let gunicorn = Gunicorn::start_sync(4, Duration::from_millis(20));
    let port = gunicorn.port().to_string();
    let summary = run_50(&gunicorn.url(), &["--watch-port", &port]);
    assert_eq!(count(&summary, "/requests/ok"), 50, "{summary:#}");
    assert_eq!(count(&summary, "/status/200"), 50, "{summary:#}");
    assert!(num(&summary, "/service_time_ms/min") >= 20.0, "the app sleeps 20 ms\n{summary:#}");
    assert!(summary["target"].is_object(), "the watch of gunicorn's port is in the summary\n{summary:#}");
}

/// HAProxy (`maxconn 100`) in front of `pummel sink --delay 50ms`: every request passes through
/// to the sink and is answered `200` after the sink's delay.
#[test]
fn haproxy_passes_requests_to_its_backend() {
    let _load = support::shared();
    let sink = Sink::start(&["--delay", "50ms"]);
    let haproxy = Haproxy::start(100, sink.addr);
    let pid = haproxy.pid().to_string();
    let summary = run_50(&haproxy.url(), &["--watch-pid", &pid]);
    assert_eq!(count(&summary, "/requests/ok"), 50, "{summary:#}");
    assert_eq!(count(&summary, "/status/200"), 50, "{summary:#}");
    assert!(num(&summary, "/service_time_ms/min") >= 50.0, "the sink holds each answer 50 ms\n{summary:#}");
    assert!(summary["target"].is_object(), "the watch of HAProxy's PID is in the summary\n{summary:#}");
}

/// The fast-errors server: of 50 requests, 45 get an instant `503` and 5 a `200` after 100 ms.
#[test]
fn fast_errors_answers_nine_503_in_ten() {
    let _load = support::shared();
    let server = FastErrors::start();
    let summary = run_50(&server.url(), &[]);
    assert_eq!(server.server.requests(), 50);
    assert_eq!(count(&summary, "/status/503"), 45, "{summary:#}");
    assert_eq!(count(&summary, "/status/200"), 5, "{summary:#}");
    assert_eq!(count(&summary, "/requests/ok"), 5, "{summary:#}");
    assert_eq!(count(&summary, "/requests/failed"), 45, "{summary:#}");
    assert!(num(&summary, "/latency_ms/max") >= 100.0, "a 200 takes 100 ms\n{summary:#}");
}
