//! A counter store shared by a fleet of nodes, without a round trip per request.
//!
//! # How it works
//!
//! Each node decides every request locally, at memory speed, from its *view* of each key: the
//! key's fleet-wide [`CounterState`] as the shared engine (Redis) last reported it, plus the
//! requests this node counted since. A background task of the server calls
//! [`SharedStore::take_batch`] every `sync_interval` (50 ms by default), sends the batch to the
//! shared engine in one round trip, where a script adds each key's hits to the fleet-wide
//! state atomically on the engine's clock, and hands the answers to [`SharedStore::merge`].
//! The view of a key then holds every node's requests up to the engine's answer, plus this
//! node's own since the batch was taken.
//!
//! This crate does the bookkeeping only; the I/O and the script are the server's.
//!
//! # What it costs in accuracy
//!
//! A node does not see the other nodes' requests of the last sync interval (plus one round
//! trip). With `n` nodes each admitting a key's requests at rate `r`, a key can get about
//! `(n − 1) · r · (sync_interval + rtt)` requests more than the rule's rate through, once, when
//! it reaches its limit; after that every node's view is over the limit and it stays limited.
//! A key new to a node is decided on an empty view until the next sync. A mitigation block
//! started by one node reaches the others with the next sync.
//!
//! # What a node leaves to the others
//!
//! GCRA: a key over its limit gets a token back every `period / requests_per_period`. Every
//! node's view shows that token free until the next sync, so without care each node would
//! admit one request on it, and a flood spread over `n` nodes would get `n` times the rate
//! through. A node therefore admits a request only when its view has a token for it *and*
//! one for each of the other `n − 1` nodes ([`SharedStore::set_nodes`], from the engine's
//! count of live nodes): at the limit, the fleet waits until `n` tokens are free and then
//! each node may take one, so the rate holds. The cost is that a key's burst is `n − 1`
//! requests smaller than the rule says (98 instead of 100 with three nodes); the rate is
//! unchanged.
//!
//! Sliding window: room comes back in chunks, a whole sub-window's requests at once, and
//! every node sees the chunk at the same time. A node admits a request only while the hits
//! the fleet may not have seen from it (counted since its last batch, or in the batch still
//! on its way), plus this one, are at most a `1/(2n − 1)` share of the room its view shows:
//! it leaves `2 (n − 1) · (those hits + 1)` for the others. Why that share: a node's view
//! also lacks up to one share of each other node's latest hits, and with shares of
//! `1/(2n − 1)` the fleet's admissions per sync interval stay within the room even then.
//! Measured on the edge mix over three nodes: at most 98 accepted in any period for a quota
//! of 100 (a reserve of `n − 1`, as for GCRA, let 104 through). The cost: near its limit a key
//! loses up to `2 (n − 1)` requests of its quota (4 with three nodes), and a client whose
//! requests all reach one node gets a fifth of its remaining room per sync interval.
//!
//! # When the shared engine is away
//!
//! The server sets a [`Fallback`] mode: [`Fallback::Local`] counts on this node alone with
//! the rule's rate divided by the number of nodes last seen ([`Quota::divided`]), in a
//! separate in-memory store, so the fleet as a whole stays near the rate; [`Fallback::Allow`]
//! admits everything. When the engine answers again, the fleet-wide counters take over; what
//! was counted locally meanwhile is not sent.

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use crate::decision::Decision;
use crate::gcra::{CounterState, Op};
use crate::key::Key;
use crate::memory::{MemoryStore, MemoryStoreSettings};
use crate::quota::{Counting, Quota};
use crate::store::CounterStore;
use crate::window;

/// What a [`SharedStore`] does while the shared engine cannot be reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fallback {
    /// The engine answers: decide from the fleet-wide view.
    Shared,
    /// Count on this node alone, each rule's rate divided by the number of nodes.
    Local,
    /// Admit every request (fail open).
    Allow,
}

/// One key's part of a sync: what this node counted since the previous batch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SyncItem {
    /// The key (the same on every node for the same client: see
    /// [`KeyBuilder::with_secret`](crate::KeyBuilder::with_secret)).
    pub key: Key,
    /// The rule's quota when the key was last used.
    pub quota: Quota,
    /// Requests counted by this node since the previous batch (0: the node only wants the
    /// fleet-wide state).
    pub hits: u32,
    /// The end of a mitigation block this node started (ms on the fleet clock), or 0.
    pub blocked_until_ms: u64,
}

