//! Renders an HTTP/1.1 request once, into the exact bytes the engine writes for every request.
//!
//! A load test sends the same request many thousands of times per second, so the request is
//! validated and serialized up front by [`encode_request`]; the hot path only writes a byte
//! slice. Validation happens here too, because this is where user input (CLI flags, plan
//! files) becomes bytes on the wire: a CR or LF in a header must be an error the user sees,
//! never a smuggled header line.

use thiserror::Error;

/// The `User-Agent` sent unless the user gives one: `pummel/<version of this crate>`.
///
/// Servers' access logs then show which tool (and which version) produced the traffic.
pub const USER_AGENT: &str = concat!("pummel/", env!("CARGO_PKG_VERSION"));

/// Why a request could not be built; shown to users, so each message names the culprit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum RequestError {
    /// The method is empty or contains a byte that is not allowed in an HTTP token.
    #[error(
        "invalid HTTP method {0:?}: a method must be a non-empty token \
         (letters, digits or !#$%&'*+-.^_`|~)"
    )]
    InvalidMethod(String),
    /// The request target is empty or contains a space, control byte or non-ASCII byte.
    #[error(
        "invalid request target {0:?}: it must be non-empty visible ASCII \
         (percent-encode spaces and other bytes)"
    )]
    InvalidTarget(String),
    /// A header name is empty or contains a byte that is not allowed in an HTTP token.
    #[error(
        "invalid header name {0:?}: a header name must be a non-empty token \
         (letters, digits or !#$%&'*+-.^_`|~), without spaces, colons, CR or LF"
    )]
    InvalidHeaderName(String),
    /// A header value contains CR, LF or another control byte.
    #[error("invalid value for header {name:?}: {reason}")]
    InvalidHeaderValue {
        /// The header whose value is wrong.
        name: String,
        /// What is wrong with the value.
        reason: &'static str,
    },
}

/// Renders a complete HTTP/1.1 request (head and body) into bytes written unchanged per request.
///
/// - The request line is `METHOD path_and_query HTTP/1.1`.
/// - `Host: host_header` is added unless `headers` has a `Host` (names compare case-insensitively).
/// - `User-Agent: ` [`USER_AGENT`] is added unless given.
/// - `Content-Length` is added when `body` is non-empty or the method is POST, PUT or PATCH,
///   unless the user gave `Content-Length` or `Transfer-Encoding` (then the body is theirs to frame).
/// - `Connection: close` is added when `keep_alive` is false, unless a `Connection` header is given.
/// - User headers follow, in their order; then the empty line and the body.
///
/// Every method, target, header name and value is validated first, so that no user input can
/// inject a header line or break the framing.
pub fn encode_request(
    method: &str,
    path_and_query: &str,
    host_header: &str,
    headers: &[(String, String)],
    body: &[u8],
    keep_alive: bool,
) -> Result<Vec<u8>, RequestError> {
    let mut out = encode_head(method, path_and_query, host_header, headers, body.len(), keep_alive)?;
    out.extend_from_slice(body);
    Ok(out)
}

/// Renders the head of a request whose body of `body_len` bytes is written separately, as
/// [`encode_request`] does (same headers added, same validation). Plan requests are rendered
/// per request; writing a large body (an object-store payload) after its head spares copying
/// it into every request's bytes.
pub fn encode_head(
    method: &str,
    path_and_query: &str,
    host_header: &str,
    headers: &[(String, String)],
    body_len: usize,
    keep_alive: bool,
) -> Result<Vec<u8>, RequestError> {
    if !is_token(method) {
        return Err(RequestError::InvalidMethod(method.to_owned()));
    }
    if path_and_query.is_empty() || !path_and_query.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(RequestError::InvalidTarget(path_and_query.to_owned()));
    }
    for (name, value) in headers {
        if !is_token(name) {
            return Err(RequestError::InvalidHeaderName(name.clone()));
        }
        check_value(name, value)?;
    }
    let given = |wanted: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(wanted));

    let user_len: usize = headers.iter().map(|(n, v)| n.len() + v.len() + 4).sum();
    let mut out = Vec::with_capacity(128 + method.len() + path_and_query.len() + user_len + body_len.min(64 * 1024));
    for part in [method, " ", path_and_query, " HTTP/1.1\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
    if !given("host") {
        check_value("Host", host_header)?;
        push_header(&mut out, "Host", host_header);
    }
    if !given("user-agent") {
        push_header(&mut out, "User-Agent", USER_AGENT);
    }
    let wants_length = body_len > 0 || matches!(method, "POST" | "PUT" | "PATCH");
    if wants_length && !given("content-length") && !given("transfer-encoding") {
        push_header(&mut out, "Content-Length", &body_len.to_string());
    }
    if !keep_alive && !given("connection") {
        push_header(&mut out, "Connection", "close");
    }
    for (name, value) in headers {
        push_header(&mut out, name, value);
    }
    out.extend_from_slice(b"\r\n");
    Ok(out)
}

/// Appends one `name: value\r\n` line.
fn push_header(out: &mut Vec<u8>, name: &str, value: &str) {
    for part in [name, ": ", value, "\r\n"] {
        out.extend_from_slice(part.as_bytes());
    }
}

