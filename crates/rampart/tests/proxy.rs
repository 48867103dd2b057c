//! Forwarding: what the origin receives, what the client gets back, pipelining, upgrades,
//! zone routing and pass-through of origin errors.

mod common;

use std::sync::Arc;

use common::{Behaviour, Origin, Rampart, Received};

/// An origin answering every request with `raw`, and rampart in front of it.
async fn behind_raw(raw: Vec<u8>) -> (Origin, Rampart) {
    let origin = Origin::start(Behaviour::Raw(raw)).await;
    let rampart = Rampart::start(origin.addr).await;
    (origin, rampart)
}

fn reply(status: &str, extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 {status}\r\n{extra}Content-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

#[tokio::test]
async fn request_is_reserialised_without_hop_by_hop_fields_and_with_forwarding_fields() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, _c) = rampart
        .request(
            b"GET /path?q=1 HTTP/1.1\r\nHost: example.test\r\nConnection: keep-alive, X-Secret\r\nX-Secret: s\r\n\
              Keep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers\r\nTrailer: X-T\r\n\
              X-Forwarded-For: 198.51.100.7\r\nX-Forwarded-Proto: https\r\nUser-Agent: t/1\r\n\r\n",
        )
        .await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    assert_eq!(got.len(), 1);
    let r = &got[0];
    assert_eq!(r.request_line(), "GET /path?q=1 HTTP/1.1");
    for gone in [
        "connection",
        "x-secret",
        "keep-alive",
        "proxy-connection",
        "te",
        "trailer",
    ] {
        assert!(
            r.header(gone).is_empty(),
            "{gone} was forwarded:\n{}",
            r.head
        );
    }
    assert_eq!(r.header("host"), ["example.test"]);
    assert_eq!(r.header("user-agent"), ["t/1"]);
    assert_eq!(r.header("x-forwarded-for"), ["198.51.100.7, 127.0.0.1"]);
    assert_eq!(r.header("x-forwarded-proto"), ["http"]);
    assert_eq!(
        r.header("forwarded"),
        ["for=127.0.0.1;host=\"example.test\";proto=http"]
    );
    assert_eq!(
        r.header("rampart-ray"),
        [resp.header("rampart-ray").unwrap()]
    );
}

#[tokio::test]
async fn absolute_form_is_forwarded_in_origin_form() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, _c) = rampart
        .request(b"GET http://example.test/a?b HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(origin.received()[0].request_line(), "GET /a?b HTTP/1.1");
    // RFC 9112 §3.2.1: an empty path is sent as "/", with the query kept after it.
    // RFC 9112 §3.2.4: OPTIONS about the whole server goes on as `*`.
    for (sent, forwarded) in [
        ("GET http://example.test", "GET / HTTP/1.1"),
        ("GET http://example.test?b=1", "GET /?b=1 HTTP/1.1"),
        ("GET http://example.test:80?", "GET /? HTTP/1.1"),
        ("OPTIONS http://example.test", "OPTIONS * HTTP/1.1"),
    ] {
        let raw = format!("{sent} HTTP/1.1\r\nHost: example.test\r\n\r\n");
        let (resp, _c) = rampart.request(raw.as_bytes()).await;
        assert_eq!(resp.status, 200, "{sent}");
        let got = origin.received();
        assert_eq!(got.last().unwrap().request_line(), forwarded, "{sent}");
    }
}

#[tokio::test]
async fn bodies_are_forwarded_with_their_framing() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, mut c) = rampart
        .request(b"POST /a HTTP/1.1\r\nHost: example.test\r\nContent-Length: 11\r\n\r\nhello world")
        .await;
    assert_eq!(resp.status, 200);
    c.send(b"POST /b HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5;ext=1\r\nhello\r\n6\r\n world\r\n0\r\nX-Trailer: t\r\n\r\n")
        .await;
    assert_eq!(c.response(false).await.status, 200);
    let got = origin.received();
    assert_eq!(got[0].body, b"hello world");
    assert_eq!(got[1].body, b"hello world");
    assert_eq!(got[1].header("transfer-encoding"), ["chunked"]);
    assert!(got[1].header("content-length").is_empty());
}

