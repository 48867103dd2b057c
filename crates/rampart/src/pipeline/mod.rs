//! The request pipeline: the phases every request passes through, whatever its protocol.
//!
//! ```text
//! read + validate head (rampart-http, in the protocol driver)
//!   ─▶ route ─▶ limits ─▶ method ─▶ IP access rules ─▶ custom rules ─▶ rate limiting
//!   ─▶ 100-continue ─▶ origin ─▶ response (custom error pages, deferred rate-limit counts)
//!   ─▶ log + metrics
//! ```
//!
//! Each phase is a function that looks at the [`RequestContext`] and returns a [`Decision`].
//! Protocol drivers only turn bytes into a request and a response back into bytes; every
//! decision about a request is made here, once.

pub mod client_ip;
pub mod custom_rules;
pub mod fields;
pub mod ip_access;
pub mod rate_limit;
pub mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rampart_http::{BodyFraming, RequestHead};

use rampart_rules::ExecutionContext;

use crate::config::security::CustomResponse;
use crate::errors::EdgeError;
use crate::geo::GeoInfo;
use crate::state::{Generation, ZoneState};

/// Which protocol a request arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
    /// HTTP/2 (over TLS with ALPN `h2`, or cleartext with prior knowledge).
    Http2,
}

impl Protocol {
    /// As logged in ClientRequestProtocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
            Protocol::Http2 => "HTTP/2",
        }
    }
}

/// A ray id: a unique, random id per request, sent in the [`RAY_ID_HEADER`] and logged as RayID.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RayId([u8; 16]);

/// The response header that carries the ray id, on every response (generated or proxied), and
/// on the request sent to the origin.
pub const RAY_ID_HEADER: &str = "rampart-ray";

impl RayId {
    /// A fresh random ray id.
    pub fn generate() -> RayId {
        let mut n = fastrand::u64(..);
        let mut out = [0u8; 16];
        for b in out.iter_mut().rev() {
            *b = b"0123456789abcdef"[(n & 0xf) as usize];
            n >>= 4;
        }
        RayId(out)
    }

    /// The 16 lowercase hex digits.
    pub fn as_str(&self) -> &str {
        // Always ASCII hex digits.
        std::str::from_utf8(&self.0).unwrap_or("0000000000000000")
    }

    /// The 16 lowercase hex digits as bytes, for writing into a head.
    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }
}

/// Everything known about one request while it is handled.
pub struct RequestContext<'a> {
    /// The configuration generation this request runs under, from start to end.
    pub generation: &'a Arc<Generation>,
    /// The validated request head.
    pub head: &'a RequestHead,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client IP as the edge sees it.
    pub client_ip: std::net::IpAddr,
    /// Protocol.
    pub protocol: Protocol,
    /// Whether the client connection is TLS (the rules' `ssl`, X-Forwarded-Proto).
    pub tls: bool,
    /// The ray id.
    pub ray_id: RayId,
    /// When the request head was complete (wall clock, for the log).
    pub started_at: SystemTime,
    /// When the request head was complete (monotonic).
    pub started: Instant,
    /// The zone, once routing chose one.
    pub zone: Option<Arc<ZoneState>>,
    /// Country, continent and ASN of the client (empty without `[geoip]` databases).
    pub geo: &'a GeoInfo,
    /// The security match that ended the request (logged as SecurityAction etc.).
    pub security: Option<SecurityMatch>,
    /// Matches of `log` (and `skip`) rules, which let the request go on.
    pub logged: Vec<SecurityMatch>,
    /// A `skip` custom rule asked to skip the rate limiting phase.
    pub skip_rate_limit: bool,
    /// Rate-limit hits to count once the response status is known.
    pub deferred_hits: Vec<rate_limit::DeferredHit>,
}

impl<'a> RequestContext<'a> {
    /// The context of a request whose head was just read: no zone yet, a new ray id, the
    /// clocks started now.
    pub fn new(
        generation: &'a Arc<Generation>,
        head: &'a RequestHead,
        peer: SocketAddr,
        client_ip: std::net::IpAddr,
        protocol: Protocol,
        tls: bool,
        geo: &'a GeoInfo,
    ) -> Self {
        RequestContext {
            generation,
            head,
            peer,
            client_ip,
            protocol,
            tls,
            ray_id: RayId::generate(),
            started_at: SystemTime::now(),
            started: Instant::now(),
            zone: None,
            geo,
            security: None,
            logged: Vec::new(),
            skip_rate_limit: false,
            deferred_hits: Vec::new(),
        }
    }
}

