//! `pummel hold`: many held connections, seen from both sides — pummel's timeline and the
//! target's own view (`pummel watch` of its PID, its `--stats` lines, /proc/net/tcp). Targets:
//! `pummel sink` and nginx (an independent server; the test fails, saying to install it, when
//! it is missing). Also `--source-addrs`, and the 30,000-connection run that needs them.

use std::collections::BTreeMap;
use std::net::Ipv4Addr;
use std::path::Path;
use std::time::Duration;

use serde_json::Value;

use crate::support;
use crate::support::nginx::Nginx;

/// `pummel watch --pid PID --json` for `duration`: the target's ESTABLISHED count per sample.
fn watch_established(pid: u32, duration: &str) -> Vec<u64> {
    let pid = pid.to_string();
    let out = support::run(&["watch", "--pid", &pid, "--duration", duration, "--json"], Duration::from_secs(20));
    out.assert_code(0);
    out.stdout
        .lines()
        .map(|line| {
            let sample: Value = serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}"));
            support::count(&sample, "/tcp/established")
        })
        .collect()
}

/// The timeline of a results file, and a per-second column of it.
fn timeline(results: &Path) -> Vec<Value> {
    let document = support::read_json(results);
    document.pointer("/timeline").and_then(Value::as_array).cloned().expect("a timeline")
}

fn column(timeline: &[Value], name: &str) -> Vec<u64> {
    timeline.iter().map(|e| support::count(e, &format!("/{name}"))).collect()
}

/// Holds 2,000 idle connections to `url` for 6 s (long enough for a 2 s watch that starts once
/// all are held, even on a loaded machine): pummel's timeline and the watch of the
/// target's PID both see 2,000 established.
fn hold_2000_idle(url: &str, target_pid: u32) {
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "hold.json");
    let hold = support::spawn(
        &["hold", url, "-c", "2000", "--open-rate", "4000/s", "-d", "6s", "--json", "-o", &results_arg],
        None,
    );
    assert!(hold.wait_for_stderr("held=2000/2000", Duration::from_secs(10)), "2,000 connections were not held in time");
    let established = watch_established(target_pid, "2s");
    let out = hold.wait(Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();

    assert!(!established.is_empty(), "the watch printed no sample");
    // The 2,000 held, plus at most a few short-lived ones (the readiness check of the target,
    // on a loaded machine still closing when the watch samples).
    assert!(
        established.iter().all(|&n| (2000..=2005).contains(&n)),
        "the target should see 2,000 established connections, saw {established:?}"
    );
    let summary = out.json();
    assert_eq!(support::count(&summary, "/requests/ok"), 2000, "one answered request per connection");
    assert_eq!(support::count(&summary, "/connect_ms/count"), 2000);
    support::assert_valid_results(&support::read_json(&results));
    let timeline = timeline(&results);
    assert_eq!(column(&timeline, "connections").into_iter().max(), Some(2000));
    assert_eq!(column(&timeline, "connections_opened").iter().sum::<u64>(), 2000);
    assert_eq!(column(&timeline, "closed_by_peer").iter().sum::<u64>(), 0);
}

#[test]
fn hold_holds_2000_idle_connections_to_the_sink() {
    let _load = support::exclusive();
    let (sink, addr) = support::spawn_sink(&[]);
    hold_2000_idle(&format!("http://{addr}/"), sink.pid());
}

#[test]
fn hold_holds_2000_idle_connections_to_nginx() {
    let _load = support::exclusive();
    let nginx = Nginx::start();
    hold_2000_idle(&format!("http://{}/", nginx.addr), nginx.process.0.id());
}

