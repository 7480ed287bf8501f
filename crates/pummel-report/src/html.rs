//! The HTML report: one self-contained page that a person would rather look at than read.
//!
//! Top to bottom: the headline (method, URL, badges for how the run ended, when, how long,
//! under which load), key figures as tiles, for find-limit runs the latency-vs-throughput
//! curve beside the verdict and the per-step table, then one chart per series group over time
//! (rate, latency, failures by kind, connections and in-flight, schedule lag, CPU), then, when
//! the run had probes or watched the target, the target's side (probes, file descriptors, TCP
//! states, accept queue), then the tables. The style sheet and every chart are inline and there is no script, so the file
//! works offline, from an e-mail attachment or a CI artifact, and loads nothing from anywhere.
//!
//! The page is also well-formed XML (void elements self-closed, every text escaped, only the
//! five XML entities used), which the tests check with a strict parser.

use std::fmt::Write;

use pummel_results::document::{FindLimitReport, ResultsDocument};

use crate::charts;
use crate::fmt;
use crate::headline::Headline;
use crate::svg::{Chart, escape};
use crate::tables::{self, Table, Tone};

const CSS: &str = include_str!("page.css");

/// What each chart over time shows, written under it.
fn caption(id: &str) -> &'static str {
    match id {
        "rate" => {
            "Requests completed per second against the rate the schedule asked for (dashed). A gap between them means the target, or the generator, could not keep up."
        }
        "latency" => {
            "Percentiles of the requests completed in each second, counted from their intended start, so time spent waiting in line is included."
        }
        "errors" => "Failed requests per second, one line per kind of failure.",
        "connections" => "Open connections and requests sent but not yet answered, at the end of each second.",
        "lag" => {
            "How late the generator dispatched requests versus the schedule. Above 10 ms, the generator itself was struggling."
        }
        "cpu" => "CPU used by pummel itself, in percent of one core, to tell a busy generator from a slow target.",
        "probes" => {
            "One request at a time on a fresh connection, beside the load: the slowest answer of each second. Red dots and shading mark seconds where a probe was NOK (a dot on the floor: no answer at all)."
        }
        "probe-values" => "The number each --probe-json probe read from its answer, per second.",
        "target-fds" => {
            "File descriptors the target holds open, against its soft limit (dotted line; named in the title instead when it is far above): at the limit accept() fails with EMFILE."
        }
        "target-tcp" => {
            "The target's TCP sockets by state. CLOSE_WAIT that keeps growing means the target does not close connections its clients have closed."
        }
        "target-queue" => {
            "Connections waiting for the target to accept() them, and connections the kernel dropped because a listen queue was full (counted for the whole system)."
        }
        _ => "",
    }
}

/// Renders the report of `doc`; `source` (the results file's name) is shown in the footer.
pub fn render(doc: &ResultsDocument, source: &str) -> String {
    let headline = Headline::of(doc);
    let mut out = String::with_capacity(64 * 1024 + doc.timeline.len() * 2048);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\"/>\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\"/>\n");
    let _ = writeln!(out, "<meta name=\"generator\" content=\"pummel {}\"/>", escape(&doc.pummel_version));
    let _ = writeln!(out, "<title>pummel report: {} {}</title>", escape(&headline.method), escape(&headline.url));
    let _ = writeln!(out, "<style>\n{CSS}</style>\n</head>\n<body>\n<main>");
    header(&mut out, &headline);
    tiles(&mut out, doc);
    if let Some(report) = &doc.find_limit {
        find_limit(&mut out, doc, report, &headline);
    }
    out.push_str("<section class=\"over-time\">\n<h2>Over time</h2>\n<div class=\"grid\">\n");
    for chart in charts::timeline_charts(doc) {
        figure(&mut out, &chart, caption(&chart.id));
    }
    out.push_str("</div>\n</section>\n");
    let observed = charts::observer_charts(doc);
    if !observed.is_empty() {
        out.push_str("<section class=\"over-time target-side\">\n<h2>The target's side</h2>\n<div class=\"grid\">\n");
        for chart in observed {
            figure(&mut out, &chart, caption(&chart.id));
        }
        out.push_str("</div>\n</section>\n");
    }
    out.push_str("<section>\n<h2>Figures</h2>\n<div class=\"tables\">\n");
    for table in tables::all(doc) {
        if table.title == "Steps" {
            continue; // shown with the find-limit curve
        }
        let wide = matches!(table.title.as_str(), "Stages" | "Latency" | "Probes");
        table_html(&mut out, &table, wide);
    }
    out.push_str("</div>\n</section>\n");
    let _ = writeln!(
        out,
        "<footer>Generated by pummel {} from {}. Latency counts from each request's intended start \
         (coordinated omission corrected); service time counts from the actual send. \
         One chart point per second of the run.</footer>",
        escape(&doc.pummel_version),
        escape(source)
    );
    out.push_str("</main>\n</body>\n</html>\n");
    out
}

