//! The HTTP/1.1 driver: moves bytes between a client connection, rampart-http and the
//! pipeline.
//!
//! One task per connection. Requests are read, decided and answered strictly in order, so
//! pipelined requests get their responses in order. Every decision about a request is made by
//! [`crate::pipeline`]; this module only reads, frames and writes.

mod body;
pub(crate) mod forward;
pub mod respond;

pub use crate::stream::ClientStream;

use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;

use rampart_http::{BodyFraming, Parse, RequestError, RequestHead, Version};
use tokio::time::{Instant as TokioInstant, Sleep};

use crate::errors::EdgeError;
use crate::listen::Runtime;
use crate::observe::{LogField, LogRecord, RequestInfo};
use crate::pipeline::{self, Decision, Protocol, Rejection, RequestContext};

/// Size of one read from a client or origin socket.
const READ_CHUNK: usize = 16 * 1024;

/// A client connection and the bytes read from it but not yet consumed.
pub(crate) struct Conn {
    pub stream: ClientStream,
    /// The TLS server name the client sent (lowercase), if any.
    pub sni: Option<Box<str>>,
    pub buf: Vec<u8>,
    pub peer: SocketAddr,
    pub rt: Arc<Runtime>,
    /// The connection's one timer, reset for each wait (next head, origin response): a new
    /// timer per wait is registered with the runtime's timer wheel and removed from it again,
    /// while moving a deadline later costs no more than a store.
    pub timer: Pin<Box<Sleep>>,
}

impl Conn {
    /// Sets the connection's timer to fire at `deadline`.
    pub(crate) fn timer_at(&mut self, deadline: TokioInstant) {
        if self.timer.deadline() != deadline || self.timer.is_elapsed() {
            self.timer.as_mut().reset(deadline);
        }
    }
}

/// What happens to the connection after a request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    /// Read the next request.
    KeepAlive,
    /// Close the connection.
    Close,
}

enum HeadRead {
    Complete(Box<RequestHead>, usize),
    Invalid(RequestError),
    /// The client sent part of a head, then nothing within `client_header_timeout`.
    TimedOut,
    /// The connection ended (or idled out, or shutdown began) between requests.
    Closed,
    /// The client opened with the HTTP/2 connection preface (cleartext, prior knowledge).
    Http2,
}

/// Serves one client connection until it closes.
pub(crate) async fn serve(
    stream: ClientStream,
    sni: Option<Box<str>>,
    peer: SocketAddr,
    rt: Arc<Runtime>,
) {
    let mut conn = Conn {
        stream,
        sni,
        buf: Vec::new(),
        peer,
        rt,
        // Not registered with the runtime until first awaited.
        timer: Box::pin(tokio::time::sleep_until(TokioInstant::now())),
    };
    let mut first = true;
    // Taken once: between requests the connection waits on it.
    let mut shutdown = conn.rt.shutdown_signal();
    loop {
        let generation = conn.rt.generation();
        let head = read_head(&mut conn, &generation.config, first, &mut shutdown).await;
        first = false;
        let next = match head {
            HeadRead::Closed => return,
            HeadRead::Http2 => {
                let Conn {
                    stream,
                    buf,
                    sni,
                    peer,
                    rt,
                    ..
                } = conn;
                let tls = stream.is_tls();
                let io = crate::stream::Prefixed::new(buf, stream);
                return Box::pin(crate::h2::serve(io, sni, tls, peer, rt)).await;
            }
            HeadRead::TimedOut => {
                let detail = format!(
                    "the request head did not arrive within {}",
                    humantime::format_duration(generation.config.server.client_header_timeout)
                );
                respond::reject_unparsed(
                    &mut conn,
                    &generation,
                    Rejection::new(EdgeError::RequestTimeout, detail),
                )
                .await;
                Next::Close
            }
            HeadRead::Invalid(e) => {
                let rejection =
                    Rejection::new(EdgeError::from_request_status(e.status()), e.to_string());
                respond::reject_unparsed(&mut conn, &generation, rejection).await;
                Next::Close
            }
            HeadRead::Complete(head, len) => {
                conn.buf.drain(..len);
                // Boxed so that the connection's own future stays small while it idles: the
                // whole request path is large and only needed while a request is in flight.
                Box::pin(handle(&mut conn, &generation, &head, len as u64)).await
            }
        };
        if next == Next::Close || conn.rt.shutting_down() {
            return;
        }
        if conn.buf.is_empty() {
            // An idle connection keeps no buffer; the next read takes one from the thread's.
            crate::stream::buffers::give(std::mem::take(&mut conn.buf));
        }
    }
}

