//! Each kind of mistake is reported at its file:line:col, with the source line, a caret and the
//! expected form; a file with several mistakes gets all of them at once. The rendered messages
//! are snapshots (`src/tests/snapshots/`), reviewed with `cargo insta review`.

use super::{BASE, load, rendered, short};
use crate::diag::DiagnosticKind;

#[test]
fn syntax_errors() {
    let text = "[target]\nbase_url = \"http://127.0.0.1:8090\nheaders = { A = 1 \n";
    let lines = short(text);
    assert!(lines[0].starts_with("plan.toml:2:"), "{lines:?}");
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn unknown_keys_are_errors_everywhere_and_each_is_reported() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"
timout = "5s"
header = { A = "1" }

[[scenario]]
rates = 100
rate = 100
duration = "10s"
flow = [ { request = { methd = "GET", path = "/" } } ]

[threshold]
global = ["p99<1s"]
"#;
    assert_eq!(
        short(text),
        [
            "plan.toml:3:1: error: unknown key `timout` in `target`",
            "plan.toml:4:1: error: unknown key `header` in `target`",
            "plan.toml:7:1: error: unknown key `rates` in `scenario[0]`",
            "plan.toml:10:24: error: unknown key `methd` in `scenario[0].flow[0].request`",
            "plan.toml:12:2: error: unknown key `threshold` at the top level",
        ]
    );
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn wrong_types() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"
keepalive = "yes"
headers = { X-Id = 5 }

[scenario]
users = "20"
duration = 30
"#;
    insta::assert_snapshot!(rendered(text));
    let text = BASE.replace("rate = 100\nduration = \"10s\"", "users = \"20\"\nduration = 30");
    assert_eq!(
        short(&text),
        [
            "plan.toml:5:9: error: wrong type for `scenario[0].users`: found string \"20\"",
            "plan.toml:6:12: error: wrong type for `scenario[0].duration`: found integer `30`",
        ]
    );
    assert!(rendered(&text).contains("= expected a duration like \"30s\""));
}

#[test]
fn bad_values() {
    let text = r#"[target]
base_url = "ftp://127.0.0.1"
timeout = "3x"
connect_timeout = "0s"
ok_status = "200-99"
headers = { "Bad Name" = "v" }

[[scenario]]
users = 0
arrival = "poison"
iterations = -1
flow = [ { request = { method = "GE T", path = "api" } } ]
"#;
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn bad_rates_urls_and_paths() {
    let text = r#"[target]
base_url = "not a url"

[[scenario]]
stages = [ { rate = -5, for = "1s" }, { rate = "fast", for = "1s" }, { rate = "10/h", for = "1s" } ]
flow = [ { request = { path = "/a b" } } ]
"#;
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn bad_rules_point_into_the_string() {
    let text = BASE.to_string()
        + "\n[thresholds]\nglobal = [\"p99<250\", \"error_rate < 5\", \"p99.x<1s\"]\n\n[abort]\nwhen = [\"nope>1\"]\n";
    let positions: Vec<String> =
        short(&text).iter().map(|l| l.split(": error: ").next().unwrap_or("").to_string()).collect();
    assert_eq!(positions, ["plan.toml:10:19", "plan.toml:10:36", "plan.toml:10:42", "plan.toml:13:10"]);
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn a_rule_with_escapes_is_pointed_at_from_its_start() {
    let text = BASE.to_string() + "\n[thresholds]\nglobal = [\"p99\\u003C250\"]\n";
    assert_eq!(short(&text), ["plan.toml:10:11: error: invalid rule \"p99<250\": p99 needs a unit, e.g. 250ms"]);
}

#[test]
fn unknown_error_kinds_in_rules() {
    let text = BASE.to_string() + "\n[thresholds]\nglobal = [\"errors.bogus==0\"]\n";
    let lines = short(&text);
    assert_eq!(lines, ["plan.toml:10:19: error: unknown error kind \"bogus\" in \"errors.bogus==0\""]);
    assert!(rendered(&text).contains("known kinds: connect_refused"));
}

#[test]
fn conflicting_keys() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
rate = 10
users = 5
stages = [ { rate = 1, for = "1s" }, { hold = "1s", rate = 2 } ]
duration = "10s"
flow = [
  { request = { path = "/", url = "http://127.0.0.1:8090/", body = "x", json = { a = 1 } }, think = "1s" },
]
"#;
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn missing_parts() {
    insta::assert_snapshot!("no_scenario", rendered("[target]\nbase_url = \"http://127.0.0.1:8090\"\n"));
    let text = r#"[[scenario]]
name = "a"

[[scenario]]
rate = 10
flow = []

[[scenario]]
stages = [ { hold = "1s" }, { rate = 5 }, {} ]
flow = [ { request = { path = "/" } }, { flow = [] } ]
"#;
    insta::assert_snapshot!("missing_parts", rendered(text));
}

#[test]
fn what_does_not_run_yet_points_at_its_key() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"
headers = { Authorization = "Bearer {{ env(\"TOKEN\") }}" }

[[scenario]]
users = 10
ramp_up = "10s"
duration = "1m"
flow = [
  { request = { path = "/items/{{ random_int(0, 9999999) }}", extract = { id = { json = "$.id" } }, check = [ { status = 200 } ] } },
  { think = "1s..5s" },
  { repeat = 3, flow = [ { request = { path = "/" } } ] },
  { every = "20s", flow = [ { request = { path = "/" } } ] },
  { choose = [ { weight = 90, flow = [ { think = "20s" } ] } ] },
  { ws_connect = { url = "ws://127.0.0.1:8090/ws" } },
  { request = { path = "/second" } },
]

[[scenario]]
stages = [ { rate = 10, for = "10s" }, { rate = 100, ramp = "30s" } ]
flow = [ { request = { method = "POST", path = "/", json = { id = "{{ uuid() }}" } } } ]

[thresholds]
"GET /api/images" = ["p99<200ms"]

[feeders.users]
file = "users.csv"
"#;
    let report = load(text).expect_err("not runnable yet");
    assert!(report.diagnostics.iter().all(|d| d.kind == DiagnosticKind::NotSupported), "{report}");
    insta::assert_snapshot!(report.to_string());
}

#[test]
fn every_error_of_a_file_is_reported_at_once() {
    let text = r#"[target]
base_url = "http://127.0.0.1:8090"
timout = "5s"
timeout = "3x"

[[scenario]]
name = "api"
rate = "fast"
duration = 30
arrival = "poison"
flow = [
  { request = { method = "GET", path = "/api", extract = { id = { json = "$.id" } } } },
  { think = "2s" },
]

[thresholds]
global = ["p99<250", "error_rate<1%"]

[abort]
window = "0s"

[variables]
"bad name" = 1
list = [1]
"#;
    let lines = short(text);
    assert_eq!(lines.len(), 11, "{lines:#?}");
    insta::assert_snapshot!(rendered(text));
}

#[test]
fn missing_keys_caused_by_a_wrong_shape_are_not_reported_twice() {
    // `rate` has the wrong type and is dropped; "no load model" would only repeat that.
    let text = BASE.replace("rate = 100", "rate = [100]");
    assert_eq!(short(&text), ["plan.toml:5:8: error: wrong type for `scenario[0].rate`: found an array"]);
}
