//! How bytes are framed on a connection: HTTP/1.1 ([`http1`]), HTTP/2 ([`http2`]) and
//! WebSocket ([`ws`]). Each protocol opens its connections through `dial` and reports its
//! failures through `dial::failure`, so a new protocol is one folder here.

pub mod http1;
pub mod http2;
pub mod ws;
