//! Segments (`--segment i/N`, and k6's `--segment FROM:TO` with `--segment-sequence`):
//! processes that each run one part of a plan together run exactly the whole plan — arrivals,
//! users, iterations and feeder rows dealt out with nothing lost, nothing repeated, and
//! `{{ user }}` unique over the parts — starting at one agreed instant; `pummel merge` joins
//! segments of one sequence that cover the plan, and refuses overlapping ones.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::support::plans::{header, recorded, write_plan};
use crate::support::{self, count, read_json, spawn_sink, text};

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
    let sequence = "0,1/4,1/2,1";
    for (segment, sequence, why) in [
        ("1/2:1/4", None, "1/2:1/4 is empty: a segment's start must be below its end"),
        ("0:3/2", None, "3/2 is above 1"),
        ("0:x", None, "\"x\" is not a number"),
        ("0:1/3", Some(sequence), "the segment 0:1/3 is not in the sequence 0,1/4,1/2,1"),
        ("0:1/4", Some("0,1/2,1/4,1"), "1/4 does not come after 1/2"),
    ] {
        let mut args = vec!["run", "http://127.0.0.1:9/", "-n", "1", "--segment", segment];
        args.extend(sequence.iter().flat_map(|s| ["--segment-sequence", *s]));
        let out = support::run(&args, Duration::from_secs(30));
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains(&format!("--segment {segment:?}")), "{segment}: {}", out.stderr);
        assert!(out.stderr.contains(why), "{segment}: {}", out.stderr);
    }
    let out = support::run(
        &["run", "http://127.0.0.1:9/", "-n", "1", "--segment-sequence", sequence],
        Duration::from_secs(30),
    );
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("--segment-sequence needs --segment"), "{}", out.stderr);
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

/// The sequence of the range tests: a quarter, a quarter, a half.
const QUARTERS: &str = "0,1/4,1/2,1";

