//! The server's state derived from one configuration: the router, the upstreams (origin
//! connection pools) and the rate-limit counters.
//!
//! A [`Generation`] is built once from a [`Config`] and never changes; a reload builds a new
//! one and swaps it atomically, so each request sees one generation from start to end. The
//! counters carry over to the next generation, and so does each zone's upstream whose origin
//! settings did not change (its kept-alive connections stay in use).

use rustc_hash::FxHashMap as HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rampart_ratelimit::{CounterStore, DEFAULT_MAX_KEYS, KeyBuilder, MemoryStore, SharedStore};
use std::sync::atomic::{AtomicU64, Ordering};

use crate::config::{Config, HostPattern, Zone};
use crate::upstream::Upstream;

/// A zone with its runtime state.
pub struct ZoneState {
    /// The zone's configuration.
    pub config: Zone,
    /// The zone's origins, their kept-alive connections and their health.
    pub upstream: Arc<Upstream>,
}

/// The counters of every rate limiting rule of the process, and the clock they count in.
pub struct RateLimiter {
    /// Created on first use: the in-memory store reserves its whole key table up front
    /// (about 40 MB for a million keys), which a configuration without rate limiting rules
    /// should not pay for.
    store: std::sync::OnceLock<Box<dyn CounterStore>>,
    /// The counters shared with the fleet (`[fleet]` with `rate_limits`), synced by
    /// `fleet::counters`; `store` is then unused.
    shared: Option<Arc<SharedStore>>,
    /// Builds counter keys.
    pub keys: KeyBuilder,
    epoch: Instant,
    /// The counters' clock at `epoch`, in ms: 0 for this process's own counters; for shared
    /// ones the fleet's clock (Redis's), which every sync corrects.
    clock_at_epoch_ms: AtomicU64,
}

impl Default for RateLimiter {
    fn default() -> Self {
        RateLimiter {
            store: std::sync::OnceLock::new(),
            shared: None,
            keys: KeyBuilder::new(),
            epoch: Instant::now(),
            clock_at_epoch_ms: AtomicU64::new(0),
        }
    }
}

impl RateLimiter {
    /// The limiter a configuration asks for: shared with the fleet when `[fleet]` shares rate
    /// limits, else this process's own.
    pub fn for_config(config: &Config) -> RateLimiter {
        let Some(fleet) = config.fleet.as_ref().filter(|f| f.rate_limits) else {
            return RateLimiter::default();
        };
        let wall_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        RateLimiter {
            store: std::sync::OnceLock::new(),
            shared: Some(Arc::new(SharedStore::new(DEFAULT_MAX_KEYS))),
            keys: KeyBuilder::with_secret(&fleet.secret),
            epoch: Instant::now(),
            clock_at_epoch_ms: AtomicU64::new(wall_ms),
        }
    }

    /// The counters.
    pub fn store(&self) -> &dyn CounterStore {
        match &self.shared {
            Some(shared) => shared.as_ref(),
            None => self
                .store
                .get_or_init(|| Box::new(MemoryStore::default()))
                .as_ref(),
        }
    }

    /// The fleet's counters, when they are shared.
    pub fn shared(&self) -> Option<&Arc<SharedStore>> {
        self.shared.as_ref()
    }

    /// `now` on the counters' clock.
    pub fn clock(&self, now: Instant) -> Duration {
        Duration::from_millis(self.clock_at_epoch_ms.load(Ordering::Relaxed))
            + now.saturating_duration_since(self.epoch)
    }

    /// Sets the counters' clock to read `fleet_ms` at `at` (the shared engine's time, as a
    /// sync answered it).
    pub fn set_clock(&self, fleet_ms: u64, at: Instant) {
        let since_epoch =
            u64::try_from(at.saturating_duration_since(self.epoch).as_millis()).unwrap_or(u64::MAX);
        self.clock_at_epoch_ms
            .store(fleet_ms.saturating_sub(since_epoch), Ordering::Relaxed);
    }
}

/// Everything derived from one configuration.
pub struct Generation {
    /// The configuration.
    pub config: Arc<Config>,
    /// Host → zone.
    pub router: Router,
    /// Rate-limit counters (kept across reloads by [`Generation::reload`]).
    pub rate_limiter: Arc<RateLimiter>,
    /// ACME certificates and pending challenges (kept across reloads).
    pub acme: Arc<crate::acme::Acme>,
    /// Challenges solved, and the process's own secret (kept across reloads).
    pub challenges: Arc<Challenges>,
    zones: Vec<Arc<ZoneState>>,
    /// The origins' health checker tasks, while this generation is the current one.
    checks: Mutex<Vec<tokio::task::AbortHandle>>,
}

