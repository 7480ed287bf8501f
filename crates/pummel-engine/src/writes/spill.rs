//! The write log: every write's key, value (or its hash) and outcome, in a spill file.
//!
//! A run of millions of writes must not hold them in memory, nor take a lock per write. Each
//! shard encodes its records into a buffer of its own ([`ShardWrites`], a few integer and copy
//! operations per write) and hands the buffer, once it holds [`BATCH_BYTES`], to a writer
//! thread ([`Writer`]) through a bounded channel; the writer appends it to the file. Unlike
//! the request log, nothing is ever left out (a write missing from the log would hide a lost
//! write): a shard whose writer is [`CHANNEL_BATCHES`] batches behind waits for it, which only
//! a disk slower than the network can cause. Memory is bounded by the shards' buffers and the
//! channel, whatever the number of writes.
//!
//! A record, in bytes: the outcome's code, the value's kind (0 none, 1 text, 2 SHA-256), the
//! key's length (LEB128) and bytes, then the value (length and bytes, or 32 bytes).

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use serde::Serialize;

use super::{WriteOutcome, WriteRecord, WriteValue};

/// Bytes a shard gathers before handing them to the writer.
pub const BATCH_BYTES: usize = 64 * 1024;
/// Batches waiting for the writer, at most (beyond: the shard waits).
pub const CHANNEL_BATCHES: usize = 64;
/// The longest key or value kept (longer ones are cut: a key is an identifier, not a payload).
pub const MAX_FIELD: usize = 64 * 1024;

/// Where the run's write log goes (a file in a folder the caller owns and removes).
#[derive(Debug, Clone, Serialize)]
pub struct WriteLogSpec {
    /// The spill file (created or truncated at the start).
    pub path: PathBuf,
}

/// What the writer wrote.
#[derive(Debug, Clone, Default)]
pub struct WriteLogTotals {
    /// The spill file.
    pub path: PathBuf,
    /// Bytes written.
    pub bytes: u64,
    /// Why the file could not be written in full, if it could not.
    pub error: Option<String>,
}

/// The writer thread and the shards' way to it.
#[derive(Debug)]
pub struct Writer {
    batches: SyncSender<Vec<u8>>,
    thread: JoinHandle<WriteLogTotals>,
    path: PathBuf,
}

impl Writer {
    /// Creates (or truncates) the spill file and starts the writer.
    pub fn start(spec: &WriteLogSpec) -> io::Result<Writer> {
        let file = File::create(&spec.path)?;
        let (batches, received) = sync_channel(CHANNEL_BATCHES);
        let path = spec.path.clone();
        let writing = path.clone();
        let thread = std::thread::Builder::new()
            .name("pummel-write-log".into())
            .spawn(move || write_batches(writing, file, received))?;
        Ok(Writer { batches, thread, path })
    }

    /// A shard's way to the writer.
    pub(crate) fn link(&self) -> SyncSender<Vec<u8>> {
        self.batches.clone()
    }

    /// Waits until every shard's batches are written (every shard's [`ShardWrites`] must be
    /// finished or dropped) and returns what was written.
    pub fn finish(self) -> WriteLogTotals {
        drop(self.batches);
        self.thread.join().unwrap_or_else(|_| WriteLogTotals {
            path: self.path,
            bytes: 0,
            error: Some("the write log's writer thread failed".into()),
        })
    }
}

fn write_batches(path: PathBuf, file: File, received: Receiver<Vec<u8>>) -> WriteLogTotals {
    let mut out = BufWriter::with_capacity(BATCH_BYTES, file);
    let mut totals = WriteLogTotals { path, ..WriteLogTotals::default() };
    // Every batch is taken, also after an error, so that no shard waits on a full channel.
    while let Ok(batch) = received.recv() {
        if totals.error.is_some() {
            continue;
        }
        match out.write_all(&batch) {
            Ok(()) => totals.bytes += batch.len() as u64,
            Err(e) => totals.error = Some(e.to_string()),
        }
    }
    if let Err(e) = out.flush() {
        totals.error.get_or_insert(e.to_string());
    }
    totals
}

/// A shard's side of the write log: its buffer, and the way to the writer.
#[derive(Debug)]
pub(crate) struct ShardWrites {
    buffer: RefCell<Vec<u8>>,
    /// The way to the writer; gone once the shard [finished](ShardWrites::finish).
    batches: RefCell<Option<SyncSender<Vec<u8>>>>,
}

