//! Plan files: `pummel check` accepts every example and points at each mistake of a broken plan
//! (file:line:col, exit 2); `pummel run PLAN.toml` runs the examples against `pummel sink`, each
//! stage at its rate, with command-line flags overriding the plan; what a plan's request says
//! reaches the server as written.

use std::time::Duration;

use crate::support::plans::{example, example_plans, header, recorded, write_plan};
use crate::support::{self, Sink, count, num};

/// A plan with six mistakes on known lines.
const BROKEN: &str = r#"[target]
base_url = "http://127.0.0.1:8090"
timout = "5s"

[[scenario]]
rate = 100
duration = "3x"
flow = [
  { request = { path = "/items/{{ id }}" } },
  { think = "5s..1s" },
]

[thresholds]
global = ["p99<250"]

[[scenario]]
stages = [ { users = 10, for = "1m" }, { rate = 5, for = "1m" } ]
flow = [ { request = { path = "/" } } ]
"#;

#[test]
fn every_example_passes_check() {
    let _load = support::shared();
    for plan in example_plans() {
        let shown = plan.display().to_string();
        let out = support::run(&["check", &shown], Duration::from_secs(30));
        out.assert_code(0).assert_no_panic();
        assert!(out.stdout.contains(&format!("{shown}: ok: scenario")), "stdout: {}", out.stdout);
        assert!(out.stderr.is_empty(), "stderr: {}", out.stderr);
    }
}

