//! The client side of the upgrade (RFC 6455 §4.1), written here rather than with tungstenite's
//! handshake: tungstenite hands its 4 KiB handshake read buffer on to the session as its read
//! buffer, which would be most of a held session's memory. Here the answer is read into a
//! buffer that is dropped after the handshake, and only the bytes that followed the answer (the
//! start of the first frames, usually none) go on to the session.

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio_tungstenite::tungstenite::handshake::client::generate_key;
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;
use tokio_tungstenite::tungstenite::http::{HeaderName, HeaderValue};

use super::WsTarget;
use crate::dial::{Stream, TransportError};

/// The largest upgrade answer head accepted.
const MAX_ANSWER_HEAD: usize = 16 * 1024;
/// Header fields read from the answer, at most.
const MAX_ANSWER_HEADERS: usize = 64;
/// The header fields the upgrade sets itself; a user header of the same name replaces it.
const OWN_HEADERS: [&str; 5] = ["host", "upgrade", "connection", "sec-websocket-key", "sec-websocket-version"];

fn handshake_error(detail: impl Into<String>) -> TransportError {
    TransportError::ws_handshake(detail)
}

/// The upgrade request for `target` with the user's `headers`, and its key.
pub(super) fn request(target: &WsTarget, headers: &[(String, String)]) -> Result<(String, String), TransportError> {
    for (name, value) in headers {
        let bad = |what: &str| TransportError::other(format!("invalid header {what} {name:?}: {value:?}"));
        HeaderName::from_bytes(name.as_bytes()).map_err(|_| bad("name"))?;
        HeaderValue::from_str(value).map_err(|_| bad("value"))?;
    }
    let key = generate_key();
    let replaced = |own: &str| headers.iter().any(|(name, _)| name.eq_ignore_ascii_case(own));
    let mut text = format!("GET {} HTTP/1.1\r\n", target.path_and_query);
    for (own, value) in
        OWN_HEADERS.iter().zip([target.host_header.as_str(), "websocket", "Upgrade", key.as_str(), "13"])
    {
        if !replaced(own) {
            let name = match *own {
                "host" => "Host",
                "upgrade" => "Upgrade",
                "connection" => "Connection",
                "sec-websocket-key" => "Sec-WebSocket-Key",
                _ => "Sec-WebSocket-Version",
            };
            text.push_str(&format!("{name}: {value}\r\n"));
        }
    }
    for (name, value) in headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    text.push_str("\r\n");
    let key = headers
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case("sec-websocket-key"))
        .map_or(key, |(_, value)| value.clone());
    Ok((text, key))
}

/// Sends `request` and reads the answer: `101` with the right `Sec-WebSocket-Accept` for
/// `key`, or the failure, classified as HTTP/1.1 answers are (a close before the answer is
/// `reset`, bytes that are not HTTP `malformed_response`) except that an answer that is not a
/// valid `101` is `ws_handshake`. Returns the bytes that came after the answer's head.
pub(super) async fn upgrade(io: &mut Stream, request: &str, key: &str) -> Result<Vec<u8>, TransportError> {
    let broken = |e: std::io::Error| TransportError::io(&e);
    io.write_all(request.as_bytes()).await.map_err(broken)?;
    io.flush().await.map_err(broken)?;
    let mut answer = Vec::with_capacity(1024);
    loop {
        if answer.len() == answer.capacity() {
            answer.reserve(answer.capacity());
        }
        if io.read_buf(&mut answer).await.map_err(broken)? == 0 {
            return Err(if answer.is_empty() {
                TransportError::closed_before_answer()
            } else {
                TransportError::closed_mid_answer()
            });
        }
        let mut fields = [httparse::EMPTY_HEADER; MAX_ANSWER_HEADERS];
        let mut response = httparse::Response::new(&mut fields);
        match response.parse(&answer) {
            Ok(httparse::Status::Complete(head_len)) => {
                check(&response, key)?;
                return Ok(answer[head_len..].to_vec());
            }
            Ok(httparse::Status::Partial) if answer.len() > MAX_ANSWER_HEAD => {
                return Err(TransportError::malformed("upgrade answer head too large"));
            }
            Ok(httparse::Status::Partial) => {}
            Err(e) => return Err(TransportError::malformed(format!("invalid upgrade answer: {e}"))),
        }
    }
}

/// Checks a complete upgrade answer (RFC 6455 §4.1, the client's checks 1 to 4).
fn check(response: &httparse::Response<'_, '_>, key: &str) -> Result<(), TransportError> {
    let status = response.code.unwrap_or(0);
    if status != 101 {
        return Err(handshake_error(format!("upgrade refused: HTTP {status}")));
    }
    let value =
        |name: &str| response.headers.iter().find(|h| h.name.eq_ignore_ascii_case(name)).map(|h| h.value.trim_ascii());
    let has_token = |name: &str, token: &[u8]| {
        value(name).is_some_and(|v| v.split(|&b| b == b',').any(|t| t.trim_ascii().eq_ignore_ascii_case(token)))
    };
    if !has_token("upgrade", b"websocket") || !has_token("connection", b"upgrade") {
        return Err(handshake_error("invalid upgrade answer: 101 without Upgrade: websocket and Connection: Upgrade"));
    }
    if value("sec-websocket-accept") != Some(derive_accept_key(key.as_bytes()).as_bytes()) {
        return Err(handshake_error("invalid upgrade answer: 101 without the right Sec-WebSocket-Accept"));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target() -> WsTarget {
        WsTarget::from_url("ws://127.0.0.1:9/chat?x=1").unwrap()
    }

    #[test]
    fn the_request_has_the_upgrade_fields_and_the_users() {
        let headers = [("Authorization".to_string(), "Bearer t".to_string()), ("Host".to_string(), "a.example".into())];
        let (text, key) = request(&target(), &headers).unwrap();
        assert!(text.starts_with("GET /chat?x=1 HTTP/1.1\r\n"), "{text}");
        assert!(text.contains(&format!("Sec-WebSocket-Key: {key}\r\n")), "{text}");
        assert!(text.contains("Upgrade: websocket\r\nConnection: Upgrade\r\n") && text.ends_with("\r\n\r\n"));
        assert!(text.contains("Authorization: Bearer t\r\n") && text.contains("Host: a.example\r\n"));
        assert_eq!(text.matches("Host:").count(), 1, "{text}");
        assert!(request(&target(), &[("Bad Name".into(), "v".into())]).is_err());
        assert!(request(&target(), &[("X".into(), "a\r\nb".into())]).is_err());
    }

    #[test]
    fn answers_are_checked() {
        let key = "dGhlIHNhbXBsZSBub25jZQ==";
        let parse = |text: &str| {
            let mut fields = [httparse::EMPTY_HEADER; 8];
            let mut response = httparse::Response::new(&mut fields);
            response.parse(text.as_bytes()).unwrap();
            check(&response, key).map_err(|e| e.detail)
        };
        let good = "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
                    Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n";
        assert_eq!(parse(good), Ok(()));
        assert!(parse(&good.replace("s3pP", "xxxx")).unwrap_err().contains("Sec-WebSocket-Accept"));
        assert!(parse(&good.replace("Upgrade: websocket", "Upgrade: h2c")).unwrap_err().contains("Upgrade"));
        assert!(parse("HTTP/1.1 403 Forbidden\r\n\r\n").unwrap_err().contains("HTTP 403"));
    }
}
