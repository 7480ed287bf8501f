//! A segment sequence (`--segment-sequence 0,1/3,2/3,1`): the cuts of `[0, 1]` into the
//! segments that processes run together. Every process of one plan must know the same
//! sequence, since how items are dealt out ([`striping`]) depends on all of its segments, as
//! in k6 (`ExecutionSegmentSequence`).

use std::fmt;

use super::SegmentError;
use super::ratio::{Ratio, gcd};

/// The largest striping period (common denominator of the segments' lengths) pummel computes:
/// its tables hold one entry per item of a period.
pub const MAX_PERIOD: u64 = 1_000_000;

/// The most segments a sequence may have.
pub const MAX_SEGMENTS: usize = 10_000;

/// Rising points from 0 to 1; segment `k` is `(point(k), point(k + 1))`.
#[derive(Debug, Clone)]
pub struct Sequence(Points);

/// The points, listed or (for `i/N`, however large `N`) implied.
#[derive(Debug, Clone)]
enum Points {
    /// `0, 1/n, ..., 1`.
    Equal(u64),
    /// As given, filled out to 0 and 1 (at most [`MAX_SEGMENTS`] segments).
    Listed(Vec<Ratio>),
}

impl Sequence {
    /// Reads `r1,r2,...,rn` (fractions, decimals or percentages, rising), filled out to start
    /// at 0 and end at 1 as k6 does.
    pub fn parse(text: &str) -> Result<Sequence, SegmentError> {
        let points: Vec<Ratio> = text.split(',').map(Ratio::parse).collect::<Result<_, _>>()?;
        if points.len() < 2 {
            return Err(SegmentError::ShortSequence { text: text.to_string() });
        }
        Sequence::from_points(points)
    }

    /// The sequence of `points`, filled out to start at 0 and end at 1; refused when the
    /// points do not rise, pass 1, or are too many.
    pub fn from_points(mut points: Vec<Ratio>) -> Result<Sequence, SegmentError> {
        if points.first() != Some(&Ratio::ZERO) {
            points.insert(0, Ratio::ZERO);
        }
        if points.last() != Some(&Ratio::ONE) {
            points.push(Ratio::ONE);
        }
        if let Some(w) = points.windows(2).find(|w| w[0] >= w[1]) {
            return Err(if w[0] > Ratio::ONE || w[1] > Ratio::ONE {
                SegmentError::AboveOne { value: w[0].max(w[1]) }
            } else {
                SegmentError::NotRising { point: w[1], previous: w[0] }
            });
        }
        if points.len() - 1 > MAX_SEGMENTS {
            return Err(SegmentError::TooManySegments { count: points.len() - 1 });
        }
        Ok(Sequence(Points::Listed(points)))
    }

    /// `0, 1/n, 2/n, ..., 1`: the sequence of `--segment i/N` (its points are not listed, so
    /// any `n` costs nothing).
    pub fn equal(n: u64) -> Sequence {
        Sequence(Points::Equal(n.max(1)))
    }

    /// How many segments it has.
    pub fn len(&self) -> usize {
        match &self.0 {
            Points::Equal(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Points::Listed(points) => points.len() - 1,
        }
    }

    /// True for no segments (never: a sequence has at least `0, 1`).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Point `k` (`k ≤ len`).
    pub fn point(&self, k: usize) -> Ratio {
        match &self.0 {
            Points::Equal(n) => Ratio::new((k as u64).min(*n), *n).unwrap_or(Ratio::ONE),
            Points::Listed(points) => points.get(k).copied().unwrap_or(Ratio::ONE),
        }
    }

    /// Segment `k`, `(from, to)`.
    pub fn segment(&self, k: usize) -> (Ratio, Ratio) {
        (self.point(k), self.point(k + 1))
    }

    /// The position of segment `(from, to)`, if it is one of the sequence's.
    pub fn position(&self, from: Ratio, to: Ratio) -> Option<usize> {
        let k = match &self.0 {
            Points::Equal(n) => {
                let k = (from.numer() * (n / from.denom().max(1))) as usize;
                (n % from.denom() == 0).then_some(k)?
            }
            Points::Listed(points) => points.binary_search(&from).ok()?,
        };
        (k < self.len() && self.segment(k) == (from, to)).then_some(k)
    }

    /// When the segments are `n` equal parts (the sequence of `--segment i/N`), `n`.
    pub fn equal_parts(&self) -> Option<u64> {
        match &self.0 {
            Points::Equal(n) => Some(*n),
            Points::Listed(_) => {
                let n = self.len() as u64;
                (*self == Sequence::equal(n)).then_some(n)
            }
        }
    }
}

impl PartialEq for Sequence {
    fn eq(&self, other: &Sequence) -> bool {
        match (&self.0, &other.0) {
            (Points::Equal(a), Points::Equal(b)) => a == b,
            (Points::Listed(a), Points::Listed(b)) => a == b,
            _ => self.len() == other.len() && (0..=self.len()).all(|k| self.point(k) == other.point(k)),
        }
    }
}

impl Eq for Sequence {}

impl fmt::Display for Sequence {
    /// `0,1/3,2/3,1` (equal parts beyond a dozen: `0,1/50,2/50,...,1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Points::Equal(n) = self.0 {
            if n > 12 {
                return write!(f, "0,1/{n},2/{n},...,1");
            }
        }
        for k in 0..=self.len() {
            if k > 0 {
                f.write_str(",")?;
            }
            write!(f, "{}", self.point(k))?;
        }
        Ok(())
    }
}

