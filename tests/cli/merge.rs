//! `pummel merge`: the results of a plan's segments joined into the results of the whole plan.
//! Three processes each run a third of a plan against one `pummel sink`, started together with
//! `--start-at`; the merge must count exactly what the sink received, hold the histogram of all
//! the requests (its p99 read back from the document equals the summary's), line the seconds up,
//! judge the thresholds again on the merged figures, and be a document `report` and the schema
//! accept. Documents that do not belong together are refused with exit 2, naming the file.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use pummel_results::histogram::{from_base64, merge as add, new_histogram};
use serde_json::Value;

use crate::support::plans::write_plan;
use crate::support::{self, count, num, read_json, text};

/// Stops a sink started with `--stats` and returns the requests it received, from its line
/// `pummel sink: N requests on C connections`.
fn sink_requests(sink: support::Running) -> u64 {
    sink.signal("INT");
    let out = sink.wait(Duration::from_secs(10));
    let line = out
        .stderr
        .lines()
        .find(|l| l.contains("requests on"))
        .unwrap_or_else(|| panic!("no totals from the sink:\n{}", out.stderr));
    line.split_whitespace().find_map(|w| w.parse().ok()).unwrap_or_else(|| panic!("no count in {line:?}"))
}

/// Unix milliseconds `ahead` from now, for `--start-at`.
fn instant_ahead(ahead: Duration) -> String {
    let now = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970");
    (now + ahead).as_millis().to_string()
}

/// The histogram at `pointer` (base64) of `doc`.
fn histogram(doc: &Value, pointer: &str) -> hdrhistogram::Histogram<u64> {
    from_base64(text(doc, pointer)).unwrap_or_else(|e| panic!("{pointer}: {e}"))
}

const PLAN: &str = r#"
[[scenario]]
name = "browse"
rate = 30
duration = "2s"
flow = [
  { request = { path = "/a", name = "GET /a" } },
  { request = { path = "/b", name = "GET /b" } },
]

[thresholds]
global = ["p99<10s", "error_rate<1%"]
"GET /a" = ["p99<10s"]
"#;

