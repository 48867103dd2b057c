//! Forwarding a request to the origin and streaming the response back.
//!
//! The request is re-serialised from its parsed form (never forwarded as raw bytes), with
//! hop-by-hop fields removed and the X-Forwarded-For, X-Forwarded-Proto and Forwarded fields
//! added. The response passes through untouched but for hop-by-hop fields and framing.

use std::io::Write as _;
use std::time::{Duration, Instant};

use rampart_http::{
    BodyFraming, ChunkedDecoder, Parse, RequestHead, ResponseBody, ResponseHead, TargetForm,
    Version,
};
use smallvec::SmallVec;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::time::Instant as TokioInstant;

use super::body::{BodyError, ClientBody};
use super::{Conn, Next, READ_CHUNK, respond};
use crate::observe::{LogField, LogRecord};
use crate::origin::{OriginConn, OriginError};
use crate::pipeline::{Protocol, RAY_ID_HEADER, Rejection, RequestContext};
use crate::state::ZoneState;
use crate::stream::buffers;

/// Most pipelined bytes buffered from the client while its current request is at the origin.
const MAX_PIPELINE_BUFFER: usize = 64 * 1024;

/// Room for one read from the origin: a response head with a body of up to about 32 KB
/// arrives in one read and goes to the client in one write (with 16 KB, a 16 KB file and its
/// head took two of each). The buffer comes from the thread's kept buffers and goes back to
/// them when the connection returns to the pool.
pub(crate) const ORIGIN_READ: usize = 32 * 1024;

/// How a request's exchange with the origin ended, before the response head reached the client.
enum Failure {
    /// Answer the client with this generated error; then close if `close`.
    Reject(Rejection, bool),
    /// The client left: log 499 and close.
    ClientGone,
}

/// Forwards the request in `ctx` to its zone's origin and streams the answer to the client.
pub(super) async fn proxy(
    conn: &mut Conn,
    ctx: &RequestContext<'_>,
    record: &mut LogRecord,
) -> Next {
    let Some(zone) = ctx.zone.clone() else {
        unreachable!("the route phase sets the zone before a request is forwarded")
    };
    let config = &ctx.generation.config;
    let head = ctx.head;
    let mut body = ClientBody::new(
        head.body(),
        config.limits.max_body_bytes,
        rampart_http::DEFAULT_MAX_TRAILER_BYTES,
        config.server.client_body_timeout,
    );
    let request_head = origin_request_head(ctx);
    let mut sent_continue = false;
    let mut attempt = 0;
    let outcome = loop {
        attempt += 1;
        let mut origin = match zone.origin.checkout(&zone.config, &conn.rt.metrics).await {
            Ok(o) => o,
            Err(e) => {
                break Err(Failure::Reject(
                    e.rejection(zone.origin.addr()),
                    !body.is_done(),
                ));
            }
        };
        record.origin_ip = Some(origin.addr.ip());
        // RFC 9110 §10.1.1: 100 Continue only once the request is about to be forwarded.
        if head.expect_continue() && !sent_continue && !body.is_done() {
            sent_continue = true;
            if conn
                .stream
                .write_all(b"HTTP/1.1 100 Continue\r\n\r\n")
                .await
                .is_err()
            {
                break Err(Failure::ClientGone);
            }
        }
        let sent_at = Instant::now();
        match exchange(conn, ctx, &zone, &mut origin, &request_head, &mut body).await {
            Ok((response, buffered, request_sent)) => {
                // One clock read for the origin's time and the edge's time to first byte.
                let received = Instant::now();
                break Ok((origin, response, buffered, request_sent, sent_at, received));
            }
            // RFC 9112 §9.3.1: a request may be retried automatically when it is idempotent
            // and the connection failed before any part of a response arrived. A pooled
            // connection that turns out dead on reuse is the common case.
            Err(Exchange::DeadPooled)
                if attempt == 1 && head.is_idempotent() && body.received == 0 =>
            {
                continue;
            }
            Err(Exchange::DeadPooled) => {
                break Err(Failure::Reject(
                    OriginError::ClosedBeforeResponse.rejection(zone.origin.addr()),
                    !body.is_done(),
                ));
            }
            Err(Exchange::Origin(e)) => {
                break Err(Failure::Reject(
                    e.rejection(zone.origin.addr()),
                    !body.is_done(),
                ));
            }
            Err(Exchange::Body(BodyError::ClientClosed)) | Err(Exchange::ClientGone) => {
                break Err(Failure::ClientGone);
            }
            Err(Exchange::Body(e)) => match e.rejection() {
                Some(r) => break Err(Failure::Reject(r, true)),
                None => break Err(Failure::ClientGone),
            },
        }
    };
    buffers::give(request_head);
    record.client_request_bytes += body.wire_bytes;
    match outcome {
        Err(Failure::ClientGone) => {
            record.edge_response_status = 499;
            Next::Close
        }
        Err(Failure::Reject(rejection, close)) => {
            let close = close || !head.keep_alive();
            respond::reject(conn, ctx, &rejection, close, record).await;
            if close { Next::Close } else { Next::KeepAlive }
        }
        Ok((origin, response, buffered, request_sent, sent_at, received)) => {
            let elapsed = received - sent_at;
            record.origin_response_status = response.status();
            record.origin_response_duration_ms = elapsed.as_millis() as u64;
            conn.rt.metrics.origin_response(
                &zone.config.name,
                response.status(),
                elapsed.as_secs_f64(),
            );
            record.edge_time_to_first_byte_ms = (received - ctx.started).as_millis() as u64;
            respond_from_origin(
                conn,
                ctx,
                &zone,
                origin,
                response,
                buffered,
                Sent {
                    request_body_read: body.is_done(),
                    request_sent,
                },
                record,
            )
            .await
        }
    }
}

