//! Waiting for the pods: until the coordinator's container runs (or has already ended) and
//! every agent's pod is on a node, within `--agents-timeout`.
//!
//! The pods of the run (label `pummel.dev/run=<id>`) are watched from resourceVersion 0, which
//! starts with the current state; a watch that ends or fails is opened again the same way, so
//! no event can be missed. A pod whose image cannot be pulled or whose container cannot be
//! created stops the wait at once; an unschedulable pod is reported and waited for (a cluster
//! autoscaler may add a node), and named in the timeout's error.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::TryStreamExt as _;
use k8s_openapi::api::core::v1::{ContainerState, Pod};
use kube::Api;
use kube::api::{WatchEvent, WatchParams};
use pummel_k8s::{COMPONENT_LABEL, COORDINATOR_CONTAINER, RUN_LABEL};
use tokio::time::{Instant, sleep_until, timeout_at};

use crate::error::RunError;
use crate::progress::Progress;

/// Waiting reasons of a container that will not start by waiting longer.
const CANNOT_START: [&str; 6] = [
    "ErrImagePull",
    "ImagePullBackOff",
    "InvalidImageName",
    "ErrImageNeverPull",
    "CreateContainerConfigError",
    "CreateContainerError",
];
/// The longest one watch asks the server for (the API server's own cap is near 5 minutes).
const WATCH_SECONDS: u64 = 290;
/// The pause before a watch that ended or failed is opened again.
const REWATCH: Duration = Duration::from_secs(1);

/// Watches the run's pods until the coordinator runs and `agents` agents are scheduled;
/// returns the coordinator pod's name.
pub(crate) async fn ready(
    pods: &Api<Pod>,
    run_id: &str,
    agents: u32,
    wait: Duration,
    progress: &mut dyn FnMut(Progress),
) -> Result<String, RunError> {
    let deadline = Instant::now() + wait;
    let selector = format!("{RUN_LABEL}={run_id}");
    let mut seen = Seen::default();
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let params = WatchParams::default().labels(&selector).timeout(left.as_secs().clamp(1, WATCH_SECONDS) as u32);
        let stream = match timeout_at(deadline, pods.watch(&params, "0")).await {
            Err(_) => return Err(seen.timeout(wait, agents)),
            Ok(Err(source)) => {
                return Err(RunError::Api { what: "watch the run's pods".into(), error: Box::new(source) });
            }
            Ok(Ok(stream)) => stream,
        };
        let mut stream = std::pin::pin!(stream);
        // A watch from resourceVersion 0 starts with every pod that exists: the state is
        // rebuilt from it.
        let mut state: BTreeMap<String, Pod> = BTreeMap::new();
        loop {
            let event = match timeout_at(deadline, stream.try_next()).await {
                Err(_) => return Err(seen.timeout(wait, agents)),
                Ok(Ok(Some(event))) => event,
                // Ended (the server's timeout) or broke: watch again.
                Ok(Ok(None)) | Ok(Err(_)) => break,
            };
            match event {
                WatchEvent::Added(pod) | WatchEvent::Modified(pod) => {
                    state.insert(pod.metadata.name.clone().unwrap_or_default(), pod);
                }
                WatchEvent::Deleted(pod) => {
                    state.remove(pod.metadata.name.as_deref().unwrap_or_default());
                }
                WatchEvent::Bookmark(_) => continue,
                // 410 Gone (too old a version) and the like: watch again.
                WatchEvent::Error(_) => break,
            }
            if let Some(coordinator) = seen.judge(&state, agents, progress)? {
                return Ok(coordinator);
            }
        }
        if timeout_at(deadline, sleep_until(Instant::now() + REWATCH)).await.is_err() {
            return Err(seen.timeout(wait, agents));
        }
    }
}

/// What the wait has seen so far: the last summary reported, and why pods are not placed.
#[derive(Debug, Default)]
struct Seen {
    summary: Option<Progress>,
    unschedulable: BTreeMap<String, String>,
}

