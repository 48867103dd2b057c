//! Whether a response may be stored, for how long it is fresh, and how old it is (RFC 9111
//! §3, §4.2), with Cloudflare's defaults where the origin says nothing.

use std::time::{Duration, SystemTime};

use crate::control::ResponseDirectives;

/// Cloudflare's edge TTL for a response that says nothing of its own freshness (no
/// `s-maxage`, `max-age` or `Expires`): 200, 206 and 301 for 120 minutes, 302 and 303 for 20,
/// 404 and 410 for 3. Other statuses are not cached without explicit freshness.
pub fn default_ttl(status: u16) -> Option<Duration> {
    let minutes = match status {
        200 | 206 | 301 => 120,
        302 | 303 => 20,
        404 | 410 => 3,
        _ => return None,
    };
    Some(Duration::from_secs(minutes * 60))
}

/// Final statuses a shared cache may store when the origin gives explicit freshness (RFC 9110
/// §15.1 lists the heuristically cacheable ones; a redirect or an error with `max-age` is
/// stored too). 206 is not: rampart stores whole objects only.
pub fn storable_status(status: u16) -> bool {
    matches!(
        status,
        200 | 203 | 204 | 300 | 301 | 302 | 303 | 307 | 308 | 404 | 405 | 410 | 414 | 451 | 501
    )
}

/// Why a response is not stored (logged, and shown as BYPASS).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NotStored {
    /// `Cache-Control: no-store`.
    NoStore,
    /// `Cache-Control: private`.
    Private,
    /// `no-cache` and no validator to revalidate with.
    NoCacheWithoutValidator,
    /// `Set-Cookie` (a cache rule may allow it: the cookie is then not stored).
    SetCookie,
    /// The request had `Authorization` and the response is not `public`, `s-maxage` or
    /// `must-revalidate` (RFC 9111 §3.5).
    Authorization,
    /// `Vary: *`.
    VaryStar,
    /// A status not stored, or no freshness at all (nothing explicit and no default TTL).
    NotCacheable,
    /// Fresh for no time and without a validator: a copy would never be served.
    ZeroLifetime,
}

impl NotStored {
    /// A short name for logs.
    pub fn name(self) -> &'static str {
        match self {
            NotStored::NoStore => "no-store",
            NotStored::Private => "private",
            NotStored::NoCacheWithoutValidator => "no-cache without a validator",
            NotStored::SetCookie => "set-cookie",
            NotStored::Authorization => "authorization",
            NotStored::VaryStar => "vary *",
            NotStored::NotCacheable => "status or freshness",
            NotStored::ZeroLifetime => "zero lifetime",
        }
    }
}

/// What is known of a response when deciding to store it.
#[derive(Clone, Copy, Debug)]
pub struct Response<'a> {
    /// The status.
    pub status: u16,
    /// Its Cache-Control directives.
    pub directives: &'a ResponseDirectives,
    /// Its Date.
    pub date: Option<SystemTime>,
    /// Its Expires, raw: an invalid one (such as `0`) means "already expired".
    pub expires: Option<&'a [u8]>,
    /// It has an ETag or a Last-Modified to revalidate with.
    pub has_validator: bool,
    /// It has Set-Cookie.
    pub set_cookie: bool,
    /// Its Vary lists `*`.
    pub vary_star: bool,
}

/// The policy of the cache rule that applies (Cloudflare's cache rules).
#[derive(Clone, Copy, Debug, Default)]
pub struct Policy {
    /// Override the origin's freshness with this edge TTL.
    pub edge_ttl: Option<Duration>,
    /// Store responses with Set-Cookie (the cookie itself is not stored).
    pub cache_set_cookie: bool,
}

