//! HTTP/2 floods: rapid reset, CONTINUATION, and PING and SETTINGS floods, each cut off with
//! the error RFC 9113 prescribes (GOAWAY ENHANCE_YOUR_CALM where it is a flood).

mod common;

use std::time::Duration;

use common::http2::*;
use common::{Behaviour, Origin, Rampart};

#[tokio::test]
async fn rapid_reset_floods_end_with_goaway() {
    let origin = Origin::start(Behaviour::Delayed(
        Duration::from_millis(200),
        b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n".to_vec(),
    ))
    .await;
    let r = Rampart::start(origin.addr).await;
    let mut raw = Raw::open(r.addr).await;
    // CVE-2023-44487: open a stream and reset it at once, many times, in one burst.
    let mut burst = Vec::new();
    for i in 0..2000u32 {
        let id = 2 * i + 1;
        burst.extend(frame(HEADERS, END_HEADERS | END_STREAM, id, &block(GOOD)));
        burst.extend(frame(RST_STREAM, 0, id, &8u32.to_be_bytes()));
    }
    let _ = raw.send(&burst).await;
    let mut goaway = None;
    while let Some((kind, _, _, payload)) = raw.frame().await {
        if kind == GOAWAY {
            goaway = Some(error_code(&payload, 4));
            break;
        }
    }
    assert_eq!(goaway, Some(ENHANCE_YOUR_CALM));
    assert!(
        origin.received().len() < 2000,
        "the flood did not turn into 2,000 origin requests"
    );
}

#[tokio::test]
async fn continuation_floods_are_cut_off() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut raw = Raw::open(r.addr).await;
    // A header block that never ends: HEADERS without END_HEADERS, then CONTINUATION frames
    // of fresh fields, far past any header-list limit.
    raw.send(&frame(HEADERS, 0, 1, &block(GOOD))).await.unwrap();
    let piece = block(&[("x-flood", &"a".repeat(100))]);
    let mut sent = 0usize;
    let mut closed = false;
    for _ in 0..20_000 {
        if raw.send(&frame(CONTINUATION, 0, 1, &piece)).await.is_err() {
            closed = true;
            break;
        }
        sent += piece.len();
    }
    if !closed {
        // The server must have given up on the connection by now.
        let mut end = None;
        while let Some((kind, _, stream, payload)) = raw.frame().await {
            if kind == GOAWAY {
                end = Some(error_code(&payload, 4));
                break;
            }
            if kind == HEADERS && stream == 1 {
                // A 431 for the stream is also an acceptable answer.
                end = Some(0);
                break;
            }
        }
        assert!(
            end.is_some() || raw.frame().await.is_none(),
            "sent {sent} bytes"
        );
    }
    assert!(origin.received().is_empty());
}

/// A client that floods PING or SETTINGS frames and never reads the replies: past the burst
/// rampart allows, GOAWAY with ENHANCE_YOUR_CALM, and the connection ends.
#[tokio::test]
async fn ping_and_settings_floods_end_with_goaway() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let burst = rampart::downstream::h2::CONTROL_FRAME_BURST as usize;
    for (kind, payload) in [(PING, &[7u8; 8][..]), (SETTINGS, &[][..])] {
        let mut raw = Raw::open(r.addr).await;
        let flood: Vec<u8> = (0..burst * 3)
            .flat_map(|_| frame(kind, 0, 0, payload))
            .collect();
        // Written without reading a byte of the replies.
        let _ = raw.send(&flood).await;
        raw.ack_pings = false;
        let mut goaway = None;
        while let Some((k, _, _, p)) = raw.frame().await {
            if k == GOAWAY {
                goaway = Some(error_code(&p, 4));
                break;
            }
        }
        assert_eq!(goaway, Some(ENHANCE_YOUR_CALM), "frame type {kind}");
        // Then the connection closes.
        while raw.frame().await.is_some() {}
    }
    // A client within the limits is served as before.
    let mut raw = Raw::open(r.addr).await;
    for _ in 0..10 {
        raw.send(&frame(PING, 0, 0, &[1; 8])).await.unwrap();
    }
    raw.send(&frame(HEADERS, END_HEADERS | END_STREAM, 1, &block(GOOD)))
        .await
        .unwrap();
    let (kind, _, _, _) = raw.answer(1).await.unwrap();
    assert_eq!(kind, HEADERS, "the request is answered");
}
