//! Building the objects of a distributed run from a [`RenderRequest`]: the ConfigMap of the
//! plan, the coordinator's Job and Service, and the agents' Indexed Job, each with the
//! comments that say what the cluster decides.

use std::collections::BTreeMap;

use base64::Engine as _;
use pummel_system::doctor::{Recommendation, recommended};

use crate::error::RenderError;
use crate::files::{self, Entry};
use crate::objects::*;
use crate::quantity::is_quantity;
use crate::request::RenderRequest;
use crate::sysctls::{SysctlPlace, place};

/// Where the plan and its files are mounted in the coordinator.
pub const PLAN_DIR: &str = "/plan";
/// Where the token Secret is mounted; the token is the file `token` in it.
pub const TOKEN_DIR: &str = "/token";
/// Where the coordinator writes the results document.
pub const RESULTS_DIR: &str = "/results";
/// The results document in the coordinator's pod.
pub const RESULTS_FILE: &str = "/results/results.json";
/// The label every object and pod of a `pummel k8s run` carries, with the run's id as value.
pub const RUN_LABEL: &str = "pummel.dev/run";
/// The label that tells the coordinator's pods (`coordinator`) from the agents' (`agent`).
pub const COMPONENT_LABEL: &str = "app.kubernetes.io/component";
/// The coordinator's container (its log is the run's output).
pub const COORDINATOR_CONTAINER: &str = "coordinator";
/// The user the image runs pummel as (the Dockerfile's `USER`), and the pod's `fsGroup`.
const IMAGE_USER: u32 = 10001;
/// The pummel binary in the image.
const PUMMEL: &str = "pummel";
/// CPU and memory the coordinator requests: it merges the agents' per-second records and
/// sends no load itself.
const COORDINATOR_CPU: &str = "500m";
const COORDINATOR_MEMORY: &str = "512Mi";
/// The longest `--name`: the longest suffix (`-coordinator`) must still fit a 63-character
/// DNS label, and Indexed Job pods add `-<index>-<random>` to theirs.
const MAX_NAME: usize = 40;

/// One rendered object with the comments printed above it.
#[derive(Debug, Clone)]
pub struct Document {
    /// Its kind (`ConfigMap`, `Service`, `Job`).
    pub kind: &'static str,
    /// Its name.
    pub name: String,
    /// Lines printed as YAML comments above the object (without the `# `).
    pub comments: Vec<String>,
    pub(crate) object: Object,
}

impl Document {
    /// The object as YAML, without comments.
    pub fn yaml(&self) -> Result<String, RenderError> {
        serde_norway::to_string(&self.object).map_err(|e| RenderError::Yaml(e.to_string()))
    }

    /// The object as JSON, as the API server takes it: `pummel k8s run` creates exactly what
    /// `render` prints.
    pub fn json(&self) -> Result<serde_json::Value, RenderError> {
        serde_json::to_value(&self.object).map_err(|e| RenderError::Yaml(e.to_string()))
    }
}

/// The objects of `request`, in the order to apply them: ConfigMap, Service, coordinator Job,
/// agents' Job.
pub fn documents(request: &RenderRequest) -> Result<Vec<Document>, RenderError> {
    check(request)?;
    let entries = files::entries(&request.plan)?;
    let recommendations = recommended();
    Ok(vec![
        config_map(request, &entries),
        service(request),
        coordinator(request, &entries),
        agents(request, &recommendations),
    ])
}

