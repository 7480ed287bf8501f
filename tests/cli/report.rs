//! `pummel report` and `pummel compare` on a real results file: the HTML page is well-formed and
//! has one chart per series group with one point per second, renders in a real (headless)
//! browser without console errors, the markdown matches a snapshot (numbers redacted), the CSV
//! has a row per second, bad files exit 2, and `compare` tells identical runs from a run whose
//! latency doubled, failing the gate under `--fail-if`.
//!
//! One real run (sink with 1-5 ms delays and 2 % errors, 400 req/s for 3 s) is made once per
//! test process and shared by every test here, which only read it.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::thread;
use std::time::{Duration, Instant, SystemTime};

use serde_json::Value;

use crate::support::{self, Sink};

const LIMIT: Duration = Duration::from_secs(30);

/// The chart ids of the page, in order (one per series group).
const CHARTS: [&str; 6] = ["rate", "latency", "errors", "connections", "lag", "cpu"];

static RESULTS: OnceLock<PathBuf> = OnceLock::new();

/// The shared results file, made on first use under cargo's per-target temporary directory
/// (files there older than 10 minutes, left by earlier test processes, are removed first).
fn real_results() -> &'static Path {
    RESULTS.get_or_init(|| {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("report-e2e");
        std::fs::create_dir_all(&dir).expect("create the shared test directory");
        if let Ok(entries) = std::fs::read_dir(&dir) {
            for entry in entries.flatten() {
                let age = entry
                    .metadata()
                    .and_then(|m| m.modified())
                    .ok()
                    .and_then(|t| SystemTime::now().duration_since(t).ok());
                if age.is_some_and(|a| a > Duration::from_secs(600)) {
                    let _ = std::fs::remove_file(entry.path());
                }
            }
        }
        let path = dir.join(format!("results-{}.json", std::process::id()));
        let file = path.to_str().expect("UTF-8 path").to_string();
        let _load = support::shared();
        let sink = Sink::start(&["--delay", "1ms..5ms", "--error-rate", "2%"]);
        let out = support::run(
            &["run", &sink.url("/report"), "-r", "400", "-d", "3s", "--threshold", "p99<10s", "-o", &file, "--quiet"],
            LIMIT,
        );
        out.assert_code(0);
        path
    })
}

fn timeline(results: &Path) -> Vec<Value> {
    support::read_json(results)["timeline"].as_array().cloned().expect("a timeline array")
}

/// Runs `pummel report RESULTS extra...` and returns its output.
fn report(results: &Path, extra: &[&str]) -> support::Output {
    let mut args = vec!["report", results.to_str().expect("UTF-8 path")];
    args.extend_from_slice(extra);
    support::run(&args, LIMIT)
}

// ---------------------------------------------------------------- a tiny well-formedness check

/// An element of the page: its name and attributes.
#[derive(Debug)]
struct Element {
    name: String,
    attrs: BTreeMap<String, String>,
}

/// Elements that never have an end tag in HTML.
const VOID: [&str; 6] = ["meta", "br", "img", "input", "link", "hr"];

