//! Exact rational numbers in `[0, 1]` for segment bounds: parsed from a fraction (`1/3`), a
//! decimal (`0.25`) or a percentage (`25%`) as k6 accepts them, kept reduced, and written back
//! the way k6 writes them (`0`, `1`, `1/3`). Exact, so that segments that meet really meet.

use std::cmp::Ordering;
use std::fmt;

/// Why a number was not read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{text:?} is not a number between 0 and 1: expected a fraction (1/3), a decimal (0.25) or a percentage (25%)")]
pub struct RatioError {
    /// The text as given.
    pub text: String,
}

/// A non-negative rational number `num/den`, reduced (`den > 0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Ratio {
    num: u64,
    den: u64,
}

/// The greatest common divisor (Euclid); `gcd(0, 0) = 0`.
pub(crate) fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

impl Ratio {
    /// Zero.
    pub const ZERO: Ratio = Ratio { num: 0, den: 1 };
    /// One.
    pub const ONE: Ratio = Ratio { num: 1, den: 1 };

    /// `num/den`, reduced; `None` when `den` is 0.
    pub fn new(num: u64, den: u64) -> Option<Ratio> {
        Ratio::reduced(u128::from(num), u128::from(den))
    }

    /// `num/den` reduced, when it fits in 64 bits (and `den` is not 0).
    fn reduced(num: u128, den: u128) -> Option<Ratio> {
        if den == 0 {
            return None;
        }
        let (mut a, mut b) = (num, den);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        let g = a.max(1);
        Some(Ratio { num: u64::try_from(num / g).ok()?, den: u64::try_from(den / g).ok()? })
    }

    /// The numerator (reduced).
    pub fn numer(&self) -> u64 {
        self.num
    }

    /// The denominator (reduced, at least 1).
    pub fn denom(&self) -> u64 {
        self.den
    }

    /// `self − other`, when it is not negative and fits.
    pub fn checked_sub(&self, other: &Ratio) -> Option<Ratio> {
        let a = u128::from(self.num) * u128::from(other.den);
        let b = u128::from(other.num) * u128::from(self.den);
        Ratio::reduced(a.checked_sub(b)?, u128::from(self.den) * u128::from(other.den))
    }

    /// The value as a float (for rates; exact figures use the ratio).
    pub fn to_f64(&self) -> f64 {
        self.num as f64 / self.den as f64
    }

    /// Reads a fraction (`1/3`), a decimal (`0.25`, `1`) or a percentage (`25%`, `12.5%`).
    pub fn parse(text: &str) -> Result<Ratio, RatioError> {
        let bad = || RatioError { text: text.to_string() };
        let trimmed = text.trim();
        if let Some(percent) = trimmed.strip_suffix('%') {
            let value = decimal(percent.trim()).ok_or_else(bad)?;
            return Ratio::reduced(u128::from(value.num), u128::from(value.den) * 100).ok_or_else(bad);
        }
        if let Some((num, den)) = trimmed.split_once('/') {
            let num = integer(num.trim()).ok_or_else(bad)?;
            let den = integer(den.trim()).ok_or_else(bad)?;
            return Ratio::new(num, den).ok_or_else(bad);
        }
        decimal(trimmed).ok_or_else(bad)
    }
}

/// Digits only (no sign), as a `u64`.
fn integer(text: &str) -> Option<u64> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    text.parse().ok()
}

/// `123`, `0.25`, `.5`: digits with at most one point, at most 18 of them after it.
fn decimal(text: &str) -> Option<Ratio> {
    let (whole, fraction) = text.split_once('.').unwrap_or((text, ""));
    if whole.is_empty() && fraction.is_empty() || fraction.len() > 18 {
        return None;
    }
    let whole = if whole.is_empty() { 0 } else { integer(whole)? };
    let scale = 10u64.pow(fraction.len() as u32);
    let part = if fraction.is_empty() { 0 } else { integer(fraction)? };
    Ratio::reduced(u128::from(whole) * u128::from(scale) + u128::from(part), u128::from(scale))
}

impl Ord for Ratio {
    fn cmp(&self, other: &Ratio) -> Ordering {
        (u128::from(self.num) * u128::from(other.den)).cmp(&(u128::from(other.num) * u128::from(self.den)))
    }
}

impl PartialOrd for Ratio {
    fn partial_cmp(&self, other: &Ratio) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for Ratio {
    /// `0`, `1`, `1/3`: as k6 writes rationals.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.den == 1 { write!(f, "{}", self.num) } else { write!(f, "{}/{}", self.num, self.den) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn r(num: u64, den: u64) -> Ratio {
        Ratio::new(num, den).unwrap()
    }

    #[test]
    fn fractions_decimals_and_percentages_read_alike() {
        for text in ["1/4", "2/8", "0.25", ".25", "25%", "25.0%", " 1/4 "] {
            assert_eq!(Ratio::parse(text), Ok(r(1, 4)), "{text}");
        }
        assert_eq!(Ratio::parse("1"), Ok(Ratio::ONE));
        assert_eq!(Ratio::parse("100%"), Ok(Ratio::ONE));
        assert_eq!(Ratio::parse("0"), Ok(Ratio::ZERO));
        assert_eq!(Ratio::parse("12.5%"), Ok(r(1, 8)));
        assert_eq!(Ratio::parse("0.333"), Ok(r(333, 1000)));
    }

    #[test]
    fn what_is_not_a_number_is_refused() {
        for text in ["", "a", "-1/4", "1/0", "1/", "/4", "%", "0.5.5", "1e-3", "+1", "0.1234567890123456789", "."] {
            assert!(Ratio::parse(text).is_err(), "{text}");
        }
    }

    #[test]
    fn written_as_k6_writes_them() {
        assert_eq!(r(2, 6).to_string(), "1/3");
        assert_eq!(r(4, 4).to_string(), "1");
        assert_eq!(Ratio::ZERO.to_string(), "0");
        assert_eq!(Ratio::parse(&r(7, 9).to_string()), Ok(r(7, 9)));
    }

    #[test]
    fn order_and_difference_are_exact() {
        assert!(r(1, 3) < r(34, 100));
        assert!(r(1, 3) > r(33, 100));
        assert_eq!(r(1, 2).checked_sub(&r(1, 3)), Some(r(1, 6)));
        assert_eq!(r(1, 3).checked_sub(&r(1, 2)), None);
        assert_eq!(gcd(12, 18), 6);
    }
}
