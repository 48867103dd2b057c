//! The upstream seam: [`Upstream::fetch`] takes an [`OriginRequest`] and gives back an
//! [`OriginResponse`] (a typed head and a streamed body) or the catalogue error the client
//! gets. HTTP/1.1 and HTTP/2 origins are both spoken natively.
//!
//! Everything between the request phases and the origin plugs in before this call (a cache
//! answers instead of it; a body inspector reads the body it streams). The client side is
//! reached only through [`ClientSide`]: the request body, interim responses, and noticing a
//! client that leaves.
//!
//! The retry rules of the error catalogue live here, once: a timed-out connect is retried
//! (522 after the last attempt), and a request on a pooled connection that turns out dead is
//! sent again on a new one when it is idempotent and no byte of its body was taken (RFC 9112
//! §9.3.1).

mod balance;
mod connect;
mod errors;
mod forward;
mod h1;
mod h2;
mod health;
mod pool;

use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::time::{Duration, Instant};

use bytes::Bytes;
use rampart_http::{BodyFraming, RequestHead};
use tokio::time::Sleep;

use crate::config::request::Underscores;
use crate::config::{OriginAddr, OriginProtocol, Zone};
use crate::errors::Rejection;
use crate::message::{BodyCut, BodyKind, BodyStream, Piece, Protocol, RayId, ResponseHead};
use crate::observe::Metrics;
use crate::stream::OriginStream;
use crate::tls::OriginTls;

pub use balance::{OriginStatus, Upstream};
pub use errors::OriginError;
pub use forward::FieldEdits;

/// The request the origin gets, as rampart understood it (rebuilt from the validated head).
pub struct OriginRequest<'a> {
    /// The client's validated head.
    pub head: &'a RequestHead,
    /// The client's IP (X-Forwarded-For, Forwarded).
    pub client_ip: IpAddr,
    /// Whether the client's connection is TLS (X-Forwarded-Proto).
    pub tls: bool,
    /// The client's protocol (Via).
    pub protocol: Protocol,
    /// The request's ray id.
    pub ray_id: RayId,
    /// The path and query to send instead of the client's (the normalised URL, when the
    /// zone normalises URLs to the origin too).
    pub target: Option<&'a str>,
    /// What happens to client fields whose names have `_`.
    pub underscores: Underscores,
    /// The field a trusted proxy names the client in (never passed on under another
    /// spelling).
    pub client_ip_header: Option<&'a str>,
    /// Fields the edge adds after the client's: the validators of a stale copy that the
    /// cache revalidates (never when the client sent preconditions of its own).
    pub added: &'a [(&'static [u8], Bytes)],
    /// What the zone's request header rules change.
    pub edits: &'a FieldEdits,
}

impl OriginRequest<'_> {
    fn has_body(&self) -> bool {
        self.head.body() != BodyFraming::None
    }

    /// The request-target the origin is sent, in origin-form.
    fn path_and_query(&self) -> std::borrow::Cow<'_, str> {
        match self.target {
            Some(t) => std::borrow::Cow::Borrowed(t),
            None => self.head.path_and_query(),
        }
    }
}

/// The client's side of an exchange, as the upstream sees it.
pub trait ClientSide {
    /// Why the client's side ended the exchange (its body broke a limit, or it left).
    type Abort;

    /// The next piece of the request body; `Ok(None)` at its end.
    fn body_chunk(&mut self) -> impl Future<Output = Result<Option<Bytes>, Self::Abort>>;

    /// Request body bytes taken so far: a request whose body was partly sent is never retried.
    fn body_taken(&self) -> u64;

    /// Relays an interim (1xx) response.
    fn interim(&mut self, head: ResponseHead) -> impl Future<Output = Result<(), Self::Abort>>;

    /// Resolves when the client has gone (with the abort that says so); never while it is
    /// there. Cancel-safe.
    fn gone(&mut self) -> impl Future<Output = Self::Abort>;
}

