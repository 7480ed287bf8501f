//! The plan file's text: an opening comment (what was converted, what was left out, the
//! variables to set), `[target]`, one scenario of one user running the flow once, and one
//! `[[scenario.flow]]` table per step with dotted keys (`request.path = ...`), so that each
//! header is a line of its own and the file reads and diffs well.
//!
//! Texts are templates in a plan (paths, header values, bodies), so recorded text that happens
//! to hold `{{`, `{%` or `{#` is escaped as `{{ '{{' }}`; placeholders are written as
//! `{{ env("NAME") }}`. Strings and keys are encoded by `toml_writer` (literal strings where
//! they need no escape, so templates stay readable).

use std::fmt::Write as _;

use toml_writer::{ToTomlKey, ToTomlValue};

use crate::redact::Variable;

/// One part of a text that becomes a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Recorded text, sent as is.
    Text(String),
    /// An environment variable's value: `{{ env("NAME") }}`.
    Env(String),
    /// An environment variable's value as a JSON string: `{{ env("NAME") | tojson }}`.
    EnvJson(String),
}

/// A text made of pieces.
pub type Pieces = Vec<Piece>;

/// One step of the flow.
#[derive(Debug, Clone, PartialEq)]
pub enum Step {
    /// A pause, milliseconds.
    Think {
        /// Its length.
        ms: u64,
    },
    /// A request.
    Request(Request),
}

/// A request step.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// The name its statistics are grouped under.
    pub name: String,
    /// The method.
    pub method: String,
    /// Path and query.
    pub path: Pieces,
    /// Headers, in the order recorded.
    pub headers: Vec<(String, Pieces)>,
    /// The body, if any.
    pub body: Option<Pieces>,
}

/// Everything the plan's text is made of.
#[derive(Debug)]
pub struct Plan<'a> {
    /// What was converted (`recording.har`).
    pub source: &'a str,
    /// The command that converted it.
    pub command: &'a str,
    /// `[target].base_url`.
    pub base_url: &'a str,
    /// The flow.
    pub steps: &'a [Step],
    /// The environment variables it reads.
    pub variables: &'a [Variable],
    /// What was left out.
    pub warnings: &'a [String],
}

/// `pieces` as template text: recorded text escaped, placeholders as `{{ env("NAME") }}`.
pub fn render_template(pieces: &[Piece]) -> String {
    let mut out = String::new();
    for (index, piece) in pieces.iter().enumerate() {
        match piece {
            Piece::Text(text) => {
                let before_tag = matches!(pieces.get(index + 1), Some(Piece::Env(_) | Piece::EnvJson(_)));
                escape_template(text, before_tag, &mut out);
            }
            Piece::Env(name) => {
                let _ = write!(out, "{{{{ env(\"{name}\") }}}}");
            }
            Piece::EnvJson(name) => {
                let _ = write!(out, "{{{{ env(\"{name}\") | tojson }}}}");
            }
        }
    }
    out
}

/// Appends `text` so that a template renders it back exactly: each `{{`, `{%` and `{#` becomes
/// an expression printing it, and so does a last `{` right before a placeholder (it would
/// otherwise open a tag with the placeholder's braces).
fn escape_template(text: &str, before_tag: bool, out: &mut String) {
    let mut chars = text.char_indices().peekable();
    while let Some((at, c)) = chars.next() {
        let next = chars.peek().map(|&(_, n)| n);
        match (c, next) {
            ('{', Some(n @ ('{' | '%' | '#'))) => {
                let _ = write!(out, "{{{{ '{{{n}' }}}}");
                chars.next();
            }
            ('{', None) if before_tag && at + 1 == text.len() => out.push_str("{{ '{' }}"),
            _ => out.push(c),
        }
    }
}

