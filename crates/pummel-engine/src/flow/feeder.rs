//! Test data from CSV or JSON-lines files: each iteration of a virtual user takes a row, which
//! templates read as `{{ users.name }}`.
//!
//! One [`Feeder`] serves every user and shard. The file is read and validated once when the
//! feeder opens (so a bad line fails the plan before the run, naming the line). Small files
//! (≤ [`MEMORY_LIMIT`]) are then kept in memory; larger ones are not: sequential and unique
//! feeders stream rows through one shared reader, rewinding on wrap, and random feeders keep
//! only a byte-offset index of row starts (8 bytes per row) and read each row where it lies.
//!
//! One file over 600 lines: about 520 lines of code; the rest is its tests, beside it.

use std::collections::VecDeque;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Seek, SeekFrom};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use rand::Rng;

use crate::inspect::json_to_text;
use crate::plan::Segment;

/// Files up to this size are kept in memory; larger ones are streamed or indexed.
pub const MEMORY_LIMIT: u64 = 8 << 20;

/// Rows a streaming feeder reads ahead per refill.
const BATCH: usize = 64;

/// The format of a data file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeederFormat {
    /// Comma-separated values with a header row naming the columns (quoted fields allowed).
    Csv,
    /// One JSON object per line; the keys of the first object name the columns.
    JsonLines,
}

impl FeederFormat {
    /// The format a file name's extension implies: `.csv`, `.jsonl` or `.ndjson`.
    pub fn from_path(path: &Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        match ext.as_str() {
            "csv" => Some(FeederFormat::Csv),
            "jsonl" | "ndjson" => Some(FeederFormat::JsonLines),
            _ => None,
        }
    }
}

/// The order rows are handed out in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeederMode {
    /// File order, one cursor shared by all users and shards.
    Sequential,
    /// A uniformly random row each time (rows repeat).
    Random,
    /// Each row at most once per pass over the file across the whole run: with
    /// [`WhenExhausted::End`] no row is ever handed out twice.
    Unique,
}

/// What a sequential or unique feeder does after its last row (random feeders never run out).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WhenExhausted {
    /// Start over from the first row.
    Wrap,
    /// Hand out no more rows: users needing one stop.
    End,
}

/// Why a feeder cannot open or read its file.
#[derive(Debug, thiserror::Error)]
pub enum FeederError {
    /// The file cannot be opened.
    #[error("cannot open {}: {source}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// Reading the file failed.
    #[error("cannot read {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The reason.
        source: io::Error,
    },
    /// A line is not valid CSV or JSON.
    #[error("{}: line {line}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// 1-based line number (for a CSV record, the line it starts on).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// The file has no header row (CSV) or no object (JSON lines).
    #[error("{}: empty file", path.display())]
    Empty {
        /// The file.
        path: PathBuf,
    },
    /// The file has a header but no data rows.
    #[error("{}: no data rows", path.display())]
    NoRows {
        /// The file.
        path: PathBuf,
    },
}

/// One row of a feeder: values by column name. Cheap to clone.
#[derive(Debug, Clone)]
pub struct Row {
    inner: Arc<RowData>,
}

/// What [`Row`] shares.
#[derive(Debug)]
struct RowData {
    columns: Arc<[String]>,
    /// One per column; `None` when a JSON line lacks the key.
    values: Box<[Option<Box<str>>]>,
}

impl Row {
    /// The value in `column`, if the row has it.
    pub fn get(&self, column: &str) -> Option<&str> {
        let at = self.inner.columns.iter().position(|c| c == column)?;
        self.inner.values.get(at)?.as_deref()
    }

    /// The feeder's column names.
    pub fn columns(&self) -> &[String] {
        &self.inner.columns
    }
}

/// A source of rows shared by all users: see the module docs.
#[derive(Debug)]
pub struct Feeder {
    name: String,
    path: PathBuf,
    format: FeederFormat,
    mode: FeederMode,
    when_exhausted: WhenExhausted,
    columns: Arc<[String]>,
    row_count: u64,
    store: Store,
    /// Templates read its columns by their own names (`{{ key }}`), not as `{{ name.key }}`.
    flat: bool,
}

