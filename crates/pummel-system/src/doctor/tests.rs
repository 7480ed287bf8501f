//! Doctor's judgement on made-up machines, and one look at the real one.

use super::*;
use crate::proc_text::limits::{ProcessLimits, ResourceLimit};

/// A comfortable modern machine.
fn roomy() -> SystemFacts {
    SystemFacts {
        open_files: Some(ResourceLimit { soft: Some(1024), hard: Some(1_048_576) }),
        file_max: Some(9_223_372_036_854_775_807),
        files_allocated: Some(3_000),
        nr_open: Some(1_048_576),
        port_range: Some((32768, 60999)),
        somaxconn: Some(4096),
        tcp_max_syn_backlog: Some(4096),
        tcp_tw_reuse: Some(2),
        conntrack: None,
    }
}

fn target(soft_files: u64, open_fds: u64) -> TargetFacts {
    TargetFacts {
        pid: 4242,
        name: "contextBroker".into(),
        limits: ProcessLimits {
            open_files: ResourceLimit { soft: Some(soft_files), hard: Some(soft_files) },
            processes: ResourceLimit { soft: Some(1024), hard: Some(63704) },
        },
        open_fds: Some(open_fds),
        threads: 12,
    }
}

fn check<'a>(checks: &'a [Check], id: &str) -> &'a Check {
    checks.iter().find(|c| c.id == id).unwrap_or_else(|| panic!("no check {id} in {checks:#?}"))
}

fn failing(checks: &[Check]) -> Vec<&'static str> {
    checks.iter().filter(|c| c.status == Status::Fail).map(|c| c.id).collect()
}

#[test]
fn a_roomy_machine_passes() {
    let checks = judge(&roomy(), None, &DoctorRequest::for_connections(10_000));
    assert!(failing(&checks).is_empty(), "{checks:#?}");
    assert!(checks.iter().all(|c| c.status == Status::Ok), "{checks:#?}");
    assert!(checks.iter().all(|c| c.fix.is_empty()), "OK checks carry no fix");
    let own = check(&checks, "open_files");
    assert!(own.detail.contains("pummel raises its soft limit"), "{own:?}");
    assert_eq!(own.value, "soft 1024, hard 1048576");
}

#[test]
fn a_low_hard_limit_fails_with_the_ulimit_fix() {
    let mut facts = roomy();
    facts.open_files = Some(ResourceLimit { soft: Some(256), hard: Some(256) });
    let checks = judge(&facts, None, &DoctorRequest::for_connections(1000));
    assert_eq!(failing(&checks), ["open_files"]);
    let own = check(&checks, "open_files");
    assert!(own.detail.contains("1064"), "{own:?}");
    assert!(own.fix[0].starts_with("ulimit -n 1048576"), "{:?}", own.fix);
    assert!(own.fix.iter().any(|line| line == "*  hard  nofile  1048576"), "{:?}", own.fix);
    // Without a connection count it is only a warning.
    let checks = judge(&facts, None, &DoctorRequest::default());
    assert_eq!(check(&checks, "open_files").status, Status::Warn);
}

#[test]
fn ports_per_destination() {
    let facts = roomy();
    let checks = judge(&facts, None, &DoctorRequest::for_connections(30_000));
    assert_eq!(failing(&checks), ["net.ipv4.ip_local_port_range"]);
    let ports = check(&checks, "net.ipv4.ip_local_port_range");
    assert_eq!(ports.value, "32768-60999 (28232 ports)");
    assert!(ports.fix.iter().any(|f| f.contains("--source-addrs")), "{:?}", ports.fix);
    assert!(ports.fix[0].starts_with("sysctl -w net.ipv4.ip_local_port_range=\"1024 65535\""), "{:?}", ports.fix);

    // Spread over 8 local addresses, the same test fits.
    let spread = DoctorRequest { address_pairs: 8, ..DoctorRequest::for_connections(30_000) };
    let checks = judge(&facts, None, &spread);
    assert_eq!(check(&checks, "net.ipv4.ip_local_port_range").status, Status::Ok);

    // Close to the range: a warning about TIME_WAIT.
    let checks = judge(&facts, None, &DoctorRequest::for_connections(25_000));
    assert_eq!(check(&checks, "net.ipv4.ip_local_port_range").status, Status::Warn);
}

#[test]
fn small_backlogs_and_tw_reuse_warn() {
    let mut facts = roomy();
    facts.somaxconn = Some(128);
    facts.tcp_max_syn_backlog = Some(256);
    facts.tcp_tw_reuse = Some(0);
    let checks = judge(&facts, None, &DoctorRequest::for_connections(100));
    assert!(failing(&checks).is_empty());
    let somaxconn = check(&checks, "net.core.somaxconn");
    assert_eq!(somaxconn.status, Status::Warn);
    assert_eq!(somaxconn.fix[0], "sysctl -w net.core.somaxconn=4096");
    assert_eq!(check(&checks, "net.ipv4.tcp_max_syn_backlog").status, Status::Warn);
    let tw = check(&checks, "net.ipv4.tcp_tw_reuse");
    assert_eq!(tw.status, Status::Warn);
    assert!(tw.detail.contains("470 new connections per second"), "{tw:?}");
}

