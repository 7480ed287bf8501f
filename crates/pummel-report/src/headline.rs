//! What a report says first: which request hit which URL, when, for how long, under which load,
//! and how it ended (complete, partial, aborted; thresholds; whether the generator kept up; for
//! find-limit runs, the capacity verdict). Shared by the page and the markdown.

use pummel_results::document::ResultsDocument;

use crate::fmt;
use crate::tables::Tone;

/// A short status shown prominently, with its colour.
#[derive(Debug, Clone, PartialEq)]
pub struct Badge {
    /// `PASS`, `ABORTED: ...`.
    pub text: String,
    /// Its colour.
    pub tone: Tone,
}

/// The top of a report.
#[derive(Debug, Clone, PartialEq)]
pub struct Headline {
    /// HTTP method.
    pub method: String,
    /// Target URL.
    pub url: String,
    /// Labelled facts: started, measured, load, pummel version.
    pub facts: Vec<(String, String)>,
    /// How the run ended, thresholds, generator health.
    pub badges: Vec<Badge>,
    /// For find-limit runs: the one-line verdict.
    pub verdict: Option<String>,
    /// For find-limit runs with `--peak`: the capacity-planning estimate.
    pub planning: Option<String>,
}

impl Headline {
    /// Reads the headline out of a results document.
    pub fn of(doc: &ResultsDocument) -> Headline {
        let text = |pointer: &str| doc.plan.pointer(pointer).and_then(|v| v.as_str()).map(str::to_string);
        let s = &doc.summary;
        let mut facts = vec![
            ("started".to_string(), doc.started_at.replace('T', " ").replace('Z', " UTC")),
            ("measured".to_string(), fmt::seconds(s.duration_s)),
            ("load".to_string(), load_text(doc)),
            (
                "requests".to_string(),
                format!(
                    "{} completed, {} failed",
                    fmt::thousands(s.requests.completed),
                    fmt::thousands(s.requests.failed)
                ),
            ),
        ];
        // One part of a plan, or several joined (`pummel merge`): the figures are not one process's.
        if let Some(segment) = &s.segment {
            let of = s.segment_sequence.as_ref().map(|q| format!(" of {q}")).unwrap_or_default();
            facts.push(("segment".to_string(), format!("{segment}{of}")));
        }
        if let Some(merged) = &s.merged {
            let mut text = format!("segments {}", merged.segments.join(", "));
            if !merged.missing.is_empty() {
                text.push_str(&format!(" ({} missing)", merged.missing.join(", ")));
            }
            facts.push(("merged".to_string(), text));
        }
        facts.push(("pummel".to_string(), doc.pummel_version.clone()));
        let planning = doc.find_limit.as_ref().and_then(|f| f.planning.as_ref()).map(|p| {
            format!(
                "At ~{} req/s per instance, a peak of {} req/s with {} headroom needs {} instances \
                 (an estimate assuming capacity grows linearly with instances).",
                fmt::rate(p.per_instance_rps),
                fmt::rate(p.peak_rps),
                fmt::percent(p.headroom),
                fmt::thousands(p.instances)
            )
        });
        Headline {
            method: text("/request/method").unwrap_or_else(|| "GET".into()),
            url: text("/target/url").unwrap_or_else(|| "(unknown target)".into()),
            facts,
            badges: badges(doc),
            verdict: doc.find_limit.as_ref().map(|f| f.verdict.clone()),
            planning,
        }
    }
}

fn badges(doc: &ResultsDocument) -> Vec<Badge> {
    let s = &doc.summary;
    let badge = |text: String, tone| Badge { text, tone };
    let mut out = Vec::new();
    out.push(match (&s.aborted, s.interrupted, s.partial) {
        (Some(reason), _, _) => badge(format!("ABORTED: {reason} (partial results)"), Tone::Bad),
        (None, true, _) => badge("INTERRUPTED (partial results)".into(), Tone::Warn),
        (None, false, true) => badge("PARTIAL results".into(), Tone::Warn),
        (None, false, false) => badge("complete".into(), Tone::Good),
    });
    let total = s.thresholds.len();
    let failed = s.thresholds.iter().filter(|t| !t.pass).count();
    // A find-limit run judges its SLO per step (the capacity badge below), not on the whole run.
    if total > 0 && doc.find_limit.is_none() {
        out.push(if failed == 0 {
            badge(format!("PASS: {total} of {total} thresholds held"), Tone::Good)
        } else {
            badge(format!("FAIL: {failed} of {total} thresholds failed"), Tone::Bad)
        });
    }
    if let Some(f) = &doc.find_limit {
        out.push(match (f.capacity_rps, f.generator_limited) {
            (_, true) => badge("generator-limited search".into(), Tone::Warn),
            (Some(c), false) => badge(format!("capacity ≈ {} req/s", fmt::rate(c)), Tone::Good),
            (None, false) => badge("no step met the SLO".into(), Tone::Bad),
        });
    }
    if let Some(limit) = &s.limit {
        let tone = match limit.by {
            pummel_results::summary::LimitSide::Target => Tone::Bad,
            pummel_results::summary::LimitSide::Generator | pummel_results::summary::LimitSide::Pool => Tone::Warn,
        };
        out.push(badge(limit.text.clone(), tone));
    }
    out
}

