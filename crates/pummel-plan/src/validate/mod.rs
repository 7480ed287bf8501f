//! Raw form → validated form: parses every duration, rate, rule, URL, header, template,
//! JSONPath and regex, settles defaults and conflicts, and reports every mistake with its
//! position, all at once.
//!
//! This file holds the walk over the top-level tables and the helpers every part uses;
//! `scenario.rs` checks load models, `request.rs` flows, steps and requests.

mod fault;
mod request;
mod scenario;
mod verify;

use std::collections::{BTreeMap, BTreeSet};
use std::ops::Range;
use std::time::Duration;

use pummel_engine::plan::{PlanError, StatusSet, Target};
use pummel_results::duration::parse_duration;
use pummel_results::error_kind::ErrorKind;
use pummel_results::expr::{Expr, Metric};
use toml::Spanned;

use crate::Options;
use crate::de::KeyIndex;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{DurationText, ExprText, RawList, RawMap, RawPlan, RawStep, RawTarget};
use crate::spec::{
    DEFAULT_ABORT_WINDOW, DEFAULT_CONNECT_TIMEOUT, DEFAULT_REDIRECTS, DEFAULT_TIMEOUT, FeederSpec, Phase, PlanSpec,
    ScenarioSpec, SigV4Spec, StepSpec, TargetSpec,
};
use pummel_engine::flow::feeder::{Feeder, FeederFormat, FeederMode, WhenExhausted};
use pummel_engine::flow::template::BUILTIN_VARIABLES;

