//! An origin's health: what active checks say (`health_check`), and what real traffic says
//! (`passive_health`: failed connects and 5xx answers).
//!
//! Each origin with a check has one checker task, which checks, waits for the rest of the
//! interval, and checks again: two checks of one origin never overlap. The tasks belong to a
//! configuration generation and are stopped when it is replaced; the origin's state (and
//! when its next check is due) carries over to the next generation's checker.

use std::hash::{Hash, Hasher};
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use super::{Origin, Policy, connect};
use crate::config::OriginProtocol;
use crate::config::origins::{HealthCheck, PassiveHealth};
use crate::observe::Metrics;

/// Milliseconds on the process's monotonic clock (never 0).
pub(super) fn now_ms() -> u64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    let epoch = *EPOCH.get_or_init(Instant::now);
    epoch.elapsed().as_millis() as u64 + 1
}

/// One origin's health.
pub(super) struct Health {
    /// The active checks' verdict: up until checks say otherwise.
    checked_up: AtomicBool,
    /// Consecutive checks with the latest check's result: passes when positive, failures
    /// when negative. Written only by the origin's one checker.
    streak: AtomicI32,
    /// Consecutive failures seen in traffic.
    failures: AtomicU32,
    /// Down after failures in traffic until this time (`now_ms`; 0: not down).
    down_until: AtomicU64,
    /// When the next active check is due (`now_ms`), so that a reload does not check at once.
    next_check: AtomicU64,
    /// The last check's outcome, for the admin plane.
    last_check: Mutex<Option<String>>,
    /// Requests sent and not yet answered in full.
    pub(super) outstanding: AtomicUsize,
    /// This origin's hash seed for rendezvous hashing (from its URL, so that it does not
    /// depend on the origin's place in the list).
    pub(super) seed: u64,
}

impl Health {
    pub(super) fn new(addr: &crate::config::OriginAddr) -> Health {
        let mut h = rustc_hash::FxHasher::default();
        addr.to_string().hash(&mut h);
        addr.tls.hash(&mut h);
        Health {
            checked_up: AtomicBool::new(true),
            streak: AtomicI32::new(0),
            failures: AtomicU32::new(0),
            down_until: AtomicU64::new(0),
            next_check: AtomicU64::new(0),
            last_check: Mutex::new(None),
            outstanding: AtomicUsize::new(0),
            seed: mix(h.finish()),
        }
    }

    /// Whether the origin takes traffic at `now`.
    pub(super) fn usable(&self, now: u64) -> bool {
        self.checked_up.load(Ordering::Relaxed) && self.down_until.load(Ordering::Relaxed) <= now
    }

    /// The active checks' verdict.
    pub(super) fn checked_up(&self) -> bool {
        self.checked_up.load(Ordering::Relaxed)
    }

    /// Milliseconds the origin stays down after failures in traffic (0 when it is not).
    pub(super) fn backoff_left(&self, now: u64) -> u64 {
        self.down_until.load(Ordering::Relaxed).saturating_sub(now)
    }

    /// The last check's outcome.
    pub(super) fn last_check(&self) -> Option<String> {
        self.last_check
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
    }

    /// Forgets what checks said (the pool no longer checks this origin).
    pub(super) fn unchecked(&self) {
        self.checked_up.store(true, Ordering::Relaxed);
        self.streak.store(0, Ordering::Relaxed);
        *self.last_check.lock().unwrap_or_else(|p| p.into_inner()) = None;
    }

    /// Records what one exchange in traffic says about the origin.
    pub(super) fn observe(&self, ok: bool, passive: &PassiveHealth, addr: &dyn std::fmt::Display) {
        if ok {
            // Read first: a healthy origin's line is then never written by every request.
            if self.failures.load(Ordering::Relaxed) != 0 {
                self.failures.store(0, Ordering::Relaxed);
            }
            return;
        }
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        if n >= passive.failures {
            self.failures.store(0, Ordering::Relaxed);
            let until = now_ms() + passive.backoff.as_millis() as u64;
            self.down_until.store(until, Ordering::Relaxed);
            tracing::warn!(
                origin = %addr,
                "origin marked down for {} after {n} failed request{} in a row",
                humantime::format_duration(passive.backoff),
                if n == 1 { "" } else { "s" }
            );
        }
    }