/// Rows made by the engine rather than read from a data file (the keys a verify phase reads
/// back: see `writes::verify`), handed out once each, in order, to whichever user asks.
pub trait RowSource: Send + std::fmt::Debug {
    /// The next row; `None` once there are no more.
    fn next_row(&mut self) -> Result<Option<Row>, FeederError>;
}

/// Where the rows are.
#[derive(Debug)]
enum Store {
    /// All rows parsed, with the shared cursor of sequential and unique modes.
    Memory { rows: Vec<Row>, cursor: AtomicU64 },
    /// One reader shared by all (sequential and unique modes on large files).
    Stream(Box<Mutex<Stream>>),
    /// Row start offsets plus the end of the last row (random mode on large files).
    Indexed { file: File, offsets: Vec<u64> },
    /// Rows the engine makes, one shared source.
    Source(Box<Mutex<Box<dyn RowSource>>>),
}

/// A shared streaming reader with a few rows read ahead.
#[derive(Debug)]
struct Stream {
    reader: RowReader,
    batch: VecDeque<Row>,
    exhausted: bool,
    /// Rows read since the file's start (a segment takes the rows it owns).
    position: u64,
}

impl Feeder {
    /// Opens and validates `path`. Every line is read once here, so a bad one is reported now.
    pub fn open(
        name: &str,
        path: &Path,
        format: FeederFormat,
        mode: FeederMode,
        when_exhausted: WhenExhausted,
    ) -> Result<Feeder, FeederError> {
        Feeder::open_with_limit(name, path, format, mode, when_exhausted, MEMORY_LIMIT)
    }

    /// [`Feeder::open`], keeping the file in memory only up to `memory_limit` bytes.
    pub fn open_with_limit(
        name: &str,
        path: &Path,
        format: FeederFormat,
        mode: FeederMode,
        when_exhausted: WhenExhausted,
        memory_limit: u64,
    ) -> Result<Feeder, FeederError> {
        let file = File::open(path).map_err(|source| FeederError::Open { path: path.to_owned(), source })?;
        let size = file.metadata().map_err(|source| FeederError::Read { path: path.to_owned(), source })?.len();
        let in_memory = size <= memory_limit;
        let index = !in_memory && mode == FeederMode::Random;
        let mut reader = RowReader::new(path, format, file)?;
        let columns = reader.columns.clone();
        let mut rows = Vec::new();
        let mut offsets = Vec::new();
        let mut row_count = 0u64;
        loop {
            let start = reader.position();
            let Some(row) = reader.next()? else { break };
            row_count += 1;
            if in_memory {
                rows.push(row);
            } else if index {
                offsets.push(start);
            }
        }
        if row_count == 0 {
            return Err(FeederError::NoRows { path: path.to_owned() });
        }
        let store = if in_memory {
            Store::Memory { rows, cursor: AtomicU64::new(0) }
        } else if index {
            offsets.push(reader.position());
            let file = File::open(path).map_err(|source| FeederError::Open { path: path.to_owned(), source })?;
            Store::Indexed { file, offsets }
        } else {
            reader.rewind()?;
            Store::Stream(Box::new(Mutex::new(Stream {
                reader,
                batch: VecDeque::with_capacity(BATCH),
                exhausted: false,
                position: 0,
            })))
        };
        Ok(Feeder {
            name: name.to_owned(),
            path: path.to_owned(),
            format,
            mode,
            when_exhausted,
            columns,
            row_count,
            store,
            flat: false,
        })
    }

    /// A feeder of `row_count` rows made by `source`, each handed out once, in order, whatever
    /// the segment; its columns are read by their own names (`{{ key }}`).
    pub fn from_source(name: &str, columns: &[&str], row_count: u64, source: Box<dyn RowSource>) -> Feeder {
        Feeder {
            name: name.to_owned(),
            path: PathBuf::from(name),
            format: FeederFormat::JsonLines,
            mode: FeederMode::Sequential,
            when_exhausted: WhenExhausted::End,
            columns: columns.iter().map(|c| c.to_string()).collect(),
            row_count,
            store: Store::Source(Box::new(Mutex::new(source))),
            flat: true,
        }
    }

