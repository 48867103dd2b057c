//! The edge cache in a request's life, between the request phases and the upstream: answer
//! from a stored response, or fetch (one request for many concurrent misses) and store what
//! the origin sends while it streams to the client.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use rampart_cache::encoding::{self, Coding};
use rampart_cache::freshness::{NotStored, Policy};
use rampart_cache::key::{self, KeyRequest, KeySpec};
use rampart_cache::object::{Object, State};

use super::Downstream;
use super::body::RequestBody;
use super::send;
use crate::cache::fill::{self, FillRequest, Filling};
use crate::cache::{CacheStatus, EdgeCache, Join, serve};
use crate::message::ResponseHead;
use crate::pipeline::{PhaseEnv, RequestContext};
use crate::runtime::Runtime;
use crate::upstream::OriginResponse;

/// What the cache does with a request that goes to the origin.
#[derive(Clone, Copy)]
pub(crate) enum CacheUse<'p> {
    /// Nothing: no cache is configured.
    None,
    /// Not cached: its response is marked with this status (BYPASS or DYNAMIC).
    Pass(CacheStatus),
    /// Fetched for the cache: stored if the response may be.
    Fill(Fill<'p>),
}

/// A request fetched for the cache.
#[derive(Clone, Copy)]
pub(crate) struct Fill<'p> {
    /// MISS or EXPIRED.
    status: CacheStatus,
    plan: &'p Plan,
    /// The stale copy, when there is one: revalidated, or served if the origin fails.
    stale: Option<&'p Arc<Object>>,
    /// Whether the request carries the stale copy's validators (the client sent none of its
    /// own), so that a 304 is the origin's word on that copy.
    revalidating: bool,
}

impl CacheUse<'_> {
    /// The fields the origin request gets besides the client's: the validators of the copy
    /// being revalidated.
    pub(super) fn added_fields(&self) -> Vec<(&'static [u8], Bytes)> {
        let mut out = Vec::new();
        if let CacheUse::Fill(Fill {
            stale: Some(object),
            revalidating: true,
            ..
        }) = self
        {
            if let Some(etag) = &object.meta.etag {
                out.push((&b"if-none-match"[..], etag.clone()));
            }
            if let Some(t) = object.meta.last_modified {
                out.push((
                    &b"if-modified-since"[..],
                    Bytes::from(httpdate::fmt_http_date(t)),
                ));
            }
        }
        out
    }

    /// The stale copy to serve instead of an origin failure, if one may be: a rule's
    /// `serve_stale`, or the copy's own `stale-if-error` (which must-revalidate forbids).
    pub(super) fn stale_for_error(&self) -> Option<&Arc<Object>> {
        let CacheUse::Fill(Fill {
            stale: Some(object),
            plan,
            ..
        }) = self
        else {
            return None;
        };
        if plan.serve_stale {
            return Some(object);
        }
        match object.state(SystemTime::now()) {
            State::Stale(by)
                if !object.meta.must_revalidate && by <= object.meta.stale_if_error =>
            {
                Some(object)
            }
            State::Fresh => Some(object),
            State::Stale(_) => None,
        }
    }

    /// The plan of a request fetched for the cache.
    pub(super) fn plan(&self) -> Option<&Plan> {
        match self {
            CacheUse::Fill(f) => Some(f.plan),
            _ => None,
        }
    }
}

/// How an eligible request is cached.
#[derive(Clone)]
pub(crate) struct Plan {
    pub(super) key: String,
    url: String,
    host: String,
    policy: Policy,
    browser_ttl: Option<Duration>,
    serve_stale: bool,
}

