//! `pummel k8s run` against a scripted API server: kube's `Client` over `tower_test`'s mock
//! service, as kube-rs tests itself (`kube/src/mock_tests.rs`). Each test plays the API server
//! in a task that asserts every request (method, path, query, body) in order and answers with
//! the JSON a real server sends; the clock is paused, so the waits reach their deadlines at
//! once and nothing depends on timing. The server task ends by checking that no request is
//! left once the run has returned (its client dropped).

use std::convert::Infallible;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response};
use http_body::Frame;
use http_body_util::combinators::UnsyncBoxBody;
use http_body_util::{BodyExt as _, Full, StreamBody};
use kube::Client;
use kube::client::Body;
use pummel_k8s::frame::{self, Framed};
use pummel_k8s::{PlanFiles, RenderRequest};
use pummel_k8s_run::{Progress, RunError, RunSpec};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tower_test::mock::{Handle, SendResponse};

const NS: &str = "load";
const RUN: &str = "abc123";
const COORDINATOR_POD: &str = "pummel-coordinator-x7k2p";

type TestBody = UnsyncBoxBody<Bytes, Infallible>;

// ------------------------------------------------------------------------------------------
// The scripted API server
// ------------------------------------------------------------------------------------------

/// One request as the server saw it.
struct Call {
    query: String,
    body: Value,
    send: SendResponse<Response<TestBody>>,
}

struct ApiServer(Handle<Request<Body>, Response<TestBody>>);

fn testcontext() -> (Client, ApiServer) {
    let (service, handle) = tower_test::mock::pair::<Request<Body>, Response<TestBody>>();
    (Client::new(service, "default"), ApiServer(handle))
}

fn full(bytes: impl Into<Bytes>) -> TestBody {
    Full::new(bytes.into()).boxed_unsync()
}

fn json_response(status: u16, body: &Value) -> Response<TestBody> {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(full(serde_json::to_vec(body).unwrap()))
        .unwrap()
}

