//! The server's state derived from one configuration: the router and the origin pools.
//!
//! A [`Generation`] is built once from a [`Config`] and never changes; a reload would build a
//! new one and swap it atomically, so each request sees one generation from start to end.

use rustc_hash::FxHashMap as HashMap;
use std::sync::Arc;

use crate::config::{Config, HostPattern, Zone};
use crate::origin::OriginPool;

/// A zone with its runtime state.
pub struct ZoneState {
    /// The zone's configuration.
    pub config: Zone,
    /// Pooled connections to the zone's origin.
    pub origin: OriginPool,
}

/// Everything derived from one configuration.
pub struct Generation {
    /// The configuration.
    pub config: Arc<Config>,
    /// Host → zone.
    pub router: Router,
    /// Rate-limit counters (kept across reloads by [`Generation::reload`]).
    pub rate_limiter: Arc<crate::pipeline::rate_limit::RateLimiter>,
}

impl Generation {
    /// Builds the runtime state of `config`.
    pub fn new(config: Config) -> Generation {
        Self::with_limiter(config, Arc::default())
    }

    /// The next generation after a reload: new configuration, same rate-limit counters.
    pub fn reload(&self, config: Config) -> Generation {
        Self::with_limiter(config, self.rate_limiter.clone())
    }

    fn with_limiter(
        config: Config,
        rate_limiter: Arc<crate::pipeline::rate_limit::RateLimiter>,
    ) -> Generation {
        let zones: Vec<Arc<ZoneState>> = config
            .zones
            .iter()
            .map(|z| {
                Arc::new(ZoneState {
                    config: z.clone(),
                    origin: OriginPool::new(z.origin.clone()),
                })
            })
            .collect();
        Generation {
            router: Router::new(&zones),
            config: Arc::new(config),
            rate_limiter,
        }
    }
}

impl Generation {
    /// The TLS configuration for a client that sent `sni` (lowercase, no trailing dot): the
    /// certificate of the zone serving that host (exact names before wildcards), else the
    /// default certificate. `None`: refuse the handshake.
    pub fn certificate_for(&self, sni: Option<&str>) -> Option<Arc<rustls::ServerConfig>> {
        let zone_cert = sni
            .and_then(|name| self.router.find(name))
            .and_then(|z| z.config.tls.as_ref());
        zone_cert
            .or(self.config.server.default_certificate.as_ref())
            .map(|c| c.config.clone())
    }
}

/// Finds the zone of a host: exact names first, then wildcards, the longest suffix first.
pub struct Router {
    exact: HashMap<String, Arc<ZoneState>>,
    /// (suffix with leading dot, zone), longest suffix first.
    wildcards: Vec<(String, Arc<ZoneState>)>,
}

impl Router {
    fn new(zones: &[Arc<ZoneState>]) -> Router {
        let mut exact = HashMap::default();
        let mut wildcards = Vec::new();
        for z in zones {
            for h in &z.config.hosts {
                match h {
                    HostPattern::Exact(name) => {
                        exact.insert(name.clone(), z.clone());
                    }
                    HostPattern::Wildcard(suffix) => wildcards.push((suffix.clone(), z.clone())),
                }
            }
        }
        wildcards.sort_by_key(|w| std::cmp::Reverse(w.0.len()));
        Router { exact, wildcards }
    }

    /// The zone serving `host` (lowercase, without port or trailing dot).
    pub fn find(&self, host: &str) -> Option<&Arc<ZoneState>> {
        if let Some(z) = self.exact.get(host) {
            return Some(z);
        }
        self.wildcards
            .iter()
            .find(|(suffix, _)| host.len() > suffix.len() && host.ends_with(suffix.as_str()))
            .map(|(_, z)| z)
    }
}
