//! IP access rules phase: allow, block or challenge by IP, range, ASN or country. Allow beats
//! block, block beats a challenge.

use super::{Decision, PhaseEnv, RequestContext};
use crate::config::security::IpTarget;
use crate::errors::{EdgeError, Rejection};
use crate::observe::SecurityMatch;

/// Blocks the request when a block rule matches its client and no allow rule does.
pub fn ip_access(ctx: &mut RequestContext<'_>, env: &PhaseEnv) -> Decision {
    let Some(zone) = ctx.zone.clone() else {
        return Decision::Continue;
    };
    let rules = &zone.config.security.ip_access;
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
    } else if let Some(rule) = rules.challenging_rule(ip, asn, country) {
        // The endpoint a solution is posted to stays open to a challenged client.
        if ctx.head.path() == super::challenge::ENDPOINT {
            return Decision::Continue;
        }
        let source = match &rule.target {
            IpTarget::Net(n) if n.prefix_len() == n.max_prefix_len() => "ip",
            IpTarget::Net(_) => "ipRange",
            IpTarget::Asn(_) => "asn",
            IpTarget::Country(_) => "country",
        };
        let matched = SecurityMatch {
            action: "",
            rule_id: rule.id.clone(),
            description: rule.note.clone(),
            source,
        };
        let kind = rule.challenge.expect("a challenge rule");
        return super::challenge::challenge(ctx, env, kind, matched);
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
        rule_id: target.map_or_else(String::new, |r| r.id.clone()),
        description: target.map_or_else(String::new, |r| r.note.clone()),
        source,
    });
    Decision::Reject(Rejection::explained(error, detail))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pipeline::testing::{TestRequest, run_phases, zone_config};

    const RULES: &str = "[[zone.ip_access_rule]]\ntarget = \"ip_range\"\nvalue = \"198.51.100.0/24\"\nmode = \"block\"\nnote = \"bad net\"\n\n[[zone.ip_access_rule]]\ntarget = \"ip\"\nvalue = \"198.51.100.7\"\nmode = \"allow\"\n\n[[zone.ip_access_rule]]\ntarget = \"ip\"\nvalue = \"203.0.113.5\"\nmode = \"block\"\n";

    /// The decision for a request from `ip`, and the match logged.
    fn from(ip: &str) -> (Option<(u16, Option<u16>)>, Option<SecurityMatch>) {
        let t = TestRequest::new(
            &zone_config(RULES),
            "GET / HTTP/1.1\r\nHost: a.test\r\n\r\n",
            ip,
        );
        t.at(0, |ctx, env| {
            let d = match run_phases(ctx, env) {
                Decision::Reject(r) => Some((r.status(), r.error.entry().code)),
                _ => None,
            };
            (d, ctx.security.clone())
        })
    }

    #[test]
    fn a_range_blocks_with_1006_and_is_logged_as_ip_range() {
        let (d, m) = from("198.51.100.9");
        assert_eq!(d, Some((403, Some(1006))));
        let m = m.expect("the match is recorded");
        assert_eq!(
            (m.source, m.rule_id.as_str(), m.description.as_str()),
            ("ipRange", "ip_access_rule.1", "bad net")
        );
    }

    #[test]
    fn one_address_blocks_as_ip() {
        let (d, m) = from("203.0.113.5");
        assert_eq!(d, Some((403, Some(1006))));
        assert_eq!(m.map(|m| m.source), Some("ip"));
    }

    #[test]
    fn allow_beats_block_and_others_pass() {
        assert_eq!(from("198.51.100.7"), (None, None));
        assert_eq!(from("192.0.2.1"), (None, None));
        // The same address as an IPv4-mapped IPv6 peer is the same client.
        assert_eq!(from("::ffff:203.0.113.5").0, Some((403, Some(1006))));
    }
}
