//! An HTTP/1.1 client connection: a [`Stream`] with the response parser it reads through.

use super::response::{ParseError, Progress, ResponseInfo, ResponseParser};
use crate::dial::{Consume, Fed, IdleState, Stream, TransportError};

/// An open HTTP/1.1 connection, plain or over TLS.
#[derive(Debug)]
pub struct Connection {
    stream: Stream,
    parser: ResponseParser,
    /// Set when the peer sent more than the response we asked for, or closed right behind
    /// it: the connection is not reused.
    tainted: bool,
}

impl Consume for ResponseParser {
    type Output = ResponseInfo;

    fn feed(&mut self, bytes: &[u8]) -> Result<Fed<ResponseInfo>, TransportError> {
        match ResponseParser::feed(self, bytes).map_err(parse_error)? {
            (_, Progress::NeedMore) => Ok(Fed::More),
            (used, Progress::Complete(info)) => Ok(Fed::Done { value: info, used }),
        }
    }

    fn end(&mut self) -> Result<ResponseInfo, TransportError> {
        self.finish_on_eof().map_err(parse_error)
    }
}

/// The classification of a parse failure: a close before or during the answer is `reset`,
/// bytes that are not HTTP are `malformed_response`.
pub fn parse_error(error: ParseError) -> TransportError {
    match error {
        ParseError::ClosedBeforeResponse => TransportError::closed_before_answer(),
        ParseError::ClosedMidResponse => TransportError::closed_mid_answer(),
        ParseError::Malformed(what) => TransportError::malformed(what),
        ParseError::HeadTooLarge => TransportError::malformed(error),
    }
}

impl Connection {
    /// A connection over `stream`, nothing captured.
    pub fn new(stream: Stream) -> Connection {
        Connection { stream, parser: ResponseParser::new(), tainted: false }
    }

    /// Writes all of `bytes` (a request, or part of one).
    pub async fn write_all(&self, bytes: &[u8]) -> Result<(), TransportError> {
        self.stream.write_all(bytes).await
    }

    /// Reads one complete response. `head_request` tells that no body follows.
    pub async fn read_response(&mut self, head_request: bool) -> Result<ResponseInfo, TransportError> {
        self.parser.start(head_request);
        let message = self.stream.read_message(&mut self.parser).await?;
        self.tainted |= message.surplus;
        Ok(message.value)
    }

    /// Bytes of the response being read that arrived so far, complete or not.
    pub fn received_bytes(&self) -> u64 {
        self.parser.received_bytes()
    }

    /// True once any byte of the response being read arrived.
    pub fn answer_started(&self) -> bool {
        self.parser.received_any()
    }

    /// Waits for bytes and hands them to `f` (an empty slice: the peer closed); see
    /// [`Stream::read_some`].
    pub async fn read_some<R>(&self, f: impl FnMut(&[u8]) -> R) -> Result<R, TransportError> {
        self.stream.read_some(f).await
    }

    /// Keeps the head (`headers`) and up to `body_limit` bytes of the body of each response
    /// read from now on, for checks and extraction; off (nothing kept) by default.
    pub fn capture(&mut self, headers: bool, body_limit: usize) {
        self.parser.capture_headers(headers);
        self.parser.capture_body(body_limit);
    }

    /// The body bytes of the last response kept by [`capture`](Self::capture).
    pub fn captured_body(&self) -> &[u8] {
        self.parser.body()
    }

    /// The header fields of the last response kept by [`capture`](Self::capture), in order.
    pub fn captured_headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.parser.headers()
    }

    /// True when the connection can carry another request after `info`.
    pub fn reusable(&self, info: &ResponseInfo) -> bool {
        info.keep_alive && !self.tainted
    }

    /// Whether the peer closed the connection while it was idle (see [`Stream::idle_state`]).
    pub fn idle_state(&self) -> IdleState {
        self.stream.idle_state()
    }
}
