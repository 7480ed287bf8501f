//! Target watch on live processes: this test process (which opens its own loopback
//! connections) and short-lived children it starts and ends by PID.

use std::io::{BufRead, BufReader};
use std::net::{TcpListener, TcpStream};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use super::*;

fn own_pid() -> u32 {
    std::process::id()
}

/// `count` loopback connections: the client ends and the server ends, plus the listener.
fn connections(count: usize) -> (TcpListener, Vec<TcpStream>, Vec<TcpStream>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let mut clients = Vec::with_capacity(count);
    let mut servers = Vec::with_capacity(count);
    for _ in 0..count {
        clients.push(TcpStream::connect(addr).unwrap());
        servers.push(listener.accept().unwrap().0);
    }
    (listener, clients, servers)
}

#[test]
fn watches_this_process() {
    let (listener, _clients, _servers) = connections(20);
    let mut watch = TargetWatch::for_pid(own_pid()).unwrap();
    assert_eq!(watch.pid(), own_pid());
    assert!(!watch.name().is_empty());
    std::thread::sleep(Duration::from_millis(100));
    let sample = watch.sample().unwrap();
    // Other tests of this binary run in parallel and open sockets of their own.
    assert!(sample.tcp.established >= 40, "{sample:?}");
    assert!(sample.tcp.listen >= 1, "{sample:?}");
    assert!(sample.open_fds >= 41);
    assert!(sample.max_fd.unwrap() >= 40);
    assert!(sample.threads >= 1);
    assert!(sample.rss_bytes > 1 << 20);
    assert!(sample.cpu_percent.is_some());
    assert!(sample.fd_soft_limit.is_none_or(|soft| soft >= sample.open_fds));
    assert!(sample.system_listen.is_some());
    drop(listener);
}

#[test]
fn finds_the_listener_of_a_port() {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let watch = TargetWatch::for_listening_port(port).unwrap();
    assert_eq!(watch.pid(), own_pid());
    let all = listening_processes(port).unwrap();
    assert_eq!(all, [ListeningProcess { pid: own_pid(), sockets: all[0].sockets }]);
    drop(listener);
    assert_eq!(TargetWatch::for_listening_port(port).unwrap_err(), WatchError::NoListener { port });
}

#[test]
fn a_pid_that_does_not_exist() {
    for pid in [0, i32::MAX as u32, u32::MAX] {
        assert_eq!(TargetWatch::for_pid(pid).unwrap_err(), WatchError::NoSuchProcess { pid });
    }
}

#[test]
fn a_process_that_exits_is_gone() {
    let mut child = Command::new("sleep").arg("30").stdin(Stdio::null()).spawn().unwrap();
    let mut watch = TargetWatch::for_pid(child.id()).unwrap();
    let sample = watch.sample().unwrap();
    assert_eq!(sample.tcp.total(), 0);
    child.kill().unwrap();
    // Not reaped yet: a zombie is gone too.
    let deadline = Instant::now() + Duration::from_secs(5);
    let error = loop {
        match watch.sample() {
            Err(e) => break e,
            Ok(_) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(10)),
            Ok(_) => panic!("the killed child still looks alive"),
        }
    };
    assert!(error.is_gone(), "{error}");
    assert!(watch.is_gone());
    child.wait().unwrap();
    assert!(watch.sample().unwrap_err().is_gone(), "gone stays gone");
    assert!(TargetWatch::for_pid(child.id()).is_err());
}

#[test]
fn close_wait_is_seen() {
    let (_listener, clients, servers) = connections(10);
    let mut watch = TargetWatch::for_pid(own_pid()).unwrap();
    let before = watch.sample().unwrap().tcp.close_wait;
    drop(clients); // the peers close; this process keeps the server ends open: CLOSE_WAIT
    std::thread::sleep(Duration::from_millis(50));
    let after = watch.sample().unwrap().tcp.close_wait;
    assert!(after >= before + 10, "close_wait went from {before} to {after}");
    drop(servers);
}

#[test]
fn samples_serialize_with_stable_names() {
    let mut watch = TargetWatch::for_pid(own_pid()).unwrap();
    let sample = watch.sample().unwrap();
    let json = serde_json::to_value(&sample).unwrap();
    // serde_json's maps list keys in order.
    let mut keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    keys.sort_unstable();
    let mut expected = [
        "pid",
        "elapsed_ms",
        "open_fds",
        "max_fd",
        "holds_epoll",
        "fd_soft_limit",
        "fd_hard_limit",
        "threads",
        "cpu_percent",
        "rss_bytes",
        "tcp",
        "accept_queue",
        "system_listen",
        "system_listen_overflows",
        "warnings",
    ];
    expected.sort_unstable();
    assert_eq!(keys, expected);
    let mut tcp: Vec<&str> = json["tcp"].as_object().unwrap().keys().map(String::as_str).collect();
    tcp.sort_unstable();
    let mut expected = [
        "established",
        "syn_sent",
        "syn_recv",
        "fin_wait1",
        "fin_wait2",
        "time_wait",
        "close",
        "close_wait",
        "last_ack",
        "listen",
        "closing",
        "other",
    ];
    expected.sort_unstable();
    assert_eq!(tcp, expected);
    assert!(json["system_listen"]["listen_overflows_per_s"].is_number());
}