/// Everything Kubernetes would refuse, before anything is built.
fn check(request: &RenderRequest) -> Result<(), RenderError> {
    dns_label("--name", &request.name, MAX_NAME)?;
    dns_label("--namespace", &request.namespace, 63)?;
    dns_subdomain("--token-secret", &request.token_secret)?;
    if let Some(id) = &request.run_id {
        dns_label("the run id", id, 63)?;
    }
    if request.agents == 0 {
        return Err(RenderError::NoAgents);
    }
    if request.agents_timeout.is_empty() || request.agents_timeout.chars().any(char::is_whitespace) {
        return Err(RenderError::AgentsTimeout(request.agents_timeout.clone()));
    }
    if request.image.is_empty() || request.image.chars().any(char::is_whitespace) {
        return Err(RenderError::Image(request.image.clone()));
    }
    for (what, value) in [("--cpu", &request.cpu), ("--memory", &request.memory)] {
        if !is_quantity(value) {
            return Err(RenderError::Quantity { what, value: value.clone() });
        }
    }
    Ok(())
}

/// An RFC 1123 label of at most `max` characters.
fn dns_label(what: &'static str, value: &str, max: usize) -> Result<(), RenderError> {
    let why = if value.is_empty() {
        Some("it is empty".to_string())
    } else if value.len() > max {
        Some(format!("at most {max} characters"))
    } else if !value.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-') {
        Some("only lowercase letters, digits and '-'".into())
    } else if value.starts_with('-') || value.ends_with('-') {
        Some("it must start and end with a letter or digit".into())
    } else {
        None
    };
    match why {
        Some(why) => Err(RenderError::Name { what, value: value.to_string(), why }),
        None => Ok(()),
    }
}

/// An RFC 1123 subdomain (a Secret's name): labels joined by dots, at most 253 characters.
fn dns_subdomain(what: &'static str, value: &str) -> Result<(), RenderError> {
    if value.len() > 253 {
        return Err(RenderError::Name { what, value: value.to_string(), why: "at most 253 characters".into() });
    }
    value.split('.').try_for_each(|label| dns_label(what, label, 63)).map_err(|e| match e {
        RenderError::Name { why, .. } => RenderError::Name { what, value: value.to_string(), why },
        other => other,
    })
}

/// The labels of a component's objects and pods (with the run's id under `pummel k8s run`).
fn labels(request: &RenderRequest, component: &str) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::from([
        ("app.kubernetes.io/name".to_string(), "pummel".to_string()),
        ("app.kubernetes.io/instance".to_string(), request.name.clone()),
        (COMPONENT_LABEL.to_string(), component.to_string()),
    ]);
    if let Some(id) = &request.run_id {
        labels.insert(RUN_LABEL.to_string(), id.clone());
    }
    labels
}

fn metadata(request: &RenderRequest, part: &str, component: &str) -> Metadata {
    Metadata {
        name: request.object(part),
        namespace: Some(request.namespace.clone()),
        labels: labels(request, component),
    }
}

fn config_map(request: &RenderRequest, entries: &[Entry]) -> Document {
    let mut data = BTreeMap::new();
    let mut binary_data = BTreeMap::new();
    for entry in entries {
        match entry.text() {
            Some(text) => data.insert(entry.key.clone(), text.to_string()),
            None => {
                binary_data.insert(entry.key.clone(), base64::engine::general_purpose::STANDARD.encode(&entry.bytes))
            }
        };
    }
    let mut comments = vec![format!(
        "The plan and the {} file(s) it reads, mounted at {PLAN_DIR} in the coordinator:",
        entries.len() - 1
    )];
    comments.extend(entries.iter().map(|e| format!("  {PLAN_DIR}/{} (key {})", e.path, e.key)));
    comments.push("The coordinator ships them to the agents; the agents mount nothing from here.".into());
    Document {
        kind: "ConfigMap",
        name: request.object("plan"),
        comments,
        object: Object::ConfigMap(ConfigMap {
            api_version: "v1",
            kind: "ConfigMap",
            metadata: metadata(request, "plan", "plan"),
            data,
            binary_data,
        }),
    }
}

fn service(request: &RenderRequest) -> Document {
    Document {
        kind: "Service",
        name: request.object("coordinator"),
        comments: vec![format!("The agents dial the coordinator here: {}", request.coordinator_address())],
        object: Object::Service(Service {
            api_version: "v1",
            kind: "Service",
            metadata: metadata(request, "coordinator", "coordinator"),
            spec: ServiceSpec {
                selector: labels(request, "coordinator"),
                ports: vec![ServicePort {
                    name: "control".into(),
                    port: request.port,
                    target_port: "control".into(),
                    protocol: "TCP",
                }],
            },
        }),
    }
}

