//! End-to-end tests of the `pummel` binary: each test runs the real binary against real servers
//! on loopback (its own `pummel sink`, a small misbehaving server in this process, or an
//! independent one: nginx, gunicorn, HAProxy, installed by `.ci/setup-*`) and checks
//! the numbers it reports, its results document and its exit codes.
//!
//! Rules every test keeps: traffic only to 127.0.0.1 on ports bound as port 0 (or, in
//! `netns`, inside network namespaces the test makes and deletes itself); every run and
//! every wait has a time limit; child processes are killed on drop; runs last 1-3 s; tests whose
//! assertions depend on timing hold `support::exclusive()` so they never share the CPU with
//! another run (the others hold `support::shared()`).
//!
//! One file per subject, under `tests/cli/`; helpers under `tests/support/`.

mod support;

#[path = "cli/breaking.rs"]
mod breaking;
#[path = "cli/cluster.rs"]
mod cluster;
#[path = "cli/convert.rs"]
mod convert;
#[path = "cli/convert_browser.rs"]
mod convert_browser;
#[path = "cli/counts.rs"]
mod counts;
#[path = "cli/dashboard.rs"]
mod dashboard;
#[path = "cli/demo.rs"]
mod demo;
#[path = "cli/errors.rs"]
mod errors;
#[path = "cli/faults.rs"]
mod faults;
#[path = "cli/find_limit.rs"]
mod find_limit;
#[path = "cli/flows.rs"]
mod flows;
#[path = "cli/generator.rs"]
mod generator;
#[path = "cli/hold.rs"]
mod hold;
#[path = "cli/http2.rs"]
mod http2;
#[path = "cli/http_client.rs"]
mod http_client;
#[path = "cli/interrupt.rs"]
mod interrupt;
#[path = "cli/junit.rs"]
mod junit;
#[path = "cli/k8s.rs"]
mod k8s;
#[path = "cli/keepalive.rs"]
mod keepalive;
#[path = "cli/latency.rs"]
mod latency;
#[path = "cli/merge.rs"]
mod merge;
#[path = "cli/metrics.rs"]
mod metrics;
#[path = "cli/netns.rs"]
mod netns;
#[path = "cli/observe.rs"]
mod observe;
#[path = "cli/outcomes.rs"]
mod outcomes;
#[path = "cli/phases.rs"]
mod phases;
#[path = "cli/plans.rs"]
mod plans;
#[path = "cli/proxy.rs"]
mod proxy;
#[path = "cli/rate.rs"]
mod rate;
#[path = "cli/report.rs"]
mod report;
#[path = "cli/request_log.rs"]
mod request_log;
#[path = "cli/results.rs"]
mod results;
#[path = "cli/seed.rs"]
mod seed;
#[path = "cli/segments.rs"]
mod segments;
#[path = "cli/sink.rs"]
mod sink;
#[path = "cli/sink_processes.rs"]
mod sink_processes;
#[path = "cli/sink_record.rs"]
mod sink_record;
#[path = "cli/system.rs"]
mod system;
#[path = "cli/targets.rs"]
mod targets;
#[path = "cli/thresholds.rs"]
mod thresholds;
#[path = "cli/tls.rs"]
mod tls;
#[path = "cli/writes.rs"]
mod writes;
#[path = "cli/ws_memory.rs"]
mod ws_memory;
