//! Rule sets: many compiled rules, each with an action of the host's
//! choosing, evaluated in order against one request.
//!
//! Cost grows slower than the number of rules: at build time every rule is
//! analysed for a *guard*, a set of literal strings over one field of which
//! at least one must occur for the rule to match (`contains`, `eq`,
//! `in {...}`, wildcard and `starts_with`/`ends_with` literals, also under
//! `lower()`). The guards of all rules over the same field go into one
//! Aho-Corasick automaton, run once per request, so a rule whose literals do
//! not occur is skipped without being evaluated.

use std::collections::HashMap;
use std::net::IpAddr;
use std::ops::ControlFlow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use rustc_hash::FxHashMap;
use smallvec::SmallVec;

use crate::Filter;
use crate::compile::Matcher;
use crate::exec::{ConstVal, ExecutionContext, IndexKey, Node};
use crate::functions::Func;
use crate::ipset::{Prefix, ip_bits};
use crate::scheme::FieldId;
use crate::types::Value;

/// A compiled rule: a filter and the action to take when it matches.
#[derive(Debug, Clone)]
pub struct Rule<A> {
    action: A,
    filter: Filter,
}

impl<A> Rule<A> {
    /// A rule taking `action` when `filter` matches.
    pub fn new(action: A, filter: Filter) -> Self {
        Rule { action, filter }
    }

    /// The host's action (or id) for this rule.
    pub fn action(&self) -> &A {
        &self.action
    }

    /// The compiled expression.
    pub fn filter(&self) -> &Filter {
        &self.filter
    }
}

/// What kind of necessary condition an atom is; atoms of one kind over one
/// field share one index.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
enum AtomKind {
    /// The literal occurs in the field (ASCII case-insensitively if `true`).
    Literal(bool),
    /// The field's address is inside the prefix encoded in the data.
    Prefix,
    /// The field's map has the key.
    MapKey,
}

/// A condition that must hold for a rule to possibly match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Atom {
    field: FieldId,
    kind: AtomKind,
    /// The literal, the map key, or `[v6, len, net (16 bytes, big-endian)]`.
    data: Vec<u8>,
}

fn prefix_atom(field: FieldId, p: Prefix) -> Atom {
    let mut data = vec![u8::from(p.v6), p.len];
    data.extend_from_slice(&p.net.to_be_bytes());
    Atom {
        field,
        kind: AtomKind::Prefix,
        data,
    }
}

/// One index over one field, run once per request when evaluation reaches
/// its first rule; it marks the rules whose atoms hold.
#[derive(Debug, Clone)]
struct Group {
    field: FieldId,
    index: GroupIndex,
    /// Rules to mark, per entry of the index.
    rules_of_entry: Vec<Vec<u32>>,
    first_rule: usize,
}

#[derive(Debug, Clone)]
enum GroupIndex {
    /// One Aho-Corasick automaton over all literals; pattern id = entry.
    Literals(AhoCorasick),
    /// Per (family, prefix length), network → entry. The keys come from the rules, so a
    /// fast hash is safe: a client's address is only looked up, never inserted.
    Prefixes(Vec<(bool, u8, u128, FxHashMap<u128, usize>)>),
    /// Map key → entry (keys from the rules, as above).
    MapKeys(FxHashMap<Vec<u8>, usize>),
}

/// An ordered list of rules with a shared pre-filter.
///
/// ```
/// use rampart_rules::{Compiler, ExecutionContext, HttpRequestFields, Scheme};
/// let scheme = Scheme::http();
/// let rules = Compiler::new(&scheme)
///     .compile_rules([
///         (1, r#"http.request.uri.path contains "/wp-login""#),
///         (2, r#"http.host eq "example.com""#),
///     ])
///     .unwrap();
/// let request = HttpRequestFields { host: "example.com".into(), path: "/".into(), ..Default::default() };
/// let ctx = ExecutionContext::new(&scheme, &request);
/// assert_eq!(rules.first_match(&ctx).map(|r| *r.action()), Some(2));
/// ```
#[derive(Debug, Clone)]
pub struct RuleSet<A> {
    rules: Vec<Rule<A>>,
    /// Bit set of the rules evaluated without a group marking them.
    unguarded: Vec<u64>,
    /// Number of rules a group guards.
    guarded_count: usize,
    groups: Vec<Group>,
}