enum Exchange {
    /// A pooled connection failed before any byte of a response.
    DeadPooled,
    Origin(OriginError),
    Body(BodyError),
    ClientGone,
}

/// Sends the request head and body, then reads the response head. Returns the head, the
/// bytes read after it, and whether the whole request reached the origin (if not, the
/// origin answered early and stopped reading, or failed; its connection is not reused).
async fn exchange(
    conn: &mut Conn,
    ctx: &RequestContext<'_>,
    zone: &ZoneState,
    origin: &mut OriginConn,
    request_head: &[u8],
    body: &mut ClientBody,
) -> Result<(ResponseHead, Vec<u8>, bool), Exchange> {
    let mut origin_write_failed = false;
    if body.is_done() {
        // No body: the head goes out as it is.
        if origin.stream.write_all(request_head).await.is_err() {
            if origin.reused {
                return Err(Exchange::DeadPooled);
            }
            origin_write_failed = true;
        }
    } else {
        let mut out = Vec::with_capacity(request_head.len() + READ_CHUNK);
        out.extend_from_slice(request_head);
        // Send the head together with whatever body is already buffered: one write.
        let stall = zone.config.origin_response_timeout;
        loop {
            if !body.is_done() && (out.is_empty() || out.len() == request_head.len()) {
                body.next(conn, &mut out).await.map_err(Exchange::Body)?;
            }
            // A write that makes no progress for the response timeout ends the upload: the
            // origin may have answered early (its own 413) and stopped reading without
            // closing; its answer is read below (RFC 9112 §9.3).
            let written = out.is_empty() || {
                conn.timer_at(TokioInstant::now() + stall);
                tokio::select! {
                    biased;
                    r = origin.stream.write_all(&out) => r.is_ok(),
                    _ = conn.timer.as_mut() => false,
                }
            };
            if !written {
                if origin.reused && body.received == 0 {
                    return Err(Exchange::DeadPooled);
                }
                // The origin may have answered early (e.g. its own 413) and closed: read it.
                origin_write_failed = true;
                break;
            }
            out.clear();
            if body.is_done() {
                break;
            }
        }
    }
    let limits = ctx.generation.config.limits.http_limits();
    let timeout = zone.config.origin_response_timeout;
    conn.timer_at(TokioInstant::now() + timeout);
    let mut buf = buffers::take(ORIGIN_READ);
    let mut watch_client = true;
    let upgrade_requested = ctx.head.upgrade().is_some();
    let mut interim = Vec::new();
    loop {
        let head = take_response_head(&mut buf, &limits, upgrade_requested, &mut interim)
            .map_err(Exchange::Origin)?;
        if !interim.is_empty() {
            relay_interim(conn, ctx.head, &mut interim)
                .await
                .map_err(|()| Exchange::ClientGone)?;
        }
        if let Some(head) = head {
            return Ok((head, buf, !origin_write_failed));
        }
        buf.reserve(ORIGIN_READ);
        if conn.buf.len() == conn.buf.capacity() {
            conn.buf.reserve(super::HEAD_CHUNK);
        }
        // `biased`: the origin first, then the client, then the deadline.
        tokio::select! {
            biased;
            r = origin.stream.read_buf(&mut buf) => match r {
                Ok(0) | Err(_) if buf.is_empty() && origin.reused && !origin_write_failed => return Err(Exchange::DeadPooled),
                Ok(0) | Err(_) => return Err(Exchange::Origin(OriginError::ClosedBeforeResponse)),
                Ok(_) => {}
            },
            // While the origin thinks, notice a client that leaves (499). Bytes it sends
            // meanwhile are pipelined requests: keep them (there is always room to read into).
            r = conn.stream.read_buf(&mut conn.buf), if watch_client => match r {
                Ok(0) | Err(_) => return Err(Exchange::ClientGone),
                Ok(_) => watch_client = conn.buf.len() < MAX_PIPELINE_BUFFER,
            },
            _ = conn.timer.as_mut() => {
                return Err(Exchange::Origin(OriginError::ResponseTimedOut(timeout)));
            }
        }
    }
}

