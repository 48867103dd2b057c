//! HTTP/2 to the origin (`origin_protocol = "h2"`).
//!
//! Both client-side drivers forward requests as HTTP/1.1 bytes on an [`OriginConn`]. For an
//! HTTP/2 origin, that connection is an in-process pipe to an adapter task: the adapter reads
//! the HTTP/1.1 request rampart wrote (already validated and re-serialised), sends it as a
//! stream on the origin's one shared HTTP/2 connection, and writes the answer back as
//! HTTP/1.1. The drivers, their timeouts, 499 detection and error mapping stay one code path
//! whatever the origin speaks; the cost is one serialisation and parse per request.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use h2::client::SendRequest;
use rampart_http::{BodyFraming, ChunkedDecoder, Limits, Parse};
use tokio::io::{AsyncReadExt, AsyncWriteExt, DuplexStream};

use super::{OriginConn, OriginError, OriginPool};
use crate::config::Zone;
use crate::observe::Metrics;
use crate::stream::OriginStream;

/// Buffer of the in-process pipe between a driver and its adapter.
const PIPE_BUFFER: usize = 64 * 1024;

/// The origin's shared HTTP/2 connection.
pub(super) struct Shared {
    send: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
}

impl OriginPool {
    /// A pipe to an adapter speaking HTTP/2 to the origin, over the shared connection (opened
    /// first if there is none or it has closed: connect errors map as for HTTP/1.1, plus 525
    /// when the origin does not accept HTTP/2).
    pub(super) async fn checkout_h2(
        &self,
        zone: &Zone,
        metrics: &Metrics,
    ) -> Result<OriginConn, OriginError> {
        let (send, addr) = {
            let mut shared = self.h2.lock().await;
            let alive = shared
                .as_ref()
                .filter(|s| !s.0.closed.load(Ordering::Acquire));
            match alive {
                Some((s, addr)) => (s.send.clone(), *addr),
                None => {
                    let conn = self.connect(zone, metrics).await?;
                    let addr = conn.addr;
                    let s = handshake(conn).await?;
                    let send = s.send.clone();
                    *shared = Some((s, addr));
                    (send, addr)
                }
            }
        };
        let (ours, theirs) = tokio::io::duplex(PIPE_BUFFER);
        let scheme = if self.addr.tls { "https" } else { "http" };
        tokio::spawn(adapter(theirs, send, scheme));
        Ok(OriginConn::new(OriginStream::Pipe(ours), addr))
    }
}

/// HTTP/2 on a fresh connection: ALPN must have chosen `h2` over TLS; cleartext is prior
/// knowledge.
async fn handshake(conn: OriginConn) -> Result<Shared, OriginError> {
    let closed = Arc::new(AtomicBool::new(false));
    let (send, driver) = match conn.stream {
        OriginStream::Tls(tls) => {
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(OriginError::TlsHandshake(
                    "the origin did not accept HTTP/2 (ALPN h2), but origin_protocol = \"h2\""
                        .into(),
                ));
            }
            let (send, c) = h2::client::handshake(*tls).await.map_err(h2_failure)?;
            let flag = closed.clone();
            (
                send,
                tokio::spawn(async move {
                    let _ = c.await;
                    flag.store(true, Ordering::Release);
                }),
            )
        }
        OriginStream::Plain(tcp) => {
            let (send, c) = h2::client::handshake(tcp).await.map_err(h2_failure)?;
            let flag = closed.clone();
            (
                send,
                tokio::spawn(async move {
                    let _ = c.await;
                    flag.store(true, Ordering::Release);
                }),
            )
        }
        OriginStream::Pipe(_) => unreachable!("connect opens sockets"),
    };
    drop(driver);
    Ok(Shared { send, closed })
}

fn h2_failure(e: h2::Error) -> OriginError {
    OriginError::InvalidResponse(format!("HTTP/2 with the origin failed: {e}"))
}

/// Serves HTTP/1.1 requests from the pipe over HTTP/2 until the pipe or the connection ends.
/// On any failure it closes the pipe, which the driver reports as the origin closing.
async fn adapter(mut pipe: DuplexStream, send: SendRequest<Bytes>, scheme: &'static str) {
    let mut buf = Vec::new();
    // The head was written by rampart from a request that passed the client-side limits.
    let limits = Limits {
        max_uri_bytes: usize::MAX,
        max_header_bytes: usize::MAX,
        max_headers: usize::MAX,
        ..Limits::default()
    };
    loop {
        let (head, len) = loop {
            if !buf.is_empty() {
                match rampart_http::parse_request_head(&buf, &limits) {
                    Ok(Parse::Complete(done)) => break done,
                    Ok(Parse::Partial) => {}
                    Err(_) => return,
                }
            }
            match pipe.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return,
                Ok(_) => {}
            }
        };
        buf.drain(..len);
        if exchange(&mut pipe, &mut buf, &head, send.clone(), scheme)
            .await
            .is_err()
        {
            return;
        }
    }
}

