//! Where requests go: the target URL resolved once per run ([`Target`]), the parts of a URL a
//! connection needs (`UrlParts`), and the local addresses connections leave from
//! ([`parse_source_addrs`]).

use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::time::{Duration, Instant};

use serde::Serialize;

use super::PlanError;

/// The scheme of the target URL.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Scheme {
    /// Plain-text HTTP/1.1.
    Http,
    /// HTTP/1.1 over TLS.
    Https,
}

/// Where requests go: the URL as given, plus its addresses resolved once per run.
#[derive(Debug, Clone, Serialize)]
pub struct Target {
    /// The URL as the user wrote it.
    pub url: String,
    /// Its scheme.
    pub scheme: Scheme,
    /// Host name or address, as in the URL.
    pub host: String,
    /// Port (explicit or the scheme's default).
    pub port: u16,
    /// Path and query sent in the request line.
    pub path_and_query: String,
    /// The `Host` header value.
    pub host_header: String,
    /// Addresses the host resolved to; connections go to the first, in turn over the others.
    pub addrs: Vec<SocketAddr>,
    /// How long the one DNS resolution of this run took.
    #[serde(with = "crate::seconds")]
    pub dns_time: Duration,
}

impl Target {
    /// Parses an `http://` or `https://` URL and resolves its host once.
    pub fn resolve(url: &str) -> Result<Target, PlanError> {
        let bad = |reason: &str| PlanError::Url { url: url.to_string(), reason: reason.to_string() };
        let parsed = url::Url::parse(url).map_err(|e| bad(&e.to_string()))?;
        let scheme = match parsed.scheme() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            other => return Err(bad(&format!("unsupported scheme {other:?}; use http:// or https://"))),
        };
        let default_port = match scheme {
            Scheme::Http => 80,
            Scheme::Https => 443,
        };
        let UrlParts { host, port, path_and_query, host_header } =
            UrlParts::of(&parsed, default_port).ok_or_else(|| bad("it has no host"))?;
        let started = Instant::now();
        let addrs: Vec<SocketAddr> = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|source| PlanError::Resolve { host: host.clone(), source })?
            .collect();
        let dns_time = started.elapsed();
        if addrs.is_empty() {
            return Err(PlanError::Resolve {
                host,
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no addresses"),
            });
        }
        Ok(Target { url: url.to_string(), scheme, host, port, path_and_query, host_header, addrs, dns_time })
    }
}

/// What a connection to a URL needs from it: the host (without brackets), the port, the
/// request target and the `Host` header. Shared by HTTP targets and WebSocket URLs.
pub(crate) struct UrlParts {
    pub host: String,
    pub port: u16,
    pub path_and_query: String,
    pub host_header: String,
}

impl UrlParts {
    /// The parts of `parsed`; `None` when it has no host.
    pub(crate) fn of(parsed: &url::Url, default_port: u16) -> Option<UrlParts> {
        let host = match parsed.host()? {
            url::Host::Domain(d) => d.to_string(),
            url::Host::Ipv4(ip) => ip.to_string(),
            url::Host::Ipv6(ip) => ip.to_string(),
        };
        let port = parsed.port_or_known_default().unwrap_or(default_port);
        let mut path_and_query = parsed.path().to_string();
        if let Some(query) = parsed.query() {
            path_and_query.push('?');
            path_and_query.push_str(query);
        }
        let host_header = match (parsed.host_str(), parsed.port()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            (None, _) => host.clone(),
        };
        Some(UrlParts { host, port, path_and_query, host_header })
    }
}

/// Most addresses `--source-addrs` may name: more would not fit in the fds of one machine.
pub const MAX_SOURCE_ADDRS: u32 = 65_536;

/// Parses `--source-addrs`: a comma list of addresses and inclusive IPv4 ranges, e.g.
/// `127.0.0.2-127.0.0.9` or `10.0.0.1,10.0.0.5-10.0.0.6,::1`.
pub fn parse_source_addrs(text: &str) -> Result<Vec<IpAddr>, String> {
    let parse = |part: &str| -> Result<IpAddr, String> {
        part.trim().parse::<IpAddr>().map_err(|_| format!("{:?} is not an IP address", part.trim()))
    };
    let mut addrs = Vec::new();
    for part in text.split(',') {
        match part.split_once('-') {
            None => addrs.push(parse(part)?),
            Some((first, last)) => {
                let (IpAddr::V4(first), IpAddr::V4(last)) = (parse(first)?, parse(last)?) else {
                    return Err(format!("{part:?}: ranges are for IPv4 addresses; list IPv6 ones"));
                };
                let (lo, hi) = (u32::from(first), u32::from(last));
                if lo > hi {
                    return Err(format!("{part:?} is an empty range"));
                }
                if hi - lo >= MAX_SOURCE_ADDRS {
                    return Err(format!("{part:?} has more than {MAX_SOURCE_ADDRS} addresses"));
                }
                addrs.extend((lo..=hi).map(|a| IpAddr::V4(a.into())));
            }
        }
        if addrs.len() > MAX_SOURCE_ADDRS as usize {
            return Err(format!("more than {MAX_SOURCE_ADDRS} addresses"));
        }
    }
    Ok(addrs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn target_parses_loopback_urls() {
        let t = Target::resolve("http://127.0.0.1:8090/a/b?x=1").unwrap();
        assert_eq!(t.port, 8090);
        assert_eq!(t.path_and_query, "/a/b?x=1");
        assert_eq!(t.host_header, "127.0.0.1:8090");
        assert_eq!(t.addrs, vec!["127.0.0.1:8090".parse().unwrap()]);
        let t = Target::resolve("http://[::1]/").unwrap();
        assert_eq!(t.port, 80);
        assert_eq!(t.host_header, "[::1]");
    }

    #[test]
    fn source_addrs_parse_ranges_and_lists() {
        let addrs = parse_source_addrs("127.0.0.2-127.0.0.4, 10.0.0.1,::1").unwrap();
        let shown: Vec<String> = addrs.iter().map(|a| a.to_string()).collect();
        assert_eq!(shown, ["127.0.0.2", "127.0.0.3", "127.0.0.4", "10.0.0.1", "::1"]);
        assert_eq!(parse_source_addrs("127.0.0.255-127.0.1.1").unwrap().len(), 3);
        assert!(parse_source_addrs("127.0.0.9-127.0.0.2").is_err());
        assert!(parse_source_addrs("nope").is_err());
        assert!(parse_source_addrs("").is_err());
        assert!(parse_source_addrs("::1-::2").is_err());
        assert!(parse_source_addrs("10.0.0.0-10.255.255.255").is_err());
    }

    #[test]
    fn target_rejects_other_schemes() {
        assert!(Target::resolve("ftp://127.0.0.1/").is_err());
        assert!(Target::resolve("not a url").is_err());
    }

    #[test]
    fn https_targets_default_to_port_443() {
        let t = Target::resolve("https://127.0.0.1/x").unwrap();
        assert_eq!((t.scheme, t.port, t.host_header.as_str()), (Scheme::Https, 443, "127.0.0.1"));
        let t = Target::resolve("https://127.0.0.1:8443/").unwrap();
        assert_eq!((t.port, t.host_header.as_str()), (8443, "127.0.0.1:8443"));
    }
}
