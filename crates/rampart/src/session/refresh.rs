//! Refreshing a stale object in the background while it is served (`stale-while-revalidate`,
//! UPDATING): one origin request per key at a time, with the stale copy's validators, that
//! no client waits for.

use std::convert::Infallible;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use rampart_cache::object::Object;

use super::cached::{CacheUse, Decision, Fill, Plan};
use crate::cache::{EdgeCache, Join};
use crate::message::{BodyStream, ResponseHead};
use crate::pipeline::RequestContext;
use crate::runtime::Runtime;
use crate::upstream::{ClientSide, OriginRequest, Policy};

/// The client side of a background request: no body, no interim responses to relay, and
/// nobody to leave.
struct NoClient;

impl ClientSide for NoClient {
    type Abort = Infallible;

    async fn body_chunk(&mut self) -> Result<Option<Bytes>, Infallible> {
        Ok(None)
    }

    fn body_taken(&self) -> u64 {
        0
    }

    async fn interim(&mut self, _head: ResponseHead) -> Result<(), Infallible> {
        Ok(())
    }

    async fn gone(&mut self) -> Infallible {
        std::future::pending().await
    }
}

/// Starts refreshing `stale` (stored under `plan`) from the origin, unless a request for its
/// key is already in flight. The request is `ctx`'s, without its body (it is a GET).
pub(super) fn spawn(
    rt: &Runtime,
    ctx: &RequestContext<'_>,
    cache: &Arc<EdgeCache>,
    plan: &Plan,
    stale: &Arc<Object>,
) {
    let Some(zone) = ctx.zone.clone() else {
        return;
    };
    let cache = cache.clone();
    let plan = plan.clone();
    let stale = stale.clone();
    let metrics = rt.metrics.clone();
    let head = ctx.head.clone();
    let policy = Policy::of(&zone.config, &ctx.generation.config.limits);
    let target = super::send::origin_target(ctx).map(str::to_string);
    let client_ip_header = ctx.generation.config.server.trusted_proxies.header.clone();
    let (client_ip, tls, protocol, ray_id) = (ctx.client_ip, ctx.tls, ctx.protocol, ctx.ray_id);
    let edits = ctx.origin_edits.clone();
    let started_at = SystemTime::now();
    tokio::spawn(async move {
        let Join::Leader(_guard) = cache.join(&plan.key) else {
            return;
        };
        let fill = Fill::revalidation(&plan, &stale);
        let added = CacheUse::Fill(fill).added_fields();
        let request = OriginRequest {
            head: &head,
            client_ip,
            tls,
            protocol,
            ray_id,
            target: target.as_deref(),
            underscores: zone.config.request.underscores_in_headers,
            client_ip_header: client_ip_header.as_deref(),
            added: &added,
            edits: &edits,
        };
        let fetched = zone
            .upstream
            .fetch(
                &policy,
                &metrics,
                &zone.config.name,
                &request,
                &mut NoClient,
            )
            .await;
        let Ok(mut response) = fetched else {
            tracing::debug!(key = plan.key, "background refresh: the origin failed");
            return;
        };
        let authorization = head.header("authorization").is_some();
        let fill_request = plan.fill_request(&zone.config.name, authorization, started_at);
        let decision = super::cached::decide(
            &cache,
            &head,
            &response.head,
            response.kind,
            &fill,
            &fill_request,
        );
        match decision {
            Decision::Freshened(object) => {
                cache.put(&plan.key, object, |h| head.header(h));
            }
            Decision::Fill(mut filling) => loop {
                let Ok(piece) = response.body.next_piece().await else {
                    return;
                };
                if !filling.push(piece.data) {
                    return;
                }
                if piece.last {
                    let (key, object) = filling.finish();
                    cache.put(&key, object, |h| head.header(h));
                    return;
                }
            },
            Decision::Relay(_) => {
                // Not storable any more: the stale copy goes, so that the next request asks
                // the origin.
                cache.store.remove(&plan.key);
            }
        }
    });
}
