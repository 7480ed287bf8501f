//! Finding the process behind a listening TCP port, as `ss -ltnp` does: the port's LISTEN
//! sockets in `/proc/net/tcp` and `tcp6` give their inodes, and the process whose fds
//! include one of those inodes is the listener.
//!
//! Several processes can hold the same listening socket (a pre-fork server such as nginx: the
//! master and its workers). They are all returned, busiest first, because the busiest one is
//! the one serving the connections.

use std::collections::HashSet;

use procfs::ProcError;
use procfs::process::{FDTarget, all_processes};
use serde::Serialize;

use super::WatchError;
use crate::proc_text::tcp::{TcpState, parse_socket_line};

/// A process holding a listening socket of the port asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct ListeningProcess {
    /// Its PID.
    pub pid: u32,
    /// How many sockets it has open (listening and connected): how busy it is.
    pub sockets: u64,
}

/// The processes listening on TCP `port` (any address, IPv4 or IPv6) in this network
/// namespace, the one with the most sockets first (ties: lowest PID first). Never empty.
pub fn listening_processes(port: u16) -> Result<Vec<ListeningProcess>, WatchError> {
    let inodes = listening_inodes(port)?;
    if inodes.is_empty() {
        return Err(WatchError::NoListener { port });
    }
    let processes = all_processes().map_err(|e| WatchError::Proc { what: "/proc".into(), message: e.to_string() })?;
    let mut found = Vec::new();
    let mut hidden = 0;
    for process in processes {
        // A process that exited since the listing began is skipped.
        let Ok(process) = process else { continue };
        let fds = match process.fd() {
            Ok(fds) => fds,
            Err(ProcError::PermissionDenied(_)) => {
                hidden += 1;
                continue;
            }
            Err(_) => continue,
        };
        let (mut sockets, mut listens) = (0, false);
        for fd in fds.flatten() {
            if let FDTarget::Socket(inode) = fd.target {
                sockets += 1;
                listens |= inodes.contains(&inode);
            }
        }
        match u32::try_from(process.pid()) {
            Ok(pid) if listens => found.push(ListeningProcess { pid, sockets }),
            _ => {}
        }
    }
    if found.is_empty() {
        return Err(WatchError::ListenerNotVisible { port, hidden });
    }
    found.sort_by(|a, b| b.sockets.cmp(&a.sockets).then(a.pid.cmp(&b.pid)));
    Ok(found)
}

/// The inodes of the LISTEN sockets on `port` in `/proc/net/tcp` and `/proc/net/tcp6`.
fn listening_inodes(port: u16) -> Result<HashSet<u64>, WatchError> {
    let mut inodes = HashSet::new();
    for table in ["/proc/net/tcp", "/proc/net/tcp6"] {
        let text = match std::fs::read_to_string(table) {
            Ok(text) => text,
            // No tcp6 table when IPv6 is disabled.
            Err(_) if table.ends_with('6') => continue,
            Err(e) => return Err(WatchError::Proc { what: table.into(), message: e.to_string() }),
        };
        inodes.extend(listening_in(&text, port));
    }
    Ok(inodes)
}

/// The inodes of the LISTEN sockets on `port` in one socket table's text.
fn listening_in(table: &str, port: u16) -> impl Iterator<Item = u64> + '_ {
    table
        .lines()
        .filter_map(parse_socket_line)
        .filter(move |line| line.state == Some(TcpState::Listen) && line.local_port == port && line.inode != 0)
        .map(|line| line.inode)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn listening_inodes_of_a_port() {
        let table = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F9A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 100 1 0
   1: 00000000:1F9A 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 101 1 0
   2: 0100007F:1F9A 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 102 1 0
   3: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 103 1 0
";
        let inodes: Vec<u64> = listening_in(table, 8090).collect();
        assert_eq!(inodes, [100, 101]);
        assert_eq!(listening_in(table, 9999).count(), 0);
    }
}
