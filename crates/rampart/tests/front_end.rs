//! The strict front end: every malformed request gets its exact status, is explained, closes
//! the connection, and never reaches the origin.

mod common;

use common::{Behaviour, Origin, Rampart};

/// Sends `raw`, expects `status`, a closed connection, and an untouched origin.
async fn rejected(rampart: &Rampart, origin: &Origin, raw: &[u8], status: u16) -> common::Response {
    let (resp, mut client) = rampart.request(raw).await;
    assert_eq!(
        resp.status,
        status,
        "for {:?}:\n{}{}",
        String::from_utf8_lossy(raw),
        resp.head,
        resp.text()
    );
    assert_eq!(
        resp.header("connection").as_deref(),
        Some("close"),
        "{}",
        resp.head
    );
    assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));
    assert_eq!(resp.header("rampart-ray").map(|r| r.len()), Some(16));
    assert!(
        client.is_closed().await,
        "connection left open after {status}"
    );
    assert!(
        origin.received().is_empty(),
        "origin received {:?}",
        origin.received()
    );
    resp
}

async fn setup() -> (Origin, Rampart) {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_with(
        origin.addr,
        "",
        "",
        "[limits]\nmax_uri_bytes = 64\nmax_header_bytes = 512\nmax_headers = 8\nmax_body_bytes = 100\n",
    )
    .await;
    (origin, rampart)
}

#[tokio::test]
async fn malformed_request_lines_and_fields_get_400() {
    let (origin, rampart) = setup().await;
    let cases: &[&[u8]] = &[
        b"GE(T / HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET  / HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /\tHTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET example.test:80 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET * HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /a\x01b HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /a\x7fb HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /a#b HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /caf\xc3 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /caf\xe9 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /%zz HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET /%4 HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test\r\nBad(Name: x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test\r\nX-A : x\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test\r\nX-A: x\r\n folded\r\n\r\n",
        b"GET / HTTP/1.1\nHost: example.test\n\n",
        b"GET / HTTP/1.1\r\nHost: example.test\rX-A: b\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test\r\nX-A: a\x00b\r\n\r\n",
        b"GET / HTTP/1.1\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test\r\nHost: example.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: user@example.test\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test:99999\r\n\r\n",
        b"GET / HTTP/1.1\r\nHost: example.test:8o\r\n\r\n",
        b"GET http://other.test/ HTTP/1.1\r\nHost: example.test\r\n\r\n",
        b"GET / HTTP/1.10\r\nHost: example.test\r\n\r\n",
        b"GET / http/1.1\r\nHost: example.test\r\n\r\n",
    ];
    for raw in cases {
        rejected(&rampart, &origin, raw, 400).await;
    }
}

#[tokio::test]
async fn the_400_detail_names_the_byte_and_its_offset() {
    let (origin, rampart) = setup().await;
    let resp = rejected(
        &rampart,
        &origin,
        b"GET /a\x7fb HTTP/1.1\r\nHost: example.test\r\nAccept: application/json\r\n\r\n",
        400,
    )
    .await;
    let detail = resp.json()["detail"].as_str().unwrap().to_string();
    assert!(
        detail.contains("0x7f") && detail.contains("offset 6"),
        "{detail}"
    );
}

#[tokio::test]
async fn framing_violations_get_400_or_501_and_close() {
    let (origin, rampart) = setup().await;
    let cases: &[(&[u8], u16)] = &[
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.0\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked, gzip\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: +5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0x5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5 5\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: -1\r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: \r\n\r\n", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\nhello", 400),
        (b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5, 6\r\n\r\nhello", 400),
    ];
    for (raw, status) in cases {
        rejected(&rampart, &origin, raw, *status).await;
    }
}

