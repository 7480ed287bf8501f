//! A scenario's `flow` and its `request` step.
//!
//! Runs today: a flow of exactly one `request` with a method, a `path` (joined with the base
//! URL) or `url`, headers, query parameters and a `body`, `json` or `form` body, all fixed
//! text. Every other step kind, a second step, templates, `extract` and `check` are rejected
//! at their key.

use std::ops::Range;

use pummel_engine::http1::{RequestError, encode_request};
use toml::Spanned;

use super::Validator;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{RawList, RawMap, RawRequest, RawStep, Scalar};
use crate::spec::{Location, RequestStepSpec, TargetSpec};

const STEP_KINDS: &str = "request, think, repeat, every, choose, ws_connect, ws_send, ws_expect or ws_close";

impl Validator<'_> {
    /// The flow's one request; every other step is reported.
    pub(super) fn flow(&mut self, flow: &Spanned<RawList<RawStep>>, target: &TargetSpec) -> Option<RequestStepSpec> {
        if flow.get_ref().is_empty() {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, flow.span(), "the flow is empty")
                    .with_help("expected flow = [ { request = { method = \"GET\", path = \"/\" } } ]"),
            );
            return None;
        }
        let mut first = None;
        for (index, step) in flow.get_ref().iter().enumerate() {
            let Some(request) = self.step(step) else { continue };
            let spec = self.request(request, target);
            if index == 0 {
                first = spec;
            } else {
                self.not_supported(request, "flows of more than one step are").help =
                    Some("this version sends one request per iteration".into());
            }
        }
        first
    }

    /// Checks that a step has one kind; returns its request, if that is what it is.
    fn step<'s>(&mut self, step: &'s Spanned<RawStep>) -> Option<&'s Spanned<RawRequest>> {
        let s = step.get_ref();
        let mut kinds: Vec<(&str, Range<usize>)> = Vec::new();
        let mut note = |name: &'static str, span: Option<Range<usize>>| {
            if let Some(span) = span {
                kinds.push((name, span));
            }
        };
        note("request", s.request.as_ref().map(|v| self.key(v)));
        note("think", s.think.as_ref().map(|v| self.key(v)));
        note("repeat", s.repeat.as_ref().map(|v| self.key(v)));
        note("every", s.every.as_ref().map(|v| self.key(v)));
        note("choose", s.choose.as_ref().map(|v| self.key(v)));
        note("ws_connect", s.ws_connect.as_ref().map(|v| self.key(v)));
        note("ws_send", s.ws_send.as_ref().map(|v| self.key(v)));
        note("ws_expect", s.ws_expect.as_ref().map(|v| self.key(v)));
        note("ws_close", s.ws_close.as_ref().map(|v| self.key(v)));
        kinds.sort_by_key(|(_, span)| span.start);
        let Some((kind, span)) = kinds.first().cloned() else {
            let message =
                if s.flow.is_some() { "a nested `flow` needs `repeat` or `every`" } else { "this step is empty" };
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, step.span(), message)
                    .with_help(format!("a step is one of {STEP_KINDS}")),
            );
            return None;
        };
        let block = matches!(kind, "repeat" | "every");
        for (other, other_span) in &kinds[1..] {
            if block && matches!(*other, "repeat" | "every") {
                continue;
            }
            self.push(
                Diagnostic::new(
                    DiagnosticKind::Conflict,
                    other_span.clone(),
                    format!("`{other}` cannot be used with `{kind}` in one step"),
                )
                .with_help("write each step as its own { ... } in the flow"),
            );
        }
        if let (Some(nested), false) = (&s.flow, block) {
            let span = self.key(nested);
            self.push(Diagnostic::new(
                DiagnosticKind::Conflict,
                span,
                format!("a nested `flow` belongs to `repeat` or `every`, not `{kind}`"),
            ));
        }
        let what = match kind {
            // With other kinds beside it (reported above), the request is still checked.
            "request" => return s.request.as_ref(),
            "think" => "`think` steps are",
            "repeat" => "`repeat` blocks are",
            "every" => "`every` blocks are",
            "choose" => "weighted sub-flows (`choose`) are",
            _ => "WebSocket steps are",
        };
        self.push(Diagnostic::new(
            DiagnosticKind::NotSupported,
            span,
            format!("{what} not supported yet {}", super::PLANNED),
        ));
        None
    }

    fn request(&mut self, raw: &Spanned<RawRequest>, target: &TargetSpec) -> Option<RequestStepSpec> {
        let r = raw.get_ref();
        if let Some(extract) = &r.extract {
            self.not_supported(extract, "`extract` (values taken from responses) is");
        }
        if let Some(check) = &r.check {
            self.not_supported(check, "`check` (checks on responses) is");
        }
        let method = match &r.method {
            None => "GET".to_string(),
            Some(m) => {
                if let Err(e @ RequestError::InvalidMethod(_)) = encode_request(m.get_ref(), "/", "h", &[], b"", true) {
                    self.push(Diagnostic::new(DiagnosticKind::Invalid, m.span(), e.to_string()));
                }
                m.get_ref().clone()
            }
        };
        let location = self.location(raw, target);
        let query = r.query.as_ref().map(|q| self.pairs(q, "query values")).unwrap_or_default();
        let mut headers: Vec<(String, String)> = Vec::new();
        let own = r.headers.as_ref().map(|h| self.headers(h)).unwrap_or_default();
        for (name, value) in &target.headers {
            if !own.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name.clone(), value.clone()));
            }
        }
        headers.extend(own);
        let (body, content_type) = self.body(r)?;
        if let Some(content_type) = content_type {
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
                headers.push(("Content-Type".to_string(), content_type.to_string()));
            }
        }
        let (location, written) = location?;
        let name = match &r.name {
            Some(name) => name.get_ref().clone(),
            None => format!("{method} {written}"),
        };
        let location = match location {
            Location::Path(path) => Location::Path(with_query(path, &query)),
            Location::Url(url) => Location::Url(with_query(url, &query)),
        };
        Some(RequestStepSpec { name, method, location, headers, body })
    }

    /// `path` or `url` (exactly one), and the text as written for the default name.
    fn location(&mut self, raw: &Spanned<RawRequest>, target: &TargetSpec) -> Option<(Location, String)> {
        let r = raw.get_ref();
        match (&r.path, &r.url) {
            (Some(_), Some(url)) => {
                self.conflict(url, "url", "path", "give a path (joined with [target].base_url) or a full url");
                None
            }
            (None, None) => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this request has no `path` or `url`")
                        .with_help(
                            "expected path = \"/api\" (joined with [target].base_url) or url = \"http://host/api\"",
                        ),
                );
                None
            }
            (Some(path), None) => {
                if self.template(path, "paths") {
                    return None;
                }
                let text = path.get_ref();
                if !text.starts_with('/') {
                    self.push(Diagnostic::new(
                        DiagnosticKind::Invalid,
                        path.span(),
                        format!("path {text:?} must start with /"),
                    ));
                    return None;
                }
                if let Err(e) = encode_request("GET", text, "h", &[], b"", true) {
                    self.push(Diagnostic::new(DiagnosticKind::Invalid, path.span(), e.to_string()));
                    return None;
                }
                if target.base_url.is_none() && self.options.base_url.is_none() {
                    let span = self.key(path);
                    self.push(
                        Diagnostic::new(DiagnosticKind::Missing, span, "`path` needs a base URL, and [target] has no base_url")
                            .with_help("add base_url = \"http://127.0.0.1:8090\" under [target] (or pass --base-url), or give a full url"),
                    );
                    return None;
                }
                Some((Location::Path(text.clone()), text.clone()))
            }
            (None, Some(url)) => {
                if self.template(url, "URLs") {
                    return None;
                }
                self.url(url, "url")?;
                Some((Location::Url(url.get_ref().clone()), url.get_ref().clone()))
            }
        }
    }

    /// The body and the Content-Type it implies; `None` when it is invalid.
    fn body(&mut self, r: &RawRequest) -> Option<(Vec<u8>, Option<&'static str>)> {
        let mut given: Vec<(&str, Range<usize>)> = Vec::new();
        if let Some(b) = &r.body {
            given.push(("body", self.key(b)));
        }
        if let Some(j) = &r.json {
            given.push(("json", self.key(j)));
        }
        if let Some(f) = &r.form {
            given.push(("form", self.key(f)));
        }
        given.sort_by_key(|(_, span)| span.start);
        if given.len() > 1 {
            for (name, span) in &given[1..] {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Conflict,
                        span.clone(),
                        format!("`{name}` cannot be used with `{}`", given[0].0),
                    )
                    .with_help("a request has one body: body (as is), json or form"),
                );
            }
            return None;
        }
        if let Some(body) = &r.body {
            self.template(body, "bodies");
            return Some((body.get_ref().clone().into_bytes(), None));
        }
        if let Some(json) = &r.json {
            let value = self.json(json)?;
            return Some((value.to_string().into_bytes(), Some("application/json")));
        }
        if let Some(form) = &r.form {
            let pairs = self.pairs(form, "form values");
            let mut encoder = url::form_urlencoded::Serializer::new(String::new());
            encoder.extend_pairs(pairs);
            return Some((encoder.finish().into_bytes(), Some("application/x-www-form-urlencoded")));
        }
        Some((Vec::new(), None))
    }

    /// A TOML value as JSON; dates have no JSON form and are refused.
    fn json(&mut self, value: &Spanned<toml::Value>) -> Option<serde_json::Value> {
        let mut template = false;
        let converted = to_json(value.get_ref(), &mut template);
        if template {
            self.push(Diagnostic::new(
                DiagnosticKind::NotSupported,
                value.span(),
                format!("templates ({{{{ ... }}}}) in JSON bodies are not supported yet {}", super::PLANNED),
            ));
            return None;
        }
        match converted {
            Ok(json) => Some(json),
            Err(what) => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        value.span(),
                        format!("the json body holds {what}, which JSON cannot express"),
                    )
                    .with_help("write dates as strings and numbers as finite values"),
                );
                None
            }
        }
    }

    /// Query or form pairs in file order; values are fixed text.
    fn pairs(&mut self, map: &Spanned<RawMap<Scalar>>, what: &str) -> Vec<(String, String)> {
        let mut entries: Vec<_> = map.get_ref().iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
            .into_iter()
            .map(|(name, value)| {
                self.template_in(&value.span(), &value.get_ref().0, what);
                (name.get_ref().clone(), value.get_ref().0.clone())
            })
            .collect()
    }
}

