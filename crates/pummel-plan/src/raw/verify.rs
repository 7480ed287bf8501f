//! `write = { ... }` on a request and the `[verify]` table as written (issue 13, part 4): which
//! requests write which keys, and how the run reads them back after the load. Interpreted by
//! `validate/verify.rs`.

use serde::Deserialize;
use toml::Spanned;

use super::{DurationText, RateValue, RawExtract, RawRequest, StatusText};

/// `write = { key = "{{ user }}-{{ iteration }}", value = "{{ payload }}", hash = true }`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawWrite {
    /// The key written (a template).
    pub key: Option<Spanned<String>>,
    /// The value written (a template), compared when it is read back.
    pub value: Option<Spanned<String>>,
    /// `body = true`: the value is the request's body as sent (kept as its SHA-256).
    pub body: Option<Spanned<bool>>,
    /// `hash = true`: keep the value's SHA-256, not the value.
    pub hash: Option<Spanned<bool>>,
}

/// `[verify]`: after the load, its faults and `settle`, every key written is read back.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVerify {
    /// Time between the end of the load (and of its faults) and the first read: `"2s"`.
    pub settle: Option<Spanned<DurationText>>,
    /// Reads per second at most: `500` or `"120/m"`.
    pub rate: Option<Spanned<RateValue>>,
    /// Connections the reads share (users reading keys one after the other).
    pub connections: Option<Spanned<i64>>,
    /// Time limit of each read (default 10 s, whatever the load's `timeout`).
    pub timeout: Option<Spanned<DurationText>>,
    /// The read of one key: a request whose templates read `{{ key }}` and `{{ value }}`.
    pub request: Option<Spanned<RawRequest>>,
    /// Statuses meaning the key is there (default `"200-299"`).
    pub found: Option<Spanned<StatusText>>,
    /// Statuses meaning the key is not (default `404`).
    pub missing: Option<Spanned<StatusText>>,
    /// Where the stored value is in an answer that found it (default: the whole body):
    /// `{ json = "$.value" }`, `{ header = "ETag" }`, `{ regex = "..." }`.
    pub value: Option<Spanned<RawExtract>>,
}
