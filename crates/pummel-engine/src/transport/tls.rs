//! TLS on the same `AsyncFd` socket as plain connections: a rustls `ClientConnection` driven
//! by hand, not through tokio-rustls.
//!
//! Why by hand: tokio-rustls wants a tokio `TcpStream` (a second socket type and registration
//! next to the hot path's `AsyncFd`) and reads through its own `AsyncRead` plumbing, so the two
//! tricks that make the plain path fast would be lost. Here they stay:
//! - ciphertext is read into the thread's shared scratch buffer (the one plain reads use) and
//!   handed to rustls from there, so after a short read the socket is known to be drained and
//!   its readiness is cleared without an extra `read` that would only return `EAGAIN`;
//! - plaintext is parsed straight out of rustls' buffer (`BufRead::fill_buf`), no copy.
//!
//! A TLS connection costs what rustls keeps per session (a 4 KiB record buffer, the keys, the
//! session state): a held TLS connection measured 9.9 KiB against 1.7 KiB for a plain one
//! (BENCHMARKS.md). rustls' unbuffered API could decrypt in the shared scratch buffer and save
//! the 4 KiB, at the price of driving its state machine by hand. The TLS calls of `Connection`
//! are boxed futures (one small allocation per call, TLS only), so that the plain path's
//! futures, and with them every held plain connection's task, keep their size; a plain
//! connection pays one empty `Option<Box<_>>` for the seam and a branch per call.
//!
//! Failures: a rustls error (certificate verification, an alert from the server, a protocol
//! violation) and a connection closed in the middle of the handshake count as
//! [`ErrorKind::TlsError`]; socket errors keep their usual kinds (`reset`, ...).

use std::cell::RefCell;
use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use rustls::{ClientConnection, HandshakeKind, IoState};
use tokio::io::unix::AsyncFd;

use super::tcp::{SCRATCH, TransportError};
use crate::error_kind::ErrorKind;
use crate::http1::{Progress, ResponseInfo, ResponseParser};
use crate::tls::TlsClient;

/// Plaintext rustls may hold before more ciphertext is handed to it; rustls refuses to read
/// past 16 KiB of unread plaintext, so ciphertext beyond this waits in the session's stash.
const PLAINTEXT_HIGH_WATER: usize = 8 * 1024;

/// What one handshake did.
#[derive(Debug, Clone, Copy)]
pub struct Handshake {
    /// From the ClientHello to the end of the handshake.
    pub took: Duration,
    /// True when a session was resumed (no certificate exchange).
    pub resumed: bool,
}

/// The TLS state of one connection. `RefCell` because the connection's methods take `&self`
/// (a held connection may wait for reads while it writes); a borrow never spans an `.await`.
#[derive(Debug)]
pub(crate) struct TlsSession {
    inner: RefCell<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: ClientConnection,
    /// Ciphertext read from the socket that rustls could not take yet (see
    /// [`PLAINTEXT_HIGH_WATER`]); empty and unallocated almost always.
    stash: Vec<u8>,
}

fn tls_error(error: impl std::fmt::Display) -> TransportError {
    TransportError { kind: ErrorKind::TlsError, detail: format!("TLS: {error}") }
}

fn io_error(error: &io::Error) -> TransportError {
    TransportError::io(error, false)
}

/// Takes plaintext out of rustls after each batch of records rustls decrypted; returns how
/// much plaintext it left there.
trait Drain {
    fn drain(&mut self, conn: &mut ClientConnection, state: &IoState) -> Result<usize, TransportError>;
}

/// Leaves all plaintext in rustls (the handshake, `read_some`).
struct Keep;

impl Drain for Keep {
    fn drain(&mut self, _conn: &mut ClientConnection, state: &IoState) -> Result<usize, TransportError> {
        Ok(state.plaintext_bytes_to_read())
    }
}

/// Feeds plaintext to the response parser as it is decrypted.
struct ResponseSink<'a> {
    parser: &'a mut ResponseParser,
    /// Set when the peer sent more than the response.
    tainted: &'a mut bool,
    /// The complete response, once it is.
    done: Option<ResponseInfo>,
    /// The peer closed (TCP EOF or close_notify) and every byte before the close was parsed.
    closed: bool,
}

