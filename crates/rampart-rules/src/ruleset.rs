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
use std::ops::ControlFlow;

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};

use crate::Filter;
use crate::compile::Matcher;
use crate::exec::{ExecutionContext, Node};
use crate::functions::Func;
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

/// A literal that must occur in a field for a rule to possibly match.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
struct Atom {
    field: FieldId,
    literal: Vec<u8>,
    case_insensitive: bool,
}

/// One automaton over one field: all guard literals of that field.
#[derive(Debug, Clone)]
struct Group {
    field: FieldId,
    automaton: AhoCorasick,
    /// Rules to mark as candidates, per pattern id.
    rules_of_pattern: Vec<Vec<u32>>,
    /// The first rule (in order) guarded by this group; the automaton runs
    /// only once evaluation reaches it.
    first_rule: usize,
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
    /// Whether each rule is only evaluated when a group marked it.
    guarded: Vec<bool>,
    groups: Vec<Group>,
}

/// Rules guarded by each literal of one group.
type RulesByLiteral = HashMap<Vec<u8>, Vec<u32>>;

/// A group is only worth an automaton pass when it guards at least this many rules.
const MIN_RULES_PER_GROUP: usize = 4;

impl<A> RuleSet<A> {
    /// Builds a rule set (and its pre-filter) from compiled rules, kept in order.
    pub fn new(rules: Vec<Rule<A>>) -> Self {
        let guards: Vec<Option<Vec<Atom>>> = rules.iter().map(|r| guard(&r.filter.root)).collect();
        let mut rules_per_group: HashMap<(FieldId, bool), usize> = HashMap::new();
        for atoms in guards.iter().flatten() {
            let mut keys: Vec<_> = atoms
                .iter()
                .map(|a| (a.field, a.case_insensitive))
                .collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                *rules_per_group.entry(k).or_default() += 1;
            }
        }
        let mut guarded = vec![false; rules.len()];
        // (field, ci) -> (literal -> rules)
        let mut literals: HashMap<(FieldId, bool), (usize, RulesByLiteral)> = HashMap::new();
        for (i, atoms) in guards.into_iter().enumerate() {
            let Some(atoms) = atoms else { continue };
            if !atoms
                .iter()
                .all(|a| rules_per_group[&(a.field, a.case_insensitive)] >= MIN_RULES_PER_GROUP)
            {
                continue;
            }
            guarded[i] = true;
            for a in atoms {
                let entry = literals
                    .entry((a.field, a.case_insensitive))
                    .or_insert_with(|| (i, HashMap::new()));
                let list = entry.1.entry(a.literal).or_default();
                if list.last() != Some(&(i as u32)) {
                    list.push(i as u32);
                }
            }
        }
        let mut groups = Vec::new();
        for ((field, ci), (first_rule, lits)) in literals {
            let (patterns, rules_of_pattern): (Vec<Vec<u8>>, Vec<Vec<u32>>) =
                lits.into_iter().unzip();
            let automaton = AhoCorasickBuilder::new()
                .match_kind(MatchKind::Standard)
                .ascii_case_insensitive(ci)
                .build(&patterns);
            match automaton {
                Ok(automaton) => groups.push(Group {
                    field,
                    automaton,
                    rules_of_pattern,
                    first_rule,
                }),
                Err(_) => {
                    // Too large for the automaton: evaluate those rules unguarded.
                    for rules in rules_of_pattern {
                        for r in rules {
                            guarded[r as usize] = false;
                        }
                    }
                }
            }
        }
        groups.sort_by_key(|g| g.first_rule);
        RuleSet {
            rules,
            guarded,
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
        self.guarded.iter().filter(|g| **g).count()
    }

    /// Calls `f` with each matching rule, in order, until it returns
    /// [`ControlFlow::Break`] (e.g. at the first rule whose action is
    /// terminating, after any `log` rules before it).
    pub fn for_each_match<'r, B>(
        &'r self,
        ctx: &ExecutionContext<'_>,
        mut f: impl FnMut(&'r Rule<A>) -> ControlFlow<B>,
    ) -> Option<B> {
        let words = self.rules.len().div_ceil(64);
        let mut candidates: Vec<u64> = if self.groups.is_empty() {
            Vec::new()
        } else {
            vec![0; words]
        };
        let mut next_group = 0;
        for (i, rule) in self.rules.iter().enumerate() {
            if self.guarded[i] {
                while let Some(g) = self.groups.get(next_group).filter(|g| g.first_rule <= i) {
                    g.mark(ctx, &mut candidates);
                    next_group += 1;
                }
                if candidates[i / 64] & (1 << (i % 64)) == 0 {
                    continue;
                }
            }
            if rule.filter.execute(ctx)
                && let ControlFlow::Break(b) = f(rule)
            {
                return Some(b);
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
        let Some(Value::Bytes(haystack)) = ctx.field(self.field) else {
            return;
        };
        for m in self.automaton.find_overlapping_iter(&haystack[..]) {
            for r in &self.rules_of_pattern[m.pattern().as_usize()] {
                let r = *r as usize;
                candidates[r / 64] |= 1 << (r % 64);
            }
        }
    }
}

/// Literals that a match of `node` requires (at least one of them occurs),
/// or `None` if no such set is known.
fn guard(node: &Node) -> Option<Vec<Atom>> {
    match node {
        Node::And(items) => items
            .iter()
            .filter_map(guard)
            .max_by_key(|atoms| atoms.iter().map(|a| a.literal.len()).min().unwrap_or(0)),
        Node::Or(items) => {
            let mut all = Vec::new();
            for i in items {
                all.extend(guard(i)?);
            }
            Some(all)
        }
        Node::Compare {
            lhs,
            matcher,
            negate: false,
            mapped: false,
        } => {
            let (field, folded) = field_of(lhs)?;
            let atom = |lit: &[u8], ci: bool| {
                // Under lower()/upper(), a literal that the fold could not
                // produce never matches; leave such rules unguarded.
                let ci = ci || folded.is_some();
                let ok = !lit.is_empty()
                    && match folded {
                        Some(true) => !lit.iter().any(u8::is_ascii_uppercase),
                        Some(false) => !lit.iter().any(u8::is_ascii_lowercase),
                        None => true,
                    };
                ok.then(|| Atom {
                    field,
                    literal: lit.to_vec(),
                    case_insensitive: ci,
                })
            };
            match &**matcher {
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
                _ => None,
            }
        }
        Node::Call {
            func,
            args,
            mapped: false,
        } if matches!(**func, Func::StartsWith | Func::EndsWith) => {
            let (field, folded) = field_of(&args[0])?;
            let Node::Const(crate::exec::ConstVal::Bytes(lit)) = &args[1] else {
                return None;
            };
            if lit.is_empty() || folded.is_some() {
                return None;
            }
            Some(vec![Atom {
                field,
                literal: lit.to_vec(),
                case_insensitive: false,
            }])
        }
        _ => None,
    }
}

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
    let literals = seq.literals()?;
    if literals.is_empty()
        || literals.len() > MAX_REGEX_PREFIXES
        || literals.iter().any(|l| l.as_bytes().is_empty())
    {
        return None;
    }
    Some(literals.iter().map(|l| l.as_bytes().to_vec()).collect())
}

/// The field a value reads directly, or through `lower()` (`Some(true)`) or
/// `upper()` (`Some(false)`).
fn field_of(node: &Node) -> Option<(FieldId, Option<bool>)> {
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
