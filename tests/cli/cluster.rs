//! A coordinator and its agents (`run --agents N`, `run --workers N`, `pummel agent`): one plan
//! run by several processes, started together, merged live into one exact results document,
//! with thresholds and abort rules judged on the whole; tokens checked both ways; a lost agent
//! noticed and named.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use crate::support::plans::{recorded, write_plan};
use crate::support::{self, Running, assert_valid_results, count, num, read_json, spawn_sink, text};

/// `--workers 3` at 150 req/s for 2 s: exactly the 300 arrivals of the plan are sent, over three
/// processes; the merged document counts what the sink received, its timeline adds up to its
/// totals, and each agent's share is in the breakdown.
#[test]
fn workers_send_the_whole_plan_once_and_the_merged_figures_add_up() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (results_path, results) = support::path_in(&dir, "results.json");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let url = format!("http://{addr}/");
    let out = support::run(
        &["run", &url, "--workers", "3", "-r", "150", "-d", "2s", "-o", &results, "--json"],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 300, "{}", out.stdout);
    assert_eq!(count(&summary, "/requests/ok"), 300);
    let agents = summary["agents"].as_array().expect("the per-agent breakdown");
    assert_eq!(agents.len(), 3);
    let segments: BTreeSet<&str> = agents.iter().map(|a| text(a, "/segment")).collect();
    assert_eq!(segments, BTreeSet::from(["1/3", "2/3", "3/3"]));
    let per_agent: u64 = agents.iter().map(|a| count(a, "/sent")).sum();
    assert_eq!(per_agent, 300, "the agents' parts add up to the whole");
    for agent in agents {
        assert_eq!(count(agent, "/sent"), 100, "arrivals are dealt out evenly: {agent}");
        assert!(num(agent, "/cpu_seconds") > 0.0, "{agent}");
    }
    assert_eq!(recorded(&record_path, 300, Duration::from_secs(10)).len(), 300);
    let document = read_json(&results_path);
    assert_valid_results(&document);
    let timeline: u64 = document["timeline"].as_array().expect("timeline").iter().map(|e| count(e, "/sent")).sum();
    assert_eq!(timeline, 300, "the merged timeline adds up to the totals");
    // The three agents' latencies crossed the wire whole: the merged histogram holds every one,
    // and the summary's p99 is that histogram's, not a blend of the agents' p99s.
    let latency = crate::results::decode(document["histograms"]["latency"].as_str().expect("latency histogram"));
    assert_eq!(latency.len(), 300);
    let p99_ms = latency.value_at_quantile(0.99) as f64 / 1000.0;
    let summary_p99 = num(&document["summary"], "/latency_ms/p99");
    assert!((p99_ms - summary_p99).abs() <= 0.0015, "merged p99 {p99_ms} ms vs summary {summary_p99} ms");
    assert!(out.stderr.contains("agent worker-3 joined"), "{}", out.stderr);
}

/// `--log-requests` over `--workers 2`: the agents' lines all reach the coordinator's one file
/// (every failure and, with a full sample, every success, as a local run logs them), each
/// agent redacts the secret query parameter before its lines leave it, and the summary's
/// count of lines is the file's.
#[test]
fn the_request_log_of_agents_lands_in_the_coordinators_file() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (log_path, log) = support::path_in(&dir, "requests.jsonl");
    let (_sink, addr) = spawn_sink(&["--error-rate", "30%"]);
    let url = format!("http://{addr}/items?api_key=s3cret-value-123");
    let out = support::run(
        &[
            "run",
            &url,
            "--workers",
            "2",
            "-r",
            "100",
            "-d",
            "2s",
            "--log-requests",
            &log,
            "--log-sample",
            "100%",
            "--log-per-second",
            "100000",
            "--json",
        ],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let (ok, failed) = (count(&summary, "/requests/ok"), count(&summary, "/requests/failed"));
    assert_eq!(ok + failed, 200, "{}", out.stdout);
    assert!(failed > 20, "{failed} failed");
    let text = std::fs::read_to_string(&log_path).expect("the coordinator's request log");
    assert!(!text.contains("s3cret-value-123"), "the secret never leaves an agent");
    let lines: Vec<serde_json::Value> =
        text.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{l:?} is not JSON: {e}"))).collect();
    let logged_failures = lines.iter().filter(|l| l["ok"] == false).count() as u64;
    let logged_successes = lines.iter().filter(|l| l["ok"] == true).count() as u64;
    assert_eq!(logged_failures, failed, "every agent's failures are in the one file");
    assert_eq!(logged_successes, ok, "and every success, with --log-sample 100%");
    assert!(lines.iter().all(|l| l["url"].as_str().is_some_and(|u| u.ends_with("api_key=[redacted]"))));
    assert_eq!(count(&summary, "/request_log/written"), ok + failed);
    assert_eq!(summary["request_log"]["left_out"], serde_json::json!({}), "nothing left out");
}

