//! `pummel k8s render`: the manifests of a distributed run. They must pass
//! `kubernetes-validate --strict` (installed by `.ci/setup-k8s-validate`) for two Kubernetes
//! versions, carry the plan and its files byte for byte, and run coordinator and agents with
//! the flags of `pummel run --agents` and `pummel agent`.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use serde::Deserialize;
use serde_norway::Value;

use crate::support::{self, plans};

/// Where `.ci/setup-k8s-validate` installs the validator.
const KUBERNETES_VALIDATE: &str = "/opt/pummel-ci/kubernetes-validate/bin/kubernetes-validate";
/// The Kubernetes versions the manifests are validated for: an older and a newer one.
const VERSIONS: [&str; 2] = ["1.29.0", "1.31.0"];

const PLAN: &str = r#"
[target]
base_url = "http://127.0.0.1:9"

[feeders.users]
file = "data/users.csv"
mode = "unique"

[[scenario]]
name = "login"
rate = 10
duration = "30s"
flow = [
  { request = { method = "POST", path = "/login", body_file = "bodies/login.bin" } },
  { request = { path = "/users/{{ users.name }}" } },
]
"#;

/// A feeder with a quote, a tab, a trailing space and no final newline: bytes YAML could
/// easily change.
const USERS: &str = "name,note\nann,\"says \"\"hi\"\"\"\nbob,\ttab \nzoë,: colon # hash";
/// A body that is not UTF-8: it must go to binaryData.
const BODY: &[u8] = &[0xff, 0x00, 0xfe, b'\n', 0x80];

/// Writes the plan, its feeder and its body file into `dir`; returns the plan's path.
fn write_plan(dir: &tempfile::TempDir) -> String {
    std::fs::create_dir_all(dir.path().join("data")).unwrap();
    std::fs::create_dir_all(dir.path().join("bodies")).unwrap();
    std::fs::write(dir.path().join("data/users.csv"), USERS).unwrap();
    std::fs::write(dir.path().join("bodies/login.bin"), BODY).unwrap();
    plans::write_plan(dir, "load.toml", PLAN)
}

/// Runs kubernetes-validate --strict for `version` on `file`; panics with its output unless it
/// passes. A missing validator fails the test: it is part of the CI setup.
fn validate(file: &Path, version: &str) {
    assert!(
        Path::new(KUBERNETES_VALIDATE).is_file(),
        "{KUBERNETES_VALIDATE} is missing: run `bash .ci/setup-k8s-validate` (as root) first"
    );
    let out = Command::new(KUBERNETES_VALIDATE)
        .args(["--strict", "-k", version])
        .arg(file)
        .output()
        .unwrap_or_else(|e| panic!("cannot run {KUBERNETES_VALIDATE}: {e}"));
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "kubernetes-validate --strict -k {version} failed:\n{text}");
    // Four objects, each one validated (a document it skipped would not say "passed").
    assert_eq!(text.matches("passed for resource").count(), 4, "{text}");
}

/// Every YAML document of `text`.
fn documents(text: &str) -> Vec<Value> {
    serde_norway::Deserializer::from_str(text)
        .map(|doc| Value::deserialize(doc).expect("valid YAML"))
        .filter(|doc| !doc.is_null())
        .collect()
}

fn find<'a>(docs: &'a [Value], kind: &str, name: &str) -> &'a Value {
    docs.iter()
        .find(|d| d["kind"] == kind && d["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name} in {docs:#?}"))
}

fn strings(value: &Value) -> Vec<String> {
    value.as_sequence().expect("a list").iter().map(|v| v.as_str().expect("a string").to_string()).collect()
}

