//! The HTTP/2 driver: h2's server on the client side, the very same pipeline, HTTP/1.1 to the
//! origin.
//!
//! Each stream's pseudo-headers and fields are written out as an HTTP/1.1 request head and
//! parsed by rampart-http, so an HTTP/2 request meets exactly the checks, limits and status
//! codes of an HTTP/1.1 one (414, 431, 400 for a bad field value, 501 for CONNECT). What only
//! HTTP/2 can get wrong (connection-specific fields, uppercase names, pseudo-header misuse, a
//! Content-Length that disagrees with the DATA frames, floods) is h2's to refuse, with the
//! stream or connection error RFC 9113 prescribes.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use h2::server::SendResponse;
use h2::{RecvStream, SendStream};
use http::{HeaderMap, HeaderValue, Request, Response, StatusCode};
use rampart_http::{BodyFraming, Parse};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::time::Instant as TokioInstant;

use crate::errors::EdgeError;
use crate::h1::forward::{
    ORIGIN_READ, OriginBodyStream, custom_page, origin_error_page, origin_request_head,
    take_response_head,
};
use crate::h1::respond::{Answering, error_response, fill_record};
use crate::listen::Runtime;
use crate::observe::{LogRecord, Metrics};
use crate::origin::{OriginConn, OriginError};
use crate::pipeline::{self, Decision, Protocol, RAY_ID_HEADER, Rejection, RequestContext};
use crate::state::{Generation, ZoneState};

/// The connection preface a client sends first in cleartext HTTP/2 (RFC 9113 §3.4).
pub const PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/// Most concurrent streams a client may open on one connection.
pub const MAX_CONCURRENT_STREAMS: u32 = 128;

/// HTTP/2's default stream window (RFC 9113 §6.9.2), which rampart keeps.
const STREAM_WINDOW: u32 = 65_535;

/// The connection's receive window: every stream's window at once.
const CONNECTION_WINDOW: u32 = MAX_CONCURRENT_STREAMS * STREAM_WINDOW;

/// Streams a client may reset before rampart has even accepted them (rapid reset,
/// CVE-2023-44487): more than this pending at once is a GOAWAY (ENHANCE_YOUR_CALM).
pub const MAX_PENDING_RESET_STREAMS: usize = 20;

/// Streams rampart may reset because of the client's errors before it ends the connection.
pub const MAX_LOCAL_ERROR_RESETS: usize = 256;

/// One read from the origin towards a stream.
const READ_CHUNK: usize = 16 * 1024;

/// What a stream needs from its connection.
#[derive(Clone)]
struct StreamCx {
    rt: Arc<Runtime>,
    peer: SocketAddr,
    sni: Option<Arc<str>>,
    tls: bool,
}

