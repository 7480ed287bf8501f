//! HTTP/1.1: a sans-IO client codec (requests rendered once, responses parsed incrementally)
//! and the [`Connection`] that reads a `dial::Stream` through it.
//!
//! The engine reads into one shared per-thread buffer, so a connection cannot own a large
//! buffer. The codec therefore never touches I/O: [`encode_request`] renders a request into
//! bytes that are written unchanged for every request, and [`ResponseParser`] is a small,
//! resumable state machine fed with whatever bytes each read returned, keeping only a partial
//! response head (rare) and never the body unless asked.

mod conn;
pub mod request;
pub mod response;

pub use conn::{Connection, parse_error};
pub use request::{RequestError, USER_AGENT, encode_head, encode_request};
pub use response::{MAX_HEAD_BYTES, ParseError, Progress, ResponseInfo, ResponseParser};
