//! Recording what the sink received (`--record FILE`): one JSON object per complete request,
//! one per line.
//!
//! Connection tasks never touch the file. The [`Framer`](crate::request::Framer) of a recording
//! sink fills a [`Captured`] request (method, target, headers, decoded body up to
//! [`MAX_RECORDED_BODY`]); the connection stamps it and hands it to the [`Recorder`], which
//! only sends it over a channel. One writer thread ([`RecordWriter`]) turns each request into a
//! JSON line in a `BufWriter`, flushes at least every [`FLUSH_EVERY`], and flushes and closes the
//! file when the sink shuts down. A sink that does not record has no recorder and its framers
//! capture nothing, so it allocates and copies nothing for this.
//!
//! The channel never blocks a sender. So that a writer that cannot keep up (a very slow disk)
//! cannot grow memory without end, at most [`MAX_QUEUED_BYTES`] of requests wait for it; past
//! that, requests are not recorded and are counted as
//! [`not_recorded`](crate::StatsSnapshot::not_recorded).
//!
//! A line: `{"t_ms":1700000000000,"method":"POST","target":"/notify?x=1",
//! "headers":[["Content-Type","application/json"]],"body":"{\"id\":1}"}` — with `"body_base64"`
//! instead of `"body"` when the body is not UTF-8, and `"truncated":true` when it was cut.

use std::fs::File;
use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering::Relaxed};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::error::SinkError;
use crate::stats::SinkStats;

/// The most body bytes recorded per request (1 MiB); the rest is dropped and the record says
/// `"truncated": true`.
pub(crate) const MAX_RECORDED_BODY: usize = 1 << 20;
/// The writer flushes what it wrote at least this often, so the file can be read during a run.
pub(crate) const FLUSH_EVERY: Duration = Duration::from_secs(1);
/// The most bytes of requests waiting for the writer; past it requests are not recorded.
pub(crate) const MAX_QUEUED_BYTES: usize = 64 << 20;
/// How long shutting down waits for the writer to write what is queued and close the file.
pub(crate) const CLOSE_TIMEOUT: Duration = Duration::from_secs(5);
/// The writer's buffer.
const WRITE_BUFFER: usize = 64 * 1024;

/// One request as a recording framer captured it.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Captured {
    /// The request method, as sent.
    pub(crate) method: String,
    /// The request target (path and query), as sent.
    pub(crate) target: String,
    /// Header fields in order, names as sent; values that are not UTF-8 are converted lossily.
    pub(crate) headers: Vec<(String, String)>,
    /// The body's payload bytes (decoded when chunked), at most [`MAX_RECORDED_BODY`].
    pub(crate) body: Vec<u8>,
    /// The body was longer than [`MAX_RECORDED_BODY`] and was cut.
    pub(crate) truncated: bool,
}

impl Captured {
    /// Keeps the method, target and headers of a parsed head, and starts an empty body.
    pub(crate) fn set_head(&mut self, request: &httparse::Request<'_, '_>) {
        self.method.clear();
        self.method.push_str(request.method.unwrap_or_default());
        self.target.clear();
        self.target.push_str(request.path.unwrap_or_default());
        self.headers.clear();
        self.headers.extend(
            request
                .headers
                .iter()
                .map(|header| (header.name.to_owned(), String::from_utf8_lossy(header.value).into_owned())),
        );
        self.body.clear();
        self.truncated = false;
    }

    /// Appends body payload bytes, up to [`MAX_RECORDED_BODY`].
    pub(crate) fn push_body(&mut self, data: &[u8]) {
        let room = MAX_RECORDED_BODY.saturating_sub(self.body.len());
        if data.len() > room {
            self.truncated = true;
        }
        self.body.extend_from_slice(&data[..data.len().min(room)]);
    }

    /// Roughly how much memory this request holds while it waits for the writer.
    fn size(&self) -> usize {
        let headers: usize = self.headers.iter().map(|(name, value)| name.len() + value.len() + 48).sum();
        self.body.len() + self.method.len() + self.target.len() + headers + 128
    }
}

/// A captured request and when it was complete.
#[derive(Debug)]
struct Record {
    t_ms: u64,
    request: Captured,
    size: usize,
}

enum Message {
    Record(Record),
    /// Every sender is done: write what is queued, flush, close.
    Close,
}

/// The connections' side of the recording: sends captured requests to the writer thread.
#[derive(Debug)]
pub(crate) struct Recorder {
    sender: Sender<Message>,
    queued: Arc<AtomicUsize>,
    stats: Arc<SinkStats>,
}

impl Recorder {
    /// Queues one complete request for the writer; never blocks. The time stamp is taken now.
    pub(crate) fn record(&self, request: Captured) {
        let size = request.size();
        if self.queued.fetch_add(size, Relaxed) + size > MAX_QUEUED_BYTES {
            self.queued.fetch_sub(size, Relaxed);
            self.stats.add_not_recorded(1);
            return;
        }
        let record = Record { t_ms: unix_ms(), request, size };
        if self.sender.send(Message::Record(record)).is_err() {
            // The writer is gone (it only stops at shutdown).
            self.queued.fetch_sub(size, Relaxed);
            self.stats.add_not_recorded(1);
        }
    }
}

