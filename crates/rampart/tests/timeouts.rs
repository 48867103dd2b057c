//! Client timeouts: slow heads and stalled bodies get 408 and a closed connection; idle
//! keep-alive connections are closed silently.

mod common;

use common::{Behaviour, Origin, Rampart};

async fn setup() -> (Origin, Rampart) {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_with(
        origin.addr,
        "client_header_timeout = \"300ms\"\nclient_body_timeout = \"300ms\"\nkeepalive_timeout = \"300ms\"\n",
        "",
        "",
    )
    .await;
    (origin, rampart)
}

#[tokio::test]
async fn slow_head_gets_408_and_close() {
    let (origin, rampart) = setup().await;
    let mut c = rampart.client().await;
    c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\nX-Slow: ")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 408);
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(resp.header("retry-after").is_some());
    assert!(c.is_closed().await);
    assert!(origin.received().is_empty());
    let lines = rampart.log_lines(1).await;
    assert_eq!(lines[0]["EdgeResponseStatus"], 408);
}

#[tokio::test]
async fn stalled_body_gets_408_and_close() {
    let (origin, rampart) = setup().await;
    let mut c = rampart.client().await;
    c.send(b"POST / HTTP/1.1\r\nHost: example.test\r\nContent-Length: 10\r\n\r\nhalf")
        .await;
    let resp = c.response(false).await;
    assert_eq!(resp.status, 408);
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert!(c.is_closed().await);
    assert!(
        origin.received().is_empty(),
        "the origin never sees a complete request"
    );
}

#[tokio::test]
async fn idle_keep_alive_connection_is_closed_silently() {
    let (_origin, rampart) = setup().await;
    let (resp, mut c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    // No bytes, just EOF: an idle connection gets no 408.
    let mut rest = Vec::new();
    let n = tokio::time::timeout(
        common::PATIENCE,
        tokio::io::AsyncReadExt::read_to_end(&mut c.stream, &mut rest),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(n, 0);
}

#[tokio::test]
async fn a_connection_that_sends_nothing_is_closed_without_a_response() {
    let (_origin, rampart) = setup().await;
    let mut c = rampart.client().await;
    let mut rest = Vec::new();
    let n = tokio::time::timeout(
        common::PATIENCE,
        tokio::io::AsyncReadExt::read_to_end(&mut c.stream, &mut rest),
    )
    .await
    .unwrap()
    .unwrap();
    assert_eq!(n, 0);
}