#[tokio::test]
async fn expect_100_continue_is_answered_only_when_forwarding() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let mut c = rampart.client().await;
    c.send(b"PUT /up HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n").await;
    let interim = c.read_raw_until(b"\r\n\r\n").await;
    assert_eq!(interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    c.send(b"data").await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    assert_eq!(got[0].body, b"data");
    assert!(got[0].header("expect").is_empty());
}

#[tokio::test]
async fn pipelined_requests_are_answered_in_order() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let mut c = rampart.client().await;
    c.send(b"GET /1 HTTP/1.1\r\nHost: example.test\r\n\r\nGET /2 HTTP/1.1\r\nHost: example.test\r\n\r\nHEAD /3 HTTP/1.1\r\nHost: example.test\r\n\r\nGET /4 HTTP/1.1\r\nHost: example.test\r\n\r\n").await;
    assert_eq!(c.response(false).await.text(), "GET /1 HTTP/1.1");
    assert_eq!(c.response(false).await.text(), "GET /2 HTTP/1.1");
    let head = c.response(true).await;
    assert!(head.body.is_empty());
    assert_eq!(c.response(false).await.text(), "GET /4 HTTP/1.1");
}

#[tokio::test]
async fn body_that_looks_like_a_request_is_only_a_body() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let smuggled = "GET /admin HTTP/1.1\r\nHost: example.test\r\n\r\n";
    let raw = format!(
        "POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: {}\r\n\r\n{smuggled}",
        smuggled.len()
    );
    let (resp, _c) = rampart.request(raw.as_bytes()).await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    assert_eq!(got.len(), 1, "exactly one request reaches the origin");
    assert_eq!(got[0].body, smuggled.as_bytes());
}

#[tokio::test]
async fn cl_te_smuggling_attempt_reaches_the_origin_not_at_all() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, mut c) = rampart
        .request(b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 400);
    assert!(c.is_closed().await);
    assert!(origin.received().is_empty());
}

/// A reason phrase in obs-text (here ISO-8859-1, not UTF-8) reaches the client byte for byte.
#[tokio::test]
async fn reason_phrases_are_relayed_byte_for_byte() {
    let (_origin, rampart) =
        behind_raw(b"HTTP/1.1 404 N\xe3o Encontrado\r\nContent-Length: 2\r\n\r\nno".to_vec()).await;
    let mut c = rampart.client().await;
    c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    let raw = c.read_raw_until(b"\r\n").await;
    assert!(
        raw.starts_with(b"HTTP/1.1 404 N\xe3o Encontrado\r\n"),
        "{:?}",
        String::from_utf8_lossy(&raw)
    );
}