/// True when `s` is a non-empty RFC 9110 token (methods and header names).
fn is_token(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

/// Rejects a header value containing CR, LF or any control byte other than horizontal tab.
fn check_value(name: &str, value: &str) -> Result<(), RequestError> {
    let reason = if value.bytes().any(|b| b == b'\r' || b == b'\n') {
        "it contains a CR or LF, which would start a new header line"
    } else if value.bytes().any(|b| (b < 0x20 && b != b'\t') || b == 0x7f) {
        "it contains a control character (only tab, space and visible characters are allowed)"
    } else {
        return Ok(());
    };
    Err(RequestError::InvalidHeaderValue { name: name.to_owned(), reason })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn text(bytes: Vec<u8>) -> String {
        String::from_utf8(bytes).unwrap()
    }

    #[test]
    fn get_adds_host_user_agent_and_nothing_else() {
        let req = encode_request("GET", "/a?b=1", "example.com:8080", &[], b"", true).unwrap();
        assert_eq!(
            text(req),
            format!("GET /a?b=1 HTTP/1.1\r\nHost: example.com:8080\r\nUser-Agent: {USER_AGENT}\r\n\r\n")
        );
    }

    #[test]
    fn user_host_and_user_agent_are_kept_not_duplicated() {
        let headers = h(&[("host", "other"), ("USER-AGENT", "me"), ("X-A", "1")]);
        let req = text(encode_request("GET", "/", "example.com", &headers, b"", true).unwrap());
        assert_eq!(req, "GET / HTTP/1.1\r\nhost: other\r\nUSER-AGENT: me\r\nX-A: 1\r\n\r\n");
    }

    #[test]
    fn content_length_rules() {
        let post = text(encode_request("POST", "/", "h", &[], b"", true).unwrap());
        assert!(post.contains("\r\nContent-Length: 0\r\n"), "{post}");
        let put = text(encode_request("PUT", "/", "h", &[], b"abc", true).unwrap());
        assert!(put.ends_with("\r\nContent-Length: 3\r\n\r\nabc"), "{put}");
        let get_body = text(encode_request("GET", "/", "h", &[], b"xy", true).unwrap());
        assert!(get_body.contains("\r\nContent-Length: 2\r\n"), "{get_body}");
        let get = text(encode_request("GET", "/", "h", &[], b"", true).unwrap());
        assert!(!get.contains("Content-Length"), "{get}");
        let given = h(&[("content-length", "3")]);
        let kept = text(encode_request("POST", "/", "h", &given, b"abc", true).unwrap());
        assert_eq!(kept.matches("ength:").count(), 1, "{kept}");
        let te = h(&[("Transfer-Encoding", "chunked")]);
        let chunked = text(encode_request("POST", "/", "h", &te, b"3\r\nabc\r\n0\r\n\r\n", true).unwrap());
        assert!(!chunked.contains("Content-Length"), "{chunked}");
    }

    #[test]
    fn connection_close_unless_keep_alive_or_given() {
        let close = text(encode_request("GET", "/", "h", &[], b"", false).unwrap());
        assert!(close.contains("\r\nConnection: close\r\n"), "{close}");
        let given = h(&[("connection", "Upgrade")]);
        let kept = text(encode_request("GET", "/", "h", &given, b"", false).unwrap());
        assert!(!kept.contains("Connection: close") && kept.contains("connection: Upgrade"));
        let ka = text(encode_request("GET", "/", "h", &[], b"", true).unwrap());
        assert!(!ka.contains("Connection"), "{ka}");
    }

    #[test]
    fn crlf_injection_is_rejected_naming_the_header() {
        let bad = h(&[("X-Evil", "a\r\nInjected: 1")]);
        let err = encode_request("GET", "/", "h", &bad, b"", true).unwrap_err();
        assert!(matches!(&err, RequestError::InvalidHeaderValue { name, .. } if name == "X-Evil"));
        assert!(err.to_string().contains("X-Evil") && err.to_string().contains("CR or LF"));
        let nul = h(&[("X-Nul", "a\0b")]);
        let err = encode_request("GET", "/", "h", &nul, b"", true).unwrap_err();
        assert!(err.to_string().contains("control character"), "{err}");
        let err = encode_request("GET", "/", "h\nX: y", &[], b"", true).unwrap_err();
        assert!(err.to_string().contains("\"Host\""), "{err}");
        assert!(encode_request("GET", "/", "h", &h(&[("X-Tab", "a\tb")]), b"", true).is_ok());
    }

    #[test]
    fn invalid_names_methods_and_targets_are_rejected() {
        for name in ["", "X Space", "X:Colon", "X\r\nY", "É"] {
            let err = encode_request("GET", "/", "h", &h(&[(name, "v")]), b"", true).unwrap_err();
            assert_eq!(err, RequestError::InvalidHeaderName(name.to_owned()));
        }
        for method in ["", "GE T", "GET\r\n", "G(ET"] {
            let err = encode_request(method, "/", "h", &[], b"", true).unwrap_err();
            assert_eq!(err, RequestError::InvalidMethod(method.to_owned()));
        }
        for target in ["", "/a b", "/\r\nX: y", "/é"] {
            let err = encode_request("GET", target, "h", &[], b"", true).unwrap_err();
            assert_eq!(err, RequestError::InvalidTarget(target.to_owned()));
        }
        assert!(encode_request("M-SEARCH", "*", "h", &[], b"", true).is_ok());
    }
}
