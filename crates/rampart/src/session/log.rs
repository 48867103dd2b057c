//! The end of a request: its metrics and its access log line, from its context.

use crate::analytics::Sample;
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
    let head = ctx.head;
    let deciding = ctx.security.as_ref().or(ctx.logged.first());
    rt.analytics.record(&Sample {
        at: ctx.started_at,
        zone: zone.unwrap_or(""),
        status,
        error_code: ctx.log.error_code,
        source: deciding.map_or("", |m| m.source),
        action: deciding.map_or("", |m| m.action),
        rule_id: deciding.map_or("", |m| m.rule_id.as_str()),
        country: ctx.geo.country.as_deref().unwrap_or(""),
        cache: ctx.log.cache_status.unwrap_or(""),
        bytes: ctx.log.edge_response_bytes,
        path: head.path(),
        client_ip: ctx.client_ip,
        asn: ctx.geo.asn.unwrap_or(0),
        user_agent: head.header("user-agent").unwrap_or(b""),
        ray_id: ctx.ray_id.as_str(),
        method: head.method(),
    });
    if !rt.log.enabled() {
        return;
    }
    let mut sources: Vec<&'static str> = Vec::new();
    for m in ctx.security.iter().chain(&ctx.logged) {
        if !sources.contains(&m.source) {
            sources.push(m.source);
        }
    }
    // Headers are looked up only for the fields the lines hold.
    let header = |field, name| match rt.log.logs(field) {
        true => head.header(name).unwrap_or(b""),
        false => b"",
    };
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
        user_agent: header(LogField::ClientRequestUserAgent, "user-agent"),
        referer: header(LogField::ClientRequestReferer, "referer"),
        country: ctx.geo.country.as_deref().unwrap_or(""),
        asn: ctx.geo.asn.unwrap_or(0),
        security: deciding,
        sources: &sources,
    };
    rt.log.write(&info, &ctx.log);
}