/// Rules guarded by each atom of one group, and the group's first rule.
type GroupAtoms = (usize, HashMap<Vec<u8>, Vec<u32>>);

/// A group is only worth a pass when it guards at least this many rules.
const MIN_RULES_PER_GROUP: usize = 4;

impl<A> RuleSet<A> {
    /// Builds a rule set (and its pre-filter) from compiled rules, kept in order.
    pub fn new(rules: Vec<Rule<A>>) -> Self {
        let guards: Vec<Option<Vec<Atom>>> = rules.iter().map(|r| guard(&r.filter.root)).collect();
        let mut rules_per_group: HashMap<(FieldId, AtomKind), usize> = HashMap::new();
        for atoms in guards.iter().flatten() {
            let mut keys: Vec<_> = atoms.iter().map(|a| (a.field, a.kind)).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                *rules_per_group.entry(k).or_default() += 1;
            }
        }
        let mut guarded = vec![false; rules.len()];
        let mut by_group: HashMap<(FieldId, AtomKind), GroupAtoms> = HashMap::new();
        for (i, atoms) in guards.into_iter().enumerate() {
            let Some(atoms) = atoms else { continue };
            if !atoms
                .iter()
                .all(|a| rules_per_group[&(a.field, a.kind)] >= MIN_RULES_PER_GROUP)
            {
                continue;
            }
            guarded[i] = true;
            for a in atoms {
                let entry = by_group
                    .entry((a.field, a.kind))
                    .or_insert_with(|| (i, HashMap::new()));
                let list = entry.1.entry(a.data).or_default();
                if list.last() != Some(&(i as u32)) {
                    list.push(i as u32);
                }
            }
        }
        let mut groups = Vec::new();
        for ((field, kind), (first_rule, atoms)) in by_group {
            let (data, rules_of_entry): (Vec<Vec<u8>>, Vec<Vec<u32>>) = atoms.into_iter().unzip();
            let index = match kind {
                AtomKind::Literal(ci) => AhoCorasickBuilder::new()
                    .match_kind(MatchKind::Standard)
                    .ascii_case_insensitive(ci)
                    .build(&data)
                    .ok()
                    .map(GroupIndex::Literals),
                AtomKind::Prefix => {
                    let mut tables: Vec<(bool, u8, u128, FxHashMap<u128, usize>)> = Vec::new();
                    for (entry, d) in data.iter().enumerate() {
                        let p = Prefix {
                            v6: d[0] == 1,
                            len: d[1],
                            net: u128::from_be_bytes(d[2..18].try_into().expect("16 bytes")),
                        };
                        match tables.iter_mut().find(|t| t.0 == p.v6 && t.1 == p.len) {
                            Some(t) => {
                                t.3.insert(p.net, entry);
                            }
                            None => tables.push((
                                p.v6,
                                p.len,
                                p.mask(),
                                FxHashMap::from_iter([(p.net, entry)]),
                            )),
                        }
                    }
                    Some(GroupIndex::Prefixes(tables))
                }
                AtomKind::MapKey => Some(GroupIndex::MapKeys(
                    data.into_iter().enumerate().map(|(e, k)| (k, e)).collect(),
                )),
            };
            match index {
                Some(index) => groups.push(Group {
                    field,
                    index,
                    rules_of_entry,
                    first_rule,
                }),
                None => {
                    // Too large for the automaton: evaluate those rules unguarded.
                    for r in rules_of_entry.into_iter().flatten() {
                        guarded[r as usize] = false;
                    }
                }
            }
        }
        groups.sort_by_key(|g| g.first_rule);
        let mut unguarded = vec![0u64; rules.len().div_ceil(64)];
        for (i, g) in guarded.iter().enumerate() {
            if !g {
                unguarded[i / 64] |= 1 << (i % 64);
            }
        }
        RuleSet {
            guarded_count: guarded.iter().filter(|g| **g).count(),
            rules,
            unguarded,
            groups,
        }
    }

    /// The rules, in order.
    pub fn rules(&self) -> &[Rule<A>] {
        &self.rules
    }

    /// Number of rules.
    pub fn len(&self) -> usize {
        self.rules.len()
    }

    /// Whether there is no rule.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Number of rules the pre-filter can skip without evaluating them.
    pub fn prefiltered_rules(&self) -> usize {
        self.guarded_count
    }

    /// Calls `f` with each matching rule, in order, until it returns
    /// [`ControlFlow::Break`] (e.g. at the first rule whose action is
    /// terminating, after any `log` rules before it).
    pub fn for_each_match<'r, B>(
        &'r self,
        ctx: &ExecutionContext<'_>,
        mut f: impl FnMut(&'r Rule<A>) -> ControlFlow<B>,
    ) -> Option<B> {
        // Candidates start as the unguarded rules; groups add the guarded
        // rules whose conditions hold. Rules are visited 64 at a time, and a
        // group runs only once evaluation reaches the word of its first rule,
        // so an early first match skips the groups of later rules.
        // On the stack for up to 512 rules: no allocation per evaluation.
        let mut candidates: SmallVec<[u64; 8]> = SmallVec::from_slice(&self.unguarded);
        let mut next_group = 0;
        for w in 0..candidates.len() {
            let word_end = (w + 1) * 64;
            while let Some(g) = self
                .groups
                .get(next_group)
                .filter(|g| g.first_rule < word_end)
            {
                g.mark(ctx, &mut candidates);
                next_group += 1;
            }
            let mut bits = candidates[w];
            while bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                bits &= bits - 1;
                let rule = &self.rules[i];
                if rule.filter.execute(ctx)
                    && let ControlFlow::Break(b) = f(rule)
                {
                    return Some(b);
                }
            }
        }
        None
    }

    /// The first rule (in order) that matches.
    pub fn first_match(&self, ctx: &ExecutionContext<'_>) -> Option<&Rule<A>> {
        self.for_each_match(ctx, ControlFlow::Break)
    }

    /// Every rule that matches, in order.
    pub fn matches(&self, ctx: &ExecutionContext<'_>) -> Vec<&Rule<A>> {
        let mut out = Vec::new();
        self.for_each_match::<()>(ctx, |r| {
            out.push(r);
            ControlFlow::Continue(())
        });
        out
    }
}

