//! Which documents may be merged: segments of one plan and of one sequence, written by one
//! shape of document, each once, none overlapping another, together covering the plan (or a
//! partial merge, asked for). Every refusal names the file and
//! says what differs.

use std::collections::BTreeMap;

use serde_json::Value;

use super::{MergeInput, MergeOptions, Part, time};
use crate::document::SCHEMA_VERSION;
use crate::fingerprint::plan_identity;
use crate::histogram::HistogramDecodeError;
use crate::segment::{Ratio, SegmentLabel};

/// Why documents were not merged.
#[derive(Debug, thiserror::Error)]
pub enum MergeError {
    /// Nothing was given.
    #[error("nothing to merge: give the results documents of a plan's segments")]
    Empty,
    /// A document of another shape than the one this pummel writes.
    #[error(
        "{source_name}: results document version {found}, but pummel merge joins version {expected} only \
         (run every segment with this pummel)"
    )]
    SchemaVersion {
        /// The file.
        source_name: String,
        /// Its `schema_version`.
        found: u32,
        /// The version merged.
        expected: u32,
    },
    /// A document of a whole run, or of `find-limit`.
    #[error(
        "{source_name} is not a segment's results ({why}); pummel merge joins the results of `--segment i/N` and \
         `--segment FROM:TO` runs"
    )]
    NotASegment {
        /// The file.
        source_name: String,
        /// What it is instead.
        why: String,
    },
    /// A document without the data an exact merge needs.
    #[error("{source_name} cannot be merged exactly: {what} (written by an older pummel?)")]
    NotMergeable {
        /// The file.
        source_name: String,
        /// What is missing.
        what: String,
    },
    /// Documents of two plans.
    #[error("{source_name} ran a different plan than {first} (plan fingerprint {found} vs {expected}): {difference}")]
    DifferentPlan {
        /// The file that differs.
        source_name: String,
        /// The first file, which the others are held to.
        first: String,
        /// Its fingerprint.
        found: String,
        /// The first file's.
        expected: String,
        /// The first place the plans differ, with both values.
        difference: String,
    },
    /// Segments of a plan cut into different numbers of parts.
    #[error(
        "{source_name} is segment {label}, but {first} is segment {first_label}: a plan cut into {count} and into {first_count} parts"
    )]
    DifferentCount {
        /// The file.
        source_name: String,
        /// Its segment.
        label: String,
        /// The first file.
        first: String,
        /// The first file's segment.
        first_label: String,
        /// Its part count.
        count: u64,
        /// The first file's part count.
        first_count: u64,
    },
    /// Segments of two different sequences: their items were dealt out differently.
    #[error(
        "{source_name} is segment {segment}, but {first} is segment {first_segment}: segments of one plan must be \
         cut from one sequence (give every process the same --segment-sequence)"
    )]
    DifferentSequence {
        /// The file.
        source_name: String,
        /// Its segment and sequence: `1/2:1 of the sequence 0,1/4,1/2,1`.
        segment: String,
        /// The first file.
        first: String,
        /// The first file's segment and sequence.
        first_segment: String,
    },
    /// Two segments that share part of the plan.
    #[error(
        "{source_name} (segment {label}) overlaps {other} (segment {other_label}): merged, part of the plan would \
         count twice"
    )]
    Overlap {
        /// The file.
        source_name: String,
        /// Its segment.
        label: String,
        /// The file it overlaps.
        other: String,
        /// That file's segment.
        other_label: String,
    },
    /// One segment given twice.
    #[error("{source_name} and {other} are both segment {label}: each segment may be merged once")]
    Duplicate {
        /// The second file.
        source_name: String,
        /// The file given first.
        other: String,
        /// The segment.
        label: String,
    },
    /// Segments of the plan not given (a gap), and no partial merge asked for.
    #[error("segment{} {} of {of} missing: merge every segment, or ask for a partial merge (--partial)", if .missing.len() == 1 { "" } else { "s" }, .missing.join(", "))]
    Missing {
        /// The segments not given, `i/N` or `FROM:TO`.
        missing: Vec<String>,
        /// What they are missing from: the part count (`3`) or `the sequence 0,1/4,1/2,1`.
        of: String,
    },
    /// A histogram that does not decode.
    #[error("{source_name}: {what}: {source}")]
    Histogram {
        /// The file.
        source_name: String,
        /// Which histogram.
        what: String,
        /// Why it does not decode.
        source: HistogramDecodeError,
    },
    /// A start time that is not RFC 3339.
    #[error("{source_name}: started_at {value:?} is not an RFC 3339 UTC time")]
    StartedAt {
        /// The file.
        source_name: String,
        /// The value.
        value: String,
    },
}

