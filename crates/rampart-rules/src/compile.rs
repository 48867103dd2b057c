//! Compilation of the right-hand sides of comparisons into matchers:
//! regexes (linear time, size-bounded), wildcard patterns, literal sets
//! (hash sets, merged integer ranges, IP prefix sets).

use std::collections::{HashMap, HashSet};
use std::net::IpAddr;
use std::sync::Arc;

use memchr::memmem;
use regex::bytes::{Regex, RegexBuilder};

use crate::error::ErrorKind;
use crate::exec::Val;
use crate::ipset::{IpSet, Prefix, ip_bits};
use crate::lists::List;
use crate::types::Value;

/// `lt`, `le`, `gt`, `ge`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OrdOp {
    Lt,
    Le,
    Gt,
    Ge,
}

impl OrdOp {
    fn holds(self, o: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            OrdOp::Lt => o == Less,
            OrdOp::Le => o != Greater,
            OrdOp::Gt => o == Greater,
            OrdOp::Ge => o != Less,
        }
    }
}

/// A compiled comparison: the operator and its right-hand side.
#[derive(Debug, Clone)]
pub(crate) enum Matcher {
    BytesEq(Box<[u8]>),
    BytesOrd(OrdOp, Box<[u8]>),
    Contains(Box<memmem::Finder<'static>>),
    Regex(Regex),
    Wildcard(Arc<Wildcard>),
    BytesIn(BytesSet),
    IntEq(i64),
    IntOrd(OrdOp, i64),
    IntIn(RangeSet),
    BitAnd(i64),
    IpEq(IpAddr),
    IpIn(IpMatcher),
    List(Arc<List>),
}

/// `ip in {...}`: a few prefixes are scanned, many go into an [`IpSet`].
#[derive(Debug, Clone)]
pub(crate) struct IpMatcher {
    prefixes: Vec<Prefix>,
    masks: Vec<u128>,
    set: Option<IpSet>,
}

impl IpMatcher {
    const SET_THRESHOLD: usize = 8;

    pub(crate) fn new(mut prefixes: Vec<Prefix>) -> Self {
        prefixes.sort_by_key(|p| (p.v6, p.len, p.net));
        prefixes.dedup();
        let set = (prefixes.len() > Self::SET_THRESHOLD).then(|| {
            let mut set = IpSet::new();
            for p in &prefixes {
                set.insert_prefix(*p);
            }
            set
        });
        let masks = prefixes.iter().map(Prefix::mask).collect();
        IpMatcher {
            prefixes,
            masks,
            set,
        }
    }

    pub(crate) fn prefixes(&self) -> &[Prefix] {
        &self.prefixes
    }

    fn contains(&self, ip: IpAddr) -> bool {
        if let Some(set) = &self.set {
            return set.contains(ip);
        }
        let (v6, bits) = ip_bits(ip);
        let mapped = match ip {
            IpAddr::V6(a) => a.to_ipv4_mapped().map(|m| u128::from(u32::from(m))),
            IpAddr::V4(_) => None,
        };
        self.prefixes.iter().zip(&self.masks).any(|(p, m)| {
            (p.v6 == v6 && bits & m == p.net) || (!p.v6 && mapped.is_some_and(|x| x & m == p.net))
        })
    }
}

/// IPv4-mapped IPv6 addresses compare as the IPv4 address they map.
pub(crate) fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

impl Matcher {
    pub(crate) fn matches(&self, v: &Val<'_>) -> bool {
        match v {
            Val::Bytes(b) => self.match_bytes(b),
            Val::Int(i) => self.match_int(*i),
            Val::Ip(ip) => self.match_ip(*ip),
            _ => false,
        }
    }

    /// Like [`Matcher::matches`], on a field's value without conversion.
    #[inline]
    pub(crate) fn matches_value(&self, v: &Value<'_>) -> bool {
        match v {
            Value::Bytes(b) => self.match_bytes(b),
            Value::Int(i) => self.match_int(*i),
            Value::Ip(ip) => self.match_ip(*ip),
            _ => false,
        }
    }

    #[inline]
    fn match_bytes(&self, b: &[u8]) -> bool {
        match self {
            Matcher::BytesEq(lit) => **lit == *b,
            Matcher::BytesOrd(op, lit) => op.holds(b.cmp(lit)),
            Matcher::Contains(f) => f.find(b).is_some(),
            Matcher::Regex(re) => re.is_match(b),
            Matcher::Wildcard(w) => w.is_match(b),
            Matcher::BytesIn(set) => set.contains(b),
            Matcher::List(list) => matches!(&**list, List::Bytes(set) if set.contains(b)),
            _ => false,
        }
    }

