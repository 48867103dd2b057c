//! HTTP/2 on the client side: cleartext with prior knowledge and over TLS (ALPN), through the
//! same pipeline as HTTP/1.1; the same limits and status codes; RFC 9113 malformations and
//! floods refused with the stream or connection errors the RFC prescribes.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::http2::*;
use common::{Behaviour, Origin, PATIENCE, Rampart};
use http::Request;
use tokio::net::TcpStream;

#[tokio::test]
async fn h2c_requests_go_through_the_pipeline_to_the_origin() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut c = h2c(r.addr).await;
    let resp = send(&mut c, get("http://example.test/hello?x=1"), None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"GET /hello?x=1 HTTP/1.1");
    assert!(resp.headers.get("rampart-ray").is_some());
    assert!(resp.headers.get("connection").is_none());
    // The origin sent no Date: one is added (RFC 9110 §6.6.1).
    let date = resp.headers.get("date").expect("a Date field");
    assert!(httpdate::parse_http_date(date.to_str().unwrap()).is_ok());
    let got = origin.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].header("host"), vec!["example.test"]);
    assert_eq!(got[0].header("x-forwarded-proto"), vec!["http"]);

    // Many streams on one connection, concurrently.
    let mut pending = Vec::new();
    for i in 0..20 {
        let mut c = c.clone();
        pending.push(tokio::spawn(async move {
            send(&mut c, get(&format!("http://example.test/s{i}")), None).await
        }));
    }
    for (i, p) in pending.into_iter().enumerate() {
        let resp = p.await.unwrap();
        assert_eq!(resp.status, 200);
        assert_eq!(resp.body, format!("GET /s{i} HTTP/1.1").as_bytes());
    }

    let lines = r.log_lines(21).await;
    assert_eq!(lines.len(), 21);
    assert!(lines.iter().all(|l| l["ClientRequestProtocol"] == "HTTP/2"));
    let metrics = r.metrics().await;
    assert!(
        metrics.contains("protocol=\"HTTP/2\""),
        "requests counted by protocol: {metrics}"
    );
}

#[tokio::test]
async fn request_bodies_stream_to_the_origin_intact() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut c = h2c(r.addr).await;
    let body: Vec<u8> = (0..300_000u32).map(|i| (i % 251) as u8).collect();
    // With Content-Length, and without (re-framed as chunked towards the origin).
    let with_length = Request::post("http://example.test/up")
        .header("content-length", body.len())
        .body(())
        .unwrap();
    let resp = send(&mut c, with_length, Some(body.clone())).await;
    assert_eq!(resp.status, 200);
    // Expect: 100-continue is honoured (h2's client waits for nothing, but the origin must not
    // see the field, as over HTTP/1.1).
    let expecting = Request::post("http://example.test/up1")
        .header("expect", "100-continue")
        .header("content-length", 5)
        .body(())
        .unwrap();
    let resp = send(&mut c, expecting, Some(b"hello".to_vec())).await;
    assert_eq!(resp.status, 200);
    let without = Request::post("http://example.test/up2").body(()).unwrap();
    let resp = send(&mut c, without, Some(body.clone())).await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    assert_eq!(got.len(), 3);
    assert_eq!(got[0].body, body);
    assert_eq!(
        got[0].header("content-length"),
        vec![body.len().to_string()]
    );
    assert_eq!(got[1].body, b"hello");
    assert!(got[1].header("expect").is_empty());
    assert_eq!(got[2].body, body);
    assert_eq!(got[2].header("transfer-encoding"), vec!["chunked"]);
}

