//! The counting algorithm: GCRA (generic cell rate algorithm) on one key's
//! state, as a pure function of (state, quota, operation, now).
//!
//! # Units
//!
//! `now` is truncated to whole milliseconds. GCRA's emission interval
//! `T = period / requests_per_period` is rarely a whole number of
//! milliseconds (60 s / 7), so the theoretical arrival time is kept in
//! *ticks* of `1 / requests_per_period` ms: `T` is then exactly
//! `period_ms` ticks and nothing is rounded. With
//! `requests_per_period ≤ 1,000,000`, `now_ms × requests_per_period` fits
//! a `u64` for 584 years of uptime (it saturates after that).
//!
//! # The rule
//!
//! With burst tolerance `τ = (requests_per_period − 1) · T` and `tat` the
//! theoretical arrival time (never earlier than `now`), a request at `now`
//! conforms iff `now ≥ tat − τ`; counting it sets `tat += T`. This is the
//! token bucket with capacity `requests_per_period` refilled continuously
//! at `requests_per_period` per `period`.

use std::time::Duration;

use crate::decision::{Decision, RateLimitStatus};
use crate::quota::{Counting, Mitigation, Quota};

/// What a call does to a key's counter.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    /// Decide without counting. Starts a mitigation block if the rule has a
    /// mitigation timeout and the key is over the rate (the block is a
    /// decision, not a count). Used when the rule has a separate counting
    /// expression: `Check` before the origin, [`Op::Hit`] after the response.
    Check,
    /// Count one request without deciding ("count only"). A count when the
    /// quota is already used up does not deepen the debt: the key never
    /// waits longer than one period because of counted requests. The
    /// returned decision is what a [`Op::Check`] would say for the key's next
    /// request, except that a `Hit` never starts a mitigation block.
    Hit,
    /// Decide, and count the request if it is allowed. Limited requests are
    /// not counted, so a throttled client still gets exactly the rate.
    CheckAndHit,
}

/// One key's counter state as a store keeps it: 16 bytes. All zeros is a
/// key never seen.
///
/// Any store, in process or shared, is "load the state, [`apply`], save the
/// state" done atomically per key.
///
/// The state is in units of the quota it was built with. If a GCRA rule's quota
/// changes on reload while keys are live, their states are read in the new
/// units; `apply` clamps them so the effect never lasts beyond one period.
/// A sliding-window state is not clamped: read with other numbers its packed
/// counters mean something else, so it must only ever be read with the quota
/// that wrote it (the server puts a sliding-window rule's numbers in its key).
/// Servers that want a clean start put the quota's numbers in the key.
///
/// [`apply`]: CounterState::apply
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct CounterState {
    /// For a GCRA quota, the theoretical arrival time in ticks (ms × requests_per_period);
    /// for a sliding-window quota, the current sub-window and its counters (see
    /// [`Counting::SlidingWindow`](crate::Counting::SlidingWindow)).
    pub counter: u64,
    /// End of the mitigation block in ms; the key is blocked while
    /// `now_ms < blocked_until_ms`.
    pub blocked_until_ms: u64,
}

impl CounterState {
    /// Applies `op` at `now` (a monotonic time since an arbitrary epoch,
    /// the same epoch for every call on a store) and returns the decision.
    pub fn apply(&mut self, quota: &Quota, op: Op, now: Duration) -> Decision {
        self.apply_and_expiry(quota, op, now).0
    }

    /// [`CounterState::apply`], also returning the new
    /// [`CounterState::expires_at_ms`] (computed for free on the way).
    pub(crate) fn apply_and_expiry(
        &mut self,
        quota: &Quota,
        op: Op,
        now: Duration,
    ) -> (Decision, u64) {
        if quota.counting() == Counting::SlidingWindow {
            return crate::window::apply(self, quota, op, now);
        }
        let clock = Clock::new(quota, now);
        // A key whose state is older than the rule (configuration reloaded
        // with a smaller `requests_per_period`) could hold a `tat` further
        // ahead than any valid state; clamp it to "quota used up".
        self.counter = self.counter.min(clock.empty_tat());
        let wait_ms = match op {
            Op::Hit => {
                let tat = self.counter.max(clock.now_ticks);
                self.counter = tat.saturating_add(clock.t).min(clock.empty_tat());
                self.wait_ms(&clock)
            }
            Op::Check | Op::CheckAndHit => {
                if self.blocked_until_ms <= clock.now_ms
                    && !self.conforms(&clock)
                    && let Mitigation::Block { timeout_secs } = quota.mitigation()
                {
                    self.blocked_until_ms =
                        clock.now_ms.saturating_add(u64::from(timeout_secs) * 1000);
                }
                let wait_ms = self.wait_ms(&clock);
                if op == Op::CheckAndHit && wait_ms == 0 {
                    self.counter = self.counter.max(clock.now_ticks).saturating_add(clock.t);
                }
                wait_ms
            }
        };
        let (status, full_in_ms) = self.status(&clock);
        let decision = Decision::after_wait(wait_ms, status);
        // ceil(tat / l) = now_ms + ceil((tat − now_ticks) / l) once tat ≥ now.
        let expires_at_ms = clock
            .now_ms
            .saturating_add(full_in_ms)
            .max(self.blocked_until_ms);
        debug_assert!(
            expires_at_ms == self.expires_at_ms(quota, clock.now_ms)
                || (expires_at_ms <= clock.now_ms
                    && self.expires_at_ms(quota, clock.now_ms) <= clock.now_ms)
        );
        (decision, expires_at_ms)
    }

