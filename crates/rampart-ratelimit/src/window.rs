//! Sliding-window counting ([`Counting::SlidingWindow`]): per key, the requests accepted in
//! each of the last few sub-windows, so that no `period` ever holds more than
//! `requests_per_period` accepted requests.
//!
//! # The rule
//!
//! The period `P` is cut into `k` sub-windows of `P / k`; sub-window `i` is the whole
//! milliseconds `t` with `⌊t · k / P⌋ = i`. A key keeps one counter for the current sub-window
//! and one for each of the `k` before it: `k + 1` counters, which together cover every
//! request of the last `P` (the oldest sub-window only partly lies inside `(t − P, t]`). A
//! request is accepted when the `k + 1` counters sum to less than `N`.
//!
//! The sum counts every request of the exact window and possibly a few older ones, never
//! fewer, so the rule **never accepts a request the exact sliding log would refuse**: at most
//! `N` requests are accepted in any window of length `P`. That holds for requests decided and
//! counted in one step ([`Op::CheckAndHit`]); a rule that decides first and counts after the
//! response ([`Op::Check`], then [`Op::Hit`]) lets concurrent requests through before their
//! counts land, as with GCRA, and a store that must evict a live key forgets its counts. A
//! request stamped earlier than the state's last write (it started earlier, or a clock
//! stepped back) is read at the state's sub-window, never turning the window back. What it costs: a request is refused
//! while older requests of the oldest sub-window still count, so the window a client sees is
//! between `P` and `P + P / k` long. More sub-windows, less of that.
//!
//! # State: 16 bytes, like GCRA
//!
//! [`CounterState::counter`] holds the current sub-window's index modulo 2¹⁶ in its top 16
//! bits and the `k + 1` counters below, each `w` bits wide, where `w` is the number of bits
//! of `N` (a counter never exceeds `N`). `k + 1 = ⌊48 / w⌋`:
//!
//! | requests_per_period | bits per counter | sub-windows `k` |
//! |---|---:|---:|
//! | 1 | 1 | 47 |
//! | 2–3 | 2 | 23 |
//! | 4–7 | 3 | 15 |
//! | 8–15 | 4 | 11 |
//! | 16–31 | 5 | 8 |
//! | 32–63 | 6 | 7 |
//! | 64–127 | 7 | 5 |
//! | 128–255 | 8 | 5 |
//! | 256–4,095 | 9–12 | 4–3 |
//! | 4,096–65,535 | 13–16 | 2 |
//! | 65,536–1,000,000 | 17–20 | 1 |
//!
//! The layout depends on `N` and `P`: a state must be read with the quota it was written with
//! (the server puts both numbers in a sliding-window rule's key, so a reload that changes them
//! starts its keys afresh). An index modulo 2¹⁶ cannot tell a state from one 65,536
//! sub-windows older; [`MemoryStore`](crate::MemoryStore) forgets states once they expire.
//! A state in a long mitigation block lives until the block ends, which for small quotas
//! with a 10 s period can be more than 65,536 sub-windows (3.9 hours for N = 1); its old
//! counts may then come back for up to one period, refusing more, never admitting more.
//!
//! [`Counting::SlidingWindow`]: crate::Counting::SlidingWindow

use std::time::Duration;

use crate::decision::{Decision, RateLimitStatus};
use crate::gcra::{CounterState, Op};
use crate::quota::{Mitigation, Quota};

/// Bits of [`CounterState::counter`] that hold the counters; the 16 above hold the index.
const COUNT_BITS: u32 = 48;

/// Bits per counter and number of counters (`k + 1`) for `requests_per_period`.
pub(crate) fn layout(requests_per_period: u32) -> (u32, u32) {
    let width = (u32::BITS - requests_per_period.leading_zeros()).max(1);
    (width, COUNT_BITS / width)
}

/// Sub-windows per period for `requests_per_period` (`k`).
pub fn sub_windows(requests_per_period: u32) -> u32 {
    layout(requests_per_period).1 - 1
}

