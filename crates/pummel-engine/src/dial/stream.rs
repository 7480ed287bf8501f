//! [`Stream`]: an open connection, plain or TLS, as every protocol sees it.
//!
//! It has two faces. HTTP/1.1, the hot path, uses its own async calls ([`Stream::write_all`],
//! [`Stream::read_message`], [`Stream::read_some`]), hand-written on `AsyncFd` instead of
//! going through tokio's `TcpStream`, for the reasons that decide the per-core speed target:
//! - after a message has been read completely with a short read, the socket is known to be
//!   drained, so tokio's readiness is cleared here instead of paying one more `read` syscall
//!   that would only return `EAGAIN` (tokio's ticks make this race-free: an event that arrived
//!   after our read is kept);
//! - bytes are read into one 64 KiB scratch buffer per thread and handed to the reader from
//!   there, so an idle connection holds no read buffer at all.
//!
//! HTTP/2 (the h2 crate) and WebSocket (tungstenite) read and write it through `AsyncRead`
//! and `AsyncWrite`, over the same socket and the same TLS session: one connect, one TLS
//! path, one classifier of failures for every protocol.
//!
//! For plain connections the TLS seam is an empty `Option` and one branch per call, no
//! allocation or indirection per request.

use std::io::{self, Read, Write};
use std::net::TcpStream;
use std::pin::Pin;
use std::task::{Context, Poll, Waker, ready};

use tokio::io::unix::AsyncFd;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use super::failure::TransportError;
use super::tcp::SCRATCH;
use super::tls::TlsSession;
use super::{Consume, Fed, Message};

/// An open connection: a registered socket, with a TLS session for `https://`/`wss://`.
#[derive(Debug)]
pub struct Stream {
    socket: AsyncFd<TcpStream>,
    /// `None` (one word, nothing per call) for plain connections.
    tls: Option<Box<TlsSession>>,
}

/// What an idle connection looks like just before it is reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IdleState {
    /// Nothing happened on it: it can carry the next request.
    Open,
    /// The peer closed it (or reset it) while it was idle.
    Closed,
    /// The peer sent bytes no request asked for (a TLS close_notify, a stray answer).
    Unexpected,
}

/// What one read did to the message being read.
enum Step<T> {
    More,
    Eof,
    Done { value: T, surplus: bool, drained: bool },
}

impl Stream {
    pub(super) fn plain(socket: AsyncFd<TcpStream>) -> Stream {
        Stream { socket, tls: None }
    }

    pub(super) fn with_tls(socket: AsyncFd<TcpStream>, tls: TlsSession) -> Stream {
        Stream { socket, tls: Some(Box::new(tls)) }
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&self, mut bytes: &[u8]) -> Result<(), TransportError> {
        if let Some(tls) = &self.tls {
            // Boxed (see `tls.rs`): the plain path's future keeps its size.
            return Box::pin(tls.write_all(&self.socket, bytes)).await;
        }
        while !bytes.is_empty() {
            let mut guard = self.socket.writable().await.map_err(|e| TransportError::io(&e))?;
            match guard.try_io(|inner| inner.get_ref().write(bytes)) {
                Ok(Ok(0)) => return Err(TransportError::io(&io::ErrorKind::WriteZero.into())),
                Ok(Ok(n)) => bytes = &bytes[n..],
                Ok(Err(e)) => return Err(TransportError::io(&e)),
                Err(_would_block) => continue,
            }
        }
        Ok(())
    }

    /// Feeds what arrives to `reader` until it has a complete message. The message is
    /// `surplus` when bytes came after it, or the peer closed right behind it: then the
    /// connection must not carry another one.
    pub async fn read_message<C: Consume>(&self, reader: &mut C) -> Result<Message<C::Output>, TransportError> {
        if let Some(tls) = &self.tls {
            return Box::pin(tls.read_message(&self.socket, reader)).await;
        }
        loop {
            let mut guard = self.socket.readable().await.map_err(|e| TransportError::io(&e))?;
            let step = guard.try_io(|inner| {
                SCRATCH.with_borrow_mut(|scratch| {
                    let n = inner.get_ref().read(scratch)?;
                    if n == 0 {
                        return Ok(Ok(Step::Eof));
                    }
                    Ok(reader.feed(&scratch[..n]).map(|fed| match fed {
                        Fed::More => Step::More,
                        Fed::Done { value, used } => {
                            Step::Done { value, surplus: used < n, drained: n < scratch.len() }
                        }
                    }))
                })
            });
            match step {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(TransportError::io(&e)),
                Ok(Ok(Err(e))) => return Err(e),
                Ok(Ok(Ok(Step::More))) => continue,
                Ok(Ok(Ok(Step::Eof))) => return reader.end().map(|value| Message { value, surplus: true }),
                Ok(Ok(Ok(Step::Done { value, surplus, drained }))) => {
                    if drained {
                        guard.clear_ready();
                    }
                    return Ok(Message { value, surplus });
                }
            }
        }
    }

