//! The results document in the coordinator's log: how `pummel k8s run` gets the file the
//! coordinator wrote in its pod without exec, a volume or a sidecar.
//!
//! A coordinator started by `pummel k8s run` runs under `pummel k8s coordinator`, which, once
//! `pummel run ... -o /results/results.json` has exited, prints the document framed by two
//! marker lines that carry the run's id, its length and its SHA-256, in base64 lines of
//! [`LINE`] characters (short lines: container runtimes split long ones):
//!
//! ```text
//! pummel-results-begin run=<id> bytes=<n> sha256=<hex>
//! <base64, 76 characters a line>
//! pummel-results-end run=<id>
//! ```
//!
//! or, when there is no document, one line `pummel-results-none run=<id> <why>`. The reader
//! ([`Deframer`]) takes the log line by line, keeps the frame's lines out of what it shows,
//! and checks length and digest, so the bytes written by `pummel k8s run -o` are the
//! coordinator's file, byte for byte, or an error says why not. The run id (random, per run)
//! keeps a line the plan's output happens to print from being taken for a marker.

use base64::Engine as _;
use sha2::{Digest, Sha256};
use thiserror::Error;

/// Characters of base64 per line (as MIME's 76).
pub const LINE: usize = 76;
const BEGIN: &str = "pummel-results-begin";
const END: &str = "pummel-results-end";
const NONE: &str = "pummel-results-none";

/// Why a framed document cannot be taken from the log.
#[derive(Debug, Error, PartialEq, Eq)]
pub enum FrameError {
    /// The log ended inside the frame (the pod was deleted, or the log stream broke).
    #[error("the log ended inside the results document ({got} of {expected} bytes)")]
    Truncated {
        /// Bytes the begin line announced.
        expected: usize,
        /// Bytes decoded before the log ended.
        got: usize,
    },
    /// A line of the frame is not base64, or a marker line is malformed.
    #[error("the results document in the log is malformed: {0}")]
    Malformed(String),
    /// The decoded bytes differ from what the begin line announced.
    #[error("the results document in the log does not match its length or SHA-256")]
    Mismatch,
}

/// The frame of `bytes` for run `run_id`, with a final newline.
pub fn encode(run_id: &str, bytes: &[u8]) -> String {
    let encoded = base64::engine::general_purpose::STANDARD.encode(bytes);
    let digest = hex(&Sha256::digest(bytes));
    let mut out = format!("{BEGIN} run={run_id} bytes={} sha256={digest}\n", bytes.len());
    // base64 is ASCII, so any byte offset is a character boundary.
    for start in (0..encoded.len()).step_by(LINE) {
        out.push_str(&encoded[start..encoded.len().min(start + LINE)]);
        out.push('\n');
    }
    out.push_str(&format!("{END} run={run_id}\n"));
    out
}

/// The line that says there is no document for run `run_id`, and why, with a final newline.
pub fn encode_none(run_id: &str, why: &str) -> String {
    let why: String = why.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
    format!("{NONE} run={run_id} {why}\n")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the log said about the results document once it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Framed {
    /// The document, exactly as the coordinator wrote it.
    Document(Vec<u8>),
    /// The coordinator said it has none, and why.
    None(String),
    /// No marker at all (the coordinator never got that far).
    Absent,
}

#[derive(Debug)]
enum State {
    Outside,
    Inside { expected: usize, digest: String, text: String },
    Done(Result<Framed, FrameError>),
}

/// Reads the coordinator's log line by line and takes the results document out of it.
#[derive(Debug)]
pub struct Deframer {
    run_id: String,
    state: State,
}

impl Deframer {
    /// A reader for the frame of run `run_id`.
    pub fn new(run_id: impl Into<String>) -> Self {
        Deframer { run_id: run_id.into(), state: State::Outside }
    }

    /// Takes one line of the log (without its newline); true when it belongs to the frame and
    /// so is not to be shown.
    pub fn push(&mut self, line: &str) -> bool {
        let line = line.strip_suffix('\r').unwrap_or(line);
        match &mut self.state {
            State::Outside => {
                if let Some(rest) = marker(line, BEGIN, &self.run_id) {
                    self.state = match begin_fields(rest) {
                        Ok((expected, digest)) => State::Inside { expected, digest, text: String::new() },
                        Err(e) => State::Done(Err(e)),
                    };
                    true
                } else if let Some(rest) = marker(line, NONE, &self.run_id) {
                    self.state = State::Done(Ok(Framed::None(rest.trim().to_string())));
                    true
                } else {
                    false
                }
            }
            State::Inside { expected, digest, text } => {
                if marker(line, END, &self.run_id).is_some() {
                    let result = decode(text, *expected, digest);
                    self.state = State::Done(result);
                } else {
                    text.push_str(line.trim_end());
                }
                true
            }
            State::Done(_) => false,
        }
    }

    /// What the log held, once it ended.
    pub fn finish(self) -> Result<Framed, FrameError> {
        match self.state {
            State::Outside => Ok(Framed::Absent),
            State::Inside { expected, text, .. } => Err(FrameError::Truncated { expected, got: text.len() / 4 * 3 }),
            State::Done(result) => result,
        }
    }
}

/// The rest of `line` after `<tag> run=<id>`, when it is that marker.
fn marker<'a>(line: &'a str, tag: &str, run_id: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(tag)?.strip_prefix(" run=")?.strip_prefix(run_id)?;
    (rest.is_empty() || rest.starts_with(' ')).then_some(rest)
}

