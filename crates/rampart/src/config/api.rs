//! `[[api_token]]`: who may use the management API under `/client/v4/`, and for what.
//!
//! A token is never written in the configuration: only the SHA-256 of it, in hex
//! (`rampart token create` prints a new token and its lines).

use std::collections::HashSet;

use super::Zone;
use super::walk::{Table, Walker};

/// What a token may do. A route needs one of them (and, for a zone's resources, the zone).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scope {
    /// `zone:read`: zones, their settings and origin health.
    ZoneRead,
    /// `zone:edit`: change a zone's settings.
    ZoneEdit,
    /// `firewall:read`: custom rules, rate limits, IP access rules, lists.
    FirewallRead,
    /// `firewall:edit`: change them.
    FirewallEdit,
    /// `cache:purge`: purge a zone's cache.
    CachePurge,
    /// `analytics:read`: analytics and cache statistics.
    AnalyticsRead,
}

/// Every scope and its name, in the order the documentation lists them.
pub const SCOPES: [(&str, Scope); 6] = [
    ("zone:read", Scope::ZoneRead),
    ("zone:edit", Scope::ZoneEdit),
    ("firewall:read", Scope::FirewallRead),
    ("firewall:edit", Scope::FirewallEdit),
    ("cache:purge", Scope::CachePurge),
    ("analytics:read", Scope::AnalyticsRead),
];

impl Scope {
    /// The name written in the configuration.
    pub fn name(self) -> &'static str {
        SCOPES
            .iter()
            .find(|(_, s)| *s == self)
            .map_or("", |(n, _)| n)
    }
}

/// `[[api_token]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ApiToken {
    /// `name`: who holds it (the audit log and the API's answers say it).
    pub name: String,
    /// `sha256`: the SHA-256 of the token.
    pub sha256: [u8; 32],
    /// `scopes`.
    pub scopes: Vec<Scope>,
    /// `zones`: the zones it may act on; `None` for `["*"]`, every zone.
    pub zones: Option<Vec<String>>,
}

impl ApiToken {
    /// Whether the token has `scope`.
    pub fn has(&self, scope: Scope) -> bool {
        self.scopes.contains(&scope)
    }

    /// Whether the token is for every zone (`zones = ["*"]`).
    pub fn covers_every_zone(&self) -> bool {
        self.zones.is_none()
    }

    /// Whether the token may act on `zone`.
    pub fn covers(&self, zone: &str) -> bool {
        self.zones
            .as_ref()
            .is_none_or(|zones| zones.iter().any(|z| z == zone))
    }
}

const TOKEN_KEYS: &[&str] = &["name", "sha256", "scopes", "zones"];

/// Every `[[api_token]]`, checked against the zones.
pub(super) fn read_api_tokens(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    zones: Option<&[Zone]>,
) -> Vec<ApiToken> {
    let mut tokens = Vec::new();
    let mut names = HashSet::new();
    let mut hashes = HashSet::new();
    for (_, t) in w.tables(root, "api_token", TOKEN_KEYS) {
        let name = required_string(w, &t, "name");
        if let Some((n, span)) = &name
            && !names.insert(n.clone())
        {
            w.error(
                span,
                &t.key("name"),
                format!("another API token is already named `{n}`"),
            );
        }
        let sha256 = required_string(w, &t, "sha256").and_then(|(hex, span)| {
            let Some(hash) = parse_sha256(&hex) else {
                w.error(
                    &span,
                    &t.key("sha256"),
                    "expected the token's SHA-256 as 64 hex digits (`rampart token create` prints it)",
                );
                return None;
            };
            if !hashes.insert(hash) {
                w.error(
                    &span,
                    &t.key("sha256"),
                    "another API token has the same sha256: give each holder a token of its own",
                );
            }
            Some(hash)
        });
        let scopes = read_scopes(w, &t);
        let token_zones = read_zones(w, &t, zones);
        if let (Some((name, _)), Some(sha256), Some(scopes), Some(zones)) =
            (name, sha256, scopes, token_zones)
        {
            tokens.push(ApiToken {
                name,
                sha256,
                scopes,
                zones,
            });
        }
    }
    tokens
}

fn required_string(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    key: &str,
) -> Option<(String, std::ops::Range<usize>)> {
    let v = w.string(t, key);
    if v.is_none() && t.get(key).is_none() {
        w.missing(t, key);
    }
    v.filter(|(s, span)| {
        if s.is_empty() {
            w.error(span, &t.key(key), format!("`{key}` is empty"));
        }
        !s.is_empty()
    })
}

/// 64 hex digits, any case.
fn parse_sha256(hex: &str) -> Option<[u8; 32]> {
    crate::text::unhex(hex)?.try_into().ok()
}

fn read_scopes(w: &mut Walker<'_>, t: &Table<'_, '_>) -> Option<Vec<Scope>> {
    let Some(list) = w.strings(t, "scopes") else {
        if t.get("scopes").is_none() {
            w.missing(t, "scopes");
        }
        return None;
    };
    let mut scopes = Vec::new();
    let mut ok = true;
    for (name, span) in list {
        match SCOPES.iter().find(|(n, _)| *n == name) {
            Some((_, s)) if !scopes.contains(s) => scopes.push(*s),
            Some(_) => {}
            None => {
                let known: Vec<&str> = SCOPES.iter().map(|(n, _)| *n).collect();
                w.error(
                    &span,
                    &t.key("scopes"),
                    format!(
                        "unknown scope `{name}`; the scopes are {}",
                        known.join(", ")
                    ),
                );
                ok = false;
            }
        }
    }
    if ok && scopes.is_empty() {
        w.error(
            &t.span_of("scopes"),
            &t.key("scopes"),
            "a token needs at least one scope",
        );
        ok = false;
    }
    ok.then_some(scopes)
}

/// `zones`: `["*"]` (the default) or names of configured zones.
fn read_zones(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    zones: Option<&[Zone]>,
) -> Option<Option<Vec<String>>> {
    if t.get("zones").is_none() {
        return Some(None);
    }
    let list = w.strings(t, "zones")?;
    if list.iter().any(|(z, _)| z == "*") {
        if list.len() > 1 {
            w.error(
                &t.span_of("zones"),
                &t.key("zones"),
                "`*` already means every zone: list it alone",
            );
            return None;
        }
        return Some(None);
    }
    let mut ok = true;
    for (name, span) in &list {
        if let Some(zones) = zones
            && !zones.iter().any(|z| &z.name == name)
        {
            w.error(
                span,
                &t.key("zones"),
                format!("no [[zone]] is named `{name}`"),
            );
            ok = false;
        }
    }
    ok.then(|| Some(list.into_iter().map(|(z, _)| z).collect()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_is_64_hex_digits() {
        let hex = "00ff".repeat(16);
        let parsed = parse_sha256(&hex).unwrap();
        assert_eq!(parsed[0], 0x00);
        assert_eq!(parsed[1], 0xff);
        assert_eq!(parse_sha256(&hex.to_uppercase()), Some(parsed));
        assert_eq!(parse_sha256(&hex[..62]), None);
        assert_eq!(parse_sha256(&format!("{}zz", &hex[..62])), None);
    }

    #[test]
    fn every_scope_has_its_name() {
        for (name, scope) in SCOPES {
            assert_eq!(scope.name(), name);
        }
    }
}
