//! tokio's `AsyncRead`/`AsyncWrite` over a connection's [`Stream`] ([`WsIo`]), so that
//! tokio-tungstenite can drive a WebSocket session on the same plain or TLS stream the HTTP/1.1
//! code used, without a second TLS implementation.
//!
//! Reads and writes go through the stream's own non-blocking calls (`try_read`,
//! `try_write_vectored`); when one would block, the task waits on the TCP socket's readiness.
//! For TLS, records rustls still has to send are written before waiting.

use std::io::{self, IoSlice, Write};
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use crate::stream::{Stream, TlsStream};

/// A connection's stream as a tokio byte stream.
pub(crate) struct WsIo(pub(crate) Stream);

fn tcp(stream: &Stream) -> &TcpStream {
    match stream {
        Stream::Plain(tcp) => tcp,
        Stream::Tls(tls) => &tls.tcp,
    }
}

/// Writes ciphertext to the socket for rustls, without waiting.
struct SocketWriter<'a>(&'a TcpStream);

impl Write for SocketWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.0.try_write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Writes the records rustls holds until done, or until the socket is full (then the task is
/// woken when it is writable again).
fn poll_write_out(tls: &mut TlsStream, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
    while tls.conn.wants_write() {
        match tls.conn.write_tls(&mut SocketWriter(&tls.tcp)) {
            Ok(0) => return Poll::Ready(Err(io::ErrorKind::WriteZero.into())),
            Ok(_) => {}
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(tls.tcp.poll_write_ready(cx))?,
            Err(e) => return Poll::Ready(Err(e)),
        }
    }
    Poll::Ready(Ok(()))
}

impl AsyncRead for WsIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let stream = &mut self.get_mut().0;
        loop {
            match stream.try_read(buf.initialize_unfilled()) {
                Ok(n) => {
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Poll::Ready(Err(e)),
            }
            if let Stream::Tls(tls) = stream {
                // Answers rustls owes the peer (key updates, alerts) leave before waiting; a
                // full socket does not stop the read.
                if let Poll::Ready(Err(e)) = poll_write_out(tls, cx) {
                    return Poll::Ready(Err(e));
                }
            }
            // The failed read cleared the readiness: this waits for new bytes.
            ready!(tcp(stream).poll_read_ready(cx))?;
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let stream = &mut self.get_mut().0;
        loop {
            match stream.try_write_vectored(&[IoSlice::new(buf)]) {
                Ok(n) => return Poll::Ready(Ok(n)),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => ready!(tcp(stream).poll_write_ready(cx))?,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Poll::Ready(Err(e)),
            }
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Stream::Plain(_) => Poll::Ready(Ok(())),
            Stream::Tls(tls) => poll_write_out(tls, cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match &mut self.get_mut().0 {
            Stream::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            Stream::Tls(tls) => {
                // Idempotent: rustls sends close_notify once.
                tls.conn.send_close_notify();
                ready!(poll_write_out(tls, cx))?;
                Pin::new(&mut tls.tcp).poll_shutdown(cx)
            }
        }
    }
}