    /// Waits for bytes, reads once into the thread's scratch buffer and hands them to `f` (an
    /// empty slice means the peer closed). For callers that look at raw bytes with no buffer of
    /// their own: a held connection waiting for its close, a slow request watching for an answer.
    pub async fn read_some<R>(&self, mut f: impl FnMut(&[u8]) -> R) -> Result<R, TransportError> {
        if let Some(tls) = &self.tls {
            return Box::pin(tls.read_some(&self.socket, f)).await;
        }
        loop {
            let mut guard = self.socket.readable().await.map_err(|e| TransportError::io(&e))?;
            let step = guard.try_io(|inner| {
                SCRATCH.with_borrow_mut(|scratch| {
                    let n = inner.get_ref().read(scratch)?;
                    Ok(f(&scratch[..n]))
                })
            });
            match step {
                Err(_would_block) => continue,
                Ok(Err(e)) => return Err(TransportError::io(&e)),
                Ok(Ok(value)) => return Ok(value),
            }
        }
    }

    /// Whether the peer closed this idle connection, before a request reuses it.
    ///
    /// Costs nothing in the common case: the socket is looked at (with a `MSG_PEEK`) only when
    /// the runtime saw it become readable while it was idle, which a connection whose last
    /// answer was read completely never is unless the peer did something since.
    pub fn idle_state(&self) -> IdleState {
        let mut cx = Context::from_waker(Waker::noop());
        let mut guard = match self.socket.poll_read_ready(&mut cx) {
            Poll::Pending => return IdleState::Open,
            Poll::Ready(Err(_)) => return IdleState::Closed,
            Poll::Ready(Ok(guard)) => guard,
        };
        match guard.get_inner().peek(&mut [0u8; 1]) {
            Ok(0) => IdleState::Closed,
            Ok(_) => IdleState::Unexpected,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                guard.clear_ready();
                IdleState::Open
            }
            Err(_) => IdleState::Closed,
        }
    }
}

impl AsyncRead for Stream {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(tls) = &this.tls {
            return tls.poll_read(&this.socket, cx, buf);
        }
        loop {
            let mut guard = ready!(this.socket.poll_read_ready(cx))?;
            let unfilled = buf.initialize_unfilled();
            let wanted = unfilled.len();
            match guard.try_io(|inner| inner.get_ref().read(unfilled)) {
                Ok(Ok(n)) => {
                    // A short read drained the socket (as tokio's own TcpStream assumes).
                    if n > 0 && n < wanted {
                        guard.clear_ready();
                    }
                    buf.advance(n);
                    return Poll::Ready(Ok(()));
                }
                Ok(Err(e)) => return Poll::Ready(Err(e)),
                Err(_would_block) => continue,
            }
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(tls) = &this.tls {
            return tls.poll_write(&this.socket, cx, buf);
        }
        loop {
            let mut guard = ready!(this.socket.poll_write_ready(cx))?;
            match guard.try_io(|inner| inner.get_ref().write(buf)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        if let Some(tls) = &this.tls {
            // rustls encrypts what it is given; the first non-empty slice is enough per call.
            let first = bufs.iter().find(|b| !b.is_empty()).map_or(&[][..], |b| &b[..]);
            return tls.poll_write(&this.socket, cx, first);
        }
        loop {
            let mut guard = ready!(this.socket.poll_write_ready(cx))?;
            match guard.try_io(|inner| inner.get_ref().write_vectored(bufs)) {
                Ok(result) => return Poll::Ready(result),
                Err(_would_block) => continue,
            }
        }
    }

    fn is_write_vectored(&self) -> bool {
        self.tls.is_none()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        match &this.tls {
            Some(tls) => tls.poll_flush(&this.socket, cx),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        if let Some(tls) = &this.tls {
            ready!(tls.poll_close(&this.socket, cx))?;
        }
        Poll::Ready(this.socket.get_ref().shutdown(std::net::Shutdown::Write))
    }
}
