//! HTTP/2 to origins: one shared connection for both client protocols.

mod common;

use std::net::SocketAddr;

use bytes::Bytes;
use common::Rampart;
use common::http2::*;

/// (method, authority, path, body) of a request an HTTP/2 origin received.
type Seen = (String, String, String, Vec<u8>);

/// A cleartext HTTP/2 origin (prior knowledge): records (method, authority, path, body) of
/// each request and counts connections; answers `h2 origin <path>` without Content-Length
/// (so it arrives chunked on the HTTP/1.1 side), or with it for paths starting `/len`.
struct H2Origin {
    addr: SocketAddr,
    seen: std::sync::Arc<std::sync::Mutex<Vec<Seen>>>,
    connections: std::sync::Arc<std::sync::atomic::AtomicUsize>,
}

impl H2Origin {
    async fn start() -> H2Origin {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let connections = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let (s, n) = (seen.clone(), connections.clone());
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                let s = s.clone();
                tokio::spawn(async move {
                    let Ok(mut conn) = h2::server::handshake(tcp).await else {
                        return;
                    };
                    while let Some(Ok((req, mut respond))) = conn.accept().await {
                        let s = s.clone();
                        tokio::spawn(async move {
                            let (parts, mut body) = req.into_parts();
                            let mut got = Vec::new();
                            while let Some(Ok(d)) = body.data().await {
                                let _ = body.flow_control().release_capacity(d.len());
                                got.extend_from_slice(&d);
                            }
                            let path = parts.uri.path().to_string();
                            s.lock().unwrap().push((
                                parts.method.to_string(),
                                parts
                                    .uri
                                    .authority()
                                    .map(|a| a.to_string())
                                    .unwrap_or_default(),
                                path.clone(),
                                got,
                            ));
                            let text = format!("h2 origin {path}");
                            let mut resp = http::Response::builder().status(200);
                            if path.starts_with("/len") {
                                resp = resp.header("content-length", text.len());
                            }
                            let head_only = parts.method == http::Method::HEAD;
                            let mut send = respond
                                .send_response(resp.body(()).unwrap(), head_only)
                                .unwrap();
                            if !head_only {
                                send.send_data(Bytes::from(text), true).unwrap();
                            }
                        });
                    }
                });
            }
        });
        H2Origin {
            addr,
            seen,
            connections,
        }
    }
}

#[tokio::test]
async fn http2_to_the_origin_is_one_shared_connection_for_both_client_protocols() {
    let origin = H2Origin::start().await;
    let zones = format!(
        "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{}\"\norigin_protocol = \"h2\"\n",
        origin.addr
    );
    let r = Rampart::start_zones("", &zones).await;

    // HTTP/1.1 clients: a chunked answer, a sized one, HEAD, and bodies both ways framed.
    let (resp, _c) = r
        .request(b"GET /a?q=1 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.text(), "h2 origin /a");
    let (resp, _c) = r
        .request(b"GET /len HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.header("content-length").as_deref(), Some("14"));
    assert_eq!(resp.text(), "h2 origin /len");
    let (resp, _c) = r
        .request(b"HEAD /h HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert!(resp.body.is_empty());
    let body: Vec<u8> = (0..100_000u32).map(|i| (i % 253) as u8).collect();
    let mut raw = format!(
        "POST /up HTTP/1.1\r\nHost: example.test\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    raw.extend_from_slice(&body);
    let (resp, _c) = r.request(&raw).await;
    assert_eq!(resp.status, 200);
    let (resp, _c) = r
        .request(b"POST /chunked HTTP/1.1\r\nHost: example.test\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);

    // HTTP/2 clients too.
    let mut c = h2c(r.addr).await;
    let resp = send(&mut c, get("http://example.test/from-h2"), None).await;
    assert_eq!(resp.status, 200);
    assert_eq!(resp.body, b"h2 origin /from-h2");

    // What the `http` crate refuses in a URI is percent-encoded on the way, not a 502.
    let (resp, _c) = r
        .request(b"GET /x<y>`?q=\"z\" HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);

    let seen = origin.seen.lock().unwrap().clone();
    let paths: Vec<&str> = seen.iter().map(|s| s.2.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/a",
            "/len",
            "/h",
            "/up",
            "/chunked",
            "/from-h2",
            "/x%3Cy%3E%60"
        ]
    );
    assert!(
        seen.iter().all(|s| s.1 == "example.test"),
        "authority: {seen:?}"
    );
    assert_eq!(seen[2].0, "HEAD");
    assert_eq!(seen[3].3, body);
    assert_eq!(seen[4].3, b"hello world");
    assert_eq!(
        origin.connections.load(std::sync::atomic::Ordering::SeqCst),
        1,
        "every request multiplexed on one HTTP/2 connection"
    );
}
