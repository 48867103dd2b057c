//! Custom rules phase: the zone's own rules, in order.

use std::ops::ControlFlow;

use super::{Decision, PhaseEnv, PhaseId, RequestContext, challenge};
use crate::config::security::RuleAction;
use crate::errors::{EdgeError, Rejection};
use crate::observe::SecurityMatch;

/// Evaluates the rules in order: `log` rules are recorded and evaluation goes on; the first
/// `block` answers 403 / 1020 (or the rule's response); the first `skip` stops custom rules
/// and marks the later phases it names as skipped; the first `js_challenge` or
/// `managed_challenge` challenges a client without a clearance (one with a clearance goes
/// on past the later rules, as Cloudflare's).
pub fn custom_rules(ctx: &mut RequestContext<'_>, env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    let Some(rules) = &zone.config.security.custom_rules else {
        return Decision::Continue;
    };
    let mut logged = Vec::new();
    let mut cleared = None;
    let view: &RequestContext<'_> = ctx;
    let outcome = rules.for_each_match(view.rules.exec(), |rule| {
        let r = rule.action();
        match &r.action {
            RuleAction::Log => {
                logged.push(r);
                ControlFlow::Continue(())
            }
            // A client the challenge lets through goes on to the later rules: a clearance
            // is no pass past a `block` below.
            RuleAction::Challenge(kind) if challenge::passes(view, env, *kind, &mut cleared) => {
                ControlFlow::Continue(())
            }
            RuleAction::Block | RuleAction::Skip(_) | RuleAction::Challenge(_) => {
                ControlFlow::Break(r)
            }
        }
    });
    challenge::remember(ctx, cleared);
    for r in logged {
        ctx.logged.push(SecurityMatch {
            action: "log",
            rule_id: r.id.clone(),
            description: r.description.clone(),
            source: "firewallCustom",
        });
    }
    let Some(rule) = outcome else {
        return Decision::Continue;
    };
    match &rule.action {
        RuleAction::Skip(phases) => {
            if phases.rate_limit {
                ctx.skipped.insert(PhaseId::RateLimit);
            }
            if phases.bic {
                ctx.skipped.insert(PhaseId::BrowserIntegrity);
            }
            if phases.security_level {
                ctx.skipped.insert(PhaseId::SecurityLevel);
            }
            ctx.logged.push(SecurityMatch {
                action: "skip",
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                source: "firewallCustom",
            });
            Decision::Continue
        }
        RuleAction::Challenge(kind) => challenge::challenge(
            ctx,
            env,
            *kind,
            SecurityMatch {
                action: kind.name(),
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                source: "firewallCustom",
            },
        ),
        _ => {
            ctx.security = Some(SecurityMatch {
                action: "block",
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                source: "firewallCustom",
            });
            let detail = if rule.description.is_empty() {
                format!("the request matched the custom rule `{}`", rule.id)
            } else {
                format!(
                    "the request matched the custom rule `{}` ({})",
                    rule.id, rule.description
                )
            };
            let mut rejection = Rejection::new(EdgeError::FirewallRule, detail);
            rejection.response = rule.response.clone();
            Decision::Reject(rejection)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{TestRequest, run_phases, zone_config};

    const RULES: &str = r#"
[[zone.custom_rule]]
id = "watch"
expression = 'http.request.uri.path wildcard "/admin*"'
action = "log"

[[zone.custom_rule]]
id = "trusted"
expression = 'ip.src in {192.0.2.0/24}'
action = "skip"
skip = ["rate_limit"]

[[zone.custom_rule]]
id = "admin"
description = "private note"
expression = 'http.request.uri.path wildcard "/admin*"'
action = "block"

[[zone.custom_rule]]
id = "teapot"
expression = 'http.request.uri.path eq "/tea"'
action = "block"
response = { status = 418, content_type = "text/plain", body = "short and stout" }

[[zone.rate_limit]]
expression = 'true'
characteristics = ["ip.src"]
period = 10
requests_per_period = 1
"#;

    fn run(path: &str, ip: &str) -> (Option<u16>, Vec<String>, Option<String>, bool) {
        let raw = format!("GET {path} HTTP/1.1\r\nHost: a.test\r\n\r\n");
        let t = TestRequest::new(&zone_config(RULES), &raw, ip);
        t.at(0, |ctx, env| {
            let status = match run_phases(ctx, env) {
                Decision::Reject(r) => Some(r.status()),
                _ => None,
            };
            let logged = ctx
                .logged
                .iter()
                .map(|m| format!("{}:{}", m.action, m.rule_id))
                .collect();
            let skipped = ctx.skipped.contains(PhaseId::RateLimit);
            (
                status,
                logged,
                ctx.security.as_ref().map(|m| m.rule_id.clone()),
                skipped,
            )
        })
    }

    #[test]
    fn log_rules_are_recorded_and_the_first_block_answers_1020() {
        let (status, logged, security, _) = run("/admin/x", "198.51.100.1");
        assert_eq!(status, Some(403));
        assert_eq!(logged, ["log:watch"]);
        assert_eq!(security.as_deref(), Some("admin"));
    }

    #[test]
    fn a_custom_response_keeps_its_own_status() {
        let (status, _, security, _) = run("/tea", "198.51.100.1");
        assert_eq!(status, Some(418));
        assert_eq!(security.as_deref(), Some("teapot"));
    }

    #[test]
    fn skip_stops_custom_rules_and_skips_rate_limiting() {
        let (status, logged, security, skipped) = run("/admin/x", "192.0.2.9");
        assert_eq!(status, None, "the block rule after the skip does not run");
        assert_eq!(logged, ["log:watch", "skip:trusted"]);
        assert_eq!(security, None);
        assert!(skipped);
    }
}

#[cfg(test)]
mod header_name_tests {
    use super::*;
    use crate::pipeline::testing::{TestRequest, run_phases, zone_config};

    fn blocked(expression: &str, raw: &str) -> bool {
        let rules =
            format!("[[zone.custom_rule]]\nexpression = '{expression}'\naction = \"block\"\n");
        let t = TestRequest::new(&zone_config(&rules), raw, "192.0.2.1");
        t.at(0, |ctx, env| {
            matches!(run_phases(ctx, env), Decision::Reject(_))
        })
    }

    /// `http.request.headers.names` has each name as sent (Cloudflare documents it so); the
    /// keys of `http.request.headers` are lowercase.
    #[test]
    fn header_names_keep_their_case_and_map_keys_are_lowercase() {
        let raw = "GET / HTTP/1.1\r\nHost: a.test\r\nReferer: x\r\n\r\n";
        assert!(!blocked(
            r#"any(http.request.headers.names[*] == "referer")"#,
            raw
        ));
        assert!(blocked(
            r#"any(http.request.headers.names[*] == "Referer")"#,
            raw
        ));
        assert!(blocked(
            r#"http.request.headers.names[1] == "Referer""#,
            raw
        ));
        assert!(blocked(
            r#"any(lower(http.request.headers.names[*])[*] == "referer")"#,
            raw
        ));
        assert!(blocked(r#"http.request.headers["referer"][0] == "x""#, raw));
        assert!(!blocked(r#"len(http.request.headers["Referer"]) > 0"#, raw));
    }
}
