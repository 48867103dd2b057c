//! Answering: a generated error, a phase's own response, or the origin's answer relayed.

use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rampart_http::RequestHead;

use super::body::{Abort, ClientPort, RequestBody};
use super::{Arrival, Downstream, Gone};
use crate::cache::fill::Filling;
use crate::config::LogField;
use crate::errors::{Audience, Rejection, rejection_response};
use crate::message::{
    Body, BodyKind, BodyStream, Protocol, RayId, Response, ResponseHead, http_date_now,
};
use crate::observe::{Finished, LogRecord, RequestInfo};
use crate::pipeline::response::{ORIGIN_RESPONSE_PHASES, ResponseDecision};
use crate::pipeline::{PhaseEnv, RequestContext};
use crate::runtime::Runtime;
use crate::state::Generation;
use crate::upstream::{FetchError, OriginBody, OriginRequest, OriginResponse, Policy};
use rampart_cache::encoding::Compressor;

use super::cached::AfterHead;
pub(super) use super::cached::CacheUse;
use crate::cache::CacheStatus;

/// The whole body of the answer to a request whose Host differs from its TLS server name.
pub(crate) const SNI_MISMATCH_BODY: &str =
    "403 Forbidden: the Host header does not match the TLS server name\n";

/// The whole body of the answer to a request for a host this connection's certificate does
/// not serve.
const MISDIRECTED_BODY: &str =
    "421 Misdirected Request: this host is not served on this connection; open a new one\n";

/// The answer to a request whose Host differs from the TLS server name, if it does: over
/// HTTP/1.1, 403 with a tiny plain body and nothing else (no branding, no ray id), and the
/// connection closes, since it was opened for another host. HTTP/2 clients reuse a
/// connection for another host that its certificate covers (RFC 9113 §9.1.1), so such a host
/// is served; any other gets 421, which tells the client to retry on a connection of its own
/// (RFC 9110 §15.5.20).
pub(super) fn misdirected(
    generation: &Generation,
    head: &RequestHead,
    arrival: &Arrival<'_>,
) -> Option<Response> {
    let sni = arrival.sni?;
    let host = head.host()?;
    let host = host.host().trim_end_matches('.');
    if host.eq_ignore_ascii_case(sni) {
        return None;
    }
    if arrival.protocol == Protocol::Http2 {
        let same = match (
            generation.certificate_for(Some(host)),
            generation.certificate_for(Some(sni)),
        ) {
            (Some(a), Some(b)) => Arc::ptr_eq(&a, &b),
            _ => false,
        };
        return (!same).then(|| {
            Response::full(
                421,
                "text/plain; charset=utf-8",
                MISDIRECTED_BODY.as_bytes(),
            )
        });
    }
    let mut answer = Response::full(
        403,
        "text/plain; charset=utf-8",
        SNI_MISMATCH_BODY.as_bytes(),
    );
    answer.head.close = true;
    Some(answer)
}

/// Sends a response held whole in memory (only its head for HEAD).
pub(super) async fn full<D: Downstream>(
    ds: &mut D,
    response: Response,
    head_only: bool,
) -> Result<(), Gone> {
    let body = match response.body {
        Body::Full(b) => b,
        Body::Stream(never) => match never {},
    };
    whole(ds, &response.head, &body, head_only).await
}

/// Sends `head` and the whole of `body` (only the head for HEAD).
async fn whole<D: Downstream>(
    ds: &mut D,
    head: &ResponseHead,
    body: &[u8],
    head_only: bool,
) -> Result<(), Gone> {
    let kind = if head_only || body.is_empty() {
        BodyKind::None
    } else {
        BodyKind::Length(body.len() as u64)
    };
    ds.send_head(head, kind).await?;
    if kind != BodyKind::None {
        ds.send_data(body, true).await?;
    }
    Ok(())
}

/// Sends `response` and records it in the log.
pub(super) async fn send_and_record<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    response: Response,
) {
    let mut response = response;
    finish_head(rt, ctx, &mut response.head, Instant::now());
    let sent = full(ds, response, ctx.head.is_head()).await;
    ctx.log.edge_response_bytes = ds.bytes_sent();
    if sent.is_err() && ds.bytes_sent() == 0 {
        ctx.log.edge_response_status = 499;
    }
}

