//! Checks of the network sysctls a load test meets: ephemeral ports per destination, the
//! listen backlogs that decide whether a burst of new connections is queued or dropped,
//! TIME_WAIT reuse for reconnecting clients, and netfilter's connection tracking table.

use super::DoctorRequest;
use super::check::{Check, Status, sysctl_fix, unreadable};
use super::facts::SystemFacts;

/// A backlog below this is worth raising for a load test.
const SMALL_BACKLOG: u64 = 1024;
/// The backlog doctor suggests.
pub(crate) const SUGGESTED_BACKLOG: &str = "4096";
/// The widest usual ephemeral range (below 1024 are the privileged ports).
pub(crate) const WIDE_PORT_RANGE: (u16, u16) = (1024, 65535);

pub(crate) const PORTS_LIMITS: &str = "connections from one local address to one target address:port: each needs its own \
                            local port";
pub(crate) const SOMAXCONN_LIMITS: &str = "the accept queue of every listening socket: connections completed but not yet \
                                accepted by the target; beyond it they are dropped (ListenOverflows) and retried \
                                1 s, 3 s, 7 s later";
pub(crate) const SYN_BACKLOG_LIMITS: &str = "half-open connections (SYN received, handshake not complete) per listener; beyond \
                                  it SYNs are dropped or answered with syncookies";
pub(crate) const TW_REUSE_LIMITS: &str = "reconnecting: a connection closed by the client keeps its local port in TIME_WAIT \
                               for 60 s unless new outgoing connections may reuse it";
const CONNTRACK_LIMITS: &str = "connections the firewall's connection tracking can follow; beyond it packets of new \
                                connections are dropped (`nf_conntrack: table full` in dmesg)";

/// `net.ipv4.ip_local_port_range`: how many connections fit per (local address, target) pair.
pub(crate) fn port_range(facts: &SystemFacts, request: &DoctorRequest) -> Check {
    let (id, title) = ("net.ipv4.ip_local_port_range", "net.ipv4.ip_local_port_range");
    let Some((low, high)) = facts.port_range else { return unreadable(id, title, PORTS_LIMITS) };
    let ports = u64::from(high - low) + 1;
    let pairs = request.address_pairs.max(1);
    let capacity = ports.saturating_mul(pairs);
    let value = format!("{low}-{high} ({ports} ports)");
    let spread = if pairs > 1 { format!(" x {pairs} address pairs = {capacity}") } else { String::new() };
    let (status, detail) = match request.connections {
        Some(n) if n > capacity => (
            Status::Fail,
            format!("{n} connections to one target address:port need {n} local ports; there are {ports}{spread}"),
        ),
        Some(n) if n.saturating_mul(5) > capacity.saturating_mul(4) => (
            Status::Warn,
            format!(
                "{n} connections fit in {ports}{spread} ports, but closed connections keep their port for 60 s \
                 (TIME_WAIT): reconnecting will run out"
            ),
        ),
        Some(n) => (Status::Ok, format!("{n} connections fit in {ports}{spread} local ports")),
        None => (Status::Ok, format!("up to {ports} connections per (local address, target address:port) pair")),
    };
    let mut fix = Vec::new();
    if (low, high) != WIDE_PORT_RANGE && ports < u64::from(WIDE_PORT_RANGE.1 - WIDE_PORT_RANGE.0) {
        fix.extend(sysctl_fix(id, &format!("{} {}", WIDE_PORT_RANGE.0, WIDE_PORT_RANGE.1)));
    }
    fix.push(format!(
        "spread the connections: --source-addrs 127.0.0.2-127.0.0.9 (loopback; each local address adds {ports} ports), \
         or several target addresses"
    ));
    Check::new(id, status, title, value, PORTS_LIMITS, detail).fix(fix)
}