    #[inline]
    fn match_int(&self, i: i64) -> bool {
        match self {
            Matcher::IntEq(n) => i == *n,
            Matcher::IntOrd(op, n) => op.holds(i.cmp(n)),
            Matcher::IntIn(set) => set.contains(i),
            Matcher::BitAnd(n) => i & n != 0,
            Matcher::List(list) => matches!(&**list, List::Int(set) if set.contains(&i)),
            _ => false,
        }
    }

    #[inline]
    fn match_ip(&self, ip: IpAddr) -> bool {
        match self {
            Matcher::IpEq(want) => canonical_ip(ip) == *want,
            Matcher::IpIn(m) => m.contains(ip),
            Matcher::List(list) => matches!(&**list, List::Ip(set) if set.contains(ip)),
            _ => false,
        }
    }
}

/// A set of byte strings: a short list scanned in order, or a hash set
/// once it is large enough that hashing wins.
#[derive(Debug, Clone)]
pub(crate) enum BytesSet {
    Small(Vec<Box<[u8]>>),
    Large(HashSet<Box<[u8]>>),
}

impl BytesSet {
    const HASH_THRESHOLD: usize = 8;

    pub(crate) fn new(items: Vec<Vec<u8>>) -> Self {
        let mut seen = HashSet::new();
        let items: Vec<Box<[u8]>> = items
            .into_iter()
            .map(Vec::into_boxed_slice)
            .filter(|i| seen.insert(i.clone()))
            .collect();
        if items.len() > Self::HASH_THRESHOLD {
            BytesSet::Large(items.into_iter().collect())
        } else {
            BytesSet::Small(items)
        }
    }

    fn contains(&self, b: &[u8]) -> bool {
        match self {
            BytesSet::Small(v) => v.iter().any(|i| **i == *b),
            BytesSet::Large(s) => s.contains(b),
        }
    }

    pub(crate) fn items(&self) -> Vec<&[u8]> {
        match self {
            BytesSet::Small(v) => v.iter().map(|b| &**b).collect(),
            BytesSet::Large(s) => s.iter().map(|b| &**b).collect(),
        }
    }
}

/// Sorted, merged, inclusive integer ranges.
#[derive(Debug, Clone)]
pub(crate) struct RangeSet(Vec<(i64, i64)>);

impl RangeSet {
    pub(crate) fn new(mut ranges: Vec<(i64, i64)>) -> Self {
        ranges.sort_unstable();
        let mut merged: Vec<(i64, i64)> = Vec::with_capacity(ranges.len());
        for (s, e) in ranges {
            match merged.last_mut() {
                Some(last) if s <= last.1.saturating_add(1) => last.1 = last.1.max(e),
                _ => merged.push((s, e)),
            }
        }
        RangeSet(merged)
    }

    fn contains(&self, i: i64) -> bool {
        let idx = self.0.partition_point(|(s, _)| *s <= i);
        idx > 0 && self.0[idx - 1].1 >= i
    }
}

/// A wildcard pattern (`*` matches any run of bytes, including none) that
/// must match the whole value.
#[derive(Debug, Clone)]
pub(crate) struct Wildcard {
    /// The literal pieces between the stars.
    pieces: Vec<Vec<u8>>,
    case_insensitive: bool,
    /// For two or more stars: an anchored, lazy regex with one group per star.
    regex: Option<Regex>,
}

impl Wildcard {
    pub(crate) fn is_match(&self, v: &[u8]) -> bool {
        let eq = |a: &[u8], b: &[u8]| {
            if self.case_insensitive {
                a.eq_ignore_ascii_case(b)
            } else {
                a == b
            }
        };
        match (&self.regex, self.pieces.as_slice()) {
            (Some(re), _) => re.is_match(v),
            (None, [only]) => eq(only, v),
            (None, [head, tail]) => {
                v.len() >= head.len() + tail.len()
                    && eq(head, &v[..head.len()])
                    && eq(tail, &v[v.len() - tail.len()..])
            }
            _ => false,
        }
    }

    /// The longest literal piece, which every matching value contains.
    pub(crate) fn longest_piece(&self) -> &[u8] {
        self.pieces
            .iter()
            .max_by_key(|p| p.len())
            .map_or(&[][..], |p| &p[..])
    }

    pub(crate) fn case_insensitive(&self) -> bool {
        self.case_insensitive
    }