/// How long a response is fresh for, if it may be stored (RFC 9111 §3, §4.2.1).
pub fn lifetime(
    r: &Response<'_>,
    request_has_authorization: bool,
    policy: Policy,
    response_time: SystemTime,
) -> Result<Duration, NotStored> {
    let d = r.directives;
    if d.no_store {
        return Err(NotStored::NoStore);
    }
    if d.private {
        return Err(NotStored::Private);
    }
    if r.vary_star {
        return Err(NotStored::VaryStar);
    }
    if r.set_cookie && !policy.cache_set_cookie {
        return Err(NotStored::SetCookie);
    }
    if request_has_authorization && !(d.public || d.s_maxage.is_some() || d.must_revalidate) {
        return Err(NotStored::Authorization);
    }
    if d.no_cache && !r.has_validator {
        return Err(NotStored::NoCacheWithoutValidator);
    }
    let explicit = explicit_lifetime(r, response_time);
    let lifetime = match (policy.edge_ttl, explicit) {
        (Some(ttl), _) if storable_status(r.status) || default_ttl(r.status).is_some() => ttl,
        (_, Some(l)) if storable_status(r.status) => l,
        (None, None) => default_ttl(r.status).ok_or(NotStored::NotCacheable)?,
        _ => return Err(NotStored::NotCacheable),
    };
    // no-cache: stored, but stale at once (every use revalidates).
    let lifetime = if d.no_cache && policy.edge_ttl.is_none() {
        Duration::ZERO
    } else {
        lifetime
    };
    if lifetime.is_zero() && !r.has_validator {
        return Err(NotStored::ZeroLifetime);
    }
    Ok(lifetime)
}

/// s-maxage, then max-age, then Expires − Date (RFC 9111 §4.2.1); `None` when the response
/// says nothing of its freshness.
fn explicit_lifetime(r: &Response<'_>, response_time: SystemTime) -> Option<Duration> {
    let d = r.directives;
    if let Some(s) = d.s_maxage.or(d.max_age) {
        return Some(Duration::from_secs(s));
    }
    let expires = r.expires?;
    let Some(expires) = parse_date(expires) else {
        // An invalid Expires, in particular "0": already expired (§5.3).
        return Some(Duration::ZERO);
    };
    let base = r.date.unwrap_or(response_time);
    Some(expires.duration_since(base).unwrap_or(Duration::ZERO))
}

/// An HTTP-date in any of the three formats of RFC 9110 §5.6.7.
pub fn parse_date(value: &[u8]) -> Option<SystemTime> {
    let s = std::str::from_utf8(value).ok()?;
    httpdate::parse_http_date(s.trim()).ok()
}

