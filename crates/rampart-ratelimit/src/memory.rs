//! The in-process counter store: sharded, fixed-size, self-cleaning.
//!
//! # Layout
//!
//! `shards` mutexes, each over an open-addressing table (linear probing,
//! backward-shift deletion, no tombstones) of 32-byte slots allocated once
//! at construction. A key's shard comes from the top bits of its mixed hash
//! and its home slot from the rest, so neither depends on the other.
//!
//! # Bounds
//!
//! Each shard holds at most `ceil(max_keys / shards)` keys in
//! `4/3 ×` that many slots (load factor ≤ 3/4), so the store's memory is
//! fixed when it is built and reported by [`MemoryStore::memory_bytes`]:
//! about 43 bytes per key of `max_keys`, 43 MB for a million keys.
//!
//! # Forgetting keys
//!
//! A key's state is dropped only when it no longer matters or when room is
//! needed:
//!
//! - *Expiry (lossless).* Once a key's bucket is full again and no block is
//!   running ([`CounterState::expires_at_ms`]), its state equals that of a
//!   key never seen. Every insert of a new key first examines the next
//!   [`SWEEP_SLOTS_PER_INSERT`] slots after the shard's sweep cursor and
//!   removes the expired ones, so sweeping is driven by `now` and paid in
//!   small steps by the traffic that creates keys. A [`Op::Check`] that
//!   leaves a never-seen key in the never-seen state inserts nothing.
//! - *Eviction at the cap (lossy).* A new key is always admitted: refusing
//!   it would either let it through uncounted or limit an innocent client.
//!   When its shard is full, the store examines the
//!   [`EVICTION_SAMPLE_SLOTS`] occupied slots from the new key's home slot
//!   on (a random sample, since slots are placed by hash) and
//!   removes the first expired one, or else the one that is *not* in a
//!   mitigation block and expires soonest; a key in a mitigation block is
//!   evicted only when every sampled key is in one, and then the block that
//!   ends soonest goes. Forgetting a key gives it back at most one full
//!   quota (`requests_per_period` requests) early; the keys chosen are those
//!   for which that happens soonest anyway, and blocked keys (the ones an
//!   attacker would like forgotten) go last.
//!
//! [`CounterState::expires_at_ms`]: crate::CounterState::expires_at_ms

use std::sync::Mutex;
use std::time::Duration;

use crate::decision::Decision;
use crate::gcra::{CounterState, Op};
use crate::key::Key;
use crate::quota::Quota;
use crate::store::CounterStore;

/// Default `max_keys`: one million keys, about 43 MB.
pub const DEFAULT_MAX_KEYS: usize = 1_000_000;

/// Default number of shards. 64 keeps lock contention negligible with
/// dozens of worker threads and costs nothing for memory.
pub const DEFAULT_SHARDS: usize = 64;

/// Largest number of shards a store may have.
pub const MAX_SHARDS: usize = 4096;

/// Slots examined for expired keys each time a new key is inserted.
pub const SWEEP_SLOTS_PER_INSERT: usize = 4;

/// Occupied slots compared when a full shard must evict a key.
pub const EVICTION_SAMPLE_SLOTS: usize = 16;

/// Settings of a [`MemoryStore`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MemoryStoreSettings {
    /// Most keys the store holds (rounded up to a multiple of `shards`).
    /// Default [`DEFAULT_MAX_KEYS`]. When reached, a new key evicts an old
    /// one (see the module docs); it is never refused.
    pub max_keys: usize,
    /// Number of independently locked shards, rounded up to a power of two
    /// and capped at [`MAX_SHARDS`]. Default [`DEFAULT_SHARDS`].
    pub shards: usize,
}

impl Default for MemoryStoreSettings {
    fn default() -> Self {
        MemoryStoreSettings {
            max_keys: DEFAULT_MAX_KEYS,
            shards: DEFAULT_SHARDS,
        }
    }
}

/// The in-process [`CounterStore`].
///
/// ```
/// use std::time::Duration;
/// use rampart_ratelimit::{CounterStore, Key, MemoryStore, MemoryStoreSettings, Quota};
///
/// let store = MemoryStore::new(MemoryStoreSettings { max_keys: 1000, shards: 4 });
/// let quota = Quota::new(10, 1, 0).unwrap();
/// let key = Key::from_hash(42);
/// assert!(store.check_and_hit(key, &quota, Duration::ZERO).is_allowed());
/// assert_eq!(store.len(), 1);
/// assert!(store.memory_bytes() < 64 * 1024);
/// ```
#[derive(Debug)]
pub struct MemoryStore {
    shards: Box<[Mutex<Shard>]>,
    shard_bits: u32,
}

