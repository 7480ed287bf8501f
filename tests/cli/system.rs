//! `pummel doctor` and `pummel watch` on this machine: doctor's verdict and exit code, also
//! under a lowered open-file limit; the watch of a `pummel sink` that holds connections this
//! test opened, found by PID and by port; and the ends of a watch (a PID that does not exist,
//! a target that exits).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::{self, ChildGuard, PUMMEL};

/// Connections the watch test holds to the sink.
const HELD: u64 = 50;

/// A PID no process has (above the kernel's pid_max).
const NO_SUCH_PID: &str = "2147483647";

/// Opens `count` keep-alive connections to `addr`, each with one request answered.
fn hold_connections(addr: SocketAddr, count: u64) -> Vec<TcpStream> {
    let mut held = Vec::new();
    for _ in 0..count {
        let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).expect("connect to the sink");
        stream.write_all(b"GET / HTTP/1.1\r\nHost: test\r\n\r\n").expect("write a request");
        held.push(stream);
    }
    for stream in &mut held {
        stream.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
        let mut answer = [0u8; 256];
        let n = stream.read(&mut answer).expect("the sink answers");
        assert!(answer[..n].starts_with(b"HTTP/1.1 200"), "{:?}", String::from_utf8_lossy(&answer[..n]));
    }
    held
}

/// The JSON lines `pummel watch --json` printed.
fn samples(stdout: &str) -> Vec<Value> {
    stdout
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}")))
        .collect()
}

/// Runs `bash -c script` (with `$0` = the pummel binary), at most `limit`.
fn bash(script: &str, limit: Duration) -> support::Output {
    let mut command = Command::new("bash");
    command.args(["-c", script, PUMMEL]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::piped());
    let started = Instant::now();
    let mut child = ChildGuard(command.spawn().expect("start bash"));
    let mut stdout = child.0.stdout.take().expect("piped stdout");
    let mut stderr = child.0.stderr.take().expect("piped stderr");
    let out_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let err_reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let status = loop {
        match child.0.try_wait().expect("wait for bash") {
            Some(status) => break status,
            None if started.elapsed() > limit => panic!("bash -c {script:?} did not finish within {limit:?}"),
            None => thread::sleep(Duration::from_millis(10)),
        }
    };
    support::Output {
        code: status.code(),
        stdout: out_reader.join().unwrap_or_default(),
        stderr: err_reader.join().unwrap_or_default(),
        elapsed: started.elapsed(),
    }
}

#[test]
fn doctor_judges_this_machine() {
    let _load = support::shared();
    let out = support::run(&["doctor"], Duration::from_secs(20));
    out.assert_no_panic();
    assert!(matches!(out.code, Some(0 | 1)), "exit {:?}\n{}\n{}", out.code, out.stdout, out.stderr);
    for expected in ["open files (this shell) = soft ", "net.ipv4.ip_local_port_range = ", "net.core.somaxconn = "] {
        assert!(out.stdout.contains(expected), "no {expected:?} in\n{}", out.stdout);
    }
    assert!(out.stdout.lines().last().is_some_and(|line| line.contains(" FAIL, ")), "{}", out.stdout);

    let out = support::run(&["doctor", "--json", "--connections", "100"], Duration::from_secs(20));
    let report = out.json();
    let checks = report["checks"].as_array().expect("checks");
    assert!(checks.len() >= 7, "{report:#}");
    for check in checks {
        assert!(matches!(check["status"].as_str(), Some("ok" | "warn" | "fail")), "{check:#}");
        assert!(!support::text(check, "/limits").is_empty());
    }
    let fails = checks.iter().any(|c| c["status"] == "fail");
    assert_eq!(report["will_limit"], fails);
    out.assert_code(if fails { 1 } else { 0 });
}