/// How the items of a sequence are dealt out: in every block of `period` items, segment `k`
/// owns the items at `offsets[k]` (sorted), and every item is owned by exactly one segment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Striping {
    /// The least common denominator of the segments' lengths.
    pub period: u64,
    /// Per segment, its offsets in `[0, period)`, ascending; segment `k` has `length · period`.
    pub offsets: Vec<Vec<u64>>,
}

/// k6's striping algorithm (`NewExecutionSegmentSequenceWrapper`): the segments, largest first,
/// each take item `i` of the period as soon as they are due one (segment of normalised length
/// `n/period` is due its `c`-th item at `c·period/n`), so each segment's items are spread evenly
/// over the period and the segments interleave: no segment gets a burst of consecutive items.
pub fn striping(sequence: &Sequence) -> Result<Striping, SegmentError> {
    let lengths: Vec<Ratio> = (0..sequence.len())
        .map(|k| {
            let (from, to) = sequence.segment(k);
            to.checked_sub(&from).unwrap_or(Ratio::ZERO)
        })
        .collect();
    let mut period = 1u64;
    for length in &lengths {
        let den = length.denom();
        period = (period / gcd(period, den))
            .checked_mul(den)
            .filter(|&p| p <= MAX_PERIOD)
            .ok_or_else(|| SegmentError::PeriodTooLarge { sequence: sequence.to_string() })?;
    }
    // Normalised numerators: how many of every `period` items each segment owns.
    let owed: Vec<u64> = lengths.iter().map(|l| l.numer() * (period / l.denom())).collect();
    let mut order: Vec<usize> = (0..owed.len()).collect();
    order.sort_by(|&a, &b| owed[b].cmp(&owed[a])); // stable: equal lengths keep their order
    let mut offsets: Vec<Vec<u64>> = owed.iter().map(|&n| Vec::with_capacity(n as usize)).collect();
    let mut chosen = vec![0u64; owed.len()];
    for item in 0..period {
        for (rank, &k) in order.iter().enumerate() {
            let (due, exact) = {
                let num = chosen[rank] * period;
                (num / owed[k], num % owed[k] == 0)
            };
            if item > due || (item == due && exact) {
                chosen[rank] += 1;
                offsets[k].push(item);
                break;
            }
        }
    }
    Ok(Striping { period, offsets })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn seq(text: &str) -> Sequence {
        Sequence::parse(text).unwrap()
    }

    #[test]
    fn sequences_read_fill_out_and_write_back() {
        assert_eq!(seq("0,1/3,2/3,1").to_string(), "0,1/3,2/3,1");
        assert_eq!(seq("25%,0.5").to_string(), "0,1/4,1/2,1", "filled out to 0 and 1, as k6");
        assert_eq!(seq("0, 1/2 ,1").len(), 2);
        assert_eq!(seq("0,1/3,2/3,1").equal_parts(), Some(3));
        assert_eq!(seq("0,1/4,1/2,1").equal_parts(), None);
        assert_eq!(Sequence::equal(4).position(Ratio::new(1, 2).unwrap(), Ratio::new(3, 4).unwrap()), Some(2));
        assert_eq!(Sequence::equal(4).position(Ratio::new(1, 3).unwrap(), Ratio::new(1, 2).unwrap()), None);
        assert_eq!(Sequence::equal(100).to_string(), "0,1/100,2/100,...,1");
        assert_eq!(Sequence::equal(4), seq("0,1/4,2/4,3/4,1"));
        assert_eq!(seq("0,1/4,1/2,1").position(Ratio::new(1, 4).unwrap(), Ratio::new(1, 2).unwrap()), Some(1));
        assert_eq!(seq("0,1/4,1/2,1").position(Ratio::ZERO, Ratio::new(1, 2).unwrap()), None);
    }

    #[test]
    fn bad_sequences_are_refused() {
        for (text, why) in [
            ("1/2", "fewer than two"),
            ("0,1/2,1/3,1", "does not come after"),
            ("0,1/2,1/2,1", "does not come after"),
            ("0,3/2", "above 1"),
            ("0,x,1", "not a number"),
            ("", "not a number"),
        ] {
            let e = Sequence::parse(text).unwrap_err().to_string();
            assert!(e.contains(why), "{text}: {e}");
        }
        let e = Sequence::parse("0,1/999983,1/999979,1").map(|s| striping(&s)).unwrap().unwrap_err().to_string();
        assert!(e.contains("blocks of more than 1000000"), "{e}");
    }

    #[test]
    fn k6s_striping() {
        // k6's documented example: 0:1/2, 1/2:3/4, 3/4:1 take 0 2 4 ..., 1 5 9 ..., 3 7 11 ...
        let s = striping(&seq("0,1/2,3/4,1")).unwrap();
        assert_eq!(s, Striping { period: 4, offsets: vec![vec![0, 2], vec![1], vec![3]] });
        // Equal parts: part k owns offset k (the striping of --segment i/N).
        let s = striping(&Sequence::equal(5)).unwrap();
        assert_eq!(s.offsets, (0..5).map(|k| vec![k]).collect::<Vec<_>>());
        // Lengths 1/4, 1/4, 1/2: the half is dealt out first.
        let s = striping(&seq("0,1/4,1/2,1")).unwrap();
        assert_eq!(s.offsets, vec![vec![1], vec![3], vec![0, 2]]);
    }
}
