//! State shared by every connection: the current configuration generation, the access log,
//! the metrics, and the shutdown signal.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use arc_swap::ArcSwap;
use tokio::sync::{Notify, watch};

use crate::analytics::Analytics;
use crate::cache::EdgeCache;
use crate::config::Config;
use crate::observe::{AccessLog, Metrics};
use crate::state::Generation;

/// State shared by every connection.
pub struct Runtime {
    generation: ArcSwap<Generation>,
    /// Metrics.
    pub metrics: Arc<Metrics>,
    /// Access log.
    pub log: AccessLog,
    /// The edge cache (none when `[cache] memory = 0`). Made once: a reload keeps it.
    pub cache: Option<Arc<EdgeCache>>,
    /// Every request's counts, for the analytics API. A reload keeps them.
    pub analytics: Analytics,
    shutting_down: AtomicBool,
    shutdown_tx: watch::Sender<bool>,
    open: AtomicUsize,
    idle: Notify,
    /// Where announcements to the fleet go (set when `[fleet]` starts).
    announcer: std::sync::OnceLock<tokio::sync::mpsc::Sender<Announcement>>,
}

/// Something this node tells the other nodes of its fleet.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Announcement {
    /// A purge of a zone's cache, as the API's request body named it.
    Purge {
        /// The zone.
        zone: String,
        /// The `purge_cache` request body (JSON).
        body: Vec<u8>,
    },
    /// The configuration file's new text, after a change through the management API.
    Config(String),
}

/// Announcements waiting to be sent; more are dropped (and logged) while Redis is slow.
pub const ANNOUNCEMENT_QUEUE: usize = 256;

thread_local! {
    /// This worker's copy of the shutdown signal (none outside worker threads).
    static WORKER_SHUTDOWN: std::cell::RefCell<Option<watch::Receiver<bool>>> =
        const { std::cell::RefCell::new(None) };
}

impl Runtime {
    /// The runtime of `config`, with no connection yet; an error when its cache's disk tier
    /// or its analytics database cannot be opened.
    pub fn new(
        config: Config,
        log: AccessLog,
        metrics: Arc<Metrics>,
    ) -> std::io::Result<Arc<Runtime>> {
        let (shutdown_tx, _) = watch::channel(false);
        let cache = EdgeCache::new(&config.cache)?.map(Arc::new);
        let (analytics, note) =
            Analytics::open(&config.analytics).map_err(std::io::Error::other)?;
        if let Some(note) = note {
            tracing::error!("{note}");
        }
        let generation = Generation::new(config);
        generation.start_background(&metrics);
        Ok(Arc::new(Runtime {
            cache,
            analytics,
            generation: ArcSwap::from_pointee(generation),
            metrics,
            log,
            shutting_down: AtomicBool::new(false),
            shutdown_tx,
            open: AtomicUsize::new(0),
            idle: Notify::new(),
            announcer: std::sync::OnceLock::new(),
        }))
    }

    /// The current configuration generation. A request keeps the `Arc` it got at its start.
    pub fn generation(&self) -> Arc<Generation> {
        self.generation.load_full()
    }

    /// Swaps in a new configuration; requests already running keep the old one. The old
    /// generation's health checks stop before the new one's start, so that two checks of one
    /// origin never overlap.
    pub fn reload(&self, config: Config) {
        let old = self.generation.load_full();
        let next = old.reload(config);
        old.stop_health_checks();
        next.start_background(&self.metrics);
        self.generation.store(Arc::new(next));
    }

    /// Tells the fleet, if this node is part of one; nothing otherwise.
    pub fn announce(&self, announcement: Announcement) {
        if let Some(tx) = self.announcer.get()
            && let Err(e) = tx.try_send(announcement)
        {
            tracing::error!(
                "fleet: an announcement was not sent (the queue to Redis is full or closed): {e}"
            );
        }
    }

    /// The queue of announcements, for the fleet's sender to read; `None` after the first
    /// call.
    pub fn take_announcements(&self) -> Option<tokio::sync::mpsc::Receiver<Announcement>> {
        let (tx, rx) = tokio::sync::mpsc::channel(ANNOUNCEMENT_QUEUE);
        self.announcer.set(tx).ok().map(|()| rx)
    }

    /// Whether shutdown has begun (responses then carry `Connection: close`).
    pub fn shutting_down(&self) -> bool {
        self.shutting_down.load(Ordering::Relaxed)
    }

    /// Begins shutdown: connections finish their request in flight and close.
    pub fn begin_shutdown(&self) {
        self.shutting_down.store(true, Ordering::Relaxed);
        let generation = self.generation.load();
        generation.stop_health_checks();
        generation.acme.stop();
        let _ = self.shutdown_tx.send(true);
    }

    /// A receiver that changes to `true` when shutdown begins.
    ///
    /// On a worker thread this is the worker's own copy of the signal: connections wait on it
    /// between requests, and on a channel shared by every worker they would take its shared
    /// locks, from every core, twice per request.
    pub fn shutdown_signal(&self) -> watch::Receiver<bool> {
        WORKER_SHUTDOWN
            .with(|w| w.borrow().clone())
            .unwrap_or_else(|| self.shutdown_tx.subscribe())
    }

    /// Gives the current (worker) thread its own copy of the shutdown signal, set from the
    /// shared one by a task on this thread.
    pub(crate) fn install_worker_signal(&self) {
        let (local_tx, local_rx) = watch::channel(false);
        WORKER_SHUTDOWN.with(|w| *w.borrow_mut() = Some(local_rx));
        let mut shared = self.shutdown_tx.subscribe();
        tokio::spawn(async move {
            let _ = shared.wait_for(|s| *s).await;
            let _ = local_tx.send(true);
        });
    }

    /// Marks a connection open until the guard drops.
    pub fn track(self: &Arc<Self>) -> ConnGuard {
        self.open.fetch_add(1, Ordering::AcqRel);
        self.metrics.open_connections().inc();
        ConnGuard(self.clone())
    }

    /// Connections open now.
    pub fn open_connections(&self) -> usize {
        self.open.load(Ordering::Acquire)
    }

    /// Waits until no connection is open, at most until `deadline`; returns how many are.
    pub async fn drained(&self, deadline: tokio::time::Instant) -> usize {
        loop {
            let notified = self.idle.notified();
            if self.open_connections() == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return self.open_connections();
            }
        }
    }
}

/// Keeps a connection counted as open.
pub struct ConnGuard(Arc<Runtime>);

impl Drop for ConnGuard {
    fn drop(&mut self) {
        self.0.metrics.open_connections().dec();
        if self.0.open.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
