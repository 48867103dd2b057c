//! Origin failures are reported precisely: 502, 521, 522, 524, retries, and 499.

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use common::{Behaviour, Origin, Rampart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

async fn generated(rampart: &Rampart, status: u16) -> common::Response {
    let (resp, _c) = rampart
        .request(
            b"GET / HTTP/1.1\r\nHost: example.test\r\nAccept: application/problem+json\r\n\r\n",
        )
        .await;
    assert_eq!(resp.status, status, "{}{}", resp.head, resp.text());
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/problem+json")
    );
    assert_eq!(resp.header("cache-control").as_deref(), Some("no-store"));
    resp
}

#[tokio::test]
async fn refused_connection_gets_521_with_retry_after() {
    // A port that was just free: nothing listens there.
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let rampart = Rampart::start(free).await;
    let resp = generated(&rampart, 521).await;
    assert_eq!(resp.header("retry-after").as_deref(), Some("120"));
    assert_eq!(resp.json()["retryable"], true);
}

#[tokio::test]
async fn connect_timeout_is_retried_then_gets_522() {
    // A listener whose accept queue is full drops further SYNs, so connects hang (on loopback).
    let socket = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::STREAM, None).unwrap();
    socket
        .bind(
            &"127.0.0.1:0"
                .parse::<std::net::SocketAddr>()
                .unwrap()
                .into(),
        )
        .unwrap();
    socket.listen(0).unwrap();
    let addr = socket.local_addr().unwrap().as_socket().unwrap();
    let mut fillers = Vec::new();
    for _ in 0..8 {
        if let Ok(Ok(s)) = tokio::time::timeout(
            std::time::Duration::from_millis(200),
            tokio::net::TcpStream::connect(addr),
        )
        .await
        {
            fillers.push(s);
        }
    }
    let rampart = Rampart::start_with(
        addr,
        "",
        "origin_connect_timeout = \"200ms\"\norigin_connect_retries = 1\n",
        "",
    )
    .await;
    let resp = generated(&rampart, 522).await;
    assert!(
        resp.json().get("detail").is_none(),
        "the reason is for the log only"
    );
    assert!(
        rampart.log_lines(1).await[0]["ErrorReason"]
            .as_str()
            .unwrap()
            .contains("2 connection attempts")
    );
    assert!(
        rampart
            .metrics()
            .await
            .contains("rampart_origin_connect_retries_total{zone=\"example.test\"} 1")
    );
    drop(fillers);
}

#[tokio::test]
async fn silent_origin_gets_524() {
    let origin = Origin::start(Behaviour::Silent).await;
    let rampart =
        Rampart::start_with(origin.addr, "", "origin_response_timeout = \"300ms\"\n", "").await;
    let resp = generated(&rampart, 524).await;
    assert_eq!(resp.header("retry-after").as_deref(), Some("120"));
    assert_eq!(origin.received().len(), 1);
}

#[tokio::test]
async fn invalid_origin_response_gets_502() {
    for garbage in [
        &b"NOT HTTP AT ALL\r\n\r\n"[..],
        b"HTTP/1.1 2000 OK\r\n\r\n",
        b"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n",
    ] {
        let origin = Origin::start(Behaviour::Raw(garbage.to_vec())).await;
        let rampart = Rampart::start(origin.addr).await;
        let resp = generated(&rampart, 502).await;
        assert_eq!(resp.header("retry-after").as_deref(), Some("60"));
    }
}

#[tokio::test]
async fn origin_closing_without_response_gets_502() {
    let origin = Origin::start(Behaviour::CloseAfterRequest).await;
    let rampart = Rampart::start(origin.addr).await;
    generated(&rampart, 502).await;
}

/// An origin that answers the first request on each connection, then reads the next request
/// and closes without answering: a keep-alive connection that dies on reuse.
async fn flaky_origin() -> (std::net::SocketAddr, Arc<AtomicUsize>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let conns = Arc::new(AtomicUsize::new(0));
    let c = conns.clone();
    tokio::spawn(async move {
        while let Ok((mut s, _)) = listener.accept().await {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::spawn(async move {
                let mut buf = vec![0u8; 8192];
                let mut got = Vec::new();
                while !got.windows(4).any(|w| w == b"\r\n\r\n") {
                    match s.read(&mut buf).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => got.extend_from_slice(&buf[..n]),
                    }
                }
                let _ = s
                    .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
                    .await;
                let _ = s.read(&mut buf).await;
                // Drop: close without answering the second request.
            });
        }
    });
    (addr, conns)
}

#[tokio::test]
async fn dead_pooled_connection_is_retried_for_idempotent_methods() {
    let (addr, conns) = flaky_origin().await;
    let rampart = Rampart::start(addr).await;
    let (first, _c) = rampart
        .request(b"GET /1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(first.status, 200);
    let (second, _c) = rampart
        .request(b"GET /2 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(
        second.status, 200,
        "the retry on a fresh connection is invisible to the client"
    );
    assert_eq!(conns.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn dead_pooled_connection_is_not_retried_for_post() {
    let (addr, _conns) = flaky_origin().await;
    let rampart = Rampart::start(addr).await;
    let (first, _c) = rampart
        .request(b"GET /1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(first.status, 200);
    let (second, _c) = rampart
        .request(b"POST /2 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\n\r\n")
        .await;
    assert_eq!(second.status, 502);
}

#[tokio::test]
async fn client_leaving_before_the_response_is_logged_as_499_and_cancels_the_origin_request() {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let (mut s, _) = listener.accept().await.unwrap();
        let mut buf = vec![0u8; 4096];
        let _ = s.read(&mut buf).await;
        // Never answer; report when rampart closes the origin connection.
        let mut rest = vec![0u8; 64];
        let n = s.read(&mut rest).await.unwrap_or(0);
        let _ = tx.send(n);
    });
    let rampart = Rampart::start(addr).await;
    let mut c = rampart.client().await;
    c.send(b"GET /slow HTTP/1.1\r\nHost: example.test\r\nUser-Agent: leaver\r\n\r\n")
        .await;
    // Let the request reach the origin, then leave.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    drop(c);
    let n = tokio::time::timeout(common::PATIENCE, rx)
        .await
        .expect("origin request not cancelled")
        .unwrap();
    assert_eq!(n, 0, "the origin connection is closed");
    let lines = rampart.log_lines(1).await;
    assert_eq!(lines[0]["EdgeResponseStatus"], 499);
    assert_eq!(lines[0]["OriginResponseStatus"], 0);
    assert_eq!(lines[0]["ClientRequestUserAgent"], "leaver");
}
