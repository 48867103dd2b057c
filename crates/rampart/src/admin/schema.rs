//! The schemas of what the API edits in the configuration file: a custom rule, a rate
//! limiting rule, an IP access rule, a list, a zone's URL normalisation. The handlers keep
//! these as the file's tables in JSON (so that a change keeps the file's comments and the
//! loader alone decides what is valid); these types only describe them for the OpenAPI
//! document. A test holds each one's keys to the loader's key list, so the two cannot drift.
//! Optional keys are never null: the file cannot hold a null, so a key is sent or left out.

// Never built: they exist for their `ToSchema` derive.
#![allow(dead_code)]

use serde::Deserialize;
use utoipa::ToSchema;
use utoipa::openapi::{Object, ObjectBuilder, Type};

/// `[[zone.custom_rule]]`: an expression of the rules language and what to do on a match.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CustomRule {
    /// The rule's id (made when left out; `custom_rule.N` for a rule of the file without one).
    #[schema(nullable = false)]
    id: Option<String>,
    /// What the rule is for (shown in the log, never to clients).
    #[schema(nullable = false)]
    description: Option<String>,
    /// When it matches, in the rules language (checked by the same compiler as the file: a
    /// mistake answers 400 with the compiler's caret message).
    expression: String,
    action: RuleAction,
    /// Off keeps the rule in the file without running it.
    #[schema(nullable = false)]
    enabled: Option<bool>,
    /// The page a `block` answers with, instead of the edge's 403.
    #[schema(nullable = false)]
    response: Option<CustomResponse>,
    /// With `action = "skip"`: the phases the rest of this request skips.
    #[schema(nullable = false)]
    skip: Option<Vec<SkipPhase>>,
}

/// What a custom rule does on a match.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum RuleAction {
    Block,
    Log,
    Skip,
    JsChallenge,
    ManagedChallenge,
}

/// A phase a `skip` rule skips.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum SkipPhase {
    CustomRules,
    RateLimit,
    Bic,
    SecurityLevel,
}

/// The answer of a blocking rule.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct CustomResponse {
    /// A 4xx status.
    #[schema(minimum = 400, maximum = 499)]
    status: u16,
    /// One of the allowed types (default `text/plain`).
    #[schema(nullable = false, schema_with = response_types)]
    content_type: Option<String>,
    /// The body: at most 2 KB for a custom rule, 30 KB for a rate limiting rule.
    #[schema(nullable = false)]
    body: Option<String>,
}

/// A schema of one of `values`, of type `kind` (for `#[schema(schema_with = ...)]`, where a
/// field's values come from the loader's own tables).
pub(super) fn one_of<T: Into<serde_json::Value>>(
    kind: Type,
    values: impl IntoIterator<Item = T>,
) -> Object {
    ObjectBuilder::new()
        .schema_type(kind)
        .enum_values(Some(values))
        .build()
}

fn response_types() -> Object {
    one_of(
        Type::String,
        crate::config::security::CUSTOM_RESPONSE_TYPES
            .iter()
            .copied(),
    )
}

/// `[[zone.rate_limit]]`: how many requests that match the expression, counted per the
/// characteristics, are allowed in a period.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct RateLimitRule {
    /// The rule's id (made when left out).
    #[schema(nullable = false)]
    id: Option<String>,
    #[schema(nullable = false)]
    description: Option<String>,
    /// Which requests the rule looks at, in the rules language.
    expression: String,
    /// What a counter is kept per: `ip.src`, `http.host`, `http.request.uri.path`,
    /// `ip.src.asnum`, `ip.src.country`, `header:<name>`, `cookie:<name>`, `query:<name>`.
    #[schema(min_items = 1)]
    characteristics: Vec<String>,
    /// The period in seconds.
    #[schema(schema_with = periods)]
    period: u32,
    #[schema(minimum = 1, maximum = 1_000_000)]
    requests_per_period: u32,
    /// How long a client over the limit stays blocked, in seconds (0: only while over).
    #[schema(nullable = false, schema_with = mitigation_timeouts)]
    mitigation_timeout: Option<u32>,
    #[schema(nullable = false)]
    algorithm: Option<Algorithm>,
    /// Which requests count (default: those the expression matches).
    #[schema(nullable = false)]
    counting_expression: Option<String>,
    #[schema(nullable = false)]
    action: Option<RateLimitAction>,
    /// The page a `block` answers with, instead of the edge's 429.
    #[schema(nullable = false)]
    response: Option<CustomResponse>,
    #[schema(nullable = false)]
    enabled: Option<bool>,
}