#[tokio::test]
async fn origin_errors_pass_through_untouched() {
    let origin = Origin::start(Behaviour::With(Arc::new(|r: &Received| {
        let path = r.request_line().split(' ').nth(1).unwrap_or("").to_string();
        match path.as_str() {
            "/401" => reply(
                "401 Unauthorized",
                "WWW-Authenticate: Basic realm=\"x\"\r\n",
                "who?",
            ),
            "/405" => reply("405 Method Not Allowed", "Allow: GET, HEAD\r\n", "no"),
            "/407" => reply(
                "407 Proxy Authentication Required",
                "Proxy-Authenticate: Basic realm=\"p\"\r\n",
                "p",
            ),
            "/429" => reply("429 Too Many Requests", "Retry-After: 17\r\n", "slow"),
            "/503" => reply(
                "503 Service Unavailable",
                "Retry-After: 30\r\nX-Custom: 1\r\n",
                "down",
            ),
            _ => reply("418 I'm a teapot", "", "tea"),
        }
    })))
    .await;
    let rampart = Rampart::start(origin.addr).await;
    let cases = [
        ("/401", 401, "www-authenticate", "Basic realm=\"x\"", "who?"),
        ("/405", 405, "allow", "GET, HEAD", "no"),
        ("/407", 407, "proxy-authenticate", "Basic realm=\"p\"", "p"),
        ("/429", 429, "retry-after", "17", "slow"),
        ("/503", 503, "retry-after", "30", "down"),
    ];
    let mut c = rampart.client().await;
    for (path, status, header, value, body) in cases {
        c.send(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        let resp = c.response(false).await;
        assert_eq!(resp.status, status);
        assert_eq!(resp.header(header).as_deref(), Some(value), "{}", resp.head);
        assert_eq!(resp.text(), body);
        assert!(
            resp.header("cache-control").is_none(),
            "no-store is only for generated errors"
        );
        assert!(resp.header("rampart-ray").is_some());
    }
    let (resp, _) = rampart
        .request(b"GET /x HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(
        (resp.status, resp.head.lines().next().unwrap()),
        (418, "HTTP/1.1 418 I'm a teapot")
    );
}

/// A response to HEAD has no body, and keeps the Content-Length of the one not sent: as one
/// number even when the origin sent a list (RFC 9110 §8.6).
#[tokio::test]
async fn head_response_never_carries_a_body() {
    for length in ["5", "5, 5"] {
        let (_origin, rampart) =
            behind_raw(format!("HTTP/1.1 200 OK\r\nContent-Length: {length}\r\n\r\n").into_bytes())
                .await;
        let mut c = rampart.client().await;
        c.send(b"HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        let resp = c.response(true).await;
        assert_eq!(resp.status, 200);
        assert_eq!(resp.headers("content-length"), ["5"], "{length}");
        c.send(b"HEAD / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(
            c.response(true).await.status,
            200,
            "the connection stays usable"
        );
    }
}

#[tokio::test]
async fn chunked_and_close_delimited_origin_bodies_are_reframed() {
    let origin = Origin::start(Behaviour::With(Arc::new(|r: &Received| {
        if r.request_line().contains("/chunked") {
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n3\r\ndef\r\n0\r\n\r\n".to_vec()
        } else {
            b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nuntil close".to_vec()
        }
    })))
    .await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, _c) = rampart
        .request(b"GET /chunked HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.header("transfer-encoding").as_deref(), Some("chunked"));
    assert_eq!(resp.text(), "abcdef");
    let (resp, _c) = rampart
        .request(b"GET /chunked HTTP/1.0\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.text(), "abcdef");
    assert!(
        resp.header("transfer-encoding").is_none(),
        "HTTP/1.0 clients get a close-delimited body"
    );
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
}

#[tokio::test]
async fn origin_connections_are_pooled_and_kept_alive() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    for _ in 0..5 {
        let (resp, _c) = rampart
            .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(resp.status, 200);
    }
    assert_eq!(origin.received().len(), 5);
    assert_eq!(origin.connection_count(), 1);
}

#[tokio::test]
async fn zones_are_chosen_by_host_exact_before_wildcard() {
    let a = Origin::start(Behaviour::Raw(reply("200 OK", "", "zone-a"))).await;
    let b = Origin::start(Behaviour::Raw(reply("200 OK", "", "zone-b"))).await;
    let rest = format!(
        "[[zone]]\nname = \"b\"\nhosts = [\"www.example.test\"]\norigin = \"http://{}\"\n",
        b.addr
    );
    let rampart = Rampart::start_with(a.addr, "", "", &rest).await;
    for (host, want) in [
        ("example.test", "zone-a"),
        ("x.y.example.test", "zone-a"),
        ("www.example.test", "zone-b"),
        ("WWW.Example.Test:80", "zone-b"),
    ] {
        let (resp, _c) = rampart
            .request(format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n").as_bytes())
            .await;
        assert_eq!(resp.text(), want, "{host}");
    }
}

#[tokio::test]
async fn unknown_host_gets_409_1001_and_ip_host_gets_403_1003() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, _c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: other.test\r\nAccept: application/json\r\n\r\n")
        .await;
    assert_eq!(resp.status, 409);
    let j = resp.json();
    assert_eq!(j["error_code"], 1001);
    assert_eq!(j["status"], 409);
    assert_eq!(j["retryable"], false);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    let (resp, _c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8080\r\n\r\n")
        .await;
    assert_eq!(resp.status, 403);
    assert!(resp.text().contains("Error 1003"));
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let (resp, _c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: [::1]\r\nAccept: text/plain\r\n\r\n")
        .await;
    assert_eq!(resp.status, 403);
    assert!(resp.text().starts_with("Error 1003"));
    assert!(origin.received().is_empty());
}

#[tokio::test]
async fn websocket_upgrade_is_tunnelled() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let head = String::from_utf8_lossy(&got).to_lowercase();
        assert!(
            head.contains("upgrade: websocket") && head.contains("connection: upgrade"),
            "{head}"
        );
        s.write_all(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n").await.unwrap();
        // Echo whatever comes next, prefixed.
        let n = s.read(&mut buf).await.unwrap();
        let mut out = b"echo:".to_vec();
        out.extend_from_slice(&buf[..n]);
        s.write_all(&out).await.unwrap();
    });
    let rampart = Rampart::start(addr).await;
    let mut c = rampart.client().await;
    c.send(b"GET /ws HTTP/1.1\r\nHost: example.test\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n").await;
    let head = c.read_raw_until(b"\r\n\r\n").await;
    assert!(
        head.starts_with(b"HTTP/1.1 101 "),
        "{}",
        String::from_utf8_lossy(&head)
    );
    c.send(b"ping").await;
    assert_eq!(c.read_raw_until(b"echo:ping").await, b"echo:ping");
}

#[tokio::test]
async fn http10_keep_alive_is_honoured() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let mut c = rampart.client().await;
    c.send(b"GET /a HTTP/1.0\r\nHost: example.test\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.header("connection").as_deref(), Some("keep-alive"));
    // An answer of rampart's own on a connection it keeps says so too.
    c.send(b"GET /c HTTP/1.0\r\nHost: unknown.test\r\nConnection: keep-alive\r\n\r\n")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 409);
    assert_eq!(resp.header("connection").as_deref(), Some("keep-alive"));
    c.send(b"GET /b HTTP/1.0\r\nHost: example.test\r\n\r\n")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed().await);
}

