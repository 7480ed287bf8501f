//! The bytes of one client connection: plain TCP, or TLS on it ([`Stream`]).
//!
//! `connection` reads and writes through this seam only, so the HTTP logic (framing, delays,
//! batching, recording) is the same for `http://` and `https://`. The TLS side drives a rustls
//! `ServerConnection` by hand on the same tokio `TcpStream`, with the calls `connection`
//! already makes (`readable`, `try_read`, `writable`, `try_write_vectored`): the handshake
//! happens inside the first reads, plaintext is read out of rustls, answers are encrypted
//! with one record per batch and written with one vectored write. A plain stream pays one
//! `match` per call and nothing else.

use std::io::{self, IoSlice, Read, Write};
use std::sync::Arc;
use std::time::Duration;

use rustls::{HandshakeKind, ServerConnection};
use tokio::io::{AsyncWriteExt, Interest};
use tokio::net::TcpStream;

use crate::stats::SinkStats;

/// How long a closing TLS connection may take to send its last records and close_notify.
const CLOSE_FLUSH: Duration = Duration::from_secs(1);

/// One client connection's byte stream.
pub(crate) enum Stream {
    /// Plain TCP.
    Plain(TcpStream),
    /// TLS over TCP (boxed: the rustls state is a few hundred bytes).
    Tls(Box<TlsStream>),
}

/// TLS over a TCP stream.
pub(crate) struct TlsStream {
    pub(crate) tcp: TcpStream,
    pub(crate) conn: ServerConnection,
    /// Where handshakes are counted.
    stats: Arc<SinkStats>,
}

/// Reads ciphertext from the socket for rustls, noting whether the read came back short
/// (then the socket is drained).
struct SocketReader<'a> {
    tcp: &'a TcpStream,
    short: bool,
}

impl Read for SocketReader<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.tcp.try_read(buf)?;
        self.short = n < buf.len();
        Ok(n)
    }
}

/// Writes ciphertext to the socket for rustls, without waiting.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        self.0.try_write_vectored(bufs)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn would_block() -> io::Error {
    io::ErrorKind::WouldBlock.into()
}

impl Stream {
    /// Wraps an accepted socket: in TLS when `tls` is given. `None` when rustls refuses to
    /// start a session (it does not, short of running out of memory).
    pub(crate) fn new(
        tcp: TcpStream,
        tls: Option<&Arc<rustls::ServerConfig>>,
        stats: &Arc<SinkStats>,
    ) -> Option<Stream> {
        match tls {
            None => Some(Stream::Plain(tcp)),
            Some(config) => {
                let conn = ServerConnection::new(Arc::clone(config)).ok()?;
                Some(Stream::Tls(Box::new(TlsStream { tcp, conn, stats: Arc::clone(stats) })))
            }
        }
    }

