//! Errors in a plan file, each at its file:line:col, rendered the way compilers do:
//!
//! ```text
//! plan.toml:7:12: error: invalid duration "3x": unknown unit (use us, ms, s, m or h)
//!   |
//! 7 | duration = "3x"
//!   |            ^^^^
//!   = expected a duration like "30s"
//! ```
//!
//! Every stage of loading (TOML syntax, the shape of tables, the values in them) adds to one
//! list, so a file with several problems shows all of them at once.

use std::fmt;
use std::ops::Range;

/// What kind of mistake a diagnostic reports; tests and tools can tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DiagnosticKind {
    /// The file is not valid TOML.
    Syntax,
    /// A key that the format does not have.
    UnknownKey,
    /// A value of the wrong type (a number where text is expected, ...).
    Type,
    /// A value of the right type that does not make sense (a bad duration, rate, URL, rule).
    Invalid,
    /// Something required is missing.
    Missing,
    /// Two keys that exclude each other.
    Conflict,
    /// Part of the format that this version of pummel cannot run yet.
    NotSupported,
}

/// One error, at a byte range of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// What kind of mistake it is.
    pub kind: DiagnosticKind,
    /// Bytes of the file it is about (its start gives line:col).
    pub span: Range<usize>,
    /// What is wrong.
    pub message: String,
    /// The expected form or a way out, shown below the source line.
    pub help: Option<String>,
}

impl Diagnostic {
    /// A diagnostic without help.
    pub fn new(kind: DiagnosticKind, span: Range<usize>, message: impl Into<String>) -> Self {
        Diagnostic { kind, span, message: message.into(), help: None }
    }

    /// Adds the line shown below the caret.
    pub fn with_help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }
}

/// Every error found in one plan file, with the text they point into.
#[derive(Debug, Clone)]
pub struct Report {
    /// The file's name as the user gave it (the start of each `name:line:col`).
    pub name: String,
    /// The file's text.
    pub source: String,
    /// The errors, in file order.
    pub diagnostics: Vec<Diagnostic>,
}

impl Report {
    /// A report over `source`; diagnostics are sorted by position and exact repeats dropped.
    pub fn new(name: impl Into<String>, source: impl Into<String>, mut diagnostics: Vec<Diagnostic>) -> Self {
        diagnostics.sort_by_key(|d| (d.span.start, d.span.end));
        diagnostics.dedup();
        Report { name: name.into(), source: source.into(), diagnostics }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        line_col(&self.source, offset)
    }

    /// `name:line:col: error: message` for each diagnostic, without the source lines.
    pub fn short_lines(&self) -> Vec<String> {
        self.diagnostics
            .iter()
            .map(|d| {
                let (line, col) = self.line_col(d.span.start);
                format!("{}:{line}:{col}: error: {}", self.name, d.message)
            })
            .collect()
    }
}

/// Renders every diagnostic: header line, the source line, a caret under the span, the help.
impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (index, d) in self.diagnostics.iter().enumerate() {
            if index > 0 {
                writeln!(f)?;
            }
            let start = d.span.start.min(self.source.len());
            let (line, col) = self.line_col(start);
            writeln!(f, "{}:{line}:{col}: error: {}", self.name, d.message)?;
            let text = self.source.lines().nth(line - 1).unwrap_or("");
            let shown: String = text.chars().map(|c| if c.is_control() { ' ' } else { c }).collect();
            let gutter = " ".repeat(line.to_string().len());
            // The caret runs under the span, but not past the end of its first line.
            let rest_of_line = shown.chars().count().saturating_sub(col - 1);
            let span_chars = self.source.get(start..d.span.end.min(self.source.len())).map_or(0, |s| s.chars().count());
            let carets = span_chars.min(rest_of_line).max(1);
            writeln!(f, "{gutter} |")?;
            writeln!(f, "{line} | {shown}")?;
            writeln!(f, "{gutter} | {}{}", " ".repeat(col - 1), "^".repeat(carets))?;
            if let Some(help) = &d.help {
                writeln!(f, "{gutter} = {help}")?;
            }
        }
        Ok(())
    }
}

/// 1-based line and column (in characters) of byte `offset` in `source`.
pub fn line_col(source: &str, offset: usize) -> (usize, usize) {
    let mut offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    let before = &source[..offset];
    let line = before.matches('\n').count() + 1;
    let line_start = before.rfind('\n').map_or(0, |i| i + 1);
    (line, before[line_start..].chars().count() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_and_column_count_characters() {
        let src = "a = 1\nbé = \"x\"\n";
        assert_eq!(line_col(src, 0), (1, 1));
        assert_eq!(line_col(src, 4), (1, 5));
        assert_eq!(line_col(src, 6), (2, 1));
        // `é` is two bytes but one column.
        assert_eq!(line_col(src, 11), (2, 5));
        assert_eq!(line_col(src, 999), (3, 1));
    }

    #[test]
    fn renders_caret_under_the_span() {
        let src = "[target]\ntimeout = \"3x\"\n";
        let d = Diagnostic::new(DiagnosticKind::Invalid, 19..23, "bad").with_help("expected a duration like \"30s\"");
        let shown = Report::new("p.toml", src, vec![d]).to_string();
        assert_eq!(
            shown,
            "p.toml:2:11: error: bad\n  |\n2 | timeout = \"3x\"\n  |           ^^^^\n  = expected a duration like \"30s\"\n"
        );
    }
}
