//! `--junit FILE`: the JUnit XML a run writes, read back by a JUnit reader (the `junit-parser`
//! crate, as CI tools read it) and checked case by case against the run's own JSON summary:
//! thresholds that held and failed, named checks, an aborted run, and find-limit's steps.

use std::path::Path;
use std::time::Duration;

use junit_parser::{TestCase, TestStatus, TestSuite};
use serde_json::Value;

use crate::support::{self, Sink};

/// The one suite of a JUnit file.
fn suite(path: &Path) -> TestSuite {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut suites = junit_parser::from_reader(text.as_bytes()).unwrap_or_else(|e| panic!("{e}\n{text}"));
    assert_eq!(suites.suites.len(), 1, "{text}");
    let suite = suites.suites.remove(0);
    assert_eq!(suite.tests as usize, suite.cases.len(), "{text}");
    let failures = suite.cases.iter().filter(|c| c.status.is_failure()).count();
    assert_eq!(suite.failures as usize, failures, "{text}");
    suite
}

fn case<'a>(suite: &'a TestSuite, classname: &str, name: &str) -> &'a TestCase {
    suite.cases.iter().find(|c| c.original_name == name && c.classname.as_deref() == Some(classname)).unwrap_or_else(
        || {
            let names: Vec<_> = suite.cases.iter().map(|c| (&c.classname, &c.original_name)).collect();
            panic!("no case {classname} / {name:?} in {names:?}")
        },
    )
}

/// Every threshold verdict of `summary` is a case named after its expression; a failed one is
/// a failure whose message holds the measured value as shown and the limit.
fn assert_thresholds_match(suite: &TestSuite, summary: &Value) {
    let verdicts = summary["thresholds"].as_array().expect("thresholds");
    assert!(!verdicts.is_empty());
    for verdict in verdicts {
        let expr = verdict["expr"].as_str().expect("expr");
        let case = case(suite, "pummel.thresholds", expr);
        let shown = verdict["shown"].as_str().unwrap_or("no data");
        let out = case.system_out.as_deref().unwrap_or_default();
        assert!(out.contains(&format!("measured: {shown}")), "{expr}: {out}");
        if verdict["pass"] == true {
            assert!(case.status.is_success(), "{expr} held: {:?}", case.status);
        } else {
            let TestStatus::Failure(failure) = &case.status else { panic!("{expr} failed: {:?}", case.status) };
            assert!(failure.message.starts_with(&format!("measured {shown}, limit ")), "{}", failure.message);
            assert_eq!(failure.failure_type, "threshold");
        }
    }
}

#[test]
fn junit_has_a_case_per_threshold_with_value_and_limit() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "junit.xml");
    let out = support::run(
        &[
            "run",
            &sink.url("/"),
            "-n",
            "200",
            "-c",
            "2",
            "--threshold",
            "p99<5s",
            "--threshold",
            "error_rate>50%",
            "--junit",
            &file,
            "--json",
        ],
        Duration::from_secs(30),
    );
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    let suite = suite(&path);
    assert_eq!(suite.cases.len(), 3, "two thresholds and the run");
    assert_eq!(suite.failures, 1);
    assert!(suite.name.starts_with("pummel run GET http://127.0.0.1:"), "{}", suite.name);
    assert_thresholds_match(&suite, &summary);
    let failed = case(&suite, "pummel.thresholds", "error_rate>50%");
    assert_eq!(failed.status.failure_as_ref().message, "measured 0.00%, limit error_rate > 50.00%");
    let held = case(&suite, "pummel.thresholds", "p99<5s");
    assert!(held.system_out.as_deref().unwrap_or_default().contains("limit: p99 < 5.00s"), "{held:?}");
    assert!(case(&suite, "pummel.run", "run completed as planned").status.is_success());
    assert_eq!(suite.properties.hashmap.get("requests.ok").map(String::as_str), Some("200"));
    assert_eq!(suite.properties.hashmap.get("partial").map(String::as_str), Some("false"));
}

#[test]
fn junit_of_a_plan_has_its_checks_and_named_thresholds() {
    let _load = support::shared();
    let sink = Sink::start(&["--echo"]);
    let dir = support::temp_dir();
    let plan = support::plans::write_plan(
        &dir,
        "plan.toml",
        r#"
[[scenario]]
name = "api"
users = 2
iterations = 10
flow = [
  { request = { path = "/items/1", name = "GET /items/:id", check = [
    { status = 200 },
    { json = "$.method", equals = "POST", name = "is a POST", fail = false },
  ] } },
]

[thresholds]
global = ["error_rate<1%"]
"GET /items/:id" = ["p99<5s", "rate>1000000"]
"#,
    );
    let (path, file) = support::path_in(&dir, "junit.xml");
    let out =
        support::run(&["run", &plan, "--base-url", &sink.url(""), "--junit", &file, "--json"], Duration::from_secs(30));
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    let suite = suite(&path);
    assert_thresholds_match(&suite, &summary);
    assert!(case(&suite, "pummel.thresholds", "GET /items/:id: rate>1000000").status.is_failure());
    let checks = summary["checks"].as_array().expect("checks");
    assert_eq!(checks.len(), 2);
    for check in checks {
        let name = check["name"].as_str().expect("name");
        let case = case(&suite, "pummel.checks", name);
        let (passed, failed) = (support::count(check, "/passed"), support::count(check, "/failed"));
        let out = case.system_out.as_deref().unwrap_or_default();
        assert!(out.contains(&format!("{passed} of {} passed", passed + failed)), "{name}: {out}");
        match failed {
            0 => assert!(case.status.is_success(), "{name}: {:?}", case.status),
            _ => assert!(case.status.failure_as_ref().message.contains("limit every response passes"), "{name}"),
        }
    }
    // The echo answers a GET, so "is a POST" fails every time, and "status 200" never does.
    assert!(case(&suite, "pummel.checks", "is a POST").status.is_failure());
    assert!(case(&suite, "pummel.checks", "GET /items/:id: status 200").status.is_success());
}

