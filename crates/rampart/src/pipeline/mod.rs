//! The request pipeline: the phases every request passes through, whatever its protocol.
//!
//! ```text
//! route ─▶ limits ─▶ method ─▶ redirects ─▶ IP access rules ─▶ challenge endpoint
//!   ─▶ custom rules ─▶ browser integrity check ─▶ security level ─▶ rate limiting
//!   ─▶ request header rules
//!   ─▶ (session: cache or upstream fetch) ─▶ response phases: custom error pages
//!   ─▶ every answer: HSTS and response header rules ─▶ deferred rate-limit counts
//! ```
//!
//! Every phase has one signature, `fn(&mut RequestContext, &PhaseEnv) -> Decision`: it looks
//! at the request, records what it found in the context, and decides to go on, to answer with
//! a response of its own, or to reject with an error of the catalogue. Phases do no I/O and
//! read no clock: [`PhaseEnv`] brings the time and a random source, so a phase runs the same
//! in a unit test as in the server. A phase that needs the request body says so in
//! [`Phase::body`]; the session then reads it (up to the phase's inspection limit) before
//! running the phase, and still streams it whole to the origin.

pub mod challenge;
pub mod client_ip;
pub mod custom_rules;
pub mod fields;
pub mod ip_access;
pub mod limits;
pub mod protection;
pub mod rate_limit;
pub mod response;
pub mod route;
pub mod traffic;

#[cfg(test)]
mod testing;

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Instant, SystemTime};

use bytes::Bytes;
use rampart_http::RequestHead;
use rampart_rules::ExecutionContext;

use crate::config::request::BodyReaders;
use crate::errors::Rejection;
use crate::geo::GeoInfo;
use crate::message::{Protocol, RayId, Response};
use crate::observe::{LogRecord, SecurityMatch};
use crate::state::{Generation, ZoneState};

/// What a phase sees of the world beyond the request: the time, and random numbers. Built
/// once per request by the session; tests build a fixed one.
pub struct PhaseEnv {
    /// Now, on the monotonic clock.
    pub now: Instant,
    /// Now, on the wall clock.
    pub wall: SystemTime,
    /// wyrand's state: a number a step is added to for each draw.
    rng: AtomicU64,
}

impl PhaseEnv {
    /// The environment of a request starting now, with a fresh random source.
    pub fn current() -> PhaseEnv {
        PhaseEnv {
            now: Instant::now(),
            wall: SystemTime::now(),
            rng: AtomicU64::new(fastrand::u64(..)),
        }
    }

    /// A fixed environment: the same every time it is built with the same values.
    pub fn fixed(now: Instant, wall: SystemTime, seed: u64) -> PhaseEnv {
        PhaseEnv {
            now,
            wall,
            rng: AtomicU64::new(seed),
        }
    }

    /// A random number (wyrand: a 64-bit step and a multiply-fold; not for secrets).
    pub fn random_u64(&self) -> u64 {
        let s = self
            .rng
            .fetch_add(0xa076_1d64_78bd_642f, Ordering::Relaxed)
            .wrapping_add(0xa076_1d64_78bd_642f);
        let t = u128::from(s) * u128::from(s ^ 0xe703_7ed1_a0b4_28db);
        (t as u64) ^ ((t >> 64) as u64)
    }

    /// Seconds since 1970 on the wall clock (the rules' `http.request.timestamp.sec`).
    pub fn unix_secs(&self) -> i64 {
        self.wall
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
    }
}

/// What a phase decided.
#[derive(Debug)]
pub enum Decision {
    /// Go on to the next phase.
    Continue,
    /// Answer with this response (a page of the phase's own); the request goes no further.
    Respond(Box<Response>),
    /// Answer with a generated error; the request goes no further.
    Reject(Rejection),
}

/// The request phases, in order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PhaseId {
    /// The Host picks the zone.
    Route,
    /// ACME HTTP-01 tokens rampart asked a CA to check.
    AcmeChallenge,
    /// Declared body size.
    Limits,
    /// Methods an edge does not serve.
    Method,
    /// `always_use_https` and redirect rules.
    Redirect,
    /// IP access rules.
    IpAccess,
    /// The endpoint solved challenges are sent to.
    ChallengeEndpoint,
    /// The zone's custom rules.
    CustomRules,
    /// The Browser Integrity Check.
    BrowserIntegrity,
    /// The security level's challenge.
    SecurityLevel,
    /// The zone's rate limiting rules.
    RateLimit,
    /// Request header rules (what the origin gets).
    RequestHeaders,
}