impl ShardWrites {
    /// A shard's log, writing through `batches`.
    pub(crate) fn new(batches: SyncSender<Vec<u8>>) -> ShardWrites {
        ShardWrites { buffer: RefCell::new(Vec::with_capacity(BATCH_BYTES)), batches: RefCell::new(Some(batches)) }
    }

    /// At the shard's end: hands over what is buffered and lets the writer go (it ends once
    /// every shard has finished, whatever still holds this value).
    pub(crate) fn finish(&self) {
        self.flush();
        self.batches.borrow_mut().take();
    }

    /// Logs one write; a full buffer goes to the writer.
    pub(crate) fn record(&self, key: &str, value: Option<&WriteValue>, outcome: WriteOutcome) {
        let full = {
            let mut buffer = self.buffer.borrow_mut();
            encode(&mut buffer, key, value, outcome);
            buffer.len() >= BATCH_BYTES
        };
        if full {
            self.flush();
        }
    }

    /// Hands what the buffer holds to the writer (waiting for room: nothing is left out).
    pub(crate) fn flush(&self) {
        let batch = std::mem::replace(&mut *self.buffer.borrow_mut(), Vec::with_capacity(BATCH_BYTES));
        if let (false, Some(batches)) = (batch.is_empty(), self.batches.borrow().as_ref()) {
            // The writer only goes away when the run is over; nothing is left to log then.
            let _ = batches.send(batch);
        }
    }
}

impl Drop for ShardWrites {
    fn drop(&mut self) {
        self.flush();
    }
}

/// Appends one record to `out`.
pub fn encode(out: &mut Vec<u8>, key: &str, value: Option<&WriteValue>, outcome: WriteOutcome) {
    out.push(outcome.index() as u8);
    match value {
        None => out.push(0),
        Some(WriteValue::Text(_)) => out.push(1),
        Some(WriteValue::Sha256(_)) => out.push(2),
    }
    put_bytes(out, cut(key.as_bytes()));
    match value {
        None => {}
        Some(WriteValue::Text(text)) => put_bytes(out, cut(text.as_bytes())),
        Some(WriteValue::Sha256(d)) => out.extend_from_slice(d),
    }
}

/// At most [`MAX_FIELD`] bytes of `bytes`, cut on a character boundary when it is text.
fn cut(bytes: &[u8]) -> &[u8] {
    if bytes.len() <= MAX_FIELD {
        return bytes;
    }
    let mut end = MAX_FIELD;
    while end > 0 && (bytes[end] & 0xC0) == 0x80 {
        end -= 1;
    }
    &bytes[..end]
}

/// A length (LEB128) and the bytes.
pub(crate) fn put_bytes(out: &mut Vec<u8>, bytes: &[u8]) {
    put_varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

/// An unsigned LEB128 number.
pub(crate) fn put_varint(out: &mut Vec<u8>, mut n: u64) {
    loop {
        let byte = (n & 0x7F) as u8;
        n >>= 7;
        if n == 0 {
            out.push(byte);
            return;
        }
        out.push(byte | 0x80);
    }
}

/// Reads records back in the order they were written.
pub struct Reader<R> {
    input: R,
}

impl Reader<BufReader<File>> {
    /// The records of the spill file (or a sorted run) at `path`.
    pub fn open(path: &Path) -> io::Result<Self> {
        Ok(Reader { input: BufReader::with_capacity(BATCH_BYTES, File::open(path)?) })
    }
}

impl<R: Read> Reader<R> {
    /// Records from `input`.
    pub fn new(input: R) -> Self {
        Reader { input }
    }

    /// The next record; `None` at the end; an error for a record cut short or not one.
    pub fn next_record(&mut self) -> io::Result<Option<WriteRecord>> {
        let mut head = [0u8; 2];
        match self.input.read(&mut head[..1])? {
            0 => return Ok(None),
            _ => self.input.read_exact(&mut head[1..])?,
        }
        let outcome = WriteOutcome::from_index(usize::from(head[0])).ok_or_else(|| corrupt("an unknown outcome"))?;
        let key = text(get_bytes(&mut self.input)?)?;
        let value = match head[1] {
            0 => None,
            1 => Some(WriteValue::Text(text(get_bytes(&mut self.input)?)?)),
            2 => {
                let mut d = [0u8; 32];
                self.input.read_exact(&mut d)?;
                Some(WriteValue::Sha256(d))
            }
            _ => return Err(corrupt("an unknown kind of value")),
        };
        Ok(Some(WriteRecord { key, value, outcome }))
    }
}

fn corrupt(what: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, format!("the write log is damaged: {what}"))
}

