//! End-to-end tests of the sink through its public API, with plain blocking `std::net` clients
//! on loopback. Every wait is bounded: sockets have read and write timeouts, and polling loops
//! give up after a few seconds.

use std::io::{BufRead, BufReader, ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use pummel_sink::{ConfigError, Delay, SinkConfig, SinkError, SinkHandle, SinkStats};

const TIMEOUT: Duration = Duration::from_secs(5);

fn sink(config: SinkConfig) -> SinkHandle {
    pummel_sink::start("127.0.0.1:0".parse().unwrap(), config).expect("sink starts")
}

/// An HTTP answer as the test client read it.
#[derive(Debug)]
struct Response {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Response {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn closes(&self) -> bool {
        self.header("connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }
}

/// A blocking HTTP/1.1 test client; every read and write times out after `TIMEOUT`.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.set_write_timeout(Some(TIMEOUT)).unwrap();
        Client { reader: BufReader::new(stream) }
    }

    fn send(&mut self, bytes: impl AsRef<[u8]>) {
        self.reader.get_mut().write_all(bytes.as_ref()).expect("write request");
    }

    fn get(&mut self) -> Response {
        self.send("GET / HTTP/1.1\r\nHost: sink\r\n\r\n");
        self.response()
    }

    /// Reads one answer, with a body of `Content-Length` bytes.
    fn response(&mut self) -> Response {
        self.read_response(true)
    }

    /// Reads the answer to a `HEAD` request (no body whatever the headers say).
    fn head_response(&mut self) -> Response {
        self.read_response(false)
    }

    fn read_response(&mut self, with_body: bool) -> Response {
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        let mut parts = line.splitn(3, ' ');
        assert_eq!(parts.next(), Some("HTTP/1.1"), "status line {line:?}");
        let status = parts.next().and_then(|s| s.parse().ok()).expect("status code");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header line");
            let field = line.trim_end_matches("\r\n");
            if field.is_empty() {
                break;
            }
            let (name, value) = field.split_once(':').expect("header field");
            headers.push((name.to_string(), value.trim().to_string()));
        }
        let mut response = Response { status, headers, body: Vec::new() };
        if with_body {
            let length: usize = response.header("content-length").map_or(0, |v| v.parse().unwrap());
            response.body = vec![0; length];
            self.reader.read_exact(&mut response.body).expect("body");
        }
        response
    }

    /// Asserts that the sink closes the connection (EOF or reset) with nothing more to read.
    fn expect_closed(&mut self) {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => assert!(rest.is_empty(), "unexpected bytes {:?}", String::from_utf8_lossy(&rest)),
            Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
            Err(e) => panic!("connection not closed: {e}"),
        }
    }
}

