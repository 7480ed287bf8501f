//! Execution segments: the part of a plan one process runs, so that processes that run every
//! part of one plan, on one machine or many, together run exactly the whole plan.
//!
//! A segment is `--segment i/N` (part `i` of `N` equal parts) or, as in k6, a rational range
//! `--segment FROM:TO` (`1/3:2/3`, `0.25:0.5`, `25%:50%`) of a sequence of cuts
//! (`--segment-sequence 0,1/3,2/3,1`; by default `0,FROM,TO,1`). The items of the plan —
//! open-model arrivals, users and connections, feeder rows — are numbered globally `g = 0, 1,
//! ...`, and the sequence deals them out in blocks of `period` items (the least common
//! denominator of its segments' lengths): the segment owns item `g` when `g mod period` is one
//! of its offsets, chosen by k6's striping algorithm ([`sequence::striping`]) so that the
//! segments interleave evenly (no bursts). `i/N` is the case `period = N`, offsets `{i − 1}`.
//!
//! Everything a run asks of its segment is O(1) and allocation-free (a table lookup): which
//! item is its `j`-th ([`Segment::item`]), whether an item is its own ([`Segment::local`]), and
//! how many of the first `total` items are ([`Segment::share`]).
//!
//! - [`label`]: a segment as written, read without its striping (for `pummel merge`);
//! - [`ratio`]: exact rationals, read as k6 reads them;
//! - [`sequence`]: sequences and the striping algorithm.

pub mod label;
pub mod ratio;
pub mod sequence;

use std::fmt;
use std::sync::Arc;

use serde::Serialize;
use serde::ser::SerializeStruct;

pub use self::label::SegmentLabel;
pub use self::ratio::{Ratio, RatioError};
pub use self::sequence::{MAX_PERIOD, MAX_SEGMENTS, Sequence};

/// Why a segment or a sequence was not accepted.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SegmentError {
    /// Neither `i/N` nor `FROM:TO`.
    #[error(
        "expected i/N (part i of N, 1 ≤ i ≤ N, e.g. 1/4) or FROM:TO (a range of 0..1, e.g. 1/4:1/2, 0.25:0.5, \
         25%:50%)"
    )]
    Form {
        /// The text as given.
        text: String,
    },
    /// A bound that is not a number.
    #[error(transparent)]
    Number(#[from] RatioError),
    /// `FROM:TO` with `FROM ≥ TO`.
    #[error("{from}:{to} is empty: a segment's start must be below its end")]
    Empty {
        /// Its start.
        from: Ratio,
        /// Its end.
        to: Ratio,
    },
    /// A bound or a point above 1.
    #[error("{value} is above 1: segments lie within 0..1")]
    AboveOne {
        /// The value.
        value: Ratio,
    },
    /// A sequence of fewer than two points.
    #[error("the sequence {text:?} has fewer than two points (e.g. 0,1/3,2/3,1)")]
    ShortSequence {
        /// The text as given.
        text: String,
    },
    /// A sequence whose points do not rise.
    #[error("in the sequence, {point} does not come after {previous}: its points must rise")]
    NotRising {
        /// The point out of order.
        point: Ratio,
        /// The point before it.
        previous: Ratio,
    },
    /// A sequence of too many segments.
    #[error("the sequence has {count} segments, at most {MAX_SEGMENTS}")]
    TooManySegments {
        /// How many it has.
        count: usize,
    },
    /// A segment that is not one of the sequence's.
    #[error("the segment {segment} is not in the sequence {sequence}: its ends must be consecutive points of it")]
    NotInSequence {
        /// The segment.
        segment: String,
        /// The sequence.
        sequence: String,
    },
    /// A sequence whose period is too long to tabulate.
    #[error(
        "the sequence {sequence} deals out items in blocks of more than {MAX_PERIOD} (the common denominator of \
         its segments' lengths): use coarser fractions"
    )]
    PeriodTooLarge {
        /// The sequence.
        sequence: String,
    },
}

/// How the segment was given, which is how it is written back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Form {
    /// `i/N`: part `index + 1` of `count` equal parts.
    Parts { index: u64, count: u64 },
    /// `FROM:TO` of a sequence.
    Range,
}

