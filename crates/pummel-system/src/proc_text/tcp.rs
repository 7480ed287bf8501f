//! The socket tables `/proc/net/tcp` and `/proc/net/tcp6`: one line per TCP socket of the
//! network namespace, with its state, queues and the inode that links it to a process's fd.
//!
//! Only the columns target watch needs are parsed (state, local port, receive queue, inode),
//! without allocating, so that a table of tens of thousands of sockets can be read every second.
//! The IPv4 and IPv6 tables differ only in the width of the address, which is skipped.

use serde::{Deserialize, Serialize};

/// The TCP states as numbered by the kernel (`include/net/tcp_states.h`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum TcpState {
    /// 01: connected, data can flow.
    Established,
    /// 02: connect() sent a SYN, no answer yet.
    SynSent,
    /// 03: a SYN arrived at a listener and was answered; the handshake is not complete.
    SynRecv,
    /// 04: this side closed first and sent a FIN.
    FinWait1,
    /// 05: this side's FIN was acknowledged; waiting for the peer's FIN.
    FinWait2,
    /// 06: both sides closed; the port is held for 2 x MSL (60 s on Linux).
    TimeWait,
    /// 07: closed.
    Close,
    /// 08: the peer closed, this side has not: the application has not closed its socket yet.
    CloseWait,
    /// 09: this side closed after the peer; waiting for the last ACK.
    LastAck,
    /// 0A: a listening socket.
    Listen,
    /// 0B: both sides closed at the same time.
    Closing,
    /// 0C: a request socket (shown as SYN_RECV by the kernel's own tables).
    NewSynRecv,
}

impl TcpState {
    /// The state for the kernel's number, `None` for numbers this version does not know.
    pub fn from_code(code: u8) -> Option<TcpState> {
        Some(match code {
            0x01 => TcpState::Established,
            0x02 => TcpState::SynSent,
            0x03 => TcpState::SynRecv,
            0x04 => TcpState::FinWait1,
            0x05 => TcpState::FinWait2,
            0x06 => TcpState::TimeWait,
            0x07 => TcpState::Close,
            0x08 => TcpState::CloseWait,
            0x09 => TcpState::LastAck,
            0x0A => TcpState::Listen,
            0x0B => TcpState::Closing,
            0x0C => TcpState::NewSynRecv,
            _ => return None,
        })
    }
}

/// The columns of one line of `/proc/net/tcp` or `/proc/net/tcp6` that target watch uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SocketLine {
    /// The state; `None` for a state number this version does not know.
    pub state: Option<TcpState>,
    /// The local port.
    pub local_port: u16,
    /// Bytes received but not read by the application; for a listening socket, the number of
    /// connections waiting in its accept queue.
    pub rx_queue: u64,
    /// The socket's inode, as in the `socket:[INODE]` links of `/proc/PID/fd`; 0 for sockets
    /// that no file refers to (TIME_WAIT, half-open SYN_RECV, connections not yet accepted,
    /// closed sockets still sending their FIN).
    pub inode: u64,
}

/// Parses one line of a socket table; `None` for the header line or a line of another shape.
///
/// ```text
///   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
///    0: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 48514 1 ...
/// ```
pub fn parse_socket_line(line: &str) -> Option<SocketLine> {
    let mut columns = line.split_ascii_whitespace();
    let slot = columns.next()?;
    if !slot.ends_with(':') {
        return None; // the header ("sl local_address ...")
    }
    let local = columns.next()?;
    let _remote = columns.next()?;
    let state = u8::from_str_radix(columns.next()?, 16).ok()?;
    let queues = columns.next()?;
    let _timer = columns.next()?;
    let _retransmits = columns.next()?;
    let _uid = columns.next()?;
    let _timeout = columns.next()?;
    let inode = columns.next()?.parse::<u64>().ok()?;

    let (_, port) = local.rsplit_once(':')?;
    let local_port = u16::from_str_radix(port, 16).ok()?;
    let (_, rx) = queues.split_once(':')?;
    let rx_queue = u64::from_str_radix(rx, 16).ok()?;
    Some(SocketLine { state: TcpState::from_code(state), local_port, rx_queue, inode })
}

