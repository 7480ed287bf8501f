//! `pummel convert har` on a real browser's recording: Debian's Chromium, driven by
//! playwright-core, loads a small page whose script calls an API (`/api/*`, forwarded to a
//! `pummel sink --echo --record`) with a bearer token, an API key, a cookie, a token in a query
//! string and a password in a JSON body, pauses, and loads an image from another host name.
//! The converted plan must pass `pummel check`, hold none of the secrets, and — run with the
//! secrets in the environment and `--base-url` pointed at a second recording sink — send that
//! sink the same requests (method, path and query, body) in the same order as the browser sent
//! the first.
//!
//! Needs node, playwright-core and Chromium, as installed by `.ci/setup-browser`: without them
//! the test fails and says so (it never skips).

use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Sink, browser, plans};

const BEARER: &str = "bearer-1618033988";
const API_KEY: &str = "key-1414213562";
const COOKIE: &str = "cookie-3141592653";
const QUERY_TOKEN: &str = "qs-token-2718281828";
const PASSWORD: &str = "hunter2-correct-horse";
const FORM_TOKEN: &str = "at-5772156649";

/// The API calls the page makes, in order, with a 400 ms pause after the first; then an image
/// from the same server under another host name (`localhost`).
fn app_js() -> String {
    format!(
        r#"(async () => {{
  document.cookie = 'sid={COOKIE}; path=/';
  const auth = {{ 'Authorization': 'Bearer {BEARER}', 'X-Api-Key': '{API_KEY}' }};
  const list = await fetch('/api/items?token={QUERY_TOKEN}&page=2', {{ headers: {{ ...auth, 'Accept': 'application/json' }} }});
  const first = await list.json();
  await new Promise(resolve => setTimeout(resolve, 400));
  await fetch('/api/items/42', {{ method: 'POST', headers: {{ ...auth, 'Content-Type': 'application/json' }},
    body: JSON.stringify({{ name: 'widget {{{{ not a template }}}}', password: '{PASSWORD}', after: first.id }}) }});
  await fetch('/api/items/6f1c2d3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f', {{ method: 'PUT',
    headers: {{ 'Content-Type': 'text/plain' }}, body: 'line one\nline two' }});
  await fetch('/api/items/42?force=true', {{ method: 'DELETE', headers: auth }});
  await fetch('/api/search', {{ method: 'POST', headers: {{ 'Content-Type': 'application/x-www-form-urlencoded' }},
    body: 'q=red+shoes&access_token={FORM_TOKEN}' }});
  const image = new Image();
  await new Promise(resolve => {{ image.onload = image.onerror = resolve; image.src = `http://localhost:${{location.port}}/app/logo.svg`; }});
  window.__done = true;
}})().catch(error => {{ window.__failed = String(error); }});
"#
    )
}

const PAGE: &str = r#"<!doctype html>
<html><head><meta charset="utf-8"><title>pummel convert test</title><link rel="icon" href="data:,"></head>
<body><h1>orders</h1><script src="/app/app.js"></script></body></html>
"#;

const LOGO: &str = r#"<svg xmlns="http://www.w3.org/2000/svg" width="1" height="1"/>"#;

/// (method, target, body) of each request a sink recorded.
fn requests(records: &[Value]) -> Vec<(String, String, String)> {
    records
        .iter()
        .map(|r| {
            let text = |key: &str| r[key].as_str().unwrap_or_default().to_string();
            (text("method"), text("target"), text("body"))
        })
        .collect()
}

