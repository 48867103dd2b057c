//! The life of one request, written once for every protocol:
//!
//! ```text
//! SNI check ─▶ request phases (reading the body first for a phase that inspects it)
//!   ─▶ answer (a phase's response, or a generated error)
//!    or fetch from the upstream (100-continue, the body streamed, interim responses
//!       relayed, a client that leaves noticed) ─▶ response phases ─▶ relay
//!   ─▶ after-response phase ─▶ log + metrics
//! ```
//!
//! The client's side of the request is a [`Downstream`]: the HTTP/1.1 and HTTP/2 drivers
//! each implement it over their bytes or frames and make no decision of their own. Where a
//! behaviour has a rule — when `100 Continue` is sent, when a body is 413, when a request is
//! logged as 499, which page replaces an origin error — it is here, once.

mod body;
mod cached;
mod compress;
mod log;
mod refresh;
mod send;

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use rampart_http::RequestHead;

use crate::errors::Rejection;
use crate::message::{BodyKind, Protocol, ResponseHead};
use crate::pipeline::{
    self, BodyNeed, Connection, Decision, OverLimit, PhaseEnv, REQUEST_PHASES, RequestContext,
    fields::RequestFields,
};
use crate::runtime::Runtime;
use crate::state::Generation;
use crate::stream::OriginStream;

pub use body::BodyError;
pub use send::{Unparsed, reject_unparsed};

/// The client has gone: nothing more can be sent to it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gone;

/// The client's side of one request, whatever its protocol.
///
/// Calls come in this order: [`Downstream::read_body`] any number of times (possibly none),
/// [`Downstream::send_continue`] before the first read when the client expects it,
/// [`Downstream::send_interim`] any number of times, then [`Downstream::send_head`] once,
/// then [`Downstream::send_data`] until a `last` piece (or [`Downstream::send_trailers`]),
/// unless the head said there is no body. [`Downstream::client_gone`] may be awaited while
/// nothing else is going on.
pub trait Downstream {
    /// The next piece of the request body, de-framed; `Ok(None)` at its end (at once when
    /// there is no body).
    fn read_body(&mut self) -> impl Future<Output = Result<Option<Bytes>, BodyError>>;

    /// Bytes of request body received off the wire so far, framing included.
    fn body_wire_bytes(&self) -> u64;

    /// Tells a client that sent `Expect: 100-continue` to send its body.
    fn send_continue(&mut self) -> impl Future<Output = Result<(), Gone>>;

    /// Sends an interim (1xx) response (an HTTP/1.0 client gets none).
    fn send_interim(&mut self, head: &ResponseHead) -> impl Future<Output = Result<(), Gone>>;

    /// Sends the response head; `kind` says whether and how a body follows.
    fn send_head(
        &mut self,
        head: &ResponseHead,
        kind: BodyKind,
    ) -> impl Future<Output = Result<(), Gone>>;

    /// Sends a piece of the response body; `last` ends it.
    fn send_data(&mut self, data: &[u8], last: bool) -> impl Future<Output = Result<(), Gone>>;

    /// Ends the response body with a trailer section (raw field lines).
    fn send_trailers(&mut self, trailers: &[u8]) -> impl Future<Output = Result<(), Gone>>;

    /// Bytes of the response sent so far, head included.
    fn bytes_sent(&self) -> u64;

    /// The body was cut short after its head went out: end the response abnormally, so the
    /// client does not take it for complete.
    fn cut_short(&mut self);

    /// Resolves when the client has gone; never while it is there. Cancel-safe.
    fn client_gone(&mut self) -> impl Future<Output = ()>;

    /// After a 101 to an upgrade: copies bytes both ways between the client and `origin`
    /// (which sent `buffered` after its head) until either side closes.
    fn tunnel(&mut self, origin: OriginStream, buffered: Vec<u8>) -> impl Future<Output = ()>;
}

/// What the driver knows of a request beyond its head.
#[derive(Clone, Copy, Debug)]
pub struct Arrival<'a> {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// Whether the connection is TLS.
    pub tls: bool,
    /// The TLS server name the client sent (lowercase), if any.
    pub sni: Option<&'a str>,
    /// The protocol.
    pub protocol: Protocol,
    /// Bytes of the head as received.
    pub head_bytes: u64,
}

