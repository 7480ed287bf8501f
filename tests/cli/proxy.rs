//! `pummel proxy` against software nobody here wrote: Redis clients (redis-benchmark,
//! redis-cli, and a raw RESP client) through its toxics, nginx behind it while a `pummel run`
//! goes through it and it goes down and comes back, and toxiproxy's API requests answered with
//! toxiproxy's shapes and effects. Timing bounds are generous: a busy machine makes a toxic's
//! effect look bigger, never smaller.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::support::nginx::Nginx;
use crate::support::proxy::{ProxyProcess, http};
use crate::support::redis::{REDIS_BENCHMARK, REDIS_CLI, Redis, command, encode};
use crate::support::{self, Sink};

/// redis-benchmark's p50 latency (ms) of GET with 5 clients, 300 requests, against `addr`.
fn benchmark_p50(addr: SocketAddr) -> f64 {
    let output = Command::new(REDIS_BENCHMARK)
        .args(["-h", "127.0.0.1", "-p", &addr.port().to_string(), "-t", "get", "-n", "300", "-c", "5", "--csv"])
        .output()
        .unwrap_or_else(|e| panic!("cannot run {REDIS_BENCHMARK}: {e}"));
    let text = String::from_utf8_lossy(&output.stdout).into_owned();
    // "test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms",...
    let row = text.lines().find(|l| l.starts_with("\"GET\"")).unwrap_or_else(|| {
        panic!("no GET row from redis-benchmark:\n{text}\n{}", String::from_utf8_lossy(&output.stderr))
    });
    let fields: Vec<&str> = row.split(',').map(|f| f.trim_matches('"')).collect();
    fields[4].parse().unwrap_or_else(|e| panic!("p50 in {row:?}: {e}"))
}

#[test]
fn redis_benchmark_through_a_20ms_latency_toxic_sees_20ms_more() {
    let _load = support::exclusive();
    let redis = Redis::start();
    let proxy = ProxyProcess::start(&[("redis", redis.addr)], &["--toxic", "redis:latency:latency=20"]);
    let direct = benchmark_p50(redis.addr);
    let through = benchmark_p50(proxy.addr("redis"));
    let added = through - direct;
    assert!((18.0..=40.0).contains(&added), "p50 direct {direct} ms, through the proxy {through} ms: +{added} ms");
}

/// Sets `key` to `len` bytes directly on redis.
fn set_big(redis: &Redis, key: &str, len: usize) {
    let value = "x".repeat(len);
    let reply = command(redis.addr, &["SET", key, &value]).expect("SET answered");
    assert!(reply.starts_with(b"+OK"), "{}", String::from_utf8_lossy(&reply));
}

/// Sends `GET key` on a fresh connection to `addr` and reads until `want` bytes came or the
/// server closed (at most 20 s); returns the bytes and the time taken.
fn get_raw(addr: SocketAddr, key: &str, want: usize) -> (Vec<u8>, Duration) {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5)).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(20))).expect("read timeout");
    let started = Instant::now();
    stream.write_all(&encode(&[b"GET", key.as_bytes()])).expect("write GET");
    let mut received = Vec::new();
    let mut buf = vec![0u8; 64 * 1024];
    while received.len() < want {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => received.extend_from_slice(&buf[..n]),
        }
    }
    (received, started.elapsed())
}

#[test]
fn bandwidth_toxic_paces_a_large_get_within_ten_percent() {
    let _load = support::exclusive();
    let redis = Redis::start();
    set_big(&redis, "big", 300_000);
    let proxy =
        ProxyProcess::start(&[("redis", redis.addr)], &["--toxic", "redis:bandwidth:rate=100,stream=downstream"]);
    // "$300000\r\n" + the value + "\r\n": 300,011 bytes at 100 KB/s (100,000 bytes/s) ≈ 3.0 s.
    let want = 300_011;
    let (received, took) = get_raw(proxy.addr("redis"), "big", want);
    assert_eq!(received.len(), want);
    let expected = want as f64 / 100_000.0;
    let ratio = took.as_secs_f64() / expected;
    assert!((0.9..=1.1).contains(&ratio), "{want} bytes at 100 KB/s took {took:?} (expected {expected:.2} s)");
}

