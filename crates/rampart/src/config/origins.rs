//! Where a zone's requests go: one `origin`, or `[[zone.origin_pool]]` pools of origins with
//! steering and health checks.

use std::collections::HashSet;
use std::time::Duration;

use http::HeaderName;

use super::walk::{Table, Value, Walker};
use super::zone::OriginAddr;

/// A zone's origins: pools in order of preference (the first pool with a healthy origin
/// serves). A zone with a single `origin` has one pool of one origin, without health
/// tracking.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Origins {
    /// The pools, in order of preference.
    pub pools: Vec<OriginPool>,
}

/// `[[zone.origin_pool]]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct OriginPool {
    /// `name`, or `pool.N`: in metrics, logs and the admin plane.
    pub name: String,
    /// The pool's origins, in the order written.
    pub origins: Vec<PoolOrigin>,
    /// How an origin is picked for a request.
    pub steering: Steering,
    /// `health_check`: active checks, none when absent.
    pub health_check: Option<HealthCheck>,
    /// `passive_health`: what real traffic says about an origin; none for a zone's single
    /// `origin` and for `passive_health = false`.
    pub passive: Option<PassiveHealth>,
}

/// One origin of a pool.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PoolOrigin {
    /// `url`.
    pub addr: OriginAddr,
    /// `weight`: its share of the requests, relative to the others' (1 to 100).
    pub weight: u32,
}

/// `steering`: how a pool picks an origin for a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Steering {
    /// Each origin in turn, `weight` times per round, interleaved.
    RoundRobin,
    /// The origin with the fewest requests in flight relative to its weight.
    LeastOutstanding,
    /// The same client (IP, or the value of `hash_header`) to the same origin while it is
    /// healthy; rendezvous hashing, so that an origin going down moves only its own clients.
    Hash {
        /// `hash_header`: hash this request field instead of the client's IP (the IP when the
        /// request has no such field).
        header: Option<HeaderName>,
    },
    /// The first healthy origin, in the order written.
    Failover,
}

/// `health_check = { path, interval, timeout, expected, unhealthy_after, healthy_after, host }`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HealthCheck {
    /// The path (and query) requested with GET.
    pub path: String,
    /// The Host sent: `host`, else the zone's first host name.
    pub host: String,
    /// From the start of one check to the start of the next.
    pub interval: Duration,
    /// A check without a complete response head in this time fails.
    pub timeout: Duration,
    /// Statuses that pass.
    pub expected: Vec<u16>,
    /// Consecutive failed checks that mark a healthy origin down.
    pub unhealthy_after: u32,
    /// Consecutive passed checks that mark a down origin healthy again.
    pub healthy_after: u32,
}

/// `passive_health = { failures, backoff }`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PassiveHealth {
    /// Consecutive failures (a failed connect, or a 5xx answer) that mark the origin down.
    pub failures: u32,
    /// How long it then stays down before it gets traffic again.
    pub backoff: Duration,
}

impl Default for PassiveHealth {
    fn default() -> Self {
        PassiveHealth {
            failures: 3,
            backoff: Duration::from_secs(10),
        }
    }
}

impl Origins {
    /// One origin, as `origin = "..."` configures: no steering, no health tracking.
    pub fn single(addr: OriginAddr) -> Origins {
        Origins {
            pools: vec![OriginPool {
                name: "origin".into(),
                origins: vec![PoolOrigin { addr, weight: 1 }],
                steering: Steering::Failover,
                health_check: None,
                passive: None,
            }],
        }
    }

    /// Every origin of every pool.
    pub fn all(&self) -> impl Iterator<Item = &OriginAddr> {
        self.pools
            .iter()
            .flat_map(|p| p.origins.iter().map(|o| &o.addr))
    }

    /// Whether the zone has one origin without health tracking (`origin = "..."`).
    pub fn is_single(&self) -> bool {
        matches!(&self.pools[..], [p] if p.origins.len() == 1 && p.health_check.is_none() && p.passive.is_none())
    }
}

const POOL_KEYS: &[&str] = &[
    "name",
    "origins",
    "steering",
    "hash_header",
    "health_check",
    "passive_health",
];
const ORIGIN_KEYS: &[&str] = &["url", "weight"];
const CHECK_KEYS: &[&str] = &[
    "path",
    "host",
    "interval",
    "timeout",
    "expected",
    "unhealthy_after",
    "healthy_after",
];
const PASSIVE_KEYS: &[&str] = &["failures", "backoff"];

