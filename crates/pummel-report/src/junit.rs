//! JUnit XML of a run: what CI systems (Jenkins, GitLab, GitHub test reporters) read to show
//! which checks of a load test passed.
//!
//! One `<testsuite>` per run, with a `<testcase>` for each threshold verdict
//! (`summary.thresholds`, per-name thresholds of plan files included) and each named check
//! (`summary.checks`, judged on its pass rate: a check that some response failed is a
//! failure), a case `run completed as planned` (a failure when an abort rule ended the run, an
//! error when it was interrupted, so a partial run never looks green), and for find-limit one
//! case per step and one for the capacity found. Every failure carries the measured value and
//! the limit, in its `message` and its text; every case says what was measured in its
//! `<system-out>`. The run's key figures are `<properties>` of the suite.
//!
//! The XML is written by `quick-xml`, which escapes every text and attribute; characters that
//! XML 1.0 cannot hold at all (most control characters) become U+FFFD.

use pummel_results::document::{FindLimitReport, ResultsDocument};
use pummel_results::expr::Expr;
use pummel_results::summary::{CheckSummary, StageSummary, Summary, ThresholdVerdict};
use quick_xml::Writer;
use quick_xml::events::{BytesCData, BytesDecl, Event};

use crate::fmt::{ms, percent, rate};

/// `classname` of threshold cases.
pub const THRESHOLDS: &str = "pummel.thresholds";
/// `classname` of check cases.
pub const CHECKS: &str = "pummel.checks";
/// `classname` of the case saying whether the run went to its planned end.
pub const RUN: &str = "pummel.run";
/// `classname` of find-limit's step and capacity cases.
pub const FIND_LIMIT: &str = "pummel.find_limit";
/// Name of the case saying whether the run went to its planned end.
pub const RUN_COMPLETED: &str = "run completed as planned";

/// What one test case concluded.
#[derive(Debug, Clone, PartialEq)]
enum Verdict {
    Pass,
    /// `<failure>`: the condition was judged and did not hold.
    Failure {
        kind: &'static str,
        message: String,
        text: String,
    },
    /// `<error>`: the condition could not be judged to the end (the run was interrupted).
    Error {
        kind: &'static str,
        message: String,
    },
    /// `<skipped>`: nothing to judge (a check that never ran).
    Skipped {
        message: String,
    },
}

/// One `<testcase>`.
#[derive(Debug, Clone, PartialEq)]
struct Case {
    name: String,
    classname: &'static str,
    verdict: Verdict,
    /// What was measured, for `<system-out>`.
    out: String,
}

/// Renders `doc` as a JUnit XML document whose suite is called `suite`, e.g.
/// `pummel run GET http://127.0.0.1:8090/`.
pub fn render(doc: &ResultsDocument, suite: &str) -> std::io::Result<String> {
    let summary = &doc.summary;
    let mut cases = Vec::new();
    cases.extend(summary.thresholds.iter().map(threshold_case));
    cases.extend(summary.checks.iter().map(check_case));
    if let Some(report) = &doc.find_limit {
        cases.extend(step_cases(report, &summary.stages));
        cases.push(capacity_case(report));
    }
    cases.push(run_case(summary));
    write(doc, summary, suite, &cases)
}

/// A threshold verdict: the expression is the case's name.
fn threshold_case(verdict: &ThresholdVerdict) -> Case {
    let verdict_expr = verdict.expr.clone();
    let limit = limit_of(&verdict.expr);
    let measured = match (&verdict.shown, verdict.value) {
        (Some(shown), Some(value)) => format!("{shown} ({value})"),
        (Some(shown), None) => shown.clone(),
        (None, Some(value)) => value.to_string(),
        (None, None) => "nothing (no data to judge)".to_string(),
    };
    let out = format!("measured: {measured}\nlimit: {limit}\n");
    let verdict = if verdict.pass {
        Verdict::Pass
    } else {
        let value = verdict.shown.clone().unwrap_or_else(|| "no data".to_string());
        Verdict::Failure {
            kind: "threshold",
            message: format!("measured {value}, limit {limit}"),
            text: format!("threshold {} failed\n{out}", verdict.expr),
        }
    };
    Case { name: verdict_expr, classname: THRESHOLDS, verdict, out }
}

