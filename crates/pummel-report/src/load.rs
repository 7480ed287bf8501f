//! Reading a results document, with the checks a report needs before trusting it.
//!
//! [`ResultsDocument::read`] parses straight into the current shape, so a file from another
//! version fails with "missing field ...". Here the version is checked first, so the message
//! names the real problem; every failure is a [`ReportError`], never a panic.

use std::path::Path;

use pummel_results::document::{OLDEST_READABLE_VERSION, ResultsDocument, SCHEMA_VERSION};

use crate::error::ReportError;

/// Reads and checks the results document at `path`.
pub fn load(path: &Path) -> Result<ResultsDocument, ReportError> {
    let bytes = std::fs::read(path).map_err(|error| ReportError::Read { path: path.to_path_buf(), error })?;
    from_slice(&bytes, path)
}

/// Parses a results document held in memory; `path` is only used in messages.
pub fn from_slice(bytes: &[u8], path: &Path) -> Result<ResultsDocument, ReportError> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|error| ReportError::NotJson { path: path.to_path_buf(), error })?;
    let Some(object) = value.as_object() else {
        return Err(ReportError::NotResults { path: path.to_path_buf(), reason: "it is not a JSON object".into() });
    };
    let Some(version) = object.get("schema_version") else {
        return Err(ReportError::NotResults { path: path.to_path_buf(), reason: "it has no schema_version".into() });
    };
    let readable = u64::from(OLDEST_READABLE_VERSION)..=u64::from(SCHEMA_VERSION);
    if !version.as_u64().is_some_and(|v| readable.contains(&v)) {
        return Err(ReportError::Version {
            path: path.to_path_buf(),
            found: version.clone(),
            expected: SCHEMA_VERSION,
        });
    }
    serde_json::from_value(value).map_err(|error| ReportError::Shape {
        path: path.to_path_buf(),
        version: SCHEMA_VERSION,
        error,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        from_slice(text.as_bytes(), Path::new("r.json")).map(|_| ()).unwrap_err().to_string()
    }

    #[test]
    fn refuses_what_is_not_a_results_file() {
        assert!(err("hello").contains("not JSON"), "{}", err("hello"));
        assert!(err("[1]").contains("not a JSON object"));
        assert!(err("{}").contains("no schema_version"));
        assert!(err(r#"{"schema_version": 99}"#).contains("schema_version 99"));
        assert!(err(r#"{"schema_version": 2}"#).contains("missing field"));
    }

    #[test]
    fn missing_file_names_the_path() {
        let e = load(Path::new("/nonexistent/r.json")).map(|_| ()).unwrap_err().to_string();
        assert!(e.contains("/nonexistent/r.json"), "{e}");
    }

    #[test]
    fn reads_the_fixture() {
        let doc = crate::fixture::open_run();
        let text = serde_json::to_vec(&doc).unwrap();
        let back = from_slice(&text, Path::new("r.json")).unwrap();
        assert_eq!(back.timeline.len(), doc.timeline.len());
        assert_eq!(back.summary.stages.len(), doc.summary.stages.len());
    }
}