/// The writer thread of a recording sink, owned by the [`SinkHandle`](crate::SinkHandle).
#[derive(Debug)]
pub(crate) struct RecordWriter {
    path: PathBuf,
    sender: Sender<Message>,
    done: Receiver<io::Result<()>>,
    thread: Option<JoinHandle<()>>,
}

/// Creates (or truncates) the record file and starts its writer thread.
pub(crate) fn open(path: &Path, stats: &Arc<SinkStats>) -> Result<(Recorder, RecordWriter), SinkError> {
    let file = File::create(path).map_err(|source| SinkError::Record { path: path.to_owned(), source })?;
    let (sender, receiver) = mpsc::channel();
    let (done_sender, done) = mpsc::channel();
    let queued = Arc::new(AtomicUsize::new(0));
    let writer = Writer {
        out: BufWriter::with_capacity(WRITE_BUFFER, file),
        queued: Arc::clone(&queued),
        stats: Arc::clone(stats),
        failed: None,
    };
    let thread = std::thread::Builder::new()
        .name("pummel-sink-record".into())
        .spawn(move || {
            // The handle may have stopped waiting; then nobody needs the result.
            let _ = done_sender.send(writer.run(&receiver));
        })
        .map_err(SinkError::Thread)?;
    let recorder = Recorder { sender: sender.clone(), queued, stats: Arc::clone(stats) };
    Ok((recorder, RecordWriter { path: path.to_owned(), sender, done, thread: Some(thread) }))
}

impl RecordWriter {
    /// Writes what is queued, flushes and closes the file, waiting at most [`CLOSE_TIMEOUT`].
    ///
    /// Call it once no connection can record any more (the worker threads are joined), so that
    /// everything they sent comes before the close in the channel.
    pub(crate) fn close(&mut self) -> Result<(), SinkError> {
        let Some(thread) = self.thread.take() else { return Ok(()) };
        let fail = |source| SinkError::RecordWrite { path: self.path.clone(), source };
        // A send error means the writer thread is gone; its result is still in `done`.
        let _ = self.sender.send(Message::Close);
        match self.done.recv_timeout(CLOSE_TIMEOUT) {
            Ok(result) => {
                // The thread has nothing left to do but return.
                let _ = thread.join();
                result.map_err(fail)
            }
            Err(RecvTimeoutError::Timeout) => Err(fail(io::Error::new(
                io::ErrorKind::TimedOut,
                format!("the record file was not written within {} s", CLOSE_TIMEOUT.as_secs()),
            ))),
            // The thread died without a result (a panic): nothing is left to wait for.
            Err(RecvTimeoutError::Disconnected) => {
                Err(fail(io::Error::other("the record writer stopped unexpectedly")))
            }
        }
    }
}

/// The writer thread's state.
struct Writer {
    out: BufWriter<File>,
    queued: Arc<AtomicUsize>,
    stats: Arc<SinkStats>,
    /// The first write error; after it nothing more is written.
    failed: Option<io::Error>,
}

impl Writer {
    /// Writes records until told to close, flushing at least every [`FLUSH_EVERY`].
    fn run(mut self, receiver: &Receiver<Message>) -> io::Result<()> {
        let mut dirty = false;
        let mut next_flush = Instant::now() + FLUSH_EVERY;
        loop {
            let wait = next_flush.saturating_duration_since(Instant::now());
            match receiver.recv_timeout(wait) {
                Ok(Message::Record(record)) => {
                    self.write(&record);
                    dirty = true;
                }
                Ok(Message::Close) | Err(RecvTimeoutError::Disconnected) => break,
                Err(RecvTimeoutError::Timeout) => {}
            }
            if Instant::now() >= next_flush {
                if dirty {
                    self.flush();
                    dirty = false;
                }
                next_flush = Instant::now() + FLUSH_EVERY;
            }
        }
        // Requests sent before the close are already in the channel, ahead of it.
        while let Ok(message) = receiver.try_recv() {
            if let Message::Record(record) = message {
                self.write(&record);
            }
        }
        self.flush();
        let Writer { out, failed, .. } = self;
        if let Some(error) = failed {
            return Err(error);
        }
        // Flushed above, so this only closes the file (the page cache has every byte; no
        // fsync: readers on this machine see the data, and a sink shutdown must stay quick).
        drop(out);
        Ok(())
    }

    fn write(&mut self, record: &Record) {
        self.queued.fetch_sub(record.size, Relaxed);
        if self.failed.is_none() {
            if let Err(error) = write_line(&mut self.out, record.t_ms, &record.request) {
                self.failed = Some(error);
            }
        }
        if self.failed.is_some() {
            self.stats.add_not_recorded(1);
        } else {
            self.stats.add_recorded(1);
        }
    }

