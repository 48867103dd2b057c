//! Compression at the edge: cached text is served in the coding the client prefers (zstd,
//! brotli, gzip), made once per object and coding; relayed text is compressed on the way;
//! ranges are of the identity body; what is compressed already, or not text, or marked
//! no-transform, or an event stream, is left alone.

mod common;

use std::io::Read as _;
use std::sync::Arc;

use common::http2::{self, h2c};
use common::*;

fn css() -> String {
    (0..100)
        .map(|i| format!(".c{i} {{ color: red; margin: {i}px }}\n"))
        .collect()
}

/// `/<content-type with _ for />/<extra field or none>/...`: 200 with that type, the CSS
/// body, ETag "v1", max-age 300.
fn responder() -> Responder {
    Arc::new(|req: &Received| {
        let target = req.request_line().split(' ').nth(1).unwrap_or("/");
        let parts: Vec<&str> = target.trim_start_matches('/').split('/').collect();
        let content_type = parts
            .first()
            .copied()
            .unwrap_or("text_css")
            .replace('_', "/");
        let extra = match parts.get(1).copied() {
            Some("gz") => "Content-Encoding: gzip\r\n".to_string(),
            Some("nt") => "Cache-Control: no-transform\r\n".to_string(),
            _ => String::new(),
        };
        let body = css();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nCache-Control: max-age=300\r\nETag: \"v1\"\r\n{extra}Content-Length: {}\r\n\r\n{body}",
            body.len()
        )
        .into_bytes()
    })
}

async fn get(rampart: &Rampart, path: &str, fields: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n");
    rampart.request(raw.as_bytes()).await.0
}

fn decode(coding: &str, body: &[u8]) -> String {
    let mut out = Vec::new();
    match coding {
        "gzip" => {
            flate2::read::GzDecoder::new(body)
                .read_to_end(&mut out)
                .unwrap();
        }
        "br" => brotli::BrotliDecompress(&mut &body[..], &mut out).unwrap(),
        "zstd" => out = zstd::stream::decode_all(body).unwrap(),
        other => panic!("{other}"),
    }
    String::from_utf8(out).unwrap()
}

async fn cache_bytes(rampart: &Rampart) -> u64 {
    let mut c = Client::connect(rampart.admin.unwrap()).await;
    c.send(b"GET /client/v4/cache HTTP/1.1\r\nHost: admin\r\n\r\n")
        .await;
    c.response(false).await.json()["result"]["bytes"]
        .as_u64()
        .unwrap()
}

#[tokio::test]
async fn cached_text_is_served_in_the_preferred_coding_made_once() {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let rampart = Rampart::start(origin.addr).await;
    let browser = "Accept-Encoding: gzip, deflate, br, zstd\r\n";
    let first = get(&rampart, "/text_css/-/a.css", browser).await;
    assert_eq!(
        first.header("rampart-cache-status").as_deref(),
        Some("MISS")
    );
    assert_eq!(
        first.header("content-encoding").as_deref(),
        Some("zstd"),
        "a miss is compressed on the way"
    );
    assert_eq!(decode("zstd", &first.body), css());
    let stored = cache_bytes(&rampart).await;
    for (accept, coding) in [
        (browser, "zstd"),
        ("Accept-Encoding: gzip, br\r\n", "br"),
        ("Accept-Encoding: gzip\r\n", "gzip"),
        ("Accept-Encoding: br;q=0.5, gzip\r\n", "gzip"),
    ] {
        let r = get(&rampart, "/text_css/-/a.css", accept).await;
        assert_eq!(r.header("rampart-cache-status").as_deref(), Some("HIT"));
        assert_eq!(
            r.header("content-encoding").as_deref(),
            Some(coding),
            "{accept}"
        );
        assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
        assert_eq!(
            r.header("etag").as_deref(),
            Some("W/\"v1\""),
            "a coded body's ETag is weak"
        );
        assert_eq!(
            r.header("content-length").unwrap(),
            r.body.len().to_string()
        );
        assert!(
            r.body.len() < css().len() / 4,
            "{coding}: {} bytes",
            r.body.len()
        );
        assert_eq!(decode(coding, &r.body), css(), "{coding}");
    }
    // Made once: the store grew by the three coded bodies, and no more for later hits.
    let grown = cache_bytes(&rampart).await;
    assert!(grown > stored, "{grown} vs {stored}");
    for _ in 0..3 {
        get(&rampart, "/text_css/-/a.css", browser).await;
        get(&rampart, "/text_css/-/a.css", "Accept-Encoding: gzip\r\n").await;
    }
    assert_eq!(cache_bytes(&rampart).await, grown);
    // No coding accepted: the identity body, still marked as varying.
    let r = get(&rampart, "/text_css/-/a.css", "").await;
    assert_eq!((r.header("content-encoding"), r.text()), (None, css()));
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
    assert_eq!(r.header("etag").as_deref(), Some("\"v1\""));
    // The weak ETag revalidates.
    let r = get(
        &rampart,
        "/text_css/-/a.css",
        &format!("{browser}If-None-Match: W/\"v1\"\r\n"),
    )
    .await;
    assert_eq!(r.status, 304);
    assert_eq!(origin.received().len(), 1);
}

