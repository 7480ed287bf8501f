//! Transports: how request bytes reach the target and responses come back.
//!
//! Each transport owns its connect (and later handshake) timing so DNS, connect and request
//! latency stay separate figures. Only plain TCP exists today; TLS and HTTP/2 will be further
//! variants behind the same [`Connection`] surface.

mod tcp;

pub use tcp::{Connection, TransportError, connect, connect_from};