impl Generation {
    /// Builds the runtime state of `config`.
    pub fn new(config: Config) -> Generation {
        let limiter = Arc::new(RateLimiter::for_config(&config));
        Self::build(config, limiter, Arc::default(), Arc::default(), &[])
    }

    /// The next generation after a reload: new configuration, the same rate-limit counters,
    /// and the same origins (connections, health) where their settings did not change.
    pub fn reload(&self, config: Config) -> Generation {
        Self::build(
            config,
            self.rate_limiter.clone(),
            self.acme.clone(),
            self.challenges.clone(),
            &self.zones,
        )
    }

    fn build(
        config: Config,
        rate_limiter: Arc<RateLimiter>,
        acme: Arc<crate::acme::Acme>,
        challenges: Arc<Challenges>,
        old: &[Arc<ZoneState>],
    ) -> Generation {
        let zones: Vec<Arc<ZoneState>> = config
            .zones
            .iter()
            .map(|z| {
                let previous = old.iter().find(|o| o.config.name == z.name);
                Arc::new(ZoneState {
                    config: z.clone(),
                    upstream: Arc::new(Upstream::new(z, previous.map(|o| &*o.upstream))),
                })
            })
            .collect();
        Generation {
            router: Router::new(&zones),
            config: Arc::new(config),
            rate_limiter,
            acme,
            challenges,
            zones,
            checks: Mutex::new(Vec::new()),
        }
    }

    /// The keys challenges and clearances are signed with: `[challenge] secret_file`'s, or
    /// the process's own.
    pub fn challenge_keys(&self) -> &rampart_challenge::Keys {
        match &self.config.challenge.keys {
            Some(keys) => keys,
            None => &self.challenges.own_keys,
        }
    }

    /// The zones, in configuration order.
    pub fn zones(&self) -> &[Arc<ZoneState>] {
        &self.zones
    }

    /// Starts what runs beside the requests once this generation is the current one, on the
    /// current tokio runtime (nothing outside one): the origins' health checks, and the ACME
    /// tasks its zones need.
    pub fn start_background(&self, metrics: &Arc<crate::observe::Metrics>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        self.acme.sync(&self.config, metrics);
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        for z in &self.zones {
            checks.extend(z.upstream.start_checks(&z.config.name, metrics));
        }
    }

    /// Stops the health checks: a check under way is abandoned.
    pub fn stop_health_checks(&self) {
        let mut checks = self.checks.lock().unwrap_or_else(|p| p.into_inner());
        for c in checks.drain(..) {
            c.abort();
        }
    }
}

/// What challenges keep beyond one configuration.
pub struct Challenges {
    /// The secret used when the configuration names none: made at start, so clearances
    /// survive reloads but not restarts.
    pub own_keys: rampart_challenge::Keys,
    /// Challenges solved and not yet expired.
    pub spent: rampart_challenge::Spent,
}

/// Solved challenges remembered at most (each for its ten minutes: 1,600 solutions a second).
const MAX_SPENT: usize = 1_000_000;

impl Default for Challenges {
    fn default() -> Self {
        Challenges {
            own_keys: rampart_challenge::Keys::random()
                .expect("the system's random source gives a secret"),
            spent: rampart_challenge::Spent::new(MAX_SPENT),
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        self.stop_health_checks();
    }
}

impl Generation {
    /// The TLS configuration for a client that sent `sni` (lowercase, no trailing dot): the
    /// certificate of the zone serving that host (exact names before wildcards), else the
    /// default certificate. `None`: refuse the handshake.
    pub fn certificate_for(&self, sni: Option<&str>) -> Option<Arc<rustls::ServerConfig>> {
        let zone = sni.and_then(|name| self.router.find(name));
        let zone_cert = zone.and_then(|z| match &z.config.tls {
            Some(cert) => Some(cert.config.clone()),
            None if z.config.acme => self.acme.certificate(&z.config.name),
            None => None,
        });
        zone_cert.or_else(|| {
            self.config
                .server
                .default_certificate
                .as_ref()
                .map(|c| c.config.clone())
        })
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
