//! HTTP/2 to an origin (`origin_protocol = "h2"`), spoken natively: each request is a stream
//! on the origin's one shared connection (ALPN `h2` over TLS, prior knowledge in cleartext).

use std::future::{Future, poll_fn};
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use h2::RecvStream;
use h2::client::SendRequest;
use http::{HeaderName, HeaderValue};
use rampart_http::BodyFraming;

use super::{
    ClientSide, Failure, Origin, OriginBody, OriginConn, OriginError, OriginRequest,
    OriginResponse, Policy, connect, forward,
};
use crate::h2_flow::{SendFailed, never_indexed, send_data, trailer_lines};
use crate::message::{BodyCut, BodyKind, OriginFields, Piece, RAY_ID_HEADER, ResponseHead};
use crate::observe::Metrics;
use crate::stream::OriginStream;

/// The origin's one HTTP/2 connection, opened on first use and again after it closes.
#[derive(Default)]
pub(super) struct SharedConnection {
    current: tokio::sync::Mutex<Option<Shared>>,
}

struct Shared {
    send: SendRequest<Bytes>,
    closed: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl SharedConnection {
    /// The live connection, or a new one: its handle, address, and whether it served
    /// requests before (and so may turn out dead on first use).
    async fn get(
        &self,
        up: &Origin,
        policy: &Policy,
        metrics: &Metrics,
        zone: &str,
    ) -> Result<(SendRequest<Bytes>, SocketAddr, bool), OriginError> {
        let mut current = self.current.lock().await;
        if let Some(s) = current.as_ref()
            && !s.closed.load(Ordering::Acquire)
        {
            return Ok((s.send.clone(), s.addr, true));
        }
        let conn = connect::connect(&up.addr, up.tls.as_ref(), policy, metrics, zone).await?;
        let addr = conn.addr;
        let shared = handshake(conn).await?;
        let send = shared.send.clone();
        *current = Some(shared);
        Ok((send, addr, false))
    }

    /// Marks the connection dead, so the next request opens a new one.
    fn mark_closed(&self) {
        if let Ok(current) = self.current.try_lock()
            && let Some(s) = current.as_ref()
        {
            s.closed.store(true, Ordering::Release);
        }
    }
}

/// HTTP/2 on a fresh connection: ALPN must have chosen `h2` over TLS; cleartext is prior
/// knowledge. The connection is driven by a task of its own until it closes.
async fn handshake(conn: OriginConn) -> Result<Shared, OriginError> {
    let closed = Arc::new(AtomicBool::new(false));
    let flag = closed.clone();
    let send = match conn.stream {
        OriginStream::Tls(tls) => {
            if tls.get_ref().1.alpn_protocol() != Some(b"h2") {
                return Err(OriginError::TlsHandshake(
                    "the origin did not accept HTTP/2 (ALPN h2), but origin_protocol = \"h2\""
                        .into(),
                ));
            }
            let (send, c) = h2::client::handshake(*tls).await.map_err(h2_failure)?;
            tokio::spawn(async move {
                let _ = c.await;
                flag.store(true, Ordering::Release);
            });
            send
        }
        OriginStream::Plain(tcp) => {
            let (send, c) = h2::client::handshake(tcp).await.map_err(h2_failure)?;
            tokio::spawn(async move {
                let _ = c.await;
                flag.store(true, Ordering::Release);
            });
            send
        }
    };
    Ok(Shared {
        send,
        closed,
        addr: conn.addr,
    })
}

fn h2_failure(e: h2::Error) -> OriginError {
    if e.is_io() || e.is_go_away() || e.is_reset() {
        OriginError::ClosedBeforeResponse
    } else {
        OriginError::InvalidResponse(format!("HTTP/2 with the origin failed: {e}"))
    }
}

/// Forwarded fields added to an HTTP/2 request's header map.
struct MapWriter<'m> {
    map: &'m mut http::HeaderMap,
    scratch: Vec<u8>,
}

impl forward::FieldSink for MapWriter<'_> {
    fn field(&mut self, name: &[u8], value: &[u8]) {
        let (Ok(n), Ok(v)) = (HeaderName::from_bytes(name), HeaderValue::from_bytes(value)) else {
            return;
        };
        // The ray id is unique per request: never worth a place in HPACK's table.
        let v = if n == RAY_ID_HEADER {
            never_indexed(v)
        } else {
            v
        };
        self.map.append(n, v);
    }

    fn built(&mut self, name: &[u8], value: impl Fn(&mut Vec<u8>)) {
        let mut scratch = std::mem::take(&mut self.scratch);
        scratch.clear();
        value(&mut scratch);
        self.field(name, &scratch);
        self.scratch = scratch;
    }
}

