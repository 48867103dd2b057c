//! Stale objects: revalidated with their validators (REVALIDATED), served while refreshed in
//! the background (UPDATING), and served instead of an origin's failure (STALE), over
//! HTTP/1.1 and HTTP/2.

mod common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::http2::{self, h2c};
use common::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// A response that is stale as soon as it is stored (its Age is past its max-age), with
/// `extra` directives, ETag "v1" and `body`.
fn stale_response(extra: &str, body: &str) -> Vec<u8> {
    format!(
        "HTTP/1.1 200 OK\r\nCache-Control: max-age=60{extra}\r\nAge: 120\r\nETag: \"v1\"\r\n\
         Last-Modified: Wed, 01 Jan 2020 00:00:00 GMT\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    )
    .into_bytes()
}

fn cache_status(r: &Response) -> String {
    r.header("rampart-cache-status").unwrap_or_default()
}

async fn get(rampart: &Rampart, path: &str) -> Response {
    let raw = format!("GET {path} HTTP/1.1\r\nHost: example.test\r\nAccept: text/html\r\n\r\n");
    rampart.request(raw.as_bytes()).await.0
}

#[tokio::test]
async fn an_expired_object_is_revalidated_and_a_304_refreshes_it() {
    let responder: Responder = Arc::new(|req: &Received| {
        if req.header("if-none-match") == ["\"v1\""] {
            b"HTTP/1.1 304 Not Modified\r\nCache-Control: max-age=300\r\nETag: \"v1\"\r\nX-Version: 2\r\n\r\n".to_vec()
        } else {
            stale_response("", "the body")
        }
    });
    let origin = Origin::start(Behaviour::With(responder)).await;
    let rampart = Rampart::start(origin.addr).await;
    assert_eq!(cache_status(&get(&rampart, "/a.css").await), "MISS");
    let r = get(&rampart, "/a.css").await;
    assert_eq!((r.status, cache_status(&r).as_str()), (200, "REVALIDATED"));
    assert_eq!(
        r.text(),
        "the body",
        "the stored body, confirmed by the 304"
    );
    assert_eq!(
        r.header("x-version").as_deref(),
        Some("2"),
        "the 304's fields replace the stored ones"
    );
    let revalidation = &origin.received()[1];
    assert_eq!(revalidation.header("if-none-match"), ["\"v1\""]);
    assert_eq!(
        revalidation.header("if-modified-since"),
        ["Wed, 01 Jan 2020 00:00:00 GMT"]
    );
    // Fresh for the 304's max-age now.
    let r = get(&rampart, "/a.css").await;
    assert_eq!(cache_status(&r), "HIT");
    assert_eq!(r.text(), "the body");
    assert_eq!(origin.received().len(), 2);
    // A client's own precondition on a stale object goes to the origin as it is, without
    // the edge's validators.
    let origin2 = Origin::start(Behaviour::Raw(stale_response("", "x"))).await;
    let rampart2 = Rampart::start(origin2.addr).await;
    get(&rampart2, "/b.css").await;
    let raw = b"GET /b.css HTTP/1.1\r\nHost: example.test\r\nIf-None-Match: \"zz\"\r\n\r\n";
    let r = rampart2.request(raw).await.0;
    assert_eq!(cache_status(&r), "EXPIRED");
    assert_eq!(origin2.received()[1].header("if-none-match"), ["\"zz\""]);
    assert!(origin2.received()[1].header("if-modified-since").is_empty());
}

#[tokio::test]
async fn stale_while_revalidate_serves_the_stale_copy_and_refreshes_it_behind() {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let responder: Responder =
        Arc::new(
            move |_req: &Received| match seen.fetch_add(1, Ordering::SeqCst) {
                0 => stale_response(", stale-while-revalidate=3600", "old"),
                _ => {
                    b"HTTP/1.1 200 OK\r\nCache-Control: max-age=300\r\nContent-Length: 3\r\n\r\nnew"
                        .to_vec()
                }
            },
        );
    let origin = Origin::start(Behaviour::With(responder)).await;
    let rampart = Rampart::start(origin.addr).await;
    assert_eq!(get(&rampart, "/a.js").await.text(), "old");
    let r = get(&rampart, "/a.js").await;
    assert_eq!(cache_status(&r), "UPDATING");
    assert_eq!(r.text(), "old", "served stale, at once");
    // The refresh happens behind: wait (boundedly) until the new copy is served.
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let r = get(&rampart, "/a.js").await;
        if r.text() == "new" {
            assert_eq!(cache_status(&r), "HIT");
            break;
        }
        assert_eq!(cache_status(&r), "UPDATING");
        assert!(tokio::time::Instant::now() < deadline, "never refreshed");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let received = origin.received();
    assert_eq!(
        received.len(),
        2,
        "one refresh, however many were served stale"
    );
    assert_eq!(received[1].header("if-none-match"), ["\"v1\""]);
}

/// An origin that answers the first request with `first` and closes, then refuses
/// connections (its listener is gone).
async fn origin_that_dies(first: Vec<u8>) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let (mut stream, _) = listener.accept().await.unwrap();
        drop(listener);
        let mut buf = vec![0u8; 4096];
        let mut got = Vec::new();
        while !got.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = stream.read(&mut buf).await.unwrap();
            got.extend_from_slice(&buf[..n]);
        }
        let mut first = first;
        // Connection: close, so that no kept-alive connection outlives the listener.
        let at = first.windows(2).position(|w| w == b"\r\n").unwrap() + 2;
        first.splice(at..at, b"Connection: close\r\n".iter().copied());
        stream.write_all(&first).await.unwrap();
    });
    addr
}

