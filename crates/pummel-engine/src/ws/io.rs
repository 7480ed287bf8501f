//! The byte stream under a session: TCP, or rustls over it ([`WsIo`]), and how it is opened.

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

use super::WsError;
use crate::error_kind::ErrorKind;

/// `EINPROGRESS` on Linux: a non-blocking connect has started.
const EINPROGRESS: i32 = 115;
/// `EADDRINUSE` on Linux: from a port-0 bind, no ephemeral port left on the source address.
const EADDRINUSE: i32 = 98;

/// A session's stream. TLS is boxed: rustls' state is large, and plain sessions should not pay
/// for it.
#[derive(Debug)]
pub(super) enum WsIo {
    /// `ws://`.
    Plain(TcpStream),
    /// `wss://`.
    Tls(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

/// Opens a TCP connection to `addr` (from `source` when given) within `timeout`; returns it
/// with the time the handshake took. Failures are classified as for HTTP connections.
pub(super) async fn connect_tcp(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
) -> Result<(TcpStream, Duration), WsError> {
    let started = Instant::now();
    let failed = |e: io::Error| WsError::new(ErrorKind::from_connect_error(&e), format!("connect to {addr}: {e}"));
    let socket =
        Socket::new(Domain::for_address(addr), Type::STREAM.nonblocking(), Some(Protocol::TCP)).map_err(failed)?;
    socket.set_tcp_nodelay(true).map_err(failed)?;
    if let Some(ip) = source {
        socket.bind(&SockAddr::from(SocketAddr::new(ip, 0))).map_err(|e| {
            let kind = if e.raw_os_error() == Some(EADDRINUSE) { ErrorKind::NoLocalPorts } else { ErrorKind::Other };
            WsError::new(kind, format!("cannot bind source address {ip}: {e}"))
        })?;
    }
    match socket.connect(&SockAddr::from(addr)) {
        Ok(()) => {}
        Err(e) if e.raw_os_error() == Some(EINPROGRESS) || e.kind() == io::ErrorKind::WouldBlock => {}
        Err(e) => return Err(failed(e)),
    }
    let stream = TcpStream::from_std(std::net::TcpStream::from(socket)).map_err(failed)?;
    match tokio::time::timeout(timeout, stream.writable()).await {
        Err(_) => {
            return Err(WsError::new(ErrorKind::ConnectTimeout, format!("no connection to {addr} within {timeout:?}")));
        }
        Ok(Err(e)) => return Err(failed(e)),
        Ok(Ok(())) => {}
    }
    if let Some(e) = stream.take_error().map_err(failed)? {
        return Err(failed(e));
    }
    Ok((stream, started.elapsed()))
}

/// Runs the TLS handshake on `tcp` within `timeout`; returns the stream and the time it took.
/// Every failure (certificate, alert, cut off, too slow) is a `tls_error`.
pub(super) async fn handshake_tls(
    tcp: TcpStream,
    config: &Arc<rustls::ClientConfig>,
    server_name: &str,
    timeout: Duration,
) -> Result<(WsIo, Duration), WsError> {
    let started = Instant::now();
    let name = rustls::pki_types::ServerName::try_from(server_name.to_string())
        .map_err(|_| WsError::new(ErrorKind::TlsError, format!("{server_name:?} is not a valid TLS server name")))?;
    let connector = tokio_rustls::TlsConnector::from(Arc::clone(config));
    match tokio::time::timeout(timeout, connector.connect(name, tcp)).await {
        Err(_) => Err(WsError::new(ErrorKind::TlsError, format!("TLS handshake not complete within {timeout:?}"))),
        Ok(Err(e)) => Err(WsError::new(ErrorKind::TlsError, format!("TLS: {e}"))),
        Ok(Ok(stream)) => Ok((WsIo::Tls(Box::new(stream)), started.elapsed())),
    }
}

impl AsyncRead for WsIo {
    fn poll_read(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &mut ReadBuf<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Plain(tcp) => Pin::new(tcp).poll_read(cx, buf),
            WsIo::Tls(tls) => Pin::new(tls.as_mut()).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for WsIo {
    fn poll_write(self: Pin<&mut Self>, cx: &mut Context<'_>, buf: &[u8]) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            WsIo::Plain(tcp) => Pin::new(tcp).poll_write(cx, buf),
            WsIo::Tls(tls) => Pin::new(tls.as_mut()).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Plain(tcp) => Pin::new(tcp).poll_flush(cx),
            WsIo::Tls(tls) => Pin::new(tls.as_mut()).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            WsIo::Plain(tcp) => Pin::new(tcp).poll_shutdown(cx),
            WsIo::Tls(tls) => Pin::new(tls.as_mut()).poll_shutdown(cx),
        }
    }
}