/// Whether a request is eligible, by its method, the zone's cache rules, and (without a rule)
/// Cloudflare's default extensions.
fn plan(ctx: &RequestContext<'_>) -> Result<Plan, CacheStatus> {
    let Some(zone) = ctx.zone.as_ref() else {
        return Err(CacheStatus::Dynamic);
    };
    if !matches!(ctx.head.method(), "GET" | "HEAD") {
        return Err(CacheStatus::Dynamic);
    }
    let fields = ctx.rules.fields();
    let rule = ctx
        .rules
        .first_match(&zone.config.cache_rules)
        .map(|r| r.action());
    let default_spec = KeySpec::default();
    let (spec, policy, browser_ttl, serve_stale) = match rule {
        Some(r) if !r.cache => return Err(CacheStatus::Bypass),
        Some(r) => (
            &r.key,
            Policy {
                edge_ttl: r.edge_ttl,
                cache_set_cookie: r.edge_ttl.is_some(),
            },
            r.browser_ttl,
            r.serve_stale,
        ),
        None if key::default_cacheable_path(fields.path()) => {
            (&default_spec, Policy::default(), None, false)
        }
        None => return Err(CacheStatus::Dynamic),
    };
    let scheme = if ctx.tls { "https" } else { "http" };
    let host = ctx.head.host_name().unwrap_or("");
    let request = KeyRequest {
        zone: &zone.config.name,
        scheme,
        host,
        path: fields.path(),
        query: ctx.head.query(),
    };
    let key = key::build(
        &request,
        spec,
        |h| ctx.head.header(h),
        |c| crate::pipeline::rate_limit::cookie(ctx.head, c),
    );
    let url = match ctx.head.query() {
        Some(q) => format!("{scheme}://{host}{}?{q}", fields.path()),
        None => format!("{scheme}://{host}{}", fields.path()),
    };
    Ok(Plan {
        key,
        url,
        host: host.to_string(),
        policy,
        browser_ttl,
        serve_stale,
    })
}

/// A HEAD, a conditional or a ranged request: its answer is not the whole object.
fn partial(head: &rampart_http::RequestHead) -> bool {
    head.is_head()
        || [
            "range",
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ]
        .iter()
        .any(|h| head.header(h).is_some())
}

/// Answers from the cache, or forwards through it.
pub(super) async fn forward<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    env: &PhaseEnv,
    body: &mut RequestBody,
) {
    let Some(cache) = rt.cache.clone() else {
        return send::forward(rt, ds, ctx, env, body, CacheUse::None).await;
    };
    let plan = match plan(ctx) {
        Ok(p) => p,
        Err(status) => return send::forward(rt, ds, ctx, env, body, CacheUse::Pass(status)).await,
    };
    let partial = partial(ctx.head);
    let fill = |status, stale| {
        CacheUse::Fill(Fill {
            status,
            plan: &plan,
            stale,
            revalidating: stale.is_some() && !partial,
        })
    };
    if let Some(object) = cache.get(&plan.key, |h| ctx.head.header(h)).await {
        let by = match object.state(SystemTime::now()) {
            State::Fresh => return answer(rt, ds, ctx, &object, CacheStatus::Hit, &plan).await,
            State::Stale(by) => by,
        };
        if !object.meta.must_revalidate && by <= object.meta.stale_while_revalidate {
            super::refresh::spawn(rt, ctx, &cache, &plan, &object);
            return answer(rt, ds, ctx, &object, CacheStatus::Updating, &plan).await;
        }
        let cache_use = fill(CacheStatus::Expired, Some(&object));
        return send::forward(rt, ds, ctx, env, body, cache_use).await;
    }
    // A partial request is sent on as it is: nobody waits for its answer.
    if partial {
        return send::forward(rt, ds, ctx, env, body, fill(CacheStatus::Miss, None)).await;
    }
    match cache.join(&plan.key) {
        Join::Leader(guard) => {
            send::forward(rt, ds, ctx, env, body, fill(CacheStatus::Miss, None)).await;
            drop(guard);
        }
        Join::Follower(flight) => {
            let limit = ctx.zone.as_ref().map_or(Duration::from_secs(100), |z| {
                z.config.origin_response_timeout
            });
            flight.wait(limit).await;
            if let Some(object) = cache.get(&plan.key, |h| ctx.head.header(h)).await
                && object.state(SystemTime::now()) == State::Fresh
            {
                return answer(rt, ds, ctx, &object, CacheStatus::Hit, &plan).await;
            }
            send::forward(rt, ds, ctx, env, body, fill(CacheStatus::Miss, None)).await;
        }
    }
}