#[tokio::test]
async fn the_same_limits_and_rules_give_the_same_status_codes() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.custom_rule]]
expression = 'http.request.uri.path eq "/admin"'
action = "block"
[[zone.rate_limit]]
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src"]
period = 60
requests_per_period = 1
mitigation_timeout = 0
"#;
    let rest = "[limits]\nmax_uri_bytes = 100\nmax_headers = 10\nmax_body_bytes = 1000\n";
    // [limits] comes before the zones.
    let src_zone = format!(
        "{rest}[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{}\"\n{zone}",
        origin.addr
    );
    let r = Rampart::start_zones("", &src_zone).await;
    let mut c = h2c(r.addr).await;
    let json = |uri: &str| {
        Request::get(uri)
            .header("accept", "application/json")
            .body(())
            .unwrap()
    };

    let resp = send(
        &mut c,
        json(&format!("http://example.test/{}", "a".repeat(200))),
        None,
    )
    .await;
    assert_eq!(resp.status, 414);
    assert_eq!(resp.json()["status"], 414);

    let mut many = Request::get("http://example.test/").header("accept", "application/json");
    for i in 0..20 {
        many = many.header(format!("x-h{i}"), "v");
    }
    let resp = send(&mut c, many.body(()).unwrap(), None).await;
    assert_eq!(resp.status, 431);
    assert!(resp.json()["detail"].as_str().unwrap().contains("header"));

    let big = Request::post("http://example.test/up")
        .header("accept", "application/json")
        .header("content-length", 5000)
        .body(())
        .unwrap();
    let resp = send(&mut c, big, Some(vec![b'x'; 5000])).await;
    assert_eq!(resp.status, 413);

    let resp = send(&mut c, json("http://example.test/admin"), None).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error_code"], 1020);

    assert_eq!(
        send(&mut c, json("http://example.test/login"), None)
            .await
            .status,
        200
    );
    let resp = send(&mut c, json("http://example.test/login"), None).await;
    assert_eq!(resp.status, 429);
    let retry: u64 = resp.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
    assert!(resp.headers.get("ratelimit-policy").is_some());

    let resp = send(&mut c, json("http://other.test/"), None).await;
    assert_eq!(resp.status, 409);

    // HEAD: the status and fields, no body.
    let head = Request::head("http://example.test/admin").body(()).unwrap();
    let resp = send(&mut c, head, None).await;
    assert_eq!(resp.status, 403);
    assert!(resp.body.is_empty());
    assert_eq!(
        origin.received().len(),
        1,
        "only the first /login reached the origin"
    );
}

#[tokio::test]
async fn malformed_requests_get_the_stream_error_rfc_9113_prescribes() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let cases: Vec<(&str, Vec<u8>)> = vec![
        (
            "uppercase field name",
            block(&[GOOD, &[("X-Upper", "1")]].concat()),
        ),
        (
            "connection-specific field",
            block(&[GOOD, &[("connection", "keep-alive")]].concat()),
        ),
        (
            "TE other than trailers",
            block(&[GOOD, &[("te", "gzip")]].concat()),
        ),
        (
            "missing :path",
            block(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":authority", "example.test"),
            ]),
        ),
        (
            "duplicated :method",
            block(&[GOOD, &[(":method", "POST")]].concat()),
        ),
        (
            "pseudo-header after a regular field",
            block(&[
                (":method", "GET"),
                (":scheme", "http"),
                ("x-a", "1"),
                (":path", "/"),
                (":authority", "example.test"),
            ]),
        ),
        (
            "a :path byte the http crate refuses (browsers encode it)",
            block(&[
                (":method", "GET"),
                (":scheme", "http"),
                (":path", "/a<b"),
                (":authority", "example.test"),
            ]),
        ),
    ];
    for (what, fields) in cases {
        let mut raw = Raw::open(r.addr).await;
        raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &fields))
            .await
            .unwrap();
        let (kind, _, _, payload) = raw.answer(1).await.expect(what);
        match kind {
            RST_STREAM => assert_eq!(error_code(&payload, 0), PROTOCOL_ERROR, "{what}"),
            GOAWAY => assert_eq!(error_code(&payload, 4), PROTOCOL_ERROR, "{what}"),
            other => panic!("{what}: expected a stream error, got frame type {other}"),
        }
    }

    // Content-Length that disagrees with the DATA frames.
    let mut raw = Raw::open(r.addr).await;
    let fields = block(&[
        (":method", "POST"),
        (":scheme", "http"),
        (":path", "/cl"),
        (":authority", "example.test"),
        ("content-length", "10"),
    ]);
    raw.send(&frame(HEADERS, END_HEADERS, 1, &fields))
        .await
        .unwrap();
    raw.send(&frame(DATA, END_STREAM, 1, b"12345"))
        .await
        .unwrap();
    let mut reset = None;
    while let Some((kind, _, stream, payload)) = raw.frame().await {
        if kind == RST_STREAM && stream == 1 {
            reset = Some(error_code(&payload, 0));
            break;
        }
        if kind == GOAWAY {
            reset = Some(error_code(&payload, 4));
            break;
        }
    }
    assert_eq!(reset, Some(PROTOCOL_ERROR), "content-length mismatch");
    // None of these reached the origin as a complete request.
    assert!(
        origin
            .received()
            .iter()
            .all(|q| q.request_line() != "POST /cl HTTP/1.1" || q.body.len() == 10)
    );
}

