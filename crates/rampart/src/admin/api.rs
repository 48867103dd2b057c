//! The admin API under `/client/v4/`, in Cloudflare's shape: every answer is the envelope
//! `{"success", "errors": [{"code", "message"}], "messages", "result"}` ([`Envelope`],
//! [`Failure`]). Each handler carries its OpenAPI description (`#[utoipa::path]`), and the
//! routes are registered with it ([`routes`]), so the document served at
//! `/client/v4/openapi.json` lists exactly what is routed (see openapi.rs).

use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, Extension, Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::auth::Caller;
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

/// The routes under `/client/v4`, with their OpenAPI description (the caller puts them
/// behind [`auth::guard`]).
pub(super) fn routes() -> OpenApiRouter<Arc<Runtime>> {
    OpenApiRouter::with_openapi(<super::openapi::Base as utoipa::OpenApi>::openapi())
        .routes(routes!(verify_token))
        .routes(routes!(list_zones))
        .routes(routes!(get_zone))
        .routes(routes!(purge_cache))
        .routes(routes!(cache_stats))
        .routes(routes!(origin_health))
        .merge(super::rule_routes::routes())
        .merge(super::settings::routes())
        .merge(super::zone_settings::routes())
        .merge(super::lists::routes())
        .merge(super::analytics::routes())
        .layer(DefaultBodyLimit::max(MAX_BODY))
}

/// The 405 of a route that does not take the method (axum adds `Allow`).
pub(super) async fn wrong_method() -> Response {
    failure(
        StatusCode::METHOD_NOT_ALLOWED,
        code::METHOD,
        "Method not allowed for this route (see Allow)".into(),
    )
}

/// The 404 of a path under `/client/v4` that no route takes.
pub(super) async fn no_such_route(uri: axum::http::Uri) -> Response {
    failure(
        StatusCode::NOT_FOUND,
        code::NO_SUCH_ROUTE,
        format!("No route for the URI {uri}"),
    )
}

/// One error (or message) of an answer.
#[derive(Serialize, ToSchema)]
pub(super) struct ApiMessage {
    /// Cloudflare's code where the meaning is shared (10000 authentication, 971 rate, 7003
    /// no such object, 1004 invalid change, 1412 precondition, ...).
    pub code: u32,
    /// What went wrong, for a person.
    pub message: String,
    /// Where in the request body, for an error about a value sent.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
}

/// Where an error points into the request body.
#[derive(Serialize, ToSchema)]
pub(super) struct Source {
    /// A JSON pointer (RFC 6901) into the body sent.
    pub pointer: String,
}

/// A successful answer: Cloudflare's v4 envelope around `result`.
#[derive(Serialize, ToSchema)]
pub(super) struct Envelope<T> {
    /// True.
    pub success: bool,
    /// Empty.
    pub errors: Vec<ApiMessage>,
    /// Empty.
    pub messages: Vec<ApiMessage>,
    /// What was asked for.
    pub result: T,
    /// Where a page of a list is in the whole list.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_info: Option<ResultInfo>,
}

/// A failed answer: the envelope with its errors, and `result` null.
#[derive(Serialize, ToSchema)]
pub(super) struct Failure {
    /// False.
    pub success: bool,
    /// Why, at least one.
    #[schema(min_items = 1)]
    pub errors: Vec<ApiMessage>,
    /// Empty.
    pub messages: Vec<ApiMessage>,
    /// Null.
    pub result: (),
}

/// Null: the result of what leaves nothing to show.
#[derive(Serialize, ToSchema)]
pub(super) struct Null;

/// The place of a page in a list (Cloudflare's pagination).
#[derive(Serialize, ToSchema)]
pub(super) struct ResultInfo {
    pub page: usize,
    pub per_page: usize,
    /// Items on this page.
    pub count: usize,
    pub total_count: usize,
    pub total_pages: usize,
}

/// A zone.
#[derive(Serialize, ToSchema)]
pub(super) struct ZoneInfo {
    /// The zone's name, which is its id.
    pub id: String,
    pub name: String,
    /// `active`.
    pub status: String,
    /// The host names it serves.
    pub hosts: Vec<String>,
}

/// A zone as the API shows it.
fn zone_info(z: &crate::config::Zone) -> ZoneInfo {
    ZoneInfo {
        id: z.name.clone(),
        name: z.name.clone(),
        status: "active".into(),
        hosts: z.hosts.iter().map(|h| h.to_string()).collect(),
    }
}

/// `?page=N&per_page=M`: Cloudflare's pagination (page from 1, per_page 5 to 50, default
/// 20; a value out of range is brought into it); other parameters are left alone. `None`
/// when either is not a whole number from 0 to 2^31 - 1, as the document says.
fn page_of(query: Option<&str>) -> Option<(usize, usize)> {
    let (mut page, mut per_page) = (1, 20);
    let number = |n: &str| {
        n.parse::<i32>()
            .ok()
            .filter(|&n| n >= 0)
            .map(|n| n as usize)
    };
    for pair in query.unwrap_or("").split('&') {
        match pair.split_once('=') {
            Some(("page", n)) => page = number(n)?.max(1),
            Some(("per_page", n)) => per_page = number(n)?.clamp(5, 50),
            _ => {}
        }
    }
    Some((page, per_page))
}