fn token_volume(request: &RenderRequest) -> Volume {
    Volume {
        name: "token",
        config_map: None,
        secret: Some(SecretVolume {
            secret_name: request.token_secret.clone(),
            items: vec![KeyToPath { key: "token".into(), path: "token".into() }],
            default_mode: 0o440,
        }),
        empty_dir: None,
    }
}

/// Non-root as the image's user; `sysctls` for the agents.
fn pod_security(sysctls: Vec<Sysctl>) -> PodSecurityContext {
    PodSecurityContext { run_as_non_root: true, run_as_user: IMAGE_USER, fs_group: IMAGE_USER, sysctls }
}

fn token_mount() -> VolumeMount {
    VolumeMount { name: "token", mount_path: TOKEN_DIR, read_only: true }
}

/// The coordinator's command line: `pummel run /plan/<plan> --agents N --listen 0.0.0.0:PORT
/// --token-file /token/token --agents-timeout T -o /results/results.json --json`.
///
/// Under `pummel k8s run` it is wrapped: `pummel k8s coordinator --run-id ID --results
/// /results/results.json -- run ...`, which prints the results document framed in the log.
pub(crate) fn coordinator_args(request: &RenderRequest, plan_path: &str) -> Vec<String> {
    let wrapper: Vec<String> = match &request.run_id {
        Some(id) => ["k8s", "coordinator", "--run-id", id, "--results", RESULTS_FILE, "--"]
            .into_iter()
            .map(String::from)
            .collect(),
        None => Vec::new(),
    };
    let run = [
        "run".into(),
        format!("{PLAN_DIR}/{plan_path}"),
        "--agents".into(),
        request.agents.to_string(),
        "--listen".into(),
        format!("0.0.0.0:{}", request.port),
        "--token-file".into(),
        format!("{TOKEN_DIR}/token"),
        "--agents-timeout".into(),
        request.agents_timeout.clone(),
        "-o".into(),
        RESULTS_FILE.into(),
        "--json".into(),
    ];
    wrapper.into_iter().chain(run).collect()
}

fn coordinator(request: &RenderRequest, entries: &[Entry]) -> Document {
    let plan_path = entries.first().map_or("plan.toml", |e| e.path.as_str());
    let pod_labels = labels(request, "coordinator");
    let container = Container {
        name: COORDINATOR_CONTAINER,
        image: request.image.clone(),
        command: vec![PUMMEL.into()],
        args: coordinator_args(request, plan_path),
        ports: vec![ContainerPort { name: "control".into(), container_port: request.port, protocol: "TCP" }],
        security_context: ContainerSecurityContext { allow_privilege_escalation: false },
        resources: Resources {
            requests: BTreeMap::from([
                ("cpu", COORDINATOR_CPU.to_string()),
                ("memory", COORDINATOR_MEMORY.to_string()),
            ]),
            limits: BTreeMap::from([("memory", COORDINATOR_MEMORY.to_string())]),
        },
        volume_mounts: vec![
            VolumeMount { name: "plan", mount_path: PLAN_DIR, read_only: true },
            token_mount(),
            VolumeMount { name: "results", mount_path: RESULTS_DIR, read_only: false },
        ],
    };
    let volumes = vec![
        Volume {
            name: "plan",
            config_map: Some(ConfigMapVolume {
                name: request.object("plan"),
                items: entries.iter().map(|e| KeyToPath { key: e.key.clone(), path: e.path.clone() }).collect(),
            }),
            secret: None,
            empty_dir: None,
        },
        token_volume(request),
        Volume { name: "results", config_map: None, secret: None, empty_dir: Some(EmptyDir {}) },
    ];
    Document {
        kind: "Job",
        name: request.object("coordinator"),
        comments: vec![
            format!("The coordinator: waits for {} agent(s), deals out the segments, merges live.", request.agents),
            "Its summary (--json) is in its log; the exit code is the run's verdict (0 pass, 1 thresholds failed):"
                .into(),
            format!("  kubectl logs -n {} -f job/{}", request.namespace, request.object("coordinator")),
            format!("The results document is {RESULTS_FILE} in the pod (an emptyDir)."),
            "backoffLimit 0: a failed run is not repeated.".into(),
        ],
        object: Object::Job(Job {
            api_version: "batch/v1",
            kind: "Job",
            metadata: metadata(request, "coordinator", "coordinator"),
            spec: JobSpec {
                completion_mode: None,
                completions: None,
                parallelism: None,
                backoff_limit: 0,
                template: PodTemplate {
                    metadata: TemplateMetadata { labels: pod_labels },
                    spec: PodSpec {
                        restart_policy: "Never",
                        security_context: pod_security(Vec::new()),
                        affinity: None,
                        containers: vec![container],
                        volumes,
                    },
                },
            },
        }),
    }
}

