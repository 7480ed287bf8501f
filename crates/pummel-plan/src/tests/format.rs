//! Every key of the format is read, and what runs today becomes the right validated form.

use std::time::Duration;

use pummel_engine::plan::{Arrival, Load};

use super::{BASE, load, valid};
use crate::diag::DiagnosticKind;
use crate::spec::{LoadSpec, Location};

/// The whole format of issue 3, every key once (most of it not runnable yet).
const EVERY_KEY: &str = r#"
[target]
base_url = "http://127.0.0.1:8090"
headers = { Authorization = "Bearer x" }
timeout = "10s"
connect_timeout = "2s"
keepalive = true
ok_status = "200-399"

[[scenario]]
name = "api"
stages = [
  { rate = 10, for = "30s" },
  { rate = 2000, ramp = "1m", for = "2m" },
  { hold = "1m" },
  { users = 100, for = "1m" },
]
arrival = "poisson"
iterations = 10
flow = [
  { request = { method = "POST", path = "/items", headers = { X-A = "1" }, query = { q = "x", n = 1 }, json = { name = "x" }, name = "create", extract = { id = { json = "$.id", default = 0 }, loc = { header = "Location", regex = "/(\\d+)" } }, check = [ { name = "created", status = 201, fail = true }, { header = "Content-Type", contains = "json", regex = "json$", exists = true }, { json = "$.id", equals = 1 }, { body_contains = "id", body_regex = "\\d+", latency = "200ms" } ] } },
  { request = { url = "http://127.0.0.1:8090/form", form = { a = "1" } } },
  { request = { path = "/raw", body = "text" } },
  { think = "1s..5s" },
  { repeat = 3, flow = [ { think = "exp(20s)" } ] },
  { every = "20s", repeat = 10, flow = [ { think = "2s" } ] },
  { choose = [ { weight = 90, name = "idle", flow = [ { think = "20s" } ] }, { weight = 10, flow = [ { think = "1s" } ] } ] },
  { ws_connect = { url = "ws://127.0.0.1:8090/ws", path = "/ws", headers = { X-B = "2" }, name = "ws" } },
  { ws_send = { text = "hi", json = { id = 1 }, name = "rpc" } },
  { ws_expect = { json = "$.result", equals = "ok", regex = "ok", match_id = "$.id", timeout = "5s", name = "rpc" } },
  { ws_close = true },
]

[[scenario]]
name = "sessions"
users = 100
ramp_up = "30s"
duration = "10m"
flow = [ { request = { path = "/" } } ]

[[scenario]]
name = "steady"
rate = "120/m"
duration = "1m"
flow = [ { request = { path = "/" } } ]

[thresholds]
global = ["p99<250ms", "error_rate<1%"]
"GET /api/images" = ["p99<200ms", "error_rate<1%"]

[abort]
when = ["error_rate>50%"]
window = "5s"

[variables]
ids = 10000000
token = "t"
ratio = 0.5
debug = false

[feeders.users]
file = "users.csv"
format = "csv"
mode = "unique"
when_exhausted = "end"
"#;

#[test]
fn every_key_of_the_format_is_read() {
    let mut diagnostics = Vec::new();
    let parsed = crate::de::parse(EVERY_KEY, &mut diagnostics);
    assert!(diagnostics.is_empty(), "shape errors: {diagnostics:#?}");
    let parsed = parsed.expect("the raw form");
    assert_eq!(parsed.raw.scenario.len(), 3);
    assert_eq!(parsed.raw.scenario[0].get_ref().flow.as_ref().map(|f| f.get_ref().len()), Some(11));
    assert!(!parsed.had_shape_errors);
}

#[test]
fn what_does_not_run_yet_is_rejected_never_ignored() {
    let report = load(EVERY_KEY).expect_err("most of the format does not run yet");
    let kinds: Vec<DiagnosticKind> = report.diagnostics.iter().map(|d| d.kind).collect();
    assert!(kinds.iter().all(|k| *k == DiagnosticKind::NotSupported), "{report}");
    let text = report.to_string();
    for what in [
        "ramps between stages",
        "stages of `users`",
        "`extract`",
        "`check`",
        "flows of more than one step",
        "`think` steps",
        "`repeat` blocks",
        "`every` blocks",
        "weighted sub-flows (`choose`)",
        "WebSocket steps",
        "several [[scenario]]",
        "`ramp_up`",
        "thresholds per request name",
        "feeders",
    ] {
        assert!(text.contains(what), "no error about {what}:\n{text}");
    }
    assert!(
        text.lines().filter(|l| l.contains(": error: ")).all(|l| l.contains("not supported yet (planned: issue 3)"))
    );
}