#[tokio::test]
async fn large_bodies_stream_both_ways_intact() {
    // The origin answers with a body as long as the one it received, chunked, byte-reversed.
    let origin = Origin::start(Behaviour::With(Arc::new(|r: &Received| {
        let mut body = r.body.clone();
        body.reverse();
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(100_000) {
            rampart_http::write_chunk(&mut out, piece);
        }
        rampart_http::write_last_chunk(&mut out);
        out
    })))
    .await;
    let rampart = Rampart::start(origin.addr).await;
    let body: Vec<u8> = (0..3_000_000u32).map(|i| (i % 251) as u8).collect();
    let mut raw = format!(
        "POST /upload HTTP/1.1\r\nHost: example.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let mut c = rampart.client().await;
    let send = async {
        use tokio::io::AsyncWriteExt;
        // Write in pieces while the response is read concurrently below.
        for piece in raw.chunks(64 * 1024) {
            c.stream.write_all(piece).await.unwrap();
        }
        c
    };
    let mut c = send.await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 200);
    let mut want = body.clone();
    want.reverse();
    assert_eq!(resp.body.len(), want.len());
    assert!(resp.body == want, "the response body was altered");
    assert_eq!(origin.received()[0].body.len(), body.len());
}

/// RFC 9110 §5.3, §7.6.3; RFC 9112 §3.2.2: every X-Forwarded-For and Forwarded line is kept,
/// in order, before the client's address; Via gets our entry after the client's; with an
/// absolute-form target Host comes from the target, even when the client sent an empty one.
#[tokio::test]
async fn forwarding_fields_keep_every_line_and_host_follows_the_target() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, _c) = rampart
        .request(
            b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Forwarded-For: 192.0.2.1\r\n\
              X-Forwarded-For: 192.0.2.2\r\nForwarded: for=192.0.2.1\r\nForwarded: for=192.0.2.2\r\n\
              Via: 1.1 a\r\n\r\n",
        )
        .await;
    assert_eq!(resp.status, 200);
    let got = &origin.received()[0];
    assert_eq!(
        got.header("x-forwarded-for"),
        ["192.0.2.1, 192.0.2.2, 127.0.0.1"]
    );
    assert_eq!(
        got.header("forwarded"),
        ["for=192.0.2.1, for=192.0.2.2, for=127.0.0.1;host=\"example.test\";proto=http"]
    );
    assert_eq!(got.header("via"), ["1.1 a", "1.1 rampart"]);

    let (resp, _c) = rampart
        .request(b"GET http://example.test/x HTTP/1.0\r\nHost:\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    let got = got.last().unwrap();
    assert_eq!(got.request_line(), "GET /x HTTP/1.1");
    assert_eq!(got.header("host"), ["example.test"]);
    assert_eq!(got.header("via"), ["1.0 rampart"]);
}

