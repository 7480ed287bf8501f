//! No lost writes (issue 13, part 4): requests marked as writes are logged with their outcome,
//! and the `[verify]` phase reads every key back after the load, its faults and a settle time.
//! The stores are the judges: `pummel sink --store --drop-every 50` acknowledges every write and
//! counts the ones it drops, and `lost` must equal that count exactly; a store that keeps
//! everything (Redis behind a gunicorn front, a sink with a store file) must lose nothing through
//! a kill and a restart, its writes during the gap counted as unknown, failed or not sent.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::support::gunicorn::Gunicorn;
use crate::support::plans::{example, write_plan};
use crate::support::redis::Redis;
use crate::support::{self, count, spawn_sink, text};

/// A plan that PUTs `n` keys at `rate`, each its own (`k<user>`, value `v<user>`), and reads
/// them back; `extra` is added at the end (thresholds, faults).
fn put_plan(addr: SocketAddr, rate: u32, n: u32, timeout: &str, extra: &str) -> String {
    r#"
[target]
base_url = "http://ADDR"
timeout = "TIMEOUT"

[[scenario]]
name = "put"
rate = RATE
iterations = N
flow = [ { request = { method = "PUT", path = "/k/{{ user }}", body = "v{{ user }}",
                       write = { key = "{{ user }}", value = "v{{ user }}" } } } ]

[verify]
settle = "200ms"
rate = 2000
request = { path = "/k/{{ key }}" }
"#
    .replace("ADDR", &addr.to_string())
    .replace("TIMEOUT", timeout)
    .replace("RATE", &rate.to_string())
    .replace("N", &n.to_string())
        + extra
}

/// The `writes` section of a `--json` summary.
fn writes(summary: &Value) -> &Value {
    summary.get("writes").unwrap_or_else(|| panic!("no writes in {summary:#}"))
}

/// The number after `label` in a line such as `store holds 980 keys; 1000 writes received, 20
/// dropped`.
fn number_before(line: &str, label: &str) -> u64 {
    let at = line.find(label).unwrap_or_else(|| panic!("no {label:?} in {line:?}"));
    line[..at].split_whitespace().last().and_then(|n| n.parse().ok()).unwrap_or_else(|| panic!("{line:?}"))
}

#[test]
fn a_store_that_drops_one_write_in_50_loses_exactly_what_it_dropped() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "results.json");
    let (sink, addr) = spawn_sink(&["--store", "--drop-every", "50"]);
    let plan =
        write_plan(&dir, "writes.toml", &put_plan(addr, 1000, 1000, "5s", "[thresholds]\nglobal = [\"lost==0\"]\n"));
    let out = support::run(&["run", &plan, "--json", "-o", &results_arg], Duration::from_secs(60));
    out.assert_no_panic().assert_code(1);
    let summary = out.json();
    // A key listed as lost is really not in the store.
    let first_key = summary.pointer("/writes/verify/first_lost/0/key").and_then(Value::as_str).unwrap_or("none");
    let missing = support::http_get(addr, &format!("/k/{first_key}"), Duration::from_secs(2)).unwrap_or_default();
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
    // The store's own count, said when it stops.
    sink.signal("INT");
    let line =
        sink.wait_for_stderr_line("store holds", Duration::from_secs(10)).expect("the sink says what it dropped");
    let dropped = number_before(&line, "dropped");
    assert_eq!(number_before(&line, "writes received"), 1000, "{line}");
    assert_eq!(dropped, 20, "{line}");

    let w = writes(&summary);
    assert_eq!((count(w, "/attempted"), count(w, "/acknowledged"), count(w, "/unknown")), (1000, 1000, 0), "{w:#}");
    let v = &w["verify"];
    assert_eq!(count(v, "/lost"), dropped, "lost is what the store dropped, exactly: {v:#}");
    assert_eq!(count(v, "/verified"), 1000 - dropped, "{v:#}");
    assert_eq!((count(v, "/keys"), count(v, "/read"), count(v, "/unread")), (1000, 1000, 0), "{v:#}");
    assert_eq!((count(v, "/recovered"), count(v, "/unexpected")), (0, 0), "{v:#}");
    assert_eq!(text(v, "/ended"), "completed");
    let first = v["first_lost"].as_array().expect("the lost keys are listed");
    assert_eq!(first.len(), 20);
    assert!(first.iter().all(|k| k["read"] == "missing" && k["writes"]["acknowledged"] == 1), "{first:#?}");
    let keys: Vec<&str> = first.iter().filter_map(|k| k["key"].as_str()).collect();
    assert!(keys.windows(2).all(|pair| pair[0] < pair[1]), "in key order: {keys:?}");
    let verdict = summary["thresholds"].as_array().and_then(|t| t.first()).expect("one threshold");
    assert_eq!((verdict["expr"].as_str(), verdict["pass"].as_bool()), (Some("lost==0"), Some(false)), "{verdict}");
    assert_eq!(verdict["value"].as_f64(), Some(dropped as f64));
    let phases: Vec<&str> = summary["phases"].as_array().unwrap().iter().filter_map(|p| p["name"].as_str()).collect();
    assert_eq!(phases, ["load", "verify"]);

    let document = support::read_json(&results);
    support::assert_valid_results(&document);
    assert_eq!(document["summary"]["writes"], summary["writes"]);
    let report = support::run(&["report", &results_arg, "--format", "md"], Duration::from_secs(30));
    report.assert_code(0);
    assert!(report.stdout.contains("| lost (acknowledged, then missing or wrong) | 20 |"), "{}", report.stdout);
    assert!(report.stdout.contains(&format!("| {} | acknowledged | missing |", keys[0])), "{}", report.stdout);
}

