//! Memory per held WebSocket session (pummel_engine::ws), against `pummel sink`'s WebSocket
//! echo in its own process, so that this process's resident memory is the client side only.
//!
//! Ignored (it opens 10,000 sessions and takes ~20,000 file descriptors); run it alone:
//! `ulimit -n 20000; cargo test --release --test cli ws_memory -- --ignored --nocapture`
//! (`PUMMEL_WS_SESSIONS=N` changes the count).

use std::time::{Duration, Instant};

use pummel_engine::proto::ws::{WsSession, WsTarget};

use crate::support;

/// VmRSS of `/proc/{pid}/status`, in bytes.
fn vm_rss(pid: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let kib: u64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("a VmRSS line");
    kib * 1024
}

#[test]
#[ignore = "opens 10,000 WebSocket sessions; run alone with --ignored --nocapture"]
fn ws_memory_per_held_session() {
    let _load = support::exclusive();
    let sessions: usize = std::env::var("PUMMEL_WS_SESSIONS").ok().and_then(|n| n.parse().ok()).unwrap_or(10_000);
    let (_, hard) = rlimit::getrlimit(rlimit::Resource::NOFILE).expect("read RLIMIT_NOFILE");
    let wanted = (sessions as u64 + 100).min(hard);
    rlimit::setrlimit(rlimit::Resource::NOFILE, wanted, hard).expect("raise RLIMIT_NOFILE");
    assert!(wanted > sessions as u64, "need `ulimit -n {}` (hard limit {hard})", sessions + 100);
    let (sink, addr) = support::spawn_sink(&["--idle-timeout", "10m"]);
    let sink_pid = sink.pid().to_string();
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().expect("a runtime");
    runtime.block_on(async {
        let target = WsTarget::from_url(&format!("ws://{addr}/memory")).expect("a ws:// URL");
        let open = |i: usize| {
            let target = &target;
            async move {
                let (mut session, _) =
                    WsSession::connect(target, &[], None, Duration::from_secs(5)).await.expect("a session");
                let request = format!(r#"{{"jsonrpc":"2.0","id":{i},"method":"hello"}}"#);
                session.send_text(&request).await.expect("sent");
                let reply = session.expect(&mut |m| m == request, Duration::from_secs(5)).await.expect("the echo");
                assert_eq!(reply, request);
                session
            }
        };
        // Warm up the runtime, the allocator and the code paths before measuring.
        let mut warm = Vec::new();
        for i in 0..200 {
            warm.push(open(i).await);
        }
        drop(warm);
        let mut held: Vec<WsSession> = Vec::with_capacity(sessions);
        let client_before = vm_rss("self");
        let sink_before = vm_rss(&sink_pid);
        let started = Instant::now();
        for i in 0..sessions {
            held.push(open(i).await);
        }
        let opened_in = started.elapsed();
        let client_after = vm_rss("self");
        let sink_after = vm_rss(&sink_pid);
        let per_session = |before: u64, after: u64| after.saturating_sub(before) as f64 / sessions as f64;
        // Then each session in its own task, held as a flow holds it: idle raced against a sleep.
        let local = tokio::task::LocalSet::new();
        let tasks: Vec<_> = held
            .drain(..)
            .map(|mut session| {
                local.spawn_local(async move {
                    tokio::select! {
                        error = session.idle() => panic!("a held session ended: {error}"),
                        () = tokio::time::sleep(Duration::from_secs(3)) => {}
                    }
                    session
                })
            })
            .collect();
        let tasks_rss = local
            .run_until(async {
                tokio::time::sleep(Duration::from_secs(1)).await;
                vm_rss("self")
            })
            .await;
        println!(
            "{sessions} WebSocket sessions opened in {:.1} s, each sent and got one message:\n\
             pummel (client) VmRSS +{:.0} KiB = {:.0} bytes per session held in a Vec\n\
             pummel (client) VmRSS +{:.0} KiB = {:.0} bytes per session held in an idle task\n\
             sink (server)   VmRSS +{:.0} KiB = {:.0} bytes per session",
            opened_in.as_secs_f64(),
            client_after.saturating_sub(client_before) as f64 / 1024.0,
            per_session(client_before, client_after),
            tasks_rss.saturating_sub(client_before) as f64 / 1024.0,
            per_session(client_before, tasks_rss),
            sink_after.saturating_sub(sink_before) as f64 / 1024.0,
            per_session(sink_before, sink_after),
        );
        assert!(per_session(client_before, tasks_rss) <= 8.0 * 1024.0, "more than 8 KiB per held session");
        local
            .run_until(async {
                for task in tasks {
                    task.await.expect("the task ran");
                }
            })
            .await;
    });
}