fn begin_fields(rest: &str) -> Result<(usize, String), FrameError> {
    let mut bytes = None;
    let mut digest = None;
    for field in rest.split_whitespace() {
        if let Some(n) = field.strip_prefix("bytes=") {
            bytes = n.parse::<usize>().ok();
        } else if let Some(d) = field.strip_prefix("sha256=") {
            digest = Some(d.to_string());
        }
    }
    match (bytes, digest) {
        (Some(bytes), Some(digest)) => Ok((bytes, digest)),
        _ => Err(FrameError::Malformed(format!("begin line without bytes= and sha256=: {rest:?}"))),
    }
}

fn decode(text: &str, expected: usize, digest: &str) -> Result<Framed, FrameError> {
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| FrameError::Malformed(format!("not base64: {e}")))?;
    if bytes.len() != expected || hex(&Sha256::digest(&bytes)) != digest {
        return Err(FrameError::Mismatch);
    }
    Ok(Framed::Document(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Feeds `log` line by line; returns the lines shown and what was framed.
    fn read(run_id: &str, log: &str) -> (Vec<String>, Result<Framed, FrameError>) {
        let mut deframer = Deframer::new(run_id);
        let shown = log.lines().filter(|l| !deframer.push(l)).map(str::to_string).collect();
        (shown, deframer.finish())
    }

    #[test]
    fn any_bytes_come_back_exactly_and_the_frame_is_not_shown() {
        for len in [0usize, 1, 2, 3, 56, 57, 58, 1000, 70_000] {
            let bytes: Vec<u8> = (0..len).map(|i| (i * 7 + len) as u8).collect();
            let log = format!("summary line\n{}after\n", encode("ab12", &bytes));
            assert!(log.lines().all(|l| l.len() <= 120), "short lines");
            let (shown, framed) = read("ab12", &log);
            assert_eq!(shown, ["summary line", "after"]);
            assert_eq!(framed, Ok(Framed::Document(bytes)), "length {len}");
        }
    }

    #[test]
    fn another_runs_markers_are_ordinary_lines() {
        let log = encode("other", b"{}");
        let (shown, framed) = read("mine", &log);
        assert_eq!(shown.len(), log.lines().count());
        assert_eq!(framed, Ok(Framed::Absent));
        // A run id that is a prefix of another's is not that one.
        let (_, framed) = read("ab", &encode("abc", b"{}"));
        assert_eq!(framed, Ok(Framed::Absent));
    }

    #[test]
    fn truncated_corrupt_and_missing_documents_are_told_apart() {
        let whole = encode("r1", &[7u8; 300]);
        let cut: String = whole.lines().take(3).map(|l| format!("{l}\n")).collect();
        assert!(matches!(read("r1", &cut).1, Err(FrameError::Truncated { expected: 300, .. })));

        let mut lines: Vec<String> = whole.lines().map(str::to_string).collect();
        lines[1] = lines[1].replacen('H', "I", 1).replacen('B', "C", 1);
        assert_eq!(read("r1", &lines.join("\n")).1, Err(FrameError::Mismatch));

        lines[1] = "not base64 at all!".into();
        assert!(matches!(read("r1", &lines.join("\n")).1, Err(FrameError::Malformed(_))));

        let (shown, framed) = read("r1", &format!("x\n{}", encode_none("r1", "pummel run wrote\nno file")));
        assert_eq!(shown, ["x"]);
        assert_eq!(framed, Ok(Framed::None("pummel run wrote no file".into())));
    }

    #[test]
    fn carriage_returns_from_the_log_are_ignored() {
        let log = encode("r", b"{\"a\":1}\n").replace('\n', "\r\n");
        assert_eq!(read("r", &log).1, Ok(Framed::Document(b"{\"a\":1}\n".to_vec())));
    }
}