/// The part of a plan one process runs (see the module documentation). Cheap to clone.
#[derive(Debug, Clone)]
pub struct Segment(Arc<Shape>);

#[derive(Debug)]
struct Shape {
    from: Ratio,
    to: Ratio,
    form: Form,
    sequence: Sequence,
    /// Items are dealt out in blocks of this many.
    period: u64,
    /// The offsets in `[0, period)` this segment owns, ascending (at least one).
    offsets: Box<[u64]>,
    /// `rank[r]`: how many offsets are below `r`, for `r` in `[0, period]`; `None` with one
    /// offset (then it is a comparison), so that `i/N` needs no table however large `N` is.
    rank: Option<Box<[u32]>>,
}

impl Default for Segment {
    /// The whole plan.
    fn default() -> Self {
        Segment::whole()
    }
}

impl PartialEq for Segment {
    fn eq(&self, other: &Segment) -> bool {
        let (a, b) = (&self.0, &other.0);
        (a.from, a.to, a.form) == (b.from, b.to, b.form) && a.sequence == b.sequence
    }
}

impl Eq for Segment {}

impl Segment {
    /// The whole plan (`1/1`).
    pub fn whole() -> Segment {
        Segment::part(0, 1)
    }

    /// Part `index + 1` (0-based `index`) of `count` equal parts (`--segment i/N`), as a
    /// coordinator hands them out to its agents: period `count`, offset `index`, which is what
    /// k6's striping gives each of `count` equal segments.
    pub fn part(index: u64, count: u64) -> Segment {
        let count = count.max(1);
        let index = index.min(count - 1);
        Segment(Arc::new(Shape {
            from: Ratio::new(index, count).unwrap_or(Ratio::ZERO),
            to: Ratio::new(index + 1, count).unwrap_or(Ratio::ONE),
            form: Form::Parts { index, count },
            sequence: Sequence::equal(count),
            period: count,
            offsets: Box::new([index]),
            rank: None,
        }))
    }

    /// Reads `--segment` (`i/N`, or `FROM:TO`) with `--segment-sequence`, if given (see
    /// [`SegmentLabel::parse`]), and computes how it deals out items.
    pub fn parse(text: &str, sequence: Option<&str>) -> Result<Segment, SegmentError> {
        let label = SegmentLabel::parse(text, sequence)?;
        match label.parts {
            Some(count) => Ok(Segment::part(label.position() as u64, count)),
            None => Segment::in_sequence(label.from, label.to, label.sequence),
        }
    }

    /// Segment `from:to` of `sequence`, its offsets computed by k6's striping.
    pub fn in_sequence(from: Ratio, to: Ratio, sequence: Sequence) -> Result<Segment, SegmentError> {
        let position = sequence.position(from, to).ok_or_else(|| SegmentError::NotInSequence {
            segment: format!("{from}:{to}"),
            sequence: sequence.to_string(),
        })?;
        // Equal parts need no striping: part `k` owns offset `k` (what the algorithm gives).
        let (period, offsets): (u64, Box<[u64]>) = match sequence.equal_parts() {
            Some(n) => (n, Box::new([position as u64])),
            None => {
                let mut striping = sequence::striping(&sequence)?;
                (striping.period, std::mem::take(&mut striping.offsets[position]).into_boxed_slice())
            }
        };
        let rank = (offsets.len() > 1).then(|| {
            let mut rank = vec![0u32; period as usize + 1];
            let mut below = 0u32;
            let mut next = offsets.iter().peekable();
            for (r, slot) in rank.iter_mut().enumerate() {
                *slot = below;
                if next.next_if(|&&o| o == r as u64).is_some() {
                    below += 1;
                }
            }
            rank.into_boxed_slice()
        });
        Ok(Segment(Arc::new(Shape { from, to, form: Form::Range, sequence, period, offsets, rank })))
    }

    /// True for the whole plan.
    pub fn is_whole(&self) -> bool {
        self.0.from == Ratio::ZERO && self.0.to == Ratio::ONE
    }

    /// Where the segment starts in `[0, 1]`.
    pub fn from(&self) -> Ratio {
        self.0.from
    }

    /// Where it ends.
    pub fn to(&self) -> Ratio {
        self.0.to
    }