#[test]
fn a_constant_rate_plan_reads_every_supported_key() {
    let spec = valid(
        r#"
[target]
base_url = "http://127.0.0.1:8090/"
headers = { X-Team = "perf", Accept = "text/plain" }
timeout = "2s"
connect_timeout = "500ms"
keepalive = false
ok_status = 404

[[scenario]]
name = "one"
rate = "120/m"
arrival = "poisson"
duration = "1m30s"
iterations = 50
flow = [
  { request = { method = "PUT", path = "/a/b", headers = { accept = "application/json" }, query = { q = "a b", n = 2 }, body = "raw", name = "put it" } },
]

[thresholds]
global = ["p99<250ms", "errors.timeout==0"]

[abort]
when = ["error_rate>50%", "p99>2s"]
window = "3s"

[variables]
ids = 100
name = "x"
"#,
    );
    assert_eq!(spec.target.timeout, Duration::from_secs(2));
    assert_eq!(spec.target.connect_timeout, Duration::from_millis(500));
    assert!(!spec.target.keepalive);
    assert!(spec.target.ok_status.contains(404) && !spec.target.ok_status.contains(200));
    let s = &spec.scenario;
    assert_eq!(s.name, "one");
    assert!(matches!(s.load, LoadSpec::Rate(r) if r == 2.0));
    assert_eq!(s.arrival, Arrival::Poisson);
    assert_eq!(s.duration, Some(Duration::from_secs(90)));
    assert_eq!(s.total_requests(), Some(50));
    let r = &s.request;
    assert_eq!((r.name.as_str(), r.method.as_str()), ("put it", "PUT"));
    assert_eq!(r.location, Location::Path("/a/b?q=a+b&n=2".into()));
    assert_eq!(spec.url(), "http://127.0.0.1:8090/a/b?q=a+b&n=2");
    // The request's own `accept` replaces the target's `Accept`; file order otherwise.
    assert_eq!(r.headers, vec![("X-Team".into(), "perf".into()), ("accept".into(), "application/json".into())]);
    assert_eq!(r.body, b"raw");
    let texts: Vec<&str> = spec.thresholds.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["p99<250ms", "errors.timeout==0"]);
    assert_eq!(spec.abort_when.len(), 2);
    assert_eq!(spec.abort_window, Duration::from_secs(3));
    assert_eq!(spec.variables.get("ids").map(String::as_str), Some("100"));
    assert_eq!(spec.variables.get("name").map(String::as_str), Some("x"));
}

#[test]
fn defaults_fill_what_the_file_leaves_out() {
    let spec = valid(BASE);
    assert_eq!(spec.target.timeout, crate::spec::DEFAULT_TIMEOUT);
    assert_eq!(spec.target.connect_timeout, crate::spec::DEFAULT_CONNECT_TIMEOUT);
    assert!(spec.target.keepalive);
    assert!(spec.target.ok_status.contains(302));
    assert_eq!(spec.scenario.name, "scenario 1");
    assert_eq!(spec.scenario.request.method, "GET");
    assert_eq!(spec.scenario.request.name, "GET /");
    assert_eq!(spec.scenario.arrival, Arrival::Uniform);
    assert!(spec.thresholds.is_empty() && spec.abort_when.is_empty());
    assert_eq!(spec.abort_window, crate::spec::DEFAULT_ABORT_WINDOW);
}

