//! A scenario's `flow`: its steps (request, think, repeat/every blocks, choose, WebSocket
//! steps), and each `request` with its templates, body, extraction and checks.

use std::ops::Range;

use pummel_engine::flow::template::Template;
use pummel_engine::flow::{JsonTemplate, Think, WsCloseStep, WsMatcher};
use pummel_engine::inspect::check::{Check, Condition};
use pummel_engine::inspect::extract::{ExtractSource, Extractor};
use pummel_engine::inspect::jsonpath::JsonPath;
use pummel_engine::inspect::{PatternError, compile_regex};
use pummel_engine::plan::StatusSet;
use pummel_engine::proto::http1::{RequestError, encode_request};
use pummel_results::duration::parse_duration;
use toml::Spanned;

use super::Validator;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{
    RawBranch, RawCheck, RawExtract, RawList, RawMap, RawPart, RawRequest, RawStep, RawWsConnect, RawWsExpect,
    RawWsSend, Scalar,
};
use crate::spec::{
    BodySpec, BranchSpec, DEFAULT_WS_EXPECT_TIMEOUT, Location, RequestStepSpec, StepSpec, TargetSpec, join_url,
};

const STEP_KINDS: &str = "request, think, repeat, every, choose, ws_connect, ws_send, ws_expect or ws_close";