/// Takes the final response head from the front of `buf`. `None` until a whole head is
/// buffered.
///
/// Interim responses before it are taken off too: 100 is dropped (rampart answers
/// `Expect: 100-continue` itself and does not forward Expect), the others (102, 103 Early
/// Hints, any other 1xx) go to `interim`, for the caller to relay (RFC 9110 §15.2: a proxy
/// forwards 1xx responses it did not ask for; never to HTTP/1.0 clients). 101 is final when
/// the request asked to upgrade, and a broken response otherwise (RFC 9110 §7.8).
pub(crate) fn take_response_head(
    buf: &mut Vec<u8>,
    limits: &rampart_http::Limits,
    upgrade_requested: bool,
    interim: &mut Vec<ResponseHead>,
) -> Result<Option<ResponseHead>, OriginError> {
    while !buf.is_empty() {
        match rampart_http::parse_response_head(buf, limits) {
            Ok(Parse::Complete((head, len))) => {
                buf.drain(..len);
                match head.status() {
                    101 if !upgrade_requested => {
                        return Err(OriginError::InvalidResponse(
                            "101 Switching Protocols to a request that did not ask to upgrade"
                                .into(),
                        ));
                    }
                    100 => continue,
                    102..=199 => {
                        interim.push(head);
                        continue;
                    }
                    _ => return Ok(Some(head)),
                }
            }
            Ok(Parse::Partial) => return Ok(None),
            Err(e) => return Err(OriginError::InvalidResponse(e.to_string())),
        }
    }
    Ok(None)
}

