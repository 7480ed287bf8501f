//! A segment as written: `--segment` and `--segment-sequence` on a command line, or
//! `summary.segment` and `summary.segment_sequence` in a results document. Read into its bounds
//! and its sequence without computing how it deals out items, which is all that `pummel merge`
//! needs to check that documents are segments of one sequence that cover the plan.

use std::fmt;

use super::SegmentError;
use super::ratio::Ratio;
use super::sequence::Sequence;

/// A segment's bounds, its sequence, and how it was written.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentLabel {
    /// Where it starts in `[0, 1]`.
    pub from: Ratio,
    /// Where it ends.
    pub to: Ratio,
    /// The sequence it is one segment of.
    pub sequence: Sequence,
    /// `Some(N)` when written `i/N` without a sequence (part `i` of `N` equal parts), which is
    /// how it is written back.
    pub parts: Option<u64>,
}

impl SegmentLabel {
    /// Reads `i/N` or `FROM:TO`, with its sequence if given. `i/N` without a sequence is part
    /// `i` of `N` equal parts; `FROM:TO` without one is a segment of `0,FROM,TO,1` (as k6).
    /// With a sequence, either form must be one of its segments (`i/N` read as
    /// `(i−1)/N:i/N`).
    pub fn parse(text: &str, sequence: Option<&str>) -> Result<SegmentLabel, SegmentError> {
        let (from, to, parts) = match text.split_once(':') {
            Some((from, to)) => (Ratio::parse(from)?, Ratio::parse(to)?, None),
            None => {
                let (i, n) = parse_parts(text).ok_or_else(|| SegmentError::Form { text: text.to_string() })?;
                let (from, to) = (Ratio::new(i - 1, n), Ratio::new(i, n));
                (from.unwrap_or(Ratio::ZERO), to.unwrap_or(Ratio::ONE), Some(n))
            }
        };
        if to > Ratio::ONE {
            return Err(SegmentError::AboveOne { value: to });
        }
        if from >= to {
            return Err(SegmentError::Empty { from, to });
        }
        let (sequence, parts) = match (sequence, parts) {
            (None, Some(n)) => (Sequence::equal(n), Some(n)),
            (None, None) => (Sequence::from_points(vec![from, to])?, None),
            (Some(sequence), _) => (Sequence::parse(sequence)?, None),
        };
        if sequence.position(from, to).is_none() {
            return Err(SegmentError::NotInSequence {
                segment: format!("{from}:{to}"),
                sequence: sequence.to_string(),
            });
        }
        Ok(SegmentLabel { from, to, sequence, parts })
    }

    /// Its position in its sequence.
    pub fn position(&self) -> usize {
        self.sequence.position(self.from, self.to).unwrap_or(0)
    }

    /// True when it and `other` share part of `[0, 1]`.
    pub fn overlaps(&self, other: &SegmentLabel) -> bool {
        self.from < other.to && other.from < self.to
    }

    /// Segment `k` of `sequence`, labelled as `like` labels its segments (`i/N` for equal
    /// parts written so, `FROM:TO` otherwise).
    pub fn label_of(sequence: &Sequence, k: usize, like: &SegmentLabel) -> String {
        let (from, to) = sequence.segment(k);
        match like.parts {
            Some(n) => format!("{}/{n}", k + 1),
            None => format!("{from}:{to}"),
        }
    }
}

/// `i/N` (1-based, `1 ≤ i ≤ N`) as `(i, N)`.
fn parse_parts(text: &str) -> Option<(u64, u64)> {
    let (i, n) = text.split_once('/')?;
    let (i, n): (u64, u64) = (i.trim().parse().ok()?, n.trim().parse().ok()?);
    (i >= 1 && i <= n).then_some((i, n))
}

impl fmt::Display for SegmentLabel {
    /// `i/N` as written, or `FROM:TO`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.parts {
            Some(n) => write!(f, "{}/{n}", self.position() + 1),
            None => write!(f, "{}:{}", self.from, self.to),
        }
    }
}