/// Appends URL-encoded query pairs to a path or URL.
fn with_query(location: String, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return location;
    }
    let mut encoder = url::form_urlencoded::Serializer::new(String::new());
    encoder.extend_pairs(pairs);
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}{}", encoder.finish())
}

/// Converts TOML to JSON; notes whether a string holds a template; errs on dates and NaN.
fn to_json(value: &toml::Value, template: &mut bool) -> Result<serde_json::Value, &'static str> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => {
            *template |= s.contains("{{") || s.contains("{%");
            J::String(s.clone())
        }
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => J::Number(serde_json::Number::from_f64(*f).ok_or("a NaN or infinite number")?),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(_) => return Err("a date"),
        toml::Value::Array(items) => J::Array(items.iter().map(|v| to_json(v, template)).collect::<Result<_, _>>()?),
        toml::Value::Table(table) => {
            let mut object = serde_json::Map::new();
            for (k, v) in table {
                object.insert(k.clone(), to_json(v, template)?);
            }
            J::Object(object)
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_pairs_are_encoded_and_appended() {
        let pairs = vec![("q".to_string(), "a b&c".to_string()), ("n".to_string(), "1".to_string())];
        assert_eq!(with_query("/s".into(), &pairs), "/s?q=a+b%26c&n=1");
        assert_eq!(with_query("/s?x=1".into(), &pairs[1..]), "/s?x=1&n=1");
        assert_eq!(with_query("/s".into(), &[]), "/s");
    }
}