/// Reads until a complete, valid head is buffered.
///
/// Between requests the connection may idle for `keepalive_timeout` (then it is closed
/// silently); once the first byte of a head has arrived, the whole head must arrive within
/// `client_header_timeout` (then 408).
async fn read_head(
    conn: &mut Conn,
    config: &crate::config::Config,
    first: bool,
    shutdown: &mut tokio::sync::watch::Receiver<bool>,
) -> HeadRead {
    let limits = config.limits.http_limits();
    let header_timeout = config.server.client_header_timeout;
    // One clock read for both deadlines.
    let now = TokioInstant::now();
    let mut deadline = if conn.buf.is_empty() && !first {
        None
    } else {
        Some(now + header_timeout)
    };
    let idle_deadline = now + config.server.keepalive_timeout;
    loop {
        if first && conn.buf.starts_with(crate::h2::PREFACE) {
            return HeadRead::Http2;
        }
        // Part of the HTTP/2 preface: read on before taking it for HTTP/1.1.
        let preface_pending = first
            && conn.buf.len() < crate::h2::PREFACE.len()
            && !conn.buf.is_empty()
            && crate::h2::PREFACE.starts_with(&conn.buf);
        if !conn.buf.is_empty() && !preface_pending {
            match rampart_http::parse_request_head(&conn.buf, &limits) {
                Ok(Parse::Complete((head, len))) => return HeadRead::Complete(Box::new(head), len),
                Ok(Parse::Partial) => {}
                Err(e) => return HeadRead::Invalid(e),
            }
            if deadline.is_none() {
                deadline = Some(TokioInstant::now() + header_timeout);
            }
        }
        conn.timer_at(deadline.unwrap_or(idle_deadline));
        // Shutdown closes a connection that has sent nothing of a head: between requests, or
        // a new one that has not sent its first (else the drain waits for its header
        // timeout); never one sending a head.
        let nothing_sent = conn.buf.is_empty();
        // `biased`: polled in order (the read first), without drawing a random number.
        let read = tokio::select! {
            biased;
            r = conn.stream.read_some(&mut conn.buf, HEAD_CHUNK) => Some(r),
            _ = conn.timer.as_mut() => None,
            _ = shutdown.changed(), if nothing_sent => return HeadRead::Closed,
        };
        match read {
            Some(Ok(0)) | Some(Err(_)) => return HeadRead::Closed,
            Some(Ok(_)) => {}
            None if conn.buf.is_empty() => return HeadRead::Closed,
            None => return HeadRead::TimedOut,
        }
    }
}

/// Size of one read while a request head is awaited; most heads fit in one.
const HEAD_CHUNK: usize = 4096;

/// Handles one request whose head is parsed: runs the pipeline, then answers or forwards.
async fn handle(
    conn: &mut Conn,
    generation: &Arc<crate::state::Generation>,
    head: &RequestHead,
    head_bytes: u64,
) -> Next {
    if let (Some(sni), Some(host)) = (conn.sni.as_deref(), head.host())
        && !host.host().trim_end_matches('.').eq_ignore_ascii_case(sni)
    {
        // Before any zone applies: unstyled, unlogged, counted (the error catalogue's SNI
        // check). The connection closes, since it was opened for another host.
        conn.rt.metrics.sni_mismatch();
        respond::sni_mismatch(conn, head.method() == "HEAD").await;
        return Next::Close;
    }
    let client_ip = generation
        .config
        .server
        .trusted_proxies
        .client_ip(conn.peer.ip(), head);
    let geo = generation.config.geoip.lookup_if_configured(client_ip);
    let protocol = match head.version() {
        Version::Http10 => Protocol::Http10,
        Version::Http11 => Protocol::Http11,
    };
    let mut ctx = RequestContext::new(
        generation,
        head,
        conn.peer,
        client_ip,
        protocol,
        conn.stream.is_tls(),
        &geo,
    );
    let mut record = LogRecord {
        client_request_bytes: head_bytes,
        ..LogRecord::default()
    };
    let next = match pipeline::request_phases(&mut ctx) {
        Decision::Reject(rejection) => {
            let close = !head.keep_alive() || !discard_unread_body(conn, head);
            respond::reject(conn, &ctx, &rejection, close, &mut record).await;
            if close { Next::Close } else { Next::KeepAlive }
        }
        Decision::Continue => forward::proxy(conn, &ctx, &mut record).await,
    };
    pipeline::response_phase(&ctx, record.edge_response_status);
    finish(&conn.rt, &ctx, record);
    next
}

/// Drops the body of a rejected request when it is already fully buffered, so the
/// connection can stay open. Returns false when the body is not (fully) here, in which case
/// the connection must close: the body is never read.
fn discard_unread_body(conn: &mut Conn, head: &RequestHead) -> bool {
    match head.body() {
        BodyFraming::None => true,
        BodyFraming::ContentLength(n) if (n as usize) <= conn.buf.len() => {
            conn.buf.drain(..n as usize);
            true
        }
        _ => false,
    }
}

/// Completes the log record and counts the request.
pub(crate) fn finish(rt: &Runtime, ctx: &RequestContext<'_>, record: LogRecord) {
    let zone = ctx.zone.as_ref().map(|z| z.config.name.as_str());
    rt.metrics
        .request(zone, ctx.protocol.as_str(), record.edge_response_status);
    if record.edge_response_status == 499 {
        rt.metrics.client_closed(zone);
    }
    for m in ctx.security.iter().chain(&ctx.logged) {
        rt.metrics
            .security_action(zone.unwrap_or(""), m.action, m.source);
    }
    if !rt.log.enabled() {
        return;
    }
    let mut sources: Vec<&'static str> = Vec::new();
    for m in ctx.security.iter().chain(&ctx.logged) {
        if !sources.contains(&m.source) {
            sources.push(m.source);
        }
    }
    let head = ctx.head;
    // Headers are looked up only for the fields the lines hold.
    let header = |field, name| match rt.log.logs(field) {
        true => head.header(name).unwrap_or(b""),
        false => b"",
    };
    let info = RequestInfo {
        ray_id: ctx.ray_id.as_str(),
        zone: zone.unwrap_or(""),
        started_at: ctx.started_at,
        client_ip: ctx.client_ip,
        client_port: ctx.peer.port(),
        host: head.host_name().unwrap_or(""),
        method: head.method(),
        uri: head.target(),
        path: head.path(),
        protocol: ctx.protocol.as_str(),
        scheme: if ctx.tls { "https" } else { "http" },
        user_agent: header(LogField::ClientRequestUserAgent, "user-agent"),
        referer: header(LogField::ClientRequestReferer, "referer"),
        country: ctx.geo.country.as_deref().unwrap_or(""),
        asn: ctx.geo.asn.unwrap_or(0),
        security: ctx.security.as_ref().or(ctx.logged.first()),
        sources: &sources,
    };
    rt.log.write(&info, &record);
}
