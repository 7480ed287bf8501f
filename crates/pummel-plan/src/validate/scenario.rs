//! One `[[scenario]]`: its load model (`rate`, `users` or `stages`), its length (`duration`,
//! `iterations`), its arrival process, and its flow (checked in `request.rs`).
//!
//! Load models: a constant `rate`, `stages` of rate levels (`{ rate, for }`), linear ramps
//! (`{ rate, ramp }`, optionally followed by `for` at the new rate) and holds (`{ hold }`), and
//! `users` (the closed model) with `ramp_up`. Stages of users are rejected at their key.

use std::time::Duration;

use pummel_engine::flow::UserStage;
use pummel_engine::plan::{Arrival, RateStage};
use toml::Spanned;

use super::Validator;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{CountValue, RateValue, RawScenario, RawStage};
use crate::spec::{LoadSpec, Phase, ScenarioSpec, TargetSpec};

const MODEL_HELP: &str = "a scenario has one load model: rate = 200 (open), users = 20 (closed) or stages = [ { rate = 50, for = \"30s\" }, ... ]";

impl Validator<'_> {
    pub(super) fn scenario(
        &mut self,
        raw: &Spanned<RawScenario>,
        index: usize,
        target: &TargetSpec,
    ) -> Option<ScenarioSpec> {
        let s = raw.get_ref();
        let name = match &s.name {
            Some(name) => {
                if name.get_ref().trim().is_empty() {
                    self.push(Diagnostic::new(
                        DiagnosticKind::Invalid,
                        name.span(),
                        "a scenario's name must not be empty",
                    ));
                }
                name.get_ref().clone()
            }
            None => format!("scenario {}", index + 1),
        };
        let load = self.load(raw);
        let ramp_up = match &s.ramp_up {
            None => Duration::ZERO,
            Some(ramp_up) => {
                if s.users.is_none() {
                    let span = self.key(ramp_up);
                    self.push(
                        Diagnostic::new(
                            DiagnosticKind::Conflict,
                            span,
                            "`ramp_up` applies to `users` (the closed model)",
                        )
                        .with_help("with rates, ramp with stages: stages = [ { rate = 500, ramp = \"1m\" } ]"),
                    );
                }
                self.duration(ramp_up, "ramp_up").unwrap_or(Duration::ZERO)
            }
        };
        let arrival = match &s.arrival {
            None => Arrival::Uniform,
            Some(a) => {
                if s.users.is_some() {
                    let span = self.key(a);
                    self.push(
                        Diagnostic::new(
                            DiagnosticKind::Conflict,
                            span,
                            "`arrival` applies to the open model, not to `users`",
                        )
                        .with_help("use it with rate = N or stages of rate"),
                    );
                }
                match a.get_ref().as_str() {
                    "uniform" => Arrival::Uniform,
                    "poisson" => Arrival::Poisson,
                    other => {
                        self.push(
                            Diagnostic::new(DiagnosticKind::Invalid, a.span(), format!("unknown arrival {other:?}"))
                                .with_help("expected \"uniform\" or \"poisson\""),
                        );
                        Arrival::Uniform
                    }
                }
            }
        };
        let iterations = s.iterations.as_ref().and_then(|n| self.count_value(n, "iterations"));
        let duration = s.duration.as_ref().and_then(|d| self.duration(d, "duration"));
        if let (Some(d), Some(_)) = (&s.duration, &s.stages) {
            let span = self.key(d);
            self.push(
                Diagnostic::new(
                    DiagnosticKind::Conflict,
                    span,
                    "`duration` cannot be used with `stages`: the stages set the length",
                )
                .with_help("remove duration, or give each stage its `for`"),
            );
        }
        if s.duration.is_none()
            && !self.options.length_given
            && s.iterations.is_none()
            && s.stages.is_none()
            && (s.rate.is_some() || s.users.is_some())
        {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), format!("scenario {name:?} has no length"))
                    .with_help("add duration = \"30s\" or iterations = 1000"),
            );
        }
        if s.duration.is_none() && s.stages.is_none() && !self.options.length_given {
            if let Some(every) = s.flow.as_ref().and_then(|f| unbounded_every(f.get_ref())) {
                let span = self.key(every);
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Missing,
                        span,
                        format!("this `every` runs until scenario {name:?} ends, and it has no `duration`"),
                    )
                    .with_help("give the scenario duration = \"10m\", or the block repeat = N"),
                );
            }
        }
        if let Some(flow) = &s.flow {
            let mut found = WsSteps::default();
            ws_steps(flow.get_ref(), &mut found);
            if let (false, Some(span)) = (found.connect, found.first_use.clone()) {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Missing,
                        span,
                        format!("scenario {name:?} uses a WebSocket session but never opens one"),
                    )
                    .with_help("add { ws_connect = { path = \"/ws\" } } before it in the flow"),
                );
            }
        }
        let flow = match &s.flow {
            Some(flow) => self.flow(flow, target),
            None => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Missing, raw.span(), format!("scenario {name:?} has no flow"))
                        .with_help("add flow = [ { request = { method = \"GET\", path = \"/\" } } ]"),
                );
                None
            }
        };
        let http2_streams = self.http_version(s.http_version.as_ref(), s.streams.as_ref(), target.http2_streams);
        if let (Some(version), Some(_), false) = (&s.http_version, http2_streams, target.keepalive) {
            self.http2_needs_keepalive(version);
        }
        let start = s.start.as_ref().and_then(|d| self.duration(d, "start")).unwrap_or(Duration::ZERO);
        let phase = self.phase(s.phase.as_ref());
        let export = self.export(s, phase);
        if let Some(flow) = &s.flow {
            self.writes_outside_load(flow.get_ref(), phase);
        }
        Some(ScenarioSpec {
            name,
            load: load?,
            arrival,
            ramp_up,
            duration,
            iterations,
            flow: flow?,
            http2_streams,
            start,
            after: s.after.as_ref().map(|a| a.get_ref().clone()),
            phase,
            export,
        })
    }

    /// `phase = "setup" | "load" | "teardown"`.
    fn phase(&mut self, raw: Option<&Spanned<String>>) -> Phase {
        let Some(raw) = raw else { return Phase::Load };
        match raw.get_ref().as_str() {
            "setup" => Phase::Setup,
            "load" => Phase::Load,
            "teardown" => Phase::Teardown,
            other => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Invalid, raw.span(), format!("unknown phase {other:?}"))
                        .with_help(r#"expected "setup", "load" or "teardown""#),
                );
                Phase::Load
            }
        }
    }

    /// `export = [...]`: names the setup scenario's own flow extracts.
    fn export(&mut self, s: &RawScenario, phase: Phase) -> Vec<String> {
        let Some(list) = &s.export else { return Vec::new() };
        if phase != Phase::Setup {
            let span = self.key(list);
            self.push(
                Diagnostic::new(DiagnosticKind::Conflict, span, "`export` applies to setup scenarios")
                    .with_help(r#"add phase = "setup": its exported values reach the load and teardown"#),
            );
        }
        let mut extracted = std::collections::BTreeSet::new();
        if let Some(flow) = &s.flow {
            super::extracted_names(flow.get_ref(), &mut extracted);
        }
        let mut names = Vec::new();
        for name in list.get_ref() {
            if !extracted.contains(name.get_ref()) {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        name.span(),
                        format!("{:?} is not extracted by this scenario's flow", name.get_ref()),
                    )
                    .with_help("export names a value of extract = { NAME = ... } in this scenario"),
                );
            } else if !names.contains(name.get_ref()) {
                names.push(name.get_ref().clone());
            }
        }
        names
    }

    /// The one load model of a scenario.
    fn load(&mut self, raw: &Spanned<RawScenario>) -> Option<LoadSpec> {
        let s = raw.get_ref();
        let given: Vec<(&str, std::ops::Range<usize>)> = [
            s.rate.as_ref().map(|r| ("rate", self.key(r))),
            s.users.as_ref().map(|u| ("users", self.key(u))),
            s.stages.as_ref().map(|st| ("stages", self.key(st))),
        ]
        .into_iter()
        .flatten()
        .collect();
        if given.is_empty() {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this scenario has no load model")
                    .with_help(MODEL_HELP),
            );
            return None;
        }
        // Each value given is checked, also when they conflict, so all mistakes show at once.
        let rate = s.rate.as_ref().map(|r| self.rate(r));
        let users = s.users.as_ref().map(|u| self.users(u));
        let stages = s.stages.as_ref().map(|st| self.stages(st));
        if given.len() > 1 {
            let mut sorted = given.clone();
            sorted.sort_by_key(|(_, span)| span.start);
            for (name, span) in &sorted[1..] {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Conflict,
                        span.clone(),
                        format!("`{name}` cannot be used with `{}`", sorted[0].0),
                    )
                    .with_help(MODEL_HELP),
                );
            }
            return None;
        }
        match (rate, users, stages) {
            (Some(rate), _, _) => rate.map(LoadSpec::Rate),
            (_, Some(users), _) => users.map(|n| LoadSpec::Users(n as usize)),
            (_, _, Some(stages)) => stages,
            _ => None,
        }
    }

    /// `users = 1000` or `users = "{{ users }}"` (rendered with the plan's variables).
    fn users(&mut self, value: &Spanned<CountValue>) -> Option<u64> {
        self.count_value(value, "users")
    }

    /// A count `key = 1000`, or a template of `[variables]` rendered now (`"{{ users }}"`).
    fn count_value(&mut self, value: &Spanned<CountValue>, key: &str) -> Option<u64> {
        let text = match value.get_ref() {
            CountValue::Number(n) => return self.count(&Spanned::new(value.span(), *n), key),
            CountValue::Text(text) => self.render_with_variables(value.span(), text, key)?,
        };
        match text.trim().parse::<u64>() {
            Ok(n) if n >= 1 => Some(n),
            _ => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        value.span(),
                        format!("{key} must be a whole number of at least 1, not {text:?}"),
                    )
                    .with_help(format!(
                        "expected {key} = 1000 or {key} = \"{{{{ {key} }}}}\" with {key} = 1000 in [variables]"
                    )),
                );
                None
            }
        }
    }

    /// A positive rate: `200`, `0.5`, `"2000/s"`, `"120/m"`, `"{{ rate }}"`.
    pub(super) fn rate(&mut self, value: &Spanned<RateValue>) -> Option<f64> {
        let rendered;
        let rate = match value.get_ref() {
            RateValue::Number(n) => Some(*n),
            RateValue::Text(text) => {
                rendered = self.render_with_variables(value.span(), text, "the rate")?;
                let text = &rendered;
                let (number, per) = match text.split_once('/') {
                    Some((n, "s")) => (n, 1.0),
                    Some((n, "m")) => (n, 60.0),
                    Some(_) => ("", 0.0),
                    None => (text.as_str(), 1.0),
                };
                number.trim().parse::<f64>().ok().filter(|_| per > 0.0).map(|n| n / per)
            }
        };
        match rate {
            Some(r) if r.is_finite() && r > 0.0 => Some(r),
            _ => {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        value.span(),
                        format!(
                            "invalid rate {}: it must be a positive number of requests per second",
                            self.written(value)
                        ),
                    )
                    .with_help("expected e.g. 200, 0.5, \"2000/s\" or \"120/m\""),
                );
                None
            }
        }
    }

    /// Stages of rate levels and ramps (open model) or of users (closed model), not mixed.
    fn stages(&mut self, list: &Spanned<Vec<Spanned<RawStage>>>) -> Option<LoadSpec> {
        let of_users = list.get_ref().iter().find(|st| st.get_ref().rate.is_some() || st.get_ref().users.is_some());
        let of_users = of_users.is_some_and(|st| st.get_ref().users.is_some());
        for stage in list.get_ref() {
            let st = stage.get_ref();
            let (wrong, expected) = if of_users { (&st.rate, "users") } else { (&None, "rate") };
            let wrong_users = if of_users { None } else { st.users.as_ref() };
            let span = wrong.as_ref().map(|w| self.key(w)).or_else(|| wrong_users.map(|u| self.key(u)));
            if let Some(span) = span {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Conflict,
                        span,
                        format!("these stages set `{expected}`: stages are all of rate or all of users"),
                    )
                    .with_help("use stages of rate (open model) or of users (closed model) in one scenario"),
                );
                return None;
            }
        }
        let levels = self.levels(list)?;
        Some(match of_users {
            false => LoadSpec::Stages(levels),
            true => LoadSpec::UserStages(
                levels
                    .iter()
                    .map(|l| UserStage {
                        users: l.rate as u64,
                        duration: l.duration,
                        ramp_from: l.ramp_from.map(|r| r as u64),
                    })
                    .collect(),
            ),
        })
    }

    /// The stages as levels and ramps (of rates, or of users counted as numbers).
    fn levels(&mut self, list: &Spanned<Vec<Spanned<RawStage>>>) -> Option<Vec<RateStage>> {
        if list.get_ref().is_empty() {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, list.span(), "`stages` is empty")
                    .with_help("expected stages = [ { rate = 50, for = \"30s\" }, { rate = 200, for = \"1m\" } ]"),
            );
            return None;
        }
        let mut stages: Vec<RateStage> = Vec::new();
        let mut ok = true;
        for (index, stage) in list.get_ref().iter().enumerate() {
            let first = index == 0;
            match self.stage(stage, first) {
                // A hold keeps the level before it (the end of a ramp): a level of its own.
                Some(Stage::Hold(duration)) => match stages.last() {
                    Some(last) if ok && last.ramp_from.is_some() => stages.push(RateStage::level(last.rate, duration)),
                    Some(_) if ok => {
                        if let Some(last) = stages.last_mut() {
                            last.duration += duration;
                        }
                    }
                    _ => ok = false,
                },
                Some(Stage::Level(level)) => stages.push(level),
                Some(Stage::Ramp { rate, over, then_for }) => {
                    // A ramp starts from the previous level (0 before the first stage).
                    let from = stages.last().map_or(0.0, |s| s.rate);
                    stages.push(RateStage { rate, duration: over, ramp_from: Some(from) });
                    if let Some(d) = then_for {
                        stages.push(RateStage::level(rate, d));
                    }
                }
                None => ok = false,
            }
        }
        ok.then_some(stages)
    }

    fn stage(&mut self, raw: &Spanned<RawStage>, first: bool) -> Option<Stage> {
        let st = raw.get_ref();
        const STAGE_HELP: &str = "expected { rate = 200, for = \"30s\" }, { users = 50, for = \"30s\" }, a ramp { rate = 500, ramp = \"1m\" } or { hold = \"30s\" }";
        if let Some(hold) = &st.hold {
            for (other, name) in [
                (st.rate.is_some(), "rate"),
                (st.users.is_some(), "users"),
                (st.hold_for.is_some(), "for"),
                (st.ramp.is_some(), "ramp"),
            ] {
                if other {
                    self.conflict(
                        hold,
                        "hold",
                        name,
                        "a hold stage keeps the previous level: { hold = \"30s\" } alone",
                    );
                    return None;
                }
            }
            if first {
                self.push(
                    Diagnostic::new(
                        DiagnosticKind::Invalid,
                        self.key(hold),
                        "a first stage cannot hold: there is no level yet",
                    )
                    .with_help("start with { rate = 50, for = \"30s\" }"),
                );
                return None;
            }
            return self.duration(hold, "hold").map(Stage::Hold);
        }
        if let Some(ramp) = &st.ramp {
            let over = self.duration(ramp, "ramp");
            let then_for = match &st.hold_for {
                Some(d) => Some(self.duration(d, "for")?),
                None => None,
            };
            let Some(rate) = self.level(st) else {
                self.push(
                    Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this ramp has no target `rate` or `users`")
                        .with_help("expected { rate = 500, ramp = \"1m\" } or { users = 100, ramp = \"1m\" } (then optionally for = \"2m\")"),
                );
                return None;
            };
            return Some(Stage::Ramp { rate: rate?, over: over?, then_for });
        }
        let Some(rate) = self.level(st) else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this stage has no `rate` or `users`")
                    .with_help(STAGE_HELP),
            );
            return None;
        };
        let Some(hold_for) = &st.hold_for else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this stage has no length (`for`)")
                    .with_help(STAGE_HELP),
            );
            return None;
        };
        let duration: Duration = self.duration(hold_for, "for")?;
        Some(Stage::Level(RateStage::level(rate?, duration)))
    }
}

