//! Checks on responses: `status 201`, `$.id exists`, `body contains "ok"`, `latency < 200ms`.
//! A check either only counts (passes / fails tallies) or also fails the request.

use std::time::Duration;

use serde_json::Value;

use super::jsonpath::JsonPath;
use super::{JsonBody, ResponseView, json_to_text, lossy};
use crate::plan::StatusSet;

/// What a check asserts about a response.
#[derive(Debug, Clone)]
pub enum Condition {
    /// The status is in the set.
    Status(StatusSet),
    /// The header is present and its value is exactly `value`.
    HeaderEquals {
        /// Header name (case-insensitive).
        name: String,
        /// Expected value.
        value: String,
    },
    /// The header is present and its value contains `text`.
    HeaderContains {
        /// Header name (case-insensitive).
        name: String,
        /// Text the value must contain.
        text: String,
    },
    /// The header is present and its value matches the regex.
    HeaderRegex {
        /// Header name (case-insensitive).
        name: String,
        /// Pattern the value must match (anywhere, unless anchored).
        regex: regex::Regex,
    },
    /// The header is present (`exists: true`) or absent (`exists: false`).
    HeaderExists {
        /// Header name (case-insensitive).
        name: String,
        /// Whether it must be there.
        exists: bool,
    },
    /// The body is JSON and the path's first value equals `value` (leniently: see
    /// [`json_equals`]).
    JsonEquals {
        /// Where the value is.
        path: JsonPath,
        /// What it must equal.
        value: Value,
    },
    /// The path selects something (`exists: true`) or nothing (`exists: false`; a body that
    /// is not JSON selects nothing).
    JsonExists {
        /// The path.
        path: JsonPath,
        /// Whether it must select something.
        exists: bool,
    },
    /// The body contains the text (as bytes).
    BodyContains(String),
    /// The body (as text, invalid UTF-8 replaced) matches the regex.
    BodyRegex(regex::Regex),
    /// The response took less than this long.
    LatencyBelow(Duration),
}

/// A named check.
#[derive(Debug, Clone)]
pub struct Check {
    /// Name in reports ([`Condition::describe`] when the plan gives none).
    pub name: String,
    /// True when a failing check also makes the request count as failed.
    pub fail_request: bool,
    /// What is checked.
    pub condition: Condition,
}

impl Check {
    /// True when `response` satisfies the condition.
    pub fn passes(&self, response: &ResponseView, json: &JsonBody) -> bool {
        self.condition.holds(response, json)
    }
}

impl Condition {
    /// True when `response` satisfies the condition.
    pub fn holds(&self, response: &ResponseView, json: &JsonBody) -> bool {
        match self {
            Condition::Status(set) => set.contains(response.status),
            Condition::HeaderEquals { name, value } => response.header(name).is_some_and(|v| v == value.as_bytes()),
            Condition::HeaderContains { name, text } => {
                response.header(name).is_some_and(|v| contains(v, text.as_bytes()))
            }
            Condition::HeaderRegex { name, regex } => response.header(name).is_some_and(|v| regex.is_match(&lossy(v))),
            Condition::HeaderExists { name, exists } => response.header(name).is_some() == *exists,
            Condition::JsonEquals { path, value } => {
                json.value().and_then(|v| path.first(v)).is_some_and(|found| json_equals(found, value))
            }
            Condition::JsonExists { path, exists } => json.value().and_then(|v| path.first(v)).is_some() == *exists,
            Condition::BodyContains(text) => contains(response.body, text.as_bytes()),
            Condition::BodyRegex(regex) => regex.is_match(&lossy(response.body)),
            Condition::LatencyBelow(limit) => response.elapsed < *limit,
        }
    }

    /// True when the condition reads the response body.
    pub fn needs_body(&self) -> bool {
        matches!(
            self,
            Condition::JsonEquals { .. }
                | Condition::JsonExists { .. }
                | Condition::BodyContains(_)
                | Condition::BodyRegex(_)
        )
    }

    /// True when the condition reads the response headers.
    pub fn needs_headers(&self) -> bool {
        matches!(
            self,
            Condition::HeaderEquals { .. }
                | Condition::HeaderContains { .. }
                | Condition::HeaderRegex { .. }
                | Condition::HeaderExists { .. }
        )
    }

    /// A short description, the check's name when the plan gives none: `status 201`,
    /// `$.id exists`, `body contains "ok"`, `latency < 200ms`.
    pub fn describe(&self) -> String {
        match self {
            Condition::Status(set) => format!("status {set}"),
            Condition::HeaderEquals { name, value } => format!("header {name} == {value:?}"),
            Condition::HeaderContains { name, text } => format!("header {name} contains {text:?}"),
            Condition::HeaderRegex { name, regex } => format!("header {name} matches /{}/", regex.as_str()),
            Condition::HeaderExists { name, exists: true } => format!("header {name} exists"),
            Condition::HeaderExists { name, exists: false } => format!("header {name} absent"),
            Condition::JsonEquals { path, value } => format!("{} == {value}", path.text()),
            Condition::JsonExists { path, exists: true } => format!("{} exists", path.text()),
            Condition::JsonExists { path, exists: false } => format!("{} absent", path.text()),
            Condition::BodyContains(text) => format!("body contains {text:?}"),
            Condition::BodyRegex(regex) => format!("body matches /{}/", regex.as_str()),
            Condition::LatencyBelow(limit) => format!("latency < {}", humantime::format_duration(*limit)),
        }
    }
}

