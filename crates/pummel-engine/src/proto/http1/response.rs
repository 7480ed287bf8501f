//! A resumable HTTP/1.1 response parser, fed with whatever bytes each socket read returned.
//!
//! The engine reads into one shared per-thread buffer, so the parser must keep what it needs
//! between reads itself, and keep little: a connection costs a few KiB in all. The common
//! case — a whole head and a `Content-Length` body in one read — parses the head straight from
//! the caller's bytes with `httparse` and counts the body without copying or allocating. Only
//! a head split across reads is copied (into a small reused `Vec`, capped at
//! [`MAX_HEAD_BYTES`]); chunked bodies are decoded by a byte-level state machine that keeps no
//! body bytes. Body framing follows RFC 9112 §6.3.
//!
//! One file over 600 lines: about 530 lines of code; the rest is its tests (every split point of a response), beside it.

use std::mem::MaybeUninit;

use thiserror::Error;

/// The largest response head accepted (status line, headers and the empty line), in bytes.
///
/// A bigger head is far more likely a broken or hostile server than a real response, and the
/// cap bounds what a connection may hold while a head arrives in pieces.
pub const MAX_HEAD_BYTES: usize = 64 * 1024;

/// How many header fields a head may have; more is reported as malformed.
const MAX_HEADERS: usize = 64;

/// The largest chunk size accepted (256 TiB); a bigger one is treated as garbage, not data.
const MAX_CHUNK_SIZE: u64 = 1 << 48;

/// What the engine needs to know about one complete response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponseInfo {
    /// The final status code (interim 1xx responses are skipped).
    pub status: u16,
    /// Whether the connection may carry another request after this response.
    pub keep_alive: bool,
    /// Bytes of response heads, including skipped 1xx heads, for the "bytes in" figure.
    pub head_bytes: u64,
    /// Bytes of body payload (for chunked bodies: the data, not the chunk framing).
    pub body_bytes: u64,
}

/// Where a response stands after [`ResponseParser::feed`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// The response is not complete: read more (or call [`ResponseParser::finish_on_eof`]).
    NeedMore,
    /// The response is complete.
    Complete(ResponseInfo),
}

/// Why a response could not be parsed; the engine counts these by kind.
///
/// After an error the connection's framing is lost: close it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Error)]
pub enum ParseError {
    /// The bytes are not a valid HTTP/1.1 response; the text says what is wrong.
    #[error("malformed response: {0}")]
    Malformed(&'static str),
    /// The response head did not end within [`MAX_HEAD_BYTES`].
    #[error("response head is larger than {MAX_HEAD_BYTES} bytes")]
    HeadTooLarge,
    /// The peer closed the connection before sending any byte of the response.
    #[error("connection closed before any byte of the response arrived")]
    ClosedBeforeResponse,
    /// The peer closed the connection after part of the response.
    #[error("connection closed in the middle of the response")]
    ClosedMidResponse,
}

/// The parser's position in a response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Waiting for (the rest of) a head.
    Head,
    /// In a `Content-Length` body; the value is the number of bytes still to come.
    Length(u64),
    /// In a chunked body.
    Chunked(Chunk),
    /// In a body delimited by the connection closing.
    UntilClose,
    /// The response is complete.
    Done,
}

/// The chunked decoder's position: one state per byte class of RFC 9112 §7.1.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Chunk {
    /// Reading hex digits of a chunk size; `digits` is false until the first one.
    Size { size: u64, digits: bool },
    /// After the size, in optional whitespace before `;` or CR.
    SizeSpace(u64),
    /// In a chunk extension (ignored), until CR.
    Extension(u64),
    /// Saw the CR ending a size line; expecting LF.
    SizeLf(u64),
    /// In chunk data; the value is the number of bytes still to come.
    Data(u64),
    /// After chunk data, expecting CR.
    DataCr,
    /// After chunk data and CR, expecting LF.
    DataLf,
    /// At the start of a trailer line or of the final empty line.
    TrailerStart,
    /// Inside a trailer field line (skipped), until CR.
    TrailerLine,
    /// Saw the CR ending a trailer line; expecting LF.
    TrailerLf,
    /// Saw the CR of the final empty line; expecting LF.
    EndLf,
}

/// How the body of a response is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
}

/// What the parser keeps from a head once it is parsed.
struct Head {
    status: u16,
    keep_alive: bool,
    framing: Framing,
}

