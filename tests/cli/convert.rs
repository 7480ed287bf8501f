//! `pummel convert curl`: the plan it writes passes `pummel check`, holds no secret, and — run
//! with the secrets in the environment against a recording sink — sends the same request.
//! Bad commands are refused with where and why (exit 2). The HAR path is tested with a real
//! browser's recording in `convert_browser.rs`.

use std::time::Duration;

use crate::support::{self, Sink, plans};

const TOKEN: &str = "tok-2718281828";
const BEARER: &str = "bearer-3141592653";
const PASSWORD: &str = "hunter2-correct-horse";

#[test]
fn a_converted_curl_command_replays_the_same_request_without_its_secrets_in_the_plan() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (plan_path, plan) = support::path_in(&dir, "plan.toml");
    let url = format!("http://127.0.0.1:9/api/login?token={TOKEN}&next=%2Fhome");
    let body = format!(r#"{{"user":"ann","password":"{PASSWORD}","note":"{{{{ raw }}}}"}}"#);
    let bearer = format!("Authorization: Bearer {BEARER}");
    let out = support::run(
        &[
            "convert",
            "curl",
            "-o",
            &plan,
            "--",
            "curl",
            "-sS",
            &url,
            "-H",
            &bearer,
            "-H",
            "Content-Type: application/json",
            "-H",
            "Accept-Encoding: gzip",
            "--data-raw",
            &body,
        ],
        Duration::from_secs(10),
    );
    out.assert_code(0).assert_no_panic();
    let text = std::fs::read_to_string(&plan_path).expect("the plan was written");
    for secret in [TOKEN, BEARER, PASSWORD] {
        assert!(!text.contains(secret), "{secret} in the plan:\n{text}");
    }
    for variable in ["TOKEN", "AUTHORIZATION", "PASSWORD"] {
        assert!(out.stderr.contains(variable), "stderr names {variable}: {}", out.stderr);
        assert!(text.contains(&format!("#   {variable} ")), "the plan lists {variable}:\n{text}");
    }
    assert!(out.stderr.contains("accept-encoding"), "the dropped header is said: {}", out.stderr);
    support::run(&["check", &plan], Duration::from_secs(10)).assert_code(0);

    let (record_path, record) = support::path_in(&dir, "received.jsonl");
    let sink = Sink::start(&["--echo", "--record", &record]);
    let env = [("TOKEN", Some(TOKEN)), ("AUTHORIZATION", Some(BEARER)), ("PASSWORD", Some(PASSWORD))];
    let run = support::spawn_with_env(&["run", &plan, "--base-url", &sink.url(""), "--json"], None, &env)
        .wait(Duration::from_secs(30));
    run.assert_code(0).assert_no_panic();
    let received = plans::recorded(&record_path, 1, Duration::from_secs(10));
    assert_eq!(received.len(), 1, "{received:?}");
    let request = &received[0];
    assert_eq!(request["method"], "POST");
    assert_eq!(request["target"], format!("/api/login?token={TOKEN}&next=%2Fhome"));
    assert_eq!(request["body"], body.as_str());
    assert_eq!(plans::header(request, "authorization"), Some(format!("Bearer {BEARER}").as_str()));
    assert_eq!(plans::header(request, "accept-encoding"), None);
}

#[test]
fn a_plan_whose_secret_is_not_set_sends_nothing_and_says_which() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_, plan) = support::path_in(&dir, "plan.toml");
    support::run(
        &["convert", "curl", "-o", &plan, "--", "curl", "http://127.0.0.1:9/a", "-H", "X-Api-Key: k-1234567890"],
        Duration::from_secs(10),
    )
    .assert_code(0);
    let sink = Sink::start(&[]);
    let (results_path, results) = support::path_in(&dir, "results.json");
    let run = support::spawn_with_env(
        &["run", &plan, "--base-url", &sink.url(""), "--json", "-o", &results],
        None,
        &[("X_API_KEY", None)],
    )
    .wait(Duration::from_secs(30));
    run.assert_no_panic();
    // The request is not sent with an empty key: it fails, and the reason names the variable.
    let summary = run.json();
    assert_eq!(support::count(&summary, "/requests/failed"), 1, "{summary}");
    assert_eq!(support::count(&summary, "/requests/sent"), 0, "{summary}");
    let doc = support::read_json(&results_path);
    let reasons = doc["other_errors"].to_string();
    assert!(reasons.contains("X_API_KEY"), "{reasons}");
}

#[test]
fn bad_curl_commands_are_refused_with_where_and_why() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_, file) = support::path_in(&dir, "commands.sh");
    std::fs::write(dir.path().join("commands.sh"), "curl http://127.0.0.1:9/a \\\n  --proxy http://p:1\n")
        .expect("write the commands");
    let out = support::run(&["convert", "curl", "--file", &file], Duration::from_secs(10));
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains(&format!("{file}:2:3: unknown curl option `--proxy`")), "{}", out.stderr);

    let out = support::run(&["convert", "curl", "--", "curl", "-Z", "http://h/"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("argument 2: unknown curl option `-Z`"), "{}", out.stderr);

    let out = support::run(&["convert", "curl"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("after `--`"), "{}", out.stderr);

    let out = support::run(&["convert", "har", &file], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains(&format!("{file}:1:1: not JSON")), "{}", out.stderr);
}