/// Bits per sub-window counter for `requests_per_period`: what a shared engine needs to
/// unpack the counters.
pub fn counter_bits(requests_per_period: u32) -> u32 {
    layout(requests_per_period).0
}

/// One key's counters, rolled forward to `now`.
struct Window {
    now_ms: u64,
    period_ms: u64,
    /// Sub-windows per period (`counters − 1`).
    k: u64,
    /// The current sub-window.
    index: u64,
    width: u32,
    counters: u32,
    /// Packed counters; counter 0 (lowest bits) is the current sub-window, counter `j` the
    /// one `j` sub-windows before it.
    counts: u64,
}

/// The sub-window `now_ms` falls in.
fn index_at(quota: &Quota, now_ms: u64) -> u64 {
    let k = u64::from(layout(quota.requests_per_period()).1 - 1);
    (u128::from(now_ms) * u128::from(k) / u128::from(quota.period_ms())) as u64
}

impl Window {
    fn load(counter: u64, quota: &Quota, now_ms: u64) -> Window {
        let (width, counters) = layout(quota.requests_per_period());
        let period_ms = quota.period_ms();
        let k = u64::from(counters - 1);
        let mut index = index_at(quota, now_ms);
        let stored = (counter >> COUNT_BITS) as u16;
        let ahead = stored.wrapping_sub(index as u16);
        let counts = if ahead > 0 && u32::from(ahead) < counters {
            // The state was written at a later time than `now` (a request that started
            // earlier, a clock stepped back). Time never goes back for a window: it is read
            // at its own sub-window, and a request counted now counts there, later than it
            // came, never lost.
            index += u64::from(ahead);
            counter & mask(COUNT_BITS)
        } else {
            let behind = (index as u16).wrapping_sub(stored);
            roll(
                counter & mask(COUNT_BITS),
                u64::from(behind),
                width,
                counters,
            )
        };
        Window {
            now_ms,
            period_ms,
            k,
            index,
            width,
            counters,
            counts,
        }
    }

    fn packed(&self) -> u64 {
        ((self.index & 0xffff) << COUNT_BITS) | self.counts
    }

    fn count(&self, j: u32) -> u64 {
        (self.counts >> (j * self.width)) & mask(self.width)
    }

    fn sum(&self) -> u64 {
        (0..self.counters).map(|j| self.count(j)).sum()
    }

    fn add_one(&mut self) {
        self.counts += 1;
    }

    /// Milliseconds from now until sub-window `index + ahead` starts.
    fn until(&self, ahead: u64) -> u64 {
        let i = u128::from(self.index + ahead);
        let start = (i * u128::from(self.period_ms)).div_ceil(u128::from(self.k)) as u64;
        start.saturating_sub(self.now_ms)
    }

    /// Milliseconds until a request would fit under `limit`: until enough of the oldest
    /// counters have left the window. 0 if it fits now.
    fn wait_ms(&self, limit: u64) -> u64 {
        let mut kept = self.sum();
        let mut ahead = 0;
        while kept >= limit && ahead < self.counters {
            ahead += 1;
            kept -= self.count(self.counters - ahead);
        }
        if ahead == 0 {
            0
        } else {
            self.until(u64::from(ahead))
        }
    }

    /// Milliseconds until every counter is 0 again: when the newest request's sub-window
    /// leaves the window.
    fn empty_in_ms(&self) -> u64 {
        match (0..self.counters).find(|&j| self.count(j) > 0) {
            Some(newest) => self.until(u64::from(self.counters - newest)),
            None => 0,
        }
    }
}

/// Packed counters `behind` sub-windows later: each moves up by that many places, and those
/// past the oldest are gone.
fn roll(counts: u64, behind: u64, width: u32, counters: u32) -> u64 {
    if behind >= u64::from(counters) {
        0
    } else {
        (counts << (behind as u32 * width)) & mask(counters * width)
    }
}