#[test]
fn reset_peer_is_seen_by_redis_cli_and_a_raw_client() {
    let _load = support::shared();
    let redis = Redis::start();
    let proxy =
        ProxyProcess::start(&[("redis", redis.addr)], &["--toxic", "redis:reset_peer:timeout=0,stream=upstream"]);
    let port = proxy.addr("redis").port().to_string();
    let output =
        Command::new(REDIS_CLI).args(["-h", "127.0.0.1", "-p", &port, "PING"]).output().expect("run redis-cli");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!output.status.success(), "redis-cli succeeded through reset_peer: {said}");
    assert!(said.contains("reset"), "redis-cli did not see a reset: {said:?}");

    let mut stream = TcpStream::connect(proxy.addr("redis")).expect("connect");
    stream.set_read_timeout(Some(Duration::from_secs(5))).expect("read timeout");
    stream.write_all(&encode(&[b"PING"])).expect("write");
    let mut buf = [0u8; 16];
    let err = stream.read(&mut buf).expect_err("the read should fail");
    assert_eq!(err.kind(), std::io::ErrorKind::ConnectionReset, "{err}");
    // Direct, redis is fine.
    assert!(command(redis.addr, &["PING"]).is_some_and(|r| r.starts_with(b"+PONG")));
}

#[test]
fn limit_data_cuts_the_answer_at_its_byte_count() {
    let _load = support::shared();
    let redis = Redis::start();
    set_big(&redis, "big", 50_000);
    let proxy = ProxyProcess::start(&[("redis", redis.addr)], &["--toxic", "redis:limit_data:bytes=1000"]);
    let (received, _) = get_raw(proxy.addr("redis"), "big", 50_011);
    assert_eq!(received.len(), 1000, "the client should get exactly 1,000 bytes, then the close");
    assert!(received.starts_with(b"$50000\r\nxxx"));

    let port = proxy.addr("redis").port().to_string();
    let output =
        Command::new(REDIS_CLI).args(["-h", "127.0.0.1", "-p", &port, "GET", "big"]).output().expect("run redis-cli");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(!said.contains(&"x".repeat(50_000)), "redis-cli got the whole value through limit_data");
    assert!(said.to_lowercase().contains("error"), "redis-cli did not report the cut: {said:?}");
}