/// RFC 9112 §6.1: transfer codings other than chunked cannot be relayed re-framed (the
/// content would reach the client still coded, with nothing saying so): 502, as nginx.
#[tokio::test]
async fn responses_with_other_transfer_codings_are_refused() {
    for te in ["gzip, chunked", "gzip"] {
        let (_origin, rampart) = behind_raw(
            format!("HTTP/1.1 200 OK\r\nTransfer-Encoding: {te}\r\n\r\n3\r\nGZP\r\n0\r\n\r\n")
                .into_bytes(),
        )
        .await;
        let (resp, _c) = rampart
            .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(resp.status, 502, "{te}");
    }
}

/// RFC 9110 §6.6.1: a response without Date gets one.
#[tokio::test]
async fn a_response_without_date_gets_one() {
    let (_origin, rampart) =
        behind_raw(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok".to_vec()).await;
    let (resp, _c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    let date = resp.header("date").expect("a Date field");
    assert!(httpdate::parse_http_date(&date).is_ok(), "{date}");
    // One that has a Date keeps it.
    let (_origin, rampart) = behind_raw(
        b"HTTP/1.1 200 OK\r\nDate: Tue, 01 Jan 2030 00:00:00 GMT\r\nContent-Length: 2\r\n\r\nok"
            .to_vec(),
    )
    .await;
    let (resp, _c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.headers("date"), ["Tue, 01 Jan 2030 00:00:00 GMT"]);
}

/// RFC 9110 §7.8: a 101 to a request that did not ask to upgrade is a broken response (502),
/// and the switched connection never goes back to the pool.
#[tokio::test]
async fn an_unsolicited_101_is_a_502_and_its_connection_is_not_reused() {
    let (origin, rampart) = behind_raw(
        b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: foo\r\nConnection: upgrade\r\n\r\n".to_vec(),
    )
    .await;
    for _ in 0..2 {
        let (resp, _c) = rampart
            .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(resp.status, 502);
    }
    assert_eq!(origin.connection_count(), 2);
}

/// The origin lists Content-Length in Connection (so the field is hop-by-hop) or repeats it:
/// the client still gets exactly one Content-Length, written by rampart.
#[tokio::test]
async fn content_length_to_the_client_is_always_rampart_s_own() {
    for raw in [
        &b"HTTP/1.1 200 OK\r\nConnection: content-length\r\nContent-Length: 2\r\n\r\nok"[..],
        b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 2\r\n\r\nok",
    ] {
        let (_origin, rampart) = behind_raw(raw.to_vec()).await;
        let (resp, mut c) = rampart
            .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(resp.headers("content-length"), ["2"]);
        assert_eq!(resp.text(), "ok");
        // The connection stays usable: the framing was right.
        c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(c.response(false).await.text(), "ok");
    }
}

/// RFC 9112 §6.1: an HTTP/1.0 response with Transfer-Encoding is read, and its connection
/// closed after it, not pooled.
#[tokio::test]
async fn an_http10_response_with_transfer_encoding_is_not_pooled() {
    let (origin, rampart) = behind_raw(b"HTTP/1.0 200 OK\r\nConnection: keep-alive\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n"
            .to_vec(),).await;
    for _ in 0..2 {
        let (resp, _c) = rampart
            .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(resp.text(), "ok");
    }
    assert_eq!(origin.connection_count(), 2);
}

/// RFC 9112 §9.3: an origin that answers early (its own 413) and then neither reads the rest
/// of the body nor closes: once a write to it has made no progress for the response timeout,
/// the upload ends and the origin's answer reaches the client.
#[tokio::test]
async fn an_early_answer_from_an_origin_that_stops_reading_reaches_the_client() {
    use std::time::Duration;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let origin = tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut got = Vec::new();
        let mut buf = vec![0u8; 4096];
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = s.read(&mut buf).await.unwrap();
            assert!(n > 0);
            got.extend_from_slice(&buf[..n]);
        }
        s.write_all(b"HTTP/1.1 413 Content Too Large\r\nContent-Length: 3\r\n\r\nbig")
            .await
            .unwrap();
        // Neither read nor close until the test ends.
        tokio::time::sleep(Duration::from_secs(30)).await;
    });
    let rampart = Rampart::start_with(addr, "", "origin_response_timeout = \"300ms\"\n", "").await;
    let c = rampart.client().await;
    let total: usize = 64 << 20;
    let (mut rd, mut wr) = tokio::io::split(c.stream);
    let writer = tokio::spawn(async move {
        wr.write_all(
            format!("POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: {total}\r\n\r\n")
                .as_bytes(),
        )
        .await
        .unwrap();
        let chunk = vec![b'x'; 64 * 1024];
        let mut sent = 0;
        // Bounded: stops at the total, at an error, or when rampart stops reading.
        while sent < total {
            match tokio::time::timeout(Duration::from_secs(5), wr.write_all(&chunk)).await {
                Ok(Ok(())) => sent += chunk.len(),
                _ => break,
            }
        }
    });
    let mut response = Vec::new();
    let mut buf = vec![0u8; 4096];
    let read = tokio::time::timeout(Duration::from_secs(20), async {
        while !response.ends_with(b"big") {
            match rd.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => response.extend_from_slice(&buf[..n]),
            }
        }
    })
    .await;
    assert!(read.is_ok(), "no response");
    let text = String::from_utf8_lossy(&response);
    assert!(text.starts_with("HTTP/1.1 413 "), "{text}");
    assert!(text.ends_with("big"), "{text}");
    writer.abort();
    origin.abort();
}

