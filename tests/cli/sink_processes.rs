//! `pummel sink --processes N`: several processes share one port (SO_REUSEPORT), the kernel
//! spreads the connections over them, and the counts printed at the end cover them all.

use std::path::Path;
use std::time::{Duration, Instant};

use crate::support::{self, Running};

/// Starts `pummel sink --listen 127.0.0.1:0 --processes N extra...`; returns the process, the
/// address it announced and the members' PIDs it printed.
fn start(processes: usize, extra: &[&str]) -> (Running, String, Vec<u32>) {
    let n = processes.to_string();
    let mut args = vec!["sink", "--listen", "127.0.0.1:0", "--processes", n.as_str()];
    args.extend_from_slice(extra);
    let sink = support::spawn(&args, None);
    let pids_line = sink
        .wait_for_stderr_line("processes share the port", Duration::from_secs(20))
        .expect("the sink names its processes");
    let pids: Vec<u32> = pids_line
        .split("and pids ")
        .nth(1)
        .expect("a list of pids")
        .split_whitespace()
        .map(|p| p.trim_end_matches(')').parse().expect("a pid"))
        .collect();
    let listening =
        sink.wait_for_stderr_line("listening on http://", Duration::from_secs(20)).expect("the sink listens");
    let addr = listening.trim().rsplit("http://").next().expect("an address").to_string();
    assert!(!addr.ends_with(":0"), "port 0 was not resolved to a real port: {listening}");
    (sink, addr, pids)
}

/// True while a process with this PID exists and is not a zombie.
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // The state is the field after the parenthesised command name.
        Ok(stat) => stat.rsplit(')').next().is_some_and(|rest| !rest.trim_start().starts_with('Z')),
        Err(_) => false,
    }
}

/// Waits until none of `pids` is alive; false after `limit`.
fn all_gone(pids: &[u32], limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        if !pids.iter().any(|&p| alive(p)) {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
    false
}

/// The numbers of the closing line `N requests on C connections over P processes (requests
/// per process: a, b, c)`.
fn totals(stderr: &str) -> (u64, u64, Vec<u64>) {
    let line = stderr
        .lines()
        .find(|l| l.contains("requests per process"))
        .unwrap_or_else(|| panic!("no totals line in\n{stderr}"));
    let words: Vec<&str> = line.split_whitespace().collect();
    let requests = words[2].parse().expect("requests");
    let connections = words[5].parse().expect("connections");
    let per_process = line
        .split("requests per process: ")
        .nth(1)
        .expect("per process")
        .trim_end_matches(')')
        .split(", ")
        .map(|n| n.parse().expect("a count"))
        .collect();
    (requests, connections, per_process)
}

#[test]
fn three_processes_share_a_port_and_their_counts_add_up() {
    let _load = support::shared();
    let (sink, addr, pids) = start(3, &[]);
    assert_eq!(pids.len(), 2, "the parent and two more processes");
    assert!(pids.iter().all(|&p| alive(p)));

    let url = format!("http://{addr}/");
    let out = support::run(&["run", &url, "-c", "30", "-n", "3000", "--json"], Duration::from_secs(60));
    out.assert_code(0);
    let summary = out.json();
    let ok = support::count(&summary, "/requests/ok");
    assert_eq!(ok, 3000, "pummel should have sent all 3000 requests");

    sink.signal("TERM");
    let done = sink.wait(Duration::from_secs(20));
    done.assert_code(0).assert_no_panic();
    let (requests, connections, per_process) = totals(&done.stderr);
    assert_eq!(requests, ok, "the sink's total over its processes\n{}", done.stderr);
    assert_eq!(per_process.len(), 3, "{}", done.stderr);
    assert_eq!(per_process.iter().sum::<u64>(), requests);
    // 30 connections from 30 source ports all hashed to one of 3 sockets: odds of 3 in 3^30.
    let serving = per_process.iter().filter(|&&n| n > 0).count();
    assert!(serving > 1, "only one process served: {per_process:?}");
    assert!(connections >= 30, "{connections} connections counted for pummel's 30");
    assert!(all_gone(&pids, Duration::from_secs(5)), "a sink process outlived its parent: {pids:?}");
}

#[test]
fn members_leave_when_the_parent_is_killed() {
    let _load = support::shared();
    let (sink, _addr, pids) = start(2, &[]);
    support::kill("KILL", &sink.pid().to_string());
    drop(sink);
    assert!(all_gone(&pids, Duration::from_secs(10)), "a sink process outlived its killed parent: {pids:?}");
}

#[test]
fn records_of_every_process_end_up_in_one_file() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let (record, record_arg) = support::path_in(&dir, "received.jsonl");
    let (sink, addr, pids) = start(2, &["--record", &record_arg]);
    let url = format!("http://{addr}/r");
    let out = support::run(&["run", &url, "-c", "20", "-n", "400", "--json"], Duration::from_secs(60));
    out.assert_code(0);
    sink.signal("INT");
    let done = sink.wait(Duration::from_secs(20));
    done.assert_code(0);
    assert!(all_gone(&pids, Duration::from_secs(5)));
    let lines = read_lines(&record);
    assert_eq!(lines, support::count(&out.json(), "/requests/ok"), "{}", done.stderr);
    assert!(done.stderr.contains(&format!("recorded {lines} requests")), "{}", done.stderr);
    let leftovers: Vec<_> = std::fs::read_dir(dir.path()).unwrap().flatten().filter(|e| e.path() != record).collect();
    assert!(leftovers.is_empty(), "part files left behind: {leftovers:?}");
}

fn read_lines(path: &Path) -> u64 {
    std::fs::read_to_string(path).expect("the record file").lines().count() as u64
}

#[test]
fn zero_processes_and_generated_tls_are_usage_errors() {
    let _load = support::shared();
    support::run(&["sink", "--listen", "127.0.0.1:0", "--processes", "0"], Duration::from_secs(10)).assert_code(2);
    let out = support::run(&["sink", "--listen", "127.0.0.1:0", "--processes", "2", "--tls"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("--cert"), "{}", out.stderr);
}
