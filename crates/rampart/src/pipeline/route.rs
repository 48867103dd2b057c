//! Route phase: the Host (or the absolute-form authority) picks the zone.

use super::{Decision, Rejection, RequestContext};
use crate::errors::EdgeError;

/// Chooses the zone for the request: exact host names before wildcards, the longest wildcard
/// first. An IP literal gets 403 / 1003, a host no zone serves 409 / 1001.
pub fn route(ctx: &mut RequestContext<'_>) -> Decision {
    let Some(host) = ctx.head.host() else {
        return Decision::Reject(Rejection::new(
            EdgeError::DnsResolutionError,
            "the request names no host (an HTTP/1.0 request without a Host header field), so no site can be chosen",
        ));
    };
    if host.is_ip_literal() {
        return Decision::Reject(Rejection::new(
            EdgeError::DirectIpAccess,
            format!("the request's host `{}` is an IP address", host.host()),
        ));
    }
    match ctx.generation.router.find(host.host()) {
        Some(zone) => {
            ctx.zone = Some(zone.clone());
            Decision::Continue
        }
        None => Decision::Reject(Rejection::new(
            EdgeError::DnsResolutionError,
            format!("no site on this edge serves the host `{}`", host.host()),
        )),
    }
}
