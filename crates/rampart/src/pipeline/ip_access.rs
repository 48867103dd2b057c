//! IP access rules phase: allow or block by IP, range, ASN or country. Allow beats block.

use super::{Decision, Rejection, RequestContext, SecurityMatch};
use crate::config::security::{IpAccessRules, IpTarget};
use crate::errors::EdgeError;

/// Blocks the request when a block rule matches its client and no allow rule does.
pub fn ip_access(ctx: &mut RequestContext<'_>, rules: &IpAccessRules) -> Decision {
    if rules.is_empty() {
        return Decision::Continue;
    }
    let ip = ctx.client_ip;
    let country = ctx.geo.country.as_deref();
    let asn = ctx.geo.asn;
    let allowed = rules.allow_nets.contains(ip)
        || asn.is_some_and(|a| rules.allow_asn.contains(&a))
        || country.is_some_and(|c| rules.allow_country.contains(c));
    if allowed {
        return Decision::Continue;
    }
    let (error, source, target) = if rules.block_nets.contains(ip) {
        let rule = rules.blocking_net_rule(ip);
        let source = match rule.map(|r| &r.target) {
            Some(IpTarget::Net(n)) if n.prefix_len() == n.max_prefix_len() => "ip",
            _ => "ipRange",
        };
        (EdgeError::IpBanned, source, rule)
    } else if let Some(a) = asn.filter(|a| rules.block_asn.contains(a)) {
        let rule = rules
            .rules
            .iter()
            .find(|r| !r.allow && r.target == IpTarget::Asn(a));
        (EdgeError::AsnBanned, "asn", rule)
    } else if let Some(c) = country.filter(|c| rules.block_country.contains(*c)) {
        let rule = rules
            .rules
            .iter()
            .find(|r| !r.allow && matches!(&r.target, IpTarget::Country(x) if x == c));
        (EdgeError::CountryBanned, "country", rule)
    } else {
        return Decision::Continue;
    };
    let detail = match error {
        EdgeError::AsnBanned => format!(
            "an IP access rule of this site blocks AS{}",
            asn.unwrap_or(0)
        ),
        EdgeError::CountryBanned => format!(
            "an IP access rule of this site blocks the country {}",
            country.unwrap_or("")
        ),
        _ => format!("an IP access rule of this site blocks {ip}"),
    };
    ctx.security = Some(SecurityMatch {
        action: "block",
        rule_id: target.map_or_else(String::new, |r| format!("ip_access_rule.{}", r.index)),
        description: target.map_or_else(String::new, |r| r.note.clone()),
        source,
    });
    Decision::Reject(Rejection::new(error, detail))
}