/// The limit of a verdict's expression, as `p99 < 250.0ms`: its metric, operator and value in
/// the metric's unit. Per-name thresholds read `NAME: EXPR`; an expression that does not parse
/// (it always does: it was parsed before the run) is shown as written.
fn limit_of(expr: &str) -> String {
    let parsed = Expr::parse(expr).ok().or_else(|| expr.rsplit_once(": ").and_then(|(_, e)| Expr::parse(e).ok()));
    match parsed {
        Some(e) => format!("{} {} {}", e.metric, e.op, e.format_value(e.value)),
        None => expr.to_string(),
    }
}

/// A named check, judged on its pass rate: every response is expected to pass it.
fn check_case(check: &CheckSummary) -> Case {
    let runs = check.passed + check.failed;
    let limit = "every response passes (100%)";
    let measured = match check.pass_rate {
        Some(rate) => format!("{} of {runs} passed ({})", check.passed, percent_exact(rate)),
        None => "never ran".to_string(),
    };
    let out = format!("measured: {measured}\nlimit: {limit}\n");
    let verdict = match check.pass_rate {
        None => Verdict::Skipped { message: "the check never ran".to_string() },
        Some(_) if check.failed == 0 => Verdict::Pass,
        Some(_) => Verdict::Failure {
            kind: "check",
            message: format!("measured {measured}, limit {limit}"),
            text: format!("check {:?}: {} of {runs} responses failed it\n{out}", check.name, check.failed),
        },
    };
    Case { name: check.name.clone(), classname: CHECKS, verdict, out }
}

/// A pass rate with two decimals, never rounded up to 100 % when a response failed.
fn percent_exact(rate: f64) -> String {
    let p = (rate * 10_000.0).floor() / 100.0;
    format!("{p:.2}%")
}

/// Whether the run went to its planned end: an abort is a failure, an interruption an error.
fn run_case(summary: &Summary) -> Case {
    let figures = format!(
        "{} requests ok, {} failed ({} errors), {} req/s achieved over {:.1} s\n",
        summary.requests.ok,
        summary.requests.failed,
        percent(summary.requests.error_rate),
        rate(summary.rate.achieved),
        summary.duration_s
    );
    let verdict = if let Some(reason) = &summary.aborted {
        Verdict::Failure {
            kind: "aborted",
            message: format!("an abort rule ended the run early: {reason}"),
            text: format!(
                "partial run: an abort rule ended it early ({reason}); the figures cover the part that ran\n"
            ),
        }
    } else if summary.interrupted || summary.partial {
        Verdict::Error {
            kind: "interrupted",
            message: "the run was interrupted before its planned end: the figures cover the part that ran".to_string(),
        }
    } else {
        Verdict::Pass
    };
    Case { name: RUN_COMPLETED.to_string(), classname: RUN, verdict, out: figures }
}

/// One case per find-limit step, in the order run: a bad step is a failure (it is where the
/// target broke the SLO), with its reasons and the limits it was judged on.
fn step_cases<'a>(report: &'a FindLimitReport, rows: &'a [StageSummary]) -> impl Iterator<Item = Case> + 'a {
    let mut limits: Vec<String> = report.slo.iter().map(|s| limit_of(s)).collect();
    limits.push(format!("error_rate <= {}", percent(report.max_error_rate)));
    limits.push("answered successfully >= 95% of the offered rate, nothing dropped".to_string());
    let limits = limits.join("; ");
    report.steps.iter().enumerate().map(move |(index, step)| {
        let row = rows.get(index);
        let out = match row {
            Some(row) => format!(
                "offered {} req/s, answered successfully {} req/s, p99 {}, {} errors, {} dropped\nlimits: {limits}\n",
                rate(step.target_rate),
                rate(row.achieved_rate),
                row.latency_ms.map(|l| ms(l.p99)).unwrap_or_else(|| "-".to_string()),
                percent(row.error_rate),
                row.dropped
            ),
            None => format!("offered {} req/s\nlimits: {limits}\n", rate(step.target_rate)),
        };
        let verdict = match (&step.reason, step.good) {
            (None, true) => Verdict::Pass,
            (reason, _) => {
                let why = reason.clone().unwrap_or_else(|| "bad".to_string());
                Verdict::Failure {
                    kind: "slo",
                    message: format!("{why} (limits: {limits})"),
                    text: format!("step at {} req/s broke the SLO: {why}\n{out}", rate(step.target_rate)),
                }
            }
        };
        Case {
            name: format!("step {}: {} req/s", index + 1, rate(step.target_rate)),
            classname: FIND_LIMIT,
            verdict,
            out,
        }
    })
}

