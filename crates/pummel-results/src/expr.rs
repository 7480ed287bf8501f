//! Pass/fail expressions such as `p99<250ms`, `error_rate<1%` or `rate>=900`.
//!
//! One grammar serves `--threshold` (judged once, on the run's totals), `--abort-when` (judged
//! every second, on a sliding window) and plan files, so a rule means the same thing wherever
//! it is written. An expression is one comparison:
//!
//! ```text
//! expr   = metric op value            (whitespace allowed between the parts)
//! metric = stat | "latency." stat | "service." stat
//!        | "error_rate" | "rate" | "dropped" | "failed" | "completed" | "sent"
//!        | "errors." kind             (kind: snake_case, e.g. timeout, status_5xx)
//!        | "recovery_time" | "fault_errors"
//!        | "lost" | "recovered" | "unexpected" | "unread"
//! stat   = "min" | "mean" | "avg" | "median" | "max" | "p" pct | "p(" pct ")"
//! op     = "<" | "<=" | ">" | ">=" | "==" | "!="
//! value  = number [unit]              (number: digits with an optional decimal point)
//! ```
//!
//! A bare stat means latency (measured from the intended start); `service.` is the time from
//! the actual send. Percentiles lie in (0, 100]: `p999` is short for `p99.9`, `p9999` for
//! `p99.99`, and `p100` is `max`. Values are normalised when parsed:
//! - latency and service time need a duration unit (`us`, `µs`, `ms`, `s`, `m`, `h`, also
//!   `1m30s`) and are stored in milliseconds;
//! - `error_rate` takes a percentage (`1%`, stored as 0.01) or a plain fraction at most 1
//!   (`0.01`): a bare `5` is refused because it is ambiguous;
//! - `rate` is requests per second, plain or with `/s`; counts take plain numbers only;
//! - `recovery_time` (the slowest recovery of the run's faults; none when one did not recover,
//!   so the rule fails) takes a duration, `fault_errors` (requests failed through the faults)
//!   a count;
//! - `lost`, `recovered`, `unexpected` and `unread` (keys, from a plan's `[verify]` read-back of
//!   its writes: see `writes`) take counts.
//!
//! One file over 600 lines: about 550 lines of code (the grammar and its parser belong together); the rest is its tests.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// A summary statistic of a latency distribution.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Stat {
    /// The fastest request.
    Min,
    /// The arithmetic mean (`mean` or `avg`).
    Mean,
    /// A percentile in (0, 100), e.g. 99.9 for `p99.9` or `p999`; `median` is 50.
    Percentile(f64),
    /// The slowest request (`max` or `p100`).
    Max,
}

/// Which measured figure an expression is about.
#[derive(Debug, Clone, PartialEq)]
pub enum Metric {
    /// Latency from the intended start (coordinated omission corrected) of the requests that
    /// succeeded, in milliseconds.
    Latency(Stat),
    /// Service time, from the actual send, of the requests that succeeded, in milliseconds.
    ServiceTime(Stat),
    /// Latency from the intended start of every request that ended, failures included (a
    /// request given up counts at the time it was given up), in milliseconds.
    LatencyAll(Stat),
    /// Failed requests (unanswered included) over requests that ended, a fraction in 0..=1.
    ErrorRate,
    /// Share of probe requests that were OK, a fraction in 0..=1 (`--probe`).
    ProbeOk,
    /// Successful answers per second that arrived inside the measured window.
    Rate,
    /// Requests the schedule wanted to start but could not (count).
    Dropped,
    /// Requests that failed (count).
    Failed,
    /// Requests that completed, successfully or not (count).
    Completed,
    /// Requests sent (count).
    Sent,
    /// Requests sent and still unanswered when the drain time ran out (count).
    Unanswered,
    /// Failures of one kind (`errors.timeout`), named as written; the evaluator decides
    /// whether the kind exists.
    ErrorCount(String),
    /// The longest time any fault's target took to recover after the fault ended, in
    /// milliseconds; undefined when one did not recover (see `recovery`).
    RecoveryTime,
    /// Requests that failed through the faults, from each one's start to its recovery (count).
    FaultErrors,
    /// Keys with an acknowledged write that the read-back found missing or wrong (count).
    Lost,
    /// Keys whose writes were all unknown or failed, found by the read-back anyway (count).
    Recovered,
    /// Values the read-back found that no attempted write wrote (count).
    Unexpected,
    /// Keys whose read-back gave no verdict (count).
    Unread,
}

/// How a metric's value is written and normalised.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    Duration,
    Fraction,
    Rate,
    Count,
}

impl Metric {
    /// True for the figures of a plan's read-back of its writes (`lost`, `recovered`,
    /// `unexpected`, `unread`): known only after the verify phase, never during the load.
    pub fn is_of_writes(&self) -> bool {
        matches!(self, Metric::Lost | Metric::Recovered | Metric::Unexpected | Metric::Unread)
    }

