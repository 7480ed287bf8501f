//! The writes of a run and their read-back (issue 13, part 4): how many were acknowledged,
//! refused or left unknown, and per key what the read-back found (verified, lost, recovered,
//! unexpected), with the first lost keys. The same figures for the terminal, the markdown
//! report and (as tables) the page.

use pummel_results::document::ResultsDocument;
use pummel_results::summary::Summary;
use pummel_results::writes::{LostKey, WritesSummary};

use crate::fmt::thousands;
use crate::tables::{Cell, Table, Tone};

/// The writes as lines for the terminal, under the summary; `None` for a run without writes.
pub fn terminal(summary: &Summary) -> Option<String> {
    let w = summary.writes.as_ref()?;
    let mut out = format!(
        "\n  writes      {} attempted: {} acknowledged, {} failed, {} unknown{}\n",
        thousands(w.attempted),
        thousands(w.acknowledged),
        thousands(w.failed),
        thousands(w.unknown),
        if w.not_sent > 0 { format!(" ({} not sent)", thousands(w.not_sent)) } else { String::new() }
    );
    match (&w.verify, &w.not_verified) {
        (Some(v), _) => {
            out.push_str(&format!(
                "  read back   {} keys {} after the load: verified {}, lost {}, recovered {}, unexpected {}{}{}\n",
                thousands(v.keys),
                seconds(v.settle_s),
                thousands(v.verified),
                thousands(v.lost),
                thousands(v.recovered),
                thousands(v.unexpected),
                if v.unread > 0 { format!(", unread {}", thousands(v.unread)) } else { String::new() },
                if v.ended == "completed" { String::new() } else { format!(" ({})", v.ended) },
            ));
            if !v.first_lost.is_empty() {
                let shown: Vec<String> = v.first_lost.iter().take(5).map(lost_text).collect();
                let more = if v.lost as usize > shown.len() { ", ..." } else { "" };
                out.push_str(&format!("  lost        {}{more}\n", shown.join(", ")));
            }
        }
        (None, Some(why)) => out.push_str(&format!("  read back   not verified: {why}\n")),
        (None, None) => {}
    }
    Some(out)
}

/// The writes' tables for the page and the markdown report: the counts, and the first lost keys.
pub fn tables(doc: &ResultsDocument) -> Vec<Table> {
    let Some(w) = doc.summary.writes.as_ref() else { return Vec::new() };
    let mut t = Table {
        title: title(w),
        headers: vec!["figure".into(), "value".into()],
        numeric: vec![false, true],
        rows: Vec::new(),
    };
    let count = |n: u64, bad: Tone| Cell::toned(thousands(n), if n > 0 { bad } else { Tone::Plain });
    let mut row = |label: &str, value: Cell| t.rows.push(vec![Cell::plain(label), value]);
    row("writes attempted (sent)", Cell::plain(thousands(w.attempted)));
    row("acknowledged", Cell::plain(thousands(w.acknowledged)));
    row("failed (refused: 4xx)", count(w.failed, Tone::Warn));
    row("unknown (timeout, reset, 5xx)", count(w.unknown, Tone::Warn));
    row("not sent (not attempts)", Cell::plain(thousands(w.not_sent)));
    match (&w.verify, &w.not_verified) {
        (Some(v), _) => {
            row(
                "keys read back",
                Cell::plain(format!("{} ({} after the load)", thousands(v.keys), seconds(v.settle_s))),
            );
            row("verified", Cell::toned(thousands(v.verified), Tone::Good));
            row("lost (acknowledged, then missing or wrong)", count(v.lost, Tone::Bad));
            row("recovered (unknown or failed, yet there)", Cell::plain(thousands(v.recovered)));
            row("unexpected (never written so)", count(v.unexpected, Tone::Bad));
            row("unread (no verdict)", count(v.unread, Tone::Warn));
        }
        (None, Some(why)) => row("read back", Cell::toned(format!("not verified: {why}"), Tone::Warn)),
        (None, None) => {}
    }
    let mut tables = vec![t];
    if let Some(v) = w.verify.as_ref().filter(|v| !v.first_lost.is_empty()) {
        let rows = v
            .first_lost
            .iter()
            .map(|lost| {
                vec![
                    Cell::plain(lost.key.clone()),
                    Cell::plain(writes_text(lost)),
                    Cell::toned(lost.read.clone(), Tone::Bad),
                ]
            })
            .collect();
        tables.push(Table {
            title: format!("Lost keys (the first {} of {})", v.first_lost.len(), thousands(v.lost)),
            headers: vec!["key".into(), "writes".into(), "read back".into()],
            numeric: vec![false, false, false],
            rows,
        });
    }
    tables
}

