//! Coordinated omission: latency counts from the intended start, service time from the send.

use std::time::Duration;

use crate::support::servers::{Behaviour, TestServer};
use crate::support::{self, count, num};

/// `-r 200 -d 3s -c 1` against a target that stalls for 1 s once. With one connection only one
/// request is on the wire when the stall begins; the ~200 requests scheduled during the stall
/// wait in line and are sent after it, quickly. So:
/// - latency (from the intended start) includes the wait: p99 is hundreds of milliseconds;
/// - service time (from the write) is small for all but the one stalled request: p99 < 100 ms,
///   while its max shows that one request.
#[test]
fn latency_includes_the_wait_that_service_time_omits() {
    let _load = support::exclusive();
    let server = TestServer::start(Behaviour::StallOnce {
        from: Duration::from_millis(1000),
        length: Duration::from_millis(1000),
    });
    let out =
        support::run(&["run", &server.url(), "-r", "200", "-d", "3s", "-c", "1", "--json"], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let completed = count(&summary, "/requests/completed");
    assert!((580..=620).contains(&completed), "completed {completed}, expected about 600");
    assert_eq!(count(&summary, "/requests/failed"), 0);
    assert_eq!(count(&summary, "/connect_ms/count"), 1, "-c 1 must use one connection");

    let latency_p99 = num(&summary, "/latency_ms/p99");
    let service_p99 = num(&summary, "/service_time_ms/p99");
    let service_max = num(&summary, "/service_time_ms/max");
    assert!(latency_p99 >= 300.0, "latency p99 {latency_p99} ms must include the 1 s stall");
    assert!(service_p99 < 100.0, "service time p99 {service_p99} ms must not include the wait in line");
    assert!(service_max >= 500.0, "the request on the wire during the stall took {service_max} ms, expected ~1 s");
    assert!(num(&summary, "/latency_ms/max") >= 900.0, "the longest wait in line is ~1 s");
}
