//! TLS on the client side: certificates chosen by SNI, unknown names, the default
//! certificate, the Host ≠ SNI check, and certificate problems found at configuration load.
//! Certificates are generated at test time (a test CA issuing one leaf per zone).

mod common;

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use common::pki::Pki;
use common::{Behaviour, Client, Origin, Rampart};
use rustls::pki_types::CertificateDer;
use tokio::net::TcpStream;

/// The status of a GET for `authority` over an HTTP/2 connection.
async fn h2_status(client: &h2::client::SendRequest<bytes::Bytes>, authority: &str) -> u16 {
    let request = http::Request::get(format!("https://{authority}/"))
        .body(())
        .unwrap();
    let mut ready = client.clone().ready().await.unwrap();
    let (response, _) = ready.send_request(request, true).unwrap();
    tokio::time::timeout(common::PATIENCE, response)
        .await
        .expect("a response in time")
        .unwrap()
        .status()
        .as_u16()
}

fn zone(name: &str, hosts: &[&str], origin: SocketAddr, extra: &str) -> String {
    let hosts: Vec<String> = hosts.iter().map(|h| format!("\"{h}\"")).collect();
    format!(
        "[[zone]]\nname = \"{name}\"\nhosts = [{}]\norigin = \"http://{origin}\"\n{extra}\n",
        hosts.join(", ")
    )
}

fn tls_addr(r: &Rampart) -> SocketAddr {
    r.server.as_ref().unwrap().local_addrs[1]
}

const TLS_LISTEN: &str = "tls_listen = [\"127.0.0.1:0\"]\n";

fn peer_cert(s: &tokio_rustls::client::TlsStream<TcpStream>) -> CertificateDer<'static> {
    s.get_ref().1.peer_certificates().unwrap()[0].clone()
}

#[tokio::test]
async fn the_certificate_is_chosen_by_sni_exact_before_wildcard() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    let a = pki.issue("a", &["a.test"]);
    let b = pki.issue("b", &["b.test"]);
    let wild = pki.issue("wild", &["*.w.test"]);
    let exact = pki.issue("exact", &["x.w.test"]);
    let zones = zone("a", &["a.test"], origin.addr, &pki.tls("a"))
        + &zone("b", &["b.test"], origin.addr, &pki.tls("b"))
        + &zone("w", &["*.w.test"], origin.addr, &pki.tls("wild"))
        + &zone("x", &["x.w.test"], origin.addr, &pki.tls("exact"));
    let r = Rampart::start_zones(TLS_LISTEN, &zones).await;
    let addr = tls_addr(&r);
    for (sni, want) in [
        ("a.test", &a),
        ("b.test", &b),
        ("y.w.test", &wild),
        ("x.w.test", &exact),
    ] {
        let s = pki.connect(addr, sni).await.unwrap();
        assert_eq!(&peer_cert(&s), want, "certificate for {sni}");
        assert_eq!(
            s.get_ref().1.alpn_protocol(),
            None,
            "no ALPN asked, none chosen"
        );
    }

    // A request over TLS goes through the whole pipeline to the origin, which learns the
    // scheme; the log says https.
    let s = pki.connect(addr, "b.test").await.unwrap();
    let mut c = Client::over(s);
    c.send(b"GET /over-tls HTTP/1.1\r\nHost: b.test\r\n\r\n")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 200);
    assert!(resp.header("rampart-ray").is_some());
    let got = origin.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].request_line(), "GET /over-tls HTTP/1.1");
    assert_eq!(got[0].header("x-forwarded-proto"), vec!["https"]);
    assert!(got[0].header("forwarded")[0].ends_with(";proto=https"));
    let lines = r.log_lines(1).await;
    assert_eq!(lines.len(), 1);
    assert_eq!(lines[0]["ClientRequestScheme"], "https");
    assert_eq!(lines[0]["ZoneName"], "b");
}

