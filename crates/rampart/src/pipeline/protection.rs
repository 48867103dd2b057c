//! The zone-wide protections that need no rule: the Browser Integrity Check and the
//! security level. Both run after the custom rules, so a `skip` rule can turn either off
//! for what it matches (`skip = ["bic"]`, `skip = ["security_level"]`).

use rampart_challenge::bic;

use super::challenge::{ENDPOINT, challenge};
use super::{Decision, PhaseEnv, RequestContext};
use crate::config::challenge::{ChallengeKind, SecurityLevel};
use crate::errors::{EdgeError, Rejection};
use crate::observe::SecurityMatch;

/// Phase: the Browser Integrity Check (403 / 1010), when the zone has it on.
pub fn browser_integrity(ctx: &mut RequestContext<'_>, _env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.as_ref() else {
        return Decision::Continue;
    };
    if !zone.config.challenge.browser_integrity_check {
        return Decision::Continue;
    }
    let mut seen = bic::Seen::of(ctx.head.headers().raw());
    // HTTP/2's WebSocket (extended CONNECT) has no Upgrade field.
    seen.upgrade |= ctx.head.method() == "CONNECT";
    let Some(failed) = bic::check(&seen) else {
        return Decision::Continue;
    };
    ctx.security = Some(SecurityMatch {
        action: "block",
        rule_id: failed.id.to_string(),
        description: failed.reason.to_string(),
        source: "bic",
    });
    Decision::Reject(Rejection::new(
        EdgeError::BrowserIntegrity,
        format!("browser integrity check `{}`: {}", failed.id, failed.reason),
    ))
}

/// Phase: the security level. A client whose threat score is over the level's threshold
/// gets a managed challenge; under attack, every client without a clearance gets a JS
/// challenge.
pub fn security_level(ctx: &mut RequestContext<'_>, env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.as_ref() else {
        return Decision::Continue;
    };
    let level = zone.config.challenge.security_level;
    let score = ctx.rules.fields().threat().unwrap_or(0);
    if !level.challenges(score) || ctx.head.path() == ENDPOINT {
        return Decision::Continue;
    }
    let (kind, why) = match level {
        SecurityLevel::UnderAttack => (
            ChallengeKind::Js,
            "the zone is under attack: every visitor is challenged".to_string(),
        ),
        _ => (
            ChallengeKind::Managed,
            format!("threat score {score} is over the security level's threshold"),
        ),
    };
    let name = SecurityLevel::NAMES
        .iter()
        .find(|(_, l)| *l == level)
        .map_or("", |(n, _)| n);
    challenge(
        ctx,
        env,
        kind,
        SecurityMatch {
            action: kind.name(),
            rule_id: name.to_string(),
            description: why,
            source: "securitylevel",
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{TestRequest, run_phases, zone_config};

    fn outcome(extra: &str, raw: &str) -> (Option<u16>, Option<&'static str>) {
        let t = TestRequest::new(&zone_config(extra), raw, "192.0.2.1");
        t.at(0, |ctx, env| {
            let status = match run_phases(ctx, env) {
                Decision::Continue => None,
                Decision::Respond(r) => Some(r.head.status()),
                Decision::Reject(r) => Some(r.status()),
            };
            (status, ctx.security.as_ref().map(|s| s.source))
        })
    }

    #[test]
    fn the_integrity_check_refuses_a_request_without_user_agent_unless_skipped() {
        let raw = "GET /hooks/x HTTP/1.1\r\nHost: a.test\r\n\r\n";
        assert_eq!(
            outcome("browser_integrity_check = true\n", raw),
            (Some(403), Some("bic"))
        );
        assert_eq!(
            outcome("browser_integrity_check = false\n", raw),
            (None, None)
        );
        let skip = "browser_integrity_check = true\n[[zone.custom_rule]]\nexpression = 'starts_with(http.request.uri.path, \"/hooks/\")'\naction = \"skip\"\nskip = [\"bic\"]\n";
        assert_eq!(outcome(skip, raw).0, None);
        let curl = "GET / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: curl/8\r\n\r\n";
        assert_eq!(outcome("browser_integrity_check = true\n", curl).0, None);
    }

    #[test]
    fn under_attack_challenges_until_a_clearance_for_this_client_comes_back() {
        let extra = "security_level = \"under_attack\"\n";
        let raw = "GET / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: ua\r\nAccept: text/html\r\n\r\n";
        assert_eq!(outcome(extra, raw), (Some(403), Some("securitylevel")));
        // A clearance the zone's keys signed for this client passes; for another, it does not.
        let t = TestRequest::new(&zone_config(extra), raw, "192.0.2.1");
        let keys = t.generation.challenge_keys();
        let signed = |ip: &str| {
            let client = rampart_challenge::Client {
                ip: ip.parse().unwrap(),
                user_agent: b"ua",
            };
            keys.clearance("a", &client, 1_800_000_000 + 60)
        };
        for (ip, expected) in [("192.0.2.1", None), ("192.0.2.2", Some(403))] {
            let raw = format!(
                "GET / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: ua\r\nAccept: text/html\r\nCookie: rampart_clearance={}\r\n\r\n",
                signed(ip)
            );
            let status =
                t.another(&raw, "192.0.2.1")
                    .at(0, |ctx, env| match run_phases(ctx, env) {
                        Decision::Continue => None,
                        Decision::Respond(r) => Some(r.head.status()),
                        Decision::Reject(r) => Some(r.status()),
                    });
            assert_eq!(status, expected, "{ip}");
        }
        // And it expires.
        let raw = format!(
            "GET / HTTP/1.1\r\nHost: a.test\r\nUser-Agent: ua\r\nAccept: text/html\r\nCookie: rampart_clearance={}\r\n\r\n",
            signed("192.0.2.1")
        );
        let late = t.another(&raw, "192.0.2.1").at(61, |ctx, env| {
            matches!(run_phases(ctx, env), Decision::Respond(_))
        });
        assert!(late);
    }
}
