//! Several hosts in one plan (`[targets.NAME]`): each request reaches the host it names, with
//! that host's headers and path prefix, over that host's own connections; the figures say which
//! host is which.

use std::time::Duration;

use serde_json::Value;

use crate::support::nginx::Nginx;
use crate::support::plans::{header, recorded, write_plan};
use crate::support::{self, count, spawn_sink, text};

/// The plan of two hosts: a customer API (the default, named first) and an object store with
/// a path prefix, as seed 003's S3 data path beside its API.
fn two_host_plan(api: &str, store: &str) -> String {
    format!(
        r#"
[targets.api]
base_url = "http://{api}"
headers = {{ X-Host = "api" }}

[targets.store]
base_url = "http://{store}/bucket"
headers = {{ X-Host = "store" }}

[[scenario]]
name = "journey"
users = 5
iterations = 8
flow = [
  {{ request = {{ path = "/orders/{{{{ user }}}}-{{{{ iteration }}}}", name = "GET /orders/:id" }} }},
  {{ request = {{ target = "store", method = "PUT", path = "/objects/{{{{ user }}}}-{{{{ iteration }}}}", body = "payload", name = "PUT object" }} }},
  {{ request = {{ url = "http://{store}/bucket/index", name = "GET index" }} }},
]
"#
    )
}