/// One request: head and body to the origin, the answer back as HTTP/1.1.
async fn exchange(
    pipe: &mut DuplexStream,
    buf: &mut Vec<u8>,
    head: &rampart_http::RequestHead,
    send: SendRequest<Bytes>,
    scheme: &'static str,
) -> Result<(), ()> {
    let authority = head.header("host").unwrap_or(b"");
    let uri = format!(
        "{scheme}://{}{}",
        String::from_utf8_lossy(authority),
        head.path_and_query()
    );
    let mut request = http::Request::builder().method(head.method()).uri(uri);
    for (name, value) in head.headers() {
        if head.is_hop_by_hop(name)
            || ["host", "transfer-encoding", "te", "keep-alive", "upgrade"]
                .iter()
                .any(|h| name.eq_ignore_ascii_case(h))
        {
            continue;
        }
        if name.eq_ignore_ascii_case(crate::pipeline::RAY_ID_HEADER) {
            let Ok(v) = http::HeaderValue::from_bytes(value) else {
                continue;
            };
            request = request.header(name, crate::h2::ray_id_value(v));
        } else {
            request = request.header(name, value);
        }
    }
    let request = request.body(()).map_err(|_| ())?;
    let has_body = head.body() != BodyFraming::None;
    let mut ready = send.ready().await.map_err(|_| ())?;
    let (response, mut body_out) = ready.send_request(request, !has_body).map_err(|_| ())?;
    match head.body() {
        BodyFraming::None => {}
        BodyFraming::ContentLength(mut remaining) => {
            while remaining > 0 {
                if buf.is_empty() && pipe.read_buf(buf).await.map_err(|_| ())? == 0 {
                    return Err(());
                }
                let n = (remaining as usize).min(buf.len());
                let piece: Vec<u8> = buf.drain(..n).collect();
                remaining -= n as u64;
                crate::h2::send_data(&mut body_out, Bytes::from(piece), remaining == 0).await?;
            }
        }
        BodyFraming::Chunked => {
            let mut decoder = ChunkedDecoder::new(rampart_http::DEFAULT_MAX_TRAILER_BYTES);
            loop {
                let mut out = Vec::new();
                let used = decoder.decode(buf, &mut out).map_err(|_| ())?;
                buf.drain(..used);
                let done = decoder.is_done();
                if !out.is_empty() || done {
                    crate::h2::send_data(&mut body_out, Bytes::from(out), done).await?;
                }
                if done {
                    break;
                }
                if pipe.read_buf(buf).await.map_err(|_| ())? == 0 {
                    return Err(());
                }
            }
        }
    }
    let response = response.await.map_err(|_| ())?;
    let (parts, mut body) = response.into_parts();
    let status = parts.status.as_u16();
    let mut out = Vec::with_capacity(1024);
    rampart_http::write_status_line(
        &mut out,
        rampart_http::Version::Http11,
        status,
        parts.status.canonical_reason().unwrap_or(""),
    );
    let length = parts.headers.get(http::header::CONTENT_LENGTH).is_some();
    for (name, value) in &parts.headers {
        rampart_http::write_header(&mut out, name.as_str(), value.as_bytes());
    }
    let bodiless = head.is_head() || status == 204 || status == 304 || status < 200;
    let chunked = !length && !bodiless && !body.is_end_stream();
    if chunked {
        rampart_http::write_header(&mut out, "transfer-encoding", b"chunked");
    } else if !length && !bodiless {
        rampart_http::write_header(&mut out, "content-length", b"0");
    }
    rampart_http::write_end_of_head(&mut out);
    pipe.write_all(&out).await.map_err(|_| ())?;
    while let Some(data) = body.data().await {
        let data = data.map_err(|_| ())?;
        let _ = body.flow_control().release_capacity(data.len());
        out.clear();
        if chunked {
            rampart_http::write_chunk(&mut out, &data);
        } else if !bodiless {
            out.extend_from_slice(&data);
        }
        pipe.write_all(&out).await.map_err(|_| ())?;
    }
    if chunked {
        out.clear();
        rampart_http::write_last_chunk(&mut out);
        pipe.write_all(&out).await.map_err(|_| ())?;
    }
    Ok(())
}
