//! The exposition: the figures as Prometheus metric families, written by `prometheus-client`.
//!
//! Histograms carry classic buckets and, in the protobuf format a scraper may ask for (Prometheus
//! with native histograms on), native ones too ([`crate::buckets::native`], schema 3).
//!
//! Every name starts with `pummel_`; counters end in `_total` and durations are in seconds, as
//! Prometheus's naming conventions (and `promtool check metrics`) ask. Run-wide request series
//! count every second of the run, the warmup included (`pummel_warmup` says when it lasts);
//! the per-name series (`pummel_named_*`, plan files) count requests due after the warmup, as
//! the summary's per-name table does.

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{
    DescriptorEncoder, EncodeMetric, MetricEncoder, NativeHistogram, NativeHistogramBuckets,
};
use prometheus_client::metrics::MetricType;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::exemplar::Exemplar;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::Registry;
use pummel_engine::engine::live::NameCounts;
use pummel_results::error_kind::ErrorKind;
use pummel_results::histogram::LatencyHistogram;
use pummel_results::summary::LimitSide;

use crate::Shared;
use crate::buckets::buckets;
use crate::figures::Figures;

/// Labels of one series.
type Labels = Vec<(&'static str, String)>;

/// The `Content-Type` of what [`text`] writes.
pub const CONTENT_TYPE: &str = prometheus_client::encoding::prometheus_text::CONTENT_TYPE;

/// A registry holding the exporter's figures.
pub fn registry(shared: std::sync::Arc<Shared>) -> Registry {
    let mut registry = Registry::default();
    registry.register_collector(Box::new(shared));
    registry
}

/// The `Content-Type` of what [`protobuf`] writes.
pub const PROTOBUF_CONTENT_TYPE: &str =
    "application/vnd.google.protobuf; proto=io.prometheus.client.MetricFamily; encoding=delimited";

/// The exposition of `registry` as length-delimited `io.prometheus.client.MetricFamily`
/// messages: what a Prometheus with native histograms on asks for, and the only format that
/// carries them.
pub fn protobuf(registry: &Registry) -> Result<Vec<u8>, String> {
    prometheus_client::encoding::prometheus_protobuf::encode_to_vec(registry).map_err(|e| format!("{e:?}"))
}

/// The exposition of `registry` in the Prometheus text format (0.0.4).
pub fn text(registry: &Registry) -> Result<String, std::fmt::Error> {
    let mut out = String::new();
    prometheus_client::encoding::prometheus_text::encode(&mut out, registry)?;
    Ok(out)
}

impl Collector for Shared {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        self.with_figures(|f| encode_figures(f, &mut encoder))
    }
}

