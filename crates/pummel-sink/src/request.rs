//! Request framing: where each request (head and body) starts and ends in the byte stream.
//!
//! [`Framer`] turns the bytes a client sends into events — a whole request, a `100-continue`
//! head, a need for more bytes, or bad input — without keeping bodies: `Content-Length` bodies
//! are counted down and chunked bodies go through the [`Chunked`] decoder. Only an incomplete
//! head has to be kept by the caller (up to [`MAX_HEAD`] bytes).
//!
//! A framer made with [`Framer::recording`] also captures each request (method, target,
//! headers, decoded body up to a cap) for the record file; the caller takes it with
//! [`Framer::take_captured`] when the request is complete. A plain [`Framer::new`] captures and
//! allocates nothing.

use crate::chunked::{Chunked, Progress};
use crate::record::Captured;

/// The largest request head accepted (request line and headers). Bigger heads get a `400`.
pub(crate) const MAX_HEAD: usize = 64 * 1024;
/// The most header fields in one head.
const MAX_HEADERS: usize = 96;

/// What the sink needs to know about one request head.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Head {
    /// The client may send another request on this connection after the answer.
    pub keep_alive: bool,
    /// The client spoke HTTP/1.0, so keeping the connection open must be said in the answer.
    pub http10: bool,
    /// A `HEAD` request: the answer has no body.
    pub head_only: bool,
    /// The client waits for `100 Continue` before it sends the body.
    pub expect_continue: bool,
    /// How the body is framed.
    pub body: Body,
    /// The client asks to switch to WebSocket (`Upgrade: websocket`); `ws` checks the rest.
    pub upgrade: bool,
}

/// How a request body is framed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Body {
    /// No body (or `Content-Length: 0`).
    None,
    /// `Content-Length` bytes.
    Length(u64),
    /// `Transfer-Encoding: chunked`.
    Chunked,
}

/// Why input was answered `400 Bad Request`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BadRequest {
    /// Not an HTTP/1.x request head.
    Syntax,
    /// The head is bigger than [`MAX_HEAD`].
    HeadTooLarge,
    /// More header fields than the sink reads.
    TooManyHeaders,
    /// `Content-Length` is not a number, or two of them disagree.
    ContentLength,
    /// A transfer coding other than a lone `chunked`.
    TransferEncoding,
    /// Both `Content-Length` and `Transfer-Encoding` (a request smuggling pattern).
    LengthAndChunked,
    /// The chunked body is malformed.
    Chunk,
}

/// What [`Framer::advance`] found in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Event {
    /// All usable input was consumed; more bytes are needed. Unconsumed bytes are the start of
    /// a head and must be given again, with more bytes after them, on the next call.
    NeedMore,
    /// A head that expects `100 Continue` was read; its body follows.
    ExpectsContinue,
    /// A whole request (head and body) was read.
    Request(Head),
    /// The input is not valid HTTP/1.1; the connection must be answered `400` and closed.
    Bad(BadRequest),
}

/// The framing state of one connection.
#[derive(Debug)]
pub(crate) struct Framer {
    state: State,
    /// Bytes of the current incomplete head already searched for the end of the head, so that
    /// a client sending a head byte by byte costs linear time, not quadratic.
    scanned: usize,
    /// The request being captured, when the sink records (`None`: nothing is captured).
    capture: Option<Box<Captured>>,
}

#[derive(Debug)]
enum State {
    Head,
    Length { head: Head, remaining: u64 },
    Chunked { head: Head, decoder: Chunked },
}

impl Framer {
    /// A framer waiting for the first request head.
    pub(crate) fn new() -> Self {
        Framer { state: State::Head, scanned: 0, capture: None }
    }

    /// A framer that also captures each request for the record file.
    pub(crate) fn recording() -> Self {
        Framer { capture: Some(Box::default()), ..Framer::new() }
    }

    /// The request just framed (call it on [`Event::Request`]), leaving the capture empty for
    /// the next one; `None` when this framer does not record.
    pub(crate) fn take_captured(&mut self) -> Option<Captured> {
        self.capture.as_deref_mut().map(std::mem::take)
    }

