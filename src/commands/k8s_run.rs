//! `pummel k8s run PLAN --agents N --image IMAGE`: the distributed run of `pummel k8s render`,
//! carried out through the Kubernetes API (the `pummel-k8s-run` crate), and the hidden
//! `pummel k8s coordinator` that the coordinator's pod runs under.
//!
//! `run` reads the plan as `render` does (bad flags or plan: exit 2 before the cluster is
//! asked anything), finds the cluster from the kubeconfig (`--kubeconfig`, `--context`,
//! `KUBECONFIG`, or the pod's service account), prints the coordinator's log on stdout and
//! its progress on stderr, writes the results document with `-o`, and exits with the
//! coordinator's exit code. SIGINT/SIGTERM delete the run's objects before exiting with 130;
//! a second signal exits at once, saying how to delete what is left.
//!
//! `coordinator` runs `pummel ARGS...` (the `pummel run ... -o /results/results.json` of the
//! pod), forwards SIGTERM/SIGINT to it, then prints the results document framed in the log
//! ([`pummel_k8s::frame`]), which is how `run` gets it without exec or a volume; it exits with
//! the run's exit code.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use anyhow::anyhow;
use clap::Args;
use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};
use pummel_k8s::RUN_LABEL;
use pummel_k8s::frame::{self, Framed};
use pummel_k8s_run::{Outcome, RunError, RunSpec};
use pummel_results::duration::parse_duration;

use super::k8s::ObjectArgs;
use super::{CliError, ExitStatus};

const AFTER_HELP: &str = "\
Example:
  pummel k8s run plan.toml --agents 4 --image registry.example/pummel:0.1 --namespace load -o results.json

Creates a Secret with a fresh token (unless --token-secret names yours), the plan's ConfigMap,
the coordinator's Job and Service and the agents' Indexed Job, each labelled pummel.dev/run=<id>;
waits (--agents-timeout) for the coordinator to run and every agent to be scheduled (an image
that cannot be pulled stops at once); prints the coordinator's log on stdout as it runs; takes
the results document out of that log (the coordinator prints it at its end, framed and checked
by length and SHA-256) and writes it to -o byte for byte; deletes every object it created on
every exit, Ctrl-C included (--keep leaves them). The cluster comes from --kubeconfig and
--context, else KUBECONFIG or ~/.kube/config, else the pod's service account.

Exit codes: the coordinator's (0 pass, 1 thresholds failed or aborted, 2 usage, 3 could not
start); 2 bad flags or plan; 3 no cluster, an API error, pods that never ran or a timeout, or a
results document that could not be had; 130 interrupted.";

/// Flags of `pummel k8s run`.
#[derive(Debug, Args)]
#[command(after_help = AFTER_HELP)]
pub struct RunArgs {
    /// What to run and how (shared with `pummel k8s render`).
    #[command(flatten)]
    pub run: ObjectArgs,
    /// An existing Secret whose key `token` holds the shared token; without it a Secret
    /// NAME-token with a fresh random token is created (and deleted at the end).
    #[arg(long, value_name = "NAME")]
    pub token_secret: Option<String>,
    /// Write the coordinator's results document (JSON) here.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Leave the objects in the cluster at the end (for kubectl logs and describe).
    #[arg(long)]
    pub keep: bool,
    /// The kubeconfig file (default: KUBECONFIG, then ~/.kube/config, then in-cluster).
    #[arg(long, value_name = "FILE")]
    pub kubeconfig: Option<PathBuf>,
    /// The kubeconfig context to use (default: its current context).
    #[arg(long, value_name = "NAME")]
    pub context: Option<String>,
}

