//! `--store`: the sink as a small key-value store, so that a plan's writes can be read back
//! (`[verify]`) against pummel's own target, and `--drop-every N` to make it lose some.
//!
//! The key is the request's path (its query left out). `PUT` and `POST` store the body (at most
//! 1 MiB of it, as `--record` keeps) and answer `201 Created`; `GET` answers `200` with the
//! stored body, or `404`; `HEAD` the same without the body; `DELETE` answers `204`, or `404`;
//! anything else `405`. A write is stored when its request is read, before the configured delay:
//! a client that times out waiting for the answer has written anyway, as with a real server
//! that is slow to answer. An injected `500` (`--error-rate`) also comes after the write (the
//! server failed after storing: the client cannot tell), while a `503` beyond `--capacity`
//! comes instead of it.
//!
//! With `--drop-every N`, every N-th write (counted over all threads) is answered `201` like
//! the others and not stored: a store that loses acknowledged writes, and counts how many
//! ([`Store::dropped`]), so that a test can compare what a read-back found lost with it.
//!
//! Keys are held in memory by all threads behind one lock; a store for tests and demos. With
//! `--store-file FILE` ([`Store::with_file`]) every change is also appended to the file (one `write` per change, under
//! the same lock, before the answer) and the file is replayed when the sink starts: a sink
//! killed and started again with the same file holds what it acknowledged (the kernel keeps
//! what was written when a process is killed; only a crash of the machine loses it). A change
//! cut short by the kill is left out when the file is replayed.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::Path;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

/// The store and its counters.
#[derive(Debug, Default)]
pub(crate) struct Store {
    state: Mutex<State>,
    /// Drop every N-th write (`None`: keep them all).
    drop_every: Option<u64>,
    writes: AtomicU64,
    dropped: AtomicU64,
}

/// The keys, and the file changes are appended to.
#[derive(Debug, Default)]
struct State {
    values: HashMap<String, Vec<u8>>,
    file: Option<File>,
}

/// A change as the store file keeps it: `1` (set) or `2` (delete), the key's length (u32, big
/// endian) and bytes, and for a set the value's length and bytes.
fn change(op: u8, key: &str, value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(9 + key.len() + value.len());
    out.push(op);
    out.extend_from_slice(&(key.len() as u32).to_be_bytes());
    out.extend_from_slice(key.as_bytes());
    if op == 1 {
        out.extend_from_slice(&(value.len() as u32).to_be_bytes());
        out.extend_from_slice(value);
    }
    out
}

/// Replays the changes of `bytes` into `values`; a change cut short at the end is left out.
/// Returns where the last whole change ends.
fn replay(bytes: &[u8], values: &mut HashMap<String, Vec<u8>>) -> usize {
    let mut at = 0;
    let field = |at: &mut usize| -> Option<Vec<u8>> {
        let len = u32::from_be_bytes(bytes.get(*at..*at + 4)?.try_into().ok()?) as usize;
        let field = bytes.get(*at + 4..*at + 4 + len)?.to_vec();
        *at += 4 + len;
        Some(field)
    };
    while let Some(&op) = bytes.get(at) {
        let mut next = at + 1;
        let Some(key) = field(&mut next).map(|k| String::from_utf8_lossy(&k).into_owned()) else { return at };
        match op {
            1 => {
                let Some(value) = field(&mut next) else { return at };
                values.insert(key, value);
            }
            2 => {
                values.remove(&key);
            }
            _ => return at,
        }
        at = next;
    }
    at
}

/// What the store answers to one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct StoreAnswer {
    /// The status.
    pub(crate) status: u16,
    /// The body (empty for `204` and answers to `HEAD`).
    pub(crate) body: Vec<u8>,
    /// Its `Content-Type`.
    pub(crate) content_type: &'static str,
}

impl Store {
    /// A store that drops every `drop_every`-th write (`None`: none).
    pub(crate) fn new(drop_every: Option<u64>) -> Store {
        Store { drop_every: drop_every.filter(|n| *n > 0), ..Store::default() }
    }

    /// A store kept in the file at `path` too: what the file holds is read back now, and every
    /// change appended to it.
    pub(crate) fn with_file(drop_every: Option<u64>, path: &Path) -> io::Result<Store> {
        let mut file = OpenOptions::new().read(true).append(true).create(true).open(path)?;
        let mut bytes = Vec::new();
        file.read_to_end(&mut bytes)?;
        let store = Store::new(drop_every);
        {
            let mut state = store.lock();
            let whole = replay(&bytes, &mut state.values);
            // What follows the last whole change is a change cut short: the next one goes there.
            file.set_len(whole as u64)?;
            state.file = Some(file);
        }
        Ok(store)
    }

    /// Applies a request (`method`, `target`, its `body`) and returns the answer.
    pub(crate) fn apply(&self, method: &str, target: &str, body: &[u8]) -> StoreAnswer {
        let key = target.split_once('?').map_or(target, |(path, _)| path);
        let text = |status, body: &[u8]| StoreAnswer { status, body: body.to_vec(), content_type: "text/plain" };
        match method.to_ascii_uppercase().as_str() {
            "PUT" | "POST" => {
                let n = self.writes.fetch_add(1, Relaxed) + 1;
                if self.drop_every.is_some_and(|every| n % every == 0) {
                    self.dropped.fetch_add(1, Relaxed);
                } else {
                    let mut state = self.lock();
                    if !state.append(&change(1, key, body)) {
                        return text(500, b"cannot write the store file\n");
                    }
                    state.values.insert(key.to_string(), body.to_vec());
                }
                text(201, b"created\n")
            }
            method @ ("GET" | "HEAD") => match self.lock().values.get(key) {
                Some(value) => StoreAnswer {
                    status: 200,
                    body: if method == "HEAD" { Vec::new() } else { value.clone() },
                    content_type: "application/octet-stream",
                },
                None => text(404, b"not found\n"),
            },
            "DELETE" => {
                let mut state = self.lock();
                if !state.values.contains_key(key) {
                    return text(404, b"not found\n");
                }
                if !state.append(&change(2, key, b"")) {
                    return text(500, b"cannot write the store file\n");
                }
                state.values.remove(key);
                text(204, b"")
            }
            _ => text(405, b"method not allowed\n"),
        }
    }

