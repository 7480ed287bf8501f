//! Scenarios of plan files: who does what, in which order, how often.
//!
//! A quick `pummel run URL` sends one fixed request over and over; a plan file describes user
//! journeys instead. Each [`Scenario`] has its own load model and a [`Flow`] of [`Step`]s that
//! every virtual user (closed model) or every arrival (open model) walks through: requests whose
//! paths, headers and bodies are templates, think times, blocks repeated `n` times or every
//! interval, weighted choices between sub-flows, and WebSocket exchanges. Everything here is
//! validated and compiled before the run (templates, JSONPaths, regexes); the engine only walks
//! it. Nested flows are behind `Arc`s so a user's position in the flow is cheap to hold.
//!
//! One file over 600 lines: the types of a flow, one file so that the whole vocabulary of a plan reads in one place; the rest is render tests.

pub mod body_bytes;
pub mod feeder;
pub mod multipart;
pub mod payload;
pub mod seed;
pub mod sigv4;
pub mod template;

use std::sync::Arc;
use std::time::Duration;

use rand::Rng;
use serde::Serialize;

use crate::flow::feeder::Feeder;
use crate::flow::payload::Payload;
use crate::flow::template::{Globals, RenderError, Template, Vars};
use crate::inspect::check::Check;
use crate::inspect::extract::Extractor;
use crate::inspect::jsonpath::JsonPath;
use crate::plan::load::{HoldMode, Http2Settings, Load};

/// Everything the plan-file part of a run shares: scenarios, names of request statistics and
/// checks, template globals and feeders.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Scenarios {
    /// The scenarios, all running at once.
    pub list: Vec<Scenario>,
    /// Names whose statistics are kept apart (requests and WebSocket exchanges), indexed by
    /// [`RequestStep::stats`] and friends.
    pub names: Vec<NamedStats>,
    /// Names of the checks, indexed by [`CheckStep::id`].
    pub checks: Vec<String>,
    /// Names of the `choose` branches, indexed by [`Branch::id`]: how often each was taken is
    /// counted, so a weight split can be verified.
    pub branches: Vec<String>,
    /// `[variables]` (and `-e`), visible to every template.
    #[serde(skip)]
    pub globals: Arc<Globals>,
    /// Data files whose rows feed templates; a new row of each per iteration.
    #[serde(skip)]
    pub feeders: Vec<Arc<Feeder>>,
    /// Thresholds per name (`[thresholds] "GET /api" = [...]`), judged on that name's figures.
    #[serde(serialize_with = "named_exprs")]
    pub named_thresholds: Vec<(String, Vec<pummel_results::expr::Expr>)>,
}

/// What a set of statistics is named after, and which scenario it belongs to.
#[derive(Debug, Clone, Serialize)]
pub struct NamedStats {
    /// The name, e.g. `GET /api/images` (a request's `name`, or its method and path).
    pub name: String,
    /// Index of the scenario in [`Scenarios::list`].
    pub scenario: usize,
    /// What is measured under this name: `http` requests or `ws` exchanges.
    pub kind: &'static str,
    /// The host its requests go to (index of `Plan::target_of`).
    pub target: usize,
}

