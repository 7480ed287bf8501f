//! Reading one number out of a Prometheus text exposition (`--probe-metric
//! 'URL#METRIC{label="x"}'`): the target's own `/metrics` (node_exporter, an app's client
//! library) says what its queue or pool holds, and a probe shows it beside the load.
//!
//! A [`MetricSelector`] is a metric name and label matchers (`=` only, as PromQL's simplest
//! selector); it matches a sample whose name is that name and whose labels include every
//! matcher (other labels may be there too). When several samples match, their values are
//! added up — `http_connections{state="idle"}` over every pool, say. Comments, types and
//! timestamps are skipped; `NaN` and infinities are not numbers worth showing and are ignored.

use std::fmt;

/// `METRIC` or `METRIC{label="value",...}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSelector {
    /// The metric's name.
    pub name: String,
    /// Labels a sample must have, with these values.
    pub labels: Vec<(String, String)>,
}

impl fmt::Display for MetricSelector {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.name)?;
        if !self.labels.is_empty() {
            let labels: Vec<String> = self.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
            write!(f, "{{{}}}", labels.join(","))?;
        }
        Ok(())
    }
}

impl std::str::FromStr for MetricSelector {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let text = text.trim();
        let (name, rest) = match text.find('{') {
            Some(at) => (&text[..at], Some(&text[at..])),
            None => (text, None),
        };
        if !is_metric_name(name) {
            return Err(format!("{name:?} is not a metric name (letters, digits, _ and :, not starting with a digit)"));
        }
        let labels = match rest {
            None => Vec::new(),
            Some(braced) => {
                let inner = braced
                    .strip_prefix('{')
                    .and_then(|b| b.strip_suffix('}'))
                    .ok_or_else(|| format!("{text:?}: the labels end with }}"))?;
                parse_labels(inner).map_err(|e| format!("{text:?}: {e}"))?
            }
        };
        Ok(MetricSelector { name: name.to_string(), labels })
    }
}

impl MetricSelector {
    /// The sum of the values of the samples it matches in `exposition`; `None` when none does.
    pub fn value_in(&self, exposition: &str) -> Option<f64> {
        let mut found = None;
        for line in exposition.lines() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, labels, value)) = parse_sample(line) else { continue };
            if name != self.name || !self.labels.iter().all(|wanted| labels.contains(wanted)) {
                continue;
            }
            if value.is_finite() {
                found = Some(found.unwrap_or(0.0) + value);
            }
        }
        found
    }
}

/// Every sample of `exposition`: its name, labels and value (comments, types and timestamps
/// skipped). What `--out prometheus=URL` sends is pummel's own exposition read back this way.
pub fn samples(exposition: &str) -> Vec<(String, Labels, f64)> {
    exposition
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .filter_map(parse_sample)
        .map(|(name, labels, value)| (name.to_string(), labels, value))
        .collect()
}

fn is_metric_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// `a="x",b="y"` (a trailing comma allowed), with `\"`, `\\` and `\n` escapes in values.
fn parse_labels(text: &str) -> Result<Labels, String> {
    let mut labels = Vec::new();
    let mut rest = text.trim();
    while !rest.is_empty() {
        let eq = rest.find('=').ok_or_else(|| format!("expected label=\"value\" at {rest:?}"))?;
        let key = rest[..eq].trim();
        if !is_metric_name(key) || key.contains(':') {
            return Err(format!("{key:?} is not a label name"));
        }
        let after = rest[eq + 1..].trim_start();
        let quoted = after.strip_prefix('"').ok_or_else(|| format!("the value of {key} must be in double quotes"))?;
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, 'n')) => value.push('\n'),
                    Some((_, other)) => value.push(other),
                    None => break,
                },
                '"' => {
                    end = Some(i);
                    break;
                }
                other => value.push(other),
            }
        }
        let end = end.ok_or_else(|| format!("the value of {key} has no closing quote"))?;
        labels.push((key.to_string(), value));
        rest = quoted[end + 1..].trim_start();
        rest = rest.strip_prefix(',').unwrap_or(rest).trim_start();
    }
    Ok(labels)
}