/// Serves one HTTP/2 connection until the client closes it, it idles out, or shutdown.
pub(crate) async fn serve<T>(
    io: T,
    sni: Option<Box<str>>,
    tls: bool,
    peer: SocketAddr,
    rt: Arc<Runtime>,
) where
    T: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let generation = rt.generation();
    let server = &generation.config.server;
    let limits = &generation.config.limits;
    // h2's own header-list limit (name + value + 32 per field, RFC 9113 §6.5.2) is a memory
    // bound set above ours, so that the request reaches rampart-http and gets the same
    // explained 431 as over HTTP/1.1; past it, h2 answers a bare 431 itself.
    let list_limit = limits
        .max_header_bytes
        .saturating_add(limits.max_headers.saturating_mul(32))
        .saturating_add(4096);
    let mut builder = h2::server::Builder::new();
    builder
        .max_concurrent_streams(MAX_CONCURRENT_STREAMS)
        // A window for the connection as large as all its streams' together (as nginx does):
        // with the default (one stream's window), a single upload rampart is not reading yet
        // (origin checkout, an origin slow to read) stalls every other upload on the
        // connection. Memory stays bounded by the streams' own windows.
        .initial_connection_window_size(CONNECTION_WINDOW)
        .max_header_list_size(u32::try_from(list_limit).unwrap_or(u32::MAX))
        .max_pending_accept_reset_streams(MAX_PENDING_RESET_STREAMS)
        .max_local_error_reset_streams(Some(MAX_LOCAL_ERROR_RESETS));
    let deadline = TokioInstant::now() + server.client_header_timeout;
    let mut conn = match tokio::time::timeout_at(deadline, builder.handshake::<T, Bytes>(io)).await
    {
        Ok(Ok(c)) => c,
        _ => return,
    };
    let cx = StreamCx {
        rt: rt.clone(),
        peer,
        sni: sni.map(Arc::from),
        tls,
    };
    let keepalive = server.keepalive_timeout;
    let mut shutdown = rt.shutdown_signal();
    // Once GOAWAY is sent, the client gets this long to finish (and to answer h2's PING)
    // before the connection is dropped: a client that never does cannot hold it open.
    let mut drain_until: Option<TokioInstant> = None;
    let far = TokioInstant::now() + std::time::Duration::from_secs(86_400 * 365);
    // Armed from the last accepted stream; when it fires with streams still open it is
    // re-armed (a stream finishing does not wake this loop, so the check is made then).
    let idle = tokio::time::sleep(keepalive);
    tokio::pin!(idle);
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    idle.as_mut().reset(TokioInstant::now() + keepalive);
                    let cx = cx.clone();
                    tokio::spawn(async move {
                        Box::pin(stream(request, respond, cx)).await;
                    });
                }
                // A connection error (h2 has sent GOAWAY) or the client closed.
                Some(Err(_)) | None => return,
            },
            _ = shutdown.changed(), if drain_until.is_none() => {
                // GOAWAY: streams in flight finish, no new ones start.
                conn.graceful_shutdown();
                drain_until = Some(TokioInstant::now() + server.drain_timeout);
            }
            _ = idle.as_mut(), if drain_until.is_none() => {
                if conn.has_streams() {
                    idle.as_mut().reset(TokioInstant::now() + keepalive);
                } else {
                    // Idle for keepalive_timeout: GOAWAY, then the connection ends.
                    conn.graceful_shutdown();
                    drain_until = Some(TokioInstant::now() + server.client_header_timeout);
                }
            }
            _ = tokio::time::sleep_until(drain_until.unwrap_or(far)), if drain_until.is_some() => {
                return;
            }
        }
    }
}

/// The whole body of the answer to a request for a host this connection's certificate does
/// not serve.
const MISDIRECTED_BODY: &str =
    "421 Misdirected Request: this host is not served on this connection; open a new one\n";

