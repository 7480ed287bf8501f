//! Held WebSocket sessions against a hand-written server on 127.0.0.1, and the byte helpers.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

use super::*;
use crate::engine::{RunControl, run};
use crate::plan::{HoldLoad, Load, Plan, QuickRun, RequestSpec, Stop, Target};

/// A WebSocket server on a thread per connection: answers the upgrade (with a wrong accept
/// when `bad_accept`), a pong per ping, then after two pings a close frame; counts the
/// client's answering close frames.
fn ws_server(bad_accept: bool) -> (std::net::SocketAddr, Arc<AtomicU64>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let closes = Arc::new(AtomicU64::new(0));
    let counted = closes.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let closes = counted.clone();
            std::thread::spawn(move || ws_connection(stream, bad_accept, &closes));
        }
    });
    (addr, closes)
}

fn ws_connection(mut stream: TcpStream, bad_accept: bool, closes: &AtomicU64) -> Option<()> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut request = Vec::new();
    let mut byte = [0u8; 1];
    while !request.ends_with(b"\r\n\r\n") {
        stream.read_exact(&mut byte).ok()?;
        request.push(byte[0]);
    }
    let text = String::from_utf8(request).ok()?;
    let key = text.lines().find_map(|l| l.strip_prefix("Sec-WebSocket-Key: "))?;
    let accept = if bad_accept { "bad".to_string() } else { derive_accept_key(key.as_bytes()) };
    let answer = format!(
        "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Accept: {accept}\r\n\r\n"
    );
    stream.write_all(answer.as_bytes()).ok()?;
    for _ in 0..2 {
        let mut frame = [0u8; 6];
        stream.read_exact(&mut frame).ok()?;
        assert_eq!(&frame[..2], &[0x89, 0x80], "an empty masked ping");
        stream.write_all(&[0x8a, 0x00]).ok()?;
    }
    stream.write_all(&[0x88, 0x02, 0x03, 0xe8]).ok()?;
    // The client's close frame, masked, with or without the code echoed.
    let mut head = [0u8; 2];
    stream.read_exact(&mut head).ok()?;
    if head[0] == 0x88 && head[1] & 0x80 != 0 {
        closes.fetch_add(1, Ordering::SeqCst);
    }
    Some(())
}

fn ws_plan(addr: std::net::SocketAddr, connections: usize) -> Plan {
    let target = Target::resolve(&format!("http://{addr}/ws")).unwrap();
    let quick = QuickRun {
        request: RequestSpec { method: "GET".into(), headers: vec![("X-Test".into(), "1".into())], body: vec![] },
        load: Load::Hold(HoldLoad {
            connections,
            open_rate: 1000.0,
            mode: HoldMode::WebSocket,
            drip: Duration::from_millis(50),
            reopen: false,
        }),
        http2: None,
    };
    let stop = Stop { duration: Some(Duration::from_millis(1500)), requests: None };
    let scenarios = quick.scenarios(&target, true, false, stop.duration).unwrap();
    let mut plan = Plan::new(target, scenarios, stop);
    plan.timeout = Duration::from_secs(2);
    plan.connect_timeout = Duration::from_secs(2);
    plan
}

#[test]
fn websockets_upgrade_ping_and_are_closed_by_the_target() {
    let (addr, closes) = ws_server(false);
    let outcome = run(&ws_plan(addr, 4), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.status_counts().collect::<Vec<_>>(), vec![(101, 4)]);
    assert_eq!(outcome.total.ok, 4);
    assert_eq!(outcome.total.closed_by_peer, 4);
    assert_eq!(closes.load(Ordering::SeqCst), 4, "each close frame is answered");
    assert_eq!(outcome.total.unanswered, 0);
}

#[test]
fn a_wrong_websocket_accept_is_a_ws_handshake_failure() {
    let (addr, _) = ws_server(true);
    let outcome = run(&ws_plan(addr, 2), &RunControl::new(), |_| {}).unwrap();
    assert_eq!(outcome.total.errors.get(ErrorKind::WsHandshake), 2, "{:?}", outcome.total.errors);
    assert_eq!(outcome.total.closed_by_peer, 0);
}

#[test]
fn slow_request_stops_before_the_final_crlf() {
    let request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    let head = &request[..head_without_final_crlf(request)];
    assert_eq!(head, b"GET / HTTP/1.1\r\nHost: a\r\n");
    assert_eq!(FILLER.len() % DRIP_BYTES, 0);
}

#[test]
fn status_codes_are_read_from_answers() {
    assert_eq!(status_code(b"HTTP/1.1 408 Request Timeout\r\n"), Some(408));
    assert_eq!(status_code(b"HTTP/1.0 400"), Some(400));
    assert_eq!(status_code(b"garbage"), None);
    assert_eq!(status_code(b"HTTP/1.1 4"), None);
}
