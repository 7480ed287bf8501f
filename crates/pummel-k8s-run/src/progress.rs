//! What `pummel k8s run` reports while it works ([`Progress`]): the binary prints each on
//! stderr; tests read them back.

use std::fmt;

/// One step or state change of a run, in the order they happen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    /// An object was created.
    Created {
        /// Its kind (`Secret`, `ConfigMap`, `Service`, `Job`).
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// The pods, whenever their state changes while waiting.
    Pods {
        /// The coordinator's state (`none yet`, `Pending`, `ContainerCreating`, `Running`, ...).
        coordinator: String,
        /// Agents' pods the scheduler placed on a node.
        scheduled: u32,
        /// Agents' pods whose container runs.
        running: u32,
        /// Agents the run needs.
        agents: u32,
    },
    /// A pod cannot be placed on a node yet (it may be once nodes are added).
    Unschedulable {
        /// The pod's name.
        pod: String,
        /// The scheduler's message (`0/3 nodes are available: 3 Insufficient cpu.`).
        message: String,
    },
    /// The coordinator's log is followed from here on (on stdout).
    Following {
        /// The coordinator's pod.
        pod: String,
    },
    /// The coordinator's log ended before its container did (it is read once more).
    LogEnded {
        /// Why, when the stream broke.
        why: String,
    },
    /// The coordinator's container exited.
    Exited {
        /// Its exit code.
        code: i32,
        /// The kubelet's reason (`Completed`, `Error`, `OOMKilled`).
        reason: String,
    },
    /// An object was deleted (or was already gone).
    Deleted {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
    },
    /// An object could not be deleted: it is left in the cluster.
    NotDeleted {
        /// Its kind.
        kind: &'static str,
        /// Its name.
        name: String,
        /// Why.
        why: String,
    },
    /// The run's objects are left for debugging (`--keep`), or some could not be deleted:
    /// the command that deletes them.
    Left {
        /// `kubectl delete ... -l pummel.dev/run=<id>`.
        command: String,
    },
}

impl fmt::Display for Progress {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Progress::Created { kind, name } => write!(f, "created {kind} {name}"),
            Progress::Pods { coordinator, scheduled, running, agents } => write!(
                f,
                "coordinator: {coordinator}; agents: {scheduled}/{agents} scheduled, {running}/{agents} running"
            ),
            Progress::Unschedulable { pod, message } => write!(f, "pod {pod} is unschedulable: {message}"),
            Progress::Following { pod } => write!(f, "following the coordinator's log (pod {pod})"),
            Progress::LogEnded { why } => write!(f, "the coordinator's log ended: {why}"),
            Progress::Exited { code, reason } => write!(f, "the coordinator exited with {code} ({reason})"),
            Progress::Deleted { kind, name } => write!(f, "deleted {kind} {name}"),
            Progress::NotDeleted { kind, name, why } => write!(f, "could not delete {kind} {name}: {why}"),
            Progress::Left { command } => write!(f, "objects left in the cluster; delete them with: {command}"),
        }
    }
}