/// Three ranges of one sequence (`0:1/4`, `1/4:1/2`, `1/2:1`) of an open plan of 35/s for
/// 2 s (70 arrivals), each reading a `unique` feeder of 70 rows, started together: each sends
/// its share by k6's arithmetic (the sequence deals out blocks of 4 arrivals: offset 1 to the
/// first, 3 to the second, 0 and 2 to the half, so 18 + 17 + 35), the sink sees every arrival
/// once — `{{ user }}` 0..70 and every row, none twice — and `pummel merge` of the three is the
/// whole plan. A segment of another sequence that overlaps them is refused, as is a set that
/// covers the plan with segments of two sequences.
#[test]
fn three_ranges_of_a_sequence_run_the_whole_open_plan_once() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let rows: String = (0..70).map(|i| format!("{}\n", 1000 + i)).collect();
    std::fs::write(dir.path().join("ids.csv"), format!("id\n{rows}")).expect("write the feeder");
    let plan = write_plan(
        &dir,
        "open.toml",
        r#"
[[scenario]]
rate = 35
duration = "2s"
flow = [ { request = { path = "/row/{{ ids.id }}", headers = { X-User = "{{ user }}" } } } ]

[feeders.ids]
file = "ids.csv"
mode = "unique"
when_exhausted = "end"
"#,
    );
    let base = format!("http://{addr}");
    let now_ms = SystemTime::now().duration_since(UNIX_EPOCH).expect("after 1970").as_millis() as u64;
    let start = (now_ms + 2000).to_string();
    let parts = [("0:1/4", "1", 18), ("1/4:1/2", "2", 17), ("1/2:1", "3", 35)];
    let files: Vec<String> = (1..=3).map(|i| support::path_in(&dir, &format!("seg-{i}.json")).1).collect();
    let runs: Vec<support::Running> = parts
        .iter()
        .zip(&files)
        .map(|((part, threads, _), file)| {
            let args = [
                "run",
                &plan,
                "--base-url",
                &base,
                "--segment",
                part,
                "--segment-sequence",
                QUARTERS,
                "-t",
                threads,
                "--start-at",
                &start,
                "-o",
                file,
                "--quiet",
            ];
            support::spawn(&args, None)
        })
        .collect();
    for run in runs {
        run.wait(Duration::from_secs(60)).assert_code(0).assert_no_panic();
    }
    let docs: Vec<serde_json::Value> = files.iter().map(|f| read_json(std::path::Path::new(f))).collect();
    for ((part, _, share), doc) in parts.iter().zip(&docs) {
        support::assert_valid_results(doc);
        assert_eq!(text(doc, "/summary/segment"), *part);
        assert_eq!(text(doc, "/summary/segment_sequence"), QUARTERS);
        assert_eq!(count(doc, "/summary/requests/sent"), *share, "{part} sends its share");
    }
    let records = recorded(&record_path, 70, Duration::from_secs(10));
    assert_eq!(records.len(), 70, "the sink saw the whole plan once");
    let mut users: Vec<u64> =
        records.iter().map(|r| header(r, "x-user").and_then(|u| u.parse().ok()).unwrap_or(u64::MAX)).collect();
    users.sort_unstable();
    assert_eq!(users, (0..70).collect::<Vec<_>>(), "every {{{{ user }}}} of the plan once over the segments");
    let mut used: Vec<String> = records.iter().map(|r| text(r, "/target").to_string()).collect();
    used.sort();
    let expected: Vec<String> = (0..70).map(|i| format!("/row/{}", 1000 + i)).collect();
    assert_eq!(used, expected, "every row once over the segments");

    // The merge is the whole plan.
    let (all_path, all) = support::path_in(&dir, "all.json");
    let mut args = vec!["merge"];
    args.extend(files.iter().map(String::as_str));
    args.extend(["-o", &all, "--quiet"]);
    support::run(&args, Duration::from_secs(30)).assert_code(0).assert_no_panic();
    let merged = read_json(&all_path);
    support::assert_valid_results(&merged);
    assert_eq!(merged["summary"]["merged"]["segments"], serde_json::json!(["0:1/4", "1/4:1/2", "1/2:1"]));
    assert_eq!(count(&merged, "/summary/requests/sent"), 70);
    assert_eq!(count(&merged, "/summary/requests/ok"), 70);

    // Half the plan in its own sequence (0,1/2,1) overlaps the first two.
    let (_, half) = support::path_in(&dir, "half.json");
    let out = support::run(
        &["run", &plan, "--base-url", &base, "--segment", "0:1/2", "-o", &half, "--quiet"],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let out = support::run(&["merge", &files[0], &files[1], &files[2], &half], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains(&format!("{half} (segment 0:1/2) overlaps {}", files[0])), "{}", out.stderr);
    // With the other half it covers the plan, but the halves were dealt out by two sequences.
    let out = support::run(&["merge", &half, &files[2]], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    assert!(
        out.stderr.contains(&format!(
            "{} is segment 1/2:1 of the sequence 0,1/4,1/2,1, but {half} is segment 0:1/2",
            files[2]
        )),
        "{}",
        out.stderr
    );
    // A gap: the middle quarter missing.
    let out = support::run(&["merge", &files[0], &files[2]], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("segment 1/4:1/2 of the sequence 0,1/4,1/2,1 missing"), "{}", out.stderr);
}

/// Ranges deal out the users of a closed plan as they deal out arrivals: 10 users × 2
/// iterations over `0:1/4`, `1/4:1/2`, `1/2:1` of one sequence are users {1, 5, 9}, {3, 7} and
/// {0, 2, 4, 6, 8} (offsets 1, 3 and 0, 2 of every 4), each user's iterations in one segment.
#[test]
fn ranges_deal_out_the_users_of_a_closed_plan() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let plan = write_plan(
        &dir,
        "closed.toml",
        r#"
[[scenario]]
users = 10
iterations = 2
flow = [ { request = { path = "/", headers = { X-User = "{{ user }}" } } } ]
"#,
    );
    let base = format!("http://{addr}");
    let mut seen = 0;
    for (part, threads, users) in
        [("0:1/4", "2", vec![1, 5, 9]), ("1/4:1/2", "1", vec![3, 7]), ("1/2:1", "3", vec![0, 2, 4, 6, 8])]
    {
        let args = [
            "run",
            &plan,
            "--base-url",
            &base,
            "--segment",
            part,
            "--segment-sequence",
            QUARTERS,
            "-t",
            threads,
            "--json",
        ];
        let out = support::run(&args, Duration::from_secs(60));
        out.assert_code(0).assert_no_panic();
        assert_eq!(count(&out.json(), "/requests/sent"), 2 * users.len() as u64, "{part}");
        seen += 2 * users.len();
        let records = recorded(&record_path, seen, Duration::from_secs(10));
        let mut of_part: BTreeMap<u64, usize> = BTreeMap::new();
        for r in &records[seen - 2 * users.len()..] {
            *of_part.entry(header(r, "x-user").and_then(|u| u.parse().ok()).unwrap_or(u64::MAX)).or_default() += 1;
        }
        let expected: BTreeMap<u64, usize> = users.iter().map(|&u| (u, 2)).collect();
        assert_eq!(of_part, expected, "{part}: its users, 2 iterations each");
    }
    assert_eq!(seen, 20, "the segments add up to the whole plan");
}