    /// The time (ms) from which this state is indistinguishable from a key
    /// never seen: the bucket is full again (or every sub-window counter has left the
    /// window) and no block is running. A store may forget the key then without changing
    /// any decision. `now_ms` is the time of the state's last use or later.
    pub fn expires_at_ms(&self, quota: &Quota, now_ms: u64) -> u64 {
        if quota.counting() == Counting::SlidingWindow {
            return crate::window::expires_at_ms(self, quota, now_ms);
        }
        let full_at_ms = self
            .counter
            .div_ceil(u64::from(quota.requests_per_period()));
        full_at_ms.max(self.blocked_until_ms)
    }

    /// Counts `hits` requests at `now` without deciding: the same state as `hits` calls
    /// with [`Op::Hit`], in one step.
    pub fn add_hits(&mut self, quota: &Quota, hits: u32, now: Duration) {
        if quota.counting() == Counting::SlidingWindow {
            return crate::window::add_hits(self, quota, hits, now);
        }
        let clock = Clock::new(quota, now);
        let tat = self.counter.min(clock.empty_tat()).max(clock.now_ticks);
        self.counter = tat
            .saturating_add(u64::from(hits).saturating_mul(clock.t))
            .min(clock.empty_tat());
    }

    /// Whether a mitigation block is running at `now_ms`.
    pub fn is_blocked(&self, now_ms: u64) -> bool {
        now_ms < self.blocked_until_ms
    }

    fn conforms(&self, c: &Clock) -> bool {
        c.now_ticks.saturating_add(c.tau) >= self.counter
    }

    /// Milliseconds until the key's next request would be accepted; 0 if
    /// it would be now.
    fn wait_ms(&self, c: &Clock) -> u64 {
        let blocked_ms = self.blocked_until_ms.saturating_sub(c.now_ms);
        let gcra_wait_ms = if self.conforms(c) {
            0
        } else {
            // First whole ms at which now_ticks + tau >= tat.
            (self.counter - c.tau).div_ceil(c.l) - c.now_ms
        };
        blocked_ms.max(gcra_wait_ms)
    }

    /// The quota numbers, and the ms until the bucket is full again.
    fn status(&self, c: &Clock) -> (RateLimitStatus, u64) {
        let tat = self.counter.max(c.now_ticks);
        let blocked_ms = self.blocked_until_ms.saturating_sub(c.now_ms);
        let remaining = if blocked_ms > 0 {
            0
        } else {
            // Requests that fit before tat reaches now + tau + T.
            (c.empty_tat() - tat) / c.t
        };
        let full_in_ms = (tat - c.now_ticks).div_ceil(c.l);
        let status = RateLimitStatus {
            limit: c.quota_limit,
            window_secs: c.window_secs,
            remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
            reset_secs: full_in_ms.max(blocked_ms).div_ceil(1000),
        };
        (status, full_in_ms)
    }
}

/// `now` and the quota, in ticks.
struct Clock {
    now_ms: u64,
    now_ticks: u64,
    /// requests_per_period.
    l: u64,
    /// Emission interval in ticks (= period in ms).
    t: u64,
    /// Burst tolerance in ticks: (l − 1) · t.
    tau: u64,
    quota_limit: u32,
    window_secs: u32,
}

impl Clock {
    fn new(quota: &Quota, now: Duration) -> Clock {
        let now_ms = u64::try_from(now.as_millis()).unwrap_or(u64::MAX);
        let l = u64::from(quota.requests_per_period());
        let t = quota.period_ms();
        Clock {
            now_ms,
            now_ticks: now_ms.saturating_mul(l),
            l,
            t,
            tau: (l - 1) * t,
            quota_limit: quota.requests_per_period(),
            window_secs: quota.period_secs(),
        }
    }

    /// The `tat` of a key whose quota is used up at `now`.
    fn empty_tat(&self) -> u64 {
        self.now_ticks.saturating_add(self.tau + self.t)
    }
}