#[tokio::test]
async fn an_unknown_sni_without_default_certificate_gets_unrecognized_name() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    pki.issue("a", &["a.test"]);
    let r = Rampart::start_zones(
        TLS_LISTEN,
        &zone("a", &["a.test"], origin.addr, &pki.tls("a")),
    )
    .await;
    let err = pki
        .connect(tls_addr(&r), "nope.test")
        .await
        .expect_err("the handshake must fail");
    let text = format!("{err:?}");
    assert!(
        text.contains("UnrecognisedName") || text.contains("UnrecognizedName"),
        "alert received: {text}"
    );
    // A zone without a certificate of its own is no better without a default.
    let metrics = r.metrics().await;
    assert!(
        metrics.contains("rampart_tls_handshake_failures_total{reason=\"unknown_sni\"} 1"),
        "{metrics}"
    );
    // Nothing reached the access log: no request was made.
    assert!(r.log_lines(0).await.is_empty());
    assert!(origin.received().is_empty());
}

#[tokio::test]
async fn without_sni_the_default_certificate_serves_and_host_picks_the_zone() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    let default = pki.issue("default", &["127.0.0.1", "fallback.test"]);
    pki.issue("a", &["a.test"]);
    let server = format!(
        "{TLS_LISTEN}default_certificate = {{ cert = \"{}\", key = \"{}\" }}\n",
        pki.path("default.pem").display(),
        pki.path("default.key").display()
    );
    let zones = zone("a", &["a.test"], origin.addr, &pki.tls("a"))
        + &zone("plain", &["plain.test"], origin.addr, "");
    let r = Rampart::start_zones(&server, &zones).await;
    // An IP address as the server name: rustls sends no SNI, as browsers do.
    let s = pki.connect(tls_addr(&r), "127.0.0.1").await.unwrap();
    assert_eq!(peer_cert(&s), default);
    let mut c = Client::over(s);
    c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert_eq!(c.response(false).await.status, 200);
    // A zone without its own certificate is served with the default one.
    let s = pki.connect(tls_addr(&r), "fallback.test").await.unwrap();
    assert_eq!(peer_cert(&s), default);
    assert_eq!(origin.received().len(), 1);
}

#[tokio::test]
async fn a_host_that_differs_from_sni_gets_an_unstyled_unlogged_403() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    pki.issue("a", &["a.test"]);
    pki.issue("b", &["b.test"]);
    let zones = zone("a", &["a.test"], origin.addr, &pki.tls("a"))
        + &zone("b", &["b.test"], origin.addr, &pki.tls("b"));
    let r = Rampart::start_zones(TLS_LISTEN, &zones).await;
    let s = pki.connect(tls_addr(&r), "a.test").await.unwrap();
    let mut c = Client::over(s);
    c.send(b"GET /secret HTTP/1.1\r\nHost: b.test\r\nAccept: text/html\r\n\r\n")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 403);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("text/plain; charset=utf-8")
    );
    assert!(resp.body.len() < 100, "tiny body: {}", resp.text());
    assert!(!resp.text().contains("rampart"), "no branding");
    assert!(
        resp.header("rampart-ray").is_none(),
        "no ray id: {}",
        resp.head
    );
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed().await);
    assert!(origin.received().is_empty());

    // Same host as SNI, whatever the case and a trailing dot: served.
    let s = pki.connect(tls_addr(&r), "a.test").await.unwrap();
    let mut c = Client::over(s);
    c.send(b"GET / HTTP/1.1\r\nHost: A.Test.:443\r\n\r\n").await;
    assert_eq!(c.response(false).await.status, 200);

    let lines = r.log_lines(1).await;
    assert_eq!(
        lines.len(),
        1,
        "only the served request is logged: {lines:?}"
    );
    assert_eq!(lines[0]["EdgeResponseStatus"], 200);
    let metrics = r.metrics().await;
    assert!(
        metrics.contains("rampart_sni_mismatches_total 1"),
        "{metrics}"
    );
}