/// The zones the token may read, a page of them.
#[utoipa::path(get, path = "/zones", tag = "zones", operation_id = "list_zones",
    params(
        ("page" = Option<i32>, Query, minimum = 0,
            description = "The page, from 1 (default 1; 0 is read as 1)."),
        ("per_page" = Option<i32>, Query, minimum = 0,
            description = "Zones a page, 5 to 50 (default 20; other values are brought into \
                that range)."),
    ),
    responses(
        (status = 200, description = "A page of zones.", body = Envelope<Vec<ZoneInfo>>),
        (status = 400, description = "`page` or `per_page` out of range.", body = Failure),
    ))]
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
    let shown: Vec<ZoneInfo> = zones
        .iter()
        .skip(number.saturating_sub(1).saturating_mul(per_page))
        .take(per_page)
        .map(|z| zone_info(z))
        .collect();
    let count = shown.len();
    axum::Json(Envelope {
        success: true,
        errors: vec![],
        messages: vec![],
        result: shown,
        result_info: Some(ResultInfo {
            page: number,
            per_page,
            count,
            total_count: total,
            total_pages: total.div_ceil(per_page),
        }),
    })
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

/// One zone.
#[utoipa::path(get, path = "/zones/{zone}", tag = "zones", operation_id = "get_zone",
    params(ZonePath),
    responses(
        (status = 200, description = "The zone.", body = Envelope<ZoneInfo>),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
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
        Some(z) => success(zone_info(z)),
        None => no_zone(&zone),
    }
}

/// The path parameter of a zone's resources.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Path)]
#[allow(dead_code)] // read by the extractor as a String; this only describes it
pub(super) struct ZonePath {
    /// The zone's name (its `name` in the configuration).
    zone: String,
}

/// What the API knows of the token a request came with.
#[derive(Serialize, ToSchema)]
pub(super) struct TokenStatus {
    /// The token's name (`loopback` for a configuration without tokens).
    pub id: String,
    /// `active`.
    pub status: String,
    /// What it may do.
    pub scopes: Vec<String>,
    /// The zones it may act on; `*` for all.
    pub zones: Vec<String>,
}

/// Whether the token is good, and whose it is.
#[utoipa::path(get, path = "/user/tokens/verify", tag = "tokens", operation_id = "verify_token",
    responses((status = 200, description = "The token is good.", body = Envelope<TokenStatus>)))]
