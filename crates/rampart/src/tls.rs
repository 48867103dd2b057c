//! TLS: certificates for the client side (chosen by SNI), and the origin side's client
//! configuration.
//!
//! Everything that can be wrong with a certificate (unreadable file, no certificate in it, a
//! key that does not belong to it, outside its validity period) is found when the
//! configuration loads, so `rampart check` reports it and nothing starts with it.

use std::path::Path;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};

/// The ALPN protocols offered to clients, preferred first.
const ALPN: &[&[u8]] = &[b"h2", b"http/1.1"];

/// The ALPN protocols offered to origins spoken to in HTTP/1.1.
const ORIGIN_ALPN: &[&[u8]] = &[b"http/1.1"];

/// A certificate chain and its key, loaded and checked, ready to serve.
#[derive(Clone)]
pub struct ServerCert {
    /// The rustls configuration that serves this certificate.
    pub config: Arc<rustls::ServerConfig>,
    /// When the end-entity certificate becomes valid (seconds since the Unix epoch).
    pub not_before: i64,
    /// When the end-entity certificate expires (seconds since the Unix epoch).
    pub not_after: i64,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("not_after", &self.not_after)
            .finish_non_exhaustive()
    }
}

/// The crypto provider (ring) every rustls configuration here uses.
pub fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

impl ServerCert {
    /// Loads a PEM certificate chain (end-entity first) and its PEM private key, and checks
    /// that they belong together and that the certificate is valid now. The error names the
    /// file at fault.
    pub fn load(cert_path: &Path, key_path: &Path) -> Result<ServerCert, String> {
        let cert_pem = std::fs::read(cert_path)
            .map_err(|e| format!("cannot read the certificate {}: {e}", cert_path.display()))?;
        let key_pem = std::fs::read(key_path)
            .map_err(|e| format!("cannot read the private key {}: {e}", key_path.display()))?;
        Self::from_pem(
            &cert_pem,
            &key_pem,
            &cert_path.display().to_string(),
            &key_path.display().to_string(),
        )
    }

    /// Like [`ServerCert::load`], from PEM bytes; `cert_name` and `key_name` name them in
    /// errors.
    pub fn from_pem(
        cert_pem: &[u8],
        key_pem: &[u8],
        cert_name: &str,
        key_name: &str,
    ) -> Result<ServerCert, String> {
        let (chain, key) = parse_pair(cert_pem, key_pem, cert_name, key_name)?;
        let (not_before, not_after) = check_validity(&chain[0], cert_name, now_secs())?;
        let config = server_config(chain, key, ALPN).map_err(|e| match e {
            rustls::Error::InconsistentKeys(_) => {
                format!("the key in {key_name} does not belong to the certificate in {cert_name}")
            }
            other => format!("{key_name}: the private key cannot be used: {other}"),
        })?;
        Ok(ServerCert {
            config: Arc::new(config),
            not_before,
            not_after,
        })
    }
}

/// A server configuration serving `chain` with `key`, offering `alpn`.
pub fn server_config(
    chain: Vec<CertificateDer<'static>>,
    key: PrivateKeyDer<'static>,
    alpn: &[&[u8]],
) -> Result<rustls::ServerConfig, rustls::Error> {
    let mut config = rustls::ServerConfig::builder_with_provider(provider())
        .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])?
        .with_no_client_auth()
        .with_single_cert(chain, key)?;
    config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    Ok(config)
}

impl ServerCert {
    /// Whole days until the certificate expires (0 on its last day).
    pub fn days_left(&self) -> i64 {
        (self.not_after - now_secs()).max(0) / 86_400
    }
}

