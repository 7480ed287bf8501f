//! `pummel merge`: the results of a plan's segments joined into the results of the whole plan.
//!
//! Processes that each ran one segment of one plan (`--segment i/N`, usually started together
//! with `--start-at`) each leave a results document. [`merge`] checks that they belong together
//! (one schema version, one plan fingerprint, segments of one count, none twice, none missing
//! unless a partial merge is asked for), then joins them *exactly*: counts are summed, and
//! every histogram (HdrHistogram, identical bounds everywhere) is added, so every percentile of
//! the merged document — the run's, each stage's, each second's, each request name's — is read
//! from the histogram of all the values, as one process would have recorded them. Thresholds
//! are judged again on the merged figures.
//!
//! Timelines are aligned by wall-clock second: a segment that started `k` whole seconds after
//! the earliest has its second `s` added into the merged second `s + k` (segments started with
//! one `--start-at` share their start, `k = 0`). What cannot be summed is taken from one segment
//! and said so in `summary.merged.notes`: probes and the target watch (observers beside the
//! load, usually run by one process), faults and their recoveries, and which side limited the
//! run.
//!
//! - [`check`]: which documents may be merged, and the refusals;
//! - [`figures`]: the summary's parts, and thresholds judged on the merged figures;
//! - [`seconds`]: the timeline, second by second;
//! - [`time`]: the documents' start times.

mod check;
mod figures;
mod seconds;
#[cfg(test)]
mod tests;
mod time;

use std::collections::BTreeMap;

use crate::document::{Histograms, ResultsDocument};
use crate::histogram::{LatencyHistogram, from_base64, merge as add, new_histogram, to_base64};
use crate::summary::MergedSegments;

pub use self::check::MergeError;

/// One document to merge, with the name it is known by in messages (its file).
#[derive(Debug, Clone)]
pub struct MergeInput {
    /// Where it came from, e.g. `seg-1.json`: every refusal names it.
    pub source: String,
    /// The document.
    pub document: ResultsDocument,
}

/// How strict [`merge`] is.
#[derive(Debug, Clone, Copy, Default)]
pub struct MergeOptions {
    /// Merge even when segments of the plan are missing: the result is marked `partial` and
    /// lists them (`summary.merged.missing`). Without it, a missing segment is refused.
    pub allow_partial: bool,
}

/// One segment, checked and placed on the merged clock.
struct Part<'a> {
    source: &'a str,
    doc: &'a ResultsDocument,
    /// `i/N`, as written.
    label: &'a str,
    /// Milliseconds after the earliest segment's start.
    offset_ms: u64,
    /// The same, in whole seconds (to the nearest): where its timeline goes.
    offset_s: u64,
}

impl Part<'_> {
    fn decode(&self, text: &str, what: &str) -> Result<LatencyHistogram, MergeError> {
        from_base64(text).map_err(|source| MergeError::Histogram {
            source_name: self.source.to_string(),
            what: what.to_string(),
            source,
        })
    }
}

/// Joins the documents of a plan's segments into the document of the plan (see the module
/// documentation); a refusal says which file and what differs.
pub fn merge(inputs: &[MergeInput], options: MergeOptions) -> Result<ResultsDocument, MergeError> {
    let checked = check::check(inputs, options)?;
    let mut notes = checked.notes;
    let parts = &checked.parts;
    let first = parts[0].doc;

    let histograms = merge_histograms(parts, |d| Some(&d.histograms), "histograms", &mut notes)?;
    let stage_count = parts.iter().map(|p| p.doc.stage_histograms.len()).max().unwrap_or(0);
    let mut stage_histograms = Vec::with_capacity(stage_count);
    for index in 0..stage_count {
        let what = format!("stage_histograms[{index}]");
        stage_histograms.push(merge_histograms(parts, |d| d.stage_histograms.get(index), &what, &mut notes)?);
    }
    let has_observers = |p: &Part<'_>| !p.doc.summary.probes.is_empty() || p.doc.summary.target.is_some();
    let sources = seconds::Sources {
        observers: parts.iter().position(has_observers),
        faults: parts.iter().position(|p| !p.doc.summary.faults.is_empty()),
    };
    let timeline = seconds::merge(parts, sources)?;
    let mut summary = figures::summary(parts, &histograms, sources, &mut notes)?;
    summary.partial |= !checked.missing.is_empty();
    summary.merged = Some(MergedSegments {
        segments: parts.iter().map(|p| p.label.to_string()).collect(),
        missing: checked.missing,
        notes,
    });

    let mut plan = first.plan.clone();
    if let serde_json::Value::Object(map) = &mut plan {
        // The merged document is of the whole plan, run by every segment's threads.
        map.remove("segment");
        map.insert("threads".into(), summary.generator.threads.into());
    }
    let mut other_errors: Vec<String> = Vec::new();
    for message in parts.iter().flat_map(|p| &p.doc.other_errors) {
        if !other_errors.contains(message) {
            other_errors.push(message.clone());
        }
    }
    Ok(ResultsDocument {
        schema_version: first.schema_version,
        pummel_version: first.pummel_version.clone(),
        started_at: checked.started_at,
        plan,
        plan_fingerprint: first.plan_fingerprint.clone(),
        summary,
        timeline,
        histograms: histograms.encoded,
        stage_histograms: stage_histograms.into_iter().map(|h| h.encoded).collect(),
        other_errors,
        find_limit: None,
    })
}