    fn kind(&self) -> Kind {
        match self {
            Metric::Latency(_) | Metric::ServiceTime(_) | Metric::LatencyAll(_) | Metric::RecoveryTime => {
                Kind::Duration
            }
            Metric::ErrorRate | Metric::ProbeOk => Kind::Fraction,
            Metric::Rate => Kind::Rate,
            _ => Kind::Count,
        }
    }
}

impl fmt::Display for Stat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Stat::Min => f.write_str("min"),
            Stat::Mean => f.write_str("mean"),
            Stat::Percentile(p) => write!(f, "p{p}"),
            Stat::Max => f.write_str("max"),
        }
    }
}

/// The canonical spelling, which parses back to the same metric (`p99`, `service.max`).
impl fmt::Display for Metric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Metric::Latency(stat) => write!(f, "{stat}"),
            Metric::ServiceTime(stat) => write!(f, "service.{stat}"),
            Metric::LatencyAll(stat) => write!(f, "latency_all.{stat}"),
            Metric::ErrorRate => f.write_str("error_rate"),
            Metric::ProbeOk => f.write_str("probe_ok"),
            Metric::Rate => f.write_str("rate"),
            Metric::Dropped => f.write_str("dropped"),
            Metric::Failed => f.write_str("failed"),
            Metric::Completed => f.write_str("completed"),
            Metric::Sent => f.write_str("sent"),
            Metric::Unanswered => f.write_str("unanswered"),
            Metric::ErrorCount(kind) => write!(f, "errors.{kind}"),
            Metric::RecoveryTime => f.write_str("recovery_time"),
            Metric::FaultErrors => f.write_str("fault_errors"),
            Metric::Lost => f.write_str("lost"),
            Metric::Recovered => f.write_str("recovered"),
            Metric::Unexpected => f.write_str("unexpected"),
            Metric::Unread => f.write_str("unread"),
        }
    }
}

/// A comparison operator: the measured value goes on its left, the threshold on its right.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CmpOp {
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `==`
    Eq,
    /// `!=`
    Ne,
}

/// Operators longest first, so `<=` is not read as `<` followed by `=`.
const OPS: [(&str, CmpOp); 6] =
    [("<=", CmpOp::Le), (">=", CmpOp::Ge), ("==", CmpOp::Eq), ("!=", CmpOp::Ne), ("<", CmpOp::Lt), (">", CmpOp::Gt)];

impl fmt::Display for CmpOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = OPS.iter().find(|(_, op)| op == self).map_or("?", |(s, _)| s);
        f.write_str(text)
    }
}

/// One parsed comparison, e.g. `p99<250ms`.
///
/// In plan files and results it is (de)serialised as its text, so a bad rule in a plan is
/// reported with the same message as a bad flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Expr {
    /// The text as written (surrounding whitespace trimmed), used in verdicts and messages.
    pub text: String,
    /// What is measured.
    pub metric: Metric,
    /// How the measured value is compared with [`Expr::value`].
    pub op: CmpOp,
    /// The threshold, normalised: durations in milliseconds, percentages as fractions
    /// (`1%` is 0.01), rates and counts as written.
    pub value: f64,
}

/// The verdict of one expression against one [`MetricSource`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Evaluation {
    /// The expression's text.
    pub expr: String,
    /// Whether it held; false when the value was unavailable.
    pub pass: bool,
    /// The measured value (normalised like [`Expr::value`]), or `None` when the source had
    /// none, e.g. latency before any request completed.
    pub value: Option<f64>,
}

/// Anything that can answer the metrics: the run's totals, a sliding window, one request
/// name's stats. Values use [`Expr::value`]'s units (milliseconds, fractions, req/s, counts).
pub trait MetricSource {
    /// The current value of `metric`, or `None` when it is undefined or unknown here.
    fn metric_value(&self, metric: &Metric) -> Option<f64>;
}

/// Lets a closure serve as a source, handy for tests and one-off lookups.
impl<F: Fn(&Metric) -> Option<f64>> MetricSource for F {
    fn metric_value(&self, metric: &Metric) -> Option<f64> {
        self(metric)
    }
}

/// Relative tolerance under which two values count as equal, so `error_rate==1%` holds for
/// 3/300 despite binary rounding.
const EPSILON: f64 = 1e-9;