#[test]
fn rendered_manifests_validate_strictly_and_carry_the_plan_and_its_files() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(&dir);
    let (out_path, out_arg) = support::path_in(&dir, "pummel.yaml");
    let rendered = support::run(
        &[
            "k8s",
            "render",
            &plan,
            "--agents",
            "3",
            "--image",
            "example.org/pummel:test",
            "--namespace",
            "load",
            "--cpu",
            "1500m",
            "--memory",
            "2Gi",
            "--anti-affinity",
            "-o",
            &out_arg,
        ],
        Duration::from_secs(30),
    );
    rendered.assert_code(0).assert_no_panic();
    for version in VERSIONS {
        validate(&out_path, version);
    }

    let text = std::fs::read_to_string(&out_path).unwrap();
    let docs = documents(&text);
    assert_eq!(docs.len(), 4, "{text}");

    // The ConfigMap: the plan and the feeder as text, the binary body as base64, exactly.
    let config = find(&docs, "ConfigMap", "pummel-plan");
    let data = config["data"].as_mapping().expect("data");
    let by_key = |key: &str| data.get(key).and_then(Value::as_str).map(str::to_string);
    assert_eq!(by_key("load.toml").as_deref(), Some(PLAN));
    assert_eq!(by_key("data_users.csv").as_deref(), Some(USERS));
    let body = config["binaryData"]["bodies_login.bin"].as_str().expect("the body in binaryData");
    assert_eq!(base64::engine::general_purpose::STANDARD.decode(body).unwrap(), BODY);

    // The coordinator: mounts them where the plan's relative paths resolve, runs the plan.
    let coordinator = find(&docs, "Job", "pummel-coordinator");
    assert_eq!(coordinator["metadata"]["namespace"], "load");
    assert_eq!(coordinator["spec"]["backoffLimit"].as_u64(), Some(0));
    let pod = &coordinator["spec"]["template"]["spec"];
    let container = &pod["containers"][0];
    assert_eq!(container["image"], "example.org/pummel:test");
    let args = strings(&container["args"]).join(" ");
    assert!(
        args.starts_with(
            "run /plan/load.toml --agents 3 --listen 0.0.0.0:7878 --token-file /token/token --agents-timeout 5m"
        ),
        "{args}"
    );
    let volumes = pod["volumes"].as_sequence().unwrap();
    let plan_volume = volumes.iter().find(|v| v["name"] == "plan").expect("the plan volume");
    let items: Vec<(String, String)> = plan_volume["configMap"]["items"]
        .as_sequence()
        .unwrap()
        .iter()
        .map(|i| (i["key"].as_str().unwrap().to_string(), i["path"].as_str().unwrap().to_string()))
        .collect();
    for (key, path) in
        [("load.toml", "load.toml"), ("data_users.csv", "data/users.csv"), ("bodies_login.bin", "bodies/login.bin")]
    {
        assert!(items.contains(&(key.to_string(), path.to_string())), "{key} -> {path} missing in {items:?}");
    }
    let mounts = container["volumeMounts"].as_sequence().unwrap();
    assert!(mounts.iter().any(|m| m["name"] == "plan" && m["mountPath"] == "/plan"));
    let token = volumes.iter().find(|v| v["name"] == "token").expect("the token volume");
    assert_eq!(token["secret"]["secretName"], "pummel-token");

    // The Service in front of it, on the port the agents dial.
    let service = find(&docs, "Service", "pummel-coordinator");
    assert_eq!(service["spec"]["ports"][0]["port"].as_u64(), Some(7878));
    let selector = service["spec"]["selector"].as_mapping().unwrap();
    let labels = coordinator["spec"]["template"]["metadata"]["labels"].as_mapping().unwrap();
    assert!(selector.iter().all(|(k, v)| labels.get(k) == Some(v)), "the Service selects no coordinator pod");

    // The agents: an Indexed Job of 3, never retried, dialling the Service.
    let agents = find(&docs, "Job", "pummel-agents");
    let spec = &agents["spec"];
    assert_eq!(spec["completionMode"], "Indexed");
    assert_eq!(spec["completions"].as_u64(), Some(3));
    assert_eq!(spec["parallelism"].as_u64(), Some(3));
    assert_eq!(spec["backoffLimit"].as_u64(), Some(0));
    let pod = &spec["template"]["spec"];
    assert_eq!(
        strings(&pod["containers"][0]["args"]),
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
    assert_eq!(pod["containers"][0]["resources"]["requests"]["cpu"], "1500m");
    assert_eq!(pod["containers"][0]["resources"]["limits"]["memory"], "2Gi");
    assert_eq!(pod["securityContext"]["sysctls"][0]["name"], "net.ipv4.ip_local_port_range");
    assert!(pod["affinity"]["podAntiAffinity"].is_mapping());
    // What the cluster decides is said in comments, from doctor's list.
    for comment in ["net.ipv4.tcp_tw_reuse", "fs.file-max", "nofile", "kubectl create secret generic pummel-token"] {
        assert!(text.lines().any(|l| l.starts_with('#') && l.contains(comment)), "no comment on {comment}:\n{text}");
    }

    // Without -o the same manifests go to stdout.
    let stdout = support::run(
        &[
            "k8s",
            "render",
            &plan,
            "--agents",
            "3",
            "--image",
            "example.org/pummel:test",
            "--namespace",
            "load",
            "--cpu",
            "1500m",
            "--memory",
            "2Gi",
            "--anti-affinity",
        ],
        Duration::from_secs(30),
    );
    stdout.assert_code(0);
    assert_eq!(stdout.stdout, text);
}

