//! Which recorded headers go into a plan.
//!
//! A browser or curl adds headers that describe its own connection, not the request: pummel
//! sets Host, Content-Length and Connection itself; Accept-Encoding would ask for compressed
//! answers a load test has no use for (unless a test means to measure compression); `Sec-*`,
//! client hints, `Priority`, `Upgrade-Insecure-Requests` and HTTP/2 pseudo-headers
//! (`:authority`) are the browser's own. They are dropped unless kept with `--keep-header`;
//! the ones pummel must set itself cannot be kept.

use crate::ConvertError;

/// Headers pummel writes itself: never copied from a recording.
const SET_BY_PUMMEL: &[&str] = &["host", "content-length", "connection", "transfer-encoding"];

/// Other headers dropped unless kept: hop-by-hop ones and those a browser adds by itself.
const DROPPED: &[&str] = &[
    "accept-encoding",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "upgrade",
    "upgrade-insecure-requests",
    "priority",
    "purpose",
    "pragma",
    "cache-control",
    "if-none-match",
    "if-modified-since",
];

/// Prefixes of dropped header names: fetch metadata and client hints (`Sec-Fetch-Mode`,
/// `Sec-CH-UA`), HTTP/2 and HTTP/3 pseudo-headers.
const DROPPED_PREFIXES: &[&str] = &["sec-", ":"];

/// The headers to keep although dropped by default.
#[derive(Debug, Clone, Default)]
pub struct Keep {
    names: Vec<String>,
}

impl Keep {
    /// From `--keep-header` names; one pummel sets itself is refused.
    pub fn new(names: &[String]) -> Result<Keep, ConvertError> {
        let names: Vec<String> = names.iter().map(|n| n.trim().to_ascii_lowercase()).collect();
        if let Some(name) = names.iter().find(|n| SET_BY_PUMMEL.contains(&n.as_str()) || n.starts_with(':')) {
            return Err(ConvertError::Option(format!(
                "--keep-header {name}: pummel sets this header itself (or it is not a header)"
            )));
        }
        Ok(Keep { names })
    }

    /// Whether header `name` goes into the plan.
    pub fn keeps(&self, name: &str) -> bool {
        let lower = name.to_ascii_lowercase();
        if SET_BY_PUMMEL.contains(&lower.as_str()) || lower.starts_with(':') || lower.is_empty() {
            return false;
        }
        let dropped = DROPPED.contains(&lower.as_str()) || DROPPED_PREFIXES.iter().any(|p| lower.starts_with(p));
        !dropped || self.names.contains(&lower)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn browser_and_hop_by_hop_headers_are_dropped() {
        let keep = Keep::default();
        for name in [
            "Host",
            "Content-Length",
            "Connection",
            "Accept-Encoding",
            "sec-ch-ua",
            "Sec-Fetch-Mode",
            ":authority",
            ":path",
            "Upgrade-Insecure-Requests",
            "priority",
        ] {
            assert!(!keep.keeps(name), "{name} is dropped");
        }
        for name in ["Accept", "Content-Type", "Authorization", "Cookie", "X-Request-Id", "User-Agent", "Origin"] {
            assert!(keep.keeps(name), "{name} is kept");
        }
    }

    #[test]
    fn a_dropped_header_can_be_kept_unless_pummel_sets_it() {
        let keep = Keep::new(&["accept-encoding".into(), "Sec-Fetch-Site".into()]).expect("keepable");
        assert!(keep.keeps("Accept-Encoding"));
        assert!(keep.keeps("sec-fetch-site"));
        assert!(!keep.keeps("sec-fetch-mode"));
        let err = Keep::new(&["Host".into()]).expect_err("pummel sets Host");
        assert!(err.to_string().contains("--keep-header host"), "{err}");
    }
}
