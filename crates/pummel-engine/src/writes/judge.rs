//! The set arithmetic of the read-back, one key at a time (Jepsen's set checker): a key's
//! writes ([`KeyWrites`]) against what its read found ([`Read`]) give one [`Verdict`], and the
//! verdicts add up in [`WriteTallies`], which every shard keeps and the collector merges.

use std::collections::BTreeMap;

use pummel_results::writes::{FIRST_LOST, LostKey};

use super::group::KeyWrites;
use super::{Digest, WriteOutcome};

/// What a read found of a key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The key is there; with the digest of the value read, when values are compared (`None`:
    /// its value could not be found in the answer).
    Found(Option<Digest>),
    /// The key is not there.
    Missing,
}

/// One key's verdict.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// An acknowledged write is there, with a value its writes wrote.
    Verified,
    /// An acknowledged write is not there.
    LostMissing,
    /// An acknowledged write's key holds a value none of its writes wrote: lost, and that
    /// value is unexpected.
    LostWrong,
    /// None of its writes was acknowledged, yet it is there.
    Recovered,
    /// It holds what no attempted write wrote: never sent yet there, or a value none of its
    /// writes had.
    Unexpected,
    /// Not there, and no write of it was acknowledged: nothing was promised.
    Absent,
}

/// Judges one key: its writes against its read.
pub fn judge(writes: &KeyWrites, read: Read) -> Verdict {
    let acknowledged = writes.count(WriteOutcome::Acknowledged) > 0;
    let attempted = acknowledged || writes.count(WriteOutcome::Failed) + writes.count(WriteOutcome::Unknown) > 0;
    match read {
        Read::Missing if acknowledged => Verdict::LostMissing,
        Read::Missing => Verdict::Absent,
        Read::Found(value) => {
            let as_written = match value {
                Some(d) => writes.wrote(&d),
                // A value was expected, and the answer had none where it should be.
                None => writes.any_value || writes.digests.is_empty(),
            };
            match (as_written, acknowledged, attempted) {
                (true, true, _) => Verdict::Verified,
                (true, false, true) => Verdict::Recovered,
                (true, false, false) => Verdict::Unexpected,
                (false, true, _) => Verdict::LostWrong,
                (false, false, _) => Verdict::Unexpected,
            }
        }
    }
}

/// What a shard (and, merged, the run) counted of writes and of their read-back.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct WriteTallies {
    /// The load's writes by outcome (indexed by [`WriteOutcome::index`]).
    pub outcomes: [u64; 4],
    /// Keys whose read said found or missing.
    pub read: u64,
    /// Keys verified.
    pub verified: u64,
    /// Keys lost (missing or wrong).
    pub lost: u64,
    /// Keys recovered.
    pub recovered: u64,
    /// Unexpected values.
    pub unexpected: u64,
    /// The first lost keys by key order, at most [`FIRST_LOST`].
    pub first_lost: Vec<LostKey>,
}

impl WriteTallies {
    /// Counts a write of the load.
    pub fn wrote(&mut self, outcome: WriteOutcome) {
        self.outcomes[outcome.index()] += 1;
    }

    /// Counts a key's verdict.
    pub fn judged(&mut self, writes: &KeyWrites, verdict: Verdict) {
        self.read += 1;
        match verdict {
            Verdict::Verified => self.verified += 1,
            Verdict::Recovered => self.recovered += 1,
            Verdict::Unexpected => self.unexpected += 1,
            Verdict::Absent => {}
            Verdict::LostMissing | Verdict::LostWrong => {
                self.lost += 1;
                if verdict == Verdict::LostWrong {
                    self.unexpected += 1;
                }
                let lost = LostKey {
                    key: writes.key.clone(),
                    writes: WriteOutcome::ALL
                        .iter()
                        .filter(|o| writes.count(**o) > 0)
                        .map(|o| (o.name().to_string(), writes.count(*o)))
                        .collect::<BTreeMap<_, _>>(),
                    read: if verdict == Verdict::LostMissing { "missing" } else { "wrong value" }.to_string(),
                };
                keep_first(&mut self.first_lost, std::iter::once(lost));
            }
        }
    }

    /// Adds `other` into these tallies.
    pub fn merge(&mut self, other: &WriteTallies) {
        for (a, b) in self.outcomes.iter_mut().zip(other.outcomes) {
            *a += b;
        }
        self.read += other.read;
        self.verified += other.verified;
        self.lost += other.lost;
        self.recovered += other.recovered;
        self.unexpected += other.unexpected;
        keep_first(&mut self.first_lost, other.first_lost.iter().cloned());
    }
}