/// `--agent-weights worker-1=3`: the agents get unequal parts of one sequence (`1/4:1` and
/// `0:1/4` of `0,1/4,1`, in the order they joined), sending 3/4 and 1/4 of the 200 arrivals,
/// which still add up to the whole; bad weights, and a name no agent has, are usage errors.
#[test]
fn agent_weights_give_unequal_parts_that_add_up() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let out = support::run(
        &["run", &url, "--workers", "2", "--agent-weights", "worker-1=3", "-r", "100", "-d", "2s", "--json"],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 200, "{}", out.stdout);
    let agents = summary["agents"].as_array().expect("the per-agent breakdown");
    let part = |name: &str| {
        let agent = agents.iter().find(|a| a["name"] == name).unwrap_or_else(|| panic!("{name} in {agents:?}"));
        (text(agent, "/segment").to_string(), count(agent, "/sent"))
    };
    let ((big_segment, big), (small_segment, small)) = (part("worker-1"), part("worker-2"));
    assert_eq!((big, small), (150, 50), "3/4 and 1/4 of the arrivals");
    let segments = BTreeSet::from([big_segment.as_str(), small_segment.as_str()]);
    assert!(
        segments == BTreeSet::from(["0:3/4", "3/4:1"]) || segments == BTreeSet::from(["0:1/4", "1/4:1"]),
        "consecutive ranges of one sequence: {segments:?}"
    );
    // By cores: workers on one machine have the same, so the parts are equal, i/N.
    let out = support::run(
        &["run", &url, "--workers", "2", "--agent-weights", "cores", "-r", "100", "-d", "1s", "--json"],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let segments: BTreeSet<&str> =
        summary["agents"].as_array().expect("agents").iter().map(|a| text(a, "/segment")).collect();
    assert_eq!(segments, BTreeSet::from(["1/2", "2/2"]));
    for bad in ["worker-1=0", "worker-1", "worker-1=2,worker-1=3"] {
        let out =
            support::run(&["run", &url, "--workers", "2", "--agent-weights", bad, "-n", "4"], Duration::from_secs(30));
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("--agent-weights"), "{bad}: {}", out.stderr);
    }
    let out = support::run(
        &["run", &url, "--workers", "2", "--agent-weights", "nobody=2", "-n", "4"],
        Duration::from_secs(60),
    );
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("none of the agents that joined"), "{}", out.stderr);
}