#[test]
fn nginx_behind_a_proxy_that_goes_down_fails_then_heals() {
    let _load = support::exclusive();
    let nginx = Nginx::start();
    let proxy = ProxyProcess::start(&[("web", nginx.addr)], &[]);
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "results.json");
    let url = format!("http://{}/", proxy.addr("web"));
    let run = support::spawn(
        &["run", &url, "-r", "200", "-c", "20", "-d", "7s", "--timeout", "1s", "--quiet", "-o", &results_arg],
        None,
    );
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs(2).saturating_sub(started.elapsed()));
    let (status, body) = proxy.api("POST", "/proxies/web", Some(r#"{"enabled": false}"#));
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");
    std::thread::sleep(Duration::from_secs(4).saturating_sub(started.elapsed()));
    let (status, body) = proxy.api("POST", "/proxies/web", Some(r#"{"enabled": true}"#));
    assert_eq!((status, &body["enabled"]), (200, &json!(true)), "{body}");
    let out = run.wait(Duration::from_secs(40));
    out.assert_no_panic();
    let document = support::read_json(&results);
    let timeline = document.pointer("/timeline").and_then(Value::as_array).cloned().expect("a timeline");
    let failed_seconds: Vec<u64> =
        timeline.iter().filter(|s| support::count(s, "/failed") > 0).map(|s| support::count(s, "/second")).collect();
    assert!(!failed_seconds.is_empty(), "no failures while the proxy was down:\n{timeline:#?}");
    // Down from 2 s to 4 s: failures in the seconds (2, 3] and (3, 4], one second either way.
    assert!(failed_seconds.iter().all(|s| (2..=6).contains(s)), "failures outside the window: {failed_seconds:?}");
    let last = timeline.last().expect("seconds");
    assert!(support::count(last, "/ok") > 100, "the last second did not heal: {last:#}");
    assert_eq!(support::count(last, "/failed"), 0, "{last:#}");
    let errors = document.pointer("/summary/errors").cloned().unwrap_or_default();
    assert!(
        errors.get("connect_refused").is_some() || errors.get("reset").is_some(),
        "expected refused or reset connections while down: {errors}"
    );
}

/// toxiproxy's README requests: create a proxy, add a latency toxic, list, update, delete,
/// reset, populate, version; same JSON shapes and effects.
#[test]
fn toxiproxy_api_requests_get_toxiproxys_shapes_and_effects() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let proxy = ProxyProcess::start(&[], &[]);
    let upstream = sink.addr.to_string();

    let create = json!({"name": "web", "listen": "127.0.0.1:0", "upstream": upstream}).to_string();
    let (status, created) = proxy.api("POST", "/proxies", Some(&create));
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["name"], "web");
    assert_eq!(created["upstream"], upstream.as_str());
    assert_eq!(created["enabled"], true);
    assert_eq!(created["toxics"], json!([]));
    let listen: SocketAddr = created["listen"].as_str().unwrap().parse().expect("the bound address");
    assert_ne!(listen.port(), 0);
    let (status, again) = proxy.api("POST", "/proxies", Some(&create));
    assert_eq!((status, again), (409, json!({"error": "proxy already exists", "status": 409})));
    let (status, missing) = proxy.api("POST", "/proxies", Some(r#"{"name": "x"}"#));
    assert_eq!((status, missing), (400, json!({"error": "missing required field: upstream", "status": 400})));

    let timed_get = || {
        let started = Instant::now();
        let answer = support::http_get(listen, "/", Duration::from_secs(5)).expect("an answer through the proxy");
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
        started.elapsed()
    };
    assert!(timed_get() < Duration::from_millis(200));

    let (status, toxic) =
        proxy.api("POST", "/proxies/web/toxics", Some(r#"{"type": "latency", "attributes": {"latency": 300}}"#));
    assert_eq!(status, 200, "{toxic}");
    let expected = json!({
        "attributes": {"latency": 300, "jitter": 0},
        "name": "latency_downstream", "type": "latency", "stream": "downstream", "toxicity": 1.0
    });
    assert_eq!(toxic, expected);
    assert!(timed_get() >= Duration::from_millis(300));
    let (status, exists) = proxy.api("POST", "/proxies/web/toxics", Some(r#"{"type": "latency"}"#));
    assert_eq!((status, exists), (409, json!({"error": "toxic already exists", "status": 409})));
    let (status, bad) = proxy.api("POST", "/proxies/web/toxics", Some(r#"{"type": "lag"}"#));
    assert_eq!((status, bad), (400, json!({"error": "invalid toxic type", "status": 400})));

    let (status, list) = proxy.api("GET", "/proxies", None);
    assert_eq!(status, 200);
    assert_eq!(list["web"]["toxics"], json!([expected]));
    assert_eq!(list["web"]["listen"], listen.to_string().as_str());
    let (status, toxics) = proxy.api("GET", "/proxies/web/toxics", None);
    assert_eq!((status, toxics), (200, json!([expected])));

    let (status, updated) =
        proxy.api("POST", "/proxies/web/toxics/latency_downstream", Some(r#"{"attributes": {"latency": 5}}"#));
    assert_eq!(status, 200);
    assert_eq!(updated["attributes"], json!({"latency": 5, "jitter": 0}));
    assert!(timed_get() < Duration::from_millis(300));
    let (status, shown) = proxy.api("GET", "/proxies/web/toxics/latency_downstream", None);
    assert_eq!((status, &shown["attributes"]["latency"]), (200, &json!(5)));

    let (status, _) = proxy.api("DELETE", "/proxies/web/toxics/latency_downstream", None);
    assert_eq!(status, 204);
    let (status, gone) = proxy.api("GET", "/proxies/web/toxics/latency_downstream", None);
    assert_eq!((status, gone), (404, json!({"error": "toxic not found", "status": 404})));

    // Down: refused; reset brings it back and removes toxics.
    let (status, down) = proxy.api("POST", "/proxies/web", Some(r#"{"enabled": false}"#));
    assert_eq!((status, &down["enabled"]), (200, &json!(false)));
    assert!(TcpStream::connect_timeout(&listen, Duration::from_secs(2)).is_err(), "a down proxy accepted");
    proxy.api("POST", "/proxies/web/toxics", Some(r#"{"type": "timeout", "stream": "upstream"}"#));
    let (status, _) = proxy.api("POST", "/reset", None);
    assert_eq!(status, 204);
    let (_, web) = proxy.api("GET", "/proxies/web", None);
    assert_eq!((&web["enabled"], &web["toxics"]), (&json!(true), &json!([])));
    assert!(timed_get() < Duration::from_millis(200));

    let populate =
        json!([{"name": "web", "listen": listen.to_string(), "upstream": upstream}, {"name": "other", "listen": "127.0.0.1:0", "upstream": upstream}])
            .to_string();
    let (status, populated) = proxy.api("POST", "/populate", Some(&populate));
    assert_eq!(status, 201, "{populated}");
    let names: Vec<&str> =
        populated["proxies"].as_array().unwrap().iter().map(|p| p["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["web", "other"]);
    assert!(timed_get() < Duration::from_millis(200), "populate with the same addresses kept the proxy");
    let (status, bad) = proxy.api("POST", "/populate", Some(r#"[{"name": "x"}]"#));
    assert_eq!(status, 400);
    assert_eq!(bad["error"], "missing required field: upstream at proxy 1");

    let (status, _) = proxy.api("DELETE", "/proxies/other", None);
    assert_eq!(status, 204);
    let (status, gone) = proxy.api("GET", "/proxies/other", None);
    assert_eq!((status, gone), (404, json!({"error": "proxy not found", "status": 404})));

    let (status, version) = proxy.api("GET", "/version", None);
    assert_eq!(status, 200);
    assert!(version["version"].as_str().is_some_and(|v| v.starts_with("pummel")), "{version}");

    let (status, _) = http(proxy.api, "GET", "/proxies", None, &["User-Agent: Mozilla/5.0"]);
    assert_eq!(status, 403, "browsers are refused, as by toxiproxy");
}

#[test]
fn proxy_flags_and_config_mistakes_exit_2_with_every_error() {
    let _load = support::shared();
    let out =
        support::run(&["proxy", "--proxy", "redis=26379,6379", "--toxic", "redis:latency"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("latency needs latency=N (milliseconds)"), "{}", out.stderr);
    let out = support::run(&["proxy", "--proxy", "a=0,1", "--toxic", "b:latency:latency=1"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("no proxy named \"b\""), "{}", out.stderr);

    let dir = support::temp_dir();
    let (path, path_arg) = support::path_in(&dir, "proxy.toml");
    std::fs::write(
        &path,
        "[proxy.redis]\nlisten = \"0\"\nupstream = \"127.0.0.1:6379\"\ntoxics = [ { type = \"lag\" } ]\n\
         [proxy.web]\nlisten = 8080\nupstream = \"127.0.0.1:80\"\n",
    )
    .unwrap();
    let out = support::run(&["proxy", "--config", &path_arg], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("proxy.toml:4:21: error: unknown toxic type \"lag\""), "{}", out.stderr);
    assert!(out.stderr.contains("proxy.toml:6:10: error: expected a string, found integer"), "{}", out.stderr);
    assert!(out.stderr.contains("2 errors; nothing was started"), "{}", out.stderr);
}

#[test]
fn proxy_from_a_config_file_serves_and_ctrl_c_exits_130() {
    let _load = support::shared();
    let sink = Sink::start(&[]);
    let dir = support::temp_dir();
    let (path, path_arg) = support::path_in(&dir, "proxy.toml");
    std::fs::write(
        &path,
        format!(
            "[proxy.web]\nlisten = \"127.0.0.1:0\"\nupstream = \"{}\"\n\
             toxics = [ {{ type = \"latency\", stream = \"upstream\", attributes = {{ latency = 100 }} }} ]\n",
            sink.addr
        ),
    )
    .unwrap();
    let process = support::spawn(&["proxy", "--config", &path_arg, "--plain"], None);
    let line = process.wait_for_stderr_line("web listening on ", Duration::from_secs(10)).expect("listening");
    let addr: SocketAddr =
        line.split("listening on ").nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    let started = Instant::now();
    let answer = support::http_get(addr, "/", Duration::from_secs(5)).expect("an answer");
    assert!(answer.starts_with("HTTP/1.1 200"));
    assert!(started.elapsed() >= Duration::from_millis(100));
    // At least one per-second line before the interrupt.
    std::thread::sleep(Duration::from_millis(1300));
    process.signal("INT");
    let out = process.wait(Duration::from_secs(10));
    out.assert_code(130);
    assert!(out.stdout.contains("t=1s web up="), "{}", out.stdout);
    assert!(out.stdout.contains("toxics=latency_upstream"), "{}", out.stdout);
    assert!(out.stderr.contains("web: 1 connections"), "{}", out.stderr);
}

#[test]
fn proxy_on_a_port_in_use_exits_3() {
    let _load = support::shared();
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let out = support::run(&["proxy", "--proxy", &format!("web={port},80"), "-d", "1s"], Duration::from_secs(10));
    out.assert_code(3);
    assert!(out.stderr.contains("proxy web: listen tcp"), "{}", out.stderr);
}