/// Relays interim responses to an HTTP/1.1 client (never to HTTP/1.0, RFC 9110 §15.2): the
/// status line and the end-to-end fields.
async fn relay_interim(
    conn: &mut Conn,
    request: &RequestHead,
    interim: &mut Vec<ResponseHead>,
) -> Result<(), ()> {
    if request.version() == Version::Http10 {
        interim.clear();
        return Ok(());
    }
    let mut out = buffers::take(512);
    for head in interim.drain(..) {
        rampart_http::write_status_line(
            &mut out,
            Version::Http11,
            head.status(),
            head.reason_bytes(),
        );
        for (name, value) in head.headers().raw() {
            if !head.is_hop_by_hop(name) {
                rampart_http::write_header(&mut out, name, value);
            }
        }
        rampart_http::write_end_of_head(&mut out);
    }
    let written = conn.stream.write_all(&out).await;
    buffers::give(out);
    written.map_err(|_| ())
}

/// The request head sent to the origin.
pub(crate) fn origin_request_head(ctx: &RequestContext<'_>) -> Vec<u8> {
    let head = ctx.head;
    let mut out = buffers::take(512);
    rampart_http::write_request_line(
        &mut out,
        head.method(),
        &head.path_and_query(),
        Version::Http11,
    );
    // Each may come as several lines, which form one list in order (RFC 9110 §5.3).
    let mut xff: SmallVec<[&[u8]; 2]> = SmallVec::new();
    let mut forwarded: SmallVec<[&[u8]; 2]> = SmallVec::new();
    // RFC 9112 §3.2.2: with an absolute-form target, Host is replaced by the target's
    // authority (the parser has checked that a Host sent with it agrees, but it may be
    // missing or empty in HTTP/1.0).
    let absolute = head.target_form() == TargetForm::Absolute;
    let mut saw_host = false;
    for (name, value) in head.headers().raw() {
        if head.is_hop_by_hop(name) {
            continue;
        }
        if name.eq_ignore_ascii_case(b"content-length") || name.eq_ignore_ascii_case(b"expect") {
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-for") {
            xff.push(value);
            continue;
        }
        if name.eq_ignore_ascii_case(b"forwarded") {
            forwarded.push(value);
            continue;
        }
        if name.eq_ignore_ascii_case(b"x-forwarded-proto")
            || name.eq_ignore_ascii_case(RAY_ID_HEADER.as_bytes())
        {
            continue;
        }
        if name.eq_ignore_ascii_case(b"host") {
            if absolute {
                continue;
            }
            saw_host = true;
        }
        rampart_http::write_header(&mut out, name, value);
    }
    // Written straight into `out`, without building the values separately.
    let host = head.host();
    if !saw_host && let Some(h) = &host {
        out.extend_from_slice(b"host: ");
        write_authority(&mut out, h);
        out.extend_from_slice(b"\r\n");
    }
    // RFC 9110 §7.6.3: a gateway adds itself to Via on inbound requests (after any Via
    // lines the client sent, so the list stays in order).
    // The protocol as received from the client (an HTTP/2 request's head is rebuilt as
    // HTTP/1.1, so not `head.version()`).
    let via: &[u8] = match ctx.protocol {
        Protocol::Http10 => b"1.0 rampart",
        Protocol::Http11 => b"1.1 rampart",
        Protocol::Http2 => b"2 rampart",
    };
    rampart_http::write_header(&mut out, "via", via);
    match head.body() {
        BodyFraming::ContentLength(n) => write_content_length(&mut out, n),
        BodyFraming::Chunked => {
            rampart_http::write_header(&mut out, "transfer-encoding", b"chunked")
        }
        BodyFraming::None => {}
    }
    if let Some(up) = head.upgrade() {
        rampart_http::write_header(&mut out, "connection", b"upgrade");
        rampart_http::write_header(&mut out, "upgrade", up);
    }
    out.extend_from_slice(b"x-forwarded-for: ");
    for prev in xff {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    crate::observe::write_ip(&mut out, ctx.client_ip);
    out.extend_from_slice(b"\r\n");
    let proto: &[u8] = if ctx.tls { b"https" } else { b"http" };
    rampart_http::write_header(&mut out, "x-forwarded-proto", proto);
    out.extend_from_slice(b"forwarded: ");
    for prev in forwarded {
        out.extend_from_slice(prev);
        out.extend_from_slice(b", ");
    }
    // RFC 7239 §4: IPv6 nodes are quoted and bracketed.
    if ctx.client_ip.is_ipv6() {
        out.extend_from_slice(b"for=\"[");
        crate::observe::write_ip(&mut out, ctx.client_ip);
        out.extend_from_slice(b"]\"");
    } else {
        out.extend_from_slice(b"for=");
        crate::observe::write_ip(&mut out, ctx.client_ip);
    }
    if let Some(h) = &host {
        out.extend_from_slice(b";host=\"");
        write_authority(&mut out, h);
        out.push(b'"');
    }
    out.extend_from_slice(b";proto=");
    out.extend_from_slice(proto);
    out.extend_from_slice(b"\r\n");
    rampart_http::write_header(&mut out, RAY_ID_HEADER, ctx.ray_id.as_bytes());
    rampart_http::write_end_of_head(&mut out);
    out
}

/// A `content-length` field, the number written straight into `out`.
fn write_content_length(out: &mut Vec<u8>, n: u64) {
    out.extend_from_slice(b"content-length: ");
    crate::observe::write_decimal(out, n);
    out.extend_from_slice(b"\r\n");
}

/// `host[:port]`, with an IPv6 literal in brackets.
fn write_authority(out: &mut Vec<u8>, a: &rampart_http::Authority<'_>) {
    let ipv6 = a.host().contains(':');
    if ipv6 {
        out.push(b'[');
    }
    out.extend_from_slice(a.host().as_bytes());
    if ipv6 {
        out.push(b']');
    }
    if let Some(p) = a.port() {
        let _ = write!(out, ":{p}");
    }
}

/// How much of the request was taken from the client and given to the origin.
#[derive(Clone, Copy)]
struct Sent {
    /// The client's request body was read to its end.
    request_body_read: bool,
    /// The whole request reached the origin (else its connection is not reused).
    request_sent: bool,
}

/// How the response body is framed towards the client.
#[derive(Clone, Copy, PartialEq, Eq)]
enum ClientFraming {
    None,
    /// The origin's Content-Length, written by us: the origin's own field may be missing
    /// from what is relayed (an origin can list it in Connection) or be repeated.
    Length(u64),
    Chunked,
    Close,
}

/// Writes the origin's response head and streams its body to the client.
#[allow(clippy::too_many_arguments)]
async fn respond_from_origin(
    conn: &mut Conn,
    ctx: &RequestContext<'_>,
    zone: &ZoneState,
    mut origin: OriginConn,
    response: ResponseHead,
    mut buffered: Vec<u8>,
    sent: Sent,
    record: &mut LogRecord,
) -> Next {
    let head: &RequestHead = ctx.head;
    let request_body_done = sent.request_body_read;
    let status = response.status();
    let upgrade = status == 101 && head.upgrade().is_some();
    let origin_body = response.body(head.is_head());
    let client_framing = match origin_body {
        _ if upgrade => ClientFraming::None,
        ResponseBody::None => ClientFraming::None,
        ResponseBody::ContentLength(n) => ClientFraming::Length(n),
        ResponseBody::Chunked | ResponseBody::CloseDelimited
            if head.version() == Version::Http11 =>
        {
            ClientFraming::Chunked
        }
        ResponseBody::Chunked | ResponseBody::CloseDelimited => ClientFraming::Close,
    };
    // A custom error page replaces only the body of an origin error, for clients that take HTML.
    let page = (!upgrade)
        .then(|| origin_error_page(ctx, zone, status))
        .flatten();
    if let Some(template) = page {
        return custom_page_response(conn, ctx, &response, template, request_body_done, record)
            .await;
    }
    let close = !upgrade
        && (!head.keep_alive()
            || !request_body_done
            || client_framing == ClientFraming::Close
            || conn.rt.shutting_down());
    let mut out = buffers::take(1024 + buffered.len());
    rampart_http::write_status_line(&mut out, Version::Http11, status, response.reason_bytes());
    let mut content_type = String::new();
    let logged = conn.rt.log.logs(LogField::EdgeResponseContentType);
    let mut saw_date = false;
    for (name, value) in response.headers().raw() {
        if upgrade
            && (name.eq_ignore_ascii_case(b"upgrade") || name.eq_ignore_ascii_case(b"connection"))
        {
            rampart_http::write_header(&mut out, name, value);
            continue;
        }
        // Content-Length is written by rampart below, once (RFC 9110 §8.6).
        if response.is_hop_by_hop(name)
            || name.eq_ignore_ascii_case(RAY_ID_HEADER.as_bytes())
            || name.eq_ignore_ascii_case(b"content-length")
        {
            continue;
        }
        if logged && name.eq_ignore_ascii_case(b"content-type") {
            content_type = String::from_utf8_lossy(value).into_owned();
        }
        saw_date |= name.eq_ignore_ascii_case(b"date");
        rampart_http::write_header(&mut out, name, value);
    }
    // RFC 9110 §6.6.1: a recipient with a clock adds Date to a response that lacks one.
    if !saw_date {
        respond::write_date(&mut out);
    }
    rampart_http::write_header(&mut out, RAY_ID_HEADER, ctx.ray_id.as_bytes());
    // Without a body (HEAD, 304) the origin's length still describes the one not sent; a 204
    // and a 1xx never carry one (RFC 9110 §8.6).
    let length = match client_framing {
        ClientFraming::Length(n) => Some(n),
        ClientFraming::None if status >= 200 && status != 204 => response.content_length(),
        _ => None,
    };
    if let Some(n) = length {
        write_content_length(&mut out, n);
    }
    if client_framing == ClientFraming::Chunked {
        rampart_http::write_header(&mut out, "transfer-encoding", b"chunked");
    }
    if close {
        rampart_http::write_header(&mut out, "connection", b"close");
    } else if head.version() == Version::Http10 {
        rampart_http::write_header(&mut out, "connection", b"keep-alive");
    }
    rampart_http::write_end_of_head(&mut out);
    record.edge_response_status = status;
    record.edge_response_content_type = content_type;
    let head_len = out.len() as u64;

    if upgrade {
        out.append(&mut buffered);
        if conn.stream.write_all(&out).await.is_err() {
            return Next::Close;
        }
        record.edge_response_bytes = head_len;
        if !conn.buf.is_empty() && origin.stream.write_all(&conn.buf).await.is_err() {
            return Next::Close;
        }
        conn.buf.clear();
        let _ = tokio::io::copy_bidirectional(&mut conn.stream, &mut origin.stream).await;
        return Next::Close;
    }

    let idle = zone.config.origin_response_timeout;
    let mut stream = OriginBodyStream::new(origin_body, buffered);
    // Only a re-chunked body needs a separate buffer; other bodies go straight into `out`,
    // after the head for the first piece, so a small response is one write.
    let mut chunk = Vec::new();
    let clean = loop {
        let next = if client_framing == ClientFraming::Chunked {
            chunk.clear();
            stream.next(&mut origin, &mut chunk, idle).await
        } else {
            stream.next(&mut origin, &mut out, idle).await
        };
        let done = match next {
            Ok(done) => done,
            // The head is already out: all we can do is cut the connection short.
            Err(()) => break false,
        };
        match client_framing {
            ClientFraming::Chunked => {
                rampart_http::write_chunk(&mut out, &chunk);
                if done {
                    rampart_http::write_last_chunk(&mut out);
                }
            }
            ClientFraming::None => out.truncate(head_len as usize),
            ClientFraming::Length(_) | ClientFraming::Close => {}
        }
        if !out.is_empty() {
            if conn.stream.write_all(&out).await.is_err() {
                break false;
            }
            record.edge_response_bytes += out.len() as u64;
            out.clear();
        }
        if done {
            break true;
        }
    };
    buffers::give(out);
    if clean && sent.request_sent && stream.reusable() && response.keep_alive() {
        zone.origin.checkin(origin, stream.into_buf());
    }
    if !clean || close {
        let _ = conn.stream.shutdown().await;
        return Next::Close;
    }
    Next::KeepAlive
}

/// Answers with the zone's page for an origin error: the origin's status and headers (minus
/// framing and content fields), the page as body. The origin's own body is not read, so its
/// connection is not reused.
async fn custom_page_response(
    conn: &mut Conn,
    ctx: &RequestContext<'_>,
    response: &ResponseHead,
    template: &str,
    request_body_done: bool,
    record: &mut LogRecord,
) -> Next {
    let close = !ctx.head.keep_alive() || !request_body_done || conn.rt.shutting_down();
    let out = custom_page(ctx, response, template, close);
    record.edge_response_status = response.status();
    record.edge_response_content_type = "text/html; charset=utf-8".to_string();
    if conn.stream.write_all(&out).await.is_err() {
        return Next::Close;
    }
    record.edge_response_bytes = out.len() as u64;
    if close { Next::Close } else { Next::KeepAlive }
}

/// The zone's page for an origin error, as an HTTP/1.1 response: the origin's status and
/// headers (minus framing and content fields), the page as body (none for HEAD).
pub(crate) fn custom_page(
    ctx: &RequestContext<'_>,
    response: &ResponseHead,
    template: &str,
    close: bool,
) -> Vec<u8> {
    let status = response.status();
    let vars = crate::errors::pages::PageVars {
        ray_id: ctx.ray_id.as_str(),
        client_ip: &ctx.client_ip.to_string(),
        error_code: status,
        title: rampart_http::canonical_reason(status),
        detail: "",
    };
    let body = crate::errors::pages::render_page(template, &vars);
    let mut out = Vec::with_capacity(1024 + body.len());
    rampart_http::write_status_line(&mut out, Version::Http11, status, response.reason_bytes());
    for (name, value) in response.headers() {
        let replaced = [
            "content-length",
            "content-type",
            "content-encoding",
            "etag",
            "last-modified",
            RAY_ID_HEADER,
        ];
        if response.is_hop_by_hop(name) || replaced.iter().any(|r| name.eq_ignore_ascii_case(r)) {
            continue;
        }
        rampart_http::write_header(&mut out, name, value);
    }
    rampart_http::write_header(&mut out, "content-type", b"text/html; charset=utf-8");
    rampart_http::write_header(
        &mut out,
        "content-length",
        body.len().to_string().as_bytes(),
    );
    rampart_http::write_header(&mut out, RAY_ID_HEADER, ctx.ray_id.as_bytes());
    if close {
        rampart_http::write_header(&mut out, "connection", b"close");
    } else if ctx.head.version() == Version::Http10 {
        rampart_http::write_header(&mut out, "connection", b"keep-alive");
    }
    rampart_http::write_end_of_head(&mut out);
    if !ctx.head.is_head() {
        out.extend_from_slice(&body);
    }
    out
}

/// The zone's page for an origin error with `status`, when the client takes HTML.
pub(crate) fn origin_error_page<'z>(
    ctx: &RequestContext<'_>,
    zone: &'z ZoneState,
    status: u16,
) -> Option<&'z str> {
    (status >= 400)
        .then(|| zone.config.security.error_pages.for_origin(status))
        .flatten()
        .map(|page| &**page)
        .filter(|_| {
            crate::errors::negotiate(ctx.head.header("accept")) == crate::errors::Format::Html
        })
}

