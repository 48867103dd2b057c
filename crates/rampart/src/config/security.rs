//! A zone's security tables: `[[zone.ip_access_rule]]`, `[[zone.custom_rule]]`,
//! `[[zone.rate_limit]]` and `[[zone.error_page]]`, compiled when the configuration loads so
//! that `rampart check` finds every mistake and requests only execute.

use std::path::Path;
use std::sync::{Arc, OnceLock};

use rampart_ratelimit::{Counting, Quota};
use rampart_rules::{Compiler, Filter, RuleSet, Scheme};

pub use super::ip_rules::{IpAccessRule, IpAccessRules, IpTarget};
use super::walk::{Table, Walker};
use crate::errors::CustomResponse;
use crate::errors::pages::{ErrorPages, MAX_PAGE_BYTES, PageFor};

/// The rules scheme every expression is compiled against: the standard HTTP scheme.
pub fn scheme() -> &'static Scheme {
    static SCHEME: OnceLock<Scheme> = OnceLock::new();
    SCHEME.get_or_init(Scheme::http)
}

/// Everything security-related of one zone.
#[derive(Clone, Debug, Default)]
pub struct ZoneSecurity {
    /// IP access rules.
    pub ip_access: IpAccessRules,
    /// Enabled custom rules, in order.
    pub custom_rules: Option<Arc<RuleSet<CustomRule>>>,
    /// Rate limiting rules, in order.
    pub rate_limits: Vec<Arc<RateLimitRule>>,
    /// Custom error pages.
    pub error_pages: ErrorPages,
    /// Which phases' rules read the request body.
    pub body_readers: super::request::BodyReaders,
}

/// Content types a custom response may declare.
pub const CUSTOM_RESPONSE_TYPES: &[&str] =
    &["text/html", "text/plain", "application/json", "text/xml"];
/// Largest body of a custom rule's response.
pub const MAX_CUSTOM_RULE_BODY_BYTES: usize = 2 * 1024;
/// Largest body of a rate limiting rule's response.
pub const MAX_RATE_LIMIT_BODY_BYTES: usize = 30 * 1024;

/// What a matching custom rule does.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RuleAction {
    /// 403 / 1020, or the rule's custom response.
    Block,
    /// Record the match in the log and go on.
    Log,
    /// Stop evaluating custom rules, and skip the listed later phases.
    Skip(SkipPhases),
    /// A challenge, unless the client has a clearance (403 with the challenge page).
    Challenge(super::challenge::ChallengeKind),
}

/// Later phases a `skip` rule can skip.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SkipPhases {
    /// The remaining custom rules (always, for a skip rule).
    pub custom_rules: bool,
    /// The rate limiting rules.
    pub rate_limit: bool,
    /// The Browser Integrity Check.
    pub bic: bool,
    /// The security level's challenge.
    pub security_level: bool,
}

/// A custom rule, as the rule set's action.
#[derive(Clone, Debug)]
pub struct CustomRule {
    /// SecurityRuleID in the log (the `id` key, or `custom_rule.N`).
    pub id: String,
    /// SecurityRuleDescription in the log.
    pub description: String,
    /// What it does.
    pub action: RuleAction,
    /// The custom response of a block rule.
    pub response: Option<CustomResponse>,
}

/// One request characteristic a rate limiting rule counts by.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Characteristic {
    /// `ip.src`.
    IpSrc,
    /// `http.host`.
    Host,
    /// `http.request.uri.path`.
    Path,
    /// `ip.src.asnum`.
    Asn,
    /// `ip.src.country`.
    Country,
    /// `header:<name>` (name lowercased).
    Header(String),
    /// `cookie:<name>`.
    Cookie(String),
    /// `query:<name>`.
    Query(String),
}

/// What a rate limiting rule does over the rate.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RateLimitAction {
    /// 429 / 1015 (or the rule's response).
    Block,
    /// Log and go on.
    Log,
    /// A challenge for a client over the rate, unless it has a clearance.
    Challenge(super::challenge::ChallengeKind),
}