fn encode_figures(f: &Figures, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    counter(e, "pummel_requests_sent", "Requests written to a connection (their first byte went out).", f.sent)?;
    counters(
        e,
        "pummel_requests",
        "Requests that ended, by outcome: ok (an accepted answer) or failed (any kind, unanswered included).",
        vec![(vec![("outcome", "ok".into())], f.ok), (vec![("outcome", "failed".into())], f.failed)],
    )?;
    counter(
        e,
        "pummel_requests_dropped",
        "Requests due and never sent (over --max-inflight, or still waiting for a connection at the end).",
        f.dropped,
    )?;
    let kinds = ErrorKind::ALL.iter().map(|k| (vec![("kind", k.name().to_string())], f.errors.get(*k))).collect();
    counters(
        e,
        "pummel_request_failures",
        "Failed requests by kind (the kinds of the summary's errors table).",
        kinds,
    )?;
    let statuses = f.statuses.iter().map(|(code, n)| (vec![("status", code.to_string())], *n)).collect();
    counters(e, "pummel_responses", "Answers by HTTP status code.", statuses)?;
    let (sent, ended, failures) = count_series(
        f.named
            .iter()
            .map(|((scenario, name), counts)| (vec![("scenario", scenario.clone()), ("name", name.clone())], counts)),
    );
    counters(
        e,
        "pummel_named_requests_sent",
        "Requests written, per scenario and request name (plan files; after the warmup).",
        sent,
    )?;
    counters(
        e,
        "pummel_named_requests",
        "Requests that ended, per scenario, request name and outcome (plan files; after the warmup).",
        ended,
    )?;
    counters(
        e,
        "pummel_named_request_failures",
        "Failed requests per scenario, request name and kind (plan files; after the warmup).",
        failures,
    )?;
    agents(f, e)?;

    histogram(
        e,
        "pummel_request_latency_seconds",
        "Latency of the successful requests, from when each was due (coordinated omission corrected).",
        &f.latency,
    )?;
    histogram(
        e,
        "pummel_request_service_time_seconds",
        "Service time of the successful requests, from their first byte out to the end of the answer.",
        &f.service_time,
    )?;
    histogram(
        e,
        "pummel_request_latency_all_seconds",
        "Latency of every request that ended, failures included (a request given up at the time it was given up).",
        &f.latency_all,
    )?;
    histogram(e, "pummel_connect_time_seconds", "Time to open each TCP connection.", &f.connect_time)?;
    histogram(
        e,
        "pummel_schedule_lag_seconds",
        "How late open-model requests were dispatched against their schedule (the generator's own delay).",
        &f.schedule_lag,
    )?;

    counter(
        e,
        "pummel_reconnects",
        "Idle connections found closed by the target and replaced before use (not failures).",
        f.reconnects,
    )?;
    counter(e, "pummel_redirects", "Redirects followed (each hop).", f.redirects)?;
    counter(e, "pummel_connections_opened", "Connections opened.", f.connections_opened)?;
    counter(e, "pummel_connections_closed_by_peer", "Established connections the target closed.", f.closed_by_peer)?;
    counter(e, "pummel_received_bytes", "Response bytes received.", f.bytes_in)?;
    counter(e, "pummel_sent_bytes", "Request bytes written.", f.bytes_out)?;

    let g = &f.gauges;
    gauge(
        e,
        "pummel_in_flight_requests",
        "Requests due and not ended at the end of the last second.",
        g.in_flight as f64,
    )?;
    gauge(
        e,
        "pummel_waiting_requests",
        "Of the requests in flight, those not yet written (waiting for a connection).",
        g.waiting as f64,
    )?;
    gauge(e, "pummel_open_connections", "Connections open at the end of the last second.", g.connections as f64)?;
    if let Some(rate) = g.target_rate {
        gauge(e, "pummel_target_rate", "The offered rate of the open model, requests per second.", rate)?;
    }
    gauge(
        e,
        "pummel_warmup",
        "1 while the warmup lasts (its requests are left out of the summary).",
        f64::from(u8::from(g.warmup)),
    )?;
    gauge(
        e,
        "pummel_run_second",
        "The last second closed, counted from the run's start (a search's step restarts it).",
        g.second as f64,
    )?;
    gauge(
        e,
        "pummel_generator_cpu_percent",
        "CPU the pummel process used in the last second, percent of one core.",
        g.cpu_percent,
    )?;
    if let Some(busiest) = g.busiest_thread_percent {
        gauge(
            e,
            "pummel_generator_busiest_thread_percent",
            "CPU of the busiest generator thread in the last second, percent of one core.",
            busiest,
        )?;
    }
    let sides = [LimitSide::Generator, LimitSide::Pool, LimitSide::Target];
    let limited = sides
        .iter()
        .map(|s| (vec![("side", s.name().to_string())], f64::from(u8::from(g.limit == Some(*s)))))
        .collect();
    gauges(
        e,
        "pummel_limited_by",
        "1 for the side that limited the last second (generator, pool or target), if one did.",
        limited,
    )?;

    probes(f, e)?;
    target(f, e)?;
    faults(f, e)
}

/// Labelled series of request counts.
type Series = Vec<(Labels, u64)>;

/// The three series of each labelled set of counts (a request name's, an agent's): requests
/// sent, ended by outcome, and failed by kind, each with the set's labels first.
fn count_series<'a>(sets: impl Iterator<Item = (Labels, &'a NameCounts)>) -> (Series, Series, Series) {
    let (mut sent, mut ended, mut failures) = (Vec::new(), Vec::new(), Vec::new());
    for (base, counts) in sets {
        sent.push((base.clone(), counts.sent));
        for (outcome, n) in [("ok", counts.ok), ("failed", counts.failed)] {
            let mut labels = base.clone();
            labels.push(("outcome", outcome.into()));
            ended.push((labels, n));
        }
        for (kind, n) in counts.errors.non_zero() {
            let mut labels = base.clone();
            labels.push(("kind", kind.name().into()));
            failures.push((labels, n));
        }
    }
    (sent, ended, failures)
}

/// A coordinator's per-agent series, labelled `agent` (none for a run on one process).
fn agents(f: &Figures, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if f.agents.is_empty() {
        return Ok(());
    }
    let (sent, ended, failures) =
        count_series(f.agents.iter().map(|(agent, counts)| (vec![("agent", agent.clone())], counts)));
    counters(e, "pummel_agent_requests_sent", "Requests written, per agent of a coordinated run.", sent)?;
    counters(e, "pummel_agent_requests", "Requests that ended, per agent and outcome.", ended)?;
    counters(e, "pummel_agent_request_failures", "Failed requests per agent and kind.", failures)
}

fn faults(f: &Figures, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if f.faults.is_empty() {
        return Ok(());
    }
    let name = |n: &String| vec![("fault", n.clone())];
    let active = f.faults.iter().map(|(n, x)| (name(n), f64::from(u8::from(x.active)))).collect();
    gauges(e, "pummel_fault_active", "1 while the fault is on ([[fault]], --fault).", active)?;
    let started = f.faults.iter().map(|(n, x)| (name(n), x.started)).collect();
    counters(e, "pummel_fault_started", "Times the fault started.", started)?;
    let failed = f.faults.iter().map(|(n, x)| (name(n), x.failed)).collect();
    counters(e, "pummel_fault_failed", "Times the fault could not be started or undone.", failed)
}