/// The seed's scenario in small: a slow listener answering after 5 s, 500 pending requests.
#[test]
fn hold_pending_waits_for_answers_the_target_holds() {
    let _load = support::exclusive();
    let (sink, addr) = support::spawn_sink(&["--delay", "5s"]);
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "pending.json");
    let url = format!("http://{addr}/");
    let hold = support::spawn(
        &[
            "hold",
            &url,
            "--mode",
            "pending",
            "-c",
            "500",
            "--open-rate",
            "2000/s",
            "-d",
            "8s",
            "--json",
            "-o",
            &results_arg,
        ],
        None,
    );
    assert!(hold.wait_for_stderr("held=500/500", Duration::from_secs(10)), "500 connections were not held in time");
    let established = watch_established(sink.pid(), "2s");
    let out = hold.wait(Duration::from_secs(40));
    out.assert_code(0).assert_no_panic();

    assert!(established.iter().all(|&n| n == 500), "the sink should hold 500 connections, saw {established:?}");
    let timeline = timeline(&results);
    let completed = column(&timeline, "completed");
    let connections = column(&timeline, "connections");
    let waiting = column(&timeline, "in_flight");
    let shown = format!("completed {completed:?}\nconnections {connections:?}\nin flight {waiting:?}");
    // Seconds 2-4: all 500 established and waiting, nothing answered yet.
    for second in 1..4 {
        assert_eq!(completed[second], 0, "nothing may complete before the delay\n{shown}");
        assert_eq!(connections[second], 500, "{shown}");
        assert_eq!(waiting[second], 500, "{shown}");
    }
    assert_eq!(completed[0], 0, "{shown}");
    // The answers arrive after the 5 s delay; the connections stay open (keep-alive).
    assert_eq!(completed.iter().sum::<u64>(), 500, "{shown}");
    assert_eq!(completed[..4].iter().sum::<u64>(), 0, "{shown}");
    assert_eq!(connections.last(), Some(&500), "{shown}");
    assert_eq!(waiting.last(), Some(&0), "{shown}");
    let summary = out.json();
    assert_eq!(support::count(&summary, "/requests/ok"), 500);
    assert_eq!(support::count(&summary, "/requests/unanswered"), 0);
    assert!(support::num(&summary, "/latency_ms/p50") >= 4900.0, "latency includes the 5 s delay");
}

/// Slow requests keep the sink's connections open without it ever receiving a request.
#[test]
fn hold_slow_request_never_completes_a_request() {
    let _load = support::shared();
    let (sink, addr) = support::spawn_sink(&["--stats", "500ms"]);
    let url = format!("http://{addr}/");
    let out = support::run(
        &["hold", &url, "--mode", "slow-request", "-c", "200", "--drip", "100ms", "-d", "3s", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0).assert_no_panic();
    sink.signal("INT");
    let sink_out = sink.wait(Duration::from_secs(10));

    let summary = out.json();
    assert_eq!(support::count(&summary, "/requests/sent"), 200);
    // Never answered: each ends as a failure of kind `unanswered` when the run stops.
    assert_eq!(support::count(&summary, "/requests/ok"), 0);
    assert_eq!(support::count(&summary, "/requests/unanswered"), 200);
    assert_eq!(support::count(&summary, "/errors/unanswered"), 200);
    // The sink's own counters: `Received N Rate R r/s open connections M`.
    let lines: Vec<(u64, u64)> = sink_out
        .stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            match words.as_slice() {
                ["Received", n, "Rate", _, "r/s", "open", "connections", m] => Some((n.parse().ok()?, m.parse().ok()?)),
                _ => None,
            }
        })
        .collect();
    assert!(!lines.is_empty(), "the sink printed no stats:\n{}", sink_out.stdout);
    assert!(lines.iter().all(|&(received, _)| received == 0), "the sink received requests:\n{}", sink_out.stdout);
    assert_eq!(lines.iter().map(|&(_, open)| open).max(), Some(200), "{}", sink_out.stdout);
}

/// The remote addresses of the established connections to `port` (from /proc/net/tcp).
fn peers_of(port: u16) -> BTreeMap<Ipv4Addr, u64> {
    let table = std::fs::read_to_string("/proc/net/tcp").expect("read /proc/net/tcp");
    let mut peers = BTreeMap::new();
    for line in table.lines().skip(1) {
        let fields: Vec<&str> = line.split_whitespace().collect();
        let (Some(local), Some(remote), Some(&"01")) = (fields.get(1), fields.get(2), fields.get(3)) else {
            continue;
        };
        let local_port = local.split(':').nth(1).and_then(|p| u16::from_str_radix(p, 16).ok());
        let remote_ip = remote.split(':').next().and_then(|ip| u32::from_str_radix(ip, 16).ok());
        if let (Some(p), Some(ip)) = (local_port, remote_ip) {
            if p == port {
                // The kernel prints the address as the u32 it keeps in network order.
                *peers.entry(Ipv4Addr::from(ip.to_le_bytes())).or_default() += 1;
            }
        }
    }
    peers
}

