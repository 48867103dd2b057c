//! The fleet: several rampart nodes sharing one Redis (or Valkey), configured by `[fleet]`.
//!
//! - [`counters`]: the rate-limit counters, synced in batches every `sync_interval` by one
//!   script per batch (see `rampart_ratelimit::SharedStore`); requests never wait for Redis.
//! - [`bus`]: cache purges and configuration changes made through the management API, sent
//!   to every node over pub/sub, signed with the fleet secret.
//!
//! Every node keeps serving when Redis is away: counters fall back to `on_store_error`, and
//! announcements made meanwhile are logged as not sent.

mod bus;
mod counters;

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::task::JoinHandle;

use crate::config::fleet::FleetConfig;
use crate::runtime::Runtime;

/// Starts the fleet's tasks of `rt`'s configuration (none without `[fleet]`).
pub fn start(rt: &Arc<Runtime>, tasks: &mut Vec<JoinHandle<()>>) {
    let generation = rt.generation();
    let Some(config) = generation.config.fleet.clone() else {
        return;
    };
    let client = match redis::Client::open(config.redis.as_str()) {
        Ok(c) => c,
        Err(e) => {
            // The loader checked the URL: this is not expected.
            tracing::error!("fleet: {}: {e}", config.redis);
            return;
        }
    };
    let config = Arc::new(config);
    let manager = redis::aio::ConnectionManagerConfig::new()
        .set_connection_timeout(Some(config.timeout.max(Duration::from_millis(250))))
        .set_response_timeout(Some(config.timeout))
        .set_number_of_retries(1)
        .set_min_delay(Duration::from_millis(50))
        .set_max_delay(MAX_BACKOFF);
    let conn = match redis::aio::ConnectionManager::new_lazy_with_config(client.clone(), manager) {
        Ok(c) => c,
        Err(e) => {
            tracing::error!(
                "fleet: cannot set up the connection to {}: {e}",
                config.redis
            );
            return;
        }
    };
    tracing::info!(
        "fleet: node `{}` shares {} through {}",
        config.node,
        shared_list(&config),
        config.redis
    );
    if let Some(store) = generation.rate_limiter.shared().cloned() {
        tasks.push(tokio::spawn(counters::run(
            rt.clone(),
            generation.rate_limiter.clone(),
            store,
            conn.clone(),
            config.clone(),
        )));
    }
    if config.purge || config.config {
        let applied = bus::Applied::default();
        if let Some(queue) = rt.take_announcements() {
            tasks.push(tokio::spawn(bus::send(
                rt.clone(),
                queue,
                conn,
                config.clone(),
                bus::channel(&client),
                applied.clone(),
            )));
        }
        tasks.push(tokio::spawn(bus::receive(
            rt.clone(),
            client,
            config,
            applied,
        )));
    }
}

fn shared_list(c: &FleetConfig) -> String {
    let parts: Vec<&str> = [
        (c.rate_limits, "rate-limit counters"),
        (c.purge, "cache purges"),
        (c.config, "configuration changes"),
    ]
    .into_iter()
    .filter_map(|(on, name)| on.then_some(name))
    .collect();
    if parts.is_empty() {
        "nothing".into()
    } else {
        parts.join(", ")
    }
}

/// Longest wait between two attempts to reach Redis.
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// Attempts to reach Redis after `failures` failures in a row: 50 ms doubling to
/// [`MAX_BACKOFF`].
fn backoff(failures: u32) -> Duration {
    Duration::from_millis(50)
        .saturating_mul(1 << failures.min(10))
        .min(MAX_BACKOFF)
}

/// An error-log line at most every 10 s for one kind of failure, with the count of those
/// not logged.
struct Throttled {
    last: Option<Instant>,
    skipped: u64,
}

impl Throttled {
    const EVERY: Duration = Duration::from_secs(10);

    fn new() -> Throttled {
        Throttled {
            last: None,
            skipped: 0,
        }
    }

    fn error(&mut self, message: std::fmt::Arguments<'_>) {
        let now = Instant::now();
        if self.last.is_some_and(|t| now - t < Self::EVERY) {
            self.skipped += 1;
            return;
        }
        if self.skipped > 0 {
            tracing::error!("{message} ({} more like this not logged)", self.skipped);
        } else {
            tracing::error!("{message}");
        }
        self.last = Some(now);
        self.skipped = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_backoff_doubles_to_five_seconds() {
        assert_eq!(backoff(0), Duration::from_millis(50));
        assert_eq!(backoff(1), Duration::from_millis(100));
        assert_eq!(backoff(3), Duration::from_millis(400));
        assert_eq!(backoff(7), MAX_BACKOFF);
        assert_eq!(backoff(u32::MAX), MAX_BACKOFF);
    }
}
