//! The request pipeline: the phases every request passes through, whatever its protocol.
//!
//! ```text
//! read + validate head (rampart-http, in the protocol driver)
//!   ─▶ route ─▶ limits ─▶ [IP access rules, custom rules, rate limiting: issue 4]
//!   ─▶ 100-continue ─▶ origin ─▶ response ─▶ log + metrics
//! ```
//!
//! Each phase is a function that looks at the [`RequestContext`] and returns a [`Decision`].
//! Protocol drivers only turn bytes into a request and a response back into bytes; every
//! decision about a request is made here, once.

pub mod route;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Instant, SystemTime};

use rampart_http::{BodyFraming, RequestHead};

use crate::errors::EdgeError;
use crate::state::{Generation, ZoneState};

/// Which protocol a request arrived over.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Protocol {
    /// HTTP/1.0.
    Http10,
    /// HTTP/1.1.
    Http11,
}

impl Protocol {
    /// As logged in ClientRequestProtocol.
    pub fn as_str(self) -> &'static str {
        match self {
            Protocol::Http10 => "HTTP/1.0",
            Protocol::Http11 => "HTTP/1.1",
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
    /// The ray id.
    pub ray_id: RayId,
    /// When the request head was complete (wall clock, for the log).
    pub started_at: SystemTime,
    /// When the request head was complete (monotonic).
    pub started: Instant,
    /// The zone, once routing chose one.
    pub zone: Option<Arc<ZoneState>>,
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
}

impl Rejection {
    /// A rejection with the catalogue's retry advice.
    pub fn new(error: EdgeError, detail: impl Into<String>) -> Rejection {
        Rejection { error, detail: detail.into(), retry_after: error.entry().retry_after }
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
    Decision::Continue
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
            format!("the declared Content-Length of {n} bytes exceeds this site's limit of {max} bytes"),
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