/// Two `pummel sink` instances as two targets: each receives exactly its share (from their
/// own records), with its own headers and path prefix, and the per-target figures agree.
#[test]
fn each_target_receives_exactly_its_share() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (api_record_path, api_record) = support::path_in(&dir, "api.jsonl");
    let (store_record_path, store_record) = support::path_in(&dir, "store.jsonl");
    let (_api, api) = spawn_sink(&["--record", &api_record]);
    let (_store, store) = spawn_sink(&["--record", &store_record]);
    let plan = write_plan(&dir, "two.toml", &two_host_plan(&api.to_string(), &store.to_string()));
    let (results_path, results) = support::path_in(&dir, "results.json");
    let out = support::run(&["run", &plan, "--json", "-o", &results], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    support::assert_valid_results(&support::read_json(&results_path));

    let api_records = recorded(&api_record_path, 40, Duration::from_secs(10));
    let store_records = recorded(&store_record_path, 80, Duration::from_secs(10));
    // Let a late flush show any stray request too.
    std::thread::sleep(Duration::from_millis(1200));
    let api_records = recorded(&api_record_path, api_records.len(), Duration::from_secs(10));
    let store_records = recorded(&store_record_path, store_records.len(), Duration::from_secs(10));
    assert_eq!(api_records.len(), 40, "5 users × 8 iterations of one request to the API");
    assert_eq!(store_records.len(), 80, "two requests per iteration to the store");
    let is = |records: &[Value], host: &str| records.iter().all(|r| header(r, "x-host") == Some(host));
    assert!(is(&api_records, "api"), "the API's requests carry its headers only");
    assert!(is(&store_records, "store"), "the store's requests carry its headers only");
    assert!(api_records.iter().all(|r| text(r, "/target").starts_with("/orders/")));
    let puts = store_records.iter().filter(|r| r["method"] == "PUT").count();
    assert_eq!(puts, 40);
    assert!(
        store_records.iter().all(|r| text(r, "/target").starts_with("/bucket/")),
        "the store's base path prefixes its paths"
    );
    assert!(store_records.iter().all(|r| header(r, "host") == Some(store.to_string().as_str())));

    // The figures say which host is which, each with its own connections (keep-alive: one per
    // user per host, whatever the order of the requests).
    let target = |name: &str| {
        summary["by_target"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == name))
            .unwrap_or_else(|| panic!("no target {name:?} in {summary:#}"))
            .clone()
    };
    let (api_figures, store_figures) = (target("api"), target("store"));
    assert_eq!((count(&api_figures, "/sent"), count(&api_figures, "/ok")), (40, 40));
    assert_eq!((count(&store_figures, "/sent"), count(&store_figures, "/ok")), (80, 80));
    assert_eq!(count(&api_figures, "/connect_ms/count"), 5, "{api_figures:#}");
    assert_eq!(count(&store_figures, "/connect_ms/count"), 5, "{store_figures:#}");
    let by_name = |name: &str| {
        summary["by_name"]
            .as_array()
            .and_then(|all| all.iter().find(|n| n["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    assert_eq!(by_name("GET /orders/:id")["target"], "api");
    assert_eq!(by_name("GET index")["target"], "store", "a url on the store's host goes to the store");
    assert!(out.stdout.is_empty() || !out.stdout.contains("panicked"));

    // The dry run shows each request on its own host.
    let dry = support::run(&["run", &plan, "--dry-run", "3"], Duration::from_secs(30));
    dry.assert_code(0).assert_no_panic();
    assert!(dry.stdout.contains(&format!("GET http://{api}/orders/0-0")), "{}", dry.stdout);
    assert!(dry.stdout.contains(&format!("PUT http://{store}/bucket/objects/0-0")), "{}", dry.stdout);
}

/// A request to an unknown target, a url on a host no target names, a target without a base
/// URL and per-target connection settings are errors at their place; nothing is run.
#[test]
fn mistakes_about_targets_are_errors_at_their_place() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(
        &dir,
        "bad.toml",
        r#"[target]
base_url = "http://127.0.0.1:9"

[targets.store]
base_url = "http://127.0.0.2:9"
cookies = false

[targets.nourl]
headers = { A = "b" }

[[scenario]]
users = 1
iterations = 1
flow = [
  { request = { target = "stor", path = "/" } },
  { request = { url = "http://127.0.0.3:9/x" } },
]
"#,
    );
    let out = support::run(&["check", &plan], Duration::from_secs(30));
    out.assert_code(2).assert_no_panic();
    for expected in [
        format!("{plan}:6:1: error: `cookies` per target is not supported yet ([targets.store])"),
        format!("{plan}:8:10: error: [targets.nourl] has no base_url"),
        format!("{plan}:15:26: error: no target is named \"stor\""),
        format!("{plan}:16:23: error: \"http://127.0.0.3:9/x\" is on another host than base_url"),
    ] {
        assert!(out.stderr.contains(&expected), "missing {expected:?} in:\n{}", out.stderr);
    }
    assert!(out.stderr.contains("targets in this plan: default, store, nourl"), "{}", out.stderr);
}

/// An `https://` object store beside a plain `http://` API: the store's requests go over TLS
/// (verified with `--cacert`), the API's do not, and the TLS figures are the store's alone.
#[test]
fn an_https_target_beside_an_http_one_has_its_own_tls() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_, ca) = support::path_in(&dir, "ca.pem");
    let (_api, api) = spawn_sink(&[]);
    let (_store, store) = spawn_sink(&["--tls", "--tls-cert-out", &ca]);
    let plan = write_plan(
        &dir,
        "tls.toml",
        &format!(
            r#"
[target]
base_url = "http://{api}"

[targets.store]
base_url = "https://localhost:{port}"

[[scenario]]
users = 2
iterations = 5
flow = [
  {{ request = {{ path = "/api" }} }},
  {{ request = {{ target = "store", path = "/object" }} }},
]
"#,
            port = store.port()
        ),
    );
    let out = support::run(&["run", &plan, "--cacert", &ca, "--json"], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 20, "{summary:#}");
    let target = |name: &str| {
        summary["by_target"]
            .as_array()
            .and_then(|all| all.iter().find(|t| t["name"] == name))
            .cloned()
            .unwrap_or_default()
    };
    assert!(target("default")["tls_ms"].is_null(), "the API is plain HTTP: {summary:#}");
    assert_eq!(count(&target("store"), "/tls_ms/count"), 2, "one handshake per user: {summary:#}");
}