/// A rate limiting rule.
#[derive(Clone, Debug)]
pub struct RateLimitRule {
    /// SecurityRuleID (the `id` key, or `rate_limit.N`), also the RateLimit field's name.
    pub id: String,
    /// SecurityRuleDescription.
    pub description: String,
    /// Which requests the rule applies to.
    pub filter: Filter,
    /// Which requests count (evaluated after the response); `None` = every request the rule applies to, counted when it is checked.
    pub counting: Option<Filter>,
    /// What the counter key is made of.
    pub characteristics: Vec<Characteristic>,
    /// The numbers.
    pub quota: Quota,
    /// What happens over the rate.
    pub action: RateLimitAction,
    /// Custom response for `block`.
    pub response: Option<CustomResponse>,
}

/// The keys its table may have (the API's schema of it is checked against them).
pub const CUSTOM_RULE_KEYS: &[&str] = &[
    "id",
    "description",
    "expression",
    "action",
    "enabled",
    "response",
    "skip",
];
/// The keys its table may have (the API's schema of it is checked against them).
pub const RATE_LIMIT_KEYS: &[&str] = &[
    "id",
    "description",
    "expression",
    "characteristics",
    "period",
    "requests_per_period",
    "mitigation_timeout",
    "algorithm",
    "counting_expression",
    "action",
    "response",
    "enabled",
];
/// The keys its table may have (the API's schema of it is checked against them).
pub const RESPONSE_KEYS: &[&str] = &["status", "content_type", "body"];
const ERROR_PAGE_KEYS: &[&str] = &["for", "file"];

/// What the rest of the configuration says that the security tables need to know.
pub(super) struct SecurityContext<'a> {
    pub base_dir: &'a Path,
    pub has_country_db: bool,
    pub has_asn_db: bool,
    /// The `[[list]]`s expressions may name.
    pub lists: &'a rampart_rules::Lists,
}

pub(super) fn read_zone_security(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    cx: &SecurityContext<'_>,
) -> ZoneSecurity {
    let mut compiler = Compiler::new(scheme()).with_lists(cx.lists.clone());
    let mut security = ZoneSecurity {
        ip_access: super::ip_rules::read_ip_rules(w, zone, cx),
        custom_rules: read_custom_rules(w, zone, &mut compiler),
        rate_limits: read_rate_limits(w, zone, &mut compiler),
        error_pages: read_error_pages(w, zone, cx.base_dir),
        body_readers: Default::default(),
    };
    security.body_readers = super::request::BodyReaders::of(&security);
    security
}

/// Compiles one expression, reporting the engine's caret message at the expression's place
/// in the file.
pub(super) fn compile(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    key: &str,
    compiler: &mut Compiler<'_>,
) -> Option<Filter> {
    let (expr, span) = w.string(t, key)?;
    match compiler.compile(&expr) {
        Ok(f) => Some(f),
        Err(e) => {
            w.error(
                &span,
                &t.key(key),
                format!("the expression does not compile:\n{e}"),
            );
            None
        }
    }
}

