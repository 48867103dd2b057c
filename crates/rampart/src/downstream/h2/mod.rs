//! The HTTP/2 downstream: h2's server on the client side; each stream becomes a request for
//! the session.
//!
//! Each stream's pseudo-headers and fields are written out as an HTTP/1.1 request head and
//! validated by rampart-http, so an HTTP/2 request meets exactly the checks, limits and status
//! codes of an HTTP/1.1 one (414, 431, 400 for a bad field value, 501 for CONNECT). What only
//! HTTP/2 can get wrong (connection-specific fields, uppercase names, pseudo-header misuse, a
//! Content-Length that disagrees with the DATA frames, floods) is h2's to refuse, with the
//! stream or connection error RFC 9113 prescribes.

mod flood;
mod request;
mod stream;

use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use futures_util::stream::FuturesUnordered;
use futures_util::{FutureExt, StreamExt};
use h2::RecvStream;
use h2::server::SendResponse;
use http::Request;
use rampart_http::Parse;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::time::Instant as TokioInstant;

use crate::errors::{EdgeError, Rejection};
use crate::message::Protocol;
use crate::runtime::Runtime;
use crate::session::{self, Arrival, Unparsed};

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

/// How long a flooding client's connection stays open after its GOAWAY.
const FLOOD_GOAWAY_GRACE: std::time::Duration = std::time::Duration::from_secs(1);

pub use flood::{CONTROL_FRAME_BURST, CONTROL_FRAMES_PER_SEC};
pub use request::fuzz_h2_request;

/// Smallest header-list size announced to clients (SETTINGS_MAX_HEADER_LIST_SIZE).
pub const MIN_ANNOUNCED_HEADER_LIST: usize = 1 << 20;

/// The header-list size (name + value + 32 per field, RFC 9113 §6.5.2) h2 takes: well above
/// rampart's own limits (at least [`MIN_ANNOUNCED_HEADER_LIST`], and twice the header bytes
/// rampart takes), so that a list over them reaches rampart-http and gets the same explained
/// 431 as over HTTP/1.1. Past it h2 refuses the stream itself; the client was told the size.
/// h2 decodes one header block at a time, so this bounds a connection's memory for heads.
fn header_list_limit(limits: &crate::config::LimitsConfig) -> usize {
    limits
        .max_header_bytes
        .saturating_mul(2)
        .saturating_add(limits.max_headers.saturating_mul(32))
        .max(MIN_ANNOUNCED_HEADER_LIST)
}

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
    let list_limit = header_list_limit(limits);
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
    let flood = Arc::new(flood::Flood::default());
    let io = flood::Guarded::new(io, flood.clone());
    let handshake = builder.handshake::<flood::Guarded<T>, Bytes>(io);
    let mut conn = match tokio::time::timeout_at(deadline, handshake).await {
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
    // The streams are driven by this task, not spawned: their frames and the connection's
    // are then handled in one poll, with no wake-up of one task by another in between.
    let mut streams = FuturesUnordered::new();
    let mut flooded = false;
    loop {
        tokio::select! {
            next = conn.accept() => match next {
                Some(Ok((request, respond))) => {
                    idle.as_mut().reset(TokioInstant::now() + keepalive);
                    streams.push(Box::pin(stream(request, respond, cx.clone())));
                }
                // A connection error (h2 has sent GOAWAY) or the client closed.
                Some(Err(_)) | None => break,
            },
            Some(()) = streams.next(), if !streams.is_empty() => {
                // Every other stream that can go on does so before the connection is polled
                // again: their frames then go out together, in as few writes as possible.
                while let Some(Some(())) = streams.next().now_or_never() {}
            }
            _ = flood.tripped(), if !flooded => {
                // GOAWAY (ENHANCE_YOUR_CALM) goes out if the client reads at all; the
                // connection ends after a second either way.
                flooded = true;
                tracing::debug!(%peer, "HTTP/2 control-frame flood: GOAWAY ENHANCE_YOUR_CALM");
                conn.abrupt_shutdown(h2::Reason::ENHANCE_YOUR_CALM);
                drain_until = Some(TokioInstant::now() + FLOOD_GOAWAY_GRACE);
            }
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
                break;
            }
        }
    }
    // The connection is over: the streams still in flight end too (their sends fail at
    // once; one waiting for its origin is bounded by the origin's timeouts), and each is
    // logged.
    drop(conn);
    while streams.next().await.is_some() {}
}

/// One request: validate its head, then the session; a head that does not pass is answered
/// and logged like its HTTP/1.1 twin (with what HTTP/2 told of it: method, target, authority).
async fn stream(request: Request<RecvStream>, respond: SendResponse<Bytes>, cx: StreamCx) {
    let generation = cx.rt.generation();
    let (parts, body) = request.into_parts();
    let has_body = !body.is_end_stream();
    let raw = request::http1_head(&parts, has_body);
    let config = &generation.config;
    let mut ds = stream::Stream::new(respond, body, config.server.client_body_timeout);
    let arrival = Arrival {
        peer: cx.peer,
        tls: cx.tls,
        sni: cx.sni.as_deref(),
        protocol: Protocol::Http2,
        head_bytes: raw.len() as u64,
    };
    match rampart_http::parse_request_head(&raw, &config.limits.http_limits()) {
        Ok(Parse::Complete((head, _))) => {
            session::serve(&cx.rt, &generation, &mut ds, &head, arrival).await;
        }
        // The written head always ends with an empty line.
        Ok(Parse::Partial) => ds.reset(),
        Err(e) => {
            let rejection =
                Rejection::explained(EdgeError::from_request_status(e.status()), e.to_string());
            let header = |name| parts.headers.get(name).map(http::HeaderValue::as_bytes);
            let what = Unparsed {
                accept: header(http::header::ACCEPT),
                head_only: parts.method == http::Method::HEAD,
                method: parts.method.as_str(),
                target: parts.uri.path_and_query().map_or("", |p| p.as_str()),
                host: parts.uri.host().unwrap_or(""),
                user_agent: header(http::header::USER_AGENT).unwrap_or(b""),
                bytes: 0,
            };
            let arrival = Arrival {
                head_bytes: 0,
                ..arrival
            };
            session::reject_unparsed(&cx.rt, &generation, &mut ds, arrival, what, rejection).await;
        }
    }
}
