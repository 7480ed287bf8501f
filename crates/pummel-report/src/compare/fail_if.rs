//! `--fail-if` rules: when does a comparison fail a CI gate.
//!
//! ```text
//! rule   = metric op change          (whitespace allowed between the parts)
//! metric = "p50" | "p90" | "p99" | "max" | "mean" | "service.p99" | "rate" | "error_rate"
//! op     = ">" | "<"
//! change = ["+" | "-"] number unit
//! ```
//!
//! The rule holds when the change from base to new is beyond `change` in the direction of
//! `op`: `p99>+10%` holds when p99 grew by more than 10 %, `rate<-5%` when the rate fell by
//! more than 5 %. Units:
//! - `%`: a relative change, (new − base) / base — for latencies and the rate;
//! - `ms`, `s`, `us` (or `µs`): an absolute change of a latency, `p99>+5ms`;
//! - `/s`, `req/s` or no unit: an absolute change of the rate, `rate<-100/s`;
//! - for `error_rate`, which is already a percentage, the change is always absolute, in
//!   percentage points: `error_rate>+0.5%` (or `+0.5pp`) holds when the error rate rose by more
//!   than half a point, e.g. from 0.2 % to 0.8 %.
//!
//! Rules are judged on the whole-run figures and on the raw change, noise or not. A rule whose
//! figure is missing from either file (no request completed) holds: a gate cannot pass on data
//! it does not have.

use serde::Serialize;

use super::{Comparison, Metric, Unit, relative_change_pct};
use crate::fmt;

/// Which way the change must go for the rule to hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// `>`: the change is above the limit.
    Above,
    /// `<`: the change is below the limit.
    Below,
}

/// The limit of a rule.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Limit {
    /// A relative change in percent (`+10%` is 10.0).
    Relative(f64),
    /// An absolute change in the metric's unit: milliseconds, req/s, or a fraction for the
    /// error rate (`+0.5%` is 0.005).
    Absolute(f64),
}

/// One parsed `--fail-if` rule.
#[derive(Debug, Clone, PartialEq)]
pub struct FailIf {
    /// The rule as written (trimmed).
    pub text: String,
    /// The figure it watches.
    pub metric: Metric,
    /// The direction.
    pub op: Op,
    /// The limit.
    pub limit: Limit,
}

/// A rule that does not parse, with the position of the bad part.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("bad --fail-if '{text}': {message}\n  {text}\n  {caret}", caret = format!("{}^", " ".repeat(*.column)))]
pub struct FailIfError {
    /// The rule as written.
    pub text: String,
    /// Character position of the bad part.
    pub column: usize,
    /// What was expected there.
    pub message: String,
}

/// The verdict of one rule on one comparison.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FailIfOutcome {
    /// The rule as written.
    pub rule: String,
    /// True when the rule holds: the gate fails.
    pub holds: bool,
    /// The measured change in the rule's terms (percent, or the metric's unit); `None` when a
    /// figure is missing.
    pub change: Option<f64>,
    /// One line saying what was measured.
    pub message: String,
}

const METRICS: [(&str, Metric); 8] = [
    ("service.p99", Metric::ServiceP99),
    ("error_rate", Metric::ErrorRate),
    ("rate", Metric::Rate),
    ("mean", Metric::Mean),
    ("max", Metric::Max),
    ("p50", Metric::P50),
    ("p90", Metric::P90),
    ("p99", Metric::P99),
];

