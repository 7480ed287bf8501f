//! TLS for `https://` targets: the plan's settings ([`TlsSettings`]) and the rustls client
//! configuration built from them once per run ([`TlsClient`]).
//!
//! Crypto comes from rustls' aws-lc-rs provider, installed as the process default
//! ([`install_crypto_provider`]). Certificates are verified by default against the system's CA
//! store (read with `rustls-native-certs`, once per process); `--cacert` replaces it with the
//! given PEM file (as curl's `--cacert` does), and `--insecure` accepts any certificate
//! ([`AcceptAnyServerCertificate`]). The settings hold paths, never key material, so a plan
//! can be written into a results file as it is.
//!
//! The key exchange is X25519 first (rustls without its `prefer-post-quantum` feature: the
//! hybrid ML-KEM group is offered but costs a HelloRetryRequest if a server insists on it),
//! and AES-128-GCM is the preferred cipher, as with browsers and h2load.
//!
//! Every shard gets its own copy of the configuration with its own session cache
//! ([`TlsClient::for_shard`]), so resumption never takes a lock shared between shards. The
//! configuration comes in one copy per ALPN protocol ([`Alpn`]: `http/1.1` for HTTP/1.1 and
//! WebSocket upgrades, `h2` for HTTP/2) sharing that cache; every protocol's connections use
//! the same settings (`--cacert`, `--insecure`, `--cert`/`--key`, `--sni`, versions).

use std::path::{Path, PathBuf};
use std::sync::{Arc, OnceLock};

use rustls::client::Resumption;
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName, UnixTime};
use rustls::{ClientConfig, DigitallySignedStruct, RootCertStore, SignatureScheme};
use serde::Serialize;

/// Server names whose sessions a shard's cache keeps (one target per run: plenty).
const SESSION_CACHE_SIZE: usize = 64;

/// The protocol versions `--tls-version` can pin.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum TlsVersion {
    /// TLS 1.2 only.
    #[serde(rename = "1.2")]
    Tls12,
    /// TLS 1.3 only.
    #[serde(rename = "1.3")]
    Tls13,
}

impl std::str::FromStr for TlsVersion {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        match text.trim() {
            "1.2" => Ok(TlsVersion::Tls12),
            "1.3" => Ok(TlsVersion::Tls13),
            other => Err(format!("{other:?}: expected 1.2 or 1.3")),
        }
    }
}

/// How `https://` connections are made. Paths only: no key material is ever kept here.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TlsSettings {
    /// Accept any server certificate, unverified (`--insecure`).
    pub insecure: bool,
    /// PEM file of the CA certificates to trust instead of the system's (`--cacert`).
    pub ca_cert: Option<PathBuf>,
    /// PEM file of the client certificate chain (`--cert`).
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key (`--key`).
    pub client_key: Option<PathBuf>,
    /// Name sent in SNI and checked against the certificate, instead of the URL's host (`--sni`).
    pub server_name: Option<String>,
    /// The one protocol version allowed, if pinned (`--tls-version`); else 1.2 and 1.3.
    pub version: Option<TlsVersion>,
    /// Resume sessions on new connections (`--tls-resume on`, the default). Off, every new
    /// connection pays a full handshake: with `--no-keepalive`, one per request.
    pub resume: bool,
}

impl Default for TlsSettings {
    fn default() -> Self {
        TlsSettings {
            insecure: false,
            ca_cert: None,
            client_cert: None,
            client_key: None,
            server_name: None,
            version: None,
            resume: true,
        }
    }
}

impl TlsSettings {
    /// True when nothing differs from the defaults (plans for `http://` keep them so).
    pub fn is_default(&self) -> bool {
        *self == TlsSettings::default()
    }
}

