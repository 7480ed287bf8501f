//! Values of `/proc/sys` (what `sysctl` shows): single numbers such as `net.core.somaxconn`,
//! the port pair of `net.ipv4.ip_local_port_range`, and the allocated-handles figure of
//! `fs.file-nr`. Reading is here too, since the path follows from the sysctl name.

use std::path::PathBuf;

use super::ParseError;

/// `/proc/sys/...` for a sysctl name: `net.core.somaxconn` → `/proc/sys/net/core/somaxconn`.
pub fn sysctl_path(name: &str) -> PathBuf {
    PathBuf::from("/proc/sys").join(name.replace('.', "/"))
}

/// Reads a sysctl's text; `None` when it does not exist here (module not loaded, older kernel,
/// another namespace) or cannot be read.
pub fn read_sysctl(name: &str) -> Option<String> {
    std::fs::read_to_string(sysctl_path(name)).ok()
}

/// A sysctl holding one unsigned number (`4096\n`).
pub fn parse_number(name: &str, text: &str) -> Result<u64, ParseError> {
    let value = text.trim();
    value.parse().map_err(|_| ParseError::new(name, format!("{value:?} is not a number")))
}

/// `net.ipv4.ip_local_port_range`: the first and last ephemeral port (`32768\t60999\n`).
pub fn parse_port_range(text: &str) -> Result<(u16, u16), ParseError> {
    let error = |reason: String| ParseError::new("net.ipv4.ip_local_port_range", reason);
    let mut parts = text.split_ascii_whitespace().map(|p| p.parse::<u16>());
    match (parts.next(), parts.next(), parts.next()) {
        (Some(Ok(low)), Some(Ok(high)), None) if low <= high => Ok((low, high)),
        _ => Err(error(format!("{:?} is not two ports, low then high", text.trim()))),
    }
}

/// `fs.file-nr`: the first of its three numbers, the file handles allocated system-wide now
/// (`3232\t0\t9223372036854775807\n`).
pub fn parse_file_nr(text: &str) -> Result<u64, ParseError> {
    let first = text.split_ascii_whitespace().next().unwrap_or("");
    first.parse().map_err(|_| ParseError::new("fs.file-nr", format!("{:?} does not start with a number", text.trim())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        assert_eq!(sysctl_path("net.core.somaxconn"), PathBuf::from("/proc/sys/net/core/somaxconn"));
        assert_eq!(
            sysctl_path("net.netfilter.nf_conntrack_max"),
            PathBuf::from("/proc/sys/net/netfilter/nf_conntrack_max")
        );
    }

    #[test]
    fn numbers() {
        assert_eq!(parse_number("net.core.somaxconn", "4096\n"), Ok(4096));
        assert_eq!(parse_number("fs.file-max", "9223372036854775807\n"), Ok(9_223_372_036_854_775_807));
        assert!(parse_number("net.core.somaxconn", "").is_err());
        assert!(parse_number("net.core.somaxconn", "-1\n").is_err());
    }

    #[test]
    fn port_ranges() {
        assert_eq!(parse_port_range("32768\t60999\n"), Ok((32768, 60999)));
        assert_eq!(parse_port_range("1024 65535"), Ok((1024, 65535)));
        assert!(parse_port_range("60999 32768").is_err());
        assert!(parse_port_range("32768").is_err());
        assert!(parse_port_range("1 2 3").is_err());
        assert!(parse_port_range("1 70000").is_err());
    }

    #[test]
    fn file_nr() {
        assert_eq!(parse_file_nr("3232\t0\t9223372036854775807\n"), Ok(3232));
        assert!(parse_file_nr("\n").is_err());
    }
}
