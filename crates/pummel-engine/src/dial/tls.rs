//! TLS on the same `AsyncFd` socket as plain connections: a rustls `ClientConnection` driven
//! by hand, not through tokio-rustls. Every protocol's TLS goes through here.
//!
//! Why by hand: tokio-rustls wants a tokio `TcpStream` (a second socket type and registration
//! next to the hot path's `AsyncFd`) and reads through its own `AsyncRead` plumbing, so the two
//! tricks that make the plain path fast would be lost. Here they stay:
//! - ciphertext is read into the thread's shared scratch buffer (the one plain reads use) and
//!   handed to rustls from there, so after a short read the socket is known to be drained and
//!   its readiness is cleared without an extra `read` that would only return `EAGAIN`;
//! - plaintext is handed to the reader straight out of rustls' buffer (`BufRead::fill_buf`),
//!   no copy, on the HTTP/1.1 path.
//!
//! HTTP/2 and WebSocket sessions read and write through the poll functions below
//! ([`TlsSession::poll_read`] and friends), which `Stream`'s `AsyncRead`/`AsyncWrite` use.
//!
//! A TLS connection costs what rustls keeps per session (a 4 KiB record buffer, the keys, the
//! session state): a held TLS connection measured 9.9 KiB against 1.7 KiB for a plain one
//! (BENCHMARKS.md). The TLS calls of `Stream` are boxed futures (one small allocation per call,
//! TLS only), so that the plain path's futures, and with them every held plain connection's
//! task, keep their size.
//!
//! Failures: a rustls error (certificate verification, an alert from the server, a protocol
//! violation) and a connection closed in the middle of the handshake count as `tls_error`;
//! socket errors keep their usual kinds (`reset`, ...).

use std::cell::RefCell;
use std::io::{self, BufRead, Read, Write};
use std::net::TcpStream;
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use pummel_results::error_kind::ErrorKind;
use rustls::pki_types::ServerName;
use rustls::{ClientConfig, ClientConnection, HandshakeKind, IoState};
use tokio::io::ReadBuf;
use tokio::io::unix::AsyncFd;

use super::failure::TransportError;
use super::tcp::SCRATCH;
use super::{Consume, Fed, Message};

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
    /// True when the server agreed to ALPN `h2`.
    pub h2: bool,
}

/// The TLS state of one connection. `RefCell` because the stream's methods take `&self` (a
/// held connection may wait for reads while it writes); a borrow never spans an `.await`.
#[derive(Debug)]
pub(super) struct TlsSession {
    inner: RefCell<Inner>,
}

#[derive(Debug)]
struct Inner {
    conn: ClientConnection,
    /// Ciphertext read from the socket that rustls could not take yet (see
    /// [`PLAINTEXT_HIGH_WATER`]); empty and unallocated almost always.
    stash: Vec<u8>,
    /// Set once our close_notify was queued.
    closing: bool,
}

/// Takes plaintext out of rustls after each batch of records rustls decrypted; returns how
/// much plaintext it left there.
trait Drain {
    fn drain(&mut self, conn: &mut ClientConnection, state: &IoState) -> Result<usize, TransportError>;
}

/// Leaves all plaintext in rustls (the handshake, reads of raw bytes).
struct Keep;

impl Drain for Keep {
    fn drain(&mut self, _conn: &mut ClientConnection, state: &IoState) -> Result<usize, TransportError> {
        Ok(state.plaintext_bytes_to_read())
    }
}

/// Feeds plaintext to a reader as it is decrypted.
struct Feeder<'a, C: Consume> {
    reader: &'a mut C,
    /// The complete message, once it is, and whether bytes came after it.
    done: Option<C::Output>,
    surplus: bool,
    /// The peer closed (TCP EOF or close_notify) and every byte before the close was fed.
    closed: bool,
}

impl<C: Consume> Feeder<'_, C> {
    /// Feeds all the plaintext rustls holds.
    fn pump(&mut self, conn: &mut ClientConnection) -> Result<(), TransportError> {
        loop {
            let mut plaintext = conn.reader();
            let chunk = match plaintext.fill_buf() {
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
                Err(e) => return Err(TransportError::io(&e)),
            };
            let len = chunk.len();
            if self.done.is_some() {
                // Bytes after the complete message.
                self.surplus = true;
                plaintext.consume(len);
                continue;
            }
            match self.reader.feed(chunk)? {
                Fed::More => plaintext.consume(len),
                Fed::Done { value, used } => {
                    plaintext.consume(used);
                    self.done = Some(value);
                }
            }
        }
    }
}

