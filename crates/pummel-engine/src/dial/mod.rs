//! How a connection opens, for every protocol: TCP connect (`tcp`), TLS (`tls`, configured by
//! `tls_config`), the byte stream both give (`stream`), and the one classifier of failures
//! (`failure`).
//!
//! HTTP/1.1, HTTP/2 and WebSocket all open their connections through [`open`] (usually via a
//! shard's [`Dialer`]), so a flag means the same on every path (`--source-addrs`,
//! `--connect-timeout`, `--cacert`, `--insecure`, `--cert`, `--sni`, ...), and a failure gets
//! the same kind whichever protocol met it. Each open reports its own timing ([`Opened`]),
//! so connect, TLS and request latency stay separate figures.

pub mod failure;
mod stream;
mod tcp;
mod tls;
pub mod tls_config;

#[cfg(test)]
mod tests;

use std::cell::Cell;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use failure::TransportError;
use rustls::pki_types::ServerName;
pub use stream::{IdleState, Stream};
pub use tls::Handshake;
pub use tls_config::{Alpn, TlsClient, TlsConfigError, TlsSettings, TlsVersion};

/// What opening a connection took.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// The TCP handshake.
    pub connect: Duration,
    /// The TLS handshake, for TLS connections.
    pub tls: Option<Handshake>,
}

/// A reader of received bytes that knows where its message ends (an HTTP/1.1 response parser).
pub trait Consume {
    /// What a complete message gives.
    type Output;
    /// Takes the next bytes that arrived.
    fn feed(&mut self, bytes: &[u8]) -> Result<Fed<Self::Output>, TransportError>;
    /// The peer closed the connection: the message if the close completes it (a body that
    /// runs to the close), else the failure.
    fn end(&mut self) -> Result<Self::Output, TransportError>;
}

/// Where a [`Consume`] stands after a batch of bytes.
#[derive(Debug)]
pub enum Fed<T> {
    /// Every byte was used; the message needs more.
    More,
    /// The message is complete after the first `used` bytes of the batch.
    Done {
        /// The message.
        value: T,
        /// Bytes of the batch it took.
        used: usize,
    },
}

/// A complete message read from a [`Stream`].
#[derive(Debug)]
pub struct Message<T> {
    /// What the reader made of it.
    pub value: T,
    /// True when bytes came after it or the peer closed right behind it: the connection must
    /// not carry another request.
    pub surplus: bool,
}

/// TLS for one connection: the client and the protocol to ask for.
#[derive(Debug, Clone, Copy)]
pub struct TlsFor<'a> {
    /// The configuration and server name.
    pub client: &'a TlsClient,
    /// The ALPN protocol offered.
    pub alpn: Alpn,
}

/// Opens a connection to `addr` (from the local address `source`, if given) and, with `tls`,
/// runs the TLS handshake on it. The TCP connect and the TLS handshake each have `timeout`; a
/// handshake that does not finish in time is a `tls_error`.
pub async fn open(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
    tls: Option<TlsFor<'_>>,
) -> Result<(Stream, Opened), TransportError> {
    match tls {
        None => {
            let (socket, connect) = tcp::connect(addr, source, timeout).await?;
            Ok((Stream::plain(socket), Opened { connect, tls: None }))
        }
        // Boxed: a task that opens plain connections (a held connection's, say) stays as
        // small as before TLS existed.
        Some(tls) => {
            Box::pin(open_tls(addr, source, timeout, tls.client.config_for(tls.alpn), &tls.client.server_name)).await
        }
    }
}

async fn open_tls(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
    config: &std::sync::Arc<rustls::ClientConfig>,
    server_name: &ServerName<'static>,
) -> Result<(Stream, Opened), TransportError> {
    let (socket, connect) = tcp::connect(addr, source, timeout).await?;
    match tokio::time::timeout(timeout, tls::handshake(&socket, config, server_name)).await {
        Err(_elapsed) => Err(TransportError::tls_timeout(addr, timeout)),
        Ok(Err(e)) => Err(e),
        Ok(Ok((session, handshake))) => {
            Ok((Stream::with_tls(socket, session), Opened { connect, tls: Some(handshake) }))
        }
    }
}

/// A shard's way to its target: the target's addresses and the source addresses taken in
/// turn, the connect timeout, and the shard's own TLS client (its own session cache).
#[derive(Debug)]
pub struct Dialer {
    addrs: Vec<SocketAddr>,
    next_addr: Cell<usize>,
    sources: Vec<IpAddr>,
    next_source: Cell<usize>,
    timeout: Duration,
    tls: Option<TlsClient>,
}

impl Dialer {
    /// The dialer of shard `index`: it starts its turns at `index`, so shards spread over the
    /// addresses. `tls` is the run's client (`https://`), copied for this shard.
    pub fn new(
        index: usize,
        addrs: Vec<SocketAddr>,
        sources: Vec<IpAddr>,
        timeout: Duration,
        tls: Option<&TlsClient>,
    ) -> Dialer {
        Dialer {
            addrs,
            next_addr: Cell::new(index),
            sources,
            next_source: Cell::new(index),
            timeout,
            tls: tls.map(TlsClient::for_shard),
        }
    }

    /// The connect (and TLS handshake) timeout.
    pub fn timeout(&self) -> Duration {
        self.timeout
    }

    /// The shard's TLS client, for an `https://` target.
    pub fn tls(&self) -> Option<&TlsClient> {
        self.tls.as_ref()
    }

    /// The next local address to bind (`--source-addrs`), `None` to let the kernel choose.
    pub fn next_source(&self) -> Option<IpAddr> {
        let i = self.next_source.get();
        self.next_source.set(i.wrapping_add(1));
        (!self.sources.is_empty()).then(|| self.sources[i % self.sources.len()])
    }

    fn next_addr(&self) -> Option<SocketAddr> {
        let i = self.next_addr.get();
        self.next_addr.set(i.wrapping_add(1));
        (!self.addrs.is_empty()).then(|| self.addrs[i % self.addrs.len()])
    }

    /// Opens a connection to the target's next address, speaking TLS (asking for `alpn`) when
    /// the target is `https://`.
    pub async fn open(&self, alpn: Alpn) -> Result<(Stream, Opened), TransportError> {
        let addr = self.next_addr().ok_or_else(|| TransportError::other("the target has no address"))?;
        let tls = self.tls.as_ref().map(|client| TlsFor { client, alpn });
        open(addr, self.next_source(), self.timeout, tls).await
    }
}
