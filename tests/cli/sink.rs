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
