//! `write = { ... }` and `[verify]` (issue 13, part 4): what a valid plan becomes, and each
//! mistake at its line:col.

use std::time::Duration;

use super::{short, valid};

const WRITES: &str = r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
rate = 100
duration = "10s"
flow = [ { request = { method = "POST", path = "/items/{{ user }}", body = "v{{ user }}",
                       write = { key = "{{ user }}", value = "v{{ user }}", hash = true } } } ]
"#;

#[test]
fn writes_and_the_read_back_are_read() {
    let spec = valid(&format!(
        "{WRITES}\n[verify]\nsettle = \"0s\"\nrate = \"600/m\"\nconnections = 4\nfound = 200\nmissing = \"404,410\"\n\
         value = {{ json = \"$.value\" }}\nrequest = {{ path = \"/items/{{{{ key }}}}?v={{{{ value }}}}\" }}\n\
         \n[thresholds]\nglobal = [\"lost==0\", \"unread<5\"]\n"
    ));
    let write = spec.requests().next().and_then(|r| r.write.clone()).expect("the request writes");
    assert_eq!(
        (write.key.text(), write.value.as_ref().map(|v| v.text()), write.hash, write.body),
        ("{{ user }}", Some("v{{ user }}"), true, false)
    );
    assert!(spec.has_writes() && spec.writes_values());
    let verify = spec.verify.as_ref().expect("[verify]");
    assert_eq!((verify.settle, verify.rate, verify.connections), (Duration::ZERO, 10.0, 4));
    assert!(verify.found.contains(200) && !verify.found.contains(201));
    assert!(verify.missing.contains(410) && !verify.missing.contains(200));
    assert!(verify.value.is_some());
    assert!(spec.describe().contains("verify: GET http://127.0.0.1:8090/items/{{ key }}?v={{ value }} per key written (1 request writes), 10 reads/s over at most 4 connections, at once"), "{}", spec.describe());
}

#[test]
fn the_read_back_has_defaults() {
    let spec = valid(&format!("{WRITES}\n[verify]\nrequest = {{ path = \"/items/{{{{ key }}}}\" }}\n"));
    let verify = spec.verify.as_ref().expect("[verify]");
    assert_eq!((verify.settle, verify.rate, verify.connections), (Duration::from_secs(1), 500.0, 50));
    assert!(verify.found.contains(204) && verify.missing.contains(404) && !verify.missing.contains(410));
    assert!(verify.value.is_none());
    // Without [verify], writes are logged and counted, not read back.
    assert!(valid(WRITES).verify.is_none());
}

#[test]
fn mistakes_about_writes_are_pointed_at() {
    let lines = short(
        r#"[target]
base_url = "http://127.0.0.1:8090"

[[scenario]]
rate = 100
duration = "10s"
flow = [
  { request = { method = "PUT", path = "/a", write = { value = "x" } } },
  { request = { method = "PUT", path = "/b", write = { key = "" } } },
  { request = { method = "PUT", path = "/c", write = { key = "{{ nope }}" } } },
  { request = { method = "PUT", path = "/d", write = { key = "d", value = "x", body = true } } },
  { request = { method = "PUT", path = "/e", write = { key = "e", hash = true } } },
]

[verify]
found = "200-404"
request = { path = "/{{ key }}/{{ other }}", write = { key = "k" } }

[thresholds]
"PUT /a" = ["lost==0"]
"#,
    );
    let expected = [
        "plan.toml:8:54: error: `write` has no `key`",
        "plan.toml:9:62: error: the write's key is empty",
        "plan.toml:10:66: error: undefined variable `nope` in the write's key",
        "plan.toml:11:80: error: `body` cannot be used with `value`",
        "plan.toml:12:67: error: `hash = true` needs a value to hash",
        "plan.toml:16:9: error: status 404 is both found and missing",
        "plan.toml:17:35: error: undefined variable `other` in the path",
        "plan.toml:17:46: error: the read-back's request cannot be a write",
        "plan.toml:20:13: error: lost is a figure of the whole run's writes, not of one request",
    ];
    for line in expected {
        assert!(lines.iter().any(|l| l == line), "missing {line:?} in:\n{}", lines.join("\n"));
    }
}