    /// Its length, `to − from`: the share of every item it owns.
    pub fn length(&self) -> Ratio {
        self.0.to.checked_sub(&self.0.from).unwrap_or(Ratio::ZERO)
    }

    /// The sequence it is a segment of.
    pub fn sequence(&self) -> &Sequence {
        &self.0.sequence
    }

    /// The sequence as written in results (`0,1/4,1/2,1`), for a `FROM:TO` segment; `None`
    /// for `i/N`, whose sequence its label says.
    pub fn sequence_label(&self) -> Option<String> {
        match self.0.form {
            Form::Parts { .. } => None,
            Form::Range => Some(self.0.sequence.to_string()),
        }
    }

    /// Items are dealt out in blocks of this many (the sequence's common denominator).
    pub fn period(&self) -> u64 {
        self.0.period
    }

    /// The offsets of every block it owns, ascending.
    pub fn offsets(&self) -> &[u64] {
        &self.0.offsets
    }

    /// The share of the plan's rate this segment offers (`to − from`): so that its own figures
    /// are judged against what it was asked to send, and the segments' rates add up.
    pub fn fraction(&self) -> f64 {
        self.length().to_f64()
    }

    /// How many of the offsets of a block are below `r` (`r ≤ period`).
    fn rank(&self, r: u64) -> u64 {
        match &self.0.rank {
            Some(rank) => u64::from(rank[r as usize]),
            None => u64::from(r > self.0.offsets[0]),
        }
    }

    /// The global number of this segment's `j`-th item (0-based): in block `j / m`, at its
    /// `(j mod m)`-th offset, `m` the number of offsets.
    pub fn item(&self, j: u64) -> u64 {
        let offsets = &self.0.offsets;
        let m = offsets.len() as u64;
        (j / m) * self.0.period + offsets[(j % m) as usize]
    }

    /// The segment's own number of global item `g` (the `j` of [`Segment::item`]), when the
    /// segment owns it.
    pub fn local(&self, g: u64) -> Option<u64> {
        let (block, r) = (g / self.0.period, g % self.0.period);
        let below = self.rank(r);
        (self.rank(r + 1) > below).then(|| block * self.0.offsets.len() as u64 + below)
    }

    /// True when the segment owns global item `g`.
    pub fn owns(&self, g: u64) -> bool {
        self.local(g).is_some()
    }

    /// How many of the items `0..total` the segment owns (the segments add up to `total`;
    /// k6's `ScaleInt64`).
    pub fn share(&self, total: u64) -> u64 {
        (total / self.0.period) * self.0.offsets.len() as u64 + self.rank(total % self.0.period)
    }

    /// How many of `total` items thread `thread` of this segment's `threads` takes: the
    /// segment's items `j` with `j mod threads = thread` (every thread of every segment adds
    /// up to `total`).
    pub fn thread_share(&self, total: u64, threads: usize, thread: usize) -> u64 {
        even_share(self.share(total), threads, thread)
    }
}

/// Part `index` of `total` items dealt out one at a time over `parts`: the parts add up.
pub fn even_share(total: u64, parts: usize, index: usize) -> u64 {
    let parts = parts.max(1) as u64;
    total / parts + u64::from((index as u64) < total % parts)
}

impl fmt::Display for Segment {
    /// `i/N` as given, or `FROM:TO` (`1/4:1/2`) for a range.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0.form {
            Form::Parts { index, count } => write!(f, "{}/{count}", index + 1),
            Form::Range => write!(f, "{}:{}", self.0.from, self.0.to),
        }
    }
}

impl Serialize for Segment {
    /// `i/N` as `{index, count}` (0-based index, as pummel has always written it); a range as
    /// `{from, to, sequence}`.
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        match self.0.form {
            Form::Parts { index, count } => {
                let mut s = serializer.serialize_struct("Segment", 2)?;
                s.serialize_field("index", &index)?;
                s.serialize_field("count", &count)?;
                s.end()
            }
            Form::Range => {
                let mut s = serializer.serialize_struct("Segment", 3)?;
                s.serialize_field("from", &self.0.from.to_string())?;
                s.serialize_field("to", &self.0.to.to_string())?;
                s.serialize_field("sequence", &self.0.sequence.to_string())?;
                s.end()
            }
        }
    }
}

#[cfg(test)]
mod tests;
