//! `[[list]]`: named lists of addresses, ranges or AS numbers, shared by every zone's rules
//! (`ip.src in $office`, `ip.src.asnum in $hosting`), as Cloudflare's account lists are.

use std::collections::HashSet;

use rampart_rules::{IpSet, List, Lists};

use super::ip_rules::{parse_asn, parse_net};
use super::walk::{Table, Walker};

/// The keys its table may have (the API's schema of it is checked against them).
pub const LIST_KEYS: &[&str] = &["name", "kind", "items", "description"];

/// Longest list name, as Cloudflare allows.
const MAX_NAME: usize = 50;

/// Every `[[list]]`; a list with an error is left out (and the error reported).
pub(super) fn read_lists(w: &mut Walker<'_>, root: &Table<'_, '_>) -> Lists {
    let mut lists = Lists::new();
    let mut names = HashSet::new();
    for (_, t) in w.tables(root, "list", LIST_KEYS) {
        let name = read_name(w, &t);
        let _ = w.string(&t, "description");
        let kinds = [("ip", Kind::Ip), ("asn", Kind::Asn)];
        let kind = w.choice(&t, "kind", &kinds);
        if kind.is_none() && t.get("kind").is_none() {
            w.missing(&t, "kind");
        }
        let list = kind.and_then(|k| read_items(w, &t, k));
        if let Some((name, span)) = name {
            if !names.insert(name.clone()) {
                w.error(
                    &span,
                    &t.key("name"),
                    format!("another list is already named `{name}`"),
                );
            } else if let Some(list) = list {
                lists.insert(name, list);
            }
        }
    }
    lists
}

#[derive(Clone, Copy)]
enum Kind {
    Ip,
    Asn,
}

/// `name`: lowercase letters, digits and `_`, at most 50.
fn read_name(w: &mut Walker<'_>, t: &Table<'_, '_>) -> Option<(String, std::ops::Range<usize>)> {
    let Some((name, span)) = w.string(t, "name") else {
        if t.get("name").is_none() {
            w.missing(t, "name");
        }
        return None;
    };
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
    if !valid {
        w.error(
            &span,
            &t.key("name"),
            format!(
                "`{name}` is not a list name: use lowercase letters, digits and `_`, at most {MAX_NAME}"
            ),
        );
        return None;
    }
    Some((name, span))
}

/// `items`: addresses and CIDR ranges for `ip`, AS numbers (`13335` or `"AS13335"`) for
/// `asn`. Every bad item is reported.
fn read_items(w: &mut Walker<'_>, t: &Table<'_, '_>, kind: Kind) -> Option<List> {
    let Some(v) = t.get("items") else {
        w.missing(t, "items");
        return None;
    };
    let key = t.key("items");
    let Some(items) = v.get_ref().as_array() else {
        w.error(
            &v.span(),
            &key,
            "expected a list of items, e.g. [\"192.0.2.0/24\"]",
        );
        return None;
    };
    let errors_before = w.errors.len();
    let mut nets = IpSet::new();
    let mut asns = HashSet::new();
    for item in items {
        let text = match (item.get_ref().as_str(), item.get_ref().as_integer()) {
            (Some(s), _) => s.to_string(),
            (None, Some(i)) => i.as_str().to_string(),
            _ => {
                w.error(
                    &item.span(),
                    &key,
                    "an item is a string (or a number for an AS)",
                );
                continue;
            }
        };
        let parsed = match kind {
            Kind::Ip => parse_net(&text).map(|n| {
                nets.insert(n);
            }),
            Kind::Asn => parse_asn(&text).map(|a| {
                asns.insert(i64::from(a));
            }),
        };
        if let Err(m) = parsed {
            w.error(&item.span(), &key, m);
        }
    }
    if w.errors.len() > errors_before {
        return None;
    }
    Some(match kind {
        Kind::Ip => List::Ip(nets),
        Kind::Asn => List::Int(asns),
    })
}
