//! The write log sorted by key on disk, into one record per key ([`KeyWrites`]): the outcomes
//! of its writes and the values they wrote, which the read-back judges a key by.
//!
//! The spill file may hold millions of writes in the order they ended, one key's writes
//! scattered over it. It is read once in runs of at most [`RUN_BYTES`], each sorted in memory
//! and written out, then the runs are merged (a k-way merge over a heap), and the records of
//! each key gathered as they come out together. Memory is one run, whatever the file's size.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use super::spill::{self, BATCH_BYTES, Reader, get_bytes, get_varint, put_bytes, put_varint};
use super::{Digest, WriteOutcome, WriteRecord, WriteValue};

/// Memory (roughly: a record's key and value, and what holding them costs) of the records
/// sorted at once; the read-back's sort never holds more, however many writes there were.
pub const RUN_BYTES: usize = 32 << 20;
/// What holding one record costs besides its key and value bytes (the record and two
/// allocations).
const RECORD_COST: usize = 128;
/// Distinct values remembered per key; a key written with more matches any value.
pub const MAX_DIGESTS: usize = 64;

/// Everything the log says of one key.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct KeyWrites {
    /// The key.
    pub key: String,
    /// What `{{ value }}` is for it: the last acknowledged write's value, else the last one's.
    pub value: Option<WriteValue>,
    /// Its writes by outcome (indexed by [`WriteOutcome::index`]).
    pub counts: [u64; 4],
    /// The distinct values its writes wrote, as digests.
    pub digests: Vec<Digest>,
    /// Any value matches: a write of it named none, or it wrote more than [`MAX_DIGESTS`].
    pub any_value: bool,
}

impl KeyWrites {
    /// Its writes of `outcome`.
    pub fn count(&self, outcome: WriteOutcome) -> u64 {
        self.counts[outcome.index()]
    }

    /// Adds a write of this key.
    fn add(&mut self, record: WriteRecord) {
        self.counts[record.outcome.index()] += 1;
        match &record.value {
            None => self.any_value = true,
            Some(value) => {
                let d = value.digest();
                if !self.digests.contains(&d) {
                    if self.digests.len() < MAX_DIGESTS {
                        self.digests.push(d);
                    } else {
                        self.any_value = true;
                    }
                }
            }
        }
        let acknowledged = record.outcome == WriteOutcome::Acknowledged;
        let had_acknowledged = self.count(WriteOutcome::Acknowledged) > u64::from(acknowledged);
        if record.value.is_some() && (acknowledged || !had_acknowledged) {
            self.value = record.value;
        }
    }

    /// True when a value of digest `d` is one this key's writes wrote.
    pub fn wrote(&self, d: &Digest) -> bool {
        self.any_value || self.digests.is_empty() || self.digests.contains(d)
    }
}

/// The grouped file: one [`KeyWrites`] per key, in key order.
#[derive(Debug, Clone)]
pub struct Grouped {
    /// The file.
    pub path: PathBuf,
    /// Distinct keys in it.
    pub keys: u64,
    /// Writes they were gathered from.
    pub writes: u64,
}

/// Sorts the spill file at `spill` by key (runs of at most `run_bytes`, in `dir`) and writes
/// one record per key to `dir/writes.grouped`.
pub fn group(spill: &Path, dir: &Path, run_bytes: usize) -> io::Result<Grouped> {
    let runs = sorted_runs(spill, dir, run_bytes)?;
    let path = dir.join("writes.grouped");
    let mut out = BufWriter::with_capacity(BATCH_BYTES, File::create(&path)?);
    let mut merged = Merge::new(&runs)?;
    let (mut keys, mut writes) = (0u64, 0u64);
    let mut current: Option<KeyWrites> = None;
    while let Some(record) = merged.next_record()? {
        writes += 1;
        match &mut current {
            Some(group) if group.key == record.key => group.add(record),
            _ => {
                if let Some(done) = current.take() {
                    write_group(&mut out, &done)?;
                    keys += 1;
                }
                let mut group = KeyWrites { key: record.key.clone(), ..KeyWrites::default() };
                group.add(record);
                current = Some(group);
            }
        }
    }
    if let Some(done) = current {
        write_group(&mut out, &done)?;
        keys += 1;
    }
    out.flush()?;
    for run in &runs {
        let _ = std::fs::remove_file(run);
    }
    Ok(Grouped { path, keys, writes })
}