/// The inputs, checked and placed on one clock.
pub(super) struct Checked<'a> {
    /// In segment order.
    pub parts: Vec<Part<'a>>,
    /// The earliest start, as written.
    pub started_at: String,
    /// The segments not given (partial merges only).
    pub missing: Vec<String>,
    /// What the merge should say about its inputs.
    pub notes: Vec<String>,
}

/// Checks `inputs` against the first of them, and places each on the merged clock.
pub(super) fn check(inputs: &[MergeInput], options: MergeOptions) -> Result<Checked<'_>, MergeError> {
    let first = inputs.first().ok_or(MergeError::Empty)?;
    // By where each segment starts: the merged order, and where a gap or an overlap shows.
    let mut by_start: BTreeMap<Ratio, (&MergeInput, &str, SegmentLabel)> = BTreeMap::new();
    let mut first_segment: Option<(&str, SegmentLabel)> = None;
    let mut given: Vec<(&MergeInput, &str, SegmentLabel)> = Vec::with_capacity(inputs.len());
    for input in inputs {
        let doc = &input.document;
        let source_name = || input.source.clone();
        if doc.schema_version != SCHEMA_VERSION {
            return Err(MergeError::SchemaVersion {
                source_name: source_name(),
                found: doc.schema_version,
                expected: SCHEMA_VERSION,
            });
        }
        if doc.find_limit.is_some() {
            return Err(MergeError::NotASegment { source_name: source_name(), why: "it is find-limit's".into() });
        }
        let label = doc.summary.segment.as_deref().ok_or_else(|| MergeError::NotASegment {
            source_name: source_name(),
            why: if doc.summary.merged.is_some() { "it is a merge already" } else { "it ran the whole plan" }.into(),
        })?;
        let segment = SegmentLabel::parse(label, doc.summary.segment_sequence.as_deref()).map_err(|e| {
            MergeError::NotASegment { source_name: source_name(), why: format!("its segment {label:?}: {e}") }
        })?;
        let (first_label, first_of) = first_segment.get_or_insert_with(|| (label, segment.clone()));
        if let (Some(count), Some(first_count)) = (segment.parts, first_of.parts) {
            if count != first_count {
                return Err(MergeError::DifferentCount {
                    source_name: source_name(),
                    label: label.to_string(),
                    first: first.source.clone(),
                    first_label: first_label.to_string(),
                    count,
                    first_count,
                });
            }
        }
        check_plan(input, first)?;
        check_histograms(input)?;
        given.push((input, label, segment));
    }
    // Then how the segments lie: none twice, none overlapping another, all of one sequence.
    for (at, (input, label, segment)) in given.iter().enumerate() {
        for (other, other_label, placed) in &given[..at] {
            if placed.from == segment.from && placed.to == segment.to && placed.sequence == segment.sequence {
                return Err(MergeError::Duplicate {
                    source_name: input.source.clone(),
                    other: other.source.clone(),
                    label: label.to_string(),
                });
            }
            if placed.overlaps(segment) {
                return Err(MergeError::Overlap {
                    source_name: input.source.clone(),
                    label: label.to_string(),
                    other: other.source.clone(),
                    other_label: other_label.to_string(),
                });
            }
        }
    }
    for (input, label, segment) in given {
        if let Some((first_label, first_of)) = &first_segment {
            if segment.sequence != first_of.sequence {
                return Err(MergeError::DifferentSequence {
                    source_name: input.source.clone(),
                    segment: format!("{label} of the sequence {}", segment.sequence),
                    first: first.source.clone(),
                    first_segment: format!("{first_label} of the sequence {}", first_of.sequence),
                });
            }
        }
        by_start.insert(segment.from, (input, label, segment));
    }
    // One sequence, no segment twice: what is not covered is the sequence's segments not given.
    let missing: Vec<String> = match &first_segment {
        Some((_, like)) => (0..like.sequence.len())
            .filter(|&k| !by_start.contains_key(&like.sequence.segment(k).0))
            .map(|k| SegmentLabel::label_of(&like.sequence, k, like))
            .collect(),
        None => Vec::new(),
    };
    if !missing.is_empty() && !options.allow_partial {
        let of = match first_segment.as_ref().map(|(_, like)| like) {
            Some(SegmentLabel { parts: Some(n), .. }) => n.to_string(),
            Some(like) => format!("the sequence {}", like.sequence),
            None => String::new(),
        };
        return Err(MergeError::Missing { missing, of });
    }

    let mut starts = Vec::with_capacity(by_start.len());
    for (input, _, _) in by_start.values() {
        let at = time::parse_rfc3339_ms(&input.document.started_at).ok_or_else(|| MergeError::StartedAt {
            source_name: input.source.clone(),
            value: input.document.started_at.clone(),
        })?;
        starts.push(at);
    }
    let earliest = starts.iter().copied().min().unwrap_or(0);
    let mut notes = Vec::new();
    let mut parts = Vec::with_capacity(by_start.len());
    let mut started_at = first.document.started_at.clone();
    for ((input, label, _), at) in by_start.values().zip(&starts) {
        let offset_ms = at.saturating_sub(earliest);
        let offset_s = (offset_ms + 500) / 1000;
        let off_by = offset_ms.abs_diff(offset_s * 1000);
        if off_by > 100 {
            notes.push(format!(
                "segment {label} ({}) started {:.3} s after the earliest, {off_by} ms off a whole second: its \
                 seconds are added into the nearest merged second (start segments with one --start-at to align them)",
                input.source,
                offset_ms as f64 / 1000.0
            ));
        }
        if *at == earliest {
            started_at = input.document.started_at.clone();
        }
        parts.push(Part { source: &input.source, doc: &input.document, label, offset_ms, offset_s });
    }
    Ok(Checked { parts, started_at, missing, notes })
}

