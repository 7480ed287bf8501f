//! No lost writes: requests marked as writes are logged with their outcome, and read back after
//! the load (Jepsen's set checker, for an HTTP service).
//!
//! A plan's request with `write = { key = "{{ user }}-{{ iteration }}" }` is a write of that
//! key (optionally of a value, or of its SHA-256). How it ends decides its [`WriteOutcome`]
//! ([`outcome_of_answer`], [`outcome_of_failure`]): *acknowledged*, *failed* (a definite
//! refusal), *unknown* (the target may have stored it) or *not sent* (pummel never wrote it).
//! The outcome is decided where the request ends, whatever path it took (`measure::meter`'s
//! `Request`), so a write abandoned when the drain ran out is still *unknown*.
//!
//! The parts, one job each:
//! - `spill`: the write log. Each shard appends compact records to a buffer of its own and
//!   hands full buffers to a writer thread that appends them to a spill file: no lock on the
//!   hot path, and memory does not grow with the number of writes;
//! - `group`: after the load, the spill file sorted by key on disk (sorted runs of bounded
//!   size, merged) into one record per key: its writes' outcomes and values;
//! - `verify`: the keys as the rows of a feeder, so the `[verify]` phase is a run of the
//!   engine like any other (its rate, its connections, TLS, signing, figures), and each read
//!   judged against its key's writes where it ends;
//! - `judge`: the set arithmetic of one key (verified, lost, recovered, unexpected) and the
//!   tallies the shards merge.

pub mod group;
pub mod judge;
pub mod spill;
pub mod verify;

use pummel_results::error_kind::ErrorKind;
pub use pummel_results::writes::WriteOutcome;
use sha2::{Digest as _, Sha256};

use crate::flow::template::Template;
use crate::inspect::extract::Extractor;
use crate::plan::StatusSet;

/// A value's SHA-256: what the read-back compares.
pub type Digest = [u8; 32];

/// The SHA-256 of `bytes`.
pub fn digest(bytes: &[u8]) -> Digest {
    Sha256::digest(bytes).into()
}

/// `write = { key, value, hash, body }` of a request step.
#[derive(Debug, Clone)]
pub struct WriteStep {
    /// The key written (a template, rendered for the user when the request is).
    pub key: Template,
    /// The value written, if the plan says (a template).
    pub value: Option<Template>,
    /// The value is the request's body as sent (`body = true`): kept as its SHA-256.
    pub body: bool,
    /// Keep the value's SHA-256 instead of the value (`hash = true`): 32 bytes per write
    /// whatever the value's size.
    pub hash: bool,
}

/// A write's value as the log keeps it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteValue {
    /// The value itself.
    Text(String),
    /// Its SHA-256 (`hash = true`, `body = true`).
    Sha256(Digest),
}

impl WriteValue {
    /// What the read-back compares: the value's SHA-256.
    pub fn digest(&self) -> Digest {
        match self {
            WriteValue::Text(text) => digest(text.as_bytes()),
            WriteValue::Sha256(d) => *d,
        }
    }

    /// What `{{ value }}` renders to in the verify phase: the value, or its SHA-256 in hex.
    pub fn text(&self) -> String {
        match self {
            WriteValue::Text(text) => text.clone(),
            WriteValue::Sha256(d) => hex::encode(d),
        }
    }
}

/// One write as the log records it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WriteRecord {
    /// The key.
    pub key: String,
    /// The value, when the plan names one.
    pub value: Option<WriteValue>,
    /// How the request ended.
    pub outcome: WriteOutcome,
}

/// `[verify]`'s judgement of a read: which statuses say the key is there or not, and where its
/// value is in the answer.
#[derive(Debug, Clone)]
pub struct ReadStep {
    /// Statuses meaning the key is there (default 200-299).
    pub found: StatusSet,
    /// Statuses meaning it is not (default 404).
    pub missing: StatusSet,
    /// Where the stored value is in the answer (`None`: the whole body).
    pub value: Option<Extractor>,
    /// Compare values: some write of the plan records one.
    pub compare: bool,
}

impl ReadStep {
    /// True when the judgement reads the answer's body.
    pub fn needs_body(&self) -> bool {
        self.compare && self.value.as_ref().is_none_or(Extractor::needs_body)
    }

    /// True when the judgement reads the answer's headers.
    pub fn needs_headers(&self) -> bool {
        self.compare && self.value.as_ref().is_some_and(Extractor::needs_headers)
    }

