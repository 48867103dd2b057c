//! HTTP/2 clients for tests: the h2 crate's, and raw frames for what a well-behaved client
//! library will not send.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Request, StatusCode};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use super::PATIENCE;

/// An h2 client over cleartext TCP (prior knowledge).
pub async fn h2c(addr: SocketAddr) -> h2::client::SendRequest<Bytes> {
    let tcp = TcpStream::connect(addr).await.unwrap();
    let (client, conn) = h2::client::handshake(tcp).await.unwrap();
    tokio::spawn(async move {
        let _ = conn.await;
    });
    client
}

/// A response as the h2 client saw it.
pub struct H2Response {
    pub status: StatusCode,
    pub headers: http::HeaderMap,
    pub body: Vec<u8>,
}

impl H2Response {
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }
}

pub async fn send(
    client: &mut h2::client::SendRequest<Bytes>,
    request: Request<()>,
    body: Option<Vec<u8>>,
) -> H2Response {
    tokio::time::timeout(PATIENCE, async {
        let mut ready = client.clone().ready().await.unwrap();
        let end = body.is_none();
        let (response, mut stream) = ready.send_request(request, end).unwrap();
        if let Some(body) = body {
            // Send in 16 KB pieces, as flow control allows.
            for piece in body.chunks(16 * 1024) {
                stream.reserve_capacity(piece.len());
                let mut piece = Bytes::copy_from_slice(piece);
                while !piece.is_empty() {
                    let n = std::future::poll_fn(|c| stream.poll_capacity(c))
                        .await
                        .unwrap()
                        .unwrap();
                    let part = piece.split_to(n.min(piece.len()));
                    stream.send_data(part, false).unwrap();
                }
            }
            stream.send_data(Bytes::new(), true).unwrap();
        }
        let response = response.await.unwrap();
        let (parts, mut recv) = response.into_parts();
        let mut body = Vec::new();
        while let Some(data) = recv.data().await {
            let data = data.unwrap();
            let _ = recv.flow_control().release_capacity(data.len());
            body.extend_from_slice(&data);
        }
        H2Response {
            status: parts.status,
            headers: parts.headers,
            body,
        }
    })
    .await
    .expect("no HTTP/2 response in time")
}

pub fn get(uri: &str) -> Request<()> {
    Request::get(uri).body(()).unwrap()
}

pub const SETTINGS: u8 = 0x4;
pub const HEADERS: u8 = 0x1;
pub const DATA: u8 = 0x0;
pub const RST_STREAM: u8 = 0x3;
pub const PING: u8 = 0x6;
pub const GOAWAY: u8 = 0x7;
pub const CONTINUATION: u8 = 0x9;
pub const END_STREAM: u8 = 0x1;
pub const END_HEADERS: u8 = 0x4;
pub const PROTOCOL_ERROR: u32 = 0x1;
pub const ENHANCE_YOUR_CALM: u32 = 0xb;

pub fn frame(kind: u8, flags: u8, stream: u32, payload: &[u8]) -> Vec<u8> {
    let len = payload.len() as u32;
    let mut out = vec![(len >> 16) as u8, (len >> 8) as u8, len as u8, kind, flags];
    out.extend_from_slice(&stream.to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// HPACK "literal header field without indexing, new name", no Huffman (RFC 7541 §6.2.2).
pub fn literal(name: &str, value: &str) -> Vec<u8> {
    assert!(name.len() < 127 && value.len() < 127);
    let mut out = vec![0x00, name.len() as u8];
    out.extend_from_slice(name.as_bytes());
    out.push(value.len() as u8);
    out.extend_from_slice(value.as_bytes());
    out
}

pub fn block(fields: &[(&str, &str)]) -> Vec<u8> {
    fields.iter().flat_map(|(n, v)| literal(n, v)).collect()
}

pub const GOOD: &[(&str, &str)] = &[
    (":method", "GET"),
    (":scheme", "http"),
    (":path", "/"),
    (":authority", "example.test"),
];

/// A raw HTTP/2 connection: preface and an empty SETTINGS sent.
pub struct Raw {
    pub tcp: TcpStream,
    pub buf: Vec<u8>,
    /// Answer PINGs (a well-behaved client does).
    pub ack_pings: bool,
}

impl Raw {
    pub async fn open(addr: SocketAddr) -> Raw {
        let mut tcp = TcpStream::connect(addr).await.unwrap();
        tcp.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            .await
            .unwrap();
        tcp.write_all(&frame(SETTINGS, 0, 0, &[])).await.unwrap();
        Raw {
            tcp,
            buf: Vec::new(),
            ack_pings: true,
        }
    }

    pub async fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.tcp.write_all(bytes).await
    }

    /// The next frame (type, flags, stream, payload); `None` once the server closed.
    pub async fn frame(&mut self) -> Option<(u8, u8, u32, Vec<u8>)> {
        loop {
            if self.buf.len() >= 9 {
                let len = (usize::from(self.buf[0]) << 16)
                    | (usize::from(self.buf[1]) << 8)
                    | usize::from(self.buf[2]);
                if self.buf.len() >= 9 + len {
                    let kind = self.buf[3];
                    let flags = self.buf[4];
                    let stream =
                        u32::from_be_bytes(self.buf[5..9].try_into().unwrap()) & 0x7fff_ffff;
                    let payload = self.buf[9..9 + len].to_vec();
                    self.buf.drain(..9 + len);
                    // Acknowledge SETTINGS and PING, as any client does.
                    if kind == SETTINGS && flags & 1 == 0 {
                        let _ = self.tcp.write_all(&frame(SETTINGS, 1, 0, &[])).await;
                    }
                    if kind == PING && flags & 1 == 0 && self.ack_pings {
                        let _ = self.tcp.write_all(&frame(PING, 1, 0, &payload)).await;
                    }
                    return Some((kind, flags, stream, payload));
                }
            }
            match tokio::time::timeout(PATIENCE, self.tcp.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) | Ok(Err(_)) => return None,
                Ok(Ok(_)) => {}
                Err(_) => panic!("no frame from the server in time"),
            }
        }
    }

    /// Reads frames until one for `stream` (or a GOAWAY) arrives.
    pub async fn answer(&mut self, stream: u32) -> Option<(u8, u8, u32, Vec<u8>)> {
        while let Some(f) = self.frame().await {
            if f.2 == stream || f.0 == GOAWAY {
                return Some(f);
            }
        }
        None
    }
}

pub fn error_code(payload: &[u8], at: usize) -> u32 {
    u32::from_be_bytes(payload[at..at + 4].try_into().unwrap())
}
