//! Syncing the shared rate-limit counters with Redis: every `sync_interval`, one script per
//! batch of at most [`KEYS_PER_SCRIPT`] keys (pipelined on one connection), each round trip
//! bounded by `timeout`. Requests never wait for it; see `rampart_ratelimit::SharedStore` for
//! what the interval costs in accuracy.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rampart_ratelimit::{
    Counting, Fallback, Key, SharedState, SharedStore, SyncItem, counter_bits,
};
use redis::aio::ConnectionManager;

use super::{Throttled, backoff};
use crate::config::fleet::{FleetConfig, OnStoreError};
use crate::runtime::Runtime;
use crate::state::RateLimiter;

/// The sync script (atomic per call, on Redis's clock).
const SCRIPT: &str = include_str!("counters.lua");

/// Keys sent in one script call: bounds the time Redis spends in one script.
pub const KEYS_PER_SCRIPT: usize = 500;

/// The sorted set of live nodes.
const NODES_KEY: &str = "rampart:nodes";

/// Consecutive failed syncs before the counters fall back: one slow round trip does not
/// switch the counting mode.
const FAILURES_BEFORE_FALLBACK: u32 = 2;

/// The sync loop; runs until aborted.
pub(super) async fn run(
    rt: Arc<Runtime>,
    limiter: Arc<RateLimiter>,
    store: Arc<SharedStore>,
    conn: ConnectionManager,
    config: Arc<FleetConfig>,
) {
    let script = redis::Script::new(SCRIPT);
    let node_ttl_ms = (config.sync_interval * 20)
        .max(Duration::from_secs(3))
        .as_millis();
    let mut failures = 0u32;
    // Until the next sync: the interval, or the back-off after failures.
    let mut wait = config.sync_interval;
    let mut log = Throttled::new();
    loop {
        tokio::time::sleep(wait).await;
        let started = Instant::now();
        let batch = store.take_batch(limiter.clock(started));
        let calls = batch.len().div_ceil(KEYS_PER_SCRIPT).max(1) as u64;
        let sync = sync(&script, &conn, &config.node, node_ttl_ms, &batch);
        let too_late = || {
            format!(
                "no answer within {}",
                humantime::format_duration(config.timeout)
            )
        };
        // The connection's own response timeout is the same as ours: whichever fires first.
        let outcome = match tokio::time::timeout(config.timeout, sync).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(e)) if e.is_timeout() => Err(("timeout", too_late())),
            Ok(Err(e)) => Err(("error", e.to_string())),
            Err(_) => Err(("timeout", too_late())),
        };
        match outcome {
            Ok(answer) => {
                let rtt = started.elapsed();
                limiter.set_clock(answer.now_ms, started + rtt / 2);
                store.set_nodes(answer.nodes);
                store.merge(&answer.states, limiter.clock(Instant::now()));
                if store.fallback() != Fallback::Shared {
                    tracing::info!(
                        "fleet: Redis answers again after {failures} failed syncs; rate limits are shared again ({} nodes)",
                        answer.nodes
                    );
                    store.set_fallback(Fallback::Shared);
                }
                failures = 0;
                wait = config.sync_interval;
                rt.metrics.fleet_sync("ok", calls);
            }
            Err((result, reason)) => {
                // Sent again with the next sync (a script that ran but did not answer in
                // time counts its hits twice: the error is on the side of the limit).
                store.requeue(&batch);
                failures = failures.saturating_add(1);
                rt.metrics.fleet_sync(result, calls);
                wait = backoff(failures - 1).max(config.sync_interval);
                if failures >= FAILURES_BEFORE_FALLBACK && store.fallback() == Fallback::Shared {
                    let (mode, what) = match config.on_store_error {
                        OnStoreError::Local => (
                            Fallback::Local,
                            format!(
                                "counted on this node alone at 1/{} of each rule's rate",
                                store.nodes()
                            ),
                        ),
                        OnStoreError::Allow => (
                            Fallback::Allow,
                            "not enforced (on_store_error = \"allow\")".to_string(),
                        ),
                    };
                    store.set_fallback(mode);
                    tracing::error!(
                        "fleet: Redis at {} failed {failures} syncs in a row ({reason}); rate limits are {what} until it answers",
                        config.redis
                    );
                } else {
                    log.error(format_args!(
                        "fleet: rate-limit sync with {} failed ({reason}); {failures} in a row; next attempt in {}",
                        config.redis,
                        humantime::format_duration(wait)
                    ));
                }
            }
        }
        rt.metrics
            .fleet_state(store.fallback() != Fallback::Shared, store.nodes());
    }
}

/// What Redis answered to one sync.
struct Answer {
    now_ms: u64,
    nodes: u32,
    states: Vec<(Key, SharedState)>,
}

/// Sends `batch` in scripts of at most [`KEYS_PER_SCRIPT`] keys, all pipelined on the one
/// multiplexed connection; an empty batch still registers the node and reads the clock.
async fn sync(
    script: &redis::Script,
    conn: &ConnectionManager,
    node: &str,
    node_ttl_ms: u128,
    batch: &[SyncItem],
) -> redis::RedisResult<Answer> {
    let chunks: Vec<&[SyncItem]> = if batch.is_empty() {
        vec![&[]]
    } else {
        batch.chunks(KEYS_PER_SCRIPT).collect()
    };
    let calls = chunks.iter().map(|chunk| {
        let mut call = script.prepare_invoke();
        call.key(NODES_KEY).arg(node).arg(node_ttl_ms as u64);
        for item in *chunk {
            call.key(redis_key(item.key))
                .arg(item.hits)
                .arg(item.quota.requests_per_period())
                .arg(item.quota.period_ms())
                .arg(item.blocked_until_ms)
                .arg(match item.quota.counting() {
                    Counting::Gcra => 0,
                    Counting::SlidingWindow => counter_bits(item.quota.requests_per_period()),
                });
        }
        let mut conn = conn.clone();
        async move { call.invoke_async::<Vec<u64>>(&mut conn).await }
    });
    let replies = futures_util::future::try_join_all(calls).await?;
    let mut answer = Answer {
        now_ms: 0,
        nodes: 1,
        states: Vec::with_capacity(batch.len()),
    };
    for (chunk, reply) in chunks.iter().zip(replies) {
        let [now_ms, nodes, states @ ..] = reply.as_slice() else {
            return Err(malformed());
        };
        if states.len() != chunk.len() * 3 {
            return Err(malformed());
        }
        answer.now_ms = answer.now_ms.max(*now_ms);
        answer.nodes = u32::try_from(*nodes).unwrap_or(u32::MAX).max(1);
        for (item, s) in chunk.iter().zip(states.chunks_exact(3)) {
            let state = SharedState {
                base: s[0],
                offset: s[1],
                blocked_until_ms: s[2],
            };
            answer.states.push((item.key, state));
        }
    }
    Ok(answer)
}

fn malformed() -> redis::RedisError {
    redis::RedisError::from((
        redis::ErrorKind::Client,
        "the sync script's answer does not have the expected shape",
    ))
}

/// The Redis key of a counter. The key is already a keyed hash of the rule and the client.
fn redis_key(key: Key) -> String {
    format!("rampart:rl:{:016x}", key.hash())
}