    /// True when `status` is an answer (found or missing), not a failed read.
    pub fn accepts(&self, status: u16) -> bool {
        self.found.contains(status) || self.missing.contains(status)
    }
}

/// The outcome of a write that was answered with `status` (`None` for an answer without one)
/// and judged failed for `failure` (`None`: it succeeded).
pub fn outcome_of_answer(status: Option<u16>, failure: Option<ErrorKind>) -> WriteOutcome {
    match (failure, status) {
        (None, _) => WriteOutcome::Acknowledged,
        // A 4xx refuses the write: the target says it did not take it.
        (Some(_), Some(400..=499)) => WriteOutcome::Failed,
        // A 5xx, a failed check on a 2xx, a redirect not followed: it may have been stored.
        (Some(_), _) => WriteOutcome::Unknown,
    }
}

/// The outcome of a write that failed with `kind`; `sent` when its request had been written.
///
/// A request never written (no connection, a render error, the pool's own limits) is not an
/// attempt. One whose writing had begun when it timed out or was reset may have reached the
/// target in full: unknown.
pub fn outcome_of_failure(kind: ErrorKind, sent: bool) -> WriteOutcome {
    match kind {
        // The server says the stream was not processed.
        ErrorKind::GoAway if sent => WriteOutcome::Failed,
        ErrorKind::Status4xx => WriteOutcome::Failed,
        ErrorKind::Timeout | ErrorKind::Reset | ErrorKind::StreamReset | ErrorKind::Unanswered => WriteOutcome::Unknown,
        _ if sent => WriteOutcome::Unknown,
        _ => WriteOutcome::NotSent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn answers_are_acknowledged_refused_or_unknown() {
        assert_eq!(outcome_of_answer(Some(201), None), WriteOutcome::Acknowledged);
        assert_eq!(outcome_of_answer(Some(404), None), WriteOutcome::Acknowledged, "an accepted status");
        assert_eq!(outcome_of_answer(Some(409), Some(ErrorKind::Status4xx)), WriteOutcome::Failed);
        assert_eq!(outcome_of_answer(Some(429), Some(ErrorKind::Status4xx)), WriteOutcome::Failed);
        assert_eq!(outcome_of_answer(Some(503), Some(ErrorKind::Status5xx)), WriteOutcome::Unknown);
        assert_eq!(outcome_of_answer(Some(200), Some(ErrorKind::CheckFailed)), WriteOutcome::Unknown);
        assert_eq!(outcome_of_answer(Some(302), Some(ErrorKind::Other)), WriteOutcome::Unknown);
    }

    #[test]
    fn failures_are_unknown_once_sent_and_not_attempts_before() {
        assert_eq!(outcome_of_failure(ErrorKind::Timeout, true), WriteOutcome::Unknown);
        assert_eq!(outcome_of_failure(ErrorKind::Timeout, false), WriteOutcome::Unknown, "timed out while writing");
        assert_eq!(outcome_of_failure(ErrorKind::Reset, true), WriteOutcome::Unknown);
        assert_eq!(outcome_of_failure(ErrorKind::Unanswered, true), WriteOutcome::Unknown);
        assert_eq!(outcome_of_failure(ErrorKind::MalformedResponse, true), WriteOutcome::Unknown);
        assert_eq!(outcome_of_failure(ErrorKind::ConnectRefused, false), WriteOutcome::NotSent);
        assert_eq!(outcome_of_failure(ErrorKind::ConnectTimeout, false), WriteOutcome::NotSent);
        assert_eq!(outcome_of_failure(ErrorKind::TooManyOpenFiles, false), WriteOutcome::NotSent);
        assert_eq!(outcome_of_failure(ErrorKind::Other, false), WriteOutcome::NotSent, "could not be built");
        assert_eq!(outcome_of_failure(ErrorKind::GoAway, true), WriteOutcome::Failed);
        assert_eq!(outcome_of_failure(ErrorKind::GoAway, false), WriteOutcome::NotSent);
    }

    #[test]
    fn values_compare_by_digest_whether_kept_or_hashed() {
        let text = WriteValue::Text("v-1".into());
        let hashed = WriteValue::Sha256(digest(b"v-1"));
        assert_eq!(text.digest(), hashed.digest());
        assert_eq!(hashed.text().len(), 64);
        assert_eq!(text.text(), "v-1");
    }
}