/// Flags of the hidden `pummel k8s coordinator`.
#[derive(Debug, Args)]
pub struct CoordinatorArgs {
    /// The run's id: the mark of the frame.
    #[arg(long, value_name = "ID")]
    pub run_id: String,
    /// The results document the wrapped run writes.
    #[arg(long, value_name = "FILE")]
    pub results: PathBuf,
    /// The pummel command to run (`run PLAN --agents N ... -o FILE`).
    #[arg(last = true, required = true, value_name = "ARGS")]
    pub args: Vec<String>,
}

/// Runs `pummel k8s run`.
pub fn run(args: RunArgs) -> Result<ExitStatus, CliError> {
    let token_secret = args.token_secret.clone().unwrap_or_else(|| format!("{}-token", args.run.name));
    let agents_wait =
        parse_duration(&args.run.agents_timeout).map_err(|e| CliError::usage(anyhow!("--agents-timeout: {e}")))?;
    let mut request = args.run.request(token_secret)?;
    let run_id = pummel_k8s_run::new_run_id();
    request.run_id = Some(run_id.clone());
    // Every refusal of the flags before the cluster is asked anything.
    pummel_k8s::documents(&request).map_err(|e| CliError::usage(anyhow!(e)))?;
    let spec = RunSpec {
        request,
        run_id,
        token: args.token_secret.is_none().then(pummel_k8s_run::new_token),
        agents_wait,
        keep: args.keep,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| CliError::internal(anyhow!("cannot start the runtime: {e}")))?;
    let outcome = runtime.block_on(async {
        let client = client(args.kubeconfig.as_deref(), args.context.clone()).await?;
        let mut stdout = std::io::stdout();
        let mut progress = |p| eprintln!("pummel k8s: {p}");
        let cancel = interrupted(spec.request.namespace.clone(), spec.run_id.clone());
        pummel_k8s_run::run(client, &spec, &mut stdout, &mut progress, cancel).await.map_err(run_error)
    })?;
    verdict(outcome, args.output.as_deref())
}

/// The client for the cluster the flags (or the environment) name; none is exit 3.
async fn client(kubeconfig: Option<&Path>, context: Option<String>) -> Result<Client, CliError> {
    let options = KubeConfigOptions { context, ..KubeConfigOptions::default() };
    let config = match kubeconfig {
        Some(path) => {
            let file = Kubeconfig::read_from(path)
                .map_err(|e| CliError::cannot_start(anyhow!("cannot read {}: {e}", path.display())))?;
            Config::from_custom_kubeconfig(file, &options).await.map_err(|e| anyhow!(e))
        }
        None if options.context.is_some() => Config::from_kubeconfig(&options).await.map_err(|e| anyhow!(e)),
        None => Config::infer().await.map_err(|e| anyhow!(e)),
    }
    .map_err(|e| CliError::cannot_start(anyhow!("no usable Kubernetes configuration: {e}")))?;
    Client::try_from(config).map_err(|e| CliError::cannot_start(anyhow!("cannot make a Kubernetes client: {e}")))
}

/// Resolves at the first SIGINT/SIGTERM; a second one exits at once (130), naming the
/// objects that may be left.
async fn interrupted(namespace: String, run_id: String) {
    next_signal().await;
    eprintln!("\npummel k8s: interrupted: deleting the run's objects (Ctrl-C again to exit at once)");
    tokio::spawn(async move {
        next_signal().await;
        eprintln!(
            "pummel k8s: exiting; objects may be left: kubectl delete jobs,services,configmaps,secrets -n \
             {namespace} -l {RUN_LABEL}={run_id}"
        );
        std::process::exit(130);
    });
}

/// The next SIGINT or SIGTERM (never, where they cannot be listened to).
async fn next_signal() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut term) => {
                term.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        result = tokio::signal::ctrl_c() => {
            if result.is_err() {
                std::future::pending::<()>().await;
            }
        }
        () = term => {}
    }
}

fn run_error(error: RunError) -> CliError {
    let status = match error.exit_code() {
        2 => ExitStatus::Usage,
        130 => ExitStatus::Interrupted,
        _ => ExitStatus::CannotStart,
    };
    CliError { status, error: anyhow!(error) }
}