impl FailIf {
    /// Parses one rule; the error points at the first bad part.
    pub fn parse(text: &str) -> Result<FailIf, FailIfError> {
        let trimmed = text.trim();
        let chars: Vec<char> = trimmed.chars().collect();
        let err = |column: usize, message: String| FailIfError { text: trimmed.to_string(), column, message };
        let skip_ws = |mut i: usize| {
            while i < chars.len() && chars[i].is_whitespace() {
                i += 1;
            }
            i
        };
        if chars.is_empty() {
            return Err(err(0, "it is empty (expected e.g. p99>+10%)".into()));
        }
        // metric
        let mut i = 0;
        while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == '.') {
            i += 1;
        }
        let word: String = chars[..i].iter().collect();
        let names: Vec<&str> = Metric::ALL.iter().map(|m| m.name()).collect();
        let Some(metric) = METRICS.iter().find(|(n, _)| *n == word).map(|(_, m)| *m) else {
            let what = if word.is_empty() { "a metric".to_string() } else { format!("unknown metric '{word}'") };
            return Err(err(0, format!("{what}: expected one of {}", names.join(", "))));
        };
        // operator
        i = skip_ws(i);
        let op = match chars.get(i) {
            Some('>') => Op::Above,
            Some('<') => Op::Below,
            _ => return Err(err(i, format!("expected > or < after '{word}'"))),
        };
        i += 1;
        if chars.get(i) == Some(&'=') {
            return Err(err(i, "only > and < are supported (a change is rarely exactly equal)".into()));
        }
        // signed number
        i = skip_ws(i);
        let number_start = i;
        if matches!(chars.get(i), Some('+') | Some('-')) {
            i += 1;
        }
        let digits_start = i;
        while i < chars.len() && (chars[i].is_ascii_digit() || chars[i] == '.') {
            i += 1;
        }
        let number: String = chars[number_start..i].iter().collect();
        let value: f64 = match number.parse() {
            Ok(v) if i > digits_start => v,
            _ => return Err(err(number_start, "expected a signed number with a unit, such as +10% or +5ms".into())),
        };
        // unit
        let unit_start = skip_ws(i);
        let unit: String = chars[unit_start..].iter().collect::<String>().trim_end().to_string();
        let bad_unit = |hint: &str| err(unit_start, format!("unit '{unit}' does not fit {word}: {hint}"));
        let limit = match metric.unit() {
            Unit::Ms => match unit.as_str() {
                "%" => Limit::Relative(value),
                "ms" => Limit::Absolute(value),
                "s" => Limit::Absolute(value * 1000.0),
                "us" | "µs" => Limit::Absolute(value / 1000.0),
                "" => {
                    return Err(err(unit_start, format!("{word} needs a unit: % (relative) or ms, s, us (absolute)")));
                }
                _ => return Err(bad_unit("use % (relative) or ms, s, us (absolute)")),
            },
            Unit::PerSecond => match unit.as_str() {
                "%" => Limit::Relative(value),
                "" | "/s" | "req/s" | "rps" => Limit::Absolute(value),
                _ => return Err(bad_unit("use % (relative) or /s (absolute req/s)")),
            },
            Unit::Fraction => match unit.as_str() {
                "%" | "pp" => Limit::Absolute(value / 100.0),
                "" => {
                    return Err(err(
                        unit_start,
                        "error_rate needs % (percentage points, e.g. error_rate>+0.5%)".into(),
                    ));
                }
                _ => return Err(bad_unit("use % or pp (percentage points)")),
            },
        };
        Ok(FailIf { text: trimmed.to_string(), metric, op, limit })
    }

    /// Judges the rule on the whole-run figures of `comparison`.
    pub fn evaluate(&self, comparison: &Comparison) -> FailIfOutcome {
        let row = comparison.run_row(self.metric);
        let values = row.and_then(|r| r.base.zip(r.new));
        let Some((base, new)) = values else {
            return FailIfOutcome {
                rule: self.text.clone(),
                holds: true,
                change: None,
                message: format!("{}: {} is missing from a file, so it cannot pass", self.text, self.metric.label()),
            };
        };
        let (change, limit, shown) = match self.limit {
            Limit::Relative(limit) => {
                let c = relative_change_pct(base, new).unwrap_or(0.0);
                (c, limit, fmt::signed_percent(c))
            }
            Limit::Absolute(limit) => {
                let c = new - base;
                let shown = match self.metric.unit() {
                    Unit::Ms => format!("{}{}", if c < 0.0 { "-" } else { "+" }, fmt::ms(c.abs())),
                    Unit::PerSecond => format!("{:+.1} req/s", c),
                    Unit::Fraction => format!("{:+.2} pp", c * 100.0),
                };
                (c, limit, shown)
            }
        };
        let holds = match self.op {
            Op::Above => change > limit,
            Op::Below => change < limit,
        };
        let message = format!(
            "{}: {} {} ({} → {}): {}",
            self.text,
            self.metric.label(),
            shown,
            self.metric.show(base),
            self.metric.show(new),
            if holds { "HOLDS, fail" } else { "does not hold" }
        );
        FailIfOutcome { rule: self.text.clone(), holds, change: change.is_finite().then_some(change), message }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::tests::scale_latency;
    use crate::fixture;

    #[test]
    fn parses_the_documented_forms() {
        let p = |t| FailIf::parse(t).unwrap();
        assert_eq!(
            p("p99>+10%"),
            FailIf { text: "p99>+10%".into(), metric: Metric::P99, op: Op::Above, limit: Limit::Relative(10.0) }
        );
        assert_eq!(p(" p99 > 5ms ").limit, Limit::Absolute(5.0));
        assert_eq!(p("max>+1.5s").limit, Limit::Absolute(1500.0));
        assert_eq!(p("service.p99>+500us").limit, Limit::Absolute(0.5));
        assert_eq!(
            p("rate<-5%"),
            FailIf { text: "rate<-5%".into(), metric: Metric::Rate, op: Op::Below, limit: Limit::Relative(-5.0) }
        );
        assert_eq!(p("rate<-100/s").limit, Limit::Absolute(-100.0));
        assert_eq!(p("error_rate>+0.5%").limit, Limit::Absolute(0.005));
        assert_eq!(p("error_rate>1pp").limit, Limit::Absolute(0.01));
    }

    #[test]
    fn errors_point_at_the_bad_part() {
        let e = |t| FailIf::parse(t).unwrap_err();
        assert_eq!(e("p98>+10%").column, 0);
        assert!(e("p98>+10%").message.contains("unknown metric 'p98'"));
        assert_eq!(e("p99>=10%").column, 4);
        assert_eq!(e("p99!10%").column, 3);
        assert_eq!(e("p99>abc").column, 4);
        assert_eq!(e("p99>+10").column, 7);
        assert!(e("p99>+10").message.contains("needs a unit"));
        assert_eq!(e("p99>+10kg").column, 7);
        assert!(e("error_rate>1").message.contains("percentage points"));
        assert_eq!(e("").column, 0);
        let shown = e("p99>>10%").to_string();
        assert!(shown.ends_with("p99>>10%\n      ^"), "{shown}");
    }

    #[test]
    fn judges_relative_and_absolute_changes() {
        let base = fixture::open_run();
        let new = scale_latency(&base, 2.0);
        let c = Comparison::new(&base, "a", &new, "b");
        let holds = |t: &str| FailIf::parse(t).unwrap().evaluate(&c).holds;
        assert!(holds("p99>+10%"));
        assert!(!holds("p99>+150%"));
        assert!(holds("p99>+5ms"));
        assert!(!holds("p99<0%"));
        assert!(!holds("rate<-5%"));
        assert!(!holds("error_rate>+0.5%"));
        let outcome = FailIf::parse("p99>+10%").unwrap().evaluate(&c);
        assert!(outcome.message.contains("+100.0%"), "{}", outcome.message);
        assert_eq!(outcome.change, Some(100.0));
    }

    #[test]
    fn a_missing_figure_fails_the_gate() {
        let base = fixture::open_run();
        let mut new = base.clone();
        new.summary.latency_ms = None;
        let c = Comparison::new(&base, "a", &new, "b");
        assert!(FailIf::parse("p99>+10%").unwrap().evaluate(&c).holds);
    }
}
