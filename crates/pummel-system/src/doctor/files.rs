//! Checks of open-file limits: this shell's (what pummel gets), the system's (`fs.file-max`,
//! `fs.nr_open`), and a target process's open files and processes.
//!
//! Every connection is one open file on each side, so these are the first limits a test with
//! many connections meets; a process at its limit fails accept() or connect() with EMFILE.

use super::DoctorRequest;
use super::check::{Check, Status, show, show_pair, sysctl_fix, unreadable};
use super::facts::{SystemFacts, TargetFacts};

/// Open files pummel keeps for itself beside its connections (as the engine reserves).
pub const RESERVED_FDS: u64 = 64;
/// The open-file limit doctor suggests: 2^20, the default `fs.nr_open`.
pub const SUGGESTED_OPEN_FILES: u64 = 1 << 20;
/// Below this hard limit doctor warns even when no connection count is given.
const COMFORTABLE_OPEN_FILES: u64 = 65_536;

pub(crate) const OWN_LIMITS: &str = "connections pummel can hold at once: one open file each, 64 kept for itself";
pub(crate) const FILE_MAX_LIMITS: &str = "open files of all processes together";
pub(crate) const NR_OPEN_LIMITS: &str = "the highest open-file limit (ulimit -n) any process can be given";
const TARGET_FILES_LIMITS: &str = "connections the target can hold: each is an open file of the target, and no fd \
                                   number can reach the soft limit";
const TARGET_PROCESSES_LIMITS: &str = "threads of all processes of the target's user: a server that runs a thread \
                                       per connection stops there";

/// A limit suggestion at least `need`, a power of two, at least [`SUGGESTED_OPEN_FILES`].
fn suggested(need: u64) -> u64 {
    need.max(SUGGESTED_OPEN_FILES).checked_next_power_of_two().unwrap_or(need)
}

/// The limits.conf lines for `item` (`nofile`, `nproc`) at `value`.
fn limits_conf(item: &str, value: u64) -> [String; 2] {
    [format!("*  soft  {item}  {value}"), format!("*  hard  {item}  {value}")]
}

/// This process's RLIMIT_NOFILE, which pummel started from the same shell inherits.
pub(crate) fn own_open_files(facts: &SystemFacts, request: &DoctorRequest) -> Check {
    let title = "open files (this shell)";
    let Some(limit) = facts.open_files else { return unreadable("open_files", title, OWN_LIMITS) };
    let value = show_pair(limit.soft, limit.hard);
    let room =
        |hard: Option<u64>| hard.map_or_else(|| "no limit".into(), |h| h.saturating_sub(RESERVED_FDS).to_string());
    let (status, detail, need) = match request.connections {
        Some(n) => {
            let need = n.saturating_add(RESERVED_FDS);
            if !limit.hard_allows(need) {
                let detail = format!(
                    "{n} connections need {need} open files (one each + {RESERVED_FDS} for pummel), above the hard \
                     limit {}; only root can raise a hard limit",
                    show(limit.hard)
                );
                (Status::Fail, detail, need)
            } else if !limit.soft_allows(need) {
                let detail = format!(
                    "{n} connections need {need} open files: above the soft limit {} but within the hard limit {}, \
                     to which pummel raises its soft limit at start (other tools may not)",
                    show(limit.soft),
                    show(limit.hard)
                );
                (Status::Ok, detail, need)
            } else {
                (Status::Ok, format!("{n} connections need {need} open files; the soft limit allows them"), need)
            }
        }
        None if !limit.hard_allows(COMFORTABLE_OPEN_FILES) => {
            let detail = format!(
                "pummel raises its soft limit to the hard limit at start, which leaves room for only {} connections",
                room(limit.hard)
            );
            (Status::Warn, detail, COMFORTABLE_OPEN_FILES)
        }
        None => {
            let detail = format!(
                "pummel raises its soft limit to the hard limit at start: room for {} connections",
                room(limit.hard)
            );
            (Status::Ok, detail, 0)
        }
    };
    let s = suggested(need);
    let [soft_line, hard_line] = limits_conf("nofile", s);
    Check::new("open_files", status, title, value, OWN_LIMITS, detail).fix(vec![
        format!("ulimit -n {s}   # in the shell that starts pummel; above the hard limit only as root"),
        "for a user, in /etc/security/limits.conf (then log in again):".into(),
        soft_line,
        hard_line,
    ])
}

/// `fs.nr_open`: no ulimit can go above it, not even root's.
pub(crate) fn nr_open(facts: &SystemFacts, request: &DoctorRequest, target: Option<&TargetFacts>) -> Check {
    let (id, title) = ("fs.nr_open", "fs.nr_open");
    let Some(nr_open) = facts.nr_open else { return unreadable(id, title, NR_OPEN_LIMITS) };
    let need = request.connections.map(|n| {
        let pummel = n.saturating_add(RESERVED_FDS);
        let target = target.map_or(0, |t| n.saturating_add(t.open_fds.unwrap_or(0)));
        pummel.max(target)
    });
    let (status, detail) = match need {
        Some(need) if need > nr_open => (
            Status::Fail,
            format!("{need} open files in one process are needed, but no process can be allowed more than {nr_open}"),
        ),
        _ => (Status::Ok, format!("a process can be allowed up to {nr_open} open files")),
    };
    let value = suggested(need.unwrap_or(0)).to_string();
    Check::new(id, status, title, nr_open.to_string(), NR_OPEN_LIMITS, detail).fix(sysctl_fix(id, &value))
}

