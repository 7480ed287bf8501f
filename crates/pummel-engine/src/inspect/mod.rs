//! Looking at responses: values extracted into variables ([`extract`]) and checks ([`check`]).
//!
//! Both work on a [`ResponseView`] (status, head, body, latency of one response) and share a
//! [`JsonBody`], so a body several extractors and checks read as JSON is parsed once. Patterns
//! (JSONPaths, regexes) are compiled when the plan is validated; [`PatternError`] says where
//! in the pattern text a bad one goes wrong.

pub mod check;
pub mod encoding;
pub mod extract;
pub mod jsonpath;

use std::borrow::Cow;
use std::cell::OnceCell;
use std::time::Duration;

/// One response as extraction and checks see it.
#[derive(Debug, Clone, Copy)]
pub struct ResponseView<'a> {
    /// HTTP status code.
    pub status: u16,
    /// Header fields in arrival order (name, value); empty when the head was not kept.
    pub headers: &'a [(&'a [u8], &'a [u8])],
    /// The body (decoded from chunked form); empty when it was not kept.
    pub body: &'a [u8],
    /// The request's latency: from when it was due (its intended start) to the complete
    /// response, as pummel's latency figures count it.
    pub elapsed: Duration,
}

impl<'a> ResponseView<'a> {
    /// The value of the first header named `name` (compared ignoring ASCII case).
    pub fn header(&self, name: &str) -> Option<&'a [u8]> {
        let name = name.as_bytes();
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|&(_, v)| v)
    }
}

/// A body read as JSON, parsed at most once, on first use.
#[derive(Debug)]
pub struct JsonBody<'a> {
    body: &'a [u8],
    parsed: OnceCell<Option<serde_json::Value>>,
}

impl<'a> JsonBody<'a> {
    /// Wraps `body`; nothing is parsed yet.
    pub fn new(body: &'a [u8]) -> Self {
        JsonBody { body, parsed: OnceCell::new() }
    }

    /// The parsed document; `None` when the body is not valid JSON.
    pub fn value(&self) -> Option<&serde_json::Value> {
        self.parsed.get_or_init(|| serde_json::from_slice(self.body).ok()).as_ref()
    }
}

/// A JSONPath or regex that does not compile.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct PatternError {
    /// What is wrong, without position.
    pub message: String,
    /// Byte offset into the pattern text of the problem (0 when unknown).
    pub offset: usize,
}

/// Compiles a regex, reporting where in `text` a syntax error is.
pub fn compile_regex(text: &str) -> Result<regex::Regex, PatternError> {
    // The syntax parser knows the span of an error; `regex` only a rendered message.
    if let Err(err) = regex_syntax::Parser::new().parse(text) {
        let (message, offset) = match &err {
            regex_syntax::Error::Parse(e) => (e.kind().to_string(), e.span().start.offset),
            regex_syntax::Error::Translate(e) => (e.kind().to_string(), e.span().start.offset),
            other => (other.to_string(), 0),
        };
        return Err(PatternError { message, offset: offset.min(text.len()) });
    }
    regex::Regex::new(text).map_err(|err| PatternError { message: err.to_string(), offset: 0 })
}

/// A JSON value as text: strings without quotes, numbers and booleans as written, `null` as
/// `null`, objects and arrays as compact JSON.
pub fn json_to_text(v: &serde_json::Value) -> String {
    match v {
        serde_json::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// `bytes` as text, replacing invalid UTF-8 (no copy when it is valid).
pub(crate) fn lossy(bytes: &[u8]) -> Cow<'_, str> {
    String::from_utf8_lossy(bytes)
}

/// The first capture group of `regex` in `text` if the regex has groups, else the whole match.
pub(crate) fn regex_capture(regex: &regex::Regex, text: &str) -> Option<String> {
    let captures = regex.captures(text)?;
    let found = if regex.captures_len() > 1 { captures.get(1) } else { captures.get(0) };
    found.map(|m| m.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_lookup_ignores_case_and_takes_the_first() {
        let headers: &[(&[u8], &[u8])] =
            &[(b"Content-Type", b"application/json"), (b"Set-Cookie", b"a=1"), (b"set-cookie", b"b=2")];
        let view = ResponseView { status: 200, headers, body: b"", elapsed: Duration::ZERO };
        assert_eq!(view.header("content-type"), Some(&b"application/json"[..]));
        assert_eq!(view.header("SET-COOKIE"), Some(&b"a=1"[..]));
        assert_eq!(view.header("x-missing"), None);
    }

    #[test]
    fn json_body_parses_once_and_rejects_invalid() {
        let body = JsonBody::new(br#"{"a": [1, 2]}"#);
        let first = body.value().unwrap() as *const _;
        assert_eq!(body.value().unwrap() as *const _, first, "parsed once");
        assert_eq!(body.value().unwrap()["a"][1], 2);
        assert!(JsonBody::new(b"{not json").value().is_none());
        assert!(JsonBody::new(b"").value().is_none());
    }

    #[test]
    fn regex_errors_point_into_the_pattern() {
        assert!(compile_regex(r"id=(\d+)").is_ok());
        let err = compile_regex(r"abc(def").unwrap_err();
        assert_eq!(err.offset, 3, "{err:?}");
        let err = compile_regex(r"ab[z-a]").unwrap_err();
        assert!(err.offset >= 2, "{err:?}");
        assert!(!err.message.is_empty());
    }

    #[test]
    fn json_to_text_forms() {
        use serde_json::json;
        assert_eq!(json_to_text(&json!("a b")), "a b");
        assert_eq!(json_to_text(&json!(12)), "12");
        assert_eq!(json_to_text(&json!(1.5)), "1.5");
        assert_eq!(json_to_text(&json!(true)), "true");
        assert_eq!(json_to_text(&json!(null)), "null");
        assert_eq!(json_to_text(&json!({"a": [1, "x"]})), r#"{"a":[1,"x"]}"#);
    }

    #[test]
    fn regex_capture_prefers_the_first_group() {
        let with_group = regex::Regex::new(r"id=(\d+)").unwrap();
        assert_eq!(regex_capture(&with_group, "x id=42 y").as_deref(), Some("42"));
        let without = regex::Regex::new(r"\d+").unwrap();
        assert_eq!(regex_capture(&without, "x id=42 y").as_deref(), Some("42"));
        assert_eq!(regex_capture(&without, "none"), None);
        // An optional group that did not take part yields nothing rather than the whole match.
        let optional = regex::Regex::new(r"id(=\d+)?").unwrap();
        assert_eq!(regex_capture(&optional, "id"), None);
    }
}
