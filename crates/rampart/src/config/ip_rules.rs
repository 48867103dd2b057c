//! `[[zone.ip_access_rule]]`: addresses, ranges, AS numbers and countries a zone allows or
//! blocks before any other rule runs; and the parsers of addresses, ranges and AS numbers
//! that `[[list]]` shares.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::Arc;

use ipnet::IpNet;
use rampart_rules::IpSet;

use super::security::SecurityContext;
use super::walk::{Table, Walker};

/// The keys its table may have (the API's schema of it is checked against them).
pub const IP_RULE_KEYS: &[&str] = &["id", "target", "value", "mode", "note"];

/// What an IP access rule targets.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum IpTarget {
    /// One address or a CIDR range.
    Net(IpNet),
    /// An autonomous system.
    Asn(u32),
    /// An ISO 3166-1 alpha-2 country code, uppercase.
    Country(String),
}

/// An IP access rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IpAccessRule {
    /// What it matches.
    pub target: IpTarget,
    /// `true` for allow, `false` for block or a challenge.
    pub allow: bool,
    /// `mode = "js_challenge"` or `"managed_challenge"`: the challenge (a block beats it).
    pub challenge: Option<super::challenge::ChallengeKind>,
    /// The note, logged as SecurityRuleDescription.
    pub note: String,
    /// SecurityRuleID in the log: the `id` key, or `ip_access_rule.N` by its place (1-based).
    pub id: String,
}

/// A zone's IP access rules, indexed for lookups: prefix sets for addresses and ranges,
/// hash sets for ASNs and countries.
#[derive(Clone, Debug, Default)]
pub struct IpAccessRules {
    /// Every rule, in file order (to attribute a match).
    pub rules: Arc<Vec<IpAccessRule>>,
    /// Allowed networks.
    pub allow_nets: Arc<IpSet>,
    /// Blocked networks.
    pub block_nets: Arc<IpSet>,
    /// Allowed / blocked ASNs.
    pub allow_asn: HashSet<u32>,
    /// Blocked ASNs.
    pub block_asn: HashSet<u32>,
    /// Allowed countries.
    pub allow_country: HashSet<String>,
    /// Blocked countries.
    pub block_country: HashSet<String>,
    /// Whether any rule challenges.
    pub any_challenge: bool,
}

impl IpAccessRules {
    /// Whether there are no rules.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first blocking rule of `target`'s kind that matches `ip` (for logging).
    pub fn blocking_net_rule(&self, ip: IpAddr) -> Option<&IpAccessRule> {
        self.rules.iter().find(|r| {
            !r.allow
                && r.challenge.is_none()
                && matches!(&r.target, IpTarget::Net(n) if n.contains(&ip))
        })
    }

    /// The first challenge rule that matches the client (its address, AS or country).
    pub fn challenging_rule(
        &self,
        ip: IpAddr,
        asn: Option<u32>,
        country: Option<&str>,
    ) -> Option<&IpAccessRule> {
        if !self.any_challenge {
            return None;
        }
        self.rules.iter().find(|r| {
            r.challenge.is_some()
                && match &r.target {
                    IpTarget::Net(n) => n.contains(&ip),
                    IpTarget::Asn(a) => asn == Some(*a),
                    IpTarget::Country(c) => country == Some(c.as_str()),
                }
        })
    }
}

pub(super) fn read_ip_rules(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    cx: &SecurityContext<'_>,
) -> IpAccessRules {
    let tables = w.tables(zone, "ip_access_rule", IP_RULE_KEYS);
    let mut out = IpAccessRules::default();
    let (mut allow_nets, mut block_nets) = (IpSet::new(), IpSet::new());
    let mut rules = Vec::with_capacity(tables.len());
    for (i, (_, t)) in tables.iter().enumerate() {
        let allow = read_ip_mode(w, t);
        let value = w.string(t, "value");
        if value.is_none() && t.get("value").is_none() {
            w.missing(t, "value");
        }
        let target = match (w.string(t, "target"), value) {
            (Some((kind, kspan)), Some((v, span))) => {
                read_ip_target(w, t, (&kind, &kspan), (&v, &span), cx)
            }
            (None, _) => {
                if t.get("target").is_none() {
                    w.missing(t, "target");
                }
                None
            }
            _ => None,
        };
        let note = w.string(t, "note").map(|(s, _)| s).unwrap_or_default();
        let id = w
            .string(t, "id")
            .map_or_else(|| format!("ip_access_rule.{}", i + 1), |(s, _)| s);
        let (Some(target), Some((allow, challenge))) = (target, allow) else {
            continue;
        };
        // A challenge rule is found by a scan of the rules (after the sets said no block).
        match (&target, challenge) {
            (_, Some(_)) => out.any_challenge = true,
            (IpTarget::Net(n), None) if allow => {
                allow_nets.insert(*n);
            }
            (IpTarget::Net(n), None) => {
                block_nets.insert(*n);
            }
            (IpTarget::Asn(a), None) if allow => {
                out.allow_asn.insert(*a);
            }
            (IpTarget::Asn(a), None) => {
                out.block_asn.insert(*a);
            }
            (IpTarget::Country(c), None) if allow => {
                out.allow_country.insert(c.clone());
            }
            (IpTarget::Country(c), None) => {
                out.block_country.insert(c.clone());
            }
        }
        rules.push(IpAccessRule {
            target,
            allow,
            challenge,
            note,
            id,
        });
    }
    out.rules = Arc::new(rules);
    out.allow_nets = Arc::new(allow_nets);
    out.block_nets = Arc::new(block_nets);
    out
}