fn parse_pair(
    cert_pem: &[u8],
    key_pem: &[u8],
    cert_name: &str,
    key_name: &str,
) -> Result<(Vec<CertificateDer<'static>>, PrivateKeyDer<'static>), String> {
    let chain = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{cert_name}: not a PEM certificate chain: {e}"))?;
    if chain.is_empty() {
        return Err(format!(
            "{cert_name} holds no certificate (expected PEM blocks \"BEGIN CERTIFICATE\")"
        ));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| {
        format!("{key_name}: no PEM private key (PKCS#8, PKCS#1 or SEC1) in it: {e}")
    })?;
    Ok((chain, key))
}

/// Checks the certificate's validity period against `now`; returns it.
fn check_validity(cert: &CertificateDer<'_>, name: &str, now: i64) -> Result<(i64, i64), String> {
    let (_, parsed) = x509_parser::parse_x509_certificate(cert.as_ref())
        .map_err(|e| format!("{name}: the certificate cannot be parsed: {e}"))?;
    let validity = parsed.validity();
    let (from, until) = (
        validity.not_before.timestamp(),
        validity.not_after.timestamp(),
    );
    if now > until {
        return Err(format!(
            "{name}: the certificate expired on {}",
            validity.not_after
        ));
    }
    if now < from {
        return Err(format!(
            "{name}: the certificate is not valid before {}",
            validity.not_before
        ));
    }
    Ok((from, until))
}

pub(crate) fn now_secs() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// How an `https://` origin is verified: the rustls client configuration of a zone.
#[derive(Clone)]
pub struct OriginTls {
    /// The client configuration (roots, or no verification).
    pub config: Arc<rustls::ClientConfig>,
    /// Whether the origin's certificate is verified.
    pub verify: bool,
    /// Whether only `h2` is offered in ALPN.
    h2: bool,
    /// The configured CA certificates (`None`: the system's).
    ca: Option<Vec<rustls::pki_types::TrustAnchor<'static>>>,
}

/// Two configurations are equal when they were made from the same settings (so connections
/// made with one are as good as made with the other).
impl PartialEq for OriginTls {
    fn eq(&self, other: &OriginTls) -> bool {
        (self.verify, self.h2, &self.ca) == (other.verify, other.h2, &other.ca)
    }
}

impl std::fmt::Debug for OriginTls {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OriginTls")
            .field("verify", &self.verify)
            .finish_non_exhaustive()
    }
}

impl OriginTls {
    /// A client configuration trusting `ca` (or the system's roots when `None`), or trusting
    /// any certificate when `verify` is false, offering `h2` or `http/1.1` in ALPN.
    pub fn new(
        verify: bool,
        ca: Option<rustls::RootCertStore>,
        h2: bool,
    ) -> Result<OriginTls, String> {
        let builder = rustls::ClientConfig::builder_with_provider(provider())
            .with_protocol_versions(&[&rustls::version::TLS13, &rustls::version::TLS12])
            .map_err(|e| format!("TLS configuration: {e}"))?;
        let anchors = ca.as_ref().map(|c| c.roots.clone());
        let mut config = if verify {
            let roots = match ca {
                Some(roots) => roots,
                None => system_roots()?,
            };
            builder.with_root_certificates(roots).with_no_client_auth()
        } else {
            builder
                .dangerous()
                .with_custom_certificate_verifier(Arc::new(NoVerification(provider())))
                .with_no_client_auth()
        };
        let alpn: &[&[u8]] = if h2 { &[b"h2"] } else { ORIGIN_ALPN };
        config.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
        Ok(OriginTls {
            config: Arc::new(config),
            verify,
            h2,
            ca: anchors,
        })
    }
}

/// The system's trust store (Debian: /etc/ssl/certs), read once per process.
fn system_roots() -> Result<rustls::RootCertStore, String> {
    static ROOTS: std::sync::OnceLock<Result<rustls::RootCertStore, String>> =
        std::sync::OnceLock::new();
    ROOTS
        .get_or_init(|| {
            let found = rustls_native_certs::load_native_certs();
            let mut roots = rustls::RootCertStore::empty();
            let (added, _ignored) = roots.add_parsable_certificates(found.certs);
            if added == 0 {
                let why = found
                    .errors
                    .first()
                    .map_or(String::new(), |e| format!(" ({e})"));
                return Err(format!(
                    "no trusted root certificates found on this system{why}; install the \
                     ca-certificates package or set origin_ca_file"
                ));
            }
            Ok(roots)
        })
        .clone()
}