/// Whether `host` would be served the certificate this connection presented for `sni`.
fn same_certificate(generation: &crate::state::Generation, host: &str, sni: &str) -> bool {
    match (
        generation.certificate_for(Some(host)),
        generation.certificate_for(Some(sni)),
    ) {
        (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
        _ => false,
    }
}

/// One request: parse, pipeline, origin, response; then the log line.
async fn stream(request: Request<RecvStream>, mut respond: SendResponse<Bytes>, cx: StreamCx) {
    let generation = cx.rt.generation();
    let (parts, body) = request.into_parts();
    let has_body = !body.is_end_stream();
    let raw = http1_head(&parts, has_body);
    let limits = generation.config.limits.http_limits();
    let head = match rampart_http::parse_request_head(&raw, &limits) {
        Ok(Parse::Complete((head, _))) => head,
        Ok(Parse::Partial) => {
            // The written head always ends with an empty line; Partial cannot happen.
            respond.send_reset(h2::Reason::INTERNAL_ERROR);
            return;
        }
        Err(e) => {
            let rejection =
                Rejection::new(EdgeError::from_request_status(e.status()), e.to_string());
            return reject_unparsed(&cx, &generation, &mut respond, &parts, rejection).await;
        }
    };
    if let (Some(sni), Some(host)) = (cx.sni.as_deref(), head.host())
        && !host.host().trim_end_matches('.').eq_ignore_ascii_case(sni)
        && !same_certificate(&generation, host.host().trim_end_matches('.'), sni)
    {
        // HTTP/2 clients reuse a connection for another host that its certificate covers
        // (RFC 9113 §9.1.1), so a host served with this connection's certificate is served.
        // Any other gets 421, which tells the client to retry on a connection of its own
        // (RFC 9110 §15.5.20), where HTTP/1.1 gets 403: over HTTP/1.1 nothing reuses a
        // connection across hosts. As there: unstyled, unlogged, counted.
        cx.rt.metrics.sni_mismatch();
        let body = Bytes::from_static(MISDIRECTED_BODY.as_bytes());
        let mut response = Response::new(());
        *response.status_mut() = StatusCode::MISDIRECTED_REQUEST;
        response.headers_mut().insert(
            http::header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; charset=utf-8"),
        );
        let _ = send_whole(&mut respond, response, body, head.is_head()).await;
        return;
    }
    let client_ip = generation
        .config
        .server
        .trusted_proxies
        .client_ip(cx.peer.ip(), &head);
    let geo = generation.config.geoip.lookup_if_configured(client_ip);
    let mut ctx = RequestContext::new(
        &generation,
        &head,
        cx.peer,
        client_ip,
        Protocol::Http2,
        cx.tls,
        &geo,
    );
    let mut record = LogRecord {
        client_request_bytes: raw.len() as u64,
        ..LogRecord::default()
    };
    match pipeline::request_phases(&mut ctx) {
        Decision::Reject(rejection) => {
            reject(&ctx, &cx.rt.metrics, &mut respond, &rejection, &mut record).await
        }
        Decision::Continue => proxy(&ctx, &cx.rt.metrics, body, &mut respond, &mut record).await,
    }
    pipeline::response_phase(&ctx, record.edge_response_status);
    crate::h1::finish(&cx.rt, &ctx, record);
}

/// Writes the request's pseudo-headers and fields as an HTTP/1.1 head, for rampart-http to
/// validate. `:authority` becomes Host (a Host field equal to it is dropped; a different one
/// stays, and two Hosts are a 400); a body without Content-Length is marked chunked so that
/// the head's framing says a body follows.
fn http1_head(parts: &http::request::Parts, has_body: bool) -> Vec<u8> {
    let authority = parts.uri.authority().map(|a| a.as_str().to_string());
    let target = if parts.method == http::Method::CONNECT {
        authority.clone().unwrap_or_default()
    } else {
        parts
            .uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string()
    };
    let mut out = Vec::with_capacity(256);
    out.extend_from_slice(parts.method.as_str().as_bytes());
    out.push(b' ');
    out.extend_from_slice(target.as_bytes());
    out.extend_from_slice(b" HTTP/1.1\r\n");
    if let Some(a) = &authority {
        rampart_http::write_header(&mut out, "host", a.as_bytes());
    }
    for (name, value) in &parts.headers {
        if name == http::header::HOST
            && authority.as_deref().map(str::as_bytes) == Some(value.as_bytes())
        {
            continue;
        }
        if name == http::header::COOKIE {
            continue;
        }
        rampart_http::write_header(&mut out, name.as_str(), value.as_bytes());
    }
    // RFC 9113 §8.2.3: cookie fields split into several (as browsers send them over HTTP/2)
    // are joined with "; " into one before the request goes on as HTTP/1.1.
    let mut cookies = parts.headers.get_all(http::header::COOKIE).iter();
    if let Some(first) = cookies.next() {
        out.extend_from_slice(b"cookie: ");
        out.extend_from_slice(first.as_bytes());
        for more in cookies {
            out.extend_from_slice(b"; ");
            out.extend_from_slice(more.as_bytes());
        }
        out.extend_from_slice(b"\r\n");
    }
    if has_body && !parts.headers.contains_key(http::header::CONTENT_LENGTH) {
        rampart_http::write_header(&mut out, "transfer-encoding", b"chunked");
    }
    rampart_http::write_end_of_head(&mut out);
    out
}

/// Sends a generated error (as over HTTP/1.1, minus the connection-level fields HTTP/2
/// forbids), and fills the log record.
async fn reject(
    ctx: &RequestContext<'_>,
    metrics: &Metrics,
    respond: &mut SendResponse<Bytes>,
    rejection: &Rejection,
    record: &mut LogRecord,
) {
    let answering = Answering::for_request(ctx, false);
    let (bytes, status, content_type) = error_response(rejection, &answering);
    let sent = send_http1_response(respond, &bytes, ctx.head.is_head()).await;
    fill_record(record, rejection, status, &content_type, sent);
    metrics.generated_error(rejection.error.entry().name, rejection.error.status());
}

/// A request that did not pass rampart-http: answered, counted and logged like its HTTP/1.1
/// twin (with what HTTP/2 told us of it: method, target, authority).
async fn reject_unparsed(
    cx: &StreamCx,
    generation: &Arc<Generation>,
    respond: &mut SendResponse<Bytes>,
    parts: &http::request::Parts,
    rejection: Rejection,
) {
    let ray_id = pipeline::RayId::generate();
    let started_at = SystemTime::now();
    let answering = Answering {
        ray_id,
        client_ip: cx.peer.ip(),
        zone: None,
        accept: parts
            .headers
            .get(http::header::ACCEPT)
            .map(|v| v.as_bytes()),
        head_only: parts.method == http::Method::HEAD,
        close: false,
        http10_keep_alive: false,
        docs_url: &generation.config.server.error_docs_url,
        pages: None,
    };
    let (bytes, status, content_type) = error_response(&rejection, &answering);
    let sent = send_http1_response(respond, &bytes, answering.head_only).await;
    let metrics = &cx.rt.metrics;
    metrics.generated_error(rejection.error.entry().name, rejection.error.status());
    metrics.request(None, Protocol::Http2.as_str(), status);
    let mut record = LogRecord::default();
    fill_record(&mut record, &rejection, status, &content_type, sent);
    let target = parts.uri.path_and_query().map_or("", |p| p.as_str());
    let info = crate::observe::RequestInfo {
        ray_id: ray_id.as_str(),
        zone: "",
        started_at,
        client_ip: cx.peer.ip(),
        client_port: cx.peer.port(),
        host: parts.uri.host().unwrap_or(""),
        method: parts.method.as_str(),
        uri: target,
        path: parts.uri.path(),
        protocol: Protocol::Http2.as_str(),
        scheme: if cx.tls { "https" } else { "http" },
        user_agent: parts
            .headers
            .get(http::header::USER_AGENT)
            .map_or(&b""[..], |v| v.as_bytes()),
        referer: b"",
        country: "",
        asn: 0,
        security: None,
        sources: &[],
    };
    cx.rt.log.write(&info, &record);
}

/// Sends a response serialised for HTTP/1.1 over the stream: the status and fields (minus
/// connection-specific ones), then the body. Returns the body bytes sent.
async fn send_http1_response(
    respond: &mut SendResponse<Bytes>,
    bytes: &[u8],
    head_only: bool,
) -> u64 {
    let limits = rampart_http::Limits::default();
    let Ok(Parse::Complete((head, len))) = rampart_http::parse_response_head(bytes, &limits) else {
        respond.send_reset(h2::Reason::INTERNAL_ERROR);
        return 0;
    };
    let mut response = Response::new(());
    *response.status_mut() = StatusCode::from_u16(head.status()).unwrap_or(StatusCode::BAD_GATEWAY);
    copy_fields(&head, response.headers_mut(), None);
    let body = Bytes::copy_from_slice(&bytes[len..]);
    let n = body.len() as u64;
    match send_whole(respond, response, body, head_only).await {
        Ok(()) => n,
        Err(()) => 0,
    }
}

/// A ray id as a field value that HPACK never indexes (RFC 7541 §6.2.3). Each one is unique:
/// indexed, every response would insert an entry into the connection's dynamic table and
/// evict another, and every lookup of the name would compare the value against all the ray
/// ids already there (about 6,000 instructions a response, measured under callgrind).
pub(crate) fn ray_id_value(mut value: HeaderValue) -> HeaderValue {
    value.set_sensitive(true);
    value
}

/// Copies a response head's end-to-end fields (not the connection-specific ones, not the
/// framing, not a ray id from the origin), then adds `ray_id`.
fn copy_fields(head: &rampart_http::ResponseHead, out: &mut HeaderMap, ray_id: Option<&str>) {
    // The values become slices of one shared copy of the head rather than an allocation each.
    let bytes = head.as_bytes();
    let shared = Bytes::copy_from_slice(bytes);
    out.reserve(head.headers().count() + usize::from(ray_id.is_some()));
    for (name, value) in head.headers().raw() {
        // Content-Length is added below as one number: the origin's may be a list ("5, 5") or
        // repeated, which an HTTP/2 client refuses (RFC 9110 §8.6).
        // (Transfer-Encoding, Connection and Keep-Alive are hop-by-hop.)
        if head.is_hop_by_hop(name)
            || name.eq_ignore_ascii_case(b"content-length")
            || (ray_id.is_some() && name.eq_ignore_ascii_case(RAY_ID_HEADER.as_bytes()))
        {
            continue;
        }
        let at = value.as_ptr() as usize - bytes.as_ptr() as usize;
        if let (Ok(n), Ok(v)) = (
            http::HeaderName::from_bytes(name),
            HeaderValue::from_maybe_shared(shared.slice(at..at + value.len())),
        ) {
            // Our own ray id, in a page rendered by the edge.
            let v = if n == RAY_ID_HEADER {
                ray_id_value(v)
            } else {
                v
            };
            out.append(n, v);
        }
    }
    if let Some(n) = head.content_length()
        && head.status() >= 200
        && head.status() != 204
    {
        out.insert(http::header::CONTENT_LENGTH, HeaderValue::from(n));
    }
    if let Some(id) = ray_id
        && let Ok(v) = HeaderValue::from_str(id)
    {
        out.insert(RAY_ID_HEADER, ray_id_value(v));
    }
}

/// Sends the head and a whole body (none for HEAD).
async fn send_whole(
    respond: &mut SendResponse<Bytes>,
    response: Response<()>,
    body: Bytes,
    head_only: bool,
) -> Result<(), ()> {
    let end = head_only || body.is_empty();
    let mut send = respond.send_response(response, end).map_err(|_| ())?;
    if end {
        return Ok(());
    }
    send_data(&mut send, body, true).await
}

/// Longest wait for flow-control window from a peer (a client not reading its response, an
/// origin not reading its request body): then the stream is given up, so a stalled peer
/// cannot hold an origin connection or memory forever.
pub const SEND_STALL_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// Sends `data` as flow control allows, waiting for window as needed (at most
/// [`SEND_STALL_TIMEOUT`] at a time).
pub(crate) async fn send_data(
    send: &mut SendStream<Bytes>,
    mut data: Bytes,
    end: bool,
) -> Result<(), ()> {
    if data.is_empty() {
        return send.send_data(data, end).map_err(|_| ());
    }
    while !data.is_empty() {
        send.reserve_capacity(data.len());
        let capacity = std::future::poll_fn(|c| send.poll_capacity(c));
        let granted = match tokio::time::timeout(SEND_STALL_TIMEOUT, capacity).await {
            Ok(Some(Ok(n))) => n,
            Ok(Some(Err(_)) | None) => return Err(()),
            Err(_) => {
                send.send_reset(h2::Reason::CANCEL);
                return Err(());
            }
        };
        if granted == 0 {
            continue;
        }
        let piece = data.split_to(granted.min(data.len()));
        send.send_data(piece, end && data.is_empty())
            .map_err(|_| ())?;
    }
    Ok(())
}

/// Why forwarding stopped before the response head reached the client.
enum Failure {
    Reject(Rejection),
    ClientGone,
}

/// Forwards the request to the zone's origin over HTTP/1.1 and streams the answer back.
async fn proxy(
    ctx: &RequestContext<'_>,
    metrics: &Metrics,
    mut body: RecvStream,
    respond: &mut SendResponse<Bytes>,
    record: &mut LogRecord,
) {
    let Some(zone) = ctx.zone.clone() else {
        unreachable!("the route phase sets the zone before a request is forwarded")
    };
    let request_head = origin_request_head(ctx);
    let mut attempt = 0;
    let mut body_sent = 0u64;
    let outcome = loop {
        attempt += 1;
        let mut origin = match zone.origin.checkout(&zone.config, metrics).await {
            Ok(o) => o,
            Err(e) => break Err(Failure::Reject(e.rejection(zone.origin.addr()))),
        };
        record.origin_ip = Some(origin.addr.ip());
        let sent_at = Instant::now();
        match exchange(
            ctx,
            &zone,
            &mut origin,
            &request_head,
            &mut body,
            &mut body_sent,
            respond,
        )
        .await
        {
            Ok((head, buffered)) => break Ok((origin, head, buffered, sent_at.elapsed())),
            Err(Exchange::DeadPooled)
                if attempt == 1 && body_sent == 0 && ctx.head.is_idempotent() =>
            {
                continue;
            }
            Err(Exchange::DeadPooled) => {
                break Err(Failure::Reject(
                    OriginError::ClosedBeforeResponse.rejection(zone.origin.addr()),
                ));
            }
            Err(Exchange::Origin(e)) => {
                break Err(Failure::Reject(e.rejection(zone.origin.addr())));
            }
            Err(Exchange::Client(r)) => break Err(Failure::Reject(r)),
            Err(Exchange::ClientGone) => break Err(Failure::ClientGone),
        }
    };
    crate::stream::buffers::give(request_head);
    record.client_request_bytes += body_sent;
    let (mut origin, response, buffered, elapsed) = match outcome {
        Err(Failure::ClientGone) => {
            record.edge_response_status = 499;
            return;
        }
        Err(Failure::Reject(rejection)) => {
            return reject(ctx, metrics, respond, &rejection, record).await;
        }
        Ok(o) => o,
    };
    let status = response.status();
    record.origin_response_status = status;
    record.origin_response_duration_ms = elapsed.as_millis() as u64;
    metrics.origin_response(&zone.config.name, status, elapsed.as_secs_f64());
    record.edge_time_to_first_byte_ms = ctx.started.elapsed().as_millis() as u64;
    record.edge_response_status = status;
    if let Some(template) = origin_error_page(ctx, &zone, status) {
        // As over HTTP/1.1: the origin's status and headers that matter, the page as body.
        // The origin's own body is not read, so its connection is not reused.
        let bytes = custom_page(ctx, &response, template, false);
        record.edge_response_content_type = "text/html; charset=utf-8".to_string();
        record.edge_response_bytes = send_http1_response(respond, &bytes, ctx.head.is_head()).await;
        return;
    }
    if let Some(ct) = response.header("content-type") {
        record.edge_response_content_type = String::from_utf8_lossy(ct).into_owned();
    }
    let mut head = Response::new(());
    *head.status_mut() = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_GATEWAY);
    copy_fields(&response, head.headers_mut(), Some(ctx.ray_id.as_str()));
    // RFC 9110 §6.6.1: a recipient with a clock adds Date to a response that lacks one.
    if !head.headers().contains_key(http::header::DATE)
        && let Ok(date) = HeaderValue::from_str(&httpdate::fmt_http_date(SystemTime::now()))
    {
        head.headers_mut().insert(http::header::DATE, date);
    }
    let origin_body = response.body(ctx.head.is_head());
    let no_body = matches!(origin_body, rampart_http::ResponseBody::None);
    let Ok(mut send) = respond.send_response(head, no_body) else {
        record.edge_response_status = 499;
        return;
    };
    let idle = zone.config.origin_response_timeout;
    let mut stream = OriginBodyStream::new(origin_body, buffered);
    let mut chunk = Vec::with_capacity(READ_CHUNK);
    let clean = loop {
        chunk.clear();
        let done = match stream.next(&mut origin, &mut chunk, idle).await {
            Ok(done) => done,
            Err(()) => {
                // The head is out: all that is left is to end the stream abnormally.
                send.send_reset(h2::Reason::INTERNAL_ERROR);
                break false;
            }
        };
        if no_body {
            break true;
        }
        let n = chunk.len() as u64;
        if send_data(&mut send, Bytes::copy_from_slice(&chunk), done)
            .await
            .is_err()
        {
            break false;
        }
        record.edge_response_bytes += n;
        if done {
            break true;
        }
    };
    if clean && stream.reusable() && response.keep_alive() {
        zone.origin.checkin(origin, stream.into_buf());
    }
}

