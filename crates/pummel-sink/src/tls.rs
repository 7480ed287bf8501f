//! TLS for the sink ([`SinkTls`]): the server certificate (generated at start, or read from
//! PEM files) and the rustls server configuration every connection shares.
//!
//! The generated certificate exists so that HTTPS can be tested and benchmarked on loopback
//! with verification on: a fresh CA ("pummel sink test CA") signs a certificate for
//! `localhost`, `127.0.0.1` and `::1`; a client that trusts the CA's PEM
//! ([`SinkHandle::tls_ca_pem`](crate::SinkHandle::tls_ca_pem)) verifies the sink like any
//! server. Keys are ECDSA P-256, the cheapest common choice to sign handshakes with.
//!
//! The configuration offers TLS 1.2 and 1.3 with `h2` and `http/1.1` as ALPN protocols, and resumes
//! sessions: stateless tickets (TLS 1.3 and 1.2) from aws-lc-rs' ticketer, plus rustls'
//! default session-ID cache for TLS 1.2 clients without tickets.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, KeyPair, KeyUsagePurpose};
use rustls::ServerConfig;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

use crate::error::SinkError;

/// Where the sink's TLS certificate comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SinkTls {
    /// A CA and a certificate for `localhost`, `127.0.0.1` and `::1`, made at start.
    SelfSigned,
    /// The certificate chain and private key in these PEM files.
    Files {
        /// PEM certificate chain, server certificate first.
        cert: PathBuf,
        /// PEM private key of the server certificate.
        key: PathBuf,
    },
}

/// A ready server configuration, and the CA to trust when the sink made its own.
pub(crate) struct TlsServer {
    pub(crate) config: Arc<ServerConfig>,
    pub(crate) ca_pem: Option<String>,
}

fn tls_error(reason: impl std::fmt::Display) -> SinkError {
    SinkError::Tls(reason.to_string())
}

/// Builds the server configuration for `tls`.
pub(crate) fn server(tls: &SinkTls) -> Result<TlsServer, SinkError> {
    let (chain, key, ca_pem) = match tls {
        SinkTls::SelfSigned => {
            let generated = generate()?;
            (vec![generated.cert], generated.key, Some(generated.ca_pem))
        }
        SinkTls::Files { cert, key } => (read_chain(cert)?, read_key(key)?, None),
    };
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::DEFAULT_VERSIONS)
        .map_err(tls_error)?
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .map_err(|e| tls_error(format!("the certificate and key do not go together: {e}")))?;
    // h2 first, as servers usually prefer it; HTTP/1.1 clients offer only http/1.1.
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    config.ticketer = rustls::crypto::aws_lc_rs::Ticketer::new().map_err(tls_error)?;
    Ok(TlsServer { config: Arc::new(config), ca_pem })
}

struct Generated {
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
    ca_pem: String,
}

/// A fresh CA and a server certificate it signed for the loopback names.
fn generate() -> Result<Generated, SinkError> {
    let fail = |e: rcgen::Error| tls_error(format!("cannot generate a certificate: {e}"));
    let ca_key = KeyPair::generate().map_err(fail)?;
    let mut ca = CertificateParams::new(Vec::<String>::new()).map_err(fail)?;
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.distinguished_name.push(DnType::CommonName, "pummel sink test CA");
    ca.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign, KeyUsagePurpose::DigitalSignature];
    let ca_cert = ca.self_signed(&ca_key).map_err(fail)?;

    let key = KeyPair::generate().map_err(fail)?;
    let names = vec!["localhost".to_string(), "127.0.0.1".to_string(), "::1".to_string()];
    let mut leaf = CertificateParams::new(names).map_err(fail)?;
    leaf.distinguished_name.push(DnType::CommonName, "localhost");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    let cert = leaf.signed_by(&key, &ca_cert, &ca_key).map_err(fail)?;
    Ok(Generated {
        cert: cert.der().clone(),
        key: PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der())),
        ca_pem: ca_cert.pem(),
    })
}

fn read_chain(path: &Path) -> Result<Vec<CertificateDer<'static>>, SinkError> {
    let fail = |e: rustls::pki_types::pem::Error| tls_error(format!("--cert {}: {e:?}", path.display()));
    let chain = CertificateDer::pem_file_iter(path).map_err(fail)?.collect::<Result<Vec<_>, _>>().map_err(fail)?;
    if chain.is_empty() {
        return Err(tls_error(format!("--cert {}: no PEM certificate in it", path.display())));
    }
    Ok(chain)
}

fn read_key(path: &Path) -> Result<PrivateKeyDer<'static>, SinkError> {
    PrivateKeyDer::from_pem_file(path).map_err(|e| tls_error(format!("--key {}: {e:?}", path.display())))
}

#[cfg(test)]
mod tests {
    use rustls::client::danger::ServerCertVerifier;

    use super::*;

    #[test]
    fn the_generated_certificate_verifies_against_its_ca() {
        let generated = generate().unwrap();
        let mut roots = rustls::RootCertStore::empty();
        for ca in CertificateDer::pem_slice_iter(generated.ca_pem.as_bytes()) {
            roots.add(ca.unwrap()).unwrap();
        }
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let verifier =
            rustls::client::WebPkiServerVerifier::builder_with_provider(Arc::new(roots), provider).build().unwrap();
        let now = rustls::pki_types::UnixTime::now();
        for name in ["localhost", "127.0.0.1", "::1"] {
            let name = rustls::pki_types::ServerName::try_from(name).unwrap();
            verifier.verify_server_cert(&generated.cert, &[], &name, &[], now).unwrap();
        }
        let wrong = rustls::pki_types::ServerName::try_from("wrong.example").unwrap();
        assert!(verifier.verify_server_cert(&generated.cert, &[], &wrong, &[], now).is_err());
    }

    #[test]
    fn missing_files_are_named() {
        let files = SinkTls::Files { cert: "/nonexistent/c.pem".into(), key: "/nonexistent/k.pem".into() };
        let error = server(&files).err().unwrap().to_string();
        assert!(error.contains("/nonexistent/c.pem"), "{error}");
    }
}
