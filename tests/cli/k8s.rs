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