    fn flush(&mut self) {
        if self.failed.is_none() {
            if let Err(error) = self.out.flush() {
                self.failed = Some(error);
            }
        }
    }
}

/// Writes one request as a JSON line.
///
/// The body goes in `"body"` when it is UTF-8 text. A body cut at [`MAX_RECORDED_BODY`] may end
/// in the middle of a character; that partial character is left out so the text stays text.
/// Any other body goes in `"body_base64"` (standard alphabet, padded).
fn write_line(out: &mut impl Write, t_ms: u64, request: &Captured) -> io::Result<()> {
    write!(out, "{{\"t_ms\":{t_ms},\"method\":")?;
    serde_json::to_writer(&mut *out, &request.method)?;
    out.write_all(b",\"target\":")?;
    serde_json::to_writer(&mut *out, &request.target)?;
    out.write_all(b",\"headers\":")?;
    serde_json::to_writer(&mut *out, &request.headers)?;
    let text = match std::str::from_utf8(&request.body) {
        Ok(text) => Some(text),
        Err(e) if request.truncated && e.error_len().is_none() => {
            // Only the last character is incomplete, and only because the body was cut.
            std::str::from_utf8(&request.body[..e.valid_up_to()]).ok()
        }
        Err(_) => None,
    };
    match text {
        Some(text) => {
            out.write_all(b",\"body\":")?;
            serde_json::to_writer(&mut *out, text)?;
        }
        None => {
            out.write_all(b",\"body_base64\":\"")?;
            out.write_all(BASE64.encode(&request.body).as_bytes())?;
            out.write_all(b"\"")?;
        }
    }
    if request.truncated {
        out.write_all(b",\"truncated\":true")?;
    }
    out.write_all(b"}\n")
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
fn unix_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn line(request: &Captured) -> Value {
        let mut out = Vec::new();
        write_line(&mut out, 17, request).unwrap();
        assert_eq!(out.iter().filter(|&&b| b == b'\n').count(), 1);
        assert!(out.ends_with(b"\n"));
        serde_json::from_slice(&out).unwrap()
    }

    fn request(body: &[u8]) -> Captured {
        Captured {
            method: "POST".into(),
            target: "/notify?x=1&y=\"2\"".into(),
            headers: vec![("Content-Type".into(), "application/json".into()), ("X-Empty".into(), String::new())],
            body: body.to_vec(),
            truncated: false,
        }
    }

    #[test]
    fn text_bodies_are_kept_as_text() {
        let value = line(&request(b"{\"id\":1}\n\t\xc3\xa9"));
        assert_eq!(value["t_ms"], 17);
        assert_eq!(value["method"], "POST");
        assert_eq!(value["target"], "/notify?x=1&y=\"2\"");
        assert_eq!(value["headers"], serde_json::json!([["Content-Type", "application/json"], ["X-Empty", ""]]));
        assert_eq!(value["body"], "{\"id\":1}\n\té");
        assert!(value.get("body_base64").is_none() && value.get("truncated").is_none());
    }

    #[test]
    fn binary_bodies_are_base64() {
        let value = line(&request(&[0xff, 0x00, 0xfe, b'a']));
        assert_eq!(value["body_base64"], "/wD+YQ==");
        assert!(value.get("body").is_none());
    }

    #[test]
    fn bodies_are_capped_and_a_cut_character_is_dropped() {
        let mut captured = request(b"");
        captured.push_body(&vec![b'a'; MAX_RECORDED_BODY - 1]);
        assert!(!captured.truncated);
        captured.push_body("éé".as_bytes());
        assert!(captured.truncated);
        assert_eq!(captured.body.len(), MAX_RECORDED_BODY);
        let value = line(&captured);
        assert_eq!(value["truncated"], true);
        assert_eq!(value["body"].as_str().unwrap().len(), MAX_RECORDED_BODY - 1);
        captured.push_body(b"more");
        assert_eq!(captured.body.len(), MAX_RECORDED_BODY);
    }

    #[test]
    fn head_is_captured_from_httparse() {
        let mut headers = [httparse::EMPTY_HEADER; 4];
        let mut parsed = httparse::Request::new(&mut headers);
        parsed.parse(b"PUT /a?b HTTP/1.1\r\nHost: h\r\nX-Bin: \xff\r\n\r\n").unwrap();
        let mut captured = request(b"old");
        captured.truncated = true;
        captured.set_head(&parsed);
        assert_eq!((captured.method.as_str(), captured.target.as_str()), ("PUT", "/a?b"));
        assert_eq!(captured.headers, [("Host".to_string(), "h".to_string()), ("X-Bin".into(), "\u{fffd}".into())]);
        assert!(captured.body.is_empty() && !captured.truncated);
    }
}