fn header(out: &mut String, h: &Headline) {
    out.push_str("<header class=\"top\">\n<div class=\"brand\">pummel report</div>\n");
    let _ = writeln!(
        out,
        "<h1><span class=\"method\">{}</span><span class=\"url\">{}</span></h1>",
        escape(&h.method),
        escape(&h.url)
    );
    out.push_str("<div class=\"badges\">");
    for b in &h.badges {
        let _ = write!(out, "<span class=\"badge {}\">{}</span>", tone_class(b.tone), escape(&b.text));
    }
    out.push_str("</div>\n<dl class=\"facts\">");
    for (k, v) in &h.facts {
        let _ = write!(out, "<div><dt>{}</dt><dd>{}</dd></div>", escape(k), escape(v));
    }
    out.push_str("</dl>\n</header>\n");
}

fn tiles(out: &mut String, doc: &ResultsDocument) {
    let s = &doc.summary;
    let latency = s.latency_ms;
    let target =
        s.rate.offered.map(|t| format!("offered {} req/s", fmt::rate(t))).unwrap_or_else(|| "closed model".into());
    let failed_tone = if s.requests.failed > 0 { "bad" } else { "good" };
    let tiles = [
        ("achieved (successful) rate", format!("{} req/s", fmt::rate(s.rate.achieved)), target, ""),
        (
            "latency p50",
            fmt::or_dash(latency.map(|l| l.p50), fmt::ms),
            format!("mean {}", fmt::or_dash(latency.map(|l| l.mean), fmt::ms)),
            "",
        ),
        (
            "latency p99",
            fmt::or_dash(latency.map(|l| l.p99), fmt::ms),
            format!("max {}", fmt::or_dash(latency.map(|l| l.max), fmt::ms)),
            "",
        ),
        (
            "error rate",
            fmt::percent(s.requests.error_rate),
            format!("{} of {} failed", fmt::thousands(s.requests.failed), fmt::thousands(s.requests.completed)),
            failed_tone,
        ),
        ("requests", fmt::thousands(s.requests.completed), format!("in {}", fmt::seconds(s.duration_s)), ""),
    ];
    out.push_str("<section class=\"tiles\">\n");
    for (label, value, sub, tone) in tiles {
        let _ = writeln!(
            out,
            "<div class=\"tile {tone}\"><div class=\"label\">{}</div><div class=\"value\">{}</div><div class=\"sub\">{}</div></div>",
            escape(label),
            escape(&value),
            escape(&sub)
        );
    }
    out.push_str("</section>\n");
}

fn find_limit(out: &mut String, doc: &ResultsDocument, report: &FindLimitReport, h: &Headline) {
    out.push_str("<section class=\"find-limit\">\n<h2>Capacity</h2>\n<div class=\"grid\">\n");
    let chart = charts::hockey_stick(doc, report);
    figure(
        out,
        &chart,
        "Each point is one step: its achieved rate and its latency. Latency stays flat while the target keeps up, \
         then turns up sharply (the hockey stick). Green points met the SLO, red ones did not.",
    );
    out.push_str("<div class=\"verdict-card\">\n");
    match report.capacity_rps {
        Some(c) => {
            let _ = writeln!(out, "<div class=\"capacity\">≈ {} req/s</div>", escape(&fmt::rate(c)));
        }
        None => out.push_str("<div class=\"capacity none\">no capacity found</div>\n"),
    }
    if let Some(verdict) = &h.verdict {
        let _ = writeln!(out, "<p class=\"line\">{}</p>", escape(verdict));
    }
    if let Some(planning) = &h.planning {
        let _ = writeln!(out, "<p class=\"planning\">{}</p>", escape(planning));
    }
    out.push_str("<p>A step was good when every SLO held and the generator kept up:</p>\n<ul>");
    for slo in &report.slo {
        let _ = write!(out, "<li>{}</li>", escape(slo));
    }
    let _ = write!(out, "<li>error rate at most {}</li>", escape(&fmt::percent(report.max_error_rate)));
    out.push_str("</ul>\n");
    if report.generator_limited {
        out.push_str(
            "<p class=\"warn\">The generator, not the target, limited the search: the capacity is a lower bound.</p>\n",
        );
    }
    out.push_str("</div>\n</div>\n");
    table_html(out, &tables::steps(doc, report), true);
    out.push_str("</section>\n");
}

