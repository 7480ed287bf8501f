//! Sessions against in-process tokio-tungstenite servers on 127.0.0.1.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_tungstenite::WebSocketStream;
use tokio_tungstenite::tungstenite::Message;

use super::*;
use crate::dial::{TlsClient, TlsSettings};

const SECOND: Duration = Duration::from_secs(1);

/// A WebSocket server on a free loopback port running `handler` for every session.
async fn server<F, Fut>(handler: F) -> SocketAddr
where
    F: Fn(WebSocketStream<TcpStream>) -> Fut + Send + 'static,
    Fut: Future<Output = ()> + Send + 'static,
{
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            if let Ok(ws) = tokio_tungstenite::accept_async(stream).await {
                tokio::spawn(handler(ws));
            }
        }
    });
    addr
}

async fn echo(mut ws: WebSocketStream<TcpStream>) {
    while let Some(Ok(message)) = ws.next().await {
        if (message.is_text() || message.is_binary()) && ws.send(message).await.is_err() {
            return;
        }
    }
}

fn target(addr: SocketAddr) -> WsTarget {
    WsTarget::from_url(&format!("ws://{addr}/socket")).unwrap()
}

async fn open(addr: SocketAddr) -> WsSession {
    WsSession::connect(&target(addr), &[], None, SECOND).await.unwrap().0
}

fn json_id(message: &str) -> Option<u64> {
    serde_json::from_str::<serde_json::Value>(message).ok()?.get("id")?.as_u64()
}

#[tokio::test]
async fn round_trip_and_clean_close() {
    let addr = server(echo).await;
    let (mut session, opened) =
        WsSession::connect(&target(addr), &[("X-Token".into(), "t1".into())], None, SECOND).await.unwrap();
    assert!(opened.opened.tls.is_none());
    assert!(opened.opened.connect < SECOND && opened.handshake < SECOND);
    session.send_text("hello").await.unwrap();
    let got = session.expect(&mut |m| m == "hello", SECOND).await.unwrap();
    assert_eq!(got, "hello");
    session.close(1000, "done").await.unwrap();
    assert!(session.is_ended());
    assert_eq!(session.send_text("late").await.unwrap_err().kind, ErrorKind::WsClosed);
}

#[tokio::test]
#[allow(clippy::result_large_err)] // tungstenite's callback signature
async fn headers_reach_the_server() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let seen = tokio::spawn(async move {
        let (stream, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let callback = |request: &tokio_tungstenite::tungstenite::handshake::server::Request, response| {
            for name in ["x-token", "sec-websocket-protocol", "host"] {
                got.push(request.headers().get_all(name).iter().map(|v| v.to_str().unwrap().to_string()).collect());
            }
            Ok(response)
        };
        let ws = tokio_tungstenite::accept_hdr_async(stream, callback).await;
        drop(ws);
        got
    });
    let headers = [("X-Token".to_string(), "a".to_string()), ("X-Token".to_string(), "b".to_string())];
    let _ = WsSession::connect(&target(addr), &headers, None, SECOND).await;
    let got: Vec<Vec<String>> = seen.await.unwrap();
    assert_eq!(got[0], ["a", "b"]);
    assert!(got[1].is_empty());
    assert_eq!(got[2], [addr.to_string()]);
}