/// True when `haystack` contains `needle` (an empty needle is everywhere).
fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    memchr::memmem::find(haystack, needle).is_some()
}

/// Lenient JSON equality for checks: numbers compare by value (`1 == 1.0`), a string equals a
/// number or boolean it spells (`"5" == 5`, `"true" == true`), arrays and objects compare
/// element by element with the same rules; everything else must be equal.
pub fn json_equals(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Number(a), Value::Number(b)) => numbers_equal(a, b),
        (Value::String(s), Value::Number(n)) | (Value::Number(n), Value::String(s)) => {
            s.trim().parse::<serde_json::Number>().is_ok_and(|parsed| numbers_equal(&parsed, n))
        }
        (Value::String(s), other @ (Value::Bool(_) | Value::Null))
        | (other @ (Value::Bool(_) | Value::Null), Value::String(s)) => *s == json_to_text(other),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b).all(|(x, y)| json_equals(x, y)),
        (Value::Object(a), Value::Object(b)) => {
            a.len() == b.len() && a.iter().all(|(k, x)| b.get(k).is_some_and(|y| json_equals(x, y)))
        }
        (a, b) => a == b,
    }
}

/// Numeric equality: exact for integers, by value across integer and float forms.
fn numbers_equal(a: &serde_json::Number, b: &serde_json::Number) -> bool {
    if let (Some(x), Some(y)) = (a.as_i64(), b.as_i64()) {
        return x == y;
    }
    if let (Some(x), Some(y)) = (a.as_u64(), b.as_u64()) {
        return x == y;
    }
    match (a.as_f64(), b.as_f64()) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const HEADERS: &[(&[u8], &[u8])] =
        &[(b"Content-Type", b"application/json; charset=utf-8"), (b"X-Request-Id", b"req-77")];

    fn view(status: u16, body: &[u8], elapsed_ms: u64) -> ResponseView<'_> {
        ResponseView { status, headers: HEADERS, body, elapsed: Duration::from_millis(elapsed_ms) }
    }

    fn holds(condition: Condition, response: &ResponseView) -> bool {
        let check = Check { name: condition.describe(), fail_request: true, condition };
        check.passes(response, &JsonBody::new(response.body))
    }

    fn path(text: &str) -> JsonPath {
        JsonPath::compile(text).unwrap()
    }

    #[test]
    fn status() {
        let set: StatusSet = "200-299,404".parse().unwrap();
        assert!(holds(Condition::Status(set.clone()), &view(201, b"", 1)));
        assert!(holds(Condition::Status(set.clone()), &view(404, b"", 1)));
        assert!(!holds(Condition::Status(set), &view(500, b"", 1)));
    }

    #[test]
    fn header_conditions() {
        let r = view(200, b"", 1);
        let name = |n: &str| n.to_owned();
        assert!(holds(Condition::HeaderEquals { name: name("x-request-id"), value: "req-77".into() }, &r));
        assert!(!holds(Condition::HeaderEquals { name: name("x-request-id"), value: "req-7".into() }, &r));
        assert!(!holds(Condition::HeaderEquals { name: name("x-missing"), value: String::new() }, &r));
        assert!(holds(Condition::HeaderContains { name: name("content-type"), text: "json".into() }, &r));
        assert!(!holds(Condition::HeaderContains { name: name("content-type"), text: "xml".into() }, &r));
        assert!(!holds(Condition::HeaderContains { name: name("x-missing"), text: String::new() }, &r));
        let re = regex::Regex::new(r"^req-\d+$").unwrap();
        assert!(holds(Condition::HeaderRegex { name: name("X-REQUEST-ID"), regex: re.clone() }, &r));
        assert!(!holds(Condition::HeaderRegex { name: name("content-type"), regex: re.clone() }, &r));
        assert!(!holds(Condition::HeaderRegex { name: name("x-missing"), regex: re }, &r));
        assert!(holds(Condition::HeaderExists { name: name("x-request-id"), exists: true }, &r));
        assert!(!holds(Condition::HeaderExists { name: name("x-request-id"), exists: false }, &r));
        assert!(holds(Condition::HeaderExists { name: name("x-missing"), exists: false }, &r));
        assert!(!holds(Condition::HeaderExists { name: name("x-missing"), exists: true }, &r));
    }

    #[test]
    fn json_conditions() {
        let body = br#"{"id": 1, "price": 2.5, "name": "ann", "tags": ["a", "b"], "ok": true, "none": null}"#;
        let r = view(200, body, 1);
        let eq = |p: &str, value: Value| holds(Condition::JsonEquals { path: path(p), value }, &r);
        assert!(eq("$.id", json!(1)));
        assert!(eq("$.id", json!(1.0)), "1 == 1.0");
        assert!(eq("$.id", json!("1")), "a string spelling the number");
        assert!(eq("$.price", json!(2.5)));
        assert!(eq("$.price", json!("2.5")));
        assert!(!eq("$.price", json!(2)));
        assert!(eq("$.name", json!("ann")));
        assert!(!eq("$.name", json!("bob")));
        assert!(eq("$.tags", json!(["a", "b"])));
        assert!(!eq("$.tags", json!(["a"])));
        assert!(eq("$.ok", json!(true)));
        assert!(eq("$.ok", json!("true")));
        assert!(eq("$.none", json!(null)));
        assert!(!eq("$.missing", json!(null)), "a missing value equals nothing");
        let exists = |p: &str, exists: bool| holds(Condition::JsonExists { path: path(p), exists }, &r);
        assert!(exists("$.id", true));
        assert!(exists("$.none", true), "null is a value");
        assert!(!exists("$.id", false));
        assert!(exists("$.missing", false));
        assert!(!exists("$.missing", true));
    }

    #[test]
    fn json_conditions_on_invalid_bodies() {
        let r = view(200, b"<html>oops</html>", 1);
        assert!(!holds(Condition::JsonEquals { path: path("$.id"), value: json!(1) }, &r));
        assert!(!holds(Condition::JsonExists { path: path("$.id"), exists: true }, &r));
        assert!(holds(Condition::JsonExists { path: path("$.id"), exists: false }, &r));
    }

    #[test]
    fn body_and_latency() {
        let r = view(200, b"status: ok, id=17", 150);
        assert!(holds(Condition::BodyContains("ok".into()), &r));
        assert!(!holds(Condition::BodyContains("fail".into()), &r));
        assert!(holds(Condition::BodyRegex(regex::Regex::new(r"id=\d+").unwrap()), &r));
        assert!(!holds(Condition::BodyRegex(regex::Regex::new(r"id=[a-z]").unwrap()), &r));
        assert!(holds(Condition::LatencyBelow(Duration::from_millis(200)), &r));
        assert!(!holds(Condition::LatencyBelow(Duration::from_millis(150)), &r));
        assert!(!holds(Condition::BodyContains("ok".into()), &view(200, b"", 1)));
    }

    #[test]
    fn needs_and_descriptions() {
        let cases: Vec<(Condition, &str, bool, bool)> = vec![
            (Condition::Status("201".parse().unwrap()), "status 201", false, false),
            (Condition::Status("200-299,304".parse().unwrap()), "status 200-299,304", false, false),
            (Condition::HeaderEquals { name: "a".into(), value: "b".into() }, "header a == \"b\"", false, true),
            (Condition::HeaderContains { name: "a".into(), text: "b".into() }, "header a contains \"b\"", false, true),
            (
                Condition::HeaderRegex { name: "a".into(), regex: regex::Regex::new("^b").unwrap() },
                "header a matches /^b/",
                false,
                true,
            ),
            (Condition::HeaderExists { name: "a".into(), exists: true }, "header a exists", false, true),
            (Condition::HeaderExists { name: "a".into(), exists: false }, "header a absent", false, true),
            (Condition::JsonEquals { path: path("$.id"), value: json!(5) }, "$.id == 5", true, false),
            (Condition::JsonEquals { path: path("$.n"), value: json!("x") }, "$.n == \"x\"", true, false),
            (Condition::JsonExists { path: path("$.id"), exists: true }, "$.id exists", true, false),
            (Condition::JsonExists { path: path("$.id"), exists: false }, "$.id absent", true, false),
            (Condition::BodyContains("ok".into()), "body contains \"ok\"", true, false),
            (Condition::BodyRegex(regex::Regex::new("o+k").unwrap()), "body matches /o+k/", true, false),
            (Condition::LatencyBelow(Duration::from_millis(200)), "latency < 200ms", false, false),
            (Condition::LatencyBelow(Duration::from_secs(2)), "latency < 2s", false, false),
        ];
        for (condition, description, body, headers) in cases {
            assert_eq!(condition.describe(), description);
            assert_eq!(condition.needs_body(), body, "{description}");
            assert_eq!(condition.needs_headers(), headers, "{description}");
        }
    }

    #[test]
    fn lenient_equality() {
        assert!(json_equals(&json!(1), &json!(1.0)));
        assert!(json_equals(&json!(u64::MAX), &json!(u64::MAX)));
        assert!(!json_equals(&json!(u64::MAX), &json!(u64::MAX - 1)));
        assert!(json_equals(&json!(-3), &json!("-3")));
        assert!(!json_equals(&json!(3), &json!("three")));
        assert!(json_equals(&json!({"a": [1, "2"]}), &json!({"a": [1.0, 2]})));
        assert!(!json_equals(&json!({"a": 1}), &json!({"a": 1, "b": 2})));
        assert!(json_equals(&json!(null), &json!("null")));
        assert!(!json_equals(&json!(false), &json!(0)));
    }
}
