//! One finding of doctor: a setting, its value, what it limits, whether it will limit the test,
//! and the exact commands that fix it.

use serde::Serialize;

/// How a setting stands for the test asked about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    /// It will not limit the test.
    Ok,
    /// Worth knowing or fixing, but it will not stop the test as asked (a low value that may
    /// bite under other conditions, or a value that could not be read).
    Warn,
    /// It will limit the test: connections will fail or be dropped because of it.
    Fail,
}

impl Status {
    /// `OK`, `WARN` or `FAIL`, for text output.
    pub fn label(self) -> &'static str {
        match self {
            Status::Ok => "OK",
            Status::Warn => "WARN",
            Status::Fail => "FAIL",
        }
    }
}

/// One setting, judged.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Check {
    /// A stable identifier: the sysctl name (`net.core.somaxconn`), or `open_files`,
    /// `target.open_files`, `target.processes` for resource limits.
    pub id: &'static str,
    /// The verdict.
    pub status: Status,
    /// A short name for people, e.g. `open files (this shell)`.
    pub title: String,
    /// The current value, e.g. `soft 1024, hard 524288`.
    pub value: String,
    /// What the setting limits during a load test.
    pub limits: String,
    /// Why this verdict, with the numbers.
    pub detail: String,
    /// Commands or configuration lines that fix it, in order; empty when nothing needs fixing.
    pub fix: Vec<String>,
}

impl Check {
    /// A check with no fix; add one with [`Check::fix`].
    pub(crate) fn new(
        id: &'static str,
        status: Status,
        title: &str,
        value: String,
        limits: &str,
        detail: String,
    ) -> Check {
        Check { id, status, title: title.to_string(), value, limits: limits.to_string(), detail, fix: Vec::new() }
    }

    /// The same check with `fix` as its remedy, kept only when it is not OK.
    pub(crate) fn fix(mut self, fix: Vec<String>) -> Check {
        if self.status != Status::Ok {
            self.fix = fix;
        }
        self
    }
}

/// A sysctl fix: set it now, and keep it after a reboot.
pub(crate) fn sysctl_fix(name: &str, value: &str) -> Vec<String> {
    let quoted = if value.contains(' ') { format!("\"{value}\"") } else { value.to_string() };
    vec![
        format!("sysctl -w {name}={quoted}"),
        format!("echo '{name} = {value}' >> /etc/sysctl.d/90-load-test.conf   # keeps it after a reboot"),
    ]
}

/// A limit shown as people read it (`unlimited` for none).
pub(crate) fn show(value: Option<u64>) -> String {
    value.map_or_else(|| "unlimited".to_string(), |v| v.to_string())
}

/// `soft S, hard H`.
pub(crate) fn show_pair(soft: Option<u64>, hard: Option<u64>) -> String {
    format!("soft {}, hard {}", show(soft), show(hard))
}

/// A check for a value that could not be read.
pub(crate) fn unreadable(id: &'static str, title: &str, limits: &str) -> Check {
    Check::new(
        id,
        Status::Warn,
        title,
        "unknown".into(),
        limits,
        format!("{id} could not be read here (not in this kernel, or hidden in this container); not checked"),
    )
}
