//! Automatic certificates (ACME, RFC 8555) for zones with `tls = "acme"`.
//!
//! One task per such zone keeps its certificate: it serves what storage holds, sleeps until
//! the renewal time (`renew_before` the expiry, less a random jitter), orders a new
//! certificate, proves control of each name (HTTP-01 answered by the request pipeline,
//! TLS-ALPN-01 by the TLS handshake), stores the result on disk and swaps it in for new
//! handshakes; connections already open keep theirs. Failures back off exponentially, and
//! rate limits from the CA longer still; each is logged.
//!
//! [`Acme`] is shared by every configuration generation: certificates and tasks outlive a
//! reload, and a task is replaced only when its zone's names or the `[acme]` settings change.

mod order;
mod store;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use arc_swap::ArcSwap;
use tokio::task::AbortHandle;

use crate::config::acme::AcmeConfig;
use crate::config::{Config, HostPattern, Zone};
use crate::observe::Metrics;
use crate::tls::ServerCert;

/// The path HTTP-01 tokens are asked for under.
pub const HTTP01_PREFIX: &str = "/.well-known/acme-challenge/";

/// The ALPN protocol of TLS-ALPN-01 validation (RFC 8737).
pub const ACME_TLS_ALPN: &[u8] = b"acme-tls/1";

/// ACME state shared by every generation.
#[derive(Default)]
pub struct Acme {
    /// Each ACME zone's current certificate, by zone name.
    certs: ArcSwap<HashMap<String, ServerCert>>,
    /// HTTP-01: token → key authorization, while a validation is pending.
    http01: Mutex<HashMap<String, String>>,
    /// TLS-ALPN-01: name → the validation certificate's configuration, while pending.
    tls_alpn01: Mutex<HashMap<String, Arc<rustls::ServerConfig>>>,
    /// The zones' tasks: what each was started for, and its handle.
    tasks: Mutex<HashMap<String, (TaskKey, AbortHandle)>>,
}

/// What a zone's task was started for: when it changes, the task is replaced.
#[derive(Clone, PartialEq, Eq)]
struct TaskKey {
    names: Vec<String>,
    acme: AcmeConfig,
}

impl Acme {
    /// The certificate of the ACME zone `zone`, once it has one.
    pub fn certificate(&self, zone: &str) -> Option<Arc<rustls::ServerConfig>> {
        self.certs.load().get(zone).map(|c| c.config.clone())
    }

    /// The key authorization for an HTTP-01 `token`, while its validation is pending.
    pub fn http01(&self, token: &str) -> Option<String> {
        lock(&self.http01).get(token).cloned()
    }

    /// The TLS-ALPN-01 validation configuration for `name`, while its validation is pending.
    pub fn tls_alpn01(&self, name: &str) -> Option<Arc<rustls::ServerConfig>> {
        lock(&self.tls_alpn01).get(name).cloned()
    }

    /// Starts a task for each zone of `config` with `tls = "acme"` that has none for its
    /// names and settings, and stops the others. Needs a tokio runtime (does nothing without).
    pub fn sync(self: &Arc<Self>, config: &Config, metrics: &Arc<Metrics>) {
        if tokio::runtime::Handle::try_current().is_err() {
            return;
        }
        let mut tasks = lock(&self.tasks);
        let wanted: HashMap<String, TaskKey> = match &config.acme {
            Some(acme) => config
                .zones
                .iter()
                .filter(|z| z.acme)
                .map(|z| {
                    let key = TaskKey {
                        names: names(z),
                        acme: acme.clone(),
                    };
                    (z.name.clone(), key)
                })
                .collect(),
            None => HashMap::new(),
        };
        tasks.retain(|zone, (key, handle)| {
            let keep = wanted.get(zone) == Some(key);
            if !keep {
                handle.abort();
            }
            keep
        });
        for (zone, key) in wanted {
            if tasks.contains_key(&zone) {
                continue;
            }
            let task = run(self.clone(), zone.clone(), key.clone(), metrics.clone());
            tasks.insert(zone, (key, tokio::spawn(task).abort_handle()));
        }
        // Certificates of zones that are gone or no longer ACME are not served.
        let kept: HashMap<String, ServerCert> = self
            .certs
            .load()
            .iter()
            .filter(|(z, _)| tasks.contains_key(*z))
            .map(|(z, c)| (z.clone(), c.clone()))
            .collect();
        self.certs.store(Arc::new(kept));
    }

    /// Stops every task (shutdown).
    pub fn stop(&self) {
        for (_, (_, handle)) in lock(&self.tasks).drain() {
            handle.abort();
        }
    }

    /// Serves `cert` for `zone` from the next handshake on.
    fn install(&self, zone: &str, cert: ServerCert) {
        self.certs.rcu(|current| {
            let mut next = HashMap::clone(current);
            next.insert(zone.to_string(), cert.clone());
            next
        });
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|p| p.into_inner())
}

/// The names a zone's certificate covers: its exact hosts (wildcards cannot be proved by
/// HTTP-01 or TLS-ALPN-01), sorted.
fn names(zone: &Zone) -> Vec<String> {
    let mut names: Vec<String> = zone
        .hosts
        .iter()
        .filter_map(|h| match h {
            HostPattern::Exact(n) => Some(n.clone()),
            HostPattern::Wildcard(_) => None,
        })
        .collect();
    names.sort();
    names
}

/// The first wait after a failure; it doubles with each failure in a row.
const FIRST_BACKOFF: Duration = Duration::from_secs(60);
/// The longest wait after failures.
const MAX_BACKOFF: Duration = Duration::from_secs(6 * 3600);
/// The least wait after the CA said a rate limit was hit.
const RATE_LIMIT_BACKOFF: Duration = Duration::from_secs(3600);