impl Group {
    fn mark(&self, ctx: &ExecutionContext<'_>, candidates: &mut [u64]) {
        let mut mark = |entry: usize| {
            for r in &self.rules_of_entry[entry] {
                let r = *r as usize;
                candidates[r / 64] |= 1 << (r % 64);
            }
        };
        match (&self.index, ctx.field(self.field)) {
            (GroupIndex::Literals(ac), Some(Value::Bytes(haystack))) => {
                for m in ac.find_overlapping_iter(&haystack[..]) {
                    mark(m.pattern().as_usize());
                }
            }
            (GroupIndex::Prefixes(tables), Some(Value::Ip(ip))) => {
                let (v6, bits) = ip_bits(*ip);
                let mapped = match ip {
                    IpAddr::V6(a) => a.to_ipv4_mapped().map(|m| u128::from(u32::from(m))),
                    IpAddr::V4(_) => None,
                };
                // An IPv4-mapped IPv6 address also matches IPv4 prefixes,
                // as in `IpSet`.
                for (t6, _, mask, nets) in tables {
                    let addr = if *t6 == v6 {
                        bits
                    } else if let (false, Some(m)) = (*t6, mapped) {
                        m
                    } else {
                        continue;
                    };
                    if let Some(entry) = nets.get(&(addr & mask)) {
                        mark(*entry);
                    }
                }
            }
            (GroupIndex::MapKeys(keys), Some(Value::Map(map))) => {
                for k in map.keys() {
                    if let Some(entry) = keys.get(&k[..]) {
                        mark(*entry);
                    }
                }
            }
            _ => {}
        }
    }
}

