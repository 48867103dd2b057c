//! The admin listener, on axum: `/metrics` (Prometheus text), `/healthz`, the dashboard at
//! `/`, and the API under `/client/v4/` in Cloudflare's shape, behind API tokens and rate
//! limits ([`auth`]), described by the OpenAPI document at `/client/v4/openapi.json`
//! ([`openapi`]). `/metrics`, `/healthz`, the dashboard's page and the document need no token.
//!
//! The admin plane is not the hot path: a framework's routing and extractors serve it better
//! than hand-written parsing, and hyper is strict enough for it.

mod analytics;
mod api;
pub mod auth;
pub mod client;
mod dashboard;
mod document;
mod lists;
mod openapi;
mod rule_routes;
mod rules;
mod schema;
mod settings;
mod zone_settings;

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;

use crate::runtime::Runtime;

/// Serves the admin endpoints on `listener` until the task is aborted.
pub async fn serve(listener: TcpListener, rt: Arc<Runtime>) {
    let app = router(rt).into_make_service_with_connect_info::<std::net::SocketAddr>();
    if let Err(e) = axum::serve(listener, app).await {
        tracing::error!("the admin listener stopped: {e}");
    }
}

/// Every admin route.
fn router(rt: Arc<Runtime>) -> Router {
    let guard = auth::GuardState {
        rt: rt.clone(),
        limits: Arc::new(auth::Limits::new()),
    };
    let (api, document) = api::routes().split_for_parts();
    let document: Arc<[u8]> = serde_json::to_vec(&openapi::finish(document))
        .expect("the OpenAPI document serialises")
        .into();
    let api = api
        .route_layer(axum::middleware::from_fn_with_state(guard, auth::guard))
        // The document is public, as Cloudflare's is: it describes the API, not a zone.
        .route(
            "/openapi.json",
            get(move || async move {
                (
                    [(header::CONTENT_TYPE, "application/json")],
                    axum::body::Bytes::from_owner(document.clone()),
                )
            }),
        )
        .method_not_allowed_fallback(api::wrong_method)
        .fallback(api::no_such_route);
    Router::new()
        .route("/metrics", get(metrics).fallback(only_get))
        .route("/healthz", get(|| async { "ok\n" }).fallback(only_get))
        .route("/", get(dashboard::page).fallback(only_get))
        .nest("/client/v4", api)
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found: try /metrics\n") })
        .with_state(rt)
}

async fn metrics(axum::extract::State(rt): axum::extract::State<Arc<Runtime>>) -> Response {
    if let Some(cache) = &rt.cache {
        rt.metrics
            .cache_size(cache.store.len(), cache.store.bytes());
    }
    rt.metrics
        .analytics_unwritten(rt.analytics.unwritten_minutes());
    let generation = rt.generation();
    let statuses: Vec<(&str, Vec<crate::upstream::OriginStatus>)> = generation
        .zones()
        .iter()
        .filter(|z| !z.config.origins.is_single())
        .map(|z| (z.config.name.as_str(), z.upstream.status()))
        .collect();
    rt.metrics
        .origin_health(statuses.iter().flat_map(|(zone, list)| {
            list.iter().map(|o| {
                (
                    *zone,
                    o.pool.as_str(),
                    o.origin.as_str(),
                    o.healthy,
                    o.outstanding,
                )
            })
        }));
    let body = rt.metrics.encode();
    let mut response = body.into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/openmetrics-text; version=1.0.0; charset=utf-8"),
    );
    response
}

/// 405 for what is not GET or HEAD, with `Allow`.
async fn only_get() -> Response {
    let mut response = (StatusCode::METHOD_NOT_ALLOWED, "only GET and HEAD\n").into_response();
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("GET, HEAD"));
    response
}