/// Label pairs of a sample or a selector.
pub type Labels = Vec<(String, String)>;

/// `name{labels} value [timestamp]` → its parts; `None` for a line that is not a sample.
fn parse_sample(line: &str) -> Option<(&str, Labels, f64)> {
    let name_end = line.find(|c: char| c == '{' || c.is_whitespace())?;
    let name = &line[..name_end];
    let (labels, rest) = if line[name_end..].starts_with('{') {
        let close = closing_brace(&line[name_end..])? + name_end;
        (parse_labels(&line[name_end + 1..close]).ok()?, &line[close + 1..])
    } else {
        (Vec::new(), &line[name_end..])
    };
    let value = rest.split_whitespace().next()?;
    let value = match value {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        other => other.parse().ok()?,
    };
    Some((name, labels, value))
}

/// Where the `}` that closes a label set starting at `text[0]` is (quotes and escapes kept
/// in mind: a value may hold a brace).
fn closing_brace(text: &str) -> Option<usize> {
    let mut in_quotes = false;
    let mut escaped = false;
    for (i, c) in text.char_indices() {
        match c {
            _ if escaped => escaped = false,
            '\\' if in_quotes => escaped = true,
            '"' => in_quotes = !in_quotes,
            '}' if !in_quotes => return Some(i),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    const EXPOSITION: &str = r#"# HELP queue_length Jobs waiting.
# TYPE queue_length gauge
queue_length 12
pool_connections{pool="db",state="idle"} 3 1700000000000
pool_connections{pool="db",state="busy"} 7
pool_connections{pool="cache",state="busy"} 2.5
odd{path="/a{b}\"c",x="1"} 4
broken_line
nan_metric NaN
"#;

    fn value(selector: &str) -> Option<f64> {
        selector.parse::<MetricSelector>().unwrap().value_in(EXPOSITION)
    }

    #[test]
    fn selectors_parse_and_print() {
        let s: MetricSelector = r#"pool_connections{state="busy", pool="db",}"#.parse().unwrap();
        assert_eq!(s.name, "pool_connections");
        assert_eq!(s.labels, [("state".into(), "busy".into()), ("pool".into(), "db".into())]);
        assert_eq!(s.to_string(), r#"pool_connections{state="busy",pool="db"}"#);
        for bad in ["", "9lives", "a{b=c}", "a{b=\"c}", "a{b=\"c\"", "a b", "a{=\"x\"}"] {
            assert!(bad.parse::<MetricSelector>().is_err(), "{bad:?} is refused");
        }
    }

    #[test]
    fn values_are_found_and_matches_added_up() {
        assert_eq!(value("queue_length"), Some(12.0));
        assert_eq!(value(r#"pool_connections{state="busy",pool="db"}"#), Some(7.0));
        assert_eq!(value(r#"pool_connections{state="busy"}"#), Some(9.5), "every busy pool");
        assert_eq!(value(r#"pool_connections{pool="db"}"#), Some(10.0), "the timestamp is not the value");
        assert_eq!(value(r#"odd{path="/a{b}\"c"}"#), Some(4.0));
        assert_eq!(value(r#"pool_connections{state="gone"}"#), None);
        assert_eq!(value("missing"), None);
        assert_eq!(value("nan_metric"), None);
    }

    #[test]
    fn every_sample_is_read_back() {
        let all = samples(EXPOSITION);
        assert_eq!(all.len(), 6, "{all:?}");
        assert_eq!(all[1].0, "pool_connections");
        assert_eq!(all[1].1, [("pool".into(), "db".into()), ("state".into(), "idle".into())]);
        assert_eq!(all[1].2, 3.0);
        assert!(all[5].2.is_nan());
    }
}