/// The map key an evaluation of `node` needs present (a missing key makes
/// the value missing, and any comparison of a missing value false).
fn required_map_key(node: &Node) -> Option<(FieldId, &[u8])> {
    match node {
        Node::Index(base, IndexKey::Key(k)) => match &**base {
            Node::Field(f) => Some((*f, k)),
            _ => None,
        },
        Node::Index(base, IndexKey::Position(_)) => required_map_key(base),
        Node::Call { args, .. } => required_map_key(args.first()?),
        _ => None,
    }
}

/// Conditions one of which holds whenever `node` is true, or `None` if no
/// such set is known.
fn guard(node: &Node) -> Option<Vec<Atom>> {
    match node {
        Node::And(items) => items.iter().filter_map(guard).max_by_key(|atoms| {
            atoms
                .iter()
                .map(|a| match a.kind {
                    AtomKind::Literal(_) => a.data.len(),
                    _ => usize::MAX,
                })
                .min()
                .unwrap_or(0)
        }),
        Node::Or(items) => {
            let mut all = Vec::new();
            for i in items {
                all.extend(guard(i)?);
            }
            Some(all)
        }
        Node::FieldCompare {
            field,
            matcher,
            negate: false,
        } => compare_guard(*field, None, matcher),
        Node::Compare {
            lhs,
            matcher,
            negate,
            mapped,
        } => {
            if let Some((field, key)) = required_map_key(lhs) {
                return Some(vec![Atom {
                    field,
                    kind: AtomKind::MapKey,
                    data: key.to_vec(),
                }]);
            }
            if *negate || *mapped {
                return None;
            }
            let (field, folded) = folded_field(lhs)?;
            compare_guard(field, folded, matcher)
        }
        Node::Call {
            func,
            args,
            mapped: false,
        } => match &**func {
            Func::Any | Func::All => match args.first()? {
                Node::Compare { lhs, .. } => {
                    let (field, key) = required_map_key(lhs)?;
                    Some(vec![Atom {
                        field,
                        kind: AtomKind::MapKey,
                        data: key.to_vec(),
                    }])
                }
                _ => None,
            },
            Func::StartsWith | Func::EndsWith => {
                let Node::Field(field) = &args[0] else {
                    return None;
                };
                let Node::Const(ConstVal::Bytes(lit)) = &args[1] else {
                    return None;
                };
                (!lit.is_empty()).then(|| {
                    vec![Atom {
                        field: *field,
                        kind: AtomKind::Literal(false),
                        data: lit.to_vec(),
                    }]
                })
            }
            _ => None,
        },
        _ => None,
    }
}

