//! `pummel sink` survives bad input: garbage gets a 400 and a close, and it keeps serving.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use crate::support::{self, Sink};

/// Writes `request` on a new connection and reads until the server closes it (at most 5 s).
fn exchange(sink: &Sink, request: &[u8]) -> (String, bool) {
    let mut stream = TcpStream::connect_timeout(&sink.addr, Duration::from_secs(2)).expect("connect to the sink");
    stream.set_read_timeout(Some(Duration::from_millis(200))).expect("read timeout");
    stream.write_all(request).expect("write to the sink");
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut received = Vec::new();
    let mut chunk = [0u8; 4096];
    let closed = loop {
        if Instant::now() >= deadline {
            break false;
        }
        match stream.read(&mut chunk) {
            Ok(0) => break true,
            Ok(n) => received.extend_from_slice(&chunk[..n]),
            Err(e) if matches!(e.kind(), std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut) => {}
            Err(_) => break true,
        }
    };
    (String::from_utf8_lossy(&received).into_owned(), closed)
}

#[test]
fn sink_answers_garbage_with_400_and_keeps_serving() {
    let _load = support::shared();
    let mut sink = Sink::start(&[]);
    let (answer, closed) = exchange(&sink, b"\x00\x01\x02\xff garbage \x7f\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 400"), "garbage should get a 400, got {answer:?}");
    assert!(closed, "the sink should close the connection after a 400");
    assert!(sink.is_alive(), "the sink died on garbage");

    let (answer, _) = exchange(&sink, b"GET / HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    assert!(answer.starts_with("HTTP/1.1 200"), "a normal request after the garbage got {answer:?}");
    let out = support::run(&["run", &sink.url("/"), "-n", "50", "-c", "2", "--json"], Duration::from_secs(20));
    out.assert_code(0);
    assert_eq!(support::count(&out.json(), "/requests/ok"), 50);
    assert!(sink.is_alive());
}

/// `pummel sink --echo`: every answer describes its request as JSON, numbered from 1.
#[test]
fn sink_echo_describes_each_request() {
    let _load = support::shared();
    let sink = Sink::start(&["--echo"]);
    let (answer, closed) = exchange(
        &sink,
        b"POST /items/42?a=1 HTTP/1.1\r\nHost: test\r\nContent-Length: 3\r\n\r\nabc\
          GET /next HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n",
    );
    assert!(closed, "Connection: close was not honoured: {answer:?}");
    let parts: Vec<&str> = answer.split("HTTP/1.1 ").filter(|p| !p.is_empty()).collect();
    assert_eq!(parts.len(), 2, "{answer:?}");
    let mut ids = Vec::new();
    for (part, expected) in parts.iter().zip([
        serde_json::json!({"id":1,"method":"POST","path":"/items/42","query":"a=1","body_bytes":3}),
        serde_json::json!({"id":2,"method":"GET","path":"/next","query":"","body_bytes":0}),
    ]) {
        let (head, body) = part.split_once("\r\n\r\n").expect("a head and a body");
        assert!(head.starts_with("200 OK") && head.contains("Content-Type: application/json"), "{head}");
        let body: serde_json::Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body, expected);
        let id = head.lines().find_map(|l| l.strip_prefix("X-Request-Id: ")).expect("X-Request-Id");
        ids.push(id.to_string());
    }
    assert_eq!(ids, ["1", "2"]);
}