impl Expr {
    /// Parses one expression; the error points at the first bad part and says what was
    /// expected there.
    pub fn parse(text: &str) -> Result<Expr, ExprError> {
        let mut p = Parser { input: text, pos: 0 };
        p.skip_ws();
        if p.rest().is_empty() {
            return Err(p.err(p.pos, "it is empty (expected e.g. p99<250ms or error_rate<1%)"));
        }
        let (start, name) = p.take_while(|c| !c.is_whitespace() && !"<>=!".contains(c));
        let metric = p.metric(name, start)?;
        p.skip_ws();
        let op = p.operator(name)?;
        p.skip_ws();
        let value = p.value(&metric, name)?;
        p.skip_ws();
        if !p.rest().is_empty() {
            let msg =
                format!("unexpected {:?} after the value (one comparison per expression, e.g. p99<250ms)", p.rest());
            return Err(p.err(p.pos, msg));
        }
        Ok(Expr { text: text.trim().to_string(), metric, op, value })
    }

    /// Whether `measured` (normalised like [`Expr::value`]) satisfies the comparison.
    /// Equality allows a relative error of 1e-9; a NaN measurement never holds.
    pub fn holds(&self, measured: f64) -> bool {
        if measured.is_nan() {
            return false;
        }
        let scale = measured.abs().max(self.value.abs());
        let eq = measured == self.value || (measured - self.value).abs() <= EPSILON * scale;
        match self.op {
            CmpOp::Lt => !eq && measured < self.value,
            CmpOp::Le => eq || measured < self.value,
            CmpOp::Gt => !eq && measured > self.value,
            CmpOp::Ge => eq || measured > self.value,
            CmpOp::Eq => eq,
            CmpOp::Ne => !eq,
        }
    }

    /// Judges the expression against `source`. A missing value fails: a rule never passes
    /// just because nothing was measured.
    pub fn evaluate(&self, source: &dyn MetricSource) -> Evaluation {
        let value = source.metric_value(&self.metric);
        let pass = value.is_some_and(|v| self.holds(v));
        Evaluation { expr: self.text.clone(), pass, value }
    }

    /// Renders a measured value in the expression's unit: durations as `850us`, `241.3ms` or
    /// `1.50s` by magnitude, error rates as `1.20%`, rates as `950.0`, counts as `0`; a value
    /// that is not finite prints as `NaN` or `inf`.
    pub fn format_value(&self, measured: f64) -> String {
        match self.metric.kind() {
            _ if !measured.is_finite() => format!("{measured}"),
            Kind::Duration if measured.abs() < 1.0 => format!("{:.0}us", measured * 1e3),
            Kind::Duration if measured.abs() < 1e3 => format!("{measured:.1}ms"),
            Kind::Duration => format!("{:.2}s", measured / 1e3),
            Kind::Fraction => format!("{:.2}%", measured * 100.0),
            Kind::Rate => format!("{measured:.1}"),
            Kind::Count => format!("{measured:.0}"),
        }
    }
}

/// Shows the original text, so verdicts read exactly as the user wrote them.
impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl FromStr for Expr {
    type Err = ExprError;

    fn from_str(text: &str) -> Result<Expr, ExprError> {
        Expr::parse(text)
    }
}

impl TryFrom<String> for Expr {
    type Error = ExprError;

    fn try_from(text: String) -> Result<Expr, ExprError> {
        Expr::parse(&text)
    }
}

impl From<Expr> for String {
    fn from(expr: Expr) -> String {
        expr.text
    }
}

/// Why an expression was not understood; its `Display` draws a caret under the bad part.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid expression {input:?}: {message}\n  {}\n  {}^", shown(.input), caret_pad(.input, *.position))]
pub struct ExprError {
    /// The text that was given, untrimmed.
    pub input: String,
    /// Byte offset in `input` of the part that is wrong.
    pub position: usize,
    /// What is wrong and what was expected instead.
    pub message: String,
}

/// The input on one line: control characters (tabs, newlines) become spaces so the caret
/// stays aligned.
fn shown(input: &str) -> String {
    input.chars().map(|c| if c.is_control() { ' ' } else { c }).collect()
}

/// Spaces up to the character at byte `position`.
fn caret_pad(input: &str, position: usize) -> String {
    let before = input.get(..position).unwrap_or(input);
    " ".repeat(before.chars().count())
}

const METRICS: &str = "p50, p99, p99.9, min, mean, max, latency.<stat>, service.<stat>, latency_all.<stat>, \
                       error_rate, probe_ok, rate, dropped, failed, unanswered, completed, sent, errors.<kind>, \
                       recovery_time, fault_errors, lost, recovered, unexpected or unread";
const STATS: &str = "min, mean, max or a percentile such as p50, p99, p99.9";
const OP_LIST: &str = "<, <=, >, >=, == or !=";

/// A cursor over the input; every position it reports is a byte offset in the original text.
struct Parser<'a> {
    input: &'a str,
    pos: usize,
}