/// Whether find-limit found a capacity (a rate that met the SLO).
fn capacity_case(report: &FindLimitReport) -> Case {
    let out = format!("{}\n", report.verdict);
    let verdict = match report.capacity_rps {
        Some(_) => Verdict::Pass,
        None => Verdict::Failure {
            kind: "capacity",
            message: format!("no rate met the SLO: {}", report.verdict),
            text: out.clone(),
        },
    };
    let name = match report.capacity_rps {
        Some(capacity) => format!("capacity: {} req/s", rate(capacity)),
        None => "capacity: none found".to_string(),
    };
    Case { name, classname: FIND_LIMIT, verdict, out }
}

/// Writes the document.
fn write(doc: &ResultsDocument, summary: &Summary, suite: &str, cases: &[Case]) -> std::io::Result<String> {
    let count = |f: fn(&Verdict) -> bool| cases.iter().filter(|c| f(&c.verdict)).count().to_string();
    let tests = cases.len().to_string();
    let failures = count(|v| matches!(v, Verdict::Failure { .. }));
    let errors = count(|v| matches!(v, Verdict::Error { .. }));
    let skipped = count(|v| matches!(v, Verdict::Skipped { .. }));
    let time = format!("{:.3}", summary.duration_s);
    let suite = xml_text(suite);
    let timestamp = xml_text(&doc.started_at);

    let mut w = Writer::new_with_indent(Vec::new(), b' ', 2);
    w.write_event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)))?;
    w.create_element("testsuites")
        .with_attributes([
            ("name", "pummel"),
            ("tests", tests.as_str()),
            ("failures", failures.as_str()),
            ("errors", errors.as_str()),
            ("skipped", skipped.as_str()),
            ("time", time.as_str()),
        ])
        .write_inner_content(|w| {
            w.create_element("testsuite")
                .with_attributes([
                    ("name", suite.as_str()),
                    ("tests", tests.as_str()),
                    ("failures", failures.as_str()),
                    ("errors", errors.as_str()),
                    ("skipped", skipped.as_str()),
                    ("time", time.as_str()),
                    ("timestamp", timestamp.as_str()),
                ])
                .write_inner_content(|w| {
                    write_properties(w, doc, summary)?;
                    for case in cases {
                        write_case(w, case)?;
                    }
                    Ok(())
                })?;
            Ok(())
        })?;
    let mut text = String::from_utf8(w.into_inner()).map_err(std::io::Error::other)?;
    text.push('\n');
    Ok(text)
}

/// The run's key figures, so a CI page shows them beside the verdicts.
fn write_properties(w: &mut Writer<Vec<u8>>, doc: &ResultsDocument, summary: &Summary) -> std::io::Result<()> {
    let mut props: Vec<(&str, String)> = vec![
        ("pummel_version", summary.pummel_version.clone()),
        ("partial", summary.partial.to_string()),
        ("requests.ok", summary.requests.ok.to_string()),
        ("requests.failed", summary.requests.failed.to_string()),
        ("requests.dropped", summary.requests.dropped.to_string()),
        ("error_rate", summary.requests.error_rate.to_string()),
        ("rate.achieved", summary.rate.achieved.to_string()),
    ];
    if let Some(reason) = &summary.aborted {
        props.push(("aborted", reason.clone()));
    }
    if summary.interrupted {
        props.push(("interrupted", "true".to_string()));
    }
    if let Some(latency) = &summary.latency_ms {
        props.push(("latency_ms.p50", latency.p50.to_string()));
        props.push(("latency_ms.p99", latency.p99.to_string()));
    }
    if let Some(report) = &doc.find_limit {
        if let Some(capacity) = report.capacity_rps {
            props.push(("find_limit.capacity_rps", capacity.to_string()));
        }
        if let Some(breaking) = report.breaking_rps {
            props.push(("find_limit.breaking_rps", breaking.to_string()));
        }
    }
    w.create_element("properties").write_inner_content(|w| {
        for (name, value) in &props {
            let value = xml_text(value);
            w.create_element("property").with_attributes([("name", *name), ("value", value.as_str())]).write_empty()?;
        }
        Ok(())
    })?;
    Ok(())
}