/// Why TLS settings cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum TlsConfigError {
    /// A PEM file could not be read or holds nothing usable.
    #[error("{flag} {}: {reason}", path.display())]
    File {
        /// The flag that named it.
        flag: &'static str,
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The settings disagree (e.g. a client certificate without its key).
    #[error("{0}")]
    Invalid(String),
    /// rustls refused the configuration (e.g. the key does not match the certificate).
    #[error("TLS configuration: {0}")]
    Rustls(#[from] rustls::Error),
}

/// Installs aws-lc-rs as rustls' process-wide crypto provider. Idempotent: a provider that is
/// already installed (this one, or one an embedding program chose) is kept.
pub fn install_crypto_provider() {
    static INSTALLED: OnceLock<()> = OnceLock::new();
    INSTALLED.get_or_init(|| {
        // Err only says a provider is installed already, which is all we need.
        let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    });
}

/// The process's crypto provider (aws-lc-rs unless the embedding program installed another),
/// with AES-128-GCM preferred (see [`prefer_aes128`]).
fn provider() -> Arc<CryptoProvider> {
    install_crypto_provider();
    let mut provider = CryptoProvider::get_default()
        .map(|p| (**p).clone())
        .unwrap_or_else(rustls::crypto::aws_lc_rs::default_provider);
    prefer_aes128(&mut provider);
    Arc::new(provider)
}

/// Puts the AES-128-GCM suites first, keeping the order otherwise. rustls prefers AES-256;
/// browsers, Go and h2load prefer AES-128, and servers usually follow the client's order, so
/// this makes pummel's traffic cost the target what real clients' traffic costs (measured on
/// nginx: 14 % less server CPU per resumed handshake than with AES-256-GCM-SHA384).
fn prefer_aes128(provider: &mut CryptoProvider) {
    use rustls::CipherSuite::{
        TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS13_AES_128_GCM_SHA256,
    };
    provider.cipher_suites.sort_by_key(|suite| {
        !matches!(
            suite.suite(),
            TLS13_AES_128_GCM_SHA256 | TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256 | TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256
        )
    });
}

/// The application protocol a connection asks for in ALPN.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Alpn {
    /// `http/1.1`: HTTP/1.1 requests and WebSocket upgrades.
    Http1,
    /// `h2`: HTTP/2.
    H2,
}

/// A ready client configuration and the name connections present and verify.
#[derive(Debug, Clone)]
pub struct TlsClient {
    /// The rustls configuration (roots, verifier, client certificate, versions), offering
    /// `http/1.1` in ALPN.
    pub config: Arc<ClientConfig>,
    /// The same configuration offering `h2`; it shares `config`'s session cache.
    pub h2_config: Arc<ClientConfig>,
    /// SNI and certificate name: `--sni`, or the URL's host (an IP address is verified as such
    /// and sends no SNI).
    pub server_name: ServerName<'static>,
    /// Whether sessions are resumed (`TlsSettings::resume`).
    resume: bool,
}

impl TlsClient {
    /// Builds the configuration for `settings` against `host` (the URL's host).
    pub fn new(settings: &TlsSettings, host: &str) -> Result<TlsClient, TlsConfigError> {
        let name = settings.server_name.as_deref().unwrap_or(host);
        let server_name = ServerName::try_from(name.to_string())
            .map_err(|_| TlsConfigError::Invalid(format!("{name:?} is not a valid TLS server name (--sni)")))?;
        let provider = provider();
        let versions: &[&rustls::SupportedProtocolVersion] = match settings.version {
            None => rustls::DEFAULT_VERSIONS,
            Some(TlsVersion::Tls12) => &[&rustls::version::TLS12],
            Some(TlsVersion::Tls13) => &[&rustls::version::TLS13],
        };
        let builder = ClientConfig::builder_with_provider(provider.clone()).with_protocol_versions(versions)?;
        let builder = if settings.insecure {
            builder.dangerous().with_custom_certificate_verifier(Arc::new(AcceptAnyServerCertificate::new(&provider)))
        } else {
            let roots = match &settings.ca_cert {
                Some(path) => Arc::new(roots_from_file(path)?),
                None => system_roots()?,
            };
            builder.with_root_certificates(roots)
        };
        let config = match (&settings.client_cert, &settings.client_key) {
            (Some(cert), Some(key)) => builder.with_client_auth_cert(cert_chain(cert)?, private_key(key)?)?,
            (None, None) => builder.with_no_client_auth(),
            (Some(_), None) => {
                return Err(TlsConfigError::Invalid("--cert needs --key (the certificate's private key)".into()));
            }
            (None, Some(_)) => {
                return Err(TlsConfigError::Invalid("--key needs --cert (the client certificate)".into()));
            }
        };
        Ok(TlsClient::with_cache(config, server_name, settings.resume))
    }