/// A backlog sysctl (`somaxconn`, `tcp_max_syn_backlog`): warn below [`SMALL_BACKLOG`].
fn backlog(facts_value: Option<u64>, id: &'static str, limits: &str, what: &str) -> Check {
    let Some(value) = facts_value else { return unreadable(id, id, limits) };
    let (status, detail) = if value < SMALL_BACKLOG {
        (
            Status::Warn,
            format!(
                "at most {value} {what}: opening thousands of connections at once (or a target that stalls) will \
                 see connections dropped and retried seconds later"
            ),
        )
    } else {
        (Status::Ok, format!("up to {value} {what}"))
    };
    Check::new(id, status, id, value.to_string(), limits, detail).fix(sysctl_fix(id, SUGGESTED_BACKLOG))
}

/// `net.core.somaxconn`.
pub(crate) fn somaxconn(facts: &SystemFacts) -> Check {
    let mut check = backlog(
        facts.somaxconn,
        "net.core.somaxconn",
        SOMAXCONN_LIMITS,
        "connections wait in a listener's accept queue",
    );
    if !check.fix.is_empty() {
        check
            .fix
            .push("the target must ask for it too: its listen() backlog (e.g. nginx `listen 80 backlog=4096`)".into());
    }
    check
}

/// `net.ipv4.tcp_max_syn_backlog`.
pub(crate) fn syn_backlog(facts: &SystemFacts) -> Check {
    backlog(
        facts.tcp_max_syn_backlog,
        "net.ipv4.tcp_max_syn_backlog",
        SYN_BACKLOG_LIMITS,
        "half-open connections per listener",
    )
}

/// `net.ipv4.tcp_tw_reuse`.
pub(crate) fn tw_reuse(facts: &SystemFacts) -> Check {
    let id = "net.ipv4.tcp_tw_reuse";
    let Some(value) = facts.tcp_tw_reuse else { return unreadable(id, id, TW_REUSE_LIMITS) };
    let per_second = facts.port_range.map_or(0, |(low, high)| (u64::from(high - low) + 1) / 60);
    let (status, detail) = match value {
        0 => (
            Status::Warn,
            format!(
                "off: with a new connection per request (--no-keepalive), ports stay in TIME_WAIT for 60 s, so at \
                 most about {per_second} new connections per second reach one target address:port"
            ),
        ),
        2 => (
            Status::Ok,
            "on for loopback targets only (the kernel default); remote targets keep ports in TIME_WAIT for 60 s".into(),
        ),
        _ => (Status::Ok, "on: new outgoing connections may reuse ports in TIME_WAIT".into()),
    };
    Check::new(id, status, id, value.to_string(), TW_REUSE_LIMITS, detail).fix(sysctl_fix(id, "1"))
}

/// `net.netfilter.nf_conntrack_max`, only when the module is loaded.
pub(crate) fn conntrack(facts: &SystemFacts, request: &DoctorRequest) -> Option<Check> {
    let id = "net.netfilter.nf_conntrack_max";
    let table = facts.conntrack?;
    let count = table.count.unwrap_or(0);
    let free = table.max.saturating_sub(count);
    let value = format!("{} ({count} tracked now)", table.max);
    let (status, detail) = match request.connections {
        Some(n) if n > free => (Status::Fail, format!("{n} connections need {n} tracking entries; {free} are free")),
        Some(n) if n.saturating_mul(5) > free.saturating_mul(4) => (
            Status::Warn,
            format!("{n} connections fit in the {free} free entries, but closed ones stay tracked for up to 2 min"),
        ),
        Some(n) => (Status::Ok, format!("{n} connections fit in the {free} free entries")),
        None if count.saturating_mul(10) > table.max.saturating_mul(9) => {
            (Status::Warn, format!("the table is {}% full", count.saturating_mul(100) / table.max.max(1)))
        }
        None => (Status::Ok, format!("{free} connections can still be tracked")),
    };
    let wanted = count.saturating_add(request.connections.unwrap_or(0)).saturating_mul(2).max(262_144);
    let suggested = wanted.checked_next_power_of_two().unwrap_or(wanted).to_string();
    Some(Check::new(id, status, id, value, CONNTRACK_LIMITS, detail).fix(sysctl_fix(id, &suggested)))
}