    /// Consumes bytes from `input` up to the next event; returns how many it used.
    pub(crate) fn advance(&mut self, input: &[u8]) -> (usize, Event) {
        let mut used = 0;
        loop {
            match &mut self.state {
                State::Head => {
                    // Head parsing always starts at `used == 0`: a finished head either
                    // returns or moves on to a body state.
                    let (n, head) = match self.head(input) {
                        Ok(Some(found)) => found,
                        Ok(None) => return (0, Event::NeedMore),
                        Err(bad) => return (0, Event::Bad(bad)),
                    };
                    used = n;
                    self.state = match head.body {
                        Body::None => return (used, Event::Request(head)),
                        Body::Length(remaining) => State::Length { head, remaining },
                        Body::Chunked => State::Chunked { head, decoder: Chunked::new() },
                    };
                    if head.expect_continue {
                        return (used, Event::ExpectsContinue);
                    }
                }
                State::Length { head, remaining } => {
                    let rest = &input[used..];
                    let take = (*remaining).min(rest.len() as u64);
                    *remaining -= take;
                    if let Some(capture) = &mut self.capture {
                        capture.push_body(&rest[..take as usize]);
                    }
                    // `take` is at most `rest.len()`.
                    used += take as usize;
                    if *remaining > 0 {
                        return (used, Event::NeedMore);
                    }
                    let head = *head;
                    self.state = State::Head;
                    return (used, Event::Request(head));
                }
                State::Chunked { head, decoder } => {
                    let rest = &input[used..];
                    let (n, progress) = match &mut self.capture {
                        None => decoder.advance(rest),
                        Some(capture) => decoder.advance_with(rest, |data| capture.push_body(&rest[data])),
                    };
                    used += n;
                    match progress {
                        Progress::NeedMore => return (used, Event::NeedMore),
                        Progress::Bad => return (used, Event::Bad(BadRequest::Chunk)),
                        Progress::Done => {
                            let head = *head;
                            self.state = State::Head;
                            return (used, Event::Request(head));
                        }
                    }
                }
            }
        }
    }

    /// Parses the head at the start of `input`: `Ok(None)` while it is incomplete.
    fn head(&mut self, input: &[u8]) -> Result<Option<(usize, Head)>, BadRequest> {
        if self.scanned > 0 {
            // Seen this head's start before: parse again only once its end may have arrived.
            let from = self.scanned.saturating_sub(2);
            if !has_head_end(input.get(from..).unwrap_or(input)) {
                if input.len() > MAX_HEAD {
                    return Err(BadRequest::HeadTooLarge);
                }
                self.scanned = input.len();
                return Ok(None);
            }
        }
        match parse_head(input, self.capture.as_deref_mut())? {
            Some(found) => {
                self.scanned = 0;
                Ok(Some(found))
            }
            None => {
                self.scanned = input.len();
                Ok(None)
            }
        }
    }
}

/// True when `bytes` holds the blank line that ends a head (`\n\r\n` or `\n\n`).
fn has_head_end(bytes: &[u8]) -> bool {
    bytes
        .windows(2)
        .enumerate()
        .any(|(i, pair)| pair == b"\n\n" || (pair == b"\n\r" && bytes.get(i + 2) == Some(&b'\n')))
}

/// Parses one request head: `Ok(None)` when it is incomplete, with its length when complete.
/// A complete, valid head is also kept in `capture` when there is one.
pub(crate) fn parse_head(input: &[u8], capture: Option<&mut Captured>) -> Result<Option<(usize, Head)>, BadRequest> {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut headers);
    match request.parse(input) {
        Ok(httparse::Status::Complete(len)) if len > MAX_HEAD => Err(BadRequest::HeadTooLarge),
        Ok(httparse::Status::Complete(len)) => {
            let head = interpret(&request)?;
            if let Some(capture) = capture {
                capture.set_head(&request);
            }
            Ok(Some((len, head)))
        }
        Ok(httparse::Status::Partial) if input.len() > MAX_HEAD => Err(BadRequest::HeadTooLarge),
        Ok(httparse::Status::Partial) => Ok(None),
        Err(httparse::Error::TooManyHeaders) => Err(BadRequest::TooManyHeaders),
        Err(_) => Err(BadRequest::Syntax),
    }
}