fn write_case(w: &mut Writer<Vec<u8>>, case: &Case) -> std::io::Result<()> {
    let name = xml_text(&case.name);
    w.create_element("testcase")
        .with_attributes([("name", name.as_str()), ("classname", case.classname), ("time", "0")])
        .write_inner_content(|w| {
            match &case.verdict {
                Verdict::Pass => {}
                Verdict::Failure { kind, message, text } => {
                    let message = xml_text(message);
                    w.create_element("failure")
                        .with_attributes([("message", message.as_str()), ("type", *kind)])
                        .write_inner_content(|w| cdata(w, text))?;
                }
                Verdict::Error { kind, message } => {
                    let message = xml_text(message);
                    w.create_element("error")
                        .with_attributes([("message", message.as_str()), ("type", *kind)])
                        .write_empty()?;
                }
                Verdict::Skipped { message } => {
                    let message = xml_text(message);
                    w.create_element("skipped").with_attribute(("message", message.as_str())).write_empty()?;
                }
            }
            w.create_element("system-out").write_inner_content(|w| cdata(w, &case.out))?;
            Ok(())
        })?;
    Ok(())
}

/// `text` as CDATA sections (split where it holds `]]>`): JUnit readers take the text of
/// `<failure>` and `<system-out>` as is, where some drop escaped characters such as `&lt;`.
fn cdata(w: &mut Writer<Vec<u8>>, text: &str) -> std::io::Result<()> {
    let text = xml_text(text);
    for part in BytesCData::escaped(&text) {
        w.write_event(Event::CData(part))?;
    }
    Ok(())
}

