//! Conditional requests against a stored response (RFC 9110 §13): 304 Not Modified, 412
//! Precondition Failed, and whether a Range applies (If-Range).

use std::time::SystemTime;

use crate::freshness::parse_date;

/// An entity tag (RFC 9110 §8.8.3): its opaque part with the quotes, and whether it is weak.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct EntityTag<'a> {
    /// `W/` was given.
    pub weak: bool,
    /// The quoted string, quotes included.
    pub opaque: &'a [u8],
}

impl<'a> EntityTag<'a> {
    /// One entity tag, `"xyz"` or `W/"xyz"`; `None` when it is not one.
    pub fn parse(value: &'a [u8]) -> Option<EntityTag<'a>> {
        let value = value.trim_ascii();
        let (weak, rest) = match value.strip_prefix(b"W/") {
            Some(r) => (true, r),
            None => (false, value),
        };
        let ok = rest.len() >= 2
            && rest[0] == b'"'
            && rest[rest.len() - 1] == b'"'
            && rest[1..rest.len() - 1]
                .iter()
                .all(|&b| b == 0x21 || (0x23..=0x7e).contains(&b) || b >= 0x80);
        ok.then_some(EntityTag { weak, opaque: rest })
    }

    /// Strong comparison: both strong and the same (RFC 9110 §8.8.3.2).
    pub fn strong_eq(&self, other: &EntityTag<'_>) -> bool {
        !self.weak && !other.weak && self.opaque == other.opaque
    }

    /// Weak comparison: the same opaque part, weak or not.
    pub fn weak_eq(&self, other: &EntityTag<'_>) -> bool {
        self.opaque == other.opaque
    }
}

/// The entity tags of an If-Match or If-None-Match list; `None` for `*`. A quoted tag may
/// hold commas; an item that is not a tag is skipped.
fn tags(value: &[u8]) -> Option<Vec<EntityTag<'_>>> {
    if value.trim_ascii() == b"*" {
        return None;
    }
    let mut out = Vec::new();
    let mut i = 0;
    while i < value.len() {
        while i < value.len() && matches!(value[i], b' ' | b'\t' | b',') {
            i += 1;
        }
        let start = i;
        if value[i..].starts_with(b"W/") {
            i += 2;
        }
        if value.get(i) != Some(&b'"') {
            while i < value.len() && value[i] != b',' {
                i += 1;
            }
            continue;
        }
        let Some(close) = value[i + 1..].iter().position(|&b| b == b'"') else {
            break;
        };
        let end = i + close + 2;
        out.extend(EntityTag::parse(&value[start..end]));
        i = end;
    }
    Some(out)
}

/// The request's conditional fields, as sent.
#[derive(Clone, Copy, Debug, Default)]
pub struct Conditions<'a> {
    /// If-Match.
    pub if_match: Option<&'a [u8]>,
    /// If-None-Match.
    pub if_none_match: Option<&'a [u8]>,
    /// If-Modified-Since.
    pub if_modified_since: Option<&'a [u8]>,
    /// If-Unmodified-Since.
    pub if_unmodified_since: Option<&'a [u8]>,
    /// If-Range.
    pub if_range: Option<&'a [u8]>,
}

impl Conditions<'_> {
    /// Whether any condition is present.
    pub fn any(&self) -> bool {
        self.if_match.is_some()
            || self.if_none_match.is_some()
            || self.if_modified_since.is_some()
            || self.if_unmodified_since.is_some()
    }
}

/// The validators of a stored response.
#[derive(Clone, Copy, Debug, Default)]
pub struct Validators<'a> {
    /// Its ETag.
    pub etag: Option<&'a [u8]>,
    /// Its Last-Modified.
    pub last_modified: Option<SystemTime>,
    /// Its Date (a Last-Modified is strong only if at least a second before it, RFC 9110
    /// §8.8.2.2).
    pub date: Option<SystemTime>,
}