/// Reads framing, keep-alive and `Expect` from a parsed head.
fn interpret(request: &httparse::Request<'_, '_>) -> Result<Head, BadRequest> {
    let http10 = request.version == Some(0);
    let mut close = false;
    let mut keep_alive = false;
    let mut length: Option<u64> = None;
    let mut chunked = false;
    let mut expect = false;
    let mut upgrade = false;
    for header in request.headers.iter() {
        let name = header.name;
        if name.eq_ignore_ascii_case("content-length") {
            let value = parse_length(header.value).ok_or(BadRequest::ContentLength)?;
            if length.is_some_and(|seen| seen != value) {
                return Err(BadRequest::ContentLength);
            }
            length = Some(value);
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Only one, exactly `chunked`: anything else cannot be framed by the sink.
            if chunked || !trim(header.value).eq_ignore_ascii_case(b"chunked") {
                return Err(BadRequest::TransferEncoding);
            }
            chunked = true;
        } else if name.eq_ignore_ascii_case("connection") {
            for token in header.value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        } else if name.eq_ignore_ascii_case("expect") {
            expect |= trim(header.value).eq_ignore_ascii_case(b"100-continue");
        } else if name.eq_ignore_ascii_case("upgrade") {
            upgrade |= header.value.split(|&b| b == b',').any(|token| trim(token).eq_ignore_ascii_case(b"websocket"));
        }
    }
    if chunked && length.is_some() {
        return Err(BadRequest::LengthAndChunked);
    }
    let body = match (chunked, length) {
        (true, _) => Body::Chunked,
        (false, None | Some(0)) => Body::None,
        (false, Some(n)) => Body::Length(n),
    };
    Ok(Head {
        keep_alive: !close && (!http10 || keep_alive),
        http10,
        head_only: request.method == Some("HEAD"),
        expect_continue: expect && !http10 && body != Body::None,
        body,
        upgrade,
    })
}

/// A `Content-Length` value: ASCII digits only, fitting a u64.
fn parse_length(value: &[u8]) -> Option<u64> {
    let value = trim(value);
    if value.is_empty() || !value.iter().all(u8::is_ascii_digit) {
        return None;
    }
    value.iter().try_fold(0u64, |acc, &digit| acc.checked_mul(10)?.checked_add(u64::from(digit - b'0')))
}

