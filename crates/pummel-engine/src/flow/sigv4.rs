//! AWS Signature Version 4 for requests to object stores (S3 and S3-compatible) and other AWS APIs.
//!
//! The signing itself is done by the `aws-sigv4` crate (the signer of the official AWS SDK for
//! Rust), so canonicalisation follows AWS exactly: header values trimmed, query parameters sorted
//! and re-encoded, and the path taken as-is for `s3` but double-encoded and normalised for other
//! services. The payload is never handed to the signer: the caller passes its SHA-256 (hex) once
//! computed (see [`crate::flow::payload`]), so a large body is hashed once per process and never copied
//! per request; [`UNSIGNED_PAYLOAD`] skips payload signing altogether.
//!
//! `aws-sigv4` 1.3.x is used because the newest releases need Rust 1.94; cargo's MSRV-aware
//! resolver picks the newest release that builds on the workspace's `rust-version`.

use std::borrow::Cow;
use std::fmt;
use std::time::SystemTime;

use aws_sigv4::http_request::{
    PayloadChecksumKind, PercentEncodingMode, SignableBody, SignableRequest, SigningSettings, UriPathNormalizationMode,
    sign as aws_sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use sha2::{Digest, Sha256};

/// The payload hash that tells the service the body is not signed (allowed by S3 over HTTPS).
pub const UNSIGNED_PAYLOAD: &str = "UNSIGNED-PAYLOAD";

/// Environment variable holding the optional session token of temporary credentials.
pub const SESSION_TOKEN_ENV: &str = "AWS_SESSION_TOKEN";

/// Why credentials could not be read or a request could not be signed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SigV4Error {
    /// A credential environment variable is unset, empty or not valid Unicode.
    #[error("environment variable {0} is not set (needed for AWS SigV4 signing)")]
    MissingEnv(String),
    /// `--aws-sigv4` was not of the form `REGION:SERVICE`.
    #[error("invalid SigV4 scope {spec:?}: {reason} (expected REGION:SERVICE, e.g. us-east-1:s3)")]
    BadSpec {
        /// What the user wrote.
        spec: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The request could not be signed (a header or path the signer rejects).
    #[error("cannot sign the request: {0}")]
    Signing(String),
}

/// The secret part of a signer: an access key pair and, for temporary credentials, a session token.
#[derive(Clone, PartialEq, Eq)]
pub struct Credentials {
    /// Access key id (`AKIA...`); appears in every request's `authorization` header.
    pub access_key: String,
    /// Secret access key; never printed.
    pub secret_key: String,
    /// Session token of temporary credentials, sent as `x-amz-security-token`; never printed.
    pub session_token: Option<String>,
}

impl Credentials {
    /// Reads the key pair from the named environment variables, plus `AWS_SESSION_TOKEN` if set.
    /// The error names the first variable that is missing.
    pub fn from_env(access_key_env: &str, secret_key_env: &str) -> Result<Credentials, SigV4Error> {
        Ok(Credentials {
            access_key: required_env(access_key_env)?,
            secret_key: required_env(secret_key_env)?,
            session_token: std::env::var(SESSION_TOKEN_ENV).ok().filter(|token| !token.is_empty()),
        })
    }
}

/// Debug output shows the access key id (it is public in every request) but never the secrets.
impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("access_key", &self.access_key)
            .field("secret_key", &"<redacted>")
            .field("session_token", &self.session_token.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

fn required_env(name: &str) -> Result<String, SigV4Error> {
    match std::env::var(name) {
        Ok(value) if !value.is_empty() => Ok(value),
        _ => Err(SigV4Error::MissingEnv(name.to_owned())),
    }
}

/// Signs requests for one region and service with one set of credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SigV4 {
    /// AWS region of the credential scope, e.g. `us-east-1` (S3-compatible stores often accept any).
    pub region: String,
    /// Service of the credential scope, e.g. `s3`; `s3` also selects S3's path canonicalisation.
    pub service: String,
    /// Keys used to sign.
    pub credentials: Credentials,
}

impl SigV4 {
    /// The headers to add to one request: `x-amz-date`, `x-amz-content-sha256`,
    /// (`x-amz-security-token`), `authorization`.
    ///
    /// `headers` are the request's other headers, all of which are signed; pass the `Host` header
    /// as `("host", value)` (if absent, `host` is used for it). `path_and_query` is the request
    /// target as sent (already percent-encoded), e.g. `/bucket/key?partNumber=1`.
    /// `payload_sha256_hex` is the lowercase hex SHA-256 of the body ([`sha256_hex`], computed
    /// once per body) or [`UNSIGNED_PAYLOAD`].
    pub fn sign(
        &self,
        method: &str,
        host: &str,
        path_and_query: &str,
        headers: &[(String, String)],
        payload_sha256_hex: &str,
        time: SystemTime,
    ) -> Result<Vec<(String, String)>, SigV4Error> {
        if !path_and_query.starts_with('/') {
            return Err(SigV4Error::Signing(format!("request target {path_and_query:?} does not start with '/'")));
        }
        let has_host = headers.iter().any(|(name, _)| name.eq_ignore_ascii_case("host"));
        let mut signable_headers: Vec<(&str, &str)> = Vec::with_capacity(headers.len() + 1);
        // Without a host header the signer would derive it from an absolute URI (and panic on a
        // relative one), so the host is always supplied here.
        if !has_host {
            signable_headers.push(("host", host));
        }
        signable_headers.extend(
            headers
                .iter()
                .filter(|(name, _)| !name.eq_ignore_ascii_case("authorization"))
                .map(|(name, value)| (name.as_str(), value.as_str())),
        );

        let identity: Identity = aws_credential_types::Credentials::new(
            &self.credentials.access_key,
            &self.credentials.secret_key,
            self.credentials.session_token.clone(),
            None,
            "pummel",
        )
        .into();
        let params = v4::SigningParams::builder()
            .identity(&identity)
            .region(&self.region)
            .name(&self.service)
            .time(time)
            .settings(self.settings())
            .build()
            .map_err(|e| SigV4Error::Signing(e.to_string()))?
            .into();
        let request = SignableRequest::new(
            method,
            path_and_query,
            signable_headers.into_iter(),
            SignableBody::Precomputed(payload_sha256_hex.to_owned()),
        )
        .map_err(|e| SigV4Error::Signing(error_chain(&e)))?;
        let (instructions, _signature) =
            aws_sign(request, &params).map_err(|e| SigV4Error::Signing(error_chain(&e)))?.into_parts();
        Ok(instructions.headers().map(|(name, value)| (name.to_owned(), value.to_owned())).collect())
    }

    /// Signing settings for this service: S3 takes the path as sent (no double encoding, no
    /// normalisation); every service gets `x-amz-content-sha256` and every given header signed.
    fn settings(&self) -> SigningSettings {
        let is_s3 = self.service == "s3";
        let mut settings = SigningSettings::default();
        settings.percent_encoding_mode = if is_s3 { PercentEncodingMode::Single } else { PercentEncodingMode::Double };
        settings.uri_path_normalization_mode =
            if is_s3 { UriPathNormalizationMode::Disabled } else { UriPathNormalizationMode::Enabled };
        settings.payload_checksum_kind = PayloadChecksumKind::XAmzSha256;
        settings.excluded_headers = Some(vec![Cow::Borrowed("authorization")]);
        settings
    }
}

/// The error and its sources on one line (the signer's top-level messages are terse).
fn error_chain(error: &dyn std::error::Error) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

/// Lowercase hex SHA-256 of `bytes`, as SigV4 wants the payload hash.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Parses the command line's `REGION:SERVICE` (e.g. `us-east-1:s3`) into `(region, service)`.
pub fn parse_cli(spec: &str) -> Result<(String, String), SigV4Error> {
    let bad = |reason| SigV4Error::BadSpec { spec: spec.to_owned(), reason };
    let (region, service) = spec.split_once(':').ok_or_else(|| bad("no ':'"))?;
    let valid = |part: &str| {
        !part.is_empty() && part.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.')
    };
    if !valid(region) {
        return Err(bad("the region is empty or has characters other than letters, digits, '-', '_', '.'"));
    }
    if !valid(service) {
        return Err(bad("the service is empty or has characters other than letters, digits, '-', '_', '.'"));
    }
    Ok((region.to_owned(), service.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    /// 2013-05-24T00:00:00Z, the time of AWS's published S3 examples.
    fn may_24_2013() -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(1_369_353_600)
    }

    const EMPTY_SHA256: &str = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855";
    const HOST: &str = "examplebucket.s3.amazonaws.com";

    fn example_signer() -> SigV4 {
        SigV4 {
            region: "us-east-1".into(),
            service: "s3".into(),
            credentials: Credentials {
                access_key: "AKIAIOSFODNN7EXAMPLE".into(),
                secret_key: "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY".into(),
                session_token: None,
            },
        }
    }

    fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    fn header<'a>(signed: &'a [(String, String)], name: &str) -> Option<&'a str> {
        signed.iter().find(|(n, _)| n == name).map(|(_, v)| v.as_str())
    }

    fn authorization(method: &str, target: &str, extra: &[(&str, &str)], payload: &str) -> String {
        let mut request_headers = headers(&[("host", HOST)]);
        request_headers.extend(headers(extra));
        let signed = example_signer().sign(method, HOST, target, &request_headers, payload, may_24_2013()).unwrap();
        header(&signed, "authorization").unwrap().to_owned()
    }

    // The four examples of AWS's "Signature Calculations for the Authorization Header:
    // Transferring Payload in a Single Chunk (AWS Signature Version 4)", S3 API reference.

    #[test]
    fn get_object_example_matches_aws() {
        let auth = authorization("GET", "/test.txt", &[("Range", "bytes=0-9")], EMPTY_SHA256);
        assert_eq!(
            auth,
            "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, \
             SignedHeaders=host;range;x-amz-content-sha256;x-amz-date, \
             Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
        );
    }

    #[test]
    fn put_object_example_matches_aws() {
        let payload = sha256_hex(b"Welcome to Amazon S3.");
        assert_eq!(payload, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
        let extra = [("Date", "Fri, 24 May 2013 00:00:00 GMT"), ("x-amz-storage-class", "REDUCED_REDUNDANCY")];
        let auth = authorization("PUT", "/test%24file.text", &extra, &payload);
        assert!(
            auth.contains("SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,"),
            "{auth}"
        );
        assert!(auth.ends_with("Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd"), "{auth}");
    }

    #[test]
    fn get_bucket_lifecycle_example_matches_aws() {
        let auth = authorization("GET", "/?lifecycle", &[], EMPTY_SHA256);
        assert!(auth.ends_with("Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543"), "{auth}");
    }

    #[test]
    fn list_objects_example_matches_aws_with_the_query_out_of_order() {
        let auth = authorization("GET", "/?prefix=J&max-keys=2", &[], EMPTY_SHA256);
        assert!(auth.ends_with("Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7"), "{auth}");
    }

    #[test]
    fn header_values_are_trimmed_and_names_lowercased() {
        let auth = authorization("GET", "/test.txt", &[("RANGE", "   bytes=0-9  ")], EMPTY_SHA256);
        assert!(auth.ends_with("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"), "{auth}");
    }

    #[test]
    fn host_argument_is_signed_when_no_host_header_is_given() {
        let signed = example_signer()
            .sign("GET", HOST, "/test.txt", &headers(&[("range", "bytes=0-9")]), EMPTY_SHA256, may_24_2013())
            .unwrap();
        assert!(
            header(&signed, "authorization")
                .unwrap()
                .ends_with("f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41")
        );
    }

    #[test]
    fn returns_date_payload_hash_and_authorization_headers() {
        let signed = example_signer().sign("GET", HOST, "/", &[], UNSIGNED_PAYLOAD, may_24_2013()).unwrap();
        assert_eq!(header(&signed, "x-amz-date"), Some("20130524T000000Z"));
        assert_eq!(header(&signed, "x-amz-content-sha256"), Some(UNSIGNED_PAYLOAD));
        assert_eq!(header(&signed, "x-amz-security-token"), None);
        assert!(header(&signed, "authorization").unwrap().starts_with("AWS4-HMAC-SHA256 Credential=AKIA"));
    }

    #[test]
    fn session_token_is_sent_and_signed() {
        let mut signer = example_signer();
        signer.credentials.session_token = Some("token-value".into());
        let signed = signer.sign("GET", HOST, "/test.txt", &[], EMPTY_SHA256, may_24_2013()).unwrap();
        assert_eq!(header(&signed, "x-amz-security-token"), Some("token-value"));
        assert!(header(&signed, "authorization").unwrap().contains("x-amz-security-token"));
    }

    fn signature(signer: &SigV4, target: &str) -> String {
        let signed = signer.sign("GET", HOST, target, &[], EMPTY_SHA256, may_24_2013()).unwrap();
        header(&signed, "authorization").unwrap().rsplit("Signature=").next().unwrap().to_owned()
    }

    #[test]
    fn s3_paths_are_signed_as_sent_but_other_services_normalise_them() {
        let s3 = example_signer();
        assert_ne!(signature(&s3, "/a/./b"), signature(&s3, "/a/b"));
        let mut api = example_signer();
        api.service = "execute-api".into();
        assert_eq!(signature(&api, "/a/./b"), signature(&api, "/a/b"));
        assert_eq!(signature(&api, "/a/x/../b"), signature(&api, "/a/b"));
    }

    #[test]
    fn every_input_changes_the_signature() {
        let base = authorization("GET", "/test.txt", &[("range", "bytes=0-9")], EMPTY_SHA256);
        assert_ne!(base, authorization("PUT", "/test.txt", &[("range", "bytes=0-9")], EMPTY_SHA256));
        assert_ne!(base, authorization("GET", "/test2.txt", &[("range", "bytes=0-9")], EMPTY_SHA256));
        assert_ne!(base, authorization("GET", "/test.txt", &[("range", "bytes=0-8")], EMPTY_SHA256));
        assert_ne!(base, authorization("GET", "/test.txt", &[("range", "bytes=0-9")], UNSIGNED_PAYLOAD));
    }

    #[test]
    fn bad_input_is_an_error_not_a_panic() {
        let signer = example_signer();
        assert!(signer.sign("GET", HOST, "test.txt", &[], EMPTY_SHA256, may_24_2013()).is_err());
        let bad_header = headers(&[("bad header", "x")]);
        assert!(signer.sign("GET", HOST, "/", &bad_header, EMPTY_SHA256, may_24_2013()).is_err());
        let bad_value = headers(&[("x-a", "line\nbreak")]);
        assert!(signer.sign("GET", HOST, "/", &bad_value, EMPTY_SHA256, may_24_2013()).is_err());
    }

    #[test]
    fn debug_hides_the_secrets() {
        let mut signer = example_signer();
        signer.credentials.session_token = Some("token-value".into());
        let text = format!("{signer:?}");
        assert!(text.contains("AKIAIOSFODNN7EXAMPLE"));
        assert!(!text.contains("wJalrXUtnFEMI"), "{text}");
        assert!(!text.contains("token-value"), "{text}");
    }

    #[test]
    fn missing_environment_variable_is_named() {
        let err = Credentials::from_env("PUMMEL_TEST_SURELY_UNSET_ACCESS", "PATH").unwrap_err();
        assert_eq!(err, SigV4Error::MissingEnv("PUMMEL_TEST_SURELY_UNSET_ACCESS".into()));
        let err = Credentials::from_env("PATH", "PUMMEL_TEST_SURELY_UNSET_SECRET").unwrap_err();
        assert!(err.to_string().contains("PUMMEL_TEST_SURELY_UNSET_SECRET"));
        let found = Credentials::from_env("PATH", "PATH").unwrap();
        assert_eq!(found.access_key, std::env::var("PATH").unwrap());
    }

    #[test]
    fn cli_spec_parses_region_and_service() {
        assert_eq!(parse_cli("us-east-1:s3").unwrap(), ("us-east-1".into(), "s3".into()));
        assert_eq!(parse_cli("auto:execute-api").unwrap(), ("auto".into(), "execute-api".into()));
        for bad in ["", "us-east-1", ":s3", "us-east-1:", "us east:s3", "a:b:c"] {
            assert!(parse_cli(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn sha256_of_nothing_is_the_well_known_value() {
        assert_eq!(sha256_hex(b""), EMPTY_SHA256);
    }

    /// `cargo test -p pummel-engine --release --lib sigv4::tests::sign_cost -- --ignored --nocapture`
    #[test]
    #[ignore = "measurement; run in release"]
    fn sign_cost() {
        let signer = example_signer();
        let request_headers =
            headers(&[("host", HOST), ("user-agent", "pummel"), ("content-type", "application/octet-stream")]);
        let payload = sha256_hex(&[7u8; 1024]);
        let rounds = 200_000u32;
        let started = Instant::now();
        let mut total = 0usize;
        for _ in 0..rounds {
            let signed =
                signer.sign("PUT", HOST, "/bucket/object-0001", &request_headers, &payload, SystemTime::now()).unwrap();
            total += signed.len();
        }
        let elapsed = started.elapsed();
        assert_eq!(total, 3 * rounds as usize);
        println!("sign(): {:.0} ns/op over {rounds} calls", elapsed.as_nanos() as f64 / f64::from(rounds));
    }
}