#[tokio::test]
async fn repeated_identical_content_length_is_accepted() {
    let (origin, rampart) = setup().await;
    let (resp, _c) = rampart
        .request(b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5, 5\r\n\r\nhello")
        .await;
    assert_eq!(resp.status, 200);
    let got = origin.received();
    assert_eq!(got.len(), 1);
    assert_eq!(got[0].body, b"hello");
    assert_eq!(got[0].header("content-length"), ["5"]);
}

#[tokio::test]
async fn unsupported_versions_get_505() {
    let (origin, rampart) = setup().await;
    for v in ["HTTP/3.0", "HTTP/2.0"] {
        let raw = format!("GET / {v}\r\nHost: example.test\r\n\r\n");
        rejected(&rampart, &origin, raw.as_bytes(), 505).await;
    }
    // RFC 9110 §2.5: a higher minor version of HTTP/1 is served as HTTP/1.1.
    let (resp, _c) = rampart
        .request(b"GET /v HTTP/1.2\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.head.starts_with("HTTP/1.1 200"), "{}", resp.head);
    assert_eq!(
        origin.received().last().unwrap().request_line(),
        "GET /v HTTP/1.1"
    );
}

#[tokio::test]
async fn request_target_over_the_limit_gets_414_and_at_the_limit_passes() {
    let (origin, rampart) = setup().await;
    let at = format!("/{}", "a".repeat(63));
    let (resp, _c) = rampart
        .request(format!("GET {at} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
        .await;
    assert_eq!(resp.status, 200);
    let over = format!("/{}", "a".repeat(64));
    let origin2 = Origin::start(Behaviour::Echo).await;
    let rampart2 =
        Rampart::start_with(origin2.addr, "", "", "[limits]\nmax_uri_bytes = 64\n").await;
    rejected(
        &rampart2,
        &origin2,
        format!("GET {over} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes(),
        414,
    )
    .await;
    // Detected before the head is complete: no CRLF CRLF is ever sent.
    let (resp, mut c) = rampart2
        .request(format!("GET /{} HTTP/1.1", "b".repeat(200)).as_bytes())
        .await;
    assert_eq!(resp.status, 414);
    assert!(c.is_closed().await);
    drop(origin);
}

#[tokio::test]
async fn header_section_over_its_limits_gets_431() {
    let (origin, rampart) = setup().await;
    let mut many = String::from("GET / HTTP/1.1\r\nHost: example.test\r\n");
    for i in 0..8 {
        many.push_str(&format!("X-{i}: v\r\n"));
    }
    many.push_str("\r\n");
    rejected(&rampart, &origin, many.as_bytes(), 431).await;
    let big = format!(
        "GET / HTTP/1.1\r\nHost: example.test\r\nX-Big: {}\r\n\r\n",
        "v".repeat(600)
    );
    rejected(&rampart, &origin, big.as_bytes(), 431).await;
}

#[tokio::test]
async fn exactly_max_headers_fields_pass() {
    let (origin, rampart) = setup().await;
    let mut raw = String::from("GET / HTTP/1.1\r\nHost: example.test\r\n");
    for i in 0..7 {
        raw.push_str(&format!("X-{i}: v\r\n"));
    }
    raw.push_str("\r\n");
    let (resp, _c) = rampart.request(raw.as_bytes()).await;
    assert_eq!(resp.status, 200);
    assert_eq!(origin.received().len(), 1);
}

#[tokio::test]
async fn declared_body_over_the_limit_gets_413_before_100_continue() {
    let (origin, rampart) = setup().await;
    let (resp, mut c) = rampart
        .request(b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 101\r\nExpect: 100-continue\r\n\r\n")
        .await;
    assert_eq!(resp.status, 413);
    assert!(!resp.head.contains("100 Continue"));
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed().await);
    assert!(origin.received().is_empty());
}

#[tokio::test]
async fn chunked_body_growing_past_the_limit_gets_413_and_close() {
    let (origin, rampart) = setup().await;
    let mut raw =
        b"POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    raw.extend_from_slice(b"64\r\n");
    raw.extend_from_slice(&[b'a'; 100]);
    raw.extend_from_slice(b"\r\n1\r\nb\r\n0\r\n\r\n");
    let (resp, mut c) = rampart.request(&raw).await;
    assert_eq!(resp.status, 413);
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed().await);
    assert!(
        origin.received().is_empty(),
        "the origin must not see a complete request"
    );
}

#[tokio::test]
async fn malformed_chunked_bodies_get_400_and_close() {
    let (origin, rampart) = setup().await;
    let bodies: &[&[u8]] = &[
        b"zz\r\nhello\r\n0\r\n\r\n",
        b"fffffffffffffffff\r\nx\r\n0\r\n\r\n",
        b"5;=x\r\nhello\r\n0\r\n\r\n",
        b"5\r\nhelloXX0\r\n\r\n",
        b"5\nhello\r\n0\r\n\r\n",
    ];
    for body in bodies {
        let mut raw =
            b"POST / HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        raw.extend_from_slice(body);
        let (resp, mut c) = rampart.request(&raw).await;
        assert_eq!(resp.status, 400, "{:?}", String::from_utf8_lossy(body));
        assert_eq!(resp.header("connection").as_deref(), Some("close"));
        assert!(c.is_closed().await);
    }
    assert!(origin.received().is_empty());
}

#[tokio::test]
async fn unknown_expectation_gets_417() {
    let (origin, rampart) = setup().await;
    rejected(
        &rampart,
        &origin,
        b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 5\r\nExpect: something-else\r\n\r\n",
        417,
    )
    .await;
}

#[tokio::test]
async fn head_request_for_a_generated_error_gets_headers_without_body() {
    let (_origin, rampart) = setup().await;
    let (resp, _c) = rampart
        .request(b"HEAD / HTTP/1.1\r\nHost: nowhere.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 409);
    assert!(resp.body.is_empty());
    assert!(
        resp.header("content-length")
            .unwrap()
            .parse::<usize>()
            .unwrap()
            > 0
    );
}

#[tokio::test]
async fn a_rejected_request_stops_the_pipeline() {
    let (origin, rampart) = setup().await;
    let (resp, mut c) = rampart
        .request(b"GET /%zz HTTP/1.1\r\nHost: example.test\r\n\r\nGET /second HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 400);
    assert!(c.is_closed().await);
    assert!(
        origin.received().is_empty(),
        "the pipelined request after a rejected one must not be processed"
    );
}
