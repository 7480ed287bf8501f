//! The process side of faults: finding the processes named, signalling them, running shell
//! commands, and waiting for a restarted server's port.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use rustix::process::{Pid, Signal, kill_process};

use crate::spec::ProcessTarget;

/// The PIDs a target names now: the PID itself (if it exists), or every process listening on
/// the port. Never empty on success.
pub(crate) fn resolve(target: ProcessTarget) -> Result<Vec<u32>, String> {
    match target {
        ProcessTarget::Pid(pid) => {
            if std::path::Path::new(&format!("/proc/{pid}")).exists() {
                Ok(vec![pid])
            } else {
                Err(format!("no process {pid}"))
            }
        }
        ProcessTarget::Port(port) => pummel_system::watch::listening_processes(port)
            .map(|found| found.into_iter().map(|p| p.pid).collect())
            .map_err(|e| e.to_string()),
    }
}

/// Sends `signal` to each of `pids`; the first failure is the error (the others are still sent).
pub(crate) fn signal(pids: &[u32], signal: Signal) -> Result<(), String> {
    let mut first = None;
    for &pid in pids {
        let sent = i32::try_from(pid)
            .ok()
            .and_then(Pid::from_raw)
            .ok_or_else(|| format!("{pid} is not a process id"))
            .and_then(|p| kill_process(p, signal).map_err(|e| format!("pid {pid}: {e}")));
        if let Err(e) = sent {
            first.get_or_insert(e);
        }
    }
    first.map_or(Ok(()), Err)
}

/// Runs `command` with `sh -c` and waits for it (at most `limit`); its failure says why.
pub(crate) fn run(command: &str, limit: Duration) -> Result<(), String> {
    let mut child = Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run `{command}`: {e}"))?;
    let deadline = Instant::now() + limit;
    loop {
        match child.try_wait() {
            Ok(Some(status)) if status.success() => return Ok(()),
            Ok(Some(status)) => return Err(format!("`{command}` failed ({status})")),
            Ok(None) if Instant::now() >= deadline => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!("`{command}` did not end within {} s; stopped", limit.as_secs()));
            }
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(e) => return Err(format!("`{command}`: {e}")),
        }
    }
}

/// Starts `command` with `sh -c` in a process group of its own, so that it outlives pummel
/// and a Ctrl-C meant for pummel does not reach it; none of pummel's pipes are passed on (a
/// caller reading pummel's output to its end would wait for the restarted server too), so its
/// output goes where the command sends it.
pub(crate) fn spawn_detached(command: &str) -> Result<std::process::Child, String> {
    use std::os::unix::process::CommandExt;
    Command::new("sh")
        .arg("-c")
        .arg(command)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .process_group(0)
        .spawn()
        .map_err(|e| format!("cannot run `{command}`: {e}"))
}

/// Waits until something accepts connections on loopback `port`, at most `limit`; how long
/// it took.
pub(crate) fn wait_for_port(port: u16, limit: Duration) -> Result<Duration, String> {
    let started = Instant::now();
    let addr = SocketAddr::from((Ipv4Addr::LOCALHOST, port));
    loop {
        if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
            return Ok(started.elapsed());
        }
        if started.elapsed() >= limit {
            return Err(format!("nothing accepted on port {port} within {} s", limit.as_secs()));
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

/// The TCP ports `pid` listens on (to wait for after a restart by PID).
pub(crate) fn listening_ports(pid: u32) -> Vec<u16> {
    let inodes: std::collections::HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|fd| std::fs::read_link(fd.path()).ok())
        .filter_map(|link| link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok())
        .collect();
    let mut ports = Vec::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let Ok(text) = std::fs::read_to_string(table) else { continue };
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address is HEXIP:HEXPORT, state 0A is LISTEN, inode is the tenth field.
            let (Some(local), Some(&"0A"), Some(inode)) = (fields.get(1), fields.get(3), fields.get(9)) else {
                continue;
            };
            let port = local.rsplit_once(':').and_then(|(_, p)| u16::from_str_radix(p, 16).ok());
            if let (Some(port), Ok(inode)) = (port, inode.parse::<u64>()) {
                if inodes.contains(&inode) && !ports.contains(&port) {
                    ports.push(port);
                }
            }
        }
    }
    ports
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stopped_child_is_continued_and_a_listener_is_found_by_port() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let port = listener.local_addr().expect("addr").port();
        assert_eq!(listening_ports(std::process::id()), vec![port]);
        assert_eq!(resolve(ProcessTarget::Port(port)), Ok(vec![std::process::id()]));
        assert!(wait_for_port(port, Duration::from_secs(5)).is_ok());

        let mut child = Command::new("sleep").arg("30").spawn().expect("sleep");
        let state = |pid: u32| {
            let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
            stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next()).unwrap_or('?')
        };
        signal(&[child.id()], Signal::STOP).expect("stop");
        let deadline = Instant::now() + Duration::from_secs(10);
        while state(child.id()) != 'T' && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_eq!(state(child.id()), 'T');
        signal(&[child.id()], Signal::CONT).expect("cont");
        while state(child.id()) == 'T' && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
        assert_ne!(state(child.id()), 'T');
        let _ = child.kill();
        let _ = child.wait();
        assert!(resolve(ProcessTarget::Pid(child.id())).is_err(), "reaped: gone");
    }

    #[test]
    fn commands_report_their_failure() {
        assert_eq!(run("true", Duration::from_secs(10)), Ok(()));
        assert!(run("exit 3", Duration::from_secs(10)).unwrap_err().contains("failed"));
        assert!(run("sleep 5", Duration::from_millis(100)).unwrap_err().contains("did not end"));
    }
}