/// Keeps `zone`'s certificate: serve the stored one, renew when due, retry with back-off.
async fn run(acme: Arc<Acme>, zone: String, key: TaskKey, metrics: Arc<Metrics>) {
    let TaskKey { names, acme: cfg } = key;
    let mut current = match store::load_certificate(&cfg.storage, &zone, &names) {
        Ok(Some(cert)) => {
            tracing::info!(
                zone,
                "ACME: serving the stored certificate for {}",
                names.join(", ")
            );
            metrics.acme_certificate(&zone, cert.not_after);
            acme.install(&zone, cert.clone());
            Some(cert)
        }
        Ok(None) => None,
        Err(e) => {
            tracing::warn!(zone, "ACME: the stored certificate is not used: {e}");
            None
        }
    };
    let mut failures = 0u32;
    loop {
        if let Some(cert) = &current {
            let wait = renewal_wait(cert, crate::tls::now_secs(), cfg.renew_before);
            if !wait.is_zero() {
                tracing::info!(
                    zone,
                    "ACME: certificate valid for {} more days; renewal in {}",
                    cert.days_left(),
                    humantime::format_duration(Duration::from_secs(wait.as_secs()))
                );
                tokio::time::sleep(wait).await;
            }
        }
        match order::obtain(&acme, &cfg, &names).await {
            Ok((chain, key)) => {
                failures = 0;
                let cert = match ServerCert::from_pem(
                    chain.as_bytes(),
                    key.as_bytes(),
                    "issued certificate",
                    "its key",
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        metrics.acme_order(&zone, "failed");
                        tracing::error!(
                            zone,
                            "ACME: the CA issued a certificate that cannot be served: {e}"
                        );
                        tokio::time::sleep(MAX_BACKOFF).await;
                        continue;
                    }
                };
                metrics.acme_order(&zone, "issued");
                tracing::info!(
                    zone,
                    "ACME: certificate issued for {}, valid for {} days",
                    names.join(", "),
                    cert.days_left()
                );
                if let Err(e) = store::save_certificate(&cfg.storage, &zone, &chain, &key) {
                    tracing::error!(
                        zone,
                        "ACME: the new certificate is served but could not be stored (it will be ordered again after a restart): {e}"
                    );
                }
                metrics.acme_certificate(&zone, cert.not_after);
                acme.install(&zone, cert.clone());
                current = Some(cert);
            }
            Err(e) => {
                failures += 1;
                let result = if e.rate_limited {
                    "rate_limited"
                } else {
                    "failed"
                };
                metrics.acme_order(&zone, result);
                let mut wait = FIRST_BACKOFF
                    .saturating_mul(1 << (failures - 1).min(16))
                    .min(MAX_BACKOFF);
                if e.rate_limited {
                    wait = wait.max(RATE_LIMIT_BACKOFF);
                }
                tracing::warn!(
                    zone,
                    failures,
                    "ACME: {}{}; next attempt in {}",
                    if e.rate_limited {
                        "rate limited by the CA: "
                    } else {
                        ""
                    },
                    e.message,
                    humantime::format_duration(wait)
                );
                tokio::time::sleep(wait).await;
            }
        }
    }
}

/// How long until `cert` is renewed: `renew_before` ahead of its expiry (or a third of its
/// lifetime, when that is shorter: a short-lived certificate is not renewed over and over),
/// less a random jitter of up to a tenth of that (at most 12 hours), so that many
/// certificates issued together are not renewed together. Zero when due.
fn renewal_wait(cert: &ServerCert, now: i64, renew_before: Duration) -> Duration {
    let not_after = cert.not_after;
    let lifetime = u64::try_from(not_after - cert.not_before).unwrap_or(0);
    let renew_before = renew_before.min(Duration::from_secs(lifetime / 3));
    let jitter_max = (renew_before.as_secs() / 10).min(12 * 3600);
    let jitter = fastrand::u64(0..=jitter_max);
    let due = not_after
        .saturating_sub(i64::try_from(renew_before.as_secs() + jitter).unwrap_or(i64::MAX));
    Duration::from_secs(u64::try_from(due.saturating_sub(now)).unwrap_or(0))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cert(not_before: i64, not_after: i64) -> ServerCert {
        let c = rcgen::generate_simple_self_signed(vec!["a.test".to_string()]).unwrap();
        let mut cert = ServerCert::from_pem(
            c.cert.pem().as_bytes(),
            c.signing_key.serialize_pem().as_bytes(),
            "c",
            "k",
        )
        .unwrap();
        (cert.not_before, cert.not_after) = (not_before, not_after);
        cert
    }

    #[test]
    fn renewal_is_due_renew_before_the_expiry_less_a_bounded_jitter() {
        let day = 86_400;
        let thirty = Duration::from_secs(30 * day as u64);
        for _ in 0..200 {
            // 90 days left: renewal in 60 days, less at most 12 hours.
            let wait = renewal_wait(&cert(0, 90 * day), 0, thirty).as_secs() as i64;
            assert!((60 * day - 12 * 3600..=60 * day).contains(&wait), "{wait}");
            // A 6-day certificate: renewed with 2 days left, not at once.
            let wait = renewal_wait(&cert(0, 6 * day), 0, thirty).as_secs() as i64;
            assert!((4 * day - 5 * 3600..=4 * day).contains(&wait), "{wait}");
        }
        // Inside the window, or expired: at once.
        assert_eq!(
            renewal_wait(&cert(-70 * day, 20 * day), 0, thirty),
            Duration::ZERO
        );
        assert_eq!(
            renewal_wait(&cert(-90 * day, -day), 0, thirty),
            Duration::ZERO
        );
    }
}
