//! Reads the TOML text into the raw form, collecting every syntax and shape error.
//!
//! serde stops at the first error, which would make users fix a file one mistake at a time.
//! So the text is first parsed into toml's span-keeping tree (every key and value knows its
//! bytes), which reports all syntax errors at once. The tree is then deserialized into
//! [`RawPlan`]; when that fails, the error's span names the offending key or value, which is
//! recorded and removed from the tree, and deserialization is tried again, until it succeeds.
//! Each unknown key and each value of the wrong type thus gets its own diagnostic, and the rest
//! of the file still reaches validation.

use std::collections::HashMap;
use std::ops::Range;

use serde::Deserialize;
use toml::Spanned;
use toml::de::{DeArray, DeTable, DeValue, ValueDeserializer};

use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::RawPlan;

/// Most shape errors collected from one file before giving up (each costs one more pass).
const MAX_SHAPE_ERRORS: usize = 100;

/// The raw form and what validation needs to point at keys.
pub(crate) struct Parsed {
    /// The file as serde structs (minus any keys that were reported and removed).
    pub raw: RawPlan,
    /// Where each value's key is, so errors about a key point at its name.
    pub keys: KeyIndex,
    /// True when some key or value was removed because its shape was wrong.
    pub had_shape_errors: bool,
}

/// Maps the span of each value in the file to the span of its key.
#[derive(Default)]
pub(crate) struct KeyIndex {
    by_value: HashMap<(usize, usize), Range<usize>>,
}

impl KeyIndex {
    fn build(value: &DeValue<'_>, index: &mut KeyIndex) {
        match value {
            DeValue::Table(table) => {
                for (key, value) in table.iter() {
                    let span = value.span();
                    index.by_value.insert((span.start, span.end), key.span());
                    Self::build(value.get_ref(), index);
                }
            }
            DeValue::Array(array) => array.iter().for_each(|item| Self::build(item.get_ref(), index)),
            _ => {}
        }
    }

    /// The span of the key whose value is at `value`, or `value` itself (array items, the root).
    pub fn key_of(&self, value: &Range<usize>) -> Range<usize> {
        self.by_value.get(&(value.start, value.end)).cloned().unwrap_or_else(|| value.clone())
    }
}

/// Parses `source`; `None` when it is not TOML or its shape could not be recovered.
pub(crate) fn parse(source: &str, diagnostics: &mut Vec<Diagnostic>) -> Option<Parsed> {
    let (root, errors) = DeTable::parse_recoverable(source);
    if !errors.is_empty() {
        for error in errors {
            let span = error.span().unwrap_or(0..0);
            diagnostics.push(Diagnostic::new(DiagnosticKind::Syntax, span, error.message().to_string()));
        }
        return None;
    }
    let root_span = root.span();
    let mut tree = DeValue::Table(root.into_inner());
    let mut keys = KeyIndex::default();
    KeyIndex::build(&tree, &mut keys);
    let mut had_shape_errors = false;
    for _ in 0..MAX_SHAPE_ERRORS {
        let attempt = Spanned::new(root_span.clone(), tree.clone());
        match RawPlan::deserialize(ValueDeserializer::from(attempt)) {
            Ok(raw) => return Some(Parsed { raw, keys, had_shape_errors }),
            Err(error) => {
                had_shape_errors = true;
                let Some(span) = error.span() else {
                    diagnostics.push(Diagnostic::new(DiagnosticKind::Type, 0..0, error.message().to_string()));
                    return None;
                };
                let mut path = Vec::new();
                let removed = remove_at(&mut tree, &span, &mut path);
                diagnostics.push(shape_diagnostic(error.message(), span, &path));
                if !removed {
                    return None;
                }
            }
        }
    }
    None
}

