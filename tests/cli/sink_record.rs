//! `pummel sink --record FILE` keeps what it received, and `--timeout` (the seed's
//! slow_listener flag) closes idle clients: checked with the real binaries on loopback.

use std::io::Read;
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support;

#[test]
fn sink_records_every_request_a_run_sends() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (path, path_text) = support::path_in(&dir, "received.jsonl");
    let (sink, addr) = support::spawn_sink(&["--record", &path_text]);

    let url = format!("http://{addr}/notify?x=1");
    let out = support::run(
        &["run", &url, "-m", "POST", "-b", r#"{"id":1}"#, "-n", "20", "-c", "2", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0).assert_no_panic();
    assert_eq!(support::count(&out.json(), "/requests/ok"), 20);

    sink.signal("INT");
    let stopped = sink.wait(Duration::from_secs(10));
    stopped.assert_code(0).assert_no_panic();
    assert!(stopped.stderr.contains(&format!("recorded 20 requests to {path_text}")), "stderr: {}", stopped.stderr);

    let text = std::fs::read_to_string(&path).expect("the record file exists after the sink stopped");
    assert!(text.ends_with('\n'), "the last line is complete");
    let lines: Vec<Value> =
        text.lines().map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line:?}"))).collect();
    assert_eq!(lines.len(), 20, "{text}");
    for record in &lines {
        assert_eq!(record["method"], "POST", "{record}");
        assert_eq!(record["target"], "/notify?x=1", "{record}");
        assert_eq!(record["body"], r#"{"id":1}"#, "{record}");
        assert!(record["t_ms"].as_u64().is_some_and(|t| t > 1_600_000_000_000), "{record}");
        let headers = record["headers"].as_array().expect("headers");
        assert!(
            headers.iter().any(
                |pair| pair[0].as_str().is_some_and(|n| n.eq_ignore_ascii_case("content-length")) && pair[1] == "8"
            ),
            "{record}"
        );
    }
}

#[test]
fn sink_refuses_a_record_file_it_cannot_create() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_, missing) = support::path_in(&dir, "no/such/dir/received.jsonl");
    let out = support::run(&["sink", "--listen", "127.0.0.1:0", "--record", &missing], Duration::from_secs(10));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains(&missing), "the error names the file: {}", out.stderr);
}

#[test]
fn sink_timeout_is_the_idle_timeout() {
    let _load = support::shared();
    let (_sink, addr) = support::spawn_sink(&["--timeout", "300ms"]);
    let mut idle = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to the sink");
    idle.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    let start = Instant::now();
    let mut byte = [0u8; 1];
    // The sink closes the idle client: EOF (or a reset), long before the 5 s read timeout.
    let read = idle.read(&mut byte);
    assert!(matches!(read, Ok(0) | Err(_)), "{read:?}");
    assert!(start.elapsed() < Duration::from_secs(3), "closed after {:?}", start.elapsed());
}
