//! Every key of the format is read, and each becomes the right validated form: load models,
//! flows of requests, think times, blocks, choices, WebSocket steps, extraction, checks,
//! feeders, per-name thresholds, HTTP/2 and signing.

use std::path::{Path, PathBuf};
use std::time::Duration;

use pummel_engine::flow::feeder::{FeederMode, WhenExhausted};
use pummel_engine::flow::{Step, Think};
use pummel_engine::inspect::check::Condition;
use pummel_engine::inspect::extract::ExtractSource;
use pummel_engine::plan::{Arrival, Load};

use super::{BASE, load, valid};
use crate::diag::DiagnosticKind;
use crate::spec::{BodySpec, LoadSpec, Location, PlanSpec, RequestStepSpec, StepSpec};

/// The whole format of issue 3, every key once (so some of them conflict).
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
fn of_the_whole_format_only_keys_that_exclude_each_other_fail() {
    // Every key of the format is read and runs; the errors of EVERY_KEY are the keys it puts
    // together that exclude each other (a stage of users among stages of rate, several
    // conditions in one check, url with path, json with text) and its feeder file, which does
    // not exist.
    let report = load(EVERY_KEY).expect_err("some keys of EVERY_KEY exclude each other");
    assert!(report.diagnostics.iter().all(|d| d.kind != DiagnosticKind::NotSupported), "{report}");
    assert_eq!(
        report.short_lines(),
        [
            "plan.toml:16:5: error: these stages set `rate`: stages are all of rate or all of users",
            "plan.toml:21:350: error: `regex` cannot be used with `contains` in one check",
            "plan.toml:21:367: error: `exists` cannot be used with `contains` in one check",
            "plan.toml:21:439: error: `body_regex` cannot be used with `body_contains` in one check",
            "plan.toml:21:460: error: `latency` cannot be used with `body_contains` in one check",
            "plan.toml:28:20: error: `url` cannot be used with `path`",
            "plan.toml:29:30: error: `json` cannot be used with `text`",
            "plan.toml:62:8: error: feeder \"users\": cannot open users.csv: No such file or directory (os error 2)",
        ]
    );
}

/// The folder of the feeder files these tests use.
fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("src/tests/fixtures")
}

/// Validates `text` with feeder paths relative to [`fixtures`].
fn valid_with_fixtures(text: &str) -> PlanSpec {
    let options = crate::Options { plan_dir: Some(fixtures()), ..Default::default() };
    crate::parse("plan.toml", text, &options).unwrap_or_else(|report| panic!("expected a valid plan, got:\n{report}"))
}

/// The first request step of the plan.
fn first_request(spec: &PlanSpec) -> &RequestStepSpec {
    spec.requests().next().expect("a request step")
}

/// Header names and template texts, in order.
fn header_texts(request: &RequestStepSpec) -> Vec<(String, String)> {
    request.headers.iter().map(|(n, v)| (n.clone(), v.text().to_string())).collect()
}

/// A plan of every step kind that runs, valid as a whole.
const FLOWS: &str = r#"
[target]
base_url = "http://127.0.0.1:8090"
headers = { Authorization = "Bearer {{ token }}" }

[variables]
token = "t"

[feeders.rows]
file = "users.csv"
mode = "unique"
when_exhausted = "end"

[[scenario]]
name = "api"
users = 4
ramp_up = "2s"
duration = "10s"
flow = [
  { request = { method = "POST", path = "/items", json = { name = "{{ rows.name }}-{{ user }}" }, name = "create", extract = { id = { json = "$.id" }, loc = { header = "Location", regex = "/(\\d+)", default = "0" }, word = { regex = "[a-z]+" }, rid = { header = "X-Request-Id" } }, check = [ { status = "200-299" }, { json = "$.id", exists = true, name = "has id" }, { header = "Content-Type", contains = "json", fail = false } ] } },
  { request = { path = "/items/{{ id }}", query = { v = "{{ iteration }}", fixed = "a b" }, name = "read", check = [ { body_contains = "/items/" }, { body_regex = "\\d+" }, { latency = "200ms", fail = false }, { json = "$.method", equals = "GET" } ] } },
  { think = "10ms..30ms" },
  { think = "2s" },
  { think = "exp(20s)" },
  { repeat = 3, flow = [ { request = { path = "/poll", name = "poll" } } ] },
  { every = "500ms", repeat = 2, flow = [ { think = "1ms" } ] },
  { every = "20s", flow = [ { request = { path = "/tick" } } ] },
  { choose = [ { weight = 9, name = "idle", flow = [ { think = "5ms" } ] }, { weight = 1, flow = [ { request = { path = "/select", random_body = "1KiB", method = "PUT" } } ] } ] },
]