/// The last step before a generated or cached head goes out: the zone's HSTS and response
/// header rules, then [`record_head`].
fn finish_head(rt: &Runtime, ctx: &mut RequestContext<'_>, head: &mut ResponseHead, now: Instant) {
    crate::pipeline::traffic::response_headers(ctx, head);
    record_head(rt, ctx, head, now);
}

/// Records the status and type of the head about to be sent, and the time to first byte
/// (`now` is when it goes out).
fn record_head(rt: &Runtime, ctx: &mut RequestContext<'_>, head: &ResponseHead, now: Instant) {
    ctx.log.edge_response_status = head.status();
    ctx.log.edge_time_to_first_byte_ms = (now - ctx.started).as_millis() as u64;
    if rt.log.logs(LogField::EdgeResponseContentType)
        && let Some(ct) = head.get("content-type")
    {
        ctx.log.edge_response_content_type = String::from_utf8_lossy(ct).into_owned();
    }
}

/// Answers with a generated error: counted, logged with its code and reason. `framing`: the
/// error is about the request's framing (its body broke a rule), after which an HTTP/1.1
/// connection cannot be trusted to carry another request.
pub(super) async fn reject<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    rejection: &Rejection,
    framing: bool,
) {
    let mut response = rejection_response(rejection, &ctx.audience());
    response.head.close = framing;
    count_and_record_error(rt, &mut ctx.log, rejection);
    send_and_record(rt, ds, ctx, response).await;
}

/// Counts a generated error and records its code and reason in the log line.
fn count_and_record_error(rt: &Runtime, log: &mut LogRecord, rejection: &Rejection) {
    let entry = rejection.error.entry();
    rt.metrics.generated_error(entry.name, rejection.status());
    log.error_code = entry.code.unwrap_or(entry.status);
    log.error_reason = format!("{}: {}", entry.name, rejection.detail);
}

/// Answers with a phase's own response.
pub(super) async fn respond<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    mut response: Response,
) {
    response.head.set_ray_id(ctx.ray_id);
    send_and_record(rt, ds, ctx, response).await;
}

/// Fetches from the zone's upstream and relays the answer; an origin failure or a body that
/// broke a rule is answered with its generated error, a client that left is logged as 499.
pub(super) async fn forward<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    env: &PhaseEnv,
    body: &mut RequestBody,
    cache: CacheUse<'_>,
) {
    let Some(zone) = ctx.zone.clone() else {
        unreachable!("the route phase sets the zone before a request is forwarded")
    };
    let added = cache.added_fields();
    // In a block of its own: what the fetch needs is not kept in the future beyond it.
    let fetched = {
        let policy = Policy::of(&zone.config, &ctx.generation.config.limits);
        let handling = &zone.config.request;
        let request = OriginRequest {
            head: ctx.head,
            client_ip: ctx.client_ip,
            tls: ctx.tls,
            protocol: ctx.protocol,
            ray_id: ctx.ray_id,
            target: origin_target(ctx),
            underscores: handling.underscores_in_headers,
            client_ip_header: ctx
                .generation
                .config
                .server
                .trusted_proxies
                .header
                .as_deref(),
            added: &added,
            edits: &ctx.origin_edits,
        };
        let mut port = ClientPort { ds, body };
        zone.upstream
            .fetch(&policy, &rt.metrics, &zone.config.name, &request, &mut port)
            .await
    };
    let (rejection, framing) = match fetched {
        Ok(response) => {
            return relay(rt, ds, ctx, env, response, cache).await;
        }
        Err(FetchError::Client(Abort::Gone)) => {
            ctx.log.edge_response_status = 499;
            return;
        }
        Err(FetchError::Client(Abort::Reject(rejection))) => (rejection, true),
        Err(FetchError::Origin(rejection)) => {
            // From the request's start: the phases before took microseconds.
            ctx.log.origin_response_duration = ctx.started.elapsed();
            if let (Some(stale), Some(plan)) = (cache.stale_for_error(), cache.plan()) {
                let entry = rejection.error.entry();
                ctx.log.error_reason =
                    format!("{}: {}; served stale", entry.name, rejection.detail);
                let status = CacheStatus::Stale;
                return Box::pin(super::cached::answer(rt, ds, ctx, stale, status, plan)).await;
            }
            (rejection, false)
        }
    };
    // Boxed, as every generated answer: a large future the common path need not carry.
    Box::pin(reject(rt, ds, ctx, &rejection, framing)).await;
}

