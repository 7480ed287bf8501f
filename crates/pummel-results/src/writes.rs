//! Writes in the results: what a run wrote, and what a read-back found of it (Jepsen's set
//! checker, for an HTTP service).
//!
//! A plan marks requests as writes (`write = { key = "..." }`). Each write ends as one
//! [`WriteOutcome`]: **acknowledged** (the request succeeded), **failed** (a definite refusal:
//! a 4xx, or an HTTP/2 GOAWAY that says the stream was not processed), **unknown** (a timeout,
//! a reset, a 5xx, an answer whose checks failed: the target may or may not have stored it) or
//! **not sent** (pummel never wrote the request: no connection; not an attempt). After the load and its faults, and a settle time, the `[verify]` phase reads
//! every key back. Per key:
//!
//! - **verified**: an acknowledged write is there, with its value;
//! - **lost**: an acknowledged write is missing, or holds a value no write of it wrote;
//! - **recovered**: no write of the key was acknowledged (unknown or failed), yet it is there;
//! - **unexpected**: a value no attempted write wrote: a key pummel never sent is there, or a
//!   key holds a value none of its writes had (read − attempted);
//! - **unread**: the read did not say (a timeout, a 5xx, a value too large to compare): no
//!   verdict either way.
//!
//! Counts of writes (`attempted`, `acknowledged`, ...) count requests; counts of the verify
//! phase count keys. They are the same when every write has a key of its own.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::expr::{Metric, MetricSource};

/// Most lost keys listed in the results.
pub const FIRST_LOST: usize = 20;

/// How one write ended, as far as pummel can tell.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WriteOutcome {
    /// The request succeeded: its status was accepted and its checks passed.
    Acknowledged,
    /// The target refused it, definitely: a 4xx, or GOAWAY past the stream (not processed).
    Failed,
    /// Sent, and then nothing certain: a timeout, a reset, a 5xx, an answer whose checks
    /// failed, no answer before the drain ran out.
    Unknown,
    /// Never written to the target (no connection could be opened, still waiting for one when
    /// the run ended): not an attempt. (A request dropped before it was built, over the
    /// in-flight bound, has no key yet and is no write at all.)
    NotSent,
}

impl WriteOutcome {
    /// Every outcome, in the order of the counts.
    pub const ALL: [WriteOutcome; 4] =
        [WriteOutcome::Acknowledged, WriteOutcome::Failed, WriteOutcome::Unknown, WriteOutcome::NotSent];

    /// The snake_case name used in results and output.
    pub fn name(self) -> &'static str {
        match self {
            WriteOutcome::Acknowledged => "acknowledged",
            WriteOutcome::Failed => "failed",
            WriteOutcome::Unknown => "unknown",
            WriteOutcome::NotSent => "not_sent",
        }
    }

    /// Its position in [`WriteOutcome::ALL`] (and its code in the write log).
    pub fn index(self) -> usize {
        self as usize
    }

    /// The outcome of code `n` (its index).
    pub fn from_index(n: usize) -> Option<WriteOutcome> {
        WriteOutcome::ALL.get(n).copied()
    }
}

/// What the run wrote and what reading it back found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct WritesSummary {
    /// Writes whose request was sent: acknowledged + failed + unknown.
    pub attempted: u64,
    /// Writes that succeeded.
    pub acknowledged: u64,
    /// Writes the target refused (4xx).
    pub failed: u64,
    /// Writes whose fate is unknown (timeout, reset, 5xx, ...).
    pub unknown: u64,
    /// Write requests never sent: not attempts, but read back too (a key found is unexpected).
    pub not_sent: u64,
    /// The read-back; `None` when there was none (see `not_verified`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub verify: Option<VerifySummary>,
    /// Why the writes were not read back, when they were not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub not_verified: Option<String>,
    /// The write log could not be written in full (a full disk): its error.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub log_error: Option<String>,
}

