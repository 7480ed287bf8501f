//! Reproducible runs: with `--seed N` (or `seed = N` in a plan) every random choice repeats,
//! user by user; the seed a run used is in its results, so any run can be had again.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_json::Value;

use crate::support::plans::{header, recorded, write_plan};
use crate::support::{self, count, spawn_sink};

/// Random paths, a random branch, a random feeder row and a uuid, per user and iteration.
const PLAN: &str = r#"
[[scenario]]
users = 3
iterations = 4
flow = [
  { request = { path = "/item/{{ random_int(1, 1000000) }}/{{ colors.name }}", headers = { X-User = "{{ user }}", X-Id = "{{ uuid() }}" } } },
  { choose = [
    { weight = 50, flow = [ { request = { path = "/left/{{ random_string(8) }}", headers = { X-User = "{{ user }}" } } } ] },
    { weight = 50, flow = [ { request = { path = "/right", headers = { X-User = "{{ user }}" } } } ] },
  ] },
]

[feeders.colors]
file = "colors.csv"
mode = "random"
"#;

/// Writes the plan and its feeder into `dir`; the plan's path.
fn plan_in(dir: &tempfile::TempDir, seed_line: &str) -> String {
    std::fs::write(dir.path().join("colors.csv"), "name\nred\ngreen\nblue\ncyan\nmagenta\nyellow\n")
        .expect("write the feeder");
    write_plan(dir, "plan.toml", &format!("{seed_line}\n{PLAN}"))
}

/// Runs the plan against a recording sink: each user's requests (path and X-Id), in order.
fn per_user(plan: &str, extra: &[&str]) -> (BTreeMap<String, Vec<(String, String)>>, Value) {
    let dir = support::temp_dir();
    let (_, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let base = format!("http://{addr}");
    let mut args = vec!["run", plan, "--base-url", &base, "--json"];
    args.extend_from_slice(extra);
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let records = recorded(std::path::Path::new(&record), 24, Duration::from_secs(10));
    let mut users: BTreeMap<String, Vec<(String, String)>> = BTreeMap::new();
    for r in &records {
        let user = header(r, "x-user").unwrap_or("?").to_string();
        let id = header(r, "x-id").unwrap_or("").to_string();
        users.entry(user).or_default().push((r["target"].as_str().unwrap_or("").to_string(), id));
    }
    (users, summary)
}

/// The same seed twice: every user sends the same requests in the same order (paths, branch,
/// feeder row, uuid); another seed changes them; the summary says which seed ran.
#[test]
fn the_same_seed_repeats_every_users_requests() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = plan_in(&dir, "");
    let (first, summary) = per_user(&plan, &["--seed", "7"]);
    assert_eq!(count(&summary, "/seed"), 7);
    let (second, _) = per_user(&plan, &["--seed", "7"]);
    assert_eq!(first.len(), 3, "three users: {first:#?}");
    assert!(first.values().all(|requests| requests.len() == 8), "{first:#?}");
    assert_eq!(first, second, "the same seed, the same requests per user");
    let (other, summary) = per_user(&plan, &["--seed", "8"]);
    assert_ne!(first, other, "another seed, other requests");
    assert_eq!(count(&summary, "/seed"), 8);
    // Without a seed, a fresh one is used and said.
    let (_, summary) = per_user(&plan, &[]);
    assert!(summary["seed"].as_u64().is_some(), "{summary:#}");
}

/// `seed = 7` in the plan and `--seed 7` give the same `--dry-run` output, twice over; the
/// output says the seed.
#[test]
fn a_seeded_dry_run_is_the_same_every_time() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let in_file = plan_in(&dir, "seed = 7");
    let dry = |plan: &str, extra: &[&str]| {
        let mut args = vec!["run", plan, "--base-url", "http://127.0.0.1:9", "--dry-run", "6"];
        args.extend_from_slice(extra);
        let out = support::run(&args, Duration::from_secs(30));
        out.assert_code(0);
        out.stdout
    };
    let first = dry(&in_file, &[]);
    assert!(first.starts_with("# seed 7\n"), "{first}");
    assert_eq!(first, dry(&in_file, &[]));
    let other_dir = support::temp_dir();
    let unseeded = plan_in(&other_dir, "");
    assert_eq!(first, dry(&unseeded, &["--seed", "7"]), "--seed is the plan's seed");
    assert_ne!(first, dry(&unseeded, &["--seed", "8"]));
}