#[tokio::test]
async fn stale_if_error_serves_the_stale_copy_when_the_origin_is_down_over_http1_and_http2() {
    let addr = origin_that_dies(stale_response(", stale-if-error=3600", "kept")).await;
    let rampart = Rampart::start(addr).await;
    assert_eq!(cache_status(&get(&rampart, "/a.css").await), "MISS");
    let r = get(&rampart, "/a.css").await;
    assert_eq!((r.status, cache_status(&r).as_str()), (200, "STALE"));
    assert_eq!(r.text(), "kept");
    assert_eq!(
        r.header("cache-status").as_deref(),
        Some("rampart; hit; detail=stale-if-error")
    );
    let mut client = h2c(rampart.addr).await;
    let r = http2::send(&mut client, http2::get("http://example.test/a.css"), None).await;
    assert_eq!(r.status, 200);
    assert_eq!(r.headers["rampart-cache-status"], "STALE");
    assert_eq!(r.body, b"kept");
    // A path never cached gets the origin error as ever.
    let r = get(&rampart, "/b.css").await;
    assert_eq!(r.status, 521);
    let lines = rampart.log_lines(4).await;
    assert_eq!(lines[1]["CacheCacheStatus"], "stale");
    assert_eq!(lines[1]["EdgeResponseStatus"], 200);
    let reason = lines[1]["ErrorReason"].as_str().unwrap();
    assert!(reason.contains("served stale"), "{reason}");
}

#[tokio::test]
async fn a_stale_copy_without_stale_if_error_is_not_served_unless_a_rule_says_so() {
    let addr = origin_that_dies(stale_response("", "kept")).await;
    let rampart = Rampart::start(addr).await;
    get(&rampart, "/a.css").await;
    assert_eq!(get(&rampart, "/a.css").await.status, 521);
    let rule = "[[zone.cache_rule]]\nexpression = 'true'\nserve_stale = true\n";
    let addr = origin_that_dies(stale_response("", "kept")).await;
    let rampart = Rampart::start_with(addr, "", rule, "").await;
    get(&rampart, "/a.css").await;
    let r = get(&rampart, "/a.css").await;
    assert_eq!((r.status, cache_status(&r).as_str()), (200, "STALE"));
    // must-revalidate forbids stale-if-error.
    let addr = origin_that_dies(stale_response(", must-revalidate, stale-if-error=60", "x")).await;
    let rampart = Rampart::start(addr).await;
    get(&rampart, "/a.css").await;
    assert_eq!(get(&rampart, "/a.css").await.status, 521);
}

#[tokio::test]
async fn a_5xx_from_the_origin_is_replaced_by_the_stale_copy() {
    let count = Arc::new(AtomicUsize::new(0));
    let seen = count.clone();
    let responder: Responder =
        Arc::new(
            move |_req: &Received| match seen.fetch_add(1, Ordering::SeqCst) {
                0 => stale_response(", stale-if-error=3600", "kept"),
                _ => b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\ndown".to_vec(),
            },
        );
    let origin = Origin::start(Behaviour::With(responder)).await;
    let rampart = Rampart::start(origin.addr).await;
    get(&rampart, "/a.css").await;
    let r = get(&rampart, "/a.css").await;
    assert_eq!(
        (r.status, cache_status(&r).as_str(), r.text().as_str()),
        (200, "STALE", "kept")
    );
    let line = &rampart.log_lines(2).await[1];
    assert_eq!(line["OriginResponseStatus"], 503);
    assert_eq!(line["EdgeResponseStatus"], 200);
}