    /// Records one check's outcome; true when the verdict changed.
    fn record_check(&self, passed: bool, check: &HealthCheck, outcome: String) -> bool {
        *self.last_check.lock().unwrap_or_else(|p| p.into_inner()) = Some(outcome);
        let s = self.streak.load(Ordering::Relaxed);
        let s = match (passed, s > 0) {
            (true, true) => s.saturating_add(1),
            (true, false) => 1,
            (false, false) => s.saturating_sub(1),
            (false, true) => -1,
        };
        self.streak.store(s, Ordering::Relaxed);
        let up = self.checked_up.load(Ordering::Relaxed);
        let flip = if up {
            -s >= check.unhealthy_after as i32
        } else {
            s >= check.healthy_after as i32
        };
        if flip {
            self.checked_up.store(!up, Ordering::Relaxed);
        }
        flip
    }
}

/// A 64-bit finaliser (splitmix64's), so that nearby inputs give unrelated outputs.
pub(super) fn mix(mut x: u64) -> u64 {
    x = (x ^ (x >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    x = (x ^ (x >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    x ^ (x >> 31)
}

/// What a checker reports under.
pub(super) struct CheckLabels {
    pub zone: String,
    pub pool: String,
}

/// Checks `origin` every `check.interval` until the task is aborted.
pub(super) async fn run(
    origin: Arc<Origin>,
    check: HealthCheck,
    labels: CheckLabels,
    metrics: Arc<Metrics>,
) {
    let interval_ms = check.interval.as_millis() as u64;
    loop {
        let due = origin.health.next_check.load(Ordering::Relaxed);
        let now = now_ms();
        if due > now {
            tokio::time::sleep(Duration::from_millis(due - now)).await;
        }
        let started = now_ms();
        origin
            .health
            .next_check
            .store(started + interval_ms, Ordering::Relaxed);
        let outcome =
            match tokio::time::timeout(check.timeout, probe(&origin, &check, &metrics)).await {
                Ok(Ok(status)) if check.expected.contains(&status) => Ok(status),
                Ok(Ok(status)) => Err(format!(
                    "status {status}, expected one of {:?}",
                    check.expected
                )),
                Ok(Err(e)) => Err(e),
                Err(_) => Err(format!(
                    "no response head within {}",
                    humantime::format_duration(check.timeout)
                )),
            };
        let passed = outcome.is_ok();
        let text = match &outcome {
            Ok(status) => format!("passed: status {status}"),
            Err(e) => format!("failed: {e}"),
        };
        metrics.health_check(&labels.zone, &labels.pool, &origin.addr.to_string(), passed);
        if origin.health.record_check(passed, &check, text.clone()) {
            if origin.health.checked_up() {
                tracing::info!(zone = labels.zone, pool = labels.pool, origin = %origin.addr, "origin is healthy again: {text}");
            } else {
                tracing::warn!(zone = labels.zone, pool = labels.pool, origin = %origin.addr, "origin is down: health check {text}");
            }
        }
    }
}

/// One check: a GET of the check's path, answered with a status.
async fn probe(origin: &Origin, check: &HealthCheck, metrics: &Metrics) -> Result<u16, String> {
    let policy = Policy {
        connect: check.timeout,
        connect_retries: 0,
        response: check.timeout,
        head_limits: rampart_http::Limits::default(),
    };
    let failed = |e: super::OriginError| e.rejection(&origin.addr).detail;
    // One attempt, so no connect retry is counted: a check is not a request.
    let conn = connect::connect(&origin.addr, origin.tls.as_ref(), &policy, metrics, "")
        .await
        .map_err(failed)?;
    match origin.protocol {
        OriginProtocol::Http1 => super::h1::probe(conn, &check.host, &check.path)
            .await
            .map_err(failed),
        OriginProtocol::H2 => super::h2::probe(conn, origin.addr.tls, &check.host, &check.path)
            .await
            .map_err(failed),
    }
}
