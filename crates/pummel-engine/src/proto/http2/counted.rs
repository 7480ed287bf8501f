//! [`Counted`]: a connection's bytes (HTTP/2 frames, before TLS) counted into the shard's
//! figures as they pass, since many requests share one connection; and the connection's own
//! failure kept aside ([`Failure`]), since h2 passes an I/O error on as its kind and text only,
//! which would lose a TLS alert's classification.

use std::cell::RefCell;
use std::io;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};

use crate::dial::TransportError;
use crate::measure::meter::Meter;

/// Counts the bytes of a connection (HTTP/2 frames, before encryption) into the shard's stats.
pub(super) struct Counted<T> {
    pub io: T,
    pub meter: Rc<Meter>,
    pub failure: Failure,
}

/// The classified failure of a connection's stream, once it failed.
#[derive(Clone, Default)]
pub(super) struct Failure(Rc<RefCell<Option<TransportError>>>);

impl Failure {
    /// The failure, if the stream failed with one that was classified below h2.
    pub(super) fn get(&self) -> Option<TransportError> {
        self.0.borrow().clone()
    }

    /// Keeps the failure an I/O error carries, if it carries one.
    fn keep<T>(&self, result: &Poll<io::Result<T>>) {
        if let Poll::Ready(Err(error)) = result {
            if let Some(failure) = error.get_ref().and_then(|e| e.downcast_ref::<TransportError>()) {
                self.0.borrow_mut().get_or_insert_with(|| failure.clone());
            }
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<T> {
    fn poll_read(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        let before = buf.filled().len();
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_read(cx, buf);
        this.failure.keep(&result);
        let n = (buf.filled().len() - before) as u64;
        if n > 0 {
            this.meter.bytes(n, 0);
        }
        result
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<T> {
    fn poll_write(mut self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write(cx, buf);
        this.failure.keep(&result);
        if let Poll::Ready(Ok(n)) = result {
            this.meter.bytes(0, n as u64);
        }
        result
    }

    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        let this = &mut *self;
        let result = Pin::new(&mut this.io).poll_write_vectored(cx, bufs);
        this.failure.keep(&result);
        if let Poll::Ready(Ok(n)) = result {
            this.meter.bytes(0, n as u64);
        }
        result
    }

    fn is_write_vectored(&self) -> bool {
        self.io.is_write_vectored()
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let result = Pin::new(&mut self.io).poll_flush(cx);
        self.failure.keep(&result);
        result
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}
