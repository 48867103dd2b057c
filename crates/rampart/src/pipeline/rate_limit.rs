//! Rate limiting phase: count requests per rule and key, and answer 429 / 1015 with the exact
//! Retry-After once a key is over its rate.

use std::sync::Arc;

use rampart_ratelimit::{Counting, Decision as RlDecision, Key};
use rampart_rules::ExecutionContext;

use super::{Decision, PhaseEnv, PhaseId, RequestContext};
use crate::config::security::{Characteristic, RateLimitAction, RateLimitRule};
use crate::errors::{EdgeError, Rejection};
use crate::observe::SecurityMatch;
use crate::state::RateLimiter;

/// A hit to count after the response, for rules with a counting expression.
pub struct DeferredHit {
    /// The rule.
    pub rule: Arc<RateLimitRule>,
    key: Key,
}

fn key_for(limiter: &RateLimiter, rule: &RateLimitRule, ctx: &RequestContext<'_>) -> Key {
    let mut parts = limiter.keys.start();
    parts.part(rule.id.as_bytes());
    if rule.quota.counting() == Counting::SlidingWindow {
        // A sliding window's packed counters are read in its quota's layout: a reload that
        // changes the numbers starts the rule's keys afresh (GCRA states are clamped).
        let q = &rule.quota;
        parts.part(&q.requests_per_period().to_be_bytes());
        parts.part(&q.period_secs().to_be_bytes());
    }
    let head = ctx.head;
    for c in &rule.characteristics {
        match c {
            Characteristic::IpSrc => match ctx.client_ip {
                std::net::IpAddr::V4(v4) => parts.part(&v4.octets()),
                std::net::IpAddr::V6(v6) => parts.part(&v6.octets()),
            },
            Characteristic::Host => parts.part(head.host_name().unwrap_or("").as_bytes()),
            Characteristic::Path => parts.part(ctx.rules.fields().path().as_bytes()),
            Characteristic::Asn => parts.part(&ctx.geo.asn.unwrap_or(0).to_be_bytes()),
            Characteristic::Country => {
                parts.part(ctx.geo.country.as_deref().unwrap_or("").as_bytes())
            }
            Characteristic::Header(name) => parts.part(head.header(name).unwrap_or(b"")),
            Characteristic::Cookie(name) => parts.part(cookie(head, name).unwrap_or(b"")),
            Characteristic::Query(name) => parts.part(
                query_arg(head.query().unwrap_or(""), name)
                    .unwrap_or("")
                    .as_bytes(),
            ),
        };
    }
    parts.finish()
}

/// The value of the cookie `name` in the request's Cookie fields.
pub fn cookie<'h>(head: &'h rampart_http::RequestHead, name: &str) -> Option<&'h [u8]> {
    head.headers()
        .filter(|(n, _)| n.eq_ignore_ascii_case("cookie"))
        .flat_map(|(_, v)| v.split(|&b| b == b';'))
        .find_map(|pair| {
            let pair = pair.trim_ascii();
            let eq = pair.iter().position(|&b| b == b'=')?;
            (pair[..eq].trim_ascii() == name.as_bytes()).then(|| pair[eq + 1..].trim_ascii())
        })
}

fn query_arg<'q>(query: &'q str, name: &str) -> Option<&'q str> {
    query.split('&').find_map(|pair| {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        (k == name).then_some(v)
    })
}

/// Checks every rule that applies to the request, in order. The first rule over its rate
/// with action `block` answers 429; `log` rules over their rate are recorded; a challenge
/// rule over its rate challenges a client without a clearance.
pub fn rate_limit(ctx: &mut RequestContext<'_>, env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    if ctx.skipped.contains(PhaseId::RateLimit) {
        return Decision::Continue;
    }
    let limiter = ctx.generation.rate_limiter.clone();
    let now = limiter.clock(env.now);
    for rule in &zone.config.security.rate_limits {
        if !rule.filter.execute(ctx.rules.exec()) {
            continue;
        }
        let key = key_for(&limiter, rule, ctx);
        let decision = if rule.counting.is_some() {
            ctx.deferred_hits.push(DeferredHit {
                rule: rule.clone(),
                key,
            });
            limiter.store().check(key, &rule.quota, now)
        } else {
            limiter.store().check_and_hit(key, &rule.quota, now)
        };
        let RlDecision::Limit {
            retry_after_secs,
            status,
        } = decision
        else {
            continue;
        };
        let event = SecurityMatch {
            action: match rule.action {
                RateLimitAction::Block => "block",
                RateLimitAction::Log => "log",
                RateLimitAction::Challenge(kind) => kind.name(),
            },
            rule_id: rule.id.clone(),
            description: rule.description.clone(),
            source: "rateLimit",
        };
        match rule.action {
            RateLimitAction::Log => {
                ctx.logged.push(event);
                continue;
            }
            // Over the rate, a client is challenged; one that passes goes on.
            RateLimitAction::Challenge(kind) => {
                match super::challenge::challenge(ctx, env, kind, event) {
                    Decision::Continue => continue,
                    challenged => return challenged,
                }
            }
            RateLimitAction::Block => {}
        }
        ctx.security = Some(event);
        let q = &rule.quota;
        let detail = format!(
            "more than {} requests in {} seconds matched the rate limiting rule `{}`; requests are accepted again in {retry_after_secs} seconds",
            q.requests_per_period(),
            q.period_secs(),
            rule.id
        );
        let mut rejection = Rejection::explained(EdgeError::RateLimited, detail);
        rejection.retry_after = Some(u32::try_from(retry_after_secs).unwrap_or(u32::MAX));
        rejection
            .headers
            .push(("ratelimit-policy", q.policy_field(&rule.id).to_string()));
        rejection
            .headers
            .push(("ratelimit", status.ratelimit_field(&rule.id).to_string()));
        rejection.response = rule.response.clone();
        return Decision::Reject(rejection);
    }
    Decision::Continue
}