fn load(src: &str) -> Result<rampart::config::Loaded, String> {
    rampart::config::load_str("tls.toml", src, None).map_err(|e| {
        e.errors
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    })
}

fn tls_config(cert: &Path, key: &Path) -> String {
    format!(
        "[server]\ntls_listen = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\ntls = {{ cert = \"{}\", key = \"{}\" }}\n",
        cert.display(),
        key.display()
    )
}

#[test]
fn certificate_problems_are_config_errors_naming_the_file() {
    let pki = Pki::new();
    pki.issue("a", &["a.test"]);
    pki.issue("b", &["b.test"]);
    pki.issue_with("old", &["old.test"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    pki.issue_with("future", &["future.test"], |p| {
        p.not_before = rcgen::date_time_ymd(2090, 1, 1);
        p.not_after = rcgen::date_time_ymd(2091, 1, 1);
    });
    std::fs::write(pki.path("junk.pem"), "not a certificate\n").unwrap();

    assert!(load(&tls_config(&pki.path("a.pem"), &pki.path("a.key"))).is_ok());
    // A certificate close to its end loads, with a warning.
    pki.issue_with("soon", &["soon.test"], |p| {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs();
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after =
            p.not_before + std::time::Duration::from_secs(now - 1_577_836_800 + 10 * 86_400);
    });
    let loaded = load(&tls_config(&pki.path("soon.pem"), &pki.path("soon.key"))).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("expires in 9 days") || w.contains("expires in 10 days")),
        "{warnings:?}"
    );

    let cases = [
        (
            tls_config(&pki.path("missing.pem"), &pki.path("a.key")),
            "cannot read the certificate",
            "missing.pem",
        ),
        (
            tls_config(&pki.path("a.pem"), &pki.path("b.key")),
            "does not belong to the certificate",
            "b.key",
        ),
        (
            tls_config(&pki.path("old.pem"), &pki.path("old.key")),
            "expired on",
            "old.pem",
        ),
        (
            tls_config(&pki.path("future.pem"), &pki.path("future.key")),
            "not valid before",
            "future.pem",
        ),
        (
            tls_config(&pki.path("junk.pem"), &pki.path("a.key")),
            "holds no certificate",
            "junk.pem",
        ),
        (
            tls_config(&pki.path("a.pem"), &pki.path("a.pem")),
            "no PEM private key",
            "a.pem",
        ),
    ];
    for (src, want, file) in cases {
        let err = load(&src).expect_err(want);
        assert!(err.contains(want), "{want}: {err}");
        assert!(err.contains(file), "names {file}: {err}");
        assert!(err.contains("tls.toml:"), "located in the config: {err}");
        assert!(
            err.contains("zone[0].tls") || err.contains("zone.tls"),
            "{err}"
        );
    }

    // A TLS listener with nothing to serve.
    let err = load(
        "[server]\ntls_listen = [\"127.0.0.1:0\"]\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:1\"\n",
    )
    .expect_err("no certificate");
    assert!(err.contains("TLS listeners need a certificate"), "{err}");
    // A typo in the table is an unknown key with a suggestion.
    let src = tls_config(&pki.path("a.pem"), &pki.path("a.key")).replace("key =", "kye =");
    let err = load(&src).expect_err("typo");
    assert!(err.contains("did you mean `key`"), "{err}");
}

/// An `https://` origin on loopback (127.0.0.1 and, when available, ::1 on the same port)
/// answering every request `200 ok`; records the SNI of each handshake and counts
/// connections.
struct TlsOrigin {
    port: u16,
    snis: Arc<std::sync::Mutex<Vec<Option<String>>>>,
}

impl TlsOrigin {
    async fn start(pki: &Pki, file: &str) -> TlsOrigin {
        Self::start_with(pki, file, false).await
    }