/// `text` with the characters XML 1.0 cannot hold (control characters other than tab, line
/// feed and carriage return; U+FFFE, U+FFFF) replaced by U+FFFD; escaping is quick-xml's.
fn xml_text(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '\t' | '\n' | '\r' => c,
            c if (c as u32) < 0x20 || c == '\u{FFFE}' || c == '\u{FFFF}' => '\u{FFFD}',
            c => c,
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    /// (classname, name, failure/error/skipped message or "", outcome) of every case, read
    /// back by a JUnit reader as CI tools read it.
    fn read_cases(xml: &str) -> Vec<(String, String, String, String)> {
        let suites = junit_parser::from_reader(xml.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{xml}"));
        assert_eq!(suites.suites.len(), 1, "{xml}");
        let suite = &suites.suites[0];
        assert_eq!(suite.tests as usize, suite.cases.len());
        suite
            .cases
            .iter()
            .map(|case| {
                use junit_parser::TestStatus;
                let (message, outcome) = match &case.status {
                    TestStatus::Success => (String::new(), "pass"),
                    TestStatus::Failure(f) => (f.message.clone(), "failure"),
                    TestStatus::Error(e) => (e.message.clone(), "error"),
                    TestStatus::Skipped(s) => (s.message.clone(), "skipped"),
                };
                (case.classname.clone().unwrap_or_default(), case.original_name.clone(), message, outcome.to_string())
            })
            .collect()
    }

    #[test]
    fn thresholds_and_checks_become_cases_with_value_and_limit() {
        let mut doc = fixture::open_run();
        doc.summary.thresholds = vec![
            ThresholdVerdict { expr: "p99<250ms".into(), pass: true, value: Some(12.5), shown: Some("12.5ms".into()) },
            ThresholdVerdict {
                expr: "error_rate<1%".into(),
                pass: false,
                value: Some(0.034),
                shown: Some("3.40%".into()),
            },
            ThresholdVerdict { expr: "GET /items/:id: p99<100ms".into(), pass: false, value: None, shown: None },
        ];
        doc.summary.checks = vec![
            CheckSummary { name: "status 200".into(), passed: 40, failed: 0, pass_rate: Some(1.0) },
            CheckSummary { name: "body <ok> & \"x\"".into(), passed: 1999, failed: 1, pass_rate: Some(0.9995) },
            CheckSummary { name: "never".into(), passed: 0, failed: 0, pass_rate: None },
        ];
        let xml = render(&doc, "pummel run GET http://127.0.0.1:1/").expect("renders");
        let cases = read_cases(&xml);
        let by_name = |name: &str| cases.iter().find(|c| c.1 == name).unwrap_or_else(|| panic!("{name}: {cases:?}"));
        assert_eq!(by_name("p99<250ms").3, "pass");
        assert_eq!(by_name("p99<250ms").0, THRESHOLDS);
        let failed = by_name("error_rate<1%");
        assert_eq!(failed.3, "failure");
        assert_eq!(failed.2, "measured 3.40%, limit error_rate < 1.00%");
        let named = by_name("GET /items/:id: p99<100ms");
        assert_eq!(named.2, "measured no data, limit p99 < 100.0ms");
        assert_eq!(by_name("status 200").3, "pass");
        let check = by_name("body <ok> & \"x\"");
        assert_eq!((check.0.as_str(), check.3.as_str()), (CHECKS, "failure"));
        assert_eq!(check.2, "measured 1999 of 2000 passed (99.95%), limit every response passes (100%)");
        assert_eq!(by_name("never").3, "skipped");
        assert_eq!(by_name(RUN_COMPLETED).3, "pass");
        assert_eq!(cases.len(), 7);
        assert!(
            xml.contains(r#"<testsuite name="pummel run GET http://127.0.0.1:1/" tests="7" failures="3""#),
            "{xml}"
        );
    }

    #[test]
    fn a_partial_run_says_so() {
        let mut doc = fixture::open_run();
        doc.summary.partial = true;
        doc.summary.aborted = Some("error_rate>50% held over 5s".into());
        let cases = read_cases(&render(&doc, "s").expect("renders"));
        let run = cases.iter().find(|c| c.1 == RUN_COMPLETED).expect("run case");
        assert_eq!(run.3, "failure");
        assert!(run.2.contains("error_rate>50%"), "{run:?}");

        doc.summary.aborted = None;
        doc.summary.interrupted = true;
        let xml = render(&doc, "s").expect("renders");
        let cases = read_cases(&xml);
        let run = cases.iter().find(|c| c.1 == RUN_COMPLETED).expect("run case");
        assert_eq!(run.3, "error");
        assert!(xml.contains(r#"<property name="partial" value="true"/>"#), "{xml}");
    }

    #[test]
    fn find_limit_has_a_case_per_step_and_the_capacity() {
        let doc = fixture::find_limit_run();
        let report = doc.find_limit.clone().expect("a find-limit fixture");
        let cases = read_cases(&render(&doc, "find-limit").expect("renders"));
        let steps: Vec<_> = cases.iter().filter(|c| c.1.starts_with("step ")).collect();
        assert_eq!(steps.len(), report.steps.len());
        for (case, step) in steps.iter().zip(&report.steps) {
            assert_eq!(case.3 == "pass", step.good, "{case:?} {step:?}");
            if let Some(reason) = &step.reason {
                assert!(case.2.starts_with(reason.as_str()), "{case:?}");
            }
        }
        let capacity = cases.iter().find(|c| c.1.starts_with("capacity")).expect("capacity case");
        assert_eq!(capacity.3 == "pass", report.capacity_rps.is_some());
    }

    #[test]
    fn characters_xml_cannot_hold_are_replaced() {
        assert_eq!(xml_text("a\u{1}b\tc\u{FFFF}"), "a\u{FFFD}b\tc\u{FFFD}");
        let mut doc = fixture::open_run();
        doc.summary.checks =
            vec![CheckSummary { name: "bell\u{7}".into(), passed: 1, failed: 0, pass_rate: Some(1.0) }];
        let cases = read_cases(&render(&doc, "s").expect("renders"));
        assert!(cases.iter().any(|c| c.1 == "bell\u{FFFD}"), "{cases:?}");
    }
}