/// Agents started by hand in another folder run a plan file whose feeder only the coordinator
/// has: the coordinator ships it. A `unique` feeder of 12 rows over 4 users × 3 iterations is
/// dealt out so that every row is used exactly once over both agents.
#[test]
fn agents_get_the_plan_and_its_files_from_the_coordinator() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let elsewhere = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (token_path, token) = support::path_in(&dir, "token");
    std::fs::write(&token_path, "a shared secret\n").expect("write the token");
    let (_sink, addr) = spawn_sink(&["--record", &record]);
    let rows: String = (0..12).map(|i| format!("{}\n", 500 + i)).collect();
    std::fs::write(dir.path().join("ids.csv"), format!("id\n{rows}")).expect("write the feeder");
    let plan = write_plan(
        &dir,
        "plan.toml",
        r#"
[[scenario]]
users = 4
iterations = 3
flow = [ { request = { path = "/row/{{ ids.id }}" } } ]

[feeders.ids]
file = "ids.csv"
mode = "unique"
when_exhausted = "end"
"#,
    );
    let port = support::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let base = format!("http://{addr}");
    let coordinator = support::spawn(
        &["run", &plan, "--base-url", &base, "--agents", "2", "--listen", &listen, "--token-file", &token, "--json"],
        None,
    );
    let agents: Vec<Running> = (1..=2)
        .map(|i| {
            let name = format!("hand-{i}");
            support::spawn(
                &["agent", "--coordinator", &listen, "--token-file", &token, "--name", &name],
                Some(elsewhere.path()),
            )
        })
        .collect();
    let out = coordinator.wait(Duration::from_secs(90));
    out.assert_code(0).assert_no_panic();
    for agent in agents {
        agent.wait(Duration::from_secs(20)).assert_code(0).assert_no_panic();
    }
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/sent"), 12, "{}", out.stdout);
    let names: BTreeSet<&str> =
        summary["agents"].as_array().expect("agents").iter().map(|a| text(a, "/name")).collect();
    assert_eq!(names, BTreeSet::from(["hand-1", "hand-2"]));
    let rows: Vec<String> =
        recorded(&record_path, 12, Duration::from_secs(10)).iter().map(|r| text(r, "/target").to_string()).collect();
    let distinct: BTreeSet<&String> = rows.iter().collect();
    assert_eq!(distinct.len(), 12, "every row once over both agents: {rows:?}");
}

/// An agent and a coordinator with different tokens refuse each other, and say so; the
/// coordinator gives up when its agents do not come (exit 3). Neither side sends the token.
#[test]
fn a_wrong_token_is_refused_on_both_sides() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let port = support::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let coordinator = support::spawn_with_env(
        &["run", &url, "-n", "10", "--agents", "1", "--listen", &listen, "--agents-timeout", "4s"],
        None,
        &[("PUMMEL_TOKEN", Some("right"))],
    );
    assert!(coordinator.wait_for_stderr("waiting for 1 agent", Duration::from_secs(20)));
    let agent = support::spawn_with_env(
        &["agent", "--coordinator", &listen, "--connect-wait", "10s"],
        None,
        &[("PUMMEL_TOKEN", Some("wrong"))],
    )
    .wait(Duration::from_secs(30));
    agent.assert_code(3).assert_no_panic();
    // The coordinator proves itself first: the agent finds it does not know the agent's token.
    assert!(agent.stderr.contains("does not know the token"), "{}", agent.stderr);
    let out = coordinator.wait(Duration::from_secs(30));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("wrong token"), "{}", out.stderr);
    assert!(out.stderr.contains("0 of 1 agents joined"), "{}", out.stderr);
    let bad = support::run(&["agent", "--coordinator", &listen], Duration::from_secs(10));
    bad.assert_code(2).assert_no_panic();
    assert!(bad.stderr.contains("PUMMEL_TOKEN"), "no token at all is a usage error: {}", bad.stderr);
}

/// An abort rule is judged on the merged seconds: against a sink that fails every request, a
/// 30 s run over two workers ends within a few seconds, every worker stopped, exit 1.
#[test]
fn an_abort_rule_stops_every_agent() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&["--error-rate", "100%"]);
    let url = format!("http://{addr}/");
    let started = Instant::now();
    let out = support::run(
        &[
            "run",
            &url,
            "--workers",
            "2",
            "-r",
            "100",
            "-d",
            "30s",
            "--abort-when",
            "error_rate>50%",
            "--abort-window",
            "1s",
            "--json",
        ],
        Duration::from_secs(90),
    );
    out.assert_code(1).assert_no_panic();
    assert!(started.elapsed() < Duration::from_secs(20), "the abort stopped the agents: {:?}", started.elapsed());
    let summary = out.json();
    assert_eq!(summary["partial"], true);
    assert!(count(&summary, "/requests/sent") < 1500, "{}", out.stdout);
    assert_eq!(summary["agents"].as_array().map(Vec::len), Some(2));
}