/// A resumable parser for the responses on one connection; small, and reused for each of them.
///
/// Call [`start`](Self::start) before each response (a new parser is already started), then
/// [`feed`](Self::feed) it the bytes of each read until it reports [`Progress::Complete`], or
/// [`finish_on_eof`](Self::finish_on_eof) when the peer closes.
#[derive(Debug)]
pub struct ResponseParser {
    state: State,
    head_request: bool,
    status: u16,
    keep_alive: bool,
    head_bytes: u64,
    body_bytes: u64,
    /// Bytes of a head split across reads; empty on the fast path.
    partial: Vec<u8>,
    /// Whether to keep the final head for [`header`](Self::header).
    keep_head: bool,
    /// The final head, kept only when `keep_head` is on.
    head: Vec<u8>,
    /// How many body bytes to keep; 0 keeps none.
    body_limit: usize,
    /// The first `body_limit` bytes of the body.
    body: Vec<u8>,
}

impl Default for ResponseParser {
    fn default() -> Self {
        Self::new()
    }
}

impl ResponseParser {
    /// Creates a parser ready for a response to a non-HEAD request; allocates nothing.
    pub fn new() -> Self {
        Self {
            state: State::Head,
            head_request: false,
            status: 0,
            keep_alive: false,
            head_bytes: 0,
            body_bytes: 0,
            partial: Vec::new(),
            keep_head: false,
            head: Vec::new(),
            body_limit: 0,
            body: Vec::new(),
        }
    }

    /// Prepares for the next response; `head_request` = the request was HEAD (no body follows).
    ///
    /// Buffers are cleared but keep their capacity, so reuse does not allocate.
    pub fn start(&mut self, head_request: bool) {
        self.state = State::Head;
        self.head_request = head_request;
        self.status = 0;
        self.keep_alive = false;
        self.head_bytes = 0;
        self.body_bytes = 0;
        self.partial.clear();
        self.head.clear();
        self.body.clear();
    }

    /// Keeps up to `limit` bytes of each body for checks; 0 (the default) keeps none.
    ///
    /// The setting lasts across responses; it costs a copy of the kept bytes per response.
    pub fn capture_body(&mut self, limit: usize) {
        self.body_limit = limit;
    }

    /// Keeps each final response head so [`header`](Self::header) can answer; off by default.
    ///
    /// The setting lasts across responses; it costs a copy of the head per response.
    pub fn capture_headers(&mut self, on: bool) {
        self.keep_head = on;
    }

    /// The body bytes kept so far (at most the [`capture_body`](Self::capture_body) limit).
    pub fn body(&self) -> &[u8] {
        &self.body
    }