/// Sends the answer to the request from `object`.
pub(super) async fn answer<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    object: &Arc<Object>,
    status: CacheStatus,
    plan: &Plan,
) {
    let boundary = format!("rampart-{}", ctx.ray_id.as_str());
    let (varies, coding) = serve::coding_for(object, ctx.head);
    let coded = match (coding, rt.cache.as_ref()) {
        (Some(c), Some(cache)) => Some((c, coded_body(cache, &plan.key, object, c).await)),
        _ => None,
    };
    let representation = serve::Representation { varies, coded };
    let now = SystemTime::now();
    let mut response = serve::answer(object, ctx.head, now, status, &boundary, representation);
    browser_ttl(&mut response.head, plan.browser_ttl);
    response.head.set_ray_id(ctx.ray_id);
    ctx.log.cache_status = Some(status.log_name());
    ctx.log.cache_response_bytes = match &response.body {
        crate::message::Body::Full(b) => b.len() as u64,
        crate::message::Body::Stream(never) => match *never {},
    };
    send::send_and_record(rt, ds, ctx, response).await;
}

/// Bodies up to this size are compressed on the worker; larger ones on the blocking pool, so
/// that a large first compression does not hold up the worker's other connections.
const COMPRESS_INLINE: usize = 128 * 1024;

/// `object`'s body in `coding`: made once, on the first request for it, and kept with the
/// object (and counted in the store's bound).
async fn coded_body(cache: &EdgeCache, key: &str, object: &Arc<Object>, coding: Coding) -> Bytes {
    if let Some(b) = object.encoded.get(coding) {
        return b.clone();
    }
    let coded = if object.body.len() <= COMPRESS_INLINE {
        encoding::compress(&object.body, coding)
    } else {
        let body = object.body.clone();
        match tokio::task::spawn_blocking(move || encoding::compress(&body, coding)).await {
            Ok(b) => b,
            Err(_) => return encoding::compress(&object.body, coding),
        }
    };
    if object.encoded.set(coding, coded.clone()) {
        cache.store.grew(key, object, coded.len());
    }
    coded
}

/// A rule's `browser_ttl`: what clients are told of freshness, instead of the origin's.
fn browser_ttl(head: &mut ResponseHead, ttl: Option<Duration>) {
    if let Some(ttl) = ttl {
        head.remove_origin(http::header::CACHE_CONTROL);
        head.remove_origin(http::header::EXPIRES);
        head.append(
            http::header::CACHE_CONTROL,
            Bytes::from(format!("max-age={}", ttl.as_secs())),
        );
    }
}

/// What becomes of an origin's response.
pub(super) enum AfterHead {
    /// Relayed; its body is stored on the way when there is a filling.
    Relay(Option<Box<Filling>>),
    /// Not relayed: the client is answered from this object instead (a stale copy the origin
    /// confirmed, or one that stands in for the origin's failure).
    Serve(Arc<Object>, CacheStatus),
}