#[test]
fn the_terminal_says_what_was_written_and_what_was_found() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--store", "--drop-every", "100"]);
    let plan = write_plan(&dir, "writes.toml", &put_plan(addr, 1000, 300, "5s", ""));
    let out = support::run(&["run", &plan, "--plain"], Duration::from_secs(60));
    out.assert_no_panic().assert_code(0);
    assert!(out.stdout.contains("-- verify: reading back 300 keys (at most 2000/s, 50 connections)"), "{}", out.stdout);
    assert!(out.stdout.contains("writes      300 attempted: 300 acknowledged, 0 failed, 0 unknown"), "{}", out.stdout);
    assert!(out.stdout.contains("verified 297, lost 3, recovered 0, unexpected 0"), "{}", out.stdout);
    assert!(out.stdout.contains("lost        "), "the first lost keys: {}", out.stdout);
}

/// Over HTTP/2 (h2c), with the body as the value (kept as its hash): the same writes, the same
/// read-back, from the sink's HTTP/2 side of the store.
#[test]
fn writes_over_http2_with_hashed_bodies_are_read_back() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--store", "--drop-every", "40"]);
    let plan = put_plan(addr, 400, 400, "5s", "")
        .replace("timeout = \"5s\"", "timeout = \"5s\"\nhttp_version = \"2\"\nstreams = 10")
        .replace("value = \"v{{ user }}\"", "body = true");
    let plan = write_plan(&dir, "h2.toml", &plan);
    let out = support::run(&["run", &plan, "--json"], Duration::from_secs(60));
    out.assert_no_panic().assert_code(0);
    let summary = out.json();
    let w = writes(&summary);
    let v = &w["verify"];
    assert_eq!(count(w, "/acknowledged"), 400, "{w:#}");
    assert_eq!((count(v, "/lost"), count(v, "/verified")), (10, 390), "{v:#}");
    assert_eq!(count(v, "/unexpected"), 0, "{v:#}");
}

/// Seed 002 in small, as `examples/writes.toml` runs: a store slower than the request timeout
/// at times, so that some writes time out; every one of them landed, and the read-back says so.
#[test]
fn the_example_recovers_the_writes_that_timed_out_and_loses_none() {
    let _load = support::shared();
    let (_sink, addr) = spawn_sink(&["--store", "--delay", "1ms..800ms"]);
    let base = format!("http://{addr}");
    let out = support::run(
        &["run", &example("writes.toml"), "--base-url", &base, "-e", "step=1s", "--json"],
        Duration::from_secs(60),
    );
    out.assert_no_panic().assert_code(0);
    let summary = out.json();
    let w = writes(&summary);
    let v = &w["verify"];
    let (acknowledged, unknown) = (count(w, "/acknowledged"), count(w, "/unknown"));
    assert!(unknown > 0, "some writes timed out: {w:#}");
    assert_eq!(count(w, "/attempted"), acknowledged + unknown + count(w, "/failed"));
    assert_eq!(count(v, "/lost"), 0, "{v:#}");
    assert_eq!(count(v, "/verified"), acknowledged, "every acknowledged write is there, as written: {v:#}");
    assert_eq!(count(v, "/recovered"), unknown, "every write that timed out landed: {v:#}");
    assert_eq!(count(v, "/unexpected"), 0, "{v:#}");
}

