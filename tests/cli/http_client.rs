//! pummel as an HTTP client that behaves like one, against nginx: compressed answers decoded
//! for the checks that read them (and only those), redirect chains followed on the target, and
//! a cookie jar per virtual user.

use std::time::Duration;

use serde_json::Value;

use crate::support::nginx::Nginx;
use crate::support::plans::write_plan;
use crate::support::servers::{Behaviour, TestServer};
use crate::support::{self, count};

/// nginx gzips JSON (`return` bodies included) for clients that ask.
const GZIP: &str = "gzip on; gzip_types application/json; gzip_min_length 0; default_type application/json;";
/// A JSON document, long enough that gzip shrinks it well.
fn body() -> String {
    format!(r#"{{"status":"ready","items":[1,2,3,4,5,6,7,8,9,10],"note":"{}"}}"#, "pummel ".repeat(80))
}

/// nginx's location answering [`body`] at `/data`.
fn data() -> String {
    format!("location = /data {{ return 200 '{}'; }}", body())
}

/// Runs `plan` (with `BASE` replaced by nginx's URL) and returns the summary.
fn run_plan(nginx: &Nginx, plan: &str, code: i32) -> Value {
    let dir = support::temp_dir();
    let path = write_plan(&dir, "plan.toml", &plan.replace("BASE", &format!("http://{}", nginx.addr)));
    let out = support::run(&["run", &path, "--json"], Duration::from_secs(60));
    out.assert_code(code).assert_no_panic();
    out.json()
}

/// With `accept_encoding`, nginx answers gzip; a JSONPath check reads the decoded body and
/// passes, the decoded bytes are counted beside the bytes on the wire. Without it, the same
/// check passes on a plain body and nothing is decoded.
#[test]
fn a_gzip_answer_is_decoded_for_its_checks() {
    let _load = support::shared();
    let nginx = Nginx::configured(GZIP, &data());
    let plan = r#"
[target]
base_url = "BASE"
ACCEPT

[[scenario]]
users = 2
iterations = 5
flow = [ { request = { path = "/data", check = [
  { name = "encoding", header = "Content-Encoding", exists = GZIPPED },
  { name = "status", json = "$.status", equals = "ready" },
  { name = "ten items", json = "$.items[9]", equals = 10 },
] } } ]
"#;
    let compressed = run_plan(
        &nginx,
        &plan.replace("ACCEPT", r#"accept_encoding = ["gzip", "br", "zstd"]"#).replace("GZIPPED", "true"),
        0,
    );
    assert_eq!(count(&compressed, "/requests/ok"), 10, "{compressed:#}");
    let decoded = count(&compressed, "/bytes/decoded");
    assert_eq!(decoded, 10 * body().len() as u64, "ten bodies once decoded\n{compressed:#}");
    let plain = run_plan(&nginx, &plan.replace("ACCEPT", "").replace("GZIPPED", "false"), 0);
    assert_eq!(count(&plain, "/requests/ok"), 10, "{plain:#}");
    assert_eq!(count(&plain, "/bytes/decoded"), 0, "nothing was compressed, nothing decoded");
    assert!(count(&compressed, "/bytes/in") < count(&plain, "/bytes/in"), "gzip sent fewer bytes on the wire");
}

/// A quick run with `--compressed` asks for compression, reads no body and decodes none.
#[test]
fn a_quick_compressed_run_decodes_nothing() {
    let _load = support::shared();
    let nginx = Nginx::configured(GZIP, &data());
    let url = format!("http://{}/data", nginx.addr);
    let out = support::run(&["run", &url, "-n", "20", "-c", "2", "--compressed", "--json"], Duration::from_secs(30));
    out.assert_code(0);
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 20);
    assert_eq!(count(&summary, "/bytes/decoded"), 0, "no check read a body: {summary:#}");
}

/// nginx's redirect chain `/a` → `/b` → `/c` → `/data` (301, 302, 307), and a redirect away
/// from the target.
fn redirects() -> String {
    format!(
        "{} location = /a {{ return 301 /b; }} location = /b {{ return 302 /c; }} location = /c {{ return 307 /data; }} \
         location = /away {{ return 302 http://127.0.0.2:9/; }}",
        data()
    )
}

/// A chain of three redirects is followed: each hop counted, the checks see the final answer;
/// with `redirects = 2` the same chain fails as `too_many_redirects`; a redirect to another
/// host is not followed and fails as `redirect_off_target`.
#[test]
fn redirect_chains_are_followed_counted_and_bounded() {
    let _load = support::shared();
    let nginx = Nginx::configured("default_type application/json;", &redirects());
    let plan = r#"
[target]
base_url = "BASE"
LIMIT

[[scenario]]
users = 1
iterations = 4
flow = [ { request = { path = "/a", check = [ { json = "$.status", equals = "ready" } ] } } ]
"#;
    let followed = run_plan(&nginx, &plan.replace("LIMIT", ""), 0);
    assert_eq!(count(&followed, "/requests/ok"), 4, "{followed:#}");
    assert_eq!(count(&followed, "/requests/redirects"), 12, "three hops for each of 4 requests\n{followed:#}");
    assert_eq!(count(&followed, "/status/200"), 4, "only the final answers have a status: {followed:#}");
    let bounded = run_plan(&nginx, &plan.replace("LIMIT", "redirects = 2"), 0);
    assert_eq!(count(&bounded, "/errors/too_many_redirects"), 4, "{bounded:#}");
    assert_eq!(count(&bounded, "/requests/redirects"), 8, "two hops each, then refused\n{bounded:#}");
    let away = run_plan(&nginx, &plan.replace("LIMIT", "").replace("/a", "/away"), 0);
    assert_eq!(count(&away, "/errors/redirect_off_target"), 4, "{away:#}");
    // A quick run follows none unless asked.
    let url = format!("http://{}/a", nginx.addr);
    let quick = support::run(&["run", &url, "-n", "3", "-c", "1", "--json"], Duration::from_secs(30));
    let quick = quick.json();
    assert_eq!((count(&quick, "/status/301"), count(&quick, "/requests/redirects")), (3, 0), "{quick:#}");
    let asked =
        support::run(&["run", &url, "-n", "3", "-c", "1", "--redirects", "5", "--json"], Duration::from_secs(30));
    let asked = asked.json();
    assert_eq!((count(&asked, "/status/200"), count(&asked, "/requests/redirects")), (3, 9), "{asked:#}");
}

/// A login-based app: 200 users log in and each keeps its own session cookie (the server
/// answers 403 to a request with another user's session); with `cookies = false` the later
/// requests have none and get 401.
#[test]
fn every_user_keeps_its_own_session_cookie() {
    let _load = support::shared();
    let server = TestServer::start(Behaviour::Login);
    let dir = support::temp_dir();
    let plan = r#"
[target]
base_url = "BASE"
COOKIES

[[scenario]]
users = 200
iterations = 2
flow = [
  { request = { method = "POST", path = "/login?user={{ user }}", name = "login" } },
  { request = { path = "/me", headers = { X-User = "{{ user }}" }, name = "me" } },
]
"#;
    let base = format!("http://{}", server.addr);
    let run = |cookies: &str, code: i32| {
        let path = write_plan(&dir, "plan.toml", &plan.replace("BASE", &base).replace("COOKIES", cookies));
        let out = support::run(&["run", &path, "--json"], Duration::from_secs(60));
        out.assert_code(code).assert_no_panic();
        out.json()
    };
    let kept = run("", 0);
    assert_eq!(count(&kept, "/requests/ok"), 800, "{kept:#}");
    assert_eq!(count(&kept, "/status/200"), 800, "no 401 and no other user's session (403)\n{kept:#}");
    let none = run("cookies = false", 0);
    assert_eq!(count(&none, "/status/401"), 400, "every /me without a session\n{none:#}");
    assert_eq!(count(&none, "/errors/status_4xx"), 400, "{none:#}");
}

/// Over HTTP/2 (nginx with h2c), the same chain is followed on the scenario's shared
/// connection: each hop counted, the checks see the final answer, and `redirects = 2` refuses
/// it.
#[test]
fn redirect_chains_are_followed_over_http2() {
    let _load = support::shared();
    let nginx = Nginx::configured_listening("default_type application/json;", &redirects(), " http2");
    let plan = r#"
[target]
base_url = "BASE"
http_version = "2"
LIMIT

[[scenario]]
users = 2
iterations = 3
flow = [ { request = { path = "/a", check = [ { json = "$.status", equals = "ready" } ] } } ]
"#;
    let followed = run_plan(&nginx, &plan.replace("LIMIT", ""), 0);
    assert_eq!(count(&followed, "/requests/ok"), 6, "{followed:#}");
    assert_eq!(count(&followed, "/requests/redirects"), 18, "three hops for each of 6 requests\n{followed:#}");
    let threads = count(&followed, "/generator/threads");
    assert!(count(&followed, "/connect_ms/count") <= threads, "one shared connection per thread: {followed:#}");
    let bounded = run_plan(&nginx, &plan.replace("LIMIT", "redirects = 2"), 0);
    assert_eq!(count(&bounded, "/errors/too_many_redirects"), 6, "{bounded:#}");
    let away = run_plan(&nginx, &plan.replace("LIMIT", "").replace("/a", "/away"), 0);
    assert_eq!(count(&away, "/errors/redirect_off_target"), 6, "{away:#}");
}
