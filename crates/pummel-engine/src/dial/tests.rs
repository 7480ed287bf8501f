//! Tests of the dial layer against real servers on 127.0.0.1: TLS over the hand-driven session
//! (large answers, raw reads, client certificates, a plain server) and the classification of
//! the same failure over every protocol.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::server::WebPkiClientVerifier;

use pummel_results::error_kind::ErrorKind;

use super::{Alpn, Opened, TlsClient, TlsFor, TlsSettings, TransportError};
use crate::proto::http1::Connection;

/// Opens a connection to `addr`, over TLS with `client` when given.
async fn open(
    addr: SocketAddr,
    timeout: Duration,
    client: Option<&TlsClient>,
) -> Result<(Connection, Opened), TransportError> {
    let tls = client.map(|client| TlsFor { client, alpn: Alpn::Http1 });
    let (stream, opened) = super::open(addr, None, timeout, tls).await?;
    Ok((Connection::new(stream), opened))
}

/// A CA, and server and client certificates it signed, as files for the client's flags.
struct Pki {
    dir: PathBuf,
    ca: CertificateDer<'static>,
    server_cert: CertificateDer<'static>,
    server_key: Vec<u8>,
}

impl Pki {
    fn new(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("pummel-tls-transport-{}-{name}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let ca_key = KeyPair::generate().unwrap();
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        let ca = ca.self_signed(&ca_key).unwrap();
        let leaf = |names: Vec<String>, usage| {
            let key = KeyPair::generate().unwrap();
            let mut params = CertificateParams::new(names).unwrap();
            params.extended_key_usages = vec![usage];
            (params.signed_by(&key, &ca, &ca_key).unwrap(), key)
        };
        let (server, server_key) = leaf(vec!["127.0.0.1".into()], ExtendedKeyUsagePurpose::ServerAuth);
        let (client, client_key) = leaf(vec!["client".into()], ExtendedKeyUsagePurpose::ClientAuth);
        std::fs::write(dir.join("ca.pem"), ca.pem()).unwrap();
        std::fs::write(dir.join("client.pem"), client.pem()).unwrap();
        std::fs::write(dir.join("client-key.pem"), client_key.serialize_pem()).unwrap();
        Pki { dir, ca: ca.der().clone(), server_cert: server.der().clone(), server_key: server_key.serialize_der() }
    }

    fn file(&self, name: &str) -> Option<PathBuf> {
        Some(self.dir.join(name))
    }

    /// A blocking TLS server on a thread: for each connection, reads the request head, then
    /// writes `answer` and closes (with close_notify). Asks for a client certificate
    /// signed by the CA when `client_auth`.
    fn serve(&self, client_auth: bool, answer: Vec<u8>) -> SocketAddr {
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let builder = rustls::ServerConfig::builder_with_provider(provider.clone())
            .with_safe_default_protocol_versions()
            .unwrap();
        let builder = if client_auth {
            let mut roots = rustls::RootCertStore::empty();
            roots.add(self.ca.clone()).unwrap();
            let verifier = WebPkiClientVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
            builder.with_client_cert_verifier(verifier)
        } else {
            builder.with_no_client_auth()
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.server_key.clone()));
        let mut config = builder.with_single_cert(vec![self.server_cert.clone()], key).unwrap();
        // Either protocol may ask: the table test's HTTP/2 clients, everyone else's HTTP/1.1.
        config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        let config = Arc::new(config);
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        std::thread::spawn(move || {
            for tcp in listener.incoming().flatten() {
                let conn = rustls::ServerConnection::new(config.clone()).unwrap();
                let mut tls = rustls::StreamOwned::new(conn, tcp);
                let mut head = Vec::new();
                let mut byte = [0u8; 1];
                while !head.ends_with(b"\r\n\r\n") {
                    if tls.read_exact(&mut byte).is_err() {
                        break;
                    }
                    head.push(byte[0]);
                }
                let _ = tls.write_all(&answer);
                tls.conn.send_close_notify();
                let _ = tls.flush();
            }
        });
        addr
    }
}

fn client(pki: &Pki, with_cert: bool) -> TlsClient {
    let mut settings = TlsSettings { ca_cert: pki.file("ca.pem"), ..TlsSettings::default() };
    if with_cert {
        settings.client_cert = pki.file("client.pem");
        settings.client_key = pki.file("client-key.pem");
    }
    TlsClient::new(&settings, "127.0.0.1").unwrap()
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap()
}

const TIMEOUT: Duration = Duration::from_secs(5);