/// `fs.file-max` against the handles allocated now and those the test adds.
pub(crate) fn file_max(facts: &SystemFacts, request: &DoctorRequest, target: Option<&TargetFacts>) -> Check {
    let (id, title) = ("fs.file-max", "fs.file-max");
    let Some(max) = facts.file_max else { return unreadable(id, title, FILE_MAX_LIMITS) };
    let allocated = facts.files_allocated.unwrap_or(0);
    let free = max.saturating_sub(allocated);
    let value = format!("{max} ({allocated} in use)");
    let (status, detail, need) = match request.connections {
        Some(n) => {
            // A target on this machine holds the other end of every connection.
            let need = n.saturating_add(RESERVED_FDS).saturating_add(if target.is_some() { n } else { 0 });
            if need > free {
                (Status::Fail, format!("the test needs {need} more open files, {free} are left system-wide"), need)
            } else {
                (Status::Ok, format!("the test needs {need} more open files, {free} are left system-wide"), need)
            }
        }
        None if allocated.saturating_mul(10) > max.saturating_mul(9) => {
            (Status::Warn, format!("{allocated} of {max} open files are in use system-wide"), 0)
        }
        None => (Status::Ok, format!("{free} open files are left system-wide"), 0),
    };
    let value_fix = suggested(allocated.saturating_add(need).saturating_mul(2)).to_string();
    Check::new(id, status, title, value, FILE_MAX_LIMITS, detail).fix(sysctl_fix(id, &value_fix))
}

/// The target's open-file limit against the fds it has open and the connections to come.
pub(crate) fn target_open_files(target: &TargetFacts, request: &DoctorRequest) -> Check {
    let limit = target.limits.open_files;
    let used = target.open_fds.unwrap_or(0);
    let title = format!("open files of {} (PID {})", target.name, target.pid);
    let value = format!("{}; {used} open", show_pair(limit.soft, limit.hard));
    let room = limit.soft.map_or_else(|| "no limit".to_string(), |soft| soft.saturating_sub(used).to_string());
    let (status, detail, need) = match request.connections {
        Some(n) => {
            let need = used.saturating_add(n);
            if limit.soft_allows(need) {
                (Status::Ok, format!("{n} more connections need {need} open files; the soft limit allows them"), need)
            } else {
                let detail = format!(
                    "{n} more connections need {need} open files, above its soft limit {}: accept() will fail with \
                     EMFILE at about {room} more",
                    show(limit.soft)
                );
                (Status::Fail, detail, need)
            }
        }
        None if limit.soft.is_some_and(|soft| soft <= 4096 || used.saturating_mul(10) >= soft.saturating_mul(9)) => {
            (Status::Warn, format!("room for only {room} more connections"), COMFORTABLE_OPEN_FILES)
        }
        None => (Status::Ok, format!("room for {room} more connections"), 0),
    };
    let s = suggested(need);
    let pid = target.pid;
    let [soft_line, hard_line] = limits_conf("nofile", s);
    let mut check = Check::new("target.open_files", status, &title, value, TARGET_FILES_LIMITS, detail);
    check = check.fix(vec![
        format!("prlimit --pid {pid} --nofile={s}:{s}   # takes effect at once; as root"),
        format!("for a systemd service: LimitNOFILE={s} under [Service] in its unit, then restart it"),
        "for a service started from a login: in /etc/security/limits.conf, then restart it:".into(),
        soft_line,
        hard_line,
        format!("check with: grep 'open files' /proc/{pid}/limits   (init systems ignore limits.conf)"),
    ]);
    check
}

/// The target's process (thread) limit, which caps thread-per-connection servers.
pub(crate) fn target_processes(target: &TargetFacts, request: &DoctorRequest) -> Check {
    let limit = target.limits.processes;
    let title = format!("processes of {} (PID {})", target.name, target.pid);
    let value = format!("{}; {} threads", show_pair(limit.soft, limit.hard), target.threads);
    let (status, detail, need) = match request.connections {
        Some(n) if !limit.soft_allows(n) => (
            Status::Warn,
            format!(
                "a server with a thread per connection would need {n} threads, above the soft limit {} (fine for \
                 event-driven servers)",
                show(limit.soft)
            ),
            n.saturating_add(target.threads),
        ),
        _ => (Status::Ok, format!("its user may run up to {} threads", show(limit.soft)), 0),
    };
    let s = need.max(65_536).checked_next_power_of_two().unwrap_or(need);
    let pid = target.pid;
    let [soft_line, hard_line] = limits_conf("nproc", s);
    Check::new("target.processes", status, &title, value, TARGET_PROCESSES_LIMITS, detail).fix(vec![
        format!("prlimit --pid {pid} --nproc={s}:{s}   # as root"),
        "or in /etc/security/limits.conf (on CentOS 6: /etc/security/limits.d/90-nproc.conf), then restart it:".into(),
        soft_line,
        hard_line,
    ])
}