/// Polls `done` every 5 ms for up to `TIMEOUT`; returns whether it became true.
fn eventually(mut done: impl FnMut() -> bool) -> bool {
    let start = Instant::now();
    while start.elapsed() < TIMEOUT {
        if done() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    done()
}

/// The stats once every request read has been answered: a client can read an answer a moment
/// before the sink counts it as written.
fn settled(stats: &Arc<SinkStats>) -> pummel_sink::StatsSnapshot {
    eventually(|| {
        let snap = stats.snapshot();
        snap.responses >= snap.requests
    });
    stats.snapshot()
}

fn wait_requests(stats: &Arc<SinkStats>, n: u64) {
    assert!(eventually(|| stats.snapshot().requests >= n), "{:?}", stats.snapshot());
}

#[test]
fn keep_alive_serves_several_requests_on_one_connection() {
    let sink = sink(SinkConfig::default());
    let mut client = Client::connect(sink.local_addr());
    for _ in 0..5 {
        let response = client.get();
        assert_eq!(response.status, 200);
        assert_eq!(response.body, b"ok\n");
        assert_eq!(response.header("connection"), None);
    }
    let stats = settled(&sink.stats());
    assert_eq!((stats.requests, stats.responses, stats.connections), (5, 5, 1));
}

#[test]
fn pipelined_requests_are_answered_in_order() {
    let sink = sink(SinkConfig::default());
    let mut client = Client::connect(sink.local_addr());
    client.send(
        "GET /1 HTTP/1.1\r\nHost: s\r\n\r\n\
         HEAD /2 HTTP/1.1\r\nHost: s\r\n\r\n\
         POST /3 HTTP/1.1\r\nHost: s\r\nContent-Length: 5\r\n\r\nhello\
         GET /4 HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n\
         GET /5 HTTP/1.1\r\nHost: s\r\n\r\n",
    );
    let first = client.response();
    assert_eq!((first.status, first.body.as_slice()), (200, &b"ok\n"[..]));
    let head = client.head_response();
    assert_eq!((head.status, head.header("content-length")), (200, Some("3")));
    let third = client.response();
    assert_eq!((third.status, third.body.as_slice(), third.closes()), (200, &b"ok\n"[..], false));
    let fourth = client.response();
    assert!(fourth.closes(), "{fourth:?}");
    // The request after `Connection: close` is not answered.
    client.expect_closed();
    assert_eq!(sink.stats().snapshot().responses, 4);
}

#[test]
fn many_pipelined_requests_in_one_write() {
    let sink = sink(SinkConfig::default());
    let mut client = Client::connect(sink.local_addr());
    client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\n".repeat(500));
    for _ in 0..500 {
        assert_eq!(client.response().body, b"ok\n");
    }
    assert_eq!(settled(&sink.stats()).responses, 500);
}

#[test]
fn chunked_request_body_is_read_and_discarded() {
    let sink = sink(SinkConfig::default());
    let stats = sink.stats();
    let mut client = Client::connect(sink.local_addr());
    let parts = [
        "POST / HTTP/1.1\r\nHost: s\r\nTransfer-Encoding: chunked\r\n\r\n",
        "5\r\nhel",
        "lo\r\n1",
        "0;ext=1\r\n0123456789abcdef\r\n0\r\nX-Trailer: 1\r\n",
        "\r\nGET / HTTP/1.1\r\nHost: s\r\n\r\n",
    ];
    for part in parts {
        client.send(part);
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(client.response().status, 200);
    assert_eq!(client.response().status, 200);
    let sent: usize = parts.iter().map(|p| p.len()).sum();
    let snap = stats.snapshot();
    assert_eq!((snap.requests, snap.bytes_in), (2, sent as u64));
}

#[test]
fn content_length_body_split_across_writes_is_discarded() {
    let sink = sink(SinkConfig::default());
    let mut client = Client::connect(sink.local_addr());
    let body = vec![b'x'; 200_000];
    client.send(format!("PUT / HTTP/1.1\r\nHost: s\r\nContent-Length: {}\r\n\r\n", body.len()));
    for piece in body.chunks(30_000) {
        client.send(piece);
    }
    assert_eq!(client.response().status, 200);
    assert_eq!(client.get().status, 200);
    assert_eq!(sink.stats().snapshot().requests, 2);
}

#[test]
fn expect_100_continue_gets_an_interim_answer() {
    let sink = sink(SinkConfig::default());
    let mut client = Client::connect(sink.local_addr());
    client.send("POST / HTTP/1.1\r\nHost: s\r\nExpect: 100-continue\r\nContent-Length: 4\r\n\r\n");
    let interim = client.head_response();
    assert_eq!(interim.status, 100);
    client.send("body");
    assert_eq!(client.response().status, 200);
    assert_eq!(settled(&sink.stats()).responses, 1, "100 Continue is not a final answer");
}

#[test]
fn close_mode_sends_connection_close_and_closes() {
    let sink = sink(SinkConfig { close: true, ..SinkConfig::default() });
    for _ in 0..3 {
        let mut client = Client::connect(sink.local_addr());
        let response = client.get();
        assert_eq!(response.status, 200);
        assert!(response.closes(), "{response:?}");
        client.expect_closed();
    }
    assert_eq!(sink.stats().snapshot().connections, 3);
}

#[test]
fn client_close_and_http10_follow_keep_alive_rules() {
    let sink = sink(SinkConfig::default());
    let addr = sink.local_addr();

    let mut client = Client::connect(addr);
    client.send("GET / HTTP/1.1\r\nHost: s\r\nConnection: close\r\n\r\n");
    assert!(client.response().closes());
    client.expect_closed();

    let mut client = Client::connect(addr);
    client.send("GET / HTTP/1.0\r\n\r\n");
    assert!(client.response().closes());
    client.expect_closed();

    let mut client = Client::connect(addr);
    for _ in 0..3 {
        client.send("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        let response = client.response();
        assert_eq!(response.header("connection"), Some("keep-alive"), "{response:?}");
    }
}

#[test]
fn error_rate_one_gives_only_500s_and_zero_none() {
    let errors = sink(SinkConfig { error_rate: 1.0, ..SinkConfig::default() });
    let mut client = Client::connect(errors.local_addr());
    for _ in 0..20 {
        let response = client.get();
        assert_eq!((response.status, response.body.as_slice()), (500, &b"error\n"[..]));
    }
    let fine = sink(SinkConfig { error_rate: 0.0, ..SinkConfig::default() });
    let mut client = Client::connect(fine.local_addr());
    for _ in 0..20 {
        assert_eq!(client.get().status, 200);
    }
}

#[test]
fn error_rate_half_gives_a_mix() {
    let sink = sink(SinkConfig { error_rate: 0.5, ..SinkConfig::default() });
    let mut client = Client::connect(sink.local_addr());
    let errors = (0..200).filter(|_| client.get().status == 500).count();
    // The chance of falling outside this band by luck is far below one in a million.
    assert!((50..=150).contains(&errors), "{errors} errors out of 200");
}

#[test]
fn capacity_answers_503_beyond_the_rate() {
    let sink = sink(SinkConfig { capacity: Some(100.0), ..SinkConfig::default() });
    let mut client = Client::connect(sink.local_addr());
    let started = Instant::now();
    let statuses: Vec<u16> = (0..300).map(|_| client.get().status).collect();
    let elapsed = started.elapsed().as_secs_f64();
    let admitted = statuses.iter().filter(|s| **s == 200).count() as f64;
    let overloaded = statuses.iter().filter(|s| **s == 503).count() as f64;
    assert_eq!(admitted + overloaded, 300.0);
    // A burst of 5 (50 ms at 100/s) plus 100 a second while the client ran.
    let allowed = 5.0 + 100.0 * elapsed + 1.0;
    assert!(admitted <= allowed && admitted >= 5.0, "{admitted} admitted in {elapsed:.3}s");
    let bad =
        pummel_sink::start("127.0.0.1:0".parse().unwrap(), SinkConfig { capacity: Some(0.0), ..SinkConfig::default() });
    assert!(matches!(bad, Err(SinkError::Config(_))));
}

#[test]
fn configured_status_is_used() {
    let sink = sink(SinkConfig { status: 503, ..SinkConfig::default() });
    assert_eq!(Client::connect(sink.local_addr()).get().status, 503);
}

#[test]
fn body_size_is_respected() {
    for size in [0, 1, 100_000] {
        let sink = sink(SinkConfig { body_size: size, ..SinkConfig::default() });
        let mut client = Client::connect(sink.local_addr());
        let response = client.get();
        assert_eq!(response.header("content-length"), Some(size.to_string().as_str()));
        assert_eq!(response.body.len(), size);
        assert!(response.body.iter().zip(b"ok\n".iter().cycle()).all(|(a, b)| a == b));
        // A second answer proves no extra bytes followed the body.
        assert_eq!(client.get().body.len(), size);
    }
}

#[test]
fn fixed_delay_holds_the_response() {
    let delay = Duration::from_millis(200);
    let sink = sink(SinkConfig { delay: Delay::Fixed(delay), ..SinkConfig::default() });
    let mut client = Client::connect(sink.local_addr());
    let start = Instant::now();
    assert_eq!(client.get().status, 200);
    let elapsed = start.elapsed();
    assert!(elapsed >= delay && elapsed < delay * 5, "{elapsed:?}");

    // Pipelined requests read together wait together, not one after the other.
    let start = Instant::now();
    client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\n".repeat(3));
    for _ in 0..3 {
        assert_eq!(client.response().status, 200);
    }
    let elapsed = start.elapsed();
    assert!(elapsed >= delay && elapsed < delay * 3, "{elapsed:?}");
}

#[test]
fn range_delay_stays_in_range() {
    let (min, max) = (Duration::from_millis(50), Duration::from_millis(150));
    let sink = sink(SinkConfig { delay: Delay::Range(min, max), ..SinkConfig::default() });
    let mut client = Client::connect(sink.local_addr());
    for _ in 0..5 {
        let start = Instant::now();
        client.get();
        let elapsed = start.elapsed();
        assert!(elapsed >= min && elapsed < max * 4, "{elapsed:?}");
    }
}

#[test]
fn garbage_gets_400_and_a_close() {
    let oversized = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(70 * 1024));
    let endless_head = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(70 * 1024));
    let inputs: Vec<Vec<u8>> = vec![
        b"hello there\r\n\r\n".to_vec(),
        vec![0xff, 0x00, 0x13, 0x37, b'\r', b'\n', b'\r', b'\n'],
        b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03".to_vec(),
        b"GET / HTTP/2.0\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n".to_vec(),
        b"POST / HTTP/1.1\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec(),
        oversized.into_bytes(),
        endless_head.into_bytes(),
    ];
    let sink = sink(SinkConfig::default());
    for input in &inputs {
        let mut client = Client::connect(sink.local_addr());
        client.send(input);
        let response = client.response();
        assert_eq!(response.status, 400, "{:?}", String::from_utf8_lossy(&input[..input.len().min(40)]));
        assert!(response.closes());
        client.expect_closed();
    }
    let stats = sink.stats().snapshot();
    assert_eq!(stats.bad_requests, inputs.len() as u64);
    assert!(eventually(|| sink.stats().snapshot().open_connections == 0));
}

#[test]
fn good_answers_come_before_the_400() {
    let sink = sink(SinkConfig::default());
    let mut client = Client::connect(sink.local_addr());
    client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\nBROKEN\r\n\r\n");
    assert_eq!(client.response().status, 200);
    assert_eq!(client.response().status, 400);
    client.expect_closed();
}

#[test]
fn idle_clients_are_closed() {
    let idle = Duration::from_millis(300);
    let sink = sink(SinkConfig { idle_timeout: idle, ..SinkConfig::default() });
    let start = Instant::now();
    let mut silent = Client::connect(sink.local_addr());
    let mut half_head = Client::connect(sink.local_addr());
    half_head.send("GET / HTTP/1.1\r\nHost:");
    let mut after_answer = Client::connect(sink.local_addr());
    assert_eq!(after_answer.get().status, 200);
    silent.expect_closed();
    half_head.expect_closed();
    after_answer.expect_closed();
    let elapsed = start.elapsed();
    assert!(elapsed >= idle && elapsed < Duration::from_secs(3), "{elapsed:?}");
    assert!(eventually(|| sink.stats().snapshot().open_connections == 0));
}

#[test]
fn delayed_requests_are_not_idle() {
    let sink = sink(SinkConfig {
        delay: Delay::Fixed(Duration::from_millis(400)),
        idle_timeout: Duration::from_millis(200),
        ..SinkConfig::default()
    });
    let mut client = Client::connect(sink.local_addr());
    assert_eq!(client.get().status, 200);
    assert_eq!(client.get().status, 200, "still open right after a long delay");
}

#[test]
fn stats_count_requests_and_open_connections() {
    let sink = sink(SinkConfig::default());
    let stats = sink.stats();
    let mut clients: Vec<Client> = (0..3).map(|_| Client::connect(sink.local_addr())).collect();
    assert!(eventually(|| stats.snapshot().open_connections == 3), "{:?}", stats.snapshot());
    for client in &mut clients {
        client.get();
        client.get();
    }
    let snap = settled(&stats);
    let request_len = "GET / HTTP/1.1\r\nHost: sink\r\n\r\n".len() as u64;
    let response_len = "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n".len() as u64;
    assert_eq!((snap.requests, snap.responses, snap.connections), (6, 6, 3));
    assert_eq!((snap.bytes_in, snap.bytes_out), (6 * request_len, 6 * response_len));
    drop(clients);
    assert!(eventually(|| stats.snapshot().open_connections == 0), "{:?}", stats.snapshot());
}

#[test]
fn shutdown_returns_promptly_with_pending_requests() {
    let sink = sink(SinkConfig { delay: Delay::Fixed(Duration::from_secs(300)), threads: 2, ..SinkConfig::default() });
    let stats = sink.stats();
    let mut clients: Vec<Client> = (0..50).map(|_| Client::connect(sink.local_addr())).collect();
    for client in &mut clients {
        client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\n");
    }
    wait_requests(&stats, 50);
    let start = Instant::now();
    sink.shutdown();
    assert!(start.elapsed() < Duration::from_secs(2), "{:?}", start.elapsed());
    for client in &mut clients {
        client.expect_closed();
    }
    let snap = stats.snapshot();
    assert_eq!((snap.open_connections, snap.responses), (0, 0));
}

#[test]
fn dropping_the_handle_stops_the_sink() {
    let sink = sink(SinkConfig::default());
    let addr = sink.local_addr();
    drop(sink);
    assert!(TcpStream::connect_timeout(&addr, TIMEOUT).is_err(), "still listening");
}

#[test]
fn several_threads_share_the_load() {
    let sink = sink(SinkConfig { threads: 3, ..SinkConfig::default() });
    let addr = sink.local_addr();
    let workers: Vec<_> = (0..12)
        .map(|_| {
            std::thread::spawn(move || {
                let mut client = Client::connect(addr);
                (0..20).all(|_| client.get().status == 200)
            })
        })
        .collect();
    for worker in workers {
        assert!(worker.join().unwrap());
    }
    let snap = settled(&sink.stats());
    assert_eq!((snap.requests, snap.responses, snap.connections), (240, 240, 12));
}

#[test]
fn start_rejects_bad_settings() {
    let addr = "127.0.0.1:0".parse().unwrap();
    let config = SinkConfig {
        error_rate: 1.5,
        delay: Delay::Range(Duration::from_millis(9), Duration::from_millis(1)),
        ..SinkConfig::default()
    };
    match pummel_sink::start(addr, config) {
        Err(SinkError::Config(problems)) => {
            assert!(matches!(problems.as_slice(), [ConfigError::ErrorRate(_), ConfigError::InvertedDelay { .. }]));
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn bind_failure_names_the_address() {
    let first = sink(SinkConfig::default());
    let addr = first.local_addr();
    match pummel_sink::start(addr, SinkConfig::default()) {
        Err(err @ SinkError::Bind { addr: failed, .. }) => {
            assert_eq!(failed, addr);
            assert!(err.to_string().contains(&addr.to_string()), "{err}");
            assert!(std::error::Error::source(&err).is_some());
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn local_addr_has_the_real_port() {
    let sink = sink(SinkConfig::default());
    assert_ne!(sink.local_addr().port(), 0);
    assert!(sink.local_addr().ip().is_loopback());
}

#[test]
fn big_answers_reach_a_slow_reader_whole() {
    let size = 8 << 20;
    let sink = sink(SinkConfig { body_size: size, ..SinkConfig::default() });
    let mut client = Client::connect(sink.local_addr());
    client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\n".repeat(2));
    std::thread::sleep(Duration::from_millis(100));
    for _ in 0..2 {
        let response = client.response();
        assert_eq!(response.body.len(), size);
        assert!(response.body.iter().zip(b"ok\n".iter().cycle()).all(|(a, b)| a == b));
    }
    let snap = settled(&sink.stats());
    assert_eq!(snap.responses, 2);
    assert!(snap.bytes_out > 2 * size as u64);
}

#[test]
fn a_client_that_never_reads_is_closed_after_the_idle_timeout() {
    let sink =
        sink(SinkConfig { body_size: 64 << 20, idle_timeout: Duration::from_millis(300), ..SinkConfig::default() });
    let stats = sink.stats();
    let mut client = Client::connect(sink.local_addr());
    client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\n");
    assert!(eventually(|| stats.snapshot().connections == 1));
    assert!(eventually(|| stats.snapshot().open_connections == 0), "{:?}", stats.snapshot());
    assert_eq!(stats.snapshot().responses, 0);
}

#[test]
fn a_client_that_gives_up_during_a_delay_is_dropped_and_counted() {
    let sink = sink(SinkConfig { delay: Delay::Fixed(Duration::from_secs(300)), ..SinkConfig::default() });
    let stats = sink.stats();
    let mut client = Client::connect(sink.local_addr());
    client.send("GET / HTTP/1.1\r\nHost: s\r\n\r\n".repeat(2));
    wait_requests(&stats, 2);
    drop(client);
    assert!(eventually(|| stats.snapshot().open_connections == 0), "{:?}", stats.snapshot());
    let snap = stats.snapshot();
    assert_eq!((snap.abandoned, snap.responses), (2, 0));
}

#[test]
fn requests_sent_during_a_delay_get_their_own_delay() {
    let delay = Duration::from_millis(300);
    let sink = sink(SinkConfig { delay: Delay::Fixed(delay), ..SinkConfig::default() });
    let mut client = Client::connect(sink.local_addr());
    let start = Instant::now();
    client.send("GET /a HTTP/1.1\r\nHost: s\r\n\r\n");
    std::thread::sleep(Duration::from_millis(150));
    client.send("GET /b HTTP/1.1\r\nHost: s\r\n\r\n");
    assert_eq!(client.response().status, 200);
    let first = start.elapsed();
    assert_eq!(client.response().status, 200);
    let second = start.elapsed();
    assert!(first >= delay && first < Duration::from_secs(1), "{first:?}");
    assert!(second >= Duration::from_millis(450) && second < Duration::from_secs(2), "{second:?}");
}

/// `reuse_port`: two sinks share one port and both serve it; without it the second sink is
/// refused, so that a sink started twice by mistake never takes half the traffic silently.
#[cfg(target_os = "linux")]
#[test]
fn sinks_share_a_port_only_with_reuse_port() {
    let shared = SinkConfig { reuse_port: true, ..SinkConfig::default() };
    let first = sink(shared.clone());
    let addr = first.local_addr();
    let second = pummel_sink::start(addr, shared).expect("a second sink with reuse_port binds the same port");
    // The kernel hashes each connection's 4-tuple to one of the two: 64 connections from 64
    // source ports all landing on one sink has odds of 2 in 2^64.
    for _ in 0..64 {
        let mut stream = TcpStream::connect_timeout(&addr, TIMEOUT).expect("connect");
        stream.set_read_timeout(Some(TIMEOUT)).unwrap();
        stream.write_all(b"GET / HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n").unwrap();
        let mut answer = Vec::new();
        stream.read_to_end(&mut answer).unwrap();
        assert!(answer.starts_with(b"HTTP/1.1 200"), "{}", String::from_utf8_lossy(&answer));
    }
    let (a, b) = (settled(&first.stats()).requests, settled(&second.stats()).requests);
    assert_eq!(a + b, 64);
    assert!(a > 0 && b > 0, "one sink served everything: {a} and {b}");

    let lone = sink(SinkConfig::default());
    let refused = pummel_sink::start(lone.local_addr(), SinkConfig::default());
    assert!(matches!(refused, Err(SinkError::Bind { .. })), "{refused:?}");
}