    /// True when templates read its columns by their own names (`{{ key }}`) rather than as
    /// `{{ feeder.key }}`.
    pub fn is_flat(&self) -> bool {
        self.flat
    }

    /// The feeder's name (what templates call it: `{{ name.column }}`).
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Column names: the CSV header row, or the keys of the first JSON object.
    pub fn columns(&self) -> &[String] {
        &self.columns
    }

    /// Data rows in the file (counted when it opened).
    pub fn row_count(&self) -> u64 {
        self.row_count
    }

    /// True when the rows are held in memory rather than read from the file per row.
    pub fn in_memory(&self) -> bool {
        matches!(self.store, Store::Memory { .. })
    }

    /// The next row for a user; `None` once a sequential or unique feeder that ends has
    /// handed out its last row. A random feeder picks with `rng`, the user's own generator,
    /// so a seeded run picks the same rows for the same user.
    pub fn next_row(&self, rng: &mut dyn rand::RngCore) -> Result<Option<Row>, FeederError> {
        self.next_row_in(rng, &Segment::whole())
    }

    /// The next row for a process that runs `segment` of the plan: `sequential` and `unique`
    /// rows are dealt out over the segments (row `r` to the segment that owns item `r`, its
    /// `j`-th row being `segment.item(j)`), so no row is used by two of them; `random` draws
    /// from every row.
    pub fn next_row_in(&self, rng: &mut dyn rand::RngCore, segment: &Segment) -> Result<Option<Row>, FeederError> {
        match &self.store {
            Store::Memory { rows, cursor } => {
                let n = rows.len() as u64;
                let at = match self.mode {
                    FeederMode::Random => rng.random_range(0..n),
                    FeederMode::Sequential | FeederMode::Unique => {
                        let at = segment.item(cursor.fetch_add(1, Ordering::Relaxed));
                        match self.when_exhausted {
                            WhenExhausted::Wrap => at % n,
                            WhenExhausted::End if at >= n => {
                                // Keep the cursor from creeping towards overflow.
                                cursor.store(n, Ordering::Relaxed);
                                return Ok(None);
                            }
                            WhenExhausted::End => at,
                        }
                    }
                };
                Ok(rows.get(at as usize).cloned())
            }
            Store::Indexed { file, offsets } => {
                let at = rng.random_range(0..offsets.len() - 1);
                self.read_indexed(file, offsets[at], offsets[at + 1], at).map(Some)
            }
            Store::Source(source) => source.lock().unwrap_or_else(|poisoned| poisoned.into_inner()).next_row(),
            Store::Stream(stream) => {
                let mut stream = stream.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
                if stream.batch.is_empty() {
                    self.refill(&mut stream, segment)?;
                }
                Ok(stream.batch.pop_front())
            }
        }
    }

    /// Reads up to [`BATCH`] rows into the stream's batch, rewinding at the end when wrapping.
    fn refill(&self, stream: &mut Stream, segment: &Segment) -> Result<(), FeederError> {
        let mut rewound = false;
        while stream.batch.len() < BATCH && !stream.exhausted {
            match stream.reader.next()? {
                Some(row) => {
                    let position = stream.position;
                    stream.position += 1;
                    if segment.owns(position) {
                        stream.batch.push_back(row);
                    }
                }
                None if self.when_exhausted == WhenExhausted::Wrap && !rewound => {
                    stream.reader.rewind()?;
                    stream.position = 0;
                    rewound = true;
                }
                None if self.when_exhausted == WhenExhausted::Wrap => break, // the file emptied
                None => stream.exhausted = true,
            }
        }
        Ok(())
    }

    /// Reads and parses the row between byte offsets `start` and `end`.
    fn read_indexed(&self, file: &File, start: u64, end: u64, at: usize) -> Result<Row, FeederError> {
        let mut buf = vec![0; (end - start) as usize];
        file.read_exact_at(&mut buf, start).map_err(|source| FeederError::Read { path: self.path.clone(), source })?;
        let row = match self.format {
            FeederFormat::Csv => parse_csv_record(&buf, &self.columns),
            FeederFormat::JsonLines => parse_json_object(&buf, &self.columns),
        };
        row.map_err(|message| FeederError::Parse {
            path: self.path.clone(),
            line: 0,
            message: format!("row {}: {message}", at + 1),
        })
    }
}