#[test]
fn doctor_names_a_lowered_open_file_limit() {
    let _load = support::shared();
    let out = bash(r#"ulimit -n 256 && exec "$0" doctor --connections 1000"#, Duration::from_secs(20));
    out.assert_no_panic().assert_code(1);
    assert!(out.stdout.contains("FAIL  open files (this shell) = soft 256, hard 256"), "{}", out.stdout);
    assert!(out.stdout.contains("1000 connections need 1064 open files"), "{}", out.stdout);
    assert!(out.stdout.contains("fix:   ulimit -n 1048576"), "{}", out.stdout);
    assert!(out.stdout.contains("open files (this shell) will limit a test of 1000 connections"), "{}", out.stdout);

    let out = bash(r#"ulimit -n 256 && exec "$0" doctor --connections 1000 --json"#, Duration::from_secs(20));
    out.assert_code(1);
    let report = out.json();
    assert_eq!(report["checks"][0]["id"], "open_files");
    assert_eq!(report["checks"][0]["status"], "fail");
    assert_eq!(report["will_limit"], true);
}

#[test]
fn doctor_checks_a_target_process() {
    let _load = support::shared();
    let (sink, _addr) = support::spawn_sink(&[]);
    let pid = sink.pid().to_string();
    let out = support::run(&["doctor", "--pid", &pid, "--json"], Duration::from_secs(20));
    out.assert_no_panic();
    let report = out.json();
    assert_eq!(report["target"]["pid"].as_u64(), Some(u64::from(sink.pid())));
    let ids: Vec<&str> = report["checks"].as_array().unwrap().iter().filter_map(|c| c["id"].as_str()).collect();
    assert!(ids.contains(&"target.open_files") && ids.contains(&"target.processes"), "{ids:?}");

    let out = support::run(&["doctor", "--pid", NO_SUCH_PID], Duration::from_secs(20));
    out.assert_code(3);
    assert!(out.stderr.contains("no process with PID"), "{}", out.stderr);
}

#[test]
fn watch_sees_held_connections_by_pid_and_by_port() {
    let _load = support::shared();
    let (sink, addr) = support::spawn_sink(&[]);
    let held = hold_connections(addr, HELD);
    let pid = sink.pid().to_string();

    let out = support::run(&["watch", "--pid", &pid, "--duration", "3s", "--json"], Duration::from_secs(20));
    out.assert_no_panic().assert_code(0);
    let lines = samples(&out.stdout);
    assert!((2..=3).contains(&lines.len()), "3 samples in 3 s expected:\n{}", out.stdout);
    for sample in &lines {
        assert_eq!(support::count(sample, "/pid"), u64::from(sink.pid()));
        let established = support::count(sample, "/tcp/established");
        assert!(established.abs_diff(HELD) <= 2, "{established} established, {HELD} held:\n{sample:#}");
        assert!(support::count(sample, "/tcp/listen") >= 1, "{sample:#}");
        assert!(support::count(sample, "/open_fds") >= HELD, "{sample:#}");
        assert!(sample["fd_soft_limit"].is_u64() || sample["fd_soft_limit"].is_null());
        assert!(sample["warnings"].is_array());
    }

    let port = addr.port().to_string();
    let out = support::run(&["watch", "--port", &port, "--duration", "1s", "--json"], Duration::from_secs(20));
    out.assert_no_panic().assert_code(0);
    assert!(out.stderr.contains(&format!("port {port} is served by PID {pid}")), "{}", out.stderr);
    let lines = samples(&out.stdout);
    assert_eq!(lines.len(), 1, "{}", out.stdout);
    assert_eq!(support::count(&lines[0], "/pid"), u64::from(sink.pid()));
    assert!(support::count(&lines[0], "/tcp/established").abs_diff(HELD) <= 2, "{:#}", lines[0]);

    // The text form: one line per sample in the spirit of the seed's table.
    let out = support::run(&["watch", "--pid", &pid, "--duration", "1s"], Duration::from_secs(20));
    out.assert_code(0);
    let line = out.stdout.lines().next().unwrap_or_default();
    assert!(line.starts_with("t=1s fds="), "{line}");
    assert!(line.contains(" tcp: established=") && line.contains(" listen=1"), "{line}");
    drop(held);
}

#[test]
fn watch_of_a_pid_that_does_not_exist_exits_3() {
    let _load = support::shared();
    let out = support::run(&["watch", "--pid", NO_SUCH_PID, "--duration", "1s"], Duration::from_secs(20));
    out.assert_no_panic().assert_code(3);
    assert!(out.stderr.contains(&format!("no process with PID {NO_SUCH_PID}")), "{}", out.stderr);

    let port = support::free_port().to_string();
    let out = support::run(&["watch", "--port", &port, "--duration", "1s"], Duration::from_secs(20));
    out.assert_code(3);
    assert!(out.stderr.contains(&format!("nothing listens on TCP port {port}")), "{}", out.stderr);
}

#[test]
fn watch_ends_when_the_target_exits() {
    let _load = support::shared();
    let (sink, _addr) = support::spawn_sink(&["--duration", "2s"]);
    let pid = sink.pid().to_string();
    let out = support::run(&["watch", "--pid", &pid, "--duration", "20s", "--json"], Duration::from_secs(20));
    out.assert_no_panic().assert_code(0);
    assert!(out.stderr.contains(&format!("PID {pid} (pummel) exited")), "{}", out.stderr);
    assert!(out.elapsed < Duration::from_secs(10), "the watch went on for {:?}", out.elapsed);
    assert!(!samples(&out.stdout).is_empty(), "the sink ran for 2 s: at least one sample");
    drop(sink);
}

/// A python3 process that opens 1,100 files (its fd numbers pass 1024) without an epoll
/// instance, says `ready` and sleeps; killed by PID on drop. `None` when python3 cannot.
fn many_files_without_epoll() -> Option<ChildGuard> {
    const SCRIPT: &str = "
import os, resource, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard == resource.RLIM_INFINITY or hard > soft:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
files = [open(os.devnull) for _ in range(1100)]
os.write(1, b'ready\n')
time.sleep(60)
";
    let mut command = Command::new("python3");
    command.args(["-c", SCRIPT]).stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null());
    let mut child = ChildGuard(command.spawn().ok()?);
    let mut stdout = child.0.stdout.take()?;
    // python3 writes `ready\n` in one write, or exits (EOF): the read ends either way.
    let mut ready = [0u8; 6];
    stdout.read_exact(&mut ready).ok()?;
    (&ready == b"ready\n").then_some(child)
}

/// The select() note is for processes that could be bound by select(): `pummel sink` (tokio,
/// so epoll) holding 1,100 connections gets none; a process without epoll whose fd numbers
/// pass 1024 gets it.
#[test]
fn the_select_note_spares_epoll_servers() {
    let _load = support::shared();
    let sink = support::Sink::start(&[]);
    let pid = sink.pid().to_string();
    let out = support::run(
        &["run", &sink.url("/"), "-c", "1100", "-d", "2s", "--watch-pid", &pid, "--json"],
        Duration::from_secs(60),
    );
    out.assert_no_panic().assert_code(0);
    let summary = out.json();
    assert!(support::count(&summary, "/target/peak_max_fd") >= 1024, "{:#}", summary["target"]);
    let warnings = summary["target"]["warnings"].as_array().expect("warnings");
    assert!(!warnings.iter().any(|w| w.as_str().is_some_and(|w| w.contains("select()"))), "{warnings:?}");

    let Some(python) = many_files_without_epoll() else {
        eprintln!("skipped the other half: python3 could not open 1,100 files");
        return;
    };
    let pid = python.0.id().to_string();
    let out = support::run(&["watch", "--pid", &pid, "--duration", "1s", "--json"], Duration::from_secs(20));
    out.assert_no_panic().assert_code(0);
    let lines = samples(&out.stdout);
    let first = lines.first().unwrap_or_else(|| panic!("no sample of PID {pid}: {}", out.stderr));
    assert_eq!(first["holds_epoll"], false);
    assert_eq!(first["warnings"][0]["kind"], "fd_above_select_limit", "{first:#}");
    assert!(support::text(first, "/warnings/0/text").contains("a target using select() would fail here"));
    drop(python);
}