    /// The configurations of `base` for each ALPN, sharing one new session cache.
    fn with_cache(mut base: ClientConfig, server_name: ServerName<'static>, resume: bool) -> TlsClient {
        base.resumption =
            if resume { Resumption::in_memory_sessions(SESSION_CACHE_SIZE) } else { Resumption::disabled() };
        let mut http1 = base.clone();
        http1.alpn_protocols = vec![b"http/1.1".to_vec()];
        base.alpn_protocols = vec![b"h2".to_vec()];
        TlsClient { config: Arc::new(http1), h2_config: Arc::new(base), server_name, resume }
    }

    /// The configuration that offers `alpn`.
    pub fn config_for(&self, alpn: Alpn) -> &Arc<ClientConfig> {
        match alpn {
            Alpn::Http1 => &self.config,
            Alpn::H2 => &self.h2_config,
        }
    }

    /// A copy for one shard: same settings, its own session cache (no lock shared between
    /// shards; each shard learns its own tickets on its first connections). Call it on the
    /// shard's thread before the run starts: it also seeds the crypto library's random number
    /// generator there, which takes aws-lc ~20 ms of entropy gathering on first use and would
    /// otherwise be counted in the first handshake's time.
    pub fn for_shard(&self) -> TlsClient {
        let _ = self.config.crypto_provider().secure_random.fill(&mut [0u8; 16]);
        TlsClient::with_cache((*self.config).clone(), self.server_name.clone(), self.resume)
    }

    /// The same client verifying and presenting `server_name` instead (a WebSocket URL on
    /// the run's host under another name, say).
    pub fn for_server_name(&self, server_name: ServerName<'static>) -> TlsClient {
        TlsClient { server_name, ..self.clone() }
    }

    /// True when new connections try to resume a session.
    pub fn resumes(&self) -> bool {
        self.resume
    }
}

/// The system's CA certificates, read once per process.
fn system_roots() -> Result<Arc<RootCertStore>, TlsConfigError> {
    static ROOTS: OnceLock<Result<Arc<RootCertStore>, String>> = OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found.errors.first().map(|e| format!(" ({e})")).unwrap_or_default();
                return Err(format!(
                    "no system CA certificates found{why}; give the target's CA with --cacert, or --insecure"
                ));
            }
            Ok(Arc::new(roots))
        })
        .clone()
        .map_err(TlsConfigError::Invalid)
}

fn file_error(flag: &'static str, path: &Path, reason: impl std::fmt::Display) -> TlsConfigError {
    TlsConfigError::File { flag, path: path.to_path_buf(), reason: reason.to_string() }
}

/// The certificates of a PEM file.
fn read_certs(flag: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .map_err(|e| file_error(flag, path, pem_reason(&e)))?
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| file_error(flag, path, pem_reason(&e)))?;
    if certs.is_empty() {
        return Err(file_error(flag, path, "no PEM certificate (-----BEGIN CERTIFICATE-----) in it"));
    }
    Ok(certs)
}

fn pem_reason(error: &rustls::pki_types::pem::Error) -> String {
    match error {
        rustls::pki_types::pem::Error::Io(e) => format!("cannot read it: {e}"),
        other => format!("not a valid PEM file: {other:?}"),
    }
}

/// A root store holding exactly the CA certificates of `path` (`--cacert`).
fn roots_from_file(path: &Path) -> Result<RootCertStore, TlsConfigError> {
    let mut roots = RootCertStore::empty();
    for cert in read_certs("--cacert", path)? {
        roots.add(cert).map_err(|e| file_error("--cacert", path, format!("unusable CA certificate: {e}")))?;
    }
    Ok(roots)
}

fn cert_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, TlsConfigError> {
    read_certs("--cert", path)
}

fn private_key(path: &Path) -> Result<PrivateKeyDer<'static>, TlsConfigError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| match e {
        rustls::pki_types::pem::Error::NoItemsFound => {
            file_error("--key", path, "no PEM private key (-----BEGIN ... PRIVATE KEY-----) in it")
        }
        other => file_error("--key", path, pem_reason(&other)),
    })
}