/// Refuses a document whose plan is not `first`'s, saying where they differ.
fn check_plan(input: &MergeInput, first: &MergeInput) -> Result<(), MergeError> {
    let fingerprint = |i: &MergeInput| {
        i.document.plan_fingerprint.clone().ok_or_else(|| MergeError::NotMergeable {
            source_name: i.source.clone(),
            what: "it has no plan fingerprint".into(),
        })
    };
    let (found, expected) = (fingerprint(input)?, fingerprint(first)?);
    if found == expected {
        return Ok(());
    }
    let mut differences = Vec::new();
    differences_of(
        &plan_identity(&first.document.plan),
        &plan_identity(&input.document.plan),
        "plan",
        &mut differences,
    );
    let shown: Vec<String> = differences
        .iter()
        .take(SHOWN_DIFFERENCES)
        .map(|(path, there, here)| format!("{path} is {here} here, {there} in {}", first.source))
        .collect();
    let difference = match differences.len() {
        0 => "the plans differ only in how they were recorded".into(),
        n if n > SHOWN_DIFFERENCES => format!("{} (and {} more)", shown.join("; "), n - SHOWN_DIFFERENCES),
        _ => shown.join("; "),
    };
    Err(MergeError::DifferentPlan {
        source_name: input.source.clone(),
        first: first.source.clone(),
        found,
        expected,
        difference,
    })
}

/// How many differences of two plans a refusal lists.
const SHOWN_DIFFERENCES: usize = 3;

/// Every place `a` and `b` differ, in key order: its path and the two values, shortened.
fn differences_of(a: &Value, b: &Value, path: &str, out: &mut Vec<(String, String, String)>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let keys: std::collections::BTreeSet<&String> = x.keys().chain(y.keys()).collect();
            for k in keys {
                let (va, vb) = (x.get(k).unwrap_or(&Value::Null), y.get(k).unwrap_or(&Value::Null));
                differences_of(va, vb, &format!("{path}.{k}"), out);
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (va, vb)) in x.iter().zip(y).enumerate() {
                differences_of(va, vb, &format!("{path}[{i}]"), out);
            }
        }
        _ if a == b => {}
        _ => out.push((path.to_string(), short(a), short(b))),
    }
}

/// A value, shortened for a message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((cut, _)) => format!("{}...", &text[..cut]),
        None => text,
    }
}

/// Refuses a segment's document without the histograms an exact merge reads.
fn check_histograms(input: &MergeInput) -> Result<(), MergeError> {
    let doc = &input.document;
    let missing = if let Some(e) = doc.timeline.iter().find(|e| e.histograms.is_none()) {
        Some(format!("second {} of its timeline has no histograms", e.second))
    } else {
        doc.summary.by_name.iter().find(|n| n.histograms.is_none()).map(|n| format!("{:?} has no histograms", n.name))
    };
    match missing {
        Some(what) => Err(MergeError::NotMergeable { source_name: input.source.clone(), what }),
        None => Ok(()),
    }
}