/// The inode of a socket fd's link target, as `readlink /proc/PID/fd/N` shows it
/// (`socket:[48514]`); `None` for any other kind of file.
pub fn parse_socket_link(target: &str) -> Option<u64> {
    target.strip_prefix("socket:[")?.strip_suffix(']')?.parse().ok()
}

/// The `TCP6: inuse N` count of `/proc/net/sockstat6`: IPv6 TCP sockets that exist (TIME_WAIT
/// excluded). `None` when the line is missing.
pub fn tcp6_in_use(sockstat6: &str) -> Option<u64> {
    let line = sockstat6.lines().find(|line| line.starts_with("TCP6:"))?;
    let mut words = line.split_ascii_whitespace().skip(1);
    while let Some(word) = words.next() {
        if word == "inuse" {
            return words.next()?.parse().ok();
        }
    }
    None
}

/// Sockets counted by TCP state, with stable snake_case names (they go into results files).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct TcpStates {
    /// ESTABLISHED, including connections the kernel completed that the target has not
    /// accepted yet.
    pub established: u64,
    /// SYN_SENT: outgoing connects waiting for an answer.
    pub syn_sent: u64,
    /// SYN_RECV: half-open incoming connections (the SYN queue).
    pub syn_recv: u64,
    /// FIN_WAIT1.
    pub fin_wait1: u64,
    /// FIN_WAIT2.
    pub fin_wait2: u64,
    /// TIME_WAIT.
    pub time_wait: u64,
    /// CLOSE.
    pub close: u64,
    /// CLOSE_WAIT: the peer closed and the target has not closed its side yet. Growing
    /// numbers mean the target leaks sockets.
    pub close_wait: u64,
    /// LAST_ACK.
    pub last_ack: u64,
    /// LISTEN.
    pub listen: u64,
    /// CLOSING.
    pub closing: u64,
    /// Sockets in a state number this version does not know.
    pub other: u64,
}

impl TcpStates {
    /// Counts one socket in `state` (`None`: an unknown state).
    pub fn add(&mut self, state: Option<TcpState>) {
        let slot = match state {
            Some(TcpState::Established) => &mut self.established,
            Some(TcpState::SynSent) => &mut self.syn_sent,
            Some(TcpState::SynRecv | TcpState::NewSynRecv) => &mut self.syn_recv,
            Some(TcpState::FinWait1) => &mut self.fin_wait1,
            Some(TcpState::FinWait2) => &mut self.fin_wait2,
            Some(TcpState::TimeWait) => &mut self.time_wait,
            Some(TcpState::Close) => &mut self.close,
            Some(TcpState::CloseWait) => &mut self.close_wait,
            Some(TcpState::LastAck) => &mut self.last_ack,
            Some(TcpState::Listen) => &mut self.listen,
            Some(TcpState::Closing) => &mut self.closing,
            None => &mut self.other,
        };
        *slot += 1;
    }

    /// All sockets counted.
    pub fn total(&self) -> u64 {
        self.established
            + self.syn_sent
            + self.syn_recv
            + self.fin_wait1
            + self.fin_wait2
            + self.time_wait
            + self.close
            + self.close_wait
            + self.last_ack
            + self.listen
            + self.closing
            + self.other
    }