/// Validates `raw`; the spec when the file is valid, and every diagnostic found.
pub(crate) fn validate(
    raw: &RawPlan,
    keys: &KeyIndex,
    source: &str,
    options: &Options,
) -> (Option<PlanSpec>, Vec<Diagnostic>) {
    let mut v = Validator {
        source,
        keys,
        options,
        diagnostics: Vec::new(),
        defined: BTreeSet::new(),
        hosts: Vec::new(),
        variables: BTreeMap::new(),
        files: Vec::new(),
    };
    let mut variables = v.variables(raw);
    variables.extend(options.vars.clone());
    v.variables = variables.clone();
    let feeders = v.feeders(raw);
    // Names templates may read: built-ins, variables, feeders, and every extracted value.
    v.defined.extend(BUILTIN_VARIABLES.iter().map(|s| s.to_string()));
    v.defined.extend(variables.keys().cloned());
    v.defined.extend(raw.feeders.iter().flat_map(|f| f.get_ref().keys().map(|k| k.get_ref().clone())));
    for scenario in &raw.scenario {
        if let Some(flow) = &scenario.get_ref().flow {
            extracted_names(flow.get_ref(), &mut v.defined);
        }
    }
    let (target, target_name, other_targets) = v.targets(raw);
    v.hosts = std::iter::once((target_name.clone(), target.clone())).chain(other_targets.iter().cloned()).collect();
    let scenarios = v.scenarios(&raw.scenario, &target);
    let (thresholds, named_thresholds) = v.thresholds(raw, scenarios.as_deref().unwrap_or(&[]));
    let (abort_when, abort_window) = v.abort(raw);
    let seed = raw.seed.as_ref().and_then(|s| v.seed(s));
    let faults = v.faults(raw);
    let verify = v.verify(raw, scenarios.as_deref().unwrap_or(&[]), &target);
    v.write_rules(raw, scenarios.as_deref(), raw.verify.is_some());
    let spec = match (v.diagnostics.is_empty(), scenarios) {
        (true, Some(scenarios)) => Some(PlanSpec {
            target,
            target_name,
            other_targets,
            scenarios,
            thresholds,
            named_thresholds,
            abort_when,
            abort_window,
            variables,
            feeders,
            seed,
            faults,
            files: v.files,
            verify,
        }),
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
    /// Names templates may read.
    defined: BTreeSet<String>,
    /// Every host, named: the default first (`[target]` or the first `[targets.NAME]`).
    hosts: Vec<(String, TargetSpec)>,
    /// `[variables]` and `-e` values, for values rendered at validation (`users = "{{ users }}"`).
    variables: BTreeMap<String, String>,
    /// Every file the plan refers to, as written and where it is (`PlanSpec::files`).
    files: Vec<(String, std::path::PathBuf)>,
}

impl Validator<'_> {
    /// Where the file the plan calls `reference` is; remembered in `files`.
    fn resolve(&mut self, reference: &str) -> std::path::PathBuf {
        let path = self.options.resolve(reference);
        if !self.files.iter().any(|(r, _)| r == reference) {
            self.files.push((reference.to_string(), path.clone()));
        }
        path
    }

    fn push(&mut self, diagnostic: Diagnostic) {
        self.diagnostics.push(diagnostic);
    }

    /// `seed = N`: a whole number from 0 up.
    fn seed(&mut self, seed: &Spanned<i64>) -> Option<u64> {
        let value = u64::try_from(*seed.get_ref()).ok();
        if value.is_none() {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, seed.span(), format!("seed {} is negative", seed.get_ref()))
                    .with_help("expected a whole number from 0 up, e.g. seed = 7"),
            );
        }
        value
    }

    /// The span of the key holding `value`.
    fn key<T>(&self, value: &Spanned<T>) -> Range<usize> {
        self.keys.key_of(&value.span())
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

    /// A template rendered once, now, with the plan's variables only (load-model values).
    fn render_with_variables(&mut self, span: Range<usize>, text: &str, what: &str) -> Option<String> {
        let template = match pummel_engine::flow::template::Template::compile(text) {
            Ok(t) => t,
            Err(e) => {
                self.push(Diagnostic::new(DiagnosticKind::Invalid, span, format!("{what}: {}", e.message)));
                return None;
            }
        };
        let globals = std::sync::Arc::new(pummel_engine::flow::template::Globals::new(&self.variables));
        match template.render_to_string(&pummel_engine::flow::template::Vars::new(globals, 0)) {
            Ok(text) => Some(text),
            Err(e) => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, span, format!("{what}: {e}"))
                        .with_help("load-model values may use [variables] and -e values only"),
                );
                None
            }
        }
    }

    /// A duration longer than zero; `"{{ name }}"` takes it from the plan's variables.
    fn duration(&mut self, value: &Spanned<DurationText>, what: &str) -> Option<Duration> {
        let written = &value.get_ref().0;
        let text = if written.contains("{{") {
            self.render_with_variables(value.span(), written, what)?
        } else {
            written.clone()
        };
        match parse_duration(&text) {
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

    /// `accept_encoding = [...]`: codings pummel decodes, as the header's value; `None` after
    /// an error (reported) or for an empty list.
    fn accept_encoding(&mut self, list: &Spanned<RawList<String>>) -> Option<String> {
        let known = pummel_engine::inspect::encoding::ALL;
        let mut codings = Vec::new();
        for coding in list.get_ref() {
            let name = coding.get_ref().trim().to_ascii_lowercase();
            if known.contains(&name.as_str()) || name == "identity" {
                codings.push(name);
            } else {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        coding.span(),
                        format!("unknown coding {:?}", coding.get_ref()),
                    )
                    .with_help(format!("expected some of {}", known.join(", "))),
                );
            }
        }
        (!codings.is_empty()).then(|| codings.join(", "))
    }

    /// Headers of a table, in file order, each checked as the engine will send it.
    /// `[target].headers`, checked like a request's, kept as text (merged into each request).
    fn headers(&mut self, map: &Spanned<RawMap<String>>) -> Vec<(String, String)> {
        self.template_headers(map).into_iter().map(|(name, value)| (name, value.text().to_string())).collect()
    }

    /// `[target]` and `[targets.NAME]`: the default host (`[target]`, named `default`, or else
    /// the first named one in file order), its name (empty for a plan of one host), and the
    /// other hosts in file order.
    fn targets(&mut self, raw: &RawPlan) -> (TargetSpec, String, Vec<(String, TargetSpec)>) {
        let mut named: Vec<_> = raw.targets.as_ref().map(|t| t.get_ref().iter().collect()).unwrap_or_default();
        named.sort_by_key(|(name, _)| name.span().start);
        if named.is_empty() {
            return (self.target(raw.target.as_ref()), String::new(), Vec::new());
        }
        let (default, default_name, rest) = match &raw.target {
            Some(t) => (self.target(Some(t)), "default".to_string(), &named[..]),
            None => (self.target(Some(named[0].1)), named[0].0.get_ref().clone(), &named[1..]),
        };
        let mut others = Vec::new();
        for (name, table) in rest {
            if *name.get_ref() == default_name {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Conflict,
                        name.span(),
                        format!("[targets.{default_name}] is [target]"),
                    )
                    .with_help("[target] is the default host, named \"default\": give this one another name"),
                );
                continue;
            }
            self.host_keys_only(name.get_ref(), table.get_ref());
            let spec = self.target(Some(table));
            if spec.base_url.is_none() {
                let span = self.key(table);
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Missing,
                        span,
                        format!("[targets.{}] has no base_url", name.get_ref()),
                    )
                    .with_help("every target but the default needs base_url = \"http://host:port\""),
                );
            }
            others.push((name.get_ref().clone(), spec));
        }
        (default, default_name, others)
    }

    /// The keys of a `[targets.NAME]` other than the default: its own host, headers, codings,
    /// signing, timeouts, keep-alive and statuses; the HTTP version (a scenario's), cookies and
    /// redirects (a user's) are the default target's for every host.
    fn host_keys_only(&mut self, name: &str, t: &RawTarget) {
        let spans = [
            ("http_version", t.http_version.as_ref().map(|v| self.key(v))),
            ("streams", t.streams.as_ref().map(|v| self.key(v))),
            ("cookies", t.cookies.as_ref().map(|v| self.key(v))),
            ("redirects", t.redirects.as_ref().map(|v| self.key(v))),
        ];
        for (key, span) in spans {
            if let Some(span) = span {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::NotSupported,
                        span,
                        format!("`{key}` per target is not supported yet ([targets.{name}])"),
                    )
                    .with_help("the default target's value applies to every host: set it there"),
                );
            }
        }
    }

    fn target(&mut self, raw: Option<&Spanned<RawTarget>>) -> TargetSpec {
        let empty = RawTarget::default();
        let t = raw.map_or(&empty, |t| t.get_ref());
        let base_url = t.base_url.as_ref().and_then(|u| {
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
        let mut headers = t.headers.as_ref().map(|h| self.headers(h)).unwrap_or_default();
        if let Some(codings) = t.accept_encoding.as_ref().and_then(|list| self.accept_encoding(list)) {
            headers.retain(|(name, _)| !name.eq_ignore_ascii_case("accept-encoding"));
            headers.push(("Accept-Encoding".to_string(), codings));
        }
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
        let http2_streams = self.http_version(t.http_version.as_ref(), t.streams.as_ref(), None);
        if let (Some(k), Some(_)) = (&t.keepalive, http2_streams) {
            if !*k.get_ref() {
                self.http2_needs_keepalive(k);
            }
        }
        let sigv4 = t.auth.as_ref().and_then(|a| self.auth(a));
        let redirects = match &t.redirects {
            None => DEFAULT_REDIRECTS,
            Some(n) => u32::try_from(*n.get_ref()).unwrap_or_else(|_| {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        n.span(),
                        format!("redirects = {} is out of range", n.get_ref()),
                    )
                    .with_help("expected a whole number from 0 (follow none) up"),
                );
                DEFAULT_REDIRECTS
            }),
        };
        let cookies = t.cookies.as_ref().is_none_or(|c| *c.get_ref());
        TargetSpec {
            base_url,
            headers,
            timeout,
            connect_timeout,
            keepalive,
            ok_status,
            http2_streams,
            sigv4,
            redirects,
            cookies,
        }
    }

    /// `http_version = "1.1" | "2"` and `streams` of the target or of a scenario: the streams
    /// per connection for HTTP/2, `None` for HTTP/1.1. `inherited` is what the target says (for
    /// a scenario), taken for what the scenario does not say.
    pub(super) fn http_version(
        &mut self,
        version: Option<&Spanned<String>>,
        streams: Option<&Spanned<i64>>,
        inherited: Option<usize>,
    ) -> Option<usize> {
        let http2 = match version.map(|v| (v, v.get_ref().as_str())) {
            None => inherited.is_some(),
            Some((_, "1.1")) => false,
            Some((_, "2")) => true,
            Some((v, other)) => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, v.span(), format!("unknown http_version {other:?}"))
                        .with_help("expected \"1.1\" or \"2\""),
                );
                false
            }
        };
        let count = streams.and_then(|n| self.count(n, "streams"));
        if let (Some(n), false) = (streams, http2) {
            let span = self.key(n);
            self.push(Diagnostic::new(DiagnosticKind::Conflict, span, "`streams` needs http_version = \"2\""));
        }
        if count.is_some_and(|n| n > pummel_engine::plan::MAX_STREAMS as u64) {
            if let Some(n) = streams {
                self.push(Diagnostic::new(
                    DiagnosticKind::Invalid,
                    n.span(),
                    format!("at most {} streams per connection", pummel_engine::plan::MAX_STREAMS),
                ));
            }
        }
        http2.then(|| count.map_or(inherited.unwrap_or(1), |n| n as usize))
    }

    /// Reports `at` (a key): HTTP/2 multiplexes streams on connections it keeps open.
    pub(super) fn http2_needs_keepalive<T>(&mut self, at: &Spanned<T>) {
        let span = self.key(at);
        self.push(
            Diagnostic::new(
                DiagnosticKind::Conflict,
                span,
                "HTTP/2 keeps its connections open: not with keepalive = false",
            )
            .with_help("drop keepalive = false, or use http_version = \"1.1\""),
        );
    }

    /// `auth = { aws_sigv4 = { region, service, access_key_env, secret_key_env } }`.
    fn auth(&mut self, auth: &Spanned<crate::raw::RawAuth>) -> Option<SigV4Spec> {
        let Some(sigv4) = &auth.get_ref().aws_sigv4 else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, auth.span(), "`auth` names no scheme")
                    .with_help("expected auth = { aws_sigv4 = { region = \"us-east-1\", service = \"s3\" } }"),
            );
            return None;
        };
        let s = sigv4.get_ref();
        let Some(region) = &s.region else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, sigv4.span(), "aws_sigv4 has no `region`")
                    .with_help("expected region = \"us-east-1\""),
            );
            return None;
        };
        let text = |v: &Option<Spanned<String>>, default: &str| {
            v.as_ref().map_or(default.to_string(), |v| v.get_ref().clone())
        };
        Some(SigV4Spec {
            region: region.get_ref().clone(),
            service: text(&s.service, "s3"),
            access_key_env: text(&s.access_key_env, "AWS_ACCESS_KEY_ID"),
            secret_key_env: text(&s.secret_key_env, "AWS_SECRET_ACCESS_KEY"),
        })
    }

    fn scenarios(&mut self, list: &RawList<crate::raw::RawScenario>, target: &TargetSpec) -> Option<Vec<ScenarioSpec>> {
        if list.is_empty() {
            self.push(Diagnostic::new(DiagnosticKind::Missing, 0..0, "the plan has no [[scenario]]").with_help(
                "add one: [[scenario]] with rate = 200, duration = \"30s\", flow = [ { request = { path = \"/\" } } ]",
            ));
            return None;
        }
        let mut scenarios = Vec::new();
        let mut ok = true;
        for (index, raw) in list.iter().enumerate() {
            match self.scenario(raw, index, target) {
                Some(spec) => {
                    if let Some(earlier) = scenarios.iter().find(|s: &&ScenarioSpec| s.name == spec.name) {
                        let span = raw.get_ref().name.as_ref().map_or(raw.span(), |n| n.span());
                        self.push(Diagnostic::new(
                            DiagnosticKind::Conflict,
                            span,
                            format!("two scenarios are named {:?}", earlier.name),
                        ));
                        ok = false;
                    }
                    scenarios.push(spec);
                }
                None => ok = false,
            }
        }
        if ok {
            self.order(list, &scenarios);
            if !scenarios.iter().any(|s| s.phase == Phase::Load) {
                self.push(
                    Diagnostic::new(DiagnosticKind::Missing, 0..0, "the plan has no load scenario")
                        .with_help("setup and teardown scenarios run around a load: add a [[scenario]] without phase"),
                );
            }
        }
        ok.then_some(scenarios)
    }

    /// `after = "NAME"` names another scenario of the same phase, and never comes back.
    fn order(&mut self, list: &RawList<crate::raw::RawScenario>, scenarios: &[ScenarioSpec]) {
        for (raw, spec) in list.iter().zip(scenarios) {
            let Some(after) = &raw.get_ref().after else { continue };
            let named = scenarios.iter().find(|s| &s.name == after.get_ref());
            let problem = match named {
                None => Some((
                    format!("no scenario is named {:?}", after.get_ref()),
                    format!(
                        "names in this plan: {}",
                        scenarios.iter().map(|s| s.name.as_str()).collect::<Vec<_>>().join(", ")
                    ),
                )),
                Some(named) if named.name == spec.name => {
                    Some(("a scenario cannot start after itself".to_string(), "name another scenario".to_string()))
                }
                Some(named) if named.phase != spec.phase => Some((
                    format!("{:?} is a {} scenario, this one is {}", named.name, named.phase.name(), spec.phase.name()),
                    "phases already run in order (setup, load, teardown): after orders scenarios of one phase"
                        .to_string(),
                )),
                Some(_) => None,
            };
            if let Some((message, help)) = problem {
                self.push(Diagnostic::new(DiagnosticKind::Invalid, after.span(), message).with_help(help));
                continue;
            }
            // Follow the chain: a loop would never start.
            let mut at = spec;
            for _ in 0..scenarios.len() {
                match at.after.as_ref().and_then(|a| scenarios.iter().find(|s| &s.name == a)) {
                    Some(next) if next.name == spec.name => {
                        self.push(Diagnostic::new(
                            DiagnosticKind::Invalid,
                            after.span(),
                            format!("scenario {:?} waits for itself through after = ...", spec.name),
                        ));
                        break;
                    }
                    Some(next) => at = next,
                    None => break,
                }
            }
        }
    }

    /// `global = [...]` and per request name; a name no request has is an error (a typo would
    /// otherwise make a threshold that can never fail).
    fn thresholds(&mut self, raw: &RawPlan, scenarios: &[ScenarioSpec]) -> (Vec<Expr>, Vec<(String, Vec<Expr>)>) {
        let Some(table) = &raw.thresholds else { return (Vec::new(), Vec::new()) };
        let mut global = Vec::new();
        let mut named = Vec::new();
        let mut known: Vec<String> = Vec::new();
        for scenario in scenarios {
            step_names(&scenario.flow, &mut known);
        }
        for (name, list) in table.get_ref() {
            let exprs = self.exprs(list);
            if name.get_ref() == "global" {
                global = exprs;
            } else if scenarios.is_empty() || known.contains(name.get_ref()) {
                named.push((name.get_ref().clone(), exprs));
            } else {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        name.span(),
                        format!("no request or exchange is named {:?}", name.get_ref()),
                    )
                    .with_help(format!("names in this plan: {}", known.join(", "))),
                );
            }
        }
        (global, named)
    }

    fn abort(&mut self, raw: &RawPlan) -> (Vec<Expr>, Duration) {
        let Some(abort) = &raw.abort else { return (Vec::new(), DEFAULT_ABORT_WINDOW) };
        let abort = abort.get_ref();
        let when = abort.when.as_ref().map(|w| self.exprs(w)).unwrap_or_default();
        let window = abort.window.as_ref().and_then(|w| self.duration(w, "window")).unwrap_or(DEFAULT_ABORT_WINDOW);
        (when, window)
    }

    /// True when templates can read `name` (letters, digits, `_`); otherwise reports it.
    fn variable_name(&mut self, name: &Spanned<String>) -> bool {
        let valid = crate::is_variable_name(name.get_ref());
        if !valid {
            self.push(
                Diagnostic::new(
                    DiagnosticKind::Invalid,
                    name.span(),
                    format!("invalid variable name {:?}", name.get_ref()),
                )
                .with_help("a name is letters, digits and _, not starting with a digit"),
            );
        }
        valid
    }

    fn variables(&mut self, raw: &RawPlan) -> BTreeMap<String, String> {
        let mut variables = BTreeMap::new();
        let Some(table) = &raw.variables else { return variables };
        for (name, value) in table.get_ref() {
            self.variable_name(name);
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

    /// `[feeders.NAME]`: the file must exist and be readable; its columns are read now.
    fn feeders(&mut self, raw: &RawPlan) -> Vec<FeederSpec> {
        let Some(feeders) = &raw.feeders else { return Vec::new() };
        let mut out = Vec::new();
        for (name, feeder) in feeders.get_ref() {
            if !crate::is_variable_name(name.get_ref()) {
                self.push(Diagnostic::new(
                    DiagnosticKind::Invalid,
                    name.span(),
                    format!("invalid feeder name {:?}: letters, digits and _ only", name.get_ref()),
                ));
                continue;
            }
            let f = feeder.get_ref();
            let Some(file) = &f.file else {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Missing,
                        feeder.span(),
                        format!("feeder {:?} has no `file`", name.get_ref()),
                    )
                    .with_help("expected file = \"users.csv\" (relative to the plan file)"),
                );
                continue;
            };
            let path = self.resolve(file.get_ref());
            let format = match &f.format {
                None => match FeederFormat::from_path(&path) {
                    Some(format) => format,
                    None => {
                        self.push(
                            Diagnostic::new(
                                DiagnosticKind::Missing,
                                file.span(),
                                "cannot tell the format from the file name",
                            )
                            .with_help("add format = \"csv\" or \"jsonl\""),
                        );
                        continue;
                    }
                },
                Some(text) => match text.get_ref().as_str() {
                    "csv" => FeederFormat::Csv,
                    "jsonl" | "ndjson" => FeederFormat::JsonLines,
                    other => {
                        self.push(
                            Diagnostic::new(DiagnosticKind::Invalid, text.span(), format!("unknown format {other:?}"))
                                .with_help("expected \"csv\" or \"jsonl\""),
                        );
                        continue;
                    }
                },
            };
            let mode = match f.mode.as_ref().map(|m| (m, m.get_ref().as_str())) {
                None | Some((_, "sequential")) => FeederMode::Sequential,
                Some((_, "random")) => FeederMode::Random,
                Some((_, "unique")) => FeederMode::Unique,
                Some((m, other)) => {
                    self.push(
                        Diagnostic::new(DiagnosticKind::Invalid, m.span(), format!("unknown mode {other:?}"))
                            .with_help("expected \"sequential\", \"random\" or \"unique\""),
                    );
                    continue;
                }
            };
            let when_exhausted = match f.when_exhausted.as_ref().map(|m| (m, m.get_ref().as_str())) {
                None | Some((_, "wrap")) => WhenExhausted::Wrap,
                Some((_, "end")) => WhenExhausted::End,
                Some((m, other)) => {
                    self.push(
                        Diagnostic::new(DiagnosticKind::Invalid, m.span(), format!("unknown when_exhausted {other:?}"))
                            .with_help("expected \"wrap\" (start over) or \"end\" (users stop)"),
                    );
                    continue;
                }
            };
            match Feeder::open(name.get_ref(), &path, format, mode, when_exhausted) {
                Ok(opened) => out.push(FeederSpec {
                    name: name.get_ref().clone(),
                    path,
                    format,
                    mode,
                    when_exhausted,
                    columns: opened.columns().to_vec(),
                }),
                Err(e) => self.push(Diagnostic::new(
                    DiagnosticKind::Invalid,
                    file.span(),
                    format!("feeder {:?}: {e}", name.get_ref()),
                )),
            }
        }
        out
    }
}

