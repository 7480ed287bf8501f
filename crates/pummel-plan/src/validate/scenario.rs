//! One `[[scenario]]`: its load model (`rate`, `users` or `stages`), its length (`duration`,
//! `iterations`), its arrival process, and its flow (checked in `request.rs`).
//!
//! Runs today: a constant `rate`, `stages` of constant rate levels (`{ rate, for }`, and
//! `{ hold }` after a level), and `users` (the closed model). Ramps (`ramp`, `ramp_up`) and
//! stages of users need engine support that comes later and are rejected at their key.

use std::time::Duration;

use pummel_engine::plan::{Arrival, RateStage};
use toml::Spanned;

use super::Validator;
use crate::diag::{Diagnostic, DiagnosticKind};
use crate::raw::{RateValue, RawScenario, RawStage};
use crate::spec::{LoadSpec, ScenarioSpec, TargetSpec};

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
        if let Some(ramp_up) = &s.ramp_up {
            self.not_supported(ramp_up, "`ramp_up` (starting users gradually) is").help =
                Some("remove it: all users start at once in this version".into());
        }
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
        let iterations = s.iterations.as_ref().and_then(|n| self.count(n, "iterations"));
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
            && s.iterations.is_none()
            && s.stages.is_none()
            && (s.rate.is_some() || s.users.is_some())
        {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), format!("scenario {name:?} has no length"))
                    .with_help("add duration = \"30s\" or iterations = 1000"),
            );
        }
        let request = match &s.flow {
            Some(flow) => self.flow(flow, target),
            None => {
                self.push(
                    Diagnostic::new(DiagnosticKind::Missing, raw.span(), format!("scenario {name:?} has no flow"))
                        .with_help("add flow = [ { request = { method = \"GET\", path = \"/\" } } ]"),
                );
                None
            }
        };
        Some(ScenarioSpec { name, load: load?, arrival, duration, iterations, requests: None, request: request? })
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
        let users = s.users.as_ref().map(|u| self.count(u, "users"));
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
            (_, _, Some(stages)) => stages.map(LoadSpec::Stages),
            _ => None,
        }
    }

    /// A positive rate: `200`, `0.5`, `"2000/s"`, `"120/m"`.
    fn rate(&mut self, value: &Spanned<RateValue>) -> Option<f64> {
        let rate = match value.get_ref() {
            RateValue::Number(n) => Some(*n),
            RateValue::Text(text) => {
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

    /// Stages of constant rate levels; ramps and user stages are not supported yet.
    fn stages(&mut self, list: &Spanned<Vec<Spanned<RawStage>>>) -> Option<Vec<RateStage>> {
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
                // A hold extends the level before it: one level, one row of statistics.
                Some(Stage::Hold(duration)) => match stages.last_mut() {
                    Some(last) if ok => last.duration += duration,
                    _ => ok = false,
                },
                Some(Stage::Level(level)) => stages.push(level),
                None => ok = false,
            }
        }
        ok.then_some(stages)
    }

    fn stage(&mut self, raw: &Spanned<RawStage>, first: bool) -> Option<Stage> {
        let st = raw.get_ref();
        const STAGE_HELP: &str = "expected { rate = 200, for = \"30s\" } or { hold = \"30s\" }";
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
        if let Some(users) = &st.users {
            self.not_supported(users, "stages of `users` are").help =
                Some("use users = N with duration, or stages of rate".into());
            return None;
        }
        if let Some(ramp) = &st.ramp {
            self.not_supported(ramp, "ramps between stages (`ramp`) are").help =
                Some("use levels for now: { rate = 200, for = \"30s\" }".into());
            return None;
        }
        let Some(rate) = &st.rate else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this stage has no rate").with_help(STAGE_HELP),
            );
            return None;
        };
        let rate = self.rate(rate);
        let Some(hold_for) = &st.hold_for else {
            self.push(
                Diagnostic::new(DiagnosticKind::Missing, raw.span(), "this stage has no length (`for`)")
                    .with_help(STAGE_HELP),
            );
            return None;
        };
        let duration: Duration = self.duration(hold_for, "for")?;
        Some(Stage::Level(RateStage { rate: rate?, duration }))
    }
}

/// A valid stage: a new level, or more time at the previous one.
enum Stage {
    Level(RateStage),
    Hold(Duration),
}