/// A key's fleet-wide state as the shared engine stores and answers it: three numbers, each
/// below 2⁵³ so that they are exact in the double-precision numbers of a Lua script.
///
/// - GCRA quotas: the theoretical arrival time is `base · requests_per_period + offset`, with
///   `base` the engine's time of the last update in ms and `0 ≤ offset ≤
///   requests_per_period · period_ms` ticks past it.
/// - Sliding-window quotas: `base` is the current sub-window's index on the fleet clock, and
///   `offset` the sub-window counters packed as in [`CounterState::counter`] (below 2⁴⁸).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SharedState {
    /// GCRA: when the state was last written, ms on the fleet clock. Sliding window: the
    /// current sub-window's index.
    pub base: u64,
    /// GCRA: how far the theoretical arrival time is past `base`, in ticks. Sliding window:
    /// the packed counters.
    pub offset: u64,
    /// End of the key's mitigation block, in ms (0: none).
    pub blocked_until_ms: u64,
}

impl SharedState {
    /// The [`CounterState`] this stands for, in `quota`'s units.
    pub fn counter_state(&self, quota: &Quota) -> CounterState {
        let counter = match quota.counting() {
            Counting::Gcra => self
                .base
                .saturating_mul(u64::from(quota.requests_per_period()))
                .saturating_add(self.offset),
            Counting::SlidingWindow => window::pack(self.base, self.offset),
        };
        CounterState {
            counter,
            blocked_until_ms: self.blocked_until_ms,
        }
    }

    /// The engine's step for one batch item at `now_ms`, written in Rust: the server's script
    /// does the same, and tests compare the two.
    pub fn add(&mut self, item: &SyncItem, now_ms: u64) {
        let l = u64::from(item.quota.requests_per_period());
        let t = item.quota.period_ms();
        match item.quota.counting() {
            Counting::Gcra => {
                let elapsed = now_ms.saturating_sub(self.base).saturating_mul(l);
                let offset = self.offset.saturating_sub(elapsed);
                self.offset = offset
                    .saturating_add(u64::from(item.hits).saturating_mul(t))
                    .min(l * t);
                self.base = now_ms.max(self.base);
            }
            Counting::SlidingWindow => {
                let (index, counts) =
                    window::add(&item.quota, self.base, self.offset, item.hits, now_ms);
                (self.base, self.offset) = (index, counts);
            }
        }
        self.blocked_until_ms = self.blocked_until_ms.max(item.blocked_until_ms);
    }
}

#[derive(Debug)]
struct Entry {
    state: CounterState,
    quota: Quota,
    /// Hits counted since the last batch was taken.
    pending: u32,
    /// Hits of the batch taken last, until the engine's answer to it is merged: with
    /// `pending`, what the fleet may not have seen of this node yet.
    in_flight: u32,
    /// A block started here and not yet sent.
    block_to_send: u64,
    /// The number of the batch in progress when the key was last used here.
    last_used: u64,
    /// In the shard's `recent` list.
    recent: bool,
}

impl Entry {
    /// Puts the key (`h`) in its shard's `recent` list, if it is not there.
    fn make_recent(&mut self, h: u64, recent: &mut Vec<u64>) {
        if !self.recent {
            self.recent = true;
            recent.push(h);
        }
    }
}

#[derive(Debug, Default)]
struct Shard {
    entries: HashMap<u64, Entry, BuildHasherDefault<KeyHasher>>,
    /// Keys used here within the last [`REFRESH_BATCHES`] batches: each batch asks for their
    /// fleet-wide state, so that a key the other nodes are counting is up to date here too.
    recent: Vec<u64>,
}

/// How many batches a key stays in every batch after its last use on this node (1 s at the
/// default 50 ms sync interval). A key idle here for longer is refreshed by the first batch
/// after its next use.
pub const REFRESH_BATCHES: u64 = 20;

