//! The documents' start times (`started_at`, RFC 3339 UTC as pummel writes it:
//! `2025-01-02T03:04:05.678Z`), read to milliseconds since the Unix epoch so that segments can
//! be placed on one clock. (A few lines here spare this crate a date library.)

/// Milliseconds since 1970 of `YYYY-MM-DDTHH:MM:SS[.fff…]Z`; `None` for anything else.
pub(super) fn parse_rfc3339_ms(text: &str) -> Option<u64> {
    let text = text.strip_suffix('Z').or_else(|| text.strip_suffix('z'))?;
    let (date, clock) = text.split_once(['T', 't', ' '])?;
    let mut date_parts = date.splitn(3, '-');
    let (year, month, day): (i64, u32, u32) =
        (date_parts.next()?.parse().ok()?, date_parts.next()?.parse().ok()?, date_parts.next()?.parse().ok()?);
    let (whole, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut clock_parts = whole.splitn(3, ':');
    let (hour, minute, second): (u64, u64, u64) =
        (clock_parts.next()?.parse().ok()?, clock_parts.next()?.parse().ok()?, clock_parts.next()?.parse().ok()?);
    if !(1..=12).contains(&month) || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let millis: u64 = format!("{fraction:0<3}").get(..3)?.parse().ok()?;
    let days = u64::try_from(days_from_civil(year, month, day)).ok()?;
    Some(((days * 24 + hour) * 60 + minute) * 60_000 + second * 1000 + millis)
}

/// Days from 1970-01-01 to the given date (proleptic Gregorian; Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_pummel_writes() {
        assert_eq!(parse_rfc3339_ms("1970-01-01T00:00:00Z"), Some(0));
        assert_eq!(parse_rfc3339_ms("1970-01-02T00:00:01.5Z"), Some(86_401_500));
        // `date -u -d 2025-01-02T03:04:05Z +%s` = 1735787045
        assert_eq!(parse_rfc3339_ms("2025-01-02T03:04:05.678Z"), Some(1_735_787_045_678));
        assert_eq!(parse_rfc3339_ms("2024-02-29T12:00:00.000Z"), Some(1_709_208_000_000));
        for bad in ["", "2025-01-02", "2025-13-02T00:00:00Z", "2025-01-02T00:00:00+01:00", "2025-01-02T00:00:00.x1Z"] {
            assert_eq!(parse_rfc3339_ms(bad), None, "{bad}");
        }
    }
}
