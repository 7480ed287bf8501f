//! The sink's WebSocket echo and `--echo` answers, against a started sink on 127.0.0.1.

use std::io::{Read, Write};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::TcpStream;
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::protocol::frame::coding::CloseCode;

use super::*;
use crate::{SinkConfig, SinkHandle, SinkTls};

const TIMEOUT: Duration = Duration::from_secs(5);

fn sink(config: SinkConfig) -> SinkHandle {
    crate::start("127.0.0.1:0".parse().unwrap(), config).unwrap()
}

async fn client(sink: &SinkHandle) -> WebSocketStream<TcpStream> {
    let tcp = TcpStream::connect(sink.local_addr()).await.unwrap();
    let url = format!("ws://{}/any/path?x=1", sink.local_addr());
    tokio_tungstenite::client_async(url, tcp).await.unwrap().0
}

async fn next<S: AsyncRead + AsyncWrite + Unpin>(ws: &mut WebSocketStream<S>) -> Message {
    tokio::time::timeout(TIMEOUT, ws.next()).await.expect("a message in time").expect("open").expect("valid")
}

/// Waits (bounded) until `check` holds for the sink's counters.
async fn eventually(sink: &SinkHandle, check: impl Fn(&crate::StatsSnapshot) -> bool) -> crate::StatsSnapshot {
    let started = Instant::now();
    loop {
        let snapshot = sink.stats().snapshot();
        if check(&snapshot) || started.elapsed() > TIMEOUT {
            return snapshot;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test]
async fn echoes_text_and_binary_answers_pings_and_counts() {
    let sink = sink(SinkConfig::default());
    let mut ws = client(&sink).await;
    ws.send(Message::text(r#"{"jsonrpc":"2.0","id":7,"method":"sum"}"#)).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::text(r#"{"jsonrpc":"2.0","id":7,"method":"sum"}"#));
    ws.send(Message::binary(vec![0u8, 1, 2, 255])).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::binary(vec![0u8, 1, 2, 255]));
    ws.send(Message::Ping(b"p".to_vec().into())).await.unwrap();
    assert_eq!(next(&mut ws).await, Message::Pong(b"p".to_vec().into()));
    let stats = eventually(&sink, |s| s.ws_messages_out == 2).await;
    assert_eq!((stats.ws_sessions, stats.ws_open, stats.ws_messages_in, stats.ws_messages_out), (1, 1, 2, 2));
    ws.close(None).await.unwrap();
    // The sink answers the close; then the stream ends.
    while let Ok(Some(Ok(_))) = tokio::time::timeout(TIMEOUT, ws.next()).await {}
    assert_eq!(eventually(&sink, |s| s.ws_open == 0).await.ws_open, 0);
    sink.shutdown();
}

#[tokio::test]
async fn a_close_message_makes_the_sink_close() {
    let sink = sink(SinkConfig::default());
    let mut ws = client(&sink).await;
    ws.send(Message::text("close")).await.unwrap();
    match next(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Normal),
        other => panic!("expected a close, got {other:?}"),
    }
    assert!(tokio::time::timeout(TIMEOUT, ws.next()).await.unwrap().is_none_or(|m| m.is_err()));
    sink.shutdown();
}

#[tokio::test]
async fn ws_delay_holds_each_echo_from_its_arrival_in_order() {
    let delay = Duration::from_millis(200);
    let sink = sink(SinkConfig { ws_delay: delay, ..SinkConfig::default() });
    let mut ws = client(&sink).await;
    let started = Instant::now();
    for id in 1..=3 {
        ws.send(Message::text(format!(r#"{{"id":{id}}}"#))).await.unwrap();
    }
    for id in 1..=3 {
        assert_eq!(next(&mut ws).await, Message::text(format!(r#"{{"id":{id}}}"#)));
    }
    let took = started.elapsed();
    // Each held from its own arrival: about one delay for all three, not three.
    assert!(took >= delay && took < 3 * delay, "{took:?}");
    sink.shutdown();
}

#[tokio::test]
async fn idle_sessions_are_closed_going_away() {
    let sink = sink(SinkConfig { idle_timeout: Duration::from_millis(150), ..SinkConfig::default() });
    let mut ws = client(&sink).await;
    match next(&mut ws).await {
        Message::Close(Some(frame)) => assert_eq!(frame.code, CloseCode::Away),
        other => panic!("expected a close, got {other:?}"),
    }
    sink.shutdown();
}

/// A blocking raw client: writes `request`, reads until `until` is in what came back.
fn raw_exchange(sink: &SinkHandle, request: &[u8], until: &[u8]) -> Vec<u8> {
    let mut stream = std::net::TcpStream::connect(sink.local_addr()).unwrap();
    stream.set_read_timeout(Some(TIMEOUT)).unwrap();
    stream.write_all(request).unwrap();
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while !got.windows(until.len()).any(|w| w == until) {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    got
}

const UPGRADE: &str = "GET /chat HTTP/1.1\r\nHost: sink\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                       Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";

#[test]
fn frames_sent_with_the_upgrade_and_after_a_plain_request_are_served() {
    let sink = sink(SinkConfig::default());
    // A plain request first, then the upgrade and a masked text frame "hi", in one write.
    let mut request = b"GET / HTTP/1.1\r\nHost: sink\r\n\r\n".to_vec();
    request.extend_from_slice(UPGRADE.as_bytes());
    let mask = [1u8, 2, 3, 4];
    request.extend_from_slice(&[0x81, 0x80 | 2]);
    request.extend_from_slice(&mask);
    request.extend(b"hi".iter().zip(mask.iter().cycle()).map(|(b, m)| b ^ m));
    let got = raw_exchange(&sink, &request, &[0x81, 0x02, b'h', b'i']);
    let text = String::from_utf8_lossy(&got);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
    // RFC 6455's own example key and accept value.
    assert!(text.contains("HTTP/1.1 101 Switching Protocols\r\n"), "{text}");
    assert!(text.contains("Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"), "{text}");
    assert!(got.ends_with(&[0x81, 0x02, b'h', b'i']), "{got:?}");
    assert_eq!(sink.stats().snapshot().ws_sessions, 1);
    sink.shutdown();
}

#[test]
fn upgrades_without_a_valid_key_get_the_normal_answer() {
    let sink = sink(SinkConfig::default());
    for request in [
        UPGRADE.replace("dGhlIHNhbXBsZSBub25jZQ==", "short"),
        UPGRADE.replace("Sec-WebSocket-Version: 13", "Sec-WebSocket-Version: 8"),
        UPGRADE.replace("GET", "POST"),
    ] {
        let got = raw_exchange(&sink, request.as_bytes(), b"ok\n");
        let text = String::from_utf8_lossy(&got);
        assert!(text.starts_with("HTTP/1.1 200 OK\r\n") && text.ends_with("ok\n"), "{text}");
    }
    assert_eq!(sink.stats().snapshot().ws_sessions, 0);
    sink.shutdown();
}

#[test]
fn upgrade_parsing_checks_every_part() {
    let head = UPGRADE.as_bytes();
    let accepted = upgrade(head, b"rest").unwrap();
    assert_eq!(accepted.accept, "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
    assert_eq!(accepted.leftover, b"rest");
    assert!(upgrade(UPGRADE.replace("websocket", "h2c").as_bytes(), b"").is_none());
    assert!(upgrade(UPGRADE.replace("Upgrade: websocket", "Upgrade: foo, WebSocket").as_bytes(), b"").is_some());
    assert!(upgrade(b"GET / HTTP/1.1\r\n", b"").is_none());
}

#[tokio::test]
async fn wss_echo_over_tls() {
    let sink = sink(SinkConfig { tls: Some(SinkTls::SelfSigned), ..SinkConfig::default() });
    let mut roots = rustls::RootCertStore::empty();
    let pem = sink.tls_ca_pem().unwrap().to_string();
    for cert in rustls_pki_types::pem::PemObject::pem_slice_iter(pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    let tcp = TcpStream::connect(sink.local_addr()).await.unwrap();
    let name = rustls_pki_types::ServerName::try_from("localhost").unwrap();
    let tls = tokio_rustls::TlsConnector::from(Arc::new(config)).connect(name, tcp).await.unwrap();
    let url = format!("wss://localhost:{}/", sink.local_addr().port());
    let (mut ws, _) = tokio_tungstenite::client_async(url, tls).await.unwrap();
    for i in 0..20 {
        let text = format!(r#"{{"id":{i},"pad":"{}"}}"#, "x".repeat(i * 300));
        ws.send(Message::text(text.clone())).await.unwrap();
        assert_eq!(next(&mut ws).await, Message::text(text));
    }
    ws.send(Message::text("close")).await.unwrap();
    assert!(matches!(next(&mut ws).await, Message::Close(_)));
    let stats = sink.stats().snapshot();
    assert_eq!((stats.ws_sessions, stats.ws_messages_out), (1, 20));
    sink.shutdown();
}

#[test]
fn echo_answers_describe_each_request() {
    let sink = sink(SinkConfig { echo: true, ..SinkConfig::default() });
    let request = b"POST /items/42?a=1 HTTP/1.1\r\nHost: sink\r\nContent-Length: 5\r\n\r\nhello\
                    GET /second HTTP/1.1\r\nHost: sink\r\nConnection: close\r\n\r\n";
    let got = raw_exchange(&sink, request, br#""path":"/second""#);
    let text = String::from_utf8_lossy(&got).to_string();
    let bodies: Vec<serde_json::Value> = text
        .split("\r\n\r\n")
        .skip(1)
        .filter_map(|part| part.split("HTTP/1.1").next())
        .map(|body| serde_json::from_str(body).unwrap())
        .collect();
    assert_eq!(
        bodies,
        [
            serde_json::json!({"id":1,"method":"POST","path":"/items/42","query":"a=1","body_bytes":5}),
            serde_json::json!({"id":2,"method":"GET","path":"/second","query":"","body_bytes":0}),
        ],
        "{text}"
    );
    assert!(text.contains("X-Request-Id: 1\r\n") && text.contains("X-Request-Id: 2\r\n"), "{text}");
    assert!(text.contains("Content-Type: application/json\r\n"), "{text}");
    sink.shutdown();
}