/// The cost the design promises: a process with 10,000 sockets sampled in well under the
/// second between samples.
#[test]
fn ten_thousand_sockets_are_cheap_to_sample() {
    let needed = 10_000 + 200;
    let limit = rlimit::increase_nofile_limit(u64::MAX).unwrap_or(0);
    if limit < needed {
        eprintln!("skipped: 10,000 sockets need {needed} open files, the hard limit allows {limit}");
        return;
    }
    let (_listener, _clients, _servers) = connections(5_000);
    let mut watch = TargetWatch::for_pid(own_pid()).unwrap();
    let mut fastest = Duration::MAX;
    let mut sample = None;
    for _ in 0..3 {
        let started = Instant::now();
        sample = Some(watch.sample().unwrap());
        fastest = fastest.min(started.elapsed());
    }
    let sample = sample.unwrap();
    eprintln!("sampling {} sockets took {fastest:?}", sample.tcp.total());
    assert!(sample.tcp.established >= 10_000, "{:?}", sample.tcp);
    // About 90 ms in a release build on a 2-core VM (with 30,000 TIME_WAIT lines of earlier
    // runs in the table); an unoptimised build is about three times slower.
    let bound = if cfg!(debug_assertions) { Duration::from_millis(1000) } else { Duration::from_millis(300) };
    assert!(fastest < bound, "one sample took {fastest:?}");
}

#[test]
fn a_watch_can_move_to_a_collector_thread() {
    fn assert_send<T: Send + 'static>() {}
    assert_send::<TargetWatch>();
    assert_send::<WatchSample>();
}

/// A python3 child that raises its open-file limit, opens 1,100 files (so its fd numbers pass
/// 1024), creates an epoll instance when `epoll`, says `ready` and sleeps; killed on drop.
struct ManyFiles(Child);

impl ManyFiles {
    /// `None` (the test is skipped) when python3 is missing or cannot open 1,100 files.
    fn start(epoll: bool) -> Option<ManyFiles> {
        const SCRIPT: &str = "
import os, resource, select, sys, time
soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
if hard == resource.RLIM_INFINITY or hard > soft:
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
files = [open(os.devnull) for _ in range(1100)]
poller = select.epoll() if sys.argv[1] == 'epoll' else None
os.write(1, b'ready\n')
time.sleep(60)
";
        let mode = if epoll { "epoll" } else { "select" };
        let spawned =
            Command::new("python3").args(["-c", SCRIPT, mode]).stdin(Stdio::null()).stdout(Stdio::piped()).spawn();
        let mut child = match spawned {
            Ok(child) => ManyFiles(child),
            Err(e) => {
                eprintln!("skipped: python3 could not start: {e}");
                return None;
            }
        };
        let mut line = String::new();
        let stdout = child.0.stdout.take()?;
        // python3 either prints `ready` or exits (EOF): no unbounded wait.
        let _ = BufReader::new(stdout).read_line(&mut line);
        if line.trim() != "ready" {
            eprintln!("skipped: python3 could not open 1,100 files");
            return None;
        }
        Some(child)
    }
}

impl Drop for ManyFiles {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Both sides of the select() rule on live processes: fd numbers past 1024 in a process without
/// an epoll instance give the note, in one that holds one they do not.
#[test]
fn fds_past_1024_warn_only_without_epoll() {
    for epoll in [false, true] {
        let Some(child) = ManyFiles::start(epoll) else { return };
        let mut watch = TargetWatch::for_pid(child.0.id()).unwrap();
        let sample = watch.sample().unwrap();
        assert!(sample.max_fd.is_some_and(|fd| fd >= SELECT_FD_LIMIT), "{:?}", sample.max_fd);
        assert_eq!(sample.holds_epoll, epoll);
        let select_notes: Vec<&Warning> =
            sample.warnings.iter().filter(|w| w.kind == WarningKind::FdAboveSelectLimit).collect();
        if epoll {
            assert!(select_notes.is_empty(), "an epoll process: {select_notes:?}");
        } else {
            assert_eq!(select_notes.len(), 1, "{:?}", sample.warnings);
            assert!(select_notes[0].text.contains("a target using select() would fail here"));
        }
    }
}