/// Adds `more` to `list`, keeping the first [`FIRST_LOST`] by key.
fn keep_first(list: &mut Vec<LostKey>, more: impl Iterator<Item = LostKey>) {
    list.extend(more);
    list.sort();
    list.dedup_by(|a, b| a.key == b.key);
    list.truncate(FIRST_LOST);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writes::digest;

    fn key(name: &str, counts: [u64; 4], values: &[&str]) -> KeyWrites {
        KeyWrites {
            key: name.into(),
            value: None,
            counts,
            digests: values.iter().map(|v| digest(v.as_bytes())).collect(),
            any_value: false,
        }
    }

    const ACKED: [u64; 4] = [1, 0, 0, 0];
    const UNKNOWN: [u64; 4] = [0, 0, 1, 0];
    const FAILED: [u64; 4] = [0, 1, 0, 0];
    const NOT_SENT: [u64; 4] = [0, 0, 0, 1];

    #[test]
    fn the_set_arithmetic_of_one_key() {
        let found = |v: &str| Read::Found(Some(digest(v.as_bytes())));
        // Acknowledged: there as written, gone, or holding another value.
        assert_eq!(judge(&key("a", ACKED, &["x"]), found("x")), Verdict::Verified);
        assert_eq!(judge(&key("a", ACKED, &["x"]), Read::Missing), Verdict::LostMissing);
        assert_eq!(judge(&key("a", ACKED, &["x"]), found("y")), Verdict::LostWrong);
        assert_eq!(judge(&key("a", ACKED, &["x"]), Read::Found(None)), Verdict::LostWrong, "no value where one was");
        // Indeterminate: found is recovered, absent is no promise broken.
        assert_eq!(judge(&key("u", UNKNOWN, &["x"]), found("x")), Verdict::Recovered);
        assert_eq!(judge(&key("f", FAILED, &[]), Read::Found(None)), Verdict::Recovered);
        assert_eq!(judge(&key("u", UNKNOWN, &["x"]), Read::Missing), Verdict::Absent);
        assert_eq!(judge(&key("u", UNKNOWN, &["x"]), found("z")), Verdict::Unexpected);
        // Never sent, yet there: read − attempted.
        assert_eq!(judge(&key("n", NOT_SENT, &[]), Read::Found(None)), Verdict::Unexpected);
        assert_eq!(judge(&key("n", NOT_SENT, &[]), Read::Missing), Verdict::Absent);
        // Without values, presence is all that is judged.
        assert_eq!(judge(&key("p", ACKED, &[]), found("anything")), Verdict::Verified);
        // A key written twice (unknown, then acknowledged): either value is as written.
        let twice = key("t", [1, 0, 1, 0], &["first", "second"]);
        assert_eq!(judge(&twice, found("first")), Verdict::Verified);
        assert_eq!(judge(&twice, found("second")), Verdict::Verified);
    }

    #[test]
    fn tallies_count_keys_and_keep_the_first_lost_in_key_order() {
        let mut one = WriteTallies::default();
        let mut two = WriteTallies::default();
        for n in (0..30).rev() {
            let k = key(&format!("k{n:02}"), ACKED, &[]);
            let into = if n % 2 == 0 { &mut one } else { &mut two };
            into.judged(&k, Verdict::LostMissing);
        }
        one.judged(&key("w", ACKED, &["x"]), Verdict::LostWrong);
        one.judged(&key("v", ACKED, &[]), Verdict::Verified);
        two.judged(&key("r", UNKNOWN, &[]), Verdict::Recovered);
        two.judged(&key("z", UNKNOWN, &[]), Verdict::Absent);
        one.wrote(WriteOutcome::Acknowledged);
        two.wrote(WriteOutcome::Unknown);
        one.merge(&two);
        assert_eq!((one.read, one.verified, one.lost, one.recovered, one.unexpected), (34, 1, 31, 1, 1));
        assert_eq!(one.outcomes, [1, 0, 1, 0]);
        assert_eq!(one.first_lost.len(), FIRST_LOST);
        let keys: Vec<&str> = one.first_lost.iter().map(|l| l.key.as_str()).collect();
        assert_eq!(keys[..3], ["k00", "k01", "k02"]);
        assert_eq!(one.first_lost[0].read, "missing");
        assert_eq!(one.first_lost[0].writes.get("acknowledged"), Some(&1));
    }
}