/// `open model, 2,000 req/s (uniform)`, `open model, 3 stages: 200 → 1,000 → 5,000 req/s`,
/// `closed model, 50 connections`.
fn load_text(doc: &ResultsDocument) -> String {
    let load = doc.load();
    if load.is_none() {
        let names = doc.scenario_names();
        if names.len() > 1 {
            return format!("{} scenarios: {}", names.len(), names.join(", "));
        }
    }
    let model = load.and_then(|l| l.get("model")).and_then(|m| m.as_str()).unwrap_or("");
    match model {
        "closed" => {
            let c = load.and_then(|l| l.get("connections")).and_then(|c| c.as_u64()).unwrap_or(0);
            format!("closed model, {} connections", fmt::thousands(c))
        }
        "open" => {
            let rates: Vec<f64> = load
                .and_then(|l| l.get("stages"))
                .and_then(|s| s.as_array())
                .map(|stages| stages.iter().filter_map(|s| s.get("rate").and_then(|r| r.as_f64())).collect())
                .unwrap_or_default();
            let arrival = load.and_then(|l| l.get("arrival")).and_then(|a| a.as_str()).unwrap_or("uniform");
            match rates.as_slice() {
                [one] => format!("open model, {} req/s ({arrival} arrivals)", fmt::rate(*one)),
                many => format!(
                    "open model, {} stages: {} req/s ({arrival} arrivals)",
                    many.len(),
                    many.iter().map(|r| fmt::rate(*r)).collect::<Vec<_>>().join(" → ")
                ),
            }
        }
        "hold" => {
            let c = load.and_then(|l| l.get("connections")).and_then(|c| c.as_u64()).unwrap_or(0);
            let mode = load.and_then(|l| l.get("mode")).and_then(|m| m.as_str()).unwrap_or("idle");
            format!("hold model, {} {mode} connections", fmt::thousands(c))
        }
        _ => "unknown load".to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;

    #[test]
    fn names_the_target_load_and_outcome() {
        let h = Headline::of(&fixture::open_run());
        assert_eq!(h.method, "GET");
        assert!(h.url.starts_with("http://127.0.0.1:8090/api"));
        assert!(h.facts.iter().any(|(k, v)| k == "load" && v == "open model, 1,000 req/s (uniform arrivals)"));
        assert_eq!(h.badges[0].text, "complete");
        assert_eq!(h.badges[1].text, "PASS: 1 of 1 thresholds held");
    }

    #[test]
    fn segments_and_merges_say_which_parts() {
        let mut doc = fixture::open_run();
        doc.summary.merged = Some(pummel_results::summary::MergedSegments {
            segments: vec!["1/3".into(), "3/3".into()],
            missing: vec!["2/3".into()],
            notes: Vec::new(),
        });
        let h = Headline::of(&doc);
        assert!(h.facts.iter().any(|(k, v)| k == "merged" && v == "segments 1/3, 3/3 (2/3 missing)"), "{:?}", h.facts);
        doc.summary.merged = None;
        doc.summary.segment = Some("2/3".into());
        assert!(Headline::of(&doc).facts.iter().any(|(k, v)| k == "segment" && v == "2/3"));
        doc.summary.segment = Some("1/4:1/2".into());
        doc.summary.segment_sequence = Some("0,1/4,1/2,1".into());
        let facts = Headline::of(&doc).facts;
        assert!(facts.iter().any(|(k, v)| k == "segment" && v == "1/4:1/2 of 0,1/4,1/2,1"), "{facts:?}");
    }

    #[test]
    fn aborted_and_find_limit_runs_say_so() {
        let mut doc = fixture::find_limit_run();
        doc.summary.aborted = Some("error_rate>50%".into());
        doc.summary.partial = true;
        let h = Headline::of(&doc);
        assert_eq!(h.badges[0].tone, Tone::Bad);
        assert!(h.badges.iter().any(|b| b.text == "capacity ≈ 2,000 req/s"));
        assert!(h.verdict.unwrap().starts_with("capacity ≈ 2,000 req/s"));
        assert!(h.facts.iter().any(|(_, v)| v.contains("4 stages: 500 → 1,000 → 2,000 → 4,000 req/s")));
    }
}
