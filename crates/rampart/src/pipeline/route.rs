//! Route phase: the Host (or the absolute-form authority) picks the zone, whose URL
//! normalisation then gives the path the rules see.

use super::{Decision, PhaseEnv, RequestContext};
use crate::errors::{EdgeError, Rejection};

/// Chooses the zone for the request: exact host names before wildcards, the longest wildcard
/// first. An IP literal gets 403 / 1003, a host no zone serves 409 / 1001.
pub fn route(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    let Some(host) = ctx.head.host() else {
        return Decision::Reject(Rejection::explained(
            EdgeError::DnsResolutionError,
            "the request names no host (an HTTP/1.0 request without a Host header field), so no site can be chosen",
        ));
    };
    if host.is_ip_literal() {
        return Decision::Reject(Rejection::explained(
            EdgeError::DirectIpAccess,
            format!("the request's host `{}` is an IP address", host.host()),
        ));
    }
    match ctx.generation.router.find(host.host()) {
        Some(zone) => {
            // Every later phase judges the one spelling of the path the zone's
            // normalisation gives.
            if let Some(kind) = zone.config.request.url_normalization.for_rules() {
                ctx.rules.fields().normalize(kind);
            }
            ctx.zone = Some(zone.clone());
            Decision::Continue
        }
        None => Decision::Reject(Rejection::explained(
            EdgeError::DnsResolutionError,
            format!("no site on this edge serves the host `{}`", host.host()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::TestRequest;

    const CONFIG: &str = "[server]\naccess_log = \"off\"\nadmin_listen = \"off\"\n\n[[zone]]\nname = \"exact\"\nhosts = [\"www.a.test\"]\norigin = \"http://127.0.0.1:9\"\n\n[[zone]]\nname = \"wild\"\nhosts = [\"*.a.test\"]\norigin = \"http://127.0.0.1:9\"\n";

    fn routed(raw: &str) -> (Result<String, (u16, Option<u16>)>, String) {
        let t = TestRequest::new(CONFIG, raw, "192.0.2.1");
        t.at(0, |ctx, env| match route(ctx, env) {
            Decision::Continue => (Ok(ctx.zone_name().unwrap_or("").to_string()), String::new()),
            Decision::Reject(r) => (Err((r.status(), r.error.entry().code)), r.detail),
            Decision::Respond(_) => panic!("route never answers with a page"),
        })
    }

    #[test]
    fn exact_names_win_over_wildcards_and_case_does_not_matter() {
        let get = |host: &str| format!("GET / HTTP/1.1\r\nHost: {host}\r\n\r\n");
        assert_eq!(routed(&get("www.a.test")).0, Ok("exact".into()));
        assert_eq!(routed(&get("WWW.A.TEST:8080")).0, Ok("exact".into()));
        assert_eq!(routed(&get("api.a.test")).0, Ok("wild".into()));
        assert_eq!(routed(&get("x.y.a.test")).0, Ok("wild".into()));
    }

    #[test]
    fn unknown_hosts_get_1001_and_ip_literals_1003() {
        let (r, detail) = routed("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n");
        assert_eq!(r, Err((409, Some(1001))), "the apex is not under *.a.test");
        assert!(detail.contains("`a.test`"), "{detail}");
        assert_eq!(
            routed("GET / HTTP/1.1\r\nHost: 192.0.2.7\r\n\r\n").0,
            Err((403, Some(1003)))
        );
        assert_eq!(
            routed("GET / HTTP/1.1\r\nHost: [2001:db8::1]\r\n\r\n").0,
            Err((403, Some(1003)))
        );
        assert_eq!(routed("GET / HTTP/1.0\r\n\r\n").0, Err((409, Some(1001))));
    }
}