/// Reads a response body from the origin according to its framing.
pub(crate) struct OriginBodyStream {
    kind: OriginBodyKind,
    buf: Vec<u8>,
}

enum OriginBodyKind {
    None,
    Length(u64),
    Chunked(Box<ChunkedDecoder>),
    UntilClose,
    Done { reusable: bool },
}

impl OriginBodyStream {
    pub(crate) fn new(body: ResponseBody, buffered: Vec<u8>) -> OriginBodyStream {
        let kind = match body {
            ResponseBody::None => OriginBodyKind::None,
            ResponseBody::ContentLength(n) => OriginBodyKind::Length(n),
            ResponseBody::Chunked => OriginBodyKind::Chunked(Box::new(ChunkedDecoder::new(
                rampart_http::DEFAULT_MAX_TRAILER_BYTES,
            ))),
            ResponseBody::CloseDelimited => OriginBodyKind::UntilClose,
        };
        OriginBodyStream {
            kind,
            buf: buffered,
        }
    }

    /// The connection can carry another request: the body ended by its framing and the
    /// origin sent nothing after it.
    pub(crate) fn reusable(&self) -> bool {
        matches!(self.kind, OriginBodyKind::Done { reusable: true })
    }

    /// The read buffer, to go back to the pool with the connection.
    pub(crate) fn into_buf(self) -> Vec<u8> {
        self.buf
    }