/// A [`CounterStore`] whose counters are shared by a fleet through a background sync (see the
/// module docs).
#[derive(Debug)]
pub struct SharedStore {
    shards: Box<[Mutex<Shard>]>,
    max_per_shard: usize,
    fallback: AtomicU8,
    nodes: AtomicU32,
    /// The fallback's counters, made on first use (a million-key table is about 43 MB).
    local: std::sync::OnceLock<MemoryStore>,
    max_keys: usize,
    /// Batches taken so far; the number of the batch in progress.
    batches: AtomicU64,
}

const SHARDS: usize = 64;

impl SharedStore {
    /// A store for at most `max_keys` keys in this node's view (and as many in the local
    /// fallback store).
    pub fn new(max_keys: usize) -> SharedStore {
        SharedStore {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            max_per_shard: max_keys.max(1).div_ceil(SHARDS),
            fallback: AtomicU8::new(Fallback::Shared as u8),
            nodes: AtomicU32::new(1),
            local: std::sync::OnceLock::new(),
            max_keys,
            batches: AtomicU64::new(0),
        }
    }

    /// Switches between the fleet-wide view and a fallback.
    pub fn set_fallback(&self, mode: Fallback) {
        self.fallback.store(mode as u8, Ordering::Relaxed);
    }

    /// The current mode.
    pub fn fallback(&self) -> Fallback {
        match self.fallback.load(Ordering::Relaxed) {
            0 => Fallback::Shared,
            1 => Fallback::Local,
            _ => Fallback::Allow,
        }
    }

    /// Records how many nodes the fleet has (for [`Fallback::Local`]).
    pub fn set_nodes(&self, nodes: u32) {
        self.nodes.store(nodes.max(1), Ordering::Relaxed);
    }

    /// The number of nodes last recorded.
    pub fn nodes(&self) -> u32 {
        self.nodes.load(Ordering::Relaxed)
    }

    /// Keys in this node's view.
    pub fn len(&self) -> usize {
        self.shards.iter().map(|s| lock(s).entries.len()).sum()
    }

    /// `true` when the view holds no key.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Every key used here within the last [`REFRESH_BATCHES`] batches, with the hits
    /// counted and the blocks started here since the previous batch; forgets keys that are
    /// no longer recent and whose state has expired (one shard per call).
    pub fn take_batch(&self, now: Duration) -> Vec<SyncItem> {
        let now_ms = millis(now);
        let number = self.batches.fetch_add(1, Ordering::Relaxed);
        let sweep = (number % self.shards.len() as u64) as usize;
        let mut batch = Vec::new();
        for (i, shard) in self.shards.iter().enumerate() {
            let mut guard = lock(shard);
            let Shard { entries, recent } = &mut *guard;
            recent.retain(|h| {
                let Some(e) = entries.get_mut(h) else {
                    return false;
                };
                batch.push(SyncItem {
                    key: Key::from_hash(*h),
                    quota: e.quota,
                    hits: {
                        e.in_flight = std::mem::take(&mut e.pending);
                        e.in_flight
                    },
                    blocked_until_ms: std::mem::take(&mut e.block_to_send),
                });
                // `last_used` may be `number + 1`: a request counted while this batch is
                // being taken.
                e.recent = e.last_used + REFRESH_BATCHES > number;
                e.recent
            });
            if i == sweep {
                entries.retain(|_, e| e.recent || e.state.expires_at_ms(&e.quota, now_ms) > now_ms);
            }
        }
        batch
    }

    /// Takes the engine's answers to a batch: each key's view becomes the fleet-wide state
    /// plus the hits this node counted since the batch was taken.
    pub fn merge(&self, answers: &[(Key, SharedState)], now: Duration) {
        for (key, shared) in answers {
            let mut shard = lock(&self.shards[self.shard_of(*key)]);
            let Some(e) = shard.entries.get_mut(&key.hash()) else {
                continue;
            };
            let local_block = e.state.blocked_until_ms;
            e.state = shared.counter_state(&e.quota);
            e.state.blocked_until_ms = e.state.blocked_until_ms.max(local_block);
            // More than a full quota of hits changes nothing more (a Hit never pushes the
            // wait beyond one period).
            e.state.add_hits(&e.quota, e.pending, now);
            e.in_flight = 0;
        }
    }