/// The spill file as sorted runs, in the order they were read.
fn sorted_runs(spill: &Path, dir: &Path, run_bytes: usize) -> io::Result<Vec<PathBuf>> {
    let mut reader = Reader::open(spill)?;
    let mut runs = Vec::new();
    let mut batch: Vec<WriteRecord> = Vec::new();
    let mut size = 0usize;
    loop {
        let record = reader.next_record()?;
        let end = record.is_none();
        if let Some(record) = record {
            let value = match &record.value {
                Some(WriteValue::Text(text)) => text.len(),
                Some(WriteValue::Sha256(_)) | None => 0,
            };
            size += RECORD_COST + record.key.len() + value;
            batch.push(record);
        }
        if (end && !batch.is_empty()) || size >= run_bytes {
            // Stable: a key's writes keep the order they ended in.
            batch.sort_by(|a, b| a.key.cmp(&b.key));
            let path = dir.join(format!("writes.run{}", runs.len()));
            let mut out = BufWriter::with_capacity(BATCH_BYTES, File::create(&path)?);
            let mut bytes = Vec::with_capacity(BATCH_BYTES);
            for record in batch.drain(..) {
                spill::encode(&mut bytes, &record.key, record.value.as_ref(), record.outcome);
                if bytes.len() >= BATCH_BYTES {
                    out.write_all(&bytes)?;
                    bytes.clear();
                }
            }
            out.write_all(&bytes)?;
            out.flush()?;
            runs.push(path);
            size = 0;
        }
        if end {
            return Ok(runs);
        }
    }
}

/// The runs merged in key order; for equal keys, earlier runs first (the log's order).
struct Merge {
    readers: Vec<Reader<BufReader<File>>>,
    heads: BinaryHeap<Reverse<(String, usize)>>,
    pending: Vec<Option<WriteRecord>>,
}

impl Merge {
    fn new(runs: &[PathBuf]) -> io::Result<Merge> {
        let mut merge = Merge { readers: Vec::new(), heads: BinaryHeap::new(), pending: Vec::new() };
        for (i, run) in runs.iter().enumerate() {
            merge.readers.push(Reader::open(run)?);
            merge.pending.push(None);
            merge.advance(i)?;
        }
        Ok(merge)
    }

    /// Reads run `i`'s next record into its slot and onto the heap.
    fn advance(&mut self, i: usize) -> io::Result<()> {
        if let Some(record) = self.readers[i].next_record()? {
            self.heads.push(Reverse((record.key.clone(), i)));
            self.pending[i] = Some(record);
        }
        Ok(())
    }

    fn next_record(&mut self) -> io::Result<Option<WriteRecord>> {
        let Some(Reverse((_, i))) = self.heads.pop() else { return Ok(None) };
        let record = self.pending[i].take();
        self.advance(i)?;
        Ok(record)
    }
}

fn write_group(out: &mut impl Write, group: &KeyWrites) -> io::Result<()> {
    let mut bytes = Vec::with_capacity(64 + group.key.len() + group.digests.len() * 32);
    put_bytes(&mut bytes, group.key.as_bytes());
    match &group.value {
        None => bytes.push(0),
        Some(WriteValue::Text(text)) => {
            bytes.push(1);
            put_bytes(&mut bytes, text.as_bytes());
        }
        Some(WriteValue::Sha256(d)) => {
            bytes.push(2);
            bytes.extend_from_slice(d);
        }
    }
    for count in group.counts {
        put_varint(&mut bytes, count);
    }
    bytes.push(u8::from(group.any_value));
    put_varint(&mut bytes, group.digests.len() as u64);
    for d in &group.digests {
        bytes.extend_from_slice(d);
    }
    out.write_all(&bytes)
}

/// Reads the grouped file, one key at a time.
pub struct GroupReader {
    input: BufReader<File>,
}

impl GroupReader {
    /// The groups of the file at `path`.
    pub fn open(path: &Path) -> io::Result<GroupReader> {
        Ok(GroupReader { input: BufReader::with_capacity(BATCH_BYTES, File::open(path)?) })
    }

