//! Helpers for plan-file tests: the plans shipped in `examples/`, temporary plans written for one
//! test, and the requests a recording sink received.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::Value;

/// The repository's `examples/` folder.
pub fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("examples")
}

/// Every `examples/*.toml`, sorted; panics when there is none.
pub fn example_plans() -> Vec<PathBuf> {
    let dir = examples_dir();
    let mut plans: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot list {}: {e}", dir.display()))
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|path| path.extension().is_some_and(|ext| ext == "toml"))
        .collect();
    plans.sort();
    assert!(!plans.is_empty(), "no plans in {}", dir.display());
    plans
}

/// `examples/NAME` as a `String`, for command lines.
pub fn example(name: &str) -> String {
    let path = examples_dir().join(name);
    assert!(path.is_file(), "{} is missing", path.display());
    path.to_str().expect("the repository path is UTF-8").to_string()
}

/// Writes `text` to `dir/name` and returns its path as a `String`.
pub fn write_plan(dir: &tempfile::TempDir, name: &str, text: &str) -> String {
    let (path, shown) = super::path_in(dir, name);
    std::fs::write(&path, text).unwrap_or_else(|e| panic!("cannot write {}: {e}", path.display()));
    shown
}

/// Waits until the sink's record file (JSON lines) holds at least `n` requests (it is flushed
/// every second); returns them. Panics with what it holds after `limit`.
pub fn recorded(path: &Path, n: usize, limit: Duration) -> Vec<Value> {
    let deadline = Instant::now() + limit;
    loop {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        let complete = text.rfind('\n').map_or("", |end| &text[..end]);
        let lines: Vec<Value> = complete.lines().filter_map(|line| serde_json::from_str(line).ok()).collect();
        if lines.len() >= n {
            return lines;
        }
        assert!(Instant::now() < deadline, "expected {n} recorded requests in {}, found:\n{text}", path.display());
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of header `name` (any case) in a recorded request.
pub fn header<'a>(record: &'a Value, name: &str) -> Option<&'a str> {
    record["headers"]
        .as_array()?
        .iter()
        .find_map(|pair| pair[0].as_str().filter(|n| n.eq_ignore_ascii_case(name)).and_then(|_| pair[1].as_str()))
}