/// Removes the table entry or array item whose key or value is exactly at `span` (the deepest
/// one), leaving in `path` where it was (`scenario[0].flow[1].request`, as segments).
fn remove_at(value: &mut DeValue<'_>, span: &Range<usize>, path: &mut Vec<String>) -> bool {
    match value {
        DeValue::Table(table) => {
            let mut exact = None;
            for (key, child) in table.iter_mut() {
                path.push(key.get_ref().to_string());
                if remove_at(child.get_mut(), span, path) {
                    return true;
                }
                if key.span() == *span || child.span() == *span {
                    exact = Some(key.clone());
                    break;
                }
                path.pop();
            }
            match exact {
                Some(key) => table.remove(&key).is_some(),
                None => false,
            }
        }
        DeValue::Array(array) => {
            let mut exact = None;
            for (index, item) in array.iter_mut().enumerate() {
                path.push(format!("[{index}]"));
                if remove_at(item.get_mut(), span, path) {
                    return true;
                }
                if item.span() == *span {
                    exact = Some(index);
                    break;
                }
                path.pop();
            }
            let Some(skip) = exact else { return false };
            let mut kept = DeArray::new();
            for (index, item) in array.iter().enumerate() {
                if index != skip {
                    kept.push(item.clone());
                }
            }
            *array = kept;
            true
        }
        _ => false,
    }
}

/// `scenario[0].flow[1]` from its segments.
pub(crate) fn dotted(path: &[String]) -> String {
    let mut out = String::new();
    for segment in path {
        if !segment.starts_with('[') && !out.is_empty() {
            out.push('.');
        }
        out.push_str(segment);
    }
    out
}

/// Turns serde's message into one that names the key and the expected form.
fn shape_diagnostic(message: &str, span: Range<usize>, path: &[String]) -> Diagnostic {
    let here = dotted(path);
    if let Some(rest) = message.strip_prefix("unknown field ") {
        let (key, expected) = rest.split_once(", ").unwrap_or((rest, ""));
        let table = match dotted(&path[..path.len().saturating_sub(1)]) {
            t if t.is_empty() => "at the top level".to_string(),
            t => format!("in `{t}`"),
        };
        let diagnostic = Diagnostic::new(DiagnosticKind::UnknownKey, span, format!("unknown key {key} {table}"));
        return match expected.strip_prefix("expected one of ") {
            Some(list) => diagnostic.with_help(format!("known keys here: {list}")),
            None if expected.starts_with("there are no fields") => diagnostic.with_help("this table takes no keys"),
            None => diagnostic,
        };
    }
    if let Some(rest) = message.strip_prefix("invalid type: ") {
        let (found, expected) = rest.split_once(", expected ").unwrap_or((rest, ""));
        let expected = friendly(expected);
        let mut diagnostic =
            Diagnostic::new(DiagnosticKind::Type, span, format!("wrong type for `{here}`: found {}", friendly(found)));
        if !expected.is_empty() {
            diagnostic = diagnostic.with_help(format!("expected {expected}"));
        }
        if here == "scenario" && expected == "an array" {
            diagnostic = diagnostic.with_help("write each scenario as [[scenario]] (an array of tables)");
        }
        return diagnostic;
    }
    if let Some(rest) = message.strip_prefix("invalid value: ") {
        return Diagnostic::new(DiagnosticKind::Invalid, span, format!("`{here}`: {}", friendly(rest)));
    }
    if message.starts_with("missing field") {
        return Diagnostic::new(DiagnosticKind::Missing, span, message.replace("field", "key"));
    }
    let prefix = if here.is_empty() { String::new() } else { format!("`{here}`: ") };
    Diagnostic::new(DiagnosticKind::Type, span, format!("{prefix}{message}"))
}

/// serde's type names in the words of a TOML file.
fn friendly(text: &str) -> String {
    let mut out = text.to_string();
    for (from, to) in [
        ("map", "a table"),
        ("sequence", "an array"),
        ("i64", "an integer"),
        ("u64", "a non-negative integer"),
        ("f64", "a number"),
        ("a boolean", "true or false"),
    ] {
        if out == from || out == format!("a {from}") {
            return to.to_string();
        }
        out = out.replace(&format!("expected {from}"), &format!("expected {to}"));
    }
    if let Some(name) = out.strip_prefix("struct Raw") {
        return format!("a table ({})", name.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dotted_paths_read_like_toml() {
        let path: Vec<String> = ["scenario", "[0]", "flow", "[1]", "request"].map(String::from).into();
        assert_eq!(dotted(&path), "scenario[0].flow[1].request");
    }

    #[test]
    fn serde_types_become_toml_words() {
        assert_eq!(friendly("i64"), "an integer");
        assert_eq!(friendly("a sequence"), "an array");
        assert_eq!(friendly("struct RawTarget"), "a table (target)");
        assert_eq!(friendly("string \"x\""), "string \"x\"");
    }
}