/// Reads rows from a file in order: CSV records or JSON lines.
#[derive(Debug)]
struct RowReader {
    path: PathBuf,
    columns: Arc<[String]>,
    kind: ReaderKind,
}

/// The format-specific part of [`RowReader`].
#[derive(Debug)]
enum ReaderKind {
    Csv {
        reader: csv::Reader<File>,
        record: csv::StringRecord,
        data_start: csv::Position,
    },
    /// `data_start`: offset and lines before the first object.
    Json {
        reader: BufReader<File>,
        line: u64,
        offset: u64,
        buf: String,
        data_start: (u64, u64),
    },
}

impl RowReader {
    /// A reader positioned at the first data row, with the columns known.
    fn new(path: &Path, format: FeederFormat, file: File) -> Result<RowReader, FeederError> {
        match format {
            FeederFormat::Csv => {
                let mut reader = csv::ReaderBuilder::new().has_headers(true).from_reader(file);
                let headers = reader.headers().map_err(|e| csv_error(path, &e))?.clone();
                if headers.is_empty() || (headers.len() == 1 && headers[0].is_empty()) {
                    return Err(FeederError::Empty { path: path.to_owned() });
                }
                let columns: Arc<[String]> = headers.iter().map(str::to_owned).collect();
                let data_start = reader.position().clone();
                let kind = ReaderKind::Csv { reader, record: csv::StringRecord::new(), data_start };
                Ok(RowReader { path: path.to_owned(), columns, kind })
            }
            FeederFormat::JsonLines => {
                let kind = ReaderKind::Json {
                    reader: BufReader::new(file),
                    line: 0,
                    offset: 0,
                    buf: String::new(),
                    data_start: (0, 0),
                };
                let mut this = RowReader { path: path.to_owned(), columns: Arc::from(Vec::new()), kind };
                // The first object names the columns; rewinding to it hands it out as the first row.
                let (start, line, object) =
                    this.next_json_object()?.ok_or_else(|| FeederError::Empty { path: path.to_owned() })?;
                this.columns = object.keys().cloned().collect();
                if let ReaderKind::Json { data_start, .. } = &mut this.kind {
                    *data_start = (start, line - 1);
                }
                this.rewind()?;
                Ok(this)
            }
        }
    }

    /// Byte offset of the next row's start.
    fn position(&self) -> u64 {
        match &self.kind {
            ReaderKind::Csv { reader, .. } => reader.position().byte(),
            ReaderKind::Json { offset, .. } => *offset,
        }
    }

    /// The next row, `None` at the end of the file.
    fn next(&mut self) -> Result<Option<Row>, FeederError> {
        match &mut self.kind {
            ReaderKind::Csv { reader, record, .. } => {
                if !reader.read_record(record).map_err(|e| csv_error(&self.path, &e))? {
                    return Ok(None);
                }
                let values = record.iter().map(|v| Some(Box::from(v))).collect();
                Ok(Some(Row { inner: Arc::new(RowData { columns: self.columns.clone(), values }) }))
            }
            ReaderKind::Json { .. } => {
                Ok(self.next_json_object()?.map(|(_, _, object)| object_row(&object, &self.columns)))
            }
        }
    }

    /// The next non-blank JSON line as (start offset, line number, object).
    #[allow(clippy::type_complexity)]
    fn next_json_object(
        &mut self,
    ) -> Result<Option<(u64, u64, serde_json::Map<String, serde_json::Value>)>, FeederError> {
        let ReaderKind::Json { reader, line, offset, buf, .. } = &mut self.kind else { return Ok(None) };
        loop {
            buf.clear();
            let start = *offset;
            let read = reader.read_line(buf).map_err(|source| FeederError::Read { path: self.path.clone(), source })?;
            if read == 0 {
                return Ok(None);
            }
            *line += 1;
            *offset += read as u64;
            if buf.trim().is_empty() {
                continue;
            }
            return match serde_json::from_str::<serde_json::Value>(buf) {
                Ok(serde_json::Value::Object(object)) => Ok(Some((start, *line, object))),
                Ok(_) => Err(FeederError::Parse {
                    path: self.path.clone(),
                    line: *line,
                    message: "expected a JSON object".to_owned(),
                }),
                Err(e) => Err(FeederError::Parse { path: self.path.clone(), line: *line, message: e.to_string() }),
            };
        }
    }

