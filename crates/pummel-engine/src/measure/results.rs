//! The results document of a run, assembled from what it measured ([`document`]); its types
//! are `pummel_results::document`'s. A segment's document (`--segment`) carries the TLS
//! handshake histogram too, and its timeline and per-name figures their histograms, so that
//! `pummel merge` joins segments exactly; other documents keep their size.

use pummel_results::document::{Histograms, ResultsDocument, SCHEMA_VERSION};
use pummel_results::fingerprint::plan_fingerprint;
use pummel_results::histogram::to_base64;
use pummel_results::summary::Summary;

use crate::engine::RunOutcome;
use crate::measure::stats::Stats;
use crate::plan::Plan;

/// The serialized histograms of `stats` (without the TLS handshakes: see [`segment_histograms`]).
pub fn histograms(stats: &Stats) -> Histograms {
    Histograms {
        latency: to_base64(&stats.latency),
        service_time: to_base64(&stats.service_time),
        latency_all: to_base64(&stats.latency_all),
        connect_time: to_base64(&stats.connect_time),
        schedule_lag: to_base64(&stats.schedule_lag),
        tls_handshake: None,
    }
}

/// The serialized histograms of `stats`, the TLS handshakes' included when `plan` is a segment.
pub fn segment_histograms(plan: &Plan, stats: &Stats) -> Histograms {
    let mut histograms = histograms(stats);
    if !plan.segment.is_whole() {
        histograms.tls_handshake = Some(to_base64(&stats.tls_handshake_time));
    }
    histograms
}

/// Assembles the document of a finished (or cut short) run.
pub fn document(plan: &Plan, outcome: &RunOutcome, summary: Summary) -> ResultsDocument {
    let plan_json = serde_json::to_value(plan).unwrap_or(serde_json::Value::Null);
    ResultsDocument {
        schema_version: SCHEMA_VERSION,
        pummel_version: crate::VERSION.to_string(),
        started_at: humantime::format_rfc3339_millis(outcome.started_at).to_string(),
        plan_fingerprint: Some(plan_fingerprint(&plan_json)),
        plan: plan_json,
        summary,
        timeline: outcome.timeline.clone(),
        histograms: segment_histograms(plan, &outcome.total),
        stage_histograms: outcome.stages.iter().map(|s| histograms(&s.stats)).collect(),
        other_errors: outcome.other_errors.clone(),
        find_limit: None,
    }
}
