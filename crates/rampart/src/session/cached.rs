//! The edge cache in a request's life, between the request phases and the upstream: answer
//! from a stored response, or fetch (one request for many concurrent misses) and store what
//! the origin sends while it streams to the client.

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use bytes::Bytes;
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
pub(crate) enum CacheUse<'p> {
    /// Nothing: no cache is configured.
    None,
    /// Not cached: its response is marked with this status (BYPASS or DYNAMIC).
    Pass(CacheStatus),
    /// Fetched for the cache: stored if the response may be (MISS or EXPIRED).
    Fill(CacheStatus, &'p Plan),
}

/// How an eligible request is cached.
pub(crate) struct Plan {
    key: String,
    url: String,
    host: String,
    policy: Policy,
    browser_ttl: Option<Duration>,
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
    let rule = zone
        .config
        .cache_rules
        .first_match(ctx.rules.exec())
        .map(|r| r.action());
    let default_spec = KeySpec::default();
    let (spec, policy, browser_ttl) = match rule {
        Some(r) if !r.cache => return Err(CacheStatus::Bypass),
        Some(r) => (
            &r.key,
            Policy {
                edge_ttl: r.edge_ttl,
                cache_set_cookie: r.edge_ttl.is_some(),
            },
            r.browser_ttl,
        ),
        None if key::default_cacheable_path(fields.path()) => {
            (&default_spec, Policy::default(), None)
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
    })
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
    let now = SystemTime::now();
    if let Some(object) = cache.store.get(&plan.key, |h| ctx.head.header(h)) {
        if object.state(now) == State::Fresh {
            return answer(rt, ds, ctx, &object, CacheStatus::Hit, &plan).await;
        }
        return send::forward(
            rt,
            ds,
            ctx,
            env,
            body,
            CacheUse::Fill(CacheStatus::Expired, &plan),
        )
        .await;
    }
    // A HEAD, a conditional or a ranged request is sent on as it is: its answer is not the
    // whole object, and nobody waits for it.
    let partial = ctx.head.is_head()
        || [
            "range",
            "if-match",
            "if-none-match",
            "if-modified-since",
            "if-unmodified-since",
        ]
        .iter()
        .any(|h| ctx.head.header(h).is_some());
    if partial {
        return send::forward(
            rt,
            ds,
            ctx,
            env,
            body,
            CacheUse::Fill(CacheStatus::Miss, &plan),
        )
        .await;
    }
    match cache.join(&plan.key) {
        Join::Leader(guard) => {
            send::forward(
                rt,
                ds,
                ctx,
                env,
                body,
                CacheUse::Fill(CacheStatus::Miss, &plan),
            )
            .await;
            drop(guard);
        }
        Join::Follower(flight) => {
            let limit = ctx.zone.as_ref().map_or(Duration::from_secs(100), |z| {
                z.config.origin_response_timeout
            });
            flight.wait(limit).await;
            if let Some(object) = cache.store.get(&plan.key, |h| ctx.head.header(h))
                && object.state(SystemTime::now()) == State::Fresh
            {
                return answer(rt, ds, ctx, &object, CacheStatus::Hit, &plan).await;
            }
            send::forward(
                rt,
                ds,
                ctx,
                env,
                body,
                CacheUse::Fill(CacheStatus::Miss, &plan),
            )
            .await;
        }
    }
}

/// Sends the answer to the request from `object`.
async fn answer<D: Downstream>(
    rt: &Runtime,
    ds: &mut D,
    ctx: &mut RequestContext<'_>,
    object: &Arc<Object>,
    status: CacheStatus,
    plan: &Plan,
) {
    let boundary = format!("rampart-{}", ctx.ray_id.as_str());
    let mut response = serve::answer(object, ctx.head, SystemTime::now(), status, &boundary);
    browser_ttl(&mut response.head, plan.browser_ttl);
    response.head.set_ray_id(ctx.ray_id);
    ctx.log.cache_status = Some(status.log_name());
    ctx.log.cache_response_bytes = match &response.body {
        crate::message::Body::Full(b) => b.len() as u64,
        crate::message::Body::Stream(never) => match *never {},
    };
    send::send_and_record(rt, ds, ctx, response).await;
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

/// What happens to an origin's response head on its way through the cache: `Cache-Tag` is
/// never relayed, the response says what the cache did, and when it may be stored, the
/// filling that stores its body is returned.
pub(super) fn on_origin_head(
    rt: &Runtime,
    ctx: &mut RequestContext<'_>,
    response: &mut OriginResponse<'_>,
    cache: CacheUse<'_>,
) -> Option<Filling> {
    let head = &mut response.head;
    let (status, plan) = match cache {
        CacheUse::None => return None,
        CacheUse::Pass(status) => {
            head.remove_origin(http::header::HeaderName::from_static("cache-tag"));
            serve::mark(head, status, false);
            ctx.log.cache_status = Some(status.log_name());
            return None;
        }
        CacheUse::Fill(status, plan) => (status, plan),
    };
    let request = FillRequest {
        zone: ctx.zone_name().unwrap_or(""),
        url: &plan.url,
        host: &plan.host,
        authorization: ctx.head.header("authorization").is_some(),
        request_time: ctx.started_at,
        response_time: SystemTime::now(),
        policy: plan.policy,
    };
    let stored = if head.status() == 206 || ctx.head.is_head() {
        Err(NotStored::NotCacheable)
    } else {
        fill::object(head, &request)
    };
    head.remove_origin(http::header::HeaderName::from_static("cache-tag"));
    let limit = rt.cache.as_ref().map_or(0, |c| c.max_object);
    let too_large = matches!(response.kind, crate::message::BodyKind::Length(n) if n > limit);
    let (status, filling) = match stored {
        Ok(object) if !too_large => (
            status,
            Some(Filling {
                key: plan.key.clone(),
                object,
                body: Vec::new(),
                limit,
            }),
        ),
        Ok(_) | Err(NotStored::NotCacheable) => (status, None),
        Err(_) => (CacheStatus::Bypass, None),
    };
    serve::mark(head, status, filling.is_some());
    browser_ttl(head, plan.browser_ttl);
    ctx.log.cache_status = Some(status.log_name());
    filling
}

/// Stores a response whose body came whole.
pub(super) fn store(rt: &Runtime, ctx: &RequestContext<'_>, filling: Filling) {
    let Some(cache) = rt.cache.as_deref() else {
        return;
    };
    let (key, object) = filling.finish();
    insert(cache, ctx, &key, object);
}

fn insert(cache: &EdgeCache, ctx: &RequestContext<'_>, key: &str, object: Object) {
    cache.store.insert(key, object, |h| ctx.head.header(h));
}