impl<'a> Parser<'a> {
    fn rest(&self) -> &'a str {
        self.input.get(self.pos..).unwrap_or("")
    }

    fn err(&self, position: usize, message: impl Into<String>) -> ExprError {
        ExprError { input: self.input.to_string(), position, message: message.into() }
    }

    fn skip_ws(&mut self) {
        let rest = self.rest();
        self.pos += rest.len() - rest.trim_start().len();
    }

    /// Consumes the longest prefix whose characters satisfy `keep`; returns its start and text.
    fn take_while(&mut self, keep: impl Fn(char) -> bool) -> (usize, &'a str) {
        let (start, rest) = (self.pos, self.rest());
        let len = rest.find(|c| !keep(c)).unwrap_or(rest.len());
        self.pos += len;
        (start, rest.get(..len).unwrap_or(""))
    }

    fn metric(&self, name: &str, start: usize) -> Result<Metric, ExprError> {
        let metric = match name {
            "" => return Err(self.err(start, format!("missing metric (use {METRICS})"))),
            "error_rate" => Metric::ErrorRate,
            "probe_ok" => Metric::ProbeOk,
            "rate" => Metric::Rate,
            "dropped" => Metric::Dropped,
            "failed" => Metric::Failed,
            "completed" => Metric::Completed,
            "sent" => Metric::Sent,
            "unanswered" => Metric::Unanswered,
            "recovery_time" => Metric::RecoveryTime,
            "fault_errors" => Metric::FaultErrors,
            "lost" => Metric::Lost,
            "recovered" => Metric::Recovered,
            "unexpected" => Metric::Unexpected,
            "unread" => Metric::Unread,
            _ => {
                if let Some(kind) = name.strip_prefix("errors.") {
                    let snake = kind.starts_with(|c: char| c.is_ascii_lowercase())
                        && kind.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
                    if !snake {
                        let msg = format!("error kind {kind:?} is not a snake_case name (e.g. errors.timeout)");
                        return Err(self.err(start + 7, msg));
                    }
                    return Ok(Metric::ErrorCount(kind.to_string()));
                }
                if let Some(stat) = name.strip_prefix("latency.") {
                    return self.stat(stat, start + 8).map(Metric::Latency);
                }
                if let Some(stat) = name.strip_prefix("service.") {
                    return self.stat(stat, start + 8).map(Metric::ServiceTime);
                }
                if let Some(stat) = name.strip_prefix("latency_all.") {
                    return self.stat(stat, start + 12).map(Metric::LatencyAll);
                }
                let percentile_like = name.strip_prefix('p').is_some_and(|after| {
                    after.is_empty() || after.starts_with(|c: char| c.is_ascii_digit() || ".(".contains(c))
                });
                match self.stat(name, start) {
                    Ok(stat) => Metric::Latency(stat),
                    Err(e) if percentile_like => return Err(e),
                    Err(_) => {
                        return Err(self.err(start, format!("unknown metric {name:?} (use {METRICS})")));
                    }
                }
            }
        };
        Ok(metric)
    }

    fn stat(&self, name: &str, start: usize) -> Result<Stat, ExprError> {
        let (digits, at) = match name {
            "min" => return Ok(Stat::Min),
            "mean" | "avg" => return Ok(Stat::Mean),
            "max" => return Ok(Stat::Max),
            "median" => return Ok(Stat::Percentile(50.0)),
            _ => match (name.strip_prefix("p("), name.strip_prefix('p')) {
                (Some(inner), _) => match inner.strip_suffix(')') {
                    Some(digits) => (digits, start + 2),
                    None => {
                        return Err(self.err(start + name.len(), "missing \")\" after the percentile, e.g. p(99)"));
                    }
                },
                (None, Some(digits)) => (digits, start + 1),
                (None, None) => {
                    return Err(self.err(start, format!("unknown statistic {name:?} (use {STATS})")));
                }
            },
        };
        let bad = |what: &str| self.err(at, format!("{what} (expected e.g. p50, p99, p99.9 or p999)"));
        if digits.is_empty() {
            return Err(bad("missing percentile after \"p\""));
        }
        if !digits.chars().all(|c| c.is_ascii_digit() || c == '.') {
            return Err(bad(&format!("bad percentile {digits:?}")));
        }
        // p999 is p99.9 and p9999 is p99.99: the digits after "99" are decimals.
        let text = match digits.strip_prefix("99") {
            Some(decimals) if !decimals.is_empty() && !digits.contains('.') => {
                format!("99.{decimals}")
            }
            _ => digits.to_string(),
        };
        match text.parse::<f64>() {
            Err(_) => Err(bad(&format!("bad percentile {digits:?}"))),
            Ok(p) if p <= 0.0 || p > 100.0 => Err(bad("a percentile must be above 0 and at most 100")),
            Ok(100.0) => Ok(Stat::Max),
            Ok(p) => Ok(Stat::Percentile(p)),
        }
    }

    fn operator(&mut self, after: &str) -> Result<CmpOp, ExprError> {
        let rest = self.rest();
        if let Some((text, op)) = OPS.iter().find(|(text, _)| rest.starts_with(text)) {
            self.pos += text.len();
            return Ok(*op);
        }
        let msg = match rest.chars().next() {
            None => format!("missing operator after {after:?} (use {OP_LIST})"),
            Some('=') => format!("use == to compare for equality (operators: {OP_LIST})"),
            Some(c) => format!("expected an operator after {after:?}, found {c:?} (use {OP_LIST})"),
        };
        Err(self.err(self.pos, msg))
    }

    /// Reads `<digits>[.<digits>]`; `example` shows a good value in messages.
    fn number(&mut self, example: &str) -> Result<(usize, f64), ExprError> {
        let (start, text) = self.take_while(|c| c.is_ascii_digit() || c == '.');
        if text.is_empty() {
            let msg = match self.rest().chars().next() {
                None => {
                    format!("missing value after the operator (expected a number, e.g. {example})")
                }
                Some('-') => format!("values cannot be negative (expected e.g. {example})"),
                Some(c) => format!("expected a number, found {c:?} (e.g. {example})"),
            };
            return Err(self.err(start, msg));
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok((start, v)),
            Ok(_) => Err(self.err(start, format!("number {text:?} is too large"))),
            Err(_) => Err(self.err(start, format!("bad number {text:?} (expected e.g. {example})"))),
        }
    }

    /// Reads a unit after optional whitespace: `%`, `/s`, or a run of letters. When none
    /// follows, returns "" at the position right after the number.
    fn unit(&mut self) -> (usize, &'a str) {
        let save = self.pos;
        self.skip_ws();
        let rest = self.rest();
        let letters = |s: &str| s.find(|c: char| !c.is_alphabetic()).unwrap_or(s.len());
        let len = match rest.strip_prefix('/') {
            _ if rest.starts_with('%') => 1,
            Some(after) => 1 + letters(after),
            None => letters(rest),
        };
        if len == 0 {
            self.pos = save;
            return (save, "");
        }
        let start = self.pos;
        self.pos += len;
        (start, rest.get(..len).unwrap_or(""))
    }

    fn value(&mut self, metric: &Metric, name: &str) -> Result<f64, ExprError> {
        let kind = metric.kind();
        let example = match kind {
            Kind::Duration => "250ms",
            Kind::Fraction => "1%",
            Kind::Rate => "900",
            Kind::Count => "0",
        };
        let (number_at, number) = self.number(example)?;
        let (unit_at, unit) = self.unit();
        let value = match (kind, unit) {
            (Kind::Duration, "") => {
                return Err(self.err(unit_at, format!("{name} needs a unit, e.g. 250ms")));
            }
            (Kind::Duration, _) => self.duration(number, unit_at, unit)?,
            (Kind::Fraction, "%") => number / 100.0,
            (Kind::Fraction, "") if number <= 1.0 => number,
            (Kind::Fraction, "") => {
                let msg = format!("error_rate is a fraction: write {number}% or at most 1, e.g. 0.01");
                return Err(self.err(number_at, msg));
            }
            (Kind::Fraction, _) => {
                return Err(self.unknown_unit(unit_at, unit, "use % or a plain fraction"));
            }
            (Kind::Rate, "" | "/s") | (Kind::Count, "") => number,
            (_, "%") => {
                let msg = format!("{name} takes a plain number, not a percentage (e.g. {example})");
                return Err(self.err(unit_at, msg));
            }
            (Kind::Rate, _) => {
                return Err(self.unknown_unit(unit_at, unit, "rate is per second: write 900 or 900/s"));
            }
            (Kind::Count, _) => {
                let msg = format!("{name} is a count and takes a plain number, e.g. {name}<10");
                return Err(self.unknown_unit(unit_at, unit, &msg));
            }
        };
        if !value.is_finite() {
            return Err(self.err(number_at, "value is too large"));
        }
        Ok(value)
    }

    /// Converts `<number><unit>` to milliseconds, continuing over compound forms like `1m30s`.
    fn duration(&mut self, mut number: f64, mut unit_at: usize, mut unit: &'a str) -> Result<f64, ExprError> {
        let mut total = 0.0;
        loop {
            let scale = match unit {
                "us" | "µs" | "μs" => 1e-3,
                "ms" => 1.0,
                "s" => 1e3,
                "m" => 6e4,
                "h" => 3.6e6,
                "" => {
                    return Err(self.err(unit_at, "missing unit after the last number (use us, ms, s, m or h)"));
                }
                _ => return Err(self.unknown_unit(unit_at, unit, "use us, ms, s, m or h")),
            };
            total += number * scale;
            if !self.rest().starts_with(|c: char| c.is_ascii_digit() || c == '.') {
                return Ok(total);
            }
            number = self.number("1m30s")?.1;
            (unit_at, unit) = self.unit();
        }
    }

    fn unknown_unit(&self, at: usize, unit: &str, expected: &str) -> ExprError {
        self.err(at, format!("unknown unit {unit:?} ({expected})"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn close(a: f64, b: f64) -> bool {
        a == b || (a - b).abs() <= 1e-12 * a.abs().max(b.abs())
    }

    fn check(text: &str, metric: Metric, op: CmpOp, value: f64) {
        let expr = Expr::parse(text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(expr.metric, metric, "{text}");
        assert_eq!(expr.op, op, "{text}");
        assert!(close(expr.value, value), "{text}: {} != {value}", expr.value);
        assert_eq!(expr.text, text.trim());
    }

    fn p(pct: f64) -> Metric {
        Metric::Latency(Stat::Percentile(pct))
    }

    #[test]
    fn parses_every_documented_example() {
        use CmpOp::*;
        check("p99<250ms", p(99.0), Lt, 250.0);
        check("p50<=20ms", p(50.0), Le, 20.0);
        check("mean<100ms", Metric::Latency(Stat::Mean), Lt, 100.0);
        check("max<2s", Metric::Latency(Stat::Max), Lt, 2000.0);
        check("error_rate<1%", Metric::ErrorRate, Lt, 0.01);
        check("rate>=900", Metric::Rate, Ge, 900.0);
        check("dropped==0", Metric::Dropped, Eq, 0.0);
        check("p99.9<1s", p(99.9), Lt, 1000.0);
        check("p999<1s", p(99.9), Lt, 1000.0);
        check("error_rate>50%", Metric::ErrorRate, Gt, 0.5);
        check("service.p99<50ms", Metric::ServiceTime(Stat::Percentile(99.0)), Lt, 50.0);
        check("latency.p99<250ms", p(99.0), Lt, 250.0);
        check("errors.timeout==0", Metric::ErrorCount("timeout".into()), Eq, 0.0);
        check("failed<10", Metric::Failed, Lt, 10.0);
        check("completed>=5000", Metric::Completed, Ge, 5000.0);
        check("min>1ms", Metric::Latency(Stat::Min), Gt, 1.0);
        check("sent!=0", Metric::Sent, Ne, 0.0);
        check("unanswered==0", Metric::Unanswered, Eq, 0.0);
        check("latency_all.p50<10ms", Metric::LatencyAll(Stat::Percentile(50.0)), Lt, 10.0);
        check("recovery_time<10s", Metric::RecoveryTime, Lt, 10_000.0);
        check("fault_errors<500", Metric::FaultErrors, Lt, 500.0);
        check("lost==0", Metric::Lost, Eq, 0.0);
        check("recovered>=1", Metric::Recovered, Ge, 1.0);
        check("unexpected==0", Metric::Unexpected, Eq, 0.0);
        check("unread<10", Metric::Unread, Lt, 10.0);
    }

    #[test]
    fn allows_whitespace_between_tokens() {
        check("  p99 < 250 ms ", p(99.0), CmpOp::Lt, 250.0);
        check("rate >= 900 /s", Metric::Rate, CmpOp::Ge, 900.0);
        check("error_rate\t<\t1 %", Metric::ErrorRate, CmpOp::Lt, 0.01);
    }

    #[test]
    fn normalises_durations_to_milliseconds() {
        let lt = CmpOp::Lt;
        check("p99<500us", p(99.0), lt, 0.5);
        check("p99<500µs", p(99.0), lt, 0.5);
        check("p99<1m", p(99.0), lt, 60_000.0);
        check("p99<1h", p(99.0), lt, 3_600_000.0);
        check("p99<1m30s", p(99.0), lt, 90_000.0);
        check("p99<0.25s", p(99.0), lt, 250.0);
    }

    #[test]
    fn percentile_forms() {
        let lt = CmpOp::Lt;
        check("p9999<1s", p(99.99), lt, 1000.0);
        check("p995<1s", p(99.5), lt, 1000.0);
        check("p(95)<500ms", p(95.0), lt, 500.0);
        check("p0.5<1ms", p(0.5), lt, 1.0);
        check("median<1ms", p(50.0), lt, 1.0);
        check("avg<1ms", Metric::Latency(Stat::Mean), lt, 1.0);
        check("p100<1s", Metric::Latency(Stat::Max), lt, 1000.0);
        check("service.max<1s", Metric::ServiceTime(Stat::Max), lt, 1000.0);
    }

    #[test]
    fn error_rate_takes_percent_or_fraction_and_rate_takes_per_second() {
        check("error_rate<0.5%", Metric::ErrorRate, CmpOp::Lt, 0.005);
        check("error_rate<0.01", Metric::ErrorRate, CmpOp::Lt, 0.01);
        check("error_rate<=1", Metric::ErrorRate, CmpOp::Le, 1.0);
        check("rate>=900/s", Metric::Rate, CmpOp::Ge, 900.0);
        check("rate>=12.5", Metric::Rate, CmpOp::Ge, 12.5);
    }

    #[test]
    fn holds_for_each_operator_with_edge_equality() {
        let cases = [
            ("dropped<10", [true, false, false]),
            ("dropped<=10", [true, true, false]),
            ("dropped>10", [false, false, true]),
            ("dropped>=10", [false, true, true]),
            ("dropped==10", [false, true, false]),
            ("dropped!=10", [true, false, true]),
        ];
        for (text, expected) in cases {
            let expr = Expr::parse(text).unwrap();
            let got = [9.0, 10.0, 11.0].map(|v| expr.holds(v));
            assert_eq!(got, expected, "{text}");
            assert!(!expr.holds(f64::NAN), "{text} must not hold for NaN");
        }
        // 3/300 is 1% although binary fractions differ in the last bit.
        assert!(Expr::parse("error_rate==1%").unwrap().holds(3.0 / 300.0));
        assert!(Expr::parse("error_rate<=0.3%").unwrap().holds(0.1 * 0.03));
    }

    struct Totals;

    impl MetricSource for Totals {
        fn metric_value(&self, metric: &Metric) -> Option<f64> {
            match metric {
                Metric::Latency(Stat::Percentile(p)) if *p == 99.0 => Some(200.0),
                Metric::ErrorRate => Some(0.02),
                Metric::Dropped => Some(0.0),
                _ => None,
            }
        }
    }

    #[test]
    fn evaluate_uses_the_source_and_fails_without_a_value() {
        let eval = |text: &str| Expr::parse(text).unwrap().evaluate(&Totals);
        let ok = eval("p99<250ms");
        assert_eq!(ok, Evaluation { expr: "p99<250ms".into(), pass: true, value: Some(200.0) });
        assert_eq!(eval("error_rate<1%").value, Some(0.02));
        assert!(!eval("error_rate<1%").pass);
        assert!(eval("dropped==0").pass);
        for undefined in ["p50<1h", "p50>=0ms", "errors.timeout!=5", "rate>=0"] {
            let e = eval(undefined);
            assert!(!e.pass && e.value.is_none(), "{undefined} passed vacuously");
        }
        let closure = |m: &Metric| (*m == Metric::Rate).then_some(950.0);
        assert!(Expr::parse("rate>=900/s").unwrap().evaluate(&closure).pass);
    }

    #[test]
    fn errors_point_at_the_bad_part() {
        let cases: &[(&str, usize, &str)] = &[
            ("p99<25x", 6, "unknown unit \"x\" (use us, ms, s, m or h)"),
            ("", 0, "empty"),
            ("   ", 3, "empty"),
            ("foo<1", 0, "unknown metric \"foo\" (use p50"),
            ("<250ms", 0, "missing metric"),
            ("p99", 3, "missing operator after \"p99\" (use <, <=, >, >=, == or !=)"),
            ("p99 250ms", 4, "expected an operator"),
            ("p99=250ms", 3, "use =="),
            ("p99<", 4, "missing value"),
            ("p99 < ms", 6, "expected a number, found 'm'"),
            ("p99<-1ms", 4, "cannot be negative"),
            ("p99<1.2.3ms", 4, "bad number \"1.2.3\""),
            ("p99<250", 7, "p99 needs a unit, e.g. 250ms"),
            ("latency.p99 < 250", 17, "latency.p99 needs a unit"),
            ("p99<250%", 7, "unknown unit \"%\""),
            ("p99<250ms5", 10, "missing unit after the last number"),
            ("p99<250ms extra", 10, "unexpected \"extra\""),
            ("p99 < 250 ms ms", 13, "unexpected \"ms\""),
            ("p0<1ms", 1, "above 0 and at most 100"),
            ("p101<1ms", 1, "above 0 and at most 100"),
            ("p<1ms", 1, "missing percentile"),
            ("p9x<1ms", 1, "bad percentile \"9x\""),
            ("p(99<1ms", 4, "missing \")\""),
            ("latency.foo<1ms", 8, "unknown statistic \"foo\""),
            ("service.<1ms", 8, "unknown statistic"),
            ("errors.Timeout==0", 7, "snake_case"),
            ("errors.==0", 7, "snake_case"),
            ("error_rate<5", 11, "error_rate is a fraction: write 5%"),
            ("error_rate<5ms", 12, "unknown unit \"ms\" (use % or a plain fraction)"),
            ("dropped<5%", 9, "dropped takes a plain number, not a percentage"),
            ("dropped<5ms", 9, "dropped is a count"),
            ("rate>=900rps", 9, "unknown unit \"rps\""),
            ("rate>=900%", 9, "not a percentage"),
        ];
        for &(input, position, message) in cases {
            let err = Expr::parse(input).expect_err(input);
            assert_eq!(err.position, position, "{input}: {}", err.message);
            assert!(err.message.contains(message), "{input}: {:?} lacks {message:?}", err.message);
            assert_eq!(err.input, input);
        }
        let huge = format!("max<{}h", "9".repeat(400));
        assert_eq!(Expr::parse(&huge).expect_err("huge").position, 4);
    }

    #[test]
    fn error_display_draws_a_caret() {
        let err = Expr::parse("p99<25x").unwrap_err();
        let want = "invalid expression \"p99<25x\": unknown unit \"x\" (use us, ms, s, m or h)\n  \
                    p99<25x\n        ^";
        assert_eq!(err.to_string(), want);
        // The caret counts characters, not bytes (µ is two bytes).
        let err = Expr::parse("p99<1µs x").unwrap_err();
        assert_eq!(err.position, 9);
        assert!(err.to_string().ends_with("\n  p99<1µs x\n          ^"), "{err}");
    }

    #[test]
    fn format_value_uses_the_expression_unit() {
        let fmt = |text: &str, v: f64| Expr::parse(text).unwrap().format_value(v);
        assert_eq!(fmt("p99<250ms", 241.34), "241.3ms");
        assert_eq!(fmt("p99<250ms", 0.85), "850us");
        assert_eq!(fmt("max<2s", 1500.0), "1.50s");
        assert_eq!(fmt("error_rate<1%", 0.012), "1.20%");
        assert_eq!(fmt("rate>=900", 950.0), "950.0");
        assert_eq!(fmt("dropped==0", 0.0), "0");
        assert_eq!(fmt("errors.timeout<3", 12.0), "12");
        assert_eq!(fmt("p99<1s", f64::NAN), "NaN");
    }

    #[test]
    fn display_fromstr_and_serde_use_the_text() {
        let expr: Expr = " p99 < 250ms ".parse().unwrap();
        assert_eq!(expr.to_string(), "p99 < 250ms");
        let json = serde_json::to_string(&expr).unwrap();
        assert_eq!(json, "\"p99 < 250ms\"");
        assert_eq!(serde_json::from_str::<Expr>(&json).unwrap(), expr);
        let bad = serde_json::from_str::<Expr>("\"p99<250\"").unwrap_err();
        assert!(bad.to_string().contains("p99 needs a unit"), "{bad}");
    }

    fn assert_sane(text: &str) {
        match Expr::parse(text) {
            Ok(expr) => assert_eq!(Expr::parse(&expr.to_string()), Ok(expr)),
            Err(err) => {
                assert!(err.position <= text.len() && text.is_char_boundary(err.position));
                let _ = err.to_string();
            }
        }
    }

    fn metric_strategy() -> impl Strategy<Value = Metric> {
        let stat = prop_oneof![
            Just(Stat::Min),
            Just(Stat::Mean),
            Just(Stat::Max),
            (0.001f64..100.0).prop_map(Stat::Percentile),
        ];
        prop_oneof![
            stat.clone().prop_map(Metric::Latency),
            stat.clone().prop_map(Metric::ServiceTime),
            stat.prop_map(Metric::LatencyAll),
            Just(Metric::ErrorRate),
            Just(Metric::ProbeOk),
            Just(Metric::Rate),
            Just(Metric::Dropped),
            Just(Metric::Failed),
            Just(Metric::Completed),
            Just(Metric::Sent),
            Just(Metric::Unanswered),
            Just(Metric::RecoveryTime),
            Just(Metric::FaultErrors),
            Just(Metric::Lost),
            Just(Metric::Recovered),
            Just(Metric::Unexpected),
            Just(Metric::Unread),
            "[a-z][a-z0-9_]{0,12}".prop_map(Metric::ErrorCount),
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_strings_never_panic(text in any::<String>()) {
            assert_sane(&text);
        }

        #[test]
        fn near_miss_strings_never_panic(text in "[ \tp0-9.<>=!%/a-z_()µ]{0,24}") {
            assert_sane(&text);
        }

        #[test]
        fn parsed_display_round_trips(
            metric in metric_strategy(),
            op in 0usize..6,
            value in 0.0f64..1e6,
            spaces in any::<bool>(),
        ) {
            let op = OPS[op].1;
            let (unit, expected) = match metric.kind() {
                Kind::Duration => ("ms", value),
                Kind::Fraction => ("%", value / 100.0),
                Kind::Rate => ("/s", value),
                Kind::Count => ("", value),
            };
            let sep = if spaces { " " } else { "" };
            let text = format!("{metric}{sep}{op}{sep}{value}{sep}{unit}");
            let expr = Expr::parse(&text).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert_eq!(&expr.metric, &metric);
            prop_assert_eq!(expr.op, op);
            prop_assert!(close(expr.value, expected), "{} vs {}", expr.value, expected);
            prop_assert_eq!(Expr::parse(&expr.to_string()), Ok(expr));
        }
    }
}