/// What happens to an origin's response head on its way through the cache: `Cache-Tag` is
/// never relayed, and the response says what the cache did. A 304 to a revalidation freshens
/// the stale copy, and a 5xx may be answered with it.
pub(super) fn on_origin_head(
    rt: &Runtime,
    ctx: &mut RequestContext<'_>,
    response: &mut OriginResponse<'_>,
    cache: CacheUse<'_>,
) -> AfterHead {
    let head = &mut response.head;
    const CACHE_TAG: http::header::HeaderName = http::header::HeaderName::from_static("cache-tag");
    let fill = match cache {
        CacheUse::None => {
            head.remove_origin(CACHE_TAG);
            return AfterHead::Relay(None);
        }
        CacheUse::Pass(status) => {
            head.remove_origin(CACHE_TAG);
            serve::mark(head, status, false);
            ctx.log.cache_status = Some(status.log_name());
            return AfterHead::Relay(None);
        }
        CacheUse::Fill(fill) => fill,
    };
    if head.status() >= 500
        && let Some(stale) = cache.stale_for_error()
    {
        ctx.log.error_reason = format!("origin answered {}; served stale", head.status());
        return AfterHead::Serve(stale.clone(), CacheStatus::Stale);
    }
    let Some(edge) = rt.cache.as_ref() else {
        head.remove_origin(CACHE_TAG);
        return AfterHead::Relay(None);
    };
    let authorization = ctx.head.header("authorization").is_some();
    let zone = ctx.zone_name().unwrap_or("");
    let request = fill.plan.fill_request(zone, authorization, ctx.started_at);
    let decision = decide(edge, ctx.head, head, response.kind, &fill, &request);
    // Read into the object's tags by then; never relayed.
    head.remove_origin(CACHE_TAG);
    match decision {
        Decision::Freshened(object) => {
            let object = Arc::new(object);
            edge.put(&fill.plan.key, object.clone(), |h| ctx.head.header(h));
            AfterHead::Serve(object, CacheStatus::Revalidated)
        }
        Decision::Fill(filling) => {
            serve::mark(head, fill.status, true);
            browser_ttl(head, fill.plan.browser_ttl);
            ctx.log.cache_status = Some(fill.status.log_name());
            AfterHead::Relay(Some(Box::new(filling)))
        }
        Decision::Relay(status) => {
            serve::mark(head, status, false);
            browser_ttl(head, fill.plan.browser_ttl);
            ctx.log.cache_status = Some(status.log_name());
            AfterHead::Relay(None)
        }
    }
}

impl Plan {
    /// What is known of the request when deciding to store its response (which came now).
    pub(super) fn fill_request<'a>(
        &'a self,
        zone: &'a str,
        authorization: bool,
        request_time: SystemTime,
    ) -> FillRequest<'a> {
        FillRequest {
            zone,
            url: &self.url,
            host: &self.host,
            authorization,
            request_time,
            response_time: SystemTime::now(),
            policy: self.policy,
        }
    }
}

impl<'p> Fill<'p> {
    /// The fill of a background revalidation of `stale`.
    pub(super) fn revalidation(plan: &'p Plan, stale: &'p Arc<Object>) -> Fill<'p> {
        Fill {
            status: CacheStatus::Updating,
            plan,
            stale: Some(stale),
            revalidating: true,
        }
    }
}

/// What the cache makes of an origin's response head.
pub(super) enum Decision {
    /// A 304 confirmed the stale copy: here it is, freshened (and to be stored).
    Freshened(Object),
    /// Stored once its body has come.
    Fill(Filling),
    /// Relayed, not stored, with this status.
    Relay(CacheStatus),
}

/// Whether the response to `req` is stored, freshens the stale copy, or is only relayed.
pub(super) fn decide(
    cache: &EdgeCache,
    req: &rampart_http::RequestHead,
    head: &ResponseHead,
    kind: crate::message::BodyKind,
    fill: &Fill<'_>,
    request: &FillRequest<'_>,
) -> Decision {
    if head.status() == 304
        && fill.revalidating
        && let Some(stale) = fill.stale
    {
        return match fill::freshen(stale, head, request) {
            Ok(object) => Decision::Freshened(object),
            Err(_) => Decision::Relay(CacheStatus::Bypass),
        };
    }
    let stored = if head.status() == 206 || req.is_head() {
        Err(NotStored::NotCacheable)
    } else {
        fill::object(head, request)
    };
    let limit = cache.max_object;
    let too_large = matches!(kind, crate::message::BodyKind::Length(n) if n > limit);
    match stored {
        Ok(object) if !too_large => Decision::Fill(Filling {
            key: fill.plan.key.clone(),
            object,
            body: Vec::new(),
            limit,
        }),
        Ok(_) | Err(NotStored::NotCacheable) => Decision::Relay(fill.status),
        Err(_) => Decision::Relay(CacheStatus::Bypass),
    }
}

/// Stores a response whose body came whole.
pub(super) fn store(rt: &Runtime, ctx: &RequestContext<'_>, filling: Box<Filling>) {
    let Some(cache) = rt.cache.as_ref() else {
        return;
    };
    let (key, object) = filling.finish();
    cache.put(&key, object, |h| ctx.head.header(h));
}