    /// `h2`: offer only `h2` in ALPN and speak HTTP/2.
    async fn start_with(pki: &Pki, file: &str, h2: bool) -> TlsOrigin {
        let chain: Vec<CertificateDer<'static>> = {
            use rustls::pki_types::pem::PemObject;
            CertificateDer::pem_file_iter(pki.path(&format!("{file}.pem")))
                .unwrap()
                .map(|c| c.unwrap())
                .collect()
        };
        let key = {
            use rustls::pki_types::pem::PemObject;
            rustls::pki_types::PrivateKeyDer::from_pem_file(pki.path(&format!("{file}.key")))
                .unwrap()
        };
        let mut config = rustls::ServerConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .unwrap();
        if h2 {
            config.alpn_protocols = vec![b"h2".to_vec()];
        }
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
        let v4 = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = v4.local_addr().unwrap().port();
        let mut listeners = vec![v4];
        if let Ok(v6) = tokio::net::TcpListener::bind(("::1", port)).await {
            listeners.push(v6);
        }
        let snis = Arc::new(std::sync::Mutex::new(Vec::new()));
        for l in listeners {
            let (acceptor, snis) = (acceptor.clone(), snis.clone());
            tokio::spawn(async move {
                while let Ok((tcp, _)) = l.accept().await {
                    let (acceptor, snis) = (acceptor.clone(), snis.clone());
                    tokio::spawn(async move {
                        let Ok(mut tls) = acceptor.accept(tcp).await else {
                            return;
                        };
                        let sni = tls.get_ref().1.server_name().map(str::to_string);
                        snis.lock().unwrap().push(sni);
                        if h2 {
                            serve_h2_ok(tls).await;
                        } else {
                            serve_ok(&mut tls).await;
                        }
                    });
                }
            });
        }
        TlsOrigin { port, snis }
    }

    fn snis(&self) -> Vec<Option<String>> {
        self.snis.lock().unwrap().clone()
    }
}

/// Answers `200 ok` to each request head until the client closes.
async fn serve_ok(s: &mut (impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin)) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = Vec::new();
    loop {
        while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            buf.drain(..end + 4);
            if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok")
                .await
                .is_err()
            {
                return;
            }
        }
        match s.read_buf(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
    }
}

/// Answers `200 ok` over HTTP/2 to every stream until the client closes.
async fn serve_h2_ok(s: impl tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin) {
    let Ok(mut conn) = h2::server::handshake(s).await else {
        return;
    };
    while let Some(Ok((_req, mut respond))) = conn.accept().await {
        let response = http::Response::builder()
            .status(200)
            .header("content-length", 5)
            .body(())
            .unwrap();
        if let Ok(mut send) = respond.send_response(response, false) {
            let _ = send.send_data(bytes::Bytes::from_static(b"ok h2"), true);
        }
    }
}

async fn through(origin: &str, zone_extra: &str) -> (common::Response, Rampart) {
    let zones = format!(
        "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"{origin}\"\n{zone_extra}\n"
    );
    let r = Rampart::start_zones("", &zones).await;
    let (resp, _c) = r
        .request(b"GET /x HTTP/1.1\r\nHost: a.test\r\nAccept: application/json\r\n\r\n")
        .await;
    (resp, r)
}

