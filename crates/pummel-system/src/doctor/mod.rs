//! Doctor: the system limits a load test runs into, each checked against the test asked about
//! and explained with the exact command that fixes it.
//!
//! [`examine`] reads the system ([`SystemFacts`], and [`TargetFacts`] for a target PID) and
//! [`judge`]s it: one [`Check`] per setting, OK / WARN / FAIL. A FAIL means the test as asked
//! will be limited by that setting (connections will fail or be dropped); WARN marks values
//! that are low or unreadable but will not stop it. [`quick_check`] is the one-line form that
//! `run` and `hold` print at start when a limit will bite. [`recommended`] lists the settings
//! doctor's fixes suggest, for places that cannot run doctor (`pummel k8s render`).

mod check;
mod facts;
mod files;
mod network;
mod recommend;

use serde::Serialize;

pub use self::check::{Check, Status};
pub use self::facts::{Conntrack, SystemFacts, TargetFacts};
pub use self::files::{RESERVED_FDS, SUGGESTED_OPEN_FILES};
pub use self::recommend::{Recommendation, recommended};
use crate::watch::WatchError;

/// The test doctor judges the system for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DoctorRequest {
    /// Connections the test will hold at once; `None` judges the system in general (nothing
    /// fails then, low values only warn).
    pub connections: Option<u64>,
    /// A target process on this machine whose limits are checked too.
    pub pid: Option<u32>,
    /// How many (local address, target address:port) pairs the connections are spread over:
    /// the number of `--source-addrs` times the number of target addresses. Each pair has its
    /// own range of ephemeral ports. 1 for a plain test.
    pub address_pairs: u64,
}

impl Default for DoctorRequest {
    fn default() -> Self {
        DoctorRequest { connections: None, pid: None, address_pairs: 1 }
    }
}

impl DoctorRequest {
    /// A test of `connections` connections to one target address, from one local address.
    pub fn for_connections(connections: u64) -> Self {
        DoctorRequest { connections: Some(connections), ..DoctorRequest::default() }
    }
}

/// The target process a report covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TargetSummary {
    /// Its PID.
    pub pid: u32,
    /// Its name.
    pub name: String,
}

/// Everything doctor found, in the order it is shown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Report {
    /// The connections judged for, if given.
    pub connections: Option<u64>,
    /// The target process judged, if given.
    pub target: Option<TargetSummary>,
    /// True when a check failed: something will limit the test.
    pub will_limit: bool,
    /// One entry per setting.
    pub checks: Vec<Check>,
}

impl Report {
    /// The checks that will limit the test.
    pub fn failures(&self) -> impl Iterator<Item = &Check> {
        self.checks.iter().filter(|check| check.status == Status::Fail)
    }

    /// How many checks have `status`.
    pub fn count(&self, status: Status) -> usize {
        self.checks.iter().filter(|check| check.status == status).count()
    }
}

/// Reads this system (and the target, if `request.pid` is set) and judges it for `request`.
/// Fails only when the target process cannot be read.
pub fn examine(request: &DoctorRequest) -> Result<Report, WatchError> {
    let target = request.pid.map(TargetFacts::gather).transpose()?;
    let system = SystemFacts::gather();
    let checks = judge(&system, target.as_ref(), request);
    Ok(Report {
        connections: request.connections,
        target: target.map(|t| TargetSummary { pid: t.pid, name: t.name }),
        will_limit: checks.iter().any(|check| check.status == Status::Fail),
        checks,
    })
}

/// Judges a system as found, for `request`: one check per setting, in display order. Pure, so
/// that it can be tested on made-up machines.
pub fn judge(system: &SystemFacts, target: Option<&TargetFacts>, request: &DoctorRequest) -> Vec<Check> {
    let mut checks = vec![
        files::own_open_files(system, request),
        files::nr_open(system, request, target),
        files::file_max(system, request, target),
        network::port_range(system, request),
        network::tw_reuse(system),
        network::somaxconn(system),
        network::syn_backlog(system),
    ];
    checks.extend(network::conntrack(system, request));
    if let Some(target) = target {
        checks.push(files::target_open_files(target, request));
        checks.push(files::target_processes(target, request));
    }
    checks
}

/// One line for the start of a test of `connections` connections (one local address, one
/// target address), when a limit of this machine will bite; `None` when nothing will.
pub fn quick_check(connections: u64) -> Option<String> {
    quick_check_with(&DoctorRequest::for_connections(connections))
}

/// [`quick_check`] for any request (several address pairs, a target PID). A target that cannot
/// be read is left out rather than reported.
pub fn quick_check_with(request: &DoctorRequest) -> Option<String> {
    let report = examine(request).or_else(|_| examine(&DoctorRequest { pid: None, ..*request })).ok()?;
    summary_line(&report, request)
}

/// The one-line form of a report's failures, `None` when there are none.
pub fn summary_line(report: &Report, request: &DoctorRequest) -> Option<String> {
    let mut failures = report.failures();
    let first = failures.next()?;
    let more = failures.count();
    let fix = first.fix.first().map(|fix| {
        let command = fix.split("   #").next().unwrap_or(fix).trim_end();
        format!("; fix: {command}")
    });
    let again = match request.connections {
        Some(n) => format!("pummel doctor --connections {n}"),
        None => "pummel doctor".into(),
    };
    let more =
        if more > 0 { format!(" ({more} more problem{})", if more == 1 { "" } else { "s" }) } else { String::new() };
    Some(format!("limit: {}: {}{}{more} (see `{again}`)", first.title, first.detail, fix.unwrap_or_default()))
}

#[cfg(test)]
mod tests;