/// Walks the page's tags and checks that every element is closed in order (no parser crate
/// needed: the page is generated, so its syntax is regular). Returns the elements in order.
fn check_balanced(page: &str) -> Vec<Element> {
    let mut stack: Vec<String> = Vec::new();
    let mut elements = Vec::new();
    let mut rest = page;
    while let Some(open) = rest.find('<') {
        rest = &rest[open..];
        if rest.starts_with("<!") {
            rest = &rest[rest.find('>').expect("a closed declaration") + 1..];
            continue;
        }
        let end = rest.find('>').unwrap_or_else(|| panic!("an unclosed tag at: {}", &rest[..rest.len().min(80)]));
        let tag = &rest[1..end];
        rest = &rest[end + 1..];
        if let Some(name) = tag.strip_prefix('/') {
            let top = stack.pop().unwrap_or_else(|| panic!("</{name}> closes nothing"));
            assert_eq!(top, name.trim(), "</{name}> closes <{top}>");
            continue;
        }
        let self_closing = tag.ends_with('/');
        let tag = tag.trim_end_matches('/');
        let name: String = tag.chars().take_while(|c| !c.is_whitespace()).collect();
        assert!(!name.is_empty() && name.chars().all(|c| c.is_ascii_alphanumeric()), "bad tag <{tag}>");
        let mut attrs = BTreeMap::new();
        let mut a = tag[name.len()..].trim();
        while !a.is_empty() {
            let eq = a.find("=\"").unwrap_or_else(|| panic!("an attribute without a quoted value in <{tag}>"));
            let key = a[..eq].trim().to_string();
            let value_end = a[eq + 2..].find('"').unwrap_or_else(|| panic!("an unterminated attribute in <{tag}>"));
            attrs.insert(key, a[eq + 2..eq + 2 + value_end].to_string());
            a = a[eq + 2 + value_end + 1..].trim();
        }
        if name == "style" {
            // Raw text: skip to its end tag.
            let close = rest.find("</style>").expect("a closed <style>");
            assert!(!rest[..close].contains('<'), "'<' inside <style>");
            rest = &rest[close + "</style>".len()..];
        } else if !self_closing && !VOID.contains(&name.as_str()) {
            stack.push(name.clone());
        }
        elements.push(Element { name, attrs });
    }
    assert!(stack.is_empty(), "unclosed elements: {stack:?}");
    elements
}

/// The `<svg class="chart">` blocks of a page, as (id, data-points, text of the block).
fn charts(page: &str) -> Vec<(String, usize, &str)> {
    page.match_indices("<svg ")
        .map(|(start, _)| {
            let block = &page[start..start + page[start..].find("</svg>").expect("a closed <svg>")];
            let attr = |name: &str| -> String {
                let key = format!("{name}=\"");
                let from = block.find(&key).map(|i| i + key.len()).unwrap_or_else(|| panic!("no {name} on a chart"));
                block[from..from + block[from..].find('"').expect("closed attribute")].to_string()
            };
            let points = attr("data-points").parse().expect("data-points is a number");
            (attr("data-chart"), points, block)
        })
        .collect()
}

/// The series of one chart block: (name, data-points, vertices of its polylines).
fn series(block: &str) -> Vec<(String, usize, usize)> {
    block
        .split("<g class=\"series\" ")
        .skip(1)
        .map(|s| {
            let group = &s[..s.find("</g>").expect("a closed series group")];
            let value = |key: &str| {
                let from = group.find(key).map(|i| i + key.len()).expect("series attribute");
                group[from..from + group[from..].find('"').expect("closed attribute")].to_string()
            };
            let vertices = group
                .split("<polyline points=\"")
                .skip(1)
                .map(|p| p[..p.find('"').expect("closed points")].split(' ').count())
                .sum();
            (value("data-series=\""), value("data-points=\"").parse().expect("a number"), vertices)
        })
        .collect()
}

// ---------------------------------------------------------------------------------- report

