//! The settings doctor recommends for a load-generating machine, as one list
//! ([`recommended`]): what `pummel k8s render` turns into pod sysctls and comments, so that a
//! pod gets the same advice as a machine checked by `pummel doctor`.
//!
//! The values are the ones doctor's checks suggest in their fixes (the same constants), for a
//! machine judged in general rather than for one connection count.

use super::files::{FILE_MAX_LIMITS, NR_OPEN_LIMITS, OWN_LIMITS, SUGGESTED_OPEN_FILES};
use super::network::{
    PORTS_LIMITS, SOMAXCONN_LIMITS, SUGGESTED_BACKLOG, SYN_BACKLOG_LIMITS, TW_REUSE_LIMITS, WIDE_PORT_RANGE,
};

/// One recommended setting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recommendation {
    /// The sysctl (`net.ipv4.ip_local_port_range`), or `nofile` for the open-file limit.
    pub name: &'static str,
    /// The value recommended, as `sysctl -w` takes it (`1024 65535`).
    pub value: String,
    /// What the setting limits, in doctor's words.
    pub limits: &'static str,
}

impl Recommendation {
    /// True for a kernel sysctl (everything but the `nofile` resource limit).
    pub fn is_sysctl(&self) -> bool {
        self.name.contains('.')
    }
}

/// The settings doctor recommends, in its display order: the open-file limit, `fs.nr_open`,
/// `fs.file-max`, the ephemeral port range, TIME_WAIT reuse and the two listen backlogs.
pub fn recommended() -> Vec<Recommendation> {
    let files = SUGGESTED_OPEN_FILES.to_string();
    vec![
        Recommendation { name: "nofile", value: files.clone(), limits: OWN_LIMITS },
        Recommendation { name: "fs.nr_open", value: files.clone(), limits: NR_OPEN_LIMITS },
        // Room for every process's files, not only pummel's.
        Recommendation { name: "fs.file-max", value: (SUGGESTED_OPEN_FILES * 2).to_string(), limits: FILE_MAX_LIMITS },
        Recommendation {
            name: "net.ipv4.ip_local_port_range",
            value: format!("{} {}", WIDE_PORT_RANGE.0, WIDE_PORT_RANGE.1),
            limits: PORTS_LIMITS,
        },
        Recommendation { name: "net.ipv4.tcp_tw_reuse", value: "1".into(), limits: TW_REUSE_LIMITS },
        Recommendation { name: "net.core.somaxconn", value: SUGGESTED_BACKLOG.into(), limits: SOMAXCONN_LIMITS },
        Recommendation {
            name: "net.ipv4.tcp_max_syn_backlog",
            value: SUGGESTED_BACKLOG.into(),
            limits: SYN_BACKLOG_LIMITS,
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::doctor::{DoctorRequest, SystemFacts, judge};

    #[test]
    fn every_recommended_sysctl_is_one_doctor_checks_and_fixes_with_that_value() {
        // A machine with every setting low: each check then offers its fix.
        let facts = SystemFacts {
            port_range: Some((32768, 60999)),
            somaxconn: Some(128),
            tcp_max_syn_backlog: Some(128),
            tcp_tw_reuse: Some(0),
            nr_open: Some(1024),
            file_max: Some(1024),
            ..SystemFacts::default()
        };
        let checks = judge(&facts, None, &DoctorRequest::for_connections(100_000));
        for rec in recommended().iter().filter(|r| r.is_sysctl()) {
            let check = checks.iter().find(|c| c.id == rec.name).unwrap_or_else(|| panic!("no check {}", rec.name));
            let fixes = check.fix.join("\n");
            assert!(fixes.contains(&format!("sysctl -w {}=", rec.name)), "{}: {fixes}", rec.name);
            assert_eq!(check.limits, rec.limits, "{}", rec.name);
        }
        let port_fix = checks.iter().find(|c| c.id == "net.ipv4.ip_local_port_range").unwrap().fix.join("\n");
        assert!(port_fix.contains("1024 65535"), "{port_fix}");
    }
}