/// Why a fetch gave no response.
#[derive(Debug)]
pub enum FetchError<A> {
    /// The origin failed: the catalogue error the client gets (detail for the log).
    Origin(Rejection),
    /// The client's side ended the exchange.
    Client(A),
}

/// An origin's answer: its head (as it will be relayed), and its body to stream.
pub struct OriginResponse<'u> {
    /// Status and relayed fields; `content_length` set from the origin's framing.
    pub head: ResponseHead,
    /// How the body is framed.
    pub kind: BodyKind,
    /// The body.
    pub body: OriginBody<'u>,
    /// The address connected to.
    pub origin_ip: IpAddr,
    /// When the request was sent (after connecting).
    pub sent_at: Instant,
    /// Counts the exchange as in flight at its origin until the response is dropped (origins
    /// of pools only).
    in_flight: Option<balance::InFlight<'u>>,
}

/// An origin response body.
pub enum OriginBody<'u> {
    /// From an HTTP/1.1 origin connection (returned to its pool when read cleanly).
    Http1(h1::Body<'u>),
    /// From a stream of an HTTP/2 origin connection.
    Http2(h2::Body),
}

impl OriginBody<'_> {
    /// For a 101 to an upgrade: the origin's connection and the bytes it sent after the head.
    pub fn into_upgraded(self) -> Option<(OriginStream, Vec<u8>)> {
        match self {
            OriginBody::Http1(b) => Some(b.into_upgraded()),
            OriginBody::Http2(_) => None,
        }
    }
}

impl BodyStream for OriginBody<'_> {
    async fn next_piece(&mut self) -> Result<Piece<'_>, BodyCut> {
        match self {
            OriginBody::Http1(b) => b.next_piece().await,
            OriginBody::Http2(b) => b.next_piece().await,
        }
    }
}

/// How long to wait for one zone's origin, and how large its heads may be.
#[derive(Clone, Debug)]
pub struct Policy {
    /// Each TCP connect attempt (and the TLS handshake).
    pub connect: Duration,
    /// Extra connect attempts after a timed-out one, before 522.
    pub connect_retries: u32,
    /// Request sent → response head, and between reads or writes of a body: 524.
    pub response: Duration,
    /// Limits on the origin's response heads (502 beyond them).
    pub head_limits: rampart_http::Limits,
}

impl Policy {
    /// The policy `zone` and `[limits]` configure.
    pub fn of(zone: &Zone, limits: &crate::config::LimitsConfig) -> Policy {
        Policy {
            connect: zone.origin_connect_timeout,
            connect_retries: zone.origin_connect_retries,
            response: zone.origin_response_timeout,
            head_limits: limits.http_limits(),
        }
    }
}

/// One origin: where it is, how it is spoken to, its kept-alive connections and its health.
///
/// Origins outlive a reload that leaves their settings as they were ([`Origin::serves`]):
/// their pools and their health carry over.
pub struct Origin {
    addr: OriginAddr,
    protocol: OriginProtocol,
    tls: Option<OriginTls>,
    idle: pool::IdleLists,
    shared_h2: h2::SharedConnection,
    /// What active checks and passive observation say.
    health: health::Health,
}

/// How `zone` verifies the origin at `addr`: its `origin_tls` for an `https://` origin, none
/// for an `http://` one (a pool may mix them).
fn origin_tls<'z>(addr: &OriginAddr, zone: &'z Zone) -> Option<&'z OriginTls> {
    zone.origin_tls.as_ref().filter(|_| addr.tls)
}

impl Origin {
    /// The origin at `addr`, spoken to as `zone` says, with no connection yet.
    fn new(addr: &OriginAddr, zone: &Zone) -> Origin {
        Origin {
            addr: addr.clone(),
            protocol: zone.origin_protocol,
            tls: origin_tls(addr, zone).cloned(),
            idle: pool::IdleLists::new(),
            shared_h2: h2::SharedConnection::default(),
            health: health::Health::new(addr),
        }
    }

