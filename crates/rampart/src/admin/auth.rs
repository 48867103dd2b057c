//! Who is calling the management API, and how often.
//!
//! Every request under `/client/v4/` passes [`guard`] first:
//! - more than 200 requests a second from one IP: 429, `Retry-After`;
//! - with `[[api_token]]`s configured, a request needs `Authorization: Bearer <token>`:
//!   missing, 401 with `WWW-Authenticate: Bearer`; a token whose SHA-256 matches none, 401
//!   (code 10000, `error="invalid_token"`);
//! - more than 1,200 requests in 5 minutes with one token: 429, and, as Cloudflare does, every
//!   call of that token is refused for the next 5 minutes (`Retry-After` says until when);
//! - without tokens configured, only loopback clients are served (the first-run case, with
//!   the admin listener on 127.0.0.1), others get 401.
//!
//! A handler then asks [`Caller::allow`] for the scope (and zone) its route needs: 403 without.

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use rampart_ratelimit::{
    CounterStore, Decision, KeyBuilder, MemoryStore, MemoryStoreSettings, Quota,
};

use super::api::{code, failure};
use crate::config::api::{ApiToken, Scope};
use crate::runtime::Runtime;
use crate::text::hex;

/// Requests a second one IP may make (Cloudflare's "Client API per IP").
pub const PER_IP_PER_SECOND: u32 = 200;
/// Requests one token may make in [`PER_TOKEN_PERIOD_SECS`] (Cloudflare's "per user").
pub const PER_TOKEN: u32 = 1_200;
/// The per-token window, and how long a token that went over it is refused.
pub const PER_TOKEN_PERIOD_SECS: u32 = 300;

/// The API's counters: they outlive reloads (a reload does not reset anyone's budget).
pub struct Limits {
    store: MemoryStore,
    keys: KeyBuilder,
    epoch: Instant,
    per_ip: Quota,
    per_token: Quota,
}

impl Limits {
    /// The limits above, counted in memory.
    pub fn new() -> Limits {
        Limits {
            store: MemoryStore::new(MemoryStoreSettings {
                max_keys: 65_536,
                shards: 4,
            }),
            keys: KeyBuilder::new(),
            epoch: Instant::now(),
            per_ip: Quota::per_second(PER_IP_PER_SECOND).expect("a valid rate"),
            per_token: Quota::new(PER_TOKEN_PERIOD_SECS, PER_TOKEN, PER_TOKEN_PERIOD_SECS)
                .expect("a valid quota"),
        }
    }

    fn ip(&self, ip: IpAddr, now: Duration) -> Decision {
        let key = self.keys.key(&[b"ip", ip.to_string().as_bytes()]);
        self.store.check_and_hit(key, &self.per_ip, now)
    }

    fn token(&self, token: &ApiToken, now: Duration) -> Decision {
        let key = self.keys.key(&[b"token", &token.sha256]);
        self.store.check_and_hit(key, &self.per_token, now)
    }
}

impl Default for Limits {
    fn default() -> Self {
        Limits::new()
    }
}

/// A request refused for who sent it: 401 or 403 with its message and Bearer challenge.
#[derive(Debug)]
pub struct Refusal {
    status: StatusCode,
    message: String,
    /// RFC 6750's `error` in `WWW-Authenticate`, if any.
    error: Option<&'static str>,
    /// Whether the answer carries `WWW-Authenticate` at all.
    challenge: bool,
}

impl Refusal {
    fn unauthorized(message: String, error: Option<&'static str>) -> Refusal {
        Refusal {
            status: StatusCode::UNAUTHORIZED,
            message,
            error,
            challenge: true,
        }
    }

    /// The status it answers with.
    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        let mut r = failure(self.status, code::AUTH, self.message);
        if self.challenge {
            let value = match self.error {
                Some(e) => format!("Bearer realm=\"rampart\", error=\"{e}\""),
                None => "Bearer realm=\"rampart\"".to_string(),
            };
            if let Ok(v) = HeaderValue::from_str(&value) {
                r.headers_mut().insert(header::WWW_AUTHENTICATE, v);
            }
        }
        r
    }
}