/// `mode`: `allow` (true), `block` (false), or a challenge.
fn read_ip_mode(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
) -> Option<(bool, Option<super::challenge::ChallengeKind>)> {
    match w.string(t, "mode") {
        Some((m, _)) if m == "block" => Some((false, None)),
        Some((m, _)) if m == "allow" => Some((true, None)),
        Some((m, span)) => match super::challenge::ChallengeKind::parse(&m) {
            Some(kind) => Some((false, Some(kind))),
            None => {
                w.error(
                    &span,
                    &t.key("mode"),
                    format!(
                        "unknown mode `{m}`; one of: block, allow, js_challenge, managed_challenge"
                    ),
                );
                None
            }
        },
        None => {
            if t.get("mode").is_none() {
                w.missing(t, "mode");
            }
            None
        }
    }
}

/// `target` and `value`: an address, a range, an AS number or a country.
fn read_ip_target(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    (kind, kspan): (&str, &std::ops::Range<usize>),
    (v, span): (&str, &std::ops::Range<usize>),
    cx: &SecurityContext<'_>,
) -> Option<IpTarget> {
    let bad = |w: &mut Walker<'_>, message: String| {
        w.error(span, &t.key("value"), message);
        None
    };
    match kind {
        "ip" => match v.parse::<IpAddr>() {
            Ok(ip) => Some(IpTarget::Net(IpNet::from(ip))),
            Err(_) => bad(w, format!("`{v}` is not an IP address")),
        },
        "ip_range" => match parse_range(v) {
            Ok(net) => Some(IpTarget::Net(net)),
            Err(m) => bad(w, m),
        },
        "asn" => match parse_asn(v) {
            Ok(n) => {
                if !cx.has_asn_db {
                    w.warn(
                        span,
                        &t.key("value"),
                        "no [geoip] asn_db is configured, so this ASN rule never matches",
                    );
                }
                Some(IpTarget::Asn(n))
            }
            Err(m) => bad(w, m),
        },
        "country" if v.len() == 2 && v.bytes().all(|b| b.is_ascii_alphabetic()) => {
            if !cx.has_country_db {
                w.warn(
                    span,
                    &t.key("value"),
                    "no [geoip] country_db is configured, so this country rule never matches",
                );
            }
            Some(IpTarget::Country(v.to_ascii_uppercase()))
        }
        "country" => bad(
            w,
            format!("`{v}` is not a two-letter ISO 3166-1 country code"),
        ),
        other => {
            w.error(
                kspan,
                &t.key("target"),
                format!("unknown target `{other}`; one of: ip, ip_range, asn, country"),
            );
            None
        }
    }
}

/// A CIDR range without host bits (`198.51.100.0/24`).
pub(super) fn parse_range(v: &str) -> Result<IpNet, String> {
    match v.parse::<IpNet>() {
        Ok(net) if net.trunc() != net => Err(format!(
            "`{v}` has host bits set; did you mean `{}`?",
            net.trunc()
        )),
        Ok(net) => Ok(net),
        Err(_) => Err(format!("`{v}` is not a CIDR range (e.g. 198.51.100.0/24)")),
    }
}

/// An address or a CIDR range.
pub(super) fn parse_net(v: &str) -> Result<IpNet, String> {
    if v.contains('/') {
        return parse_range(v);
    }
    v.parse::<IpAddr>()
        .map(IpNet::from)
        .map_err(|_| format!("`{v}` is not an IP address or a CIDR range"))
}

/// An AS number, with or without `AS` before it.
pub(super) fn parse_asn(v: &str) -> Result<u32, String> {
    v.trim_start_matches("AS")
        .parse::<u32>()
        .map_err(|_| format!("`{v}` is not an AS number (e.g. 64496 or AS64496)"))
}