#[test]
fn hold_source_addrs_spread_connections_over_local_addresses() {
    let _load = support::shared();
    let (_sink, addr) = support::spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let hold = support::spawn(
        &["hold", &url, "-c", "40", "-d", "60s", "--source-addrs", "127.0.0.2-127.0.0.3", "--plain"],
        None,
    );
    // --plain progress goes to stdout; wait for the connections through the sink's side.
    let peers = wait_for(|| Some(peers_of(addr.port())).filter(|p| p.values().sum::<u64>() == 40));
    let out = interrupt(hold);
    let expected: BTreeMap<Ipv4Addr, u64> =
        [(Ipv4Addr::new(127, 0, 0, 2), 20), (Ipv4Addr::new(127, 0, 0, 3), 20)].into();
    assert_eq!(peers, Some(expected), "connections should come from 127.0.0.2 and .3 in turn\n{}", out.stdout);
}

#[test]
fn hold_spreads_connections_over_several_urls() {
    let _load = support::shared();
    let (_first, first) = support::spawn_sink(&[]);
    let (_second, second) = support::spawn_sink(&[]);
    let (first_url, second_url) = (format!("http://{first}/"), format!("http://{second}/"));
    let hold = support::spawn(&["hold", &first_url, &second_url, "-c", "40", "-d", "60s", "--plain"], None);
    let held = |port: u16| peers_of(port).values().sum::<u64>();
    let counts = wait_for(|| Some((held(first.port()), held(second.port()))).filter(|c| *c == (20, 20)));
    let out = interrupt(hold);
    assert_eq!(counts, Some((20, 20)), "40 connections should be spread over both targets\n{}", out.stdout);
}

