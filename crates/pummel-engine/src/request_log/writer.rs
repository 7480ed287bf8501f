//! The writer thread of the request log: takes the shards' lines from a bounded channel,
//! writes them as JSON lines (redacted, see the module above), and adds up what the shards
//! left out. It is the only one that touches the file (or, on an agent, the way to its
//! coordinator: a [`LineSink`]), so a slow disk or network delays nobody but it.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::sync::Arc;
use std::sync::mpsc::{Receiver, RecvTimeoutError, SyncSender, sync_channel};
use std::thread::JoinHandle;
use std::time::Duration;

use pummel_results::error_kind::ErrorKind;
use serde_json::json;

use super::RequestLogSpec;
use super::shard::{OK_SLOT, SLOTS};
use crate::flow::Scenarios;

/// Lines waiting for the writer, at most (beyond: left out by the shards).
const CHANNEL_LINES: usize = 8192;
/// How often the writer flushes what it wrote while lines keep coming (or do not): the log
/// can be followed during a run, and an agent's lines reach its coordinator each second.
const FLUSH_EVERY: Duration = Duration::from_secs(1);

/// Where the writer's lines go: a file, or (on an agent) its coordinator, which writes
/// every agent's lines into its one file.
pub trait LineSink: Send {
    /// Takes one JSON line, without its newline.
    fn line(&mut self, line: &str) -> std::io::Result<()>;
    /// Hands on what was taken so far.
    fn flush(&mut self) -> std::io::Result<()>;
}

impl LineSink for BufWriter<File> {
    fn line(&mut self, line: &str) -> std::io::Result<()> {
        writeln!(self, "{line}")
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Write::flush(self)
    }
}

/// One request to log, as a shard saw it.
#[derive(Debug)]
pub(crate) struct Record {
    /// Seconds from the run's start to the request's end.
    pub at: f64,
    /// Its statistics name (an index of `Scenarios::names`).
    pub name: Option<usize>,
    /// The request's method.
    pub method: String,
    /// Path and query as sent (before redaction).
    pub path: String,
    /// The answer's status, if one came.
    pub status: Option<u16>,
    /// Why it failed (`None`: a sampled success).
    pub kind: Option<ErrorKind>,
    /// The failure's message, when it has more to say than its kind.
    pub message: Option<String>,
    /// From when it was due to its end, µs.
    pub latency_us: u64,
    /// From its first byte out to its end, µs (unsent: none).
    pub service_us: Option<u64>,
    /// Answer bytes received.
    pub bytes_in: u64,
    /// The first bytes of the answer's body.
    pub body: Vec<u8>,
}

impl Record {
    #[cfg(test)]
    pub(crate) fn test(kind: Option<ErrorKind>) -> Record {
        Record {
            at: 0.0,
            name: None,
            method: "GET".into(),
            path: "/".into(),
            status: None,
            kind,
            message: None,
            latency_us: 0,
            service_us: None,
            bytes_in: 0,
            body: Vec::new(),
        }
    }
}

/// What goes through the channel.
#[derive(Debug)]
pub(crate) enum Message {
    /// A line to write.
    Line(Box<Record>),
    /// A shard ended: what it left out, per slot.
    LeftOut([u64; SLOTS]),
}

/// What the log holds and left out, for the summary and the results document.
pub type RequestLogTotals = pummel_results::summary::RequestLogSummary;

/// The writer thread and the shards' way to it.
#[derive(Debug)]
pub struct Writer {
    lines: SyncSender<Message>,
    thread: JoinHandle<RequestLogTotals>,
    spec: Arc<RequestLogSpec>,
}

impl Writer {
    /// Creates (or truncates) the file and starts the writer.
    pub fn start(spec: &RequestLogSpec, scenarios: Arc<Scenarios>, base_url: String) -> std::io::Result<Writer> {
        let file = File::create(&spec.path)?;
        Writer::start_into(spec, scenarios, base_url, Box::new(BufWriter::new(file)))
    }

    /// Starts the writer with its lines going to `sink` (an agent's way to its coordinator).
    pub fn start_into(
        spec: &RequestLogSpec,
        scenarios: Arc<Scenarios>,
        base_url: String,
        sink: Box<dyn LineSink>,
    ) -> std::io::Result<Writer> {
        let spec = Arc::new(spec.clone());
        let (lines, received) = sync_channel(CHANNEL_LINES);
        let writing = spec.clone();
        let thread = std::thread::Builder::new()
            .name("pummel-request-log".into())
            .spawn(move || write_lines(&writing, &scenarios, &base_url, sink, received))?;
        Ok(Writer { lines, thread, spec })
    }

