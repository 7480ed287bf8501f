//! A process's descriptors and its TCP sockets by state.
//!
//! The fds of `/proc/PID/fd` give the count, the highest number and the inodes of the
//! process's sockets; the socket tables of the process's network namespace
//! (`/proc/PID/net/tcp` and `tcp6`) are then read once each and every line is looked up in
//! that set of inodes. With 10,000 sockets this is one pass over each table and one hash
//! lookup per line.
//!
//! The same pass notices an epoll instance (an fd linked to `anon_inode:[eventpoll]`): a process
//! that holds one is not bound by select()'s 1024 ceiling (see [`super::WarningKind`]).
//!
//! The fd directory is read with `std::fs` (one `readlink` per fd) rather than procfs's fd
//! iterator, which also opens and stats every fd: 2.5 times faster at 10,000 fds (40 ms
//! against 100 ms in a release build), and the fd scan is most of a sample's cost. The
//! process handle held by [`super::TargetWatch`] checks before each scan that the PID still
//! belongs to the same process.
//!
//! The kernel walks its whole connection hash for each table it prints, even when that table
//! is empty, so `tcp6` is only read when `/proc/PID/net/sockstat6` says IPv6 TCP sockets exist.
//!
//! Some sockets of a server belong to no fd and have inode 0: connections the kernel completed
//! that the server has not accepted yet, half-open SYN_RECV requests, and sockets the server
//! closed that are still in TIME_WAIT or finishing their FIN. They are counted as the target's
//! when their local port is one of the target's listening ports.

use std::collections::HashSet;
use std::io::{ErrorKind, Read};

use procfs::process::Process;

use super::WatchError;
use crate::proc_text::tcp::{SocketLine, TcpState, TcpStates, parse_socket_line, parse_socket_link, tcp6_in_use};

/// What `/proc/PID/fd/N` links to when fd N is an epoll instance.
const EPOLL_LINK: &str = "anon_inode:[eventpoll]";

/// What the fd directory of a process showed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct FdScan {
    /// Open descriptors.
    pub open: u64,
    /// The highest descriptor number, `None` when none is open.
    pub max_fd: Option<u64>,
    /// True when one of the fds is an epoll instance.
    pub epoll: bool,
}

/// The TCP sockets found for one process.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct SocketCount {
    /// By state.
    pub states: TcpStates,
    /// Connections waiting in the accept queues of its listening sockets.
    pub accept_queue: u64,
}

/// Buffers reused from one sample to the next, so a sample allocates nothing once warm.
#[derive(Debug, Default)]
pub(crate) struct SocketScanner {
    inodes: HashSet<u64>,
    listen_ports: HashSet<u16>,
    tcp: String,
    tcp6: String,
}

impl SocketScanner {
    /// Counts the fds of process `pid` and collects the inodes of its sockets.
    pub fn scan_fds(&mut self, pid: u32) -> Result<FdScan, WatchError> {
        self.inodes.clear();
        let directory = format!("/proc/{pid}/fd");
        let entries = std::fs::read_dir(&directory).map_err(|e| match e.kind() {
            ErrorKind::NotFound => WatchError::Gone { pid },
            ErrorKind::PermissionDenied => WatchError::NotPermitted { pid, what: "fd".into() },
            _ => WatchError::Proc { what: directory.clone(), message: e.to_string() },
        })?;
        let mut scan = FdScan { open: 0, max_fd: None, epoll: false };
        // An fd closed while the directory is read is simply no longer there.
        for entry in entries.flatten() {
            let Some(number) = entry.file_name().to_str().and_then(|name| name.parse::<u64>().ok()) else {
                continue;
            };
            let Ok(target) = std::fs::read_link(entry.path()) else { continue };
            scan.open += 1;
            scan.max_fd = Some(scan.max_fd.map_or(number, |max| max.max(number)));
            let Some(target) = target.to_str() else { continue };
            if let Some(inode) = parse_socket_link(target) {
                self.inodes.insert(inode);
            } else if target == EPOLL_LINK {
                scan.epoll = true;
            }
        }
        Ok(scan)
    }