#[test]
fn rate_stages_are_levels_and_hold_extends_the_last() {
    let spec = valid(&BASE.replace(
        "rate = 100\nduration = \"10s\"",
        "stages = [ { rate = 50, for = \"2s\" }, { rate = \"200/s\", for = \"1s\" }, { hold = \"1s\" }, { rate = 0.5, for = \"4s\" } ]",
    ));
    let LoadSpec::Stages(stages) = &spec.scenario.load else { panic!("stages expected") };
    let shape: Vec<(f64, f64)> = stages.iter().map(|s| (s.rate, s.duration.as_secs_f64())).collect();
    assert_eq!(shape, [(50.0, 2.0), (200.0, 2.0), (0.5, 4.0)]);
    let plan = spec.to_plan(1).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    assert_eq!(plan.planned_duration(), Some(Duration::from_secs(8)));
    assert_eq!(plan.stage_count(), 3);
}

#[test]
fn users_are_the_closed_model_and_iterations_count_per_user() {
    let spec = valid(&BASE.replace("rate = 100\nduration = \"10s\"", "users = 20\niterations = 5"));
    assert!(matches!(spec.scenario.load, LoadSpec::Users(20)));
    assert_eq!(spec.scenario.total_requests(), Some(100));
    let plan = spec.to_plan(2).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    assert!(matches!(plan.load, Load::Closed(ref c) if c.connections == 20));
    assert_eq!((plan.stop.duration, plan.stop.requests), (None, Some(100)));
}

#[test]
fn a_rate_bounded_by_iterations_lasts_as_long_as_sending_takes() {
    let spec = valid(&BASE.replace("duration = \"10s\"", "iterations = 250"));
    let plan = spec.to_plan(1).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    let Load::Open(open) = &plan.load else { panic!("open model expected") };
    assert_eq!(open.stages[0].duration, Duration::from_secs(4));
    assert_eq!(plan.stop.requests, Some(250));
}

#[test]
fn json_and_form_bodies_are_encoded_once_with_their_content_type() {
    let spec = valid(&BASE.replace(
        "{ path = \"/\" }",
        "{ method = \"POST\", path = \"/j\", json = { name = \"x\", n = [1, 2.5, true] } }",
    ));
    let r = &spec.scenario.request;
    assert_eq!(String::from_utf8_lossy(&r.body), r#"{"n":[1,2.5,true],"name":"x"}"#);
    assert_eq!(r.headers, vec![("Content-Type".into(), "application/json".into())]);

    let spec = valid(&BASE.replace(
        "{ path = \"/\" }",
        "{ method = \"POST\", path = \"/f\", form = { b = \"x y\", a = 1 }, headers = { content-type = \"text/x\" } }",
    ));
    let r = &spec.scenario.request;
    assert_eq!(String::from_utf8_lossy(&r.body), "b=x+y&a=1");
    assert_eq!(r.headers, vec![("content-type".into(), "text/x".into())], "a given Content-Type is kept");
}

#[test]
fn a_full_url_needs_no_base_url() {
    let spec = valid(
        "[[scenario]]\nusers = 1\nduration = \"1s\"\nflow = [ { request = { url = \"http://127.0.0.1:9/x\", query = { a = 1 } } } ]\n",
    );
    assert_eq!(spec.url(), "http://127.0.0.1:9/x?a=1");
    assert_eq!(spec.scenario.request.name, "GET http://127.0.0.1:9/x");
}

#[test]
fn a_base_url_from_the_command_line_completes_a_plan_without_one() {
    let text = "[[scenario]]\nusers = 1\nduration = \"1s\"\nflow = [ { request = { path = \"/x\" } } ]\n";
    assert!(load(text).is_err());
    let options = crate::Options { base_url: Some("http://127.0.0.1:9".into()) };
    let mut spec = crate::parse("plan.toml", text, &options).expect("complete with --base-url");
    spec.target.base_url = options.base_url;
    assert_eq!(spec.url(), "http://127.0.0.1:9/x");
}

#[test]
fn describe_says_what_would_run() {
    let spec = valid(BASE);
    assert_eq!(spec.describe(), "scenario \"scenario 1\": GET http://127.0.0.1:8090/, 100 req/s, for 10.00s");
}

#[test]
fn variable_names_are_identifiers() {
    assert!(crate::is_variable_name("user_1") && crate::is_variable_name("_x"));
    assert!(!crate::is_variable_name("1x") && !crate::is_variable_name("a-b") && !crate::is_variable_name(""));
}
