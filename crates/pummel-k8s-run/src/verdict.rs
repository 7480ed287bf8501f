//! The coordinator's verdict: its container's exit code, read from the pod's status once its
//! log has ended (the kubelet may report the end a moment after the log closes).

use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::Api;
use pummel_k8s::COORDINATOR_CONTAINER;
use tokio::time::{Instant, sleep};

use crate::error::RunError;

/// How long the status may lag behind the end of the log.
const STATUS_WAIT: Duration = Duration::from_secs(60);
/// Between two reads of the status.
const POLL: Duration = Duration::from_secs(1);

/// The exit code and reason of `pod`'s coordinator container.
pub(crate) async fn exit_code(pods: &Api<Pod>, pod: &str) -> Result<(i32, String), RunError> {
    let deadline = Instant::now() + STATUS_WAIT;
    loop {
        let current = pods
            .get_opt(pod)
            .await
            .map_err(|source| RunError::Api { what: format!("read the status of pod {pod}"), error: Box::new(source) })?
            .ok_or_else(|| RunError::NoVerdict(format!("its pod {pod} was deleted before it ended")))?;
        let status = current.status.unwrap_or_default();
        let container =
            status.container_statuses.unwrap_or_default().into_iter().find(|s| s.name == COORDINATOR_CONTAINER);
        if let Some(ended) = container.as_ref().and_then(|c| c.state.as_ref()).and_then(|s| s.terminated.as_ref()) {
            return Ok((ended.exit_code, ended.reason.clone().unwrap_or_else(|| "no reason given".into())));
        }
        if matches!(status.phase.as_deref(), Some("Failed" | "Succeeded")) {
            return Err(RunError::NoVerdict(format!(
                "its pod {pod} ended ({}) without its container ending: {}",
                status.reason.as_deref().unwrap_or("no reason given"),
                status.message.as_deref().unwrap_or("no message")
            )));
        }
        if Instant::now() + POLL > deadline {
            return Err(RunError::NoVerdict(format!(
                "its container in pod {pod} still runs {} s after its log ended (the log stream broke?)",
                STATUS_WAIT.as_secs()
            )));
        }
        sleep(POLL).await;
    }
}