/// Reads a PEM bundle of CA certificates that origins' certificates must chain to.
pub fn read_ca_file(path: &Path) -> Result<rustls::RootCertStore, String> {
    let pem = std::fs::read(path)
        .map_err(|e| format!("cannot read the CA file {}: {e}", path.display()))?;
    let certs = CertificateDer::pem_slice_iter(&pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| format!("{}: not a PEM certificate bundle: {e}", path.display()))?;
    let mut roots = rustls::RootCertStore::empty();
    let (added, ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(format!(
            "{} holds no usable CA certificate ({ignored} could not be parsed)",
            path.display()
        ));
    }
    Ok(roots)
}

/// `origin_tls_verify = false`: any certificate is accepted, but the handshake signatures
/// are still checked (the connection is encrypted to whoever holds the presented key).
#[derive(Debug)]
struct NoVerification(Arc<rustls::crypto::CryptoProvider>);

impl rustls::client::danger::ServerCertVerifier for NoVerification {
    fn verify_server_cert(
        &self,
        _end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &rustls::pki_types::ServerName<'_>,
        _ocsp_response: &[u8],
        _now: rustls::pki_types::UnixTime,
    ) -> Result<rustls::client::danger::ServerCertVerified, rustls::Error> {
        Ok(rustls::client::danger::ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &rustls::DigitallySignedStruct,
    ) -> Result<rustls::client::danger::HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(
            message,
            cert,
            dss,
            &self.0.signature_verification_algorithms,
        )
    }

    fn supported_verify_schemes(&self) -> Vec<rustls::SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// The fatal TLS alert `unrecognized_name` (RFC 6066 §3) as a plaintext record, sent before
/// any handshake message when a client names a host this edge has no certificate for.
pub const UNRECOGNIZED_NAME_ALERT: [u8; 7] = [0x15, 0x03, 0x03, 0x00, 0x02, 0x02, 0x70];

/// Writes a self-signed certificate and key for `hosts` (for local use), returning their
/// paths: `DIR/NAME.pem` and `DIR/NAME.key`, where NAME is the first host.
pub fn write_dev_certificate(
    hosts: &[String],
    dir: &Path,
) -> Result<(std::path::PathBuf, std::path::PathBuf), String> {
    let first = hosts.first().ok_or("name at least one host")?;
    let certified = rcgen::generate_simple_self_signed(hosts.to_vec())
        .map_err(|e| format!("cannot generate the certificate: {e}"))?;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let file_stem = first.replace('*', "_wildcard");
    let cert_path = dir.join(format!("{file_stem}.pem"));
    let key_path = dir.join(format!("{file_stem}.key"));
    std::fs::write(&cert_path, certified.cert.pem())
        .map_err(|e| format!("cannot write {}: {e}", cert_path.display()))?;
    write_private(&key_path, certified.signing_key.serialize_pem().as_bytes())
        .map_err(|e| format!("cannot write {}: {e}", key_path.display()))?;
    Ok((cert_path, key_path))
}

/// Writes a file readable by its owner only (private keys).
pub(crate) fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)?.write_all(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_alert_is_a_fatal_unrecognized_name_record() {
        // Record type 21 (alert), TLS 1.2 record version, length 2, level fatal (2),
        // description unrecognized_name (112).
        assert_eq!(UNRECOGNIZED_NAME_ALERT[0], 21);
        assert_eq!(&UNRECOGNIZED_NAME_ALERT[3..5], &[0, 2]);
        assert_eq!(UNRECOGNIZED_NAME_ALERT[5], 2);
        assert_eq!(UNRECOGNIZED_NAME_ALERT[6], 112);
    }
}