/// `--insecure`: a verifier that accepts every certificate and every handshake signature,
/// for targets with self-signed or otherwise unverifiable certificates. The connection is
/// still encrypted, but nothing proves who is at the other end.
#[derive(Debug)]
pub struct AcceptAnyServerCertificate {
    schemes: Vec<SignatureScheme>,
}

impl AcceptAnyServerCertificate {
    /// Offers the signature schemes `provider` knows, so servers pick one as usual.
    pub fn new(provider: &CryptoProvider) -> Self {
        AcceptAnyServerCertificate { schemes: provider.signature_verification_algorithms.supported_schemes() }
    }
}

impl ServerCertVerifier for AcceptAnyServerCertificate {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn verify_tls13_signature(
        &self,
        _message: &[u8],
        _cert: &CertificateDer<'_>,
        _dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        Ok(HandshakeSignatureValid::assertion())
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.schemes.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_file(name: &str, contents: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("pummel-tls-{}-{name}", std::process::id()));
        std::fs::write(&path, contents).unwrap();
        path
    }

    #[test]
    fn aes_128_gcm_comes_first() {
        let client = TlsClient::new(&TlsSettings { insecure: true, ..TlsSettings::default() }, "localhost").unwrap();
        let suites: Vec<_> = client.config.crypto_provider().cipher_suites.iter().map(|s| s.suite()).collect();
        assert_eq!(suites[0], rustls::CipherSuite::TLS13_AES_128_GCM_SHA256, "{suites:?}");
        assert!(suites.contains(&rustls::CipherSuite::TLS13_AES_256_GCM_SHA384));
    }

    #[test]
    fn versions_parse() {
        assert_eq!("1.2".parse::<TlsVersion>(), Ok(TlsVersion::Tls12));
        assert_eq!("1.3".parse::<TlsVersion>(), Ok(TlsVersion::Tls13));
        assert!("1.1".parse::<TlsVersion>().is_err());
        assert_eq!(serde_json::to_string(&TlsVersion::Tls12).unwrap(), "\"1.2\"");
    }

    #[test]
    fn insecure_needs_no_roots_and_offers_http11() {
        let settings = TlsSettings { insecure: true, ..TlsSettings::default() };
        let client = TlsClient::new(&settings, "127.0.0.1").unwrap();
        assert_eq!(client.config.alpn_protocols, vec![b"http/1.1".to_vec()]);
        assert!(matches!(client.server_name, ServerName::IpAddress(_)));
        assert!(client.resumes() && client.for_shard().resumes());
        let off = TlsClient::new(&TlsSettings { resume: false, ..settings }, "localhost").unwrap();
        assert!(!off.resumes() && !off.for_shard().resumes());
    }

    #[test]
    fn sni_overrides_the_host() {
        let settings = TlsSettings { insecure: true, server_name: Some("a.example".into()), ..TlsSettings::default() };
        let client = TlsClient::new(&settings, "127.0.0.1").unwrap();
        assert_eq!(client.server_name, ServerName::try_from("a.example").unwrap());
        let bad = TlsSettings { server_name: Some("not a name!".into()), ..settings };
        assert!(TlsClient::new(&bad, "127.0.0.1").is_err());
    }

    #[test]
    fn unreadable_or_empty_ca_files_are_named() {
        let missing = TlsSettings { ca_cert: Some("/nonexistent/ca.pem".into()), ..TlsSettings::default() };
        let error = TlsClient::new(&missing, "localhost").unwrap_err().to_string();
        assert!(error.contains("--cacert /nonexistent/ca.pem: cannot read it"), "{error}");
        let empty = temp_file("empty.pem", "nothing here\n");
        let error =
            TlsClient::new(&TlsSettings { ca_cert: Some(empty.clone()), ..TlsSettings::default() }, "localhost")
                .unwrap_err()
                .to_string();
        assert!(error.contains("no PEM certificate"), "{error}");
        let _ = std::fs::remove_file(empty);
    }

    #[test]
    fn a_client_certificate_needs_its_key() {
        let settings = TlsSettings { insecure: true, client_cert: Some("/x.pem".into()), ..TlsSettings::default() };
        let error = TlsClient::new(&settings, "localhost").unwrap_err().to_string();
        assert!(error.contains("--cert needs --key"), "{error}");
    }
}