/// RFC 9110 §15.2: interim responses the origin sends (103 Early Hints) are relayed to an
/// HTTP/1.1 client before the final one, without hop-by-hop fields; never to HTTP/1.0; a
/// 100 from the origin is dropped (rampart answers Expect itself).
#[tokio::test]
async fn early_hints_are_relayed_to_http11_clients_only() {
    let (_origin, rampart) = behind_raw(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\nKeep-Alive: timeout=5\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"
            .to_vec(),).await;
    let mut c = rampart.client().await;
    c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    let raw = c.read_raw_until(b"\r\n\r\nok").await;
    let text = String::from_utf8_lossy(&raw);
    assert!(
        text.starts_with(
            "HTTP/1.1 103 Early Hints\r\nLink: </s.css>; rel=preload\r\n\r\nHTTP/1.1 200 OK\r\n"
        ),
        "{text}"
    );
    let mut c = rampart.client().await;
    c.send(b"GET / HTTP/1.0\r\nHost: example.test\r\n\r\n")
        .await;
    let raw = c.read_raw_until(b"\r\n\r\nok").await;
    let text = String::from_utf8_lossy(&raw);
    assert!(text.starts_with("HTTP/1.1 200 OK\r\n"), "{text}");
}

/// A reload keeps a zone's kept-alive origin connections when its origin settings did not
/// change (a rule did), and starts afresh for a zone whose origin changed.
#[tokio::test]
async fn origin_pools_survive_a_reload_that_leaves_the_origin_as_it_was() {
    let origin = Origin::start(Behaviour::Echo).await;
    let other = Origin::start(Behaviour::Echo).await;
    let zone = |addr: std::net::SocketAddr, rule: &str| {
        format!(
            "[server]\nlisten = [\"127.0.0.1:0\"]\naccess_log = \"off\"\nadmin_listen = \"off\"\n\n[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{addr}\"\n{rule}"
        )
    };
    let rampart = Rampart::start(origin.addr).await;
    let get = b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n";
    assert_eq!(rampart.request(get).await.0.status, 200);
    let reload = |src: String| {
        let loaded =
            rampart::config::load_str("reload.toml", &common::without_bic(&src), None).unwrap();
        rampart.server.as_ref().unwrap().reload(loaded.config);
    };
    reload(zone(
        origin.addr,
        "[[zone.custom_rule]]\nexpression = 'http.request.uri.path eq \"/blocked\"'\naction = \"block\"\n",
    ));
    assert_eq!(rampart.request(get).await.0.status, 200);
    let (blocked, _) = rampart
        .request(b"GET /blocked HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(blocked.status, 403, "the new rule is in force");
    assert_eq!(
        origin.connection_count(),
        1,
        "the pooled connection served the request after the reload"
    );
    reload(zone(other.addr, ""));
    assert_eq!(rampart.request(get).await.0.status, 200);
    assert_eq!((origin.received().len(), other.received().len()), (2, 1));
}