#[test]
fn a_plan_with_unsafe_sysctls_and_defaults_validates_too() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = plans::write_plan(
        &dir,
        "p.toml",
        "[target]\nbase_url = \"http://127.0.0.1:9\"\n\n[[scenario]]\nusers = 1\nduration = \"1s\"\nflow = [ { request = { path = \"/\" } } ]\n",
    );
    let (out_path, out_arg) = support::path_in(&dir, "m.yaml");
    support::run(
        &[
            "k8s",
            "render",
            &plan,
            "--agents",
            "1",
            "--image",
            "pummel:dev",
            "--unsafe-sysctls",
            "--name",
            "smoke",
            "-o",
            &out_arg,
        ],
        Duration::from_secs(30),
    )
    .assert_code(0);
    for version in VERSIONS {
        validate(&out_path, version);
    }
    let docs = documents(&std::fs::read_to_string(&out_path).unwrap());
    let sysctls = strings(&Value::Sequence(
        find(&docs, "Job", "smoke-agents")["spec"]["template"]["spec"]["securityContext"]["sysctls"]
            .as_sequence()
            .unwrap()
            .iter()
            .map(|s| s["name"].clone())
            .collect(),
    ));
    assert!(sysctls.contains(&"net.ipv4.tcp_tw_reuse".to_string()), "{sysctls:?}");
    assert!(!sysctls.iter().any(|s| s.starts_with("fs.")), "node sysctls are never a pod's: {sysctls:?}");
}

#[test]
fn bad_input_is_a_usage_error() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(&dir);
    let render = |args: &[&str]| support::run(args, Duration::from_secs(30));

    let (_, missing) = support::path_in(&dir, "missing.toml");
    render(&["k8s", "render", &missing, "--agents", "2", "--image", "i"]).assert_code(2);
    let out = render(&["k8s", "render", &plan, "--agents", "0", "--image", "i"]);
    out.assert_code(2);
    assert!(out.stderr.contains("--agents"), "{}", out.stderr);
    render(&["k8s", "render", &plan, "--agents", "2", "--image", "i", "--memory", "2GB"]).assert_code(2);
    render(&["k8s", "render", &plan, "--agents", "2", "--image", "i", "--namespace", "Load"]).assert_code(2);
    render(&["k8s", "render", &plan, "--agents", "2"]).assert_code(2);
    render(&["k8s", "render", &plan, "--agents", "2", "--image", "i", "--agents-timeout", "soon"]).assert_code(2);

    // A plan whose feeder is missing is refused as `pummel check` refuses it.
    std::fs::remove_file(dir.path().join("data/users.csv")).unwrap();
    render(&["k8s", "render", &plan, "--agents", "2", "--image", "i"]).assert_code(2);

    // A feeder named by an absolute path cannot be placed beside the plan in a pod.
    let (users, users_arg) = support::path_in(&dir, "abs-users.csv");
    std::fs::write(&users, "name\nann\n").unwrap();
    let text = PLAN.replace("data/users.csv", &users_arg);
    let absolute = plans::write_plan(&dir, "absolute.toml", &text);
    let out = render(&["k8s", "render", &absolute, "--agents", "2", "--image", "i"]);
    out.assert_code(2);
    assert!(out.stderr.contains("not inside the plan's folder"), "{}", out.stderr);
}