fn text(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|_| corrupt("a key or value that is not UTF-8"))
}

/// A length-prefixed field.
pub(crate) fn get_bytes(input: &mut impl Read) -> io::Result<Vec<u8>> {
    let len = get_varint(input)?;
    if len > MAX_FIELD as u64 {
        return Err(corrupt("a field longer than any written"));
    }
    let mut bytes = vec![0u8; len as usize];
    input.read_exact(&mut bytes)?;
    Ok(bytes)
}

/// An unsigned LEB128 number.
pub(crate) fn get_varint(input: &mut impl Read) -> io::Result<u64> {
    let mut n = 0u64;
    for shift in (0..64).step_by(7) {
        let mut byte = [0u8; 1];
        input.read_exact(&mut byte)?;
        n |= u64::from(byte[0] & 0x7F) << shift;
        if byte[0] & 0x80 == 0 {
            return Ok(n);
        }
    }
    Err(corrupt("a length too long"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writes::digest;

    fn record(key: &str, value: Option<WriteValue>, outcome: WriteOutcome) -> WriteRecord {
        WriteRecord { key: key.into(), value, outcome }
    }

    #[test]
    fn records_round_trip_through_the_spill_file() {
        let dir = std::env::temp_dir().join(format!("pummel-spill-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("writes.spill");
        let writer = Writer::start(&WriteLogSpec { path: path.clone() }).unwrap();
        let written = vec![
            record("a", None, WriteOutcome::Acknowledged),
            record("clé-ü", Some(WriteValue::Text("valeur".into())), WriteOutcome::Unknown),
            record("", Some(WriteValue::Text(String::new())), WriteOutcome::Failed),
            record("h", Some(WriteValue::Sha256(digest(b"x"))), WriteOutcome::NotSent),
            record(&"k".repeat(300), Some(WriteValue::Text("v".repeat(200_000))), WriteOutcome::Acknowledged),
        ];
        {
            // Two shards, one of which fills batches: their records all arrive.
            let (one, two) = (ShardWrites::new(writer.link()), ShardWrites::new(writer.link()));
            for n in 0..20_000 {
                one.record(&format!("bulk-{n}"), None, WriteOutcome::Acknowledged);
            }
            for r in &written {
                two.record(&r.key, r.value.as_ref(), r.outcome);
            }
        }
        let totals = writer.finish();
        assert_eq!(totals.error, None);
        assert_eq!(totals.bytes, std::fs::metadata(&path).unwrap().len());
        let mut reader = Reader::open(&path).unwrap();
        let mut all = Vec::new();
        while let Some(r) = reader.next_record().unwrap() {
            all.push(r);
        }
        assert_eq!(all.len(), 20_000 + written.len());
        let mine: Vec<&WriteRecord> = all.iter().filter(|r| !r.key.starts_with("bulk-")).collect();
        assert_eq!(mine.len(), written.len());
        for (read, wrote) in mine.iter().zip(&written) {
            if wrote.value.as_ref().is_some_and(|v| v.text().len() > MAX_FIELD) {
                assert_eq!(read.value.as_ref().map(|v| v.text().len()), Some(MAX_FIELD), "long values are cut");
            } else {
                assert_eq!(*read, wrote);
            }
        }
        let bulk: Vec<&WriteRecord> = all.iter().filter(|r| r.key.starts_with("bulk-")).collect();
        assert_eq!(bulk[19_999].key, "bulk-19999", "one shard's records keep their order");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_record_cut_short_is_an_error_not_a_silent_end() {
        let mut bytes = Vec::new();
        encode(&mut bytes, "key", Some(&WriteValue::Text("value".into())), WriteOutcome::Unknown);
        let mut reader = Reader::new(&bytes[..bytes.len() - 2]);
        assert!(reader.next_record().is_err());
        let mut empty = Reader::new(&b""[..]);
        assert!(matches!(empty.next_record(), Ok(None)));
        let mut varint = Vec::new();
        put_varint(&mut varint, 300);
        assert_eq!(get_varint(&mut &varint[..]).unwrap(), 300);
        assert_eq!(varint.len(), 2);
    }
}
