//! What a fault is, once validated: when it starts, how long it lasts, and its one action.

use std::time::Duration;

use pummel_proxy::Toxic;
use serde::Serialize;

/// Every fault of a run and the proxies it starts for them.
#[derive(Debug, Clone, Default, Serialize)]
pub struct FaultPlan {
    /// Proxies the run starts before the load and stops after it (`[proxy.NAME]`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub proxies: Vec<ProxyDef>,
    /// The faults, in the order written.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub faults: Vec<Fault>,
    /// What recovery is judged against, when the user said (`steady_state`, `--steady-state`);
    /// issue 13's defaults otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub steady_state: Option<pummel_results::fault::SteadyState>,
}

impl FaultPlan {
    /// True when the run injects nothing.
    pub fn is_empty(&self) -> bool {
        self.faults.is_empty() && self.proxies.is_empty()
    }
}

/// A proxy the run starts itself: clients (the load) connect to `listen`, it connects to
/// `upstream`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ProxyDef {
    /// Its name, which faults refer to.
    pub name: String,
    /// Where it listens (`127.0.0.1:18080`).
    pub listen: String,
    /// Where it connects (`127.0.0.1:8080`).
    pub upstream: String,
}

/// One fault.
#[derive(Debug, Clone, Serialize)]
pub struct Fault {
    /// Its name in output and results (`db down`).
    pub name: String,
    /// When it starts, from the run's start.
    #[serde(serialize_with = "seconds")]
    pub at: Duration,
    /// How long it lasts; `None`: until the run ends.
    #[serde(rename = "for", serialize_with = "optional_seconds")]
    pub length: Option<Duration>,
    /// What it does.
    pub action: Action,
}

/// The one thing a fault does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Action {
    /// Changes a proxy the run started.
    Proxy {
        /// The proxy's name.
        proxy: String,
        /// Down, or toxics.
        effect: ProxyEffect,
    },
    /// SIGSTOP now, SIGCONT when the fault ends.
    Stop {
        /// The process(es).
        target: ProcessTarget,
    },
    /// SIGKILL now; `restart` (a shell command) when the fault ends, then a wait for the port.
    Kill {
        /// The process(es).
        target: ProcessTarget,
        /// The command that starts it again, if any.
        restart: Option<String>,
    },
    /// A shell command now, and `undo` when the fault ends.
    Exec {
        /// Run at the start (`sh -c`).
        command: String,
        /// Run at the end.
        undo: Option<String>,
    },
}

/// What a proxy fault does.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProxyEffect {
    /// The proxy closes its listener and connections (toxiproxy's `enabled: false`).
    Down,
    /// Toxics added for the fault's time (one per direction with `stream = "both"`).
    Toxics(Vec<Toxic>),
}

/// Which process a process fault acts on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ProcessTarget {
    /// This PID, and only it.
    Pid(u32),
    /// Every process listening on this TCP port when the fault starts (a pre-fork server's
    /// master and workers alike), found through /proc.
    Port(u16),
}

impl std::fmt::Display for ProcessTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ProcessTarget::Pid(pid) => write!(f, "pid {pid}"),
            ProcessTarget::Port(port) => write!(f, "port {port}"),
        }
    }
}

impl Fault {
    /// What the fault does, in words: `proxy db down`, `SIGSTOP pid 1234`, ...
    pub fn describe(&self) -> String {
        match &self.action {
            Action::Proxy { proxy, effect: ProxyEffect::Down } => format!("proxy {proxy} down"),
            Action::Proxy { proxy, effect: ProxyEffect::Toxics(toxics) } => {
                let list: Vec<String> = toxics.iter().map(short_toxic).collect();
                format!("proxy {proxy}: {}", list.join(", "))
            }
            Action::Stop { target } => format!("SIGSTOP {target} (SIGCONT at the end)"),
            Action::Kill { target, restart: Some(cmd) } => format!("SIGKILL {target}, restart `{cmd}`"),
            Action::Kill { target, restart: None } => format!("SIGKILL {target}"),
            Action::Exec { command, undo: Some(undo) } => format!("exec `{command}`, undo `{undo}`"),
            Action::Exec { command, undo: None } => format!("exec `{command}`"),
        }
    }

    /// When it ends, from the run's start (`None`: at the run's end).
    pub fn end(&self) -> Option<Duration> {
        self.length.map(|l| self.at + l)
    }
}

/// `latency latency=200 jitter=0`, with ` upstream` when not downstream and ` toxicity 0.5`
/// when not 1.
pub(crate) fn short_toxic(toxic: &Toxic) -> String {
    let mut out = toxic.kind.type_name().to_string();
    for (name, value) in toxic.kind.attribute_values() {
        out.push_str(&format!(" {name}={value}"));
    }
    if toxic.stream != pummel_proxy::Stream::Downstream {
        out.push_str(&format!(" {}", toxic.stream.as_str()));
    }
    if toxic.toxicity < 1.0 {
        out.push_str(&format!(" toxicity {}", toxic.toxicity));
    }
    out
}

fn seconds<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(d.as_secs_f64())
}

fn optional_seconds<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64(d.as_secs_f64()),
        None => s.serialize_none(),
    }
}