/// nginx redirects to another of the plan's targets (a `pummel sink`): the redirect is followed
/// there, over that target's connections, without the first host's credentials; a redirect to a
/// host no target names is not followed and fails as `redirect_off_target`.
#[test]
fn a_redirect_to_another_target_is_followed_and_one_to_no_target_is_not() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, sink) = spawn_sink(&["--record", &record]);
    let nginx = Nginx::configured(
        "default_type text/plain;",
        &format!(
            "location = /go {{ return 302 http://{sink}/landed; }} location = /away {{ return 302 http://127.0.0.2:9/; }}"
        ),
    );
    let plan = write_plan(
        &dir,
        "redirect.toml",
        &format!(
            r#"
[targets.web]
base_url = "http://{web}"
headers = {{ Authorization = "Bearer web-only" }}

[targets.files]
base_url = "http://{sink}"

[[scenario]]
users = 2
iterations = 3
flow = [
  {{ request = {{ path = "/go", name = "GET /go" }} }},
  {{ request = {{ path = "/away", name = "GET /away" }} }},
]
"#,
            web = nginx.addr
        ),
    );
    let out = support::run(&["run", &plan, "--json"], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/redirects"), 6, "one hop for each /go: {summary:#}");
    assert_eq!(count(&summary, "/errors/redirect_off_target"), 6, "every /away: {summary:#}");
    let records = recorded(&record_path, 6, Duration::from_secs(10));
    assert!(records.iter().all(|r| r["target"] == "/landed"), "only the redirected requests reach the sink");
    assert!(records.iter().all(|r| header(r, "authorization").is_none()), "the web host's credentials stay there");
    assert!(records.iter().all(|r| header(r, "host") == Some(sink.to_string().as_str())));
    let files = summary["by_target"].as_array().and_then(|all| all.iter().find(|t| t["name"] == "files")).cloned();
    assert_eq!(files.map(|f| count(&f, "/connect_ms/count")), Some(2), "one connection per user to files: {summary:#}");
}

/// Each target's own timeout and statuses: a slow host with a short timeout times out while the
/// default host, with a long one, answers; a host whose 404 means "fine" counts it as success.
#[test]
fn each_target_has_its_own_timeout_and_statuses() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_fast, fast) = spawn_sink(&[]);
    let (_slow, slow) = spawn_sink(&["--delay", "400ms"]);
    let (_legacy, legacy) = spawn_sink(&["--status", "404"]);
    let plan = write_plan(
        &dir,
        "timeouts.toml",
        &format!(
            r#"
[target]
base_url = "http://{fast}"
timeout = "5s"

[targets.slow]
base_url = "http://{slow}"
timeout = "100ms"

[targets.legacy]
base_url = "http://{legacy}"
ok_status = "404"
keepalive = false

[[scenario]]
users = 2
iterations = 3
flow = [
  {{ request = {{ path = "/fast", name = "fast" }} }},
  {{ request = {{ target = "slow", path = "/slow", name = "slow" }} }},
  {{ request = {{ target = "legacy", path = "/gone", name = "legacy" }} }},
]
"#
        ),
    );
    let out = support::run(&["run", &plan, "--json"], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let name = |n: &str| {
        summary["by_name"].as_array().and_then(|all| all.iter().find(|x| x["name"] == n)).cloned().unwrap_or_default()
    };
    assert_eq!(count(&name("fast"), "/ok"), 6, "{summary:#}");
    assert_eq!(count(&name("slow"), "/errors/timeout"), 6, "100 ms against a 400 ms host: {summary:#}");
    assert_eq!(count(&name("legacy"), "/ok"), 6, "its 404 is its success: {summary:#}");
    let legacy_connections = summary["by_target"]
        .as_array()
        .and_then(|all| all.iter().find(|t| t["name"] == "legacy"))
        .map(|t| count(t, "/connect_ms/count"));
    assert_eq!(legacy_connections, Some(6), "keepalive = false: a connection per request");
}