    /// The value of the first header named `name` (case-insensitive) of the final head,
    /// trimmed of surrounding whitespace; `None` when absent or when headers are not captured.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers().find(|(n, _)| n.eq_ignore_ascii_case(name.as_bytes())).map(|(_, v)| v)
    }

    /// Every `(name, value)` field of the final head, in order; empty unless headers are captured.
    pub fn headers(&self) -> impl Iterator<Item = (&[u8], &[u8])> {
        self.head
            .split(|&b| b == b'\n')
            .map(|line| line.strip_suffix(b"\r").unwrap_or(line))
            .skip_while(|line| line.is_empty())
            .skip(1) // the status line
            .take_while(|line| !line.is_empty())
            .filter_map(|line| {
                let colon = line.iter().position(|&b| b == b':')?;
                Some((&line[..colon], trim(&line[colon + 1..])))
            })
    }

    /// Feeds bytes just read. Returns how many bytes of `input` belong to this response and
    /// the progress.
    ///
    /// Bytes after a complete response (pipelining or junk) are not consumed: the caller
    /// decides what to do with them. Once complete, further calls return `(0, Complete)` until
    /// [`start`](Self::start).
    pub fn feed(&mut self, input: &[u8]) -> Result<(usize, Progress), ParseError> {
        let mut pos = 0;
        loop {
            let rest = &input[pos..];
            match self.state {
                State::Head => {
                    let (used, complete) = self.feed_head(rest)?;
                    pos += used;
                    if !complete {
                        return Ok((pos, Progress::NeedMore));
                    }
                }
                State::Length(remaining) => {
                    let take = remaining.min(rest.len() as u64);
                    self.take_body(&rest[..take as usize]);
                    pos += take as usize;
                    if take < remaining {
                        self.state = State::Length(remaining - take);
                        return Ok((pos, Progress::NeedMore));
                    }
                    self.state = State::Done;
                }
                State::Chunked(chunk) => {
                    pos += self.feed_chunked(chunk, rest)?;
                    if self.state != State::Done {
                        return Ok((pos, Progress::NeedMore));
                    }
                }
                State::UntilClose => {
                    self.take_body(rest);
                    return Ok((input.len(), Progress::NeedMore));
                }
                State::Done => return Ok((pos, Progress::Complete(self.info()))),
            }
        }
    }

    /// The peer closed the connection. Completes a read-until-close body; otherwise an error:
    /// [`ParseError::ClosedBeforeResponse`] if no byte of the response arrived, else
    /// [`ParseError::ClosedMidResponse`]. A response already complete is returned as is.
    pub fn finish_on_eof(&mut self) -> Result<ResponseInfo, ParseError> {
        match self.state {
            State::Head if self.partial.is_empty() && self.head_bytes == 0 => Err(ParseError::ClosedBeforeResponse),
            State::Head | State::Length(_) | State::Chunked(_) => Err(ParseError::ClosedMidResponse),
            State::UntilClose | State::Done => {
                self.state = State::Done;
                Ok(self.info())
            }
        }
    }

    /// True once any byte of the current response arrived: a connection that breaks before
    /// that may be retried on a fresh one (see `exec::request`), after that it may not.
    pub fn received_any(&self) -> bool {
        !(self.state == State::Head && self.partial.is_empty() && self.head_bytes == 0)
    }

    /// Bytes of the response being read that arrived so far (head and body), also when it
    /// never completes: a body cut by a timeout still moved them.
    pub fn received_bytes(&self) -> u64 {
        self.head_bytes + self.body_bytes + self.partial.len() as u64
    }

    fn info(&self) -> ResponseInfo {
        ResponseInfo {
            status: self.status,
            keep_alive: self.keep_alive,
            head_bytes: self.head_bytes,
            body_bytes: self.body_bytes,
        }
    }

    /// Consumes head bytes; returns how many were used and whether a head (final or 1xx) ended.
    fn feed_head(&mut self, input: &[u8]) -> Result<(usize, bool), ParseError> {
        if self.partial.is_empty() {
            // Fast path: parse in place, copy nothing.
            return match parse_head(input, self.head_request)? {
                Some((len, head)) => {
                    if self.keep_head {
                        self.head.clear();
                        self.head.extend_from_slice(&input[..len]);
                    }
                    self.on_head(len, head);
                    Ok((len, true))
                }
                None if input.len() >= MAX_HEAD_BYTES => Err(ParseError::HeadTooLarge),
                None => {
                    self.partial.extend_from_slice(input);
                    Ok((input.len(), false))
                }
            };
        }
        let before = self.partial.len();
        let take = input.len().min(MAX_HEAD_BYTES - before);
        self.partial.extend_from_slice(&input[..take]);
        match parse_head(&self.partial, self.head_request)? {
            Some((len, head)) => {
                if self.keep_head {
                    self.head.clear();
                    self.head.extend_from_slice(&self.partial[..len]);
                }
                self.partial.clear();
                self.on_head(len, head);
                // The first `before` bytes alone were not a complete head, so len > before.
                Ok((len.saturating_sub(before), true))
            }
            None if self.partial.len() >= MAX_HEAD_BYTES => Err(ParseError::HeadTooLarge),
            None => Ok((take, false)),
        }
    }

    /// Records a parsed head and moves to its body; an interim 1xx head leaves us in `Head`.
    fn on_head(&mut self, len: usize, head: Head) {
        self.head_bytes += len as u64;
        if (100..200).contains(&head.status) && head.status != 101 {
            return;
        }
        self.status = head.status;
        self.keep_alive = head.keep_alive;
        self.state = match head.framing {
            Framing::None | Framing::Length(0) => State::Done,
            Framing::Length(n) => State::Length(n),
            Framing::Chunked => State::Chunked(Chunk::Size { size: 0, digits: false }),
            Framing::UntilClose => State::UntilClose,
        };
    }

    /// Counts body bytes and keeps those the capture limit allows.
    fn take_body(&mut self, data: &[u8]) {
        self.body_bytes += data.len() as u64;
        let room = self.body_limit.saturating_sub(self.body.len());
        if room > 0 {
            self.body.extend_from_slice(&data[..room.min(data.len())]);
        }
    }

    /// Runs the chunked decoder over `input`; returns the bytes used (all, unless it ended).
    fn feed_chunked(&mut self, mut chunk: Chunk, input: &[u8]) -> Result<usize, ParseError> {
        let mut i = 0;
        while i < input.len() {
            chunk = if let Chunk::Data(remaining) = chunk {
                let take = remaining.min((input.len() - i) as u64);
                self.take_body(&input[i..i + take as usize]);
                i += take as usize;
                if take == remaining { Chunk::DataCr } else { Chunk::Data(remaining - take) }
            } else {
                i += 1;
                match chunk_step(chunk, input[i - 1])? {
                    Some(next) => next,
                    None => {
                        self.state = State::Done;
                        return Ok(i);
                    }
                }
            };
        }
        self.state = State::Chunked(chunk);
        Ok(i)
    }
}

