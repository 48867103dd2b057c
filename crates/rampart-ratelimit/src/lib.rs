//! Rate limiting rules for rampart: the sans-IO core.
//!
//! # Brief overview
//!
//! A rate limiting rule says: at most `requests_per_period` requests per
//! `period` seconds for each *key* (the request's characteristics: client
//! IP, host, path, header values… as the rule chooses). Over the rate, a
//! request gets 429 (error 1015) with an exact `Retry-After`. With a
//! `mitigation_timeout` of 0 the rule *throttles*: only the requests over
//! the rate are limited. With a timeout, the first request over the rate
//! *blocks* the key for that many seconds.
//!
//! This crate does no I/O and never reads a clock. Every call takes `now`
//! as a [`Duration`](std::time::Duration) since an arbitrary, monotonic
//! epoch chosen by the caller (the server passes
//! `Instant::now() - started_at`), truncated to whole milliseconds. All
//! calls on one store must use the same epoch.
//!
//! The pieces, in the order the rate limiting phase uses them:
//!
//! 1. [`Quota`]: a rule's validated numbers, built once per rule when the
//!    configuration loads.
//! 2. [`KeyBuilder`]: hashes the rule id and the request's characteristics
//!    with a secret seed (random per process, or a fleet's configured secret) into a [`Key`].
//! 3. [`CounterStore`]: where counters live. [`MemoryStore`] is the
//!    in-process one (sharded, fixed memory, bounded by `max_keys`);
//!    [`SharedStore`] is a fleet's, synced in batches with a shared engine
//!    (Redis) by the server, without touching the phase.
//!    Three calls: [`check`](CounterStore::check) decides without counting,
//!    [`hit`](CounterStore::hit) counts without deciding (rules with a
//!    counting expression evaluated on the response), and
//!    [`check_and_hit`](CounterStore::check_and_hit) does both.
//! 4. [`Decision`]: `Allow` or `Limit { retry_after_secs }`, both carrying a
//!    [`RateLimitStatus`] (limit, window, remaining, reset) for the
//!    `RateLimit-Policy` and `RateLimit` fields of
//!    draft-ietf-httpapi-ratelimit-headers.
//!
//! ```
//! use std::time::Duration;
//! use rampart_ratelimit::{CounterStore, Decision, KeyBuilder, MemoryStore, Quota};
//!
//! // Configuration load: 3 requests per 10 s, then blocked for 60 s.
//! let quota = Quota::new(10, 3, 60)?;
//! let store = MemoryStore::default();
//! let keys = KeyBuilder::new();
//!
//! // Rate limiting phase, for each request:
//! let key = keys.key(&[b"rule-7", b"203.0.113.7"]);
//! for i in 0..3 {
//!     let now = Duration::from_millis(100 * i);
//!     assert!(store.check_and_hit(key, &quota, now).is_allowed());
//! }
//! let d = store.check_and_hit(key, &quota, Duration::from_millis(300));
//! assert!(matches!(d, Decision::Limit { retry_after_secs: 60, .. }));
//!
//! // Response header fields.
//! assert_eq!(quota.policy_field("rule-7").to_string(), r#""rule-7";q=3;w=10"#);
//! assert_eq!(d.status().ratelimit_field("rule-7").to_string(), r#""rule-7";r=0;t=60"#);
//! # Ok::<(), rampart_ratelimit::QuotaError>(())
//! ```
//!
//! # The counting algorithm: GCRA
//!
//! Counters use GCRA (the generic cell rate algorithm), which is a token
//! bucket stored as one timestamp: a key starts with `requests_per_period`
//! tokens, each allowed request takes one, and tokens come back
//! continuously at `requests_per_period` per `period`. Why GCRA rather than
//! the sliding-window approximation (previous fixed window weighted by its
//! overlap, plus the current window):
//!
//! - **Exact, not approximate.** The implementation keeps time in ticks of
//!   `1/requests_per_period` ms, so it makes exactly the decisions of the
//!   mathematical token bucket on millisecond timestamps: 0 wrong decisions
//!   against an independent exact token-bucket model on every test
//!   sequence (see `tests/accuracy.rs` and the README). The sliding-window
//!   approximation assumes the previous window's requests were spread
//!   evenly; on bursty traffic that assumption is wrong for several percent
//!   of decisions near the limit.
//! - **Exact `Retry-After` and `remaining`.** The time the next request
//!   conforms is `tat − τ`, a closed form, so `Retry-After` is the exact
//!   wait rounded up to whole seconds, and `remaining` is the exact number
//!   of requests that would be accepted back to back.
//! - **16 bytes of state per key** (a 32-byte slot in [`MemoryStore`]) and
//!   one read-modify-write: cheap in memory and one atomic Lua
//!   script on a shared store.
//!
//! What it means compared with an exact sliding log ("at most N in any
//! `period`"): GCRA **never limits a request the sliding log would accept**
//! (given the same accepted history; tested), but it refills continuously,
//! so after a full burst it accepts one request every `period / N` instead
//! of waiting for the whole burst to leave the window. In the worst case a
//! key gets `2N − 1` requests accepted inside one `period`; over any longer
//! span it gets `N` per `period` plus one burst of `N`. The README has the
//! measured table for both models.
//!
//! # The other algorithm: sub-window counters
//!
//! A quota [`counted_by`](Quota::counted_by) [`Counting::SlidingWindow`] keeps, in the same
//! 16 bytes, a counter for each of the last few sub-windows of the period and accepts a
//! request while they sum to less than `N`: never more than `N` in any period, at the cost
//! of a window up to one sub-window longer than `period`. The `window` module has the
//! details and the README the measurements beside GCRA's.
//!
//! # Which requests count
//!
//! [`check_and_hit`](CounterStore::check_and_hit) counts only allowed
//! requests: a client sending twice the rate gets exactly the rate through
//! in throttle mode. Requests during a mitigation block are limited and not
//! counted; the block is not extended by them. [`hit`](CounterStore::hit)
//! always counts, but a count when the quota is already used up does not
//! push the wait beyond one `period`.

#![forbid(unsafe_code)]
#![warn(missing_docs)]

mod decision;
mod gcra;
mod key;
mod memory;
mod quota;
mod shared;
mod store;
pub mod traffic;
mod window;

pub use decision::{Decision, RateLimitField, RateLimitStatus};
pub use gcra::{CounterState, Op};
pub use key::{Key, KeyBuilder, KeyParts};
pub use memory::{
    DEFAULT_MAX_KEYS, DEFAULT_SHARDS, EVICTION_SAMPLE_SLOTS, MAX_SHARDS, MemoryStore,
    MemoryStoreSettings, SWEEP_SLOTS_PER_INSERT,
};
pub use quota::{
    ALLOWED_MITIGATION_TIMEOUTS_SECS, ALLOWED_PERIODS_SECS, Counting, MAX_REQUESTS_PER_PERIOD,
    Mitigation, PolicyField, Quota, QuotaError,
};
pub use shared::{Fallback, SharedState, SharedStore, SyncItem};
pub use store::CounterStore;
pub use window::{counter_bits, sub_windows};