/// One scenario: a load model and the flow each user or arrival goes through.
#[derive(Debug, Clone, Serialize)]
pub struct Scenario {
    /// Its name in output and results.
    pub name: String,
    /// Closed (`users`) or open (`rate`, `stages`).
    pub load: Load,
    /// Closed model: time over which the users start, evenly; zero starts them all at once.
    #[serde(with = "crate::seconds")]
    pub ramp_up: Duration,
    /// Closed model: how many users are active over time; empty keeps all of them active
    /// (after `ramp_up`). Users beyond a falling level leave (close their connection and
    /// session) at the end of the step they are in; users of a rising level join.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub user_stages: Vec<UserStage>,
    /// The feeders (indexes in [`Scenarios::feeders`]) this scenario's templates read: each
    /// iteration takes a row of these only.
    #[serde(skip)]
    pub feeders: Vec<usize>,
    /// Runs of the flow: per user in the closed model, in all in the open model.
    pub iterations: Option<u64>,
    /// When this scenario stops starting iterations, from the run's start.
    #[serde(serialize_with = "crate::seconds::optional")]
    pub duration: Option<Duration>,
    /// The steps.
    pub flow: Flow,
    /// `http_version = "2"`: the scenario's requests go over HTTP/2, its users sharing a few
    /// connections of the shard (each of `streams` concurrent streams) instead of owning one
    /// HTTP/1.1 connection each. `None`: HTTP/1.1. WebSocket steps stay HTTP/1.1 upgrades.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub http2: Option<Http2Settings>,
    /// When the scenario starts, from the run's start (`start = "30s"`, k6's `startTime`): its
    /// duration, stages and ramps count from then.
    #[serde(with = "crate::seconds", skip_serializing_if = "Duration::is_zero")]
    pub start: Duration,
    /// `after = "NAME"`: the scenario (index in [`Scenarios::list`]) whose end starts this one,
    /// on each shard; `start` then counts from that end.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<usize>,
    /// `export = [...]`: variables whose value at the end of every iteration is collected into
    /// a list of that name, which later phases' templates read (see `engine::phases`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub export: Vec<String>,
}

impl Scenario {
    /// The connections the scenario may open at once: one per user over HTTP/1.1 (a user per
    /// `streams` over HTTP/2), the pool bound of the open model, the held connections of hold.
    pub fn connections(&self) -> u64 {
        match &self.load {
            Load::Closed(closed) => (closed.connections as u64).div_ceil(self.users_per_connection() as u64),
            Load::Open(open) => open.max_connections as u64,
            Load::Hold(hold) => hold.connections as u64,
        }
    }

    /// True when it starts later than the run (`start`, `after`): its start is news.
    pub fn starts_later(&self) -> bool {
        !self.start.is_zero() || self.after.is_some()
    }

    /// Users one connection serves at once: its HTTP/2 streams; 1 for HTTP/1.1.
    pub fn users_per_connection(&self) -> usize {
        self.http2.as_ref().map_or(1, |settings| settings.streams.max(1))
    }

    /// How long the scenario starts iterations: its stages (open model), capped by its
    /// `duration`; `None` when only `iterations` bound it.
    pub fn planned_duration(&self) -> Option<Duration> {
        let staged = match &self.load {
            Load::Open(open) => Some(open.stages.iter().map(|s| s.duration).sum::<Duration>()),
            Load::Closed(_) if !self.user_stages.is_empty() => Some(self.user_stages.iter().map(|s| s.duration).sum()),
            Load::Closed(_) | Load::Hold(_) => None,
        };
        match (staged, self.duration) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }
}

/// One stage of a closed-model scenario's users: a level, or a linear ramp from `ramp_from`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct UserStage {
    /// Active users (at the end of a ramp).
    pub users: u64,
    /// How long the stage lasts.
    #[serde(with = "crate::seconds")]
    pub duration: Duration,
    /// For a ramp: the users at the stage's start.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ramp_from: Option<u64>,
}

/// A sequence of steps.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(transparent)]
pub struct Flow {
    /// The steps, in order.
    pub steps: Vec<Step>,
}

impl Flow {
    /// Every request step of the flow, nested ones included, in order.
    pub fn requests(&self) -> Vec<&RequestStep> {
        let mut out = Vec::new();
        self.collect_requests(&mut out);
        out
    }

    fn collect_requests<'a>(&'a self, out: &mut Vec<&'a RequestStep>) {
        for step in &self.steps {
            match step {
                Step::Request(request) => out.push(request),
                Step::Block(block) => block.flow.collect_requests(out),
                Step::Choose(choice) => choice.branches.iter().for_each(|b| b.flow.collect_requests(out)),
                _ => {}
            }
        }
    }
}