async fn verify_token(Extension(caller): Extension<Caller>) -> Response {
    let scopes: Vec<String> = match &caller {
        Caller::Token(t) => t.scopes.iter().map(|s| s.name().to_string()).collect(),
        Caller::Local => crate::config::api::SCOPES
            .iter()
            .map(|(n, _)| n.to_string())
            .collect(),
    };
    success(TokenStatus {
        id: caller.name().to_string(),
        status: "active".into(),
        scopes,
        zones: match &caller {
            Caller::Token(t) => t.zones.clone().unwrap_or_else(|| vec!["*".into()]),
            Caller::Local => vec!["*".into()],
        },
    })
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
pub(super) fn success<T: Serialize>(result: T) -> Response {
    axum::Json(Envelope {
        success: true,
        errors: vec![],
        messages: vec![],
        result,
        result_info: None,
    })
    .into_response()
}

/// A failed answer with `status` and these errors.
pub(super) fn failures(status: StatusCode, errors: Vec<ApiMessage>) -> Response {
    let body = Failure {
        success: false,
        errors,
        messages: vec![],
        result: (),
    };
    (status, axum::Json(body)).into_response()
}

/// A failed answer with `status` and one error.
pub(super) fn failure(status: StatusCode, code: u32, message: String) -> Response {
    failures(
        status,
        vec![ApiMessage {
            code,
            message,
            source: None,
        }],
    )
}

/// What a purge removes: exactly one of its keys (Cloudflare's purge body).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
#[schema(min_properties = 1, max_properties = 1)]
#[allow(dead_code)] // read by `Purge::from_json`; this only describes it
pub(super) struct PurgeRequest {
    /// Everything the zone has in the cache.
    #[schema(nullable = false, schema_with = only_true)]
    purge_everything: Option<bool>,
    /// These URLs (each a string, or `{"url": ...}`), every variant of each.
    #[schema(nullable = false, min_items = 1, max_items = 30)]
    files: Option<Vec<FileItem>>,
    /// Every URL that starts with one of these (`host/path`).
    #[schema(nullable = false, min_items = 1, max_items = 30)]
    prefixes: Option<Vec<String>>,
    /// Everything cached for these hosts.
    #[schema(nullable = false, min_items = 1, max_items = 30)]
    hosts: Option<Vec<String>>,
    /// Everything whose `Cache-Tag` names one of these.
    #[schema(nullable = false, min_items = 1, max_items = 30)]
    tags: Option<Vec<String>>,
}

/// A URL to purge.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
#[allow(dead_code)] // describes what `Purge::from_json` reads
pub(super) enum FileItem {
    /// The URL.
    Url(String),
    /// The URL, with the headers Cloudflare takes (not used: every variant is purged).
    Object {
        url: String,
        #[schema(nullable = false)]
        headers: Option<std::collections::HashMap<String, String>>,
    },
}

fn only_true() -> utoipa::openapi::Object {
    super::schema::one_of(utoipa::openapi::Type::Boolean, [true])
}

/// What a purge did.
#[derive(Serialize, ToSchema)]
pub(super) struct Purged {
    /// The zone.
    pub id: String,
    /// Objects removed from this node's cache (other nodes are told, and purge their own).
    pub purged: u64,
}

/// Removes what the body names from the zone's cache, for the next request on.
#[utoipa::path(post, path = "/zones/{zone}/purge_cache", tag = "cache",
    operation_id = "purge_cache", params(ZonePath),
    request_body(content = PurgeRequest, content_type = "application/json"),
    responses(
        (status = 200, description = "Purged.", body = Envelope<Purged>),
        (status = 400, description = "The body names nothing to purge (code 1012).",
            body = Failure),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
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
    success(Purged {
        id: zone,
        purged: purged as u64,
    })
}

/// The cache's size and bounds.
#[derive(Serialize, ToSchema)]
pub(super) struct CacheStats {
    /// Whether the configuration has a `[cache]`.
    pub enabled: bool,
    /// Objects in memory.
    pub objects: u64,
    /// Their bytes.
    pub bytes: u64,
    /// The memory tier's bound, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub memory: Option<u64>,
    /// The largest object kept, in bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_object_size: Option<u64>,
    /// The disk tier, when there is one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub disk: Option<DiskStats>,
}

/// The cache's disk tier.
#[derive(Serialize, ToSchema)]
pub(super) struct DiskStats {
    pub objects: u64,
    pub bytes: u64,
    /// Its bound, in bytes.
    pub capacity: u64,
}

/// The cache's size and bounds (memory and disk tiers).
#[utoipa::path(get, path = "/cache", tag = "cache", operation_id = "cache_stats",
    responses((status = 200, description = "The cache now.", body = Envelope<CacheStats>)))]
async fn cache_stats(
    State(rt): State<Arc<Runtime>>,
    Extension(caller): Extension<Caller>,
) -> Response {
    if let Err(denied) = caller.allow(Scope::AnalyticsRead, None) {
        return denied.into_response();
    }
    success(match rt.cache.as_deref() {
        Some(cache) => CacheStats {
            enabled: true,
            objects: cache.store.len() as u64,
            bytes: cache.store.bytes() as u64,
            memory: Some(cache.store.capacity() as u64),
            max_object_size: Some(cache.max_object),
            disk: cache.disk.as_ref().map(|d| DiskStats {
                objects: d.len() as u64,
                bytes: d.bytes(),
                capacity: d.capacity(),
            }),
        },
        None => CacheStats {
            enabled: false,
            objects: 0,
            bytes: 0,
            memory: None,
            max_object_size: None,
            disk: None,
        },
    })
}

/// A zone's origins and whether each takes traffic.
#[derive(Serialize, ToSchema)]
pub(super) struct OriginHealth {
    pub zone: String,
    pub origins: Vec<OriginState>,
}

/// One origin of a zone, as its health checks and its recent requests say.
#[derive(Serialize, ToSchema)]
pub(super) struct OriginState {
    /// Its pool.
    pub pool: String,
    /// Its address, as configured.
    pub origin: String,
    pub weight: u32,
    /// Whether it takes traffic now.
    pub healthy: bool,
    /// What its last health check said.
    pub health_check_up: bool,
    /// How long it is still left out after failures, in seconds.
    pub backoff_seconds: f64,
    /// When it was last checked (RFC 3339), if it has health checks.
    pub last_check: Option<String>,
    /// Requests it is serving now.
    pub outstanding: u64,
}

/// Each origin of the zone, its pool, and whether it takes traffic (with what its checks and
/// its recent requests say).
#[utoipa::path(get, path = "/zones/{zone}/origin_health", tag = "zones",
    operation_id = "origin_health", params(ZonePath),
    responses(
        (status = 200, description = "The zone's origins.", body = Envelope<OriginHealth>),
        (status = 404, description = "No such zone (code 7003).", body = Failure),
    ))]
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
    let origins = z
        .upstream
        .status()
        .into_iter()
        .map(|o| OriginState {
            pool: o.pool,
            origin: o.origin,
            weight: o.weight,
            healthy: o.healthy,
            health_check_up: o.checked_up,
            backoff_seconds: o.backoff_left.as_secs_f64(),
            last_check: o.last_check,
            outstanding: o.outstanding as u64,
        })
        .collect();
    success(OriginHealth { zone, origins })
}
