//! The admin API under `/client/v4/`, in Cloudflare's shape: every answer is the envelope
//! `{"success", "errors": [{"code", "message"}], "messages", "result"}`.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use serde_json::{Value, json};

use super::auth::{self, Caller, GuardState};
use crate::cache::purge::{self, Purge};
use crate::config::api::Scope;
use crate::runtime::{Announcement, Runtime};

/// Largest request body the API reads (Cloudflare's 1 MB for requests other than lists').
pub(super) const MAX_BODY: usize = 1024 * 1024;

/// Cloudflare's error codes, where the API shares its meaning.
pub(super) mod code {
    /// A missing, invalid or insufficient token ("Authentication error").
    pub const AUTH: u32 = 10000;
    /// Over the API's rate ("Please wait and consider throttling your request speed").
    pub const RATE_LIMITED: u32 = 971;
    /// The zone does not exist ("Could not route to ..., perhaps your object identifier is
    /// invalid?").
    pub const NO_ROUTE: u32 = 7003;
    /// A purge request that names nothing valid to purge.
    pub const BAD_PURGE: u32 = 1012;
    /// The request body is larger than the API reads.
    pub const TOO_LARGE: u32 = 1015;
    /// The request body could not be read.
    pub const BAD_BODY: u32 = 1016;
    /// No route for that URI.
    pub const NO_SUCH_ROUTE: u32 = 7000;
    /// The route does not take that method.
    pub const METHOD: u32 = 7001;
    /// The body is not JSON (`Content-Type`).
    pub const NOT_JSON: u32 = 6003;
    /// A change the configuration's loader refused (the message says why, `source.pointer`
    /// where in the body).
    pub const INVALID: u32 = 1004;
    /// `If-Match` names another version.
    pub const PRECONDITION: u32 = 1412;
    /// An id that exists already.
    pub const DUPLICATE: u32 = 1409;
    /// No configuration file to keep a change in (the embedded default).
    pub const NO_FILE: u32 = 1410;
    /// The configuration file could not be read or written.
    pub const IO: u32 = 1500;
}

/// The routes under `/client/v4`, each behind [`auth::guard`].
pub(super) fn routes(guard: GuardState) -> Router<Arc<Runtime>> {
    Router::new()
        .route("/user/tokens/verify", get(verify_token))
        .route("/zones", get(list_zones))
        .route("/zones/{zone}", get(get_zone))
        .route("/zones/{zone}/purge_cache", post(purge_cache))
        .route("/cache", get(cache_stats))
        .route("/zones/{zone}/origin_health", get(origin_health))
        .merge(super::rules::routes())
        .merge(super::settings::routes())
        .merge(super::lists::routes())
        .merge(super::analytics::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
        .route_layer(axum::middleware::from_fn_with_state(guard, auth::guard))
        .method_not_allowed_fallback(|| async {
            failure(
                StatusCode::METHOD_NOT_ALLOWED,
                code::METHOD,
                "Method not allowed for this route (see Allow)".into(),
            )
        })
        .fallback(|uri: axum::http::Uri| async move {
            failure(
                StatusCode::NOT_FOUND,
                code::NO_SUCH_ROUTE,
                format!("No route for the URI {uri}"),
            )
        })
}

/// A zone as the API shows it.
fn zone_json(z: &crate::config::Zone) -> Value {
    json!({
        "id": z.name,
        "name": z.name,
        "status": "active",
        "hosts": z.hosts.iter().map(|h| h.to_string()).collect::<Vec<_>>(),
    })
}

/// `?page=N&per_page=M`: Cloudflare's pagination (page from 1, per_page 5 to 50, default
/// 20); other parameters are left alone. `None` when either is not a whole number.
fn page_of(query: Option<&str>) -> Option<(usize, usize)> {
    let (mut page, mut per_page) = (1, 20);
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("page", n)) => page = n.parse::<usize>().ok()?.max(1),
            Some(("per_page", n)) => per_page = n.parse::<usize>().ok()?.clamp(5, 50),
            _ => {}
        }
    }
    Some((page, per_page))
}

/// `GET /client/v4/zones`: the zones the token may read, a page of them.
async fn list_zones(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    uri: axum::http::Uri,
) -> Response {
    if let Err(denied) = caller.allow(Scope::ZoneRead, None) {
        return denied.into_response();
    }
    let Some((number, per_page)) = page_of(uri.query()) else {
        return failure(
            StatusCode::BAD_REQUEST,
            code::BAD_BODY,
            "page and per_page are whole numbers".into(),
        );
    };
    let generation = rt.generation();
    let zones: Vec<&crate::config::Zone> = generation
        .config
        .zones
        .iter()
        .filter(|z| caller.covers(&z.name))
        .collect();
    let total = zones.len();
    let shown: Vec<Value> = zones
        .iter()
        .skip((number - 1) * per_page)
        .take(per_page)
        .map(|z| zone_json(z))
        .collect();
    let count = shown.len();
    axum::Json(json!({
        "success": true,
        "errors": [],
        "messages": [],
        "result": shown,
        "result_info": {
            "page": number,
            "per_page": per_page,
            "count": count,
            "total_count": total,
            "total_pages": total.div_ceil(per_page),
        },
    }))
    .into_response()
}

/// 404 for a path that names a zone this configuration does not have.
pub(super) fn no_zone(zone: &str) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        code::NO_ROUTE,
        format!("Could not route to /zones/{zone}: there is no zone `{zone}`"),
    )
}

/// `GET /client/v4/zones/{zone}`.
async fn get_zone(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
) -> Response {
    if let Err(denied) = caller.allow(Scope::ZoneRead, Some(&zone)) {
        return denied.into_response();
    }
    let generation = rt.generation();
    match generation.config.zones.iter().find(|z| z.name == zone) {
        Some(z) => success(zone_json(z)),
        None => no_zone(&zone),
    }
}

