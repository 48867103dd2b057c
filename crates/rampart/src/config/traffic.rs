//! A zone's traffic rules: `always_use_https`, `hsts`, `[[zone.redirect_rule]]`,
//! `[[zone.request_header_rule]]` and `[[zone.response_header_rule]]`.

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderName, HeaderValue};
use rampart_rules::{Compiler, Rule, RuleSet, StringExpr};

use super::walk::{Table, Walker};

/// What a zone does to traffic beyond security and caching.
#[derive(Clone, Debug)]
pub struct Traffic {
    /// `always_use_https`: plain-HTTP requests are redirected to https.
    pub always_use_https: bool,
    /// `hsts`: the Strict-Transport-Security field sent over HTTPS.
    pub hsts: Option<Hsts>,
    /// `[[zone.redirect_rule]]`, in order (the first match redirects).
    pub redirects: Arc<RuleSet<RedirectRule>>,
    /// `[[zone.request_header_rule]]`, in order (every match applies).
    pub request_headers: Arc<RuleSet<HeaderRule>>,
    /// `[[zone.response_header_rule]]`, in order (every match applies).
    pub response_headers: Arc<RuleSet<HeaderRule>>,
}

/// `hsts = { max_age, include_subdomains, preload }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hsts {
    /// The field's value, built once.
    pub value: HeaderValue,
}

/// A value that is written in the file or computed per request.
#[derive(Clone, Debug)]
pub enum FieldValue {
    /// The same for every request.
    Static(Bytes),
    /// `{ expression = "concat(...)" }`: computed from the request.
    Expression(Arc<StringExpr>),
}

/// A `[[zone.redirect_rule]]`.
#[derive(Clone, Debug)]
pub struct RedirectRule {
    /// `id` (logged), or `redirect_rule.N`.
    pub id: String,
    /// `target`: the URL the client is sent to.
    pub target: FieldValue,
    /// `status`: 301, 302, 303, 307 or 308.
    pub status: u16,
    /// `preserve_query`: the request's query is appended to the target.
    pub preserve_query: bool,
}

/// One change a header rule makes.
#[derive(Clone, Debug)]
pub enum HeaderOp {
    /// `remove`: every field of this name goes.
    Remove(HeaderName),
    /// `set`: every field of this name is replaced by one with this value.
    Set(HeaderName, FieldValue),
    /// `add`: a field is added after the others of its name.
    Add(HeaderName, FieldValue),
}

/// A `[[zone.request_header_rule]]` or `[[zone.response_header_rule]]`.
#[derive(Clone, Debug)]
pub struct HeaderRule {
    /// `id` (logged), or `request_header_rule.N`.
    pub id: String,
    /// The changes, in the order they apply: removals, then `set`, then `add`.
    pub ops: Vec<HeaderOp>,
}

const HSTS_KEYS: &[&str] = &["max_age", "include_subdomains", "preload"];
const REDIRECT_KEYS: &[&str] = &[
    "id",
    "expression",
    "target",
    "status",
    "preserve_query",
    "enabled",
];
const HEADER_RULE_KEYS: &[&str] = &["id", "expression", "set", "add", "remove", "enabled"];

/// A year, in seconds: the least `max_age` the HSTS preload list accepts.
const PRELOAD_MIN_AGE: i64 = 31_536_000;

/// Which side of the exchange a header rule changes.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Side {
    Request,
    Response,
}

impl Side {
    fn table(self) -> &'static str {
        match self {
            Side::Request => "request_header_rule",
            Side::Response => "response_header_rule",
        }
    }
}

/// The traffic rules of the zone table `t`.
pub(super) fn read_traffic(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
) -> Traffic {
    Traffic {
        always_use_https: w.boolean(t, "always_use_https").unwrap_or(false),
        hsts: read_hsts(w, t),
        redirects: Arc::new(read_redirects(w, t, compiler)),
        request_headers: Arc::new(read_header_rules(w, t, compiler, Side::Request)),
        response_headers: Arc::new(read_header_rules(w, t, compiler, Side::Response)),
    }
}

fn read_hsts(w: &mut Walker<'_>, zone: &Table<'_, '_>) -> Option<Hsts> {
    let v = zone.get("hsts")?;
    let t = w.table(&zone.key("hsts"), v, HSTS_KEYS)?;
    let max_age = match w.integer(&t, "max_age", 0..=i64::from(u32::MAX)) {
        Some((n, _)) => n,
        None => {
            if t.get("max_age").is_none() {
                w.missing(&t, "max_age");
            }
            return None;
        }
    };
    let subdomains = w.boolean(&t, "include_subdomains").unwrap_or(false);
    let preload = w.boolean(&t, "preload").unwrap_or(false);
    if preload && (max_age < PRELOAD_MIN_AGE || !subdomains) {
        let span = t.span_of("preload");
        w.warn(
            &span,
            &t.key("preload"),
            "the HSTS preload list takes only max_age of at least 31536000 with include_subdomains = true",
        );
    }
    let mut value = format!("max-age={max_age}");
    if subdomains {
        value.push_str("; includeSubDomains");
    }
    if preload {
        value.push_str("; preload");
    }
    Some(Hsts {
        value: HeaderValue::from_str(&value).expect("digits and tokens"),
    })
}

