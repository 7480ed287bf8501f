//! `pummel-k8s-run`: a distributed run through the Kubernetes API (`pummel k8s run`).
//!
//! [`run`] creates the objects `pummel k8s render` describes (led by a Secret with a fresh
//! token), each labelled `pummel.dev/run=<id>`; waits, within `--agents-timeout`, for the
//! coordinator to run and every agent to be scheduled; follows the coordinator's log to the
//! caller's output; takes the results document out of that log (the coordinator prints it
//! framed at its end, see [`pummel_k8s::frame`]); reads the coordinator's exit code, the
//! run's verdict; and deletes everything it created, whichever way it ends: verdict, error,
//! timeout or cancellation (Ctrl-C), unless asked to keep it.
//!
//! It is its own crate so that `pummel-k8s` (rendering, plain data) stays free of the
//! Kubernetes client and its HTTP stack, which only this command needs. The client and the
//! cancellation are arguments, so tests drive a [`kube::Client`] over `tower_test`'s mock
//! service with a scripted API server, as kube-rs tests itself (`tests/api.rs`).
//!
//! Files, one job each: `spec` (what to run, [`RunSpec`]), `objects` (the API's types, create
//! and delete), `wait` (the pods until they run), `follow` (the log), `verdict` (the exit
//! code), `progress` ([`Progress`]) and `error` ([`RunError`]).

mod error;
mod follow;
mod objects;
mod progress;
mod spec;
mod verdict;
mod wait;

use std::future::Future;
use std::io::Write;
use std::time::Duration;

use k8s_openapi::api::core::v1::Pod;
use kube::{Api, Client};
use pummel_k8s::frame::{FrameError, Framed};
use pummel_k8s::{RUN_LABEL, RenderRequest};

pub use error::RunError;
pub use progress::Progress;
pub use spec::{RunSpec, new_run_id, new_token};

/// How long one delete may take before it is given up (and reported as left behind).
const DELETE_WAIT: Duration = Duration::from_secs(20);

/// How a run ended once the coordinator had ended.
#[derive(Debug)]
pub struct Outcome {
    /// The coordinator container's exit code: the run's verdict (0 pass, 1 thresholds
    /// failed or aborted, 2 usage, 3 could not start).
    pub exit_code: i32,
    /// The kubelet's reason for the end (`Completed`, `Error`, `OOMKilled`).
    pub reason: String,
    /// The results document from the log, exactly as the coordinator wrote it, or why not.
    pub results: Result<Framed, FrameError>,
}

/// Carries out the run `spec` with `client`: writes the coordinator's log to `out` and
/// reports each step to `progress`. `cancel` resolving (Ctrl-C) stops it with
/// [`RunError::Interrupted`]. Every object created is deleted before this returns, on every
/// path, unless `spec.keep`.
pub async fn run(
    client: Client,
    spec: &RunSpec,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
    cancel: impl Future<Output = ()>,
) -> Result<Outcome, RunError> {
    let request = RenderRequest { run_id: Some(spec.run_id.clone()), ..spec.request.clone() };
    // Every refusal of the flags comes before the first call.
    let objects = objects::build(&request, spec.token.as_deref())?;
    let mut created: Vec<(&'static str, String)> = Vec::new();
    let result = tokio::select! {
        result = drive(&client, spec, &request, &objects, &mut created, out, progress) => result,
        () = cancel => Err(RunError::Interrupted),
    };
    let left = if spec.keep { created.len() } else { cleanup(&client, &request.namespace, &created, progress).await };
    if left > 0 {
        progress(Progress::Left {
            command: format!(
                "kubectl delete jobs,services,configmaps,secrets -n {} -l {RUN_LABEL}={}",
                request.namespace, spec.run_id
            ),
        });
    }
    result
}

/// Everything between the first create and the verdict; `created` lists what exists.
async fn drive(
    client: &Client,
    spec: &RunSpec,
    request: &RenderRequest,
    objects: &[objects::Object],
    created: &mut Vec<(&'static str, String)>,
    out: &mut dyn Write,
    progress: &mut dyn FnMut(Progress),
) -> Result<Outcome, RunError> {
    let namespace = &request.namespace;
    for object in objects {
        let (kind, name) = (object.kind(), object.name());
        object.create(client, namespace).await.map_err(|source| RunError::Create {
            kind,
            namespace: namespace.clone(),
            name: name.clone(),
            error: Box::new(source),
        })?;
        created.push((kind, name.clone()));
        progress(Progress::Created { kind, name });
    }
    let pods: Api<Pod> = Api::namespaced(client.clone(), namespace);
    let coordinator = wait::ready(&pods, &spec.run_id, request.agents, spec.agents_wait, progress).await?;
    progress(Progress::Following { pod: coordinator.clone() });
    let results = follow::follow(&pods, &coordinator, &spec.run_id, out, progress).await?;
    let (exit_code, reason) = verdict::exit_code(&pods, &coordinator).await?;
    progress(Progress::Exited { code: exit_code, reason: reason.clone() });
    Ok(Outcome { exit_code, reason, results })
}

/// Deletes what was created, the last first; returns how many could not be deleted.
async fn cleanup(
    client: &Client,
    namespace: &str,
    created: &[(&'static str, String)],
    progress: &mut dyn FnMut(Progress),
) -> usize {
    let mut left = 0;
    for (kind, name) in created.iter().rev() {
        let why = match tokio::time::timeout(DELETE_WAIT, objects::delete(client, namespace, kind, name)).await {
            Ok(Ok(())) => None,
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => Some(format!("no answer within {} s", DELETE_WAIT.as_secs())),
        };
        match why {
            None => progress(Progress::Deleted { kind, name: name.clone() }),
            Some(why) => {
                left += 1;
                progress(Progress::NotDeleted { kind, name: name.clone(), why });
            }
        }
    }
    left
}
