//! Human durations as users type them: `500ms`, `2s`, `1m30s`, `1h`, `250us`.
//!
//! One parser serves flags, plan files and threshold expressions so that every place
//! accepts exactly the same forms.

use std::time::Duration;

/// Why a duration string was not understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid duration {input:?}: {reason} (expected e.g. 500ms, 10s, 1m30s, 2h)")]
pub struct DurationError {
    /// The text that was given.
    pub input: String,
    /// What is wrong with it.
    pub reason: &'static str,
}

/// Parses a duration made of one or more `<number><unit>` parts (`us`, `ms`, `s`, `m`, `h`).
/// A bare number is read as seconds, as wrk and hey do.
pub fn parse_duration(input: &str) -> Result<Duration, DurationError> {
    let err = |reason| DurationError { input: input.to_string(), reason };
    let text = input.trim();
    if text.is_empty() {
        return Err(err("it is empty"));
    }
    if let Ok(secs) = text.parse::<f64>() {
        return seconds(secs).ok_or_else(|| err("it must be a finite, non-negative number"));
    }
    let mut total = 0f64;
    let mut rest = text;
    while !rest.is_empty() {
        let number_len = rest
            .find(|c: char| !(c.is_ascii_digit() || c == '.'))
            .ok_or_else(|| err("a unit is missing after the last number"))?;
        if number_len == 0 {
            return Err(err("a number is missing before a unit"));
        }
        let value: f64 = rest[..number_len].parse().map_err(|_| err("a number is malformed"))?;
        rest = &rest[number_len..];
        let unit_len = rest.find(|c: char| c.is_ascii_digit() || c == '.').unwrap_or(rest.len());
        let scale = match &rest[..unit_len] {
            "us" | "µs" => 1e-6,
            "ms" => 1e-3,
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            _ => return Err(err("unknown unit (use us, ms, s, m or h)")),
        };
        total += value * scale;
        rest = &rest[unit_len..];
    }
    seconds(total).ok_or_else(|| err("it is out of range"))
}

fn seconds(secs: f64) -> Option<Duration> {
    (secs.is_finite() && (0.0..1e12).contains(&secs)).then(|| Duration::from_secs_f64(secs))
}

/// Formats a duration the short way pummel prints it (`850us`, `12.3ms`, `1.50s`, `2m05s`).
pub fn format_duration(d: Duration) -> String {
    let micros = d.as_secs_f64() * 1e6;
    if micros < 1000.0 {
        format!("{micros:.0}us")
    } else if micros < 1e6 {
        format!("{:.1}ms", micros / 1e3)
    } else if micros < 60e6 {
        format!("{:.2}s", micros / 1e6)
    } else {
        let secs = d.as_secs();
        format!("{}m{:02}s", secs / 60, secs % 60)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_common_forms() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10s").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1m30s").unwrap(), Duration::from_secs(90));
        assert_eq!(parse_duration("2h").unwrap(), Duration::from_secs(7200));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("3").unwrap(), Duration::from_secs(3));
    }

    #[test]
    fn rejects_nonsense() {
        for bad in ["", "s", "10x", "ms10", "-1s", "1.2.3s", "10s5"] {
            assert!(parse_duration(bad).is_err(), "{bad} should be rejected");
        }
    }

    #[test]
    fn formats_short() {
        assert_eq!(format_duration(Duration::from_micros(850)), "850us");
        assert_eq!(format_duration(Duration::from_micros(12_340)), "12.3ms");
        assert_eq!(format_duration(Duration::from_millis(1500)), "1.50s");
        assert_eq!(format_duration(Duration::from_secs(125)), "2m05s");
    }
}
