//! `pummel-k8s`: pummel on Kubernetes. It renders the objects of a distributed run: the plan
//! and the files it reads in a ConfigMap, the coordinator (`pummel run PLAN --agents N
//! --listen ...`) as a Job behind a Service, and the agents (`pummel agent --coordinator ...`)
//! as an Indexed Job of N pods, with the token from a Secret the user creates.
//!
//! The crate knows Kubernetes, not pummel's command line: the `pummel` binary loads the plan,
//! reads the files it names and hands them over as a [`RenderRequest`]; [`render`] checks
//! what Kubernetes would refuse (names, ConfigMap keys and size, resource quantities) and
//! returns the YAML documents. What the cluster decides rather than a manifest (node-level
//! sysctls, sysctls the kubelet must allow, the open-file limit) is written as YAML comments,
//! from the list `pummel doctor` recommends ([`pummel_system::doctor::recommended`]).
//!
//! ```
//! use pummel_k8s::{PlanFiles, RenderRequest};
//!
//! let plan = PlanFiles::new("plan.toml", b"[target]\nbase_url = \"http://api\"\n".to_vec());
//! let request = RenderRequest::new(plan, 3, "registry.example/pummel:0.1");
//! let yaml = pummel_k8s::render(&request).unwrap();
//! assert!(yaml.contains("completionMode: Indexed"));
//! ```
//!
//! Files, one job each: `request` (what to render, [`RenderRequest`]), `error`
//! ([`RenderError`]), `files` (plan files → ConfigMap keys and mount paths), `quantity`
//! (resource quantities), `sysctls` (which recommended settings a pod may set), `objects`
//! (the Kubernetes object types, as serde structs), `manifests` (building them), `yaml`
//! (the documents with their comments) and `frame` (the results document in the
//! coordinator's log, for `pummel k8s run`, whose API calls live in `pummel-k8s-run`).

mod error;
mod files;
pub mod frame;
mod manifests;
mod objects;
mod quantity;
mod request;
mod sysctls;
mod yaml;

pub use error::RenderError;
pub use manifests::{COMPONENT_LABEL, COORDINATOR_CONTAINER, Document, RESULTS_FILE, RUN_LABEL, documents};
pub use request::{PlanFiles, RenderRequest};
pub use sysctls::{SAFE_SYSCTLS, SysctlPlace, place};

/// Renders the manifests of `request` as YAML documents separated by `---`, each after its
/// comments; every problem found is an error before anything is rendered.
pub fn render(request: &RenderRequest) -> Result<String, RenderError> {
    let documents = documents(request)?;
    yaml::to_text(request, &documents)
}