/// Atoms for a non-negated comparison of `field` (through `lower()` when
/// `folded` is `Some(true)`, `upper()` when `Some(false)`).
fn compare_guard(field: FieldId, folded: Option<bool>, matcher: &Matcher) -> Option<Vec<Atom>> {
    let atom = |lit: &[u8], ci: bool| {
        // Under lower()/upper(), a literal that the fold could not produce
        // never matches; such literals give no atom.
        let ok = !lit.is_empty()
            && match folded {
                Some(true) => !lit.iter().any(u8::is_ascii_uppercase),
                Some(false) => !lit.iter().any(u8::is_ascii_lowercase),
                None => true,
            };
        ok.then(|| Atom {
            field,
            kind: AtomKind::Literal(ci || folded.is_some()),
            data: lit.to_vec(),
        })
    };
    match matcher {
        Matcher::BytesEq(lit) => Some(vec![atom(lit, false)?]),
        Matcher::Contains(f) => Some(vec![atom(f.needle(), false)?]),
        Matcher::Wildcard(w) => Some(vec![atom(w.longest_piece(), w.case_insensitive())?]),
        Matcher::BytesIn(set) => set.items().into_iter().map(|l| atom(l, false)).collect(),
        Matcher::Regex(re) => {
            // Under a case fold, variants the fold cannot produce are
            // dropped: a match must start with one of the others.
            let atoms: Vec<Atom> = regex_prefixes(re.as_str())?
                .iter()
                .filter_map(|l| atom(l, false))
                .collect();
            (!atoms.is_empty()).then_some(atoms)
        }
        Matcher::IpEq(ip) if folded.is_none() => {
            Some(vec![prefix_atom(field, Prefix::new(*ip, 128))])
        }
        Matcher::IpIn(m) if folded.is_none() && m.prefixes().len() <= MAX_PREFIX_ATOMS => Some(
            m.prefixes()
                .iter()
                .map(|p| prefix_atom(field, *p))
                .collect(),
        ),
        _ => None,
    }
}

/// Most prefixes taken from one `in {...}` set for the pre-filter.
const MAX_PREFIX_ATOMS: usize = 256;

/// Most literals taken from one regex for the pre-filter.
const MAX_REGEX_PREFIXES: usize = 64;

/// Literals one of which starts every match of `pattern`, if there is a
/// small finite set of non-empty ones (e.g. `(?i)bot\d+` gives the eight
/// case variants of `bot`).
fn regex_prefixes(pattern: &str) -> Option<Vec<Vec<u8>>> {
    use regex_syntax::hir::literal::Extractor;
    let hir = regex_syntax::ParserBuilder::new()
        .utf8(false)
        .build()
        .parse(pattern)
        .ok()?;
    let seq = Extractor::new().extract(&hir);
    let mut literals: Vec<&[u8]> = seq.literals()?.iter().map(|l| l.as_bytes()).collect();
    if literals.is_empty() || literals.iter().any(|l| l.is_empty()) {
        return None;
    }
    // A literal that starts with another one adds nothing: a value that
    // contains it contains the shorter one too.
    literals.sort_by_key(|l| l.len());
    let mut kept: Vec<Vec<u8>> = Vec::new();
    for l in literals {
        if !kept.iter().any(|k| l.starts_with(k)) {
            kept.push(l.to_vec());
        }
    }
    (kept.len() <= MAX_REGEX_PREFIXES).then_some(kept)
}

/// The field a value reads directly, or through `lower()` (`Some(true)`)
/// or `upper()` (`Some(false)`).
fn folded_field(node: &Node) -> Option<(FieldId, Option<bool>)> {
    match node {
        Node::Field(id) => Some((*id, None)),
        Node::Call {
            func,
            args,
            mapped: false,
        } => match (&**func, args.as_slice()) {
            (Func::Lower, [Node::Field(id)]) => Some((*id, Some(true))),
            (Func::Upper, [Node::Field(id)]) => Some((*id, Some(false))),
            _ => None,
        },
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regex_prefixes_are_small_finite_sets() {
        let p = regex_prefixes("(?i)bot12[0-9]*").unwrap();
        assert_eq!(p.len(), 8, "{p:?}");
        assert!(p.contains(&b"BoT12".to_vec()));
        assert_eq!(
            regex_prefixes("^/api/v1/[a-z]+$").unwrap(),
            vec![b"/api/v1/".to_vec()]
        );
        assert_eq!(regex_prefixes("a|"), None);
        assert_eq!(regex_prefixes(".*x"), None);
    }
}