// ------------------------------------------------------------------------------------------
// `pummel k8s run`: what can be tried without a cluster (the API sequence itself is tested
// against a scripted API server in crates/pummel-k8s-run/tests/api.rs).
// ------------------------------------------------------------------------------------------

/// A kubeconfig whose API server is 127.0.0.1:1, where nothing listens: no real cluster is
/// ever contacted.
fn unreachable_kubeconfig(dir: &tempfile::TempDir) -> String {
    kubeconfig_for(dir, "https://127.0.0.1:1")
}

/// A kubeconfig whose API server is `server` (on loopback), its certificate not verified.
fn kubeconfig_for(dir: &tempfile::TempDir, server: &str) -> String {
    let (path, arg) = support::path_in(dir, "kubeconfig");
    std::fs::write(
        &path,
        "apiVersion: v1\nkind: Config\ncurrent-context: nowhere\nclusters:\n- name: nowhere\n  cluster:\n    \
         server: SERVER\n    insecure-skip-tls-verify: true\ncontexts:\n- name: nowhere\n  context:\n    \
         cluster: nowhere\n    user: nobody\n    namespace: load\nusers:\n- name: nobody\n  user:\n    token: not-a-token\n"
            .replace("SERVER", server),
    )
    .unwrap();
    arg
}

#[test]
fn k8s_run_refuses_bad_flags_before_asking_any_cluster() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(&dir);
    // A kubeconfig that does not exist: were the cluster consulted, this would be exit 3.
    let (_, kubeconfig) = support::path_in(&dir, "no-such-kubeconfig");
    let run = |extra: &[&str]| {
        let mut args = vec!["k8s", "run"];
        args.extend_from_slice(extra);
        let out =
            support::spawn_with_env(&args, None, &[("KUBECONFIG", Some(&kubeconfig))]).wait(Duration::from_secs(30));
        out.assert_code(2).assert_no_panic();
        assert!(out.stdout.is_empty(), "{}", out.stdout);
        out
    };
    let out = run(&[&plan, "--agents", "0", "--image", "i"]);
    assert!(out.stderr.contains("--agents"), "{}", out.stderr);
    let out = run(&[&plan, "--agents", "2", "--image", "i", "--agents-timeout", "soon"]);
    assert!(out.stderr.contains("--agents-timeout"), "{}", out.stderr);
    let out = run(&[&plan, "--agents", "2", "--image", "i", "--namespace", "Load"]);
    assert!(out.stderr.contains("--namespace"), "{}", out.stderr);
    run(&[&plan, "--agents", "2", "--image", "i", "--memory", "2GB"]);
    run(&[&plan, "--agents", "2", "--image", "i", "--token-secret", "a..b"]);
    run(&[&plan, "--agents", "2"]);
    let (_, missing) = support::path_in(&dir, "missing.toml");
    run(&[&missing, "--agents", "2", "--image", "i"]);
}