impl<C: Consume> Drain for Feeder<'_, C> {
    fn drain(&mut self, conn: &mut ClientConnection, _state: &IoState) -> Result<usize, TransportError> {
        self.pump(conn)?;
        Ok(0)
    }
}

/// Runs the TLS handshake on a freshly connected socket.
pub(super) async fn handshake(
    socket: &AsyncFd<TcpStream>,
    config: &std::sync::Arc<ClientConfig>,
    server_name: &ServerName<'static>,
) -> Result<(TlsSession, Handshake), TransportError> {
    let started = Instant::now();
    let conn = ClientConnection::new(config.clone(), server_name.clone()).map_err(|e| TransportError::tls(&e))?;
    let session = TlsSession { inner: RefCell::new(Inner { conn, stash: Vec::new(), closing: false }) };
    // Done once the client may send data. Its last flight (TLS 1.3's Finished) stays queued
    // and leaves with the first request, in the same write.
    while session.inner.borrow().conn.is_handshaking() {
        session.flush(socket).await?;
        if session.receive(socket, &mut Keep).await? == 0 {
            return Err(TransportError::tls_cut_off());
        }
    }
    let inner = session.inner.borrow();
    let resumed = inner.conn.handshake_kind() == Some(HandshakeKind::Resumed);
    let h2 = inner.conn.alpn_protocol() == Some(b"h2".as_slice());
    drop(inner);
    Ok((session, Handshake { took: started.elapsed(), resumed, h2 }))
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
                Err(e) => return Err(TransportError::new(ErrorKind::TlsError, format!("TLS: {e}"))),
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
        TransportError::tls(&error)
    }

    /// Hands the stash back to rustls, if there is one; true when it did.
    fn absorb_stash(&mut self, socket: &TcpStream, drain: &mut impl Drain) -> Result<bool, TransportError> {
        if self.stash.is_empty() {
            return Ok(false);
        }
        let stash = std::mem::take(&mut self.stash);
        self.absorb(&stash, socket, drain)?;
        Ok(true)
    }
}

impl TlsSession {
    /// Writes everything rustls has queued (handshake messages, records, alerts).
    async fn flush(&self, socket: &AsyncFd<TcpStream>) -> Result<(), TransportError> {
        std::future::poll_fn(|cx| self.poll_flush(socket, cx)).await.map_err(|e| TransportError::io(&e))
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
            let stashed = inner.stash.len();
            if inner.absorb_stash(socket.get_ref(), drain)? {
                return Ok(stashed);
            }
        }
        loop {
            let mut guard = socket.readable().await.map_err(|e| TransportError::io(&e))?;
            match guard.try_io(|fd| self.read_ciphertext(fd.get_ref(), drain)) {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(TransportError::io(&e)),
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

    /// One read of ciphertext into the thread's scratch buffer, handed to rustls; returns the
    /// bytes read and whether the read was short (the socket is drained).
    #[allow(clippy::type_complexity)]
    fn read_ciphertext(
        &self,
        socket: &TcpStream,
        drain: &mut impl Drain,
    ) -> io::Result<Result<(usize, bool), TransportError>> {
        SCRATCH.with_borrow_mut(|scratch| {
            let n = (&*socket).read(scratch)?;
            let absorbed = self.inner.borrow_mut().absorb(&scratch[..n], socket, drain);
            Ok(absorbed.map(|()| (n, n < scratch.len())))
        })
    }

    /// Encrypts and writes the whole of `bytes` (after anything rustls still had queued).
    pub(super) async fn write_all(&self, socket: &AsyncFd<TcpStream>, mut bytes: &[u8]) -> Result<(), TransportError> {
        loop {
            if !bytes.is_empty() {
                // rustls takes at most its 64 KiB buffer limit at a time.
                let taken = self.inner.borrow_mut().conn.writer().write(bytes).map_err(|e| TransportError::io(&e))?;
                bytes = &bytes[taken..];
            }
            self.flush(socket).await?;
            if bytes.is_empty() {
                return Ok(());
            }
        }
    }

    /// Feeds plaintext to `reader` until it has a complete message.
    pub(super) async fn read_message<C: Consume>(
        &self,
        socket: &AsyncFd<TcpStream>,
        reader: &mut C,
    ) -> Result<Message<C::Output>, TransportError> {
        let mut feeder = Feeder { reader, done: None, surplus: false, closed: false };
        // Plaintext may be waiting already: it came with the records of an earlier read.
        feeder.pump(&mut self.inner.borrow_mut().conn)?;
        loop {
            if let Some(value) = feeder.done.take() {
                // The server closed right behind the message: the connection is not reused.
                return Ok(Message { value, surplus: feeder.surplus || feeder.closed });
            }
            if feeder.closed {
                return Ok(Message { value: feeder.reader.end()?, surplus: true });
            }
            self.receive(socket, &mut feeder).await?;
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
                    Err(e) => return Err(TransportError::io(&e)),
                }
            }
            self.receive(socket, &mut Keep).await?;
        }
    }

