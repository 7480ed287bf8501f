//! `pummel compare` as text: who is compared, the side-by-side table, the notes, the rules.

use std::fmt::Write;

use super::fail_if::FailIfOutcome;
use super::{Comparison, RunInfo, Unit};
use crate::fmt;

/// Renders the comparison and the `--fail-if` outcomes for a terminal or a CI log.
pub fn text(c: &Comparison, rules: &[FailIfOutcome]) -> String {
    let mut out = String::new();
    let who = |label: &str, r: &RunInfo| {
        format!(
            "{label}  {}  ({}, {}, {} measured{})\n",
            r.path,
            r.target,
            r.started_at,
            fmt::seconds(r.duration_s),
            if r.partial { ", PARTIAL" } else { "" }
        )
    };
    out.push_str(&who("base", &c.base));
    out.push_str(&who("new ", &c.new));
    out.push('\n');
    let header = ["metric", "base", "new", "change", "noise", "verdict"];
    let mut rows: Vec<[String; 6]> = vec![header.map(str::to_string)];
    for r in &c.rows {
        let show = |v: Option<f64>| fmt::or_dash(v, |v| r.metric.show(v));
        let change = match (r.change_pct, r.change) {
            // The error rate's band is in percentage points: so is its change.
            (_, Some(c)) if r.metric.unit() == Unit::Fraction => format!("{:+.2} pp", c * 100.0),
            (Some(pct), _) => fmt::signed_percent(pct),
            (None, Some(c)) if c != 0.0 => fmt::signed_percent(f64::INFINITY.copysign(c)),
            _ => "—".to_string(),
        };
        rows.push([
            r.label.clone(),
            show(r.base),
            show(r.new),
            change,
            r.tolerance.show(),
            r.verdict.word().to_string(),
        ]);
    }
    let widths: Vec<usize> = (0..6).map(|i| rows.iter().map(|r| r[i].chars().count()).max().unwrap_or(0)).collect();
    for row in &rows {
        let mut line = String::new();
        for (i, cell) in row.iter().enumerate() {
            let pad = widths[i] - cell.chars().count();
            match i {
                0 | 5 => {
                    line.push_str(cell);
                    if i == 0 {
                        line.push_str(&" ".repeat(pad));
                    }
                }
                _ => {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                }
            }
            if i < 5 {
                line.push_str("   ");
            }
        }
        let _ = writeln!(out, "{}", line.trim_end());
    }
    let _ = writeln!(
        out,
        "\n\"same\" = within the runs' own noise: 2 × the larger per-second spread of each metric's own series, \
         at least 2 % (error rate: 0.1 point)."
    );
    for note in &c.notes {
        let _ = writeln!(out, "note: {note}");
    }
    if !rules.is_empty() {
        out.push('\n');
        for r in rules {
            let _ = writeln!(out, "{} {}", if r.holds { "FAIL" } else { "ok  " }, r.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compare::fail_if::FailIf;
    use crate::compare::tests::scale_latency;
    use crate::fixture;

    #[test]
    fn table_has_one_line_per_row_and_the_rules() {
        let base = fixture::open_run();
        let new = scale_latency(&base, 2.0);
        let c = Comparison::new(&base, "base.json", &new, "new.json");
        let rule = FailIf::parse("p99>+10%").unwrap().evaluate(&c);
        let text = text(&c, &[rule]);
        assert!(text.contains("metric"));
        let p99 = text.lines().find(|l| l.starts_with("latency p99")).unwrap();
        assert!(p99.ends_with("worse"), "{p99}");
        assert!(p99.contains("+100.0%"), "{p99}");
        assert!(text.contains("FAIL p99>+10%: latency p99 +100.0%"), "{text}");
    }
}
