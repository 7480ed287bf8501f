//! The results document (`-o FILE`) and the `--json` summary are pummel's contract with other
//! tools: the document must match `schema/results.schema.json`, its histograms must decode, and
//! the summary's shape is snapshotted so that any change to it is a visible diff.

use std::time::Duration;

use base64::Engine as _;
use hdrhistogram::Histogram;
use hdrhistogram::serialization::Deserializer;
use serde_json::Value;

use crate::support::{self, Sink, count, num};

/// Runs a short closed-model test with a threshold and returns the results document.
fn closed_run_document() -> Value {
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "results.json");
    let out = support::run(
        &["run", &sink.url("/doc"), "-n", "300", "-c", "2", "--threshold", "p99<10s", "-o", &file, "--quiet"],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    support::read_json(&path)
}

pub(crate) fn decode(base64_text: &str) -> Histogram<u64> {
    let bytes = base64::engine::general_purpose::STANDARD.decode(base64_text).expect("histograms are base64");
    assert!(!bytes.is_empty(), "a histogram decodes to no bytes");
    Deserializer::new().deserialize(&mut bytes.as_slice()).expect("histograms are HdrHistogram V2 (+DEFLATE)")
}

#[test]
fn results_document_matches_the_schema() {
    let _load = support::shared();
    let doc = closed_run_document();
    support::assert_valid_results(&doc);
    assert_eq!(count(&doc, "/schema_version"), 3);
    assert_eq!(doc["pummel_version"], doc["summary"]["pummel_version"]);
    // A quick run is one scenario of its one request.
    assert_eq!(doc["plan"]["scenarios"]["list"][0]["load"]["model"], "closed");
    assert_eq!(doc["plan"]["scenarios"]["list"][0]["flow"][0]["request"]["method"], "GET");
    assert_eq!(doc["stage_histograms"].as_array().map(Vec::len), Some(1));
}

/// The schema is strict enough to catch drift: a renamed, added or retyped field fails it.
/// A change made to a valid document, and what it is.
type Mutation = (&'static str, fn(&mut Value));

#[test]
fn schema_rejects_shape_drift() {
    let _load = support::shared();
    let doc = closed_run_document();
    support::assert_valid_results(&doc);
    let validator = support::results_schema();
    let mutations: [Mutation; 7] = [
        ("an unknown summary field", |d| d["summary"]["surprise"] = Value::from(1)),
        ("a summary field removed", |d| {
            if let Some(summary) = d["summary"].as_object_mut() {
                summary.remove("duration_s");
            }
        }),
        ("a count as a string", |d| d["summary"]["requests"]["completed"] = Value::from("300")),
        ("latency figures as a string", |d| d["summary"]["latency_ms"] = Value::from("fast")),
        ("an unknown timeline field", |d| d["timeline"][0]["surprise"] = Value::from(true)),
        ("an unknown error kind", |d| d["summary"]["errors"]["flux_capacitor"] = Value::from(1)),
        ("a histogram that is not base64", |d| d["histograms"]["latency"] = Value::from("not base64!")),
    ];
    for (what, mutate) in mutations {
        let mut bad = doc.clone();
        mutate(&mut bad);
        assert!(!validator.is_valid(&bad), "the schema accepted a document with {what}");
    }
}

#[test]
fn histograms_decode_to_the_summary() {
    let _load = support::shared();
    let doc = closed_run_document();
    let latency = decode(doc["histograms"]["latency"].as_str().expect("latency histogram"));
    let service = decode(doc["histograms"]["service_time"].as_str().expect("service time histogram"));
    let connect = decode(doc["histograms"]["connect_time"].as_str().expect("connect time histogram"));
    let summary = &doc["summary"];
    assert_eq!(latency.len(), count(summary, "/requests/ok"), "one latency per answered request");
    assert_eq!(service.len(), 300);
    assert_eq!(connect.len(), count(summary, "/connect_ms/count"));
    // Microseconds in the histogram, milliseconds in the summary.
    let max_ms = latency.max() as f64 / 1000.0;
    let summary_max = num(summary, "/latency_ms/max");
    assert!(
        (max_ms - summary_max).abs() <= summary_max * 0.01 + 0.002,
        "histogram max {max_ms} ms vs summary {summary_max} ms"
    );
    let stage = decode(doc["stage_histograms"][0]["latency"].as_str().expect("stage latency histogram"));
    assert_eq!(stage.len(), latency.len(), "one stage: its histogram is the whole run's");
}

/// Replaces every number by 0 (keeping integer vs float) and every string by a placeholder,
/// except the threshold expressions, which are input: what remains is the shape.
fn shape(value: &Value, key: Option<&str>) -> Value {
    match value {
        Value::Number(n) if n.is_f64() => Value::from(0.0),
        Value::Number(_) => Value::from(0),
        Value::String(s) if key == Some("expr") => Value::from(s.clone()),
        Value::String(_) => Value::from("<string>"),
        Value::Array(items) => Value::Array(items.iter().map(|v| shape(v, None)).collect()),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    // Set only when a side limited the run (a busy machine's generator):
                    // machine-dependent.
                    if k == "limit" {
                        (k.clone(), Value::from("<limit or null>"))
                    } else {
                        (k.clone(), shape(v, Some(k)))
                    }
                })
                .collect(),
        ),
        other => other.clone(),
    }
}

#[test]
fn json_summary_shape_snapshot() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let out = support::run(
        &[
            "run",
            &sink.url("/"),
            "-r",
            "400",
            "-d",
            "1s",
            "--threshold",
            "p99<10s",
            "--threshold",
            "error_rate<1%",
            "--json",
        ],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    let summary = out.json();
    assert!(count(&summary, "/requests/ok") > 0);
    let shaped = shape(&summary, None);
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_json_snapshot!("json_summary_shape", shaped);
    });
}