/// A health check over HTTP/2 on a fresh connection: one `GET path` stream, answered by
/// the status of the response head; the connection closes after it.
pub(super) async fn probe(
    conn: OriginConn,
    tls: bool,
    host: &str,
    path: &str,
) -> Result<u16, OriginError> {
    let shared = handshake(conn).await?;
    let scheme = if tls { "https" } else { "http" };
    let mut request = http::Request::new(());
    *request.uri_mut() = format!("{scheme}://{host}{}", encode_for_http_crate(path))
        .parse()
        .map_err(|e| OriginError::InvalidResponse(format!("health check target: {e}")))?;
    request.headers_mut().insert(
        http::header::USER_AGENT,
        HeaderValue::from_static("rampart-health-check"),
    );
    let mut send = shared.send.ready().await.map_err(h2_failure)?;
    let (response, _) = send.send_request(request, true).map_err(h2_failure)?;
    let response = response.await.map_err(h2_failure)?;
    Ok(response.status().as_u16())
}

/// `target` as the `http` crate takes a path and query: the few bytes rampart accepts from
/// clients but `http` refuses (`<`, `>` and `` ` `` in a path, `"`, `<` and `>` in a query)
/// percent-encoded, which an origin reads as the same URL.
fn encode_for_http_crate(target: &str) -> std::borrow::Cow<'_, str> {
    let query = target.find('?').unwrap_or(target.len());
    let refused = |i: usize, b: u8| match b {
        b'<' | b'>' => true,
        b'`' => i < query,
        b'"' => i > query,
        _ => false,
    };
    if !target.bytes().enumerate().any(|(i, b)| refused(i, b)) {
        return std::borrow::Cow::Borrowed(target);
    }
    let mut out = String::with_capacity(target.len() + 8);
    for (i, c) in target.char_indices() {
        if c.is_ascii() && refused(i, c as u8) {
            out.push_str(&format!("%{:02X}", c as u8));
        } else {
            out.push(c);
        }
    }
    std::borrow::Cow::Owned(out)
}

/// The request as an HTTP/2 request: `:authority` from Host, the forwarded fields, and the
/// declared Content-Length.
fn build_request(req: &OriginRequest<'_>, scheme: &str) -> Result<http::Request<()>, OriginError> {
    let head = req.head;
    let mut authority = Vec::new();
    forward::authority(req, &mut authority);
    let uri = format!(
        "{scheme}://{}{}",
        String::from_utf8_lossy(&authority),
        encode_for_http_crate(&req.path_and_query())
    );
    let mut request = http::Request::new(());
    *request.method_mut() = http::Method::from_bytes(head.method().as_bytes())
        .map_err(|e| OriginError::InvalidResponse(format!("method: {e}")))?;
    *request.uri_mut() = uri
        .parse()
        .map_err(|e| OriginError::InvalidResponse(format!("request-target: {e}")))?;
    forward::each_field(
        req,
        false,
        &mut MapWriter {
            map: request.headers_mut(),
            scratch: Vec::new(),
        },
    );
    let headers = request.headers_mut();
    if let BodyFraming::ContentLength(n) = head.body() {
        headers.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    Ok(request)
}

/// What waiting for the response yields next.
enum Next {
    Interim(Result<http::Response<()>, h2::Error>),
    Final(Result<http::Response<RecvStream>, h2::Error>),
}

/// Sends the request as a stream on the shared connection and waits for the response head,
/// relaying interim responses.
pub(super) async fn exchange<'u, C: ClientSide>(
    up: &'u Origin,
    policy: &Policy,
    metrics: &Metrics,
    zone: &str,
    req: &OriginRequest<'_>,
    client: &mut C,
) -> Result<OriginResponse<'u>, Failure<C::Abort>> {
    let (send, addr, reused) = up
        .shared_h2
        .get(up, policy, metrics, zone)
        .await
        .map_err(Failure::Origin)?;
    let dead = |up: &Origin| {
        up.shared_h2.mark_closed();
        if reused {
            Failure::DeadPooled
        } else {
            Failure::Origin(OriginError::ClosedBeforeResponse)
        }
    };
    let mut send = match send.ready().await {
        Ok(s) => s,
        Err(_) => return Err(dead(up)),
    };
    let scheme = if up.addr.tls { "https" } else { "http" };
    let request = build_request(req, scheme).map_err(Failure::Origin)?;
    let Ok((response, mut body_out)) = send.send_request(request, !req.has_body()) else {
        return Err(dead(up));
    };
    let sent_at = Instant::now();
    if req.has_body() {
        send_body(&mut body_out, policy, client).await?;
    }
    let response = response_head(response, policy, client).await?;
    Ok(origin_response(req, policy, response, addr, sent_at))
}

/// Streams the request body, as the origin's flow control allows.
async fn send_body<C: ClientSide>(
    body_out: &mut h2::SendStream<Bytes>,
    policy: &Policy,
    client: &mut C,
) -> Result<(), Failure<C::Abort>> {
    loop {
        let chunk = client.body_chunk().await.map_err(Failure::Client)?;
        let (data, end) = match chunk {
            Some(data) => (data, false),
            None => (Bytes::new(), true),
        };
        // An origin that gives no window for the response timeout ends the exchange.
        match send_data(body_out, data, end, policy.response).await {
            Ok(()) => {}
            Err(SendFailed::Closed) => {
                return Err(Failure::Origin(OriginError::ClosedBeforeResponse));
            }
            Err(SendFailed::Stalled) => {
                return Err(Failure::Origin(OriginError::ResponseTimedOut(
                    policy.response,
                )));
            }
        }
        if end {
            return Ok(());
        }
    }
}

