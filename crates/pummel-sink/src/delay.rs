//! How long the sink holds a request before answering ([`Delay`]), and its text form for the CLI
//! (`20ms`, `10ms..50ms`, `1m30s`, `0`).
//!
//! The parser is exact: it works in whole nanoseconds, so `1.1s` is 1.1 s and not 1.0999999 s,
//! and [`Display`](std::fmt::Display) prints a text that parses back to the same value.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

const NANOS_PER_SEC: u128 = 1_000_000_000;
const TOO_LARGE: &str = "it is too large";

/// How long the sink waits before it answers a request.
///
/// Parse it from text with [`str::parse`]: `"0"` is [`Delay::None`], `"20ms"` is
/// [`Delay::Fixed`], `"10ms..50ms"` is [`Delay::Range`]. Units are `us` (or `µs`), `ms`, `s`, `m`
/// and `h`, parts may be combined (`1m30s`) and decimals are allowed (`1.5s`); a bare number is
/// seconds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Delay {
    /// Answer as soon as the request is read.
    #[default]
    None,
    /// Hold every request this long.
    Fixed(Duration),
    /// Hold each request for a duration drawn uniformly at random between the two bounds
    /// (inclusive); the first must not be above the second.
    Range(Duration, Duration),
}

impl Delay {
    /// Draws the delay for one request (zero for [`Delay::None`]).
    pub fn sample(&self) -> Duration {
        match *self {
            Delay::None => Duration::ZERO,
            Delay::Fixed(delay) => delay,
            Delay::Range(min, max) => {
                let span = max.saturating_sub(min);
                let span_nanos = u64::try_from(span.as_nanos()).unwrap_or(u64::MAX);
                min.saturating_add(Duration::from_nanos(rand::random_range(0..=span_nanos)))
            }
        }
    }

    /// True when every request is answered at once, so the sink can skip reading the clock.
    pub fn is_zero(&self) -> bool {
        match *self {
            Delay::None => true,
            Delay::Fixed(delay) => delay.is_zero(),
            Delay::Range(_, max) => max.is_zero(),
        }
    }
}

/// Why a text is not a valid [`Delay`]; its message says what is wrong and shows valid forms.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "invalid delay {input:?}: {reason} (expected e.g. 20ms, 10ms..50ms, 1.5s or 0; units us, ms, \
     s, m, h; a bare number is seconds)"
)]
pub struct ParseDelayError {
    input: String,
    reason: &'static str,
}

impl FromStr for Delay {
    type Err = ParseDelayError;

    fn from_str(input: &str) -> Result<Self, Self::Err> {
        let err = |reason| ParseDelayError { input: input.to_string(), reason };
        match input.split_once("..") {
            Some((min, max)) => {
                let max = max.strip_prefix('=').unwrap_or(max);
                let min = parse_duration(min).map_err(err)?;
                let max = parse_duration(max).map_err(err)?;
                if min > max {
                    return Err(err("the lower bound is above the upper bound"));
                }
                Ok(Delay::Range(min, max))
            }
            None => match parse_duration(input).map_err(err)? {
                zero if zero.is_zero() => Ok(Delay::None),
                delay => Ok(Delay::Fixed(delay)),
            },
        }
    }
}

impl fmt::Display for Delay {
    /// Prints the delay in the form [`FromStr`] reads (`0`, `20ms`, `10ms..50ms`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Delay::None => f.write_str("0"),
            Delay::Fixed(delay) => f.write_str(&format_duration(delay)),
            Delay::Range(min, max) => {
                write!(f, "{}..{}", format_duration(min), format_duration(max))
            }
        }
    }
}

/// Parses `<number><unit>` parts (`1m30s`, `1.5s`, `250us`); a lone bare number is seconds.
fn parse_duration(text: &str) -> Result<Duration, &'static str> {
    let text = text.trim();
    if text.is_empty() {
        return Err("a duration is empty");
    }
    let mut total: u128 = 0;
    let mut rest = text;
    let mut first = true;
    while !rest.is_empty() {
        let number_len = rest.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(rest.len());
        if number_len == 0 {
            return Err("a number is missing before a unit (negative delays are not allowed)");
        }
        let number = &rest[..number_len];
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let unit = rest[..unit_len].trim();
        rest = &rest[unit_len..];
        let scale: u128 = match unit {
            "" if first && rest.is_empty() => NANOS_PER_SEC,
            "" => return Err("a unit is missing after a number"),
            "us" | "µs" => 1_000,
            "ms" => 1_000_000,
            "s" => NANOS_PER_SEC,
            "m" => 60 * NANOS_PER_SEC,
            "h" => 3600 * NANOS_PER_SEC,
            _ => return Err("unknown unit (use us, ms, s, m or h)"),
        };
        total = total.checked_add(scaled(number, scale)?).ok_or(TOO_LARGE)?;
        first = false;
    }
    let secs = u64::try_from(total / NANOS_PER_SEC).map_err(|_| TOO_LARGE)?;
    // The remainder is below one billion, so it fits a u32.
    let nanos = u32::try_from(total % NANOS_PER_SEC).map_err(|_| TOO_LARGE)?;
    Ok(Duration::new(secs, nanos))
}

