//! `[[fault]]` and `[proxy.NAME]` as written (issue 13): what a run does to its target, and
//! the proxies it starts for that. Interpreted by `validate/fault.rs` through the same builder
//! as `--fault` (`pummel_faults::FaultFields`).

use serde::Deserialize;
use toml::Spanned;

use super::{DurationText, RawMap};

/// `[[fault]]`: when, for how long, and exactly one action.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawFault {
    /// How output and results call it (default: made from its action, `db down`).
    pub name: Option<Spanned<String>>,
    /// When it starts, from the run's start: `"30s"`.
    pub at: Option<Spanned<DurationText>>,
    /// How long it lasts (until the run's end when absent).
    #[serde(rename = "for")]
    pub length: Option<Spanned<DurationText>>,
    /// A `[proxy.NAME]` to change, with `toxic` or `down`.
    pub proxy: Option<Spanned<String>>,
    /// `toxic = { type = "latency", latency = 200, jitter = 10 }`: toxiproxy's attribute names
    /// and units, plus `stream`, `toxicity` and `name`.
    pub toxic: Option<Spanned<RawMap<toml::Value>>>,
    /// `down = true`: the proxy closes its listener and connections.
    pub down: Option<Spanned<bool>>,
    /// The process to act on.
    pub pid: Option<Spanned<i64>>,
    /// Act on the processes listening on this TCP port.
    pub port: Option<Spanned<i64>>,
    /// `"STOP"`: SIGSTOP now, SIGCONT when the fault ends.
    pub signal: Option<Spanned<String>>,
    /// `kill = true`: SIGKILL.
    pub kill: Option<Spanned<bool>>,
    /// With `kill`: the shell command that starts the process again when the fault ends.
    pub restart: Option<Spanned<String>>,
    /// A shell command run when the fault starts.
    pub exec: Option<Spanned<String>>,
    /// With `exec`: the shell command run when it ends.
    pub undo: Option<Spanned<String>>,
}

/// `[proxy.NAME]`: a TCP proxy the run starts before the load and stops after it.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProxy {
    /// Where it listens (`"127.0.0.1:18080"`, or a port alone for loopback).
    pub listen: Option<Spanned<String>>,
    /// Where it connects (`"127.0.0.1:8080"`).
    pub upstream: Option<Spanned<String>>,
}