/// Waits for the final response head, relaying interim responses, noticing a client that
/// leaves.
async fn response_head<C: ClientSide>(
    mut response: h2::client::ResponseFuture,
    policy: &Policy,
    client: &mut C,
) -> Result<http::Response<RecvStream>, Failure<C::Abort>> {
    let deadline = tokio::time::sleep(policy.response);
    tokio::pin!(deadline);
    loop {
        let next = poll_fn(|cx| {
            if let Poll::Ready(Some(i)) = response.poll_informational(cx) {
                return Poll::Ready(Next::Interim(i));
            }
            std::pin::Pin::new(&mut response).poll(cx).map(Next::Final)
        });
        tokio::select! {
            biased;
            n = next => match n {
                Next::Interim(Ok(i)) => {
                    let status = i.status().as_u16();
                    let (parts, ()) = i.into_parts();
                    let head = ResponseHead::relayed(status, OriginFields::Http2(parts.headers));
                    client.interim(head).await.map_err(Failure::Client)?;
                }
                Next::Interim(Err(e)) | Next::Final(Err(e)) => {
                    return Err(Failure::Origin(h2_failure(e)));
                }
                Next::Final(Ok(r)) => return Ok(r),
            },
            abort = client.gone() => return Err(Failure::Client(abort)),
            _ = deadline.as_mut() => {
                return Err(Failure::Origin(OriginError::ResponseTimedOut(policy.response)));
            }
        }
    }
}

/// The origin's answer as rampart relays it: the body framed by its Content-Length when it
/// declared one (h2 holds the DATA frames to it), else streamed.
fn origin_response<'u>(
    req: &OriginRequest<'_>,
    policy: &Policy,
    response: http::Response<RecvStream>,
    addr: SocketAddr,
    sent_at: Instant,
) -> OriginResponse<'u> {
    let (parts, stream) = response.into_parts();
    let status = parts.status.as_u16();
    let declared = parts
        .headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| std::str::from_utf8(v.as_bytes()).ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    let bodiless = req.head.is_head() || status == 204 || status == 304 || status < 200;
    let kind = match declared {
        _ if bodiless => BodyKind::None,
        Some(n) => BodyKind::Length(n),
        None if stream.is_end_stream() => BodyKind::Length(0),
        None => BodyKind::Stream,
    };
    let mut head = ResponseHead::relayed(status, OriginFields::Http2(parts.headers));
    head.content_length = match kind {
        BodyKind::Length(n) => Some(n),
        BodyKind::None if status >= 200 && status != 204 => declared,
        _ => None,
    };
    OriginResponse {
        head,
        kind,
        body: OriginBody::Http2(Body {
            stream,
            current: Bytes::new(),
            done: bodiless,
            trailers: Vec::new(),
            idle: policy.response,
        }),
        origin_ip: addr.ip(),
        sent_at,
        in_flight: None,
    }
}

/// A response body from a stream of an HTTP/2 origin.
pub struct Body {
    stream: RecvStream,
    current: Bytes,
    done: bool,
    trailers: Vec<u8>,
    idle: Duration,
}

impl Body {
    pub(super) async fn next_piece(&mut self) -> Result<Piece<'_>, BodyCut> {
        if self.done {
            return Ok(Piece::END);
        }
        let next = tokio::time::timeout(self.idle, self.stream.data()).await;
        match next {
            Err(_) => Err(BodyCut(format!(
                "the origin sent no more of the body for {}",
                humantime::format_duration(self.idle)
            ))),
            Ok(Some(Err(e))) => Err(BodyCut(format!("the origin's stream failed: {e}"))),
            Ok(Some(Ok(data))) => {
                let _ = self.stream.flow_control().release_capacity(data.len());
                self.current = data;
                let last = self.stream.is_end_stream();
                self.done = last;
                Ok(Piece {
                    data: &self.current,
                    last,
                    trailers: None,
                })
            }
            Ok(None) => {
                self.done = true;
                if let Ok(Ok(Some(map))) =
                    tokio::time::timeout(self.idle, self.stream.trailers()).await
                {
                    self.trailers = trailer_lines(&map);
                }
                Ok(Piece {
                    data: &[],
                    last: true,
                    trailers: (!self.trailers.is_empty()).then_some(&self.trailers[..]),
                })
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every target rampart accepts from a client becomes a URI the `http` crate takes.
    #[test]
    fn accepted_targets_all_make_http_uris() {
        for t in [
            "/a<b>`c\"d?q=<\"`>",
            "/caf\u{e9}?q=\u{2603}",
            "/a|b^c{d}[e]\\f",
            "/?a[]=1&q={a:1}",
        ] {
            let uri = format!("http://a.test{}", encode_for_http_crate(t));
            assert!(uri.parse::<http::Uri>().is_ok(), "{uri}");
        }
        assert!(matches!(
            encode_for_http_crate("/plain?q=1"),
            std::borrow::Cow::Borrowed(_)
        ));
        assert_eq!(encode_for_http_crate("/a`b?c`\""), "/a%60b?c`%22");
    }
}