fn mask(bits: u32) -> u64 {
    if bits >= 64 {
        u64::MAX
    } else {
        (1 << bits) - 1
    }
}

/// [`CounterState::counter`] for a shared engine's state: the current sub-window's index
/// (absolute) and the packed counters.
pub(crate) fn pack(index: u64, counts: u64) -> u64 {
    ((index & 0xffff) << COUNT_BITS) | (counts & mask(COUNT_BITS))
}

/// The shared engine's step: `hits` more in the sub-window of `now_ms`, a count never taking
/// the counters past the quota (as [`Op::Hit`]). Takes and returns the absolute index of the
/// current sub-window and the packed counters. The server's script does the same in Lua.
pub(crate) fn add(quota: &Quota, index: u64, counts: u64, hits: u32, now_ms: u64) -> (u64, u64) {
    let (width, counters) = layout(quota.requests_per_period());
    let now_index = index_at(quota, now_ms);
    // Rolled forward on absolute indices: no modulo aliasing, however long the key was idle.
    // A state ahead of this clock (the engine's clock stepped back) stays as it is.
    let counts = roll(counts, now_index.saturating_sub(index), width, counters);
    let sum: u64 = (0..counters)
        .map(|j| (counts >> (j * width)) & mask(width))
        .sum();
    let room = u64::from(quota.requests_per_period()).saturating_sub(sum);
    (index.max(now_index), counts + u64::from(hits).min(room))
}

/// [`CounterState::add_hits`] for a sliding-window quota.
pub(crate) fn add_hits(state: &mut CounterState, quota: &Quota, hits: u32, now: Duration) {
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let mut w = Window::load(state.counter, quota, now_ms);
    let room = u64::from(quota.requests_per_period()).saturating_sub(w.sum());
    w.counts += u64::from(hits).min(room);
    state.counter = w.packed();
}

/// [`CounterState::apply_and_expiry`] for a sliding-window quota.
pub(crate) fn apply(
    state: &mut CounterState,
    quota: &Quota,
    op: Op,
    now: Duration,
) -> (Decision, u64) {
    let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
    let limit = u64::from(quota.requests_per_period());
    let mut w = Window::load(state.counter, quota, now_ms);
    let wait_ms = match op {
        Op::Hit => {
            // Counted without deciding; the counters never hold more than the quota, so the
            // key never waits longer than one period and a sub-window because of counts.
            if w.sum() < limit {
                w.add_one();
            }
            state
                .blocked_until_ms
                .saturating_sub(now_ms)
                .max(w.wait_ms(limit))
        }
        Op::Check | Op::CheckAndHit => {
            if state.blocked_until_ms <= now_ms
                && w.sum() >= limit
                && let Mitigation::Block { timeout_secs } = quota.mitigation()
            {
                state.blocked_until_ms = now_ms.saturating_add(u64::from(timeout_secs) * 1000);
            }
            let wait_ms = state
                .blocked_until_ms
                .saturating_sub(now_ms)
                .max(w.wait_ms(limit));
            if op == Op::CheckAndHit && wait_ms == 0 {
                w.add_one();
            }
            wait_ms
        }
    };
    state.counter = w.packed();
    let blocked_ms = state.blocked_until_ms.saturating_sub(now_ms);
    let empty_in_ms = w.empty_in_ms();
    let status = RateLimitStatus {
        limit: quota.requests_per_period(),
        window_secs: quota.period_secs(),
        remaining: if blocked_ms > 0 {
            0
        } else {
            u32::try_from(limit.saturating_sub(w.sum())).unwrap_or(u32::MAX)
        },
        reset_secs: empty_in_ms.max(blocked_ms).div_ceil(1000),
    };
    let decision = Decision::after_wait(wait_ms, status);
    let expires_at_ms = now_ms
        .saturating_add(empty_in_ms)
        .max(state.blocked_until_ms);
    (decision, expires_at_ms)
}