/// A security rule that matched, for the access log and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityMatch {
    /// SecurityAction: `block`, `log` or `skip`.
    pub action: &'static str,
    /// SecurityRuleID.
    pub rule_id: String,
    /// SecurityRuleDescription.
    pub description: String,
    /// SecuritySources: `ip`, `ipRange`, `asn`, `country`, `firewallCustom` or `rateLimit`.
    pub source: &'static str,
}

/// What a phase decided.
#[derive(Debug)]
pub enum Decision {
    /// Go on to the next phase.
    Continue,
    /// Answer with a generated error; the request goes no further.
    Reject(Rejection),
}

/// A generated error answer, with the reason specific to this request.
#[derive(Debug, Clone)]
pub struct Rejection {
    /// Which error from the catalogue.
    pub error: EdgeError,
    /// The specific reason, shown to the client and logged as ErrorReason.
    pub detail: String,
    /// Seconds until a retry makes sense, overriding the catalogue's value (rate limiting).
    pub retry_after: Option<u32>,
    /// The rule's own response, sent as configured instead of the catalogue's page.
    pub response: Option<CustomResponse>,
    /// Extra response header fields (e.g. RateLimit-Policy and RateLimit).
    pub headers: Vec<(&'static str, String)>,
}

impl Rejection {
    /// A rejection with the catalogue's retry advice.
    pub fn new(error: EdgeError, detail: impl Into<String>) -> Rejection {
        Rejection {
            error,
            detail: detail.into(),
            retry_after: error.entry().retry_after,
            response: None,
            headers: Vec::new(),
        }
    }
}

/// Runs every request phase in order, stopping at the first that does not continue.
pub fn request_phases(ctx: &mut RequestContext<'_>) -> Decision {
    for phase in [route::route, limits, method] {
        match phase(ctx) {
            Decision::Continue => {}
            other => return other,
        }
    }
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    let security = &zone.config.security;
    if let Decision::Reject(r) = ip_access::ip_access(ctx, &security.ip_access) {
        return Decision::Reject(r);
    }
    if security.custom_rules.is_none() && security.rate_limits.is_empty() {
        return Decision::Continue;
    }
    // One execution context for both rule phases, so each field is computed once.
    let (head, client_ip, geo) = (ctx.head, ctx.client_ip, ctx.geo);
    let fields = fields::RequestFields::new(
        head,
        client_ip,
        geo,
        ctx.protocol.as_str(),
        unix_secs(ctx.started_at),
        ctx.tls,
    );
    let exec = ExecutionContext::new(crate::config::security::scheme(), &fields);
    if let Some(rules) = &security.custom_rules
        && let Decision::Reject(r) = custom_rules::custom_rules(ctx, rules, &exec)
    {
        return Decision::Reject(r);
    }
    if !ctx.skip_rate_limit && !security.rate_limits.is_empty() {
        return rate_limit::rate_limit(ctx, &security.rate_limits, &exec);
    }
    Decision::Continue
}

/// Response phase: what happens once the response status is known. Counts rate-limit hits
/// whose counting expression matches the response.
pub fn response_phase(ctx: &RequestContext<'_>, status: u16) {
    if ctx.deferred_hits.is_empty() {
        return;
    }
    let mut fields = fields::RequestFields::new(
        ctx.head,
        ctx.client_ip,
        ctx.geo,
        ctx.protocol.as_str(),
        unix_secs(ctx.started_at),
        ctx.tls,
    );
    fields.response_code = Some(status);
    let exec = ExecutionContext::new(crate::config::security::scheme(), &fields);
    rate_limit::count_after_response(ctx, &exec);
}

fn unix_secs(t: SystemTime) -> i64 {
    t.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
}

/// Limits phase: a declared body over the limit is refused before it is read (and before any
/// `100 Continue`).
fn limits(ctx: &mut RequestContext<'_>) -> Decision {
    let max = ctx.generation.config.limits.max_body_bytes;
    if let BodyFraming::ContentLength(n) = ctx.head.body()
        && n > max
    {
        return Decision::Reject(Rejection::new(
            EdgeError::PayloadTooLarge,
            format!(
                "the declared Content-Length of {n} bytes exceeds this site's limit of {max} bytes"
            ),
        ));
    }
    Decision::Continue
}

/// Method phase: rampart is a reverse proxy and does not open CONNECT tunnels.
fn method(ctx: &mut RequestContext<'_>) -> Decision {
    if ctx.head.method() == "CONNECT" {
        return Decision::Reject(Rejection::new(
            EdgeError::NotImplemented,
            "this edge is a reverse proxy and does not open CONNECT tunnels",
        ));
    }
    Decision::Continue
}
