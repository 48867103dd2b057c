//! A zone's origins and how a request picks one: pools in order of preference, steering
//! within a pool (round robin, least outstanding, hash, failover), health, and a failed
//! connect retried on another healthy origin.

use std::net::IpAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::task::AbortHandle;

use super::health::{self, CheckLabels, mix, now_ms};
use super::{ClientSide, FetchError, Origin, OriginRequest, OriginResponse, Policy};
use crate::config::Zone;
use crate::config::origins::{HealthCheck, OriginPool, PassiveHealth, Steering};
use crate::errors::{EdgeError, Rejection};
use crate::observe::Metrics;

/// A zone's origins, with their connections and health.
pub struct Upstream {
    pools: Vec<Pool>,
    /// `origin = "..."`: one origin, no steering and no health tracking.
    single: bool,
}

struct Pool {
    name: String,
    origins: Vec<Arc<Origin>>,
    weights: Vec<u32>,
    steering: Steering,
    /// Round robin's order: each origin's index `weight` times, interleaved (smooth
    /// weighted round robin).
    schedule: Vec<usize>,
    /// Where round robin goes next (and where least outstanding starts looking).
    next: AtomicUsize,
    check: Option<HealthCheck>,
    passive: Option<PassiveHealth>,
}

/// Counts one exchange as in flight at its origin until dropped.
pub(super) struct InFlight<'u>(&'u Origin);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.health.outstanding.fetch_sub(1, Ordering::Relaxed);
    }
}

/// One origin's state, for metrics and the admin plane.
#[derive(Debug, Clone)]
pub struct OriginStatus {
    /// The pool's name.
    pub pool: String,
    /// The origin, as `scheme://host:port`.
    pub origin: String,
    /// Its weight in the pool.
    pub weight: u32,
    /// Whether it takes traffic now.
    pub healthy: bool,
    /// What active checks say (`true` when the pool has none).
    pub checked_up: bool,
    /// How long it stays out of traffic after failed requests.
    pub backoff_left: Duration,
    /// The last health check's outcome.
    pub last_check: Option<String>,
    /// Requests in flight.
    pub outstanding: usize,
}

impl Upstream {
    /// The origins of `zone`, reusing those of `old` (the previous generation's) that are
    /// spoken to the same way, with their connections and health.
    pub fn new(zone: &Zone, old: Option<&Upstream>) -> Upstream {
        let reuse = |addr| {
            old.into_iter()
                .flat_map(|u| u.pools.iter())
                .flat_map(|p| p.origins.iter())
                .find(|o| o.serves(addr, zone))
                .cloned()
        };
        let pools = zone
            .origins
            .pools
            .iter()
            .map(|p| {
                let origins: Vec<Arc<Origin>> = p
                    .origins
                    .iter()
                    .map(|o| reuse(&o.addr).unwrap_or_else(|| Arc::new(Origin::new(&o.addr, zone))))
                    .collect();
                if p.health_check.is_none() {
                    origins.iter().for_each(|o| o.health.unchecked());
                }
                Pool::new(p, origins)
            })
            .collect();
        Upstream {
            pools,
            single: zone.origins.is_single(),
        }
    }

    /// Starts a checker task for each origin of a pool with `health_check`, on the current
    /// tokio runtime; the handles stop them.
    pub fn start_checks(&self, zone: &str, metrics: &Arc<Metrics>) -> Vec<AbortHandle> {
        let mut handles = Vec::new();
        for pool in &self.pools {
            let Some(check) = &pool.check else { continue };
            for origin in &pool.origins {
                let labels = CheckLabels {
                    zone: zone.to_string(),
                    pool: pool.name.clone(),
                };
                let task = health::run(origin.clone(), check.clone(), labels, metrics.clone());
                handles.push(tokio::spawn(task).abort_handle());
            }
        }
        handles
    }

    /// Every origin's state.
    pub fn status(&self) -> Vec<OriginStatus> {
        let now = now_ms();
        let mut out = Vec::new();
        for pool in &self.pools {
            for (o, &weight) in pool.origins.iter().zip(&pool.weights) {
                let scheme = if o.addr.tls { "https" } else { "http" };
                out.push(OriginStatus {
                    pool: pool.name.clone(),
                    origin: format!("{scheme}://{}", o.addr),
                    weight,
                    healthy: o.health.usable(now),
                    checked_up: o.health.checked_up(),
                    backoff_left: Duration::from_millis(o.health.backoff_left(now)),
                    last_check: o.health.last_check(),
                    outstanding: o.health.outstanding.load(Ordering::Relaxed),
                });
            }
        }
        out
    }