impl MemoryStore {
    /// Allocates a store for `settings.max_keys` keys.
    pub fn new(settings: MemoryStoreSettings) -> MemoryStore {
        let shards = settings.shards.clamp(1, MAX_SHARDS).next_power_of_two();
        let per_shard = settings.max_keys.max(1).div_ceil(shards);
        MemoryStore {
            shards: (0..shards)
                .map(|_| Mutex::new(Shard::new(per_shard, shards.trailing_zeros())))
                .collect(),
            shard_bits: shards.trailing_zeros(),
        }
    }

    /// Keys currently held, expired ones not yet swept included.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).len).sum()
    }

    /// `true` when no key is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Most keys the store holds: `max_keys` rounded up to a multiple of
    /// the shard count.
    pub fn max_keys(&self) -> usize {
        self.shards.iter().map(|s| lock(s).max_len).sum()
    }

    /// Bytes the store owns: slot tables plus shard headers. Fixed at
    /// construction; the store never allocates after [`MemoryStore::new`].
    pub fn memory_bytes(&self) -> usize {
        std::mem::size_of::<MemoryStore>()
            + self
                .shards
                .iter()
                .map(|s| {
                    std::mem::size_of::<Mutex<Shard>>()
                        + lock(s).slots.len() * std::mem::size_of::<Slot>()
                })
                .sum::<usize>()
    }

    /// Removes every expired key at `now`, shard by shard. Not needed for
    /// correctness or for the bound (inserts sweep as they go); useful to
    /// give memory pages back to a quiet store or before reading
    /// [`MemoryStore::len`] as a count of live keys.
    pub fn sweep_all(&self, now: Duration) {
        let now_ms = millis(now);
        for s in self.shards.iter() {
            let mut s = lock(s);
            let n = s.slots.len();
            s.sweep(now_ms, n);
        }
    }

    fn locate(&self, key: Key) -> (usize, u64) {
        // Mix so that keys built by a caller's own hash are spread too (the
        // murmur3 finaliser is a bijection: it adds no collisions). 0 marks
        // an empty slot, so hash 0 shares a slot with hash 1.
        let h = fmix64(key.hash()).max(1);
        let shard = h.checked_shr(64 - self.shard_bits).unwrap_or(0) as usize;
        (shard, h)
    }
}

impl Default for MemoryStore {
    fn default() -> Self {
        MemoryStore::new(MemoryStoreSettings::default())
    }
}

impl CounterStore for MemoryStore {
    fn apply(&self, key: Key, quota: &Quota, op: Op, now: Duration) -> Decision {
        let (shard, h) = self.locate(key);
        lock(&self.shards[shard]).apply(h, quota, op, now)
    }
}