/// Who a request comes from, once [`guard`] let it through.
#[derive(Clone, Debug)]
pub enum Caller {
    /// A configured token.
    Token(Arc<ApiToken>),
    /// A loopback client of a configuration without tokens: may do anything.
    Local,
}

impl Caller {
    /// The caller's name for the logs: the token's, or `loopback`.
    pub fn name(&self) -> &str {
        match self {
            Caller::Token(t) => &t.name,
            Caller::Local => "loopback",
        }
    }

    /// Whether the caller may act on `zone` at all (what lists show it).
    pub fn covers(&self, zone: &str) -> bool {
        match self {
            Caller::Token(t) => t.covers(zone),
            Caller::Local => true,
        }
    }

    /// `Ok` when the caller may use `scope` (on `zone`, for a zone's resources); else the 403.
    pub fn allow(&self, scope: Scope, zone: Option<&str>) -> Result<(), Refusal> {
        let Caller::Token(token) = self else {
            return Ok(());
        };
        if !token.has(scope) {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "Authentication error: the token `{}` lacks the scope {}",
                    token.name,
                    scope.name()
                ),
                error: Some("insufficient_scope"),
                challenge: true,
            });
        }
        if let Some(zone) = zone
            && !token.covers(zone)
        {
            return Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "Authentication error: the token `{}` may not act on the zone `{zone}`",
                    token.name
                ),
                error: None,
                challenge: false,
            });
        }
        Ok(())
    }

    /// `Ok` when the caller may use `scope` on what belongs to every zone (the named lists):
    /// a token for some zones may not; else the 403.
    pub fn allow_every_zone(&self, scope: Scope) -> Result<(), Refusal> {
        self.allow(scope, None)?;
        match self {
            Caller::Token(t) if !t.covers_every_zone() => Err(Refusal {
                status: StatusCode::FORBIDDEN,
                message: format!(
                    "Authentication error: this belongs to every zone, and the token `{}` is for some",
                    t.name
                ),
                error: None,
                challenge: false,
            }),
            _ => Ok(()),
        }
    }
}

/// The state [`guard`] runs with.
#[derive(Clone)]
pub struct GuardState {
    /// The running proxy (its configuration holds the tokens).
    pub rt: Arc<Runtime>,
    /// The counters.
    pub limits: Arc<Limits>,
}

/// Counts, authenticates and lets through (with the [`Caller`] in the request's extensions),
/// or answers 401 / 429.
pub async fn guard(
    State(state): State<GuardState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    mut request: Request,
    next: Next,
) -> Response {
    let now = state.limits.epoch.elapsed();
    let decision = state.limits.ip(peer.ip(), now);
    if let Decision::Limit {
        retry_after_secs, ..
    } = decision
    {
        tracing::warn!(client = %peer.ip(), "management API: over {PER_IP_PER_SECOND} requests a second");
        return too_many(
            retry_after_secs,
            format!(
                "More than {PER_IP_PER_SECOND} requests a second from {}: slow down",
                peer.ip()
            ),
            (&state.limits.per_ip, decision),
        );
    }
    let generation = state.rt.generation();
    let caller = match authenticate(&generation.config.api_tokens, request.headers(), peer.ip()) {
        Ok(c) => c,
        Err(refusal) => return refusal.into_response(),
    };
    if let Caller::Token(token) = &caller {
        let decision = state.limits.token(token, now);
        if let Decision::Limit {
            retry_after_secs, ..
        } = decision
        {
            tracing::warn!(
                token = token.name,
                "management API: token over its rate, refused for {retry_after_secs} s"
            );
            return too_many(
                retry_after_secs,
                format!(
                    "More than {PER_TOKEN} requests in {} minutes with the token `{}`: its calls \
                     are refused until the block ends",
                    PER_TOKEN_PERIOD_SECS / 60,
                    token.name
                ),
                (&state.limits.per_token, decision),
            );
        }
    }
    request.extensions_mut().insert(caller);
    next.run(request).await
}