/// One step of a flow.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Step {
    /// Send an HTTP request and wait for its response.
    Request(Arc<RequestStep>),
    /// Pause.
    Think(Think),
    /// Run a nested flow several times, or every interval.
    Block(Arc<Block>),
    /// Run one of several sub-flows, chosen by weight.
    Choose(Arc<Choice>),
    /// Open the user's WebSocket session.
    WsConnect(Arc<WsConnectStep>),
    /// Send a message on the session.
    WsSend(Arc<WsSendStep>),
    /// Wait for a matching message.
    WsExpect(Arc<WsExpectStep>),
    /// Close the session.
    WsClose(WsCloseStep),
    /// Open a connection and hold it until the target closes it or the run ends
    /// (`pummel hold`).
    Hold(Arc<HoldStep>),
}

/// What a held connection does (`pummel hold`): connect, maybe send, then keep the connection
/// in its mode until the target closes it or the run ends.
#[derive(Debug, Clone, Serialize)]
pub struct HoldStep {
    /// Idle keep-alive, slow request, pending answer, or WebSocket.
    pub mode: HoldMode,
    /// Interval between the bytes of a slow request, or between WebSocket pings.
    #[serde(with = "crate::seconds")]
    pub drip: Duration,
    /// The request, encoded once (the upgrade's fields come from it in `ws` mode).
    #[serde(skip)]
    pub request: Arc<[u8]>,
    /// True for a HEAD request (no body follows its answer).
    pub head_request: bool,
    /// `ws` mode: the session's URL and the request's header fields.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ws: Option<HoldWebSocket>,
}

/// The WebSocket a held connection upgrades to.
#[derive(Debug, Clone, Serialize)]
pub struct HoldWebSocket {
    /// `ws://` or `wss://`, the target's host and path.
    pub url: String,
    /// Header fields added to the upgrade.
    pub headers: Vec<(String, String)>,
}