/// A set of merged histograms, decoded (to read figures from) and encoded (to write).
struct MergedHistograms {
    latency: LatencyHistogram,
    service_time: LatencyHistogram,
    latency_all: LatencyHistogram,
    connect_time: LatencyHistogram,
    schedule_lag: LatencyHistogram,
    /// `None` when a segment that made TLS handshakes has no histogram of them.
    tls_handshake: Option<LatencyHistogram>,
    encoded: Histograms,
}

/// Adds up the histograms `pick` finds in each segment's document (a segment without them,
/// e.g. one cut short before a stage, adds nothing).
fn merge_histograms(
    parts: &[Part<'_>],
    pick: impl Fn(&ResultsDocument) -> Option<&Histograms>,
    what: &str,
    notes: &mut Vec<String>,
) -> Result<MergedHistograms, MergeError> {
    let mut sums: BTreeMap<&str, LatencyHistogram> = BTreeMap::new();
    let mut tls = Some(new_histogram());
    for part in parts {
        let Some(h) = pick(part.doc) else { continue };
        for (name, text) in [
            ("latency", &h.latency),
            ("service_time", &h.service_time),
            ("latency_all", &h.latency_all),
            ("connect_time", &h.connect_time),
            ("schedule_lag", &h.schedule_lag),
        ] {
            // A version-1 document may lack `latency_all`: nothing to add.
            if text.is_empty() {
                continue;
            }
            let decoded = part.decode(text, &format!("{what}.{name}"))?;
            add(sums.entry(name).or_insert_with(new_histogram), &decoded);
        }
        match (&h.tls_handshake, &mut tls) {
            (Some(text), Some(sum)) => add(sum, &part.decode(text, &format!("{what}.tls_handshake"))?),
            (None, Some(_)) if what == "histograms" && part.doc.summary.tls_ms.is_some() => {
                notes.push(format!("{} has no TLS handshake histogram: the merged TLS p99 is left out", part.source));
                tls = None;
            }
            _ => {}
        }
    }
    let mut take = |name: &str| sums.remove(name).unwrap_or_else(new_histogram);
    let (latency, service_time, latency_all, connect_time, schedule_lag) =
        (take("latency"), take("service_time"), take("latency_all"), take("connect_time"), take("schedule_lag"));
    let any_tls = parts.iter().any(|p| pick(p.doc).is_some_and(|h| h.tls_handshake.is_some()));
    let encoded = Histograms {
        latency: to_base64(&latency),
        service_time: to_base64(&service_time),
        latency_all: to_base64(&latency_all),
        connect_time: to_base64(&connect_time),
        schedule_lag: to_base64(&schedule_lag),
        tls_handshake: tls.as_ref().filter(|_| any_tls).map(to_base64),
    };
    Ok(MergedHistograms { latency, service_time, latency_all, connect_time, schedule_lag, tls_handshake: tls, encoded })
}

/// Decodes and adds up `items` (each a part and one of its base64 histograms, of `what`).
fn sum_histograms<'a>(
    items: impl IntoIterator<Item = (&'a Part<'a>, &'a str)>,
    what: &str,
) -> Result<LatencyHistogram, MergeError> {
    let mut sum = new_histogram();
    for (part, text) in items {
        add(&mut sum, &part.decode(text, what)?);
    }
    Ok(sum)
}