    /// The counts as (name, value) pairs in a fixed order, for printing.
    pub fn named(&self) -> [(&'static str, u64); 12] {
        [
            ("established", self.established),
            ("close_wait", self.close_wait),
            ("time_wait", self.time_wait),
            ("listen", self.listen),
            ("syn_recv", self.syn_recv),
            ("syn_sent", self.syn_sent),
            ("fin_wait1", self.fin_wait1),
            ("fin_wait2", self.fin_wait2),
            ("last_ack", self.last_ack),
            ("closing", self.closing),
            ("close", self.close),
            ("other", self.other),
        ]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TCP4: &str = "\
  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:1F9A 00000000:0000 0A 00000000:00000003 00:00000000 00000000     0        0 48514 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F9A 0100007F:A2C4 01 00000000:00000000 00:00000000 00000000     0        0 48600 1 0000000000000000 20 4 30 10 -1
   2: 0100007F:1F9A 0100007F:A2C6 06 00000000:00000000 03:000016D2 00000000     0        0 0 3 0000000000000000
   3: 0100007F:A2C8 0100007F:1F9A 08 00000000:0000001A 00:00000000 00000000  1000        0 48700 1 0000000000000000 20 4 0 10 -1
";

    const TCP6: &str = "\
  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:0050 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000    33        0 21731 1 0000000000000000 100 0 0 10 0
   1: 0000000000000000FFFF00000100007F:0050 0000000000000000FFFF00000100007F:D2F0 01 00000000:00000000 02:00000A3B 00000000    33        0 99812 1 0000000000000000 20 4 31 10 -1
   2: 00000000000000000000000001000000:0050 00000000000000000000000001000000:D2F2 03 00000000:00000000 01:00000064 00000000     0        0 0 1 0000000000000000
";

    #[test]
    fn header_is_skipped() {
        assert_eq!(parse_socket_line(TCP4.lines().next().unwrap()), None);
        assert_eq!(parse_socket_line(TCP6.lines().next().unwrap()), None);
        assert_eq!(parse_socket_line(""), None);
        assert_eq!(parse_socket_line("   7: garbage"), None);
    }

    #[test]
    fn ipv4_lines() {
        let lines: Vec<SocketLine> = TCP4.lines().filter_map(parse_socket_line).collect();
        assert_eq!(lines.len(), 4);
        assert_eq!(lines[0], SocketLine { state: Some(TcpState::Listen), local_port: 8090, rx_queue: 3, inode: 48514 });
        assert_eq!(lines[1].state, Some(TcpState::Established));
        assert_eq!(lines[1].inode, 48600);
        assert_eq!(lines[2].state, Some(TcpState::TimeWait));
        assert_eq!(lines[2].inode, 0, "TIME_WAIT sockets belong to no file");
        assert_eq!(lines[3].state, Some(TcpState::CloseWait));
        assert_eq!(lines[3].local_port, 0xA2C8);
        assert_eq!(lines[3].rx_queue, 26);
    }

    #[test]
    fn ipv6_lines() {
        let lines: Vec<SocketLine> = TCP6.lines().filter_map(parse_socket_line).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], SocketLine { state: Some(TcpState::Listen), local_port: 80, rx_queue: 0, inode: 21731 });
        assert_eq!(lines[1].state, Some(TcpState::Established));
        assert_eq!(lines[1].inode, 99812);
        assert_eq!(lines[2].state, Some(TcpState::SynRecv));
    }

    #[test]
    fn socket_links() {
        assert_eq!(parse_socket_link("socket:[48514]"), Some(48514));
        assert_eq!(parse_socket_link("pipe:[48514]"), None);
        assert_eq!(parse_socket_link("/dev/null"), None);
        assert_eq!(parse_socket_link("socket:[x]"), None);
    }

    #[test]
    fn sockstat6() {
        let text = "TCP6: inuse 3\nUDP6: inuse 0\nFRAG6: inuse 0 memory 0\n";
        assert_eq!(tcp6_in_use(text), Some(3));
        assert_eq!(tcp6_in_use("TCP6: inuse 0\n"), Some(0));
        assert_eq!(tcp6_in_use("UDP6: inuse 0\n"), None);
    }

    #[test]
    fn states_are_counted() {
        let mut states = TcpStates::default();
        for line in TCP4.lines().chain(TCP6.lines()).filter_map(parse_socket_line) {
            states.add(line.state);
        }
        states.add(TcpState::from_code(0x0C));
        states.add(TcpState::from_code(0x42));
        assert_eq!(states.listen, 2);
        assert_eq!(states.established, 2);
        assert_eq!(states.time_wait, 1);
        assert_eq!(states.close_wait, 1);
        assert_eq!(states.syn_recv, 2, "NEW_SYN_RECV counts as SYN_RECV");
        assert_eq!(states.other, 1);
        assert_eq!(states.total(), 9);
    }
}