    /// `AsyncRead` for HTTP/2 and WebSocket: plaintext into `buf`, reading and decrypting
    /// ciphertext as needed. The peer's close (close_notify or a bare TCP EOF) reads as EOF.
    pub(super) fn poll_read(
        &self,
        socket: &AsyncFd<TcpStream>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        loop {
            {
                let mut inner = self.inner.borrow_mut();
                match inner.conn.reader().read(buf.initialize_unfilled()) {
                    Ok(n) => {
                        buf.advance(n);
                        return Poll::Ready(Ok(()));
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Poll::Ready(Ok(())),
                    Err(e) => return Poll::Ready(Err(e)),
                }
                if inner.absorb_stash(socket.get_ref(), &mut Keep).map_err(TransportError::into_io)? {
                    continue;
                }
            }
            if self.inner.borrow().conn.wants_write() {
                // An answer rustls owes the peer (a key update); a full socket waits for later.
                if let Poll::Ready(Err(e)) = self.poll_flush(socket, cx) {
                    return Poll::Ready(Err(e));
                }
            }
            let mut guard = ready!(socket.poll_read_ready(cx))?;
            match guard.try_io(|fd| self.read_ciphertext(fd.get_ref(), &mut Keep)) {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Ok(Ok(Err(e))) => return Poll::Ready(Err(e.into_io())),
                Ok(Ok(Ok((n, drained)))) => {
                    if drained && n > 0 {
                        guard.clear_ready();
                    }
                }
            }
        }
    }

    /// `AsyncWrite::poll_write`: hands `buf` to rustls (which encrypts and buffers it) and
    /// starts sending; waits only when rustls' buffer is full.
    pub(super) fn poll_write(
        &self,
        socket: &AsyncFd<TcpStream>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        loop {
            let taken = self.inner.borrow_mut().conn.writer().write(buf)?;
            if taken > 0 || buf.is_empty() {
                // Start sending; what the socket does not take now goes at the next flush.
                if let Poll::Ready(Err(e)) = self.poll_flush(socket, cx) {
                    return Poll::Ready(Err(e));
                }
                return Poll::Ready(Ok(taken));
            }
            ready!(self.poll_flush(socket, cx))?;
        }
    }

    /// Writes everything rustls holds for the peer.
    pub(super) fn poll_flush(&self, socket: &AsyncFd<TcpStream>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        while self.inner.borrow().conn.wants_write() {
            let mut guard = ready!(socket.poll_write_ready(cx))?;
            let written = guard.try_io(|fd| {
                let mut stream = fd.get_ref();
                self.inner.borrow_mut().conn.write_tls(&mut stream)
            });
            match written {
                Err(_would_block) => continue,
                Ok(Ok(0)) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
                Ok(Ok(_)) => {}
                Ok(Err(e)) => return Poll::Ready(Err(e)),
            }
        }
        Poll::Ready(Ok(()))
    }

    /// Sends close_notify (once) and everything before it.
    pub(super) fn poll_close(&self, socket: &AsyncFd<TcpStream>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        {
            let mut inner = self.inner.borrow_mut();
            if !inner.closing {
                inner.closing = true;
                inner.conn.send_close_notify();
            }
        }
        self.poll_flush(socket, cx)
    }
}