/// The ErrorReason logged for the request `through` sent: the reason the client's page
/// does not show.
async fn logged_reason(r: &Rampart) -> String {
    r.log_lines(1).await[0]["ErrorReason"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn https_origins_are_verified_and_failures_are_525_or_526() {
    let pki = Pki::new();
    pki.issue("good", &["localhost"]);
    pki.issue("wrong-name", &["other.test"]);
    pki.issue_with("expired", &["localhost"], |p| {
        p.not_before = rcgen::date_time_ymd(2020, 1, 1);
        p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    });
    let ca = format!("origin_ca_file = \"{}\"", pki.path("ca.pem").display());
    std::fs::write(pki.path("ca.pem"), pki.ca.pem()).unwrap();
    let other_pki = Pki::new();
    let other_ca = format!(
        "origin_ca_file = \"{}\"",
        other_pki.path("ca.pem").display()
    );
    std::fs::write(other_pki.path("ca.pem"), other_pki.ca.pem()).unwrap();

    // Verified against the configured CA, SNI sent, connection pooled.
    let good = TlsOrigin::start(&pki, "good").await;
    let url = format!("https://localhost:{}", good.port);
    let (resp, r) = through(&url, &ca).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "ok");
    let (resp, _c) = r
        .request(b"GET /again HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        good.snis(),
        vec![Some("localhost".to_string())],
        "one handshake, reused; SNI is the origin's host"
    );

    // HTTP/2 to the origin over TLS: ALPN h2 chosen, one connection for several requests.
    let h2_origin = TlsOrigin::start_with(&pki, "good", true).await;
    let url = format!("https://localhost:{}", h2_origin.port);
    let (resp, r2) = through(&url, &format!("{ca}\norigin_protocol = \"h2\"")).await;
    assert_eq!(resp.status, 200, "{}", resp.text());
    assert_eq!(resp.text(), "ok h2");
    let (resp, _c) = r2
        .request(b"GET /again HTTP/1.1\r\nHost: a.test\r\n\r\n")
        .await;
    assert_eq!(resp.text(), "ok h2");
    assert_eq!(h2_origin.snis().len(), 1, "one shared connection");
    // An origin that does not accept h2 in ALPN: 525, saying so.
    let (resp, r) = through(
        &format!("https://localhost:{}", good.port),
        &format!("{ca}\norigin_protocol = \"h2\""),
    )
    .await;
    assert_eq!(resp.status, 525, "{}", resp.text());
    assert!(logged_reason(&r).await.contains("did not accept HTTP/2"));
    assert!(
        resp.json().get("detail").is_none(),
        "the reason is for the log only"
    );

    // Each way a certificate can be wrong is a 526 that says which.
    let wrong = TlsOrigin::start(&pki, "wrong-name").await;
    let expired = TlsOrigin::start(&pki, "expired").await;
    for (port, extra, detail) in [
        (
            wrong.port,
            ca.as_str(),
            "not issued for the origin's host name",
        ),
        (expired.port, ca.as_str(), "expired"),
        (
            good.port,
            other_ca.as_str(),
            "not signed by a trusted authority",
        ),
    ] {
        let (resp, r) = through(&format!("https://localhost:{port}"), extra).await;
        assert_eq!(resp.status, 526, "{detail}: {}", resp.text());
        let json = resp.json();
        assert_eq!(json["title"], "Error 526: Invalid SSL certificate");
        let reason = logged_reason(&r).await;
        assert!(reason.contains(detail), "{detail}: {reason}");
    }

    // Verification switched off: the untrusted origin is served.
    let (resp, _r) = through(
        &format!("https://localhost:{}", good.port),
        &format!("{other_ca}\norigin_tls_verify = false"),
    )
    .await;
    assert_eq!(resp.status, 200, "{}", resp.text());

    // An origin that answers the ClientHello in plain HTTP (an http port): 525.
    let plain = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let plain_addr = plain.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        while let Ok((mut s, _)) = plain.accept().await {
            let mut buf = [0u8; 1024];
            let _ = s.read(&mut buf).await;
            let _ = s
                .write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n")
                .await;
        }
    });
    let (resp, _r) = through(&format!("https://{plain_addr}"), &other_ca).await;
    assert_eq!(resp.status, 525, "{}", resp.text());
    assert_eq!(resp.json()["title"], "Error 525: SSL handshake failed");

    // An origin that accepts the connection and never answers the ClientHello: 525 once
    // origin_connect_timeout has passed.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_addr = silent.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = silent.accept().await {
            held.push(s);
        }
    });
    let (resp, r) = through(
        &format!("https://{silent_addr}"),
        &format!("{other_ca}\norigin_connect_timeout = \"300ms\""),
    )
    .await;
    assert_eq!(resp.status, 525, "{}", resp.text());
    assert!(
        logged_reason(&r)
            .await
            .contains("no TLS handshake within 300ms")
    );
}