    /// Puts back the hits and blocks of a batch the engine did not take (a failed sync), to
    /// be sent with the next one.
    pub fn requeue(&self, batch: &[SyncItem]) {
        for item in batch {
            let mut shard = lock(&self.shards[self.shard_of(item.key)]);
            let shard = &mut *shard;
            if let Some(e) = shard.entries.get_mut(&item.key.hash()) {
                e.pending = e.pending.saturating_add(item.hits);
                e.in_flight = 0;
                e.block_to_send = e.block_to_send.max(item.blocked_until_ms);
                e.make_recent(item.key.hash(), &mut shard.recent);
            }
        }
    }

    fn shard_of(&self, key: Key) -> usize {
        // Mixed, so that the keys of one shard do not share the high bits the map's table
        // uses for its tags (it takes the key's own hash as is).
        (key.hash().wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 58) as usize % self.shards.len()
    }
}

impl CounterStore for SharedStore {
    fn apply(&self, key: Key, quota: &Quota, op: Op, now: Duration) -> Decision {
        match self.fallback() {
            Fallback::Allow => CounterState::default().apply(quota, Op::Check, now),
            Fallback::Local => {
                let share = quota.divided(self.nodes());
                // A sliding window's counters are packed by its quota's numbers: a share
                // that changes with the number of nodes gets keys of its own.
                let key = match quota.counting() {
                    Counting::Gcra => key,
                    Counting::SlidingWindow => Key::from_hash(
                        key.hash() ^ u64::from(share.requests_per_period()).rotate_left(40),
                    ),
                };
                self.local
                    .get_or_init(|| {
                        MemoryStore::new(MemoryStoreSettings {
                            max_keys: self.max_keys,
                            ..MemoryStoreSettings::default()
                        })
                    })
                    .apply(key, &share, op, now)
            }
            Fallback::Shared => {
                let mut guard = lock(&self.shards[self.shard_of(key)]);
                let shard = &mut *guard;
                if !shard.entries.contains_key(&key.hash())
                    && shard.entries.len() >= self.max_per_shard
                {
                    evict(shard, millis(now));
                }
                let e = shard.entries.entry(key.hash()).or_insert(Entry {
                    state: CounterState::default(),
                    quota: *quota,
                    pending: 0,
                    in_flight: 0,
                    block_to_send: 0,
                    last_used: 0,
                    recent: false,
                });
                e.quota = *quota;
                let blocked_before = e.state.blocked_until_ms;
                let decision = match op {
                    Op::Hit => e.state.apply(quota, op, now),
                    Op::Check | Op::CheckAndHit => {
                        // Decide as if the other nodes had counted too ("What a node
                        // leaves to the others" in the module docs), blocks included, but
                        // never reserving the whole quota.
                        let reserve = match quota.counting() {
                            Counting::Gcra => self.nodes() - 1,
                            Counting::SlidingWindow => {
                                let unseen = e.pending.saturating_add(e.in_flight);
                                (2 * (self.nodes() - 1)).saturating_mul(unseen.saturating_add(1))
                            }
                        };
                        let mut probe = e.state;
                        probe.add_hits(quota, reserve.min(quota.requests_per_period() - 1), now);
                        match quota.counting() {
                            // GCRA: the reserve is n − 1 tokens, and a block starts at that
                            // smaller burst (docs/fleet.md), which keeps the fleet closest
                            // to one node's decisions (measured).
                            Counting::Gcra => {
                                let decision = probe.apply(quota, Op::Check, now);
                                e.state.blocked_until_ms = probe.blocked_until_ms;
                                if op == Op::CheckAndHit && decision.is_allowed() {
                                    e.state.apply(quota, Op::Hit, now);
                                }
                                decision
                            }
                            // Sliding window: the reserve grows with this node's unseen
                            // hits, so it only refuses. A block, and the wait, come from the
                            // view with the reserve of a node that has no unseen hits,
                            // 2 (n − 1): where admissions stop once the fleet is in sync (the
                            // view alone never reaches the quota), not earlier because this
                            // node's burst is still on its way. Room held back for the others
                            // is worth a retry after a second.
                            Counting::SlidingWindow => {
                                let shared = probe.apply(&quota.throttled(), Op::Check, now);
                                if shared.is_allowed() {
                                    if op == Op::CheckAndHit {
                                        e.state.apply(quota, Op::Hit, now);
                                    }
                                    shared
                                } else {
                                    let mut near = e.state;
                                    let settled = (2 * (self.nodes() - 1))
                                        .min(quota.requests_per_period() - 1);
                                    near.add_hits(quota, settled, now);
                                    let own = near.apply(quota, Op::Check, now);
                                    e.state.blocked_until_ms = near.blocked_until_ms;
                                    match own {
                                        Decision::Limit { .. } => own,
                                        Decision::Allow(_) => Decision::Limit {
                                            retry_after_secs: 1,
                                            status: shared.status(),
                                        },
                                    }
                                }
                            }
                        }
                    }
                };
                if op == Op::Hit || (op == Op::CheckAndHit && decision.is_allowed()) {
                    e.pending = e.pending.saturating_add(1);
                }
                if e.state.blocked_until_ms != blocked_before {
                    e.block_to_send = e.state.blocked_until_ms;
                }
                e.last_used = self.batches.load(Ordering::Relaxed);
                e.make_recent(key.hash(), &mut shard.recent);
                decision
            }
        }
    }
}