/// The path and query the origin is sent instead of the client's: the normalised URL, when
/// the zone normalises URLs to the origin too.
pub(super) fn origin_target<'c>(ctx: &'c RequestContext<'_>) -> Option<&'c str> {
    let zone = ctx.zone.as_ref()?;
    zone.config
        .request
        .url_normalization
        .to_origin()
        .then(|| ctx.rules.fields().normalized_uri())
        .flatten()
}

/// Relays the origin's answer: the response phases, then the head, then the body as it
/// arrives (or the page that replaces it, or a tunnel after a 101).
async fn relay<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    env: &PhaseEnv,
    mut response: OriginResponse<'_>,
    cache: CacheUse<'_>,
) {
    let page = answer_phases(rt, ctx, env, &mut response);
    let mut filling = match super::cached::on_origin_head(rt, ctx, &mut response, cache) {
        AfterHead::Relay(filling) => {
            // After the cache took its copy of the fields: the rules' changes are for this
            // client, and are made again for each one served from the cache.
            crate::pipeline::traffic::response_headers(ctx, &mut response.head);
            filling
        }
        AfterHead::Serve(object, status) => {
            drop(response);
            let plan = cache
                .plan()
                .expect("only a request fetched for the cache is served");
            return Box::pin(super::cached::answer(rt, ds, ctx, &object, status, plan)).await;
        }
    };
    if let Some(page) = page {
        // The origin's own body is not read, so its connection is not reused.
        let _ = Box::pin(whole(ds, &response.head, &page, ctx.head.is_head())).await;
    } else if response.head.is_upgrade() {
        if ds.send_head(&response.head, BodyKind::None).await.is_ok()
            && let Some((stream, buffered)) = response.body.into_upgraded()
        {
            ctx.log.edge_response_bytes = ds.bytes_sent();
            ds.tunnel(stream, buffered).await;
            return;
        }
    } else {
        let mut kind = response.kind;
        let compressor = super::compress::on_the_way(ctx.head, &mut response.head, &mut kind);
        let head = &response.head;
        let out = Outgoing {
            head,
            kind,
            compressor,
        };
        stream_body(ds, ctx, out, &mut response.body, &mut filling).await;
        if let Some(f) = filling {
            super::cached::store(rt, ctx, f);
        }
    }
    ctx.log.edge_response_bytes = ds.bytes_sent();
}

/// What happens once the origin's head is here: it is recorded and counted, gets Date when
/// it has none and the ray id, and goes through the response phases; a page that replaces
/// its body is returned.
fn answer_phases(
    rt: &Runtime,
    ctx: &mut RequestContext<'_>,
    env: &PhaseEnv,
    response: &mut OriginResponse<'_>,
) -> Option<Bytes> {
    let head = &mut response.head;
    let status = head.status();
    // One clock read for the origin's time and the time to first byte.
    let now = Instant::now();
    let elapsed = now - response.sent_at;
    ctx.log.origin_ip = Some(response.origin_ip);
    ctx.log.origin_response_status = status;
    // Counted in the metrics with the request, when it ends.
    ctx.log.origin_response_duration = elapsed;
    // RFC 9110 §6.6.1: a recipient with a clock adds Date to a response that lacks one.
    if !head.origin_sent_date() {
        head.append(http::header::DATE, http_date_now());
    }
    head.set_ray_id(ctx.ray_id);
    let mut replacement = None;
    for phase in ORIGIN_RESPONSE_PHASES {
        if let ResponseDecision::ReplaceBody(b) = phase(ctx, env, head) {
            replacement = Some(b);
        }
    }
    record_head(rt, ctx, head, now);
    replacement
}

/// A relayed response as it goes to the client: the head, the body's kind, and the
/// compressor its body goes through, if any.
struct Outgoing<'h> {
    head: &'h ResponseHead,
    kind: BodyKind,
    compressor: Option<Compressor>,
}