fn periods() -> Object {
    one_of(Type::Integer, rampart_ratelimit::ALLOWED_PERIODS_SECS)
}

fn mitigation_timeouts() -> Object {
    let allowed = std::iter::once(0).chain(rampart_ratelimit::ALLOWED_MITIGATION_TIMEOUTS_SECS);
    one_of(Type::Integer, allowed)
}

/// How a rate limiting rule counts.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum Algorithm {
    Gcra,
    SlidingWindow,
}

/// What a rate limiting rule does over the limit.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum RateLimitAction {
    Block,
    Log,
    JsChallenge,
    ManagedChallenge,
}

/// `[[zone.ip_access_rule]]`: an address, range, AS or country that is blocked or allowed.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct IpAccessRule {
    #[schema(nullable = false)]
    id: Option<String>,
    target: IpTarget,
    /// An address, a CIDR range, an AS number (`AS64500` or `64500`) or a country code.
    value: String,
    mode: IpMode,
    #[schema(nullable = false)]
    note: Option<String>,
}

/// What an IP access rule's value is.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum IpTarget {
    Ip,
    IpRange,
    Asn,
    Country,
}

/// What an IP access rule does.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum IpMode {
    Block,
    Allow,
    JsChallenge,
    ManagedChallenge,
}

/// `[[list]]`: a named list of addresses and ranges, or of AS numbers, that every zone's
/// rules may use (`ip.src in $office`).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct List {
    /// Its name, as the path has it (a body may leave it out).
    #[schema(nullable = false)]
    name: Option<String>,
    kind: ListKind,
    /// Addresses and CIDR ranges, or AS numbers.
    items: Vec<ListItem>,
    #[schema(nullable = false)]
    description: Option<String>,
}

/// What a list holds.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum ListKind {
    Ip,
    Asn,
}

/// One item of a list.
#[derive(Deserialize, ToSchema)]
#[serde(untagged)]
pub(super) enum ListItem {
    /// An address, a range, or an AS number as text.
    Text(String),
    /// An AS number.
    Number(u32),
}

/// A zone's URL normalisation (Cloudflare's setting of that name).
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct UrlNormalization {
    /// How: `cloudflare` (also decodes unreserved characters and merges slashes) or
    /// `rfc3986`.
    #[serde(rename = "type")]
    #[schema(nullable = false)]
    kind: Option<NormalizationType>,
    /// Where: the URL rules see (`incoming`), also the one sent to the origin (`both`), or
    /// neither (`none`).
    #[schema(nullable = false)]
    scope: Option<NormalizationScope>,
}

/// How URLs are normalised.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum NormalizationType {
    Cloudflare,
    Rfc3986,
}

/// Where normalised URLs are used.
#[derive(Deserialize, ToSchema)]
#[serde(rename_all = "snake_case")]
pub(super) enum NormalizationScope {
    Incoming,
    Both,
    None,
}

/// The order of a zone's rules, by id: every rule once.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub(super) struct Reorder {
    pub order: Vec<String>,
}

#[cfg(test)]
mod tests {
    use utoipa::PartialSchema;
    use utoipa::openapi::{RefOr, Schema};

    use super::*;

    fn keys<T: PartialSchema>() -> Vec<String> {
        let RefOr::T(Schema::Object(o)) = T::schema() else {
            panic!("an object schema");
        };
        let mut keys: Vec<String> = o.properties.keys().cloned().collect();
        keys.sort();
        keys
    }

    fn sorted(list: &[&str]) -> Vec<String> {
        let mut v: Vec<String> = list.iter().map(|s| s.to_string()).collect();
        v.sort();
        v
    }

    #[test]
    fn each_schema_has_exactly_the_keys_the_loader_takes() {
        use crate::config::{ip_rules, lists, security};
        assert_eq!(keys::<CustomRule>(), sorted(security::CUSTOM_RULE_KEYS));
        assert_eq!(keys::<RateLimitRule>(), sorted(security::RATE_LIMIT_KEYS));
        assert_eq!(keys::<CustomResponse>(), sorted(security::RESPONSE_KEYS));
        assert_eq!(keys::<IpAccessRule>(), sorted(ip_rules::IP_RULE_KEYS));
        assert_eq!(keys::<List>(), sorted(lists::LIST_KEYS));
    }
}
