//! Access log lines, metrics, and graceful shutdown.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{Behaviour, Origin, Rampart};

#[tokio::test]
async fn every_request_is_logged_with_cloudflare_field_names() {
    let origin = Origin::start(Behaviour::Raw(
        b"HTTP/1.1 404 Not Found\r\nContent-Type: text/plain\r\nContent-Length: 4\r\n\r\nnope"
            .to_vec(),
    ))
    .await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, mut c) = rampart
        .request(b"GET /missing?x=1 HTTP/1.1\r\nHost: www.example.test\r\nUser-Agent: ua/1\r\nReferer: http://r.test/\r\n\r\n")
        .await;
    assert_eq!(resp.status, 404);
    c.send(b"GET / HTTP/1.1\r\nHost: unknown.test\r\n\r\n")
        .await;
    let generated = c.response(false).await;
    let lines = rampart.log_lines(2).await;
    assert_eq!(lines.len(), 2);
    let l = &lines[0];
    assert_eq!(l["RayID"], resp.header("rampart-ray").unwrap());
    assert_eq!(l["ZoneName"], "example.test");
    assert_eq!(l["ClientIP"], "127.0.0.1");
    assert_eq!(l["ClientRequestHost"], "www.example.test");
    assert_eq!(l["ClientRequestMethod"], "GET");
    assert_eq!(l["ClientRequestURI"], "/missing?x=1");
    assert_eq!(l["ClientRequestPath"], "/missing");
    assert_eq!(l["ClientRequestProtocol"], "HTTP/1.1");
    assert_eq!(l["ClientRequestUserAgent"], "ua/1");
    assert_eq!(l["ClientRequestReferer"], "http://r.test/");
    assert_eq!(l["EdgeResponseStatus"], 404);
    assert_eq!(l["OriginResponseStatus"], 404);
    assert_eq!(l["EdgeResponseContentType"], "text/plain");
    assert!(l["ClientRequestBytes"].as_u64().unwrap() > 50);
    assert!(l["EdgeResponseBytes"].as_u64().unwrap() > 4);
    assert!(l["EdgeStartTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(l["EdgeEndTimestamp"].as_str().unwrap().ends_with('Z'));
    assert!(l["OriginResponseDurationMs"].is_u64());
    assert_eq!(l["OriginIP"], "127.0.0.1");
    assert_eq!(l["ErrorCode"], 0);
    let g = &lines[1];
    assert_eq!(g["RayID"], generated.header("rampart-ray").unwrap());
    assert_eq!(g["EdgeResponseStatus"], 409);
    assert_eq!(g["OriginResponseStatus"], 0);
    assert_eq!(g["ErrorCode"], 1001);
    assert!(
        g["ErrorReason"]
            .as_str()
            .unwrap()
            .starts_with("dns_resolution_error: ")
    );
    assert_eq!(g["ZoneName"], "");
}

/// `access_log_fields` picks the fields of each line and their order.
#[tokio::test]
async fn lines_hold_the_configured_fields_in_their_order() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start_with(
        origin.addr,
        "access_log_fields = [\"EdgeResponseStatus\", \"ClientRequestUserAgent\", \"RayID\"]",
        "",
        "",
    )
    .await;
    let (resp, _c) = rampart
        .request(b"GET / HTTP/1.1\r\nHost: example.test\r\nUser-Agent: ua/2\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(rampart.log_lines(1).await.len(), 1);
    let text = std::fs::read_to_string(&rampart.log_path).unwrap();
    let ray = resp.header("rampart-ray").unwrap();
    assert_eq!(
        text,
        format!(
            "{{\"EdgeResponseStatus\":200,\"ClientRequestUserAgent\":\"ua/2\",\"RayID\":\"{ray}\"}}\n"
        )
    );
}

#[tokio::test]
async fn ray_ids_are_unique_per_request() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let mut seen = std::collections::HashSet::new();
    let mut c = rampart.client().await;
    for _ in 0..50 {
        c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert!(seen.insert(c.response(false).await.header("rampart-ray").unwrap()));
    }
}