#[test]
fn origin_tls_settings_are_checked_at_load() {
    let pki = Pki::new();
    let zone = |extra: &str| {
        format!(
            "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"https://127.0.0.1:8443\"\n{extra}\n"
        )
    };
    // Unverified origins load, with a warning naming the key.
    let loaded = load(&zone("origin_tls_verify = false")).unwrap();
    let warnings: Vec<String> = loaded.warnings.iter().map(|w| w.to_string()).collect();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("origin_tls_verify") && w.contains("not verified")),
        "{warnings:?}"
    );
    // A CA file that is missing, or holds no certificate, is an error naming it.
    let err = load(&zone(&format!(
        "origin_ca_file = \"{}\"",
        pki.path("nope.pem").display()
    )))
    .unwrap_err();
    assert!(
        err.contains("cannot read the CA file") && err.contains("nope.pem"),
        "{err}"
    );
    std::fs::write(pki.path("empty.pem"), "").unwrap();
    let err = load(&zone(&format!(
        "origin_ca_file = \"{}\"",
        pki.path("empty.pem").display()
    )))
    .unwrap_err();
    assert!(err.contains("no usable CA certificate"), "{err}");
    let err = load(&zone("origin_protocol = \"h3\"")).unwrap_err();
    assert!(
        err.contains("unknown value `h3`; one of: http1, http/1.1, h2"),
        "{err}"
    );
    // On an http:// origin the settings do nothing, and the warning says so.
    let src = zone("origin_tls_verify = false").replace("https://", "http://");
    let loaded = load(&src).unwrap();
    assert!(
        loaded
            .warnings
            .iter()
            .any(|w| w.to_string().contains("has no effect")),
    );
}

/// HTTP/2 clients reuse a connection for another host its certificate covers (RFC 9113
/// §9.1.1): such a host is served; a host with another certificate gets 421 (retry on a new
/// connection, RFC 9110 §15.5.20), where HTTP/1.1 gets 403.
#[tokio::test]
async fn http2_connection_reuse_across_hosts_of_one_certificate_is_served() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    pki.issue("ab", &["a.test", "b.test"]);
    pki.issue("c", &["c.test"]);
    let zones = zone("ab", &["a.test", "b.test"], origin.addr, &pki.tls("ab"))
        + &zone("c", &["c.test"], origin.addr, &pki.tls("c"));
    let r = Rampart::start_zones(TLS_LISTEN, &zones).await;
    let client = pki.connect_h2(tls_addr(&r), "a.test").await;
    assert_eq!(h2_status(&client, "a.test").await, 200);
    assert_eq!(h2_status(&client, "b.test").await, 200);
    assert_eq!(h2_status(&client, "c.test").await, 421);
    // The connection still serves its own host afterwards.
    assert_eq!(h2_status(&client, "a.test").await, 200);
    assert_eq!(origin.received().len(), 3);
    let metrics = r.metrics().await;
    assert!(
        metrics.contains("rampart_sni_mismatches_total 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn an_https_only_configuration_loads_and_serves() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    pki.issue("a", &["a.test"]);
    let zones = zone("a", &["a.test"], origin.addr, &pki.tls("a"));
    let r =
        Rampart::start_listening("listen = []\ntls_listen = [\"127.0.0.1:0\"]\n", "", &zones).await;
    let addrs = &r.server.as_ref().unwrap().local_addrs;
    assert_eq!(addrs.len(), 1, "one listener: the TLS one");
    let s = pki.connect(addrs[0], "a.test").await.unwrap();
    let mut c = Client::over(s);
    c.send(b"GET / HTTP/1.1\r\nHost: a.test\r\n\r\n").await;
    assert_eq!(c.response(false).await.status, 200);
    // Without any address it does not load, and says so at the key.
    let e = load("[server]\nlisten = []\n\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:9\"\n")
        .unwrap_err();
    assert!(
        e.contains("server.listen") && e.contains("no address to listen on"),
        "{e}"
    );
}