impl Validator<'_> {
    /// The steps of a flow (also a nested one); every mistake in it is reported.
    pub(super) fn flow(&mut self, flow: &Spanned<RawList<RawStep>>, target: &TargetSpec) -> Option<Vec<StepSpec>> {
        if flow.get_ref().is_empty() {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, flow.span(), "the flow is empty")
                    .with_help("expected flow = [ { request = { method = \"GET\", path = \"/\" } } ]"),
            );
            return None;
        }
        let mut steps = Vec::new();
        let mut ok = true;
        for step in flow.get_ref() {
            match self.step(step, target) {
                Some(s) => steps.push(s),
                None => ok = false,
            }
        }
        ok.then_some(steps)
    }

    /// Checks that a step has one kind, then that kind's values.
    fn step(&mut self, step: &Spanned<RawStep>, target: &TargetSpec) -> Option<StepSpec> {
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
        let Some((kind, _)) = kinds.first().cloned() else {
            let message =
                if s.flow.is_some() { "a nested `flow` needs `repeat` or `every`" } else { "this step is empty" };
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, step.span(), message)
                    .with_help(format!("a step is one of {STEP_KINDS}")),
            );
            return None;
        };
        let block = matches!(kind, "repeat" | "every");
        let mut ok = true;
        for (other, other_span) in &kinds[1..] {
            if block && matches!(*other, "repeat" | "every") {
                continue;
            }
            ok = false;
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
            ok = false;
        }
        let spec = match kind {
            "request" => {
                s.request.as_ref().and_then(|r| self.request(r, target)).map(|r| StepSpec::Request(Box::new(r)))
            }
            "think" => s.think.as_ref().and_then(|t| self.think(t)).map(StepSpec::Think),
            "repeat" | "every" => self.block(step, target),
            "choose" => s.choose.as_ref().and_then(|c| self.choose(c, target)).map(StepSpec::Choose),
            "ws_connect" => s.ws_connect.as_ref().and_then(|c| self.ws_connect(c, target)),
            "ws_send" => s.ws_send.as_ref().and_then(|m| self.ws_send(m)),
            "ws_expect" => s.ws_expect.as_ref().and_then(|e| self.ws_expect(e)),
            _ => s.ws_close.as_ref().and_then(|c| self.ws_close(c)).map(StepSpec::WsClose),
        };
        spec.filter(|_| ok)
    }

    /// `think = "2s"`, `"1s..5s"` (uniform) or `"exp(20s)"` (exponential with that mean).
    fn think(&mut self, value: &Spanned<String>) -> Option<Think> {
        let text = value.get_ref().trim();
        let parse = |t: &str| parse_duration(t.trim()).ok();
        let think = if let Some(inner) = text.strip_prefix("exp(").and_then(|t| t.strip_suffix(')')) {
            parse(inner).filter(|d| !d.is_zero()).map(Think::Exponential)
        } else if let Some((lo, hi)) = text.split_once("..") {
            match (parse(lo), parse(hi)) {
                (Some(lo), Some(hi)) if lo <= hi => Some(Think::Uniform(lo, hi)),
                _ => None,
            }
        } else {
            parse(text).map(Think::Fixed)
        };
        if think.is_none() {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, value.span(), format!("invalid think time {text:?}"))
                    .with_help(
                        "expected \"2s\", \"1s..5s\" (uniform, low ≤ high) or \"exp(20s)\" (exponential, mean 20s)",
                    ),
            );
        }
        think
    }

    /// `repeat = N` and/or `every = "20s"` with a nested `flow`.
    fn block(&mut self, step: &Spanned<RawStep>, target: &TargetSpec) -> Option<StepSpec> {
        let s = step.get_ref();
        let repeat = s.repeat.as_ref().map(|n| self.count(n, "repeat"));
        let every = s.every.as_ref().map(|d| self.duration(d, "every"));
        let Some(flow) = &s.flow else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, step.span(), "this block has no `flow`")
                    .with_help("expected { every = \"20s\", flow = [ { request = { path = \"/poll\" } } ] }"),
            );
            return None;
        };
        let flow = self.flow(flow, target);
        let repeat = match repeat {
            Some(None) => return None,
            Some(Some(n)) => Some(n),
            None => None,
        };
        let every = match every {
            Some(None) => return None,
            Some(Some(d)) => Some(d),
            None => None,
        };
        Some(StepSpec::Block { repeat, every, flow: flow? })
    }

    /// `choose = [ { weight = 90, flow = [...] }, { weight = 10, name = "select", flow = [...] } ]`.
    fn choose(&mut self, list: &Spanned<RawList<RawBranch>>, target: &TargetSpec) -> Option<Vec<BranchSpec>> {
        if list.get_ref().is_empty() {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, list.span(), "`choose` has no branches")
                    .with_help("expected choose = [ { weight = 90, flow = [...] }, { weight = 10, flow = [...] } ]"),
            );
            return None;
        }
        let mut branches = Vec::new();
        let mut ok = true;
        for (index, raw) in list.get_ref().iter().enumerate() {
            let b = raw.get_ref();
            let weight = match &b.weight {
                None => 1.0,
                Some(w) if w.get_ref().is_finite() && *w.get_ref() > 0.0 => *w.get_ref(),
                Some(w) => {
                    self.push(
                        Diagnostic::new(DiagnosticKind::Invalid, w.span(), "a weight must be a positive number")
                            .with_help("expected weight = 90 (weights are relative: 90 and 10 split 90 % / 10 %)"),
                    );
                    ok = false;
                    1.0
                }
            };
            let name = b.name.as_ref().map_or_else(|| format!("branch {}", index + 1), |n| n.get_ref().clone());
            let flow = match &b.flow {
                Some(flow) => self.flow(flow, target),
                None => {
                    self.push(
                        Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this branch has no `flow`")
                            .with_help("expected { weight = 10, flow = [ ... ] }"),
                    );
                    None
                }
            };
            match flow {
                Some(flow) => branches.push(BranchSpec { weight, name, flow }),
                None => ok = false,
            }
        }
        ok.then_some(branches)
    }

    /// A template; compile errors and undefined variables point into the string.
    pub(super) fn compile_template(&mut self, value: &Spanned<String>, what: &str) -> Option<Template> {
        self.compile_template_in(&value.span(), value.get_ref(), what)
    }

    pub(super) fn compile_template_in(&mut self, span: &Range<usize>, text: &str, what: &str) -> Option<Template> {
        match Template::compile(text) {
            Ok(template) => {
                let undefined: Vec<String> =
                    template.variables().into_iter().filter(|name| !self.defined.contains(name)).collect();
                if undefined.is_empty() {
                    return Some(template);
                }
                for name in undefined {
                    let at = self.offset_in(span, text, text.find(name.as_str()).unwrap_or(0));
                    let end = if at == span.start { span.end } else { at + name.len() };
                    let known: Vec<&str> = self.defined.iter().map(String::as_str).collect();
                    self.push(
                        Diagnostic::new(
                            DiagnosticKind::Invalid,
                            at..end,
                            format!("undefined variable `{name}` in {what}"),
                        )
                        .with_help(format!(
                            "defined here: {} (variables come from [variables], -e, feeders, and extract)",
                            known.join(", ")
                        )),
                    );
                }
                None
            }
            Err(e) => {
                let at = self.offset_in(span, text, e.offset.min(text.len()));
                let end = if at == span.start { span.end } else { at + 1 };
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        at..end,
                        format!("template in {what} does not compile: {}", e.message),
                    )
                    .with_help("templates look like {{ user }}, {{ random_int(1, 100) }} or {{ feeder.column }}"),
                );
                None
            }
        }
    }

    pub(super) fn request(&mut self, raw: &Spanned<RawRequest>, default: &TargetSpec) -> Option<RequestStepSpec> {
        let r = raw.get_ref();
        let host = self.host_of(r)?;
        let owned;
        let target = match host {
            0 => default,
            i => {
                owned = self.hosts[i].1.clone();
                &owned
            }
        };
        let method = match &r.method {
            None => "GET".to_string(),
            Some(m) => {
                if let Err(e @ RequestError::InvalidMethod(_)) = encode_request(m.get_ref(), "/", "h", &[], b"", true) {
                    self.push(Diagnostic::new(DiagnosticKind::Invalid, m.span(), e.to_string()));
                }
                m.get_ref().clone()
            }
        };
        let location = self.location(raw, target, host);
        let query = r.query.as_ref().map(|q| self.pairs(q, "query values")).unwrap_or_default();
        let mut headers: Vec<(String, Template)> = Vec::new();
        let own = r.headers.as_ref().map(|h| self.template_headers(h)).unwrap_or_default();
        for (name, value) in &target.headers {
            if !own.iter().any(|(n, _)| n.eq_ignore_ascii_case(name)) {
                headers.push((name.clone(), Template::compile(value).ok()?));
            }
        }
        headers.extend(own);
        let (body, content_type) = self.body(r)?;
        if let Some(content_type) = content_type {
            if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type")) {
                headers.push(("Content-Type".to_string(), Template::compile(content_type).ok()?));
            }
        }
        let extract = r.extract.as_ref().map_or(Some(Vec::new()), |e| self.extracts(e));
        let checks = r.check.as_ref().map_or(Some(Vec::new()), |c| self.checks(c));
        let write = match &r.write {
            None => Some(None),
            Some(w) => self.write(w).map(Some),
        };
        let (location, written) = location?;
        let name = match &r.name {
            Some(name) => name.get_ref().clone(),
            None => format!("{method} {written}"),
        };
        // Fixed query values are encoded into the location once; templated ones are encoded
        // per request, once rendered.
        let templated = query.iter().any(|(_, v)| v.contains("{{") || v.contains("{%"));
        let (location, query) = match templated {
            false => (
                match location {
                    Location::Path(path) => Location::Path(with_query(path, &query)),
                    Location::Url(url) => Location::Url(with_query(url, &query)),
                },
                Vec::new(),
            ),
            true => (location, self.pair_templates(&query)?),
        };
        // An unnamed check is named after its request too, so two requests' `status 200`
        // checks keep apart in the results.
        let mut checks = checks?;
        for check in &mut checks {
            if check.name.is_empty() {
                check.name = format!("{name}: {}", check.condition.describe());
            }
        }
        Some(RequestStepSpec {
            name,
            method,
            location,
            query,
            headers,
            body,
            extract: extract?,
            checks,
            target: host,
            write: write?,
        })
    }

    /// The host a request goes to: its `target = "NAME"`, or the target whose base URL its
    /// fixed `url` is on, or the default.
    fn host_of(&mut self, r: &RawRequest) -> Option<usize> {
        if let Some(name) = &r.target {
            let found = self.hosts.iter().position(|(n, _)| !n.is_empty() && n == name.get_ref());
            if found.is_none() {
                let known: Vec<&str> = self.hosts.iter().map(|(n, _)| n.as_str()).filter(|n| !n.is_empty()).collect();
                let help = match known.as_slice() {
                    [] => "this plan has one host, [target]: add [targets.NAME] tables to send to several".to_string(),
                    names => format!("targets in this plan: {}", names.join(", ")),
                };
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        name.span(),
                        format!("no target is named {:?}", name.get_ref()),
                    )
                    .with_help(help),
                );
            }
            return found;
        }
        let url = r.url.as_ref().map(|u| u.get_ref()).filter(|u| !u.contains("{{") && !u.contains("{%"));
        let origin = url.and_then(|u| url::Url::parse(u).ok()).map(|u| u.origin());
        let on = |base: &Option<String>| {
            base.as_deref().and_then(|b| url::Url::parse(b).ok()).is_some_and(|b| Some(b.origin()) == origin)
        };
        Some(self.hosts.iter().skip(1).position(|(_, t)| on(&t.base_url)).map_or(0, |i| i + 1))
    }

    /// Header values as templates, in file order, names checked as the engine will send them.
    pub(super) fn template_headers(&mut self, map: &Spanned<RawMap<String>>) -> Vec<(String, Template)> {
        let mut entries: Vec<_> = map.get_ref().iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        let mut headers = Vec::new();
        for (name, value) in entries {
            let Some(template) = self.compile_template(value, "a header value") else { continue };
            let sample = if template.is_static() { value.get_ref().clone() } else { "x".to_string() };
            let pair = (name.get_ref().clone(), sample);
            match encode_request("GET", "/", "h", std::slice::from_ref(&pair), b"", true) {
                Ok(_) => headers.push((name.get_ref().clone(), template)),
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

    /// `path` or `url` (exactly one), and the text as written for the default name.
    fn location(&mut self, raw: &Spanned<RawRequest>, target: &TargetSpec, host: usize) -> Option<(Location, String)> {
        // `--base-url` replaces the default host's base URL only.
        let given = if host == 0 { self.options.base_url.clone() } else { None };
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
                let template = self.compile_template(path, "the path")?;
                let text = path.get_ref();
                if !text.starts_with('/') {
                    self.push(Diagnostic::new(
                        DiagnosticKind::Invalid,
                        path.span(),
                        format!("path {text:?} must start with /"),
                    ));
                    return None;
                }
                if template.is_static() {
                    if let Err(e) = encode_request("GET", text, "h", &[], b"", true) {
                        self.push(Diagnostic::new(DiagnosticKind::Invalid, path.span(), e.to_string()));
                        return None;
                    }
                }
                if target.base_url.is_none() && given.is_none() {
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
                let template = self.compile_template(url, "the url")?;
                if template.is_static() {
                    let parsed = self.url(url, "url")?;
                    let base = given.as_ref().or(target.base_url.as_ref());
                    if let Some(base) = base.and_then(|b| url::Url::parse(b).ok()) {
                        if parsed.origin() != base.origin() {
                            self.push(
                                Diagnostic::new(
                                    DiagnosticKind::Invalid,
                                    url.span(),
                                    format!(
                                        "{:?} is on another host than base_url {base}, and no target names its host",
                                        url.get_ref()
                                    ),
                                )
                                .with_help("use a path, or add [targets.NAME] with base_url on that host"),
                            );
                            return None;
                        }
                    }
                }
                Some((Location::Url(url.get_ref().clone()), url.get_ref().clone()))
            }
        }
    }

    /// The body and the Content-Type it implies; `None` when it is invalid.
    fn body(&mut self, r: &RawRequest) -> Option<(BodySpec, Option<&'static str>)> {
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
        if let Some(f) = &r.random_body {
            given.push(("random_body", self.key(f)));
        }
        if let Some(f) = &r.body_file {
            given.push(("body_file", self.key(f)));
        }
        if let Some(m) = &r.multipart {
            given.push(("multipart", self.key(m)));
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
                    .with_help("a request has one body: body (as is), json, form, multipart, body_file or random_body"),
                );
            }
            return None;
        }
        if let Some(body) = &r.body {
            let template = self.compile_template(body, "the body")?;
            return Some((body_of(template, body.get_ref()), None));
        }
        if let Some(json) = &r.json {
            let value = self.json(json)?;
            // Each string is a template of its own, rendered and escaped as a JSON string.
            let span = json.span();
            let template = JsonTemplate::of(&value, &mut |text: &str| {
                self.compile_template_in(&span, text, "a json string").ok_or(())
            })
            .ok()?;
            let body = match template.is_fixed() {
                true => BodySpec::Fixed(value.to_string().into_bytes()),
                false => BodySpec::Json(template),
            };
            return Some((body, Some("application/json")));
        }
        if let Some(form) = &r.form {
            let pairs = self.pairs(form, "form values");
            let templated = pairs.iter().any(|(_, v)| v.contains("{{") || v.contains("{%"));
            let body = match templated {
                false => BodySpec::Fixed(with_query(String::new(), &pairs).trim_start_matches('?').as_bytes().to_vec()),
                true => BodySpec::Form(self.pair_templates(&pairs)?),
            };
            return Some((body, Some("application/x-www-form-urlencoded")));
        }
        if let Some(file) = &r.body_file {
            let bytes = self.read_file(file, "body_file")?;
            return Some((BodySpec::Fixed(bytes), None));
        }
        if let Some(parts) = &r.multipart {
            return self.multipart(parts).map(|body| (body, Some(pummel_engine::flow::multipart::CONTENT_TYPE)));
        }
        if let Some(size) = &r.random_body {
            let text = self.options.object_size.clone().unwrap_or_else(|| size.get_ref().0.clone());
            return match pummel_engine::flow::payload::parse_size(&text) {
                Ok(bytes) => Some((BodySpec::Random(bytes), Some("application/octet-stream"))),
                Err(e) => {
                    self.push(
                        Diagnostic::new(DiagnosticKind::Invalid, size.span(), format!("random_body: {e}"))
                            .with_help("expected a size like 1024, \"64KiB\" or \"1MiB\" (--object-size overrides it)"),
                    );
                    None
                }
            };
        }
        Some((BodySpec::Fixed(Vec::new()), None))
    }

    /// The bytes of `file` (relative to the plan file), read now, once; an error at its place
    /// when it cannot be read.
    fn read_file(&mut self, file: &Spanned<String>, what: &str) -> Option<Vec<u8>> {
        let path = self.resolve(file.get_ref());
        match std::fs::read(&path) {
            Ok(bytes) => Some(bytes),
            Err(e) => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        file.span(),
                        format!("{what}: cannot read {}: {e}", path.display()),
                    )
                    .with_help("a path relative to the plan file"),
                );
                None
            }
        }
    }

    /// `multipart = [...]`: each part a named field (`value`) or file; encoded once when every
    /// field is fixed.
    fn multipart(&mut self, parts: &Spanned<RawList<RawPart>>) -> Option<BodySpec> {
        use pummel_engine::flow::multipart::{Part, render};
        let mut out = Vec::new();
        let mut valid = true;
        for part in parts.get_ref() {
            let p = part.get_ref();
            let Some(name) = &p.name else {
                self.push(
                    Diagnostic::new(DiagnosticKind::Missing, part.span(), "a multipart part needs a `name`").with_help(
                        "expected { name = \"title\", value = \"...\" } or { name = \"file\", file = \"photo.jpg\" }",
                    ),
                );
                valid = false;
                continue;
            };
            match (&p.value, &p.file) {
                (Some(value), None) => match self.compile_template(value, "a multipart value") {
                    Some(template) => out.push(Part::Field { name: name.get_ref().clone(), value: template }),
                    None => valid = false,
                },
                (None, Some(file)) => match self.read_file(file, "multipart file") {
                    Some(bytes) => {
                        let own_name = std::path::Path::new(file.get_ref())
                            .file_name()
                            .map(|n| n.to_string_lossy().to_string())
                            .unwrap_or_else(|| file.get_ref().clone());
                        out.push(Part::File {
                            name: name.get_ref().clone(),
                            filename: p.filename.as_ref().map_or(own_name, |f| f.get_ref().clone()),
                            content_type: p
                                .content_type
                                .as_ref()
                                .map_or_else(|| "application/octet-stream".to_string(), |c| c.get_ref().clone()),
                            bytes: std::sync::Arc::from(bytes),
                        });
                    }
                    None => valid = false,
                },
                _ => {
                    self.push(
                        Diagnostic::new(
                            DiagnosticKind::Invalid,
                            part.span(),
                            "a multipart part has either `value` or `file`",
                        )
                        .with_help("a text field: value = \"...\"; an upload: file = \"photo.jpg\""),
                    );
                    valid = false;
                }
            }
        }
        if !valid {
            return None;
        }
        if out.iter().all(Part::is_static) {
            // Nothing changes per request: encoded once, sent as is.
            let globals = std::sync::Arc::new(pummel_engine::flow::template::Globals::new(&Default::default()));
            let vars = pummel_engine::flow::template::Vars::new(globals, 0);
            return render(&out, &vars).ok().map(BodySpec::Fixed);
        }
        Some(BodySpec::Multipart(out))
    }

    /// A TOML value as JSON; dates have no JSON form and are refused.
    fn json(&mut self, value: &Spanned<toml::Value>) -> Option<serde_json::Value> {
        match to_json(value.get_ref()) {
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

    /// Query or form pairs in file order; values may be templates (inserted as rendered).
    fn pairs(&mut self, map: &Spanned<RawMap<Scalar>>, what: &str) -> Vec<(String, String)> {
        let mut entries: Vec<_> = map.get_ref().iter().collect();
        entries.sort_by_key(|(k, _)| k.span().start);
        entries
            .into_iter()
            .filter_map(|(name, value)| {
                self.compile_template_in(&value.span(), &value.get_ref().0, what)?;
                Some((name.get_ref().clone(), value.get_ref().0.clone()))
            })
            .collect()
    }

    /// Query or form pairs as templates (validated already by `pairs`); keys are encoded.
    fn pair_templates(&mut self, pairs: &[(String, String)]) -> Option<Vec<(String, Template)>> {
        let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
        pairs.iter().map(|(k, v)| Template::compile(v).ok().map(|t| (encode(k), t))).collect()
    }

    /// `extract = { token = { json = "$.token" }, id = { header = "X-Id" } }`; `None` on errors.
    fn extracts(&mut self, map: &Spanned<RawMap<RawExtract>>) -> Option<Vec<Extractor>> {
        let mut out = Vec::new();
        let mut ok = true;
        for (name, raw) in map.get_ref() {
            match self.extract(name, raw) {
                Some(e) => out.push(e),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    pub(super) fn extract(&mut self, name: &Spanned<String>, raw: &Spanned<RawExtract>) -> Option<Extractor> {
        if !self.variable_name(name) {
            return None;
        }
        let e = raw.get_ref();
        const HELP: &str = "expected { json = \"$.token\" }, { header = \"X-Id\" }, { regex = \"id=(\\\\d+)\" } or { header = \"Location\", regex = \"/items/(\\\\d+)\" }";
        let regex = match &e.regex {
            Some(r) => Some(self.pattern(r, compile_regex(r.get_ref()))?),
            None => None,
        };
        let source = match (&e.json, &e.header, regex) {
            (Some(path), None, None) => ExtractSource::Json(self.pattern(path, JsonPath::compile(path.get_ref()))?),
            (None, Some(header), None) => ExtractSource::Header(header.get_ref().clone()),
            (None, Some(header), Some(regex)) => ExtractSource::HeaderRegex(header.get_ref().clone(), regex),
            (None, None, Some(regex)) => ExtractSource::BodyRegex(regex),
            (None, None, None) => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Missing,
                        raw.span(),
                        format!("extract {:?} says nothing about where the value is", name.get_ref()),
                    )
                    .with_help(HELP),
                );
                return None;
            }
            _ => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Conflict,
                        raw.span(),
                        "`json` cannot be used with `header` or `regex` in one extract",
                    )
                    .with_help(HELP),
                );
                return None;
            }
        };
        let default = e.default.as_ref().map(|d| d.get_ref().0.clone());
        Some(Extractor { variable: name.get_ref().clone(), source, default })
    }

    /// A compiled JSONPath or regex, or a diagnostic pointing into it.
    fn pattern<T>(&mut self, value: &Spanned<String>, compiled: Result<T, PatternError>) -> Option<T> {
        match compiled {
            Ok(t) => Some(t),
            Err(e) => {
                let text = value.get_ref();
                let at = self.offset_in(&value.span(), text, e.offset.min(text.len()));
                let end = if at == value.span().start { value.span().end } else { at + 1 };
                self.push(Diagnostic::new(
                    DiagnosticKind::Invalid,
                    at..end,
                    format!("invalid pattern {text:?}: {}", e.message),
                ));
                None
            }
        }
    }

    /// `check = [ { status = 201 }, { json = "$.id", exists = true, name = "has id" } ]`.
    fn checks(&mut self, list: &Spanned<RawList<RawCheck>>) -> Option<Vec<Check>> {
        let mut out = Vec::new();
        let mut ok = true;
        for raw in list.get_ref() {
            match self.check(raw) {
                Some(c) => out.push(c),
                None => ok = false,
            }
        }
        ok.then_some(out)
    }

    fn check(&mut self, raw: &Spanned<RawCheck>) -> Option<Check> {
        let c = raw.get_ref();
        const HELP: &str = "a check is one of { status = 201 }, { header = \"Content-Type\", contains = \"json\" }, { json = \"$.id\", exists = true }, { json = \"$.ok\", equals = true }, { body_contains = \"ok\" }, { body_regex = \"...\" }, { latency = \"200ms\" }";
        // One condition per check: a second one would otherwise go unchecked.
        let subjects: Vec<(&str, Range<usize>)> = [
            c.status.as_ref().map(|v| ("status", self.key(v))),
            c.header.as_ref().map(|v| ("header", self.key(v))),
            c.json.as_ref().map(|v| ("json", self.key(v))),
            c.body_contains.as_ref().map(|v| ("body_contains", self.key(v))),
            c.body_regex.as_ref().map(|v| ("body_regex", self.key(v))),
            c.latency.as_ref().map(|v| ("latency", self.key(v))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let tests: Vec<(&str, Range<usize>)> = [
            c.equals.as_ref().map(|v| ("equals", self.key(v))),
            c.contains.as_ref().map(|v| ("contains", self.key(v))),
            c.regex.as_ref().map(|v| ("regex", self.key(v))),
            c.exists.as_ref().map(|v| ("exists", self.key(v))),
        ]
        .into_iter()
        .flatten()
        .collect();
        let mut conflicts = Vec::new();
        let mut sorted = subjects.clone();
        sorted.sort_by_key(|(_, span)| span.start);
        for (name, span) in sorted.iter().skip(1) {
            conflicts.push((span.clone(), format!("`{name}` cannot be used with `{}` in one check", sorted[0].0)));
        }
        let mut sorted_tests = tests.clone();
        sorted_tests.sort_by_key(|(_, span)| span.start);
        for (name, span) in sorted_tests.iter().skip(1) {
            conflicts
                .push((span.clone(), format!("`{name}` cannot be used with `{}` in one check", sorted_tests[0].0)));
        }
        let subject = sorted.first().map(|(n, _)| *n);
        for (name, span) in &sorted_tests {
            let fits = match subject {
                Some("header") => true,
                Some("json") => matches!(*name, "equals" | "exists"),
                _ => false,
            };
            if !fits {
                conflicts.push((
                    span.clone(),
                    format!(
                        "`{name}` needs `header`{} in the same check",
                        if *name == "equals" || *name == "exists" { " or `json`" } else { "" }
                    ),
                ));
            }
        }
        if !conflicts.is_empty() {
            for (span, message) in conflicts {
                self.push(Diagnostic::new(DiagnosticKind::Conflict, span, message).with_help(
                    "write one condition per check: check = [ { status = 200 }, { body_contains = \"ok\" } ]",
                ));
            }
            return None;
        }
        let condition = if let Some(status) = &c.status {
            match status.get_ref().0.parse::<StatusSet>() {
                Ok(set) => Condition::Status(set),
                Err(e) => {
                    self.push(Diagnostic::new(DiagnosticKind::Invalid, status.span(), format!("status: {e}")));
                    return None;
                }
            }
        } else if let Some(header) = &c.header {
            let name = header.get_ref().clone();
            if let Some(v) = &c.equals {
                Condition::HeaderEquals { name, value: scalar_text(v.get_ref()) }
            } else if let Some(text) = &c.contains {
                Condition::HeaderContains { name, text: text.get_ref().clone() }
            } else if let Some(r) = &c.regex {
                Condition::HeaderRegex { name, regex: self.pattern(r, compile_regex(r.get_ref()))? }
            } else {
                Condition::HeaderExists { name, exists: c.exists.as_ref().is_none_or(|e| *e.get_ref()) }
            }
        } else if let Some(path) = &c.json {
            let path_c = self.pattern(path, JsonPath::compile(path.get_ref()))?;
            match &c.equals {
                Some(v) => Condition::JsonEquals { path: path_c, value: to_json(v.get_ref()).ok()? },
                None => Condition::JsonExists { path: path_c, exists: c.exists.as_ref().is_none_or(|e| *e.get_ref()) },
            }
        } else if let Some(text) = &c.body_contains {
            Condition::BodyContains(text.get_ref().clone())
        } else if let Some(r) = &c.body_regex {
            Condition::BodyRegex(self.pattern(r, compile_regex(r.get_ref()))?)
        } else if let Some(latency) = &c.latency {
            Condition::LatencyBelow(self.duration(latency, "latency")?)
        } else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this check checks nothing").with_help(HELP),
            );
            return None;
        };
        // Unnamed (empty) checks are named after their request and condition by `request`.
        let name = c.name.as_ref().map_or_else(String::new, |n| n.get_ref().clone());
        Some(Check { name, fail_request: c.fail.as_ref().is_none_or(|f| *f.get_ref()), condition })
    }

    /// `ws_connect = { url = "ws://..." }` or `{ path = "/ws" }` (joined with the base URL).
    fn ws_connect(&mut self, raw: &Spanned<RawWsConnect>, target: &TargetSpec) -> Option<StepSpec> {
        let c = raw.get_ref();
        let url = match (&c.url, &c.path) {
            (Some(url), None) => {
                let text = url.get_ref();
                if !(text.starts_with("ws://") || text.starts_with("wss://")) {
                    self.push(
                        Diagnostic::new(
                            DiagnosticKind::Invalid,
                            url.span(),
                            format!("{text:?} is not a ws:// or wss:// URL"),
                        )
                        .with_help("expected url = \"ws://127.0.0.1:8090/ws\", or path = \"/ws\" joined with base_url"),
                    );
                    return None;
                }
                // One plan, one host: ws:// and wss:// match the base URL's http:// and https://.
                let base = self.options.base_url.as_ref().or(target.base_url.as_ref());
                if let (Some(base), Ok(mut parsed)) =
                    (base.and_then(|b| url::Url::parse(b).ok()), url::Url::parse(text))
                {
                    let http = if parsed.scheme() == "wss" { "https" } else { "http" };
                    if parsed.set_scheme(http).is_ok() && parsed.origin() != base.origin() {
                        self.push(
                            Diagnostic::new(
                                DiagnosticKind::Invalid,
                                url.span(),
                                format!("{text:?} is on another host than base_url {base}: one plan sends to one host"),
                            )
                            .with_help("use path = \"/ws\", or split the plan into one file per host"),
                        );
                        return None;
                    }
                }
                text.clone()
            }
            (None, Some(path)) => {
                let Some(base) = self.options.base_url.as_ref().or(target.base_url.as_ref()) else {
                    self.push(Diagnostic::new(DiagnosticKind::Missing, path.span(), "`path` needs [target].base_url"));
                    return None;
                };
                let joined = join_url(base, path.get_ref());
                joined.replacen("https://", "wss://", 1).replacen("http://", "ws://", 1)
            }
            (Some(url), Some(_)) => {
                self.conflict(url, "url", "path", "give url = \"ws://...\" or path = \"/ws\"");
                return None;
            }
            (None, None) => {
                self.push(Diagnostic::new(DiagnosticKind::Missing, raw.span(), "ws_connect has no `url` or `path`"));
                return None;
            }
        };
        let headers = c.headers.as_ref().map(|h| self.template_headers(h)).unwrap_or_default();
        let name = c.name.as_ref().map_or_else(|| format!("ws connect {url}"), |n| n.get_ref().clone());
        let span = c.url.as_ref().or(c.path.as_ref()).map_or_else(|| raw.span(), |s| s.span());
        let url = self.compile_template_in(&span, &url, "the URL")?;
        Some(StepSpec::WsConnect { name, url, headers })
    }

    /// `ws_send = { text = "..." }` or `{ json = { ... } }`.
    fn ws_send(&mut self, raw: &Spanned<RawWsSend>) -> Option<StepSpec> {
        let m = raw.get_ref();
        let text = match (&m.text, &m.json) {
            (Some(text), None) => self.compile_template(text, "the message")?,
            (None, Some(json)) => {
                let text = self.json(json)?.to_string();
                self.compile_template_in(&json.span(), &text, "the message")?
            }
            (Some(_), Some(json)) => {
                self.conflict(json, "json", "text", "a message is text or json");
                return None;
            }
            (None, None) => {
                self.push(Diagnostic::new(DiagnosticKind::Missing, raw.span(), "ws_send has no `text` or `json`"));
                return None;
            }
        };
        let name = m.name.as_ref().map_or_else(|| format!("ws send {}", short(text.text())), |n| n.get_ref().clone());
        Some(StepSpec::WsSend { name, text })
    }

    /// `ws_expect = { json = "$.result", equals = ..., regex = "...", match_id = "$.id", timeout = "5s" }`.
    fn ws_expect(&mut self, raw: &Spanned<RawWsExpect>) -> Option<StepSpec> {
        let e = raw.get_ref();
        let json = match &e.json {
            Some(path) => {
                let compiled = self.pattern(path, JsonPath::compile(path.get_ref()))?;
                let equals = match &e.equals {
                    Some(v) if is_template(v.get_ref()) => None,
                    Some(v) => Some(to_json(v.get_ref()).ok()?),
                    None => None,
                };
                Some((compiled, equals))
            }
            None => None,
        };
        let equals_template = match &e.equals {
            Some(v) if is_template(v.get_ref()) => {
                let text = v.get_ref().as_str().unwrap_or_default();
                Some(self.compile_template_in(&v.span(), text, "equals")?)
            }
            _ => None,
        };
        let (regex, regex_template) = match &e.regex {
            Some(r) if r.get_ref().contains("{{") || r.get_ref().contains("{%") => {
                (None, Some(self.compile_template(r, "the regex")?))
            }
            Some(r) => (Some(self.pattern(r, compile_regex(r.get_ref()))?), None),
            None => (None, None),
        };
        let match_id = match &e.match_id {
            Some(path) => Some(self.pattern(path, JsonPath::compile(path.get_ref()))?),
            None => None,
        };
        let timeout = match &e.timeout {
            Some(t) => self.duration(t, "timeout")?,
            None => DEFAULT_WS_EXPECT_TIMEOUT,
        };
        if let (Some(equals), None) = (&e.equals, &e.json) {
            let span = self.key(equals);
            self.push(
                Diagnostic::new(DiagnosticKind::Conflict, span, "`equals` needs `json` in ws_expect")
                    .with_help("expected ws_expect = { json = \"$.result\", equals = \"ok\" }"),
            );
            return None;
        }
        let name = e.name.as_ref().map_or_else(|| "ws expect".to_string(), |n| n.get_ref().clone());
        let matcher = WsMatcher { json, regex, regex_template, equals_template, match_id };
        Some(StepSpec::WsExpect { name, matcher, timeout, extract: Vec::new() })
    }

    /// `ws_close = true` or `{ code = 1000, reason = "bye" }`.
    fn ws_close(&mut self, raw: &Spanned<toml::Value>) -> Option<WsCloseStep> {
        let normal = WsCloseStep { code: 1000, reason: String::new() };
        match raw.get_ref() {
            toml::Value::Boolean(true) => Some(normal),
            toml::Value::Table(t) => {
                let code = t.get("code").and_then(toml::Value::as_integer).unwrap_or(1000);
                let reason = t.get("reason").and_then(toml::Value::as_str).unwrap_or("").to_string();
                let unknown: Vec<&String> = t.keys().filter(|k| !matches!(k.as_str(), "code" | "reason")).collect();
                if !unknown.is_empty() || !(1000..=4999).contains(&code) {
                    self.push(
                        Diagnostic::new(DiagnosticKind::Invalid, raw.span(), "invalid ws_close").with_help(
                            "expected ws_close = true or { code = 1000, reason = \"bye\" } (code 1000-4999)",
                        ),
                    );
                    return None;
                }
                Some(WsCloseStep { code: code as u16, reason })
            }
            _ => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Type, raw.span(), "invalid ws_close")
                        .with_help("expected ws_close = true or { code = 1000, reason = \"bye\" }"),
                );
                None
            }
        }
    }
}