/// Sends the head, then the body piece by piece as the origin sends it (compressed on the
/// way, when it is); a body being stored is kept in `filling` as the origin sent it, which is
/// left `None` unless the body came whole.
async fn stream_body<D: Downstream>(
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    out: Outgoing<'_>,
    body: &mut OriginBody<'_>,
    filling: &mut Option<Box<Filling>>,
) {
    let Outgoing {
        head,
        kind,
        mut compressor,
    } = out;
    if ds.send_head(head, kind).await.is_err() {
        ctx.log.edge_response_status = 499;
        *filling = None;
        return;
    }
    if kind == BodyKind::None {
        return;
    }
    loop {
        let piece = match body.next_piece().await {
            Ok(p) => p,
            Err(cut) => {
                // The head is out: all that is left is to end the response abnormally, and
                // to say so in the log and the metrics.
                tracing::debug!(
                    ray_id = ctx.ray_id.as_str(),
                    "response body cut short: {}",
                    cut.0
                );
                ds.cut_short();
                ctx.log.cut_short = true;
                ctx.log.error_reason = format!("origin_body_cut_short: {}", cut.0);
                *filling = None;
                return;
            }
        };
        if let Some(f) = filling
            && !f.push(piece.data)
        {
            *filling = None;
        }
        let coded;
        let data = match &mut compressor {
            Some(c) => {
                let mut bytes = c.push(piece.data);
                if piece.last
                    && let Some(c) = compressor.take()
                {
                    bytes.extend_from_slice(&c.finish());
                }
                coded = bytes;
                &coded[..]
            }
            None => piece.data,
        };
        let sent = match piece.trailers {
            Some(trailers) => match ds.send_data(data, false).await {
                Ok(()) => ds.send_trailers(trailers).await,
                Err(g) => Err(g),
            },
            None => ds.send_data(data, piece.last).await,
        };
        if sent.is_err() {
            // The client left: what was read is not the whole body.
            *filling = None;
            return;
        }
        if piece.last {
            return;
        }
    }
}

/// What is known of a request that never became a valid head.
#[derive(Clone, Copy, Debug, Default)]
pub struct Unparsed<'a> {
    /// Its Accept field, found in the bytes if possible.
    pub accept: Option<&'a [u8]>,
    /// Whether it is a HEAD request.
    pub head_only: bool,
    /// Method, target and host, where known (HTTP/2 gives them apart from the fields).
    pub method: &'a str,
    /// The request-target.
    pub target: &'a str,
    /// The host.
    pub host: &'a str,
    /// The User-Agent.
    pub user_agent: &'a [u8],
    /// Bytes received.
    pub bytes: u64,
}

/// Answers what never became a valid request head (malformed, too large, timed out), logs
/// what is known, and counts it. The connection of an HTTP/1.1 client closes after it.
pub async fn reject_unparsed<D: Downstream>(
    rt: &Runtime,
    generation: &Generation,
    ds: &mut D,
    arrival: Arrival<'_>,
    what: Unparsed<'_>,
    rejection: Rejection,
) {
    let ray_id = RayId::generate();
    let started_at = std::time::SystemTime::now();
    let client_ip = arrival.peer.ip();
    let mut response = rejection_response(
        &rejection,
        &Audience {
            ray_id,
            client_ip,
            zone: None,
            accept: what.accept,
            docs_url: &generation.config.server.error_docs_url,
            pages: None,
        },
    );
    response.head.close = true;
    let status = response.head.status();
    let mut log = LogRecord {
        client_request_bytes: what.bytes,
        edge_response_status: status,
        ..LogRecord::default()
    };
    if let Some(ct) = response.head.get("content-type") {
        log.edge_response_content_type = String::from_utf8_lossy(ct).into_owned();
    }
    let _ = full(ds, response, what.head_only).await;
    log.edge_response_bytes = ds.bytes_sent();
    count_and_record_error(rt, &mut log, &rejection);
    rt.metrics.finished(&Finished {
        zone: "",
        protocol: arrival.protocol.as_str(),
        status,
        cache: None,
        origin: None,
    });
    let info = RequestInfo {
        ray_id: ray_id.as_str(),
        zone: "",
        started_at,
        client_ip,
        client_port: arrival.peer.port(),
        host: what.host,
        method: what.method,
        uri: what.target,
        path: what.target.split('?').next().unwrap_or(""),
        protocol: arrival.protocol.as_str(),
        scheme: if arrival.tls { "https" } else { "http" },
        user_agent: what.user_agent,
        referer: b"",
        country: "",
        asn: 0,
        security: None,
        sources: &[],
    };
    rt.log.write(&info, &log);
}
