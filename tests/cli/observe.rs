//! Observers beside the load: probes (OK/NOK on a fresh connection every interval, a number
//! from a JSON body) and the target process watched through /proc.

use std::thread;
use std::time::Duration;

use crate::support::{self, Sink, assert_valid_results, count, free_port, num, path_in, read_json, spawn, temp_dir};

/// A probe turns NOK while the target is stopped (SIGSTOP for 2 s) and OK again after SIGCONT.
#[test]
fn probe_turns_nok_while_the_target_is_stopped() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let dir = temp_dir();
    let (path, path_arg) = path_in(&dir, "probe.json");
    let url = sink.url("/");
    let run = spawn(
        &[
            "run",
            &url,
            "-r",
            "20",
            "-d",
            "6s",
            "--probe",
            &url,
            "--probe-every",
            "500ms",
            "--timeout",
            "1s",
            "--plain",
            "-o",
            &path_arg,
        ],
        None,
    );
    thread::sleep(Duration::from_millis(1500));
    sink.signal("STOP");
    thread::sleep(Duration::from_secs(2));
    sink.signal("CONT");
    let out = run.wait(Duration::from_secs(30));
    out.assert_no_panic();
    let doc = read_json(&path);
    assert_valid_results(&doc);
    let samples: Vec<(u64, bool)> = doc["timeline"]
        .as_array()
        .expect("timeline")
        .iter()
        .flat_map(|e| {
            let second = e["second"].as_u64().unwrap_or(0);
            e["probes"].as_array().cloned().unwrap_or_default().into_iter().map(move |p| (second, p["ok"] == true))
        })
        .collect();
    let first_nok = samples.iter().position(|(_, ok)| !ok).expect("a NOK probe while the target is stopped");
    assert!(samples[..first_nok].iter().any(|(_, ok)| *ok), "OK before the stop: {samples:?}");
    assert!(samples[first_nok..].iter().any(|(_, ok)| *ok), "OK again after SIGCONT: {samples:?}");
    let probes = &doc["summary"]["probes"][0];
    let (sent, ok) = (count(probes, "/sent"), count(probes, "/ok"));
    assert!(sent >= 8 && ok < sent && ok > 0, "probe totals: {ok}/{sent}");
    assert!(out.stdout.contains("NOK"), "the per-second lines show the NOK probes");
}

/// `--probe-json` records the number at a JSON path; a body without it is NOK. The sink's body
/// is `ok\n`, not JSON: every probe is NOK, which `probe_ok>=99%` turns into exit 1.
#[test]
fn probe_json_without_a_number_is_nok_and_fails_probe_ok() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let url = sink.url("/");
    let probe = format!("{url}#$.queue.size");
    let out = support::run(
        &[
            "run",
            &url,
            "-n",
            "200",
            "-c",
            "2",
            "-d",
            "2s",
            "--probe-json",
            &probe,
            "--threshold",
            "probe_ok>=99%",
            "--json",
        ],
        Duration::from_secs(20),
    );
    out.assert_code(1);
    let summary = out.json();
    assert_eq!(count(&summary, "/probes/0/ok"), 0);
    assert!(count(&summary, "/probes/0/sent") >= 1);
    assert_eq!(summary["thresholds"][0]["pass"], false);
}

/// A probe of a healthy target passes `probe_ok>=99%`.
#[test]
fn healthy_probe_passes_probe_ok() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let url = sink.url("/");
    let out = support::run(
        &[
            "run",
            &url,
            "-d",
            "2s",
            "-c",
            "2",
            "--probe",
            &url,
            "--probe-expect",
            "body contains ok",
            "--threshold",
            "probe_ok>=99%",
            "--json",
        ],
        Duration::from_secs(20),
    );
    out.assert_code(0);
    let summary = out.json();
    assert!(count(&summary, "/probes/0/sent") >= 2);
    assert_eq!(num(&summary, "/probes/0/ok_rate"), 1.0);
}

/// `--watch-pid`: the target's established sockets follow the connections pummel holds.
#[test]
fn watch_pid_sees_the_connections() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let pid = sink.pid().to_string();
    let dir = temp_dir();
    let (path, path_arg) = path_in(&dir, "watch.json");
    let out = support::run(
        &["run", &sink.url("/"), "-c", "40", "-t", "1", "-d", "3s", "--watch-pid", &pid, "--plain", "-o", &path_arg],
        Duration::from_secs(30),
    );
    out.assert_code(0);
    let doc = read_json(&path);
    assert_valid_results(&doc);
    let peak = count(&doc, "/summary/target/peak_established");
    assert!((38..=42).contains(&peak), "the sink held {peak} established connections, pummel opened 40");
    let sampled = doc["timeline"].as_array().expect("timeline").iter().filter(|e| e["target"].is_object()).count();
    assert!(sampled >= 3, "{sampled} seconds carry a target sample");
    let fds = doc["timeline"].as_array().expect("timeline").iter().filter_map(|e| e["target"]["open_fds"].as_u64());
    assert!(fds.max().is_some_and(|n| n >= 40), "the sink had an fd per connection");
    assert!(out.stdout.contains("established="), "the per-second lines show the target");
}

