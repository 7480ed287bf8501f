//! Prometheus, the independent scraper `--metrics-listen` is judged by (Debian's `prometheus`
//! package, installed by `.ci/setup-prometheus`): one server of the test's own on a free
//! loopback port, with a temporary directory for its configuration and storage, scraping one
//! target every second, or receiving remote writes; killed by PID on drop. Also `promtool check
//! metrics`, and PromQL queries over its HTTP API.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::ChildGuard;

/// Where Debian's prometheus is.
pub const PROMETHEUS: &str = "/usr/bin/prometheus";
/// Where Debian's promtool is.
pub const PROMTOOL: &str = "/usr/bin/promtool";

/// A Prometheus server of this test's own; killed (by PID) on drop.
pub struct Prometheus {
    /// The process.
    pub process: ChildGuard,
    /// Where its HTTP API listens.
    pub addr: SocketAddr,
    _dir: tempfile::TempDir,
}

fn assert_installed() {
    for tool in [PROMETHEUS, PROMTOOL] {
        assert!(
            Path::new(tool).exists(),
            "{tool} is missing: run .ci/setup-prometheus (apt-get install -y --no-install-recommends prometheus)"
        );
    }
}

impl Prometheus {
    /// Starts Prometheus scraping `http://target/metrics` every second, and waits until it is
    /// ready.
    pub fn scraping(target: SocketAddr) -> Prometheus {
        let scrape =
            format!("scrape_configs:\n  - job_name: pummel\n    static_configs:\n      - targets: ['{target}']\n");
        Prometheus::start(&scrape, &[])
    }

    /// As [`scraping`](Self::scraping), with native histograms on: Prometheus asks for the
    /// protobuf exposition and keeps the native buckets.
    pub fn scraping_native(target: SocketAddr) -> Prometheus {
        let scrape =
            format!("scrape_configs:\n  - job_name: pummel\n    static_configs:\n      - targets: ['{target}']\n");
        Prometheus::start(&scrape, &["--enable-feature=native-histograms"])
    }

    /// Starts Prometheus scraping nothing, with its remote-write receiver on
    /// (`/api/v1/write`), and waits until it is ready.
    pub fn receiving() -> Prometheus {
        Prometheus::start("", &["--web.enable-remote-write-receiver"])
    }

    /// The remote-write URL of its receiver.
    pub fn write_url(&self) -> String {
        format!("http://{}/api/v1/write", self.addr)
    }

    fn start(scrape: &str, extra: &[&str]) -> Prometheus {
        assert_installed();
        for _ in 0..3 {
            let dir = super::temp_dir();
            let config = dir.path().join("prometheus.yml");
            let text =
                format!("global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n{scrape}");
            std::fs::write(&config, text).expect("write prometheus.yml");
            let addr: SocketAddr = ([127, 0, 0, 1], super::free_port()).into();
            let child = Command::new(PROMETHEUS)
                .args(extra)
                .arg(format!("--config.file={}", config.display()))
                .arg(format!("--storage.tsdb.path={}", dir.path().join("data").display()))
                .arg(format!("--web.listen-address={addr}"))
                .arg("--log.level=warn")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap_or_else(|e| panic!("cannot start {PROMETHEUS}: {e}"));
            let mut process = ChildGuard(child);
            let deadline = Instant::now() + Duration::from_secs(30);
            while Instant::now() < deadline && matches!(process.0.try_wait(), Ok(None)) {
                if super::http_get(addr, "/-/ready", Duration::from_secs(2)).is_some_and(|r| r.contains(" 200 ")) {
                    return Prometheus { process, addr, _dir: dir };
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            eprintln!("prometheus did not come up on {addr}; trying another port");
        }
        panic!("could not start prometheus");
    }

    /// The result of an instant PromQL query (`data.result`), or `None` when it did not answer.
    pub fn query(&self, promql: &str) -> Option<Value> {
        let path = format!("/api/v1/query?query={}", encode_query(promql));
        let response = super::http_get(self.addr, &path, Duration::from_secs(5))?;
        let body = response.split_once("\r\n\r\n")?.1;
        let value: Value = serde_json::from_str(body).ok()?;
        (value["status"] == "success").then(|| value["data"]["result"].clone())
    }

    /// The single number an instant query returns (`None`: no series, or no answer).
    pub fn scalar(&self, promql: &str) -> Option<f64> {
        let result = self.query(promql)?;
        result.get(0)?.get("value")?.get(1)?.as_str()?.parse().ok()
    }
}

/// Percent-encodes a query for a URL.
fn encode_query(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `promtool check metrics` over `exposition`: its exit status success and what it printed.
pub fn promtool_check(exposition: &str) -> (bool, String) {
    assert_installed();
    let mut child = Command::new(PROMTOOL)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {PROMTOOL}: {e}"));
    if let Some(mut stdin) = child.stdin.take() {
        stdin.write_all(exposition.as_bytes()).expect("write to promtool");
    }
    let output = child.wait_with_output().expect("promtool ran");
    let said = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    (output.status.success(), said)
}