    /// Keys held now.
    pub(crate) fn keys(&self) -> u64 {
        self.lock().values.len() as u64
    }

    /// Writes received (`PUT` and `POST`), dropped ones included.
    pub(crate) fn writes(&self) -> u64 {
        self.writes.load(Relaxed)
    }

    /// Writes answered `201` and not stored (`--drop-every`).
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Relaxed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        // A thread that panicked while holding it leaves a map that is still a map.
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

impl State {
    /// Appends a change to the file, if there is one, in one write; false when that failed.
    fn append(&mut self, change: &[u8]) -> bool {
        self.file.as_mut().is_none_or(|file| file.write_all(change).is_ok())
    }
}

/// The whole HTTP/1.1 answer for `answer`, with the connection header of `mode`.
pub(crate) fn encode(answer: &StoreAnswer, mode: crate::response::ConnMode, head_only: bool) -> Box<[u8]> {
    use crate::response::ConnMode;
    let mut out = format!("HTTP/1.1 {} {}\r\n", answer.status, crate::response::reason(answer.status));
    if answer.status != 204 {
        out.push_str(&format!("Content-Type: {}\r\nContent-Length: {}\r\n", answer.content_type, answer.body.len()));
    }
    out.push_str(match mode {
        ConnMode::Default => "",
        ConnMode::KeepAlive => "Connection: keep-alive\r\n",
        ConnMode::Close => "Connection: close\r\n",
    });
    out.push_str("\r\n");
    let mut bytes = out.into_bytes();
    if !head_only {
        bytes.extend_from_slice(&answer.body);
    }
    bytes.into_boxed_slice()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::response::ConnMode;

    #[test]
    fn writes_are_read_back_by_path_and_deleted() {
        let store = Store::new(None);
        assert_eq!(store.apply("GET", "/k/1", b"").status, 404);
        assert_eq!(store.apply("PUT", "/k/1?v=2", b"value").status, 201);
        let got = store.apply("GET", "/k/1", b"");
        assert_eq!((got.status, got.body.as_slice()), (200, &b"value"[..]));
        assert_eq!(store.apply("HEAD", "/k/1", b"").body, b"");
        assert_eq!(store.apply("POST", "/k/1", b"newer").status, 201);
        assert_eq!(store.apply("get", "/k/1", b"").body, b"newer");
        assert_eq!(store.apply("DELETE", "/k/1", b"").status, 204);
        assert_eq!(store.apply("DELETE", "/k/1", b"").status, 404);
        assert_eq!(store.apply("PATCH", "/k/1", b"").status, 405);
        assert_eq!((store.keys(), store.writes(), store.dropped()), (0, 2, 0));
    }

    #[test]
    fn every_nth_write_is_acknowledged_and_dropped() {
        let store = Store::new(Some(50));
        for n in 1..=500 {
            assert_eq!(store.apply("POST", &format!("/k/{n}"), b"x").status, 201);
        }
        assert_eq!((store.writes(), store.dropped(), store.keys()), (500, 10, 490));
        assert_eq!(store.apply("GET", "/k/50", b"").status, 404, "the 50th write was dropped");
        assert_eq!(store.apply("GET", "/k/49", b"").status, 200);
    }

    #[test]
    fn a_store_file_is_replayed_and_a_change_cut_short_left_out() {
        let path = std::env::temp_dir().join(format!("pummel-store-test-{}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        {
            let store = Store::with_file(None, &path).unwrap();
            store.apply("PUT", "/a", b"1");
            store.apply("PUT", "/b", b"2");
            store.apply("PUT", "/a", b"3");
            store.apply("DELETE", "/b", b"");
        }
        // A change cut short, as a kill in the middle of its write leaves it.
        let mut file = OpenOptions::new().append(true).open(&path).unwrap();
        file.write_all(&change(1, "/c", b"value")[..7]).unwrap();
        let store = Store::with_file(None, &path).unwrap();
        assert_eq!(store.apply("GET", "/a", b"").body, b"3");
        assert_eq!(store.apply("GET", "/b", b"").status, 404);
        assert_eq!(store.apply("GET", "/c", b"").status, 404);
        assert_eq!(store.keys(), 1);
        store.apply("PUT", "/d", b"after");
        drop(store);
        let again = Store::with_file(None, &path).unwrap();
        assert_eq!(again.apply("GET", "/d", b"").body, b"after", "written where the cut change was");
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn answers_are_framed_as_http() {
        let answer = StoreAnswer { status: 200, body: b"v".to_vec(), content_type: "application/octet-stream" };
        let text = String::from_utf8(encode(&answer, ConnMode::Close, false).to_vec()).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: application/octet-stream\r\nContent-Length: 1\r\nConnection: close\r\n\r\nv"
        );
        let none = StoreAnswer { status: 204, body: Vec::new(), content_type: "text/plain" };
        assert_eq!(&*encode(&none, ConnMode::Default, false), b"HTTP/1.1 204 No Content\r\n\r\n");
    }
}
