//! A small private network for the tests that need pummel's processes on different hosts: one
//! network namespace per "host" (coordinator, agents, target), joined by veth pairs to a bridge
//! that lives in a "switch" namespace of its own, so that nothing at all is added to the
//! machine's own network namespace: its interfaces, routes and firewall are never touched, and
//! the test's traffic cannot leave the namespaces (they have no route anywhere else).
//!
//! ```text
//!   host ns "agent1"        switch ns               host ns "target"
//!   eth0 10.213.X.11 ── p-agent1 ┐            ┌ p-target ── eth0 10.213.X.10
//!                                ├── br0 ─────┤
//!   host ns "agent2"        ...  ┘            └ ...
//! ```
//!
//! Every `ip` command here names the namespace it changes (`ip netns add NAME`, `ip -n NAME
//! ...`), never the current one. Namespace names hold the test process's PID and a sequence
//! number, so parallel tests and parallel runs never clash; [`Topology`] deletes its namespaces
//! on drop (`ip netns del` also removes the veths and the bridge inside), also when a test
//! panics, and namespaces left behind by an earlier test run that was killed (its PID is gone)
//! are removed before new ones are made.
//!
//! Processes run inside a namespace through `ip netns exec NAME PROGRAM ...`, which `exec`s
//! the program (it does not fork), so the PID of the child is the program's own and killing it
//! by PID kills pummel (or nginx), not a wrapper.
//!
//! Creating namespaces needs CAP_NET_ADMIN and CAP_SYS_ADMIN (root). Without them a test
//! prints why and returns early, except under CI (`$CI` set, as `.ci/run` does), where a test
//! that cannot run fails instead of passing silently.

use std::net::{Ipv4Addr, SocketAddr};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use super::{PUMMEL, Running};