/// Redis behind a small HTTP front (gunicorn), the front killed and restarted by a fault in the
/// middle of the writes: Redis keeps what it was given, so nothing acknowledged is lost, and
/// what was in flight or refused during the gap is unknown, failed or not sent.
#[test]
fn redis_behind_a_front_that_is_killed_and_restarted_loses_no_acknowledged_write() {
    let _load = support::exclusive();
    let redis = Redis::start();
    let port = support::free_port();
    let front = Gunicorn::start_kv(2, redis.addr.port(), port);
    let dir = support::temp_dir();
    let fault = format!(
        "\n[[fault]]\nname = \"front\"\nat = \"1500ms\"\nfor = \"500ms\"\nkill = true\nport = {port}\nrestart = '{}'\n\
         \n[thresholds]\nglobal = [\"lost==0\", \"unexpected==0\"]\n",
        front.restart_command()
    );
    let plan = write_plan(
        &dir,
        "redis.toml",
        &put_plan(front.addr, 150, 600, "2s", &fault)
            .replace("/k/", "/items/")
            .replace("method = \"PUT\"", "method = \"POST\""),
    );
    let out = support::run(&["run", &plan, "--json"], Duration::from_secs(120));
    out.assert_no_panic().assert_code(0);
    let summary = out.json();
    let w = writes(&summary);
    let v = &w["verify"];
    let fault = &summary["faults"][0];
    assert!(fault["started_s"].as_f64().is_some() && fault["error"].is_null(), "the fault ran: {fault:#}");
    let (acknowledged, failed, unknown, not_sent) =
        (count(w, "/acknowledged"), count(w, "/failed"), count(w, "/unknown"), count(w, "/not_sent"));
    assert!(failed + unknown + not_sent > 0, "the kill cost some writes: {w:#}");
    assert!(acknowledged > 300, "the front came back: {w:#}");
    assert_eq!(count(v, "/lost"), 0, "{v:#}");
    assert_eq!(count(v, "/verified"), acknowledged, "{v:#}");
    assert_eq!(count(v, "/keys"), 600, "every write has a key, sent or not: {v:#}");
    assert_eq!(count(v, "/unread"), 0, "{v:#}");
    assert!(count(v, "/recovered") <= unknown + failed, "{v:#}");
    // Redis holds exactly the keys found: the verified and the recovered ones.
    let dbsize = support::redis::command(redis.addr, &["DBSIZE"]).expect("redis answers");
    let held: u64 = String::from_utf8_lossy(&dbsize[1..]).trim().parse().expect("an integer reply");
    assert_eq!(held, count(v, "/verified") + count(v, "/recovered"), "{v:#}");
    drop(front);
}

/// `pummel sink` with a store file, killed and restarted by a fault while it holds writes for
/// its delay: the restarted sink reads its file back, so every acknowledged write is there, and
/// the writes of the gap (in flight when it was killed, refused while it was down) are unknown
/// or not sent, never lost; those in flight had been stored, and are recovered.
#[test]
fn a_sink_killed_and_restarted_loses_nothing_and_the_writes_of_the_gap_are_unknown() {
    let _load = support::exclusive();
    let dir = support::temp_dir();
    let (_, store) = support::path_in(&dir, "store.bin");
    let (sink, addr) = spawn_sink(&["--store", "--store-file", &store, "--delay", "150ms"]);
    // The restarted sink stops by itself after 60 s, should this test fail to kill it.
    let restart =
        format!("exec {} sink --listen {addr} --store --store-file {store} --delay 150ms -d 60s", support::PUMMEL);
    let fault = format!(
        "\n[[fault]]\nname = \"sink\"\nat = \"1s\"\nfor = \"300ms\"\nkill = true\nport = {}\nrestart = '{restart}'\n",
        addr.port()
    );
    let plan = write_plan(&dir, "sink.toml", &put_plan(addr, 200, 500, "2s", &fault));
    let out = support::run(&["run", &plan, "--json"], Duration::from_secs(60));
    let restarted = pummel_system::watch::listening_processes(addr.port()).map(|found| found[0].pid);
    if let Ok(pid) = restarted {
        support::kill("TERM", &pid.to_string());
    }
    drop(sink);
    out.assert_no_panic().assert_code(0);
    let summary = out.json();
    let w = writes(&summary);
    let v = &w["verify"];
    let unknown = count(w, "/unknown");
    assert!(unknown > 0, "writes in flight when the sink was killed: {w:#}");
    assert_eq!(count(v, "/lost"), 0, "{v:#}");
    assert_eq!(count(v, "/verified"), count(w, "/acknowledged"), "{v:#}");
    assert!(count(v, "/recovered") > 0, "the sink had stored what it held for its delay: {v:#}");
    assert!(count(v, "/recovered") <= unknown + count(w, "/failed"), "{v:#}");
    assert_eq!(count(v, "/unexpected"), 0, "{v:#}");
}