#[tokio::test]
async fn the_server_announces_its_stream_and_header_limits() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut raw = Raw::open(r.addr).await;
    let (kind, flags, _, payload) = raw.frame().await.unwrap();
    assert_eq!(
        (kind, flags & 1),
        (SETTINGS, 0),
        "the server's SETTINGS come first"
    );
    let settings: Vec<(u16, u32)> = payload
        .chunks(6)
        .map(|s| {
            (
                u16::from_be_bytes([s[0], s[1]]),
                u32::from_be_bytes([s[2], s[3], s[4], s[5]]),
            )
        })
        .collect();
    assert!(
        settings.contains(&(0x3, rampart::downstream::h2::MAX_CONCURRENT_STREAMS)),
        "{settings:?}"
    );
    assert!(
        settings.iter().any(|&(id, v)| id == 0x6
            && v as usize >= rampart::downstream::h2::MIN_ANNOUNCED_HEADER_LIST),
        "MAX_HEADER_LIST_SIZE well above rampart's own limit: {settings:?}"
    );
}

#[tokio::test]
async fn h2_over_tls_is_chosen_by_alpn() {
    // Certificates generated at test time.
    let origin = Origin::start(Behaviour::Echo).await;
    let key = rcgen::KeyPair::generate().unwrap();
    let cert = rcgen::CertificateParams::new(vec!["example.test".to_string()])
        .unwrap()
        .self_signed(&key)
        .unwrap();
    let dir = std::env::temp_dir().join(format!("rampart-h2-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("c.pem"), cert.pem()).unwrap();
    std::fs::write(dir.join("c.key"), key.serialize_pem()).unwrap();
    let tls = format!(
        "tls = {{ cert = \"{}\", key = \"{}\" }}",
        dir.join("c.pem").display(),
        dir.join("c.key").display()
    );
    let r = Rampart::start_with(origin.addr, "tls_listen = [\"127.0.0.1:0\"]", &tls, "").await;
    let tls_addr = r.server.as_ref().unwrap().local_addrs[1];
    let mut roots = rustls::RootCertStore::empty();
    roots.add(cert.der().clone()).unwrap();
    let mut config = rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    let connector = tokio_rustls::TlsConnector::from(std::sync::Arc::new(config));
    let tcp = TcpStream::connect(tls_addr).await.unwrap();
    let name = rustls::pki_types::ServerName::try_from("example.test").unwrap();
    let tls_stream = connector.connect(name, tcp).await.unwrap();
    assert_eq!(tls_stream.get_ref().1.alpn_protocol(), Some(&b"h2"[..]));
    let (client, conn) = h2::client::handshake(tls_stream).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    let mut client = client;
    let resp = send(&mut client, get("https://example.test/tls"), None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"GET /tls HTTP/1.1");
    assert_eq!(
        origin.received()[0].header("x-forwarded-proto"),
        vec!["https"]
    );
    // An :authority that differs from SNI but would get the same certificate (here the same
    // zone's, through its wildcard host) is served, as browsers reuse connections so (421
    // for another certificate's host: tests/tls.rs).
    let resp = send(&mut client, get("https://www.example.test/"), None).await;
    assert_eq!(resp.status, 200);
    let lines = r.log_lines(2).await;
    assert_eq!(lines.len(), 2);
    assert!(lines.iter().all(|l| l["ClientRequestProtocol"] == "HTTP/2"));
    assert!(lines.iter().all(|l| l["ClientRequestScheme"] == "https"));
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn custom_pages_and_the_body_timeout_work_as_over_http1() {
    let (dir, zone) = common::error_pages(
        "<h1>blocked ::ERROR_CODE::</h1>",
        "<h1>log in (::ERROR_CODE::)</h1>",
    );
    let origin = common::unauthorized_origin().await;
    let r = Rampart::start_with(origin.addr, "client_body_timeout = \"300ms\"", &zone, "").await;
    let mut c = h2c(r.addr).await;
    let html = |uri: &str| {
        Request::get(uri)
            .header("accept", "text/html")
            .body(())
            .unwrap()
    };
    let resp = send(&mut c, html("http://example.test/blocked"), None).await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.body, b"<h1>blocked 1020</h1>");
    let resp = send(&mut c, html("http://example.test/private"), None).await;
    assert_eq!(resp.status, 401);
    assert_eq!(resp.body, b"<h1>log in (401)</h1>");
    assert_eq!(resp.headers["www-authenticate"], "Basic realm=\"x\"");
    assert!(
        resp.headers["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/html")
    );

    // A body that stops coming: 408 once client_body_timeout has passed between DATA frames.
    let slow = Request::post("http://example.test/slow")
        .header("content-length", 100)
        .header("accept", "application/json")
        .body(())
        .unwrap();
    let mut ready = c.clone().ready().await.unwrap();
    let (response, mut stream) = ready.send_request(slow, false).unwrap();
    stream
        .send_data(Bytes::from_static(b"only part"), false)
        .unwrap();
    let response = tokio::time::timeout(PATIENCE, response)
        .await
        .expect("an answer in time")
        .unwrap();
    assert_eq!(response.status(), 408);
    drop(stream);
    let _ = std::fs::remove_dir_all(dir);
}

#[tokio::test]
async fn an_idle_connection_gets_goaway_then_closes() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(origin.addr, "keepalive_timeout = \"300ms\"", "", "").await;
    let mut raw = Raw::open(r.addr).await;
    let mut goaway = None;
    while let Some((kind, _, _, payload)) = raw.frame().await {
        if kind == GOAWAY {
            goaway = Some(error_code(&payload, 4));
            break;
        }
    }
    assert_eq!(goaway, Some(0), "GOAWAY with NO_ERROR");
    // Then the server closes the connection.
    while let Some((kind, ..)) = raw.frame().await {
        assert_ne!(kind, HEADERS, "no response without a request");
    }
}

#[tokio::test]
async fn a_client_that_ignores_goaway_is_dropped() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(
        origin.addr,
        "keepalive_timeout = \"200ms\"\nclient_header_timeout = \"300ms\"",
        "",
        "",
    )
    .await;
    let mut raw = Raw::open(r.addr).await;
    raw.ack_pings = false;
    let mut saw_goaway = false;
    // Ends (None) when the server drops the connection; a hang would panic after PATIENCE.
    while let Some((kind, ..)) = raw.frame().await {
        saw_goaway |= kind == GOAWAY;
    }
    assert!(saw_goaway);
}

