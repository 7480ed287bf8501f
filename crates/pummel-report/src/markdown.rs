//! The report as markdown: the headline, then the same tables as the page (summary, latency,
//! failures, statuses, thresholds, probes and the watched target when the run had them, and per
//! stage or per find-limit step), ready to paste into a README, an issue or a pull request.

use std::fmt::Write;

use pummel_results::document::ResultsDocument;

use crate::headline::Headline;
use crate::tables::{self, Table};

/// Renders the markdown of `doc`.
pub fn render(doc: &ResultsDocument) -> String {
    let h = Headline::of(doc);
    let mut out = String::new();
    let _ = writeln!(out, "# pummel report: {} `{}`\n", cell(&h.method), h.url.replace('`', "%60"));
    let badges: Vec<String> = h.badges.iter().map(|b| format!("**{}**", cell(&b.text))).collect();
    let _ = writeln!(out, "{}\n", badges.join(" · "));
    let facts: Vec<String> = h.facts.iter().map(|(k, v)| format!("{k}: {v}")).collect();
    let _ = writeln!(out, "{}\n", facts.join(" · "));
    if let Some(verdict) = &h.verdict {
        let _ = writeln!(out, "> {verdict}\n");
    }
    if let Some(planning) = &h.planning {
        let _ = writeln!(out, "> {planning}\n");
    }
    for table in tables::all(doc) {
        out.push_str(&table_markdown(&table));
        out.push('\n');
    }
    out
}

/// One table with its heading, numbers right-aligned.
pub fn table_markdown(table: &Table) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## {}\n", table.title);
    let headers: Vec<String> =
        table.headers.iter().map(|h| if h.is_empty() { " ".to_string() } else { cell(h) }).collect();
    let _ = writeln!(out, "| {} |", headers.join(" | "));
    let rule: Vec<&str> = table.numeric.iter().map(|n| if *n { "---:" } else { ":---" }).collect();
    let _ = writeln!(out, "|{}|", rule.join("|"));
    for row in &table.rows {
        let cells: Vec<String> = row.iter().map(|c| cell(&c.text)).collect();
        let _ = writeln!(out, "| {} |", cells.join(" | "));
    }
    out
}

/// Escapes what would break a table cell: pipes and line breaks.
fn cell(text: &str) -> String {
    text.replace('|', "\\|").replace(['\n', '\r'], " ")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn open_run_markdown() {
        insta::assert_snapshot!("open_run", render(&fixture::open_run()));
    }

    #[test]
    fn find_limit_markdown() {
        insta::assert_snapshot!("find_limit_run", render(&fixture::find_limit_run()));
    }

    #[test]
    fn observed_run_markdown_has_probe_and_target_tables() {
        let text = render(&fixture::observed_run());
        assert!(text.contains("## Probes") && text.contains("## Target"), "{text}");
        insta::assert_snapshot!("observed_run", text);
    }

    #[test]
    fn pipes_are_escaped() {
        assert_eq!(cell("a|b\nc"), "a\\|b c");
    }
}
