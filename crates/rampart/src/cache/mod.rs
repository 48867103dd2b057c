//! The edge cache: responses stored in memory and answered from it (with 304, 412, 206 and
//! 416 of its own), one origin request for many concurrent misses, and purge.
//!
//! The rules of HTTP caching are in the sans-IO `rampart-cache` crate; this module holds the
//! store the workers share, the requests in flight, and the translation between them and
//! rampart's requests and responses ([`fill`]: a response to a stored object; [`serve`]: a
//! stored object to a response; [`purge`]: Cloudflare's purge API).

pub mod disk;
pub mod fill;
pub mod purge;
pub mod serve;

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use rampart_cache::object::Object;
use rampart_cache::store::Store;
use tokio::sync::Notify;

use crate::config::cache::CacheConfig;
use disk::Disk;

/// What the cache did for a request, in Cloudflare's words (`rampart-cache-status`, the log's
/// CacheCacheStatus).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheStatus {
    /// Served from the cache, fresh.
    Hit,
    /// Not in the cache: fetched from the origin (and stored if it may be).
    Miss,
    /// In the cache but stale: fetched anew.
    Expired,
    /// Stale, served because the origin failed.
    Stale,
    /// Eligible, but a cache rule or the origin said not to cache.
    Bypass,
    /// Stale, and the origin confirmed it (304): served from the cache.
    Revalidated,
    /// Stale, served while a fresh copy is fetched in the background.
    Updating,
    /// Not eligible for caching (by default: HTML, paths without a cached extension).
    Dynamic,
}

impl CacheStatus {
    /// Every outcome.
    pub const ALL: [CacheStatus; 8] = [
        CacheStatus::Hit,
        CacheStatus::Miss,
        CacheStatus::Expired,
        CacheStatus::Stale,
        CacheStatus::Bypass,
        CacheStatus::Revalidated,
        CacheStatus::Updating,
        CacheStatus::Dynamic,
    ];

    /// `HIT`, `MISS`, ... (the `rampart-cache-status` field).
    pub fn as_str(self) -> &'static str {
        match self {
            CacheStatus::Hit => "HIT",
            CacheStatus::Miss => "MISS",
            CacheStatus::Expired => "EXPIRED",
            CacheStatus::Stale => "STALE",
            CacheStatus::Bypass => "BYPASS",
            CacheStatus::Revalidated => "REVALIDATED",
            CacheStatus::Updating => "UPDATING",
            CacheStatus::Dynamic => "DYNAMIC",
        }
    }

    /// `hit`, `miss`, ... (the log's CacheCacheStatus, as Logpush has it).
    pub fn log_name(self) -> &'static str {
        match self {
            CacheStatus::Hit => "hit",
            CacheStatus::Miss => "miss",
            CacheStatus::Expired => "expired",
            CacheStatus::Stale => "stale",
            CacheStatus::Bypass => "bypass",
            CacheStatus::Revalidated => "revalidated",
            CacheStatus::Updating => "updating",
            CacheStatus::Dynamic => "dynamic",
        }
    }

    /// The `Cache-Status` field (RFC 9211) for this outcome.
    pub fn cache_status_field(self, stored: bool) -> &'static str {
        match (self, stored) {
            (CacheStatus::Hit | CacheStatus::Updating, false) => "rampart; hit",
            (CacheStatus::Hit | CacheStatus::Updating, true) => "rampart; hit; stored",
            (CacheStatus::Stale, false) => "rampart; hit; detail=stale-if-error",
            (CacheStatus::Stale, true) => "rampart; hit; detail=stale-if-error; stored",
            (CacheStatus::Revalidated, false) => "rampart; fwd=stale; fwd-status=304",
            (CacheStatus::Revalidated, true) => "rampart; fwd=stale; fwd-status=304; stored",
            (CacheStatus::Miss, false) => "rampart; fwd=miss",
            (CacheStatus::Miss, true) => "rampart; fwd=miss; stored",
            (CacheStatus::Expired, false) => "rampart; fwd=stale",
            (CacheStatus::Expired, true) => "rampart; fwd=stale; stored",
            (CacheStatus::Bypass | CacheStatus::Dynamic, false) => "rampart; fwd=uri-miss",
            (CacheStatus::Bypass | CacheStatus::Dynamic, true) => "rampart; fwd=uri-miss; stored",
        }
    }

    /// Whether the body came from the cache.
    pub fn from_cache(self) -> bool {
        matches!(
            self,
            CacheStatus::Hit
                | CacheStatus::Stale
                | CacheStatus::Revalidated
                | CacheStatus::Updating
        )
    }
}

/// One origin request that concurrent misses of the same key wait for.
#[derive(Default)]
pub struct Flight {
    done: AtomicBool,
    notify: Notify,
}

impl Flight {
    /// Waits until the leader is done (stored the response, or gave up), at most `limit`;
    /// `false` when the wait timed out.
    pub async fn wait(&self, limit: Duration) -> bool {
        let wait = async {
            loop {
                let notified = self.notify.notified();
                if self.done.load(Ordering::Acquire) {
                    return;
                }
                notified.await;
            }
        };
        tokio::time::timeout(limit, wait).await.is_ok()
    }
}

/// Whether this request fetches for everyone, or waits for the one that does.
pub enum Join<'c> {
    /// Fetch, and store for the others; dropping the guard releases them.
    Leader(FlightGuard<'c>),
    /// Another request is fetching this key.
    Follower(Arc<Flight>),
}

