//! A quick run (`pummel run URL`, `find-limit`, `hold`) as a one-scenario plan.
//!
//! The engine runs scenarios only: a quick run's one request under one load is turned into a
//! scenario here, where the plan is built, and from then on runs exactly like a plan file's
//! (one executor for every run). The request is encoded once, as wrk does, unless it is
//! signed (`--aws-sigv4`), when its body's hash is computed once and the signature per request.

use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;

use super::load::{HoldLoad, HoldMode, Http2Settings, Load};
use super::target::Target;
use super::{PlanError, Scheme};
use crate::flow::payload::Payload;
use crate::flow::template::{Globals, Template};
use crate::flow::{Body, Flow, HoldStep, HoldWebSocket, RequestStep, Scenario, Scenarios, Step};
use crate::proto::http1::encode_request;

/// What each request of a quick run sends.
#[derive(Debug, Clone, Serialize)]
pub struct RequestSpec {
    /// HTTP method.
    pub method: String,
    /// Extra headers, in order.
    pub headers: Vec<(String, String)>,
    /// Request body (empty for none).
    #[serde(serialize_with = "body_len")]
    pub body: Vec<u8>,
}

fn body_len<S: serde::Serializer>(body: &[u8], s: S) -> Result<S::Ok, S::Error> {
    s.serialize_u64(body.len() as u64)
}

impl RequestSpec {
    /// Renders the request bytes once; every request of the run writes them unchanged.
    pub fn encode(&self, target: &Target, keepalive: bool) -> Result<Vec<u8>, PlanError> {
        Ok(encode_request(
            &self.method,
            &target.path_and_query,
            &target.host_header,
            &self.headers,
            &self.body,
            keepalive,
        )?)
    }

    /// True for HEAD requests, whose responses carry no body.
    pub fn is_head(&self) -> bool {
        self.method.eq_ignore_ascii_case("HEAD")
    }
}

/// A quick run: one request, one load, over HTTP/1.1 or HTTP/2.
#[derive(Debug, Clone)]
pub struct QuickRun {
    /// What every request sends.
    pub request: RequestSpec,
    /// How load is offered. For HTTP/2, a closed load's `connections` are connections, each
    /// carrying `streams` users.
    pub load: Load,
    /// Speak HTTP/2 (`--http2`); `None`: HTTP/1.1.
    pub http2: Option<Http2Settings>,
}

impl QuickRun {
    /// The one-scenario plan of this run against `target`. `signed`: requests are signed
    /// (rendered per request, body hashed once); `duration`: how long the scenario lasts (`-d`).
    pub fn scenarios(
        &self,
        target: &Target,
        keepalive: bool,
        signed: bool,
        duration: Option<Duration>,
    ) -> Result<Scenarios, PlanError> {
        let (load, step) = match &self.load {
            Load::Hold(hold) => (self.load.clone(), Step::Hold(Arc::new(self.hold_step(hold, target, keepalive)?))),
            _ => (self.users_load(), Step::Request(Arc::new(self.request_step(target, keepalive, signed)?))),
        };
        Ok(Scenarios {
            list: vec![Scenario {
                name: "quick".into(),
                load,
                ramp_up: Duration::ZERO,
                user_stages: Vec::new(),
                feeders: Vec::new(),
                iterations: None,
                duration,
                flow: Flow { steps: vec![step] },
                http2: self.http2.clone(),
                start: Duration::ZERO,
                after: None,
                export: Vec::new(),
            }],
            names: Vec::new(),
            checks: Vec::new(),
            branches: Vec::new(),
            globals: Arc::new(Globals::default()),
            feeders: Vec::new(),
            named_thresholds: Vec::new(),
        })
    }

    /// The scenario's load: over HTTP/2 a closed run's `-c C` connections carry `streams`
    /// users each, so that C connections are kept exactly full.
    fn users_load(&self) -> Load {
        match (&self.load, &self.http2) {
            (Load::Closed(closed), Some(http2)) => {
                let mut closed = closed.clone();
                closed.connections = closed.connections.saturating_mul(http2.streams.max(1));
                Load::Closed(closed)
            }
            (load, _) => load.clone(),
        }
    }

    fn request_step(&self, target: &Target, keepalive: bool, signed: bool) -> Result<RequestStep, PlanError> {
        let request = &self.request;
        // Encoded once for HTTP/1.1 (and checked either way: a bad header is a usage error).
        let encoded = request.encode(target, keepalive)?;
        let fixed = (!signed && self.http2.is_none()).then(|| Arc::from(encoded));
        Ok(RequestStep {
            stats: 0,
            method: request.method.clone(),
            path: Template::literal(&target.path_and_query),
            query: Vec::new(),
            headers: request.headers.iter().map(|(n, v)| (n.clone(), Template::literal(v))).collect(),
            body: match (request.body.is_empty(), signed) {
                (true, _) => Body::Empty,
                (false, false) => Body::Fixed(Arc::from(request.body.as_slice())),
                // Signed: the body's hash is computed once here, not per request.
                (false, true) => Body::Payload(Payload {
                    bytes: Arc::from(request.body.as_slice()),
                    sha256_hex: Arc::from(crate::flow::sigv4::sha256_hex(&request.body)),
                }),
            },
            extract: Vec::new(),
            checks: Vec::new(),
            fixed,
            target: 0,
            write: None,
            read: None,
        })
    }

    fn hold_step(&self, hold: &HoldLoad, target: &Target, keepalive: bool) -> Result<HoldStep, PlanError> {
        let request = &self.request;
        let encoded: Arc<[u8]> = Arc::from(request.encode(target, keepalive)?);
        let ws = (hold.mode == HoldMode::WebSocket).then(|| {
            let scheme = match target.scheme {
                Scheme::Http => "ws",
                Scheme::Https => "wss",
            };
            HoldWebSocket {
                url: format!("{scheme}://{}{}", target.host_header, target.path_and_query),
                headers: request.headers.clone(),
            }
        });
        Ok(HoldStep { mode: hold.mode, drip: hold.drip, head_request: request.is_head(), request: encoded, ws })
    }
}