#[tokio::test]
async fn json_rpc_replies_are_matched_by_id_in_any_order() {
    // Answers each batch of three requests in reverse order, after all three arrived.
    let addr = server(|mut ws: WebSocketStream<TcpStream>| async move {
        let mut batch = Vec::new();
        while let Some(Ok(Message::Text(text))) = ws.next().await {
            batch.push(text);
            if batch.len() == 3 {
                for text in batch.drain(..).rev() {
                    let id = json_id(text.as_str()).unwrap();
                    let reply = format!(r#"{{"jsonrpc":"2.0","id":{id},"result":"r{id}"}}"#);
                    ws.send(Message::text(reply)).await.unwrap();
                }
            }
        }
    })
    .await;
    let mut session = open(addr).await;
    for id in 1..=3 {
        session.send_text(&format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"m"}}"#)).await.unwrap();
    }
    for id in 1..=3 {
        let reply = session.expect(&mut |m| json_id(m) == Some(id), SECOND).await.unwrap();
        assert!(reply.contains(&format!(r#""result":"r{id}""#)), "{reply}");
    }
    assert_eq!(session.kept_messages(), 0);
}

#[tokio::test]
async fn expect_times_out_when_nothing_matches() {
    let addr = server(echo).await;
    let mut session = open(addr).await;
    session.send_text("ping-1").await.unwrap();
    let started = std::time::Instant::now();
    let error = session.expect(&mut |m| m == "never", Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::WsExpectTimeout, "{error}");
    assert!(started.elapsed() >= Duration::from_millis(200));
    // The echo that did not match is kept, and the session still works.
    assert_eq!(session.kept_messages(), 1);
    assert_eq!(session.expect(&mut |m| m == "ping-1", SECOND).await.unwrap(), "ping-1");
    session.send_text("again").await.unwrap();
    assert_eq!(session.expect(&mut |m| m == "again", SECOND).await.unwrap(), "again");
}

#[tokio::test]
async fn idle_keeps_messages_answers_pings_and_is_cancel_safe() {
    // Pushes three messages and a ping, then waits for the pong before pushing "after-pong".
    let addr = server(|mut ws: WebSocketStream<TcpStream>| async move {
        for i in 0..3 {
            ws.send(Message::text(format!("push-{i}"))).await.unwrap();
        }
        ws.send(Message::Ping(b"are you there".to_vec().into())).await.unwrap();
        while let Some(Ok(message)) = ws.next().await {
            if let Message::Pong(payload) = message {
                assert_eq!(&payload[..], b"are you there");
                ws.send(Message::text("after-pong")).await.unwrap();
            }
        }
    })
    .await;
    let mut session = open(addr).await;
    // Think for 300 ms, as the executor does: idle raced against a sleep.
    tokio::select! {
        error = session.idle() => panic!("idle ended: {error}"),
        () = tokio::time::sleep(Duration::from_millis(300)) => {}
    }
    assert_eq!(session.kept_messages(), 4);
    for expected in ["push-0", "push-1", "push-2", "after-pong"] {
        assert_eq!(session.expect(&mut |m| m == expected, SECOND).await.unwrap(), expected);
    }
}

#[tokio::test]
async fn idle_keeps_only_the_most_recent_messages() {
    let addr = server(|mut ws: WebSocketStream<TcpStream>| async move {
        for i in 0..(MAX_KEPT_MESSAGES + 4) {
            ws.send(Message::text(format!("m{i}"))).await.unwrap();
        }
        ws.send(Message::text("last")).await.unwrap();
        while ws.next().await.is_some() {}
    })
    .await;
    let mut session = open(addr).await;
    // Wait until "last" came, then check what was kept while idle.
    let _ = session.expect(&mut |m| m == "last", SECOND).await.unwrap();
    assert_eq!(session.kept_messages(), MAX_KEPT_MESSAGES);
    let first = session.expect(&mut |_| true, SECOND).await.unwrap();
    assert_eq!(first, "m4");
}

#[tokio::test]
async fn a_server_close_during_idle_is_ws_closed() {
    let addr = server(|mut ws: WebSocketStream<TcpStream>| async move {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let _ = ws.close(None).await;
        while ws.next().await.is_some() {}
    })
    .await;
    let mut session = open(addr).await;
    let error = tokio::time::timeout(2 * SECOND, session.idle()).await.unwrap();
    assert_eq!(error.kind, ErrorKind::WsClosed, "{error}");
    assert!(session.is_ended());
    assert_eq!(session.expect(&mut |_| true, SECOND).await.unwrap_err().kind, ErrorKind::WsClosed);
    assert_eq!(session.close(1000, "").await.unwrap_err().kind, ErrorKind::WsClosed);
}

#[tokio::test]
async fn a_dropped_connection_during_expect_is_ws_closed() {
    let addr = server(|ws: WebSocketStream<TcpStream>| async move { drop(ws) }).await;
    let mut session = open(addr).await;
    let error = session.expect(&mut |_| true, 2 * SECOND).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::WsClosed, "{error}");
}

/// A plain HTTP server answering every request with `answer`.
async fn http_server(answer: &'static str) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = stream.read(&mut buf).await;
                let _ = stream.write_all(answer.as_bytes()).await;
                let _ = stream.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn a_refused_upgrade_is_ws_handshake() {
    let addr = http_server("HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n").await;
    let error = WsSession::connect(&target(addr), &[], None, SECOND).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::WsHandshake, "{error}");
    assert!(error.detail.contains("404"), "{error}");
    let addr =
        http_server("HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await;
    let error = WsSession::connect(&target(addr), &[], None, SECOND).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::WsHandshake, "{error}");
}

#[tokio::test]
async fn connect_failures_keep_their_kinds() {
    // A port nothing listens on.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let error = WsSession::connect(&target(addr), &[], None, SECOND).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::ConnectRefused, "{error}");
    // A server that accepts but never answers the upgrade: as for an unanswered request.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let error = WsSession::connect(&target(addr), &[], None, Duration::from_millis(200)).await.unwrap_err();
    assert_eq!(error.kind, ErrorKind::Timeout, "{error}");
    drop(silent);
}

#[tokio::test]
async fn wss_round_trip_with_an_rcgen_certificate() {
    crate::dial::tls_config::install_crypto_provider();
    let cert = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(cert.key_pair.serialize_der().into());
    let server_config = rustls::ServerConfig::builder()
        .with_no_client_auth()
        .with_single_cert(vec![cert.cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(server_config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                let Ok(tls) = acceptor.accept(stream).await else { return };
                let Ok(mut ws) = tokio_tungstenite::accept_async(tls).await else { return };
                while let Some(Ok(message)) = ws.next().await {
                    if message.is_text() && ws.send(message).await.is_err() {
                        return;
                    }
                }
            });
        }
    });
    let settings = TlsSettings { insecure: true, server_name: Some("localhost".into()), ..TlsSettings::default() };
    let client = TlsClient::new(&settings, "127.0.0.1").unwrap();
    let mut target = target(addr);
    target.tls = Some(client.clone());
    let target = target.with_tls(&client);
    assert_eq!(target.tls.as_ref().unwrap().server_name, rustls::pki_types::ServerName::try_from("localhost").unwrap());
    let (mut session, opened) = WsSession::connect(&target, &[], None, 5 * SECOND).await.unwrap();
    assert!(opened.opened.tls.is_some());
    session.send_text(r#"{"id":42}"#).await.unwrap();
    let reply = session.expect(&mut |m| json_id(m) == Some(42), SECOND).await.unwrap();
    assert_eq!(reply, r#"{"id":42}"#);
    session.close(1000, "bye").await.unwrap();

    // A verifying client rejects the self-signed certificate: tls_error.
    let strict = TlsClient::new(&TlsSettings { insecure: false, ..settings }, "127.0.0.1");
    if let Ok(strict) = strict {
        let mut target = target.clone();
        target.tls = Some(strict.clone());
        let error = WsSession::connect(&target, &[], None, 5 * SECOND).await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::TlsError, "{error}");
    }
}

#[test]
fn a_session_and_its_futures_are_small() {
    // The executor's per-user task holds one session and, at times, one of these futures.
    assert_eq!(std::mem::size_of::<WsSession>(), std::mem::size_of::<usize>());
    let size = |f: &dyn Fn() -> usize| f();
    let limit = 256;
    let connect = size(&|| {
        let target = target("127.0.0.1:1".parse().unwrap());
        std::mem::size_of_val(&WsSession::connect(&target, &[], None, SECOND))
    });
    assert!(connect <= limit, "connect future: {connect} bytes");
}

#[tokio::test]
async fn method_futures_are_small() {
    let addr = server(echo).await;
    let mut session = open(addr).await;
    let idle = std::mem::size_of_val(&session.idle());
    let send = std::mem::size_of_val(&session.send_text("x"));
    let expect = std::mem::size_of_val(&session.expect(&mut |_| true, SECOND));
    let close = std::mem::size_of_val(&session.close(1000, ""));
    eprintln!("future sizes: idle {idle}, send {send}, expect {expect}, close {close}");
    for (name, size) in [("idle", idle), ("send", send), ("expect", expect), ("close", close)] {
        assert!(size <= 512, "{name} future: {size} bytes");
    }
}