fn read_response(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    max_body: usize,
    rule: &str,
) -> Option<CustomResponse> {
    let v = t.get("response")?;
    let r = w.table(&t.key("response"), v, RESPONSE_KEYS)?;
    let status = match w.integer(&r, "status", 0..=999) {
        Some((s, _)) if (400..=499).contains(&s) => Some(s as u16),
        Some((s, span)) => {
            w.error(
                &span,
                &r.key("status"),
                format!("{rule}: a custom response status must be from 400 to 499, not {s}"),
            );
            None
        }
        None => {
            if r.get("status").is_none() {
                w.missing(&r, "status");
            }
            None
        }
    };
    let content_type = match w.string(&r, "content_type") {
        Some((ct, _)) if CUSTOM_RESPONSE_TYPES.contains(&ct.as_str()) => Some(ct),
        Some((ct, span)) => {
            w.error(
                &span,
                &r.key("content_type"),
                format!(
                    "`{ct}` is not allowed; use one of {}",
                    CUSTOM_RESPONSE_TYPES.join(", ")
                ),
            );
            None
        }
        None => Some("text/plain".to_string()),
    };
    let body = match w.string(&r, "body") {
        Some((b, span)) if b.len() > max_body => {
            w.error(
                &span,
                &r.key("body"),
                format!(
                    "{rule}: the body is {} bytes; at most {max_body} are allowed",
                    b.len()
                ),
            );
            None
        }
        Some((b, _)) => Some(b),
        None => Some(String::new()),
    };
    Some(CustomResponse {
        status: status?,
        content_type: content_type?,
        body: Arc::from(body?.into_bytes()),
    })
}

fn read_custom_rules(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
) -> Option<Arc<RuleSet<CustomRule>>> {
    let tables = w.tables(zone, "custom_rule", CUSTOM_RULE_KEYS);
    if tables.is_empty() {
        return None;
    }
    let mut rules = Vec::new();
    for (i, (_, t)) in tables.iter().enumerate() {
        let id = w
            .string(t, "id")
            .map_or_else(|| format!("custom_rule.{}", i + 1), |(s, _)| s);
        let description = w
            .string(t, "description")
            .map(|(s, _)| s)
            .unwrap_or_default();
        let enabled = w.boolean(t, "enabled").unwrap_or(true);
        if t.get("expression").is_none() {
            w.missing(t, "expression");
        }
        let filter = compile(w, t, "expression", compiler);
        let action = match w.string(t, "action") {
            None => {
                if t.get("action").is_none() {
                    w.missing(t, "action");
                }
                None
            }
            Some((a, span)) => match a.as_str() {
                "block" => Some(RuleAction::Block),
                "log" => Some(RuleAction::Log),
                "skip" => {
                    let mut skip = SkipPhases {
                        custom_rules: true,
                        ..SkipPhases::default()
                    };
                    for (phase, span) in w.strings(t, "skip").unwrap_or_default() {
                        match phase.as_str() {
                            "custom_rules" => skip.custom_rules = true,
                            "rate_limit" => skip.rate_limit = true,
                            "bic" => skip.bic = true,
                            "security_level" => skip.security_level = true,
                            other => w.error(&span, &t.key("skip"), format!("cannot skip `{other}`; phases that can be skipped: custom_rules, rate_limit, bic, security_level")),
                        }
                    }
                    Some(RuleAction::Skip(skip))
                }
                other => match super::challenge::ChallengeKind::parse(other) {
                    Some(kind) => Some(RuleAction::Challenge(kind)),
                    None => {
                        w.error(
                            &span,
                            &t.key("action"),
                            format!("unknown action `{other}`; one of: block, log, skip, js_challenge, managed_challenge"),
                        );
                        None
                    }
                },
            },
        };
        if t.get("skip").is_some() && !matches!(action, Some(RuleAction::Skip(_)) | None) {
            let span = t.span_of("skip");
            w.error(
                &span,
                &t.key("skip"),
                "`skip` is only for rules with action = \"skip\"",
            );
        }
        let response = read_response(w, t, MAX_CUSTOM_RULE_BODY_BYTES, &id);
        if response.is_some() && !matches!(action, Some(RuleAction::Block) | None) {
            let span = t.span_of("response");
            w.error(
                &span,
                &t.key("response"),
                "`response` is only for rules with action = \"block\"",
            );
        }
        if let (Some(filter), Some(action), true) = (filter, action, enabled) {
            rules.push(rampart_rules::Rule::new(
                CustomRule {
                    id,
                    description,
                    action,
                    response,
                },
                filter,
            ));
        }
    }
    Some(Arc::new(RuleSet::new(rules)))
}