/// A fixed or templated body.
fn body_of(template: Template, text: &str) -> BodySpec {
    if template.is_static() { BodySpec::Fixed(text.as_bytes().to_vec()) } else { BodySpec::Template(template) }
}

/// At most 30 characters of a message, for a default name.
fn short(text: &str) -> String {
    let mut s: String = text.chars().take(30).collect();
    if s.len() < text.len() {
        s.push('…');
    }
    s
}

/// A TOML scalar as text (check values).
fn scalar_text(value: &toml::Value) -> String {
    match value {
        toml::Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Appends fixed query pairs to a path or URL, URL-encoded.
fn with_query(location: String, pairs: &[(String, String)]) -> String {
    if pairs.is_empty() {
        return location;
    }
    let encode = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
    let parts: Vec<String> = pairs.iter().map(|(k, v)| format!("{}={}", encode(k), encode(v))).collect();
    let separator = if location.contains('?') { '&' } else { '?' };
    format!("{location}{separator}{}", parts.join("&"))
}

/// Converts TOML to JSON; errs on dates and NaN.
fn to_json(value: &toml::Value) -> Result<serde_json::Value, &'static str> {
    use serde_json::Value as J;
    Ok(match value {
        toml::Value::String(s) => J::String(s.clone()),
        toml::Value::Integer(i) => J::from(*i),
        toml::Value::Float(f) => J::Number(serde_json::Number::from_f64(*f).ok_or("a NaN or infinite number")?),
        toml::Value::Boolean(b) => J::Bool(*b),
        toml::Value::Datetime(_) => return Err("a date"),
        toml::Value::Array(items) => J::Array(items.iter().map(to_json).collect::<Result<_, _>>()?),
        toml::Value::Table(table) => {
            let mut object = serde_json::Map::new();
            for (k, v) in table {
                object.insert(k.clone(), to_json(v)?);
            }
            J::Object(object)
        }
    })
}

/// A TOML string holding a template (`"{{ user }}"`).
fn is_template(value: &toml::Value) -> bool {
    value.as_str().is_some_and(|s| s.contains("{{") || s.contains("{%"))
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