#[test]
fn a_large_response_spans_many_records_and_reads() {
    let pki = Pki::new("large");
    let body = vec![b'x'; 300_000];
    let mut answer = format!("HTTP/1.1 200 OK\r\nContent-Length: {}\r\n\r\n", body.len()).into_bytes();
    answer.extend_from_slice(&body);
    let addr = pki.serve(false, answer);
    let client = client(&pki, false);
    runtime().block_on(async {
        let (mut conn, opened) = open(addr, TIMEOUT, Some(&client)).await.unwrap();
        assert!(opened.tls.is_some_and(|h| !h.resumed));
        conn.write_all(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n").await.unwrap();
        let info = conn.read_response(false).await.unwrap();
        assert_eq!((info.status, info.body_bytes), (200, 300_000));
    });
}

/// `read_some` hands out everything, also when one socket read brings more plaintext
/// than rustls holds (the stash), and then the close.
#[test]
fn read_some_delivers_every_byte_then_the_close() {
    let pki = Pki::new("some");
    let addr = pki.serve(false, vec![b'y'; 500_000]);
    let client = client(&pki, false);
    runtime().block_on(async {
        let (conn, _) = open(addr, TIMEOUT, Some(&client)).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        // Let the whole answer arrive, so reads come back full.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let mut total = 0;
        loop {
            let n = conn.read_some(|bytes| bytes.len()).await.unwrap();
            if n == 0 {
                break;
            }
            total += n;
        }
        assert_eq!(total, 500_000);
    });
}

#[test]
fn client_certificates_are_sent_when_asked_for() {
    let pki = Pki::new("mtls");
    let addr = pki.serve(true, b"HTTP/1.1 204 No Content\r\n\r\n".to_vec());
    runtime().block_on(async {
        let with = client(&pki, true);
        let (mut conn, _) = open(addr, TIMEOUT, Some(&with)).await.unwrap();
        conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert_eq!(conn.read_response(false).await.unwrap().status, 204);

        // Without one, the server refuses (TLS 1.3: its alert comes after our Finished,
        // so the failure shows on the first exchange); either way it is a TLS error.
        let without = client(&pki, false);
        let failed = async {
            let (mut conn, _) = open(addr, TIMEOUT, Some(&without)).await?;
            conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await?;
            conn.read_response(false).await
        };
        let error = failed.await.unwrap_err();
        assert_eq!(error.kind, ErrorKind::TlsError, "{error}");
    });
}

#[test]
fn a_plain_http_server_is_a_tls_error() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            let mut buf = [0u8; 512];
            let _ = tcp.read(&mut buf);
            let _ = tcp.write_all(b"HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n");
        }
    });
    let settings = TlsSettings { insecure: true, ..TlsSettings::default() };
    let client = TlsClient::new(&settings, "127.0.0.1").unwrap();
    let error = runtime().block_on(open(addr, TIMEOUT, Some(&client))).err().unwrap();
    assert_eq!(error.kind, ErrorKind::TlsError, "{error}");
}

/// The protocols a failure is classified over.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Protocol {
    Http1,
    Http2,
    WebSocket,
}

const PROTOCOLS: [Protocol; 3] = [Protocol::Http1, Protocol::Http2, Protocol::WebSocket];

/// How long every client step may take in the table test.
const STEP: Duration = Duration::from_millis(500);

/// What a server does with each connection it accepts.
#[derive(Debug, Clone, Copy)]
enum Misbehaviour {
    /// Resets the connection (SO_LINGER 0) before reading anything.
    ResetAtOnce,
    /// Reads the first bytes of the request, then resets the connection.
    ResetAfterRequest,
    /// Reads the first bytes, then answers bytes that are not HTTP (and keeps the connection).
    Garbage,
    /// Reads the first bytes and never answers.
    Silent,
    /// Reads the first bytes and answers `404 Not Found` (an upgrade refused).
    NotFound,
}

/// A plain TCP server on a thread, treating every connection as `misbehaviour`.
fn misbehaving(misbehaviour: Misbehaviour) -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for mut tcp in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let reset = |tcp: std::net::TcpStream| {
                    let _ = socket2::SockRef::from(&tcp).set_linger(Some(Duration::ZERO));
                    drop(tcp);
                };
                if let Misbehaviour::ResetAtOnce = misbehaviour {
                    return reset(tcp);
                }
                let _ = tcp.set_read_timeout(Some(Duration::from_secs(3)));
                let mut buf = [0u8; 4096];
                if tcp.read(&mut buf).unwrap_or(0) == 0 {
                    return;
                }
                match misbehaviour {
                    Misbehaviour::ResetAtOnce | Misbehaviour::ResetAfterRequest => return reset(tcp),
                    Misbehaviour::Garbage => {
                        let _ = tcp.write_all(b"garbage, not a protocol at all\r\n\r\n");
                    }
                    Misbehaviour::NotFound => {
                        let _ = tcp.write_all(b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\n\r\n");
                    }
                    Misbehaviour::Silent => {}
                }
                // Hold the connection (reading on) until the client leaves.
                while tcp.read(&mut buf).is_ok_and(|n| n > 0) {}
            });
        }
    });
    addr
}