impl Seen {
    /// Reports what changed; the coordinator's pod name once the run can be followed, an
    /// error once a pod cannot start.
    fn judge(
        &mut self,
        state: &BTreeMap<String, Pod>,
        agents: u32,
        progress: &mut dyn FnMut(Progress),
    ) -> Result<Option<String>, RunError> {
        let mut coordinator: Option<(&String, &Pod)> = None;
        let (mut scheduled, mut running) = (0, 0);
        for (name, pod) in state {
            if let Some((reason, message)) = cannot_start(pod) {
                return Err(RunError::PodCannotStart { pod: name.clone(), reason, message });
            }
            if let Some(message) = unschedulable(pod) {
                if self.unschedulable.get(name) != Some(&message) {
                    progress(Progress::Unschedulable { pod: name.clone(), message: message.clone() });
                    self.unschedulable.insert(name.clone(), message);
                }
            } else {
                self.unschedulable.remove(name);
            }
            match component(pod) {
                Some("coordinator") => coordinator = Some((name, pod)),
                Some("agent") => {
                    if let Some(why) = failed(pod) {
                        return Err(RunError::AgentFailed { pod: name.clone(), why });
                    }
                    scheduled += u32::from(is_scheduled(pod));
                    running += u32::from(container_state(pod, None).is_some_and(|s| s.running.is_some()));
                }
                _ => {}
            }
        }
        let coordinator_state = coordinator.map(|(_, pod)| container_state(pod, Some(COORDINATOR_CONTAINER)));
        let summary = Progress::Pods {
            coordinator: match coordinator {
                None => "no pod yet".into(),
                Some((_, pod)) => describe(pod),
            },
            scheduled,
            running,
            agents,
        };
        if self.summary.as_ref() != Some(&summary) {
            progress(summary.clone());
            self.summary = Some(summary);
        }
        let (ran, ended) = match coordinator_state.flatten() {
            Some(state) => (state.running.is_some() || state.terminated.is_some(), state.terminated.is_some()),
            None => (false, false),
        };
        // A coordinator that already ended (a plan refused in the pod, a very short run) is
        // followed whatever the agents do: its log and exit code are the answer.
        Ok(coordinator.filter(|_| ended || (ran && scheduled >= agents)).map(|(name, _)| name.clone()))
    }

    /// The timeout's error: what was missing, and why as far as the pods tell.
    fn timeout(&self, waited: Duration, agents: u32) -> RunError {
        let mut state = match &self.summary {
            Some(Progress::Pods { coordinator, scheduled, running, .. }) => format!(
                "the coordinator is {coordinator} and {scheduled} of {agents} agents are scheduled ({running} running)"
            ),
            _ => "no pod of the run appeared (see `kubectl describe job` for what the Job controller says)".into(),
        };
        for (pod, message) in &self.unschedulable {
            state.push_str(&format!("; pod {pod} is unschedulable: {message}"));
        }
        state.push_str(" (raise --agents-timeout if the cluster is only slow)");
        RunError::Timeout { waited, state }
    }
}

fn component(pod: &Pod) -> Option<&str> {
    pod.metadata.labels.as_ref()?.get(COMPONENT_LABEL).map(String::as_str)
}

/// The state of the container named `name` (or of the first one).
fn container_state<'a>(pod: &'a Pod, name: Option<&str>) -> Option<&'a ContainerState> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find(|s| name.is_none_or(|n| s.name == n))?.state.as_ref()
}

/// The pod's phase, or its container's waiting reason when it has one (`ContainerCreating`).
fn describe(pod: &Pod) -> String {
    if let Some(reason) = container_state(pod, None).and_then(|s| s.waiting.as_ref()).and_then(|w| w.reason.clone()) {
        return reason;
    }
    pod.status.as_ref().and_then(|s| s.phase.clone()).unwrap_or_else(|| "Pending".into())
}

fn cannot_start(pod: &Pod) -> Option<(String, String)> {
    let statuses = pod.status.as_ref()?.container_statuses.as_ref()?;
    statuses.iter().find_map(|status| {
        let waiting = status.state.as_ref()?.waiting.as_ref()?;
        let reason = waiting.reason.as_deref()?;
        CANNOT_START.contains(&reason).then(|| (reason.to_string(), waiting.message.clone().unwrap_or_default()))
    })
}

fn is_scheduled(pod: &Pod) -> bool {
    let conditions = pod.status.as_ref().and_then(|s| s.conditions.as_ref());
    conditions.is_some_and(|c| c.iter().any(|c| c.type_ == "PodScheduled" && c.status == "True"))
}

/// The scheduler's message when it cannot place the pod.
fn unschedulable(pod: &Pod) -> Option<String> {
    let conditions = pod.status.as_ref()?.conditions.as_ref()?;
    conditions
        .iter()
        .find(|c| c.type_ == "PodScheduled" && c.status == "False" && c.reason.as_deref() == Some("Unschedulable"))
        .map(|c| c.message.clone().unwrap_or_default())
}

/// Why a pod failed, when it did.
fn failed(pod: &Pod) -> Option<String> {
    let status = pod.status.as_ref()?;
    if status.phase.as_deref() != Some("Failed") {
        return None;
    }
    if let Some(ended) = container_state(pod, None).and_then(|s| s.terminated.as_ref()) {
        return Some(format!(
            "its container exited with {} ({})",
            ended.exit_code,
            ended.reason.as_deref().unwrap_or("no reason given")
        ));
    }
    Some(format!(
        "{}: {}",
        status.reason.as_deref().unwrap_or("Failed"),
        status.message.as_deref().unwrap_or("no message")
    ))
}