/// What the verify phase found, per key.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct VerifySummary {
    /// `completed`, or `interrupted` (Ctrl-C during the read-back: the keys not read are unread).
    pub ended: String,
    /// Seconds waited after the load and its faults before the first read.
    pub settle_s: f64,
    /// Seconds the reads took.
    pub duration_s: f64,
    /// Distinct keys written (sent or not), each read once.
    pub keys: u64,
    /// Keys whose read gave a verdict (found or missing).
    pub read: u64,
    /// Keys with an acknowledged write, found with its value.
    pub verified: u64,
    /// Keys with an acknowledged write, then missing or holding a value no write wrote.
    pub lost: u64,
    /// Keys none of whose writes was acknowledged (unknown or failed), found anyway.
    pub recovered: u64,
    /// Values no attempted write wrote: keys never sent yet found, or values none of a key's
    /// writes had.
    pub unexpected: u64,
    /// Keys whose read gave no verdict (a failed read, a value too large to compare).
    pub unread: u64,
    /// The first lost keys (by key order), at most [`FIRST_LOST`].
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub first_lost: Vec<LostKey>,
}

/// One lost key: its writes and what its read found.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq, Eq, PartialOrd, Ord)]
pub struct LostKey {
    /// The key.
    pub key: String,
    /// Its writes by outcome (`acknowledged: 1`).
    pub writes: BTreeMap<String, u64>,
    /// `missing`, or `wrong value`.
    pub read: String,
}

impl WritesSummary {
    /// The writes counted by outcome (`[acknowledged, failed, unknown, not_sent]`).
    pub fn from_counts(counts: [u64; 4]) -> WritesSummary {
        let [acknowledged, failed, unknown, not_sent] = counts;
        WritesSummary {
            attempted: acknowledged + failed + unknown,
            acknowledged,
            failed,
            unknown,
            not_sent,
            ..WritesSummary::default()
        }
    }

    /// One line for people: `5988 writes attempted: 934 acknowledged, 0 failed, 5054 unknown;
    /// verified 934, lost 0, recovered 4452, unexpected 0`.
    pub fn line(&self) -> String {
        let mut line = format!(
            "{} writes attempted: {} acknowledged, {} failed, {} unknown",
            self.attempted, self.acknowledged, self.failed, self.unknown
        );
        if self.not_sent > 0 {
            line.push_str(&format!(" ({} not sent)", self.not_sent));
        }
        match (&self.verify, &self.not_verified) {
            (Some(v), _) => {
                line.push_str(&format!(
                    "; verified {}, lost {}, recovered {}, unexpected {}",
                    v.verified, v.lost, v.recovered, v.unexpected
                ));
                if v.unread > 0 {
                    line.push_str(&format!(", unread {}", v.unread));
                }
                if v.ended != "completed" {
                    line.push_str(&format!(" (verify {})", v.ended));
                }
            }
            (None, Some(why)) => line.push_str(&format!("; not verified: {why}")),
            (None, None) => {}
        }
        line
    }
}

/// `lost`, `recovered`, `unexpected` and `unread` from the read-back; none without one, so a
/// rule such as `lost==0` fails when nothing was verified.
impl MetricSource for WritesSummary {
    fn metric_value(&self, metric: &Metric) -> Option<f64> {
        let v = self.verify.as_ref()?;
        let value = match metric {
            Metric::Lost => v.lost,
            Metric::Recovered => v.recovered,
            Metric::Unexpected => v.unexpected,
            Metric::Unread => v.unread,
            _ => return None,
        };
        Some(value as f64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::expr::Expr;

    #[test]
    fn counts_add_up_and_read_as_metrics() {
        let mut writes = WritesSummary::from_counts([934, 0, 5054, 3]);
        assert_eq!(writes.attempted, 5988);
        let lost = Expr::parse("lost==0").unwrap();
        assert_eq!(lost.evaluate(&writes).value, None, "nothing verified: no value, the rule fails");
        writes.verify = Some(VerifySummary { lost: 2, recovered: 4452, ..VerifySummary::default() });
        assert!(!lost.evaluate(&writes).pass);
        assert_eq!(Expr::parse("recovered>4000").unwrap().evaluate(&writes).value, Some(4452.0));
        assert!(Expr::parse("unexpected==0").unwrap().evaluate(&writes).pass);
        assert_eq!(Expr::parse("p99<1s").unwrap().evaluate(&writes).value, None);
        assert!(writes.line().contains("lost 2, recovered 4452"), "{}", writes.line());
    }

    #[test]
    fn outcomes_round_trip_through_their_codes() {
        for outcome in WriteOutcome::ALL {
            assert_eq!(WriteOutcome::from_index(outcome.index()), Some(outcome));
        }
        assert_eq!(WriteOutcome::from_index(9), None);
        assert_eq!(serde_json::to_string(&WriteOutcome::NotSent).unwrap(), "\"not_sent\"");
    }
}