/// `GET /client/v4/user/tokens/verify`: whether the token is good, and whose it is.
async fn verify_token(Extension(caller): Extension<Caller>) -> Response {
    let scopes: Vec<&str> = match &caller {
        Caller::Token(t) => t.scopes.iter().map(|s| s.name()).collect(),
        Caller::Local => crate::config::api::SCOPES.iter().map(|(n, _)| *n).collect(),
    };
    success(json!({
        "id": caller.name(),
        "status": "active",
        "scopes": scopes,
        "zones": match &caller {
            Caller::Token(t) => json!(t.zones.clone().unwrap_or_else(|| vec!["*".into()])),
            Caller::Local => json!(["*"]),
        },
    }))
}

/// The 415 for a body whose `Content-Type` is not `application/json` (parameters allowed). A
/// body without one is read as JSON: the parse then decides (400 when it is not).
pub(super) fn not_json(headers: &axum::http::HeaderMap) -> Option<Response> {
    let json = headers
        .get(axum::http::header::CONTENT_TYPE)
        .map(|v| v.to_str().unwrap_or(""))
        .is_none_or(|v| {
            let essence = v.split(';').next().unwrap_or("");
            essence.trim().eq_ignore_ascii_case("application/json")
        });
    (!json).then(|| {
        failure(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            code::NOT_JSON,
            "the body must be JSON, sent with `Content-Type: application/json`".into(),
        )
    })
}

/// The request body, or the answer to a body that could not be read: 413 (code 1015) past
/// `limit`, the extractor's own status otherwise (code 1016).
// A whole answer as the error, for `?` in handlers (as in rules.rs): a cold path.
#[allow(clippy::result_large_err)]
pub(super) fn body_bytes(
    body: Result<Bytes, BytesRejection>,
    limit: usize,
) -> Result<Bytes, Response> {
    body.map_err(|e| match e.status() {
        StatusCode::PAYLOAD_TOO_LARGE => failure(
            StatusCode::PAYLOAD_TOO_LARGE,
            code::TOO_LARGE,
            format!("the request body is larger than {limit} bytes"),
        ),
        status => failure(status, code::BAD_BODY, e.body_text()),
    })
}

/// A successful answer.
pub(super) fn success(result: Value) -> Response {
    axum::Json(json!({"success": true, "errors": [], "messages": [], "result": result}))
        .into_response()
}

/// A failed answer with `status` and one error.
pub(super) fn failure(status: StatusCode, code: u32, message: String) -> Response {
    let body = json!({
        "success": false,
        "errors": [{"code": code, "message": message}],
        "messages": [],
        "result": null,
    });
    (status, axum::Json(body)).into_response()
}

/// `POST /client/v4/zones/{zone}/purge_cache`: removes what the body names, for the next
/// request on.
async fn purge_cache(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
    headers: axum::http::HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    if let Err(denied) = caller.allow(Scope::CachePurge, Some(&zone)) {
        return denied.into_response();
    }
    if let Some(refused) = not_json(&headers) {
        return refused;
    }
    let generation = rt.generation();
    if !generation.config.zones.iter().any(|z| z.name == zone) {
        return no_zone(&zone);
    }
    let body = match body_bytes(body, MAX_BODY) {
        Ok(b) => b,
        Err(r) => return r,
    };
    let purge = match Purge::from_json(&body) {
        Ok(p) => p,
        Err(message) => return failure(StatusCode::BAD_REQUEST, code::BAD_PURGE, message),
    };
    let purged = purge::apply_off_thread(rt.cache.clone(), zone.clone(), purge.clone()).await;
    rt.announce(Announcement::Purge {
        zone: zone.clone(),
        body: body.to_vec(),
    });
    tracing::info!(
        zone,
        purged,
        caller = caller.name(),
        "cache purge: {purge:?}"
    );
    success(json!({"id": zone, "purged": purged}))
}

/// `GET /client/v4/cache`: the memory tier's size and bounds.
async fn cache_stats(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Err(denied) = caller.allow(Scope::AnalyticsRead, None) {
        return denied.into_response();
    }
    match rt.cache.as_deref() {
        Some(cache) => success(json!({
            "enabled": true,
            "objects": cache.store.len(),
            "bytes": cache.store.bytes(),
            "memory": cache.store.capacity(),
            "max_object_size": cache.max_object,
            "disk": cache.disk.as_ref().map(|d| json!({
                "objects": d.len(),
                "bytes": d.bytes(),
                "capacity": d.capacity(),
            })),
        })),
        None => success(json!({"enabled": false, "objects": 0, "bytes": 0})),
    }
}

/// `GET /client/v4/zones/{zone}/origin_health`: each origin of the zone, its pool, and
/// whether it takes traffic (with what its checks and its recent requests say).
async fn origin_health(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
    Path(zone): Path<String>,
) -> Response {
    if let Err(denied) = caller.allow(Scope::ZoneRead, Some(&zone)) {
        return denied.into_response();
    }
    let generation = rt.generation();
    let Some(z) = generation.zones().iter().find(|z| z.config.name == zone) else {
        return no_zone(&zone);
    };
    let origins: Vec<Value> = z
        .upstream
        .status()
        .into_iter()
        .map(|o| {
            json!({
                "pool": o.pool,
                "origin": o.origin,
                "weight": o.weight,
                "healthy": o.healthy,
                "health_check_up": o.checked_up,
                "backoff_seconds": o.backoff_left.as_secs_f64(),
                "last_check": o.last_check,
                "outstanding": o.outstanding,
            })
        })
        .collect();
    success(json!({"zone": zone, "origins": origins}))
}