/// Makes room in a full shard: an expired idle key if one of the first few is, else the first
/// idle key that is not blocked, else the first idle key. Recent keys stay (their hits may
/// still be to send).
fn evict(shard: &mut Shard, now_ms: u64) {
    let mut fallback = None;
    let mut victim = None;
    for (h, e) in shard.entries.iter().filter(|(_, e)| !e.recent).take(16) {
        if e.state.expires_at_ms(&e.quota, now_ms) <= now_ms {
            victim = Some(*h);
            break;
        }
        if !e.state.is_blocked(now_ms) && victim.is_none() {
            victim = Some(*h);
        }
        fallback.get_or_insert(*h);
    }
    if let Some(h) = victim.or(fallback) {
        shard.entries.remove(&h);
    }
}

/// Keys are keyed hashes already: the map uses them as they are.
#[derive(Debug, Default)]
struct KeyHasher(u64);

impl Hasher for KeyHasher {
    fn finish(&self) -> u64 {
        self.0
    }

    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 << 8) | u64::from(b);
        }
    }

    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

fn lock(m: &Mutex<Shard>) -> std::sync::MutexGuard<'_, Shard> {
    // Entries are plain values updated in place; a panic cannot leave one half-written.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn millis(now: Duration) -> u64 {
    u64::try_from(now.as_millis()).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A fleet of `n` stores and one engine (the Rust twin of the server's script), synced by
    /// hand.
    struct Fleet {
        nodes: Vec<SharedStore>,
        engine: HashMap<Key, SharedState>,
    }

    impl Fleet {
        fn new(n: usize) -> Fleet {
            let nodes: Vec<_> = (0..n).map(|_| SharedStore::new(1000)).collect();
            for node in &nodes {
                node.set_nodes(n as u32);
            }
            Fleet {
                nodes,
                engine: HashMap::new(),
            }
        }

        fn sync(&mut self, now_ms: u64) {
            let now = Duration::from_millis(now_ms);
            for node in &self.nodes {
                let batch = node.take_batch(now);
                let answers: Vec<_> = batch
                    .iter()
                    .map(|item| {
                        let s = self.engine.entry(item.key).or_default();
                        s.add(item, now_ms);
                        (item.key, *s)
                    })
                    .collect();
                node.merge(&answers, now);
            }
        }
    }

    const KEY: Key = Key::from_hash(0x0123_4567_89ab_cdef);

    /// Requests every `gap_ms` round robin over `n` nodes for 60 s, every node syncing every
    /// 50 ms: how many are admitted.
    fn admitted(n: usize, quota: Quota, gap_ms: u64) -> usize {
        let mut fleet = Fleet::new(n);
        let mut admitted = 0;
        for now_ms in (1_000_000..1_060_000).step_by(10) {
            let i = (now_ms / gap_ms) as usize;
            if now_ms % gap_ms == 0
                && fleet.nodes[i % n]
                    .check_and_hit(KEY, &quota, Duration::from_millis(now_ms))
                    .is_allowed()
            {
                admitted += 1;
            }
            if now_ms % 50 == 0 {
                fleet.sync(now_ms);
            }
        }
        admitted
    }

    #[test]
    fn three_nodes_share_one_limit_within_a_sync_interval() {
        // 30 per minute: a burst of 30, then one every 2 s.
        let quota = Quota::new(60, 30, 0).unwrap();
        let alone = admitted(1, quota, 200);
        assert_eq!(alone, 59);
        // Requests 200 ms apart, longer than a sync: three nodes admit what one does, less
        // the two tokens each node leaves to the others.
        assert_eq!(admitted(3, quota, 200), alone - 2);
        // Requests 10 ms apart, five per sync interval: a token freed while the others have
        // not heard of the last take can be taken twice, not more.
        let busy = admitted(3, quota, 10);
        assert!((55..=61).contains(&busy), "{busy} admitted");
    }

    #[test]
    fn without_syncs_each_node_counts_alone_and_a_sync_catches_up() {
        let quota = Quota::new(60, 10, 0).unwrap();
        let mut fleet = Fleet::new(2);
        let t = Duration::from_millis(5_000);
        for _ in 0..8 {
            assert!(fleet.nodes[0].check_and_hit(KEY, &quota, t).is_allowed());
        }
        // A key new to node 1 is decided on its own count until the next sync.
        assert!(fleet.nodes[1].check_and_hit(KEY, &quota, t).is_allowed());
        fleet.sync(5_000);
        // Node 1 now sees node 0's 8 and its own 1: the last token is left to node 0.
        assert!(!fleet.nodes[1].check_and_hit(KEY, &quota, t).is_allowed());
        assert!(fleet.nodes[0].check_and_hit(KEY, &quota, t).is_allowed());
        // Node 0 synced before node 1 sent its last hit: it hears of it one sync later.
        fleet.sync(5_000);
        fleet.sync(5_000);
        assert!(!fleet.nodes[0].check_and_hit(KEY, &quota, t).is_allowed());
    }

    #[test]
    fn more_nodes_than_the_quota_still_admit_one_request() {
        // 5 per 10 s on 8 nodes: the reserve is at most 4, so one request still passes.
        let quota = Quota::new(10, 5, 0).unwrap();
        let node = SharedStore::new(100);
        node.set_nodes(8);
        let t = Duration::from_millis(10_000);
        assert!(node.check_and_hit(KEY, &quota, t).is_allowed());
        // The next is refused for the others' sake: 2 s later (one token back) it passes.
        let d = node.check_and_hit(KEY, &quota, t);
        assert_eq!(d.retry_after_secs(), Some(2));
        assert!(
            node.check_and_hit(KEY, &quota, Duration::from_millis(12_000))
                .is_allowed()
        );
    }

    #[test]
    fn a_block_started_on_one_node_reaches_the_others() {
        let quota = Quota::new(10, 3, 60).unwrap();
        let mut fleet = Fleet::new(2);
        let t = Duration::from_millis(10_000);
        assert!(fleet.nodes[1].check(KEY, &quota, t).is_allowed());
        let limited = (0..3)
            .filter(|_| !fleet.nodes[0].check_and_hit(KEY, &quota, t).is_allowed())
            .count();
        assert_eq!(limited, 1);
        fleet.sync(10_000);
        // Node 1 never counted the key's requests, but sees the block, 50 s on.
        let later = Duration::from_millis(60_000);
        let d = fleet.nodes[1].check_and_hit(KEY, &quota, later);
        assert_eq!(d.retry_after_secs(), Some(10));
    }

    #[test]
    fn hits_counted_during_the_round_trip_are_kept() {
        let quota = Quota::new(60, 10, 0).unwrap();
        let node = SharedStore::new(100);
        let t = Duration::from_millis(1_000);
        for _ in 0..3 {
            node.check_and_hit(KEY, &quota, t);
        }
        let batch = node.take_batch(t);
        assert_eq!(batch[0].hits, 3);
        // Two more while the batch is on its way.
        node.check_and_hit(KEY, &quota, t);
        node.check_and_hit(KEY, &quota, t);
        let mut engine = SharedState::default();
        engine.add(&batch[0], 1_000);
        node.merge(&[(KEY, engine)], t);
        assert_eq!(node.check(KEY, &quota, t).status().remaining, 5);
        assert_eq!(node.take_batch(t)[0].hits, 2);
    }

    #[test]
    fn a_key_used_while_a_batch_is_taken_stays_recent() {
        let quota = Quota::new(60, 10, 0).unwrap();
        let node = SharedStore::new(100);
        let t = Duration::from_millis(1_000);
        node.take_batch(t);
        // As if counted between the batch number's increment and the scan of its shard.
        node.check_and_hit(KEY, &quota, t);
        lock(&node.shards[node.shard_of(KEY)])
            .entries
            .get_mut(&KEY.hash())
            .unwrap()
            .last_used = 2;
        assert_eq!(node.take_batch(t).len(), 1);
        assert_eq!(node.take_batch(t).len(), 1, "still recent");
    }

    #[test]
    fn a_failed_sync_sends_its_hits_with_the_next() {
        let quota = Quota::new(60, 10, 0).unwrap();
        let node = SharedStore::new(100);
        let t = Duration::from_millis(1_000);
        for _ in 0..3 {
            node.check_and_hit(KEY, &quota, t);
        }
        let lost = node.take_batch(t);
        node.check_and_hit(KEY, &quota, t);
        node.requeue(&lost);
        assert_eq!(node.take_batch(t)[0].hits, 4);
    }

    #[test]
    fn local_fallback_divides_the_rate_by_the_nodes_and_allow_admits_all() {
        let quota = Quota::new(60, 30, 0).unwrap();
        let node = SharedStore::new(100);
        node.set_nodes(3);
        node.set_fallback(Fallback::Local);
        let t = Duration::from_millis(1_000);
        let admitted = (0..50)
            .filter(|_| node.check_and_hit(KEY, &quota, t).is_allowed())
            .count();
        assert_eq!(admitted, 10);
        node.set_fallback(Fallback::Allow);
        assert!((0..50).all(|_| node.check_and_hit(KEY, &quota, t).is_allowed()));
        // Nothing counted in either fallback is sent.
        node.set_fallback(Fallback::Shared);
        assert!(node.take_batch(t).is_empty());
    }

    #[test]
    fn the_engine_state_stays_exact_in_doubles_and_matches_gcra() {
        // A quota with an emission interval that is not a whole number of ms.
        let quota = Quota::new(60, 7, 0).unwrap();
        let mut shared = SharedState::default();
        let mut gcra = CounterState::default();
        let mut now_ms = 1_764_000_000_000u64;
        for i in 0..200u64 {
            now_ms += (i * 7919) % 20_000;
            let item = SyncItem {
                key: KEY,
                quota,
                hits: (i % 4) as u32,
                blocked_until_ms: 0,
            };
            shared.add(&item, now_ms);
            for _ in 0..item.hits {
                gcra.apply(&quota, Op::Hit, Duration::from_millis(now_ms));
            }
            assert!(shared.offset < 1 << 53);
            // Equal once a past arrival time is read as "now" (a full bucket).
            let now_ticks = now_ms * 7;
            assert_eq!(
                shared.counter_state(&quota).counter.max(now_ticks),
                gcra.counter.max(now_ticks),
                "{i}"
            );
        }
    }

    #[test]
    fn a_full_view_evicts_idle_keys_not_keys_with_hits_to_send() {
        let quota = Quota::new(10, 5, 0).unwrap();
        let node = SharedStore::new(SHARDS); // one key per shard
        let t = Duration::from_millis(1_000);
        // Three keys of one shard.
        let shard = node.shard_of(Key::from_hash(1));
        let same: Vec<Key> = (1..)
            .map(Key::from_hash)
            .filter(|k| node.shard_of(*k) == shard)
            .take(3)
            .collect();
        let (a, b) = (same[0], same[1]);
        node.check_and_hit(a, &quota, t);
        node.check_and_hit(b, &quota, t);
        assert_eq!(node.len(), 2, "recent keys are never evicted");
        for _ in 0..=REFRESH_BATCHES {
            assert_eq!(node.take_batch(t).len(), 2);
        }
        assert!(node.take_batch(t).is_empty(), "no longer recent");
        // A third key of the same shard takes an idle one's place.
        node.check_and_hit(same[2], &quota, t);
        assert_eq!(node.len(), 2);
    }
}