#[test]
fn a_browser_recording_converts_to_a_plan_that_replays_the_same_requests() {
    let _load = support::shared();
    browser::require_tools();
    let dir = support::temp_dir();

    // The browser's visit: the API behind the page is a recording sink.
    let (first_record, first_record_text) = support::path_in(&dir, "browser-requests.jsonl");
    let api = Sink::start(&["--echo", "--record", &first_record_text]);
    let server = browser::PageServer::start(
        vec![
            ("index.html", "text/html; charset=utf-8", PAGE.to_string()),
            ("app.js", "text/javascript", app_js()),
            ("logo.svg", "image/svg+xml", LOGO.to_string()),
        ],
        api.addr,
    );
    let page = format!("http://127.0.0.1:{}/app/index.html", server.addr.port());
    let har = dir.path().join("visit.har");
    browser::record_har(&page, &har, dir.path());
    let browser_sent = requests(&plans::recorded(&first_record, 5, Duration::from_secs(10)));
    assert_eq!(browser_sent.len(), 5, "{browser_sent:?}");

    // The conversion.
    let har_text = std::fs::read_to_string(&har).expect("the HAR was written");
    assert!(har_text.contains(BEARER), "the browser's HAR holds the secrets the plan must not");
    let (plan_path, plan) = support::path_in(&dir, "plan.toml");
    let har_arg = har.to_str().expect("a UTF-8 path");
    let out = support::run(
        &["convert", "har", har_arg, "-o", &plan, "--exclude", "app/*", "--exclude", "favicon.ico"],
        Duration::from_secs(10),
    );
    out.assert_code(0).assert_no_panic();
    let text = std::fs::read_to_string(&plan_path).expect("the plan was written");
    for secret in [BEARER, API_KEY, COOKIE, QUERY_TOKEN, PASSWORD, FORM_TOKEN] {
        assert!(!text.contains(secret), "{secret} is in the plan:\n{text}");
        assert!(!out.stderr.contains(secret), "{secret} is in the messages:\n{}", out.stderr);
    }
    for variable in ["AUTHORIZATION", "X_API_KEY", "COOKIE", "TOKEN", "PASSWORD", "ACCESS_TOKEN"] {
        assert!(text.contains(&format!("#   {variable} ")), "{variable} is listed:\n{text}");
    }
    // Another host name (localhost for the image) is left out, and said so.
    assert!(out.stderr.contains("on other hosts") && out.stderr.contains("localhost"), "{}", out.stderr);
    assert!(out.stderr.contains("--only-host"), "{}", out.stderr);
    assert!(text.contains("think = \""), "the 400 ms pause is a think step:\n{text}");
    for name in ["GET /api/items", "POST /api/items/:id", "PUT /api/items/:id", "DELETE /api/items/:id"] {
        assert!(text.contains(&format!("request.name = \"{name}\"")), "{name}:\n{text}");
    }
    for header in ["sec-", "accept-encoding", "host", "connection", ":authority"] {
        assert!(!text.to_ascii_lowercase().contains(&format!("request.headers.{header}")), "{header}:\n{text}");
    }
    let check = support::run(&["check", &plan], Duration::from_secs(10));
    check.assert_code(0).assert_no_panic();

    // The replay, against a second recording sink.
    let (second_record, second_record_text) = support::path_in(&dir, "replayed-requests.jsonl");
    let target = Sink::start(&["--echo", "--record", &second_record_text]);
    let env = [
        ("AUTHORIZATION", Some(BEARER)),
        ("X_API_KEY", Some(API_KEY)),
        ("COOKIE", Some(&*format!("sid={COOKIE}"))),
        ("TOKEN", Some(QUERY_TOKEN)),
        ("PASSWORD", Some(PASSWORD)),
        ("ACCESS_TOKEN", Some(FORM_TOKEN)),
    ];
    let run = support::spawn_with_env(&["run", &plan, "--base-url", &target.url(""), "--json"], None, &env)
        .wait(Duration::from_secs(30));
    run.assert_code(0).assert_no_panic();
    assert_eq!(support::count(&run.json(), "/requests/ok"), 5, "{}", run.stdout);
    let replayed_records = plans::recorded(&second_record, 5, Duration::from_secs(10));
    assert_eq!(requests(&replayed_records), browser_sent, "the replay sends what the browser sent, in order");
    let first = &replayed_records[0];
    assert_eq!(plans::header(first, "authorization"), Some(format!("Bearer {BEARER}").as_str()));
    assert_eq!(plans::header(first, "x-api-key"), Some(API_KEY));
    assert_eq!(plans::header(first, "cookie"), Some(format!("sid={COOKIE}").as_str()));
    drop(server);
}