#[test]
fn html_report_has_one_chart_per_series_group_with_one_point_per_second() {
    let results = real_results();
    let entries = timeline(results);
    let n = entries.len();
    assert!(n >= 3, "a 3-second run has at least 3 seconds");
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "report.html");
    report(results, &["-o", &file]).assert_code(0).assert_no_panic();
    let page = std::fs::read_to_string(&path).expect("the report was written");

    let elements = check_balanced(&page);
    assert!(elements.iter().any(|e| e.name == "html" && e.attrs.get("lang").is_some_and(|l| l == "en")));
    let with_class = |name: &str, class: &str| {
        elements.iter().filter(|e| e.name == name && e.attrs.get("class").is_some_and(|c| c == class)).count()
    };
    assert_eq!(with_class("svg", "chart"), CHARTS.len());
    assert_eq!(with_class("rect", "hit"), CHARTS.len() * n);
    assert!(!page.contains("<script") && !page.contains("<link") && !page.contains("src="), "nothing is loaded");

    let charts = charts(&page);
    assert_eq!(charts.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>(), CHARTS);
    let has = |key: &str| entries.iter().filter(|e| !e[key].is_null()).count();
    for (id, points, block) in &charts {
        assert_eq!(*points, n, "chart {id}: one point per timeline entry");
        assert_eq!(block.matches("class=\"hit\"").count(), n, "chart {id}: one tooltip per second");
        let series = series(block);
        assert!(!series.is_empty(), "chart {id} has no series");
        for (name, declared, vertices) in &series {
            assert_eq!(declared, vertices, "chart {id}, series {name}: data-points vs polyline vertices");
            let expected = match (id.as_str(), name.as_str()) {
                ("latency", _) => has("latency_ms"),
                ("lag", _) => has("schedule_lag_ms"),
                // Nothing is offered in the drain after the window.
                ("rate", "target") => has("target_rate"),
                _ => n,
            };
            assert_eq!(*vertices, expected, "chart {id}, series {name}");
        }
        // Axes, ticks, units and a legend.
        assert!(block.contains("class=\"axes\"") && block.contains("class=\"axis-title\""), "chart {id} axes");
        assert!(block.matches("text-anchor=\"end\"").count() >= 2, "chart {id} y ticks");
        assert!(block.contains("class=\"legend-item\""), "chart {id} legend");
    }
    let latency = series(charts[1].2);
    assert_eq!(latency.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["p50", "p90", "p99", "max"]);
    let errors = series(charts[2].2);
    assert_eq!(errors.iter().map(|s| s.0.as_str()).collect::<Vec<_>>(), ["status_5xx"]);
    for heading in ["Latency", "Requests", "Failures by kind", "Responses by status", "Thresholds", "Stages"] {
        assert!(page.contains(&format!("<h3>{heading}</h3>")), "table {heading}");
    }
}

/// A real run with a probe and the sink watched: the page adds the target's side (probes, fds,
/// TCP states, accept queue) with one point per second, the CSV gets their columns, and the
/// markdown their tables.
#[test]
fn observed_run_report_shows_the_target_side() {
    let _load = support::shared();
    let sink = Sink::start(&["--delay", "1ms..3ms"]);
    let dir = support::temp_dir();
    let (results, results_file) = support::path_in(&dir, "observed.json");
    let (page_path, page_file) = support::path_in(&dir, "observed.html");
    let pid = sink.pid().to_string();
    let url = sink.url("/observed");
    // 5 s: the watch samples once a second on its own thread, so on a loaded machine a sample
    // can land in the next second; a few seconds leave at least two seconds with samples.
    let args = ["run", &url, "-r", "200", "-d", "5s", "--probe", &url, "--probe-every", "250ms"];
    let out = support::run(&[&args[..], &["--watch-pid", &pid, "--quiet", "-o", &results_file]].concat(), LIMIT);
    out.assert_code(0);
    let entries = timeline(&results);
    let n = entries.len();
    report(&results, &["-o", &page_file]).assert_code(0).assert_no_panic();
    let page = std::fs::read_to_string(&page_path).expect("the report was written");
    check_balanced(&page);
    let charts = charts(&page);
    let ids: Vec<&str> = charts.iter().map(|(id, _, _)| id.as_str()).collect();
    let observed = ["probes", "target-fds", "target-tcp", "target-queue"];
    assert_eq!(ids, [&CHARTS[..], &observed[..]].concat(), "a --probe (not --probe-json) run has no value chart");
    let with = |key: &str| {
        entries.iter().filter(|e| e[key].as_array().is_some_and(|a| !a.is_empty()) || e[key].is_object()).count()
    };
    for (id, points, block) in &charts[CHARTS.len()..] {
        assert_eq!(*points, n, "chart {id}: one point per timeline entry");
        assert_eq!(block.matches("class=\"hit\"").count(), n, "chart {id}: one tooltip per second");
        let series = series(block);
        for (name, declared, vertices) in &series {
            assert_eq!(declared, vertices, "chart {id}, series {name}");
        }
        let first = &series[0];
        let expected = if *id == "probes" { with("probes") } else { with("target") };
        assert!(expected >= 2, "chart {id}: {expected} seconds with samples");
        assert_eq!(first.1, expected, "chart {id}: a point for every second with a sample");
    }
    let probe_series = series(charts[CHARTS.len()].2);
    let label = url.trim_start_matches("http://");
    assert_eq!(probe_series[0].0, format!("{label} latency"));
    let tcp = series(charts[CHARTS.len() + 2].2);
    assert_eq!(tcp.iter().take(2).map(|s| s.0.as_str()).collect::<Vec<_>>(), ["ESTABLISHED", "CLOSE_WAIT"]);
    assert!(page.contains("<h2>The target's side</h2>"));

    let csv = report(&results, &["--format", "csv"]);
    csv.assert_code(0);
    let header = csv.stdout.lines().next().expect("a header");
    assert!(header.contains(",probe_ok,probe_latency_ms,target_open_fds,target_fd_limit,"), "{header}");
    let md = report(&results, &["--format", "md"]);
    md.assert_code(0);
    assert!(md.stdout.contains("## Probes") && md.stdout.contains("## Target"), "{}", md.stdout);
}