/// One of two agents is killed mid-run: the coordinator notices within the loss timeout, goes
/// on with the other (`--on-agent-loss continue`), and the results name the lost agent and when,
/// are partial, and the run does not pass.
#[test]
fn a_lost_agent_is_noticed_and_named() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (results_path, results) = support::path_in(&dir, "results.json");
    let (_sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let port = support::free_port().to_string();
    let listen = format!("127.0.0.1:{port}");
    let token = [("PUMMEL_TOKEN", Some("t"))];
    let coordinator = support::spawn_with_env(
        &[
            "run",
            &url,
            "-r",
            "50",
            "-d",
            "6s",
            "--agents",
            "2",
            "--listen",
            &listen,
            "--on-agent-loss",
            "continue",
            "-o",
            &results,
        ],
        None,
        &token,
    );
    let doomed = support::spawn_with_env(&["agent", "--coordinator", &listen, "--name", "doomed"], None, &token);
    let _survivor = support::spawn_with_env(&["agent", "--coordinator", &listen, "--name", "survivor"], None, &token);
    assert!(coordinator.wait_for_stderr("started", Duration::from_secs(30)), "the run started");
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2));
    doomed.signal("KILL");
    let killed_at = started.elapsed().as_secs_f64();
    let out = coordinator.wait(Duration::from_secs(60));
    out.assert_code(1).assert_no_panic();
    assert!(out.stderr.contains("agent doomed lost"), "{}", out.stderr);
    let document = read_json(&results_path);
    assert_valid_results(&document);
    assert_eq!(document["summary"]["partial"], true);
    let agents = document["summary"]["agents"].as_array().expect("agents");
    let lost = agents.iter().find(|a| text(a, "/name") == "doomed").expect("the doomed agent");
    let lost_at = num(lost, "/lost_at_s");
    assert!(lost_at >= killed_at - 1.0, "lost at {lost_at} s, killed at {killed_at} s");
    assert!(lost_at <= killed_at + 3.0 + 2.0, "noticed within the 3 s loss timeout: {lost_at} vs {killed_at}");
    // What the lost agent sent before it was lost is in the totals too (its seconds stand in
    // for the final report that never came): the summary agrees with the timeline.
    let timeline: u64 = document["timeline"].as_array().expect("timeline").iter().map(|e| count(e, "/sent")).sum();
    assert_eq!(count(&document["summary"], "/requests/sent"), timeline);
    assert!(count(lost, "/sent") > 0, "{lost}");
    let survivor = agents.iter().find(|a| text(a, "/name") == "survivor").expect("the survivor");
    assert!(survivor.get("lost_at_s").is_none(), "{survivor}");
    assert!(count(survivor, "/sent") >= 140, "the survivor ran its whole part (150): {survivor}");
}

/// `hold --workers 2`: the held connections are dealt out over two processes and merged into
/// one timeline: every second after the opening holds all of them, and each agent held half.
#[test]
fn hold_over_workers_holds_every_connection_once() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let out =
        support::run(&["hold", &url, "--workers", "2", "-c", "300", "-d", "2s", "--json"], Duration::from_secs(90));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 300, "one request per held connection: {}", out.stdout);
    let agents = summary["agents"].as_array().expect("agents");
    let parts: Vec<u64> = agents.iter().map(|a| count(a, "/sent")).collect();
    assert_eq!(parts, [150, 150], "{}", out.stdout);
    assert!(out.stderr.contains("held=300/300"), "the merged seconds hold all of them: {}", out.stderr);
}

