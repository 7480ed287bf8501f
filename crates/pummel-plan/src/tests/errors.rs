//! Each kind of mistake is reported at its file:line:col, with the source line, a caret and the
//! expected form; a file with several mistakes gets all of them at once. The rendered messages
//! are snapshots (`src/tests/snapshots/`), reviewed with `cargo insta review`.

use super::{BASE, rendered, short, valid};

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
users = true
duration = 30
"#;
    insta::assert_snapshot!(rendered(text));
    let text = BASE.replace("rate = 100\nduration = \"10s\"", "users = true\nduration = 30");
    assert_eq!(
        short(&text),
        [
            "plan.toml:5:9: error: wrong type for `scenario[0].users`: found boolean `true`",
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
fn stages_are_all_of_rate_or_all_of_users() {
    // Stages of users run (the closed model's levels and ramps); mixing them with rates is an
    // error at the first stage of the other kind.
    let users = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
stages = [ { users = 10, for = "10s" }, { users = 50, ramp = "30s" }, { hold = "1m" } ]
flow = [ { request = { path = "/" } } ]
"#;
    let spec = valid(users);
    assert_eq!(spec.scenarios[0].max_users(), 50);
    let mixed = users.replace("{ users = 50, ramp", "{ rate = 50, ramp");
    assert_eq!(
        short(&mixed),
        ["plan.toml:5:43: error: these stages set `users`: stages are all of rate or all of users"]
    );
    let both = users.replace("{ users = 10, for", "{ users = 10, rate = 5, for");
    assert_eq!(
        short(&both),
        ["plan.toml:5:26: error: these stages set `users`: stages are all of rate or all of users"]
    );
    insta::assert_snapshot!(rendered(&mixed));
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
  { request = { method = "GET", path = "/api/{{ tokn }}", extract = { id = { json = "$.id" } } } },
  { think = "5s..1s" },
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

/// A plan whose one scenario runs `steps` (one per line, from line 8 on).
fn with_flow(steps: &[&str]) -> String {
    format!(
        "[target]\nbase_url = \"http://127.0.0.1:8090\"\n\n[[scenario]]\nusers = 2\nduration = \"10s\"\nflow = [\n{}\n]\n",
        steps.iter().map(|s| format!("  {s},")).collect::<Vec<_>>().join("\n")
    )
}

#[test]
fn templates_that_do_not_compile_point_into_the_string() {
    let text = with_flow(&[
        r#"{ request = { path = "/u/{{ user " } }"#,
        r#"{ request = { path = "/", headers = { X-A = "{% if %}" } } }"#,
        r#"{ request = { method = "POST", path = "/", body = "{{ user }} {{ }}" } }"#,
    ]);
    let lines = short(&text);
    // At the token where each goes wrong: after `user`, at `%}` of an `if` without a
    // condition, at `}}` of an empty expression.
    let positions: Vec<&str> = lines.iter().map(|l| l.split(": error: ").next().unwrap_or("")).collect();
    assert_eq!(positions, ["plan.toml:8:31", "plan.toml:9:54", "plan.toml:10:68"], "{lines:#?}");
    for (line, what) in lines.iter().zip(["the path", "a header value", "the body"]) {
        assert!(line.contains(&format!("template in {what} does not compile")), "{line}");
    }
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn an_undefined_variable_is_pointed_at_and_the_defined_ones_are_listed() {
    let text = with_flow(&[
        r#"{ request = { path = "/items/{{ tokn }}", extract = { token = { json = "$.token" } } } }"#,
        r#"{ request = { path = "/", query = { q = "{{ user }}-{{ nope }}" } } }"#,
        r#"{ ws_connect = { path = "/ws" } }"#,
        r#"{ ws_send = { text = "hi {{ who }}" } }"#,
    ]);
    assert_eq!(
        short(&text),
        [
            "plan.toml:8:35: error: undefined variable `tokn` in the path",
            "plan.toml:9:58: error: undefined variable `nope` in query values",
            "plan.toml:11:31: error: undefined variable `who` in the message",
        ]
    );
    let shown = rendered(&text);
    assert!(shown.contains("defined here: iteration, token, user"), "{shown}");
    insta::assert_snapshot!(shown);
}

#[test]
fn bad_jsonpaths_and_regexes_in_extract_and_check() {
    let text = with_flow(&[
        r#"{ request = { path = "/", extract = { id = { json = "$.items[" } } } }"#,
        r#"{ request = { path = "/", check = [ { json = "id", exists = true } ] } }"#,
        r#"{ request = { path = "/", extract = { id = { regex = "id=(\\d+" } } } }"#,
        r#"{ request = { path = "/", check = [ { body_regex = "[a-" }, { header = "X-Id", regex = "a{2,1}" } ] } }"#,
        r#"{ ws_connect = { path = "/ws" } }"#,
        r#"{ ws_expect = { match_id = "$$" } }"#,
    ]);
    let lines = short(&text);
    let positions: Vec<&str> = lines.iter().map(|l| l.split(": error: ").next().unwrap_or("")).collect();
    assert_eq!(
        positions,
        [
            "plan.toml:8:63",
            "plan.toml:9:49",
            "plan.toml:10:56",
            "plan.toml:11:55",
            "plan.toml:11:92",
            "plan.toml:13:32"
        ],
        "{lines:#?}"
    );
    assert!(lines.iter().all(|l| l.contains("invalid pattern")), "{lines:#?}");
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn bad_think_times() {
    let text = with_flow(&[
        r#"{ request = { path = "/" } }"#,
        r#"{ think = "5s..1s" }"#,
        r#"{ think = "exp(x)" }"#,
        r#"{ think = "exp(0s)" }"#,
        r#"{ think = "2 seconds" }"#,
    ]);
    assert_eq!(
        short(&text),
        [
            "plan.toml:9:13: error: invalid think time \"5s..1s\"",
            "plan.toml:10:13: error: invalid think time \"exp(x)\"",
            "plan.toml:11:13: error: invalid think time \"exp(0s)\"",
            "plan.toml:12:13: error: invalid think time \"2 seconds\"",
        ]
    );
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn bad_blocks_and_choices() {
    let text = with_flow(&[
        r#"{ choose = [ { weight = 0, flow = [ { think = "1s" } ] }, { weight = -2, flow = [ { think = "1s" } ] } ] }"#,
        r#"{ repeat = 0, flow = [ { request = { path = "/" } } ] }"#,
        r#"{ repeat = 3 }"#,
        r#"{ every = "0s", flow = [ { think = "1s" } ] }"#,
        r#"{ choose = [ { weight = 1 } ] }"#,
        r#"{ choose = [] }"#,
        r#"{ think = "1s", flow = [ { think = "1s" } ] }"#,
    ]);
    assert_eq!(
        short(&text),
        [
            "plan.toml:8:27: error: a weight must be a positive number",
            "plan.toml:8:72: error: a weight must be a positive number",
            "plan.toml:9:14: error: repeat must be at least 1, not 0",
            "plan.toml:10:3: error: this block has no `flow`",
            "plan.toml:11:13: error: every must be longer than 0s",
            "plan.toml:12:16: error: this branch has no `flow`",
            "plan.toml:13:14: error: `choose` has no branches",
            "plan.toml:14:19: error: a nested `flow` belongs to `repeat` or `every`, not `think`",
        ]
    );
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn bad_feeders() {
    let text = BASE.to_string()
        + r#"
[feeders.rows]
file = "rows.csv"
mode = "shuffled"

[feeders.later]
file = "rows.csv"
when_exhausted = "stop"

[feeders.gone]
file = "no-such-file.csv"

[feeders.odd]
file = "rows.txt"

[feeders.nofile]
mode = "random"

[feeders."bad-name"]
file = "rows.csv"
"#;
    assert_eq!(
        short(&text),
        [
            "plan.toml:11:8: error: unknown mode \"shuffled\"",
            "plan.toml:15:18: error: unknown when_exhausted \"stop\"",
            "plan.toml:18:8: error: feeder \"gone\": cannot open no-such-file.csv: No such file or directory (os error 2)",
            "plan.toml:21:8: error: cannot tell the format from the file name",
            "plan.toml:23:1: error: feeder \"nofile\" has no `file`",
            "plan.toml:26:10: error: invalid feeder name \"bad-name\": letters, digits and _ only",
        ]
    );
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn a_threshold_for_an_unknown_name_lists_the_names() {
    let text = with_flow(&[
        r#"{ request = { path = "/items", name = "read" } }"#,
        r#"{ ws_connect = { path = "/ws", name = "socket" } }"#,
    ]) + "\n[thresholds]\n\"reed\" = [\"p99<500ms\"]\n\"read\" = [\"p99<500ms\"]\n\"GET /items\" = [\"p99<1s\"]\n";
    assert_eq!(
        short(&text),
        [
            "plan.toml:13:1: error: no request or exchange is named \"reed\"",
            "plan.toml:15:1: error: no request or exchange is named \"GET /items\"",
        ]
    );
    assert!(rendered(&text).contains("= names in this plan: read, socket"), "{}", rendered(&text));
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn bad_ramps() {
    let text = BASE.replace(
        "rate = 100\nduration = \"10s\"",
        "stages = [ { ramp = \"1m\" }, { rate = 10, ramp = \"0s\" }, { rate = 10, ramp = \"1m\", for = \"x\" }, { ramp = \"1s\", hold = \"1s\" } ]",
    );
    let lines = short(&text);
    assert_eq!(
        lines,
        [
            "plan.toml:5:12: error: this ramp has no target `rate` or `users`",
            "plan.toml:5:49: error: ramp must be longer than 0s",
            "plan.toml:5:89: error: for: invalid duration \"x\": a number is missing before a unit",
            "plan.toml:5:111: error: `hold` cannot be used with `ramp`",
        ]
    );
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn bad_websocket_steps() {
    let text = with_flow(&[
        r#"{ ws_connect = { url = "http://127.0.0.1:8090/ws" } }"#,
        r#"{ ws_connect = {} }"#,
        r#"{ ws_send = {} }"#,
        r#"{ ws_expect = { timeout = "soon" } }"#,
        r#"{ ws_close = { code = 99 } }"#,
        r#"{ ws_close = "now" }"#,
    ]);
    assert_eq!(
        short(&text),
        [
            "plan.toml:8:26: error: \"http://127.0.0.1:8090/ws\" is not a ws:// or wss:// URL",
            "plan.toml:9:18: error: ws_connect has no `url` or `path`",
            "plan.toml:10:15: error: ws_send has no `text` or `json`",
            "plan.toml:11:29: error: timeout: invalid duration \"soon\": a number is missing before a unit",
            "plan.toml:12:16: error: invalid ws_close",
            "plan.toml:13:16: error: invalid ws_close",
        ]
    );
    insta::assert_snapshot!(rendered(&text));
}

#[test]
fn bad_http_versions_and_streams() {
    let text = BASE.replace("[target]\n", "[target]\nhttp_version = \"3\"\n");
    assert_eq!(short(&text), ["plan.toml:2:16: error: unknown http_version \"3\""]);
    let streams = BASE.replace("[target]\n", "[target]\nstreams = 8\n");
    assert_eq!(short(&streams), ["plan.toml:2:1: error: `streams` needs http_version = \"2\""]);
    let too_many = BASE.replace("[target]\n", "[target]\nhttp_version = \"2\"\nstreams = 0\n");
    assert_eq!(short(&too_many), ["plan.toml:3:11: error: streams must be at least 1, not 0"]);
    // The same rules for a scenario's own keys.
    let scenario = BASE.replace("rate = 100\n", "rate = 100\nhttp_version = \"3\"\n");
    assert_eq!(short(&scenario), ["plan.toml:6:16: error: unknown http_version \"3\""]);
    let scenario = BASE.replace("rate = 100\n", "rate = 100\nstreams = 8\n");
    assert_eq!(short(&scenario), ["plan.toml:6:1: error: `streams` needs http_version = \"2\""]);
    let closing = BASE.replace("[target]\n", "[target]\nkeepalive = false\nhttp_version = \"2\"\n");
    assert_eq!(
        short(&closing),
        ["plan.toml:2:1: error: HTTP/2 keeps its connections open: not with keepalive = false"]
    );
    let closing = BASE
        .replace("[target]\n", "[target]\nkeepalive = false\n")
        .replace("rate = 100\n", "rate = 100\nhttp_version = \"2\"\n");
    assert_eq!(
        short(&closing),
        ["plan.toml:7:1: error: HTTP/2 keeps its connections open: not with keepalive = false"]
    );
    insta::assert_snapshot!(rendered(&text) + "\n" + &rendered(&streams));
}

#[test]
fn mistakes_that_would_otherwise_pass_unnoticed() {
    // An `every` without `repeat` never ends: the scenario needs a duration.
    let endless = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
users = 1
iterations = 1
flow = [ { every = "200ms", flow = [ { request = { path = "/x" } } ] } ]
"#;
    assert_eq!(
        short(endless),
        ["plan.toml:7:12: error: this `every` runs until scenario \"scenario 1\" ends, and it has no `duration`"]
    );
    // Two conditions in one check: the second would go unchecked.
    let two = BASE.replace(
        "flow = [ { request = { path = \"/\" } } ]",
        "flow = [ { request = { path = \"/\", check = [ { status = 200, body_contains = \"x\" }, { json = \"$.a\", equals = 1, exists = false }, { contains = \"y\" } ] } } ]",
    );
    let lines = short(&two);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].contains("`body_contains` cannot be used with `status` in one check"), "{lines:?}");
    assert!(lines[1].contains("`exists` cannot be used with `equals` in one check"), "{lines:?}");
    assert!(lines[2].contains("`contains` needs `header` in the same check"), "{lines:?}");
    // `equals` in ws_expect means nothing without `json`.
    let equals = BASE.replace(
        "flow = [ { request = { path = \"/\" } } ]",
        "flow = [ { ws_connect = { path = \"/ws\" } }, { ws_expect = { equals = \"x\" } } ]",
    );
    assert_eq!(short(&equals).len(), 1);
    assert!(short(&equals)[0].contains("`equals` needs `json` in ws_expect"));
}

#[test]
fn a_negative_seed_is_an_error_at_its_place() {
    let text = format!("seed = -3\n{BASE}");
    assert_eq!(short(&text), ["plan.toml:1:8: error: seed -3 is negative"]);
    assert_eq!(valid(&format!("seed = 7\n{BASE}")).seed, Some(7));
    assert_eq!(valid(BASE).seed, None, "no seed: a fresh one each run");
}

#[test]
fn an_unknown_coding_is_an_error_at_its_place() {
    let text = BASE.replace(
        "base_url = \"http://127.0.0.1:8090\"",
        "base_url = \"http://127.0.0.1:8090\"\naccept_encoding = [\"gzip\", \"lzma\"]",
    );
    assert_eq!(short(&text), ["plan.toml:3:28: error: unknown coding \"lzma\""]);
    let spec = valid(&BASE.replace(
        "base_url = \"http://127.0.0.1:8090\"",
        "base_url = \"http://127.0.0.1:8090\"\naccept_encoding = [\"gzip\", \"br\"]",
    ));
    assert!(spec.target.headers.contains(&("Accept-Encoding".to_string(), "gzip, br".to_string())));
}

#[test]
fn uploads_that_cannot_be_read_or_built_are_errors_at_their_place() {
    let text = BASE.replace(
        "flow = [ { request = { path = \"/\" } } ]",
        "flow = [\n  { request = { path = \"/a\", body_file = \"missing.bin\" } },\n  { request = { path = \"/b\", multipart = [ { value = \"x\" }, { name = \"f\", value = \"x\", file = \"y\" } ] } },\n]",
    );
    let lines = short(&text);
    assert_eq!(lines.len(), 3, "{lines:?}");
    assert!(lines[0].starts_with("plan.toml:8:42: error: body_file: cannot read"), "{lines:?}");
    assert_eq!(lines[1], "plan.toml:9:44: error: a multipart part needs a `name`");
    assert_eq!(lines[2], "plan.toml:9:61: error: a multipart part has either `value` or `file`");
}
