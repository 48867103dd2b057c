//! A zone's handling of what clients send: URL normalisation (`url_normalization`), how much
//! of a body the rules inspect (`max_body_inspection`), and header names with underscores
//! (`underscores_in_headers`).

use std::sync::OnceLock;

use rampart_http::Normalization;
use rampart_rules::{FieldId, Filter, HttpField};

use super::walk::{Table, Walker};

/// How a zone treats requests before its rules see them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RequestHandling {
    /// `url_normalization`.
    pub url_normalization: UrlNormalization,
    /// `max_body_inspection`: most body bytes the rules read (`http.request.body.*`).
    pub max_body_inspection: usize,
    /// `underscores_in_headers`.
    pub underscores_in_headers: Underscores,
}

impl Default for RequestHandling {
    fn default() -> Self {
        RequestHandling {
            url_normalization: UrlNormalization::default(),
            max_body_inspection: DEFAULT_MAX_BODY_INSPECTION,
            underscores_in_headers: Underscores::Pass,
        }
    }
}

/// Cloudflare's body inspection limit (Enterprise): 128 KB.
pub const DEFAULT_MAX_BODY_INSPECTION: usize = 128 * 1024;

/// `url_normalization = { type = "cloudflare" | "rfc3986", scope = "incoming" | "both" | "none" }`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UrlNormalization {
    /// `type`.
    pub kind: Normalization,
    /// `scope`.
    pub scope: NormalizationScope,
}

impl UrlNormalization {
    /// The normalisation the rules see, unless `scope = "none"`.
    pub fn for_rules(self) -> Option<Normalization> {
        (self.scope != NormalizationScope::None).then_some(self.kind)
    }

    /// Whether the origin is sent the normalised URL too.
    pub fn to_origin(self) -> bool {
        self.scope == NormalizationScope::Both
    }
}

/// Where normalised URLs are used.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum NormalizationScope {
    /// By rules, rate limits and the logs' security fields; the origin gets the URL as sent.
    #[default]
    Incoming,
    /// By the rules and by the origin.
    Both,
    /// Nowhere: rules see the URL as sent.
    None,
}

/// `underscores_in_headers`: what happens to a header whose name has `_` (other than one
/// that spoofs a header rampart sets, which is always dropped).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Underscores {
    /// Forwarded to the origin.
    #[default]
    Pass,
    /// Not forwarded.
    Drop,
    /// The request is refused with 400.
    Reject,
}

const NORMALIZATION_KEYS: &[&str] = &["type", "scope"];

/// The keys of [`KEYS`] in the zone table `t`.
pub(super) fn read_request_handling(w: &mut Walker<'_>, t: &Table<'_, '_>) -> RequestHandling {
    let mut handling = RequestHandling::default();
    if let Some(v) = t.get("url_normalization")
        && let Some(n) = w.table(&t.key("url_normalization"), v, NORMALIZATION_KEYS)
    {
        let kinds = [
            ("cloudflare", Normalization::Cloudflare),
            ("rfc3986", Normalization::Rfc3986),
        ];
        if let Some(kind) = w.choice(&n, "type", &kinds) {
            handling.url_normalization.kind = kind;
        }
        let scopes = [
            ("incoming", NormalizationScope::Incoming),
            ("both", NormalizationScope::Both),
            ("none", NormalizationScope::None),
        ];
        if let Some(scope) = w.choice(&n, "scope", &scopes) {
            handling.url_normalization.scope = scope;
        }
    }
    if let Some((n, _)) = w.integer(t, "max_body_inspection", 0..=16 << 20) {
        handling.max_body_inspection = n as usize;
    }
    let underscores = [
        ("pass", Underscores::Pass),
        ("drop", Underscores::Drop),
        ("reject", Underscores::Reject),
    ];
    if let Some(u) = w.choice(t, "underscores_in_headers", &underscores) {
        handling.underscores_in_headers = u;
    }
    handling
}

/// Which phases of a zone have rules that read the request body (`http.request.body.*` but
/// the size): the session reads the body, up to `max_body_inspection`, before those phases
/// only.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct BodyReaders {
    /// A custom rule does.
    pub custom_rules: bool,
    /// A rate limiting rule's expression does.
    pub rate_limits: bool,
}

impl BodyReaders {
    /// The phases of `security` whose rules read the body.
    pub fn of(security: &super::security::ZoneSecurity) -> BodyReaders {
        BodyReaders {
            custom_rules: security
                .custom_rules
                .as_ref()
                .is_some_and(|set| set.rules().iter().any(|r| reads_body(r.filter()))),
            rate_limits: security.rate_limits.iter().any(|r| reads_body(&r.filter)),
        }
    }
}

/// Whether `filter` reads a field of the request body.
fn reads_body(filter: &Filter) -> bool {
    reads_body_field(|id| filter.reads(id))
}

/// Whether `reads` is true of a field of the request body.
pub(super) fn reads_body_field(reads: impl Fn(FieldId) -> bool) -> bool {
    static BODY_FIELDS: OnceLock<Vec<FieldId>> = OnceLock::new();
    BODY_FIELDS
        .get_or_init(|| {
            let scheme = super::security::scheme();
            HttpField::ALL
                .iter()
                .filter(|f| f.needs_body())
                .filter_map(|f| scheme.field(f.name()).map(|(id, _)| id))
                .collect()
        })
        .iter()
        .any(|&id| reads(id))
}
