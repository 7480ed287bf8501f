//! HTTPS: pummel against `pummel sink --tls` on loopback. Verification with the sink's CA
//! (`--tls-cert-out` + `--cacert`), failures counted as `tls_error` (unknown issuer, wrong
//! name), `--insecure`, `--tls-version 1.2`, one handshake per request with `--no-keepalive`
//! (resumed or full, checked on both ends), and the usage errors of the TLS flags.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;

use crate::support::{self, Running, count, free_port};

/// A `pummel sink --tls` child that wrote its CA to `ca`, in its own directory.
struct TlsSink {
    process: Running,
    addr: SocketAddr,
    /// The CA certificate (PEM) the sink's certificate is signed by.
    ca: String,
    _dir: tempfile::TempDir,
}

impl TlsSink {
    fn start() -> TlsSink {
        let dir = support::temp_dir();
        let (_, ca) = support::path_in(&dir, "sink-ca.pem");
        let (process, addr) = support::spawn_sink(&["--tls", "--tls-cert-out", &ca]);
        TlsSink { process, addr, ca, _dir: dir }
    }

    fn url(&self) -> String {
        format!("https://{}/", self.addr)
    }

    /// Stops the sink (SIGINT) and returns its (handshakes, resumed) counts.
    fn stop(self) -> (u64, u64) {
        self.process.signal("INT");
        let out = self.process.wait(Duration::from_secs(10));
        let line = out
            .stderr
            .lines()
            .find(|l| l.contains("TLS handshakes"))
            .unwrap_or_else(|| panic!("no TLS handshake count from the sink:\n{}", out.stderr));
        // "pummel sink: N requests, H TLS handshakes (R resumed)"
        let numbers: Vec<u64> = line
            .split(|c: char| !c.is_ascii_digit())
            .filter(|s| !s.is_empty())
            .filter_map(|s| s.parse().ok())
            .collect();
        assert_eq!(numbers.len(), 3, "{line}");
        (numbers[1], numbers[2])
    }
}

/// `pummel run URL args... --json -t 1`, exit code checked; returns the summary.
fn run(url: &str, args: &[&str], code: i32) -> Value {
    let mut all = vec!["run", url, "--json", "-t", "1"];
    all.extend_from_slice(args);
    let out = support::run(&all, Duration::from_secs(30));
    out.assert_code(code).assert_no_panic();
    out.json()
}

/// Every one of the `n` requests failed as `tls_error`, and no handshake completed.
fn assert_all_tls_errors(summary: &Value, n: u64) {
    assert_eq!(count(summary, "/requests/completed"), n, "{summary:#}");
    assert_eq!(count(summary, "/requests/ok"), 0, "{summary:#}");
    assert_eq!(count(summary, "/errors/tls_error"), n, "{summary:#}");
    assert_eq!(summary["errors"].as_object().map(|e| e.len()), Some(1), "only tls_error: {summary:#}");
    assert!(summary.get("tls_ms").is_none(), "no handshake completed: {summary:#}");
}

#[test]
fn verified_with_the_sinks_ca_every_request_is_ok() {
    let _load = support::shared();
    let sink = TlsSink::start();
    let dir = support::temp_dir();
    let (results, results_arg) = support::path_in(&dir, "results.json");
    let summary = run(&sink.url(), &["-n", "300", "-c", "4", "--cacert", &sink.ca, "-o", &results_arg], 0);
    assert_eq!(count(&summary, "/requests/ok"), 300, "{summary:#}");
    assert_eq!(summary["errors"], serde_json::json!({}));
    assert_eq!(count(&summary, "/connect_ms/count"), 4);
    assert_eq!(count(&summary, "/tls_ms/count"), 4, "one handshake per connection: {summary:#}");
    assert!(support::num(&summary, "/tls_ms/mean") > 0.0);
    let document = support::read_json(&results);
    support::assert_valid_results(&document);
    assert_eq!(document["plan"]["target"]["scheme"], "https");
    assert_eq!(document["plan"]["tls"]["ca_cert"].as_str(), Some(sink.ca.as_str()));
    let (handshakes, _) = sink.stop();
    assert_eq!(handshakes, 4, "the sink saw as many handshakes");
}