/// What the preconditions say (RFC 9110 §13.2.2, in its order).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Go on: serve the stored response (a Range then applies if [`range_applies`] says so).
    Proceed,
    /// 304 Not Modified.
    NotModified,
    /// 412 Precondition Failed.
    Failed,
}

/// Evaluates the preconditions of a GET or HEAD (`safe`) or of another method against the
/// stored response's validators.
pub fn evaluate(c: &Conditions<'_>, v: &Validators<'_>, safe: bool) -> Outcome {
    let etag = v.etag.and_then(EntityTag::parse);
    // 1. If-Match: a strong match, or 412.
    if let Some(im) = c.if_match {
        let ok = match tags(im) {
            None => etag.is_some() || v.last_modified.is_some(),
            Some(list) => etag.is_some_and(|e| list.iter().any(|t| t.strong_eq(&e))),
        };
        if !ok {
            return Outcome::Failed;
        }
    } else if let Some(ius) = c.if_unmodified_since.and_then(parse_date) {
        // 2. If-Unmodified-Since (ignored when If-Match is present, or when invalid).
        if v.last_modified.is_none_or(|lm| lm > ius) {
            return Outcome::Failed;
        }
    }
    // 3. If-None-Match: a weak match means not modified (412 for unsafe methods).
    if let Some(inm) = c.if_none_match {
        let matched = match tags(inm) {
            None => true,
            Some(list) => etag.is_some_and(|e| list.iter().any(|t| t.weak_eq(&e))),
        };
        if matched {
            return if safe {
                Outcome::NotModified
            } else {
                Outcome::Failed
            };
        }
    } else if safe && let Some(ims) = c.if_modified_since.and_then(parse_date) {
        // 4. If-Modified-Since, only for GET and HEAD, only without If-None-Match.
        if v.last_modified.is_some_and(|lm| lm <= ims) {
            return Outcome::NotModified;
        }
    }
    Outcome::Proceed
}

