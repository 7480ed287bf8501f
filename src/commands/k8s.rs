//! `pummel k8s render PLAN --agents N --image IMAGE`: the Kubernetes manifests of a
//! distributed run, printed (or written with `-o`) for `kubectl apply -f`; `pummel k8s run`
//! (in `k8s_run`): the same run carried out through the Kubernetes API.
//!
//! This command loads the plan as `pummel check` does (a plan pummel would refuse is never
//! shipped), reads the files it names (feeders, body files, uploads) and hands them to the
//! `pummel-k8s` crate, which builds the objects; every bad flag or file is exit 2.

use std::path::{Path, PathBuf};

use anyhow::anyhow;
use clap::{Args, Subcommand};
use pummel_k8s::{PlanFiles, RenderRequest};
use pummel_plan::{LoadError, Options};
use pummel_results::duration::parse_duration;

use super::{CliError, ExitStatus, print_stdout};

const AFTER_HELP: &str = "\
Example:
  pummel k8s render plan.toml --agents 4 --image registry.example/pummel:0.1 --namespace load -o pummel.yaml
  kubectl create secret generic pummel-token -n load --from-literal=token=\"$(head -c 32 /dev/urandom | base64)\"
  kubectl apply -f pummel.yaml && kubectl logs -n load -f job/pummel-coordinator

The ConfigMap holds the plan and the files it reads (at most 1 MiB in all), mounted so that the
plan's relative paths resolve; the coordinator ships them to the agents. The agents' Job is
Indexed (agent i is completion index i), never retried (backoffLimit 0), and sets the sysctls
`pummel doctor` recommends where a pod may; the others are comments in the output.

Exit codes: 0 rendered, 2 bad flags or plan, 3 the output file could not be written.";

/// Flags of `pummel k8s`.
#[derive(Debug, Args)]
pub struct K8sArgs {
    /// What to do.
    #[command(subcommand)]
    pub action: K8sAction,
}

/// The `pummel k8s` subcommands.
#[derive(Debug, Subcommand)]
pub enum K8sAction {
    /// Print the manifests of a distributed run: the plan's ConfigMap, the coordinator's Job and
    /// Service, and an Indexed Job of N agents.
    Render(RenderArgs),
    /// Run a distributed run in a cluster through the Kubernetes API: create the objects, follow
    /// the coordinator's log, fetch its results, delete what was created; exits with its verdict.
    Run(super::k8s_run::RunArgs),
    /// Inside the coordinator's pod of `pummel k8s run`: runs `pummel ARGS...`, then prints the
    /// results document framed in the log.
    #[command(hide = true)]
    Coordinator(super::k8s_run::CoordinatorArgs),
}

/// Flags of `pummel k8s render`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RenderArgs {
    /// What to run and how (shared with `pummel k8s run`).
    #[command(flatten)]
    pub run: ObjectArgs,
    /// The Secret (created by you) whose key `token` holds the shared token.
    #[arg(long, default_value = "pummel-token", value_name = "NAME")]
    pub token_secret: String,
    /// Write the manifests here instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