    /// The next key's writes; `None` at the end.
    pub fn next_group(&mut self) -> io::Result<Option<KeyWrites>> {
        let mut first = [0u8; 1];
        if self.input.read(&mut first)? == 0 {
            return Ok(None);
        }
        let input = &mut (&first[..]).chain(&mut self.input);
        let key = utf8(get_bytes(input)?)?;
        let mut kind = [0u8; 1];
        input.read_exact(&mut kind)?;
        let value = match kind[0] {
            0 => None,
            1 => Some(WriteValue::Text(utf8(get_bytes(input)?)?)),
            _ => {
                let mut d = [0u8; 32];
                input.read_exact(&mut d)?;
                Some(WriteValue::Sha256(d))
            }
        };
        let mut counts = [0u64; 4];
        for count in &mut counts {
            *count = get_varint(input)?;
        }
        let mut any = [0u8; 1];
        input.read_exact(&mut any)?;
        let n = get_varint(input)?.min(MAX_DIGESTS as u64) as usize;
        let mut digests = Vec::with_capacity(n);
        for _ in 0..n {
            let mut d = [0u8; 32];
            input.read_exact(&mut d)?;
            digests.push(d);
        }
        Ok(Some(KeyWrites { key, value, counts, digests, any_value: any[0] != 0 }))
    }
}

fn utf8(bytes: Vec<u8>) -> io::Result<String> {
    String::from_utf8(bytes).map_err(|_| io::Error::new(io::ErrorKind::InvalidData, "a key that is not UTF-8"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::writes::digest;
    use crate::writes::spill::encode;

    fn dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("pummel-group-test-{name}-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn writes_are_gathered_per_key_in_key_order_over_many_runs() {
        let dir = dir("runs");
        let spill = dir.join("writes.spill");
        let mut bytes = Vec::new();
        // 3000 keys, each written twice far apart in the log (first unknown, then acknowledged
        // with another value), plus one key written many times.
        for round in 0..2 {
            for n in (0..3000).rev() {
                let outcome = if round == 0 { WriteOutcome::Unknown } else { WriteOutcome::Acknowledged };
                let value = WriteValue::Text(format!("v{n}-{round}"));
                encode(&mut bytes, &format!("k{n:05}"), Some(&value), outcome);
            }
        }
        for n in 0..100 {
            encode(&mut bytes, "many", Some(&WriteValue::Text(format!("{n}"))), WriteOutcome::Failed);
        }
        std::fs::write(&spill, &bytes).unwrap();
        // Small runs: the merge has many inputs.
        let grouped = group(&spill, &dir, 16 * 1024).unwrap();
        assert_eq!((grouped.keys, grouped.writes), (3001, 6100));
        let mut reader = GroupReader::open(&grouped.path).unwrap();
        let mut previous = String::new();
        let mut seen = 0;
        while let Some(g) = reader.next_group().unwrap() {
            assert!(g.key > previous, "{} after {previous}", g.key);
            previous = g.key.clone();
            seen += 1;
            if g.key == "many" {
                assert_eq!(g.count(WriteOutcome::Failed), 100);
                assert!(g.any_value, "more values than remembered: any matches");
                continue;
            }
            assert_eq!((g.count(WriteOutcome::Unknown), g.count(WriteOutcome::Acknowledged)), (1, 1), "{}", g.key);
            let n: u32 = g.key[1..].parse().unwrap();
            assert_eq!(g.value, Some(WriteValue::Text(format!("v{n}-1"))), "the acknowledged value");
            assert!(g.wrote(&digest(format!("v{n}-0").as_bytes())) && g.wrote(&digest(format!("v{n}-1").as_bytes())));
            assert!(!g.wrote(&digest(b"other")));
        }
        assert_eq!(seen, 3001);
        assert!(std::fs::read_dir(&dir).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().contains(".run")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_empty_log_has_no_keys() {
        let dir = dir("empty");
        let spill = dir.join("writes.spill");
        std::fs::write(&spill, b"").unwrap();
        let grouped = group(&spill, &dir, RUN_BYTES).unwrap();
        assert_eq!((grouped.keys, grouped.writes), (0, 0));
        assert!(GroupReader::open(&grouped.path).unwrap().next_group().unwrap().is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