fn figure(out: &mut String, chart: &Chart, caption: &str) {
    let _ = writeln!(out, "<figure id=\"{}\">", escape(&chart.id));
    out.push_str(&chart.to_svg());
    if !caption.is_empty() {
        let _ = write!(out, "\n<figcaption>{}</figcaption>", escape(caption));
    }
    out.push_str("\n</figure>\n");
}

fn tone_class(tone: Tone) -> &'static str {
    match tone {
        Tone::Plain => "plain",
        Tone::Good => "good",
        Tone::Bad => "bad",
        Tone::Warn => "warn",
    }
}

fn table_html(out: &mut String, table: &Table, wide: bool) {
    let id = table.title.to_lowercase().replace(' ', "-");
    let _ = write!(out, "<div class=\"table-block{}\" id=\"table-{}\">", if wide { " wide" } else { "" }, escape(&id));
    let _ = write!(out, "<h3>{}</h3><div class=\"table-wrap\"><table>\n<thead><tr>", escape(&table.title));
    for (h, numeric) in table.headers.iter().zip(&table.numeric) {
        let _ = write!(out, "<th{}>{}</th>", if *numeric { " class=\"num\"" } else { "" }, escape(h));
    }
    out.push_str("</tr></thead>\n<tbody>\n");
    for row in &table.rows {
        out.push_str("<tr>");
        for ((cell, numeric), header) in row.iter().zip(&table.numeric).zip(&table.headers) {
            let mut classes = Vec::new();
            if *numeric {
                classes.push("num");
            }
            if cell.tone != Tone::Plain {
                classes.push(tone_class(cell.tone));
            }
            if header == "note" || header == "verdict" || header == "meaning" {
                classes.push("note");
            }
            if classes.is_empty() {
                let _ = write!(out, "<td>{}</td>", escape(&cell.text));
            } else {
                let _ = write!(out, "<td class=\"{}\">{}</td>", classes.join(" "), escape(&cell.text));
            }
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n</table></div></div>\n");
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::fixture;
    use quick_xml::events::Event;

    /// Parses the page as strict XML and returns the elements' names in document order.
    fn parse(page: &str) -> Vec<(String, Vec<(String, String)>)> {
        let mut reader = quick_xml::Reader::from_str(page);
        reader.config_mut().check_end_names = true;
        let mut elements = Vec::new();
        let mut depth = 0i32;
        loop {
            match reader.read_event() {
                Ok(Event::Eof) => break,
                Ok(Event::Start(e)) => {
                    depth += 1;
                    elements.push(element(&e));
                }
                Ok(Event::Empty(e)) => elements.push(element(&e)),
                Ok(Event::End(_)) => depth -= 1,
                Ok(_) => {}
                Err(e) => panic!("not well-formed at byte {}: {e}", reader.buffer_position()),
            }
        }
        assert_eq!(depth, 0, "unbalanced elements");
        elements
    }

    fn element(e: &quick_xml::events::BytesStart<'_>) -> (String, Vec<(String, String)>) {
        let name = e.name().into_inner().to_string();
        let attrs = e
            .attributes()
            .map(|a| {
                let a = a.expect("well-formed attribute");
                let value =
                    a.normalized_value(quick_xml::XmlVersion::Implicit1_0).expect("escaped attribute").into_owned();
                (a.key.into_inner().to_string(), value)
            })
            .collect();
        (name, attrs)
    }

    fn attr<'a>(attrs: &'a [(String, String)], name: &str) -> Option<&'a str> {
        attrs.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    #[test]
    fn page_is_well_formed_with_one_chart_per_group() {
        let doc = fixture::open_run();
        let page = render(&doc, "results.json");
        let elements = parse(&page);
        let charts: Vec<&Vec<(String, String)>> =
            elements.iter().filter(|(n, a)| n == "svg" && attr(a, "class") == Some("chart")).map(|(_, a)| a).collect();
        let ids: Vec<&str> = charts.iter().filter_map(|a| attr(a, "data-chart")).collect();
        assert_eq!(ids, charts::TIMELINE_CHARTS);
        for a in &charts {
            assert_eq!(attr(a, "data-points"), Some("10"));
        }
        let series_points: Vec<&str> = elements
            .iter()
            .filter(|(n, a)| n == "g" && attr(a, "class") == Some("series"))
            .filter_map(|(_, a)| attr(a, "data-points"))
            .collect();
        assert!(series_points.len() >= 6 && series_points.iter().all(|p| *p == "10"), "{series_points:?}");
        assert_eq!(elements.iter().filter(|(n, a)| n == "rect" && attr(a, "class") == Some("hit")).count(), 60);
    }

    #[test]
    fn observed_run_page_shows_the_target_side_after_the_load_charts() {
        let doc = fixture::observed_run();
        let page = render(&doc, "observed.json");
        let elements = parse(&page);
        let charts: Vec<&Vec<(String, String)>> =
            elements.iter().filter(|(n, a)| n == "svg" && attr(a, "class") == Some("chart")).map(|(_, a)| a).collect();
        let ids: Vec<&str> = charts.iter().filter_map(|a| attr(a, "data-chart")).collect();
        let expected: Vec<&str> = charts::TIMELINE_CHARTS.iter().chain(&charts::OBSERVER_CHARTS).copied().collect();
        assert_eq!(ids, expected);
        assert!(charts.iter().all(|a| attr(a, "data-points") == Some("10")));
        let nok = elements
            .iter()
            .find(|(n, a)| n == "g" && attr(a, "data-series") == Some("127.0.0.1:8090/health NOK"))
            .expect("the NOK series");
        assert_eq!(attr(&nok.1, "data-points"), Some("3"));
        assert!(page.contains("<h2>The target's side</h2>"));
        assert!(page.contains("id=\"table-probes\"") && page.contains("id=\"table-target\""));
        let without = render(&fixture::open_run(), "results.json");
        assert!(!without.contains("The target's side") && !without.contains("table-probes"));
    }

    #[test]
    fn an_empty_timeline_still_makes_a_page() {
        let mut doc = fixture::open_run();
        doc.timeline.clear();
        doc.summary.latency_ms = None;
        let elements = parse(&render(&doc, "empty.json"));
        let charts = elements.iter().filter(|(n, a)| n == "svg" && attr(a, "class") == Some("chart")).count();
        assert_eq!(charts, charts::TIMELINE_CHARTS.len());
    }

    #[test]
    fn page_loads_nothing_and_runs_nothing() {
        let page = render(&fixture::open_run(), "results.json");
        assert!(!page.contains("<script"));
        assert!(!page.contains("<link"));
        assert!(!page.contains("src="));
        assert!(!page.contains("@import"));
        assert!(!page.contains("url("));
        assert!(page.contains("&lt;1&gt;&amp;y=2"), "the URL is escaped");
    }

    #[test]
    fn find_limit_page_shows_the_curve_verdict_and_steps() {
        let doc = fixture::find_limit_run();
        let page = render(&doc, "limit.json");
        let elements = parse(&page);
        let hockey = elements
            .iter()
            .find(|(n, a)| n == "svg" && attr(a, "data-chart") == Some("hockey-stick"))
            .expect("hockey stick chart");
        assert_eq!(attr(&hockey.1, "data-points"), Some("4"));
        assert!(page.contains("capacity ≈ 2,000 req/s"));
        assert!(page.contains("breaks at 4,000 req/s"));
        assert!(page.contains("id=\"table-steps\""));
        assert!(!page.contains("id=\"table-stages\""));
        assert!(page.contains("good (capacity)"));
    }
}