    /// Appends the next piece of body to `out`; returns true when the body is complete.
    pub(crate) async fn next(
        &mut self,
        origin: &mut OriginConn,
        out: &mut Vec<u8>,
        idle: Duration,
    ) -> Result<bool, ()> {
        loop {
            match &mut self.kind {
                OriginBodyKind::None => {
                    self.kind = OriginBodyKind::Done {
                        reusable: self.buf.is_empty(),
                    };
                    return Ok(true);
                }
                OriginBodyKind::Done { .. } => return Ok(true),
                OriginBodyKind::Length(remaining) => {
                    if *remaining == 0 {
                        self.kind = OriginBodyKind::Done {
                            reusable: self.buf.is_empty(),
                        };
                        return Ok(true);
                    }
                    if !self.buf.is_empty() {
                        let n = (*remaining).min(self.buf.len() as u64) as usize;
                        out.extend_from_slice(&self.buf[..n]);
                        self.buf.drain(..n);
                        *remaining -= n as u64;
                        if *remaining == 0 {
                            self.kind = OriginBodyKind::Done {
                                reusable: self.buf.is_empty(),
                            };
                            return Ok(true);
                        }
                        return Ok(false);
                    }
                }
                OriginBodyKind::Chunked(decoder) => {
                    if !self.buf.is_empty() {
                        let consumed = decoder.decode(&self.buf, out).map_err(|_| ())?;
                        self.buf.drain(..consumed);
                        if decoder.is_done() {
                            self.kind = OriginBodyKind::Done {
                                reusable: self.buf.is_empty(),
                            };
                            return Ok(true);
                        }
                        if !out.is_empty() {
                            return Ok(false);
                        }
                    }
                }
                OriginBodyKind::UntilClose => {
                    if !self.buf.is_empty() {
                        out.append(&mut self.buf);
                        return Ok(false);
                    }
                }
            }
            self.buf.reserve(ORIGIN_READ);
            match tokio::time::timeout(idle, origin.stream.read_buf(&mut self.buf)).await {
                Ok(Ok(0)) => {
                    if matches!(self.kind, OriginBodyKind::UntilClose) {
                        self.kind = OriginBodyKind::Done { reusable: false };
                        return Ok(true);
                    }
                    return Err(());
                }
                Ok(Ok(_)) => {}
                Ok(Err(_)) | Err(_) => return Err(()),
            }
        }
    }
}