fn title(w: &WritesSummary) -> String {
    match &w.verify {
        Some(v) if v.ended != "completed" => format!("Writes (read-back {}: partial)", v.ended),
        Some(_) => "Writes".to_string(),
        None => "Writes (not verified)".to_string(),
    }
}

/// `k-17 (acknowledged, missing)`.
fn lost_text(lost: &LostKey) -> String {
    format!("{} ({}: {})", lost.key, writes_text(lost), lost.read)
}

/// `acknowledged`, or `acknowledged ×2, unknown` for a key written several times.
fn writes_text(lost: &LostKey) -> String {
    let parts: Vec<String> = lost
        .writes
        .iter()
        .map(
            |(outcome, n)| {
                if *n == 1 { outcome.replace('_', " ") } else { format!("{} ×{n}", outcome.replace('_', " ")) }
            },
        )
        .collect();
    parts.join(", ")
}

fn seconds(s: f64) -> String {
    if s.fract() == 0.0 { format!("{s:.0} s") } else { format!("{s:.1} s") }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use pummel_results::writes::VerifySummary;

    use super::*;

    fn writes() -> WritesSummary {
        let mut w = WritesSummary::from_counts([934, 0, 5054, 0]);
        let lost = LostKey {
            key: "item-17".into(),
            writes: BTreeMap::from([("acknowledged".to_string(), 1)]),
            read: "missing".into(),
        };
        w.verify = Some(VerifySummary {
            ended: "completed".into(),
            settle_s: 1.0,
            keys: 5988,
            read: 5988,
            verified: 933,
            lost: 1,
            recovered: 4452,
            first_lost: vec![lost],
            ..VerifySummary::default()
        });
        w
    }

    #[test]
    fn the_terminal_says_what_was_lost_and_recovered() {
        let mut summary = crate::fixture::open_run().summary;
        summary.writes = Some(writes());
        let text = terminal(&summary).unwrap();
        assert!(text.contains("5,988 attempted: 934 acknowledged, 0 failed, 5,054 unknown"), "{text}");
        assert!(text.contains("verified 933, lost 1, recovered 4,452, unexpected 0"), "{text}");
        assert!(text.contains("item-17 (acknowledged: missing)"), "{text}");
        summary.writes = Some(WritesSummary { not_verified: Some("interrupted".into()), ..WritesSummary::default() });
        assert!(terminal(&summary).unwrap().contains("not verified: interrupted"));
    }

    #[test]
    fn tables_list_the_counts_and_the_lost_keys() {
        let mut doc = crate::fixture::open_run();
        doc.summary.writes = Some(writes());
        let tables = tables(&doc);
        assert_eq!(tables.len(), 2);
        let lost_row = tables[0].rows.iter().find(|r| r[0].text.starts_with("lost")).unwrap();
        assert_eq!((lost_row[1].text.as_str(), lost_row[1].tone), ("1", Tone::Bad));
        assert_eq!(tables[1].rows[0][0].text, "item-17");
        assert!(crate::markdown::render(&doc).contains("| lost (acknowledged, then missing or wrong) | 1 |"));
    }
}