/// When a sliding-window state is indistinguishable from a key never seen.
pub(crate) fn expires_at_ms(state: &CounterState, quota: &Quota, now_ms: u64) -> u64 {
    let w = Window::load(state.counter, quota, now_ms);
    now_ms
        .saturating_add(w.empty_in_ms())
        .max(state.blocked_until_ms)
}

#[cfg(test)]
mod tests {
    use std::collections::VecDeque;

    use super::*;
    use crate::Counting;

    fn quota(period: u32, n: u32, timeout: u32) -> Quota {
        Quota::new(period, n, timeout)
            .unwrap()
            .counted_by(Counting::SlidingWindow)
    }

    fn at(ms: u64) -> Duration {
        Duration::from_millis(ms)
    }

    #[test]
    fn the_layout_table_in_the_docs() {
        for (n, k) in [
            (1, 47),
            (3, 23),
            (7, 15),
            (15, 11),
            (31, 8),
            (63, 7),
            (100, 5),
            (255, 5),
            (256, 4),
            (4_095, 3),
            (4_096, 2),
            (65_535, 2),
            (65_536, 1),
            (1_000_000, 1),
        ] {
            assert_eq!(sub_windows(n), k, "N = {n}");
            let (width, counters) = layout(n);
            assert!(u64::from(n) <= mask(width) && width * counters <= COUNT_BITS);
        }
    }

    #[test]
    fn admits_the_quota_then_waits_for_the_oldest_sub_window_to_leave() {
        // 100 per 60 s: 5 sub-windows of 12 s.
        let q = quota(60, 100, 0);
        let mut s = CounterState::default();
        // 40 at 1 s, 60 at 13 s (the next sub-window).
        for i in 0..100 {
            let t = if i < 40 { 1_000 } else { 13_000 };
            let d = s.apply(&q, Op::CheckAndHit, at(t));
            assert!(d.is_allowed(), "request {i}");
            assert_eq!(d.status().remaining, 99 - i);
        }
        let refused = s.apply(&q, Op::CheckAndHit, at(20_000));
        // The 40 leave when the sub-window [0, 12 s) leaves the window, at 72 s.
        assert_eq!(refused.retry_after_secs(), Some(52));
        // Full again when the 13 s sub-window leaves, at 84 s.
        assert_eq!(refused.status().reset_secs, 64);
        assert!(!s.apply(&q, Op::CheckAndHit, at(71_999)).is_allowed());
        let d = s.apply(&q, Op::CheckAndHit, at(72_000));
        assert!(d.is_allowed());
        assert_eq!(d.status().remaining, 39);
        // Its state expires once the newest counter (72 s, sub-window 6) has left: when
        // sub-window 12 starts, at 144 s.
        let (_, expires) = s.apply_and_expiry(&q, Op::Check, at(72_000));
        assert_eq!(expires, 144_000);
    }

    #[test]
    fn a_block_starts_at_the_first_refusal_and_refuses_without_counting() {
        let q = quota(10, 3, 60);
        let mut s = CounterState::default();
        for _ in 0..3 {
            assert!(s.apply(&q, Op::CheckAndHit, at(500)).is_allowed());
        }
        let d = s.apply(&q, Op::CheckAndHit, at(600));
        assert_eq!(d.retry_after_secs(), Some(60));
        assert!(!s.apply(&q, Op::CheckAndHit, at(60_599)).is_allowed());
        assert!(s.apply(&q, Op::CheckAndHit, at(60_600)).is_allowed());
    }

    #[test]
    fn counting_only_never_holds_more_than_the_quota() {
        let q = quota(10, 3, 0);
        let mut s = CounterState::default();
        for _ in 0..1000 {
            s.apply(&q, Op::Hit, at(100));
        }
        let d = s.apply(&q, Op::Check, at(100));
        assert_eq!(d.status().remaining, 0);
        // 10 s / 23 sub-windows: the one holding the counts leaves at 10,435 ms.
        assert!(!s.apply(&q, Op::Check, at(10_434)).is_allowed());
        assert_eq!(s.apply(&q, Op::Check, at(10_435)).status().remaining, 3);
    }