    /// The regex with one capture group per star (for `wildcard_replace`).
    pub(crate) fn capture_regex(&self) -> &Regex {
        self.regex.as_ref().expect("built with captures")
    }

    pub(crate) fn stars(&self) -> usize {
        self.pieces.len() - 1
    }
}

/// Builds size-bounded regexes and wildcards, sharing identical ones
/// across all the expressions of one compilation.
#[derive(Default)]
pub(crate) struct MatcherCache {
    regexes: HashMap<String, Regex>,
    wildcards: HashMap<(Vec<u8>, bool, bool), Arc<Wildcard>>,
}

/// Most regexes (and, separately, wildcards) a compiler keeps for reuse.
const MAX_CACHED: usize = 100_000;

/// Escapes bytes for a regex in `(?-u)` mode.
fn escape_bytes(out: &mut String, bytes: &[u8]) {
    use std::fmt::Write;
    for b in bytes {
        if b.is_ascii_alphanumeric() || *b == b'_' || *b == b'/' || *b == b'-' {
            out.push(*b as char);
        } else {
            let _ = write!(out, "\\x{b:02x}");
        }
    }
}

impl MatcherCache {
    pub(crate) fn regex(&mut self, pattern: &str, max_size: usize) -> Result<Regex, ErrorKind> {
        if let Some(re) = self.regexes.get(pattern) {
            return Ok(re.clone());
        }
        let re = RegexBuilder::new(pattern)
            .size_limit(max_size)
            .dfa_size_limit(max_size)
            .build()
            .map_err(|e| match e {
                regex::Error::CompiledTooBig(_) => ErrorKind::RegexTooBig { max: max_size },
                other => ErrorKind::InvalidRegex {
                    message: other.to_string(),
                },
            })?;
        if self.regexes.len() < MAX_CACHED {
            self.regexes.insert(pattern.to_owned(), re.clone());
        }
        Ok(re)
    }

    /// Compiles a wildcard pattern. `captures` forces the regex form (one
    /// group per star), as `wildcard_replace` needs.
    pub(crate) fn wildcard(
        &mut self,
        pattern: &[u8],
        case_insensitive: bool,
        captures: bool,
        max_stars: usize,
        max_size: usize,
    ) -> Result<Arc<Wildcard>, ErrorKind> {
        let key = (pattern.to_vec(), case_insensitive, captures);
        if let Some(w) = self.wildcards.get(&key) {
            return Ok(w.clone());
        }
        let mut pieces = vec![Vec::new()];
        let mut i = 0;
        let mut last_was_star = false;
        while i < pattern.len() {
            match pattern[i] {
                b'\\' => {
                    match pattern.get(i + 1) {
                        Some(c @ (b'*' | b'\\')) => pieces.last_mut().expect("non-empty").push(*c),
                        _ => {
                            return Err(ErrorKind::InvalidWildcard {
                                message: "a backslash must be followed by `*` or `\\` (write `\\\\` for a literal backslash)".into(),
                            });
                        }
                    }
                    i += 2;
                    last_was_star = false;
                }
                b'*' => {
                    if last_was_star {
                        return Err(ErrorKind::InvalidWildcard {
                            message:
                                "`**` is not allowed; one `*` already matches any run of characters"
                                    .into(),
                        });
                    }
                    pieces.push(Vec::new());
                    i += 1;
                    last_was_star = true;
                }
                c => {
                    pieces.last_mut().expect("non-empty").push(c);
                    i += 1;
                    last_was_star = false;
                }
            }
        }
        let stars = pieces.len() - 1;
        if stars > max_stars {
            return Err(ErrorKind::TooManyWildcardStars {
                stars,
                max: max_stars,
            });
        }
        let regex = if stars >= 2 || captures {
            let mut re = String::from(if case_insensitive {
                "(?s-u)(?i)^"
            } else {
                "(?s-u)^"
            });
            for (n, piece) in pieces.iter().enumerate() {
                if n > 0 {
                    re.push_str("(.*?)");
                }
                escape_bytes(&mut re, piece);
            }
            re.push('$');
            Some(self.regex(&re, max_size)?)
        } else {
            None
        };
        let w = Arc::new(Wildcard {
            pieces,
            case_insensitive,
            regex,
        });
        if self.wildcards.len() < MAX_CACHED {
            self.wildcards.insert(key, w.clone());
        }
        Ok(w)
    }
}

/// Parsed shape of an unquoted literal word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Word {
    Int(i64),
    IntRange(i64, i64),
    Ip(IpAddr),
    Cidr(IpAddr, u8),
    IpRange(IpAddr, IpAddr),
}