/// The leader's hold on its key: dropped when its response is stored or given up.
pub struct FlightGuard<'c> {
    cache: &'c EdgeCache,
    key: String,
    flight: Arc<Flight>,
}

impl Drop for FlightGuard<'_> {
    fn drop(&mut self) {
        let mut flights = self.cache.flights.lock().unwrap_or_else(|p| p.into_inner());
        flights.remove(&self.key);
        drop(flights);
        self.flight.done.store(true, Ordering::Release);
        self.flight.notify.notify_waiters();
    }
}

/// The edge cache the workers share.
pub struct EdgeCache {
    /// The memory tier.
    pub store: Store,
    /// The disk tier, when `[cache] disk_path` is set.
    pub disk: Option<Arc<Disk>>,
    /// Largest body stored.
    pub max_object: u64,
    flights: Mutex<HashMap<String, Arc<Flight>>>,
    /// When a failed disk write was last reported (seconds since the epoch): at most one
    /// report every ten seconds, for a disk that fills.
    disk_error_reported: AtomicU64,
}

impl EdgeCache {
    /// The cache `[cache]` describes; `None` when `memory = 0` turns caching off. Opening
    /// the disk tier rebuilds its index from the files a previous run left.
    pub fn new(config: &CacheConfig) -> std::io::Result<Option<EdgeCache>> {
        if config.memory == 0 {
            return Ok(None);
        }
        let store = Store::new(usize::try_from(config.memory).unwrap_or(usize::MAX));
        let max_object = config.max_object_size.min(store.max_object() as u64);
        let disk = match &config.disk_path {
            Some(path) => {
                let (disk, found) = Disk::open(path, config.disk).map_err(|e| {
                    std::io::Error::new(
                        e.kind(),
                        format!("cache.disk_path `{}`: {e}", path.display()),
                    )
                })?;
                tracing::info!(
                    "cache: {} objects ({} bytes) on disk in {}; {} bad files dropped",
                    found.objects,
                    found.bytes,
                    path.display(),
                    found.dropped
                );
                Some(Arc::new(disk))
            }
            None => None,
        };
        Ok(Some(EdgeCache {
            store,
            disk,
            max_object,
            flights: Mutex::new(HashMap::new()),
            disk_error_reported: AtomicU64::new(0),
        }))
    }

    /// The object stored for `key` that fits the request whose fields `header` gives: from
    /// memory, or read from disk (and kept in memory from then on).
    pub async fn get<'h>(
        &self,
        key: &str,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Option<Arc<Object>> {
        if let Some(object) = self.store.get(key, &header) {
            return Some(object);
        }
        let disk = self.disk.as_ref()?;
        let id = disk.find(key, &header)?;
        let reader = disk.clone();
        let object = tokio::task::spawn_blocking(move || reader.read(id))
            .await
            .ok()??;
        let object = Arc::new(object);
        self.store.insert(key, object.clone(), header);
        Some(object)
    }

    /// Stores `object` for `key` and the request whose fields `header` gives: in memory at
    /// once, and on disk behind (a failed write is reported, and the object stays in memory).
    pub fn put<'h>(
        self: &Arc<Self>,
        key: &str,
        object: impl Into<Arc<Object>>,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) {
        let object = object.into();
        self.store.insert(key, object.clone(), &header);
        let Some(disk) = self.disk.clone() else {
            return;
        };
        let secondary = rampart_cache::store::secondary(&object.meta.vary, &header);
        let key = key.to_string();
        let cache = self.clone();
        tokio::task::spawn_blocking(move || {
            if let Err(e) = disk.write(&key, &secondary, &object) {
                cache.report_disk_error(&e);
            }
        });
    }

    fn report_disk_error(&self, e: &std::io::Error) {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let last = self.disk_error_reported.load(Ordering::Relaxed);
        if now >= last + 10
            && self
                .disk_error_reported
                .compare_exchange(last, now, Ordering::Relaxed, Ordering::Relaxed)
                .is_ok()
        {
            tracing::warn!(
                "cache: an object could not be written to disk (it stays in memory): {e}"
            );
        }
    }

    /// Joins the misses of `key`: the first leads, the others follow.
    pub fn join(&self, key: &str) -> Join<'_> {
        let mut flights = self.flights.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(f) = flights.get(key) {
            return Join::Follower(f.clone());
        }
        let flight = Arc::new(Flight::default());
        flights.insert(key.to_string(), flight.clone());
        Join::Leader(FlightGuard {
            cache: self,
            key: key.to_string(),
            flight,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn followers_wait_for_the_leader_and_are_released_when_it_is_done() {
        let cache = EdgeCache::new(&CacheConfig::default()).unwrap().unwrap();
        let Join::Leader(guard) = cache.join("k") else {
            panic!("the first leads")
        };
        let Join::Follower(flight) = cache.join("k") else {
            panic!("the second follows")
        };
        assert!(matches!(cache.join("other"), Join::Leader(_)));
        assert!(
            !flight.wait(Duration::from_millis(20)).await,
            "still in flight"
        );
        drop(guard);
        assert!(flight.wait(Duration::from_secs(10)).await);
        assert!(
            matches!(cache.join("k"), Join::Leader(_)),
            "the key is free again"
        );
    }
}