#[test]
fn k8s_run_without_a_reachable_cluster_says_so_and_exits_3() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let plan = write_plan(&dir);
    let kubeconfig = unreachable_kubeconfig(&dir);
    let args = ["k8s", "run", &plan, "--agents", "2", "--image", "example.org/pummel:test", "--namespace", "load"];
    // Through KUBECONFIG, as kubectl finds it...
    let out = support::spawn_with_env(&args, None, &[("KUBECONFIG", Some(&kubeconfig))]).wait(Duration::from_secs(60));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("cannot create Secret load/pummel-token"), "{}", out.stderr);
    assert!(out.stderr.contains("reachable"), "{}", out.stderr);
    assert!(out.stdout.is_empty(), "{}", out.stdout);
    // ...and through --kubeconfig; nothing was created, so nothing is deleted.
    let mut flagged = args.to_vec();
    flagged.extend(["--kubeconfig", &kubeconfig, "--token-secret", "mine"]);
    let out = support::run(&flagged, Duration::from_secs(60));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("cannot create ConfigMap load/pummel-plan"), "{}", out.stderr);
    assert!(!out.stderr.contains("deleted"), "{}", out.stderr);
    // A context the kubeconfig lacks is a clear error too.
    let mut context = args.to_vec();
    context.extend(["--kubeconfig", &kubeconfig, "--context", "elsewhere"]);
    let out = support::run(&context, Duration::from_secs(60));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("no usable Kubernetes configuration"), "{}", out.stderr);

    // A TLS server that is not Kubernetes (pummel sink --tls): the client's TLS works, and the
    // answer that is no API object is a clear error.
    let sink = support::Sink::start(&["--tls"]);
    let other = support::temp_dir();
    let kubeconfig = kubeconfig_for(&other, &format!("https://{}", sink.addr));
    let out = support::spawn_with_env(&args, None, &[("KUBECONFIG", Some(&kubeconfig))]).wait(Duration::from_secs(60));
    out.assert_code(3).assert_no_panic();
    assert!(out.stderr.contains("cannot create Secret load/pummel-token: Error deserializing"), "{}", out.stderr);
}

/// The base64 between the markers of run `run_id` in `log`, decoded, and the begin line.
fn framed(log: &str, run_id: &str) -> Option<(String, Vec<u8>)> {
    let begin = format!("pummel-results-begin run={run_id} ");
    let end = format!("pummel-results-end run={run_id}");
    let mut lines = log.lines().skip_while(|l| !l.starts_with(&begin));
    let header = lines.next()?.to_string();
    let text: String = lines.take_while(|l| *l != end).inspect(|l| assert!(l.len() <= 76, "{l}")).collect();
    Some((header, base64::engine::general_purpose::STANDARD.decode(text).expect("base64")))
}

#[test]
fn the_coordinators_wrapper_prints_the_results_document_exactly_and_keeps_the_exit_code() {
    let _load = support::shared();
    let dir = support::temp_dir();
    let sink = support::Sink::start(&[]);
    let (results, results_arg) = support::path_in(&dir, "results.json");
    let url = sink.url("/");
    let out = support::run(
        &[
            "k8s",
            "coordinator",
            "--run-id",
            "r1",
            "--results",
            &results_arg,
            "--",
            "run",
            &url,
            "-n",
            "20",
            "--threshold",
            "p99<10s",
            "-o",
            &results_arg,
            "--quiet",
        ],
        Duration::from_secs(60),
    );
    out.assert_code(0).assert_no_panic();
    let written = std::fs::read(&results).expect("the run wrote its results");
    let (header, decoded) = framed(&out.stdout, "r1").unwrap_or_else(|| panic!("no frame in:\n{}", out.stdout));
    assert_eq!(decoded, written, "the frame carries the results document byte for byte");
    assert!(header.contains(&format!("bytes={}", written.len())), "{header}");

    // A threshold that fails: the wrapper exits as the run does (1), with the document.
    let out = support::run(
        &[
            "k8s",
            "coordinator",
            "--run-id",
            "r2",
            "--results",
            &results_arg,
            "--",
            "run",
            &url,
            "-n",
            "5",
            "--threshold",
            "p99<0ms",
            "-o",
            &results_arg,
            "--quiet",
        ],
        Duration::from_secs(60),
    );
    out.assert_code(1);
    assert!(framed(&out.stdout, "r2").is_some(), "{}", out.stdout);

    // A plan that cannot be read: its exit code (2), and a line saying there is no document.
    let (missing_results, missing_arg) = support::path_in(&dir, "none.json");
    let out = support::run(
        &["k8s", "coordinator", "--run-id", "r3", "--results", &missing_arg, "--", "check", "/nonexistent/plan.toml"],
        Duration::from_secs(30),
    );
    out.assert_code(2);
    assert!(!missing_results.exists());
    assert!(out.stdout.lines().any(|l| l.starts_with("pummel-results-none run=r3 ")), "{}", out.stdout);
}