fn read_redirects(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
) -> RuleSet<RedirectRule> {
    let mut rules = Vec::new();
    for (i, (_, t)) in w
        .tables(zone, "redirect_rule", REDIRECT_KEYS)
        .iter()
        .enumerate()
    {
        let id = w
            .string(t, "id")
            .map_or_else(|| format!("redirect_rule.{}", i + 1), |(s, _)| s);
        let filter = rule_filter(w, t, compiler);
        let target = match t.get("target") {
            Some(_) => read_value(w, t, "target", compiler, check_target),
            None => {
                w.missing(t, "target");
                None
            }
        };
        let status = match w.integer(t, "status", 0..=999) {
            None => Some(301),
            Some((s @ (301 | 302 | 303 | 307 | 308), _)) => Some(s as u16),
            Some((s, span)) => {
                w.error(
                    &span,
                    &t.key("status"),
                    format!("a redirect's status is 301, 302, 303, 307 or 308, not {s}"),
                );
                None
            }
        };
        let preserve_query = w.boolean(t, "preserve_query").unwrap_or(false);
        let enabled = w.boolean(t, "enabled").unwrap_or(true);
        if let (Some(filter), Some(target), Some(status), true) = (filter, target, status, enabled)
        {
            let rule = RedirectRule {
                id,
                target,
                status,
                preserve_query,
            };
            rules.push(Rule::new(rule, filter));
        }
    }
    RuleSet::new(rules)
}

fn read_header_rules(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
    side: Side,
) -> RuleSet<HeaderRule> {
    let mut rules = Vec::new();
    for (i, (_, t)) in w
        .tables(zone, side.table(), HEADER_RULE_KEYS)
        .iter()
        .enumerate()
    {
        let id = w
            .string(t, "id")
            .map_or_else(|| format!("{}.{}", side.table(), i + 1), |(s, _)| s);
        let filter = rule_filter(w, t, compiler);
        let mut ops = Vec::new();
        let mut ok = true;
        for (name, span) in w.strings(t, "remove").unwrap_or_default() {
            match field_name(&name, side) {
                Ok(n) => ops.push(HeaderOp::Remove(n)),
                Err(m) => {
                    w.error(&span, &t.key("remove"), m);
                    ok = false;
                }
            }
        }
        for (key, make) in [
            (
                "set",
                HeaderOp::Set as fn(HeaderName, FieldValue) -> HeaderOp,
            ),
            ("add", HeaderOp::Add),
        ] {
            let Some(v) = t.get(key) else { continue };
            let Some(map) = v.get_ref().as_table() else {
                w.error(
                    &v.span(),
                    &t.key(key),
                    format!(
                        "expected a table of field names and values, e.g. {key} = {{ \"X-Frame-Options\" = \"DENY\" }}"
                    ),
                );
                ok = false;
                continue;
            };
            let fields = Walker::free_table(&t.key(key), map, v.span());
            for (name, _) in map.iter() {
                let name: &str = name.get_ref();
                let path = fields.key(name);
                let span = fields.span_of(name);
                let parsed = field_name(name, side);
                let value = read_value(w, &fields, name, compiler, check_field_value);
                match (parsed, value) {
                    (Ok(n), Some(v)) => ops.push(make(n, v)),
                    (Err(m), _) => {
                        w.error(&span, &path, m);
                        ok = false;
                    }
                    (_, None) => ok = false,
                }
            }
        }
        if ops.is_empty() && ok {
            let span = t.span.clone();
            w.error(
                &span,
                &t.key("set"),
                "the rule changes nothing: give it `set`, `add` or `remove`",
            );
        }
        let enabled = w.boolean(t, "enabled").unwrap_or(true);
        if let (Some(filter), true, true) = (filter, ok, enabled) {
            rules.push(Rule::new(HeaderRule { id, ops }, filter));
        }
    }
    RuleSet::new(rules)
}

/// The rule's `expression`, which is required, compiled; it must not read the body (these
/// rules run before the body is read, or after it went to the origin).
fn rule_filter(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
) -> Option<rampart_rules::Filter> {
    if t.get("expression").is_none() {
        w.missing(t, "expression");
        return None;
    }
    let filter = super::security::compile(w, t, "expression", compiler)?;
    if super::request::reads_body_field(|id| filter.reads(id)) {
        let span = t.span_of("expression");
        w.error(&span, &t.key("expression"), BODY_FIELD);
        return None;
    }
    Some(filter)
}

const BODY_FIELD: &str =
    "redirect and header rules see the request head only: this expression reads the body";