impl Plan<'_> {
    /// The plan file's text.
    pub fn render(&self) -> String {
        let requests = self.steps.iter().filter(|s| matches!(s, Step::Request(_))).count();
        let mut out = String::new();
        let _ = writeln!(out, "# Converted by `{}` from {}:", self.command, self.source);
        let _ = writeln!(
            out,
            "# {requests} request{} to {}, sent in the order recorded, one after another, by one user, once.",
            if requests == 1 { "" } else { "s" },
            self.base_url
        );
        for warning in self.warnings {
            comment_wrapped(&mut out, &format!("Note: {warning}."));
        }
        if !self.variables.is_empty() {
            out.push_str("#\n");
            comment_wrapped(
                &mut out,
                "The recording's secrets are not in this file: set these environment variables before \
                 running it (their values are read once, when the run starts):",
            );
            let width = self.variables.iter().map(|v| v.name.len()).max().unwrap_or(0);
            for variable in self.variables {
                let _ = writeln!(out, "#   {:width$}  {}", variable.name, variable.what);
            }
        }
        out.push_str("#\n");
        comment_wrapped(
            &mut out,
            "Check it with `pummel check`. `pummel run -c 50` runs 50 users, each through the flow once; for a \
             load that lasts, replace iterations = 1 below with duration = \"1m\" (each user then loops).",
        );
        let _ = writeln!(out, "\n[target]\nbase_url = {}", self.base_url.to_toml_value());
        out.push_str("\n[[scenario]]\nname = \"recorded\"\nusers = 1\niterations = 1\n");
        let mut number = 0;
        for step in self.steps {
            out.push('\n');
            match step {
                Step::Think { ms } => {
                    let _ = writeln!(out, "[[scenario.flow]]\nthink = \"{ms}ms\"");
                }
                Step::Request(request) => {
                    number += 1;
                    let _ = writeln!(out, "# request {number} of {requests}");
                    out.push_str("[[scenario.flow]]\n");
                    let _ = writeln!(out, "request.name = {}", request.name.to_toml_value());
                    let _ = writeln!(out, "request.method = {}", request.method.to_toml_value());
                    let _ = writeln!(out, "request.path = {}", render_template(&request.path).to_toml_value());
                    for (name, value) in &request.headers {
                        let _ = writeln!(
                            out,
                            "request.headers.{} = {}",
                            name.as_str().to_toml_key(),
                            render_template(value).to_toml_value()
                        );
                    }
                    if let Some(body) = &request.body {
                        let _ = writeln!(out, "request.body = {}", render_template(body).to_toml_value());
                    }
                }
            }
        }
        out
    }
}

/// `text` as comment lines of at most about 100 characters.
fn comment_wrapped(out: &mut String, text: &str) {
    let mut line = String::from("#");
    for word in text.split_whitespace() {
        if line.len() + 1 + word.len() > 100 && line.len() > 1 {
            out.push_str(&line);
            out.push('\n');
            line = String::from("#  ");
        }
        line.push(' ');
        line.push_str(word);
    }
    out.push_str(&line);
    out.push('\n');
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn template_syntax_in_recorded_text_is_escaped() {
        let cases = [
            ("plain", "plain"),
            ("a {{ b }} c", "a {{ '{{' }} b }} c"),
            ("{% raw %}{#", "{{ '{%' }} raw %}{{ '{#' }}"),
            ("{{{", "{{ '{{' }}{"),
            ("{ x }", "{ x }"),
        ];
        for (text, escaped) in cases {
            assert_eq!(render_template(&[Piece::Text(text.into())]), escaped, "{text}");
        }
        let before = [Piece::Text("{".into()), Piece::Env("T".into())];
        assert_eq!(render_template(&before), r#"{{ '{' }}{{ env("T") }}"#);
        let after = [Piece::Env("T".into()), Piece::Text("}".into())];
        assert_eq!(render_template(&after), r#"{{ env("T") }}}"#);
    }

    #[test]
    fn the_plan_is_toml_with_one_table_per_step() {
        let steps = vec![
            Step::Request(Request {
                name: "POST /items/:id".into(),
                method: "POST".into(),
                path: vec![Piece::Text("/items/42?q=a b".into())],
                headers: vec![
                    ("Content-Type".into(), vec![Piece::Text("application/json".into())]),
                    ("X Odd".into(), vec![Piece::Text("it's \"quoted\"".into())]),
                    ("Authorization".into(), vec![Piece::Text("Bearer ".into()), Piece::Env("AUTHORIZATION".into())]),
                ],
                body: Some(vec![Piece::Text("{\"a\":1}\nline 2 '''\n".into())]),
            }),
            Step::Think { ms: 1250 },
        ];
        let variables = [Variable { name: "AUTHORIZATION".into(), what: "the bearer token".into() }];
        let plan = Plan {
            source: "x.har",
            command: "pummel convert har",
            base_url: "http://127.0.0.1:8090",
            steps: &steps,
            variables: &variables,
            warnings: &["2 requests were on other hosts".into()],
        };
        let text = plan.render();
        let value: toml::Value = toml::from_str(&text).unwrap_or_else(|e| panic!("{e}\n{text}"));
        assert_eq!(value["target"]["base_url"].as_str(), Some("http://127.0.0.1:8090"));
        let flow = value["scenario"][0]["flow"].as_array().expect("flow");
        assert_eq!(flow.len(), 2);
        let request = &flow[0]["request"];
        assert_eq!(request["path"].as_str(), Some("/items/42?q=a b"));
        assert_eq!(request["headers"]["X Odd"].as_str(), Some("it's \"quoted\""));
        assert_eq!(request["headers"]["Authorization"].as_str(), Some(r#"Bearer {{ env("AUTHORIZATION") }}"#));
        assert_eq!(request["body"].as_str(), Some("{\"a\":1}\nline 2 '''\n"));
        assert_eq!(flow[1]["think"].as_str(), Some("1250ms"));
        assert!(text.contains("#   AUTHORIZATION  the bearer token\n"), "{text}");
        assert!(text.contains("# Note: 2 requests were on other hosts.\n"), "{text}");
    }
}