/// How the request phases ended.
enum Outcome {
    Forward,
    Respond(Box<crate::message::Response>),
    /// A phase's rejection.
    Reject(Rejection),
    /// The body broke a rule while a phase was reading it.
    BodyRejected(Rejection),
    ClientGone,
}

/// Serves one request whose head was read and validated: decides, answers or fetches, logs.
pub async fn serve<D: Downstream>(
    rt: &Runtime,
    generation: &Arc<Generation>,
    ds: &mut D,
    head: &RequestHead,
    arrival: Arrival<'_>,
) {
    if let Some(answer) = send::misdirected(generation, head, &arrival) {
        // Before any zone applies: unstyled, unlogged, counted.
        rt.metrics.sni_mismatch();
        let _ = Box::pin(send::full(ds, answer, head.is_head())).await;
        return;
    }
    let env = PhaseEnv::current();
    let config = &generation.config;
    let client_ip =
        pipeline::client_ip::client_ip(&config.server.trusted_proxies, arrival.peer.ip(), head);
    let geo = config.geoip.lookup_if_configured(client_ip);
    let fields = RequestFields::new(
        head,
        client_ip,
        &geo,
        arrival.protocol.as_str(),
        env.unix_secs(),
        arrival.tls,
    )
    .with_threat(config.threats.score(client_ip));
    let conn = Connection {
        peer: arrival.peer,
        client_ip,
        protocol: arrival.protocol,
        tls: arrival.tls,
    };
    let mut ctx = RequestContext::new(generation, head, conn, &geo, &fields, &env);
    ctx.log.client_request_bytes = arrival.head_bytes;
    let mut body = body::RequestBody::new(head, config.limits.max_body_bytes);
    // Generated answers are boxed: large futures the forwarding path need not carry. The
    // outcome is gone by the time the request is forwarded, so its future does not keep it.
    let forward = match request_phases(ds, &mut ctx, &env, &mut body).await {
        Outcome::Forward => true,
        Outcome::Respond(response) => {
            Box::pin(send::respond(rt, ds, &mut ctx, *response)).await;
            false
        }
        Outcome::Reject(rejection) => {
            Box::pin(send::reject(rt, ds, &mut ctx, &rejection, false)).await;
            false
        }
        Outcome::BodyRejected(rejection) => {
            Box::pin(send::reject(rt, ds, &mut ctx, &rejection, true)).await;
            false
        }
        Outcome::ClientGone => {
            ctx.log.edge_response_status = 499;
            false
        }
    };
    if forward {
        cached::forward(rt, ds, &mut ctx, &env, &mut body).await;
    }
    ctx.log.client_request_bytes += ds.body_wire_bytes();
    pipeline::response::after_response(&ctx, &env, ctx.log.edge_response_status);
    log::finish(rt, &ctx);
}

/// Runs the request phases in order until one does not continue, reading the body first for
/// a phase that inspects it.
async fn request_phases<D: Downstream>(
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    env: &PhaseEnv,
    body: &mut body::RequestBody,
) -> Outcome {
    for phase in &REQUEST_PHASES {
        if ctx.skipped.contains(phase.id) {
            continue;
        }
        if let BodyNeed::Inspect { max, over } = (phase.body)(ctx)
            && ctx.rules.fields().body().is_none()
        {
            let inspected = match body.inspect(ds, max).await {
                Ok(b) => b,
                Err(body::Abort::Gone) => return Outcome::ClientGone,
                Err(body::Abort::Reject(r)) => return Outcome::BodyRejected(r),
            };
            if inspected.truncated && over == OverLimit::Reject {
                let max = max as u64;
                return Outcome::BodyRejected(pipeline::limits::body_too_large(
                    body.received().max(max + 1),
                    max,
                    pipeline::limits::BodySize::Counted,
                ));
            }
            ctx.rules.fields().set_body(inspected);
        }
        match (phase.run)(ctx, env) {
            Decision::Continue => {}
            Decision::Respond(r) => return Outcome::Respond(r),
            Decision::Reject(r) => return Outcome::Reject(r),
        }
    }
    Outcome::Forward
}