/// The zone's `origin` or `[[zone.origin_pool]]` (exactly one of them). `default_host` is the
/// Host health checks send when they name none.
pub(super) fn read_origins(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    default_host: Option<&str>,
) -> Option<Origins> {
    match (t.get("origin"), t.get("origin_pool")) {
        (Some(_), Some(_)) => {
            let span = t.span_of("origin_pool");
            w.error(
                &span,
                &t.key("origin_pool"),
                "a zone has either `origin` or `[[zone.origin_pool]]`, not both",
            );
            None
        }
        (Some(v), None) => {
            if v.get_ref().as_array().is_some() {
                w.error(
                    &v.span(),
                    &t.key("origin"),
                    "expected a string: for several origins, write [[zone.origin_pool]] with origins = [{ url = \"...\" }, ...]",
                );
                return None;
            }
            let (s, span) = w.string(t, "origin")?;
            match OriginAddr::parse(&s) {
                Ok(addr) => Some(Origins::single(addr)),
                Err(m) => {
                    w.error(&span, &t.key("origin"), m);
                    None
                }
            }
        }
        (None, Some(_)) => read_pools(w, t, default_host),
        (None, None) => {
            w.missing(t, "origin");
            None
        }
    }
}

fn read_pools(
    w: &mut Walker<'_>,
    zone: &Table<'_, '_>,
    default_host: Option<&str>,
) -> Option<Origins> {
    let errors_before = w.errors.len();
    let mut pools = Vec::new();
    let mut names = HashSet::new();
    let mut seen = HashSet::new();
    let tables = w.tables(zone, "origin_pool", POOL_KEYS);
    if tables.is_empty() && w.errors.len() == errors_before {
        let span = zone.span_of("origin_pool");
        w.error(
            &span,
            &zone.key("origin_pool"),
            "the zone has no origin pool: give it at least one [[zone.origin_pool]]",
        );
    }
    for (i, (_, t)) in tables.iter().enumerate() {
        let name = match w.string(t, "name") {
            Some((n, span)) => {
                if !names.insert(n.clone()) {
                    w.error(
                        &span,
                        &t.key("name"),
                        format!("another pool is named `{n}`"),
                    );
                }
                n
            }
            None => format!("pool.{}", i + 1),
        };
        let origins = read_pool_origins(w, t, &mut seen);
        let steering = read_steering(w, t);
        let health_check = t
            .get("health_check")
            .and_then(|v| read_health_check(w, t, v, default_host, origins.as_ref()));
        let passive = match t.get("passive_health") {
            None => Some(PassiveHealth::default()),
            Some(v) if v.get_ref().as_bool() == Some(false) => None,
            Some(v) => read_passive(w, t, v),
        };
        if let (Some(origins), Some(steering)) = (origins, steering) {
            pools.push(OriginPool {
                name,
                origins,
                steering,
                health_check,
                passive,
            });
        }
    }
    (w.errors.len() == errors_before).then_some(Origins { pools })
}

/// `origins = [{ url, weight }, ...]`: at least one, none listed twice in the zone.
fn read_pool_origins(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    seen: &mut HashSet<OriginAddr>,
) -> Option<Vec<PoolOrigin>> {
    let Some(v) = t.get("origins") else {
        w.missing(t, "origins");
        return None;
    };
    let Some(items) = v.get_ref().as_array() else {
        w.error(
            &v.span(),
            &t.key("origins"),
            "expected an array of origins: origins = [{ url = \"http://10.0.0.5:8080\", weight = 2 }]",
        );
        return None;
    };
    if items.is_empty() {
        w.error(
            &v.span(),
            &t.key("origins"),
            "a pool needs at least one origin",
        );
        return None;
    }
    let mut out = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let path = format!("{}[{i}]", t.key("origins"));
        let Some(o) = w.table(&path, item, ORIGIN_KEYS) else {
            continue;
        };
        let weight = w
            .integer(&o, "weight", 1..=100)
            .map_or(1, |(n, _)| n as u32);
        let Some((url, span)) = w.string(&o, "url") else {
            if o.get("url").is_none() {
                w.missing(&o, "url");
            }
            continue;
        };
        match OriginAddr::parse(&url) {
            Ok(addr) => {
                if !seen.insert(addr.clone()) {
                    w.error(
                        &span,
                        &o.key("url"),
                        format!("`{url}` is already an origin of this zone: list each origin once"),
                    );
                }
                out.push(PoolOrigin { addr, weight });
            }
            Err(m) => w.error(&span, &o.key("url"), m),
        }
    }
    (out.len() == items.len()).then_some(out)
}