    /// Goes back to the first data row.
    fn rewind(&mut self) -> Result<(), FeederError> {
        let path = &self.path;
        let read_error = |source| FeederError::Read { path: path.clone(), source };
        match &mut self.kind {
            ReaderKind::Csv { reader, data_start, .. } => {
                reader.seek(data_start.clone()).map_err(|e| csv_error(path, &e))?;
            }
            ReaderKind::Json { reader, line, offset, data_start, .. } => {
                reader.seek(SeekFrom::Start(data_start.0)).map_err(read_error)?;
                *offset = data_start.0;
                *line = data_start.1;
            }
        }
        Ok(())
    }
}

/// A row from a JSON object: the feeder's columns, strings as is, other values as JSON text.
fn object_row(object: &serde_json::Map<String, serde_json::Value>, columns: &Arc<[String]>) -> Row {
    let values = columns.iter().map(|c| object.get(c).map(|v| Box::from(json_to_text(v)))).collect();
    Row { inner: Arc::new(RowData { columns: columns.clone(), values }) }
}

/// Parses one CSV record (read by offset) into a row.
fn parse_csv_record(bytes: &[u8], columns: &Arc<[String]>) -> Result<Row, String> {
    let mut reader = csv::ReaderBuilder::new().has_headers(false).from_reader(bytes);
    let mut record = csv::StringRecord::new();
    match reader.read_record(&mut record) {
        Ok(true) => {
            let values = record.iter().map(|v| Some(Box::from(v))).collect();
            Ok(Row { inner: Arc::new(RowData { columns: columns.clone(), values }) })
        }
        Ok(false) => Err("no record".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// Parses one JSON line (read by offset) into a row.
fn parse_json_object(bytes: &[u8], columns: &Arc<[String]>) -> Result<Row, String> {
    match serde_json::from_slice::<serde_json::Value>(bytes) {
        Ok(serde_json::Value::Object(object)) => Ok(object_row(&object, columns)),
        Ok(_) => Err("expected a JSON object".to_owned()),
        Err(e) => Err(e.to_string()),
    }
}

/// A CSV error as a [`FeederError`] with its line.
fn csv_error(path: &Path, err: &csv::Error) -> FeederError {
    if let csv::ErrorKind::Io(e) = err.kind() {
        return FeederError::Read { path: path.to_owned(), source: io::Error::new(e.kind(), e.to_string()) };
    }
    let line = err.position().map_or(0, csv::Position::line);
    let message = match err.kind() {
        csv::ErrorKind::UnequalLengths { expected_len, len, .. } => {
            format!("{len} fields where the header has {expected_len}")
        }
        csv::ErrorKind::Utf8 { .. } => "invalid UTF-8".to_owned(),
        _ => err.to_string(),
    };
    FeederError::Parse { path: path.to_owned(), line, message }
}

impl Row {
    /// A row of `columns` holding `values` (one per column, `None` for a missing value).
    pub fn new(columns: Arc<[String]>, values: Vec<Option<String>>) -> Row {
        let values = values.into_iter().map(|v| v.map(String::into_boxed_str)).collect();
        Row { inner: Arc::new(RowData { columns, values }) }
    }

    /// A row from literal values, for tests elsewhere in the crate.
    #[cfg(test)]
    pub(crate) fn for_tests(columns: Arc<[String]>, values: &[&str]) -> Row {
        let values = values.iter().map(|v| Some(Box::from(*v))).collect();
        Row { inner: Arc::new(RowData { columns, values }) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;
    use std::sync::atomic::AtomicUsize;

    /// A file in the temp directory, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(ext: &str, content: &str) -> TempFile {
            static NEXT: AtomicUsize = AtomicUsize::new(0);
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = std::env::temp_dir().join(format!("pummel-feeder-{}-{n}.{ext}", std::process::id()));
            std::fs::write(&path, content).unwrap();
            TempFile(path)
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = std::fs::remove_file(&self.0);
        }
    }

    /// `n` CSV rows `id,name` with ids 0..n.
    fn csv_rows(n: usize) -> String {
        let mut text = String::from("id,name\n");
        for i in 0..n {
            text.push_str(&format!("{i},\"user, {i}\"\n"));
        }
        text
    }

    /// `n` JSON lines with ids 0..n.
    fn json_rows(n: usize) -> String {
        (0..n).map(|i| format!("{{\"id\": {i}, \"name\": \"user {i}\"}}\n")).collect()
    }

    /// Both storage forms: in memory, and streamed / indexed (limit 0).
    const LIMITS: [u64; 2] = [MEMORY_LIMIT, 0];

    fn open(file: &TempFile, format: FeederFormat, mode: FeederMode, end: WhenExhausted, limit: u64) -> Feeder {
        Feeder::open_with_limit("users", &file.0, format, mode, end, limit).unwrap()
    }

    fn ids(feeder: &Feeder, n: usize) -> Vec<Option<String>> {
        (0..n)
            .map(|_| feeder.next_row(&mut rand::rng()).unwrap().map(|row| row.get("id").unwrap().to_owned()))
            .collect()
    }

    fn some(ids: &[&str]) -> Vec<Option<String>> {
        ids.iter().map(|i| Some((*i).to_owned())).collect()
    }

    /// The segments of a sequence share out the rows of a `unique` feeder: each row goes to the
    /// segment that owns its number, in order, none twice, none lost, in memory or streamed.
    #[test]
    fn segments_of_a_sequence_deal_out_the_rows() {
        let file = TempFile::new("csv", &csv_rows(23));
        let sequence = Some("0,1/4,1/2,1");
        for limit in LIMITS {
            let mut all: Vec<u64> = Vec::new();
            for text in ["0:1/4", "1/4:1/2", "1/2:1"] {
                let segment = Segment::parse(text, sequence).unwrap();
                let feeder = open(&file, FeederFormat::Csv, FeederMode::Unique, WhenExhausted::End, limit);
                let mut rows = Vec::new();
                while let Some(row) = feeder.next_row_in(&mut rand::rng(), &segment).unwrap() {
                    rows.push(row.get("id").unwrap().parse::<u64>().unwrap());
                }
                let expected: Vec<u64> = (0..23).filter(|&r| segment.owns(r)).collect();
                assert_eq!(rows, expected, "{text}, limit {limit}");
                assert_eq!(rows.len() as u64, segment.share(23));
                all.extend(rows);
            }
            all.sort_unstable();
            assert_eq!(all, (0..23).collect::<Vec<_>>(), "limit {limit}");
        }
    }

    #[test]
    fn format_from_extension() {
        assert_eq!(FeederFormat::from_path(Path::new("a/users.csv")), Some(FeederFormat::Csv));
        assert_eq!(FeederFormat::from_path(Path::new("u.JSONL")), Some(FeederFormat::JsonLines));
        assert_eq!(FeederFormat::from_path(Path::new("u.ndjson")), Some(FeederFormat::JsonLines));
        assert_eq!(FeederFormat::from_path(Path::new("u.txt")), None);
        assert_eq!(FeederFormat::from_path(Path::new("csv")), None);
    }

    #[test]
    fn csv_quoting_and_columns() {
        let text = "name,note\n\"Smith, Ann\",\"she said \"\"hi\"\"\"\nbob,\"two\nlines\"\n";
        let file = TempFile::new("csv", text);
        for limit in LIMITS {
            let feeder = open(&file, FeederFormat::Csv, FeederMode::Sequential, WhenExhausted::End, limit);
            assert_eq!(feeder.columns(), ["name", "note"]);
            assert_eq!(feeder.row_count(), 2);
            assert_eq!(feeder.name(), "users");
            let row = feeder.next_row(&mut rand::rng()).unwrap().unwrap();
            assert_eq!(row.get("name"), Some("Smith, Ann"));
            assert_eq!(row.get("note"), Some("she said \"hi\""));
            assert_eq!(row.get("nope"), None);
            let row = feeder.next_row(&mut rand::rng()).unwrap().unwrap();
            assert_eq!(row.get("note"), Some("two\nlines"));
            assert!(feeder.next_row(&mut rand::rng()).unwrap().is_none());
        }
    }

    #[test]
    fn json_lines_values_as_text() {
        let text = "{\"id\": 1, \"name\": \"ann\", \"tags\": [\"a\"], \"ok\": true}\n\n{\"id\": 2.5, \"name\": null, \"extra\": 1}\n";
        let file = TempFile::new("jsonl", text);
        for limit in LIMITS {
            let feeder = open(&file, FeederFormat::JsonLines, FeederMode::Sequential, WhenExhausted::End, limit);
            let mut columns = feeder.columns().to_vec();
            columns.sort();
            assert_eq!(columns, ["id", "name", "ok", "tags"]);
            let row = feeder.next_row(&mut rand::rng()).unwrap().unwrap();
            assert_eq!((row.get("id"), row.get("name"), row.get("ok")), (Some("1"), Some("ann"), Some("true")));
            assert_eq!(row.get("tags"), Some("[\"a\"]"));
            let row = feeder.next_row(&mut rand::rng()).unwrap().unwrap();
            assert_eq!((row.get("id"), row.get("name"), row.get("ok")), (Some("2.5"), Some("null"), None));
            assert_eq!(row.get("extra"), None, "keys beyond the first object's are not columns");
            assert!(feeder.next_row(&mut rand::rng()).unwrap().is_none());
        }
    }

    #[test]
    fn bad_lines_are_named() {
        let file = TempFile::new("jsonl", "{\"id\": 1}\n{\"id\": 2}\n{\"id\": 3,,}\n");
        let err =
            Feeder::open("u", &file.0, FeederFormat::JsonLines, FeederMode::Random, WhenExhausted::Wrap).unwrap_err();
        assert!(matches!(err, FeederError::Parse { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("line 3"), "{err}");
        let file = TempFile::new("jsonl", "{\"id\": 1}\n[1, 2]\n");
        let err =
            Feeder::open("u", &file.0, FeederFormat::JsonLines, FeederMode::Random, WhenExhausted::Wrap).unwrap_err();
        assert!(matches!(err, FeederError::Parse { line: 2, .. }), "{err:?}");
        let file = TempFile::new("csv", "a,b\n1,2\n3\n");
        let err = Feeder::open("u", &file.0, FeederFormat::Csv, FeederMode::Random, WhenExhausted::Wrap).unwrap_err();
        assert!(matches!(err, FeederError::Parse { line: 3, .. }), "{err:?}");
        assert!(err.to_string().contains("1 fields where the header has 2"), "{err}");
    }

    #[test]
    fn empty_and_missing_files() {
        let open = |path: &Path, format| Feeder::open("u", path, format, FeederMode::Sequential, WhenExhausted::Wrap);
        for (ext, format) in [("csv", FeederFormat::Csv), ("jsonl", FeederFormat::JsonLines)] {
            let file = TempFile::new(ext, "");
            assert!(matches!(open(&file.0, format), Err(FeederError::Empty { .. })), "{ext}");
        }
        let file = TempFile::new("csv", "id,name\n");
        assert!(matches!(open(&file.0, FeederFormat::Csv), Err(FeederError::NoRows { .. })));
        let file = TempFile::new("jsonl", "\n  \n");
        assert!(matches!(open(&file.0, FeederFormat::JsonLines), Err(FeederError::Empty { .. })));
        let missing = std::env::temp_dir().join("pummel-feeder-surely-missing.csv");
        let err = open(&missing, FeederFormat::Csv).unwrap_err();
        assert!(matches!(err, FeederError::Open { .. }));
        assert!(err.to_string().contains("pummel-feeder-surely-missing.csv"), "{err}");
    }

    #[test]
    fn end_stops_and_wrap_starts_over() {
        for (ext, format, text) in
            [("csv", FeederFormat::Csv, csv_rows(3)), ("jsonl", FeederFormat::JsonLines, json_rows(3))]
        {
            let file = TempFile::new(ext, &text);
            for limit in LIMITS {
                for mode in [FeederMode::Sequential, FeederMode::Unique] {
                    let ending = open(&file, format, mode, WhenExhausted::End, limit);
                    assert_eq!(ending.in_memory(), limit > 0);
                    let mut expected = some(&["0", "1", "2"]);
                    expected.extend([None, None]);
                    assert_eq!(ids(&ending, 5), expected, "{ext} {mode:?} limit {limit}");
                    let wrapping = open(&file, format, mode, WhenExhausted::Wrap, limit);
                    assert_eq!(ids(&wrapping, 7), some(&["0", "1", "2", "0", "1", "2", "0"]), "{ext} {mode:?}");
                }
            }
        }
    }

    #[test]
    fn unique_never_repeats_across_threads() {
        const ROWS: usize = 1000;
        for (ext, format, text) in
            [("csv", FeederFormat::Csv, csv_rows(ROWS)), ("jsonl", FeederFormat::JsonLines, json_rows(ROWS))]
        {
            let file = TempFile::new(ext, &text);
            for limit in LIMITS {
                let feeder = Arc::new(open(&file, format, FeederMode::Unique, WhenExhausted::End, limit));
                let threads: Vec<_> = (0..8)
                    .map(|_| {
                        let feeder = feeder.clone();
                        std::thread::spawn(move || {
                            let mut got = Vec::new();
                            // Bounded: more pulls than rows, so each thread sees the end.
                            for _ in 0..ROWS * 2 {
                                match feeder.next_row(&mut rand::rng()).unwrap() {
                                    Some(row) => got.push(row.get("id").unwrap().to_owned()),
                                    None => break,
                                }
                            }
                            got
                        })
                    })
                    .collect();
                let all: Vec<String> = threads.into_iter().flat_map(|t| t.join().unwrap()).collect();
                let distinct: HashSet<&String> = all.iter().collect();
                assert_eq!(all.len(), ROWS, "{ext} limit {limit}");
                assert_eq!(distinct.len(), ROWS, "{ext} limit {limit}: no row twice");
                assert!(feeder.next_row(&mut rand::rng()).unwrap().is_none());
            }
        }
    }

    #[test]
    fn random_covers_rows() {
        const ROWS: usize = 20;
        // The first row's quoted field spans two lines: offsets must follow records, not lines.
        let rest: String = (1..ROWS).map(|i| format!("{i},user {i}\n")).collect();
        let text = "id,name\n\"0\",\"multi\nline\"\n".to_owned() + &rest;
        for (ext, format, text) in
            [("csv", FeederFormat::Csv, text), ("jsonl", FeederFormat::JsonLines, json_rows(ROWS))]
        {
            let file = TempFile::new(ext, &text);
            for limit in LIMITS {
                let feeder = open(&file, format, FeederMode::Random, WhenExhausted::End, limit);
                assert_eq!(feeder.row_count(), ROWS as u64, "{ext}");
                let seen: HashSet<String> = ids(&feeder, 2000).into_iter().map(Option::unwrap).collect();
                let expected: HashSet<String> = (0..ROWS).map(|i| i.to_string()).collect();
                assert_eq!(seen, expected, "{ext} limit {limit}: 2000 draws cover 20 rows");
            }
        }
    }

    #[test]
    fn rows_are_cheap_to_clone_and_shareable() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Feeder>();
        assert_send_sync::<Row>();
        let file = TempFile::new("csv", &csv_rows(1));
        let feeder = open(&file, FeederFormat::Csv, FeederMode::Sequential, WhenExhausted::Wrap, MEMORY_LIMIT);
        let row = feeder.next_row(&mut rand::rng()).unwrap().unwrap();
        let copy = row.clone();
        assert!(Arc::ptr_eq(&row.inner, &copy.inner));
        assert_eq!(copy.columns(), ["id", "name"]);
        assert_eq!(copy.get("name"), Some("user, 0"));
    }
}