/// One framing byte of a chunked body: the next state, or `None` when the body has ended.
fn chunk_step(chunk: Chunk, b: u8) -> Result<Option<Chunk>, ParseError> {
    let bad = |why| Err(ParseError::Malformed(why));
    let next = match chunk {
        Chunk::Size { size, digits } => match (b as char).to_digit(16) {
            Some(d) => {
                let size = size * 16 + u64::from(d);
                if size > MAX_CHUNK_SIZE {
                    return bad("chunk size too large");
                }
                Chunk::Size { size, digits: true }
            }
            None if !digits => return bad("invalid chunk size"),
            None => after_size(size, b)?,
        },
        Chunk::SizeSpace(size) => after_size(size, b)?,
        Chunk::Extension(size) => match b {
            b'\r' => Chunk::SizeLf(size),
            b'\n' => return bad("bare LF in chunk extension"),
            _ => Chunk::Extension(size),
        },
        Chunk::SizeLf(0) if b == b'\n' => Chunk::TrailerStart,
        Chunk::SizeLf(size) if b == b'\n' => Chunk::Data(size),
        Chunk::SizeLf(_) => return bad("missing LF after chunk size"),
        // Data is consumed in bulk by the caller; a framing byte here means a caller bug.
        Chunk::Data(_) => return bad("chunk data where framing was expected"),
        Chunk::DataCr if b == b'\r' => Chunk::DataLf,
        Chunk::DataLf if b == b'\n' => Chunk::Size { size: 0, digits: false },
        Chunk::DataCr | Chunk::DataLf => return bad("missing CRLF after chunk data"),
        Chunk::TrailerStart | Chunk::TrailerLine if b == b'\n' => {
            return bad("bare LF in chunked trailer");
        }
        Chunk::TrailerStart if b == b'\r' => Chunk::EndLf,
        Chunk::TrailerLine if b == b'\r' => Chunk::TrailerLf,
        Chunk::TrailerStart | Chunk::TrailerLine => Chunk::TrailerLine,
        Chunk::TrailerLf if b == b'\n' => Chunk::TrailerStart,
        Chunk::EndLf if b == b'\n' => return Ok(None),
        Chunk::TrailerLf | Chunk::EndLf => return bad("missing LF in chunked trailer"),
    };
    Ok(Some(next))
}

/// The state after a byte that follows a chunk size's digits.
fn after_size(size: u64, b: u8) -> Result<Chunk, ParseError> {
    match b {
        b' ' | b'\t' => Ok(Chunk::SizeSpace(size)),
        b';' => Ok(Chunk::Extension(size)),
        b'\r' => Ok(Chunk::SizeLf(size)),
        _ => Err(ParseError::Malformed("invalid chunk size line")),
    }
}

