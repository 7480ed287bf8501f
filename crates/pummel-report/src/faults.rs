//! The recovery table: one row per fault of the run (issue 13), in the find-limit table's
//! markdown style, for the terminal, the markdown report and (as HTML) the page.

use pummel_results::fault::{FaultSummary, SteadyState};
use pummel_results::summary::Summary;

use crate::fmt::{ms, percent, rate, thousands};
use crate::tables::{Cell, Table, Tone};

/// One row's cells: fault, action, start, end, detected after, recovered after, failed,
/// deficit, note.
pub const HEADERS: [&str; 9] =
    ["Fault", "Action", "Start", "End", "Detected after", "Recovered after", "Failed", "Deficit", "Note"];

/// The cells of one fault's row.
pub fn row(fault: &FaultSummary) -> [String; 9] {
    let w = &fault.window;
    let secs = |s: Option<f64>| s.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "-".into());
    let (detect, recover, failed, deficit) = match &fault.recovery {
        Some(r) => (
            r.detect_s.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "not detected".into()),
            r.recover_s.map(|s| format!("{s:.1}s")).unwrap_or_else(|| "did not recover".into()),
            thousands(r.failed),
            thousands(r.deficit),
        ),
        None => ("-".into(), "-".into(), "-".into(), "-".into()),
    };
    let mut note = Vec::new();
    if w.started_s.is_none() && w.error.is_none() {
        note.push("never began (the run ended first)".to_string());
    }
    if w.undone_at_exit {
        note.push("undone when the run ended".to_string());
    }
    note.extend(w.error.clone());
    [
        w.name.clone(),
        w.action.clone(),
        secs(w.started_s),
        secs(w.ended_s),
        detect,
        recover,
        failed,
        deficit,
        note.join("; "),
    ]
}

/// What steady state meant, in one sentence.
pub fn steady_state_line(s: &SteadyState) -> String {
    let p99 = s.baseline_p99_ms.map(|p| {
        format!(", p99 at most {:.0}x the baseline's {} (or it + {})", s.p99_factor, ms(p), ms(s.p99_slack_ms))
    });
    let carried = s
        .baseline_rate
        .map(|r| format!(", at least {:.0}% of the baseline's {} ok/s", s.min_ok_share * 100.0, rate(r)));
    format!(
        "steady state: error rate at most {}{}{} (baseline: {} second{} before the first fault); recovered = 3 good seconds in a row",
        percent(s.max_error_rate),
        p99.unwrap_or_default(),
        carried.unwrap_or_default(),
        s.baseline_seconds,
        if s.baseline_seconds == 1 { "" } else { "s" }
    )
}

/// The table as markdown, with the steady state below it; `None` when no fault ran.
pub fn markdown(summary: &Summary) -> Option<String> {
    if summary.faults.is_empty() {
        return None;
    }
    let mut out = format!("| {} |\n", HEADERS.join(" | "));
    out.push_str("|-------|--------|------:|----:|---------------:|----------------:|-------:|--------:|------|\n");
    for fault in &summary.faults {
        out.push_str(&format!("| {} |\n", row(fault).join(" | ")));
    }
    if let Some(steady) = &summary.steady_state {
        out.push_str(&format!("\n{}\n", steady_state_line(steady)));
    }
    Some(out)
}

/// The table for the page and the markdown report: one row per fault, the steady state in
/// its title; `None` when no fault ran.
pub fn table(doc: &pummel_results::document::ResultsDocument) -> Option<Table> {
    let summary = &doc.summary;
    if summary.faults.is_empty() {
        return None;
    }
    let title = match &summary.steady_state {
        Some(steady) => format!("Faults and recovery ({})", steady_state_line(steady)),
        None => "Faults and recovery".to_string(),
    };
    let rows = summary
        .faults
        .iter()
        .map(|fault| {
            let bad = fault.window.error.is_some() || fault.recovery.is_some_and(|r| !r.recovered());
            row(fault)
                .into_iter()
                .enumerate()
                .map(|(i, text)| if i == 5 && bad { Cell::toned(text, Tone::Bad) } else { Cell::plain(text) })
                .collect()
        })
        .collect();
    Some(Table {
        title,
        headers: HEADERS.iter().map(|h| h.to_string()).collect(),
        numeric: vec![false, false, true, true, true, true, true, true, false],
        rows,
    })
}

#[cfg(test)]
mod tests {
    use pummel_results::fault::{FaultWindow, Recovery};

    use super::*;

    #[test]
    fn a_row_says_when_a_fault_did_not_recover() {
        let window = FaultWindow {
            name: "db down".into(),
            action: "proxy db down".into(),
            started_s: Some(5.0),
            ended_s: Some(7.0),
            undone_at_exit: false,
            error: None,
        };
        let recovery = Recovery { detect_s: Some(0.0), recover_s: None, failed: 1200, deficit: 3000, bad_seconds: 4 };
        let cells = row(&FaultSummary { window, recovery: Some(recovery) });
        assert_eq!(cells[..6], ["db down", "proxy db down", "5.0s", "7.0s", "0.0s", "did not recover"]);
        assert_eq!((cells[6].as_str(), cells[7].as_str()), ("1,200", "3,000"));
    }
}
