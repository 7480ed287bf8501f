//! Raw form → validated form: parses every duration, rate, rule, URL and header, settles
//! defaults and conflicts, and reports every mistake with its position, all at once.
//!
//! What the engine cannot run yet (several scenarios, multi-step flows, think times, templates,
//! extraction, checks, feeders, WebSocket steps, per-name thresholds, ramps) is part of the
//! format (see [`crate::raw`]) but rejected here with "… is not supported yet (planned: issue 3)"
//! at the key's position; nothing the file says is ever silently ignored.
//!
//! This file holds the walk over the top-level tables and the helpers every part uses;
//! `scenario.rs` checks load models, `request.rs` flows and requests.

mod request;
mod scenario;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use pummel_engine::duration::parse_duration;
use pummel_engine::error_kind::ErrorKind;
use pummel_engine::expr::{Expr, Metric};
use pummel_engine::http1::{RequestError, encode_request};
use pummel_engine::plan::{PlanError, StatusSet, Target};
use toml::Spanned;

use crate::Options;
use crate::de::KeyIndex;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{DurationText, ExprText, RawList, RawMap, RawPlan, RawTarget};
use crate::spec::{DEFAULT_ABORT_WINDOW, DEFAULT_CONNECT_TIMEOUT, DEFAULT_TIMEOUT, PlanSpec, ScenarioSpec, TargetSpec};

/// Where "not supported yet" errors say the work is planned.
const PLANNED: &str = "(planned: issue 3)";

/// Validates `raw`; the spec when the file is valid, and every diagnostic found.
pub(crate) fn validate(
    raw: &RawPlan,
    keys: &KeyIndex,
    source: &str,
    options: &Options,
) -> (Option<PlanSpec>, Vec<Diagnostic>) {
    let mut v = Validator { source, keys, options, diagnostics: Vec::new() };
    let target = v.target(raw.target.as_ref());
    let scenario = v.scenarios(&raw.scenario, &target);
    let thresholds = v.thresholds(raw);
    let (abort_when, abort_window) = v.abort(raw);
    let variables = v.variables(raw);
    v.feeders(raw);
    let spec = match (v.diagnostics.is_empty(), scenario) {
        (true, Some(scenario)) => Some(PlanSpec { target, scenario, thresholds, abort_when, abort_window, variables }),
        _ => None,
    };
    (spec, v.diagnostics)
}

/// Walks the raw form, collecting diagnostics.
pub(crate) struct Validator<'a> {
    source: &'a str,
    keys: &'a KeyIndex,
    options: &'a Options,
    diagnostics: Vec<Diagnostic>,
}