/// Whether a Range request's If-Range (if any) lets the range apply (RFC 9110 §13.1.5): a
/// strong ETag equal to the stored one, or a date equal to a strong Last-Modified.
pub fn range_applies(c: &Conditions<'_>, v: &Validators<'_>) -> bool {
    let Some(ir) = c.if_range else { return true };
    if let Some(tag) = EntityTag::parse(ir) {
        return v
            .etag
            .and_then(EntityTag::parse)
            .is_some_and(|e| e.strong_eq(&tag));
    }
    let (Some(date), Some(lm)) = (parse_date(ir), v.last_modified) else {
        return false;
    };
    let strong = v
        .date
        .is_some_and(|d| d.duration_since(lm).is_ok_and(|gap| gap.as_secs() >= 1));
    strong && date == lm
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn date(secs: u64) -> String {
        httpdate::fmt_http_date(at(secs))
    }

    const V: Validators<'static> = Validators {
        etag: Some(b"\"v1\""),
        last_modified: None,
        date: None,
    };

    #[test]
    fn entity_tags_compare_weakly_and_strongly() {
        let s = EntityTag::parse(b"\"a\"").unwrap();
        let w = EntityTag::parse(b"W/\"a\"").unwrap();
        assert!(s.strong_eq(&s) && !s.strong_eq(&w) && !w.strong_eq(&w));
        assert!(s.weak_eq(&w) && w.weak_eq(&w));
        assert!(EntityTag::parse(b"a").is_none() && EntityTag::parse(b"\"a b\"").is_none());
        let list = tags(b"\"a\", W/\"b\" ,\"c,d\", junk, \"e\"").unwrap();
        assert_eq!(
            list.len(),
            4,
            "a comma may be inside a tag; junk is skipped"
        );
        assert_eq!(list[2].opaque, b"\"c,d\"");
    }

    #[test]
    fn if_none_match_gives_304_for_get_and_412_otherwise() {
        let c = |inm: &'static [u8]| Conditions {
            if_none_match: Some(inm),
            ..Default::default()
        };
        assert_eq!(evaluate(&c(b"\"v1\""), &V, true), Outcome::NotModified);
        assert_eq!(
            evaluate(&c(b"W/\"v1\""), &V, true),
            Outcome::NotModified,
            "weak matches"
        );
        assert_eq!(
            evaluate(&c(b"\"x\", \"v1\""), &V, true),
            Outcome::NotModified
        );
        assert_eq!(evaluate(&c(b"*"), &V, true), Outcome::NotModified);
        assert_eq!(evaluate(&c(b"\"x\""), &V, true), Outcome::Proceed);
        assert_eq!(evaluate(&c(b"\"v1\""), &V, false), Outcome::Failed);
    }

    #[test]
    fn if_match_needs_a_strong_match() {
        let c = |im: &'static [u8]| Conditions {
            if_match: Some(im),
            ..Default::default()
        };
        assert_eq!(evaluate(&c(b"\"v1\""), &V, true), Outcome::Proceed);
        assert_eq!(evaluate(&c(b"W/\"v1\""), &V, true), Outcome::Failed);
        assert_eq!(evaluate(&c(b"\"v2\""), &V, true), Outcome::Failed);
        let weak = Validators {
            etag: Some(b"W/\"v1\""),
            ..V
        };
        assert_eq!(evaluate(&c(b"\"v1\""), &weak, true), Outcome::Failed);
    }

    #[test]
    fn dates_are_compared_and_ignored_when_a_tag_field_is_there() {
        let v = Validators {
            etag: None,
            last_modified: Some(at(1_000)),
            date: Some(at(5_000)),
        };
        let ims = |d: &str| {
            let d: &'static str = Box::leak(d.to_string().into_boxed_str());
            Conditions {
                if_modified_since: Some(d.as_bytes()),
                ..Default::default()
            }
        };
        assert_eq!(evaluate(&ims(&date(1_000)), &v, true), Outcome::NotModified);
        assert_eq!(evaluate(&ims(&date(2_000)), &v, true), Outcome::NotModified);
        assert_eq!(evaluate(&ims(&date(999)), &v, true), Outcome::Proceed);
        assert_eq!(evaluate(&ims("garbage"), &v, true), Outcome::Proceed);
        assert_eq!(
            evaluate(&ims(&date(2_000)), &v, false),
            Outcome::Proceed,
            "GET/HEAD only"
        );
        let both = Conditions {
            if_none_match: Some(b"\"zzz\""),
            ..ims(&date(2_000))
        };
        assert_eq!(
            evaluate(&both, &v, true),
            Outcome::Proceed,
            "INM wins over IMS"
        );
        let ius = |d: &str| {
            let d: &'static str = Box::leak(d.to_string().into_boxed_str());
            Conditions {
                if_unmodified_since: Some(d.as_bytes()),
                ..Default::default()
            }
        };
        assert_eq!(evaluate(&ius(&date(999)), &v, true), Outcome::Failed);
        assert_eq!(evaluate(&ius(&date(1_000)), &v, true), Outcome::Proceed);
    }

    #[test]
    fn if_range_needs_a_strong_validator_that_matches() {
        let v = Validators {
            etag: Some(b"\"v1\""),
            last_modified: Some(at(1_000)),
            date: Some(at(5_000)),
        };
        let c = |ir: &'static [u8]| Conditions {
            if_range: Some(ir),
            ..Default::default()
        };
        assert!(range_applies(&Conditions::default(), &v));
        assert!(range_applies(&c(b"\"v1\""), &v));
        assert!(!range_applies(&c(b"W/\"v1\""), &v));
        assert!(!range_applies(&c(b"\"v0\""), &v));
        let lm: &'static str = Box::leak(date(1_000).into_boxed_str());
        assert!(range_applies(&c(lm.as_bytes()), &v));
        let close = Validators {
            date: Some(at(1_000)),
            ..v
        };
        assert!(
            !range_applies(&c(lm.as_bytes()), &close),
            "a weak Last-Modified"
        );
    }
}