/// Every variable an `extract` of this flow (or a nested one) defines.
pub(super) fn extracted_names(flow: &[Spanned<RawStep>], into: &mut BTreeSet<String>) {
    for step in flow {
        let s = step.get_ref();
        if let Some(extract) = s.request.as_ref().and_then(|r| r.get_ref().extract.as_ref()) {
            into.extend(extract.get_ref().keys().map(|k| k.get_ref().clone()));
        }
        if let Some(nested) = &s.flow {
            extracted_names(nested.get_ref(), into);
        }
        for branch in s.choose.iter().flat_map(|c| c.get_ref()) {
            if let Some(nested) = &branch.get_ref().flow {
                extracted_names(nested.get_ref(), into);
            }
        }
    }
}

/// The statistics names of a validated flow's requests and WebSocket steps.
fn step_names(flow: &[StepSpec], into: &mut Vec<String>) {
    for step in flow {
        let name = match step {
            StepSpec::Request(r) => Some(&r.name),
            StepSpec::WsConnect { name, .. } | StepSpec::WsSend { name, .. } | StepSpec::WsExpect { name, .. } => {
                Some(name)
            }
            StepSpec::Block { flow, .. } => {
                step_names(flow, into);
                None
            }
            StepSpec::Choose(branches) => {
                branches.iter().for_each(|b| step_names(&b.flow, into));
                None
            }
            StepSpec::Think(_) | StepSpec::WsClose(_) => None,
        };
        if let Some(name) = name {
            if !into.contains(name) {
                into.push(name.clone());
            }
        }
    }
}