/// The age of a response when it arrived (RFC 9111 §4.2.3): the larger of its apparent age
/// (now − Date) and its Age field plus the time the request took.
pub fn initial_age(
    age_field: Option<&[u8]>,
    date: Option<SystemTime>,
    request_time: SystemTime,
    response_time: SystemTime,
) -> Duration {
    let apparent = date
        .and_then(|d| response_time.duration_since(d).ok())
        .unwrap_or(Duration::ZERO);
    let age_value = age_field
        .and_then(|a| std::str::from_utf8(a).ok())
        .and_then(|a| a.trim().parse::<u64>().ok())
        .map_or(Duration::ZERO, Duration::from_secs);
    let delay = response_time
        .duration_since(request_time)
        .unwrap_or(Duration::ZERO);
    apparent.max(age_value + delay)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn with(cc: &str, f: impl FnOnce(&mut Response<'_>)) -> Result<Duration, NotStored> {
        let d = ResponseDirectives::parse([cc.as_bytes()]);
        let mut r = Response {
            status: 200,
            directives: &d,
            date: Some(at(1_000)),
            expires: None,
            has_validator: false,
            set_cookie: false,
            vary_star: false,
        };
        f(&mut r);
        lifetime(&r, false, Policy::default(), at(1_000))
    }

    #[test]
    fn explicit_freshness_comes_first_then_cloudflare_s_defaults() {
        assert_eq!(
            with("max-age=60, s-maxage=10", |_| {}),
            Ok(Duration::from_secs(10))
        );
        assert_eq!(with("max-age=60", |_| {}), Ok(Duration::from_secs(60)));
        let exp: &'static str = Box::leak(httpdate::fmt_http_date(at(1_300)).into_boxed_str());
        assert_eq!(
            with("", |r| r.expires = Some(exp.as_bytes())),
            Ok(Duration::from_secs(300))
        );
        assert_eq!(
            with("", |r| {
                r.expires = Some(b"0");
                r.has_validator = true;
            }),
            Ok(Duration::ZERO),
            "an invalid Expires is already expired"
        );
        assert_eq!(
            with("", |_| {}),
            Ok(Duration::from_secs(7_200)),
            "default 200"
        );
        assert_eq!(with("", |r| r.status = 404), Ok(Duration::from_secs(180)));
        assert_eq!(with("", |r| r.status = 500), Err(NotStored::NotCacheable));
        assert_eq!(
            with("max-age=60", |r| r.status = 500),
            Err(NotStored::NotCacheable)
        );
        assert_eq!(
            with("max-age=60", |r| r.status = 308),
            Ok(Duration::from_secs(60))
        );
    }

    #[test]
    fn what_is_never_stored() {
        assert_eq!(
            with("no-store, max-age=60", |_| {}),
            Err(NotStored::NoStore)
        );
        assert_eq!(with("private", |_| {}), Err(NotStored::Private));
        assert_eq!(
            with("no-cache", |_| {}),
            Err(NotStored::NoCacheWithoutValidator)
        );
        assert_eq!(
            with("no-cache", |r| r.has_validator = true),
            Ok(Duration::ZERO)
        );
        assert_eq!(
            with("max-age=60", |r| r.set_cookie = true),
            Err(NotStored::SetCookie)
        );
        assert_eq!(
            with("max-age=60", |r| r.vary_star = true),
            Err(NotStored::VaryStar)
        );
        assert_eq!(with("max-age=0", |_| {}), Err(NotStored::ZeroLifetime));
        let d = ResponseDirectives::parse([&b"max-age=60"[..]]);
        let r = Response {
            status: 200,
            directives: &d,
            date: None,
            expires: None,
            has_validator: false,
            set_cookie: false,
            vary_star: false,
        };
        assert_eq!(
            lifetime(&r, true, Policy::default(), at(0)),
            Err(NotStored::Authorization)
        );
        let d = ResponseDirectives::parse([&b"public, max-age=60"[..]]);
        let r = Response {
            directives: &d,
            ..r
        };
        assert!(lifetime(&r, true, Policy::default(), at(0)).is_ok());
    }

    #[test]
    fn a_rule_s_edge_ttl_overrides_and_may_allow_set_cookie() {
        let d = ResponseDirectives::parse([&b"max-age=5"[..]]);
        let r = Response {
            status: 200,
            directives: &d,
            date: None,
            expires: None,
            has_validator: false,
            set_cookie: true,
            vary_star: false,
        };
        let policy = Policy {
            edge_ttl: Some(Duration::from_secs(900)),
            cache_set_cookie: true,
        };
        assert_eq!(
            lifetime(&r, false, policy, at(0)),
            Ok(Duration::from_secs(900))
        );
    }

    #[test]
    fn the_initial_age_is_the_larger_of_apparent_and_corrected_age() {
        // Date 10 s before arrival, Age 3 s, request took 2 s: apparent 10.
        assert_eq!(
            initial_age(Some(b"3"), Some(at(90)), at(98), at(100)),
            Duration::from_secs(10)
        );
        // Age 30: 30 + 2.
        assert_eq!(
            initial_age(Some(b"30"), Some(at(99)), at(98), at(100)),
            Duration::from_secs(32)
        );
        // A Date in the future counts as 0.
        assert_eq!(
            initial_age(None, Some(at(200)), at(100), at(100)),
            Duration::ZERO
        );
    }
}