    #[test]
    fn an_idle_key_reads_as_new_whatever_its_index_modulo() {
        let q = quota(60, 100, 0);
        let mut s = CounterState::default();
        assert!(s.apply(&q, Op::CheckAndHit, at(5_000)).is_allowed());
        // Exactly 2^16 sub-windows later the index modulo 2^16 is the same: the memory
        // store forgets the state long before (it has expired), which is why it resets
        // expired states. Read directly, one sub-window after expiry is clean.
        let d = s.apply(&q, Op::Check, at(5_000 + 72_000));
        assert_eq!(d.status().remaining, 100);
    }

    /// The exact sliding log: accepted requests in `(t − P, t]`.
    fn in_window(log: &VecDeque<u64>, p: u64, t: u64) -> usize {
        log.iter().filter(|&&s| s + p > t).count()
    }

    #[test]
    fn never_accepts_what_the_exact_log_refuses_and_refuses_only_near_the_limit() {
        let mut rng = fastrand::Rng::with_seed(7);
        for case in 0..300 {
            let period = [10, 60][case % 2];
            let n = [1, 2, 3, 5, 10, 50, 100, 300][case % 8];
            let q = quota(period, n, 0);
            let p = q.period_ms();
            let sub = p.div_ceil(u64::from(sub_windows(n)));
            let mut s = CounterState::default();
            let mut log = VecDeque::new();
            let mut t = rng.u64(0..p);
            for _ in 0..2_000 {
                t += rng.u64(0..=3 * p / u64::from(n));
                let accepted = s.apply(&q, Op::CheckAndHit, at(t)).is_allowed();
                let exact = in_window(&log, p, t);
                if accepted {
                    assert!(
                        exact < n as usize,
                        "case {case}: accepted over the log at {t}"
                    );
                    log.push_back(t);
                } else {
                    // Refused: the window widened by one sub-window holds the quota.
                    assert!(
                        in_window(&log, p + sub, t) >= n as usize,
                        "case {case}: refused at {t} with {exact} in the window"
                    );
                }
                while log.front().is_some_and(|&f| f + p + sub <= t) {
                    log.pop_front();
                }
            }
        }
    }

    #[test]
    fn the_engine_step_matches_counting_on_one_node_and_never_aliases() {
        use crate::{Key, SharedState, SyncItem};
        let q = quota(60, 100, 0);
        let mut shared = SharedState::default();
        let mut local = CounterState::default();
        let mut now_ms = 1_764_000_000_000u64;
        for i in 0..400u64 {
            now_ms += (i * 7919) % 9_000;
            let item = SyncItem {
                key: Key::from_hash(1),
                quota: q,
                hits: (i % 37) as u32,
                blocked_until_ms: 0,
            };
            shared.add(&item, now_ms);
            for _ in 0..item.hits {
                local.apply(&q, Op::Hit, at(now_ms));
            }
            assert!(shared.offset < 1 << COUNT_BITS);
            let now = at(now_ms);
            assert_eq!(
                shared.counter_state(&q).apply(&q, Op::Check, now),
                local.apply(&q, Op::Check, now),
                "{i}"
            );
        }
        // Idle for exactly 2^16 sub-windows: the index modulo 2^16 is the same, the
        // absolute one is not, and the engine starts the key afresh.
        let sub_ms = q.period_ms() / u64::from(sub_windows(100));
        let item = SyncItem {
            key: Key::from_hash(1),
            quota: q,
            hits: 1,
            blocked_until_ms: 0,
        };
        shared.add(&item, now_ms + (1 << 16) * sub_ms);
        assert_eq!(shared.offset, 1);
    }

