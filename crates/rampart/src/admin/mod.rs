//! The admin listener, on axum: `/metrics` (Prometheus text), `/healthz`, and the API under
//! `/client/v4/` in Cloudflare's shape (today: token verification, cache purge, cache
//! statistics, origin health), behind API tokens and rate limits ([`auth`]). `/metrics` and
//! `/healthz` need no token.
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
mod rules;
mod settings;

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
    Router::new()
        .route("/metrics", get(metrics).fallback(only_get))
        .route("/healthz", get(|| async { "ok\n" }).fallback(only_get))
        .route("/", get(dashboard::page).fallback(only_get))
        .nest("/client/v4", api::routes(guard))
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
