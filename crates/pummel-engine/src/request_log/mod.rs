//! The request log (`--log-requests FILE`): one JSON line per failed request — its name, URL,
//! method, status, error kind and message, timings, the first bytes of its answer — and, with
//! a sample rate (`--log-sample 1%`), per sampled successful one.
//!
//! A run at 100,000 requests a second must stay cheap, so the log is bounded twice on the
//! shard that sees the request ([`ShardLog`]): at most [`RequestLogSpec::per_second`] lines per
//! second and per kind (each error kind, and `ok` for the sample), shared out over the shards
//! (each keeps its share, rounded up, with no lock between them), and never more
//! than the writer takes: lines go through a bounded channel to a writer thread
//! ([`Writer`]), and a line the channel has no room for is left out, never waited for. What
//! was left out is counted per kind and reported at the end ([`RequestLogTotals`]).
//!
//! Secrets are redacted as the plan converter does: values of query parameters named like
//! secrets (`token`, `api_key`, `password`, ..., judged by [`RequestLogSpec::secret_field`]) are
//! replaced, and the values of the secret headers the plan sends
//! ([`RequestLogSpec::secrets`], `Authorization`, `Cookie`, ...) are searched for in everything
//! written — an answer that echoes the request does not leak them. Request headers and bodies
//! are never written.

mod shard;
mod writer;

use std::path::PathBuf;

use serde::Serialize;

pub use shard::ShardLog;
pub use writer::{LineSink, RequestLogTotals, Writer};
pub(crate) use writer::{LogLink, Record};

/// Default bound of lines per second, per kind.
pub const DEFAULT_PER_SECOND: u32 = 100;
/// Default number of answer bytes written per line.
pub const DEFAULT_BODY_BYTES: usize = 256;
/// Text that replaces a secret.
pub const REDACTED: &str = "[redacted]";
/// Secret values shorter than this are not searched for in free text (a 3-letter value would
/// replace innocent words); they are still replaced where they are named (query parameters).
pub const MIN_SEARCHED: usize = 6;

/// What to log, where.
#[derive(Debug, Clone, Serialize)]
pub struct RequestLogSpec {
    /// The JSON-lines file (created or truncated at the start).
    pub path: PathBuf,
    /// Share of successful requests logged, 0..=1 (0: failures only).
    pub sample: f64,
    /// Most lines per second, per kind (shared out over the shards, rounded up).
    pub per_second: u32,
    /// Most answer bytes per line.
    pub body_bytes: usize,
    /// Secret values the plan sends (secret headers' values), searched for and replaced in
    /// everything written.
    #[serde(skip)]
    pub secrets: Vec<String>,
    /// Whether a query parameter's value is a secret, by its name.
    #[serde(skip)]
    pub secret_field: Option<fn(&str) -> bool>,
}

impl RequestLogSpec {
    /// Failures only, with the default bounds, to `path`.
    pub fn new(path: PathBuf) -> RequestLogSpec {
        RequestLogSpec {
            path,
            sample: 0.0,
            per_second: DEFAULT_PER_SECOND,
            body_bytes: DEFAULT_BODY_BYTES,
            secrets: Vec::new(),
            secret_field: None,
        }
    }

    /// `text` with the secrets replaced (found regardless of ASCII case: a server that echoes
    /// a request may have lowercased it).
    pub fn scrub(&self, text: &str) -> String {
        self.scrub_also(text, &[])
    }

    /// As [`scrub`](Self::scrub), with `more` secrets (those of one request's query).
    pub fn scrub_also(&self, text: &str, more: &[String]) -> String {
        let mut out = text.to_string();
        for secret in self.secrets.iter().chain(more).filter(|s| s.len() >= MIN_SEARCHED) {
            let needle = secret.to_ascii_lowercase();
            // ASCII lowercasing keeps every byte where it was: positions found in the
            // lowercase copy are positions in `out`, on character boundaries.
            let mut from = 0;
            while let Some(found) = out.to_ascii_lowercase()[from..].find(&needle) {
                let at = from + found;
                out.replace_range(at..at + needle.len(), REDACTED);
                from = at + REDACTED.len();
            }
        }
        out
    }

    /// The values of the secret parameters of a path's query, as sent and decoded: an answer
    /// that echoes the request must not show them either.
    pub fn query_secrets(&self, path: &str) -> Vec<String> {
        let (Some((_, query)), Some(is_secret)) = (path.split_once('?'), self.secret_field) else {
            return Vec::new();
        };
        let mut values = Vec::new();
        for (name, value) in query.split('&').filter_map(|pair| pair.split_once('=')) {
            if is_secret(&percent_decoded(name)) {
                values.push(value.to_string());
                values.push(percent_decoded(value));
            }
        }
        values.sort_by_key(|v| std::cmp::Reverse(v.len()));
        values.dedup();
        values
    }

    /// A path and query with the values of secret parameters replaced, then scrubbed.
    pub fn redact_path(&self, path: &str) -> String {
        let redacted = match (path.split_once('?'), self.secret_field) {
            (Some((base, query)), Some(is_secret)) => {
                let pairs: Vec<String> = query
                    .split('&')
                    .map(|pair| match pair.split_once('=') {
                        Some((name, _)) if is_secret(&percent_decoded(name)) => format!("{name}={REDACTED}"),
                        _ => pair.to_string(),
                    })
                    .collect();
                format!("{base}?{}", pairs.join("&"))
            }
            _ => path.to_string(),
        };
        self.scrub(&redacted)
    }
}

/// A query parameter's name with `%XX` and `+` decoded (lossy), to judge it by.
fn percent_decoded(name: &str) -> String {
    let hex = |b: u8| char::from(b).to_digit(16).map(|d| d as u8);
    let bytes = name.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match (bytes[i], bytes.get(i + 1).copied().and_then(hex), bytes.get(i + 2).copied().and_then(hex)) {
            (b'%', Some(high), Some(low)) => {
                out.push(high << 4 | low);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec() -> RequestLogSpec {
        let mut spec = RequestLogSpec::new("x".into());
        spec.secrets = vec!["Bearer s3cr3t-token".into(), "abc".into()];
        spec.secret_field = Some(|name| name.contains("token") || name == "key");
        spec
    }

    #[test]
    fn secret_parameters_and_values_are_replaced() {
        let spec = spec();
        assert_eq!(
            spec.redact_path("/a?page=2&access_token=zzz&key=k&acc%65ss_token=q"),
            "/a?page=2&access_token=[redacted]&key=[redacted]&acc%65ss_token=[redacted]"
        );
        assert_eq!(spec.redact_path("/plain"), "/plain");
        let more = spec.query_secrets("/a?access_token=tok%2D123456&page=2");
        assert_eq!(more, ["tok%2D123456", "tok-123456"]);
        assert_eq!(spec.scrub_also("echo tok-123456 page=2", &more), "echo [redacted] page=2");
        assert_eq!(spec.scrub("echo: Authorization: Bearer s3cr3t-token abc"), "echo: Authorization: [redacted] abc");
        assert_eq!(spec.scrub("authorization: bearer S3CR3T-token, é"), "authorization: [redacted], é");
        let mut odd = RequestLogSpec::new("x".into());
        odd.secrets = vec!["redacted".into()];
        assert_eq!(odd.scrub("redacted redacted"), "[redacted] [redacted]", "no endless loop");
    }
}