fn probes(f: &Figures, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    if f.probes.is_empty() {
        return Ok(());
    }
    let url = |u: &String| vec![("url", u.clone())];
    let mut results = Vec::new();
    for (u, p) in &f.probes {
        let mut ok = url(u);
        ok.push(("result", "ok".into()));
        results.push((ok, p.ok));
        let mut nok = url(u);
        nok.push(("result", "nok".into()));
        results.push((nok, p.nok));
    }
    counters(e, "pummel_probes", "Probe requests by result (--probe, --probe-json, --probe-metric).", results)?;
    let up = f.probes.iter().map(|(u, p)| (url(u), f64::from(u8::from(p.last_ok)))).collect();
    gauges(e, "pummel_probe_up", "1 when the last probe was OK.", up)?;
    let latency = f.probes.iter().filter_map(|(u, p)| Some((url(u), p.last_latency?))).collect();
    gauges(e, "pummel_probe_latency_seconds", "Latency of the last answered probe.", latency)?;
    let values = f.probes.iter().filter_map(|(u, p)| Some((url(u), p.last_value?))).collect();
    gauges(e, "pummel_probe_value", "The last number a probe read (--probe-json, --probe-metric).", values)
}

fn target(f: &Figures, e: &mut DescriptorEncoder) -> Result<(), std::fmt::Error> {
    let Some(t) = &f.target else { return Ok(()) };
    gauge(e, "pummel_target_open_fds", "Open file descriptors of the watched target.", t.open_fds as f64)?;
    if let Some(limit) = t.fd_soft_limit {
        gauge(e, "pummel_target_fd_limit", "The watched target's soft limit of open files.", limit as f64)?;
    }
    gauge(e, "pummel_target_threads", "Threads of the watched target.", t.threads as f64)?;
    if let Some(cpu) = t.cpu_percent {
        gauge(
            e,
            "pummel_target_cpu_percent",
            "CPU of the watched target over the last second, percent of one core.",
            cpu,
        )?;
    }
    gauge(e, "pummel_target_resident_memory_bytes", "Resident memory of the watched target.", t.rss_bytes as f64)?;
    gauge(
        e,
        "pummel_target_accept_queue",
        "Connections waiting in the watched target's accept queues.",
        t.accept_queue as f64,
    )?;
    let tcp = &t.tcp;
    let states = [
        ("established", tcp.established),
        ("syn_recv", tcp.syn_recv),
        ("fin_wait1", tcp.fin_wait1),
        ("fin_wait2", tcp.fin_wait2),
        ("time_wait", tcp.time_wait),
        ("close_wait", tcp.close_wait),
        ("last_ack", tcp.last_ack),
        ("closing", tcp.closing),
        ("listen", tcp.listen),
    ];
    let states = states.iter().map(|(s, n)| (vec![("state", s.to_string())], *n as f64)).collect();
    gauges(e, "pummel_target_tcp_sockets", "The watched target's TCP sockets by state.", states)?;
    counter(
        e,
        "pummel_target_watch_gaps",
        "Seconds the watched target had no sample (gone, unreadable, or late).",
        f.watch_gaps,
    )
}

fn counter(e: &mut DescriptorEncoder, name: &str, help: &str, value: u64) -> Result<(), std::fmt::Error> {
    let metric = ConstCounter::new(value);
    metric.encode(e.encode_descriptor(name, help, None, MetricType::Counter)?)
}

fn counters(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: Vec<(Labels, u64)>,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut family = e.encode_descriptor(name, help, None, MetricType::Counter)?;
    for (labels, value) in series {
        ConstCounter::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(e: &mut DescriptorEncoder, name: &str, help: &str, value: f64) -> Result<(), std::fmt::Error> {
    ConstGauge::new(value).encode(e.encode_descriptor(name, help, None, MetricType::Gauge)?)
}

fn gauges(
    e: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    series: Vec<(Labels, f64)>,
) -> Result<(), std::fmt::Error> {
    if series.is_empty() {
        return Ok(());
    }
    let mut family = e.encode_descriptor(name, help, None, MetricType::Gauge)?;
    for (labels, value) in series {
        ConstGauge::new(value).encode(family.encode_family(&labels)?)?;
    }
    Ok(())
}

fn histogram(e: &mut DescriptorEncoder, name: &str, help: &str, h: &LatencyHistogram) -> Result<(), std::fmt::Error> {
    let b = buckets(h);
    let native = crate::buckets::native(h, crate::buckets::NATIVE_SCHEMA);
    let mut metric: MetricEncoder = e.encode_descriptor(name, help, None, MetricType::Histogram)?;
    // The text format shows the classic buckets; protobuf carries both.
    let sparse = NativeHistogram {
        schema: crate::buckets::NATIVE_SCHEMA,
        zero_threshold: 0.0,
        zero_count: 0,
        negative: NativeHistogramBuckets { spans: &[], deltas: &[] },
        positive: NativeHistogramBuckets { spans: &native.spans, deltas: &native.deltas },
        created: None,
    };
    metric.encode_histogram_with_native::<Labels>(
        b.sum,
        b.count,
        &b.per_bucket(),
        None::<&std::collections::HashMap<usize, Exemplar<Labels, f64>>>,
        sparse,
    )
}