impl ResponseSink<'_> {
    /// Parses all the plaintext rustls holds.
    fn pump(&mut self, conn: &mut ClientConnection) -> Result<(), TransportError> {
        loop {
            let mut reader = conn.reader();
            let chunk = match reader.fill_buf() {
                Ok([]) => {
                    // close_notify received and everything before it read.
                    self.closed = true;
                    return Ok(());
                }
                Ok(chunk) => chunk,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(()),
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => {
                    self.closed = true;
                    return Ok(());
                }
                Err(e) => return Err(io_error(&e)),
            };
            let len = chunk.len();
            if self.done.is_some() {
                // Bytes after the complete response: the connection is not reused.
                *self.tainted = true;
                reader.consume(len);
                continue;
            }
            match self.parser.feed(chunk) {
                Ok((_, Progress::NeedMore)) => reader.consume(len),
                Ok((used, Progress::Complete(info))) => {
                    reader.consume(used);
                    self.done = Some(info);
                }
                Err(e) => return Err(TransportError::parse(e)),
            }
        }
    }
}

impl Drain for ResponseSink<'_> {
    fn drain(&mut self, conn: &mut ClientConnection, _state: &IoState) -> Result<usize, TransportError> {
        self.pump(conn)?;
        Ok(0)
    }
}

/// Runs the TLS handshake on a freshly connected socket.
pub(super) async fn handshake(
    socket: &AsyncFd<TcpStream>,
    client: &TlsClient,
) -> Result<(TlsSession, Handshake), TransportError> {
    let started = Instant::now();
    let conn = ClientConnection::new(client.config.clone(), client.server_name.clone()).map_err(tls_error)?;
    let session = TlsSession { inner: RefCell::new(Inner { conn, stash: Vec::new() }) };
    // Done once the client may send data. Its last flight (TLS 1.3's Finished) stays queued
    // and leaves with the first request, in the same write.
    while session.inner.borrow().conn.is_handshaking() {
        session.flush(socket).await?;
        if session.receive(socket, &mut Keep).await? == 0 {
            return Err(tls_error("the server closed the connection during the handshake"));
        }
    }
    let resumed = session.inner.borrow().conn.handshake_kind() == Some(HandshakeKind::Resumed);
    Ok((session, Handshake { took: started.elapsed(), resumed }))
}

impl Inner {
    /// Hands ciphertext to rustls, letting `drain` take the plaintext after each batch of
    /// records. Ciphertext rustls cannot take yet (too much plaintext unread) goes to the
    /// stash. An empty `bytes` is the peer's EOF. `socket` carries the alert after an error.
    fn absorb(&mut self, mut bytes: &[u8], socket: &TcpStream, drain: &mut impl Drain) -> Result<(), TransportError> {
        if bytes.is_empty() {
            // Reading an empty slice records the EOF in rustls.
            let _ = self.conn.read_tls(&mut bytes);
            let state = self.conn.process_new_packets().map_err(|e| self.fail(e, socket))?;
            drain.drain(&mut self.conn, &state)?;
            return Ok(());
        }
        while !bytes.is_empty() {
            match self.conn.read_tls(&mut bytes) {
                // A close_notify was received: nothing after it counts.
                Ok(0) => break,
                Ok(_) => {}
                Err(e) => return Err(tls_error(e)),
            }
            let state = self.conn.process_new_packets().map_err(|e| self.fail(e, socket))?;
            let left = drain.drain(&mut self.conn, &state)?;
            if left >= PLAINTEXT_HIGH_WATER && !bytes.is_empty() {
                self.stash.extend_from_slice(bytes);
                break;
            }
        }
        Ok(())
    }

    /// A rustls error: sends the alert rustls queued for it (best effort, never waiting) and
    /// classifies it.
    fn fail(&mut self, error: rustls::Error, socket: &TcpStream) -> TransportError {
        let mut socket = socket;
        let _ = self.conn.write_tls(&mut socket);
        tls_error(error)
    }
}

impl TlsSession {
    /// Writes everything rustls has queued (handshake messages, records, alerts).
    async fn flush(&self, socket: &AsyncFd<TcpStream>) -> Result<(), TransportError> {
        while self.inner.borrow().conn.wants_write() {
            let mut guard = socket.writable().await.map_err(|e| io_error(&e))?;
            let written = guard.try_io(|fd| {
                let mut stream = fd.get_ref();
                self.inner.borrow_mut().conn.write_tls(&mut stream)
            });
            match written {
                Err(_would_block) => continue,
                Ok(Ok(0)) => {
                    return Err(TransportError { kind: ErrorKind::Reset, detail: "write returned 0".into() });
                }
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Err(io_error(&e)),
            }
        }
        Ok(())
    }