/// `pummel agent --watch-only --watch-port PORT` on the target's machine streams the target's
/// side to a coordinator started with `--watch-agent`: the results hold the sink's own PID,
/// its samples and the connections the load agent held, as a local `--watch-port` would.
#[test]
fn a_watch_only_agent_brings_the_targets_side() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (results_path, results) = support::path_in(&dir, "results.json");
    let (sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let listen = format!("127.0.0.1:{}", support::free_port());
    let token = [("PUMMEL_TOKEN", Some("w"))];
    let coordinator = support::spawn_with_env(
        &["run", &url, "-c", "3", "-d", "3s", "--agents", "1", "--listen", &listen, "--watch-agent", "-o", &results],
        None,
        &token,
    );
    let load = support::spawn_with_env(&["agent", "--coordinator", &listen, "--name", "load"], None, &token);
    let port = addr.port().to_string();
    let watcher = support::spawn_with_env(
        &["agent", "--coordinator", &listen, "--name", "watcher", "--watch-only", "--watch-port", &port],
        None,
        &token,
    );
    let out = coordinator.wait(Duration::from_secs(90));
    out.assert_code(0).assert_no_panic();
    load.wait(Duration::from_secs(20)).assert_code(0);
    watcher.wait(Duration::from_secs(20)).assert_code(0).assert_no_panic();
    assert!(out.stderr.contains("watch agent watcher joined"), "{}", out.stderr);
    let document = read_json(&results_path);
    assert_valid_results(&document);
    let target = &document["summary"]["target"];
    assert_eq!(count(target, "/pid"), u64::from(sink.pid()), "the sink's own PID: {target}");
    assert!(count(target, "/samples") >= 2, "{target}");
    assert!(count(target, "/peak_established") >= 3, "the 3 connections of the load agent: {target}");
    let usage = support::run(&["agent", "--coordinator", &listen, "--watch-only"], Duration::from_secs(10));
    usage.assert_code(2).assert_no_panic();
}

/// `find-limit --workers 2`: each step runs over both workers, merged, and is judged on the
/// whole; the agents stay for every step. Against a sink of 300 req/s capacity, 1,000 req/s
/// breaks; the per-agent figures add up over the steps.
#[test]
fn find_limit_steps_run_over_workers() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (results_path, results) = support::path_in(&dir, "results.json");
    let (_sink, addr) = spawn_sink(&["--capacity", "300"]);
    let url = format!("http://{addr}/");
    let out = support::run(
        &[
            "find-limit",
            &url,
            "--workers",
            "2",
            "--steps",
            "50,1000",
            "--step",
            "2s",
            "--settle",
            "500ms",
            "--cooldown",
            "2s",
            "--no-confirm",
            "--json",
            "-o",
            &results,
        ],
        Duration::from_secs(120),
    );
    out.assert_code(0).assert_no_panic();
    let json = out.json();
    let steps = json["find_limit"]["steps"].as_array().expect("steps");
    let at = |rate: f64| steps.iter().filter(move |s| num(s, "/target_rate") == rate);
    assert!(at(1000.0).all(|s| s["good"] == false), "1,000 req/s breaks a sink of 300: {json}");
    assert!(at(1000.0).count() >= 1, "{json}");
    for step in at(50.0) {
        // Good, or (the one other honest outcome on a machine too busy for pummel itself, where
        // the step is run once more) the generator's own limit.
        let reason = step["reason"].as_str().unwrap_or("");
        assert!(step["good"] == true || reason.starts_with("generator"), "{json}");
    }
    let agents = json["summary"]["agents"].as_array().expect("agents");
    assert_eq!(agents.len(), 2);
    // The agents count every request they sent, settle times included: the whole timeline.
    let per_agent: u64 = agents.iter().map(|a| count(a, "/sent")).sum();
    let document = read_json(&results_path);
    let timeline: u64 = document["timeline"].as_array().expect("timeline").iter().map(|e| count(e, "/sent")).sum();
    assert_eq!(per_agent, timeline, "{json}");
    assert!(count(&json["summary"], "/requests/sent") > 100, "both steps ran over the workers: {json}");
}