/// Ctrl-C during the read-back ends it at once: the keys not read are unread, the results are
/// partial, and pummel exits 130. A Ctrl-C during the load skips the read-back.
#[test]
fn ctrl_c_ends_the_read_back_or_skips_it() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (_sink, addr) = spawn_sink(&["--store"]);
    let (results, results_arg) = support::path_in(&dir, "results.json");
    // 1000 writes in a second, read back at 100 a second: ten seconds of reads.
    let plan =
        write_plan(&dir, "slow.toml", &put_plan(addr, 1000, 1000, "5s", "").replace("rate = 2000", "rate = 100"));
    let running = support::spawn(&["run", &plan, "--json", "-o", &results_arg], None);
    assert!(running.wait_for_stderr("-- verify: reading back 1000 keys", Duration::from_secs(30)));
    std::thread::sleep(Duration::from_millis(1500));
    running.signal("INT");
    let out = running.wait(Duration::from_secs(30));
    out.assert_no_panic().assert_code(130);
    let summary = out.json();
    assert_eq!((summary["partial"].as_bool(), summary["interrupted"].as_bool()), (Some(true), Some(true)));
    let v = &writes(&summary)["verify"];
    assert_eq!(text(v, "/ended"), "interrupted");
    assert!(count(v, "/unread") > 500, "the keys not read yet: {v:#}");
    assert_eq!(count(v, "/read") + count(v, "/unread"), 1000);
    assert_eq!(count(v, "/lost"), 0);
    support::assert_valid_results(&support::read_json(&results));

    // Interrupted during the load: no read-back.
    let plan = write_plan(&dir, "long.toml", &put_plan(addr, 100, 100_000, "5s", ""));
    let running = support::spawn(&["run", &plan, "--json"], None);
    std::thread::sleep(Duration::from_millis(1500));
    running.signal("INT");
    let out = running.wait(Duration::from_secs(30));
    out.assert_no_panic().assert_code(130);
    let summary = out.json();
    let w = writes(&summary);
    assert_eq!(text(w, "/not_verified"), "interrupted before the read-back", "{w:#}");
    assert!(w.get("verify").is_none());
    assert!(count(w, "/acknowledged") > 50, "{w:#}");
}

/// Mistakes are pointed at in the file: a write without a key, a `[verify]` with nothing to
/// read back, a rule on `lost` without a read-back, a write in a setup (the rest of them in
/// `pummel-plan`'s own tests).
#[test]
fn plan_mistakes_about_writes_are_errors_at_their_place() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let no_key = write_plan(
        &dir,
        "no-key.toml",
        r#"[target]
base_url = "http://127.0.0.1:1"

[[scenario]]
rate = 10
duration = "1s"
flow = [ { request = { method = "PUT", path = "/k", write = { value = "v" } } } ]
"#,
    );
    let out = support::run(&["check", &no_key], Duration::from_secs(30));
    out.assert_code(2);
    assert!(out.stderr.contains("no-key.toml:7:61: error: `write` has no `key`"), "{}", out.stderr);

    let nothing = write_plan(
        &dir,
        "nothing.toml",
        r#"[target]
base_url = "http://127.0.0.1:1"

[[scenario]]
rate = 10
duration = "1s"
flow = [ { request = { path = "/k" } } ]

[verify]
request = { path = "/k/{{ key }}" }

[thresholds]
global = ["lost==0"]
"#,
    );
    let out = support::run(&["check", &nothing], Duration::from_secs(30));
    out.assert_code(2);
    assert!(
        out.stderr.contains("nothing.toml:9:2: error: [verify] reads back writes, and the load writes none"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("nothing.toml:13:11: error: lost reads the read-back"), "{}", out.stderr);

    let no_verify = write_plan(
        &dir,
        "no-verify.toml",
        r#"[target]
base_url = "http://127.0.0.1:1"

[[scenario]]
name = "seed"
phase = "setup"
iterations = 1
users = 1
flow = [ { request = { method = "PUT", path = "/s", write = { key = "s" } } } ]

[[scenario]]
rate = 10
duration = "1s"
flow = [ { request = { method = "PUT", path = "/k/{{ user }}", write = { key = "{{ user }}" } } } ]

[thresholds]
global = ["recovered>0"]
"#,
    );
    let out = support::run(&["check", &no_verify], Duration::from_secs(30));
    out.assert_code(2);
    assert!(out.stderr.contains("error: a setup scenario's request cannot be a write"), "{}", out.stderr);
    assert!(
        out.stderr.contains("error: recovered reads the read-back of the writes, and the plan has no [verify]"),
        "{}",
        out.stderr
    );

    // On the command line too: a quick run has no writes, a plan without [verify] no read-back.
    let quick = support::run(&["run", "http://127.0.0.1:1/", "--threshold", "lost==0"], Duration::from_secs(30));
    quick.assert_code(2);
    assert!(
        quick.stderr.contains("--threshold lost==0: lost reads the read-back of a plan's writes"),
        "{}",
        quick.stderr
    );

    let good = support::run(&["check", &example("writes.toml")], Duration::from_secs(30));
    good.assert_code(0);
    assert!(
        good.stdout.contains("verify: GET http://127.0.0.1:8090/items/{{ key }} per key written"),
        "{}",
        good.stdout
    );
}