/// A set of phases (the ones a `skip` rule skips).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct PhaseSet(u32);

impl PhaseSet {
    /// Adds `phase`.
    pub fn insert(&mut self, phase: PhaseId) {
        self.0 |= 1 << phase as u32;
    }

    /// Whether `phase` is in the set.
    pub fn contains(self, phase: PhaseId) -> bool {
        self.0 & (1 << phase as u32) != 0
    }
}

/// How much of the request body a phase needs before it runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BodyNeed {
    /// None: the phase looks at the head only.
    None,
    /// Up to `max` bytes; a longer body is inspected by its first `max` bytes
    /// ([`crate::pipeline::fields`] marks it truncated) or refused with 413, as `over` says.
    Inspect {
        /// Most bytes buffered for the phase.
        max: usize,
        /// What a longer body gets.
        over: OverLimit,
    },
}

/// What a body longer than a phase's inspection limit gets.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OverLimit {
    /// The phase sees the first bytes only, marked truncated.
    InspectPrefix,
    /// 413: the phase cannot judge a body it cannot read whole.
    Reject,
}

/// One request phase.
pub struct Phase {
    /// Which phase.
    pub id: PhaseId,
    /// The phase itself.
    pub run: fn(&mut RequestContext<'_>, &PhaseEnv) -> Decision,
    /// How much body it needs for this request.
    pub body: fn(&RequestContext<'_>) -> BodyNeed,
}

fn head_only(_: &RequestContext<'_>) -> BodyNeed {
    BodyNeed::None
}

/// The zone's inspection limit, when `reads` says the phase's rules read the body.
fn rules_body(ctx: &RequestContext<'_>, reads: fn(&BodyReaders) -> bool) -> BodyNeed {
    match &ctx.zone {
        Some(z) if reads(&z.config.security.body_readers) => BodyNeed::Inspect {
            max: z.config.request.max_body_inspection,
            over: OverLimit::InspectPrefix,
        },
        _ => BodyNeed::None,
    }
}

fn custom_rules_body(ctx: &RequestContext<'_>) -> BodyNeed {
    rules_body(ctx, |r| r.custom_rules)
}

fn rate_limit_body(ctx: &RequestContext<'_>) -> BodyNeed {
    rules_body(ctx, |r| r.rate_limits)
}

/// The request phases, in the order they run.
pub const REQUEST_PHASES: [Phase; 12] = [
    Phase {
        id: PhaseId::Route,
        run: route::route,
        body: head_only,
    },
    Phase {
        id: PhaseId::AcmeChallenge,
        run: traffic::acme_challenge,
        body: head_only,
    },
    Phase {
        id: PhaseId::Limits,
        run: limits::limits,
        body: head_only,
    },
    Phase {
        id: PhaseId::Method,
        run: limits::method,
        body: head_only,
    },
    Phase {
        id: PhaseId::Redirect,
        run: traffic::redirect,
        body: head_only,
    },
    Phase {
        id: PhaseId::IpAccess,
        run: ip_access::ip_access,
        body: head_only,
    },
    Phase {
        id: PhaseId::ChallengeEndpoint,
        run: challenge::endpoint,
        body: challenge::endpoint_body,
    },
    Phase {
        id: PhaseId::CustomRules,
        run: custom_rules::custom_rules,
        body: custom_rules_body,
    },
    Phase {
        id: PhaseId::BrowserIntegrity,
        run: protection::browser_integrity,
        body: head_only,
    },
    Phase {
        id: PhaseId::SecurityLevel,
        run: protection::security_level,
        body: head_only,
    },
    Phase {
        id: PhaseId::RateLimit,
        run: rate_limit::rate_limit,
        body: rate_limit_body,
    },
    Phase {
        id: PhaseId::RequestHeaders,
        run: traffic::request_headers,
        body: head_only,
    },
];

/// The first bytes of a request body, read for the phases that inspect it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct InspectedBody {
    /// The bytes (at most the largest inspection limit asked for).
    pub bytes: Bytes,
    /// The body is longer than `bytes`.
    pub truncated: bool,
}

/// The rules engine's view of the request, built on first use and shared by every phase that
/// evaluates rules, so each field is computed once per request.
pub struct Rules<'a> {
    fields: &'a fields::RequestFields<'a>,
    exec: OnceLock<ExecutionContext<'a>>,
}

