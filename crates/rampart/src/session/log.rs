//! The end of a request: its metrics and its access log line, from its context.

use crate::config::LogField;
use crate::observe::{Finished, RequestInfo};
use crate::pipeline::RequestContext;
use crate::runtime::Runtime;

/// Counts the request and writes its log line.
pub(super) fn finish(rt: &Runtime, ctx: &RequestContext<'_>) {
    let zone = ctx.zone_name();
    let status = ctx.log.edge_response_status;
    let origin = ctx.log.origin_response_status;
    rt.metrics.finished(&Finished {
        zone: zone.unwrap_or(""),
        protocol: ctx.protocol.as_str(),
        status,
        cache: ctx
            .log
            .cache_status
            .map(|s| (s, ctx.log.cache_response_bytes)),
        origin: (origin != 0).then_some((origin, ctx.log.origin_response_duration)),
    });
    if status == 499 {
        rt.metrics.client_closed(zone);
    }
    if ctx.log.cut_short {
        rt.metrics.cut_short(zone);
    }
    for m in ctx.security.iter().chain(&ctx.logged) {
        rt.metrics
            .security_action(zone.unwrap_or(""), m.action, m.source);
    }
    let mut sources: Vec<&'static str> = Vec::new();
    for m in ctx.security.iter().chain(&ctx.logged) {
        if !sources.contains(&m.source) {
            sources.push(m.source);
        }
    }
    let head = ctx.head;
    // Headers are looked up only for what uses them: the user agent always (analytics' top
    // list), the referer when the lines hold it.
    let info = RequestInfo {
        ray_id: ctx.ray_id.as_str(),
        zone: zone.unwrap_or(""),
        started_at: ctx.started_at,
        client_ip: ctx.client_ip,
        client_port: ctx.peer.port(),
        host: head.host_name().unwrap_or(""),
        method: head.method(),
        uri: head.target(),
        path: head.path(),
        protocol: ctx.protocol.as_str(),
        scheme: if ctx.tls { "https" } else { "http" },
        user_agent: head.header("user-agent").unwrap_or(b""),
        referer: match rt.log.logs(LogField::ClientRequestReferer) {
            true => head.header("referer").unwrap_or(b""),
            false => b"",
        },
        country: ctx.geo.country.as_deref().unwrap_or(""),
        asn: ctx.geo.asn.unwrap_or(0),
        security: ctx.security.as_ref().or(ctx.logged.first()),
        sources: &sources,
    };
    rt.analytics.record(&info, &ctx.log);
    rt.log.write(&info, &ctx.log);
}
