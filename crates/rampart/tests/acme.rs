//! ACME against Pebble (Let's Encrypt's test CA, run on loopback with its mock DNS server):
//! issuance by HTTP-01 and by TLS-ALPN-01, renewal of a stored certificate with the new one
//! swapped in under open connections, and a restart served from storage with the CA gone.
//!
//! Needs `pebble` and `pebble-challtestsrv` (Debian package `pebble`; scripts/test installs
//! it). Without them these tests fail, naming the package.

mod common;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use common::pki::Pki;
use common::{Behaviour, Client, Origin, PATIENCE, Rampart};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

/// Issuance takes a few seconds of Pebble's time; this bounds it.
const ISSUANCE: Duration = Duration::from_secs(90);

/// A port that is free now and stays free until bound: drawn below Linux's ephemeral range
/// (32768–60999), so that no connection of the tests running beside this one takes it as its
/// local port in the meantime, as one did with a port from `bind(":0")` (AddrInUse when
/// rampart, or Pebble, bound it a moment later).
fn unused_port(bindable: impl Fn(u16) -> bool) -> u16 {
    loop {
        let port = fastrand::u16(20_000..32_000);
        if bindable(port) {
            return port;
        }
    }
}

fn free_port() -> u16 {
    unused_port(|p| std::net::TcpListener::bind(("127.0.0.1", p)).is_ok())
}

fn free_udp_port() -> u16 {
    unused_port(|p| std::net::UdpSocket::bind(("127.0.0.1", p)).is_ok())
}

/// Pebble and its mock DNS server (every name is 127.0.0.1), stopped when dropped.
struct Pebble {
    children: Vec<Child>,
    /// The directory URL.
    directory: String,
    /// The CA file that verifies Pebble's own HTTPS.
    api_ca: PathBuf,
    api_pki: Pki,
    management: SocketAddr,
}