fn read_rate_limits(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
) -> Vec<Arc<RateLimitRule>> {
    let tables = w.tables(zone, "rate_limit", RATE_LIMIT_KEYS);
    let mut out = Vec::new();
    for (i, (_, t)) in tables.iter().enumerate() {
        let id = w
            .string(t, "id")
            .map_or_else(|| format!("rate_limit.{}", i + 1), |(s, _)| s);
        let description = w
            .string(t, "description")
            .map(|(s, _)| s)
            .unwrap_or_default();
        let enabled = w.boolean(t, "enabled").unwrap_or(true);
        for key in [
            "expression",
            "characteristics",
            "period",
            "requests_per_period",
        ] {
            if t.get(key).is_none() {
                w.missing(t, key);
            }
        }
        let filter = compile(w, t, "expression", compiler);
        let counting = match t
            .get("counting_expression")
            .and_then(|v| v.get_ref().as_str())
        {
            Some(s) if s.trim().is_empty() => None,
            Some(_) => compile(w, t, "counting_expression", compiler)
                .map(Some)
                .unwrap_or(None),
            None => None,
        };
        let characteristics = read_characteristics(w, t);
        let quota = read_quota(w, t);
        let action = match w.string(t, "action") {
            None => Some(RateLimitAction::Block),
            Some((a, _)) if a == "block" => Some(RateLimitAction::Block),
            Some((a, _)) if a == "log" => Some(RateLimitAction::Log),
            Some((a, span)) => match super::challenge::ChallengeKind::parse(&a) {
                Some(kind) => Some(RateLimitAction::Challenge(kind)),
                None => {
                    w.error(
                        &span,
                        &t.key("action"),
                        format!("unknown action `{a}`; one of: block, log, js_challenge, managed_challenge"),
                    );
                    None
                }
            },
        };
        let response = read_response(w, t, MAX_RATE_LIMIT_BODY_BYTES, &id);
        if let (Some(filter), Some(quota), Some(action), Some(characteristics), true) =
            (filter, quota, action, characteristics, enabled)
        {
            out.push(Arc::new(RateLimitRule {
                id,
                description,
                filter,
                counting,
                characteristics,
                quota,
                action,
                response,
            }));
        }
    }
    out
}

/// `characteristics`: what a counter is kept per (at least one).
fn read_characteristics(w: &mut Walker<'_>, t: &Table<'_, '_>) -> Option<Vec<Characteristic>> {
    let mut characteristics = Vec::new();
    let mut ok = true;
    for (c, span) in w.strings(t, "characteristics").unwrap_or_default() {
        let parsed = match c.as_str() {
            "ip.src" => Some(Characteristic::IpSrc),
            "http.host" => Some(Characteristic::Host),
            "http.request.uri.path" => Some(Characteristic::Path),
            "ip.src.asnum" => Some(Characteristic::Asn),
            "ip.src.country" => Some(Characteristic::Country),
            other => match other.split_once(':') {
                Some(("header", n)) if !n.is_empty() => {
                    Some(Characteristic::Header(n.to_ascii_lowercase()))
                }
                Some(("cookie", n)) if !n.is_empty() => Some(Characteristic::Cookie(n.to_string())),
                Some(("query", n)) if !n.is_empty() => Some(Characteristic::Query(n.to_string())),
                _ => None,
            },
        };
        match parsed {
            Some(p) => characteristics.push(p),
            None => {
                ok = false;
                w.error(&span, &t.key("characteristics"), format!(
                    "unknown characteristic `{c}`; one of: ip.src, http.host, http.request.uri.path, ip.src.asnum, ip.src.country, header:<name>, cookie:<name>, query:<name>"
                ));
            }
        }
    }
    if ok && characteristics.is_empty() && t.get("characteristics").is_some() {
        let span = t.span_of("characteristics");
        w.error(
            &span,
            &t.key("characteristics"),
            "at least one characteristic is needed, e.g. [\"ip.src\"]",
        );
    }
    (ok && !characteristics.is_empty()).then_some(characteristics)
}