enum Exchange {
    DeadPooled,
    Origin(OriginError),
    /// The client's body broke a rule (413, 408, 400).
    Client(Rejection),
    ClientGone,
}

/// Sends the request head and streams the body (re-framed: Content-Length as declared, else
/// chunked), then reads the response head, noticing a client that resets the stream (499).
async fn exchange(
    ctx: &RequestContext<'_>,
    zone: &ZoneState,
    origin: &mut OriginConn,
    request_head: &[u8],
    body: &mut RecvStream,
    body_sent: &mut u64,
    respond: &mut SendResponse<Bytes>,
) -> Result<(rampart_http::ResponseHead, Vec<u8>), Exchange> {
    let config = &ctx.generation.config;
    if origin.stream.write_all(request_head).await.is_err() {
        return Err(if origin.reused {
            Exchange::DeadPooled
        } else {
            Exchange::Origin(OriginError::ClosedBeforeResponse)
        });
    }
    let framing = ctx.head.body();
    if framing != BodyFraming::None {
        let declared = match framing {
            BodyFraming::ContentLength(n) => Some(n),
            _ => None,
        };
        if let Some(n) = declared
            && n > config.limits.max_body_bytes
        {
            return Err(Exchange::Client(Rejection::new(
                EdgeError::PayloadTooLarge,
                format!(
                    "the declared body of {n} bytes is over the limit of {} bytes",
                    config.limits.max_body_bytes
                ),
            )));
        }
        if ctx.head.expect_continue() {
            // RFC 9110 §10.1.1, as over HTTP/1.1: 100 once the request is about to be forwarded.
            let mut interim = Response::new(());
            *interim.status_mut() = StatusCode::CONTINUE;
            let _ = respond.send_informational(interim);
        }
        let timeout = config.server.client_body_timeout;
        loop {
            let next = match tokio::time::timeout(timeout, body.data()).await {
                Ok(n) => n,
                Err(_) => {
                    return Err(Exchange::Client(Rejection::new(
                        EdgeError::RequestTimeout,
                        format!(
                            "no request body data for {}",
                            humantime::format_duration(timeout)
                        ),
                    )));
                }
            };
            let Some(data) = next else { break };
            let Ok(data) = data else {
                return Err(Exchange::ClientGone);
            };
            let _ = body.flow_control().release_capacity(data.len());
            *body_sent += data.len() as u64;
            if *body_sent > config.limits.max_body_bytes {
                return Err(Exchange::Client(Rejection::new(
                    EdgeError::PayloadTooLarge,
                    format!(
                        "the request body is over the limit of {} bytes",
                        config.limits.max_body_bytes
                    ),
                )));
            }
            let mut out = Vec::with_capacity(data.len() + 16);
            if declared.is_some() {
                out.extend_from_slice(&data);
            } else {
                rampart_http::write_chunk(&mut out, &data);
            }
            // An origin that stops reading the body (without closing) for the response
            // timeout ends the exchange rather than holding it forever.
            let stall = zone.config.origin_response_timeout;
            match tokio::time::timeout(stall, origin.stream.write_all(&out)).await {
                Ok(Ok(())) => {}
                Ok(Err(_)) => return Err(Exchange::Origin(OriginError::ClosedBeforeResponse)),
                Err(_) => return Err(Exchange::Origin(OriginError::ResponseTimedOut(stall))),
            }
        }
        if declared.is_none() {
            let mut out = Vec::new();
            rampart_http::write_last_chunk(&mut out);
            if origin.stream.write_all(&out).await.is_err() {
                return Err(Exchange::Origin(OriginError::ClosedBeforeResponse));
            }
        }
    }
    let limits = config.limits.http_limits();
    let timeout = zone.config.origin_response_timeout;
    let deadline = TokioInstant::now() + timeout;
    let mut buf = crate::stream::buffers::take(ORIGIN_READ);
    let mut interim = Vec::new();
    loop {
        // HTTP/2 has no upgrade: any 101 is a broken response.
        let head =
            take_response_head(&mut buf, &limits, false, &mut interim).map_err(Exchange::Origin)?;
        // RFC 9110 §15.2: interim responses (103 Early Hints, …) are relayed.
        for early in interim.drain(..) {
            let mut informational = Response::new(());
            *informational.status_mut() =
                StatusCode::from_u16(early.status()).unwrap_or(StatusCode::CONTINUE);
            copy_fields(&early, informational.headers_mut(), None);
            let _ = respond.send_informational(informational);
        }
        if let Some(head) = head {
            return Ok((head, buf));
        }
        buf.reserve(ORIGIN_READ);
        tokio::select! {
            r = origin.stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) if buf.is_empty() && origin.reused && *body_sent == 0 => return Err(Exchange::DeadPooled),
                Ok(0) | Err(_) => return Err(Exchange::Origin(OriginError::ClosedBeforeResponse)),
                Ok(_) => {}
            },
            _ = std::future::poll_fn(|c| respond.poll_reset(c)) => return Err(Exchange::ClientGone),
            _ = tokio::time::sleep_until(deadline) => {
                return Err(Exchange::Origin(OriginError::ResponseTimedOut(timeout)));
            }
        }
    }
}