[[scenario]]
name = "ws"
rate = 5
iterations = 20
flow = [
  { ws_connect = { path = "/ws", headers = { X-B = "{{ user }}" }, name = "ws open" } },
  { ws_send = { json = { id = "{{ iteration }}", method = "ping" }, name = "rpc" } },
  { ws_expect = { match_id = "$.id", timeout = "2s", json = "$.method", equals = "ping", regex = "ping", name = "rpc" } },
  { ws_send = { text = "hello {{ user }}" } },
  { ws_expect = { regex = "hello" } },
  { ws_close = { code = 4000, reason = "bye" } },
]

[thresholds]
global = ["error_rate<1%"]
"read" = ["p99<500ms"]
"rpc" = ["p99<1s", "error_rate<5%"]
"#;

#[test]
fn a_flow_plan_reads_every_step_kind() {
    let spec = valid_with_fixtures(FLOWS);
    assert_eq!(spec.scenarios.len(), 2);
    let api = &spec.scenarios[0];
    assert_eq!(api.name, "api");
    assert!(matches!(api.load, LoadSpec::Users(4)));
    assert_eq!(api.ramp_up, Duration::from_secs(2));
    assert_eq!(api.duration, Some(Duration::from_secs(10)));
    assert_eq!(api.flow.len(), 9);

    let StepSpec::Request(create) = &api.flow[0] else { panic!("a request: {:?}", api.flow[0]) };
    assert_eq!((create.name.as_str(), create.method.as_str()), ("create", "POST"));
    assert_eq!(create.location, Location::Path("/items".into()));
    // Each JSON string is a template of its own, escaped once rendered.
    let BodySpec::Json(body) = &create.body else { panic!("a templated json body: {:?}", create.body) };
    let texts: Vec<&str> = body.templates().iter().map(|t| t.text()).collect();
    assert_eq!(texts, ["{{ rows.name }}-{{ user }}"]);
    assert_eq!(
        header_texts(create),
        [("Authorization".into(), "Bearer {{ token }}".into()), ("Content-Type".into(), "application/json".into())]
    );
    let mut extracts: Vec<(String, String)> = create
        .extract
        .iter()
        .map(|e| {
            let source = match &e.source {
                ExtractSource::Json(path) => format!("json {}", path.text()),
                ExtractSource::Header(name) => format!("header {name}"),
                ExtractSource::HeaderRegex(name, regex) => format!("header {name} ~ {}", regex.as_str()),
                ExtractSource::BodyRegex(regex) => format!("body ~ {}", regex.as_str()),
            };
            (e.variable.clone(), format!("{source} default {:?}", e.default))
        })
        .collect();
    extracts.sort();
    assert_eq!(
        extracts,
        [
            ("id".to_string(), "json $.id default None".to_string()),
            ("loc".to_string(), "header Location ~ /(\\d+) default Some(\"0\")".to_string()),
            ("rid".to_string(), "header X-Request-Id default None".to_string()),
            ("word".to_string(), "body ~ [a-z]+ default None".to_string()),
        ]
    );
    let checks: Vec<(&str, bool)> = create.checks.iter().map(|c| (c.name.as_str(), c.fail_request)).collect();
    assert_eq!(checks.len(), 3);
    assert_eq!(checks[1], ("has id", true));
    assert!(!checks[2].1, "fail = false only counts");
    assert!(matches!(&create.checks[0].condition, Condition::Status(set) if set.contains(201) && !set.contains(300)));
    assert!(
        matches!(&create.checks[2].condition, Condition::HeaderContains { name, text } if name == "Content-Type" && text == "json")
    );

    let StepSpec::Request(read) = &api.flow[1] else { panic!("a request") };
    // A templated query value keeps every pair apart, to be encoded once rendered.
    assert_eq!(read.location, Location::Path("/items/{{ id }}".into()));
    let query: Vec<(&str, &str)> = read.query.iter().map(|(k, v)| (k.as_str(), v.text())).collect();
    assert_eq!(query, [("v", "{{ iteration }}"), ("fixed", "a b")]);
    assert!(matches!(read.body, BodySpec::Fixed(ref b) if b.is_empty()));
    let conditions: Vec<&str> = read
        .checks
        .iter()
        .map(|c| match &c.condition {
            Condition::BodyContains(_) => "body_contains",
            Condition::BodyRegex(_) => "body_regex",
            Condition::LatencyBelow(d) if *d == Duration::from_millis(200) => "latency",
            Condition::JsonEquals { value, .. } if value == "GET" => "json_equals",
            other => panic!("unexpected {other:?}"),
        })
        .collect();
    assert_eq!(conditions, ["body_contains", "body_regex", "latency", "json_equals"]);

    assert!(
        matches!(api.flow[2], StepSpec::Think(Think::Uniform(lo, hi)) if lo == Duration::from_millis(10) && hi == Duration::from_millis(30))
    );
    assert!(matches!(api.flow[3], StepSpec::Think(Think::Fixed(d)) if d == Duration::from_secs(2)));
    assert!(matches!(api.flow[4], StepSpec::Think(Think::Exponential(d)) if d == Duration::from_secs(20)));
    assert!(matches!(&api.flow[5], StepSpec::Block { repeat: Some(3), every: None, flow } if flow.len() == 1));
    assert!(
        matches!(&api.flow[6], StepSpec::Block { repeat: Some(2), every: Some(d), .. } if *d == Duration::from_millis(500))
    );
    assert!(
        matches!(&api.flow[7], StepSpec::Block { repeat: None, every: Some(d), .. } if *d == Duration::from_secs(20))
    );
    let StepSpec::Choose(branches) = &api.flow[8] else { panic!("choose") };
    let shape: Vec<(f64, &str, usize)> = branches.iter().map(|b| (b.weight, b.name.as_str(), b.flow.len())).collect();
    assert_eq!(shape, [(9.0, "idle", 1), (1.0, "branch 2", 1)]);
    let StepSpec::Request(select) = &branches[1].flow[0] else { panic!("a request") };
    assert!(matches!(select.body, BodySpec::Random(1024)));
    assert_eq!(select.name, "PUT /select");

    let ws = &spec.scenarios[1];
    assert!(matches!(ws.load, LoadSpec::Rate(r) if r == 5.0));
    assert_eq!(ws.iterations, Some(20));
    let StepSpec::WsConnect { name, url, headers } = &ws.flow[0] else { panic!("ws_connect") };
    assert_eq!((name.as_str(), url.text()), ("ws open", "ws://127.0.0.1:8090/ws"));
    assert_eq!(headers.len(), 1);
    let StepSpec::WsSend { name, text } = &ws.flow[1] else { panic!("ws_send") };
    assert_eq!((name.as_str(), text.text()), ("rpc", r#"{"id":"{{ iteration }}","method":"ping"}"#));
    let StepSpec::WsExpect { name, matcher, timeout, .. } = &ws.flow[2] else { panic!("ws_expect") };
    assert_eq!((name.as_str(), *timeout), ("rpc", Duration::from_secs(2)));
    assert!(matcher.match_id.is_some() && matcher.regex.is_some());
    assert!(matches!(&matcher.json, Some((path, Some(v))) if path.text() == "$.method" && v == "ping"));
    let StepSpec::WsSend { name, .. } = &ws.flow[3] else { panic!("ws_send") };
    assert_eq!(name, "ws send hello {{ user }}");
    let StepSpec::WsExpect { name, timeout, .. } = &ws.flow[4] else { panic!("ws_expect") };
    assert_eq!((name.as_str(), *timeout), ("ws expect", crate::spec::DEFAULT_WS_EXPECT_TIMEOUT));
    assert!(matches!(&ws.flow[5], StepSpec::WsClose(c) if c.code == 4000 && c.reason == "bye"));

    assert_eq!(spec.feeders.len(), 1);
    let feeder = &spec.feeders[0];
    assert_eq!(feeder.name, "rows");
    assert_eq!(feeder.path, fixtures().join("users.csv"));
    assert_eq!((feeder.mode, feeder.when_exhausted), (FeederMode::Unique, WhenExhausted::End));
    assert_eq!(feeder.columns, ["id", "name"]);

    let named: Vec<(&str, usize)> = spec.named_thresholds.iter().map(|(n, e)| (n.as_str(), e.len())).collect();
    assert_eq!(named, [("read", 1), ("rpc", 2)]);
    assert_eq!(spec.thresholds.len(), 1);
}

#[test]
fn a_flow_plan_builds_the_engines_scenarios_with_names_checks_and_branches() {
    let spec = valid_with_fixtures(FLOWS);
    let plan = spec.to_plan(2).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    let scenarios = &*plan.scenarios;
    let names: Vec<(&str, usize, &str)> =
        scenarios.names.iter().map(|n| (n.name.as_str(), n.scenario, n.kind)).collect();
    assert_eq!(
        names,
        [
            ("create", 0, "http"),
            ("read", 0, "http"),
            ("poll", 0, "http"),
            ("GET /tick", 0, "http"),
            ("PUT /select", 0, "http"),
            ("ws open", 1, "ws"),
            ("rpc", 1, "ws"),
            ("ws send hello {{ user }}", 1, "ws"),
            ("ws expect", 1, "ws"),
        ]
    );
    assert_eq!(scenarios.checks.len(), 7);
    assert_eq!(scenarios.checks[1], "has id");
    assert_eq!(scenarios.branches, ["idle", "branch 2"]);
    assert_eq!(scenarios.feeders.len(), 1);
    let api = &scenarios.list[0];
    assert!(matches!(api.load, Load::Closed(ref c) if c.connections == 4));
    assert_eq!(api.ramp_up, Duration::from_secs(2));
    // The first request is templated (rendered per request), the poll is encoded once.
    let Step::Request(create) = &api.flow.steps[0] else { panic!("a request") };
    assert!(create.fixed.is_none());
    let Step::Block(block) = &api.flow.steps[5] else { panic!("a block") };
    let Step::Request(poll) = &block.flow.steps[0] else { panic!("a request") };
    assert!(poll.fixed.is_none(), "its Authorization header is a template");
    assert_eq!(plan.planned_duration(), Some(Duration::from_secs(10)));
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
    assert_eq!(spec.target.http2_streams, None);
    assert!(spec.target.sigv4.is_none());
    let s = &spec.scenarios[0];
    assert_eq!(s.name, "one");
    assert!(matches!(s.load, LoadSpec::Rate(r) if r == 2.0));
    assert_eq!(s.arrival, Arrival::Poisson);
    assert_eq!(s.duration, Some(Duration::from_secs(90)));
    assert_eq!(s.iterations, Some(50));
    let r = first_request(&spec);
    assert_eq!((r.name.as_str(), r.method.as_str()), ("put it", "PUT"));
    assert_eq!(r.location, Location::Path("/a/b?q=a+b&n=2".into()));
    assert_eq!(spec.url(), "http://127.0.0.1:8090/a/b?q=a+b&n=2");
    // The request's own `accept` replaces the target's `Accept`; file order otherwise.
    assert_eq!(header_texts(r), [("X-Team".into(), "perf".into()), ("accept".into(), "application/json".into())]);
    assert!(matches!(&r.body, BodySpec::Fixed(b) if b == b"raw"));
    let texts: Vec<&str> = spec.thresholds.iter().map(|e| e.text.as_str()).collect();
    assert_eq!(texts, ["p99<250ms", "errors.timeout==0"]);
    assert!(spec.named_thresholds.is_empty());
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
    assert_eq!(spec.scenarios[0].name, "scenario 1");
    assert_eq!(first_request(&spec).method, "GET");
    assert_eq!(first_request(&spec).name, "GET /");
    assert_eq!(spec.scenarios[0].arrival, Arrival::Uniform);
    assert_eq!(spec.scenarios[0].ramp_up, Duration::ZERO);
    assert!(spec.thresholds.is_empty() && spec.abort_when.is_empty() && spec.feeders.is_empty());
    assert_eq!(spec.abort_window, crate::spec::DEFAULT_ABORT_WINDOW);
}

#[test]
fn rate_stages_are_levels_and_hold_extends_the_last() {
    let spec = valid(&BASE.replace(
        "rate = 100\nduration = \"10s\"",
        "stages = [ { rate = 50, for = \"2s\" }, { rate = \"200/s\", for = \"1s\" }, { hold = \"1s\" }, { rate = 0.5, for = \"4s\" } ]",
    ));
    let LoadSpec::Stages(stages) = &spec.scenarios[0].load else { panic!("stages expected") };
    let shape: Vec<(f64, f64, Option<f64>)> =
        stages.iter().map(|s| (s.rate, s.duration.as_secs_f64(), s.ramp_from)).collect();
    assert_eq!(shape, [(50.0, 2.0, None), (200.0, 2.0, None), (0.5, 4.0, None)]);
    let plan = spec.to_plan(1).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    assert_eq!(plan.planned_duration(), Some(Duration::from_secs(8)));
    assert_eq!(plan.stage_count(), 3);
}

#[test]
fn ramps_rise_linearly_from_the_level_before_them() {
    let spec = valid(&BASE.replace(
        "rate = 100\nduration = \"10s\"",
        "stages = [ { rate = 400, ramp = \"4s\" }, { hold = \"1s\" }, { rate = 100, ramp = \"2s\", for = \"3s\" } ]",
    ));
    let LoadSpec::Stages(stages) = &spec.scenarios[0].load else { panic!("stages expected") };
    let shape: Vec<(f64, f64, Option<f64>)> =
        stages.iter().map(|s| (s.rate, s.duration.as_secs_f64(), s.ramp_from)).collect();
    // A ramp from 0 to 400, a hold at its end, a ramp down to 100, then 3 s at 100.
    assert_eq!(shape, [(400.0, 4.0, Some(0.0)), (400.0, 1.0, None), (100.0, 2.0, Some(400.0)), (100.0, 3.0, None)]);
    let plan = spec.to_plan(1).expect("loopback plan");
    assert_eq!(plan.planned_duration(), Some(Duration::from_secs(10)));
    assert_eq!(
        spec.describe(),
        "scenario \"scenario 1\": GET http://127.0.0.1:8090/, rate ramp to 400 → 400 → ramp to 100 → 100 /s over 10.00s"
    );
}

#[test]
fn users_are_the_closed_model_and_iterations_count_per_user() {
    let spec = valid(&BASE.replace("rate = 100\nduration = \"10s\"", "users = 20\niterations = 5\nramp_up = \"1s\""));
    assert!(matches!(spec.scenarios[0].load, LoadSpec::Users(20)));
    assert_eq!(spec.scenarios[0].iterations, Some(5));
    let plan = spec.to_plan(2).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    let scenario = &plan.scenarios.list[0];
    assert!(matches!(scenario.load, Load::Closed(ref c) if c.connections == 20));
    assert_eq!((scenario.iterations, scenario.duration), (Some(5), None));
    assert_eq!(scenario.ramp_up, Duration::from_secs(1));
    assert_eq!(plan.planned_duration(), None, "only iterations bound it");
}

#[test]
fn a_rate_bounded_by_iterations_lasts_as_long_as_sending_takes() {
    let spec = valid(&BASE.replace("duration = \"10s\"", "iterations = 250"));
    let plan = spec.to_plan(1).expect("loopback plan");
    plan.validate().expect("valid engine plan");
    let scenario = &plan.scenarios.list[0];
    let Load::Open(open) = &scenario.load else { panic!("open model expected") };
    assert_eq!(open.stages[0].duration, Duration::from_secs(4));
    assert_eq!(scenario.iterations, Some(250));
}

#[test]
fn json_and_form_bodies_are_encoded_once_with_their_content_type() {
    let spec = valid(&BASE.replace(
        "{ path = \"/\" }",
        "{ method = \"POST\", path = \"/j\", json = { name = \"x\", n = [1, 2.5, true] } }",
    ));
    let r = first_request(&spec);
    assert!(matches!(&r.body, BodySpec::Fixed(b) if b == br#"{"n":[1,2.5,true],"name":"x"}"#), "{:?}", r.body);
    assert_eq!(header_texts(r), [("Content-Type".into(), "application/json".into())]);

    let spec = valid(&BASE.replace(
        "{ path = \"/\" }",
        "{ method = \"POST\", path = \"/f\", form = { b = \"x y\", a = 1 }, headers = { content-type = \"text/x\" } }",
    ));
    let r = first_request(&spec);
    assert!(matches!(&r.body, BodySpec::Fixed(b) if b == b"b=x+y&a=1"), "{:?}", r.body);
    assert_eq!(header_texts(r), [("content-type".into(), "text/x".into())], "a given Content-Type is kept");
}

#[test]
fn random_bodies_take_their_size_from_the_plan_or_object_size() {
    let text = BASE.replace("{ path = \"/\" }", "{ method = \"PUT\", path = \"/o\", random_body = \"1MiB\" }");
    let spec = valid(&text);
    let r = first_request(&spec);
    assert!(matches!(r.body, BodySpec::Random(n) if n == 1 << 20), "{:?}", r.body);
    assert_eq!(header_texts(r), [("Content-Type".into(), "application/octet-stream".into())]);
    let options = crate::Options { object_size: Some("4KiB".into()), ..Default::default() };
    let spec = crate::parse("plan.toml", &text, &options).expect("valid");
    assert!(matches!(first_request(&spec).body, BodySpec::Random(4096)));
}

#[test]
fn http2_and_signing_are_read_from_the_target() {
    let spec = valid(&BASE.replace(
        "[target]\n",
        "[target]\nhttp_version = \"2\"\nstreams = 16\nauth = { aws_sigv4 = { region = \"eu-west-1\", service = \"s3\" } }\n",
    ));
    assert_eq!(spec.target.http2_streams, Some(16));
    let sigv4 = spec.target.sigv4.as_ref().expect("signing");
    assert_eq!((sigv4.region.as_str(), sigv4.service.as_str()), ("eu-west-1", "s3"));
    assert_eq!(
        (sigv4.access_key_env.as_str(), sigv4.secret_key_env.as_str()),
        ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY")
    );

    let spec = valid(&BASE.replace("[target]\n", "[target]\nhttp_version = \"2\"\n"));
    assert_eq!(spec.target.http2_streams, Some(1), "one stream unless told");
    assert_eq!(spec.scenarios[0].http2_streams, Some(1), "scenarios speak what the target says");
    let spec = valid(&BASE.replace("[target]\n", "[target]\nhttp_version = \"1.1\"\n"));
    assert_eq!(spec.target.http2_streams, None);
}

#[test]
fn flows_run_over_http2_per_scenario() {
    // The target speaks HTTP/2 with 16 streams; a scenario may change the count or go back to
    // HTTP/1.1, and a flow of several requests with extraction and checks is fine.
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"
http_version = "2"
streams = 16

[[scenario]]
name = "inherits"
users = 10
iterations = 1
flow = [
  { request = { method = "POST", path = "/items", json = { a = 1 }, extract = { id = { json = "$.id" } } } },
  { request = { path = "/items/{{ id }}", check = [ { status = 200 } ] } },
]

[[scenario]]
name = "more streams"
users = 10
iterations = 1
streams = 100
flow = [ { request = { path = "/" } } ]

[[scenario]]
name = "http1"
users = 10
iterations = 1
http_version = "1.1"
flow = [ { request = { path = "/" } } ]
"#;
    let spec = valid(text);
    let streams: Vec<Option<usize>> = spec.scenarios.iter().map(|s| s.http2_streams).collect();
    assert_eq!(streams, [Some(16), Some(100), None]);
    let plan = spec.to_plan(1).expect("flows over HTTP/2 run");
    let scenarios = plan.scenarios;
    let engine: Vec<Option<usize>> = scenarios.list.iter().map(|s| s.http2.as_ref().map(|h| h.streams)).collect();
    assert_eq!(engine, [Some(16), Some(100), None]);
    plan_validates(&spec);

    // A scenario may speak HTTP/2 when the target does not.
    let one = BASE.replace("duration = \"10s\"\n", "duration = \"10s\"\nhttp_version = \"2\"\nstreams = 8\n");
    let spec = valid(&one);
    assert_eq!((spec.target.http2_streams, spec.scenarios[0].http2_streams), (None, Some(8)));
}

fn plan_validates(spec: &PlanSpec) {
    let plan = spec.to_plan(2).expect("plan");
    plan.validate().expect("the engine accepts the plan");
}

#[test]
fn command_line_variables_replace_the_files_and_count_as_defined() {
    let text = BASE.replace("path = \"/\"", "path = \"/{{ who }}/{{ level }}\"") + "\n[variables]\nlevel = 1\n";
    assert!(load(&text).is_err(), "`who` is undefined without -e");
    let mut options = crate::Options::default();
    options.vars.insert("who".into(), "me".into());
    options.vars.insert("level".into(), "9".into());
    let spec = crate::parse("plan.toml", &text, &options).expect("valid with -e who=me");
    assert_eq!(spec.variables.get("level").map(String::as_str), Some("9"));
    assert_eq!(spec.variables.get("who").map(String::as_str), Some("me"));
    let shown = spec.dry_run(1).expect("renders");
    assert!(shown.contains("GET http://127.0.0.1:8090/me/9\n"), "{shown}");
}

#[test]
fn dry_run_renders_the_first_requests_of_each_scenario() {
    let spec = valid_with_fixtures(FLOWS);
    let shown = spec.dry_run(3).expect("renders");
    let requests: Vec<&str> = shown.lines().filter(|l| l.starts_with("POST ") || l.starts_with("GET ")).collect();
    assert_eq!(
        requests,
        [
            "POST http://127.0.0.1:8090/items",
            "GET http://127.0.0.1:8090/items/<id>?v=0&fixed=a+b",
            "GET http://127.0.0.1:8090/poll",
        ],
        "{shown}"
    );
    assert!(shown.contains("# scenario \"api\"\n"), "{shown}");
    // A WebSocket scenario shows the messages its user 0 sends, rendered, in flow order.
    let ws = shown.split("# scenario \"ws\"\n").nth(1).expect("the ws scenario");
    assert!(
        ws.starts_with(
            "WS SEND ws://127.0.0.1:8090/ws\n{\"id\":\"0\",\"method\":\"ping\"}\n\nWS SEND ws://127.0.0.1:8090/ws\nhello 0\n\n"
        ),
        "{shown}"
    );
    // The feeder's first row and the command-line-free variables are rendered in.
    assert!(shown.contains(r#"{"name":"ann-0"}"#), "{shown}");
    assert!(shown.contains("Authorization: Bearer t\n"), "{shown}");
}

#[test]
fn a_full_url_needs_no_base_url() {
    let spec = valid(
        "[[scenario]]\nusers = 1\nduration = \"1s\"\nflow = [ { request = { url = \"http://127.0.0.1:9/x\", query = { a = 1 } } } ]\n",
    );
    assert_eq!(spec.url(), "http://127.0.0.1:9/x?a=1");
    assert_eq!(first_request(&spec).name, "GET http://127.0.0.1:9/x");
}

#[test]
fn a_base_url_from_the_command_line_completes_a_plan_without_one() {
    let text = "[[scenario]]\nusers = 1\nduration = \"1s\"\nflow = [ { request = { path = \"/x\" } }, { ws_connect = { path = \"/ws\" } } ]\n";
    assert!(load(text).is_err());
    let options = crate::Options { base_url: Some("http://127.0.0.1:9".into()), ..Default::default() };
    let mut spec = crate::parse("plan.toml", text, &options).expect("complete with --base-url");
    spec.target.base_url = options.base_url;
    assert_eq!(spec.url(), "http://127.0.0.1:9/x");
    assert!(
        matches!(&spec.scenarios[0].flow[1], StepSpec::WsConnect { url, .. } if url.text() == "ws://127.0.0.1:9/ws")
    );
}

#[test]
fn describe_says_what_would_run() {
    let spec = valid(BASE);
    assert_eq!(spec.describe(), "scenario \"scenario 1\": GET http://127.0.0.1:8090/, 100 iterations/s, for 10.00s");
    let spec = valid_with_fixtures(FLOWS);
    assert_eq!(
        spec.describe(),
        "scenario \"api\": 14 steps (5 requests), 4 users, for 10.00s\nscenario \"ws\": 6 steps (0 requests), 5 iterations/s, 20 iterations"
    );
}

#[test]
fn variable_names_are_identifiers() {
    assert!(crate::is_variable_name("user_1") && crate::is_variable_name("_x"));
    assert!(!crate::is_variable_name("1x") && !crate::is_variable_name("a-b") && !crate::is_variable_name(""));
}

#[test]
fn each_scenario_takes_rows_only_from_the_feeders_it_reads() {
    let spec = valid_with_fixtures(
        r#"[target]
base_url = "http://127.0.0.1:8090"

[feeders.rows]
file = "users.csv"

[[scenario]]
name = "reads"
users = 1
iterations = 3
flow = [ { request = { path = "/u/{{ rows.name }}" } } ]

[[scenario]]
name = "ignores"
users = 1
iterations = 3
flow = [ { request = { path = "/other" } } ]
"#,
    );
    let plan = spec.to_plan(1).expect("a plan");
    let scenarios = &*plan.scenarios;
    assert_eq!(scenarios.list[0].feeders, [0]);
    assert!(scenarios.list[1].feeders.is_empty());
}

#[test]
fn a_length_from_the_command_line_completes_a_scenario_without_one() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
users = 2
flow = [ { every = "1s", flow = [ { request = { path = "/" } } ] } ]
"#;
    assert!(load(text).is_err(), "without -d the scenario has no length");
    let options = crate::Options { length_given: true, ..Default::default() };
    crate::parse("plan.toml", text, &options).expect("-d gives every scenario a length");
}

#[test]
fn ramps_may_fall_to_zero_but_levels_may_not_be_zero() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
stages = [ { users = 10, for = "1s" }, { users = 0, ramp = "1s" } ]
flow = [ { request = { path = "/" } } ]

[[scenario]]
name = "open"
stages = [ { rate = 10, for = "1s" }, { rate = 0, ramp = "1s" } ]
flow = [ { request = { path = "/" } } ]
"#;
    let spec = valid(text);
    assert!(matches!(&spec.scenarios[1].load, LoadSpec::Stages(s) if s[1].rate == 0.0 && s[1].ramp_from == Some(10.0)));
    assert!(load(&text.replace("{ users = 10, for", "{ users = 0, for")).is_err());
}

/// `start` and `after` put scenarios on the run's clock: a later open scenario offers nothing
/// before its start (the stage table and the rate per second say so), one after a scenario of
/// fixed length starts at its end, and one after a scenario bounded by iterations has no
/// planned place (it starts when that one is done).
#[test]
fn start_and_after_place_scenarios_on_the_runs_clock() {
    let spec = valid(
        r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
name = "first"
rate = 10
duration = "3s"
flow = [ { request = { path = "/a" } } ]

[[scenario]]
name = "then"
after = "first"
start = "1s"
rate = 20
duration = "2s"
flow = [ { request = { path = "/b" } } ]

[[scenario]]
name = "counted"
users = 1
iterations = 5
flow = [ { request = { path = "/c" } } ]

[[scenario]]
name = "after counted"
after = "counted"
rate = 5
duration = "2s"
flow = [ { request = { path = "/d" } } ]
"#,
    );
    let plan = spec.to_plan(1).expect("the plan builds");
    let secs = |d: Option<Duration>| d.map(|d| d.as_secs_f64());
    assert_eq!(secs(plan.scenario_offset(0)), Some(0.0));
    assert_eq!(secs(plan.scenario_offset(1)), Some(4.0), "first's 3 s, then its own 1 s");
    assert_eq!(secs(plan.scenario_end(1)), Some(6.0));
    assert_eq!(secs(plan.scenario_offset(3)), None, "counted ends when its iterations are done");
    assert_eq!(plan.planned_duration(), None, "so the run's length is not known before it runs");
    // On the run's clock: 10/s for 3 s, nothing for 1 s, 20/s for 2 s; "after counted" is left out.
    let stages: Vec<(f64, f64)> = plan.rate_stages().iter().map(|s| (s.rate, s.duration.as_secs_f64())).collect();
    assert_eq!(stages, vec![(10.0, 3.0), (0.0, 1.0), (20.0, 2.0)]);
    assert_eq!(plan.target_rate_at(Duration::from_millis(3500)), None);
    assert_eq!(plan.target_rate_at(Duration::from_millis(4500)), Some(20.0));
}
