//! Small number formatters shared by the live view and the tables.

/// Milliseconds the way people read them: `850us`, `1.10ms`, `12.3ms`, `1.52s`.
pub fn ms(value: f64) -> String {
    if value < 1.0 {
        format!("{:.0}us", value * 1000.0)
    } else if value < 10.0 {
        format!("{value:.2}ms")
    } else if value < 1000.0 {
        format!("{value:.1}ms")
    } else {
        format!("{:.2}s", value / 1000.0)
    }
}

/// A rate with thousands separators: `1,998.5` or `2,000`.
pub fn rate(value: f64) -> String {
    if value >= 100.0 || value.fract() == 0.0 { thousands(value.round() as u64) } else { format!("{value:.1}") }
}

/// An integer with thousands separators: `59,388`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Bytes with a binary unit: `512 B`, `1.5 KiB`, `12.0 MiB`.
pub fn bytes(value: f64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut v = value;
    let mut unit = 0;
    while v >= 1024.0 && unit < UNITS.len() - 1 {
        v /= 1024.0;
        unit += 1;
    }
    if unit == 0 { format!("{v:.0} {}", UNITS[0]) } else { format!("{v:.1} {}", UNITS[unit]) }
}

/// A fraction as a percentage: `0.2%`, `45.7%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p > 0.0 && p < 0.1 { format!("{p:.2}%") } else { format!("{p:.1}%") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats() {
        assert_eq!(ms(0.85), "850us");
        assert_eq!(ms(1.1), "1.10ms");
        assert_eq!(ms(12.34), "12.3ms");
        assert_eq!(ms(1520.0), "1.52s");
        assert_eq!(thousands(59388), "59,388");
        assert_eq!(thousands(100), "100");
        assert_eq!(thousands(1_000_000), "1,000,000");
        assert_eq!(rate(1998.5), "1,999");
        assert_eq!(rate(12.5), "12.5");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(percent(0.457), "45.7%");
        assert_eq!(percent(0.0005), "0.05%");
    }
}