/// A body that stays open until the sender is dropped: a watch or a followed log.
fn open_body() -> (mpsc::UnboundedSender<Bytes>, TestBody) {
    let (tx, rx) = mpsc::unbounded_channel::<Bytes>();
    let stream = futures_util::stream::unfold(rx, |mut rx| async move {
        rx.recv().await.map(|chunk| (Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    (tx, StreamBody::new(stream).boxed_unsync())
}

impl ApiServer {
    /// The next request, which must be `method` on `path` (the path without its query).
    async fn next(&mut self, method: &str, path: &str) -> Call {
        let (request, send) =
            self.0.next_request().await.unwrap_or_else(|| panic!("the run ended; expected {method} {path}"));
        let (parts, body) = request.into_parts();
        assert_eq!(
            (parts.method.as_str(), parts.uri.path()),
            (method, path),
            "unexpected request {} {}",
            parts.method,
            parts.uri
        );
        let bytes = body.collect().await.expect("the request's body").to_bytes();
        let body = if bytes.is_empty() { Value::Null } else { serde_json::from_slice(&bytes).expect("a JSON body") };
        Call { query: parts.uri.query().unwrap_or_default().to_string(), body, send }
    }

    /// Expects a create of `kind` `name` at `path`; answers as the API server does (the object
    /// back, with a uid). Returns the object sent.
    async fn created(&mut self, path: &str, kind: &str, name: &str) -> Value {
        let call = self.next("POST", path).await;
        assert_eq!((call.body["kind"].as_str(), call.body["metadata"]["name"].as_str()), (Some(kind), Some(name)));
        assert_eq!(call.body["metadata"]["namespace"], NS);
        assert_eq!(call.body["metadata"]["labels"]["pummel.dev/run"], RUN, "{kind} {name} is labelled with the run");
        let mut answer = call.body.clone();
        answer["metadata"]["uid"] = json!(format!("uid-{name}"));
        answer["metadata"]["resourceVersion"] = json!("100");
        call.send.send_response(json_response(201, &answer));
        call.body
    }

    /// The creates of a run, in order; with `secret`, the token Secret first. Returns the
    /// objects sent.
    async fn create_all(&mut self, secret: bool) -> Vec<Value> {
        let mut sent = Vec::new();
        if secret {
            sent.push(self.created(&format!("/api/v1/namespaces/{NS}/secrets"), "Secret", "pummel-token").await);
        }
        sent.push(self.created(&format!("/api/v1/namespaces/{NS}/configmaps"), "ConfigMap", "pummel-plan").await);
        sent.push(self.created(&format!("/api/v1/namespaces/{NS}/services"), "Service", "pummel-coordinator").await);
        let jobs = format!("/apis/batch/v1/namespaces/{NS}/jobs");
        sent.push(self.created(&jobs, "Job", "pummel-coordinator").await);
        sent.push(self.created(&jobs, "Job", "pummel-agents").await);
        sent
    }

    /// Expects the watch of the run's pods and answers with a body left open.
    async fn watch(&mut self) -> mpsc::UnboundedSender<Bytes> {
        let call = self.next("GET", &format!("/api/v1/namespaces/{NS}/pods")).await;
        for part in ["watch=true", "labelSelector=pummel.dev%2Frun%3Dabc123", "resourceVersion=0"] {
            assert!(call.query.contains(part), "the watch's query {:?} lacks {part}", call.query);
        }
        let (tx, body) = open_body();
        call.send.send_response(Response::builder().status(200).body(body).unwrap());
        tx
    }

    /// Expects the coordinator's log, followed, and answers with a body left open.
    async fn log(&mut self) -> mpsc::UnboundedSender<Bytes> {
        let call = self.next("GET", &format!("/api/v1/namespaces/{NS}/pods/{COORDINATOR_POD}/log")).await;
        for part in ["follow=true", "container=coordinator"] {
            assert!(call.query.contains(part), "the log's query {:?} lacks {part}", call.query);
        }
        let (tx, body) = open_body();
        call.send.send_response(Response::builder().status(200).body(body).unwrap());
        tx
    }

    /// Expects a read of the coordinator's pod; answers with `pod`.
    async fn get_coordinator(&mut self, pod: Value) {
        let call = self.next("GET", &format!("/api/v1/namespaces/{NS}/pods/{COORDINATOR_POD}")).await;
        call.send.send_response(json_response(200, &pod));
    }

    /// Expects the deletes of `objects` (kind, name), in that order, each with propagation
    /// Background (so a Job's pods go too).
    async fn deleted(&mut self, objects: &[(&str, &str)]) {
        for (kind, name) in objects {
            let path = match *kind {
                "Job" => format!("/apis/batch/v1/namespaces/{NS}/jobs/{name}"),
                "Service" => format!("/api/v1/namespaces/{NS}/services/{name}"),
                "ConfigMap" => format!("/api/v1/namespaces/{NS}/configmaps/{name}"),
                "Secret" => format!("/api/v1/namespaces/{NS}/secrets/{name}"),
                other => panic!("no path for {other}"),
            };
            let call = self.next("DELETE", &path).await;
            assert_eq!(call.body["propagationPolicy"], "Background", "DELETE {path}: {}", call.body);
            let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success",
                "details": {"name": name, "kind": kind.to_lowercase()}});
            call.send.send_response(json_response(200, &status));
        }
    }

    /// No request is left: the run dropped its client.
    async fn done(mut self) {
        if let Some((request, _)) = self.0.next_request().await {
            panic!("unexpected request after the run: {} {}", request.method(), request.uri());
        }
    }
}

/// Every object of a run with its own Secret, in the order they are deleted.
const ALL: [(&str, &str); 5] = [
    ("Job", "pummel-agents"),
    ("Job", "pummel-coordinator"),
    ("Service", "pummel-coordinator"),
    ("ConfigMap", "pummel-plan"),
    ("Secret", "pummel-token"),
];

// ------------------------------------------------------------------------------------------
// Pods as the API server shows them
// ------------------------------------------------------------------------------------------

/// A pod of the run: `component` is `coordinator` or `agent`; `scheduled` its PodScheduled
/// condition (`None`: not judged yet, `Some(Err(msg))`: unschedulable); `state` its
/// container's state.
fn pod(name: &str, component: &str, phase: &str, scheduled: Option<Result<(), &str>>, state: Value) -> Value {
    let conditions = match scheduled {
        None => json!([]),
        Some(Ok(())) => json!([{"type": "PodScheduled", "status": "True"}]),
        Some(Err(message)) => {
            json!([{"type": "PodScheduled", "status": "False", "reason": "Unschedulable", "message": message}])
        }
    };
    json!({
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "namespace": NS,
            "labels": {"pummel.dev/run": RUN, "app.kubernetes.io/component": component},
        },
        "status": {
            "phase": phase,
            "conditions": conditions,
            "containerStatuses": [{
                "name": component, "image": "img:1", "imageID": "", "ready": false, "restartCount": 0,
                "state": state,
            }],
        },
    })
}

fn running() -> Value {
    json!({"running": {"startedAt": "2025-01-01T00:00:00Z"}})
}

fn waiting(reason: &str, message: &str) -> Value {
    json!({"waiting": {"reason": reason, "message": message}})
}

fn terminated(code: i32, reason: &str) -> Value {
    json!({"terminated": {"exitCode": code, "reason": reason}})
}

fn coordinator(phase: &str, state: Value) -> Value {
    pod(COORDINATOR_POD, "coordinator", phase, Some(Ok(())), state)
}

fn agent(index: u32, phase: &str, scheduled: Option<Result<(), &str>>, state: Value) -> Value {
    pod(&format!("pummel-agents-{index}-abcde"), "agent", phase, scheduled, state)
}

/// A watch event line.
fn event(kind: &str, object: Value) -> Bytes {
    let mut line = serde_json::to_vec(&json!({"type": kind, "object": object})).unwrap();
    line.push(b'\n');
    line.into()
}

// ------------------------------------------------------------------------------------------
// The run under test
// ------------------------------------------------------------------------------------------

fn spec(agents: u32) -> RunSpec {
    let plan = PlanFiles::new("plan.toml", b"[target]\nbase_url = \"http://api\"\n".to_vec());
    RunSpec {
        request: RenderRequest { namespace: NS.into(), ..RenderRequest::new(plan, agents, "img:1") },
        run_id: RUN.into(),
        token: Some("s3cret-token".into()),
        agents_wait: Duration::from_secs(300),
        keep: false,
    }
}

/// What a run returned and reported.
struct Ran {
    result: Result<pummel_k8s_run::Outcome, RunError>,
    out: Vec<u8>,
    progress: Vec<Progress>,
}

async fn run_with(client: Client, spec: &RunSpec, cancel: impl std::future::Future<Output = ()>) -> Ran {
    let mut out = Vec::new();
    let mut progress = Vec::new();
    let result = pummel_k8s_run::run(client, spec, &mut out, &mut |p| progress.push(p), cancel).await;
    Ran { result, out, progress }
}

/// Waits for the server's script to finish (it must, as the run has returned).
async fn finish(server: tokio::task::JoinHandle<()>) {
    tokio::time::timeout(Duration::from_secs(10), server)
        .await
        .expect("the scripted API server did not finish")
        .expect("the script's assertions held");
}

fn deleted(progress: &[Progress]) -> Vec<(&'static str, String)> {
    progress
        .iter()
        .filter_map(|p| match p {
            Progress::Deleted { kind, name } => Some((*kind, name.clone())),
            _ => None,
        })
        .collect()
}

fn all_deleted() -> Vec<(&'static str, String)> {
    ALL.iter().map(|(k, n)| (*k, n.to_string())).collect()
}

/// A results document with what JSON and logs could mangle: non-ASCII, escapes, a long line,
/// no final newline.
fn results_document() -> Vec<u8> {
    let long = "x".repeat(5000);
    format!("{{\"version\":3,\"note\":\"zoë \\\"q\\\"\\n\\t\",\"pad\":\"{long}\",\"verdict\":\"pass\"}}").into_bytes()
}

// ------------------------------------------------------------------------------------------
// The cases
// ------------------------------------------------------------------------------------------

#[tokio::test(start_paused = true)]
async fn a_passing_run_streams_the_log_writes_the_results_exactly_and_deletes_everything() {
    let (client, mut api) = testcontext();
    let document = results_document();
    let framed = frame::encode(RUN, &document);
    let server = tokio::spawn(async move {
        let sent = api.create_all(true).await;
        // The Secret holds the token (base64 in `data`, as the API takes it).
        assert_eq!(sent[0]["data"]["token"], "czNjcmV0LXRva2Vu");
        // The coordinator runs under the wrapper that prints the results in its log.
        let args = &sent[3]["spec"]["template"]["spec"]["containers"][0]["args"];
        assert_eq!(
            (args[0].as_str(), args[1].as_str(), args[3].as_str()),
            (Some("k8s"), Some("coordinator"), Some(RUN))
        );

        // The first watch ends with the coordinator still pending: it is opened again.
        let first = api.watch().await;
        first.send(event("ADDED", coordinator("Pending", waiting("ContainerCreating", "")))).unwrap();
        drop(first);
        let watch = api.watch().await;
        watch.send(event("ADDED", coordinator("Running", running()))).unwrap();
        watch.send(event("ADDED", agent(0, "Running", Some(Ok(())), running()))).unwrap();
        watch.send(event("ADDED", agent(1, "Pending", Some(Ok(())), waiting("ContainerCreating", "")))).unwrap();

        let log = api.log().await;
        log.send(Bytes::from_static(b"pummel: waiting for 2 agents\n")).unwrap();
        // The frame arrives cut at arbitrary points, as chunks of a stream do.
        let all = format!("{framed}{{\"summary\":true}}\n");
        for chunk in all.as_bytes().chunks(37) {
            log.send(Bytes::copy_from_slice(chunk)).unwrap();
        }
        drop(log);
        drop(watch);
        api.get_coordinator(coordinator("Succeeded", terminated(0, "Completed"))).await;
        api.deleted(&ALL).await;
        api.done().await;
    });

    let ran = run_with(client, &spec(2), std::future::pending()).await;
    finish(server).await;
    let outcome = ran.result.expect("the run ends with a verdict");
    assert_eq!((outcome.exit_code, outcome.reason.as_str()), (0, "Completed"));
    assert_eq!(outcome.results, Ok(Framed::Document(document)), "the results, byte for byte");
    assert_eq!(String::from_utf8(ran.out).unwrap(), "pummel: waiting for 2 agents\n{\"summary\":true}\n");
    assert_eq!(deleted(&ran.progress), all_deleted());
    assert!(ran.progress.contains(&Progress::Pods {
        coordinator: "Running".into(),
        scheduled: 2,
        running: 1,
        agents: 2
    }));
    assert!(!ran.progress.iter().any(|p| matches!(p, Progress::Left { .. })));
}

#[tokio::test(start_paused = true)]
async fn a_failing_coordinators_exit_code_is_passed_through_and_a_users_secret_is_left_alone() {
    let (client, mut api) = testcontext();
    let server = tokio::spawn(async move {
        api.create_all(false).await;
        let watch = api.watch().await;
        // The coordinator ended before its agents were even scheduled: it is followed at once.
        watch.send(event("ADDED", coordinator("Failed", terminated(1, "Error")))).unwrap();
        watch.send(event("ADDED", agent(0, "Pending", None, waiting("", "")))).unwrap();
        let log = api.log().await;
        log.send(Bytes::from_static(b"threshold failed: p99 < 200ms\n")).unwrap();
        log.send(Bytes::from(frame::encode_none(RUN, "pummel run wrote no results file"))).unwrap();
        drop(log);
        api.get_coordinator(coordinator("Failed", terminated(1, "Error"))).await;
        api.deleted(&ALL[..4]).await;
        api.done().await;
    });

    let spec = RunSpec { token: None, ..spec(3) };
    let ran = run_with(client, &spec, std::future::pending()).await;
    finish(server).await;
    let outcome = ran.result.expect("the run ends with a verdict");
    assert_eq!(outcome.exit_code, 1);
    assert_eq!(outcome.results, Ok(Framed::None("pummel run wrote no results file".into())));
    assert_eq!(String::from_utf8(ran.out).unwrap(), "threshold failed: p99 < 200ms\n");
    assert_eq!(deleted(&ran.progress), all_deleted()[..4].to_vec(), "the user's Secret is not deleted");
}

#[tokio::test(start_paused = true)]
async fn unschedulable_agents_time_out_with_the_schedulers_reason_and_everything_is_deleted() {
    let (client, mut api) = testcontext();
    let server = tokio::spawn(async move {
        api.create_all(true).await;
        let watch = api.watch().await;
        watch.send(event("ADDED", coordinator("Running", running()))).unwrap();
        watch.send(event("ADDED", agent(0, "Running", Some(Ok(())), running()))).unwrap();
        let full = "0/3 nodes are available: 3 Insufficient cpu.";
        watch.send(event("ADDED", agent(1, "Pending", Some(Err(full)), json!({})))).unwrap();
        // The watch stays open and nothing changes: the wait runs to --agents-timeout.
        api.deleted(&ALL).await;
        drop(watch);
        api.done().await;
    });

    let spec = RunSpec { agents_wait: Duration::from_secs(120), ..spec(2) };
    let ran = run_with(client, &spec, std::future::pending()).await;
    finish(server).await;
    let error = ran.result.expect_err("the agents never all got a node");
    assert!(matches!(error, RunError::Timeout { waited, .. } if waited == Duration::from_secs(120)), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("1 of 2 agents are scheduled"), "{message}");
    assert!(message.contains("pummel-agents-1-abcde is unschedulable: 0/3 nodes are available"), "{message}");
    assert_eq!(error.exit_code(), 3);
    assert!(
        ran.progress.iter().any(|p| matches!(p, Progress::Unschedulable { pod, .. } if pod == "pummel-agents-1-abcde"))
    );
    assert_eq!(deleted(&ran.progress), all_deleted());
}

#[tokio::test(start_paused = true)]
async fn an_image_that_cannot_be_pulled_stops_the_wait_at_once() {
    let (client, mut api) = testcontext();
    let server = tokio::spawn(async move {
        api.create_all(true).await;
        let watch = api.watch().await;
        let message = "failed to pull image \"img:1\": not found";
        watch.send(event("ADDED", agent(0, "Pending", Some(Ok(())), waiting("ErrImagePull", message)))).unwrap();
        api.deleted(&ALL).await;
        drop(watch);
        api.done().await;
    });

    let ran = run_with(client, &spec(1), std::future::pending()).await;
    finish(server).await;
    let error = ran.result.expect_err("the image is missing");
    assert!(matches!(&error, RunError::PodCannotStart { reason, .. } if reason == "ErrImagePull"), "{error:?}");
    assert!(error.to_string().contains("not found"), "{error}");
    assert_eq!(deleted(&ran.progress), all_deleted());
}

#[tokio::test(start_paused = true)]
async fn an_interrupt_while_the_log_streams_deletes_every_object() {
    let (client, mut api) = testcontext();
    let (interrupt, interrupted) = oneshot::channel::<()>();
    let server = tokio::spawn(async move {
        api.create_all(true).await;
        let watch = api.watch().await;
        watch.send(event("ADDED", coordinator("Running", running()))).unwrap();
        watch.send(event("ADDED", agent(0, "Running", Some(Ok(())), running()))).unwrap();
        let log = api.log().await;
        log.send(Bytes::from_static(b"second 1: 1000 requests\n")).unwrap();
        // Ctrl-C while the log is open (and the run far from its end).
        interrupt.send(()).unwrap();
        api.deleted(&ALL).await;
        drop((log, watch));
        api.done().await;
    });

    let ran = run_with(client, &spec(1), async {
        let _ = interrupted.await;
    })
    .await;
    finish(server).await;
    let error = ran.result.expect_err("interrupted");
    assert!(matches!(error, RunError::Interrupted), "{error:?}");
    assert_eq!(error.exit_code(), 130);
    assert!(b"second 1: 1000 requests\n".starts_with(&ran.out), "only log lines are shown: {:?}", ran.out);
    assert_eq!(deleted(&ran.progress), all_deleted());
}

#[tokio::test(start_paused = true)]
async fn an_api_error_on_create_deletes_what_was_already_created() {
    let (client, mut api) = testcontext();
    let server = tokio::spawn(async move {
        api.created(&format!("/api/v1/namespaces/{NS}/secrets"), "Secret", "pummel-token").await;
        api.created(&format!("/api/v1/namespaces/{NS}/configmaps"), "ConfigMap", "pummel-plan").await;
        let call = api.next("POST", &format!("/api/v1/namespaces/{NS}/services")).await;
        let status = json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
            "message": "services \"pummel-coordinator\" already exists", "reason": "AlreadyExists", "code": 409});
        call.send.send_response(json_response(409, &status));
        api.deleted(&[("ConfigMap", "pummel-plan"), ("Secret", "pummel-token")]).await;
        api.done().await;
    });

    let ran = run_with(client, &spec(1), std::future::pending()).await;
    finish(server).await;
    let error = ran.result.expect_err("the Service exists");
    assert!(matches!(&error, RunError::Create { kind: "Service", .. }), "{error:?}");
    let message = error.to_string();
    assert!(message.contains("already exists") && message.contains("--name"), "{message}");
    assert_eq!(error.exit_code(), 3);
    assert_eq!(deleted(&ran.progress), [("ConfigMap", "pummel-plan".to_string()), ("Secret", "pummel-token".into())]);
}