#[test]
fn junit_of_an_aborted_run_is_written_and_marked() {
    let _load = support::shared();
    let sink = Sink::start(&["--error-rate", "100%"]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "junit.xml");
    let out = support::run(
        &[
            "run",
            &sink.url("/"),
            "-r",
            "200",
            "-d",
            "20s",
            "--abort-when",
            "error_rate>50%",
            "--abort-window",
            "1s",
            "--threshold",
            "error_rate<1%",
            "--junit",
            &file,
            "--json",
        ],
        Duration::from_secs(30),
    );
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    assert_eq!(summary["partial"], true);
    let suite = suite(&path);
    assert_thresholds_match(&suite, &summary);
    let run = case(&suite, "pummel.run", "run completed as planned");
    let TestStatus::Failure(failure) = &run.status else { panic!("an aborted run fails: {:?}", run.status) };
    assert_eq!(failure.failure_type, "aborted");
    assert!(failure.message.contains("error_rate>50%"), "{}", failure.message);
    assert_eq!(suite.properties.hashmap.get("partial").map(String::as_str), Some("true"));
}

#[test]
fn junit_of_find_limit_has_a_case_per_step() {
    let _load = support::exclusive();
    let sink = Sink::start(&["--capacity", "300"]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "junit.xml");
    let out = support::run(
        &[
            "find-limit",
            &sink.url("/"),
            "--steps",
            "50,1000",
            "--step",
            "2s",
            "--settle",
            "200ms",
            "--cooldown",
            "1s",
            "--no-confirm",
            "--junit",
            &file,
            "--json",
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let json = out.json();
    let steps = json["find_limit"]["steps"].as_array().expect("steps");
    let suite = suite(&path);
    for (index, step) in steps.iter().enumerate() {
        let prefix = format!("step {}: ", index + 1);
        let case = suite.cases.iter().find(|c| c.original_name.starts_with(&prefix)).expect("a case per step");
        assert_eq!(case.classname.as_deref(), Some("pummel.find_limit"));
        assert_eq!(case.status.is_success(), step["good"] == true, "{case:?}");
        if let Some(reason) = step["reason"].as_str() {
            assert!(case.status.failure_as_ref().message.starts_with(reason), "{case:?}");
        }
    }
    assert_eq!(steps[1]["good"], false, "{json}");
    // 50 req/s is far under the sink's capacity; on a machine busy enough that pummel itself
    // fell behind, the step says so (and is not good), and that is the one other honest outcome.
    let first_reason = steps[0]["reason"].as_str().unwrap_or("");
    if steps[0]["good"] == true {
        assert!(case(&suite, "pummel.find_limit", "capacity: 50 req/s").status.is_success());
    } else {
        assert!(first_reason.starts_with("generator"), "{json}");
    }
}

#[test]
fn junit_of_hold_judges_its_thresholds() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "junit.xml");
    let out = support::run(
        &[
            "hold",
            &sink.url("/"),
            "-c",
            "20",
            "-d",
            "1s",
            "--threshold",
            "errors.connect_refused==0",
            "--threshold",
            "completed>1000000",
            "--junit",
            &file,
            "--json",
        ],
        Duration::from_secs(30),
    );
    out.assert_code(1).assert_no_panic();
    let summary = out.json();
    let suite = suite(&path);
    assert!(suite.name.starts_with("pummel hold 20 x idle"), "{}", suite.name);
    assert_thresholds_match(&suite, &summary);
    assert!(case(&suite, "pummel.thresholds", "errors.connect_refused==0").status.is_success());
    assert!(case(&suite, "pummel.thresholds", "completed>1000000").status.is_failure());
}

#[test]
fn junit_of_an_interrupted_run_is_written_and_marked() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "junit.xml");
    let running = support::spawn(
        &["run", &sink.url("/"), "-r", "100", "-d", "20s", "--threshold", "p99<5s", "--junit", &file, "--quiet"],
        None,
    );
    std::thread::sleep(Duration::from_millis(1200));
    running.signal("INT");
    running.wait(Duration::from_secs(15)).assert_code(130).assert_no_panic();
    let suite = suite(&path);
    let run = case(&suite, "pummel.run", "run completed as planned");
    let TestStatus::Error(error) = &run.status else { panic!("an interrupted run is an error: {:?}", run.status) };
    assert_eq!(error.error_type, "interrupted");
    assert!(case(&suite, "pummel.thresholds", "p99<5s").status.is_success());
    assert_eq!(suite.properties.hashmap.get("interrupted").map(String::as_str), Some("true"));
}
