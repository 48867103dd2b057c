//! The counter store trait: where keys' [`CounterState`]s live.
//!
//! The rate limiting phase holds a `dyn CounterStore` (or a generic `S`)
//! and never knows whether counters are in this process ([`MemoryStore`])
//! or shared between nodes.
//!
//! # A shared store (Redis / Valkey), later
//!
//! Every operation is "read one key's 16-byte [`CounterState`], run
//! [`CounterState::apply`], write it back", atomically per key. A Redis
//! store does the same in one round trip: a Lua script (`EVALSHA`) that
//! implements the GCRA step on two integers kept in one hash, with
//! `PEXPIREAT` set to [`CounterState::expires_at_ms`] so Redis forgets idle
//! keys by itself. Time must then come from one clock for all nodes (the
//! script reads Redis' `TIME`, or nodes pass synchronised wall-clock
//! milliseconds), not from each node's monotonic clock.
//!
//! This trait is synchronous because the in-memory store answers in about
//! 100 ns and a future per check would cost more than the check. A network
//! store cannot answer synchronously without blocking a tokio worker, so it
//! will come with an async sibling trait (`async fn apply(..) -> Decision`,
//! same arguments, same [`Op`] semantics), and the phase will call whichever
//! store the zone is configured with; `MemoryStore` can implement both. A
//! practical Redis deployment may also keep a local `MemoryStore` in front
//! for keys already in a mitigation block, so blocked floods never reach
//! Redis. The decision types do not change.
//!
//! [`MemoryStore`]: crate::MemoryStore

use std::time::Duration;

use crate::decision::{Decision, RateLimitStatus};
#[cfg(doc)]
use crate::gcra::CounterState;
use crate::gcra::Op;
use crate::key::Key;
use crate::quota::Quota;

/// Somewhere counters live. Implementations apply [`CounterState::apply`]
/// atomically per key; every method takes `now` as a monotonic time since
/// an arbitrary epoch that is the same for all calls on the store.
pub trait CounterStore: Send + Sync {
    /// Applies `op` to `key`'s counter under `quota` at `now`.
    fn apply(&self, key: Key, quota: &Quota, op: Op, now: Duration) -> Decision;

    /// Decides without counting ([`Op::Check`]).
    fn check(&self, key: Key, quota: &Quota, now: Duration) -> Decision {
        self.apply(key, quota, Op::Check, now)
    }

    /// Counts one request without deciding ([`Op::Hit`]), for rules whose
    /// counting expression is evaluated on the response. Returns the quota
    /// after the count.
    fn hit(&self, key: Key, quota: &Quota, now: Duration) -> RateLimitStatus {
        self.apply(key, quota, Op::Hit, now).status()
    }

    /// Decides and counts the request if allowed ([`Op::CheckAndHit`]).
    fn check_and_hit(&self, key: Key, quota: &Quota, now: Duration) -> Decision {
        self.apply(key, quota, Op::CheckAndHit, now)
    }
}