/// RFC 9110 §15.2: a 103 from the origin reaches an HTTP/2 client as an informational
/// response before the final one; a 101 nobody asked for is a 502.
#[tokio::test]
async fn interim_responses_over_http2() {
    let origin = Origin::start(Behaviour::Raw(
        b"HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            .to_vec(),
    ))
    .await;
    let r = Rampart::start(origin.addr).await;
    let c = h2c(r.addr).await;
    let mut ready = c.clone().ready().await.unwrap();
    let (mut response, _) = ready
        .send_request(get("http://example.test/"), true)
        .unwrap();
    let early = tokio::time::timeout(
        PATIENCE,
        std::future::poll_fn(|cx| response.poll_informational(cx)),
    )
    .await
    .expect("an informational response in time")
    .expect("an informational response")
    .unwrap();
    assert_eq!(early.status(), 103);
    assert_eq!(early.headers()["link"], "</s.css>; rel=preload");
    let resp = tokio::time::timeout(PATIENCE, response)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);

    let origin = Origin::start(Behaviour::Raw(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n".to_vec(),
    ))
    .await;
    let r = Rampart::start(origin.addr).await;
    let mut c = h2c(r.addr).await;
    let resp = send(&mut c, get("http://example.test/"), None).await;
    assert_eq!(resp.status, 502);
}

/// keepalive_timeout also closes a connection that served requests and then went idle (the
/// idle timer was armed only while no stream was open at the moment of waiting).
#[tokio::test]
async fn a_connection_idle_after_a_request_gets_goaway() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(origin.addr, "keepalive_timeout = \"300ms\"", "", "").await;
    let mut raw = Raw::open(r.addr).await;
    raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(GOOD)))
        .await
        .unwrap();
    let goaway = tokio::time::timeout(PATIENCE, async {
        while let Some((kind, _, _, _)) = raw.frame().await {
            if kind == GOAWAY {
                return true;
            }
        }
        false
    })
    .await;
    assert_eq!(goaway, Ok(true), "no GOAWAY after keepalive_timeout");
}

