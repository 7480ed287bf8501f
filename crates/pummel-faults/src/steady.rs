//! What "in steady state" means for a run, as the user defines it: `--steady-state` and a
//! plan's `steady_state`, both `key=value` words over the defaults of issue 13.
//!
//! ```text
//! error_rate=1%      highest error rate of a good second (a percentage or a fraction)
//! p99_factor=2       a good second's p99 is at most this many times the baseline's ...
//! p99_slack=20ms     ... or the baseline's plus this, whichever is more
//! ok_share=50%       a good second carries at least this share of the baseline's answers
//! ```

use pummel_results::duration::parse_duration;
use pummel_results::fault::SteadyState;

/// The steady state `text` describes, the defaults for what it leaves out.
pub fn parse_steady_state(text: &str) -> Result<SteadyState, String> {
    let mut steady = SteadyState::default();
    let words: Vec<&str> = text.split_whitespace().collect();
    if words.is_empty() {
        return Err("it is empty (expected e.g. 'error_rate=2% p99_factor=3')".into());
    }
    for word in words {
        let (key, value) = word
            .split_once('=')
            .ok_or_else(|| format!("{word:?} is not key=value (keys: error_rate, p99_factor, p99_slack, ok_share)"))?;
        match key {
            "error_rate" => steady.max_error_rate = fraction(key, value)?,
            "ok_share" => steady.min_ok_share = fraction(key, value)?,
            "p99_factor" => {
                let number = value.strip_suffix('x').unwrap_or(value);
                steady.p99_factor = match number.parse::<f64>() {
                    Ok(f) if f.is_finite() && f >= 1.0 => f,
                    _ => return Err(format!("p99_factor={value}: expected a number of at least 1, e.g. 2 or 2x")),
                };
            }
            "p99_slack" => {
                let slack = parse_duration(value).map_err(|e| format!("p99_slack={value}: {}", e.reason))?;
                steady.p99_slack_ms = slack.as_secs_f64() * 1000.0;
            }
            _ => return Err(format!("unknown key {key:?} (keys: error_rate, p99_factor, p99_slack, ok_share)")),
        }
    }
    Ok(steady)
}

/// `1%` or `0.01` → 0.01, within 0..=1.
fn fraction(key: &str, value: &str) -> Result<f64, String> {
    let parsed = match value.strip_suffix('%') {
        Some(p) => p.parse::<f64>().map(|v| v / 100.0),
        None => value.parse::<f64>(),
    };
    match parsed {
        Ok(f) if (0.0..=1.0).contains(&f) => Ok(f),
        _ => Err(format!("{key}={value}: expected a percentage (1%) or a fraction from 0 to 1")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_override_the_defaults() {
        let s = parse_steady_state("error_rate=5% p99_factor=3x p99_slack=50ms").unwrap();
        assert_eq!((s.max_error_rate, s.p99_factor, s.p99_slack_ms, s.min_ok_share), (0.05, 3.0, 50.0, 0.5));
        assert_eq!(parse_steady_state("ok_share=0.2").unwrap().min_ok_share, 0.2);
        for (bad, want) in [
            ("", "empty"),
            ("error_rate", "not key=value"),
            ("error_rate=5", "a percentage"),
            ("p99_factor=0.5", "at least 1"),
            ("p99_slack=3x", "p99_slack=3x"),
            ("colour=red", "unknown key"),
        ] {
            let err = parse_steady_state(bad).unwrap_err();
            assert!(err.contains(want), "{bad}: {err}");
        }
    }
}