#[tokio::test(start_paused = true)]
async fn keep_leaves_the_objects_and_says_how_to_delete_them() {
    let (client, mut api) = testcontext();
    let server = tokio::spawn(async move {
        api.create_all(true).await;
        let watch = api.watch().await;
        watch.send(event("ADDED", coordinator("Succeeded", terminated(0, "Completed")))).unwrap();
        let log = api.log().await;
        log.send(Bytes::from(frame::encode(RUN, b"{}"))).unwrap();
        drop(log);
        api.get_coordinator(coordinator("Succeeded", terminated(0, "Completed"))).await;
        drop(watch);
        api.done().await;
    });

    let ran = run_with(client, &RunSpec { keep: true, ..spec(1) }, std::future::pending()).await;
    finish(server).await;
    assert_eq!(ran.result.expect("a verdict").results, Ok(Framed::Document(b"{}".to_vec())));
    assert!(deleted(&ran.progress).is_empty());
    let left = ran.progress.iter().find_map(|p| match p {
        Progress::Left { command } => Some(command.clone()),
        _ => None,
    });
    assert_eq!(
        left.as_deref(),
        Some("kubectl delete jobs,services,configmaps,secrets -n load -l pummel.dev/run=abc123")
    );
}

#[tokio::test(start_paused = true)]
async fn bad_flags_are_refused_before_any_request() {
    let (client, api) = testcontext();
    let server = tokio::spawn(api.done());
    let mut bad = spec(1);
    bad.request.image = "two words".into();
    let ran = run_with(client, &bad, std::future::pending()).await;
    finish(server).await;
    let error = ran.result.expect_err("a bad image");
    assert_eq!(error.exit_code(), 2, "{error}");
}