/// The flags that describe the objects, shared by `render` and `run`.
#[derive(Debug, Args)]
pub struct ObjectArgs {
    /// The plan file to run.
    #[arg(value_name = "PLAN.toml")]
    pub plan: PathBuf,
    /// How many agents run the plan together (each runs one segment, i/N).
    #[arg(long, value_name = "N")]
    pub agents: u32,
    /// The container image with pummel at /usr/local/bin/pummel (see the Dockerfile).
    #[arg(long, value_name = "IMAGE")]
    pub image: String,
    /// The namespace of every object.
    #[arg(long, default_value = "default", value_name = "NS")]
    pub namespace: String,
    /// The prefix of the objects' names: NAME-plan, NAME-coordinator, NAME-agents.
    #[arg(long, default_value = "pummel", value_name = "NAME")]
    pub name: String,
    /// The coordinator's port for its agents.
    #[arg(long, default_value_t = 7878)]
    pub port: u16,
    /// How long the coordinator waits for all its agents (they may wait for a node and pull
    /// the image first).
    #[arg(long, default_value = "5m", value_name = "DURATION")]
    pub agents_timeout: String,
    /// CPU each agent requests (a Kubernetes quantity: 500m, 2).
    #[arg(long, default_value = "1", value_name = "QUANTITY")]
    pub cpu: String,
    /// Memory each agent requests and is limited to (512Mi, 2Gi).
    #[arg(long, default_value = "1Gi", value_name = "QUANTITY")]
    pub memory: String,
    /// At most one agent per node (a required pod anti-affinity): N agents need N nodes.
    #[arg(long)]
    pub anti_affinity: bool,
    /// Also set the recommended sysctls Kubernetes calls unsafe (net.ipv4.tcp_tw_reuse, ...);
    /// only where the kubelets allow them (--allowed-unsafe-sysctls).
    #[arg(long)]
    pub unsafe_sysctls: bool,
}

impl ObjectArgs {
    /// The request these flags describe, with the plan and its files read; bad flags or a bad
    /// plan are exit 2.
    pub fn request(self, token_secret: String) -> Result<RenderRequest, CliError> {
        parse_duration(&self.agents_timeout).map_err(|e| CliError::usage(anyhow!("--agents-timeout: {e}")))?;
        let plan = plan_files(&self.plan)?;
        Ok(RenderRequest {
            namespace: self.namespace,
            name: self.name,
            token_secret,
            port: self.port,
            agents_timeout: self.agents_timeout,
            cpu: self.cpu,
            memory: self.memory,
            anti_affinity: self.anti_affinity,
            unsafe_sysctls: self.unsafe_sysctls,
            ..RenderRequest::new(plan, self.agents, self.image)
        })
    }
}

/// Runs `pummel k8s ...`.
pub fn run(args: K8sArgs) -> Result<ExitStatus, CliError> {
    match args.action {
        K8sAction::Render(args) => render(args),
        K8sAction::Run(args) => super::k8s_run::run(args),
        K8sAction::Coordinator(args) => super::k8s_run::coordinator(args),
    }
}

fn render(args: RenderArgs) -> Result<ExitStatus, CliError> {
    let request = args.run.request(args.token_secret)?;
    let yaml = pummel_k8s::render(&request).map_err(|e| CliError::usage(anyhow!(e)))?;
    match &args.output {
        Some(path) => {
            std::fs::write(path, yaml)
                .map_err(|e| CliError::internal(anyhow!("cannot write {}: {e}", path.display())))?;
            eprintln!("pummel k8s: manifests written to {}", path.display());
        }
        None => print_stdout(&yaml),
    }
    Ok(ExitStatus::Pass)
}

/// Loads and checks the plan, then reads every file it names, relative to its folder.
fn plan_files(path: &Path) -> Result<PlanFiles, CliError> {
    match pummel_plan::load_file(path, &Options::default()) {
        Ok(_) => {}
        Err(LoadError::Invalid(report)) => {
            eprint!("{report}");
            return Err(CliError::usage(anyhow!("invalid plan: {}", path.display())));
        }
        Err(e @ LoadError::Read { .. }) => return Err(CliError::usage(anyhow!(e))),
    }
    let read = |p: &Path| std::fs::read(p).map_err(|e| CliError::usage(anyhow!("cannot read {}: {e}", p.display())));
    let text = read(path)?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .ok_or_else(|| CliError::usage(anyhow!("{} is not a file", path.display())))?;
    let dir = path.parent().unwrap_or(Path::new(""));
    let mut files = Vec::new();
    for written in pummel_plan::referenced_files(&String::from_utf8_lossy(&text)) {
        let bytes = read(&dir.join(&written))?;
        files.push((written, bytes));
    }
    Ok(PlanFiles { name, plan: text, files })
}