/// RFC 9113 §8.2.3: cookie fields split over several lines are joined with "; " for the
/// HTTP/1.1 origin; RFC 9110 §7.6.3: Via names the protocol received.
#[tokio::test]
async fn split_cookies_are_joined_and_via_says_http2() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut c = h2c(r.addr).await;
    let req = Request::get("http://example.test/c")
        .header("cookie", "a=1")
        .header("cookie", "b=2")
        .body(())
        .unwrap();
    let resp = send(&mut c, req, None).await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    assert_eq!(got[0].header("cookie"), ["a=1; b=2"]);
    assert_eq!(got[0].header("via"), ["2 rampart"]);
}

/// RFC 9110 §8.6: an origin's Content-Length as a list or repeated reaches an HTTP/2 client
/// as one number (a client refuses the stream otherwise).
#[tokio::test]
async fn content_length_lists_reach_http2_clients_as_one_value() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nContent-Length: 5, 5\r\n\r\nhello"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\nhello",
    ] {
        let origin = Origin::start(Behaviour::Raw(raw.to_vec())).await;
        let r = Rampart::start(origin.addr).await;
        let mut c = h2c(r.addr).await;
        let resp = send(&mut c, get("http://example.test/"), None).await;
        assert_eq!(resp.status, 200);
        let lengths: Vec<_> = resp.headers.get_all("content-length").iter().collect();
        assert_eq!(lengths, ["5"]);
        assert_eq!(resp.body, b"hello");
    }
}

/// One upload whose origin never reads must not stall the other uploads on the connection:
/// the connection's window holds every stream's.
#[tokio::test]
async fn a_stalled_upload_does_not_stall_the_others() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let stall_addr = listener.local_addr().unwrap();
    let holder = tokio::spawn(async move {
        let mut held = vec![];
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    let healthy = Origin::start(Behaviour::Echo).await;
    let zones = format!(
        "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://{stall_addr}\"\n\
         [[zone]]\nname = \"b\"\nhosts = [\"b.test\"]\norigin = \"http://{}\"\n",
        healthy.addr
    );
    let r = Rampart::start_zones("", &zones).await;
    let c = h2c(r.addr).await;
    // Stream 1: up to 64 MB to the origin that never reads (far more than the socket buffers
    // between rampart and it hold).
    let c1 = c.clone();
    let stalled = tokio::spawn(async move {
        let mut ready = c1.ready().await.unwrap();
        let req = Request::post("http://a.test/up").body(()).unwrap();
        let (_resp, mut stream) = ready.send_request(req, false).unwrap();
        let piece = Bytes::from(vec![b'x'; 16 * 1024]);
        for _ in 0..4096 {
            stream.reserve_capacity(piece.len());
            let mut p = piece.clone();
            while !p.is_empty() {
                let Some(Ok(n)) = std::future::poll_fn(|cx| stream.poll_capacity(cx)).await else {
                    return;
                };
                let part = p.split_to(n.min(p.len()));
                if stream.send_data(part, false).is_err() {
                    return;
                }
            }
        }
    });
    // Let stream 1 fill what it can.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut c2 = c.clone();
    let req = Request::post("http://b.test/small").body(()).unwrap();
    let resp = send(&mut c2, req, Some(vec![b'y'; 100_000])).await;
    assert_eq!(resp.status, 200);
    assert_eq!(healthy.received()[0].body.len(), 100_000);
    stalled.abort();
    holder.abort();
}

/// A header list over rampart's limit gets rampart's own 431 and its explanation, not a stream
/// refused by h2 (curl retries a refused stream, then fails with no status at all): h2 is told
/// to take lists well past rampart's limit, so that rampart's check is the one that answers.
#[tokio::test]
async fn a_header_list_far_over_the_limit_gets_rampart_s_own_431() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut c = h2c(r.addr).await;
    for size in [70 * 1024, 300 * 1024] {
        let request = Request::get("http://example.test/")
            .header("accept", "application/json")
            .header("x-big", "v".repeat(size))
            .body(())
            .unwrap();
        let resp = send(&mut c, request, None).await;
        assert_eq!(resp.status, 431, "{size}");
        assert!(
            resp.json()["detail"].as_str().unwrap().contains("header"),
            "{size}"
        );
    }
    assert!(origin.received().is_empty());
}