#[tokio::test]
async fn a_range_is_of_the_identity_body() {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let rampart = Rampart::start(origin.addr).await;
    get(&rampart, "/text_css/-/a.css", "").await;
    let r = get(
        &rampart,
        "/text_css/-/a.css",
        "Accept-Encoding: gzip, br, zstd\r\nRange: bytes=10-29\r\n",
    )
    .await;
    assert_eq!(r.status, 206);
    assert_eq!(r.header("content-encoding"), None);
    assert_eq!(r.body, css().as_bytes()[10..30]);
    assert_eq!(
        r.header("content-range"),
        Some(format!("bytes 10-29/{}", css().len()))
    );
    assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
}

#[tokio::test]
async fn what_is_compressed_already_or_not_text_or_no_transform_is_left_alone() {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let rampart = Rampart::start(origin.addr).await;
    let accept = "Accept-Encoding: gzip, br, zstd\r\n";
    for path in [
        "/image_png/-/a.png",
        "/text_css/gz/a.css",
        "/text_css/nt/a.css",
    ] {
        get(&rampart, path, accept).await;
        let r = get(&rampart, path, accept).await;
        assert_eq!(
            r.header("rampart-cache-status").as_deref(),
            Some("HIT"),
            "{path}"
        );
        assert_eq!(
            r.body,
            css().as_bytes(),
            "{path}: the body as the origin sent it"
        );
        let expected = path.contains("/gz/").then(|| "gzip".to_string());
        assert_eq!(r.header("content-encoding"), expected, "{path}");
        assert_eq!(r.header("vary"), None, "{path}");
    }
}

#[tokio::test]
async fn http2_clients_get_the_coded_body_too() {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let rampart = Rampart::start(origin.addr).await;
    get(&rampart, "/application_javascript/-/a.js", "").await;
    let mut c = h2c(rampart.addr).await;
    let request = http::Request::get("http://example.test/application_javascript/-/a.js")
        .header("accept-encoding", "gzip, deflate, br, zstd")
        .body(())
        .unwrap();
    let r = http2::send(&mut c, request, None).await;
    assert_eq!(r.headers["content-encoding"], "zstd");
    assert_eq!(decode("zstd", &r.body), css());
}

/// An origin answering `/html/...` with a page of `n` bytes (`/html/<n>`), `/sse` with an event
/// stream, `/chunked` with a chunked HTML body in two chunks.
fn dynamic() -> Responder {
    Arc::new(|req: &Received| {
        let target = req
            .request_line()
            .split(' ')
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let page = |n: usize| "<p>dynamic</p>\n".repeat(n / 15 + 1)[..n].to_string();
        if let Some(n) = target.strip_prefix("/html/") {
            let body = page(n.parse().unwrap());
            return format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\nETag: \"p\"\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
        }
        if target == "/sse" {
            let body = "data: tick\n\n".repeat(50);
            return format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nContent-Length: {}\r\n\r\n{body}",
                body.len()
            )
            .into_bytes();
        }
        let (a, b) = (page(3000), page(2000));
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nTransfer-Encoding: chunked\r\n\r\n{:x}\r\n{a}\r\n{:x}\r\n{b}\r\n0\r\n\r\n",
            a.len(),
            b.len()
        )
        .into_bytes()
    })
}