impl Validator<'_> {
    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// The span of the key holding `value`.
    fn key<T>(&self, value: &Spanned<T>) -> Range<usize> {
        self.keys.key_of(&value.span())
    }

    /// `what` (e.g. "`think` steps are") "not supported yet (planned: issue 3)", at the key.
    fn not_supported<T>(&mut self, value: &Spanned<T>, what: &str) -> &mut Diagnostic {
        let span = self.key(value);
        self.diagnostics.push(Diagnostic::new(
            DiagnosticKind::NotSupported,
            span,
            format!("{what} not supported yet {PLANNED}"),
        ));
        let last = self.diagnostics.len() - 1;
        &mut self.diagnostics[last]
    }

    /// Reports `later` as excluding `earlier` (two keys of which at most one may be given).
    fn conflict<A>(&mut self, later: &Spanned<A>, later_name: &str, earlier_name: &str, help: &str) {
        let span = self.key(later);
        self.push(
            Diagnostic::new(
                DiagnosticKind::Conflict,
                span,
                format!("`{later_name}` cannot be used with `{earlier_name}`"),
            )
            .with_help(help.to_string()),
        );
    }

    /// The byte offset in the file of byte `pos` of a string value's text, when the string is
    /// written without escapes (so the two line up); otherwise the value's start.
    fn offset_in(&self, value: &Range<usize>, text: &str, pos: usize) -> usize {
        let written = self.source.get(value.clone()).unwrap_or("");
        let plain = written.len() == text.len() + 2
            && (written.starts_with('"') || written.starts_with('\''))
            && &written[1..written.len() - 1] == text;
        if plain { value.start + 1 + pos } else { value.start }
    }

    /// A value as written in the file (for messages).
    fn written<T>(&self, value: &Spanned<T>) -> &str {
        self.source.get(value.span()).unwrap_or("")
    }

    /// Rejects `{{ ... }}` / `{% ... %}` templates in a string, at the template; true when
    /// there was one (the value's other checks are then skipped).
    fn template(&mut self, value: &Spanned<String>, what: &str) -> bool {
        self.template_in(&value.span(), value.get_ref(), what)
    }

    fn template_in(&mut self, span: &Range<usize>, text: &str, what: &str) -> bool {
        let Some(pos) = ["{{", "{%", "{#"].iter().filter_map(|open| text.find(open)).min() else { return false };
        let start = self.offset_in(span, text, pos);
        self.push(
            Diagnostic::new(
                DiagnosticKind::NotSupported,
                start..start + 2,
                format!("templates ({{{{ ... }}}}) in {what} are not supported yet {PLANNED}"),
            )
            .with_help("write the value out; templates arrive with the next version of plans"),
        );
        true
    }

    /// A duration longer than zero.
    fn duration(&mut self, value: &Spanned<DurationText>, what: &str) -> Option<Duration> {
        match parse_duration(&value.get_ref().0) {
            Ok(d) if !d.is_zero() => Some(d),
            Ok(_) => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, value.span(), format!("{what} must be longer than 0s"))
                        .with_help("expected a duration like \"30s\""),
                );
                None
            }
            Err(e) => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        value.span(),
                        format!("{what}: invalid duration {:?}: {}", e.input, e.reason),
                    )
                    .with_help("expected a duration like \"500ms\", \"30s\", \"1m30s\" or \"2h\""),
                );
                None
            }
        }
    }

    /// A whole number of at least 1.
    fn count(&mut self, value: &Spanned<i64>, what: &str) -> Option<u64> {
        match u64::try_from(*value.get_ref()) {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.push(Diagnostic::new(
                    DiagnosticKind::Invalid,
                    value.span(),
                    format!("{what} must be at least 1, not {}", value.get_ref()),
                ));
                None
            }
        }
    }

    /// A threshold / abort rule, with errors pointing into the string.
    fn expr(&mut self, value: &Spanned<ExprText>) -> Option<Expr> {
        let text = &value.get_ref().0;
        let span = value.span();
        match Expr::parse(text) {
            Ok(expr) => {
                if let Metric::ErrorCount(kind) = &expr.metric {
                    if !ErrorKind::ALL.iter().any(|k| k.name() == kind) {
                        let known: Vec<&str> = ErrorKind::ALL.iter().map(|k| k.name()).collect();
                        let at = self.offset_in(&span, text, text.find(kind.as_str()).unwrap_or(0));
                        self.push(
                            Diagnostic::new(
                                DiagnosticKind::Invalid,
                                at..at + kind.len(),
                                format!("unknown error kind {kind:?} in {text:?}"),
                            )
                            .with_help(format!("known kinds: {}", known.join(", "))),
                        );
                        return None;
                    }
                }
                Some(expr)
            }
            Err(e) => {
                let at = self.offset_in(&span, text, e.position.min(text.len()));
                let end = if at == span.start { span.end } else { at + 1 };
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, at..end, format!("invalid rule {text:?}: {}", e.message))
                        .with_help("expected METRIC OP VALUE, e.g. \"p99<250ms\", \"error_rate<1%\", \"rate>=900\""),
                );
                None
            }
        }
    }

    fn exprs(&mut self, list: &Spanned<RawList<ExprText>>) -> Vec<Expr> {
        list.get_ref().iter().filter_map(|e| self.expr(e)).collect()
    }

    /// A URL the engine can load: parsed, with a host, of a scheme the engine supports.
    fn url(&mut self, value: &Spanned<String>, what: &str) -> Option<url::Url> {
        let span = value.span();
        let text = value.get_ref();
        let help = "expected a URL like \"http://127.0.0.1:8090\"";
        let parsed = match url::Url::parse(text) {
            Ok(parsed) => parsed,
            Err(e) => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, span, format!("invalid {what} {text:?}: {e}"))
                        .with_help(help),
                );
                return None;
            }
        };
        if parsed.host().is_none() {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, span, format!("invalid {what} {text:?}: it has no host"))
                    .with_help(help),
            );
            return None;
        }
        // Ask the engine whether it loads this scheme, on an address that needs no DNS.
        if let Err(PlanError::Url { reason, .. }) = Target::resolve(&format!("{}://127.0.0.1:1/", parsed.scheme())) {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, span, format!("{what} {text:?}: {reason}")).with_help(help),
            );
            return None;
        }
        Some(parsed)
    }

    /// Headers of a table, in file order, each checked as the engine will send it.
    fn headers(&mut self, map: &Spanned<RawMap<String>>) -> Vec<(String, String)> {
        let mut entries: Vec<_> = map.get_ref().iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut headers = Vec::new();
        for (name, value) in entries {
            if self.template(value, "header values") {
                continue;
            }
            let pair = (name.get_ref().clone(), value.get_ref().clone());
            match encode_request("GET", "/", "h", std::slice::from_ref(&pair), b"", true) {
                Ok(_) => headers.push(pair),
                Err(RequestError::InvalidHeaderName(_)) => self.push(Diagnostic::new(
                    DiagnosticKind::Invalid,
                    name.span(),
                    format!("invalid header name {:?}: letters, digits and !#$%&'*+-.^_`|~ only", name.get_ref()),
                )),
                Err(e) => self.push(Diagnostic::new(DiagnosticKind::Invalid, value.span(), e.to_string())),
            }
        }
        headers
    }

    fn target(&mut self, raw: Option<&Spanned<RawTarget>>) -> TargetSpec {
        let empty = RawTarget::default();
        let t = raw.map_or(&empty, |t| t.get_ref());
        let base_url = t.base_url.as_ref().and_then(|u| {
            if self.template(u, "base_url") {
                return None;
            }
            let parsed = self.url(u, "base_url")?;
            if parsed.query().is_some() || parsed.fragment().is_some() {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, u.span(), "base_url must not have a query or fragment")
                        .with_help("put query parameters in the request: query = { page = 1 }"),
                );
                return None;
            }
            Some(u.get_ref().clone())
        });
        let headers = t.headers.as_ref().map(|h| self.headers(h)).unwrap_or_default();
        let timeout = t.timeout.as_ref().and_then(|d| self.duration(d, "timeout")).unwrap_or(DEFAULT_TIMEOUT);
        let connect_timeout = t
            .connect_timeout
            .as_ref()
            .and_then(|d| self.duration(d, "connect_timeout"))
            .unwrap_or(DEFAULT_CONNECT_TIMEOUT);
        let ok_status = match &t.ok_status {
            None => StatusSet::default(),
            Some(set) => set.get_ref().0.parse::<StatusSet>().unwrap_or_else(|e| {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, set.span(), format!("ok_status: {e}"))
                        .with_help("expected a status like 200 or a set like \"200-399,404\""),
                );
                StatusSet::default()
            }),
        };
        let keepalive = t.keepalive.as_ref().is_none_or(|k| *k.get_ref());
        TargetSpec { base_url, headers, timeout, connect_timeout, keepalive, ok_status }
    }

    fn scenarios(&mut self, list: &RawList<crate::raw::RawScenario>, target: &TargetSpec) -> Option<ScenarioSpec> {
        if list.is_empty() {
            self.push(Diagnostic::new(DiagnosticKind::Missing, 0..0, "the plan has no [[scenario]]").with_help(
                "add one: [[scenario]] with rate = 200, duration = \"30s\", flow = [ { request = { path = \"/\" } } ]",
            ));
            return None;
        }
        let mut first = None;
        for (index, raw) in list.iter().enumerate() {
            let spec = self.scenario(raw, index, target);
            if index == 0 {
                first = spec;
            } else {
                self.not_supported(raw, "several [[scenario]] in one plan are").help =
                    Some("this version runs one scenario per plan; keep the others in separate files".into());
            }
        }
        first
    }

    fn thresholds(&mut self, raw: &RawPlan) -> Vec<Expr> {
        let Some(table) = &raw.thresholds else { return Vec::new() };
        let mut global = Vec::new();
        for (name, list) in table.get_ref() {
            let exprs = self.exprs(list);
            if name.get_ref() == "global" {
                global = exprs;
            } else {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::NotSupported,
                        name.span(),
                        format!("thresholds per request name ({:?}) are not supported yet {PLANNED}", name.get_ref()),
                    )
                    .with_help("put run-wide rules under global = [\"p99<250ms\"]"),
                );
            }
        }
        global
    }

    fn abort(&mut self, raw: &RawPlan) -> (Vec<Expr>, Duration) {
        let Some(abort) = &raw.abort else { return (Vec::new(), DEFAULT_ABORT_WINDOW) };
        let abort = abort.get_ref();
        let when = abort.when.as_ref().map(|w| self.exprs(w)).unwrap_or_default();
        let window = abort.window.as_ref().and_then(|w| self.duration(w, "window")).unwrap_or(DEFAULT_ABORT_WINDOW);
        (when, window)
    }

    fn variables(&mut self, raw: &RawPlan) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        let Some(table) = &raw.variables else { return variables };
        for (name, value) in table.get_ref() {
            if !crate::is_variable_name(name.get_ref()) {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        name.span(),
                        format!("invalid variable name {:?}", name.get_ref()),
                    )
                    .with_help("a name is letters, digits and _, not starting with a digit"),
                );
            }
            let text = match value.get_ref() {
                toml::Value::String(s) => s.clone(),
                toml::Value::Integer(i) => i.to_string(),
                toml::Value::Float(f) => f.to_string(),
                toml::Value::Boolean(b) => b.to_string(),
                other => {
                    self.push(
                        Diagnostic::new(
                            DiagnosticKind::Type,
                            value.span(),
                            format!("wrong type for variable {:?}: found {}", name.get_ref(), other.type_str()),
                        )
                        .with_help("expected a string, number or boolean"),
                    );
                    continue;
                }
            };
            variables.insert(name.get_ref().clone(), text);
        }
        variables
    }

    fn feeders(&mut self, raw: &RawPlan) {
        let Some(feeders) = &raw.feeders else { return };
        for name in feeders.get_ref().keys() {
            self.push(Diagnostic::new(
                DiagnosticKind::NotSupported,
                name.span(),
                format!("feeders ({:?}) are not supported yet {PLANNED}", name.get_ref()),
            ));
        }
    }
}
