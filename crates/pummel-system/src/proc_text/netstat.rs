//! The `TcpExt` counters of `/proc/net/netstat`: how often the kernel dropped connections at a
//! listener because the target did not keep up. They count for the whole network namespace,
//! since boot, so target watch reports their change per second.
//!
//! The file holds pairs of lines, names then values, each starting with its section:
//!
//! ```text
//! TcpExt: SyncookiesSent SyncookiesRecv ... ListenOverflows ListenDrops ...
//! TcpExt: 0 0 ... 12 15 ...
//! ```

use serde::Serialize;

use super::ParseError;

/// The listen-queue counters of `TcpExt`, as totals since boot.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ListenCounters {
    /// `ListenOverflows`: a handshake completed but the listener's accept queue was full (the
    /// target does not call accept() fast enough, or its backlog is small).
    pub listen_overflows: u64,
    /// `ListenDrops`: every connection or SYN a listener dropped, overflows included.
    pub listen_drops: u64,
    /// `TCPReqQFullDrop`: SYNs dropped because the SYN queue was full and syncookies are off.
    pub syn_queue_drops: u64,
    /// `TCPReqQFullDoCookies`: SYNs answered with a syncookie because the SYN queue was full.
    pub syncookies: u64,
}

impl ListenCounters {
    /// Each counter's increase from `earlier` to `self` (0 where a counter went backwards,
    /// as after a namespace was recreated).
    pub fn since(&self, earlier: &ListenCounters) -> ListenCounters {
        ListenCounters {
            listen_overflows: self.listen_overflows.saturating_sub(earlier.listen_overflows),
            listen_drops: self.listen_drops.saturating_sub(earlier.listen_drops),
            syn_queue_drops: self.syn_queue_drops.saturating_sub(earlier.syn_queue_drops),
            syncookies: self.syncookies.saturating_sub(earlier.syncookies),
        }
    }
}

/// Parses the `TcpExt` section of `/proc/net/netstat`. A counter the kernel does not print
/// (older kernels lack some) is 0; a file without a `TcpExt` section is an error.
pub fn parse_netstat(text: &str) -> Result<ListenCounters, ParseError> {
    let error = |reason: &str| ParseError::new("/proc/net/netstat", reason);
    let mut lines = text.lines().filter(|line| line.starts_with("TcpExt:"));
    let names = lines.next().ok_or_else(|| error("no TcpExt section"))?;
    let values = lines.next().ok_or_else(|| error("the TcpExt section has names but no values"))?;
    let names = names.split_ascii_whitespace().skip(1);
    let values = values.split_ascii_whitespace().skip(1);
    let mut counters = ListenCounters::default();
    for (name, value) in names.zip(values) {
        let slot = match name {
            "ListenOverflows" => &mut counters.listen_overflows,
            "ListenDrops" => &mut counters.listen_drops,
            "TCPReqQFullDrop" => &mut counters.syn_queue_drops,
            "TCPReqQFullDoCookies" => &mut counters.syncookies,
            _ => continue,
        };
        *slot = value.parse().map_err(|_| error(&format!("{name} is not a number: {value:?}")))?;
    }
    Ok(counters)
}

#[cfg(test)]
mod tests {
    use super::*;

    const NETSTAT: &str = "\
TcpExt: SyncookiesSent SyncookiesRecv SyncookiesFailed EmbryonicRsts PruneCalled ListenOverflows ListenDrops TCPReqQFullDoCookies TCPReqQFullDrop TCPBacklogDrop
TcpExt: 0 0 2 0 0 17 21 3 4 0
IpExt: InNoRoutes InTruncatedPkts InMcastPkts
IpExt: 0 0 12
";

    #[test]
    fn tcpext_counters() {
        let counters = parse_netstat(NETSTAT).unwrap();
        assert_eq!(
            counters,
            ListenCounters { listen_overflows: 17, listen_drops: 21, syn_queue_drops: 4, syncookies: 3 }
        );
    }

    #[test]
    fn missing_counters_are_zero() {
        let counters = parse_netstat("TcpExt: ListenOverflows\nTcpExt: 5\n").unwrap();
        assert_eq!(counters.listen_overflows, 5);
        assert_eq!(counters.listen_drops, 0);
    }

    #[test]
    fn malformed_files() {
        assert!(parse_netstat("IpExt: A\nIpExt: 1\n").is_err());
        assert!(parse_netstat("TcpExt: ListenOverflows\n").is_err());
        assert!(parse_netstat("TcpExt: ListenOverflows\nTcpExt: many\n").is_err());
    }

    #[test]
    fn deltas_never_go_negative() {
        let before = ListenCounters { listen_overflows: 10, listen_drops: 12, syn_queue_drops: 0, syncookies: 0 };
        let after = ListenCounters { listen_overflows: 15, listen_drops: 11, syn_queue_drops: 1, syncookies: 0 };
        let delta = after.since(&before);
        assert_eq!(delta.listen_overflows, 5);
        assert_eq!(delta.listen_drops, 0);
        assert_eq!(delta.syn_queue_drops, 1);
    }
}