fn lock(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // A panic while holding a shard cannot leave a slot half-written
    // (slots are plain copies), so a poisoned lock is still consistent.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn millis(now: Duration) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

fn fmix64(mut k: u64) -> u64 {
    k ^= k >> 33;
    k = k.wrapping_mul(0xff51_afd7_ed55_8ccd);
    k ^= k >> 33;
    k = k.wrapping_mul(0xc4ce_b9fe_1a85_ec53);
    k ^ (k >> 33)
}

/// Aligned so that a slot never straddles two cache lines.
#[derive(Debug, Clone, Copy, Default)]
#[repr(align(32))]
struct Slot {
    /// Mixed key hash; 0 = empty.
    hash: u64,
    state: CounterState,
    /// Cached [`CounterState::expires_at_ms`] (needs the quota to compute).
    expires_at_ms: u64,
}

#[derive(Debug)]
struct Shard {
    slots: Box<[Slot]>,
    len: usize,
    max_len: usize,
    cursor: usize,
    /// log2 of the store's shard count.
    shard_bits: u32,
}

impl Shard {
    fn new(max_len: usize, shard_bits: u32) -> Shard {
        let capacity = max_len + max_len.div_ceil(3) + 1;
        Shard {
            slots: vec![Slot::default(); capacity].into_boxed_slice(),
            len: 0,
            max_len,
            cursor: 0,
            shard_bits,
        }
    }

    fn home(&self, h: u64) -> usize {
        // The top `shard_bits` are the same for every key of this shard:
        // rotate them out of the bits the range reduction uses.
        let spread = h.rotate_left(self.shard_bits);
        ((u128::from(spread) * self.slots.len() as u128) >> 64) as usize
    }

    fn next(&self, i: usize) -> usize {
        if i + 1 == self.slots.len() { 0 } else { i + 1 }
    }

    fn find(&self, h: u64) -> Option<usize> {
        let mut i = self.home(h);
        loop {
            match self.slots[i].hash {
                0 => return None,
                x if x == h => return Some(i),
                _ => i = self.next(i),
            }
        }
    }

    fn apply(&mut self, h: u64, quota: &Quota, op: Op, now: Duration) -> Decision {
        let now_ms = millis(now);
        if let Some(i) = self.find(h) {
            let slot = &mut self.slots[i];
            if slot.expires_at_ms <= now_ms {
                // Lossless (an expired state is a key never seen), and a sliding window's
                // sub-window index, kept modulo 2^16, is never read long after its time.
                slot.state = CounterState::default();
            }
            let (decision, expires_at_ms) = slot.state.apply_and_expiry(quota, op, now);
            slot.expires_at_ms = expires_at_ms;
            return decision;
        }
        let mut state = CounterState::default();
        let (decision, expires_at_ms) = state.apply_and_expiry(quota, op, now);
        if expires_at_ms > now_ms {
            self.insert(
                Slot {
                    hash: h,
                    state,
                    expires_at_ms,
                },
                now_ms,
            );
        }
        decision
    }

    fn insert(&mut self, slot: Slot, now_ms: u64) {
        self.sweep(now_ms, SWEEP_SLOTS_PER_INSERT);
        let home = self.home(slot.hash);
        if self.len >= self.max_len {
            self.evict_one(home, now_ms);
        }
        let mut i = home;
        while self.slots[i].hash != 0 {
            i = self.next(i);
        }
        self.slots[i] = slot;
        self.len += 1;
    }

    /// Moves the cursor over `n` slots, removing the expired keys it meets.
    /// Each removal is paid for by the insert that created the key.
    fn sweep(&mut self, now_ms: u64, n: usize) {
        let mut examined = 0;
        while examined < n && self.len > 0 {
            let i = self.cursor;
            let s = &self.slots[i];
            if s.hash != 0 && s.expires_at_ms <= now_ms {
                // A later key may shift into slot i: look at i again.
                self.remove(i);
            } else {
                self.cursor = self.next(i);
                examined += 1;
            }
        }
    }

    /// Evicts one of the [`EVICTION_SAMPLE_SLOTS`] keys from `start` on.
    /// Sampling at the new key's home slot reads memory the lookup has
    /// just brought into cache; hashes make it a random sample.
    fn evict_one(&mut self, start: usize, now_ms: u64) {
        let mut best: Option<(usize, (bool, u64))> = None;
        let mut seen = 0;
        let mut i = start;
        for _ in 0..self.slots.len() {
            let s = &self.slots[i];
            if s.hash != 0 {
                if s.expires_at_ms <= now_ms {
                    best = Some((i, (false, 0)));
                    break;
                }
                let rank = (s.state.is_blocked(now_ms), s.expires_at_ms);
                if best.is_none_or(|(_, r)| rank < r) {
                    best = Some((i, rank));
                }
                seen += 1;
                if seen == EVICTION_SAMPLE_SLOTS {
                    break;
                }
            }
            i = self.next(i);
        }
        if let Some((victim, _)) = best {
            self.remove(victim);
        }
    }

    /// Backward-shift deletion: pulls later keys of the probe run into the
    /// hole so lookups never need tombstones.
    fn remove(&mut self, i: usize) {
        let cap = self.slots.len();
        let mut hole = i;
        let mut j = i;
        loop {
            j = self.next(j);
            let h = self.slots[j].hash;
            if h == 0 {
                break;
            }
            let home = self.home(h);
            // The key at j may fill the hole if its home is not in (hole, j].
            if (j + cap - home) % cap >= (j + cap - hole) % cap {
                self.slots[hole] = self.slots[j];
                hole = j;
            }
        }
        self.slots[hole] = Slot::default();
        self.len -= 1;
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::*;

    fn secs(v: u64) -> Duration {
        Duration::from_secs(v)
    }

    fn one_shard(max_keys: usize) -> MemoryStore {
        MemoryStore::new(MemoryStoreSettings {
            max_keys,
            shards: 1,
        })
    }

    /// Whether the store still remembers `k` (a forgotten key checks as a
    /// full quota).
    fn remembered(s: &MemoryStore, k: u64, q: &Quota, now: Duration) -> bool {
        s.check(Key::from_hash(k), q, now).status().remaining < q.requests_per_period()
    }

    #[test]
    fn a_million_keys_fit_in_under_128_mib() {
        let s = MemoryStore::new(MemoryStoreSettings {
            max_keys: 1_000_000,
            shards: DEFAULT_SHARDS,
        });
        assert_eq!(std::mem::size_of::<Slot>(), 32);
        assert_eq!(s.max_keys(), 1_000_000);
        assert!(s.memory_bytes() < 128 << 20, "{} bytes", s.memory_bytes());
        assert!(s.memory_bytes() < 45_000_000, "{} bytes", s.memory_bytes());
    }

    #[test]
    fn max_keys_is_rounded_up_to_a_multiple_of_the_shard_count() {
        let s = MemoryStore::new(MemoryStoreSettings {
            max_keys: 10,
            shards: 3,
        });
        assert_eq!(s.max_keys(), 12);
    }

    #[test]
    fn expired_keys_are_swept_by_later_inserts() {
        let s = one_shard(100);
        let q = Quota::new(10, 1, 0).unwrap();
        for k in 0..50 {
            s.check_and_hit(Key::from_hash(k), &q, secs(0));
        }
        assert_eq!(s.len(), 50);
        // At 10 s every bucket is full again: the 50 keys are expired. Each
        // new key sweeps SWEEP_SLOTS_PER_INSERT slots; 135 slots / 4 = 34.
        for k in 1000..1034 {
            s.check_and_hit(Key::from_hash(k), &q, secs(10));
        }
        assert_eq!(s.len(), 34);
    }

    #[test]
    fn sweep_all_removes_every_expired_key_and_nothing_else() {
        let s = one_shard(100);
        let q = Quota::new(10, 1, 0).unwrap();
        let long = Quota::new(60, 1, 0).unwrap();
        for k in 0..40 {
            s.check_and_hit(Key::from_hash(k), &q, secs(0));
        }
        for k in 40..50 {
            s.check_and_hit(Key::from_hash(k), &long, secs(0));
        }
        s.sweep_all(secs(9));
        assert_eq!(s.len(), 50);
        s.sweep_all(secs(10));
        assert_eq!(s.len(), 10);
        for k in 40..50 {
            assert!(remembered(&s, k, &long, secs(10)));
        }
    }

    #[test]
    fn at_max_keys_a_new_key_evicts_the_key_expiring_soonest() {
        let s = one_shard(4);
        let q = Quota::new(60, 1, 0).unwrap();
        // Key k is counted at k seconds and expires at k + 60.
        for k in 1..=4 {
            s.check_and_hit(Key::from_hash(k), &q, secs(k));
        }
        // At the limit nothing is forgotten.
        assert_eq!(s.len(), 4);
        for k in 1..=4 {
            assert!(remembered(&s, k, &q, secs(10)), "key {k}");
        }
        // Limit + 1: the new key is admitted and counted; key 1 goes.
        assert!(
            s.check_and_hit(Key::from_hash(5), &q, secs(10))
                .is_allowed()
        );
        assert_eq!(s.len(), 4);
        assert!(!remembered(&s, 1, &q, secs(10)));
        for k in 2..=5 {
            assert!(remembered(&s, k, &q, secs(10)), "key {k}");
        }
    }

    #[test]
    fn at_max_keys_an_expired_key_is_evicted_first() {
        let s = one_shard(4);
        let q = Quota::new(60, 1, 0).unwrap();
        let short = Quota::new(10, 1, 0).unwrap();
        for k in 1..=3 {
            s.check_and_hit(Key::from_hash(k), &q, secs(0));
        }
        s.check_and_hit(Key::from_hash(4), &short, secs(5));
        // Key 4 expired at 15 s although key 1..3 expire sooner than it would
        // have without expiry ordering mattering.
        s.check_and_hit(Key::from_hash(5), &q, secs(20));
        assert_eq!(s.len(), 4);
        for k in 1..=3 {
            assert!(remembered(&s, k, &q, secs(20)), "key {k}");
        }
    }

    #[test]
    fn at_max_keys_a_key_in_mitigation_is_kept_over_keys_that_are_not() {
        let s = one_shard(4);
        // Key 1 is blocked until 61 s (expires then); keys 2..4 are throttle
        // keys of an hourly rule that expire much later.
        let blocking = Quota::new(10, 1, 60).unwrap();
        let hourly = Quota::new(3600, 1, 0).unwrap();
        s.check_and_hit(Key::from_hash(1), &blocking, secs(0));
        assert_eq!(
            s.check_and_hit(Key::from_hash(1), &blocking, secs(1))
                .retry_after_secs(),
            Some(60)
        );
        for k in 2..=4 {
            s.check_and_hit(Key::from_hash(k), &hourly, secs(k));
        }
        s.check_and_hit(Key::from_hash(5), &hourly, secs(10));
        assert_eq!(s.len(), 4);
        assert_eq!(
            s.check(Key::from_hash(1), &blocking, secs(10))
                .retry_after_secs(),
            Some(51)
        );
        // The non-blocked key expiring soonest (key 2) went.
        assert!(!remembered(&s, 2, &hourly, secs(10)));
        assert!(remembered(&s, 3, &hourly, secs(10)));
    }

    #[test]
    fn when_every_key_is_in_mitigation_the_block_ending_soonest_is_evicted() {
        let s = one_shard(3);
        let q = Quota::new(10, 1, 600).unwrap();
        for k in 1..=3 {
            s.check_and_hit(Key::from_hash(k), &q, secs(k));
            s.check_and_hit(Key::from_hash(k), &q, secs(k));
        }
        // The new key is admitted and counted.
        assert!(s.check_and_hit(Key::from_hash(4), &q, secs(5)).is_allowed());
        assert!(!s.check_and_hit(Key::from_hash(4), &q, secs(5)).is_allowed());
        assert_eq!(
            s.check(Key::from_hash(1), &q, secs(5)).retry_after_secs(),
            None
        );
        assert_eq!(
            s.check(Key::from_hash(2), &q, secs(5)).retry_after_secs(),
            Some(597)
        );
        assert_eq!(
            s.check(Key::from_hash(3), &q, secs(5)).retry_after_secs(),
            Some(598)
        );
    }

    #[test]
    fn distinct_keys_beyond_max_keys_never_grow_the_store() {
        let s = MemoryStore::new(MemoryStoreSettings {
            max_keys: 10_000,
            shards: 16,
        });
        let bytes = s.memory_bytes();
        let q = Quota::new(60, 10, 0).unwrap();
        for k in 0..100_000 {
            assert!(s.check_and_hit(Key::from_hash(k), &q, secs(1)).is_allowed());
        }
        assert_eq!(s.len(), s.max_keys());
        assert_eq!(s.memory_bytes(), bytes);
    }

    #[derive(Debug, Clone)]
    struct Step {
        key: u64,
        op: Op,
        advance_ms: u64,
        hourly: bool,
    }

    fn step() -> impl Strategy<Value = Step> {
        (
            0u64..32,
            prop_oneof![Just(Op::Check), Just(Op::Hit), Just(Op::CheckAndHit)],
            prop_oneof![Just(0u64), 0u64..2000, 0u64..20_000],
            any::<bool>(),
        )
            .prop_map(|(key, op, advance_ms, hourly)| Step {
                key,
                op,
                advance_ms,
                hourly,
            })
    }

    proptest! {
        /// Below `max_keys`, probing, sweeping and backward-shift deletion
        /// never change a decision: the store decides exactly like a plain
        /// map of states that forgets nothing.
        #[test]
        fn store_decides_like_an_unbounded_map(steps in prop::collection::vec(step(), 1..400)) {
            let s = one_shard(64);
            let fast = Quota::new(10, 3, 0).unwrap();
            let hourly = Quota::new(3600, 2, 10).unwrap();
            let mut model: HashMap<(u64, bool), CounterState> = HashMap::new();
            let mut now_ms = 0;
            for st in steps {
                now_ms += st.advance_ms;
                let now = Duration::from_millis(now_ms);
                let q = if st.hourly { &hourly } else { &fast };
                // Separate keys per quota, as rule ids in real keys do.
                let key = Key::from_hash(st.key * 2 + u64::from(st.hourly));
                let expected = model.entry((st.key, st.hourly)).or_default().apply(q, st.op, now);
                prop_assert_eq!(s.apply(key, q, st.op, now), expected);
                prop_assert!(s.len() <= 64);
            }
        }
    }
}