    /// Sends `req` to an origin and waits for its response head (see [`Origin::fetch`]).
    ///
    /// With pools: the steering's pick among the healthy origins of the first pool that has
    /// one. A connect that fails is tried again on another healthy origin (on the same one
    /// when there is no other), with at most `origin_connect_retries` more timed-out
    /// attempts in all; refused connects, which cost no time, move on to the next origin.
    /// When no origin is healthy the answer is 530 / 1016 without any connect.
    pub async fn fetch<C: ClientSide>(
        &self,
        policy: &Policy,
        metrics: &Metrics,
        zone: &str,
        req: &OriginRequest<'_>,
        client: &mut C,
    ) -> Result<OriginResponse<'_>, FetchError<C::Abort>> {
        if self.single {
            let origin = &self.pools[0].origins[0];
            return origin.fetch(policy, metrics, zone, req, client).await;
        }
        let once = Policy {
            connect_retries: 0,
            ..policy.clone()
        };
        let mut timeouts_left = policy.connect_retries + 1;
        let mut tried: Vec<&Origin> = Vec::new();
        let mut last: Option<(Rejection, &Origin, &Pool)> = None;
        loop {
            let picked = self.pick(req, &tried).or(match &last {
                // A timed-out connect with no other origin to go to: the same one again.
                Some((r, o, p)) if r.error == EdgeError::ConnectionTimedOut => Some((*p, *o)),
                _ => None,
            });
            let Some((pool, origin)) = picked else {
                return Err(FetchError::Origin(match last {
                    Some((r, _, _)) => r,
                    None => no_healthy_origin(zone),
                }));
            };
            if last.is_some() {
                metrics.connect_retry(zone);
            }
            origin.health.outstanding.fetch_add(1, Ordering::Relaxed);
            let in_flight = InFlight(origin);
            match origin.fetch(&once, metrics, zone, req, client).await {
                Ok(mut response) => {
                    pool.observe(origin, response.head.status() < 500);
                    response.in_flight = Some(in_flight);
                    return Ok(response);
                }
                Err(FetchError::Origin(r)) if connect_failed(r.error) => {
                    pool.observe(origin, false);
                    if r.error == EdgeError::ConnectionTimedOut {
                        timeouts_left -= 1;
                        if timeouts_left == 0 {
                            return Err(FetchError::Origin(r));
                        }
                    }
                    if !tried.iter().any(|t| std::ptr::eq(*t, origin)) {
                        tried.push(origin);
                    }
                    last = Some((r, origin, pool));
                }
                Err(FetchError::Origin(r)) => {
                    pool.observe(origin, false);
                    return Err(FetchError::Origin(r));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// The origin a request goes to: the first pool with a healthy origin not yet tried,
    /// and its steering's choice among those.
    fn pick(&self, req: &OriginRequest<'_>, tried: &[&Origin]) -> Option<(&Pool, &Origin)> {
        let now = now_ms();
        self.pools.iter().find_map(|pool| {
            let usable = |i: usize| {
                let o = &*pool.origins[i];
                o.health.usable(now) && !tried.iter().any(|t| std::ptr::eq(*t, o))
            };
            pool.choose(req, usable).map(|i| (pool, &*pool.origins[i]))
        })
    }
}

impl Pool {
    fn new(config: &OriginPool, origins: Vec<Arc<Origin>>) -> Pool {
        let weights: Vec<u32> = config.origins.iter().map(|o| o.weight).collect();
        Pool {
            name: config.name.clone(),
            schedule: smooth_schedule(&weights),
            weights,
            origins,
            steering: config.steering.clone(),
            next: AtomicUsize::new(0),
            check: config.health_check.clone(),
            passive: config.passive,
        }
    }

    fn observe(&self, origin: &Origin, ok: bool) {
        if let Some(passive) = &self.passive {
            origin.health.observe(ok, passive, &origin.addr);
        }
    }

    /// The steering's choice among the origins `usable` allows.
    fn choose(&self, req: &OriginRequest<'_>, usable: impl Fn(usize) -> bool) -> Option<usize> {
        let n = self.origins.len();
        match &self.steering {
            Steering::Failover => (0..n).find(|&i| usable(i)),
            Steering::RoundRobin => {
                let len = self.schedule.len();
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..len)
                    .map(|k| self.schedule[(start + k) % len])
                    .find(|&i| usable(i))
            }
            Steering::LeastOutstanding => {
                // Ties go round, so that an idle pool still spreads its requests.
                let start = self.next.fetch_add(1, Ordering::Relaxed);
                (0..n)
                    .map(|k| (start + k) % n)
                    .filter(|&i| usable(i))
                    .min_by(|&a, &b| {
                        let load = |i: usize| {
                            self.origins[i].health.outstanding.load(Ordering::Relaxed) as u64
                        };
                        // a / wa against b / wb, without division.
                        (load(a) * u64::from(self.weights[b]))
                            .cmp(&(load(b) * u64::from(self.weights[a])))
                    })
            }
            Steering::Hash { header } => {
                let key = hash_key(req, header.as_ref());
                (0..n).filter(|&i| usable(i)).max_by(|&a, &b| {
                    let score =
                        |i: usize| rendezvous(key, self.origins[i].health.seed, self.weights[i]);
                    score(a).total_cmp(&score(b))
                })
            }
        }
    }
}

/// The key hash steering hashes: the `hash_header` field's value when the request has it,
/// else the client's IP.
fn hash_key(req: &OriginRequest<'_>, header: Option<&http::HeaderName>) -> u64 {
    let mut h = 0xcbf2_9ce4_8422_2325u64;
    let mut feed = |bytes: &[u8]| {
        for &b in bytes {
            h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
        }
    };
    match header.and_then(|name| req.head.header(name.as_str())) {
        Some(value) => feed(value),
        None => match req.client_ip {
            IpAddr::V4(ip) => feed(&ip.octets()),
            IpAddr::V6(ip) => feed(&ip.octets()),
        },
    }
    mix(h)
}

/// Weighted rendezvous hashing: each origin's score for a key; the highest wins. An origin
/// that leaves moves only the keys it had, and weights share the keys in proportion.
fn rendezvous(key: u64, seed: u64, weight: u32) -> f64 {
    let h = mix(key ^ seed);
    // A uniform number in (0, 1).
    let u = ((h >> 11) as f64 + 0.5) / (1u64 << 53) as f64;
    -f64::from(weight) / u.ln()
}

/// Smooth weighted round robin's order for one round: the origin with the most accumulated
/// weight goes next, so that weights 5, 1, 1 give a a b a c a a rather than a a a a a b c.
fn smooth_schedule(weights: &[u32]) -> Vec<usize> {
    let total: i64 = weights.iter().map(|&w| i64::from(w)).sum();
    let mut current = vec![0i64; weights.len()];
    let mut out = Vec::with_capacity(total as usize);
    for _ in 0..total {
        for (c, &w) in current.iter_mut().zip(weights) {
            *c += i64::from(w);
        }
        let best = (0..weights.len())
            .max_by_key(|&i| (current[i], std::cmp::Reverse(i)))
            .unwrap_or(0);
        current[best] -= total;
        out.push(best);
    }
    out
}

/// Whether an origin failure happened before any of the request was sent (so another
/// origin may take it, whatever its method).
fn connect_failed(error: EdgeError) -> bool {
    matches!(
        error,
        EdgeError::WebServerDown
            | EdgeError::ConnectionTimedOut
            | EdgeError::OriginUnreachable
            | EdgeError::SslHandshakeFailed
            | EdgeError::InvalidSslCertificate
            | EdgeError::DnsResolutionError
    )
}

fn no_healthy_origin(zone: &str) -> Rejection {
    Rejection::new(
        EdgeError::NoHealthyOrigin,
        format!("no origin of zone `{zone}` is healthy: every origin of every pool is down"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn smooth_round_robin_interleaves_by_weight() {
        assert_eq!(smooth_schedule(&[5, 1, 1]), vec![0, 0, 1, 0, 2, 0, 0]);
        assert_eq!(smooth_schedule(&[1, 1, 1]), vec![0, 1, 2]);
        assert_eq!(smooth_schedule(&[2, 1]), vec![0, 1, 0]);
    }

    #[test]
    fn rendezvous_moves_only_the_keys_of_an_origin_that_leaves_and_follows_weights() {
        let seeds = [mix(1), mix(2), mix(3)];
        let pick = |key: u64, alive: &[usize], weights: &[u32]| {
            *alive
                .iter()
                .max_by(|&&a, &&b| {
                    rendezvous(key, seeds[a], weights[a])
                        .total_cmp(&rendezvous(key, seeds[b], weights[b]))
                })
                .unwrap()
        };
        let mut moved = 0;
        let mut counts = [0usize; 3];
        for k in 0..30_000u64 {
            let key = mix(k);
            let before = pick(key, &[0, 1, 2], &[1, 1, 1]);
            let after = pick(key, &[0, 2], &[1, 1, 1]);
            if before != 1 {
                assert_eq!(before, after, "a key of a remaining origin moved");
            } else {
                moved += 1;
            }
            counts[pick(key, &[0, 1, 2], &[2, 1, 1])] += 1;
        }
        // About a third of the keys were origin 1's.
        assert!((8_000..12_000).contains(&moved), "{moved}");
        // Weight 2 of 4: about half.
        assert!((13_500..16_500).contains(&counts[0]), "{counts:?}");
    }
}