impl Validator<'_> {
    /// A stage's level: its `rate`, or its `users` (as a number). `None` when it has neither;
    /// `Some(None)` when the value is invalid (reported). Both at once is a conflict.
    fn level(&mut self, st: &RawStage) -> Option<Option<f64>> {
        // A ramp may fall to 0 (the users leave, the arrivals stop); a level may not be 0.
        let ramp = st.ramp.is_some();
        match (&st.rate, &st.users) {
            (Some(rate), None) if ramp && *rate.get_ref() == RateValue::Number(0.0) => Some(Some(0.0)),
            (None, Some(users)) if ramp && *users.get_ref() == 0 => Some(Some(0.0)),
            (Some(rate), None) => Some(self.rate(rate)),
            (None, Some(users)) => Some(self.count(users, "users").map(|n| n as f64)),
            (Some(_), Some(users)) => {
                self.conflict(users, "users", "rate", "a stage sets a rate (open model) or users (closed model)");
                Some(None)
            }
            (None, None) => None,
        }
    }
}

/// A valid stage: a new level, a linear ramp to a new rate, or more time at the previous one.
enum Stage {
    Level(RateStage),
    Ramp { rate: f64, over: Duration, then_for: Option<Duration> },
    Hold(Duration),
}

/// The first `every` block without `repeat` in a flow (nested ones included): it never ends.
fn unbounded_every(flow: &[Spanned<crate::raw::RawStep>]) -> Option<&Spanned<crate::raw::DurationText>> {
    for step in flow {
        let s = step.get_ref();
        if let (Some(every), None) = (&s.every, &s.repeat) {
            return Some(every);
        }
        let nested = s.flow.iter().map(|f| f.get_ref());
        let branches =
            s.choose.iter().flat_map(|c| c.get_ref()).filter_map(|b| b.get_ref().flow.as_ref().map(|f| f.get_ref()));
        if let Some(found) = nested.chain(branches).find_map(|f| unbounded_every(f)) {
            return Some(found);
        }
    }
    None
}

/// What a flow does with WebSocket sessions: opens one somewhere, and where it first uses one.
#[derive(Default)]
struct WsSteps {
    connect: bool,
    first_use: Option<std::ops::Range<usize>>,
}

fn ws_steps(flow: &[Spanned<crate::raw::RawStep>], found: &mut WsSteps) {
    for step in flow {
        let s = step.get_ref();
        found.connect |= s.ws_connect.is_some();
        if found.first_use.is_none() {
            let uses = [
                s.ws_send.as_ref().map(Spanned::span),
                s.ws_expect.as_ref().map(Spanned::span),
                s.ws_close.as_ref().map(Spanned::span),
            ];
            found.first_use = uses.into_iter().flatten().next();
        }
        if let Some(nested) = &s.flow {
            ws_steps(nested.get_ref(), found);
        }
        for branch in s.choose.iter().flat_map(|c| c.get_ref()) {
            if let Some(nested) = &branch.get_ref().flow {
                ws_steps(nested.get_ref(), found);
            }
        }
    }
}
