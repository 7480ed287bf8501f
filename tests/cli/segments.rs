//! Segments (`--segment i/N`): processes that each run one part of a plan together run exactly
//! the whole plan — arrivals, users, iterations and feeder rows dealt out with nothing lost,
//! nothing repeated, and `{{ user }}` unique over the parts — starting at one agreed instant.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::plans::{header, recorded, write_plan};
use crate::support::{self, count, spawn_sink, text};

/// Three segments of a closed plan (9 users × 3 iterations, a `unique` feeder of 30 rows dealt
/// out 10 to a segment): every user of the whole plan runs its 3 iterations in exactly one
/// segment, and no row is used twice; the summaries say which segment each was.
#[test]
fn three_segments_run_the_whole_closed_plan_once() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let rows: String = (0..30).map(|i| format!("{}\n", 1000 + i)).collect();
    std::fs::write(dir.path().join("ids.csv"), format!("id\n{rows}")).expect("write the feeder");
    let plan = write_plan(
        &dir,
        "closed.toml",
        r#"
[[scenario]]
users = 9
iterations = 3
flow = [ { request = { path = "/row/{{ ids.id }}", headers = { X-User = "{{ user }}" } } } ]

[feeders.ids]
file = "ids.csv"
mode = "unique"
when_exhausted = "end"
"#,
    );
    let base = format!("http://{addr}");
    let mut sent = 0;
    for part in ["1/3", "2/3", "3/3"] {
        let out =
            support::run(&["run", &plan, "--base-url", &base, "--segment", part, "--json"], Duration::from_secs(60));
        out.assert_code(0).assert_no_panic();
        let summary = out.json();
        assert_eq!(text(&summary, "/segment"), part);
        sent += count(&summary, "/requests/sent");
    }
    assert_eq!(sent, 27, "the segments add up to the whole plan");
    let records = recorded(&record_path, 27, Duration::from_secs(10));
    let mut per_user: BTreeMap<String, usize> = BTreeMap::new();
    for r in &records {
        *per_user.entry(header(r, "x-user").unwrap_or("?").to_string()).or_default() += 1;
    }
    let expected: BTreeMap<String, usize> = (0..9).map(|u| (u.to_string(), 3)).collect();
    assert_eq!(per_user, expected, "each user of the plan in exactly one segment, 3 iterations each");
    let used: Vec<String> = records.iter().map(|r| text(r, "/target").to_string()).collect();
    let distinct: std::collections::BTreeSet<&String> = used.iter().collect();
    assert_eq!(distinct.len(), 27, "no row used twice over the segments: {used:?}");
}

/// Two segments of an open-model quick run, started together with `--start-at`: each sends
/// exactly half of the arrivals, interleaved (the sink sees one even stream, not two bursts).
#[test]
fn two_segments_interleave_the_arrivals_from_one_start() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let url = format!("http://{addr}/");
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64;
    let start = (now_ms + 2000).to_string();
    let run = |part: &str| {
        support::spawn(&["run", &url, "-r", "100", "-d", "2s", "--segment", part, "--start-at", &start, "--json"], None)
    };
    let (first, second) = (run("1/2"), run("2/2"));
    let (first, second) = (first.wait(Duration::from_secs(60)), second.wait(Duration::from_secs(60)));
    for out in [&first, &second] {
        out.assert_code(0).assert_no_panic();
        assert_eq!(count(&out.json(), "/requests/sent"), 100, "half of 100/s for 2 s: {}", out.stdout);
    }
    let records = recorded(&record_path, 200, Duration::from_secs(10));
    let mut times: Vec<f64> = records.iter().filter_map(|r| r["t_ms"].as_f64()).collect();
    times.sort_by(f64::total_cmp);
    let first_at = times[0];
    assert!((first_at - (now_ms + 2000) as f64).abs() < 150.0, "both started at the agreed instant");
    // One stream at 100/s: no gap much longer than the 10 ms spacing, as with one process.
    let widest = times.windows(2).map(|w| w[1] - w[0]).fold(0.0, f64::max);
    assert!(widest < 60.0, "arrivals interleave: the widest gap is {widest} ms");
}

/// A bad `--segment` is a usage error.
#[test]
fn a_bad_segment_is_a_usage_error() {
    let _load = support::shared();
    for bad in ["0/2", "3/2", "1", "a/b", "1/0"] {
        let out = support::run(&["run", "http://127.0.0.1:9/", "-n", "1", "--segment", bad], Duration::from_secs(30));
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("expected i/N"), "{bad}: {}", out.stderr);
    }
    let out =
        support::run(&["run", "http://127.0.0.1:9/", "-n", "1", "--start-at", "yesterday"], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("--start-at"), "{}", out.stderr);
}

/// A request count (`-n`) over segments of a closed run is dealt out by user: 61 requests of 5
/// users over 3 segments add up to 61 whatever the thread counts, and a segment without users
/// (3 segments, 2 users) is owed none, so nothing is lost.
#[test]
fn a_request_count_follows_the_users_over_segments() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    for (users, n, threads) in [("5", 61, "1"), ("5", 61, "4"), ("2", 60, "2")] {
        let mut parts = Vec::new();
        for part in ["1/3", "2/3", "3/3"] {
            let out = support::run(
                &["run", &url, "-c", users, "-n", &n.to_string(), "-t", threads, "--segment", part, "--json"],
                Duration::from_secs(60),
            );
            out.assert_code(0).assert_no_panic();
            parts.push(count(&out.json(), "/requests/sent"));
        }
        assert_eq!(parts.iter().sum::<u64>(), n, "{users} users, -t {threads}: {parts:?}");
    }
}
