//! Why `pummel k8s run` stopped before it had the coordinator's verdict ([`RunError`]); each
//! says what to look at, and [`RunError::exit_code`] maps it to pummel's exit codes.

use std::time::Duration;

use pummel_k8s::RenderError;
use thiserror::Error;

/// A run that ended without the coordinator's verdict. Whatever it had created is deleted
/// before this is returned (unless `--keep`).
#[derive(Debug, Error)]
pub enum RunError {
    /// The flags describe objects Kubernetes would refuse (exit 2).
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Creating an object failed (no cluster, no permission, a name already taken).
    #[error("cannot create {kind} {namespace}/{name}: {}", api_message(.error))]
    Create {
        /// The object's kind.
        kind: &'static str,
        /// Its namespace.
        namespace: String,
        /// Its name.
        name: String,
        /// What the client or the API server said (in the message, so not a `source`:
        /// printed once).
        error: Box<kube::Error>,
    },
    /// Another API call failed (watching the pods, following the log, reading a status).
    #[error("cannot {what}: {}", api_message(.error))]
    Api {
        /// What was being done.
        what: String,
        /// What the client or the API server said (in the message, so not a `source`:
        /// printed once).
        error: Box<kube::Error>,
    },
    /// A pod cannot start: its image cannot be pulled, or its container cannot be created.
    #[error("pod {pod} cannot start: {reason}{}", detail(.message))]
    PodCannotStart {
        /// The pod's name.
        pod: String,
        /// The container's waiting reason (`ErrImagePull`, `ImagePullBackOff`, ...).
        reason: String,
        /// The kubelet's message.
        message: String,
    },
    /// An agent's pod failed before the coordinator's log was followed.
    #[error("agent pod {pod} failed before the run started: {why}")]
    AgentFailed {
        /// The pod's name.
        pod: String,
        /// Its container's reason and exit code, or the pod's.
        why: String,
    },
    /// The coordinator did not run, or the agents were not all scheduled, within
    /// `--agents-timeout`.
    #[error("after {}: {state}", humanize(.waited))]
    Timeout {
        /// How long `pummel k8s run` waited.
        waited: Duration,
        /// What was still missing, and why as far as the pods say (unschedulable, pending).
        state: String,
    },
    /// The coordinator's container never ended with an exit code (its pod was deleted or
    /// evicted, or it was still running when its log ended).
    #[error("no verdict from the coordinator: {0}")]
    NoVerdict(String),
    /// SIGINT or SIGTERM (or the caller's cancellation) stopped the run.
    #[error("interrupted")]
    Interrupted,
    /// A rendered object does not fit the API's type (a bug).
    #[error("internal error: {0}")]
    Internal(String),
}

impl RunError {
    /// pummel's exit code for this error: 2 for bad flags, 130 when interrupted, 3 else (the
    /// run could not be carried out).
    pub fn exit_code(&self) -> u8 {
        match self {
            RunError::Render(_) => 2,
            RunError::Interrupted => 130,
            _ => 3,
        }
    }
}

/// The API server's message and reason when it answered, else the client's error, with a
/// hint for the answers people meet first.
fn api_message(error: &kube::Error) -> String {
    match error {
        kube::Error::Api(response) => {
            let hint = match response.code {
                401 => "; the kubeconfig's credentials were refused",
                403 => "; the kubeconfig's user lacks the permission (kubectl auth can-i ...)",
                404 if response.message.contains("namespace") => "; create the namespace first",
                409 => {
                    "; a run with the same --name is going on or was kept (--keep): delete its objects or choose \
                     another --name"
                }
                _ => "",
            };
            format!("{} ({} {}){hint}", response.message, response.code, response.reason)
        }
        kube::Error::Service(_) | kube::Error::HyperError(_) => {
            format!("{} (is the API server of the kubeconfig reachable from here?)", chain(error))
        }
        other => chain(other),
    }
}

/// An error and its sources, each said once (`client error (Connect): tcp connect error:
/// Connection refused`).
fn chain(error: &dyn std::error::Error) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(error);
    while let Some(error) = next {
        let text = error.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = error.source();
    }
    parts.join(": ")
}

fn detail(message: &str) -> String {
    if message.is_empty() { String::new() } else { format!(" ({message})") }
}

fn humanize(duration: &Duration) -> String {
    let secs = duration.as_secs();
    if secs >= 60 && secs % 60 == 0 { format!("{} min", secs / 60) } else { format!("{:.1} s", duration.as_secs_f64()) }
}