#[test]
fn three_segments_merge_into_exactly_what_the_sink_received() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (sink, addr) = support::spawn_sink(&["--stats", "1h"]);
    let plan = write_plan(&dir, "plan.toml", PLAN);
    let base = format!("http://{addr}");
    let start = instant_ahead(Duration::from_secs(3));
    let files: Vec<String> = (1..=3).map(|i| support::path_in(&dir, &format!("seg-{i}.json")).1).collect();
    let runs: Vec<support::Running> = (1..=3)
        .map(|i| {
            let part = format!("{i}/3");
            let args = ["run", &plan, "--base-url", &base, "--segment", &part, "--start-at", &start, "-t", "1"];
            let mut args = args.to_vec();
            args.extend(["-o", &files[i - 1], "--quiet"]);
            support::spawn(&args, None)
        })
        .collect();
    for run in runs {
        run.wait(Duration::from_secs(60)).assert_code(0).assert_no_panic();
    }
    let (all_path, all) = support::path_in(&dir, "all.json");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["-o", &all, "--json"]);
    let out = support::run(&args, Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let printed = out.json();
    let segments: Vec<Value> = files.iter().map(|f| read_json(std::path::Path::new(f))).collect();
    let merged = read_json(&all_path);
    for doc in segments.iter().chain([&merged]) {
        support::assert_valid_results(doc);
    }
    assert_eq!(printed, merged["summary"], "--json prints the merged document's summary");
    assert_eq!(merged["summary"]["merged"]["segments"], serde_json::json!(["1/3", "2/3", "3/3"]));
    assert!(merged["summary"].get("segment").is_none(), "the merge is of the whole plan");

    // Counts: what the sink received, all of it, once.
    let received = sink_requests(sink);
    let s = &merged["summary"];
    assert_eq!(count(s, "/requests/completed"), received, "merged completed vs the sink's count");
    assert_eq!(count(s, "/requests/ok"), received);
    let per_segment: u64 = segments.iter().map(|d| count(d, "/summary/requests/sent")).sum();
    assert_eq!(count(s, "/requests/sent"), per_segment);
    assert!(received > 0, "the plan sent requests");

    // The merged histogram is the sum of the segments' histograms, and the summary's p99 is
    // read from it.
    let mut sum = new_histogram();
    for doc in &segments {
        add(&mut sum, &histogram(doc, "/histograms/latency"));
    }
    let in_document = histogram(&merged, "/histograms/latency");
    assert_eq!(in_document, sum, "merged histogram = the segments' histograms added");
    assert_eq!(in_document.len(), received);
    let p99_ms = in_document.value_at_quantile(0.99) as f64 / 1000.0;
    assert_eq!(num(s, "/latency_ms/p99"), p99_ms, "p99 recomputed from the merged histogram");

    // Per name: both names, each with all its requests.
    let names = s["by_name"].as_array().expect("by_name");
    assert_eq!(names.len(), 2, "{names:#?}");
    for name in names {
        let of_segments: u64 = segments
            .iter()
            .flat_map(|d| d["summary"]["by_name"].as_array().cloned().unwrap_or_default())
            .filter(|n| n["name"] == name["name"])
            .map(|n| count(&n, "/ok"))
            .sum();
        assert_eq!(count(name, "/ok"), of_segments, "{}", name["name"]);
        let h = histogram(name, "/histograms/latency");
        assert_eq!(num(name, "/latency_ms/p99"), h.value_at_quantile(0.99) as f64 / 1000.0);
    }

    // The timeline: one start, so second s of the merge is second s of every segment.
    let timeline = merged["timeline"].as_array().expect("timeline");
    let ok_seconds: u64 = timeline.iter().map(|e| count(e, "/ok")).sum();
    assert_eq!(ok_seconds, count(s, "/requests/ok"), "the seconds add up to the run");
    for entry in timeline {
        let second = count(entry, "/second");
        let of_segments: u64 = segments
            .iter()
            .flat_map(|d| d["timeline"].as_array().cloned().unwrap_or_default())
            .filter(|e| count(e, "/second") == second)
            .map(|e| count(&e, "/ok"))
            .sum();
        assert_eq!(count(entry, "/ok"), of_segments, "second {second}");
        let h = histogram(entry, "/histograms/latency");
        assert_eq!(h.len(), count(entry, "/ok"), "second {second}");
        if !h.is_empty() {
            assert_eq!(num(entry, "/latency_ms/p99"), h.value_at_quantile(0.99) as f64 / 1000.0);
        }
    }

    // Thresholds judged on the merged figures, the per-name one included.
    let verdicts: Vec<&str> =
        s["thresholds"].as_array().expect("thresholds").iter().map(|t| text(t, "/expr")).collect();
    assert_eq!(verdicts, ["p99<10s", "error_rate<1%", "GET /a: p99<10s"]);
    assert_eq!(num(&s["thresholds"][0], "/value"), p99_ms);

    // `report` and `compare` read the merged document.
    let report = support::run(&["report", &all, "--format", "md"], Duration::from_secs(30));
    report.assert_code(0).assert_no_panic();
    assert!(report.stdout.contains("merged: segments 1/3, 2/3, 3/3"), "{}", report.stdout);
    support::run(&["compare", &files[0], &all], Duration::from_secs(30)).assert_code(0).assert_no_panic();
}