#[test]
fn html_goes_to_report_html_by_default() {
    let results = real_results();
    let dir = support::temp_dir();
    let out = support::spawn(&["report", results.to_str().expect("UTF-8 path")], Some(dir.path())).wait(LIMIT);
    out.assert_code(0);
    assert!(out.stdout.is_empty(), "the page is not printed: {}", out.stdout);
    assert!(dir.path().join("report.html").is_file());
    assert!(out.stderr.contains("report.html"), "{}", out.stderr);
}

/// True for a cell that holds a measured figure: a number with units (`1.59ms`, `20,000`,
/// `378 (1.9%)`, `1.3 MiB (131.7 KiB/s)`, `75us / 276us`), not a label such as `p50` or
/// `5xx status: the server failed`.
fn is_figure(cell: &str) -> bool {
    let mut rest = cell.to_string();
    for unit in ["req/s", "KiB/s", "MiB/s", "GiB/s", "B/s", "KiB", "MiB", "GiB", "ms", "us", "s", "B"] {
        rest = rest.replace(unit, "");
    }
    cell.starts_with(|c: char| c.is_ascii_digit()) && rest.chars().all(|c| c.is_ascii_digit() || ".,%()/ -".contains(c))
}

/// Replaces what changes from run to run: every number outside tables, every table cell that
/// is a figure, the "what limited the run" row's value and a limit badge.
fn redact_markdown(text: &str) -> String {
    let digits = |s: &str| {
        let mut out = String::new();
        let mut in_number = false;
        for c in s.chars() {
            if c.is_ascii_digit() {
                if !in_number {
                    out.push('N');
                }
                in_number = true;
            } else {
                in_number = false;
                out.push(c);
            }
        }
        out
    };
    text.lines()
        .map(|line| {
            if let Some(cells) = line.strip_prefix("| ").and_then(|l| l.strip_suffix(" |")) {
                let cells: Vec<&str> = cells.split(" | ").collect();
                let redacted: Vec<String> = cells
                    .iter()
                    .enumerate()
                    .map(|(i, c)| match (i, cells[0]) {
                        (0, _) => c.to_string(),
                        (_, "what limited the run") => "<limit>".to_string(),
                        _ if is_figure(c) => "N".to_string(),
                        _ => c.to_string(),
                    })
                    .collect();
                format!("| {} |", redacted.join(" | "))
            } else {
                let line = line.split(" · **the ").next().unwrap_or(line);
                // Thousands separators: 1,200 and 950 both read N.
                digits(line).replace("N,N,N", "N").replace("N,N", "N")
            }
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn markdown_tables_match_the_snapshot() {
    let results = real_results();
    let out = report(results, &["--format", "md"]);
    out.assert_code(0).assert_no_panic();
    assert!(out.stdout.contains("## Stages"), "{}", out.stdout);
    assert!(is_figure("1.3 MiB (131.7 KiB/s)") && is_figure("75us / 276us") && is_figure("378 (1.9%)"));
    assert!(!is_figure("5xx status: the server failed") && !is_figure("p50"));
    let redacted = redact_markdown(&out.stdout);
    insta::with_settings!({ snapshot_path => "../snapshots", prepend_module_to_snapshot => false }, {
        insta::assert_snapshot!("report_markdown", redacted);
    });
}

#[test]
fn csv_has_a_header_and_one_row_per_second() {
    let results = real_results();
    let n = timeline(results).len();
    let out = report(results, &["--format", "csv"]);
    out.assert_code(0);
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines.len(), n + 1, "{}", out.stdout);
    assert!(lines[0].starts_with("second,warmup,target_rate,sent,completed,"), "{}", lines[0]);
    assert!(lines[0].ends_with(",errors_status_5xx"), "{}", lines[0]);
    let width = lines[0].split(',').count();
    for (i, line) in lines.iter().enumerate().skip(1) {
        assert_eq!(line.split(',').count(), width, "row {i}: {line}");
        assert!(line.starts_with(&format!("{i},")), "row {i} is second {i}: {line}");
    }
    // -o writes the same text to a file.
    let dir = support::temp_dir();
    let (path, file) = support::path_in(&dir, "t.csv");
    report(results, &["--format", "csv", "-o", &file]).assert_code(0);
    assert_eq!(std::fs::read_to_string(path).expect("csv written"), out.stdout);
}

#[test]
fn bad_results_files_exit_2_with_a_clear_message() {
    let results = real_results();
    let dir = support::temp_dir();
    let (not_json, not_json_file) = support::path_in(&dir, "notes.txt");
    std::fs::write(&not_json, "these are not results").expect("write");
    let (future, future_file) = support::path_in(&dir, "future.json");
    let mut doc = support::read_json(results);
    doc["schema_version"] = Value::from(99);
    std::fs::write(&future, doc.to_string()).expect("write");
    let (shape, shape_file) = support::path_in(&dir, "shape.json");
    std::fs::write(&shape, r#"{"schema_version": 1, "summary": {}}"#).expect("write");
    let (_, missing_file) = support::path_in(&dir, "missing.json");
    let cases = [
        (missing_file.as_str(), "cannot read"),
        (not_json_file.as_str(), "not JSON"),
        (future_file.as_str(), "schema_version 99"),
        (shape_file.as_str(), "missing field"),
    ];
    for (file, expected) in cases {
        for format in ["html", "md", "csv"] {
            let out = support::run(&["report", file, "--format", format, "-o", "-"], LIMIT);
            out.assert_code(2).assert_no_panic();
            assert!(out.stderr.contains(expected) && out.stderr.contains(file), "{file}: {}", out.stderr);
        }
        let out = support::run(&["compare", results.to_str().expect("UTF-8"), file], LIMIT);
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains(expected), "{file}: {}", out.stderr);
    }
}

// --------------------------------------------------------------------------------- browser

const CHROMIUM: &str = "/usr/bin/chromium";

/// Runs a command in its own process group, capturing its output; after `limit` the whole
/// group (chromium and the helpers it started) is killed by its id and the test fails.
fn run_bounded(command: &mut Command, limit: Duration) -> (Option<i32>, String, String) {
    use std::os::unix::process::CommandExt;
    let mut child = command
        .process_group(0)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {command:?}: {e}"));
    let drain = |pipe: Option<Box<dyn Read + Send>>| {
        thread::spawn(move || {
            let mut text = String::new();
            if let Some(mut pipe) = pipe {
                let mut bytes = Vec::new();
                let _ = pipe.read_to_end(&mut bytes);
                text = String::from_utf8_lossy(&bytes).into_owned();
            }
            text
        })
    };
    let stdout = drain(child.stdout.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let stderr = drain(child.stderr.take().map(|p| Box::new(p) as Box<dyn Read + Send>));
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() >= deadline => break None,
            Ok(None) => thread::sleep(Duration::from_millis(20)),
            Err(e) => panic!("waiting for chromium: {e}"),
        }
    };
    if status.is_none() {
        let group = format!("-{}", child.id());
        let _ = Command::new("kill").args(["-KILL", "--", &group]).status();
        let _ = child.wait();
    }
    let (out, err) = (stdout.join().unwrap_or_default(), stderr.join().unwrap_or_default());
    match status {
        Some(status) => (status.code(), out, err),
        None => panic!("chromium did not finish within {limit:?}; killed its process group\n{err}"),
    }
}

/// Chromium's headless flags: no network beyond the file, a fresh profile in `profile`.
fn chromium(profile: &Path) -> Command {
    let mut command = Command::new(CHROMIUM);
    command.args([
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--enable-logging=stderr",
        "--v=0",
    ]);
    command.arg(format!("--user-data-dir={}", profile.display()));
    command
}

/// Console messages in chromium's log: the page has no script, so any is a fault.
fn console_lines(log: &str) -> Vec<&str> {
    log.lines().filter(|l| l.contains(":CONSOLE") || l.contains("Uncaught")).collect()
}

#[test]
fn report_renders_in_headless_chromium() {
    if !Path::new(CHROMIUM).exists() {
        if std::env::var("PUMMEL_SKIP_BROWSER").as_deref() == Ok("1") {
            eprintln!("skipping the browser check: {CHROMIUM} is missing and PUMMEL_SKIP_BROWSER=1");
            return;
        }
        panic!(
            "{CHROMIUM} is missing: run .ci/setup-browser to install it \
             (or set PUMMEL_SKIP_BROWSER=1 to skip this check)"
        );
    }
    let results = real_results();
    let n = timeline(results).len();
    let dir = support::temp_dir();
    let (page, page_file) = support::path_in(&dir, "report.html");
    report(results, &["-o", &page_file]).assert_code(0);
    let url = format!("file://{}", page.display());

    // The DOM as the browser built it: every chart there, with its points.
    let (code, dom, log) =
        run_bounded(chromium(&dir.path().join("profile-dom")).arg("--dump-dom").arg(&url), Duration::from_secs(60));
    assert_eq!(code, Some(0), "chromium --dump-dom failed:\n{log}");
    assert!(console_lines(&log).is_empty(), "console messages:\n{}", console_lines(&log).join("\n"));
    let charts = charts(&dom);
    assert_eq!(charts.iter().map(|(id, _, _)| id.as_str()).collect::<Vec<_>>(), CHARTS, "charts in the DOM");
    for (id, points, block) in &charts {
        assert_eq!(*points, n, "chart {id}");
        let vertices: usize = series(block).iter().map(|s| s.2).sum();
        assert!(vertices >= n, "chart {id} is empty in the browser's DOM");
    }

    // A screenshot: a real PNG of the requested size, not a blank page.
    let (png, png_file) = support::path_in(&dir, "report.png");
    let (code, _, log) = run_bounded(
        chromium(&dir.path().join("profile-shot"))
            .arg(format!("--screenshot={png_file}"))
            .arg("--window-size=1280,2400")
            .arg(&url),
        Duration::from_secs(60),
    );
    assert_eq!(code, Some(0), "chromium --screenshot failed:\n{log}");
    assert!(console_lines(&log).is_empty(), "console messages:\n{}", console_lines(&log).join("\n"));
    let bytes = std::fs::read(&png).unwrap_or_else(|e| panic!("no screenshot at {png_file}: {e}\n{log}"));
    assert!(bytes.starts_with(b"\x89PNG\r\n\x1a\n"), "the screenshot is not a PNG");
    let be32 = |at: usize| u32::from_be_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    assert_eq!((be32(16), be32(20)), (1280, 2400), "screenshot size");
    // A blank 1280x2400 page compresses to a few KiB; charts, text and tables do not.
    assert!(bytes.len() > 60_000, "the screenshot looks empty ({} bytes)", bytes.len());
}

// --------------------------------------------------------------------------------- compare

/// Writes a copy of `results` whose every latency (summary, service time, stages, timeline)
/// is multiplied by `factor`.
fn scaled_copy(results: &Path, factor: f64, to: &Path) {
    let mut doc = support::read_json(results);
    let scale = |v: &mut Value| {
        if let Some(object) = v.as_object_mut() {
            for value in object.values_mut() {
                if let Some(x) = value.as_f64() {
                    *value = Value::from(x * factor);
                }
            }
        }
    };
    scale(&mut doc["summary"]["latency_ms"]);
    scale(&mut doc["summary"]["service_time_ms"]);
    for stage in doc["summary"]["stages"].as_array_mut().expect("stages") {
        scale(&mut stage["latency_ms"]);
    }
    for entry in doc["timeline"].as_array_mut().expect("timeline") {
        scale(&mut entry["latency_ms"]);
    }
    support::assert_valid_results(&doc);
    std::fs::write(to, doc.to_string()).expect("write the scaled copy");
}

fn compare(base: &str, new: &str, extra: &[&str]) -> support::Output {
    let mut args = vec!["compare", base, new];
    args.extend_from_slice(extra);
    support::run(&args, LIMIT)
}

#[test]
fn identical_runs_compare_the_same_on_every_row() {
    let results = real_results().to_str().expect("UTF-8 path");
    let out = compare(results, results, &["--json", "--fail-if", "p99>+10%", "--fail-if", "rate<-5%"]);
    out.assert_code(0).assert_no_panic();
    let json = out.json();
    let rows = json["rows"].as_array().expect("rows");
    let metrics: Vec<&str> = rows.iter().filter_map(|r| r["metric"].as_str()).collect();
    assert_eq!(metrics, ["rate", "p50", "p90", "p99", "max", "mean", "service.p99", "error_rate"]);
    for row in rows {
        assert_eq!(row["verdict"], "same", "{row}");
        assert_eq!(row["change_pct"], 0.0, "{row}");
    }
    assert_eq!(json["failed"], false);
    let text = compare(results, results, &[]);
    text.assert_code(0);
    for metric in ["achieved rate", "latency p50", "latency p99", "service time p99", "error rate"] {
        let line = text.stdout.lines().find(|l| l.starts_with(metric)).unwrap_or_else(|| panic!("{}", text.stdout));
        assert!(line.ends_with("same"), "{line}");
    }
}

#[test]
fn doubled_latency_is_worse_and_fails_the_gate() {
    let results = real_results();
    let dir = support::temp_dir();
    let (slow, slow_file) = support::path_in(&dir, "slow.json");
    scaled_copy(results, 2.0, &slow);
    let base = results.to_str().expect("UTF-8 path");

    let out = compare(base, &slow_file, &["--fail-if", "p99>+10%"]);
    out.assert_code(1).assert_no_panic();
    let p99 = out.stdout.lines().find(|l| l.starts_with("latency p99")).unwrap_or_else(|| panic!("{}", out.stdout));
    assert!(p99.ends_with("worse") && p99.contains("+100.0%"), "{p99}");
    assert!(out.stdout.contains("FAIL p99>+10%"), "{}", out.stdout);
    assert!(out.stderr.contains("p99>+10%"), "{}", out.stderr);

    let json = compare(base, &slow_file, &["--json", "--fail-if", "p99>+10%", "--fail-if", "error_rate>+0.5%"]);
    json.assert_code(1);
    let json = json.json();
    let row = |metric: &str| {
        json["rows"].as_array().and_then(|rows| rows.iter().find(|r| r["metric"] == metric)).cloned().expect("row")
    };
    assert_eq!(row("p99")["verdict"], "worse");
    assert_eq!(row("p50")["verdict"], "worse");
    assert_eq!(row("rate")["verdict"], "same");
    assert_eq!(json["fail_if"][0]["holds"], true);
    assert_eq!(json["fail_if"][1]["holds"], false);
    assert_eq!(json["failed"], true);

    // The other way round it is better, and the gate passes.
    compare(&slow_file, base, &["--fail-if", "p99>+10%"]).assert_code(0);
}

#[test]
fn bad_fail_if_rules_exit_2_pointing_at_the_bad_part() {
    let results = real_results().to_str().expect("UTF-8 path");
    for (rule, expected) in [
        ("p98>+10%", "unknown metric 'p98'"),
        ("p99>=10%", "only > and <"),
        ("p99>+10", "needs a unit"),
        ("p99>+10kg", "unit 'kg'"),
        ("rate", "expected > or <"),
    ] {
        let out = compare(results, results, &["--fail-if", rule]);
        out.assert_code(2).assert_no_panic();
        assert!(out.stderr.contains(expected), "{rule}: {}", out.stderr);
        assert!(out.stderr.contains('^'), "{rule}: no pointer in {}", out.stderr);
    }
}