#[test]
fn an_unknown_issuer_is_a_tls_error_and_insecure_accepts_it() {
    let _load = support::shared();
    let sink = TlsSink::start();
    // The system's CAs do not know the sink's: every request fails, the run itself passes.
    let out = support::run(&["run", &sink.url(), "-n", "20", "-c", "2", "--json", "-t", "1"], Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    assert_all_tls_errors(&out.json(), 20);
    assert!(out.stderr.contains("first TLS failure: invalid peer certificate: UnknownIssuer"), "{}", out.stderr);
    // With a threshold, the failures fail the run.
    run(&sink.url(), &["-n", "20", "-c", "2", "--threshold", "error_rate<1%"], 1);

    let summary = run(&sink.url(), &["-n", "50", "-c", "2", "--insecure"], 0);
    assert_eq!(count(&summary, "/requests/ok"), 50, "{summary:#}");
    assert_eq!(count(&summary, "/tls_ms/count"), 2);
}

#[test]
fn a_wrong_server_name_is_a_tls_error() {
    let _load = support::shared();
    let sink = TlsSink::start();
    let summary = run(&sink.url(), &["-n", "20", "-c", "2", "--cacert", &sink.ca, "--sni", "wrong.example"], 0);
    assert_all_tls_errors(&summary, 20);
    // The right name (one the certificate has) passes.
    let summary = run(&sink.url(), &["-n", "20", "-c", "2", "--cacert", &sink.ca, "--sni", "localhost"], 0);
    assert_eq!(count(&summary, "/requests/ok"), 20, "{summary:#}");
}

/// `--no-keepalive --tls-resume off`: a full handshake per request, on both ends.
#[test]
fn without_resumption_every_request_pays_a_full_handshake() {
    let _load = support::shared();
    let sink = TlsSink::start();
    let args = ["-n", "40", "-c", "1", "--no-keepalive", "--tls-resume", "off", "--cacert", &sink.ca];
    let summary = run(&sink.url(), &args, 0);
    assert_eq!(count(&summary, "/requests/ok"), 40, "{summary:#}");
    assert_eq!(count(&summary, "/connect_ms/count"), 40);
    assert_eq!(count(&summary, "/tls_ms/count"), 40, "handshakes == requests: {summary:#}");
    assert_eq!(count(&summary, "/tls_ms/resumed"), 0, "{summary:#}");
    assert_eq!(sink.stop(), (40, 0), "the sink saw 40 full handshakes");
}

/// `--no-keepalive` with resumption (the default): the first handshake is full, every later
/// one resumes the session (TLS 1.3 tickets; and TLS 1.2 with `--tls-version 1.2`).
#[test]
fn with_resumption_later_handshakes_resume() {
    let _load = support::shared();
    for version in ["1.3", "1.2"] {
        let sink = TlsSink::start();
        let args = ["-n", "40", "-c", "1", "--no-keepalive", "--tls-version", version, "--cacert", &sink.ca];
        let summary = run(&sink.url(), &args, 0);
        assert_eq!(count(&summary, "/requests/ok"), 40, "TLS {version}: {summary:#}");
        assert_eq!(count(&summary, "/tls_ms/count"), 40, "TLS {version}: {summary:#}");
        assert_eq!(count(&summary, "/tls_ms/resumed"), 39, "TLS {version}: all but the first resume: {summary:#}");
        assert_eq!(sink.stop(), (40, 39), "TLS {version}: the sink resumed as many");
    }
}

#[test]
fn tls_12_keep_alive_works() {
    let _load = support::shared();
    let sink = TlsSink::start();
    let summary = run(&sink.url(), &["-n", "200", "-c", "2", "--cacert", &sink.ca, "--tls-version", "1.2"], 0);
    assert_eq!(count(&summary, "/requests/ok"), 200, "{summary:#}");
    assert_eq!(count(&summary, "/tls_ms/count"), 2);
}

/// `hold` holds TLS connections too (idle mode: a request each, then idle).
#[test]
fn hold_holds_tls_connections() {
    let _load = support::shared();
    let sink = TlsSink::start();
    let out = support::run(
        &["hold", &sink.url(), "-c", "20", "-d", "1s", "--cacert", &sink.ca, "--json", "-t", "1"],
        Duration::from_secs(30),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 20, "{summary:#}");
    assert_eq!(count(&summary, "/tls_ms/count"), 20, "{summary:#}");
}

/// Usage errors of the TLS flags exit 2 with a message naming the problem, before any load.
#[test]
fn bad_tls_usage_exits_2_with_a_clear_message() {
    let _load = support::shared();
    let url = format!("https://127.0.0.1:{}/", free_port());
    let dir = support::temp_dir();
    let (_, cert) = support::path_in(&dir, "client.pem");
    std::fs::write(dir.path().join("client.pem"), "not a certificate").expect("write a file");
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["run", &url, "--cert", &cert], "--key"),
        (vec!["run", &url, "--key", &cert], "--cert"),
        (vec!["run", &url, "--cacert", "/nonexistent/ca.pem"], "--cacert /nonexistent/ca.pem: cannot read it"),
        (vec!["run", &url, "--cacert", &cert], "no PEM certificate"),
        (vec!["run", "http://127.0.0.1:9/", "--insecure"], "need an https:// URL"),
    ];
    for (args, message) in cases {
        let out = support::run(&args, Duration::from_secs(10));
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains(message), "{args:?}: expected {message:?} in\n{}", out.stderr);
    }
    let out = support::run(&["run", &url, "--insecure", "--probe", &url, "-d", "1s"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("plain http:// only"), "{}", out.stderr);
    let out = support::run(&["sink", "--cert", &cert, "--key", &cert, "-d", "1s"], Duration::from_secs(10));
    out.assert_code(2);
    assert!(out.stderr.contains("--cert"), "{}", out.stderr);
}

/// `hold --mode ws` over `https://`: WebSocket sessions through TLS (`wss://`), verified with
/// the sink's CA, upgraded, pinged and held as over plain TCP.
#[test]
fn hold_ws_holds_sessions_over_tls() {
    let _load = support::shared();
    let sink = TlsSink::start();
    let url = format!("https://{}/chat", sink.addr);
    let out = support::run(
        &[
            "hold", &url, "--mode", "ws", "-c", "20", "--drip", "200ms", "-d", "2s", "--cacert", &sink.ca, "--json",
            "-t", "1",
        ],
        Duration::from_secs(30),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    assert_eq!(count(&summary, "/requests/ok"), 20, "{summary:#}");
    assert_eq!(count(&summary, "/status/101"), 20, "{summary:#}");
    assert_eq!(count(&summary, "/tls_ms/count"), 20, "one handshake per session: {summary:#}");
    assert_eq!(summary["errors"], serde_json::json!({}));
}