    /// Waits until a read may find something (for TLS: plaintext already decrypted, or
    /// ciphertext on the socket; records still waiting to leave are written first).
    pub(crate) async fn readable(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.readable().await,
            Stream::Tls(tls) => {
                while tls.conn.wants_write() {
                    tls.tcp.writable().await?;
                    tls.write_out_or_block()?;
                }
                // Plaintext decrypted already, or the end seen: a read finds it without waiting.
                match tls.conn.reader().into_first_chunk() {
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => tls.tcp.readable().await,
                    _ => Ok(()),
                }
            }
        }
    }

    /// Reads what is there without waiting: `Ok(0)` at the end of the stream,
    /// `WouldBlock` when nothing is.
    pub(crate) fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.try_read(buf),
            Stream::Tls(tls) => tls.try_read(buf),
        }
    }

    /// After a short plain read emptied the socket: forget its readiness, so the next wait
    /// goes straight to epoll instead of first paying a read that fails with `EAGAIN` (see
    /// `connection`). A TLS stream knows better when its socket is drained and does this
    /// itself.
    pub(crate) fn clear_read_ready(&self) {
        if let Stream::Plain(tcp) = self {
            let _ = tcp.try_io(Interest::READABLE, || Err::<(), _>(would_block()));
        }
    }

    /// Waits until a write may go through (for TLS: until the records waiting to leave are
    /// written).
    pub(crate) async fn writable(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.writable().await,
            Stream::Tls(tls) => loop {
                tls.tcp.writable().await?;
                match tls.write_out() {
                    Ok(()) => return Ok(()),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
            },
        }
    }

    /// Writes what it can of `bufs` without waiting (TLS: encrypts what rustls takes and
    /// writes what the socket takes; the rest of the records leave on the next call or wait).
    pub(crate) fn try_write_vectored(&mut self, bufs: &[IoSlice<'_>]) -> io::Result<usize> {
        match self {
            Stream::Plain(tcp) => tcp.try_write_vectored(bufs),
            Stream::Tls(tls) => {
                if tls.conn.wants_write() {
                    tls.write_out()?;
                }
                let taken = tls.conn.writer().write_vectored(bufs)?;
                if taken == 0 && bufs.iter().any(|b| !b.is_empty()) {
                    return Err(would_block());
                }
                tls.write_out_or_block()?;
                Ok(taken)
            }
        }
    }

    /// Closes the sending side (TLS: after close_notify and the last records, waiting at most
    /// [`CLOSE_FLUSH`] for a client that does not read).
    pub(crate) async fn shutdown(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(tcp) => tcp.shutdown().await,
            Stream::Tls(tls) => {
                tls.conn.send_close_notify();
                let flushed = tokio::time::timeout(CLOSE_FLUSH, async {
                    while tls.conn.wants_write() {
                        tls.tcp.writable().await?;
                        tls.write_out_or_block()?;
                    }
                    Ok::<(), io::Error>(())
                })
                .await;
                let _ = flushed;
                tls.tcp.shutdown().await
            }
        }
    }
}

impl TlsStream {
    /// Plaintext if rustls has some; else reads ciphertext from the socket (handshake
    /// messages are answered on the way) until there is plaintext, the socket is drained
    /// (`WouldBlock`) or the stream ends (`Ok(0)`).
    fn try_read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        loop {
            match self.conn.reader().read(buf) {
                Ok(n) => return Ok(n),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                // The client closed without close_notify: the end all the same.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) => return Err(e),
            }
            let mut socket = SocketReader { tcp: &self.tcp, short: false };
            // `WouldBlock` here comes from the socket, whose readiness tokio then clears.
            let n = self.conn.read_tls(&mut socket)?;
            let drained = n > 0 && socket.short;
            let handshaking = self.conn.is_handshaking();
            if let Err(error) = self.conn.process_new_packets() {
                // Send the alert rustls queued for it, then give up the connection.
                let _ = self.write_out();
                return Err(io::Error::new(io::ErrorKind::InvalidData, error));
            }
            if handshaking && !self.conn.is_handshaking() {
                self.stats.add_tls_handshake(self.conn.handshake_kind() == Some(HandshakeKind::Resumed));
            }
            self.write_out_or_block()?;
            if drained {
                // A short read emptied the socket: nothing more until epoll says so.
                let _ = self.tcp.try_io(Interest::READABLE, || Err::<(), _>(would_block()));
                // Plaintext, or `WouldBlock` (only handshake or ticket records came): no
                // further socket read either way.
                return match self.conn.reader().read(buf) {
                    Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => Ok(0),
                    other => other,
                };
            }
        }
    }

    /// Writes queued records until done or the socket is full (`WouldBlock`).
    fn write_out(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut SocketWriter(&self.tcp))? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }

    /// As [`write_out`](Self::write_out), but a full socket is not an error: the records wait.
    fn write_out_or_block(&mut self) -> io::Result<()> {
        match self.write_out() {
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => Ok(()),
            other => other,
        }
    }
}