/// Why a word did not parse.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WordError {
    Int,
    Ip,
    Range,
    HostBits(String),
}

pub(crate) fn parse_int(text: &str) -> Option<i64> {
    let (neg, digits) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let value = if let Some(hex) = digits
        .strip_prefix("0x")
        .or_else(|| digits.strip_prefix("0X"))
    {
        i128::from_str_radix(hex, 16).ok()?
    } else {
        if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        digits.parse::<i128>().ok()?
    };
    i64::try_from(if neg { -value } else { value }).ok()
}

/// Classifies and parses an unquoted literal: `42`, `-1`, `0x1f`, `1..5`,
/// `192.0.2.1`, `10.0.0.0/8`, `2001:db8::/32`, `198.51.100.3..198.51.100.7`.
pub(crate) fn parse_word(text: &str) -> Result<Word, WordError> {
    let looks_ip = text.contains(':') || text.bytes().filter(|b| *b == b'.').count() >= 3;
    if let Some((a, b)) = text.split_once("..") {
        if looks_ip {
            let a: IpAddr = a.parse().map_err(|_| WordError::Ip)?;
            let b: IpAddr = b.parse().map_err(|_| WordError::Ip)?;
            if a.is_ipv4() != b.is_ipv4() || a > b {
                return Err(WordError::Range);
            }
            return Ok(Word::IpRange(a, b));
        }
        let a = parse_int(a).ok_or(WordError::Int)?;
        let b = parse_int(b).ok_or(WordError::Int)?;
        if a > b {
            return Err(WordError::Range);
        }
        return Ok(Word::IntRange(a, b));
    }
    if let Some((addr, len)) = text.split_once('/') {
        let addr: IpAddr = addr.parse().map_err(|_| WordError::Ip)?;
        let len: u8 = len.parse().map_err(|_| WordError::Ip)?;
        let width = if addr.is_ipv4() { 32 } else { 128 };
        if len > width {
            return Err(WordError::Ip);
        }
        let network = crate::ipset::network_of(addr, len);
        if network != addr {
            return Err(WordError::HostBits(format!("{network}/{len}")));
        }
        return Ok(Word::Cidr(addr, len));
    }
    if looks_ip {
        return text.parse().map(Word::Ip).map_err(|_| WordError::Ip);
    }
    parse_int(text).map(Word::Int).ok_or(WordError::Int)
}

impl WordError {
    pub(crate) fn into_kind(self) -> ErrorKind {
        match self {
            WordError::Int => ErrorKind::InvalidInteger,
            WordError::Ip => ErrorKind::InvalidIp,
            WordError::Range => ErrorKind::InvalidRange,
            WordError::HostBits(network) => ErrorKind::CidrHostBitsSet { network },
        }
    }
}

impl Word {
    pub(crate) fn type_name(&self) -> &'static str {
        match self {
            Word::Int(_) => "Int",
            Word::IntRange(..) => "Int range",
            Word::Ip(_) => "Ip",
            Word::Cidr(..) => "CIDR range",
            Word::IpRange(..) => "IP range",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn words_classify_by_shape() {
        assert_eq!(parse_word("42"), Ok(Word::Int(42)));
        assert_eq!(parse_word("-7"), Ok(Word::Int(-7)));
        assert_eq!(parse_word("0x1f"), Ok(Word::Int(31)));
        assert_eq!(parse_word("1..5"), Ok(Word::IntRange(1, 5)));
        assert_eq!(parse_word("5..1"), Err(WordError::Range));
        assert!(matches!(parse_word("10.0.0.0/8"), Ok(Word::Cidr(_, 8))));
        assert!(matches!(parse_word("2001:db8::/32"), Ok(Word::Cidr(_, 32))));
        assert_eq!(
            parse_word("10.0.0.1/8"),
            Err(WordError::HostBits("10.0.0.0/8".into()))
        );
        assert!(matches!(parse_word("::1"), Ok(Word::Ip(_))));
        assert!(matches!(
            parse_word("1.2.3.4..1.2.3.9"),
            Ok(Word::IpRange(..))
        ));
        assert_eq!(parse_word("99999999999999999999"), Err(WordError::Int));
    }

    #[test]
    fn ranges_merge_and_answer_membership() {
        let s = RangeSet::new(vec![(10, 20), (1, 3), (4, 5), (30, 30)]);
        for (i, want) in [
            (0, false),
            (1, true),
            (5, true),
            (6, false),
            (20, true),
            (30, true),
            (31, false),
        ] {
            assert_eq!(s.contains(i), want, "{i}");
        }
    }
}
