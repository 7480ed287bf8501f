//! `--echo`: answers that describe the request ([`Echo`]), so that plans and tests can extract
//! values from real answers (`$.id`) and check what the sink received.
//!
//! An echo answer has the configured status, `Content-Type: application/json`, an
//! `X-Request-Id` header, and the body `{"id":N,"method":"POST","path":"/items/42",
//! "query":"a=1","body_bytes":123}`, where `N` counts the sink's requests from 1 (across all its
//! threads). Only normal answers echo: injected `500`s and `503`s keep their fixed form. The
//! fixed-answer path is untouched when echo is off.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use crate::record::Captured;
use crate::request::{Body, Head};
use crate::response::ConnMode;

/// Echo answers of one sink: the status to use and the request counter.
#[derive(Debug)]
pub(crate) struct Echo {
    status: u16,
    next_id: AtomicU64,
}

impl Echo {
    /// Echo answers with `status`, numbered from 1.
    pub(crate) fn new(status: u16) -> Self {
        Echo { status, next_id: AtomicU64::new(1) }
    }

    /// A new id and the JSON body describing a request (`target` is its path and query).
    pub(crate) fn describe(&self, method: &str, target: &str, body_bytes: u64) -> (u64, String) {
        let id = self.next_id.fetch_add(1, Relaxed);
        let (path, query) = target.split_once('?').unwrap_or((target, ""));
        let body = serde_json::json!({
            "id": id,
            "method": method,
            "path": path,
            "query": query,
            "body_bytes": body_bytes,
        })
        .to_string();
        (id, body)
    }

    /// The whole answer (head and body) to the request `captured` framed as `head`.
    pub(crate) fn answer(&self, captured: &Captured, head: &Head, mode: ConnMode) -> Box<[u8]> {
        let body_bytes = match head.body {
            Body::Length(n) => n,
            // Chunked: the decoded size (the capture keeps at most 1 MiB of it).
            Body::Chunked => captured.body.len() as u64,
            Body::None => 0,
        };
        let (id, body) = self.describe(&captured.method, &captured.target, body_bytes);
        let bodyless = matches!(self.status, 204 | 304);
        let mut answer =
            format!("HTTP/1.1 {} {}\r\nX-Request-Id: {id}\r\n", self.status, crate::response::reason(self.status));
        if !bodyless {
            answer.push_str(&format!("Content-Type: application/json\r\nContent-Length: {}\r\n", body.len()));
        }
        answer.push_str(match mode {
            ConnMode::Default => "",
            ConnMode::KeepAlive => "Connection: keep-alive\r\n",
            ConnMode::Close => "Connection: close\r\n",
        });
        answer.push_str("\r\n");
        if !bodyless && !head.head_only {
            answer.push_str(&body);
        }
        answer.into_bytes().into_boxed_slice()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(method: &str, target: &str, body: &[u8]) -> Captured {
        Captured { method: method.into(), target: target.into(), body: body.to_vec(), ..Captured::default() }
    }

    fn head(body: Body, head_only: bool) -> Head {
        Head { keep_alive: true, http10: false, head_only, expect_continue: false, body, upgrade: false }
    }

    fn split(answer: &[u8]) -> (String, String) {
        let text = String::from_utf8(answer.to_vec()).unwrap();
        let (head, body) = text.split_once("\r\n\r\n").unwrap();
        (head.to_string(), body.to_string())
    }

    #[test]
    fn describes_the_request_with_a_counted_id() {
        let echo = Echo::new(200);
        let (head_text, body) = split(&echo.answer(
            &captured("POST", "/items/42?a=1", b"xyz"),
            &head(Body::Length(123), false),
            ConnMode::Default,
        ));
        assert!(head_text.starts_with("HTTP/1.1 200 OK\r\nX-Request-Id: 1\r\n"), "{head_text}");
        assert!(head_text.contains("Content-Type: application/json\r\n"));
        assert!(head_text.contains(&format!("Content-Length: {}", body.len())));
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(json, serde_json::json!({"id":1,"method":"POST","path":"/items/42","query":"a=1","body_bytes":123}));
        let (head_text, body) =
            split(&echo.answer(&captured("GET", "/", b""), &head(Body::None, false), ConnMode::Close));
        assert!(head_text.contains("X-Request-Id: 2\r\n") && head_text.ends_with("Connection: close"), "{head_text}");
        let json: serde_json::Value = serde_json::from_str(&body).unwrap();
        assert_eq!(
            (json["id"].as_u64(), json["query"].as_str(), json["body_bytes"].as_u64()),
            (Some(2), Some(""), Some(0))
        );
    }

    #[test]
    fn chunked_bodies_count_decoded_bytes_and_head_has_no_body() {
        let echo = Echo::new(201);
        let (_, body) =
            split(&echo.answer(&captured("PUT", "/c", b"12345"), &head(Body::Chunked, false), ConnMode::Default));
        assert!(body.contains(r#""body_bytes":5"#), "{body}");
        let (head_text, body) =
            split(&echo.answer(&captured("HEAD", "/h", b""), &head(Body::None, true), ConnMode::Default));
        assert!(head_text.starts_with("HTTP/1.1 201 Created") && head_text.contains("Content-Length: "));
        assert!(body.is_empty());
    }
}