/// The caller a request's `Authorization` names, or the 401.
fn authenticate(tokens: &[ApiToken], headers: &HeaderMap, ip: IpAddr) -> Result<Caller, Refusal> {
    if tokens.is_empty() {
        if ip.is_loopback() {
            return Ok(Caller::Local);
        }
        return Err(Refusal::unauthorized(
            "Authentication error: no API tokens are configured, so the API answers loopback \
             clients only; add an [[api_token]] (`rampart token create`)"
                .into(),
            None,
        ));
    }
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(Refusal::unauthorized(
            "Authentication error: send `Authorization: Bearer <token>`".into(),
            None,
        ));
    };
    let presented = value
        .to_str()
        .ok()
        .and_then(|v| {
            let (scheme, token) = v.split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        })
        .filter(|t| !t.is_empty());
    let Some(presented) = presented else {
        return Err(Refusal::unauthorized(
            "Authentication error: the Authorization field is not `Bearer <token>`".into(),
            Some("invalid_request"),
        ));
    };
    // Compared by their SHA-256: the configuration holds only that, and the time a lookup
    // takes says nothing about a token whose hash an attacker cannot choose.
    let digest = sha256(presented.as_bytes());
    match tokens.iter().find(|t| t.sha256 == digest) {
        Some(t) => Ok(Caller::Token(Arc::new(t.clone()))),
        None => Err(Refusal::unauthorized(
            "Authentication error: invalid API token".into(),
            Some("invalid_token"),
        )),
    }
}

/// A new token: `rampart_` and 64 hex digits of the system's randomness (256 bits).
pub fn new_token() -> Result<String, String> {
    Ok(format!("rampart_{}", random_hex(32)?))
}

/// `n` bytes of the system's randomness, in hex.
pub fn random_hex(n: usize) -> Result<String, String> {
    use ring::rand::SecureRandom as _;
    let mut bytes = vec![0u8; n];
    ring::rand::SystemRandom::new()
        .fill(&mut bytes)
        .map_err(|_| "the system's random source failed".to_string())?;
    Ok(hex(&bytes))
}

/// The SHA-256 of `bytes`.
pub fn sha256(bytes: &[u8]) -> [u8; 32] {
    let digest = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0u8; 32];
    out.copy_from_slice(digest.as_ref());
    out
}