/// Writes the results document, then maps the coordinator's exit code to pummel's.
fn verdict(outcome: Outcome, output: Option<&Path>) -> Result<ExitStatus, CliError> {
    let status = match outcome.exit_code {
        0 => ExitStatus::Pass,
        1 => ExitStatus::ThresholdsFailed,
        2 => ExitStatus::Usage,
        3 => ExitStatus::CannotStart,
        130 => ExitStatus::Interrupted,
        code => {
            return Err(CliError::cannot_start(anyhow!(
                "the coordinator ended with exit code {code} ({}): it did not finish its run",
                outcome.reason
            )));
        }
    };
    let Some(path) = output else { return Ok(status) };
    let missing = match outcome.results {
        Ok(Framed::Document(bytes)) => {
            write_atomically(path, &bytes)?;
            eprintln!("pummel k8s: results written to {}", path.display());
            return Ok(status);
        }
        Ok(Framed::None(why)) => format!("the coordinator has no results document: {why}"),
        Ok(Framed::Absent) => "the coordinator's log holds no results document".to_string(),
        Err(e) => e.to_string(),
    };
    // A verdict without the document asked for is not a clean run: 3, unless the run itself
    // already failed to start or was interrupted.
    match status {
        ExitStatus::Pass | ExitStatus::ThresholdsFailed => Err(CliError::internal(anyhow!("{missing}"))),
        other => {
            eprintln!("pummel k8s: {missing}");
            Ok(other)
        }
    }
}

fn write_atomically(path: &Path, bytes: &[u8]) -> Result<(), CliError> {
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    std::fs::write(&tmp, bytes)
        .and_then(|()| std::fs::rename(&tmp, path))
        .map_err(|e| CliError::internal(anyhow!("cannot write {}: {e}", path.display())))
}

/// The wrapped run's process id, for the signal handler (0: none yet).
static CHILD: AtomicU32 = AtomicU32::new(0);

/// Runs `pummel k8s coordinator`: never returns (it exits with the wrapped run's code).
pub fn coordinator(args: CoordinatorArgs) -> Result<ExitStatus, CliError> {
    let exe = std::env::current_exe().map_err(|e| CliError::internal(anyhow!("cannot find pummel itself: {e}")))?;
    // As PID 1 of its pod it receives the kubelet's SIGTERM: the run gets it.
    let installed = ctrlc::set_handler(|| {
        let pid = CHILD.load(Ordering::SeqCst);
        if let Some(pid) = i32::try_from(pid).ok().and_then(rustix::process::Pid::from_raw) {
            let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
        }
    });
    if let Err(e) = installed {
        eprintln!("warning: cannot forward signals to the run ({e})");
    }
    let mut child = Command::new(exe)
        .args(&args.args)
        .stdin(Stdio::null())
        .spawn()
        .map_err(|e| CliError::cannot_start(anyhow!("cannot start pummel {}: {e}", args.args.join(" "))))?;
    CHILD.store(child.id(), Ordering::SeqCst);
    let status = child.wait().map_err(|e| CliError::internal(anyhow!("waiting for the run: {e}")))?;
    let code = status.code().unwrap_or_else(|| {
        use std::os::unix::process::ExitStatusExt as _;
        128 + status.signal().unwrap_or(0)
    });
    let framed = match std::fs::read(&args.results) {
        Ok(bytes) => frame::encode(&args.run_id, &bytes),
        Err(e) => frame::encode_none(
            &args.run_id,
            &format!("pummel exited with {code} and left no {} ({e})", args.results.display()),
        ),
    };
    let mut out = std::io::stdout().lock();
    let _ = out.write_all(framed.as_bytes()).and_then(|()| out.flush());
    // Let a slow log collector see the frame before the container ends.
    std::thread::sleep(Duration::from_millis(100));
    std::process::exit(code)
}