#[tokio::test]
async fn dynamic_text_is_compressed_on_the_way_over_http1_and_http2() {
    let origin = Origin::start(Behaviour::With(dynamic())).await;
    let rampart = Rampart::start(origin.addr).await;
    let page = "<p>dynamic</p>\n".repeat(5000 / 15 + 1)[..5000].to_string();
    for (path, accept, coding) in [
        ("/html/5000", "gzip, deflate, br, zstd", "zstd"),
        ("/html/5000", "gzip", "gzip"),
        ("/html/5000", "br", "br"),
        ("/chunked", "br, gzip", "br"),
    ] {
        let r = get(&rampart, path, &format!("Accept-Encoding: {accept}\r\n")).await;
        assert_eq!(r.status, 200);
        assert_eq!(r.header("rampart-cache-status").as_deref(), Some("DYNAMIC"));
        assert_eq!(
            r.header("content-encoding").as_deref(),
            Some(coding),
            "{path} {accept}"
        );
        assert_eq!(r.header("vary").as_deref(), Some("Accept-Encoding"));
        assert_eq!(r.header("content-length"), None, "{path}: streamed");
        assert!(
            r.body.len() < 1000,
            "{path} {coding}: {} bytes",
            r.body.len()
        );
        assert_eq!(decode(coding, &r.body), page, "{path} {coding}");
    }
    assert_eq!(
        get(&rampart, "/html/5000", "Accept-Encoding: gzip\r\n")
            .await
            .header("etag")
            .as_deref(),
        Some("W/\"p\"")
    );
    // HEAD gets the same head, without a body.
    let head = rampart
        .request(b"HEAD /html/5000 HTTP/1.1\r\nHost: example.test\r\nAccept-Encoding: gzip\r\n\r\n")
        .await
        .0;
    assert_eq!(head.header("content-encoding").as_deref(), Some("gzip"));
    assert!(head.body.is_empty());
    let mut c = h2c(rampart.addr).await;
    let request = http::Request::get("http://example.test/html/5000")
        .header("accept-encoding", "br")
        .body(())
        .unwrap();
    let r = http2::send(&mut c, request, None).await;
    assert_eq!(r.headers["content-encoding"], "br");
    assert_eq!(decode("br", &r.body), page);
}

#[tokio::test]
async fn what_must_stream_as_it_is_is_not_compressed() {
    let origin = Origin::start(Behaviour::With(dynamic())).await;
    let rampart = Rampart::start(origin.addr).await;
    let accept = "Accept-Encoding: gzip, br, zstd\r\n";
    // Too small, an event stream, no Accept-Encoding, a ranged request.
    for (path, fields) in [
        ("/html/100", accept.to_string()),
        ("/sse", accept.to_string()),
        ("/html/5000", String::new()),
        ("/html/5000", format!("{accept}Range: bytes=0-9\r\n")),
    ] {
        let r = get(&rampart, path, &fields).await;
        assert_eq!(r.header("content-encoding"), None, "{path} {fields}");
        assert!(r.header("content-length").is_some(), "{path} {fields}");
    }
}

#[tokio::test]
async fn a_miss_is_compressed_to_its_client_and_stored_as_the_origin_sent_it() {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let rampart = Rampart::start(origin.addr).await;
    let r = get(&rampart, "/text_css/-/a.css", "Accept-Encoding: gzip\r\n").await;
    assert_eq!(r.header("rampart-cache-status").as_deref(), Some("MISS"));
    assert_eq!(r.header("content-encoding").as_deref(), Some("gzip"));
    assert_eq!(decode("gzip", &r.body), css());
    let r = get(&rampart, "/text_css/-/a.css", "").await;
    assert_eq!(r.header("rampart-cache-status").as_deref(), Some("HIT"));
    assert_eq!((r.header("content-encoding"), r.text()), (None, css()));
    assert_eq!(r.header("etag").as_deref(), Some("\"v1\""));
}
