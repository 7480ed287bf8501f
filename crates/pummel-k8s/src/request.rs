//! What to render ([`RenderRequest`]): the plan with its files, the number of agents, the
//! image, and the settings a cluster asks about (namespace, names, port, resources).

/// The plan file and the files it reads, with their bytes, as the pods will see them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlanFiles {
    /// The plan's file name (`plan.toml`); the coordinator runs `/plan/<name>`.
    pub name: String,
    /// The plan's bytes (TOML text).
    pub plan: Vec<u8>,
    /// The files the plan reads: each path as the plan writes it (relative to the plan file)
    /// and its bytes. They are placed at that path relative to the plan in the pod, so the
    /// plan's paths resolve there as they do here.
    pub files: Vec<(String, Vec<u8>)>,
}

impl PlanFiles {
    /// A plan that reads no other file.
    pub fn new(name: impl Into<String>, plan: Vec<u8>) -> Self {
        PlanFiles { name: name.into(), plan, files: Vec::new() }
    }
}

/// Everything [`render`](crate::render) needs. Build it with [`RenderRequest::new`] and
/// change the fields whose defaults do not fit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RenderRequest {
    /// The plan and its files.
    pub plan: PlanFiles,
    /// How many agents (pods of the Indexed Job) run the plan together; each runs one
    /// segment, i/N.
    pub agents: u32,
    /// The container image holding `pummel` at `/usr/local/bin/pummel` (the repository's
    /// Dockerfile builds one).
    pub image: String,
    /// The namespace of every object (default `default`); the agents reach the coordinator at
    /// `<name>-coordinator.<namespace>.svc`.
    pub namespace: String,
    /// The prefix of every object's name (default `pummel`): `<name>-plan`,
    /// `<name>-coordinator`, `<name>-agents`.
    pub name: String,
    /// The Secret, created by the user, whose key `token` holds the shared token that
    /// coordinator and agents authenticate each other with (default `pummel-token`).
    pub token_secret: String,
    /// The coordinator's port for its agents (default 7878).
    pub port: u16,
    /// How long the coordinator waits for all its agents (`--agents-timeout`, default `5m`):
    /// longer than on one machine, as agent pods may wait for a node and pull the image first.
    pub agents_timeout: String,
    /// CPU each agent requests (a Kubernetes quantity, default `1`). No CPU limit is set: a
    /// throttled load generator measures its own throttling.
    pub cpu: String,
    /// Memory each agent requests and is limited to (default `1Gi`).
    pub memory: String,
    /// Keep agents on different nodes (a required pod anti-affinity on the node's hostname),
    /// so that no two share a network card or CPUs; then N agents need N schedulable nodes.
    pub anti_affinity: bool,
    /// Also set the recommended sysctls that Kubernetes counts as unsafe (namespaced ones such
    /// as `net.ipv4.tcp_tw_reuse`); only for clusters whose kubelets allow them
    /// (`--allowed-unsafe-sysctls`), else the agent pods are rejected.
    pub unsafe_sysctls: bool,
    /// Set by `pummel k8s run` (`None` for `render`): every object and pod is labelled
    /// [`RUN_LABEL`](crate::RUN_LABEL)`=<id>`, so that one run's objects can be found and
    /// deleted, and the coordinator runs under `pummel k8s coordinator`, which prints the
    /// results document framed in its log once the run ends (see [`frame`](crate::frame)).
    pub run_id: Option<String>,
}

impl RenderRequest {
    /// A request with the defaults for everything but the plan, the agents and the image.
    pub fn new(plan: PlanFiles, agents: u32, image: impl Into<String>) -> Self {
        RenderRequest {
            plan,
            agents,
            image: image.into(),
            namespace: "default".into(),
            name: "pummel".into(),
            token_secret: "pummel-token".into(),
            port: 7878,
            agents_timeout: "5m".into(),
            cpu: "1".into(),
            memory: "1Gi".into(),
            anti_affinity: false,
            unsafe_sysctls: false,
            run_id: None,
        }
    }

    /// `<name>-<part>`: the name of one object.
    pub(crate) fn object(&self, part: &str) -> String {
        format!("{}-{part}", self.name)
    }

    /// The coordinator's address as agents dial it: `<name>-coordinator.<namespace>.svc:<port>`.
    pub fn coordinator_address(&self) -> String {
        format!("{}.{}.svc:{}", self.object("coordinator"), self.namespace, self.port)
    }
}
