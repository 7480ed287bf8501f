//! Where a session connects ([`WsTarget`]): address, `Host`, path, and TLS for `wss://`.

use std::net::{SocketAddr, ToSocketAddrs};

use crate::dial::{TlsClient, TlsSettings};
use crate::plan::UrlParts;

/// A resolved `ws://` or `wss://` URL. Resolve it once per run and share it between users.
#[derive(Debug, Clone)]
pub struct WsTarget {
    /// The address connected to (the first one the host resolved to).
    pub addr: SocketAddr,
    /// The `Host` header: the URL's host, with its port when the URL names one.
    pub host_header: String,
    /// The request target of the upgrade (`/path?query`).
    pub path_and_query: String,
    /// The TLS client for `wss://` (`None` for `ws://`); the upgrade offers `http/1.1` in ALPN.
    pub tls: Option<TlsClient>,
}

impl WsTarget {
    /// Parses a `ws://` or `wss://` URL and resolves its host once. For `wss://` the TLS
    /// client is pummel's default one (system CA certificates); a run replaces it with its own
    /// (`--insecure`, `--cacert`, ...) through [`WsTarget::with_tls`].
    pub fn from_url(url: &str) -> Result<WsTarget, String> {
        let parsed = url::Url::parse(url).map_err(|e| format!("{url}: {e}"))?;
        let secure = match parsed.scheme() {
            "ws" => false,
            "wss" => true,
            other => return Err(format!("{url}: unsupported scheme {other:?}; use ws:// or wss://")),
        };
        let UrlParts { host, port, path_and_query, host_header } =
            UrlParts::of(&parsed, if secure { 443 } else { 80 }).ok_or_else(|| format!("{url}: it has no host"))?;
        let addr = (host.as_str(), port)
            .to_socket_addrs()
            .map_err(|e| format!("{url}: cannot resolve {host}: {e}"))?
            .next()
            .ok_or_else(|| format!("{url}: {host} has no address"))?;
        let tls = if secure {
            Some(TlsClient::new(&TlsSettings::default(), &host).map_err(|e| format!("{url}: {e}"))?)
        } else {
            None
        };
        Ok(WsTarget { addr, host_header, path_and_query, tls })
    }

    /// Uses the run's TLS client (its roots or `--insecure`, client certificate, versions, SNI)
    /// for a `wss://` target; a `ws://` target is returned unchanged.
    pub fn with_tls(mut self, client: &TlsClient) -> WsTarget {
        if self.tls.is_some() {
            self.tls = Some(client.clone());
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_ws_urls() {
        let target = WsTarget::from_url("ws://127.0.0.1:9001/chat?room=1").unwrap();
        assert_eq!(target.addr, "127.0.0.1:9001".parse().unwrap());
        assert_eq!(target.host_header, "127.0.0.1:9001");
        assert_eq!(target.path_and_query, "/chat?room=1");
        assert!(target.tls.is_none());
        let bare = WsTarget::from_url("ws://127.0.0.1").unwrap();
        assert_eq!((bare.addr.port(), bare.path_and_query.as_str(), bare.host_header.as_str()), (80, "/", "127.0.0.1"));
    }

    #[test]
    fn wss_uses_the_run_client() {
        // Without system CA certificates the default client cannot be built; both are fine.
        if let Ok(target) = WsTarget::from_url("wss://127.0.0.1/x") {
            assert_eq!(target.addr.port(), 443);
            assert!(target.tls.is_some());
        }
        let settings = TlsSettings { insecure: true, server_name: Some("a.example".into()), ..TlsSettings::default() };
        let client = TlsClient::new(&settings, "127.0.0.1").unwrap();
        let target = WsTarget {
            addr: "127.0.0.1:443".parse().unwrap(),
            host_header: "127.0.0.1".into(),
            path_and_query: "/".into(),
            tls: Some(client.clone()),
        }
        .with_tls(&client);
        let tls = target.tls.unwrap();
        assert_eq!(tls.server_name, rustls::pki_types::ServerName::try_from("a.example").unwrap());
        assert_eq!(tls.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
    }

    #[test]
    fn rejects_other_schemes_and_bad_urls() {
        assert!(WsTarget::from_url("http://127.0.0.1/").unwrap_err().contains("use ws:// or wss://"));
        assert!(WsTarget::from_url("not a url").is_err());
    }
}
