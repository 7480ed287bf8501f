//! The sink's answers, built once at start ([`Responses`]) and picked per request ([`Answer`]).
//!
//! Every answer the sink can give is a fixed byte string, so the hot path never formats
//! anything: it picks a head (by outcome and connection handling) and the shared body, and hands
//! both to one vectored write. The body is stored once, however many heads refer to it.

/// Whether a request gets the configured answer or an injected error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Outcome {
    /// The configured status and body.
    Normal,
    /// `500 Internal Server Error` (drawn with `error_rate`).
    Error,
    /// `503 Service Unavailable`: the request came beyond the configured `capacity`.
    Overloaded,
}

/// What an answer says about the connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ConnMode {
    /// HTTP/1.1 keep-alive: no `Connection` header needed.
    Default,
    /// An HTTP/1.0 client asked for keep-alive: answer `Connection: keep-alive`.
    KeepAlive,
    /// `Connection: close`, and the sink closes after the answer.
    Close,
}

/// One thing the sink writes to a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Answer {
    /// `100 Continue`, so that a client waiting for it sends its body.
    Continue,
    /// A final answer to a request.
    Reply {
        /// Normal answer or injected `500`.
        outcome: Outcome,
        /// The connection header it carries.
        mode: ConnMode,
        /// The request was `HEAD`: send the head only.
        head_only: bool,
    },
    /// `400 Bad Request` with `Connection: close`.
    BadRequest,
}

impl Answer {
    /// The sink closes the connection once this answer is written.
    pub(crate) fn closes(self) -> bool {
        matches!(self, Answer::BadRequest | Answer::Reply { mode: ConnMode::Close, .. })
    }

    /// It answers a request (counted in `responses`), unlike `100 Continue`.
    pub(crate) fn is_final(self) -> bool {
        !matches!(self, Answer::Continue)
    }
}

const CONTINUE: &[u8] = b"HTTP/1.1 100 Continue\r\n\r\n";
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 12\r\n\
    Content-Type: text/plain\r\nConnection: close\r\n\r\nbad request\n";
const ERROR_BODY: &[u8] = b"error\n";
const OVERLOADED_BODY: &[u8] = b"overloaded\n";
const MODES: [ConnMode; 3] = [ConnMode::Default, ConnMode::KeepAlive, ConnMode::Close];

/// All the answers of one sink configuration, pre-built.
#[derive(Debug)]
pub(crate) struct Responses {
    /// Heads indexed by `[outcome][mode]`.
    heads: [[Box<[u8]>; 3]; 3],
    /// The body of normal answers.
    body: Box<[u8]>,
}

impl Responses {
    /// Builds the answers for `status` with a body of `body_size` bytes of `ok\n` repeated
    /// (no body for `204` and `304`, which must not have one).
    pub(crate) fn new(status: u16, body_size: usize) -> Self {
        let bodyless = matches!(status, 204 | 304);
        let body: Box<[u8]> =
            if bodyless { Box::default() } else { b"ok\n".iter().copied().cycle().take(body_size).collect() };
        let normal_length = (!bodyless).then_some(body.len());
        Responses {
            heads: [
                MODES.map(|mode| build_head(status, normal_length, mode)),
                MODES.map(|mode| build_head(500, Some(ERROR_BODY.len()), mode)),
                MODES.map(|mode| build_head(503, Some(OVERLOADED_BODY.len()), mode)),
            ],
            body,
        }
    }

    /// The head and body bytes of `answer` (the body may be empty).
    pub(crate) fn bytes(&self, answer: Answer) -> (&[u8], &[u8]) {
        match answer {
            Answer::Continue => (CONTINUE, &[]),
            Answer::BadRequest => (BAD_REQUEST, &[]),
            Answer::Reply { outcome, mode, head_only } => {
                let (row, body) = match outcome {
                    Outcome::Normal => (0, &self.body[..]),
                    Outcome::Error => (1, ERROR_BODY),
                    Outcome::Overloaded => (2, OVERLOADED_BODY),
                };
                let column = match mode {
                    ConnMode::Default => 0,
                    ConnMode::KeepAlive => 1,
                    ConnMode::Close => 2,
                };
                (&self.heads[row][column], if head_only { &[] } else { body })
            }
        }
    }
}

