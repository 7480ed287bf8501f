//! JSONPath (RFC 9535) queries, compiled once: `$.id`, `$.items[0].name`, `$..token`.

use std::fmt;
use std::sync::Arc;

use super::PatternError;

/// A compiled JSONPath with its source text. Cheap to clone.
#[derive(Clone)]
pub struct JsonPath {
    inner: Arc<(String, serde_json_path::JsonPath)>,
}

impl fmt::Debug for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_tuple("JsonPath").field(&self.inner.0).finish()
    }
}

impl PartialEq for JsonPath {
    /// Two paths are equal when their texts are.
    fn eq(&self, other: &Self) -> bool {
        self.inner.0 == other.inner.0
    }
}

impl JsonPath {
    /// Compiles `text`; errors say where in it the problem is.
    pub fn compile(text: &str) -> Result<JsonPath, PatternError> {
        match serde_json_path::JsonPath::parse(text) {
            Ok(path) => Ok(JsonPath { inner: Arc::new((text.to_owned(), path)) }),
            Err(err) => Err(PatternError {
                message: format!("invalid JSONPath: {}", err.message()),
                offset: err.position().min(text.len()),
            }),
        }
    }

    /// The first value the path selects in `v`, if any.
    pub fn first<'v>(&self, v: &'v serde_json::Value) -> Option<&'v serde_json::Value> {
        self.inner.1.query(v).first()
    }

    /// The source text.
    pub fn text(&self) -> &str {
        &self.inner.0
    }
}

impl fmt::Display for JsonPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.inner.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn selects_the_first_match() {
        let doc = json!({"id": 7, "items": [{"name": "a"}, {"name": "b"}], "deep": {"token": "t"}});
        let first = |p: &str| JsonPath::compile(p).unwrap().first(&doc).cloned();
        assert_eq!(first("$.id"), Some(json!(7)));
        assert_eq!(first("$.items[1].name"), Some(json!("b")));
        assert_eq!(first("$.items[*].name"), Some(json!("a")));
        assert_eq!(first("$..token"), Some(json!("t")));
        assert_eq!(first("$.missing"), None);
        assert_eq!(first("$"), Some(doc.clone()));
    }

    #[test]
    fn keeps_its_text() {
        let p = JsonPath::compile("$.a.b").unwrap();
        assert_eq!(p.text(), "$.a.b");
        assert_eq!(p.to_string(), "$.a.b");
        assert_eq!(p.clone(), p);
    }

    #[test]
    fn errors_carry_an_offset() {
        let err = JsonPath::compile("$.items[").unwrap_err();
        assert!(err.offset <= "$.items[".len(), "{err:?}");
        assert!(err.message.contains("JSONPath"), "{err}");
        let err = JsonPath::compile("id").unwrap_err();
        assert_eq!(err.offset, 0, "{err:?}");
        assert!(JsonPath::compile("$.a[?@.b == 1]").is_ok());
    }
}