    /// Counts the sockets of the last [`SocketScanner::scan_fds`] by state, reading the socket
    /// tables of `process`'s network namespace. A missing `tcp6` (IPv6 disabled) counts as empty.
    /// (A table of the fd scan's own instant: sockets opened or closed in between are off by a
    /// few, never more.)
    pub fn count_sockets(&mut self, process: &Process, pid: u32) -> Result<SocketCount, WatchError> {
        read_table(process, pid, "net/tcp", &mut self.tcp)?;
        // sockstat6 is unreadable or absent without IPv6: then there is no tcp6 table either.
        let ipv6 =
            read_table(process, pid, "net/sockstat6", &mut self.tcp6).is_ok() && tcp6_in_use(&self.tcp6) != Some(0);
        if !ipv6 || read_table(process, pid, "net/tcp6", &mut self.tcp6).is_err() {
            self.tcp6.clear();
        }
        Ok(count(&self.tcp, &self.tcp6, &self.inodes, &mut self.listen_ports))
    }
}

/// Reads `/proc/PID/<what>` into `buffer`.
fn read_table(process: &Process, pid: u32, what: &str, buffer: &mut String) -> Result<(), WatchError> {
    buffer.clear();
    let mut file = process.open_relative(what).map_err(|e| WatchError::from_proc(pid, what, e))?;
    file.read_to_string(buffer)
        .map_err(|e| WatchError::Proc { what: format!("/proc/{pid}/{what}"), message: e.to_string() })?;
    Ok(())
}

/// Counts the sockets of the tables `tcp` and `tcp6` that belong to the process whose socket
/// inodes are `inodes` (see the module doc for sockets without an inode).
pub(crate) fn count(tcp: &str, tcp6: &str, inodes: &HashSet<u64>, listen_ports: &mut HashSet<u16>) -> SocketCount {
    let lines = || tcp.lines().chain(tcp6.lines()).filter_map(parse_socket_line);
    let mut found = SocketCount::default();
    listen_ports.clear();
    let mut unowned = false;
    for line in lines() {
        if line.inode == 0 {
            unowned = true;
        } else if inodes.contains(&line.inode) {
            found.states.add(line.state);
            if line.state == Some(TcpState::Listen) {
                listen_ports.insert(line.local_port);
                found.accept_queue += line.rx_queue;
            }
        }
    }
    if unowned && !listen_ports.is_empty() {
        let on_listen_port = |line: &SocketLine| line.inode == 0 && listen_ports.contains(&line.local_port);
        for line in lines().filter(on_listen_port) {
            found.states.add(line.state);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    // Port 0x1F9A = 8090 listens (inode 100, 2 connections waiting to be accepted); 101 is an
    // accepted connection; one unaccepted ESTABLISHED, one TIME_WAIT and one SYN_RECV on 8090
    // have inode 0; another process's sockets (inode 900, and a TIME_WAIT on port 0x0050).
    const TCP4: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F9A 00000000:0000 0A 00000000:00000002 00:00000000 00000000     0        0 100 1 0
   1: 0100007F:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 900 1 0
   2: 0100007F:1F9A 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 101 1 0
   3: 0100007F:1F9A 0100007F:A2C6 01 00000000:00000000 00:00000000 00000000     0        0 0 1 0
   4: 0100007F:1F9A 0100007F:A2C8 06 00000000:00000000 03:000016D2 00000000     0        0 0 3 0
   5: 0100007F:0050 0100007F:A2CA 06 00000000:00000000 03:000016D2 00000000     0        0 0 3 0
   6: 0100007F:A2CC 0100007F:0050 08 00000000:00000000 00:00000000 00000000     0        0 102 1 0
";
    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000001000000:1F9A 00000000000000000000000001000000:D2F2 03 00000000:00000000 01:00000064 00000000     0        0 0 1 0
   1: 00000000000000000000000001000000:1F9A 00000000000000000000000001000000:D2F4 01 00000000:00000000 00:00000000 00000000     0        0 103 1 0
";

    #[test]
    fn sockets_are_attributed_by_inode_and_listening_port() {
        let inodes: HashSet<u64> = [100, 101, 102, 103].into_iter().collect();
        let mut ports = HashSet::new();
        let found = count(TCP4, TCP6, &inodes, &mut ports);
        assert_eq!(found.states.listen, 1);
        assert_eq!(found.states.established, 3, "two accepted + one waiting in the accept queue");
        assert_eq!(found.states.time_wait, 1, "only the TIME_WAIT on the target's own port");
        assert_eq!(found.states.syn_recv, 1);
        assert_eq!(found.states.close_wait, 1);
        assert_eq!(found.states.total(), 7);
        assert_eq!(found.accept_queue, 2);
        assert_eq!(ports, [8090].into_iter().collect());
    }

    #[test]
    fn a_process_without_sockets_has_none() {
        let found = count(TCP4, TCP6, &HashSet::new(), &mut HashSet::new());
        assert_eq!(found, SocketCount::default());
    }
}