/// One response head; `length` is `None` for answers that must not carry `Content-Length`.
fn build_head(status: u16, length: Option<usize>, mode: ConnMode) -> Box<[u8]> {
    let mut head = format!("HTTP/1.1 {status} {}\r\n", reason(status));
    if let Some(length) = length {
        head.push_str(&format!("Content-Length: {length}\r\nContent-Type: text/plain\r\n"));
    }
    head.push_str(match mode {
        ConnMode::Default => "",
        ConnMode::KeepAlive => "Connection: keep-alive\r\n",
        ConnMode::Close => "Connection: close\r\n",
    });
    head.push_str("\r\n");
    head.into_bytes().into_boxed_slice()
}

/// The usual reason phrase of a status code (clients ignore it; people reading traces do not).
pub(crate) fn reason(status: u16) -> &'static str {
    match status {
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        206 => "Partial Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        307 => "Temporary Redirect",
        308 => "Permanent Redirect",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        429 => "Too Many Requests",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "Status",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(answer: Answer, responses: &Responses) -> String {
        let (head, body) = responses.bytes(answer);
        String::from_utf8([head, body].concat()).unwrap()
    }

    const fn reply(outcome: Outcome, mode: ConnMode, head_only: bool) -> Answer {
        Answer::Reply { outcome, mode, head_only }
    }

    #[test]
    fn default_answer_is_small_and_exact() {
        let r = Responses::new(200, 3);
        assert_eq!(
            text(reply(Outcome::Normal, ConnMode::Default, false), &r),
            "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nContent-Type: text/plain\r\n\r\nok\n"
        );
        assert_eq!(
            text(reply(Outcome::Error, ConnMode::Close, false), &r),
            "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 6\r\nContent-Type: text/plain\r\n\
             Connection: close\r\n\r\nerror\n"
        );
        assert!(
            text(reply(Outcome::Normal, ConnMode::KeepAlive, false), &r).contains("\r\nConnection: keep-alive\r\n")
        );
        assert!(text(reply(Outcome::Normal, ConnMode::Default, true), &r).ends_with("\r\n\r\n"));
    }

    #[test]
    fn body_repeats_ok_to_the_exact_size() {
        let r = Responses::new(200, 10);
        let (head, body) = r.bytes(reply(Outcome::Normal, ConnMode::Default, false));
        assert_eq!(body, b"ok\nok\nok\no");
        assert!(String::from_utf8_lossy(head).contains("Content-Length: 10\r\n"));
        let empty = Responses::new(200, 0);
        assert!(empty.bytes(reply(Outcome::Normal, ConnMode::Default, false)).1.is_empty());
    }

    #[test]
    fn bodyless_statuses_have_no_body_or_length() {
        for status in [204, 304] {
            let r = Responses::new(status, 100);
            let t = text(reply(Outcome::Normal, ConnMode::Default, false), &r);
            assert!(!t.contains("Content-Length") && t.ends_with("\r\n\r\n"), "{t}");
        }
        let t = text(reply(Outcome::Normal, ConnMode::Default, false), &Responses::new(599, 0));
        assert!(t.starts_with("HTTP/1.1 599 Status\r\n"), "{t}");
    }

    #[test]
    fn closing_and_final_answers() {
        assert!(Answer::BadRequest.closes() && Answer::BadRequest.is_final());
        assert!(!Answer::Continue.closes() && !Answer::Continue.is_final());
        assert!(reply(Outcome::Normal, ConnMode::Close, false).closes());
        assert!(!reply(Outcome::Error, ConnMode::KeepAlive, false).closes());
    }
}