/// Response phase: counts the deferred hits whose counting expression matches now that the
/// response status is known.
pub fn count_after_response(ctx: &RequestContext<'_>, exec: &ExecutionContext<'_>, env: &PhaseEnv) {
    let limiter = &ctx.generation.rate_limiter;
    let now = limiter.clock(env.now);
    for hit in &ctx.deferred_hits {
        if hit.rule.counting.as_ref().is_some_and(|c| c.execute(exec)) {
            limiter.store().hit(hit.key, &hit.rule.quota, now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_args_are_found_by_exact_name() {
        assert_eq!(query_arg("a=1&user=bob&b", "user"), Some("bob"));
        assert_eq!(query_arg("a=1&b", "b"), Some(""));
        assert_eq!(query_arg("username=x", "user"), None);
    }
}

#[cfg(test)]
mod phase_tests {
    use super::*;
    use crate::pipeline::testing::{TestRequest, zone_config};

    const RULE: &str = r#"
[[zone.rate_limit]]
id = "per-ip"
expression = 'http.request.uri.path eq "/login"'
characteristics = ["ip.src"]
period = 10
requests_per_period = 2
"#;

    /// Runs the phase for a request at `at` seconds: its status and Retry-After.
    fn at(t: &TestRequest, secs: u64) -> Option<(u16, Option<u32>)> {
        t.at(secs, |ctx, env| {
            assert!(matches!(
                crate::pipeline::route::route(ctx, env),
                Decision::Continue
            ));
            match rate_limit(ctx, env) {
                Decision::Reject(r) => Some((r.status(), r.retry_after)),
                _ => None,
            }
        })
    }

    #[test]
    fn the_rate_is_counted_on_the_phase_clock_with_an_exact_retry_after() {
        const LOGIN: &str = "POST /login HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n";
        let login = TestRequest::new(&zone_config(RULE), LOGIN, "192.0.2.1");
        assert_eq!(at(&login, 100), None);
        assert_eq!(at(&login, 100), None);
        assert_eq!(
            at(&login, 100),
            Some((429, Some(5))),
            "one request per 5 s after the burst"
        );
        assert_eq!(at(&login, 104), Some((429, Some(1))));
        assert_eq!(at(&login, 105), None);
        assert_eq!(at(&login, 105), Some((429, Some(5))));
        // Another client has a counter of its own; another path is not counted.
        let other = login.another(LOGIN, "192.0.2.2");
        assert_eq!(at(&other, 105), None);
        let home = login.another("GET / HTTP/1.1\r\nHost: a.test\r\n\r\n", "192.0.2.1");
        assert_eq!(at(&home, 105), None);
    }

    #[test]
    fn a_sliding_window_rule_waits_for_the_period_to_pass() {
        const LOGIN: &str = "POST /login HTTP/1.1\r\nHost: a.test\r\nContent-Length: 0\r\n\r\n";
        let rule = format!("{RULE}algorithm = \"sliding_window\"\n");
        let login = TestRequest::new(&zone_config(&rule), LOGIN, "192.0.2.1");
        assert_eq!(at(&login, 100), None);
        assert_eq!(at(&login, 100), None);
        // Two per 10 s in 23 sub-windows: the two leave with their sub-window, at 110.435 s.
        assert_eq!(at(&login, 100), Some((429, Some(11))));
        // Where GCRA would admit one at 105 s, the sliding window still refuses.
        assert_eq!(at(&login, 105), Some((429, Some(6))));
        assert_eq!(at(&login, 110), Some((429, Some(1))));
        assert_eq!(at(&login, 111), None);
        assert_eq!(at(&login, 111), None);
        assert_eq!(at(&login, 111), Some((429, Some(11))));
    }
}