    #[test]
    fn a_shared_node_keeps_to_its_share_until_the_fleet_has_seen_its_hits() {
        use crate::{CounterStore, Key, SharedState, SharedStore};
        let q = quota(60, 10, 0);
        let key = Key::from_hash(9);
        let node = SharedStore::new(100);
        node.set_nodes(3);
        let t = at(1_000);
        let admitted = |n: usize| {
            (0..n)
                .filter(|_| node.check_and_hit(key, &q, t).is_allowed())
                .count()
        };
        // Unseen hits u, view count s: admitted while s + 4 (u + 1) < 10.
        assert_eq!(admitted(10), 2);
        // Sent, not yet answered: the two still count as unseen.
        let batch = node.take_batch(t);
        assert_eq!(batch[0].hits, 2);
        assert_eq!(admitted(10), 0);
        // The fleet has seen them: one more fits (2 + 4 < 10, then 3 + 8 is over).
        let mut engine = SharedState::default();
        engine.add(&batch[0], 1_000);
        node.merge(&[(key, engine)], t);
        assert_eq!(admitted(10), 1);
    }

    #[test]
    fn an_earlier_now_never_turns_the_window_back() {
        // 100 per 60 s, sub-windows of 12 s: 99 at 11.999 s, one at 12 s (the next
        // sub-window), then requests stamped 11.999 s (they started earlier) and 12.001 s.
        let q = quota(60, 100, 0);
        let mut s = CounterState::default();
        for _ in 0..99 {
            assert!(s.apply(&q, Op::CheckAndHit, at(11_999)).is_allowed());
        }
        assert!(s.apply(&q, Op::CheckAndHit, at(12_000)).is_allowed());
        let late = s.apply(&q, Op::CheckAndHit, at(11_999));
        assert!(!late.is_allowed());
        assert_eq!(late.status().remaining, 0);
        assert!(!s.apply(&q, Op::CheckAndHit, at(12_001)).is_allowed());
        // A count stamped earlier lands in the later sub-window, and nothing is lost.
        let mut t = CounterState::default();
        t.apply(&q, Op::CheckAndHit, at(12_000));
        t.apply(&q, Op::Hit, at(11_000));
        assert_eq!(t.apply(&q, Op::Check, at(12_500)).status().remaining, 98);
        // The sub-window of 12–24 s leaves the window at 84 s, and both counts with it.
        assert_eq!(t.apply(&q, Op::Check, at(83_999)).status().remaining, 98);
        assert_eq!(t.apply(&q, Op::Check, at(84_000)).status().remaining, 100);
    }

    #[test]
    fn a_shared_burst_is_refused_without_a_block_until_the_fleet_is_at_its_limit() {
        use crate::{CounterStore, Key, SharedState, SharedStore};
        let q = quota(60, 10, 600);
        let key = Key::from_hash(5);
        let node = SharedStore::new(100);
        node.set_nodes(3);
        let t = at(1_000);
        // A burst on one node before any sync: its share is 2, then it waits a second, and
        // no block starts (3 requests of a quota of 10 are not abuse).
        assert!(node.check_and_hit(key, &q, t).is_allowed());
        assert!(node.check_and_hit(key, &q, t).is_allowed());
        let refused = node.check_and_hit(key, &q, t);
        assert_eq!(refused.retry_after_secs(), Some(1));
        assert_eq!(node.take_batch(t)[0].blocked_until_ms, 0);
        // The fleet has counted 6 (the view with the settled reserve of 4 is at 10): the
        // next refusal is the rule's block.
        let mut engine = SharedState::default();
        for _ in 0..6 {
            engine.add(
                &crate::SyncItem {
                    key,
                    quota: q,
                    hits: 1,
                    blocked_until_ms: 0,
                },
                1_000,
            );
        }
        node.merge(&[(key, engine)], t);
        assert_eq!(node.check_and_hit(key, &q, t).retry_after_secs(), Some(600));
        assert_eq!(node.take_batch(t)[0].blocked_until_ms, 601_000);
    }
}