fn trim(bytes: &[u8]) -> &[u8] {
    bytes.trim_ascii()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(text: &str) -> Result<Option<(usize, Head)>, BadRequest> {
        parse_head(text.as_bytes(), None)
    }

    fn complete(text: &str) -> Head {
        match head(text) {
            Ok(Some((len, head))) => {
                assert_eq!(len, text.len());
                head
            }
            other => panic!("{text:?}: {other:?}"),
        }
    }

    #[test]
    fn reads_keep_alive_rules() {
        let h = complete("GET / HTTP/1.1\r\nHost: a\r\n\r\n");
        assert!(h.keep_alive && !h.http10 && !h.head_only && h.body == Body::None);
        assert!(!complete("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.1\r\nConnection: upgrade, close\r\n\r\n").keep_alive);
        assert!(!complete("GET / HTTP/1.0\r\n\r\n").keep_alive);
        let h = complete("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n");
        assert!(h.keep_alive && h.http10);
        assert!(complete("HEAD / HTTP/1.1\r\n\r\n").head_only);
    }

    #[test]
    fn reads_body_framing() {
        assert_eq!(complete("POST / HTTP/1.1\r\nContent-Length: 12\r\n\r\n").body, Body::Length(12));
        assert_eq!(complete("POST / HTTP/1.1\r\nContent-Length: 0\r\n\r\n").body, Body::None);
        assert_eq!(complete("POST / HTTP/1.1\r\nContent-Length: 5\r\ncontent-length: 5\r\n\r\n").body, Body::Length(5));
        assert_eq!(complete("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").body, Body::Chunked);
        let h = complete("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n");
        assert!(h.expect_continue);
        let h = complete("POST / HTTP/1.1\r\nExpect: 100-continue\r\n\r\n");
        assert!(!h.expect_continue, "no body, nothing to wait for");
    }

    #[test]
    fn rejects_bad_heads() {
        let cases = [
            ("garbage\r\n\r\n", BadRequest::Syntax),
            ("\x00\x01\x02\r\n\r\n", BadRequest::Syntax),
            ("GET / HTTP/2.0\r\n\r\n", BadRequest::Syntax),
            ("POST / HTTP/1.1\r\nContent-Length: x\r\n\r\n", BadRequest::ContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: -1\r\n\r\n", BadRequest::ContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 99999999999999999999\r\n\r\n", BadRequest::ContentLength),
            ("POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", BadRequest::ContentLength),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip\r\n\r\n", BadRequest::TransferEncoding),
            ("POST / HTTP/1.1\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", BadRequest::TransferEncoding),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
                BadRequest::TransferEncoding,
            ),
            (
                "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n",
                BadRequest::LengthAndChunked,
            ),
        ];
        for (text, want) in cases {
            assert_eq!(head(text), Err(want), "{text:?}");
        }
        let many: String = (0..MAX_HEADERS + 1).map(|i| format!("X-{i}: y\r\n")).collect();
        assert_eq!(head(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Err(BadRequest::TooManyHeaders));
    }

    #[test]
    fn incomplete_heads_wait_until_too_large() {
        assert_eq!(head("GET / HTTP/1.1\r\nHost: a\r\n"), Ok(None));
        let big = format!("GET / HTTP/1.1\r\nX-Big: {}", "a".repeat(MAX_HEAD));
        assert_eq!(head(&big), Err(BadRequest::HeadTooLarge));
        let big_complete = format!("GET / HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(MAX_HEAD));
        assert_eq!(head(&big_complete), Err(BadRequest::HeadTooLarge));
    }

    /// Runs the framer over `input` given `piece` new bytes at a time, as a connection does.
    fn frame(input: &[u8], piece: usize) -> Vec<Event> {
        let mut framer = Framer::new();
        let mut events = Vec::new();
        let mut pending: Vec<u8> = Vec::new();
        for chunk in input.chunks(piece) {
            pending.extend_from_slice(chunk);
            let mut pos = 0;
            loop {
                let (n, event) = framer.advance(&pending[pos..]);
                pos += n;
                if event == Event::NeedMore {
                    break;
                }
                events.push(event);
                if matches!(event, Event::Bad(_)) {
                    return events;
                }
            }
            pending.drain(..pos);
        }
        events
    }

    #[test]
    fn frames_pipelined_requests_split_anywhere() {
        let input = b"GET /1 HTTP/1.1\r\n\r\n\
            POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n\
            POST /4 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi\
            HEAD /5 HTTP/1.1\r\n\r\n";
        for piece in 1..=input.len() {
            let events = frame(input, piece);
            let kinds: Vec<_> = events
                .iter()
                .map(|e| match e {
                    Event::Request(h) => format!("req{}", if h.head_only { "-head" } else { "" }),
                    other => format!("{other:?}"),
                })
                .collect();
            assert_eq!(kinds, ["req", "req", "req", "ExpectsContinue", "req", "req-head"], "{piece}");
        }
    }

    #[test]
    fn recording_framer_captures_heads_and_decoded_bodies_split_anywhere() {
        let input = b"GET /1?a=b HTTP/1.1\r\nHost: x\r\n\r\n\
            POST /2 HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello\
            POST /3 HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;e=1\r\nabc\r\n2\r\nde\r\n0\r\nT: 1\r\n\r\n\
            POST /4 HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\nhi";
        let want = [("GET", "/1?a=b", ""), ("POST", "/2", "hello"), ("POST", "/3", "abcde"), ("POST", "/4", "hi")];
        for piece in 1..=input.len() {
            let mut framer = Framer::recording();
            let mut got = Vec::new();
            let mut pending: Vec<u8> = Vec::new();
            for chunk in input.chunks(piece) {
                pending.extend_from_slice(chunk);
                let mut pos = 0;
                loop {
                    let (n, event) = framer.advance(&pending[pos..]);
                    pos += n;
                    match event {
                        Event::NeedMore => break,
                        Event::Request(_) => got.push(framer.take_captured().unwrap()),
                        Event::ExpectsContinue => {}
                        Event::Bad(bad) => panic!("{bad:?}"),
                    }
                }
                pending.drain(..pos);
            }
            let seen: Vec<_> = got
                .iter()
                .map(|c| (c.method.as_str(), c.target.as_str(), std::str::from_utf8(&c.body).unwrap()))
                .collect();
            assert_eq!(seen, want, "{piece}");
            assert_eq!(got[0].headers, [("Host".to_string(), "x".to_string())]);
            assert_eq!(got[2].headers[0].1, "chunked");
            assert!(got.iter().all(|c| !c.truncated));
        }
        assert_eq!(Framer::new().take_captured(), None);
    }

    #[test]
    fn bad_chunk_is_reported() {
        let input = b"POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n";
        assert_eq!(frame(input, 7).last(), Some(&Event::Bad(BadRequest::Chunk)));
    }

    #[test]
    fn byte_by_byte_head_is_found_and_bounded() {
        let input = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n";
        assert!(matches!(frame(input, 1).as_slice(), [Event::Request(_)]));
        let lf_only = b"GET / HTTP/1.1\nHost: x\n\n";
        assert!(matches!(frame(lf_only, 1).as_slice(), [Event::Request(_)]));
        let endless = format!("GET / HTTP/1.1\r\nX: {}", "a".repeat(MAX_HEAD + 10));
        assert_eq!(frame(endless.as_bytes(), 4096), [Event::Bad(BadRequest::HeadTooLarge)]);
    }
}
