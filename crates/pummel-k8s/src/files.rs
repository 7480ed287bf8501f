//! The plan and its files in a ConfigMap: a valid key for each file, the path it is mounted
//! at (relative to the plan's folder, `/plan` in the pods), and text or binary data.
//!
//! ConfigMap keys may hold only `[-._a-zA-Z0-9]` (at most 253 of them, not `.` or `..`), so a
//! file's key is its path with every other character (`/` included) replaced, made unique;
//! the volume's `items` then map each key to the path the plan names, so `data/users.csv`
//! in the plan finds `/plan/data/users.csv`.

use std::collections::BTreeSet;

use crate::error::RenderError;
use crate::request::PlanFiles;

/// The most a ConfigMap may hold (its data and binary data together).
pub(crate) const CONFIGMAP_LIMIT: usize = 1024 * 1024;
/// The longest ConfigMap key.
const MAX_KEY: usize = 253;

/// One file of the ConfigMap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Entry {
    /// Its ConfigMap key.
    pub key: String,
    /// Where it is mounted, relative to the plan's folder.
    pub path: String,
    /// Its bytes.
    pub bytes: Vec<u8>,
}

impl Entry {
    /// The bytes as text, when they are UTF-8 (then they go in `data`, else in `binaryData`).
    pub(crate) fn text(&self) -> Option<&str> {
        std::str::from_utf8(&self.bytes).ok()
    }
}

/// The plan (first) and each file it reads, with unique keys and normalized paths; a file
/// named twice (`a.csv` and `./a.csv`) is shipped once.
pub(crate) fn entries(plan: &PlanFiles) -> Result<Vec<Entry>, RenderError> {
    if std::str::from_utf8(&plan.plan).is_err() {
        return Err(RenderError::PlanNotText(plan.name.clone()));
    }
    let plan_path = normalize(&plan.name).ok_or_else(|| RenderError::OutsidePlan(plan.name.clone()))?;
    let mut keys = BTreeSet::new();
    let mut paths = BTreeSet::new();
    let mut out = Vec::new();
    for (written, bytes) in std::iter::once((&plan.name, &plan.plan)).chain(plan.files.iter().map(|(p, b)| (p, b))) {
        let path = if out.is_empty() {
            plan_path.clone()
        } else {
            normalize(written).ok_or_else(|| RenderError::OutsidePlan(written.clone()))?
        };
        if !paths.insert(path.clone()) {
            continue;
        }
        let key = unique_key(&path, &keys);
        keys.insert(key.clone());
        out.push(Entry { key, path, bytes: bytes.clone() });
    }
    let size: usize = out
        .iter()
        .map(|e| e.key.len() + if e.text().is_some() { e.bytes.len() } else { e.bytes.len().div_ceil(3) * 4 })
        .sum();
    if size > CONFIGMAP_LIMIT {
        return Err(RenderError::TooLarge(size));
    }
    Ok(out)
}

/// `path` relative to the plan's folder, `.` removed and `..` resolved, joined with `/`;
/// `None` when it is absolute, leaves the folder, or starts with `..` (as `..hidden/x`).
pub(crate) fn normalize(path: &str) -> Option<String> {
    if path.starts_with('/') || path.starts_with('\\') || path.get(1..2) == Some(":") {
        return None;
    }
    let mut parts: Vec<&str> = Vec::new();
    for part in path.split(['/', '\\']) {
        match part {
            "" | "." => {}
            ".." => {
                parts.pop()?;
            }
            other => parts.push(other),
        }
    }
    // Kubernetes refuses a volume item path that starts with `..` (its atomic-writer's own).
    if parts.first().is_none_or(|first| first.starts_with("..")) { None } else { Some(parts.join("/")) }
}

/// A ConfigMap key for `path`, not among `taken`.
fn unique_key(path: &str, taken: &BTreeSet<String>) -> String {
    let mut key: String =
        path.chars().map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_') { c } else { '_' }).collect();
    if key.starts_with("..") || key == "." {
        key.insert(0, 'f');
    }
    // Room for a `-N` suffix below.
    if key.len() > MAX_KEY - 8 {
        key = key[key.len() - (MAX_KEY - 8)..].to_string();
    }
    if !taken.contains(&key) {
        return key;
    }
    (2..).map(|n| format!("{key}-{n}")).find(|k| !taken.contains(k)).unwrap_or(key)
}

/// True for a valid ConfigMap key (what the API server checks).
#[cfg(test)]
pub(crate) fn is_configmap_key(key: &str) -> bool {
    !key.is_empty()
        && key.len() <= MAX_KEY
        && key != "."
        && !key.starts_with("..")
        && key.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan_with(files: &[(&str, &[u8])]) -> PlanFiles {
        PlanFiles {
            name: "load test.toml".into(),
            plan: b"x = 1\n".to_vec(),
            files: files.iter().map(|(p, b)| (p.to_string(), b.to_vec())).collect(),
        }
    }

    #[test]
    fn paths_are_normalized_and_escapes_refused() {
        assert_eq!(normalize("data/./users.csv").as_deref(), Some("data/users.csv"));
        assert_eq!(normalize("data/../x.csv").as_deref(), Some("x.csv"));
        assert_eq!(normalize("a\\b.csv").as_deref(), Some("a/b.csv"));
        for outside in ["/etc/passwd", "../x.csv", "a/../../x", "C:\\x", "", ".", "..hidden/x"] {
            assert_eq!(normalize(outside), None, "{outside}");
        }
    }

    #[test]
    fn keys_are_valid_unique_and_map_back_to_the_plans_paths() {
        let long = format!("{}/f.csv", "d".repeat(300));
        let files: Vec<(&str, &[u8])> = vec![
            ("data/users.csv", b"name\nann\n"),
            ("data_users.csv", b"other\n"),
            ("./data/users.csv", b"name\nann\n"),
            ("hidden/é.bin", &[0xff, 0x00]),
            (&long, b"x"),
        ];
        let entries = entries(&plan_with(&files)).unwrap();
        let paths: Vec<&str> = entries.iter().map(|e| e.path.as_str()).collect();
        assert_eq!(paths, ["load test.toml", "data/users.csv", "data_users.csv", "hidden/é.bin", long.as_str()]);
        let keys: BTreeSet<&str> = entries.iter().map(|e| e.key.as_str()).collect();
        assert_eq!(keys.len(), entries.len(), "keys must be unique: {keys:?}");
        assert!(entries.iter().all(|e| is_configmap_key(&e.key)), "{keys:?}");
        assert_eq!(entries[0].key, "load_test.toml");
        assert_eq!(entries[3].text(), None, "non-UTF-8 bytes go to binaryData");
    }

    #[test]
    fn absolute_files_and_oversized_configmaps_are_refused() {
        assert_eq!(
            entries(&plan_with(&[("/data/users.csv", b"x")])),
            Err(RenderError::OutsidePlan("/data/users.csv".into()))
        );
        let big = vec![b'a'; CONFIGMAP_LIMIT];
        assert!(matches!(entries(&plan_with(&[("big.csv", &big)])), Err(RenderError::TooLarge(_))));
        let not_text = PlanFiles { plan: vec![0xff], ..plan_with(&[]) };
        assert!(matches!(entries(&not_text), Err(RenderError::PlanNotText(_))));
    }
}