/// Polls `seen` until it gives a value, for at most 30 s (a busy machine may take a while to
/// start the run): `None` when it never did.
fn wait_for<T>(mut seen: impl FnMut() -> Option<T>) -> Option<T> {
    let deadline = std::time::Instant::now() + Duration::from_secs(30);
    while std::time::Instant::now() < deadline {
        if let Some(value) = seen() {
            return Some(value);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Ends a hold that was given more time than the test needs: SIGINT, exit 130, no panic.
fn interrupt(hold: support::Running) -> support::Output {
    hold.signal("INT");
    let out = hold.wait(Duration::from_secs(30));
    out.assert_code(130).assert_no_panic();
    out
}

/// 30,000 held connections: more than the ephemeral ports of one source address to one
/// destination (~28k), so `--source-addrs` spreads them over two. Needs a hard fd limit above
/// 30,000 for pummel and for the sink (each process its own).
#[test]
fn hold_30000_connections_with_two_source_addresses() {
    const HELD: u64 = 30_000;
    /// Each process needs its connections plus a reserve for the runtime and stdio.
    const NEEDED: u64 = HELD + 1024;
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("read RLIMIT_NOFILE");
    if hard < NEEDED {
        eprintln!(
            "skipped: hard fd limit {hard} < {NEEDED} (pummel hold and the sink each need {HELD} descriptors); \
             raise it with `ulimit -Hn` or /etc/security/limits.conf"
        );
        return;
    }
    let file_max: u64 = std::fs::read_to_string("/proc/sys/fs/file-max")
        .ok()
        .and_then(|text| text.trim().parse().ok())
        .unwrap_or(u64::MAX);
    if file_max < 2 * NEEDED {
        eprintln!("skipped: fs.file-max {file_max} < {} (both ends of {HELD} connections)", 2 * NEEDED);
        return;
    }
    let _load = support::exclusive();
    let (_sink, addr) = support::spawn_sink(&[]);
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "30k.json");
    let url = format!("http://{addr}/");
    let held = HELD.to_string();
    let out = support::run(
        &[
            "hold",
            &url,
            "-c",
            &held,
            "--open-rate",
            "10000/s",
            "-d",
            "8s",
            "--source-addrs",
            "127.0.0.2-127.0.0.3",
            "--json",
            "-o",
            &results_arg,
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(summary.pointer("/errors"), Some(&serde_json::json!({})), "no connection may fail");
    let timeline = timeline(&results);
    assert_eq!(column(&timeline, "connections").into_iter().max(), Some(HELD));
}

#[test]
fn hold_rejects_bad_usage_with_exit_2() {
    let _load = support::shared();
    let url = format!("http://127.0.0.1:{}/", support::free_port());
    let cases: [&[&str]; 10] = [
        &["hold", &url, "--mode", "nope"],
        &["hold", &url, "-c", "0"],
        &["hold", &url, "--open-rate", "0"],
        &["hold", &url, "--drip", "0s"],
        &["hold", &url, "--mode", "ws", "-m", "POST"],
        &["hold", &url, "--source-addrs", "127.0.0.9-127.0.0.2"],
        &["hold", &url, "--source-addrs", "nope"],
        // TEST-NET-1: not an address of this machine.
        &["hold", &url, "--source-addrs", "192.0.2.1"],
        &["hold"],
        &["run", &url, "-n", "1", "--source-addrs", "127.0.0.2,::1"],
    ];
    for args in cases {
        let out = support::run(args, Duration::from_secs(10));
        assert_eq!(out.code, Some(2), "pummel {args:?} should exit 2\n--- stderr:\n{}", out.stderr);
        assert!(!out.stderr.contains("panicked"), "{}", out.stderr);
    }
}

/// `hold --mode ws` against the sink's WebSocket echo: 200 sessions upgraded, pinged and held
/// for 3 s, seen on both sides (pummel's summary, the sink's own WebSocket counters).
#[test]
fn hold_ws_holds_200_websocket_sessions_to_the_sink() {
    let _load = support::shared();
    let (sink, addr) = support::spawn_sink(&["--stats", "500ms"]);
    let url = format!("http://{addr}/ws");
    let out = support::run(
        &["hold", &url, "--mode", "ws", "-c", "200", "--drip", "500ms", "-d", "3s", "--json"],
        Duration::from_secs(30),
    );
    out.assert_code(0).assert_no_panic();
    sink.signal("INT");
    let sink_out = sink.wait(Duration::from_secs(10));

    let summary = out.json();
    assert_eq!(support::count(&summary, "/requests/ok"), 200, "every upgrade answered 101");
    assert_eq!(support::count(&summary, "/requests/failed"), 0);
    // The sink's stats lines end with `WebSocket sessions N open M messages in I out O`.
    let open: Vec<u64> = sink_out
        .stdout
        .lines()
        .filter_map(|line| {
            let words: Vec<&str> = line.split_whitespace().collect();
            let at = words.iter().position(|w| *w == "WebSocket")?;
            match &words[at..] {
                ["WebSocket", "sessions", total, "open", open, ..] => {
                    assert_eq!(*total, "200", "{line}");
                    open.parse().ok()
                }
                _ => None,
            }
        })
        .collect();
    assert!(!open.is_empty(), "the sink printed no WebSocket stats:\n{}", sink_out.stdout);
    assert_eq!(open.iter().max(), Some(&200), "{}", sink_out.stdout);
    assert!(
        sink_out.stderr.contains("pummel sink: 200 WebSocket sessions"),
        "the sink's summary:\n{}",
        sink_out.stderr
    );
}

/// `hold` ends with its own summary: connections held, opened, failed to open (by kind) and
/// closed by the target, no request rate (a hold sends one request per connection); `run`
/// against the same target does print its rate. Against a port where nothing listens, every
/// connection fails to open, by kind.
#[test]
fn hold_summary_counts_connections_not_a_rate() {
    let _load = support::shared();
    let (_sink, addr) = support::spawn_sink(&[]);
    let url = format!("http://{addr}/");
    let out =
        support::run(&["hold", &url, "-c", "20", "--mode", "idle", "-d", "2s", "--plain"], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    let summary = out.stdout.split("Hold summary").nth(1).unwrap_or_else(|| panic!("no hold summary:\n{}", out.stdout));
    assert!(summary.contains("held 20 of 20 wanted (at most)  opened 20  failed to open 0"), "{summary}");
    assert!(summary.contains("closed by the target 0"), "{summary}");
    assert!(summary.contains("answered ok 20"), "{summary}");
    assert!(!out.stdout.contains("req/s successful"), "{}", out.stdout);

    let run = support::run(&["run", &url, "-c", "2", "-d", "1s"], Duration::from_secs(30));
    run.assert_code(0);
    assert!(run.stdout.contains("req/s successful"), "run shows its rate:\n{}", run.stdout);

    let nothing = format!("http://127.0.0.1:{}/", support::free_port());
    let out = support::run(&["hold", &nothing, "-c", "5", "-d", "1s", "--plain"], Duration::from_secs(30));
    out.assert_no_panic();
    let summary = out.stdout.split("Hold summary").nth(1).unwrap_or_else(|| panic!("no hold summary:\n{}", out.stdout));
    assert!(summary.contains("held 0 of 5 wanted (at most)  opened 0  failed to open 5"), "{summary}");
    assert!(summary.contains("failed to open  connect_refused 5"), "{summary}");
}