/// A value: a string (checked by `check`), or `{ expression = "..." }` whose value is a
/// string.
fn read_value(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    key: &str,
    compiler: &mut Compiler<'_>,
    check: fn(&str) -> Result<(), String>,
) -> Option<FieldValue> {
    let v = t.get(key)?;
    if let Some(s) = v.get_ref().as_str() {
        return match check(s) {
            Ok(()) => Some(FieldValue::Static(Bytes::copy_from_slice(s.as_bytes()))),
            Err(m) => {
                w.error(&v.span(), &t.key(key), m);
                None
            }
        };
    }
    if v.get_ref().as_table().is_none() {
        w.error(
            &v.span(),
            &t.key(key),
            format!(
                "expected a string, or {{ expression = \"...\" }}, found {}",
                v.get_ref().type_str()
            ),
        );
        return None;
    }
    let e = w.table(&t.key(key), v, &["expression"])?;
    let Some((text, span)) = w.string(&e, "expression") else {
        if e.get("expression").is_none() {
            w.missing(&e, "expression");
        }
        return None;
    };
    match compiler.compile_string(&text) {
        Ok(expr) if super::request::reads_body_field(|id| expr.reads(id)) => {
            w.error(&span, &e.key("expression"), BODY_FIELD);
            None
        }
        Ok(expr) => Some(FieldValue::Expression(Arc::new(expr))),
        Err(err) => {
            w.error(
                &span,
                &e.key("expression"),
                format!("the expression does not compile:\n{err}"),
            );
            None
        }
    }
}

/// A static redirect target: an absolute `http(s)://` URL or a path from the root.
fn check_target(s: &str) -> Result<(), String> {
    let absolute = s.starts_with("https://") || s.starts_with("http://");
    if !(absolute || (s.starts_with('/') && !s.starts_with("//"))) {
        return Err(format!(
            "`{s}` is not a redirect target: write an absolute URL (\"https://example.test/new\") or a path (\"/new\")"
        ));
    }
    if s.bytes().any(|b| !b.is_ascii_graphic()) {
        return Err("a redirect target has no spaces, control characters or non-ASCII bytes: percent-encode them".into());
    }
    Ok(())
}

fn check_field_value(s: &str) -> Result<(), String> {
    match HeaderValue::from_str(s) {
        Ok(_) if s.trim() == s => Ok(()),
        Ok(_) => Err("a field value does not start or end with whitespace".into()),
        Err(_) => Err("a field value has no control characters (CR, LF, NUL)".into()),
    }
}

/// A field name a rule may change on `side`: a valid name that is neither hop-by-hop nor
/// framing, nor a field rampart sets itself.
fn field_name(name: &str, side: Side) -> Result<HeaderName, String> {
    let parsed = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
        format!("`{name}` is not a field name (letters, digits and !#$%&'*+-.^_`|~)")
    })?;
    let lower = parsed.as_str();
    let framing = rampart_http::is_standard_hop_by_hop(lower) || lower == "content-length";
    let owned: &[&str] = match side {
        Side::Request => &[
            "host",
            "expect",
            "via",
            "x-forwarded-for",
            "x-forwarded-proto",
            "forwarded",
        ],
        Side::Response => &["content-encoding", "content-range", "age", "cache-status"],
    };
    if framing {
        return Err(format!(
            "`{name}` frames the message hop by hop: rampart sets it, a rule cannot"
        ));
    }
    if owned.contains(&lower) || lower.starts_with("rampart-") {
        return Err(format!(
            "`{name}` is set by rampart itself: a rule cannot change it"
        ));
    }
    Ok(parsed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_names_that_frame_or_belong_to_rampart_are_refused() {
        for n in [
            "Transfer-Encoding",
            "connection",
            "Content-Length",
            "rampart-ray",
        ] {
            assert!(field_name(n, Side::Request).is_err(), "{n}");
            assert!(field_name(n, Side::Response).is_err(), "{n}");
        }
        assert!(field_name("X-Forwarded-For", Side::Request).is_err());
        assert!(field_name("Host", Side::Request).is_err());
        assert!(field_name("Age", Side::Response).is_err());
        assert!(field_name("Rampart-Cache-Status", Side::Response).is_err());
        assert!(field_name("bad name", Side::Response).is_err());
        assert!(field_name("X-Frame-Options", Side::Response).is_ok());
        assert!(field_name("X-Forwarded-For", Side::Response).is_ok());
        assert!(field_name("Cookie", Side::Request).is_ok());
    }

    #[test]
    fn targets_are_absolute_urls_or_paths() {
        assert!(check_target("https://a.test/x?y=1").is_ok());
        assert!(check_target("/new").is_ok());
        for bad in [
            "a.test/x",
            "//evil.test/",
            "javascript:alert(1)",
            "/a b",
            "/\u{e9}",
        ] {
            assert!(check_target(bad).is_err(), "{bad}");
        }
    }
}
