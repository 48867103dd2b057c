//! A test PKI: a CA of the test's own, leaf certificates it issues, and TLS clients that
//! trust it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair};
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::net::TcpStream;

/// A test CA and a directory of leaf certificates it issued.
pub struct Pki {
    pub dir: super::TempDir,
    pub ca: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new() -> Pki {
        let dir = super::TempDir::new("tls");
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(
            DnType::CommonName,
            format!("rampart test CA {}", fastrand::u64(..)),
        );
        let ca = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        Pki { dir, ca }
    }

    /// Issues a leaf for `names`; writes `<file>.pem` (leaf, then the CA: a chain) and
    /// `<file>.key`. Returns the leaf's DER.
    pub fn issue(&self, file: &str, names: &[&str]) -> CertificateDer<'static> {
        self.issue_with(file, names, |_| {})
    }

    pub fn issue_with(
        &self,
        file: &str,
        names: &[&str],
        tweak: impl FnOnce(&mut CertificateParams),
    ) -> CertificateDer<'static> {
        let mut params =
            CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .unwrap();
        tweak(&mut params);
        let key = KeyPair::generate().unwrap();
        let leaf = params.signed_by(&key, &self.ca).unwrap();
        std::fs::write(
            self.dir.join(format!("{file}.pem")),
            leaf.pem() + &self.ca.pem(),
        )
        .unwrap();
        std::fs::write(self.dir.join(format!("{file}.key")), key.serialize_pem()).unwrap();
        leaf.der().clone()
    }

    pub fn tls(&self, file: &str) -> String {
        format!(
            "tls = {{ cert = \"{}\", key = \"{}\" }}",
            self.path(&format!("{file}.pem")).display(),
            self.path(&format!("{file}.key")).display()
        )
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.dir.join(name)
    }

    pub fn client_config(&self) -> Arc<rustls::ClientConfig> {
        client_trusting(std::slice::from_ref(self.ca.der()))
    }

    /// Opens TLS to `addr` sending `sni` (an IP address sends no SNI, as browsers do).
    pub async fn connect(
        &self,
        addr: SocketAddr,
        sni: &str,
    ) -> std::io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let connector = tokio_rustls::TlsConnector::from(self.client_config());
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(sni.to_string()).unwrap();
        connector.connect(name, tcp).await
    }
}

impl Pki {
    /// An HTTP/2 client over TLS to `addr` with server name `sni` (ALPN `h2`).
    pub async fn connect_h2(
        &self,
        addr: SocketAddr,
        sni: &str,
    ) -> h2::client::SendRequest<bytes::Bytes> {
        h2_over_tls(self.client_config(), addr, sni).await
    }
}

/// An HTTP/2 client over TLS (ALPN `h2`) to `addr` with server name `sni`, verified by
/// `config`.
pub async fn h2_over_tls(
    config: Arc<rustls::ClientConfig>,
    addr: SocketAddr,
    sni: &str,
) -> h2::client::SendRequest<bytes::Bytes> {
    let mut config = (*config).clone();
    config.alpn_protocols = vec![b"h2".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = TcpStream::connect(addr).await.unwrap();
    let name = ServerName::try_from(sni.to_string()).unwrap();
    let tls = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, conn) = h2::client::handshake(tls).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A TLS client configuration trusting `roots` only.
pub fn client_trusting(roots: &[CertificateDer<'static>]) -> Arc<rustls::ClientConfig> {
    let mut store = rustls::RootCertStore::empty();
    for r in roots {
        store.add(r.clone()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(store)
    .with_no_client_auth();
    Arc::new(config)
}