impl Drop for Pebble {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Pebble {
    /// Stops the CA; its files (the CA certificate a config names among them) stay until drop.
    fn stop(&mut self) {
        for c in &mut self.children {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Pebble validating HTTP-01 on `http_port` and TLS-ALPN-01 on `tls_port` of 127.0.0.1.
    async fn start(http_port: u16, tls_port: u16) -> Pebble {
        for bin in ["pebble", "pebble-challtestsrv"] {
            let found = Command::new("sh")
                .args(["-c", &format!("command -v {bin}")])
                .output()
                .is_ok_and(|o| o.status.success());
            assert!(
                found,
                "`{bin}` is missing: install the Debian package `pebble` (scripts/test does)"
            );
        }
        let pki = Pki::new();
        pki.issue("pebble", &["127.0.0.1", "localhost"]);
        let api_ca = pki.path("api-ca.pem");
        std::fs::write(&api_ca, pki.ca.pem()).unwrap();
        let (listen, management, dns) = (free_port(), free_port(), free_udp_port());
        let config = pki.path("pebble.json");
        let json = serde_json::json!({"pebble": {
            "listenAddress": format!("127.0.0.1:{listen}"),
            "managementListenAddress": format!("127.0.0.1:{management}"),
            "certificate": pki.path("pebble.pem"),
            "privateKey": pki.path("pebble.key"),
            "httpPort": http_port,
            "tlsPort": tls_port,
            "ocspResponderURL": "",
            "externalAccountBindingRequired": false,
        }});
        std::fs::write(&config, json.to_string()).unwrap();
        let log = |name: &str| std::fs::File::create(pki.path(name)).unwrap();
        let dns_server = Command::new("pebble-challtestsrv")
            .args([
                "-dns01",
                &format!("127.0.0.1:{dns}"),
                "-http01",
                "",
                "-https01",
                "",
                "-tlsalpn01",
                "",
                "-management",
                &format!("127.0.0.1:{}", free_port()),
                "-defaultIPv4",
                "127.0.0.1",
                "-defaultIPv6",
                "",
            ])
            .stdout(log("challtestsrv.log"))
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let pebble = Command::new("pebble")
            .args([
                "-config",
                config.to_str().unwrap(),
                "-dnsserver",
                &format!("127.0.0.1:{dns}"),
            ])
            // Validate at once, and prove every name again for every order.
            .env("PEBBLE_VA_NOSLEEP", "1")
            .env("PEBBLE_AUTHZREUSE", "0")
            .stdout(log("pebble.log"))
            .stderr(log("pebble.err"))
            .spawn()
            .unwrap();
        let p = Pebble {
            children: vec![pebble, dns_server],
            directory: format!("https://127.0.0.1:{listen}/dir"),
            api_ca,
            api_pki: pki,
            management: format!("127.0.0.1:{management}").parse().unwrap(),
        };
        let deadline = tokio::time::Instant::now() + PATIENCE;
        while TcpStream::connect(("127.0.0.1", listen)).await.is_err()
            || TcpStream::connect(p.management).await.is_err()
        {
            assert!(
                tokio::time::Instant::now() < deadline,
                "pebble did not start: {}",
                p.log()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        p
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.api_pki.path("pebble.log")).unwrap_or_default()
    }

    /// The root Pebble issues under (from its management interface).
    async fn root(&self) -> CertificateDer<'static> {
        let mut tls = self
            .api_pki
            .connect(self.management, "127.0.0.1")
            .await
            .unwrap();
        tls.write_all(b"GET /roots/0 HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
            .await
            .unwrap();
        let mut raw = Vec::new();
        let _ = tls.read_to_end(&mut raw).await;
        let text = String::from_utf8_lossy(&raw);
        let pem = &text[text.find("-----BEGIN").expect("a PEM root")..];
        CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
    }
}

/// A TLS client trusting `roots` only.
fn client(roots: &[CertificateDer<'static>]) -> tokio_rustls::TlsConnector {
    tokio_rustls::TlsConnector::from(common::pki::client_trusting(roots))
}

/// A kept-alive HTTP/1.1 connection over TLS to `addr` for `host`, verified against `roots`.
async fn tls_client(
    addr: SocketAddr,
    host: &str,
    roots: &[CertificateDer<'static>],
) -> Result<Client, String> {
    let tcp = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let name = ServerName::try_from(host.to_string()).unwrap();
    let tls = client(roots)
        .connect(name, tcp)
        .await
        .map_err(|e| e.to_string())?;
    Ok(Client::over(tls))
}

/// Waits until a handshake for `host` verifies against `roots`.
async fn wait_for_certificate(
    addr: SocketAddr,
    host: &str,
    roots: &[CertificateDer<'static>],
    pebble: &Pebble,
) -> Client {
    let deadline = tokio::time::Instant::now() + ISSUANCE;
    loop {
        match tls_client(addr, host, roots).await {
            Ok(c) => return c,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "no certificate for {host} from the CA: {e}\npebble: {}",
                pebble.log()
            ),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn get(c: &mut Client, host: &str, path: &str) -> common::Response {
    c.send(format!("GET {path} HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
        .await;
    c.response(false).await
}

fn storage() -> common::TempDir {
    common::TempDir::new("acme")
}

fn acme_section(pebble: &Pebble, storage: &Path, challenge: &str, renew_before: &str) -> String {
    format!(
        "[acme]\ndirectory = \"{}\"\nemail = \"ops@example.com\"\nstorage = \"{}\"\nca_file = \"{}\"\nchallenge = \"{challenge}\"\nrenew_before = \"{renew_before}\"\n",
        pebble.directory,
        storage.display(),
        pebble.api_ca.display()
    )
}

fn zone(origin: SocketAddr, extra: &str) -> String {
    format!(
        "[[zone]]\nname = \"shop\"\nhosts = [\"shop.test\", \"www.shop.test\"]\norigin = \"http://{origin}\"\ntls = \"acme\"\n{extra}\n"
    )
}

async fn start(http: u16, tls: u16, rest: &str) -> Rampart {
    let listeners =
        format!("listen = [\"127.0.0.1:{http}\"]\ntls_listen = [\"127.0.0.1:{tls}\"]\n");
    Rampart::start_listening(&listeners, "", rest).await
}

#[tokio::test]
async fn http01_issuance_before_every_security_rule_then_renewal_and_restart_from_storage() {
    let origin = Origin::start(Behaviour::Echo).await;
    let (http, tls) = (free_port(), free_port());
    let pebble = Pebble::start(http, tls).await;
    let root = pebble.root().await;
    let storage = storage();
    // A certificate from another CA, 45 days from expiry: served until it is due.
    let old_ca = Pki::new();
    old_ca.issue_with("old", &["shop.test", "www.shop.test"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        expire_in_days(p, 45);
    });
    let dir = storage.join("certs/shop");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::copy(old_ca.path("old.pem"), dir.join("fullchain.pem")).unwrap();
    std::fs::copy(old_ca.path("old.key"), dir.join("privkey.pem")).unwrap();
    // Every request from here is blocked and plain HTTP is redirected: the CA's requests
    // must still be answered.
    let rules = "always_use_https = true\n[[zone.custom_rule]]\nexpression = \"ip.src in {127.0.0.0/8}\"\naction = \"block\"\n";
    let config = |renew_before: &str| {
        format!(
            "{}{}",
            acme_section(&pebble, &storage, "http-01", renew_before),
            zone(origin.addr, rules)
        )
    };
    let r = start(http, tls, &config("30d")).await;
    let old_root = old_ca.ca.der().clone();
    let mut before = tls_client(tls_addr(&r), "shop.test", std::slice::from_ref(&old_root))
        .await
        .expect("the stored certificate is served");
    assert_eq!(get(&mut before, "shop.test", "/").await.status, 403);

    // renew_before past the remaining 45 days: the reload makes it due.
    r.server
        .as_ref()
        .unwrap()
        .reload(load(http, tls, &config("60d")));
    let mut after = wait_for_certificate(
        tls_addr(&r),
        "www.shop.test",
        std::slice::from_ref(&root),
        &pebble,
    )
    .await;
    assert_eq!(get(&mut after, "www.shop.test", "/").await.status, 403);
    // Both names, one certificate; the connection opened before the swap still serves.
    wait_for_certificate(
        tls_addr(&r),
        "shop.test",
        std::slice::from_ref(&root),
        &pebble,
    )
    .await;
    assert_eq!(get(&mut before, "shop.test", "/again").await.status, 403);
    // The CA's validations were answered, the origin saw none of it.
    assert!(origin.received().is_empty(), "{:?}", origin.received());
    assert!(pebble.log().contains("shop.test"), "{}", pebble.log());
    let chain = std::fs::read_to_string(dir.join("fullchain.pem")).unwrap();
    assert!(
        chain.matches("BEGIN CERTIFICATE").count() >= 2,
        "leaf and intermediate: {chain}"
    );
    assert_eq!(
        std::fs::read_dir(storage.join("accounts")).unwrap().count(),
        1
    );
    let metrics = r.metrics().await;
    assert!(
        metrics.contains("rampart_acme_orders_total{zone=\"shop\",result=\"issued\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("rampart_acme_certificate_expiry_timestamp_seconds{zone=\"shop\"}"),
        "{metrics}"
    );

    // A restart with the CA gone: served from storage at once.
    let restart = config("30d");
    drop((before, after));
    let mut r = r;
    r.server.take().unwrap().shutdown().await;
    let mut pebble = pebble;
    pebble.stop();
    let r = start(free_port(), free_port(), &restart).await;
    let mut c = tls_client(tls_addr(&r), "shop.test", &[root])
        .await
        .expect("served from storage");
    assert_eq!(get(&mut c, "shop.test", "/").await.status, 403);
}

#[tokio::test]
async fn tls_alpn01_issuance_in_the_handshake() {
    let origin = Origin::start(Behaviour::Echo).await;
    let (http, tls) = (free_port(), free_port());
    let pebble = Pebble::start(http, tls).await;
    let root = pebble.root().await;
    let storage = storage();
    let rest = format!(
        "{}{}",
        acme_section(&pebble, &storage, "tls-alpn-01", "30d"),
        zone(origin.addr, "")
    );
    let r = start(http, tls, &rest).await;
    let mut c = wait_for_certificate(
        tls_addr(&r),
        "shop.test",
        std::slice::from_ref(&root),
        &pebble,
    )
    .await;
    let res = get(&mut c, "shop.test", "/hello").await;
    assert_eq!(
        (res.status, res.text().as_str()),
        (200, "GET /hello HTTP/1.1")
    );
    // And over HTTP/2.
    let config = common::pki::client_trusting(std::slice::from_ref(&root));
    let mut h2 = common::pki::h2_over_tls(config, tls_addr(&r), "www.shop.test").await;
    let res = common::http2::send(
        &mut h2,
        common::http2::get("https://www.shop.test/h2"),
        None,
    )
    .await;
    assert_eq!(res.status, 200);
    // Nothing pending: an acme-tls/1 handshake is refused.
    // A client that accepts any certificate (as a CA's validator reads it itself), the one
    // `origin_tls_verify = false` builds.
    let any = rampart::tls::OriginTls::new(false, None, false).unwrap();
    let mut config = (*any.config).clone();
    config.alpn_protocols = vec![b"acme-tls/1".to_vec()];
    let tcp = TcpStream::connect(tls_addr(&r)).await.unwrap();
    let name = ServerName::try_from("shop.test").unwrap();
    assert!(
        tokio_rustls::TlsConnector::from(Arc::new(config))
            .connect(name, tcp)
            .await
            .is_err()
    );
}

#[test]
fn acme_configuration_errors_name_the_key() {
    let base = "[server]\nlisten = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\n";
    let zone = "[[zone]]\nname = \"z\"\nhosts = [\"z.test\"]\norigin = \"http://127.0.0.1:1\"\ntls = \"acme\"\n";
    let cases = [
        (
            format!("{base}{zone}"),
            "zone[0].tls",
            "needs an [acme] section",
        ),
        (
            format!("{base}[acme]\ndirectory = \"http://ca.test/dir\"\n{zone}"),
            "acme.directory",
            "not an https:// URL",
        ),
        (
            format!(
                "{base}[acme]\ndirectory = \"https://ca.test/dir\"\nemail = \"nobody\"\n{zone}"
            ),
            "acme.email",
            "not an email",
        ),
        (
            format!(
                "{base}[acme]\ndirectory = \"https://ca.test/dir\"\nchallenge = \"dns-01\"\n{zone}"
            ),
            "acme.challenge",
            "http-01",
        ),
        (
            format!(
                "{base}[acme]\ndirectory = \"https://ca.test/dir\"\nca_file = \"/nonexistent.pem\"\n{zone}"
            ),
            "acme.ca_file",
            "nonexistent",
        ),
        (
            format!(
                "[server]\nlisten = []\ntls_listen = [\"127.0.0.1:0\"]\n[acme]\ndirectory = \"https://ca.test/dir\"\n{zone}"
            ),
            "acme.challenge",
            "plain HTTP listener",
        ),
        (
            format!(
                "{base}[acme]\ndirectory = \"https://ca.test/dir\"\n[[zone]]\nname = \"z\"\nhosts = [\"*.z.test\"]\norigin = \"http://127.0.0.1:1\"\ntls = \"acme\"\n"
            ),
            "zone[0].tls",
            "only wildcard hosts",
        ),
        (
            format!(
                "{base}[[zone]]\nname = \"z\"\nhosts = [\"z.test\"]\norigin = \"http://127.0.0.1:1\"\ntls = \"auto\"\n"
            ),
            "zone[0].tls",
            "`tls = \"acme\"`",
        ),
    ];
    for (src, key, message) in cases {
        common::assert_config_error(&src, key, message);
    }
}

/// Makes the certificate `p` expire `days` from today (UTC).
fn expire_in_days(p: &mut rcgen::CertificateParams, days: i64) {
    let today = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        / 86_400;
    // Days since 1970-01-01 to a civil date (Howard Hinnant's algorithm).
    let z = today + days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    p.not_after = rcgen::date_time_ymd(y as i32, m as u8, d as u8);
}

fn tls_addr(r: &Rampart) -> SocketAddr {
    r.server.as_ref().unwrap().local_addrs[1]
}

fn load(http: u16, tls: u16, rest: &str) -> rampart::config::Config {
    let src = format!(
        "[server]\nlisten = [\"127.0.0.1:{http}\"]\ntls_listen = [\"127.0.0.1:{tls}\"]\n{rest}"
    );
    rampart::config::load_str("test.toml", &src, None)
        .unwrap_or_else(|e| panic!("{e}"))
        .config
}

#[tokio::test]
async fn an_unreachable_ca_is_counted_and_the_zone_still_serves_plain_http() {
    let origin = Origin::start(Behaviour::Echo).await;
    let storage = storage();
    let ca = Pki::new();
    std::fs::write(ca.path("ca.pem"), ca.ca.pem()).unwrap();
    // Nothing listens there.
    let rest = format!(
        "[acme]\ndirectory = \"https://127.0.0.1:{}/dir\"\nstorage = \"{}\"\nca_file = \"{}\"\n{}",
        free_port(),
        storage.display(),
        ca.path("ca.pem").display(),
        zone(origin.addr, "")
    );
    let r = start(free_port(), free_port(), &rest).await;
    let want = "rampart_acme_orders_total{zone=\"shop\",result=\"failed\"} 1";
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !r.metrics().await.contains(want) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{}",
            r.metrics().await
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    // No certificate yet and no default: the handshake is refused by name.
    let err = tls_client(tls_addr(&r), "shop.test", &[ca.ca.der().clone()])
        .await
        .err()
        .unwrap();
    assert!(err.contains("UnrecognisedName"), "{err}");
    let (res, _) = r
        .request(b"GET /plain HTTP/1.1\r\nHost: shop.test\r\n\r\n")
        .await;
    assert_eq!(
        (res.status, res.text().as_str()),
        (200, "GET /plain HTTP/1.1")
    );
}