#[tokio::test]
async fn malformed_requests_are_logged_with_what_is_known() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    let (resp, _c) = rampart
        .request(b"GET /%zz HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 400);
    let lines = rampart.log_lines(1).await;
    assert_eq!(lines[0]["EdgeResponseStatus"], 400);
    assert_eq!(lines[0]["RayID"], resp.header("rampart-ray").unwrap());
    assert!(lines[0]["ErrorReason"].as_str().unwrap().contains("offset"));
}

#[tokio::test]
async fn metrics_count_requests_errors_and_origin_statuses() {
    let origin = Origin::start(Behaviour::Echo).await;
    let rampart = Rampart::start(origin.addr).await;
    for raw in [
        &b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n"[..],
        b"GET / HTTP/1.1\r\nHost: nope.test\r\n\r\n",
    ] {
        let _ = rampart.request(raw).await;
    }
    let _ = rampart.log_lines(2).await;
    let m = rampart.metrics().await;
    for want in [
        "rampart_requests_total{zone=\"example.test\",protocol=\"HTTP/1.1\",status=\"200\"} 1",
        "rampart_requests_total{zone=\"\",protocol=\"HTTP/1.1\",status=\"409\"} 1",
        "rampart_generated_errors_total{error=\"dns_resolution_error\",status=\"409\"} 1",
        "rampart_origin_responses_total{zone=\"example.test\",status=\"200\"} 1",
        "rampart_origin_response_duration_seconds_count{zone=\"example.test\"} 1",
        "rampart_open_connections",
        "rampart_access_log_dropped_lines_total 0",
    ] {
        assert!(m.contains(want), "missing {want} in:\n{m}");
    }
}

#[tokio::test]
async fn a_failing_log_sink_drops_and_counts_lines_without_stalling_traffic() {
    if !std::path::Path::new("/dev/full").exists() {
        return;
    }
    let origin = Origin::start(Behaviour::Echo).await;
    let src = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\nadmin_listen = \"127.0.0.1:0\"\naccess_log = \"/dev/full\"\n\
         [[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{}\"\n",
        origin.addr
    );
    let loaded = rampart::config::load_str("t", &common::without_bic(&src), None).unwrap();
    let metrics = Arc::new(rampart::observe::Metrics::new());
    let log = rampart::observe::AccessLog::start(
        &loaded.config.server.access_log,
        &loaded.config.server.access_log_fields,
        metrics.clone(),
    )
    .unwrap();
    let server = rampart::listen::Server::start(loaded.config, log, metrics.clone())
        .await
        .unwrap();
    let mut c = common::Client::connect(server.local_addrs[0]).await;
    for _ in 0..20 {
        c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
            .await;
        assert_eq!(c.response(false).await.status, 200);
    }
    let deadline = tokio::time::Instant::now() + common::PATIENCE;
    while metrics.log_dropped().get() < 20 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert_eq!(metrics.log_dropped().get(), 20);
}

#[tokio::test]
async fn shutdown_lets_in_flight_requests_finish() {
    let origin = Origin::start(Behaviour::Delayed(
        Duration::from_millis(500),
        b"HTTP/1.1 200 OK\r\nContent-Length: 4\r\n\r\ndone".to_vec(),
    ))
    .await;
    let mut rampart = Rampart::start(origin.addr).await;
    let mut c = rampart.client().await;
    c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let server = rampart.server.take().unwrap();
    let shutdown = tokio::spawn(server.shutdown());
    let resp = c.response(false).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "done");
    assert_eq!(resp.header("connection").as_deref(), Some("close"));
    assert_eq!(shutdown.await.unwrap(), 0, "no connection left open");
    assert!(
        tokio::net::TcpStream::connect(rampart.addr).await.is_err(),
        "no longer accepting"
    );
}