/// `number` (ASCII digits and dots) times `scale` nanoseconds, exactly (fractions of a
/// nanosecond are dropped).
fn scaled(number: &str, scale: u128) -> Result<u128, &'static str> {
    let (int, frac) = number.split_once('.').unwrap_or((number, ""));
    if (int.is_empty() && frac.is_empty()) || frac.contains('.') {
        return Err("a number is malformed");
    }
    if int.len() > 30 {
        return Err(TOO_LARGE);
    }
    let int: u128 = if int.is_empty() { 0 } else { int.parse().map_err(|_| "a number is malformed")? };
    let mut value = int.checked_mul(scale).ok_or(TOO_LARGE)?;
    let mut digit_scale = scale;
    for digit in frac.bytes() {
        digit_scale /= 10;
        if digit_scale == 0 {
            break;
        }
        value += u128::from(digit - b'0') * digit_scale;
    }
    Ok(value)
}

/// Formats a duration with the largest unit that keeps it exact (`2m`, `1500ms`, `250us`).
fn format_duration(delay: Duration) -> String {
    let nanos = delay.as_nanos();
    if nanos == 0 {
        return "0".to_string();
    }
    let units = [
        (3600 * NANOS_PER_SEC, "h"),
        (60 * NANOS_PER_SEC, "m"),
        (NANOS_PER_SEC, "s"),
        (1_000_000, "ms"),
        (1_000, "us"),
    ];
    for (scale, unit) in units {
        if nanos % scale == 0 {
            return format!("{}{unit}", nanos / scale);
        }
    }
    let fraction = format!("{:09}", nanos % NANOS_PER_SEC);
    format!("{}.{}s", nanos / NANOS_PER_SEC, fraction.trim_end_matches('0'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    fn parse(text: &str) -> Delay {
        text.parse().unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn parses_the_documented_forms() {
        assert_eq!(parse("20ms"), Delay::Fixed(ms(20)));
        assert_eq!(parse("10ms..50ms"), Delay::Range(ms(10), ms(50)));
        assert_eq!(parse("0"), Delay::None);
        assert_eq!(parse("5m"), Delay::Fixed(Duration::from_secs(300)));
        assert_eq!(parse("2"), Delay::Fixed(Duration::from_secs(2)));
        assert_eq!(parse("1h"), Delay::Fixed(Duration::from_secs(3600)));
        assert_eq!(parse("250us"), Delay::Fixed(Duration::from_micros(250)));
        assert_eq!(parse("250µs"), Delay::Fixed(Duration::from_micros(250)));
        assert_eq!(parse("3s"), Delay::Fixed(Duration::from_secs(3)));
    }

    #[test]
    fn parses_decimals_compounds_and_spaces_exactly() {
        assert_eq!(parse("1.1s"), Delay::Fixed(ms(1100)));
        assert_eq!(parse("0.5"), Delay::Fixed(ms(500)));
        assert_eq!(parse(".25s"), Delay::Fixed(ms(250)));
        assert_eq!(parse("1m30s"), Delay::Fixed(Duration::from_secs(90)));
        assert_eq!(parse(" 5 ms "), Delay::Fixed(ms(5)));
        assert_eq!(parse("0ms"), Delay::None);
        assert_eq!(parse("1ms..=2ms"), Delay::Range(ms(1), ms(2)));
        assert_eq!(parse("0..1s"), Delay::Range(Duration::ZERO, ms(1000)));
        assert_eq!(parse("5ms..5ms"), Delay::Range(ms(5), ms(5)));
    }

    #[test]
    fn rejects_bad_text_with_a_clear_message() {
        for bad in [
            "",
            "ms",
            "-5ms",
            "5x",
            "5 parsecs",
            "1.2.3s",
            "50ms..10ms",
            "..",
            "5ms..",
            "1m30",
            "10ms..20ms..30ms",
            "99999999999999999999999999999999h",
            "1e3ms",
        ] {
            let err = bad.parse::<Delay>().expect_err(bad);
            assert!(err.to_string().starts_with("invalid delay"), "{err}");
        }
        let err = "50ms..10ms".parse::<Delay>().unwrap_err().to_string();
        assert!(err.contains("lower bound is above the upper bound"), "{err}");
        let err = "5x".parse::<Delay>().unwrap_err().to_string();
        assert!(err.contains("unknown unit"), "{err}");
    }

    #[test]
    fn display_round_trips() {
        for text in ["0", "20ms", "10ms..50ms", "5m", "2h", "250us", "1500ms", "0.000000001s"] {
            assert_eq!(parse(text).to_string(), text);
            assert_eq!(parse(&parse(text).to_string()), parse(text));
        }
        assert_eq!(Delay::Fixed(Duration::from_secs(90)).to_string(), "90s");
    }

    #[test]
    fn samples_stay_in_range() {
        let delay = Delay::Range(ms(10), ms(20));
        for _ in 0..1000 {
            let d = delay.sample();
            assert!(d >= ms(10) && d <= ms(20), "{d:?}");
        }
        assert_eq!(Delay::Fixed(ms(7)).sample(), ms(7));
        assert_eq!(Delay::None.sample(), Duration::ZERO);
        assert_eq!(Delay::Range(Duration::MAX, Duration::MAX).sample(), Duration::MAX);
        assert!(Delay::Range(Duration::ZERO, Duration::MAX).sample() <= Duration::MAX);
    }

    #[test]
    fn is_zero_only_without_delay() {
        assert!(Delay::None.is_zero());
        assert!(Delay::Fixed(Duration::ZERO).is_zero());
        assert!(!Delay::Fixed(ms(1)).is_zero());
        assert!(!Delay::Range(Duration::ZERO, ms(1)).is_zero());
    }
}