/// `period`, `requests_per_period` and `mitigation_timeout`: each is checked on its own, so
/// every one that is wrong is reported, not only the first.
fn read_quota(w: &mut Walker<'_>, t: &Table<'_, '_>) -> Option<Quota> {
    let period = w.integer(t, "period", 0..=i64::from(u32::MAX));
    let rpp = w.integer(t, "requests_per_period", 0..=i64::from(u32::MAX));
    let timeout = w.integer(t, "mitigation_timeout", 0..=i64::from(u32::MAX));
    let mut ok = true;
    let counting = match w.string(t, "algorithm") {
        None => Counting::Gcra,
        Some((a, _)) if a == "gcra" => Counting::Gcra,
        Some((a, _)) if a == "sliding_window" => Counting::SlidingWindow,
        Some((a, span)) => {
            w.error(
                &span,
                &t.key("algorithm"),
                format!("unknown algorithm `{a}`; one of: gcra, sliding_window"),
            );
            ok = false;
            Counting::Gcra
        }
    };
    type Check = fn(u32) -> Result<(), rampart_ratelimit::QuotaError>;
    let checks = [
        ("period", &period, Quota::check_period as Check),
        (
            "requests_per_period",
            &rpp,
            Quota::check_requests_per_period,
        ),
        (
            "mitigation_timeout",
            &timeout,
            Quota::check_mitigation_timeout,
        ),
    ];
    for (key, value, check) in checks {
        if let Some((n, span)) = value
            && let Err(e) = check(*n as u32)
        {
            w.error(span, &t.key(key), e.to_string());
            ok = false;
        }
    }
    let ((p, pspan), (r, _)) = (period?, rpp?);
    if !ok {
        return None;
    }
    let timeout = timeout.map_or(0, |(n, _)| n as u32);
    match Quota::new(p as u32, r as u32, timeout) {
        Ok(q) => Some(q.counted_by(counting)),
        Err(e) => {
            w.error(&pspan, &t.key("period"), e.to_string());
            None
        }
    }
}

fn read_error_pages(w: &mut Walker<'_>, zone: &Table<'_, '_>, base_dir: &Path) -> ErrorPages {
    let tables = w.tables(zone, "error_page", ERROR_PAGE_KEYS);
    let mut pages = Vec::new();
    for (_, t) in &tables {
        let target = match w.string(t, "for") {
            Some((f, span)) => match PageFor::parse(&f) {
                Ok(p) => Some(p),
                Err(m) => {
                    w.error(&span, &t.key("for"), m);
                    None
                }
            },
            None => {
                if t.get("for").is_none() {
                    w.missing(t, "for");
                }
                None
            }
        };
        let body = match w.string(t, "file") {
            Some((f, span)) => {
                let path = base_dir.join(&f);
                match std::fs::metadata(&path) {
                    Err(e) => {
                        w.error(
                            &span,
                            &t.key("file"),
                            format!("cannot read {}: {e}", path.display()),
                        );
                        None
                    }
                    Ok(m) if m.len() > MAX_PAGE_BYTES => {
                        w.error(
                            &span,
                            &t.key("file"),
                            format!(
                                "{} is {} bytes; a page may be at most 1 MB",
                                path.display(),
                                m.len()
                            ),
                        );
                        None
                    }
                    Ok(_) => match std::fs::read_to_string(&path) {
                        Ok(s) => Some(s),
                        Err(e) => {
                            w.error(
                                &span,
                                &t.key("file"),
                                format!("cannot read {} as UTF-8 text: {e}", path.display()),
                            );
                            None
                        }
                    },
                }
            }
            None => {
                if t.get("file").is_none() {
                    w.missing(t, "file");
                }
                None
            }
        };
        if let (Some(target), Some(body)) = (target, body) {
            pages.push((target, Arc::from(body)));
        }
    }
    ErrorPages::new(pages)
}