    /// Whether this origin is `addr` spoken to as `zone` says (same protocol and TLS
    /// settings), so its connections can serve the zone after a reload.
    fn serves(&self, addr: &OriginAddr, zone: &Zone) -> bool {
        self.addr == *addr
            && self.protocol == zone.origin_protocol
            && self.tls.as_ref() == origin_tls(addr, zone)
    }

    /// Sends `req` to the origin and waits for its response head, relaying interim responses
    /// and noticing a client that leaves. Connect timeouts are retried (then 522); a dead
    /// pooled connection is replaced once for an idempotent request whose body was not taken.
    pub(super) async fn fetch<C: ClientSide>(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        zone: &str,
        req: &OriginRequest<'_>,
        client: &mut C,
    ) -> Result<OriginResponse<'_>, FetchError<C::Abort>> {
        let origin_failed = |e: OriginError| FetchError::Origin(e.rejection(&self.addr));
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result = match self.protocol {
                OriginProtocol::Http1 => {
                    let conn = self
                        .checkout(policy, metrics, zone)
                        .await
                        .map_err(origin_failed)?;
                    h1::exchange(self, conn, policy, req, client).await
                }
                OriginProtocol::H2 => {
                    // Boxed: HTTP/2's exchange (with the connection's set-up) is a large
                    // future that every HTTP/1.1 exchange would otherwise carry.
                    Box::pin(h2::exchange(self, policy, metrics, zone, req, client)).await
                }
            };
            match result {
                Ok(response) => return Ok(response),
                Err(Failure::DeadPooled)
                    if attempt == 1 && req.head.is_idempotent() && client.body_taken() == 0 =>
                {
                    continue;
                }
                Err(Failure::DeadPooled) => {
                    return Err(origin_failed(OriginError::ClosedBeforeResponse));
                }
                Err(Failure::Origin(e)) => return Err(origin_failed(e)),
                Err(Failure::Client(a)) => return Err(FetchError::Client(a)),
            }
        }
    }

    /// A pooled HTTP/1.1 connection if one is alive, else a new one.
    async fn checkout(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        zone: &str,
    ) -> Result<OriginConn, OriginError> {
        if let Some(conn) = self.idle.take() {
            return Ok(conn);
        }
        // Boxed: connecting (resolution, retries, TLS) is a large future that a request
        // served from the pool should not carry.
        Box::pin(connect::connect(
            &self.addr,
            self.tls.as_ref(),
            policy,
            metrics,
            zone,
        ))
        .await
    }
}

/// Why one attempt at an exchange failed.
enum Failure<A> {
    /// A pooled connection failed before any byte of a response: worth one retry.
    DeadPooled,
    /// The origin failed.
    Origin(OriginError),
    /// The client's side ended it.
    Client(A),
}

/// A connection to an origin, fresh or from the pool.
pub struct OriginConn {
    /// The connection (TLS for an `https://` origin).
    stream: OriginStream,
    /// The origin's address.
    addr: SocketAddr,
    /// Whether it came from the pool (and so may turn out dead on first use).
    reused: bool,
    /// The connection's one timer, reset for each wait: a new timer per wait is registered
    /// with the runtime's timer wheel and removed from it again, while moving a deadline
    /// later costs no more than a store. Kept with the connection in the pool.
    timer: Pin<Box<Sleep>>,
}

impl OriginConn {
    fn new(stream: OriginStream, addr: SocketAddr) -> OriginConn {
        OriginConn {
            stream,
            addr,
            reused: false,
            // Not registered with the runtime until first awaited.
            timer: Box::pin(tokio::time::sleep_until(tokio::time::Instant::now())),
        }
    }

    /// Sets the connection's timer to fire `after` from now.
    fn timer_in(&mut self, after: Duration) {
        let deadline = tokio::time::Instant::now() + after;
        if self.timer.deadline() != deadline || self.timer.is_elapsed() {
            self.timer.as_mut().reset(deadline);
        }
    }
}
