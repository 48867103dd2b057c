//! Prometheus metrics, served as text on the admin listener's `/metrics`.

use rustc_hash::FxHashMap as HashMap;
use std::cell::RefCell;
use std::sync::atomic::{AtomicU64, Ordering};

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RequestLabels {
    zone: String,
    protocol: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ErrorLabels {
    error: &'static str,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OriginLabels {
    zone: String,
    status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct SecurityLabels {
    zone: String,
    action: &'static str,
    source: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CacheLabels {
    zone: String,
    status: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ReasonLabels {
    reason: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct WorkerLabels {
    worker: u32,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct PoolOriginLabels {
    zone: String,
    pool: String,
    origin: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct CheckLabels {
    zone: String,
    pool: String,
    origin: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct OrderLabels {
    zone: String,
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ResultLabels {
    result: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct MessageLabels {
    kind: &'static str,
    event: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct ZoneLabels {
    zone: String,
}

/// Per-thread cache of metric handles for one zone. Label lookups in a `Family` allocate
/// the label strings and take a lock; a cached handle (an `Arc` inside) makes the
/// per-request cost a hash lookup without allocation.
#[derive(Default)]
struct ZoneHandles {
    requests: HashMap<(&'static str, u16), Counter>,
    origin: HashMap<u16, Counter>,
    /// Cache status → requests, and response bytes once there were some.
    cache: HashMap<&'static str, (Counter, Option<Counter>)>,
    duration: Option<Histogram>,
}

thread_local! {
    /// (registry id, zone) → handles.
    static HANDLES: RefCell<HashMap<u64, HashMap<Box<str>, ZoneHandles>>> = RefCell::new(HashMap::default());
}

/// What [`Metrics::finished`] counts of one request.
pub struct Finished<'a> {
    /// The zone (empty before routing).
    pub zone: &'a str,
    /// The client's protocol.
    pub protocol: &'static str,
    /// The status the client got.
    pub status: u16,
    /// What the cache did, and the bytes it served from the cache.
    pub cache: Option<(&'static str, u64)>,
    /// The origin's status, and how long its head took.
    pub origin: Option<(u16, std::time::Duration)>,
}

static NEXT_REGISTRY_ID: AtomicU64 = AtomicU64::new(1);

type HistogramFamily = Family<ZoneLabels, Histogram, fn() -> Histogram>;

/// Every metric rampart exports. Cheap to share behind an `Arc`.
pub struct Metrics {
    registry: Registry,
    requests: Family<RequestLabels, Counter>,
    generated_errors: Family<ErrorLabels, Counter>,
    origin_responses: Family<OriginLabels, Counter>,
    origin_duration: HistogramFamily,
    client_closed: Family<ZoneLabels, Counter>,
    cut_short: Family<ZoneLabels, Counter>,
    cache_requests: Family<CacheLabels, Counter>,
    cache_bytes: Family<CacheLabels, Counter>,
    cache_objects: Gauge,
    analytics_unwritten: Gauge,
    cache_stored_bytes: Gauge,
    connect_retries: Family<ZoneLabels, Counter>,
    origin_healthy: Family<PoolOriginLabels, Gauge>,
    origin_outstanding: Family<PoolOriginLabels, Gauge>,
    health_checks: Family<CheckLabels, Counter>,
    acme_orders: Family<OrderLabels, Counter>,
    acme_expiry: Family<ZoneLabels, Gauge>,
    security_actions: Family<SecurityLabels, Counter>,
    open_connections: Gauge,
    worker_connections: Family<WorkerLabels, Gauge>,
    log_dropped: Counter<u64, AtomicU64>,
    tls_handshake_failures: Family<ReasonLabels, Counter>,
    sni_mismatches: Counter<u64, AtomicU64>,
    fleet_syncs: Family<ResultLabels, Counter>,
    fleet_round_trips: Counter<u64, AtomicU64>,
    fleet_fallback: Gauge,
    fleet_nodes: Gauge,
    fleet_messages: Family<MessageLabels, Counter>,
    id: u64,
}

fn origin_histogram() -> Histogram {
    // 1 ms to ~65 s.
    Histogram::new(exponential_buckets(0.001, 2.0, 17))
}

impl Default for Metrics {
    fn default() -> Self {
        Self::new()
    }
}

impl Metrics {
    /// A fresh set of metrics, all zero.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("rampart");
        let m = Metrics {
            requests: Family::default(),
            generated_errors: Family::default(),
            origin_responses: Family::default(),
            origin_duration: Family::new_with_constructor(origin_histogram as fn() -> Histogram),
            client_closed: Family::default(),
            cut_short: Family::default(),
            cache_requests: Family::default(),
            cache_bytes: Family::default(),
            cache_objects: Gauge::default(),
            analytics_unwritten: Gauge::default(),
            cache_stored_bytes: Gauge::default(),
            connect_retries: Family::default(),
            origin_healthy: Family::default(),
            origin_outstanding: Family::default(),
            health_checks: Family::default(),
            acme_orders: Family::default(),
            acme_expiry: Family::default(),
            security_actions: Family::default(),
            open_connections: Gauge::default(),
            worker_connections: Family::default(),
            log_dropped: Counter::default(),
            tls_handshake_failures: Family::default(),
            sni_mismatches: Counter::default(),
            fleet_syncs: Family::default(),
            fleet_round_trips: Counter::default(),
            fleet_fallback: Gauge::default(),
            fleet_nodes: Gauge::default(),
            fleet_messages: Family::default(),
            registry: Registry::default(),
            id: NEXT_REGISTRY_ID.fetch_add(1, Ordering::Relaxed),
        };
        registry.register(
            "requests",
            "Requests answered, by zone, protocol and edge status",
            m.requests.clone(),
        );
        registry.register(
            "generated_errors",
            "Error responses generated by rampart, by error name",
            m.generated_errors.clone(),
        );
        registry.register(
            "origin_responses",
            "Responses received from origins, by zone and status",
            m.origin_responses.clone(),
        );
        registry.register(
            "origin_response_duration_seconds",
            "Time from sending a request to the origin to receiving its response head",
            m.origin_duration.clone(),
        );
        registry.register(
            "client_closed_requests",
            "Requests whose client left before the response (logged as 499)",
            m.client_closed.clone(),
        );
        registry.register(
            "responses_cut_short",
            "Responses whose body ended abnormally after the head went out (the origin reset, closed or broke its framing mid-body)",
            m.cut_short.clone(),
        );
        registry.register(
            "cache_requests",
            "Requests by what the edge cache did (hit, miss, expired, stale, bypass, revalidated, updating, dynamic)",
            m.cache_requests.clone(),
        );
        registry.register(
            "cache_response_bytes",
            "Response body bytes served from the edge cache, by cache status",
            m.cache_bytes.clone(),
        );
        registry.register(
            "cache_objects",
            "Objects in the edge cache's memory tier",
            m.cache_objects.clone(),
        );
        registry.register(
            "cache_bytes",
            "Bytes held by the edge cache's memory tier",
            m.cache_stored_bytes.clone(),
        );
        registry.register(
            "analytics_unwritten_minutes",
            "Finished minutes of a worker the analytics database did not get (kept in memory)",
            m.analytics_unwritten.clone(),
        );
        registry.register(
            "origin_connect_retries",
            "Origin TCP connect attempts retried after a timeout",
            m.connect_retries.clone(),
        );
        registry.register(
            "origin_healthy",
            "Whether an origin of a pool takes traffic (1) or is down by its health checks or its back-off after failed requests (0)",
            m.origin_healthy.clone(),
        );
        registry.register(
            "origin_outstanding_requests",
            "Requests sent to an origin of a pool and not yet answered in full",
            m.origin_outstanding.clone(),
        );
        registry.register(
            "origin_health_checks",
            "Active health checks of pool origins, by result (pass, fail)",
            m.health_checks.clone(),
        );
        registry.register(
            "fleet_syncs",
            "Syncs of the shared rate-limit counters with Redis, by result (ok, timeout, error)",
            m.fleet_syncs.clone(),
        );
        registry.register(
            "fleet_round_trips",
            "Scripts sent to Redis by the counter syncs (one round trip each, pipelined)",
            m.fleet_round_trips.clone(),
        );
        registry.register(
            "fleet_fallback",
            "Whether rate limits are counted without Redis (1: local fallback or allow) or shared (0)",
            m.fleet_fallback.clone(),
        );
        registry.register(
            "fleet_nodes",
            "Nodes of the fleet seen by the last sync",
            m.fleet_nodes.clone(),
        );
        registry.register(
            "fleet_messages",
            "Purges and configuration changes fanned out over Redis, by kind and event (sent, received, applied, rejected, failed)",
            m.fleet_messages.clone(),
        );
        registry.register(
            "acme_orders",
            "ACME certificate orders, by zone and result (issued, failed, rate_limited)",
            m.acme_orders.clone(),
        );
        registry.register(
            "acme_certificate_expiry_timestamp_seconds",
            "When the certificate an ACME zone serves expires (Unix time)",
            m.acme_expiry.clone(),
        );
        registry.register(
            "security_actions",
            "Security rule matches, by zone, action (block, log, skip) and source",
            m.security_actions.clone(),
        );
        registry.register(
            "open_connections",
            "Client connections currently open",
            m.open_connections.clone(),
        );
        registry.register(
            "worker_connections",
            "Client connections currently open, by worker thread",
            m.worker_connections.clone(),
        );
        registry.register(
            "access_log_dropped_lines",
            "Access log lines dropped because the log sink was full or failing",
            m.log_dropped.clone(),
        );
        registry.register(
            "tls_handshake_failures",
            "TLS handshakes that failed, by reason (unknown_sni, handshake, bad_client_hello, timeout)",
            m.tls_handshake_failures.clone(),
        );
        registry.register(
            "sni_mismatches",
            "Requests refused with 403 because their Host differs from the TLS server name (not logged)",
            m.sni_mismatches.clone(),
        );
        Metrics { registry, ..m }
    }

    /// Counts a finished request: its status, what the cache did and the bytes it served
    /// from the cache, and the origin's status and how long its head took. One look-up of the
    /// thread's handles for all of them.
    pub fn finished(&self, r: &Finished<'_>) {
        let zone = r.zone;
        self.with_handles(zone, |h| {
            let protocol = r.protocol;
            let status = r.status;
            h.requests
                .entry((protocol, status))
                .or_insert_with(|| {
                    let labels = RequestLabels {
                        zone: zone.to_string(),
                        protocol,
                        status,
                    };
                    self.requests.get_or_create(&labels).clone()
                })
                .inc();
            if let Some((status, bytes)) = r.cache {
                let labels = || CacheLabels {
                    zone: zone.to_string(),
                    status,
                };
                let (requests, sent) = h.cache.entry(status).or_insert_with(|| {
                    (self.cache_requests.get_or_create(&labels()).clone(), None)
                });
                requests.inc();
                if bytes > 0 {
                    sent.get_or_insert_with(|| self.cache_bytes.get_or_create(&labels()).clone())
                        .inc_by(bytes);
                }
            }
            if let Some((status, took)) = r.origin {
                h.origin
                    .entry(status)
                    .or_insert_with(|| {
                        self.origin_responses
                            .get_or_create(&OriginLabels {
                                zone: zone.to_string(),
                                status,
                            })
                            .clone()
                    })
                    .inc();
                h.duration
                    .get_or_insert_with(|| {
                        self.origin_duration
                            .get_or_create(&ZoneLabels {
                                zone: zone.to_string(),
                            })
                            .clone()
                    })
                    .observe(took.as_secs_f64());
            }
        });
    }

    fn with_handles(&self, zone: &str, f: impl FnOnce(&mut ZoneHandles)) {
        HANDLES.with(|all| {
            let mut all = all.borrow_mut();
            let zones = all.entry(self.id).or_default();
            if let Some(h) = zones.get_mut(zone) {
                return f(h);
            }
            if zones.len() > 10_000 {
                zones.clear();
            }
            f(zones.entry(zone.into()).or_default());
        });
    }

    /// Counts a generated error.
    pub fn generated_error(&self, error: &'static str, status: u16) {
        self.generated_errors
            .get_or_create(&ErrorLabels { error, status })
            .inc();
    }

    /// Counts a failed TLS handshake.
    pub fn tls_handshake_failure(&self, reason: &'static str) {
        self.tls_handshake_failures
            .get_or_create(&ReasonLabels { reason })
            .inc();
    }

    /// Counts a request refused because its Host differs from the TLS server name.
    pub fn sni_mismatch(&self) {
        self.sni_mismatches.inc();
    }

    /// Counts a request whose client left before the response.
    pub fn client_closed(&self, zone: Option<&str>) {
        self.client_closed
            .get_or_create(&ZoneLabels {
                zone: zone.unwrap_or("").to_string(),
            })
            .inc();
    }

    /// Counts a response whose body was cut short after its head went out.
    pub fn cut_short(&self, zone: Option<&str>) {
        self.cut_short
            .get_or_create(&ZoneLabels {
                zone: zone.unwrap_or("").to_string(),
            })
            .inc();
    }

    /// Sets the cache's size gauges (before the metrics are read).
    pub fn cache_size(&self, objects: usize, bytes: usize) {
        self.cache_objects
            .set(i64::try_from(objects).unwrap_or(i64::MAX));
        self.cache_stored_bytes
            .set(i64::try_from(bytes).unwrap_or(i64::MAX));
    }

    /// Sets the number of finished minutes the analytics database did not get.
    pub fn analytics_unwritten(&self, minutes: u64) {
        self.analytics_unwritten
            .set(i64::try_from(minutes).unwrap_or(i64::MAX));
    }

    /// Counts a retried origin connect.
    pub fn connect_retry(&self, zone: &str) {
        self.connect_retries
            .get_or_create(&ZoneLabels {
                zone: zone.to_string(),
            })
            .inc();
    }

    /// Counts one active health check.
    pub fn health_check(&self, zone: &str, pool: &str, origin: &str, passed: bool) {
        self.health_checks
            .get_or_create(&CheckLabels {
                zone: zone.to_string(),
                pool: pool.to_string(),
                origin: origin.to_string(),
                result: if passed { "pass" } else { "fail" },
            })
            .inc();
    }

    /// Sets the pool origins' gauges (before the metrics are read), forgetting origins no
    /// longer configured: `(zone, pool, origin, healthy, outstanding)`.
    pub fn origin_health<'a>(
        &self,
        origins: impl IntoIterator<Item = (&'a str, &'a str, &'a str, bool, usize)>,
    ) {
        self.origin_healthy.clear();
        self.origin_outstanding.clear();
        for (zone, pool, origin, healthy, outstanding) in origins {
            let labels = PoolOriginLabels {
                zone: zone.to_string(),
                pool: pool.to_string(),
                origin: origin.to_string(),
            };
            self.origin_healthy
                .get_or_create(&labels)
                .set(i64::from(healthy));
            self.origin_outstanding
                .get_or_create(&labels)
                .set(i64::try_from(outstanding).unwrap_or(i64::MAX));
        }
    }

    /// Counts an ACME order's outcome.
    pub fn acme_order(&self, zone: &str, result: &'static str) {
        self.acme_orders
            .get_or_create(&OrderLabels {
                zone: zone.to_string(),
                result,
            })
            .inc();
    }

    /// Records when the certificate an ACME zone serves expires.
    pub fn acme_certificate(&self, zone: &str, not_after: i64) {
        self.acme_expiry
            .get_or_create(&ZoneLabels {
                zone: zone.to_string(),
            })
            .set(not_after);
    }

    /// Counts a security rule match.
    pub fn security_action(&self, zone: &str, action: &'static str, source: &'static str) {
        self.security_actions
            .get_or_create(&SecurityLabels {
                zone: zone.to_string(),
                action,
                source,
            })
            .inc();
    }

    /// Counts a sync of the shared counters: `ok`, `timeout` or `error`; `round_trips`
    /// scripts were sent.
    pub fn fleet_sync(&self, result: &'static str, round_trips: u64) {
        self.fleet_syncs
            .get_or_create(&ResultLabels { result })
            .inc();
        self.fleet_round_trips.inc_by(round_trips);
    }

    /// Records whether rate limits are counted without Redis, and the fleet's size.
    pub fn fleet_state(&self, fallback: bool, nodes: u32) {
        self.fleet_fallback.set(i64::from(fallback));
        self.fleet_nodes.set(i64::from(nodes));
    }

    /// Counts a fan-out message event.
    pub fn fleet_message(&self, kind: &'static str, event: &'static str) {
        self.fleet_messages
            .get_or_create(&MessageLabels { kind, event })
            .inc();
    }

    /// The open-connections gauge.
    pub fn open_connections(&self) -> &Gauge {
        &self.open_connections
    }

    /// The open client connections of worker `worker`.
    pub fn worker_connections(&self, worker: usize) -> Gauge {
        let worker = u32::try_from(worker).unwrap_or(u32::MAX);
        self.worker_connections
            .get_or_create(&WorkerLabels { worker })
            .clone()
    }

    /// The dropped-log-lines counter.
    pub fn log_dropped(&self) -> &Counter<u64, AtomicU64> {
        &self.log_dropped
    }

    /// The Prometheus text exposition of every metric.
    pub fn encode(&self) -> String {
        let mut out = String::with_capacity(4096);
        // Writing to a String cannot fail.
        let _ = prometheus_client::encoding::text::encode(&mut out, &self.registry);
        out
    }
}