/// How one request (an HTTP/1.1 GET, an HTTP/2 GET on a pooled stream, a WebSocket upgrade)
/// to `addr` fails; panics when it succeeds.
fn failure_over(protocol: Protocol, addr: SocketAddr, tls: Option<&TlsClient>) -> TransportError {
    let local = tokio::task::LocalSet::new();
    local.block_on(&runtime(), async move {
        let result = match protocol {
            Protocol::Http1 => {
                let exchange = async {
                    let (mut conn, _) = open(addr, STEP, tls).await?;
                    conn.write_all(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n").await?;
                    conn.read_response(false).await.map(|_| ())
                };
                tokio::time::timeout(STEP, exchange).await.unwrap_or_else(|_| Err(TransportError::timeout(STEP)))
            }
            Protocol::Http2 => {
                use crate::proto::http2::{Capture, FlowPool, Kept};
                let meter = std::rc::Rc::new(crate::measure::meter::Meter::new(
                    tokio::time::Instant::now(),
                    Duration::ZERO,
                    None,
                    &[],
                    &crate::flow::Scenarios::default(),
                ));
                let dialer = std::rc::Rc::new(super::Dialer::new(0, vec![addr], vec![], STEP, tls));
                let pool = FlowPool::new(meter, dialer, 1, 1, tls.is_some(), "127.0.0.1", STEP).unwrap();
                let request = pool.request("GET", "/", &[], None).unwrap();
                let capture = Capture { headers: false, body_limit: 0 };
                let now = tokio::time::Instant::now();
                pool.send(None, now, &request, capture, &mut Kept::default(), &mut |_| {}).await.map(|_| ())
            }
            Protocol::WebSocket => {
                let target = crate::proto::ws::WsTarget {
                    addr,
                    host_header: "127.0.0.1".into(),
                    path_and_query: "/".into(),
                    tls: tls.cloned(),
                };
                crate::proto::ws::WsSession::connect(&target, &[], None, STEP).await.map(|_| ())
            }
        };
        match result {
            Ok(()) => panic!("{protocol:?} to {addr} succeeded"),
            Err(e) => e,
        }
    })
}

/// The same failure is the same kind over every protocol: a table of failures × protocols.
#[test]
fn each_failure_gets_one_kind_over_every_protocol() {
    crate::dial::tls_config::install_crypto_provider();
    let refused = {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap()
    };
    let pki = Pki::new("kinds");
    let other_ca = Pki::new("kinds-other");
    let asks_for_a_client_certificate = pki.serve(true, b"HTTP/1.1 204 No Content\r\n\r\n".to_vec());
    let signed_by_an_unknown_ca = pki.serve(false, b"HTTP/1.1 204 No Content\r\n\r\n".to_vec());
    let table: Vec<(&str, SocketAddr, Option<TlsClient>, ErrorKind)> = vec![
        ("nothing listens", refused, None, ErrorKind::ConnectRefused),
        ("reset before the request", misbehaving(Misbehaviour::ResetAtOnce), None, ErrorKind::Reset),
        ("reset after the request", misbehaving(Misbehaviour::ResetAfterRequest), None, ErrorKind::Reset),
        ("a TLS alert", asks_for_a_client_certificate, Some(client(&pki, false)), ErrorKind::TlsError),
        ("a certificate not trusted", signed_by_an_unknown_ca, Some(client(&other_ca, false)), ErrorKind::TlsError),
        ("an answer that is not HTTP", misbehaving(Misbehaviour::Garbage), None, ErrorKind::MalformedResponse),
        ("no answer in time", misbehaving(Misbehaviour::Silent), None, ErrorKind::Timeout),
    ];
    let mut wrong = Vec::new();
    for (failure, addr, tls, expected) in &table {
        for protocol in PROTOCOLS {
            let error = failure_over(protocol, *addr, tls.as_ref());
            if error.kind != *expected {
                wrong.push(format!("{failure} over {protocol:?}: {error}, expected {expected}"));
            }
        }
    }
    // The one failure only a WebSocket can meet.
    let refused_upgrade = failure_over(Protocol::WebSocket, misbehaving(Misbehaviour::NotFound), None);
    if refused_upgrade.kind != ErrorKind::WsHandshake {
        wrong.push(format!("a refused upgrade: {refused_upgrade}, expected ws_handshake"));
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}
