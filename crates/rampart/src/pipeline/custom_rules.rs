//! Custom rules phase: the zone's own rules, in order.

use std::ops::ControlFlow;

use rampart_rules::{ExecutionContext, RuleSet};

use super::{Decision, Rejection, RequestContext, SecurityMatch};
use crate::config::security::{CustomRule, RuleAction};
use crate::errors::EdgeError;

/// Evaluates the rules in order: `log` rules are recorded and evaluation goes on; the first
/// `block` answers 403 / 1020 (or the rule's response); the first `skip` stops custom rules
/// and marks the later phases it names as skipped.
pub fn custom_rules(
    ctx: &mut RequestContext<'_>,
    rules: &RuleSet<CustomRule>,
    exec: &ExecutionContext<'_>,
) -> Decision {
    let mut logged = Vec::new();
    let outcome = rules.for_each_match(exec, |rule| {
        let r = rule.action();
        match &r.action {
            RuleAction::Log => {
                logged.push(r);
                ControlFlow::Continue(())
            }
            RuleAction::Block | RuleAction::Skip(_) => ControlFlow::Break(r),
        }
    });
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
            ctx.skip_rate_limit |= phases.rate_limit;
            ctx.logged.push(SecurityMatch {
                action: "skip",
                rule_id: rule.id.clone(),
                description: rule.description.clone(),
                source: "firewallCustom",
            });
            Decision::Continue
        }
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