    /// What a shard needs to log through this writer (see [`LogLink::shard_log`]).
    pub(crate) fn link(&self) -> LogLink {
        LogLink { spec: self.spec.clone(), lines: self.lines.clone() }
    }

    /// Waits for every shard's lines (each shard's log must be dropped or finished) and
    /// returns the totals.
    pub fn finish(self) -> RequestLogTotals {
        drop(self.lines);
        self.thread.join().unwrap_or_else(|_| RequestLogTotals {
            path: self.spec.path.display().to_string(),
            error: Some("the writer thread failed".into()),
            ..RequestLogTotals::default()
        })
    }
}

/// A shard's way to the writer, sent to its thread.
#[derive(Debug, Clone)]
pub(crate) struct LogLink {
    spec: Arc<RequestLogSpec>,
    lines: SyncSender<Message>,
}

impl LogLink {
    /// The log of one of `shards` shards of a run that started at `start`: the per-second
    /// bound is shared out over the shards (rounded up).
    pub(crate) fn shard_log(self, start: tokio::time::Instant, shards: usize) -> super::ShardLog {
        let shards = u32::try_from(shards.max(1)).unwrap_or(u32::MAX);
        let bound = self.spec.per_second.div_ceil(shards).max(1);
        super::ShardLog::new(self.spec, start, self.lines, bound)
    }
}

fn write_lines(
    spec: &RequestLogSpec,
    scenarios: &Scenarios,
    base_url: &str,
    mut out: Box<dyn LineSink>,
    received: Receiver<Message>,
) -> RequestLogTotals {
    let mut totals = RequestLogTotals { path: spec.path.display().to_string(), ..RequestLogTotals::default() };
    let mut left_out = [0u64; SLOTS];
    let mut flushed = std::time::Instant::now();
    loop {
        if flushed.elapsed() >= FLUSH_EVERY {
            flushed = std::time::Instant::now();
            if let (None, Err(e)) = (&totals.error, out.flush()) {
                totals.error = Some(e.to_string());
            }
        }
        let message = match received.recv_timeout(FLUSH_EVERY) {
            Ok(message) => message,
            Err(RecvTimeoutError::Timeout) => continue,
            Err(RecvTimeoutError::Disconnected) => break,
        };
        match message {
            Message::Line(record) => {
                if totals.error.is_some() {
                    left_out[super::shard::slot(record.kind)] += 1;
                    continue;
                }
                let line = line(spec, scenarios, base_url, &record);
                match out.line(&line.to_string()) {
                    Ok(()) => totals.written += 1,
                    Err(e) => totals.error = Some(e.to_string()),
                }
            }
            Message::LeftOut(counts) => {
                for (total, n) in left_out.iter_mut().zip(counts) {
                    *total += n;
                }
            }
        }
    }
    if let Err(e) = out.flush() {
        totals.error.get_or_insert(e.to_string());
    }
    drop(out);
    for (slot, n) in left_out.iter().enumerate().filter(|(_, n)| **n > 0) {
        let name = if slot == OK_SLOT { "ok" } else { ErrorKind::ALL[slot].name() };
        totals.left_out.insert(name.to_string(), *n);
    }
    totals
}

/// One JSON line.
fn line(spec: &RequestLogSpec, scenarios: &Scenarios, base_url: &str, r: &Record) -> serde_json::Value {
    let named = r.name.and_then(|n| scenarios.names.get(n));
    let scenario = named.and_then(|n| scenarios.list.get(n.scenario)).map(|s| s.name.as_str());
    let body = String::from_utf8_lossy(&r.body);
    let query_secrets = spec.query_secrets(&r.path);
    json!({
        "t": (r.at * 1000.0).round() / 1000.0,
        "ok": r.kind.is_none(),
        "scenario": scenario,
        "name": named.map(|n| n.name.as_str()),
        "method": r.method,
        "url": format!("{base_url}{}", spec.redact_path(&r.path)),
        "status": r.status,
        "error": r.kind.map(ErrorKind::name),
        "message": r.message.as_deref().map(|m| spec.scrub_also(m, &query_secrets)),
        "latency_ms": r.latency_us as f64 / 1000.0,
        "service_time_ms": r.service_us.map(|us| us as f64 / 1000.0),
        "bytes_in": r.bytes_in,
        "body": spec.scrub_also(&body, &query_secrets),
    })
}
