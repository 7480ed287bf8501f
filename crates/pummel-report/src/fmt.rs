//! Number formatting shared by every output: the page, the markdown tables and `compare`.
//!
//! The same figures as the terminal summary, written the way people read them (`12.3ms`,
//! `2,000`, `1.9%`), so a number looks the same wherever it appears.

/// Milliseconds with a unit: `850us`, `1.10ms`, `12.3ms`, `1.52s`.
pub fn ms(value: f64) -> String {
    if !value.is_finite() {
        "—".to_string()
    } else if value < 1.0 {
        format!("{:.0}us", value * 1000.0)
    } else if value < 10.0 {
        format!("{value:.2}ms")
    } else if value < 1000.0 {
        format!("{value:.1}ms")
    } else {
        format!("{:.2}s", value / 1000.0)
    }
}

/// A rate with thousands separators: `1,998` for large rates, `12.5` for small ones.
pub fn rate(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        "—".to_string()
    } else if value >= 100.0 || value.fract() == 0.0 {
        thousands(value.round() as u64)
    } else {
        format!("{value:.1}")
    }
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

/// A fraction as a percentage: `0%`, `0.05%`, `1.9%`, `45.7%`.
pub fn percent(fraction: f64) -> String {
    let p = fraction * 100.0;
    if p == 0.0 {
        "0%".to_string()
    } else if p > 0.0 && p < 0.1 {
        format!("{p:.2}%")
    } else {
        format!("{p:.1}%")
    }
}

/// A signed change in percent: `+4.2%`, `-0.3%`, `0.0%`, `+∞`.
pub fn signed_percent(change_pct: f64) -> String {
    if change_pct.is_infinite() {
        if change_pct > 0.0 { "+∞".to_string() } else { "-∞".to_string() }
    } else if change_pct.abs() < 0.05 {
        "0.0%".to_string()
    } else {
        format!("{change_pct:+.1}%")
    }
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

/// Seconds as a duration: `850ms`, `10.0 s`, `2m 30s`, `1h 05m`.
pub fn seconds(value: f64) -> String {
    if !value.is_finite() || value < 0.0 {
        "—".to_string()
    } else if value < 1.0 {
        format!("{:.0}ms", value * 1000.0)
    } else if value < 60.0 {
        format!("{value:.1} s")
    } else if value < 3600.0 {
        let s = value.round() as u64;
        format!("{}m {:02}s", s / 60, s % 60)
    } else {
        let m = (value / 60.0).round() as u64;
        format!("{}h {:02}m", m / 60, m % 60)
    }
}

/// A whole number of seconds as a short tick label: `0`, `45s`, `2m`, `1m30s`, `1h`.
pub fn clock(seconds: u64) -> String {
    match seconds {
        0 => "0".to_string(),
        s if s < 60 => format!("{s}s"),
        s if s < 3600 => match s % 60 {
            0 => format!("{}m", s / 60),
            r => format!("{}m{r}s", s / 60),
        },
        s => match (s % 3600) / 60 {
            0 => format!("{}h", s / 3600),
            m => format!("{}h{m}m", s / 3600),
        },
    }
}

/// An optional figure, or `—` when there is none.
pub fn or_dash(value: Option<f64>, format: impl Fn(f64) -> String) -> String {
    value.map(format).unwrap_or_else(|| "—".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_like_the_terminal_summary() {
        assert_eq!(ms(0.85), "850us");
        assert_eq!(ms(1.1), "1.10ms");
        assert_eq!(ms(12.34), "12.3ms");
        assert_eq!(ms(1520.0), "1.52s");
        assert_eq!(rate(1998.4), "1,998");
        assert_eq!(rate(12.5), "12.5");
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(percent(0.0), "0%");
        assert_eq!(percent(0.0005), "0.05%");
        assert_eq!(percent(0.457), "45.7%");
        assert_eq!(signed_percent(4.24), "+4.2%");
        assert_eq!(signed_percent(-0.01), "0.0%");
        assert_eq!(signed_percent(f64::INFINITY), "+∞");
        assert_eq!(bytes(1536.0), "1.5 KiB");
        assert_eq!(seconds(10.0), "10.0 s");
        assert_eq!(seconds(150.0), "2m 30s");
        assert_eq!(clock(90), "1m30s");
        assert_eq!(clock(3600), "1h");
        assert_eq!(or_dash(None, ms), "—");
    }
}
