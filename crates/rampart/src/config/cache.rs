//! `[cache]` (the store) and `[[zone.cache_rule]]` (what a zone caches, and how).

use std::sync::Arc;
use std::time::Duration;

use rampart_cache::key::{KeySpec, QueryKey};
use rampart_rules::{Compiler, RuleSet};

use super::walk::{Table, Walker};

/// `[cache]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheConfig {
    /// `memory`: the memory tier's bound in bytes; 0 turns caching off.
    pub memory: u64,
    /// `max_object_size`: a larger body streams through uncached.
    pub max_object_size: u64,
    /// `disk_path`: the directory of the disk tier; none without one.
    pub disk_path: Option<std::path::PathBuf>,
    /// `disk`: the disk tier's bound in bytes.
    pub disk: u64,
}

/// 256 MB of memory, as the default of nginx's and Varnish's usual set-ups.
pub const DEFAULT_MEMORY: u64 = 256 << 20;

/// Largest object stored by default.
pub const DEFAULT_MAX_OBJECT: u64 = 32 << 20;

/// The disk tier's bound by default, when it has a `disk_path`.
pub const DEFAULT_DISK: u64 = 10 << 30;

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            memory: DEFAULT_MEMORY,
            max_object_size: DEFAULT_MAX_OBJECT,
            disk_path: None,
            disk: DEFAULT_DISK,
        }
    }
}

const CACHE_KEYS: &[&str] = &["memory", "max_object_size", "disk_path", "disk"];

/// `[cache]` of the root table; a relative `disk_path` is taken from `base_dir`.
pub(super) fn read_cache(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &std::path::Path,
) -> CacheConfig {
    let mut c = CacheConfig::default();
    let Some(v) = root.get("cache") else {
        return c;
    };
    let Some(t) = w.table("cache", v, CACHE_KEYS) else {
        return c;
    };
    if let Some(n) = w.size(&t, "memory", 1 << 40) {
        c.memory = n;
    }
    if let Some(n) = w.size(&t, "max_object_size", 1 << 40) {
        c.max_object_size = n;
    }
    if let Some(n) = w.size(&t, "disk", 1 << 50) {
        c.disk = n;
    }
    if let Some((p, span)) = w.string(&t, "disk_path") {
        let path = base_dir.join(&p);
        if path.exists() && !path.is_dir() {
            w.error(
                &span,
                &t.key("disk_path"),
                format!("`{}` is a file, not a directory", path.display()),
            );
        } else if c.memory == 0 {
            w.warn(
                &span,
                &t.key("disk_path"),
                "has no effect with memory = 0, which turns the cache off",
            );
        }
        c.disk_path = Some(path);
    } else if t.get("disk").is_some() {
        let span = t.span_of("disk");
        w.warn(&span, &t.key("disk"), "has no effect without disk_path");
    }
    if c.memory > 0 && c.max_object_size > c.memory / 4 {
        let span = t.span_of("max_object_size");
        w.warn(
            &span,
            &t.key("max_object_size"),
            format!(
                "objects are stored only up to a quarter of `memory` ({} bytes)",
                c.memory / 4
            ),
        );
    }
    c
}

/// A `[[zone.cache_rule]]`: what a matching request gets from the cache.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CacheRule {
    /// `id` (logged), or `cache_rule.N`.
    pub id: String,
    /// `cache`: eligible (`true`) or bypass (`false`).
    pub cache: bool,
    /// `edge_ttl`: the freshness the edge gives responses, overriding the origin's; `None`
    /// respects the origin (and Cloudflare's defaults).
    pub edge_ttl: Option<Duration>,
    /// `browser_ttl`: the `max-age` browsers are told; `None` passes the origin's on.
    pub browser_ttl: Option<Duration>,
    /// `cache_key`.
    pub key: KeySpec,
    /// `serve_stale`: serve a stale copy when the origin fails, whatever it said.
    pub serve_stale: bool,
}

/// The cache rules of a zone, in order (the first match applies).
pub type CacheRules = Arc<RuleSet<CacheRule>>;