/// `--watch-port`: every second of the timeline holds its own sample of the target (taken when
/// the collector closes the second), and the summary's peaks are those of the timeline's samples.
#[test]
fn every_second_has_its_target_sample_and_the_peaks_are_theirs() {
    let _load = support::exclusive();
    let sink = Sink::start(&[]);
    let port = sink.addr.port().to_string();
    let dir = temp_dir();
    let (path, path_arg) = path_in(&dir, "watch.json");
    let out = support::run(
        &["run", &sink.url("/"), "-c", "300", "-d", "3s", "--watch-port", &port, "--plain", "-o", &path_arg],
        Duration::from_secs(60),
    );
    out.assert_code(0);
    let doc = read_json(&path);
    assert_valid_results(&doc);
    let timeline = doc["timeline"].as_array().expect("timeline");
    assert!(timeline.len() >= 3, "{} seconds", timeline.len());
    let missing: Vec<u64> =
        timeline.iter().filter(|e| !e["target"].is_object()).filter_map(|e| e["second"].as_u64()).collect();
    assert!(missing.is_empty(), "seconds without a target sample: {missing:?}; {}", out.stdout);
    let target = &doc["summary"]["target"];
    assert_eq!(count(target, "/samples"), timeline.len() as u64);
    assert_eq!(count(target, "/watch_gaps"), 0);
    let peak = |pointer: &str| timeline.iter().filter_map(|e| e["target"].pointer(pointer)?.as_u64()).max();
    assert_eq!(Some(count(target, "/peak_established")), peak("/tcp/established"));
    assert_eq!(Some(count(target, "/peak_close_wait")), peak("/tcp/close_wait"));
    assert_eq!(Some(count(target, "/peak_open_fds")), peak("/open_fds"));
    assert!(peak("/tcp/established").is_some_and(|n| n >= 290), "the sink held pummel's 300 connections");
    let elapsed: Vec<u64> = timeline.iter().filter_map(|e| e["target"]["elapsed_ms"].as_u64()).collect();
    assert!(elapsed.windows(2).all(|w| w[1] > w[0]), "one sample per second, none repeated: {elapsed:?}");
}

/// Watching something that is not there is a clear error before the run: exit 3.
#[test]
fn watching_nothing_exits_3() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let port = free_port().to_string();
    let out = support::run(&["run", &sink.url("/"), "-d", "1s", "--watch-port", &port], Duration::from_secs(20));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("watch"), "{}", out.stderr);
}

/// Holds 50 idle connections to `url` for 3 s, watching the listener of `port`: the per-second
/// lines, the summary text and the results' summary.target.
fn hold_watched(url: &str, port: u16) -> (String, serde_json::Value) {
    let dir = temp_dir();
    let (path, path_arg) = path_in(&dir, "hold.json");
    let port = port.to_string();
    let out = support::run(
        &["hold", url, "-c", "50", "--mode", "idle", "-d", "3s", "--watch-port", &port, "--plain", "-o", &path_arg],
        Duration::from_secs(60),
    );
    out.assert_no_panic().assert_code(0);
    let doc = read_json(&path);
    assert_valid_results(&doc);
    (out.stdout, doc)
}

/// The accept queue of a listener that never accepts fills with held connections, and shows in
/// the per-second lines, the summary and summary.target; the sink, which accepts, has none.
#[test]
fn a_full_accept_queue_is_shown() {
    let _load = support::shared();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("a listener");
    let addr = listener.local_addr().expect("its address");
    let (stdout, doc) = hold_watched(&format!("http://{addr}/"), addr.port());
    let target = &doc["summary"]["target"];
    let peak = count(target, "/peak_accept_queue");
    // This test process's other listeners may add a few, never take any away.
    assert!(peak >= 45, "50 connections wait to be accepted, the watch saw {peak}: {target:#}");
    assert!(target["listen_overflows"].is_u64(), "known on Linux: {target:#}");
    let seconds = doc["timeline"].as_array().expect("timeline");
    let queued = seconds.iter().filter_map(|e| e["target"]["accept_queue"].as_u64()).max();
    assert_eq!(queued, Some(peak), "the peak is a second's");
    let line = stdout.lines().find(|l| l.starts_with("t=2s")).unwrap_or_default();
    assert!(line.contains(" accept_queue=") && line.contains(" listen_overflows="), "{line}");
    assert!(stdout.contains(&format!("peak accept queue {peak}")), "{stdout}");
    drop(listener);

    let sink = Sink::start(&[]);
    let (stdout, doc) = hold_watched(&sink.url("/"), sink.addr.port());
    assert_eq!(count(&doc, "/summary/target/peak_accept_queue"), 0, "the sink accepts at once");
    assert!(stdout.contains("peak accept queue 0"), "{stdout}");
}