/// Thresholds are judged on the merged figures, not taken from the segments: `sent<50` holds in
/// each third of a 60-request run and fails for the whole (exit 1); `sent>=60` the other way.
#[test]
fn thresholds_are_judged_again_on_the_merged_figures() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let sink = support::Sink::start(&[]);
    let url = sink.url("/");
    let run = |part: &str, threshold: &str, expect: i32| {
        let (_, file) = support::path_in(&dir, &format!("{threshold}-{}.json", part.replace('/', "-")));
        // 6 users on one thread, 2 in each segment. (With fewer users than segments × threads,
        // a thread or segment without users loses its share of -n: a known issue of segments.)
        let args = ["run", &url, "-n", "60", "-c", "6", "-t", "1", "--segment", part, "--threshold", threshold];
        let args = [&args[..], &["-o", &file]].concat();
        support::run(&[&args[..], &["--quiet"]].concat(), Duration::from_secs(60)).assert_code(expect);
        file
    };
    let few: Vec<String> = ["1/3", "2/3", "3/3"].iter().map(|p| run(p, "sent<50", 0)).collect();
    let out = support::run(
        &[&["merge"][..], &few.iter().map(String::as_str).collect::<Vec<_>>()].concat(),
        Duration::from_secs(30),
    );
    out.assert_code(1).assert_no_panic();
    assert!(out.stdout.contains("sent<50"), "{}", out.stdout);

    let many: Vec<String> = ["1/3", "2/3", "3/3"].iter().map(|p| run(p, "sent>=60", 1)).collect();
    let mut args = vec!["merge", "--json"];
    args.extend(many.iter().map(String::as_str));
    let out = support::run(&args, Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 60);
    assert_eq!(num(&summary, "/thresholds/0/value"), 60.0);
}

/// Documents that are not the segments of one plan are refused (exit 2), naming the file and
/// what differs; a partial merge is allowed when asked for, and says what is missing.
#[test]
fn documents_that_do_not_belong_together_are_refused() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let sink = support::Sink::start(&[]);
    let url = sink.url("/");
    let run = |name: &str, part: &str, rate: &str| {
        let (path, file) = support::path_in(&dir, name);
        let args = ["run", &url, "-r", rate, "-n", "10", "--segment", part, "-o", &file, "--quiet"];
        support::run(&args, Duration::from_secs(60)).assert_code(0);
        (path, file)
    };
    let (_, first) = run("first.json", "1/2", "50");
    let (second_path, second) = run("second.json", "2/2", "50");
    let (_, other) = run("other-plan.json", "2/2", "40");
    let merge = |files: &[&str]| support::run(&[&["merge"][..], files].concat(), Duration::from_secs(30));

    merge(&[&first, &second]).assert_code(0).assert_no_panic();

    let out = merge(&[&first, &other]);
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains(&format!("{other} ran a different plan than {first}")), "{}", out.stderr);
    assert!(out.stderr.contains("stages[0].rate is 40.0 here, 50.0 in"), "says what differs: {}", out.stderr);

    let out = merge(&[&first, &first]);
    out.assert_code(2);
    assert!(out.stderr.contains(&format!("{first} and {first} are both segment 1/2")), "{}", out.stderr);

    let mut older = read_json(&second_path);
    older["schema_version"] = 2.into();
    let (older_path, older_file) = support::path_in(&dir, "older.json");
    std::fs::write(&older_path, older.to_string()).expect("write the older document");
    let out = merge(&[&first, &older_file]);
    out.assert_code(2);
    assert!(out.stderr.contains(&format!("{older_file}: results document version 2")), "{}", out.stderr);

    let out = merge(&[&first]);
    out.assert_code(2);
    assert!(out.stderr.contains("segment 2/2 of 2 missing"), "{}", out.stderr);
    let out = merge(&[&first, "--partial", "--json"]);
    out.assert_code(0);
    assert_eq!(out.json()["partial"], true);
    assert_eq!(out.json()["merged"]["missing"], serde_json::json!(["2/2"]));
    assert!(out.stderr.contains("partial merge: segment 2/2 missing"), "{}", out.stderr);

    let (bogus_path, bogus) = support::path_in(&dir, "bogus.json");
    std::fs::write(&bogus_path, "{}").expect("write a bogus file");
    let out = merge(&[&first, &bogus]);
    out.assert_code(2);
    assert!(out.stderr.contains(&bogus), "{}", out.stderr);
}