/// Every namespace these tests make starts with this, then the creating test process's PID.
const PREFIX: &str = "pmt-";
/// The bridge inside the switch namespace.
const BRIDGE: &str = "br0";
/// The interface of each host namespace (its end of the veth pair).
const HOST_IF: &str = "eth0";
/// Linux capability bits (`linux/capability.h`).
const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Topologies made by this process so far (part of each namespace's name).
static SEQUENCE: AtomicU32 = AtomicU32::new(0);

/// Why this process cannot make network namespaces, if it cannot.
fn missing_privilege() -> Option<String> {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let effective = status
        .lines()
        .find_map(|line| line.strip_prefix("CapEff:"))
        .and_then(|hex| u64::from_str_radix(hex.trim(), 16).ok())
        .unwrap_or(0);
    let lacking: Vec<&str> = [(CAP_NET_ADMIN, "CAP_NET_ADMIN"), (CAP_SYS_ADMIN, "CAP_SYS_ADMIN")]
        .into_iter()
        .filter(|(bit, _)| effective & (1 << bit) == 0)
        .map(|(_, name)| name)
        .collect();
    if !lacking.is_empty() {
        return Some(format!("this process lacks {} (run the tests as root)", lacking.join(" and ")));
    }
    match Command::new("ip").arg("-V").stdout(Stdio::null()).stderr(Stdio::null()).status() {
        Ok(status) if status.success() => None,
        _ => Some("`ip` (iproute2) is not installed: apt-get install -y iproute2".into()),
    }
}

/// True when `test` can make network namespaces here. When it cannot, prints why and returns
/// false (the test returns early), or panics when `$CI` is set: in CI these tests run, never skip.
pub fn available(test: &str) -> bool {
    let Some(reason) = missing_privilege() else { return true };
    if std::env::var_os("CI").is_some() {
        panic!("{test}: cannot make network namespaces: {reason}; under CI ($CI is set) this test must run");
    }
    eprintln!("skipping {test}: it needs network namespaces, and {reason}");
    false
}

/// Runs `ip args...` and panics, with what it printed, unless it succeeds.
fn ip(args: &[&str]) {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .unwrap_or_else(|e| panic!("cannot run ip {}: {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
}

/// The names `ip netns list` shows now.
pub fn listed() -> Vec<String> {
    let output = Command::new("ip").args(["netns", "list"]).output().expect("run ip netns list");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

/// Deletes namespaces of earlier test runs whose process is gone (one killed before its
/// `Drop` ran). Namespaces of a living process, this one or a parallel run, are left alone.
fn remove_leftovers() {
    for name in listed() {
        let Some(pid) = name.strip_prefix(PREFIX).and_then(|rest| rest.split('-').next()) else { continue };
        if pid.parse::<u32>().is_ok() && !Path::new("/proc").join(pid).exists() {
            eprintln!("removing network namespace {name}, left behind by test process {pid}");
            let _ = Command::new("ip").args(["netns", "del", &name]).status();
        }
    }
}

/// One namespace of a [`Topology`]: a host with one address on the test's subnet.
#[derive(Debug, Clone)]
pub struct Host {
    /// What the test calls it (`coordinator`, `agent1`, `target`).
    pub role: String,
    /// The namespace's name (`ip netns exec NAME`).
    pub namespace: String,
    /// Its address on the bridge.
    pub ip: Ipv4Addr,
    /// Its veth end in the switch namespace (taking it down cuts the host off).
    port: String,
}

impl Host {
    /// `ip:port` on this host.
    pub fn addr(&self, port: u16) -> SocketAddr {
        SocketAddr::from((self.ip, port))
    }
}

/// Namespaces joined by a bridge, deleted on drop.
#[derive(Debug)]
pub struct Topology {
    /// The namespace holding the bridge.
    switch: String,
    /// The hosts, in the order they were asked for.
    hosts: Vec<Host>,
    /// Every namespace made so far (deleted on drop, the last made first).
    made: Vec<String>,
}

impl Topology {
    /// Makes one namespace per role (`coordinator`, `agent1`, ...), each with `lo` up and one
    /// veth to the bridge with address 10.213.X.(10 + i)/24, i being the role's position.
    ///
    /// X is derived from the PID so that captures of parallel runs are easy to tell apart;
    /// the subnet exists only inside this topology's namespaces, so two topologies with the
    /// same X cannot meet anyway. A failure half-way panics, and the namespaces made so far
    /// are deleted by the drop of the half-built value.
    pub fn create(roles: &[&str]) -> Topology {
        remove_leftovers();
        let pid = std::process::id();
        let sequence = SEQUENCE.fetch_add(1, Ordering::Relaxed);
        let name = |role: &str| format!("{PREFIX}{pid}-{sequence}-{role}");
        let subnet = (pid % 250 + 1) as u8;
        let mut topology = Topology { switch: name("switch"), hosts: Vec::new(), made: Vec::new() };
        let switch = topology.switch.clone();
        topology.add_namespace(&switch);
        ip(&["-n", &switch, "link", "add", BRIDGE, "type", "bridge", "forward_delay", "0"]);
        ip(&["-n", &switch, "link", "set", BRIDGE, "up"]);
        for (index, role) in roles.iter().enumerate() {
            let namespace = name(role);
            let host_ip = Ipv4Addr::new(10, 213, subnet, 10 + index as u8);
            // Interface names hold 15 bytes at most; these live in the switch namespace only.
            let port = format!("p{index}-{}", &role[..role.len().min(10)]);
            topology.add_namespace(&namespace);
            ip(&["-n", &switch, "link", "add", &port, "type", "veth", "peer", "name", HOST_IF, "netns", &namespace]);
            ip(&["-n", &switch, "link", "set", &port, "master", BRIDGE]);
            ip(&["-n", &switch, "link", "set", &port, "up"]);
            ip(&["-n", &namespace, "addr", "add", &format!("{host_ip}/24"), "dev", HOST_IF]);
            ip(&["-n", &namespace, "link", "set", HOST_IF, "up"]);
            topology.hosts.push(Host { role: role.to_string(), namespace, ip: host_ip, port });
        }
        topology
    }

    /// `ip netns add NAME` and `lo` up in it; remembered for the drop.
    fn add_namespace(&mut self, name: &str) {
        ip(&["netns", "add", name]);
        self.made.push(name.to_string());
        ip(&["-n", name, "link", "set", "lo", "up"]);
    }

    /// The host called `role`; panics if there is none.
    pub fn host(&self, role: &str) -> &Host {
        self.hosts.iter().find(|h| h.role == role).unwrap_or_else(|| panic!("no host {role} in {self:?}"))
    }

    /// Every namespace this topology made (the switch's too).
    pub fn namespaces(&self) -> Vec<String> {
        self.made.clone()
    }

    /// Starts `pummel args...` inside `role`'s namespace, with `env` set (`Some`) or removed
    /// (`None`) for it, as [`super::spawn_with_env`] does on the test's own network.
    pub fn spawn(&self, role: &str, args: &[&str], env: &[(&str, Option<&str>)]) -> Running {
        self.spawn_program(role, PUMMEL, args, env)
    }

    /// Starts `program args...` inside `role`'s namespace (`ip netns exec` execs it: the PID is
    /// the program's).
    pub fn spawn_program(&self, role: &str, program: &str, args: &[&str], env: &[(&str, Option<&str>)]) -> Running {
        let mut command = self.command(role, program);
        command.args(args);
        for (name, value) in env {
            match value {
                Some(value) => command.env(name, value),
                None => command.env_remove(name),
            };
        }
        super::start(command)
    }

    /// `ip netns exec NAME program`: a command that runs `program` inside `role`'s namespace;
    /// add its arguments.
    pub fn command(&self, role: &str, program: impl AsRef<std::ffi::OsStr>) -> Command {
        let mut command = Command::new("ip");
        command.args(["netns", "exec", &self.host(role).namespace]).arg(program);
        command
    }

    /// True once a TCP connection from inside `from`'s namespace to `addr` succeeds (through
    /// the bridge when `addr` is another host's); false after `limit`. The test process itself
    /// is not on this network, so it asks bash there (`/dev/tcp`), each try bounded by
    /// `timeout`.
    pub fn reachable(&self, from: &str, addr: SocketAddr, limit: Duration) -> bool {
        let deadline = Instant::now() + limit;
        let script = format!("exec 3<>/dev/tcp/{}/{}", addr.ip(), addr.port());
        while Instant::now() < deadline {
            let connected = Command::new("ip")
                .args(["netns", "exec", &self.host(from).namespace, "timeout", "2", "bash", "-c", &script])
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if connected {
                return true;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        false
    }

    /// Cuts `role` off the network: its veth end in the switch namespace goes down, so its
    /// packets are lost, without a reset or a close reaching its peers (a pulled cable).
    pub fn cut(&self, role: &str) {
        ip(&["-n", &self.switch, "link", "set", &self.host(role).port, "down"]);
    }

    /// The network namespace of process `pid`, as `/proc/PID/ns/net` names it (`net:[INODE]`).
    pub fn namespace_of_pid(pid: u32) -> Option<String> {
        std::fs::read_link(format!("/proc/{pid}/ns/net")).ok().map(|p| p.display().to_string())
    }

    /// The same name for `role`'s namespace (entering it for a moment with `ip netns exec`).
    pub fn namespace_id(&self, role: &str) -> String {
        let output = Command::new("ip")
            .args(["netns", "exec", &self.host(role).namespace, "readlink", "/proc/self/ns/net"])
            .output()
            .expect("run readlink inside the namespace");
        String::from_utf8_lossy(&output.stdout).trim().to_string()
    }
}

impl Drop for Topology {
    fn drop(&mut self) {
        for name in self.made.iter().rev() {
            let deleted = Command::new("ip")
                .args(["netns", "del", name])
                .stdout(Stdio::null())
                .status()
                .is_ok_and(|status| status.success());
            if !deleted {
                eprintln!("warning: could not delete network namespace {name}");
            }
        }
    }
}
