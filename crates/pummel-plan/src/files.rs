//! The files a plan reads beside itself: feeder data (`[feeders.NAME] file`), request bodies
//! (`body_file`) and multipart uploads (`multipart = [ { file = ... } ]`).
//!
//! Whoever runs a plan somewhere else (the agents of a distributed run, a pod in Kubernetes)
//! must ship these with it, at the same place relative to the plan file.

/// The keys whose string values name a file: `file` (feeders and multipart parts) and
/// `body_file`. No other key of the format holds a path.
const FILE_KEYS: [&str; 2] = ["file", "body_file"];

/// The paths of the files plan `text` reads, as written (relative to the plan file, or
/// absolute), each once, in the order they appear. Text that is not TOML names no file; load
/// the plan first to report its errors.
pub fn referenced_files(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Ok(table) = toml::from_str::<toml::Table>(text) {
        walk_table(&table, &mut found);
    }
    found
}

fn walk_table(table: &toml::Table, found: &mut Vec<String>) {
    for (key, value) in table {
        match value {
            toml::Value::String(path) if FILE_KEYS.contains(&key.as_str()) => {
                if !found.contains(path) {
                    found.push(path.clone());
                }
            }
            other => walk_value(other, found),
        }
    }
}

fn walk_value(value: &toml::Value, found: &mut Vec<String>) {
    match value {
        toml::Value::Table(table) => walk_table(table, found),
        toml::Value::Array(items) => items.iter().for_each(|item| walk_value(item, found)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::referenced_files;

    #[test]
    fn feeders_bodies_and_uploads_nested_in_flows_are_found_once_each() {
        let text = r#"
[target]
base_url = "http://127.0.0.1:8090"
[feeders.accounts]
file = "data/accounts.csv"
[feeders.again]
file = "data/accounts.csv"
[[scenario]]
rate = 1
flow = [
  { request = { method = "POST", path = "/a", body_file = "bodies/a.json" } },
  { repeat = 2, flow = [ { request = { method = "POST", path = "/u",
      multipart = [ { name = "f", file = "/abs/photo.jpg" }, { name = "v", value = "x" } ] } } ] },
]
"#;
        assert_eq!(referenced_files(text), ["data/accounts.csv", "bodies/a.json", "/abs/photo.jpg"]);
    }

    #[test]
    fn a_plan_without_files_or_not_toml_names_none() {
        assert!(referenced_files("[target]\nbase_url = \"http://x\"\n").is_empty());
        assert!(referenced_files("not = [toml").is_empty());
    }
}