    /// Gets more ciphertext into rustls: the stash if any, else one read from the socket
    /// (waiting until it is readable). Returns the bytes taken; 0 is the peer's EOF.
    async fn receive(&self, socket: &AsyncFd<TcpStream>, drain: &mut impl Drain) -> Result<usize, TransportError> {
        if self.inner.borrow().conn.wants_write() {
            // rustls has something to say first (a key update answer, an alert).
            self.flush(socket).await?;
        }
        {
            let mut inner = self.inner.borrow_mut();
            if !inner.stash.is_empty() {
                let stash = std::mem::take(&mut inner.stash);
                inner.absorb(&stash, socket.get_ref(), drain)?;
                return Ok(stash.len());
            }
        }
        loop {
            let mut guard = socket.readable().await.map_err(|e| io_error(&e))?;
            let step = guard.try_io(|fd| {
                SCRATCH.with_borrow_mut(|scratch| {
                    let n = fd.get_ref().read(scratch)?;
                    let absorbed = self.inner.borrow_mut().absorb(&scratch[..n], fd.get_ref(), drain);
                    Ok(absorbed.map(|()| (n, n < scratch.len())))
                })
            });
            match step {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(io_error(&e)),
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Ok(Ok((n, drained)))) => {
                    // A short read emptied the socket: skip the read that would only say EAGAIN.
                    if drained && n > 0 {
                        guard.clear_ready();
                    }
                    return Ok(n);
                }
            }
        }
    }

    /// Encrypts and writes the whole of `bytes` (after anything rustls still had queued).
    pub(super) async fn write_all(&self, socket: &AsyncFd<TcpStream>, mut bytes: &[u8]) -> Result<(), TransportError> {
        loop {
            if !bytes.is_empty() {
                // rustls takes at most its 64 KiB buffer limit at a time.
                let taken = self.inner.borrow_mut().conn.writer().write(bytes).map_err(|e| io_error(&e))?;
                bytes = &bytes[taken..];
            }
            self.flush(socket).await?;
            if bytes.is_empty() {
                return Ok(());
            }
        }
    }

    /// Reads one complete response into `parser` (already started by the caller).
    pub(super) async fn read_response(
        &self,
        socket: &AsyncFd<TcpStream>,
        parser: &mut ResponseParser,
        tainted: &mut bool,
    ) -> Result<ResponseInfo, TransportError> {
        let mut sink = ResponseSink { parser, tainted, done: None, closed: false };
        // Plaintext may be waiting already: it came with the records of an earlier read.
        sink.pump(&mut self.inner.borrow_mut().conn)?;
        loop {
            if let Some(info) = sink.done.take() {
                if sink.closed {
                    // The server closed right behind the response: do not reuse the connection.
                    *sink.tainted = true;
                }
                return Ok(info);
            }
            if sink.closed {
                return sink.parser.finish_on_eof().map_err(TransportError::parse);
            }
            self.receive(socket, &mut sink).await?;
        }
    }

    /// Hands the next plaintext rustls has (one record's worth at most) to `f`, reading from
    /// the socket until there is some; an empty slice means the peer closed.
    pub(super) async fn read_some<R>(
        &self,
        socket: &AsyncFd<TcpStream>,
        mut f: impl FnMut(&[u8]) -> R,
    ) -> Result<R, TransportError> {
        loop {
            {
                let mut inner = self.inner.borrow_mut();
                let mut reader = inner.conn.reader();
                match reader.fill_buf() {
                    Ok(chunk) => {
                        let len = chunk.len();
                        let value = f(chunk);
                        reader.consume(len);
                        return Ok(value);
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(f(&[])),
                    Err(e) => return Err(io_error(&e)),
                }
            }
            self.receive(socket, &mut Keep).await?;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::{Read, Write};
    use std::net::{SocketAddr, TcpListener};
    use std::path::PathBuf;
    use std::sync::Arc;
    use std::time::Duration;

    use rcgen::{BasicConstraints, CertificateParams, ExtendedKeyUsagePurpose, IsCa, KeyPair};
    use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
    use rustls::server::WebPkiClientVerifier;

    use super::super::open;
    use crate::error_kind::ErrorKind;
    use crate::tls::{TlsClient, TlsSettings};

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
            let config = Arc::new(builder.with_single_cert(vec![self.server_cert.clone()], key).unwrap());
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
            let (mut conn, opened) = open(addr, None, TIMEOUT, Some(&client)).await.unwrap();
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
            let (conn, _) = open(addr, None, TIMEOUT, Some(&client)).await.unwrap();
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
            let (mut conn, _) = open(addr, None, TIMEOUT, Some(&with)).await.unwrap();
            conn.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
            assert_eq!(conn.read_response(false).await.unwrap().status, 204);

            // Without one, the server refuses (TLS 1.3: its alert comes after our Finished,
            // so the failure shows on the first exchange); either way it is a TLS error.
            let without = client(&pki, false);
            let failed = async {
                let (mut conn, _) = open(addr, None, TIMEOUT, Some(&without)).await?;
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
        let error = runtime().block_on(open(addr, None, TIMEOUT, Some(&client))).err().unwrap();
        assert_eq!(error.kind, ErrorKind::TlsError, "{error}");
    }
}
