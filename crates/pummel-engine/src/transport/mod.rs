//! Transports: how request bytes reach the target and responses come back.
//!
//! Each transport owns its connect and handshake timing so DNS, connect, TLS and request
//! latency stay separate figures ([`open`] returns them). Plain TCP (`tcp`) is the hot path;
//! TLS (`tls`) is a session on the same socket behind the same [`Connection`] surface, so the
//! engine drives `http://` and `https://` connections alike.

mod tcp;
mod tls;

use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

pub use tcp::{Connection, TransportError, connect, connect_from};
pub use tls::Handshake;

use crate::error_kind::ErrorKind;
use crate::tls::TlsClient;

/// What opening a connection took.
#[derive(Debug, Clone, Copy)]
pub struct Opened {
    /// The TCP handshake.
    pub connect: Duration,
    /// The TLS handshake, for `https://` connections.
    pub tls: Option<Handshake>,
}

/// Opens a connection to `addr` (from the local address `source`, if given) and, with `tls`,
/// runs the TLS handshake on it. The TCP connect and the TLS handshake each have `timeout`; a
/// handshake that does not finish in time is a `tls_error`.
pub async fn open(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
    tls: Option<&TlsClient>,
) -> Result<(Connection, Opened), TransportError> {
    match tls {
        None => {
            let (connection, connect) = connect_from(addr, source, timeout).await?;
            Ok((connection, Opened { connect, tls: None }))
        }
        // Boxed, like the TLS calls of `Connection`: a task that opens plain connections (a
        // held connection's, say) stays as small as before TLS existed.
        Some(client) => Box::pin(open_tls(addr, source, timeout, client)).await,
    }
}

async fn open_tls(
    addr: SocketAddr,
    source: Option<IpAddr>,
    timeout: Duration,
    client: &TlsClient,
) -> Result<(Connection, Opened), TransportError> {
    let (mut connection, connect) = connect_from(addr, source, timeout).await?;
    match tokio::time::timeout(timeout, tls::handshake(&connection.socket, client)).await {
        Err(_elapsed) => Err(TransportError {
            kind: ErrorKind::TlsError,
            detail: format!("TLS handshake with {addr} not complete within {timeout:?}"),
        }),
        Ok(Err(e)) => Err(e),
        Ok(Ok((session, handshake))) => {
            connection.tls = Some(Box::new(session));
            Ok((connection, Opened { connect, tls: Some(handshake) }))
        }
    }
}