#[test]
fn a_broken_plan_gives_every_error_with_file_line_col_and_exit_2() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(&dir, "broken.toml", BROKEN);
    let expected = [
        format!("{plan}:3:1: error: unknown key `timout` in `target`"),
        format!("{plan}:7:12: error: duration: invalid duration \"3x\""),
        format!("{plan}:9:35: error: undefined variable `id` in the path"),
        format!("{plan}:10:13: error: invalid think time \"5s..1s\""),
        format!("{plan}:14:19: error: invalid rule \"p99<250\""),
        format!("{plan}:17:42: error: these stages set `users`: stages are all of rate or all of users"),
    ];

    let out = support::run(&["check", &plan], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    for line in &expected {
        assert!(out.stderr.contains(line.as_str()), "missing {line:?} in:\n{}", out.stderr);
    }
    assert!(
        out.stderr.contains("7 | duration = \"3x\"\n  |            ^^^^"),
        "no caret under the value:\n{}",
        out.stderr
    );
    assert!(out.stderr.contains(&format!("{plan}: 6 errors")), "{}", out.stderr);

    // `run` refuses it the same way, before sending anything.
    let out = support::run(&["run", &plan, "--json"], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    for line in &expected {
        assert!(out.stderr.contains(line.as_str()), "missing {line:?} in:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("6 errors; nothing was run"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "stdout: {}", out.stdout);
}

#[test]
fn a_missing_plan_and_plan_flags_with_a_url_are_usage_errors() {
    let _load = support::shared();
    let out = support::run(&["run", "no-such-plan.toml"], Duration::from_secs(30));
    out.assert_code(2);
    assert!(out.stderr.contains("cannot read plan no-such-plan.toml"), "{}", out.stderr);
    let out = support::run(&["check", "no-such-plan.toml"], Duration::from_secs(30));
    out.assert_code(2);
    let out = support::run(&["run", "http://127.0.0.1:9/", "-e", "a=1"], Duration::from_secs(30));
    out.assert_code(2);
    assert!(out.stderr.contains("-e/--var applies to plan files"), "{}", out.stderr);
    let out =
        support::run(&["run", "http://127.0.0.1:9/", "--base-url", "http://127.0.0.1:9"], Duration::from_secs(30));
    out.assert_code(2);
    let out = support::run(&["run", &example("closed-users.toml"), "-e", "1x=2"], Duration::from_secs(30));
    out.assert_code(2);
    assert!(out.stderr.contains("is not a variable name"), "{}", out.stderr);
}

/// `examples/api-get.toml` (50, 200, 500 req/s for 2 s each) against a sink whose URL replaces
/// the plan's with `--base-url`: each stage completes its rate within ±3 %.
#[test]
fn the_staged_example_reaches_each_stage_rate() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let base = sink.url("");
    let out = support::run(
        &["run", &example("api-get.toml"), "--base-url", &base, "-e", "unused=1", "--json"],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let stages = summary["stages"].as_array().expect("stages");
    let rates: Vec<f64> = stages.iter().map(|s| num(s, "/target_rate")).collect();
    assert_eq!(rates, [50.0, 200.0, 500.0]);
    for stage in stages {
        let rate = num(stage, "/target_rate");
        let completed = count(stage, "/completed") as f64;
        let wanted = rate * 2.0;
        assert!((completed - wanted).abs() <= wanted * 0.03, "{rate} req/s for 2 s completed {completed}: {stage}");
        let achieved = num(stage, "/achieved_rate");
        assert!((achieved - rate).abs() <= rate * 0.03, "{rate} req/s stage achieved {achieved}: {stage}");
        assert_eq!(count(stage, "/failed"), 0, "{stage}");
    }
    let thresholds = summary["thresholds"].as_array().expect("thresholds");
    assert_eq!(thresholds.len(), 3, "the plan's global thresholds: {summary}");
    assert!(thresholds.iter().all(|t| t["pass"] == true), "{summary}");
}

/// A plan of several scenarios runs on every thread asked for: `examples/api-ids.toml` (an
/// open-model scenario beside a closed one) with `-t 2` reports two generator threads, and
/// both scenarios' requests are answered.
#[test]
fn a_plan_of_several_scenarios_uses_every_thread() {
    let _load = support::shared();
    let sink = Sink::start(&["--echo"]);
    let base = sink.url("");
    let out = support::run(
        &["run", &example("api-ids.toml"), "--base-url", &base, "-t", "2", "-d", "2s", "--json"],
        Duration::from_secs(60),
    );
    out.assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/generator/threads"), 2, "{summary:#}");
    for scenario in summary["scenarios"].as_array().expect("scenarios") {
        assert!(count(scenario, "/iterations") > 0, "{scenario}");
    }
}

/// `-d 1s` replaces the closed-model example's 10 s; `--threshold` adds to its rules.
#[test]
fn command_line_flags_override_the_plan() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let base = sink.url("");
    let plan = example("closed-users.toml");
    let out =
        support::run(&["run", &plan, "--base-url", &base, "-d", "1s", "-c", "2", "--json"], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    assert!(out.elapsed < Duration::from_secs(8), "-d 1s took {:?} (the plan says 10s)", out.elapsed);
    let summary = out.json();
    let measured = num(&summary, "/duration_s");
    assert!((0.8..2.0).contains(&measured), "measured {measured} s with -d 1s");
    assert!(count(&summary, "/requests/ok") > 0, "{summary}");

    let out = support::run(
        &["run", &plan, "--base-url", &base, "-n", "50", "-c", "2", "--threshold", "p99<1us", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/completed"), 50, "-n 50 stops the run after 50 requests");
    let rules: Vec<&str> =
        summary["thresholds"].as_array().expect("thresholds").iter().filter_map(|t| t["expr"].as_str()).collect();
    assert_eq!(rules, ["error_rate<1%", "p99<500ms", "p99<1us"]);
}

/// Method, path, query, target and request headers and a JSON body reach the server as the
/// plan says; `iterations` per user bound the run.
#[test]
fn a_plans_request_reaches_the_server_as_written() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "received.jsonl");
    let sink = Sink::start(&["--record", &record]);
    let plan = write_plan(
        &dir,
        "post.toml",
        r#"
[target]
base_url = "http://127.0.0.1:9"   # replaced by --base-url
headers = { X-Team = "perf" }

[[scenario]]
users = 1
iterations = 5
flow = [
  { request = { method = "POST", path = "/items", query = { page = 2 }, headers = { X-Req = "a" }, json = { name = "x" } } },
]
"#,
    );
    let out = support::run(&["run", &plan, "--base-url", &sink.url("/"), "--json"], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    assert_eq!(count(&out.json(), "/requests/ok"), 5);
    let requests = recorded(&record_path, 5, Duration::from_secs(10));
    assert_eq!(requests.len(), 5);
    for r in &requests {
        assert_eq!(r["method"], "POST", "{r}");
        assert_eq!(r["target"], "/items?page=2", "{r}");
        assert_eq!(r["body"], r#"{"name":"x"}"#, "{r}");
        assert_eq!(header(r, "content-type"), Some("application/json"), "{r}");
        assert_eq!(header(r, "x-team"), Some("perf"), "{r}");
        assert_eq!(header(r, "x-req"), Some("a"), "{r}");
    }
}