impl<'a> Rules<'a> {
    /// The execution context over the request's fields.
    pub fn exec(&self) -> &ExecutionContext<'a> {
        self.exec
            .get_or_init(|| ExecutionContext::new(crate::config::security::scheme(), self.fields))
    }

    /// The request's fields.
    pub fn fields(&self) -> &'a fields::RequestFields<'a> {
        self.fields
    }

    /// The first rule of `set` that matches the request. An empty set (most zones have no
    /// rules of a kind) answers without building the execution context.
    pub fn first_match<'s, A>(
        &self,
        set: &'s rampart_rules::RuleSet<A>,
    ) -> Option<&'s rampart_rules::Rule<A>> {
        if set.is_empty() {
            return None;
        }
        set.first_match(self.exec())
    }
}

/// Everything known about one request while it is handled, and what happened to it.
pub struct RequestContext<'a> {
    /// The configuration generation this request runs under, from start to end.
    pub generation: &'a Arc<Generation>,
    /// The validated request head.
    pub head: &'a RequestHead,
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client IP as the edge sees it.
    pub client_ip: IpAddr,
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
    /// Phases a `skip` rule skipped.
    pub skipped: PhaseSet,
    /// Rate-limit hits to count once the response status is known.
    pub deferred_hits: Vec<rate_limit::DeferredHit>,
    /// The rules' view of the request.
    pub rules: Rules<'a>,
    /// What the request header rules change in the fields the origin gets.
    pub origin_edits: crate::upstream::FieldEdits,
    /// What happened, for the access log: filled as the request is handled.
    pub log: LogRecord,
    /// Whether the request carries a valid clearance, once a challenge asked.
    pub cleared: Option<bool>,
}

/// What the driver knows of a request's connection.
#[derive(Clone, Copy, Debug)]
pub struct Connection {
    /// The TCP peer.
    pub peer: SocketAddr,
    /// The client IP as the edge sees it (the peer, or what a trusted proxy says).
    pub client_ip: IpAddr,
    /// Protocol.
    pub protocol: Protocol,
    /// Whether the connection is TLS.
    pub tls: bool,
}

impl<'a> RequestContext<'a> {
    /// The context of a request whose head was just read: no zone yet, a new ray id, the
    /// clocks as `env` has them.
    pub fn new(
        generation: &'a Arc<Generation>,
        head: &'a RequestHead,
        conn: Connection,
        geo: &'a GeoInfo,
        fields: &'a fields::RequestFields<'a>,
        env: &PhaseEnv,
    ) -> Self {
        RequestContext {
            generation,
            head,
            peer: conn.peer,
            client_ip: conn.client_ip,
            protocol: conn.protocol,
            tls: conn.tls,
            ray_id: RayId::from_u64(env.random_u64()),
            started_at: env.wall,
            started: env.now,
            zone: None,
            geo,
            security: None,
            logged: Vec::new(),
            skipped: PhaseSet::default(),
            deferred_hits: Vec::new(),
            rules: Rules {
                fields,
                exec: OnceLock::new(),
            },
            origin_edits: crate::upstream::FieldEdits::default(),
            log: LogRecord::default(),
            cleared: None,
        }
    }

    /// The zone's name, once routed.
    pub fn zone_name(&self) -> Option<&str> {
        self.zone.as_ref().map(|z| z.config.name.as_str())
    }

    /// Whom a generated answer to this request is for.
    pub fn audience(&self) -> crate::errors::Audience<'_> {
        crate::errors::Audience {
            ray_id: self.ray_id,
            client_ip: self.client_ip,
            zone: self.zone_name(),
            accept: self.head.header("accept"),
            docs_url: &self.generation.config.server.error_docs_url,
            pages: self
                .zone
                .as_ref()
                .map(|z| &z.config.security.error_pages)
                .filter(|p| !p.is_empty()),
        }
    }
}