/// 429 with the exact `Retry-After` and the quota's RateLimit fields.
fn too_many(
    retry_after_secs: u64,
    message: String,
    (quota, decision): (&Quota, Decision),
) -> Response {
    let mut r = failure(StatusCode::TOO_MANY_REQUESTS, code::RATE_LIMITED, message);
    let headers = r.headers_mut();
    headers.insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
    let fields = [
        ("ratelimit-policy", quota.policy_field("api").to_string()),
        (
            "ratelimit",
            decision.status().ratelimit_field("api").to_string(),
        ),
    ];
    for (name, value) in fields {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(name, v);
        }
    }
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(name: &str, secret: &str, scopes: Vec<Scope>, zones: Option<Vec<String>>) -> ApiToken {
        ApiToken {
            name: name.into(),
            sha256: sha256(secret.as_bytes()),
            scopes,
            zones,
        }
    }

    fn bearer(v: &str) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::AUTHORIZATION, HeaderValue::from_str(v).unwrap());
        h
    }

    fn challenge(r: Refusal) -> String {
        let r = r.into_response();
        r.headers()[header::WWW_AUTHENTICATE]
            .to_str()
            .unwrap()
            .to_string()
    }

    const LOOPBACK: IpAddr = IpAddr::V4(std::net::Ipv4Addr::LOCALHOST);
    const REMOTE: IpAddr = IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 7));

    #[test]
    fn without_tokens_only_loopback_clients_are_served() {
        assert!(matches!(
            authenticate(&[], &HeaderMap::new(), LOOPBACK),
            Ok(Caller::Local)
        ));
        let v6 = IpAddr::V6(std::net::Ipv6Addr::LOCALHOST);
        assert!(matches!(
            authenticate(&[], &HeaderMap::new(), v6),
            Ok(Caller::Local)
        ));
        let r = authenticate(&[], &bearer("Bearer x"), REMOTE).unwrap_err();
        assert_eq!(r.status(), StatusCode::UNAUTHORIZED);
    }

    #[test]
    fn with_tokens_a_bearer_token_is_needed_even_on_loopback() {
        let tokens = [token("ops", "s3cret", vec![Scope::ZoneRead], None)];
        let missing = authenticate(&tokens, &HeaderMap::new(), LOOPBACK).unwrap_err();
        assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
        assert_eq!(challenge(missing), "Bearer realm=\"rampart\"");
        let basic = authenticate(&tokens, &bearer("Basic b3BzOnMzY3JldA=="), LOOPBACK).unwrap_err();
        assert_eq!(
            challenge(basic),
            "Bearer realm=\"rampart\", error=\"invalid_request\""
        );
        for bad in ["Bearer s3cre", "Bearer S3CRET", "Bearer s3cret2", "Bearer "] {
            let r = authenticate(&tokens, &bearer(bad), REMOTE).unwrap_err();
            assert_eq!(r.status(), StatusCode::UNAUTHORIZED, "{bad}");
        }
        for good in ["Bearer s3cret", "bearer s3cret", "BEARER  s3cret "] {
            match authenticate(&tokens, &bearer(good), REMOTE) {
                Ok(Caller::Token(t)) => assert_eq!(t.name, "ops"),
                _ => panic!("{good} was refused"),
            }
        }
    }

    #[test]
    fn scopes_and_zones_decide_what_a_token_may_do() {
        let purger = Caller::Token(Arc::new(token(
            "purger",
            "p",
            vec![Scope::CachePurge],
            Some(vec!["a.test".into()]),
        )));
        assert!(purger.allow(Scope::CachePurge, Some("a.test")).is_ok());
        let other_zone = purger.allow(Scope::CachePurge, Some("b.test")).unwrap_err();
        assert_eq!(other_zone.status(), StatusCode::FORBIDDEN);
        let other_scope = purger.allow(Scope::ZoneRead, Some("a.test")).unwrap_err();
        assert_eq!(other_scope.status(), StatusCode::FORBIDDEN);
        assert!(challenge(other_scope).contains("insufficient_scope"));
        assert!(
            Caller::Local
                .allow(Scope::FirewallEdit, Some("b.test"))
                .is_ok()
        );
    }

    #[test]
    fn a_token_over_1200_in_5_minutes_is_refused_for_the_next_5_minutes() {
        let limits = Limits::new();
        let t = token("ops", "s", vec![Scope::ZoneRead], None);
        let start = Duration::from_secs(1_000);
        for i in 0..PER_TOKEN {
            assert!(limits.token(&t, start).is_allowed(), "request {i}");
        }
        let over_at = start + Duration::from_millis(100);
        let over = limits.token(&t, over_at);
        assert_eq!(over.retry_after_secs(), Some(300));
        // Blocked for the whole 5 minutes, though the budget refills at 4 a second meanwhile.
        let later = over_at + Duration::from_secs(200);
        assert_eq!(limits.token(&t, later).retry_after_secs(), Some(100));
        assert!(
            limits
                .token(&t, over_at + Duration::from_secs(300))
                .is_allowed()
        );
        // Another token has its own budget.
        let other = token("ci", "t", vec![Scope::ZoneRead], None);
        assert!(limits.token(&other, over_at).is_allowed());
    }

    #[test]
    fn an_ip_over_200_a_second_waits_a_second() {
        let limits = Limits::new();
        let now = Duration::from_secs(50);
        for i in 0..PER_IP_PER_SECOND {
            assert!(limits.ip(LOOPBACK, now).is_allowed(), "request {i}");
        }
        assert_eq!(limits.ip(LOOPBACK, now).retry_after_secs(), Some(1));
        assert!(limits.ip(REMOTE, now).is_allowed());
        assert!(
            limits
                .ip(LOOPBACK, now + Duration::from_secs(1))
                .is_allowed()
        );
    }
}