/// A pause of a fixed, uniform or exponential length.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Think {
    /// Always this long (`"2s"`).
    Fixed(#[serde(with = "crate::seconds")] Duration),
    /// Uniform between two bounds (`"1s..5s"`).
    Uniform(#[serde(with = "crate::seconds")] Duration, #[serde(with = "crate::seconds")] Duration),
    /// Exponential with this mean (`"exp(20s)"`): the gaps of a Poisson process.
    Exponential(#[serde(with = "crate::seconds")] Duration),
}

impl Think {
    /// Draws one pause.
    pub fn draw(&self, rng: &mut impl Rng) -> Duration {
        match *self {
            Think::Fixed(d) => d,
            Think::Uniform(lo, hi) if hi > lo => {
                Duration::from_secs_f64(rng.random_range(lo.as_secs_f64()..hi.as_secs_f64()))
            }
            Think::Uniform(lo, _) => lo,
            Think::Exponential(mean) => {
                // Inverse transform; 1 - u is in (0, 1], so the logarithm is finite.
                let u: f64 = rng.random();
                Duration::from_secs_f64((-(1.0 - u).ln() * mean.as_secs_f64()).min(1e9))
            }
        }
    }
}

/// `repeat` / `every`: a nested flow run `repeat` times, or every `every` for the rest of the
/// run (or `repeat` times when both are given).
#[derive(Debug, Clone, Serialize)]
pub struct Block {
    /// How many times; `None` with `every` means until the run ends.
    pub repeat: Option<u64>,
    /// Interval between the starts of two runs of the flow; `None` runs them back to back.
    #[serde(serialize_with = "crate::seconds::optional")]
    pub every: Option<Duration>,
    /// The nested steps.
    pub flow: Flow,
}

/// `choose`: one of several sub-flows per pass, by weight.
#[derive(Debug, Clone, Serialize)]
pub struct Choice {
    /// The branches.
    pub branches: Vec<Branch>,
}

impl Choice {
    /// Picks a branch with probability proportional to its weight.
    pub fn pick(&self, rng: &mut impl Rng) -> Option<&Branch> {
        let total: f64 = self.branches.iter().map(|b| b.weight).sum();
        let mut point = rng.random::<f64>() * total;
        for branch in &self.branches {
            if point < branch.weight {
                return Some(branch);
            }
            point -= branch.weight;
        }
        self.branches.last()
    }
}

/// One weighted sub-flow.
#[derive(Debug, Clone, Serialize)]
pub struct Branch {
    /// Relative weight (> 0).
    pub weight: f64,
    /// Its name in the results.
    pub name: String,
    /// Index of its counter in [`Scenarios::branches`].
    pub id: usize,
    /// The steps.
    pub flow: Flow,
}

/// A request step: everything needed to build and judge one request.
#[derive(Debug, Clone, Serialize)]
pub struct RequestStep {
    /// Index of its statistics in [`Scenarios::names`].
    pub stats: usize,
    /// HTTP method.
    pub method: String,
    /// Path and query (a template).
    #[serde(serialize_with = "template_text")]
    pub path: Template,
    /// Query parameters whose values are templates, percent-encoded once rendered and
    /// appended to the path (fixed ones are part of `path`).
    #[serde(skip)]
    pub query: Vec<(String, Template)>,
    /// Headers, values as templates; `[target].headers` merged in.
    #[serde(skip)]
    pub headers: Vec<(String, Template)>,
    /// The body.
    #[serde(skip)]
    pub body: Body,
    /// Values taken from the response into the user's variables.
    #[serde(skip)]
    pub extract: Vec<Extractor>,
    /// Checks on the response.
    #[serde(skip)]
    pub checks: Vec<CheckStep>,
    /// The whole request encoded once, when nothing in it changes per request (no template,
    /// no signature): sent as is, like a quick run's request.
    #[serde(skip)]
    pub fixed: Option<Arc<[u8]>>,
    /// The host it goes to (`target = "NAME"`): 0 for the plan's first, see `Plan::target_of`.
    #[serde(skip_serializing_if = "is_zero")]
    pub target: usize,
    /// `write = { key = ... }`: the request writes a key, logged with its outcome (see
    /// `writes`).
    #[serde(skip)]
    pub write: Option<Arc<crate::writes::WriteStep>>,
    /// The verify phase's read of a key, judged against the key's writes (see `writes`).
    #[serde(skip)]
    pub read: Option<Arc<crate::writes::ReadStep>>,
}

fn is_zero(n: &usize) -> bool {
    *n == 0
}

impl RequestStep {
    /// True when the request is the same every time: no template anywhere in it.
    pub fn is_static(&self) -> bool {
        let body = match &self.body {
            Body::Empty | Body::Fixed(_) | Body::Payload(_) => true,
            Body::Template(template) => template.is_static(),
            Body::Json(json) => json.is_fixed(),
            Body::Form(fields) => fields.iter().all(|(_, t)| t.is_static()),
            Body::Multipart(parts) => parts.iter().all(multipart::Part::is_static),
        };
        body && self.path.is_static()
            && self.query.iter().all(|(_, t)| t.is_static())
            && self.headers.iter().all(|(_, t)| t.is_static())
    }

    /// True when the response body must be kept (checks or extraction look at it).
    pub fn needs_body(&self) -> bool {
        self.extract.iter().any(|e| e.needs_body())
            || self.checks.iter().any(|c| c.check.condition.needs_body())
            || self.read.as_ref().is_some_and(|r| r.needs_body())
    }

    /// True when the response head must be kept.
    pub fn needs_headers(&self) -> bool {
        self.extract.iter().any(|e| e.needs_headers())
            || self.checks.iter().any(|c| c.check.condition.needs_headers())
            || self.read.as_ref().is_some_and(|r| r.needs_headers())
    }
}

/// A check with its place in the run's check tallies.
#[derive(Debug, Clone)]
pub struct CheckStep {
    /// Index in [`Scenarios::checks`].
    pub id: usize,
    /// The check.
    pub check: Check,
}

/// A request body.
#[derive(Debug, Clone, Default)]
pub enum Body {
    /// No body.
    #[default]
    Empty,
    /// The same bytes every time.
    Fixed(Arc<[u8]>),
    /// Rendered per request.
    Template(Template),
    /// A random payload generated once for its size and shared (object-store tests).
    Payload(Payload),
    /// A JSON body with templates in its strings, rendered value by value.
    Json(JsonTemplate),
    /// A URL-encoded form whose values are templates, encoded once rendered.
    Form(Vec<(String, Template)>),
    /// A `multipart/form-data` body with templated fields (a fixed one is `Fixed`).
    Multipart(Vec<multipart::Part>),
}

/// A JSON body with templates in its strings. Each string is rendered on its own and the body
/// serialized afterwards, so a rendered `"` or `\` is escaped and the body stays valid JSON;
/// a template's result stays a JSON string.
#[derive(Debug, Clone)]
pub enum JsonTemplate {
    /// A part without templates.
    Fixed(serde_json::Value),
    /// A string that is a template.
    Text(Template),
    /// An array with templates in it.
    Array(Vec<JsonTemplate>),
    /// An object with templates in it, keys in order.
    Object(Vec<(String, JsonTemplate)>),
}

impl JsonTemplate {
    /// Builds the template of `value`; `compile` turns each string into a template (an error
    /// stops the walk and is returned).
    pub fn of<E>(
        value: &serde_json::Value,
        compile: &mut impl FnMut(&str) -> Result<Template, E>,
    ) -> Result<JsonTemplate, E> {
        use serde_json::Value as J;
        Ok(match value {
            J::String(text) => {
                let template = compile(text)?;
                if template.is_static() { JsonTemplate::Fixed(value.clone()) } else { JsonTemplate::Text(template) }
            }
            J::Array(items) => {
                let parts = items.iter().map(|v| JsonTemplate::of(v, compile)).collect::<Result<Vec<_>, E>>()?;
                match parts.iter().all(JsonTemplate::is_fixed) {
                    true => JsonTemplate::Fixed(value.clone()),
                    false => JsonTemplate::Array(parts),
                }
            }
            J::Object(map) => {
                let mut parts = Vec::with_capacity(map.len());
                for (key, v) in map {
                    parts.push((key.clone(), JsonTemplate::of(v, compile)?));
                }
                match parts.iter().all(|(_, p)| p.is_fixed()) {
                    true => JsonTemplate::Fixed(value.clone()),
                    false => JsonTemplate::Object(parts),
                }
            }
            J::Null | J::Bool(_) | J::Number(_) => JsonTemplate::Fixed(value.clone()),
        })
    }

    /// True when nothing in it is a template.
    pub fn is_fixed(&self) -> bool {
        matches!(self, JsonTemplate::Fixed(_))
    }

    /// Its templates, for the names they read.
    pub fn templates(&self) -> Vec<&Template> {
        match self {
            JsonTemplate::Fixed(_) => Vec::new(),
            JsonTemplate::Text(t) => vec![t],
            JsonTemplate::Array(items) => items.iter().flat_map(JsonTemplate::templates).collect(),
            JsonTemplate::Object(parts) => parts.iter().flat_map(|(_, p)| p.templates()).collect(),
        }
    }

    /// The value for `vars`.
    pub fn render(&self, vars: &Vars) -> Result<serde_json::Value, RenderError> {
        Ok(match self {
            JsonTemplate::Fixed(value) => value.clone(),
            JsonTemplate::Text(template) => serde_json::Value::String(template.render_to_string(vars)?),
            JsonTemplate::Array(items) => {
                serde_json::Value::Array(items.iter().map(|i| i.render(vars)).collect::<Result<_, _>>()?)
            }
            JsonTemplate::Object(parts) => {
                let mut map = serde_json::Map::new();
                for (key, part) in parts {
                    map.insert(key.clone(), part.render(vars)?);
                }
                serde_json::Value::Object(map)
            }
        })
    }
}

/// A request rendered for one user: its path and query, headers and body (before signing).
#[derive(Debug, Clone)]
pub struct RenderedRequest {
    /// Path and query, URL-encoded.
    pub path: String,
    /// Header fields.
    pub headers: Vec<(String, String)>,
    /// The body, if any.
    pub body: Option<body_bytes::BodyBytes>,
    /// The body's SHA-256 when it is known in advance (a shared random payload).
    pub payload_sha256: Option<Arc<str>>,
}

impl RequestStep {
    /// Renders the request for `vars`: the path, then the query values (percent-encoded once
    /// rendered), the headers and the body. Signing comes after (see the executor).
    pub fn render(&self, vars: &Vars) -> Result<RenderedRequest, String> {
        let mut path = String::new();
        self.path.render(vars, &mut path).map_err(|e| format!("path: {e}"))?;
        let mut separator = if path.contains('?') { '&' } else { '?' };
        for (key, value) in &self.query {
            let rendered = value.render_to_string(vars).map_err(|e| format!("query {key}: {e}"))?;
            path.push(separator);
            path.push_str(key);
            path.push('=');
            path.extend(url::form_urlencoded::byte_serialize(rendered.as_bytes()));
            separator = '&';
        }
        let mut headers = Vec::with_capacity(self.headers.len() + 4);
        for (name, value) in &self.headers {
            let mut text = String::new();
            value.render(vars, &mut text).map_err(|e| format!("header {name}: {e}"))?;
            headers.push((name.clone(), text));
        }
        let (body, payload_sha256): (Option<body_bytes::BodyBytes>, Option<Arc<str>>) = match &self.body {
            Body::Empty => (None, None),
            Body::Fixed(bytes) => (Some(bytes.clone().into()), None),
            Body::Template(template) => {
                let mut text = String::new();
                template.render(vars, &mut text).map_err(|e| format!("body: {e}"))?;
                (Some(text.into_bytes().into()), None)
            }
            Body::Json(json) => {
                let value = json.render(vars).map_err(|e| format!("json body: {e}"))?;
                (Some(value.to_string().into_bytes().into()), None)
            }
            Body::Form(pairs) => {
                let mut form = url::form_urlencoded::Serializer::new(String::new());
                for (key, value) in pairs {
                    form.append_pair(key, &value.render_to_string(vars).map_err(|e| format!("form {key}: {e}"))?);
                }
                (Some(form.finish().into_bytes().into()), None)
            }
            // Its files are pieces of the body, shared by every request: never copied.
            Body::Multipart(parts) => (Some(multipart::render_pieces(parts, vars)?), None),
            Body::Payload(payload) => (Some(payload.bytes.clone().into()), Some(payload.sha256_hex.clone())),
        };
        Ok(RenderedRequest { path, headers, body, payload_sha256 })
    }
}

/// `ws_connect`.
#[derive(Debug, Clone, Serialize)]
pub struct WsConnectStep {
    /// Index of the handshake's statistics in [`Scenarios::names`].
    pub stats: usize,
    /// `ws://` or `wss://` URL (a template: `/ws?user={{ user }}`).
    #[serde(serialize_with = "template_text")]
    pub url: Template,
    /// Headers of the upgrade request (values are templates).
    #[serde(skip)]
    pub headers: Vec<(String, Template)>,
}

/// `ws_send`.
#[derive(Debug, Clone, Serialize)]
pub struct WsSendStep {
    /// Index of the exchange's statistics in [`Scenarios::names`].
    pub stats: usize,
    /// The message (a template).
    #[serde(serialize_with = "template_text")]
    pub text: Template,
}

/// `ws_expect`.
#[derive(Debug, Clone, Serialize)]
pub struct WsExpectStep {
    /// Statistics of an expect without a send before it.
    pub stats: usize,
    /// What the message must look like.
    #[serde(skip)]
    pub matcher: WsMatcher,
    /// How long to wait.
    #[serde(with = "crate::seconds")]
    pub timeout: Duration,
    /// Values taken from the message.
    #[serde(skip)]
    pub extract: Vec<Extractor>,
}

/// What an expected WebSocket message must look like; every part given must hold.
#[derive(Debug, Clone, Default)]
pub struct WsMatcher {
    /// A JSONPath that must exist, with `equals` its value.
    pub json: Option<(JsonPath, Option<serde_json::Value>)>,
    /// A regex the message matches.
    pub regex: Option<regex::Regex>,
    /// A regex written as a template (`"from {{ user }}"`): rendered for the user, then
    /// compiled (the last one a user compiled is kept).
    pub regex_template: Option<Template>,
    /// `equals` written as a template: the value at `json` equals its rendering (as text).
    pub equals_template: Option<Template>,
    /// JSON-RPC: the value at this path equals the one in the message just sent.
    pub match_id: Option<JsonPath>,
}

/// `ws_close`.
#[derive(Debug, Clone, Serialize)]
pub struct WsCloseStep {
    /// Close code.
    pub code: u16,
    /// Close reason.
    pub reason: String,
}

fn template_text<S: serde::Serializer>(t: &Template, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(t.text())
}

fn named_exprs<S: serde::Serializer>(
    named: &[(String, Vec<pummel_results::expr::Expr>)],
    s: S,
) -> Result<S::Ok, S::Error> {
    s.collect_map(named.iter().map(|(name, exprs)| (name, exprs.iter().map(|e| e.text.as_str()).collect::<Vec<_>>())))
}

#[cfg(test)]
mod render_tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> Vars {
        let globals = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        Vars::new(Arc::new(Globals::new(&globals)), 7)
    }

    #[test]
    fn json_strings_are_rendered_one_by_one_and_escaped() {
        let value = serde_json::json!({ "who": "{{ word }}", "n": 5, "tags": ["{{ user }}", true], "fixed": "x" });
        let template = JsonTemplate::of(&value, &mut |t: &str| Template::compile(t)).expect("templates compile");
        assert!(!template.is_fixed());
        assert_eq!(template.templates().len(), 2);
        let rendered = template.render(&vars(&[("word", r#"say "hi" \ ok"#)])).expect("renders");
        // Serialized and parsed back: valid JSON whose strings hold the rendered text as is.
        let text = rendered.to_string();
        let back: serde_json::Value = serde_json::from_str(&text).expect("valid JSON");
        assert_eq!(back["who"], r#"say "hi" \ ok"#);
        assert_eq!(back["tags"], serde_json::json!(["7", true]));
        assert_eq!(back["n"], 5);
        let fixed = JsonTemplate::of(&serde_json::json!({"a": [1, "b"]}), &mut |t: &str| Template::compile(t)).unwrap();
        assert!(fixed.is_fixed());
    }

    #[test]
    fn templated_query_values_and_forms_are_percent_encoded_once_rendered() {
        let step = RequestStep {
            stats: 0,
            method: "POST".into(),
            path: Template::compile("/s/{{ user }}").unwrap(),
            query: vec![("q".into(), Template::compile("{{ word }}").unwrap()), ("n".into(), Template::literal("1 2"))],
            headers: vec![("X-User".into(), Template::compile("u{{ user }}").unwrap())],
            body: Body::Form(vec![("a".into(), Template::compile("{{ word }}").unwrap())]),
            extract: Vec::new(),
            checks: Vec::new(),
            fixed: None,
            target: 0,
            write: None,
            read: None,
        };
        let request = step.render(&vars(&[("word", "a b&c=d")])).expect("renders");
        assert_eq!(request.path, "/s/7?q=a+b%26c%3Dd&n=1+2");
        assert_eq!(request.headers, [("X-User".to_string(), "u7".to_string())]);
        assert_eq!(request.body.map(|b| b.to_vec()), Some(b"a=a+b%26c%3Dd".to_vec()));
    }
}