/// A plan in phases over workers: the setup runs once, on the coordinator; what it exported
/// is shipped with the load to both workers, whose users (numbered over the whole plan) read
/// each created item exactly once; the teardown runs on the coordinator and deletes them all.
#[test]
fn a_setups_exports_reach_every_agent() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record_path, record) = support::path_in(&dir, "record.jsonl");
    let (_sink, addr) = spawn_sink(&["--echo", "--record", &record]);
    let plan = write_plan(
        &dir,
        "phases.toml",
        r#"
[[scenario]]
name = "create"
phase = "setup"
users = 4
iterations = 5
export = ["item"]
flow = [ { request = { method = "POST", path = "/items", body = "{}", extract = { item = { json = "$.id" } } } } ]

[[scenario]]
name = "read"
users = 20
iterations = 1
flow = [ { request = { path = "/items/{{ item[user] }}", name = "GET /items/:id" } } ]

[[scenario]]
name = "delete"
phase = "teardown"
users = 1
iterations = 1
flow = [ { request = { method = "DELETE", path = "/items?ids={{ item | join(',') }}" } } ]
"#,
    );
    let base = format!("http://{addr}");
    let out = support::run(&["run", &plan, "--base-url", &base, "--workers", "2", "--json"], Duration::from_secs(90));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 20, "the load's own figures: {summary:#}");
    let phases: Vec<&str> = summary["phases"].as_array().expect("phases").iter().map(|p| text(p, "/name")).collect();
    assert_eq!(phases, ["setup", "load", "teardown"]);
    let parts: u64 = summary["agents"].as_array().expect("agents").iter().map(|a| count(a, "/sent")).sum();
    assert_eq!(parts, 20, "the workers ran the load, the coordinator the setup and teardown");
    let records = recorded(&record_path, 41, Duration::from_secs(10));
    let read: BTreeSet<String> = records
        .iter()
        .filter_map(|r| r["target"].as_str())
        .filter_map(|t| t.strip_prefix("/items/"))
        .map(str::to_string)
        .collect();
    assert_eq!(read.len(), 20, "every exported id read once over both workers: {read:?}");
    let deleted: Vec<&str> =
        records.iter().filter_map(|r| r["target"].as_str()).filter_map(|t| t.strip_prefix("/items?ids=")).collect();
    assert_eq!(deleted.len(), 1, "{deleted:?}");
    let deleted: BTreeSet<String> = deleted[0].split(',').map(str::to_string).collect();
    assert_eq!(deleted, read, "the teardown deletes what the setup created and the workers read");
}

/// Ctrl-C at the coordinator of `--workers`: the workers are told to stop (they are in a
/// process group of their own, so the signal is the coordinator's alone), the results are
/// written, marked interrupted, and no worker outlives the run.
#[test]
fn ctrl_c_at_the_coordinator_stops_and_reaps_its_workers() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (results_path, results) = support::path_in(&dir, "results.json");
    let (_sink, addr) = spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let coordinator = support::spawn(&["run", &url, "--workers", "2", "-r", "50", "-d", "30s", "-o", &results], None);
    assert!(coordinator.wait_for_stderr("started", Duration::from_secs(60)), "the run started");
    let children =
        std::process::Command::new("pgrep").args(["-P", &coordinator.pid().to_string()]).output().expect("pgrep");
    let workers: Vec<String> =
        String::from_utf8_lossy(&children.stdout).split_whitespace().map(str::to_string).collect();
    assert_eq!(workers.len(), 2, "two worker processes: {workers:?}");
    std::thread::sleep(Duration::from_secs(1));
    coordinator.signal("INT");
    let out = coordinator.wait(Duration::from_secs(60));
    out.assert_code(130).assert_no_panic();
    let document = read_json(&results_path);
    assert_valid_results(&document);
    assert_eq!(document["summary"]["interrupted"], true);
    assert!(count(&document["summary"], "/requests/sent") > 0);
    for pid in &workers {
        assert!(!std::path::Path::new(&format!("/proc/{pid}")).exists(), "worker {pid} outlived the run");
    }
}

/// The sessions example (seed 004 in small) over two workers: every user's WebSocket session is
/// opened (the `--base-url` given on the command line is where they connect), the active users'
/// requests are answered (the plan's `select: p99` threshold needs some: with a fixed seed and
/// 100 users, about 10 of them are active), and nothing fails.
#[test]
fn the_sessions_example_runs_over_workers() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&[]);
    let base = format!("http://{addr}");
    let plan = crate::support::plans::example("sessions.toml");
    let out = support::run(
        &[
            "run",
            &plan,
            "--base-url",
            &base,
            "-e",
            "users=100",
            "-e",
            "ramp_up=1s",
            "-d",
            "3s",
            "--workers",
            "2",
            "--seed",
            "7",
            "--json",
        ],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/failed"), 0, "{summary:#}");
    assert!(count(&summary, "/requests/ok") > 100, "every session opened, and active users asked: {summary:#}");
    let parts: Vec<u64> = summary["agents"].as_array().expect("agents").iter().map(|a| count(a, "/sent")).collect();
    assert!(parts.iter().all(|&p| p >= 50), "each worker opened its 50 sessions: {parts:?}");
}