#[test]
fn nr_open_and_file_max() {
    let mut facts = roomy();
    facts.open_files = Some(ResourceLimit { soft: None, hard: None });
    facts.nr_open = Some(1_048_576);
    facts.file_max = Some(100_000);
    facts.files_allocated = Some(50_000);
    let request = DoctorRequest { address_pairs: 100, ..DoctorRequest::for_connections(2_000_000) };
    let checks = judge(&facts, None, &request);
    assert_eq!(failing(&checks), ["fs.nr_open", "fs.file-max"]);
    assert!(check(&checks, "fs.nr_open").fix[0].starts_with("sysctl -w fs.nr_open="));
}

#[test]
fn conntrack_only_when_loaded() {
    let checks = judge(&roomy(), None, &DoctorRequest::for_connections(10));
    assert!(checks.iter().all(|c| c.id != "net.netfilter.nf_conntrack_max"));
    let mut facts = roomy();
    facts.conntrack = Some(Conntrack { max: 65_536, count: Some(60_000) });
    let checks = judge(&facts, None, &DoctorRequest::for_connections(10_000));
    let conntrack = check(&checks, "net.netfilter.nf_conntrack_max");
    assert_eq!(conntrack.status, Status::Fail);
    assert_eq!(conntrack.fix[0], "sysctl -w net.netfilter.nf_conntrack_max=262144");
    let checks = judge(&facts, None, &DoctorRequest::default());
    assert_eq!(check(&checks, "net.netfilter.nf_conntrack_max").status, Status::Warn);
}

#[test]
fn the_seeds_target() {
    // The seed: a broker with 1024 open files allowed and 10 in use, 5,000 connections to come.
    let target = target(1024, 10);
    let checks = judge(&roomy(), Some(&target), &DoctorRequest::for_connections(5_000));
    assert_eq!(failing(&checks), ["target.open_files"]);
    let files = check(&checks, "target.open_files");
    assert_eq!(files.title, "open files of contextBroker (PID 4242)");
    assert!(files.detail.contains("5010"), "{files:?}");
    assert!(files.fix[0].starts_with("prlimit --pid 4242 --nofile=1048576:1048576"), "{:?}", files.fix);
    assert!(files.fix.iter().any(|f| f.contains("LimitNOFILE=")));
    let processes = check(&checks, "target.processes");
    assert_eq!(processes.status, Status::Warn, "1024 threads for 5,000 connections");
    assert!(processes.fix.iter().any(|f| f.contains("nproc")));
}

#[test]
fn unreadable_values_warn() {
    let facts = SystemFacts::default();
    let checks = judge(&facts, None, &DoctorRequest::for_connections(10));
    assert!(failing(&checks).is_empty());
    assert!(checks.iter().all(|c| c.status == Status::Warn), "{checks:#?}");
    assert!(checks.iter().all(|c| c.value == "unknown"));
}

#[test]
fn summary_line_names_the_first_problem() {
    let mut facts = roomy();
    facts.open_files = Some(ResourceLimit { soft: Some(256), hard: Some(256) });
    let request = DoctorRequest::for_connections(30_000);
    let checks = judge(&facts, None, &request);
    let report = Report { connections: Some(30_000), target: None, will_limit: true, checks };
    let line = summary_line(&report, &request).unwrap();
    assert!(line.starts_with("limit: open files (this shell): 30000 connections need 30064"), "{line}");
    assert!(line.contains("fix: ulimit -n 1048576 (1 more problem)"), "{line}");
    assert!(line.ends_with("(see `pummel doctor --connections 30000`)"), "{line}");
    assert!(!line.contains('\n'));
}

#[test]
fn this_machine() {
    let report = examine(&DoctorRequest::default()).unwrap();
    assert!(report.checks.len() >= 7);
    assert_eq!(report.will_limit, report.count(Status::Fail) > 0);
    assert!(quick_check(10).is_none(), "10 connections fit anywhere: {:?}", quick_check(10));
    let with_self = examine(&DoctorRequest { pid: Some(std::process::id()), ..DoctorRequest::for_connections(10) });
    let with_self = with_self.unwrap();
    assert_eq!(with_self.target.unwrap().pid, std::process::id());
    assert!(with_self.checks.iter().any(|c| c.id == "target.open_files"));
    assert_eq!(
        examine(&DoctorRequest { pid: Some(i32::MAX as u32), ..DoctorRequest::default() }).unwrap_err(),
        WatchError::NoSuchProcess { pid: i32::MAX as u32 }
    );
}

#[test]
fn reports_serialize_with_lowercase_statuses() {
    let checks = judge(&roomy(), None, &DoctorRequest::for_connections(30_000));
    let report = Report { connections: Some(30_000), target: None, will_limit: true, checks };
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["will_limit"], true);
    assert_eq!(json["checks"][0]["id"], "open_files");
    assert_eq!(json["checks"][0]["status"], "ok");
    assert_eq!(json["checks"][3]["status"], "fail");
    assert!(json["checks"][3]["fix"].is_array());
}
