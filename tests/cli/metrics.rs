//! `--metrics-listen`: the Prometheus exposition of a running test, judged by a real
//! Prometheus (its count of requests equals the summary's, exactly) and by `promtool check
//! metrics` on a scrape taken during a run.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::support::prometheus::{Prometheus, promtool_check};
use crate::support::{self, Sink, count, free_port, http_get, plans::write_plan, temp_dir};

/// The body of `GET /metrics` at `addr`, when it answered 200.
fn scrape(addr: SocketAddr) -> Option<String> {
    let response = http_get(addr, "/metrics", Duration::from_secs(5))?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.1 200").then(|| body.to_string())
}

/// The value of the series written exactly as `series` (name and labels) in an exposition.
fn value_of(exposition: &str, series: &str) -> Option<f64> {
    exposition.lines().find_map(|line| line.strip_prefix(series)?.strip_prefix(' ')?.trim().parse().ok())
}

#[test]
fn prometheus_counts_exactly_the_requests_the_summary_counts() {
    let _shared = support::shared();
    let sink = Sink::start(&["--error-rate", "10%"]);
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let prometheus = Prometheus::scraping(listen);
    let listen_text = listen.to_string();
    let url = sink.url("/");
    let args = [
        "run",
        &url,
        "-d",
        "3s",
        "-r",
        "300",
        "-c",
        "8",
        "--json",
        "--metrics-listen",
        &listen_text,
        "--metrics-linger",
        "4s",
    ];
    let out = support::run(&args, Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let (completed, ok, failed) =
        (count(&summary, "/requests/completed"), count(&summary, "/requests/ok"), count(&summary, "/requests/failed"));
    assert!(completed > 500 && failed > 0, "a run with failures: {completed} completed, {failed} failed");

    // Counters only grow, so the highest value Prometheus stored is the last one pummel served
    // (after pummel exits, its series go stale: an instant query finds nothing).
    let total = "sum(max_over_time(pummel_requests_total[10m]))";
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = prometheus.scalar(total);
        if seen == Some(completed as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, Some(completed as f64), "Prometheus's {total} against the summary's completed requests");
    let outcome = |o: &str| prometheus.scalar(&format!("max_over_time(pummel_requests_total{{outcome=\"{o}\"}}[10m])"));
    assert_eq!(outcome("ok"), Some(ok as f64));
    assert_eq!(outcome("failed"), Some(failed as f64));
    let status_5xx = prometheus.scalar("max_over_time(pummel_request_failures_total{kind=\"status_5xx\"}[10m])");
    assert_eq!(status_5xx, Some(count(&summary, "/errors/status_5xx") as f64));
    let latency_count = prometheus.scalar("max_over_time(pummel_request_latency_seconds_count[10m])");
    assert_eq!(latency_count, Some(ok as f64), "the latency histogram holds every success");
}

#[test]
fn a_scrape_during_a_plan_run_passes_promtool_and_shows_names_probes_and_the_target() {
    let _shared = support::shared();
    let sink = Sink::start(&[]);
    let dir = temp_dir();
    let plan = write_plan(
        &dir,
        "plan.toml",
        &format!(
            r#"
[target]
base_url = "{}"

[[scenario]]
name = "shop"
rate = 50
duration = "3s"
flow = [
  {{ request = {{ method = "GET", path = "/items", name = "list items" }} }},
  {{ request = {{ method = "GET", path = "/cart", name = "cart" }} }},
]
"#,
            sink.url("")
        ),
    );
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let (listen_text, probe, pid) = (listen.to_string(), sink.url("/health"), sink.pid().to_string());
    let args = [
        "run",
        &plan,
        "--plain",
        "--metrics-listen",
        &listen_text,
        "--metrics-linger",
        "1s",
        "--probe",
        &probe,
        "--watch-pid",
        &pid,
    ];
    let mut running = support::spawn(&args, None);
    assert!(running.wait_for_stderr("metrics: http://", Duration::from_secs(20)), "the endpoint is announced");
    // A scrape once the first seconds have been added.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut exposition = String::new();
    while Instant::now() < deadline && running.is_alive() {
        exposition = scrape(listen).unwrap_or_default();
        if value_of(&exposition, "pummel_run_second").is_some_and(|s| s >= 2.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let out = running.wait(Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    assert!(value_of(&exposition, "pummel_run_second").is_some_and(|s| s >= 2.0), "scraped mid-run:\n{exposition}");

    let (passed, said) = promtool_check(&exposition);
    assert!(passed && said.trim().is_empty(), "promtool check metrics: {said}\n{exposition}");
    for series in [
        "pummel_named_requests_total{scenario=\"shop\",name=\"list items\",outcome=\"ok\"}",
        "pummel_named_requests_total{scenario=\"shop\",name=\"cart\",outcome=\"ok\"}",
        "pummel_probe_up{url=\"",
        "pummel_target_open_fds",
        "pummel_open_connections",
        "pummel_request_service_time_seconds_bucket{le=\"0.001\"}",
    ] {
        assert!(exposition.contains(series), "{series} is in the scrape:\n{exposition}");
    }
}

#[test]
fn bad_addresses_are_usage_errors_and_a_taken_port_cannot_start() {
    let _shared = support::shared();
    let sink = Sink::start(&[]);
    let url = sink.url("/");
    for bad in ["nope", "127.0.0.1:99999", "example.com:9464"] {
        let out = support::run(&["run", &url, "-n", "5", "--metrics-listen", bad], Duration::from_secs(30));
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains("--metrics-listen"), "{}", out.stderr);
    }
    let out = support::run(&["run", &url, "-n", "5", "--metrics-linger", "1s"], Duration::from_secs(30));
    out.assert_code(2);
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = taken.local_addr().expect("address").to_string();
    let out = support::run(&["run", &url, "-n", "5", "--metrics-listen", &addr], Duration::from_secs(30));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("cannot listen"), "{}", out.stderr);
}

/// `--probe-metric` reads a number from a Prometheus exposition every second — here the one of
/// another pummel run's `--metrics-listen`, whose request counter grows while the probe reads
/// it; the values go into the results timeline beside the load, and a metric the exposition
/// lacks makes the probe NOK.
#[test]
fn probe_metric_reads_another_runs_exposition_into_the_timeline() {
    let _shared = support::shared();
    let sink = Sink::start(&[]);
    let url = sink.url("/");
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let listen_text = listen.to_string();
    let source = support::spawn(
        &["run", &url, "-d", "6s", "-r", "100", "-c", "2", "--quiet", "--metrics-listen", &listen_text],
        None,
    );
    assert!(support::wait_until_listening(listen, Duration::from_secs(20)), "the source's endpoint is up");
    let dir = temp_dir();
    let (results, results_text) = support::path_in(&dir, "results.json");
    let counter = format!("http://{listen}/metrics#pummel_requests_total{{outcome=\"ok\"}}");
    let missing = format!("http://{listen}/metrics#no_such_metric");
    let out = support::run(
        &[
            "run",
            &url,
            "-d",
            "3s",
            "-r",
            "20",
            "-c",
            "1",
            "--plain",
            "--probe-metric",
            &counter,
            "--probe-metric",
            &missing,
            "-o",
            &results_text,
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    assert!(out.stdout.contains(" value="), "the per-second lines show the value:\n{}", out.stdout);
    let doc = support::read_json(&results);
    let mut values = Vec::new();
    let mut missing_errors = Vec::new();
    for entry in doc["timeline"].as_array().expect("a timeline") {
        for probe in entry["probes"].as_array().into_iter().flatten() {
            if probe["url"].as_str().is_some_and(|u| u.ends_with("/metrics")) && probe["value"].is_number() {
                assert_eq!(probe["ok"], true, "{probe}");
                values.push(probe["value"].as_f64().unwrap_or_default());
            } else {
                assert_eq!(probe["ok"], false, "{probe}");
                missing_errors.push(probe["error"].as_str().unwrap_or_default().to_string());
            }
        }
    }
    assert!(values.len() >= 2, "a value each second: {values:?}");
    assert!(values.windows(2).all(|w| w[1] >= w[0]) && values.last() > values.first(), "a growing counter: {values:?}");
    assert!(!missing_errors.is_empty() && missing_errors.iter().all(|e| e.contains("no sample of no_such_metric")));
    drop(source);

    let out = support::run(
        &["run", &url, "-n", "5", "--probe-metric", "http://127.0.0.1:1/metrics#bad{x=y}"],
        Duration::from_secs(30),
    );
    out.assert_code(2).assert_no_panic();
    assert!(out.stderr.contains("--probe-metric") && out.stderr.contains("double quotes"), "{}", out.stderr);
}

/// `--out prometheus=URL`: remote write to a real Prometheus's receiver; after the run, the
/// request counter it received equals the summary's count exactly, every series carries the
/// run's `run_id`.
#[test]
fn remote_write_delivers_exactly_the_summarys_count_with_a_run_id() {
    let _shared = support::shared();
    let sink = Sink::start(&["--error-rate", "5%"]);
    let prometheus = Prometheus::receiving();
    let out_flag = format!("prometheus={}", prometheus.write_url());
    let url = sink.url("/");
    let out = support::run(
        &["run", &url, "-d", "3s", "-r", "200", "-c", "4", "--json", "--out", &out_flag],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let completed = count(&out.json(), "/requests/completed");
    let run_id = run_id_of(&out.stderr);
    assert!(
        out.stderr.contains("remote write sent") && !out.stderr.contains("warning: remote write"),
        "{}",
        out.stderr
    );
    let query = format!("sum(max_over_time(pummel_requests_total{{run_id=\"{run_id}\"}}[10m]))");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = prometheus.scalar(&query);
        if seen == Some(completed as f64) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, Some(completed as f64), "{query} against the summary's completed requests");
    let histogram = prometheus.scalar("max_over_time(pummel_request_latency_seconds_count[10m])");
    assert!(histogram.is_some_and(|n| n > 0.0), "the histograms are sent too");

    // Nothing listening: every second is dropped after its tries, and said so; the run passes.
    let nowhere = format!("prometheus=http://127.0.0.1:{}/api/v1/write", free_port());
    let out = support::run(&["run", &url, "-d", "1s", "-r", "20", "--out", &nowhere], Duration::from_secs(60));
    out.assert_code(0).assert_no_panic();
    assert!(
        out.stderr.contains("warning: remote write sent 0 seconds") && out.stderr.contains("connect"),
        "{}",
        out.stderr
    );
    let out = support::run(&["run", &url, "-n", "5", "--out", "influxdb=http://127.0.0.1:1/"], Duration::from_secs(30));
    out.assert_code(2);
}

/// Under a coordinator (`--workers 2`), remote write sends the merged series and, labelled
/// `agent`, each agent's: in a real Prometheus the agents' counts add up to the run's, and
/// each agent's is its part of the summary's per-agent breakdown.
#[test]
fn remote_write_from_a_coordinator_labels_each_agents_series() {
    let _shared = support::shared();
    let sink = Sink::start(&[]);
    let prometheus = Prometheus::receiving();
    let out_flag = format!("prometheus={}", prometheus.write_url());
    let url = sink.url("/");
    let out = support::run(
        &["run", &url, "--workers", "2", "-d", "2s", "-r", "100", "--json", "--out", &out_flag],
        Duration::from_secs(90),
    );
    out.assert_code(0).assert_no_panic();
    let summary = out.json();
    let sent = count(&summary, "/requests/sent");
    assert_eq!(sent, 200, "{}", out.stdout);
    let run_id = run_id_of(&out.stderr);
    let agents = summary["agents"].as_array().expect("the per-agent breakdown");
    assert_eq!(agents.len(), 2);
    let deadline = Instant::now() + Duration::from_secs(30);
    for agent in agents {
        let name = agent["name"].as_str().expect("an agent's name");
        let query =
            format!("max_over_time(pummel_agent_requests_sent_total{{run_id=\"{run_id}\",agent=\"{name}\"}}[10m])");
        let mut seen = None;
        while Instant::now() < deadline {
            seen = prometheus.scalar(&query);
            if seen == Some(count(agent, "/sent") as f64) {
                break;
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        assert_eq!(seen, Some(count(agent, "/sent") as f64), "{query} against the summary's {agent}");
    }
    let all = format!("sum(max_over_time(pummel_agent_requests_sent_total{{run_id=\"{run_id}\"}}[10m]))");
    assert_eq!(prometheus.scalar(&all), Some(sent as f64), "the agents' parts add up to the run's");
}

/// The `run_id` remote write labels a run's series with, as the run says it on stderr.
fn run_id_of(stderr: &str) -> String {
    stderr
        .split("run_id=\"")
        .nth(1)
        .and_then(|rest| rest.split('"').next())
        .unwrap_or_else(|| panic!("the run id is said:\n{stderr}"))
        .to_string()
}

/// `hold` and `find-limit` serve the endpoint too: the connections a hold keeps open, and a
/// search's steps added into the same counters, read during `--metrics-linger`.
#[test]
fn hold_and_find_limit_serve_the_endpoint() {
    let _shared = support::shared();
    let sink = Sink::start(&["--delay", "10s"]);
    let url = sink.url("/");
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let listen_text = listen.to_string();
    let running = support::spawn(
        &["hold", &url, "-c", "20", "--mode", "pending", "-d", "3s", "--metrics-listen", &listen_text, "--quiet"],
        None,
    );
    assert!(support::wait_until_listening(listen, Duration::from_secs(20)));
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut held = None;
    while Instant::now() < deadline {
        held = scrape(listen).and_then(|text| value_of(&text, "pummel_open_connections"));
        if held == Some(20.0) {
            break;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(held, Some(20.0), "the held connections are a gauge");
    running.wait(Duration::from_secs(60)).assert_no_panic();

    let fast = Sink::start(&[]);
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let listen_text = listen.to_string();
    let url = fast.url("/");
    let running = support::spawn(
        &[
            "find-limit",
            &url,
            "--steps",
            "50,100",
            "--step",
            "1s",
            "--settle",
            "0s",
            "--json",
            "--metrics-listen",
            &listen_text,
            "--metrics-linger",
            "30s",
        ],
        None,
    );
    assert!(running.wait_for_stderr("serving the final values", Duration::from_secs(60)), "the search ended");
    let exposition = scrape(listen).expect("a scrape while it lingers");
    let ended: f64 = ["ok", "failed"]
        .iter()
        .filter_map(|o| value_of(&exposition, &format!("pummel_requests_total{{outcome=\"{o}\"}}")))
        .sum();
    running.signal("INT");
    let out = running.wait(Duration::from_secs(30));
    out.assert_code(0).assert_no_panic();
    assert!(out.elapsed < Duration::from_secs(25), "Ctrl-C ends the lingering");
    let summary = &out.json()["summary"];
    assert!(
        ended >= count(summary, "/requests/completed") as f64 && ended > 100.0,
        "every step is counted ({ended} ended):\n{exposition}"
    );
}

/// A Prometheus with native histograms on asks for the protobuf exposition and gets native
/// buckets: its `histogram_count` of the latency histogram is the count the text exposition
/// shows, and a quantile comes out of it.
#[test]
fn a_prometheus_with_native_histograms_gets_them() {
    let _shared = support::shared();
    let sink = Sink::start(&["--delay", "1ms..5ms"]);
    let listen: SocketAddr = ([127, 0, 0, 1], free_port()).into();
    let prometheus = Prometheus::scraping_native(listen);
    let listen_text = listen.to_string();
    let url = sink.url("/");
    let running = support::spawn(
        &[
            "run",
            &url,
            "-d",
            "2s",
            "-r",
            "200",
            "-c",
            "4",
            "--plain",
            "--metrics-listen",
            &listen_text,
            "--metrics-linger",
            "60s",
        ],
        None,
    );
    assert!(running.wait_for_stderr("serving the final values", Duration::from_secs(60)), "the run ended");
    let exposition = scrape(listen).expect("a text scrape");
    let count = value_of(&exposition, "pummel_request_latency_seconds_count").expect("the histogram's count");
    assert!(count > 300.0, "{count}");
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut seen = None;
    while Instant::now() < deadline {
        seen = prometheus.scalar("histogram_count(pummel_request_latency_seconds)");
        if seen == Some(count) {
            break;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(seen, Some(count), "the native histogram's count");
    let p50 = prometheus.scalar("histogram_quantile(0.5, pummel_request_latency_seconds)");
    assert!(p50.is_some_and(|p| (0.0008..0.01).contains(&p)), "a median between the sink's delays: {p50:?}");
    let classic = prometheus.query("pummel_request_latency_seconds_bucket").unwrap_or_default();
    assert_eq!(classic.as_array().map(Vec::len), Some(0), "native only, as Prometheus keeps it: {classic}");
    running.signal("INT");
    running.wait(Duration::from_secs(30)).assert_code(0).assert_no_panic();
}
