//! Where each setting `pummel doctor` recommends goes in a pod: Kubernetes lets a pod set
//! only *safe* sysctls by itself; other namespaced ones only when the kubelet allows them
//! (`--allowed-unsafe-sysctls`); node-level ones (`fs.*`) and the open-file limit are the
//! node's and the container runtime's, so they become comments.

use pummel_system::doctor::Recommendation;

/// The sysctls Kubernetes counts as safe (allowed in every pod, namespaced per pod), as of
/// Kubernetes 1.29: the original set (`kernel.shm_rmid_forced`, `net.ipv4.ip_local_port_range`,
/// `net.ipv4.tcp_syncookies`) and those added since (`ping_group_range` 1.18,
/// `ip_unprivileged_port_start` 1.22, `ip_local_reserved_ports` 1.27, the keepalive ones and
/// `tcp_fin_timeout` 1.29).
pub const SAFE_SYSCTLS: [&str; 10] = [
    "kernel.shm_rmid_forced",
    "net.ipv4.ip_local_port_range",
    "net.ipv4.tcp_syncookies",
    "net.ipv4.ping_group_range",
    "net.ipv4.ip_unprivileged_port_start",
    "net.ipv4.ip_local_reserved_ports",
    "net.ipv4.tcp_keepalive_time",
    "net.ipv4.tcp_fin_timeout",
    "net.ipv4.tcp_keepalive_intvl",
    "net.ipv4.tcp_keepalive_probes",
];

/// Where a recommended setting can be made for a pod.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SysctlPlace {
    /// A safe sysctl: in the pod's `securityContext.sysctls`.
    Pod,
    /// A namespaced sysctl Kubernetes calls unsafe: in the pod only where the kubelet allows
    /// it (`--allowed-unsafe-sysctls`); a comment otherwise.
    PodIfAllowed,
    /// A node-wide sysctl (`fs.file-max`, `fs.nr_open`): set on the nodes (their sysctl
    /// configuration, or a privileged DaemonSet), never by a pod.
    Node,
    /// The open-file limit: set by the container runtime (containerd's or CRI-O's default
    /// `nofile`); pummel raises its soft limit to the hard one at start.
    Runtime,
}

/// Where `rec` goes.
pub fn place(rec: &Recommendation) -> SysctlPlace {
    if !rec.is_sysctl() {
        SysctlPlace::Runtime
    } else if SAFE_SYSCTLS.contains(&rec.name) {
        SysctlPlace::Pod
    } else if rec.name.starts_with("net.") || rec.name.starts_with("kernel.shm") || rec.name.starts_with("kernel.msg") {
        SysctlPlace::PodIfAllowed
    } else {
        SysctlPlace::Node
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn doctors_recommendations_each_find_their_place() {
        let places: Vec<(&str, SysctlPlace)> =
            pummel_system::doctor::recommended().iter().map(|r| (r.name, place(r))).collect();
        let of = |name: &str| places.iter().find(|(n, _)| *n == name).map(|(_, p)| *p);
        assert_eq!(of("net.ipv4.ip_local_port_range"), Some(SysctlPlace::Pod));
        assert_eq!(of("net.ipv4.tcp_tw_reuse"), Some(SysctlPlace::PodIfAllowed));
        assert_eq!(of("net.core.somaxconn"), Some(SysctlPlace::PodIfAllowed));
        assert_eq!(of("fs.file-max"), Some(SysctlPlace::Node));
        assert_eq!(of("fs.nr_open"), Some(SysctlPlace::Node));
        assert_eq!(of("nofile"), Some(SysctlPlace::Runtime));
    }
}