/// `steering`, and `hash_header` for `"hash"`.
fn read_steering(w: &mut Walker<'_>, t: &Table<'_, '_>) -> Option<Steering> {
    #[derive(Clone, Copy)]
    enum Kind {
        RoundRobin,
        LeastOutstanding,
        Hash,
        Failover,
    }
    let kinds = [
        ("round_robin", Kind::RoundRobin),
        ("least_outstanding", Kind::LeastOutstanding),
        ("hash", Kind::Hash),
        ("failover", Kind::Failover),
    ];
    let kind = match t.get("steering") {
        None => Kind::RoundRobin,
        Some(_) => w.choice(t, "steering", &kinds)?,
    };
    let header = match w.string(t, "hash_header") {
        Some((h, span)) => match HeaderName::from_bytes(h.as_bytes()) {
            Ok(n) => Some(n),
            Err(_) => {
                w.error(
                    &span,
                    &t.key("hash_header"),
                    format!("`{h}` is not a field name"),
                );
                return None;
            }
        },
        None => None,
    };
    if header.is_some() && !matches!(kind, Kind::Hash) {
        let span = t.span_of("hash_header");
        w.warn(
            &span,
            &t.key("hash_header"),
            "has no effect: steering is not \"hash\"",
        );
    }
    Some(match kind {
        Kind::RoundRobin => Steering::RoundRobin,
        Kind::LeastOutstanding => Steering::LeastOutstanding,
        Kind::Hash => Steering::Hash { header },
        Kind::Failover => Steering::Failover,
    })
}

/// The longest health check interval.
const MAX_INTERVAL: Duration = Duration::from_secs(3600);

fn read_health_check(
    w: &mut Walker<'_>,
    pool: &Table<'_, '_>,
    v: &Value<'_>,
    default_host: Option<&str>,
    origins: Option<&Vec<PoolOrigin>>,
) -> Option<HealthCheck> {
    let t = w.table(&pool.key("health_check"), v, CHECK_KEYS)?;
    let path = match w.string(&t, "path") {
        Some((p, _)) if p.starts_with('/') && p.bytes().all(|b| b.is_ascii_graphic()) => p,
        Some((p, span)) => {
            w.error(
                &span,
                &t.key("path"),
                format!("`{p}` is not a path: write one from the root, e.g. \"/healthz\""),
            );
            return None;
        }
        None => "/".to_string(),
    };
    let host = match w.string(&t, "host") {
        Some((h, span)) => {
            if rampart_http::Authority::parse(h.as_bytes()).is_err() {
                w.error(&span, &t.key("host"), format!("`{h}` is not a host name"));
                return None;
            }
            h
        }
        None => match default_host {
            Some(h) => h.to_string(),
            None => origins.and_then(|o| o.first())?.addr.host.clone(),
        },
    };
    let interval = w
        .duration(&t, "interval", MAX_INTERVAL)
        .unwrap_or(Duration::from_secs(10));
    let timeout = w
        .duration(&t, "timeout", MAX_INTERVAL)
        .unwrap_or(Duration::from_secs(2));
    if timeout >= interval {
        let span = t.span_of("timeout");
        w.error(
            &span,
            &t.key("timeout"),
            "must be shorter than `interval`: checks of one origin never overlap",
        );
        return None;
    }
    let expected = match t.get("expected") {
        None => vec![200],
        Some(e) => {
            let list = e.get_ref().as_array().map(|a| {
                a.iter()
                    .map(|x| {
                        x.get_ref()
                            .as_integer()
                            .and_then(|i| i.as_str().parse::<u16>().ok())
                    })
                    .collect::<Option<Vec<u16>>>()
            });
            match list {
                Some(Some(l)) if !l.is_empty() && l.iter().all(|s| (100..=599).contains(s)) => l,
                _ => {
                    w.error(
                        &e.span(),
                        &t.key("expected"),
                        "expected a list of status codes, e.g. [200, 204]",
                    );
                    return None;
                }
            }
        }
    };
    let unhealthy_after = w
        .integer(&t, "unhealthy_after", 1..=100)
        .map_or(3, |(n, _)| n as u32);
    let healthy_after = w
        .integer(&t, "healthy_after", 1..=100)
        .map_or(2, |(n, _)| n as u32);
    Some(HealthCheck {
        path,
        host,
        interval,
        timeout,
        expected,
        unhealthy_after,
        healthy_after,
    })
}

fn read_passive(w: &mut Walker<'_>, pool: &Table<'_, '_>, v: &Value<'_>) -> Option<PassiveHealth> {
    let t = w.table(&pool.key("passive_health"), v, PASSIVE_KEYS)?;
    let d = PassiveHealth::default();
    Some(PassiveHealth {
        failures: w
            .integer(&t, "failures", 1..=1000)
            .map_or(d.failures, |(n, _)| n as u32),
        backoff: w.duration(&t, "backoff", MAX_INTERVAL).unwrap_or(d.backoff),
    })
}
