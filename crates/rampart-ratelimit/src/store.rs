//! The counter store trait: where keys' [`CounterState`]s live.
//!
//! The rate limiting phase holds a `dyn CounterStore` (or a generic `S`)
//! and never knows whether counters are in this process ([`MemoryStore`])
//! or shared between nodes.
//!
//! # Stores
//!
//! [`MemoryStore`] keeps counters in this process. [`SharedStore`] keeps a fleet-wide view
//! synced in batches by the caller (the server syncs it with Redis): the trait stays
//! synchronous because neither waits for I/O on a request's path.
//!
//! [`MemoryStore`]: crate::MemoryStore
//! [`SharedStore`]: crate::SharedStore

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