/// The agents' command line: `pummel agent --coordinator <service>:PORT --token-file
/// /token/token --name agent-$(JOB_COMPLETION_INDEX) --connect-wait 5m` (Kubernetes expands the
/// index, which the Job controller sets in every pod of an Indexed Job; an agent's pod may start
/// minutes before the coordinator's Service answers).
pub(crate) fn agent_args(request: &RenderRequest) -> Vec<String> {
    vec![
        "agent".into(),
        "--coordinator".into(),
        request.coordinator_address(),
        "--token-file".into(),
        format!("{TOKEN_DIR}/token"),
        "--name".into(),
        "agent-$(JOB_COMPLETION_INDEX)".into(),
        "--connect-wait".into(),
        "5m".into(),
    ]
}

fn agents(request: &RenderRequest, recommendations: &[Recommendation]) -> Document {
    let pod_labels = labels(request, "agent");
    let mut sysctls = Vec::new();
    let mut comments = vec![
        format!(
            "{} agents, one pod each (completion index i runs as agent-i; the coordinator deals out the segments).",
            request.agents
        ),
        "backoffLimit 0: an agent that fails is not replaced mid-run.".into(),
        format!(
            "Resources: each agent requests cpu {} and memory {} (limited to it); no CPU limit, so the generator \
             is not throttled.",
            request.cpu, request.memory
        ),
    ];
    if request.anti_affinity {
        comments.push(format!(
            "Pod anti-affinity: at most one agent per node, so {} schedulable nodes are needed.",
            request.agents
        ));
    }
    comments.push("System settings `pummel doctor` recommends:".into());
    for rec in recommendations {
        let line = format!("{} = {}", rec.name, rec.value);
        match place(rec) {
            SysctlPlace::Pod => {
                sysctls.push(Sysctl { name: rec.name.into(), value: rec.value.clone() });
                comments.push(format!("  {line}: set below (a safe sysctl)"));
            }
            SysctlPlace::PodIfAllowed if request.unsafe_sysctls => {
                sysctls.push(Sysctl { name: rec.name.into(), value: rec.value.clone() });
                comments.push(format!(
                    "  {line}: set below (an unsafe sysctl: the kubelet must allow it, --allowed-unsafe-sysctls)"
                ));
            }
            SysctlPlace::PodIfAllowed => comments.push(format!(
                "  {line}: not set (Kubernetes calls it unsafe); where kubelets run with \
                 --allowed-unsafe-sysctls={}, render with --unsafe-sysctls",
                rec.name
            )),
            SysctlPlace::Node => comments.push(format!("  {line}: a node setting (sysctl on the nodes), not a pod's")),
            SysctlPlace::Runtime => comments.push(format!(
                "  {line}: the open-file limit comes from the container runtime (LimitNOFILE / default ulimits); \
                 pummel raises its soft limit to the hard one"
            )),
        }
    }
    let affinity = request.anti_affinity.then(|| Affinity {
        pod_anti_affinity: PodAntiAffinity {
            required: vec![PodAffinityTerm {
                label_selector: LabelSelector { match_labels: pod_labels.clone() },
                topology_key: "kubernetes.io/hostname",
            }],
        },
    });
    let container = Container {
        name: "agent",
        image: request.image.clone(),
        command: vec![PUMMEL.into()],
        args: agent_args(request),
        ports: Vec::new(),
        security_context: ContainerSecurityContext { allow_privilege_escalation: false },
        resources: Resources {
            requests: BTreeMap::from([("cpu", request.cpu.clone()), ("memory", request.memory.clone())]),
            limits: BTreeMap::from([("memory", request.memory.clone())]),
        },
        volume_mounts: vec![token_mount()],
    };
    Document {
        kind: "Job",
        name: request.object("agents"),
        comments,
        object: Object::Job(Job {
            api_version: "batch/v1",
            kind: "Job",
            metadata: metadata(request, "agents", "agent"),
            spec: JobSpec {
                completion_mode: Some("Indexed"),
                completions: Some(request.agents),
                parallelism: Some(request.agents),
                backoff_limit: 0,
                template: PodTemplate {
                    metadata: TemplateMetadata { labels: pod_labels },
                    spec: PodSpec {
                        restart_policy: "Never",
                        security_context: pod_security(sysctls),
                        affinity,
                        containers: vec![container],
                        volumes: vec![token_volume(request)],
                    },
                },
            },
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request::PlanFiles;
    use serde_norway::Value;

    fn request(agents: u32) -> RenderRequest {
        let plan = PlanFiles {
            name: "plan.toml".into(),
            plan: b"[feeders.users]\nfile = \"data/users.csv\"\n".to_vec(),
            files: vec![("data/users.csv".into(), b"name\nann\n".to_vec())],
        };
        RenderRequest { namespace: "load".into(), ..RenderRequest::new(plan, agents, "img:1") }
    }

    fn parsed(request: &RenderRequest) -> Vec<Value> {
        documents(request).unwrap().iter().map(|d| serde_norway::from_str(&d.yaml().unwrap()).unwrap()).collect()
    }

    #[test]
    fn agents_are_an_indexed_job_of_n_that_is_never_retried() {
        let docs = parsed(&request(4));
        let agents = &docs[3];
        assert_eq!(agents["metadata"]["name"], "pummel-agents");
        let spec = &agents["spec"];
        assert_eq!(spec["completionMode"], "Indexed");
        assert_eq!((spec["completions"].as_u64(), spec["parallelism"].as_u64()), (Some(4), Some(4)));
        assert_eq!(spec["backoffLimit"].as_u64(), Some(0));
        let pod = &spec["template"]["spec"];
        assert_eq!(pod["restartPolicy"], "Never");
        let args: Vec<&str> =
            pod["containers"][0]["args"].as_sequence().unwrap().iter().filter_map(|a| a.as_str()).collect();
        assert_eq!(
            args,
            [
                "agent",
                "--coordinator",
                "pummel-coordinator.load.svc:7878",
                "--token-file",
                "/token/token",
                "--name",
                "agent-$(JOB_COMPLETION_INDEX)",
                "--connect-wait",
                "5m"
            ]
        );
        let sysctls = pod["securityContext"]["sysctls"].as_sequence().unwrap();
        assert_eq!(sysctls.len(), 1, "only the safe sysctl by default: {sysctls:?}");
        assert_eq!(sysctls[0]["name"], "net.ipv4.ip_local_port_range");
        assert!(pod.get("affinity").is_none());
    }

    #[test]
    fn the_service_selects_the_coordinators_pods_on_its_port() {
        let docs = parsed(&request(2));
        let (service, job) = (&docs[1], &docs[2]);
        let selector = service["spec"]["selector"].as_mapping().unwrap();
        let pod_labels = job["spec"]["template"]["metadata"]["labels"].as_mapping().unwrap();
        for (key, value) in selector {
            assert_eq!(pod_labels.get(key), Some(value));
        }
        assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(7878));
        let container = &job["spec"]["template"]["spec"]["containers"][0];
        assert_eq!(container["ports"][0]["containerPort"].as_u64(), Some(7878));
        assert_eq!(container["args"][1], "/plan/plan.toml");
    }

    #[test]
    fn anti_affinity_and_unsafe_sysctls_when_asked() {
        let docs = parsed(&RenderRequest { anti_affinity: true, unsafe_sysctls: true, ..request(3) });
        let pod = &docs[3]["spec"]["template"]["spec"];
        let term = &pod["affinity"]["podAntiAffinity"]["requiredDuringSchedulingIgnoredDuringExecution"][0];
        assert_eq!(term["topologyKey"], "kubernetes.io/hostname");
        assert_eq!(term["labelSelector"]["matchLabels"]["app.kubernetes.io/component"], "agent");
        let names: Vec<&str> = pod["securityContext"]["sysctls"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|s| s["name"].as_str())
            .collect();
        assert!(names.contains(&"net.ipv4.tcp_tw_reuse") && !names.iter().any(|n| n.starts_with("fs.")), "{names:?}");
    }

    #[test]
    fn a_run_labels_everything_and_wraps_the_coordinator() {
        let docs = parsed(&RenderRequest { run_id: Some("r7".into()), ..request(2) });
        for doc in &docs {
            assert_eq!(doc["metadata"]["labels"][RUN_LABEL], "r7", "{doc:?}");
        }
        for job in [&docs[2], &docs[3]] {
            assert_eq!(job["spec"]["template"]["metadata"]["labels"][RUN_LABEL], "r7");
        }
        assert_eq!(docs[1]["spec"]["selector"][RUN_LABEL], "r7", "the Service selects this run's coordinator");
        let args: Vec<&str> = docs[2]["spec"]["template"]["spec"]["containers"][0]["args"]
            .as_sequence()
            .unwrap()
            .iter()
            .filter_map(|a| a.as_str())
            .collect();
        assert_eq!(args[..8], ["k8s", "coordinator", "--run-id", "r7", "--results", RESULTS_FILE, "--", "run"]);
        assert_eq!(args.last(), Some(&"--json"));
        // The JSON form is the same object.
        let json = documents(&RenderRequest { run_id: Some("r7".into()), ..request(2) }).unwrap()[2].json().unwrap();
        assert_eq!(json["spec"]["template"]["spec"]["containers"][0]["args"][3], "r7");
        // Without a run: no label, no wrapper.
        let plain = parsed(&request(2));
        assert!(plain[0]["metadata"]["labels"].get(RUN_LABEL).is_none());
        assert_eq!(plain[2]["spec"]["template"]["spec"]["containers"][0]["args"][0], "run");
    }

    #[test]
    fn bad_requests_are_refused_before_rendering() {
        let bad = |change: fn(&mut RenderRequest)| {
            let mut r = request(1);
            change(&mut r);
            documents(&r).unwrap_err()
        };
        assert_eq!(bad(|r| r.agents = 0), RenderError::NoAgents);
        assert!(matches!(bad(|r| r.name = "Pummel".into()), RenderError::Name { what: "--name", .. }));
        assert!(matches!(bad(|r| r.name = "x".repeat(41)), RenderError::Name { .. }));
        assert!(matches!(bad(|r| r.namespace = "-ns".into()), RenderError::Name { what: "--namespace", .. }));
        assert!(matches!(bad(|r| r.token_secret = "a..b".into()), RenderError::Name { what: "--token-secret", .. }));
        assert!(matches!(bad(|r| r.memory = "1GB".into()), RenderError::Quantity { what: "--memory", .. }));
        assert!(matches!(bad(|r| r.image = "a b".into()), RenderError::Image(_)));
    }
}
