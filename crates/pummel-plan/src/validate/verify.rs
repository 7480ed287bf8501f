//! `write = { ... }` on requests and the `[verify]` table: which requests write which keys, how
//! the keys are read back, and the thresholds that read the verdicts (`lost==0`). Every mistake
//! is pointed at its key.

use std::time::Duration;

use pummel_engine::plan::StatusSet;
use pummel_engine::writes::WriteStep;
use pummel_results::duration::parse_duration;
use pummel_results::expr::Expr;
use toml::Spanned;

use super::Validator;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{RawPlan, RawWrite, StatusText};
use crate::spec::{
    DEFAULT_SETTLE, DEFAULT_VERIFY_CONNECTIONS, DEFAULT_VERIFY_RATE, DEFAULT_VERIFY_TIMEOUT, Phase, ScenarioSpec,
    StepSpec, TargetSpec, VerifySpec,
};

const WRITE_HELP: &str = "expected write = { key = \"{{ user }}-{{ iteration }}\" }, optionally with \
                          value = \"{{ ... }}\" (or body = true) and hash = true";
const VERIFY_HELP: &str = "expected [verify] with request = { path = \"/items/{{ key }}\" }";

impl Validator<'_> {
    /// `write = { key, value, body, hash }` of a request.
    pub(super) fn write(&mut self, raw: &Spanned<RawWrite>) -> Option<WriteStep> {
        let w = raw.get_ref();
        let Some(key) = &w.key else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "`write` has no `key`").with_help(WRITE_HELP),
            );
            return None;
        };
        if key.get_ref().trim().is_empty() {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, key.span(), "the write's key is empty").with_help(WRITE_HELP),
            );
            return None;
        }
        let key_template = self.compile_template(key, "the write's key");
        let value = w.value.as_ref().map(|v| self.compile_template(v, "the write's value"));
        let body = w.body.as_ref().is_some_and(|b| *b.get_ref());
        let hash = w.hash.as_ref().is_some_and(|h| *h.get_ref());
        if let (Some(b), Some(_)) = (&w.body, &w.value) {
            if *b.get_ref() {
                self.conflict(b, "body", "value", "the value written is either a template (value) or the body sent");
                return None;
            }
        }
        if let (Some(h), true) = (&w.hash, hash && w.value.is_none() && !body) {
            let span = self.key(h);
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, span, "`hash = true` needs a value to hash")
                    .with_help("add value = \"{{ ... }}\", or body = true (the body is kept as its hash anyway)"),
            );
            return None;
        }
        let value = match value {
            Some(None) => return None,
            Some(Some(v)) => Some(v),
            None => None,
        };
        Some(WriteStep { key: key_template?, value, body, hash })
    }

    /// `[verify]`; an error when the plan has it but writes nothing (or writes without it, when a
    /// threshold reads its verdicts: see [`Validator::write_rules`]).
    pub(super) fn verify(
        &mut self,
        raw: &RawPlan,
        scenarios: &[ScenarioSpec],
        target: &TargetSpec,
    ) -> Option<VerifySpec> {
        let table = raw.verify.as_ref()?;
        let v = table.get_ref();
        let span = self.key(table);
        if !scenarios.is_empty() && !writes_in(scenarios) {
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, span.clone(), "[verify] reads back writes, and the load writes none")
                    .with_help("mark the writing requests: request = { method = \"POST\", path = \"/items/{{ user }}\", write = { key = \"{{ user }}\" } }"),
            );
        }
        let settle = v.settle.as_ref().and_then(|s| self.settle(s)).unwrap_or(DEFAULT_SETTLE);
        let rate = v.rate.as_ref().and_then(|r| self.rate(r)).unwrap_or(DEFAULT_VERIFY_RATE);
        let connections = v
            .connections
            .as_ref()
            .and_then(|c| self.count(c, "connections"))
            .map_or(DEFAULT_VERIFY_CONNECTIONS, |c| usize::try_from(c).unwrap_or(usize::MAX));
        let timeout = v.timeout.as_ref().and_then(|t| self.duration(t, "timeout")).unwrap_or(DEFAULT_VERIFY_TIMEOUT);
        let found = self.status_set(v.found.as_ref(), "found", "200-299");
        let missing = self.status_set(v.missing.as_ref(), "missing", "404");
        if let (Some(found), Some(missing)) = (&found, &missing) {
            if let Some(both) = (100..=999).find(|s| found.contains(*s) && missing.contains(*s)) {
                let at = v.missing.as_ref().or(v.found.as_ref()).map_or(span.clone(), |m| m.span());
                self.push(
                    Diagnostic::new(DiagnosticKind::Conflict, at, format!("status {both} is both found and missing"))
                        .with_help("a status says the key is there, or that it is not"),
                );
            }
        }
        let value = match &v.value {
            None => Some(None),
            Some(raw) => {
                if let Some(default) = &raw.get_ref().default {
                    let at = self.key(default);
                    self.push(Diagnostic::new(
                        DiagnosticKind::Invalid,
                        at,
                        "a read-back's value has no default: it is what the target holds",
                    ));
                }
                self.extract(&Spanned::new(0..0, "value".to_string()), raw).map(Some)
            }
        };
        let Some(request) = &v.request else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, span, "[verify] has no `request`").with_help(VERIFY_HELP),
            );
            return None;
        };
        if let Some(write) = &request.get_ref().write {
            let at = self.key(write);
            self.push(
                Diagnostic::new(DiagnosticKind::Invalid, at, "the read-back's request cannot be a write")
                    .with_help("[verify] reads the keys the load wrote; drop `write` here"),
            );
        }
        // Its templates read the key and the value written.
        let added: Vec<String> =
            ["key", "value"].into_iter().filter(|n| self.defined.insert(n.to_string())).map(String::from).collect();
        let request = self.request(request, target);
        for name in added {
            self.defined.remove(&name);
        }
        Some(VerifySpec {
            settle,
            rate,
            connections,
            timeout,
            request: request?,
            found: found?,
            missing: missing?,
            value: value?,
        })
    }

    /// Writes are the load's: one in a setup or teardown scenario is an error at its `write`.
    pub(super) fn writes_outside_load(&mut self, flow: &[Spanned<crate::raw::RawStep>], phase: Phase) {
        if phase == Phase::Load {
            return;
        }
        for step in flow {
            let s = step.get_ref();
            if let Some(write) = s.request.as_ref().and_then(|r| r.get_ref().write.as_ref()) {
                let at = self.key(write);
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        at,
                        format!("a {} scenario's request cannot be a write", phase.name()),
                    )
                    .with_help("the load's writes are logged and read back by [verify]: write in a load scenario"),
                );
            }
            if let Some(nested) = &s.flow {
                self.writes_outside_load(nested.get_ref(), phase);
            }
            for branch in s.choose.iter().flat_map(|c| c.get_ref()) {
                if let Some(nested) = &branch.get_ref().flow {
                    self.writes_outside_load(nested.get_ref(), phase);
                }
            }
        }
    }

    /// `settle = "2s"` (zero allowed: read at once).
    fn settle(&mut self, value: &Spanned<crate::raw::DurationText>) -> Option<Duration> {
        match parse_duration(&value.get_ref().0) {
            Ok(d) => Some(d),
            Err(e) => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        value.span(),
                        format!("settle: invalid duration {:?}: {}", e.input, e.reason),
                    )
                    .with_help("expected a duration like \"1s\" or \"0s\""),
                );
                None
            }
        }
    }

    /// A status set given as `what` (default `default`).
    fn status_set(&mut self, value: Option<&Spanned<StatusText>>, what: &str, default: &str) -> Option<StatusSet> {
        let text = value.map_or(default, |v| v.get_ref().0.as_str());
        match text.parse::<StatusSet>() {
            Ok(set) => Some(set),
            Err(e) => {
                let span = value.map_or(0..0, |v| v.span());
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, span, format!("{what}: {e}"))
                        .with_help("expected a status like 404 or a set like \"200-299\""),
                );
                None
            }
        }
    }

    /// Thresholds that read the read-back (`lost`, `recovered`, `unexpected`, `unread`) need
    /// writes and a `[verify]`, and are figures of the whole run (`global`).
    /// Without `scenarios` (they had mistakes of their own) only the place of the rules is
    /// judged.
    pub(super) fn write_rules(&mut self, raw: &RawPlan, scenarios: Option<&[ScenarioSpec]>, verify: bool) {
        let Some(table) = &raw.thresholds else { return };
        let writes = scenarios.is_none_or(writes_in);
        for (name, list) in table.get_ref() {
            for rule in list.get_ref() {
                let Ok(expr) = Expr::parse(&rule.get_ref().0) else { continue };
                if !expr.metric.is_of_writes() {
                    continue;
                }
                let problem = if name.get_ref() != "global" {
                    Some((
                        format!("{} is a figure of the whole run's writes, not of one request", expr.metric),
                        "put it under global = [...]",
                    ))
                } else if !writes {
                    Some((
                        format!("{} reads the read-back of the plan's writes, and the load writes none", expr.metric),
                        "mark the writing requests with write = { key = \"...\" } and add [verify]",
                    ))
                } else if !verify && scenarios.is_some() {
                    Some((
                        format!("{} reads the read-back of the writes, and the plan has no [verify]", expr.metric),
                        VERIFY_HELP,
                    ))
                } else {
                    None
                };
                if let Some((message, help)) = problem {
                    self.push(Diagnostic::new(DiagnosticKind::Invalid, rule.span(), message).with_help(help));
                }
            }
        }
    }
}

/// True when a request of the load writes keys.
fn writes_in(scenarios: &[ScenarioSpec]) -> bool {
    fn any(steps: &[StepSpec]) -> bool {
        steps.iter().any(|step| match step {
            StepSpec::Request(r) => r.write.is_some(),
            StepSpec::Block { flow, .. } => any(flow),
            StepSpec::Choose(branches) => branches.iter().any(|b| any(&b.flow)),
            _ => false,
        })
    }
    scenarios.iter().filter(|s| s.phase == Phase::Load).any(|s| any(&s.flow))
}