/// Parses a head at the start of `buf`: `None` while incomplete, else its length and framing.
fn parse_head(buf: &[u8], head_request: bool) -> Result<Option<(usize, Head)>, ParseError> {
    let mut fields = [const { MaybeUninit::<httparse::Header<'_>>::uninit() }; MAX_HEADERS];
    let mut resp = httparse::Response::new(&mut []);
    let config = httparse::ParserConfig::default();
    let len = match config.parse_response_with_uninit_headers(&mut resp, buf, &mut fields) {
        Ok(httparse::Status::Complete(len)) => len,
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(e) => return Err(ParseError::Malformed(httparse_reason(e))),
    };
    if len > MAX_HEAD_BYTES {
        return Err(ParseError::HeadTooLarge);
    }
    let status = resp.code.unwrap_or(0);
    if status < 100 {
        return Err(ParseError::Malformed("status code below 100"));
    }
    let (mut close, mut keep_alive_token) = (false, false);
    let mut length: Option<u64> = None;
    let mut te_chunked: Option<bool> = None;
    for field in resp.headers.iter() {
        let name = field.name;
        if name.eq_ignore_ascii_case("content-length") {
            for part in field.value.split(|&b| b == b',') {
                let n = parse_decimal(trim(part)).ok_or(ParseError::Malformed("invalid Content-Length"))?;
                if length.is_some_and(|l| l != n) {
                    return Err(ParseError::Malformed("conflicting Content-Length values"));
                }
                length = Some(n);
            }
        } else if name.eq_ignore_ascii_case("transfer-encoding") {
            // Chunked frames the body only when it is the final coding (RFC 9112 §6.3).
            let mut codings = field.value.rsplit(|&b| b == b',').map(trim);
            if let Some(coding) = codings.find(|t| !t.is_empty()) {
                te_chunked = Some(coding.eq_ignore_ascii_case(b"chunked"));
            }
        } else if name.eq_ignore_ascii_case("connection") {
            for token in field.value.split(|&b| b == b',').map(trim) {
                close |= token.eq_ignore_ascii_case(b"close");
                keep_alive_token |= token.eq_ignore_ascii_case(b"keep-alive");
            }
        }
    }
    let framing = if status < 200 || status == 204 || status == 304 || head_request {
        Framing::None
    } else {
        match (te_chunked, length) {
            (Some(true), _) => Framing::Chunked,
            (Some(false), _) => Framing::UntilClose,
            (None, Some(n)) => Framing::Length(n),
            (None, None) => Framing::UntilClose,
        }
    };
    let http11 = resp.version == Some(1);
    let keep_alive = !close && (http11 || keep_alive_token) && framing != Framing::UntilClose && status != 101;
    Ok(Some((len, Head { status, keep_alive, framing })))
}

/// A static description of an `httparse` error, so errors carry no allocation.
fn httparse_reason(e: httparse::Error) -> &'static str {
    match e {
        httparse::Error::HeaderName => "invalid header name",
        httparse::Error::HeaderValue => "invalid header value",
        httparse::Error::NewLine => "invalid line ending",
        httparse::Error::Status => "invalid status line",
        httparse::Error::Token => "invalid token",
        httparse::Error::TooManyHeaders => "too many headers (more than 64)",
        httparse::Error::Version => "invalid HTTP version",
    }
}

/// Parses a non-empty run of ASCII digits into a u64; `None` on anything else or overflow.
fn parse_decimal(s: &[u8]) -> Option<u64> {
    if s.is_empty() {
        return None;
    }
    s.iter().try_fold(0u64, |n, &b| {
        let d = (b as char).to_digit(10)?;
        n.checked_mul(10)?.checked_add(u64::from(d))
    })
}

/// `s` without leading and trailing spaces and tabs.
fn trim(s: &[u8]) -> &[u8] {
    let start = s.iter().position(|&b| b != b' ' && b != b'\t').unwrap_or(s.len());
    let end = s.iter().rposition(|&b| b != b' ' && b != b'\t').map_or(start, |p| p + 1);
    &s[start..end]
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const CL: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 11\r\n\r\nhello world";
    const CHUNKED: &[u8] = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n\
        5;name=\"va;l\"\r\nhello\r\n1A ; ext\r\nabcdefghijklmnopqrstuvwxyz\r\n000\r\n\
        Expires: never\r\nX-Trailer: 1\r\n\r\n";
    const CLOSE: &[u8] = b"HTTP/1.0 200 OK\r\nServer: old\r\n\r\nread until the end";

    /// Feeds `pieces` in order; every piece must be consumed whole, and completion may only
    /// happen on the last non-empty piece. With `eof`, finishes with `finish_on_eof`.
    fn run(p: &mut ResponseParser, pieces: &[&[u8]], eof: bool) -> Result<ResponseInfo, ParseError> {
        for (k, piece) in pieces.iter().enumerate() {
            let (used, progress) = p.feed(piece)?;
            assert_eq!(used, piece.len(), "piece {k} not consumed whole");
            if let Progress::Complete(info) = progress {
                assert!(pieces[k + 1..].iter().all(|rest| rest.is_empty()), "completed early");
                return Ok(info);
            }
        }
        assert!(eof, "response did not complete");
        p.finish_on_eof()
    }

    fn parse(input: &[u8], eof: bool) -> Result<ResponseInfo, ParseError> {
        run(&mut ResponseParser::new(), &[input], eof)
    }

    #[test]
    fn bytes_of_an_unfinished_answer_are_counted() {
        let mut p = ResponseParser::new();
        p.start(false);
        assert_eq!(p.received_bytes(), 0);
        // Half a head, then the head and part of a 100-byte body: never complete.
        let head = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n";
        assert!(matches!(p.feed(&head[..10]), Ok((10, Progress::NeedMore))));
        assert_eq!(p.received_bytes(), 10);
        assert!(matches!(p.feed(&head[10..]), Ok((_, Progress::NeedMore))));
        assert!(matches!(p.feed(&[b'x'; 30]), Ok((30, Progress::NeedMore))));
        assert_eq!(p.received_bytes(), head.len() as u64 + 30);
        p.start(false);
        assert_eq!(p.received_bytes(), 0, "a new response starts from nothing");
    }

    /// Feeds `input` in three pieces at every pair of split points; all must agree.
    fn assert_split_invariant(input: &[u8], eof: bool, body: &[u8]) {
        let whole = parse(input, eof).unwrap();
        let mut p = ResponseParser::new();
        p.capture_body(usize::MAX);
        for i in 0..=input.len() {
            for j in i..=input.len() {
                p.start(false);
                let info = run(&mut p, &[&input[..i], &input[i..j], &input[j..]], eof).unwrap();
                assert_eq!(info, whole, "split at {i}, {j}");
                assert_eq!(p.body(), body, "split at {i}, {j}");
            }
        }
    }

    fn chunk_encode(body: &[u8], sizes: &[usize], ext: bool, trailer: bool) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        let mut rest = body;
        for &size in sizes.iter().cycle() {
            if rest.is_empty() {
                break;
            }
            let (chunk, tail) = rest.split_at(size.clamp(1, rest.len()));
            let line = if ext { format!("{:X};e=1\r\n", chunk.len()) } else { format!("{:x}\r\n", chunk.len()) };
            out.extend_from_slice(line.as_bytes());
            out.extend_from_slice(chunk);
            out.extend_from_slice(b"\r\n");
            rest = tail;
        }
        out.extend_from_slice(if trailer { b"0\r\nT: v\r\n\r\n" } else { b"0\r\n\r\n" });
        out
    }

    #[test]
    fn simple_content_length() {
        let info = parse(CL, false).unwrap();
        let head = CL.len() as u64 - 11;
        let want = ResponseInfo { status: 200, keep_alive: true, head_bytes: head, body_bytes: 11 };
        assert_eq!(info, want);
    }

    #[test]
    fn parser_is_small() {
        assert!(std::mem::size_of::<ResponseParser>() < 256, "{}", std::mem::size_of::<ResponseParser>());
    }

    #[test]
    fn every_split_content_length() {
        assert_split_invariant(CL, false, b"hello world");
    }

    #[test]
    fn every_split_chunked_with_extensions_and_trailers() {
        let info = parse(CHUNKED, false).unwrap();
        assert_eq!((info.status, info.keep_alive, info.body_bytes), (200, true, 31));
        assert_split_invariant(CHUNKED, false, b"helloabcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn every_split_read_until_close() {
        let info = parse(CLOSE, true).unwrap();
        assert_eq!((info.status, info.keep_alive, info.body_bytes), (200, false, 18));
        assert_split_invariant(CLOSE, true, b"read until the end");
    }

    #[test]
    fn pipelined_responses_are_not_consumed_past_the_first() {
        let mut input = CL.to_vec();
        input.extend_from_slice(CHUNKED);
        let mut p = ResponseParser::new();
        let (used, first) = p.feed(&input).unwrap();
        assert_eq!(used, CL.len());
        assert!(matches!(first, Progress::Complete(i) if i.body_bytes == 11));
        p.start(false);
        let (used, second) = p.feed(&input[CL.len()..]).unwrap();
        assert_eq!(used, CHUNKED.len());
        assert!(matches!(second, Progress::Complete(i) if i.body_bytes == 31));
    }

    #[test]
    fn informational_responses_are_skipped() {
        let input = b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </a>\r\n\r\n\
            HTTP/1.1 201 Created\r\nContent-Length: 2\r\n\r\nok";
        let info = parse(input, false).unwrap();
        assert_eq!((info.status, info.body_bytes), (201, 2));
        assert_eq!(info.head_bytes, input.len() as u64 - 2);
        assert_split_invariant(input, false, b"ok");
    }

    #[test]
    fn head_request_has_no_body_despite_content_length() {
        let mut p = ResponseParser::new();
        p.start(true);
        let input = b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\nHTTP/1.1";
        let (used, progress) = p.feed(input).unwrap();
        assert_eq!(used, input.len() - 8);
        assert!(matches!(progress, Progress::Complete(i) if i.body_bytes == 0 && i.keep_alive));
    }

    #[test]
    fn no_body_for_204_and_304() {
        for status in ["204 No Content", "304 Not Modified"] {
            let input = format!("HTTP/1.1 {status}\r\nContent-Length: 5\r\n\r\n");
            let info = parse(input.as_bytes(), false).unwrap();
            assert_eq!((info.body_bytes, info.keep_alive), (0, true));
        }
        let info = parse(b"HTTP/1.1 204 No Content\r\nTransfer-Encoding: chunked\r\n\r\n", false);
        assert_eq!(info.unwrap().body_bytes, 0);
    }

    #[test]
    fn malformed_status_line() {
        for input in [
            &b"HTTP/1.1 2x0 OK\r\n\r\n"[..],
            b"HTTP/2.0 200 OK\r\n\r\n",
            b"SSH-2.0-OpenSSH\r\n",
            b"HTTP/1.1 099 X\r\n\r\n",
        ] {
            assert!(matches!(parse(input, false), Err(ParseError::Malformed(_))), "{input:?}");
        }
    }

    #[test]
    fn too_many_headers_is_malformed() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        for k in 0..=MAX_HEADERS {
            input.extend_from_slice(format!("X-{k}: v\r\n").as_bytes());
        }
        input.extend_from_slice(b"\r\n");
        assert_eq!(parse(&input, false), Err(ParseError::Malformed("too many headers (more than 64)")));
    }

    #[test]
    fn bad_chunk_framing() {
        let head = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for body in [
            &b"zz\r\n"[..],
            b"\r\n",
            b";x\r\n",
            b"5\nhello\r\n",
            b"5\r\nhelloXY",
            b"5 x\r\n",
            b"1000000000001\r\n",
            b"ffffffffffffffffffff\r\n",
            b"0\r\nT: 1\nX",
        ] {
            let input = [&head[..], body].concat();
            assert!(matches!(parse(&input, false), Err(ParseError::Malformed(_))), "{body:?}");
        }
    }

    #[test]
    fn content_length_duplicates() {
        let conflict = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello!";
        assert_eq!(parse(conflict, false), Err(ParseError::Malformed("conflicting Content-Length values")));
        let list = b"HTTP/1.1 200 OK\r\nContent-Length: 5, 6\r\n\r\nhello!";
        assert!(matches!(parse(list, false), Err(ParseError::Malformed(_))));
        let same = b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\ncontent-length: 5, 5\r\n\r\nhello";
        assert_eq!(parse(same, false).unwrap().body_bytes, 5);
        for bad in ["-1", "+5", "5a", "", "99999999999999999999"] {
            let input = format!("HTTP/1.1 200 OK\r\nContent-Length: {bad}\r\n\r\n");
            assert!(matches!(parse(input.as_bytes(), false), Err(ParseError::Malformed(_))), "{bad}");
        }
    }

    #[test]
    fn transfer_encoding_overrides_length_and_non_chunked_reads_until_close() {
        let both = b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n";
        assert_eq!(parse(both, false).unwrap().body_bytes, 2);
        let gzip = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc";
        let info = parse(gzip, true).unwrap();
        assert_eq!((info.body_bytes, info.keep_alive), (3, false));
    }

    #[test]
    fn head_too_large() {
        let mut input = b"HTTP/1.1 200 OK\r\n".to_vec();
        input.extend_from_slice(format!("X-Big: {}\r\n", "a".repeat(MAX_HEAD_BYTES)).as_bytes());
        assert_eq!(parse(&input, false), Err(ParseError::HeadTooLarge));
        let mut p = ResponseParser::new();
        let err = input.chunks(1000).try_for_each(|piece| p.feed(piece).map(drop));
        assert_eq!(err, Err(ParseError::HeadTooLarge));
    }

    #[test]
    fn eof_before_any_byte_vs_mid_response() {
        let mut p = ResponseParser::new();
        assert_eq!(p.finish_on_eof(), Err(ParseError::ClosedBeforeResponse));
        for cut in [1, 20, CL.len() - 11, CL.len() - 1] {
            let mut p = ResponseParser::new();
            p.feed(&CL[..cut]).unwrap();
            assert_eq!(p.finish_on_eof(), Err(ParseError::ClosedMidResponse), "cut at {cut}");
        }
        let mut p = ResponseParser::new();
        p.feed(&CHUNKED[..CHUNKED.len() - 2]).unwrap();
        assert_eq!(p.finish_on_eof(), Err(ParseError::ClosedMidResponse));
        let mut p = ResponseParser::new();
        p.feed(b"HTTP/1.1 100 Continue\r\n\r\n").unwrap();
        assert_eq!(p.finish_on_eof(), Err(ParseError::ClosedMidResponse));
    }

    #[test]
    fn keep_alive_rules() {
        let cases: [(&[u8], bool); 6] = [
            (b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", true),
            (b"HTTP/1.1 200 OK\r\nConnection: Close\r\nContent-Length: 0\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\nContent-Length: 0\r\n\r\n", false),
            (b"HTTP/1.0 200 OK\r\nConnection: Keep-Alive\r\nContent-Length: 0\r\n\r\n", true),
            (b"HTTP/1.0 200 OK\r\nConnection: upgrade, keep-alive\r\nContent-Length: 0\r\n\r\n", true),
            (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n", false),
        ];
        for (input, keep_alive) in cases {
            assert_eq!(parse(input, false).unwrap().keep_alive, keep_alive, "{input:?}");
        }
        let ka_until_close = b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\n\r\nbody";
        assert!(!parse(ka_until_close, true).unwrap().keep_alive);
    }

    #[test]
    fn capture_keeps_limited_body_and_headers() {
        let mut p = ResponseParser::new();
        assert_eq!(run(&mut p, &[CL], false).unwrap().body_bytes, 11);
        assert!(p.body().is_empty() && p.header("content-type").is_none());
        p.start(false);
        p.capture_body(5);
        p.capture_headers(true);
        run(&mut p, &[&CL[..20], &CL[20..]], false).unwrap();
        assert_eq!(p.body(), b"hello");
        assert_eq!(p.header("CONTENT-TYPE"), Some(&b"text/plain"[..]));
        assert_eq!(p.headers().count(), 2);
        assert_eq!(p.header("x-missing"), None);
    }

    #[test]
    fn feed_after_complete_is_idempotent() {
        let mut p = ResponseParser::new();
        let first = p.feed(CL).unwrap();
        assert_eq!(p.feed(b"junk").unwrap(), (0, first.1));
    }

    proptest! {
        #[test]
        fn random_chunked_encodings_decode_to_the_body(
            body in proptest::collection::vec(any::<u8>(), 0..3000),
            sizes in proptest::collection::vec(1usize..700, 1..8),
            ext in any::<bool>(),
            trailer in any::<bool>(),
            cuts in proptest::collection::vec(any::<prop::sample::Index>(), 0..6),
        ) {
            let encoded = chunk_encode(&body, &sizes, ext, trailer);
            let mut points: Vec<usize> = cuts.iter().map(|c| c.index(encoded.len() + 1)).collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut last = 0;
            for point in points.into_iter().chain([encoded.len()]) {
                pieces.push(&encoded[last..point]);
                last = point;
            }
            let mut p = ResponseParser::new();
            p.capture_body(usize::MAX);
            let info = run(&mut p, &pieces, false).unwrap();
            prop_assert_eq!(info.body_bytes, body.len() as u64);
            prop_assert_eq!(p.body(), &body[..]);
        }
    }
}