const RULE_KEYS: &[&str] = &[
    "id",
    "expression",
    "cache",
    "edge_ttl",
    "browser_ttl",
    "cache_key",
    "serve_stale",
    "enabled",
];
const KEY_KEYS: &[&str] = &["query", "headers", "cookies", "host"];

/// Longest TTL a rule may set: a year.
const MAX_TTL: Duration = Duration::from_secs(365 * 86_400);

/// Every `[[zone.cache_rule]]` of `zone`.
pub(super) fn read_cache_rules(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    compiler: &mut Compiler<'_>,
) -> CacheRules {
    let mut rules = Vec::new();
    for (i, (_, t)) in w.tables(zone, "cache_rule", RULE_KEYS).iter().enumerate() {
        let id = w
            .string(t, "id")
            .map_or_else(|| format!("cache_rule.{}", i + 1), |(s, _)| s);
        if t.get("expression").is_none() {
            w.missing(t, "expression");
        }
        let filter = super::security::compile(w, t, "expression", compiler);
        let cache = w.boolean(t, "cache").unwrap_or(true);
        let edge_ttl = read_ttl(w, t, "edge_ttl");
        let browser_ttl = read_ttl(w, t, "browser_ttl");
        let key = read_key(w, t);
        let serve_stale = w.boolean(t, "serve_stale").unwrap_or(false);
        let enabled = w.boolean(t, "enabled").unwrap_or(true);
        if !cache {
            for k in ["edge_ttl", "cache_key", "serve_stale"] {
                if t.get(k).is_some() {
                    let span = t.span_of(k);
                    w.warn(
                        &span,
                        &t.key(k),
                        "has no effect in a rule with cache = false",
                    );
                }
            }
        }
        if let (Some(filter), true) = (filter, enabled) {
            let rule = CacheRule {
                id,
                cache,
                edge_ttl: edge_ttl.flatten(),
                browser_ttl: browser_ttl.flatten(),
                key,
                serve_stale,
            };
            rules.push(rampart_rules::Rule::new(rule, filter));
        }
    }
    Arc::new(RuleSet::new(rules))
}

/// `"respect"` (the origin's, `Some(None)`), or a duration.
fn read_ttl(w: &mut Walker<'_>, t: &Table<'_, '_>, key: &str) -> Option<Option<Duration>> {
    let (s, _) = w.string(t, key)?;
    if s == "respect" {
        return Some(None);
    }
    w.duration(t, key, MAX_TTL).map(Some)
}

/// `cache_key = { query = "all" | "ignore" | ["a", "b"], headers = [...], cookies = [...],
/// host = true }`.
fn read_key(w: &mut Walker<'_>, t: &Table<'_, '_>) -> KeySpec {
    let mut spec = KeySpec::default();
    let Some(v) = t.get("cache_key") else {
        return spec;
    };
    let Some(k) = w.table(&t.key("cache_key"), v, KEY_KEYS) else {
        return spec;
    };
    if let Some(q) = k.get("query") {
        if let Some(list) = q.get_ref().as_array() {
            let names = list
                .iter()
                .filter_map(|i| i.get_ref().as_str().map(str::to_string))
                .collect();
            spec.query = QueryKey::Only(names);
        } else {
            let choices = [("all", QueryKey::All), ("ignore", QueryKey::Ignore)];
            let names: Vec<(&str, usize)> = choices
                .iter()
                .enumerate()
                .map(|(i, (n, _))| (*n, i))
                .collect();
            if let Some(i) = w.choice(&k, "query", &names) {
                spec.query = choices[i].1.clone();
            }
        }
    }
    spec.headers = w
        .strings(&k, "headers")
        .unwrap_or_default()
        .into_iter()
        .map(|(h, _)| h.to_ascii_lowercase())
        .collect();
    spec.cookies = w
        .strings(&k, "cookies")
        .unwrap_or_default()
        .into_iter()
        .map(|(c, _)| c)
        .collect();
    spec.ignore_host = !w.boolean(&k, "host").unwrap_or(true);
    spec
}
