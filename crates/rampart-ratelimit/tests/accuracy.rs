//! How exact are the decisions? Deterministic, seeded request sequences run
//! through the [`MemoryStore`] and through independent exact models.
//!
//! Three comparisons, each with its own precise meaning of "exact":
//!
//! 1. **GCRA vs the exact token bucket** (asserted: < 0.1 % wrong; it is
//!    0). The model is a token bucket written independently, in integer
//!    arithmetic with no rounding: capacity `N · P` units, a request costs
//!    `P` units, refill `N` units per ms. Both run closed-loop on the same
//!    sequence (each counts the requests it allowed); a wrong decision is a
//!    request on which they disagree.
//! 2. **GCRA vs the exact sliding log** ("fewer than `N` accepted requests
//!    in `(t − P, t]`"), with the log fed GCRA's own accepted history, so
//!    the two are judged on the same past. Asserted: GCRA never limits a
//!    request the log accepts. Reported: how often GCRA accepts a request
//!    the log would limit (the refill-vs-window difference).
//! 3. **The sliding-window approximation vs the exact sliding log**, for
//!    the README: the approximation (`prev · (P − elapsed)/P + cur`), once
//!    fed the log's accepted history (the estimator's own error) and once
//!    closed-loop (each counts what it accepted). Reported, not asserted:
//!    this is the algorithm we did not choose.
//!
//! Also reported: requests accepted by GCRA ÷ requests accepted by the
//! closed-loop sliding log, i.e. how much more GCRA lets through, and the
//! most requests GCRA accepted inside one period (asserted below `2N`).
//!
//! Run with `--nocapture` to print the README table.

use std::collections::{HashMap, VecDeque};
use std::time::Duration;

use rampart_ratelimit::traffic::{edge_traffic, exp_ms};
use rampart_ratelimit::{
    CounterStore, Counting, Key, MemoryStore, MemoryStoreSettings, Quota, SharedState, SharedStore,
};

/// A request: (time in ms, key id).
type Request = (u64, u64);

struct Sequence {
    name: &'static str,
    quota: Quota,
    requests: Vec<Request>,
}

const N: usize = 200_000;

fn steady(quota: Quota, interval_ms: u64, name: &'static str) -> Sequence {
    Sequence {
        name,
        quota,
        requests: (0..N as u64).map(|i| (i * interval_ms, 0)).collect(),
    }
}

fn poisson(quota: Quota, mean_ms: f64, seed: u64, name: &'static str) -> Sequence {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut t = 0;
    let requests = (0..N)
        .map(|_| {
            t += exp_ms(&mut rng, mean_ms);
            (t, 0)
        })
        .collect();
    Sequence {
        name,
        quota,
        requests,
    }
}

/// Silence, then a burst of up to 3N requests arriving fast, repeated.
fn bursty(quota: Quota, seed: u64, name: &'static str) -> Sequence {
    let mut rng = fastrand::Rng::with_seed(seed);
    let period_ms = u64::from(quota.period_secs()) * 1000;
    let limit = u64::from(quota.requests_per_period());
    let mut t = 0;
    let mut requests = Vec::with_capacity(N);
    while requests.len() < N {
        t += rng.u64(0..2 * period_ms);
        let burst = rng.u64(1..=3 * limit);
        for _ in 0..burst {
            t += exp_ms(&mut rng, period_ms as f64 / limit as f64 / 20.0);
            requests.push((t, 0));
        }
    }
    requests.truncate(N);
    Sequence {
        name,
        quota,
        requests,
    }
}

/// 10,000 keys with Zipf-like popularity: a few keys far over the rate,
/// most far under it, all interleaved.
fn many_keys(quota: Quota, seed: u64, name: &'static str) -> Sequence {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut t = 0;
    let requests = (0..N)
        .map(|_| {
            t += exp_ms(&mut rng, 2.0);
            // key = floor(10000^u) − 1: log-uniform, so key 0 is hot.
            let u = rng.f64();
            let key = (10_000f64.powf(u) as u64).saturating_sub(1);
            (t, key)
        })
        .collect();
    Sequence {
        name,
        quota,
        requests,
    }
}

fn sequences() -> Vec<Sequence> {
    let q60 = Quota::new(60, 100, 0).unwrap();
    let q10 = Quota::new(10, 5, 0).unwrap();
    let q3600 = Quota::new(3600, 1000, 0).unwrap();
    vec![
        steady(q60, 750, "steady, 0.8× rate (60 s, 100)"),
        steady(q60, 400, "steady, 1.5× rate (60 s, 100)"),
        steady(q10, 2500, "steady, 0.8× rate (10 s, 5)"),
        steady(q10, 1500, "steady, 1.33× rate (10 s, 5)"),
        steady(
            Quota::new(60, 7, 0).unwrap(),
            7000,
            "steady, 1.22× rate (60 s, 7: 8571.43 ms per request)",
        ),
        poisson(q60, 500.0, 1, "Poisson, 1.2× rate (60 s, 100)"),
        poisson(q10, 2500.0, 2, "Poisson, 0.8× rate (10 s, 5)"),
        poisson(q3600, 3600.0, 3, "Poisson, 1× rate (3600 s, 1000)"),
        bursty(q60, 4, "bursty, bursts ≤ 3N at 20× rate (60 s, 100)"),
        bursty(q10, 5, "bursty, bursts ≤ 3N at 20× rate (10 s, 5)"),
        many_keys(
            Quota::new(10, 20, 0).unwrap(),
            6,
            "10,000 keys, Zipf-like (10 s, 20)",
        ),
        many_keys(
            Quota::new(60, 7, 0).unwrap(),
            7,
            "10,000 keys, Zipf-like (60 s, 7)",
        ),
    ]
}

/// Exact token bucket in integer units (see the module docs).
#[derive(Clone, Copy)]
struct TokenBucket {
    units: u128,
    last_ms: u64,
}

fn token_bucket_allows(b: &mut Option<TokenBucket>, q: &Quota, t: u64) -> bool {
    let n = u128::from(q.requests_per_period());
    let p = u128::from(q.period_secs()) * 1000;
    let cap = n * p;
    let b = b.get_or_insert(TokenBucket {
        units: cap,
        last_ms: t,
    });
    b.units = (b.units + u128::from(t - b.last_ms) * n).min(cap);
    b.last_ms = t;
    if b.units >= p {
        b.units -= p;
        true
    } else {
        false
    }
}

/// Exact sliding log: would a request at `t` be accepted given `log`?
fn log_allows(log: &mut VecDeque<u64>, q: &Quota, t: u64) -> bool {
    let p = u64::from(q.period_secs()) * 1000;
    while log.front().is_some_and(|&s| s + p <= t) {
        log.pop_front();
    }
    log.len() < q.requests_per_period() as usize
}

/// Fixed windows: (window index, count in previous window, count in current).
fn window_approx_allows(w: &mut (u64, u64, u64), q: &Quota, t: u64) -> bool {
    let p = u64::from(q.period_secs()) * 1000;
    let idx = t / p;
    if idx != w.0 {
        w.1 = if idx == w.0 + 1 { w.2 } else { 0 };
        w.2 = 0;
        w.0 = idx;
    }
    let elapsed = t % p;
    // prev · (p − elapsed)/p + cur + 1 ≤ N, in integers.
    w.1 * (p - elapsed) + (w.2 + 1) * p <= u64::from(q.requests_per_period()) * p
}

#[derive(Default)]
struct Tally {
    requests: u64,
    gcra_vs_bucket_wrong: u64,
    gcra_false_limits: u64,
    gcra_extra_allows: u64,
    window_vs_log_wrong: u64,
    window_closed_loop_wrong: u64,
    gcra_accepted: u64,
    log_accepted: u64,
    window_accepted: u64,
    /// Most requests GCRA accepted inside one period, any key.
    gcra_most_in_period: usize,
}

fn pct(n: u64, d: u64) -> f64 {
    100.0 * n as f64 / d as f64
}

fn run(seq: &Sequence) -> Tally {
    let store = MemoryStore::new(MemoryStoreSettings {
        max_keys: 20_000,
        shards: 16,
    });
    let q = &seq.quota;
    let mut buckets: HashMap<u64, Option<TokenBucket>> = HashMap::new();
    let mut gcra_logs: HashMap<u64, VecDeque<u64>> = HashMap::new();
    let mut logs: HashMap<u64, VecDeque<u64>> = HashMap::new();
    let mut windows: HashMap<u64, (u64, u64, u64)> = HashMap::new();
    let mut own_windows: HashMap<u64, (u64, u64, u64)> = HashMap::new();
    let mut tally = Tally::default();
    for &(t, k) in &seq.requests {
        tally.requests += 1;
        let gcra = store
            .check_and_hit(Key::from_hash(k), q, Duration::from_millis(t))
            .is_allowed();

        // 1. closed loop against the exact token bucket.
        if gcra != token_bucket_allows(buckets.entry(k).or_default(), q, t) {
            tally.gcra_vs_bucket_wrong += 1;
        }

        // 2. the log judges GCRA's own accepted history.
        let glog = gcra_logs.entry(k).or_default();
        let log_says = log_allows(glog, q, t);
        match (gcra, log_says) {
            (false, true) => tally.gcra_false_limits += 1,
            (true, false) => tally.gcra_extra_allows += 1,
            _ => {}
        }
        if gcra {
            glog.push_back(t);
            tally.gcra_most_in_period = tally.gcra_most_in_period.max(glog.len());
        }

        // 3. window approximation judged against the log, same history.
        let log = logs.entry(k).or_default();
        let exact = log_allows(log, q, t);
        let w = windows.entry(k).or_insert((0, 0, 0));
        if window_approx_allows(w, q, t) != exact {
            tally.window_vs_log_wrong += 1;
        }
        if exact {
            log.push_back(t);
            w.2 += 1;
            tally.log_accepted += 1;
        }

        // 4. window approximation on its own history vs the log on its own.
        let ow = own_windows.entry(k).or_insert((0, 0, 0));
        let approx = window_approx_allows(ow, q, t);
        if approx {
            ow.2 += 1;
            tally.window_accepted += 1;
        }
        if approx != exact {
            tally.window_closed_loop_wrong += 1;
        }
        if gcra {
            tally.gcra_accepted += 1;
        }
    }
    tally
}

#[test]
fn gcra_is_exact_and_never_stricter_than_the_sliding_log() {
    println!(
        "| sequence | requests | GCRA vs exact token bucket | GCRA limits, log accepts | GCRA accepts, log limits | accepted GCRA ÷ log | window approx. vs log, same history | window approx. vs log, closed loop | accepted window ÷ log | most GCRA accepted in one period (N) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    let mut total = Tally::default();
    for seq in sequences() {
        let t = run(&seq);
        println!(
            "| {} | {} | {:.3} % | {:.3} % | {:.3} % | {:.3} | {:.3} % | {:.3} % | {:.3} | {} ({}) |",
            seq.name,
            t.requests,
            pct(t.gcra_vs_bucket_wrong, t.requests),
            pct(t.gcra_false_limits, t.requests),
            pct(t.gcra_extra_allows, t.requests),
            t.gcra_accepted as f64 / t.log_accepted as f64,
            pct(t.window_vs_log_wrong, t.requests),
            pct(t.window_closed_loop_wrong, t.requests),
            t.window_accepted as f64 / t.log_accepted as f64,
            t.gcra_most_in_period,
            seq.quota.requests_per_period(),
        );
        assert!(
            t.gcra_vs_bucket_wrong * 1000 < t.requests,
            "{}: {} wrong of {}",
            seq.name,
            t.gcra_vs_bucket_wrong,
            t.requests
        );
        assert_eq!(t.gcra_false_limits, 0, "{}", seq.name);
        assert!(t.gcra_most_in_period < 2 * seq.quota.requests_per_period() as usize);
        total.requests += t.requests;
        total.gcra_vs_bucket_wrong += t.gcra_vs_bucket_wrong;
        total.gcra_extra_allows += t.gcra_extra_allows;
        total.window_vs_log_wrong += t.window_vs_log_wrong;
        total.window_closed_loop_wrong += t.window_closed_loop_wrong;
        total.gcra_accepted += t.gcra_accepted;
        total.log_accepted += t.log_accepted;
        total.window_accepted += t.window_accepted;
    }
    println!(
        "| **all** | {} | {:.3} % | {:.3} % | {:.3} % | {:.3} | {:.3} % | {:.3} % | {:.3} | |",
        total.requests,
        pct(total.gcra_vs_bucket_wrong, total.requests),
        0.0,
        pct(total.gcra_extra_allows, total.requests),
        total.gcra_accepted as f64 / total.log_accepted as f64,
        pct(total.window_vs_log_wrong, total.requests),
        pct(total.window_closed_loop_wrong, total.requests),
        total.window_accepted as f64 / total.log_accepted as f64,
    );
    assert!(total.gcra_vs_bucket_wrong * 1000 < total.requests);
}

// ---- Realistic edge traffic -------------------------------------------------------------
//
// The sequences above sit at or over the limit on purpose. At an edge, most clients are far
// under a rule's limit and a few are far over it; that mix is what the "fewer than 0.1 %
// wrong decisions" target is about (Cloudflare's published 0.003 % was measured on real
// traffic). No recording of real traffic is available offline, so this sequence is generated,
// with its parameters chosen for realism before measuring, and written down here:
//
// - 30 simulated minutes, 8,000 clients, one rule: 100 requests per 60 s per client IP (a
//   general per-IP rule, the kind sites put in front of everything).
// - 97 % browsers: sessions start as a Poisson process (mean one per 15 min per client);
//   a session is 1–12 page views (uniform); a page view is a burst of assets, log-normal in
//   size (median 12, capped at 90) 0–100 ms apart, then 2–60 s of reading (exponential, mean
//   20 s). Heavy sessions do approach the limit, as real ones do.
// - 2 % API clients polling steadily at 0.05–0.6 × the limit, with ±50 % jitter.
// - 1 % abusers: from a random start, for 1–20 minutes, Poisson at 3–50 × the limit.
//
// Each algorithm and the exact sliding log run closed loop (each counts what it accepted);
// a wrong decision is a request on which the algorithm and the log disagree. Both block
// modes are measured: a 600 s mitigation timeout (as in the login example) and throttling.
// Measured, not asserted (the test checks only that the mix does reach the limit, for
// abusers and for heavy legitimate sessions): the numbers are in the README.

/// Exact sliding log with a mitigation block: over the limit, the key is refused for
/// `timeout_ms` (refused requests are not counted).
fn log_with_block(log: &mut (VecDeque<u64>, u64), q: &Quota, timeout_ms: u64, t: u64) -> bool {
    if t < log.1 {
        return false;
    }
    if log_allows(&mut log.0, q, t) {
        log.0.push_back(t);
        true
    } else {
        if timeout_ms > 0 {
            log.1 = t + timeout_ms;
        }
        false
    }
}

/// The sliding-window approximation with the same block.
fn window_with_block(w: &mut ((u64, u64, u64), u64), q: &Quota, timeout_ms: u64, t: u64) -> bool {
    if t < w.1 {
        return false;
    }
    if window_approx_allows(&mut w.0, q, t) {
        w.0.2 += 1;
        true
    } else {
        if timeout_ms > 0 {
            w.1 = t + timeout_ms;
        }
        false
    }
}

#[derive(Default, Debug)]
struct EdgeTally {
    requests: u64,
    gcra_wrong: u64,
    window_wrong: u64,
    sliding_wrong: u64,
    /// Most requests the sliding-window mode accepted in one period, over all keys.
    sliding_most: usize,
    log_limited: u64,
    /// Requests of clients that are not abusers (browsers, API clients).
    legit: u64,
    legit_log_limited: u64,
    legit_gcra_wrong: u64,
    legit_window_wrong: u64,
    legit_sliding_wrong: u64,
}

fn run_edge(
    requests: &[Request],
    abusers: &std::collections::HashSet<u64>,
    q: &Quota,
) -> EdgeTally {
    let timeout_ms = match q.mitigation() {
        rampart_ratelimit::Mitigation::Block { timeout_secs } => u64::from(timeout_secs) * 1000,
        _ => 0,
    };
    let store = MemoryStore::new(MemoryStoreSettings {
        max_keys: 20_000,
        shards: 16,
    });
    let sliding_store = MemoryStore::new(MemoryStoreSettings {
        max_keys: 20_000,
        shards: 16,
    });
    let sliding_q = q.counted_by(Counting::SlidingWindow);
    let mut sliding_accepted = Vec::new();
    let mut logs: HashMap<u64, (VecDeque<u64>, u64)> = HashMap::new();
    let mut windows: HashMap<u64, ((u64, u64, u64), u64)> = HashMap::new();
    let mut tally = EdgeTally::default();
    for &(t, k) in requests {
        tally.requests += 1;
        let now = Duration::from_millis(t);
        let exact = log_with_block(logs.entry(k).or_default(), q, timeout_ms, t);
        let gcra = store.check_and_hit(Key::from_hash(k), q, now).is_allowed();
        let window = window_with_block(windows.entry(k).or_default(), q, timeout_ms, t);
        let sliding = sliding_store
            .check_and_hit(Key::from_hash(k), &sliding_q, now)
            .is_allowed();
        if sliding {
            sliding_accepted.push((t, k));
        }
        tally.gcra_wrong += u64::from(gcra != exact);
        tally.window_wrong += u64::from(window != exact);
        tally.sliding_wrong += u64::from(sliding != exact);
        tally.log_limited += u64::from(!exact);
        if !abusers.contains(&k) {
            tally.legit += 1;
            tally.legit_log_limited += u64::from(!exact);
            tally.legit_gcra_wrong += u64::from(gcra != exact);
            tally.legit_window_wrong += u64::from(window != exact);
            tally.legit_sliding_wrong += u64::from(sliding != exact);
        }
    }
    tally.sliding_most = most_in_a_window(&sliding_accepted, q.period_ms());
    tally
}

#[test]
fn edge_traffic_mix_against_the_sliding_log() {
    let (requests, abusers) = edge_traffic(42);
    println!(
        "| rule (edge traffic, {} requests) | limited by the log | GCRA vs log, all | window approx. vs log, all | sliding window vs log, all | legitimate clients' requests | of them limited by the log | GCRA vs log, legitimate | window approx. vs log, legitimate | sliding window vs log, legitimate | most accepted in one period, sliding window |",
        requests.len()
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for (name, q) in [
        ("100 / 60 s, 600 s block", Quota::new(60, 100, 600).unwrap()),
        ("100 / 60 s, throttle", Quota::new(60, 100, 0).unwrap()),
    ] {
        let t = run_edge(&requests, &abusers, &q);
        println!(
            "| {name} | {:.2} % | {:.3} % | {:.3} % | {:.3} % | {} | {:.3} % | {:.4} % | {:.4} % | {:.4} % | {} |",
            pct(t.log_limited, t.requests),
            pct(t.gcra_wrong, t.requests),
            pct(t.window_wrong, t.requests),
            pct(t.sliding_wrong, t.requests),
            t.legit,
            pct(t.legit_log_limited, t.legit),
            pct(t.legit_gcra_wrong, t.legit),
            pct(t.legit_window_wrong, t.legit),
            pct(t.legit_sliding_wrong, t.legit),
            t.sliding_most,
        );
        // The sliding-window mode's promise: never more than N in any period.
        assert!(t.sliding_most <= 100, "{}", t.sliding_most);
        assert!(
            t.log_limited > 0,
            "the sequence must reach the limit: {t:?}"
        );
        assert!(
            t.legit_log_limited > 0,
            "some heavy legitimate sessions must reach the limit too: {t:?}"
        );
        // Reported, not asserted: neither algorithm reaches 0.1 % here (see the README).
    }
}

/// The most requests accepted inside any window of `period_ms`, over all keys.
fn most_in_a_window(accepted: &[Request], period_ms: u64) -> usize {
    let mut per_key: HashMap<u64, VecDeque<u64>> = HashMap::new();
    let mut most = 0;
    for &(t, k) in accepted {
        let w = per_key.entry(k).or_default();
        while w.front().is_some_and(|&f| f + period_ms <= t) {
            w.pop_front();
        }
        w.push_back(t);
        most = most.max(w.len());
    }
    most
}

/// Three nodes behind a round-robin balancer: what each way of counting admits.
enum Fleet {
    /// Each node counts alone in its own memory store.
    Alone(Vec<MemoryStore>),
    /// Nodes share counters through an engine (the Rust twin of the Redis script), each
    /// syncing every 50 ms at its own offset.
    Shared(Vec<SharedStore>, HashMap<Key, SharedState>),
}

const SYNC_MS: u64 = 50;

impl Fleet {
    fn admit(&mut self, node: usize, k: u64, q: &Quota, t: u64) -> bool {
        let now = Duration::from_millis(t);
        match self {
            Fleet::Alone(stores) => stores[node]
                .check_and_hit(Key::from_hash(k), q, now)
                .is_allowed(),
            Fleet::Shared(stores, _) => stores[node]
                .check_and_hit(Key::from_hash(k), q, now)
                .is_allowed(),
        }
    }

    /// Runs the syncs due in `(from, to]`.
    fn sync_until(&mut self, from: u64, to: u64) {
        let Fleet::Shared(stores, engine) = self else {
            return;
        };
        let n = stores.len() as u64;
        let mut t = from - from % SYNC_MS;
        while t <= to {
            for (i, store) in stores.iter().enumerate() {
                let at = t + i as u64 * SYNC_MS / n;
                if at <= from || at > to {
                    continue;
                }
                let now = Duration::from_millis(at);
                let answers: Vec<_> = store
                    .take_batch(now)
                    .iter()
                    .map(|item| {
                        let s = engine.entry(item.key).or_default();
                        s.add(item, at);
                        (item.key, *s)
                    })
                    .collect();
                store.merge(&answers, now);
            }
            t += SYNC_MS;
        }
    }
}

#[test]
fn edge_traffic_over_three_nodes_sharing_counters() {
    let (mut requests, _) = edge_traffic(42);
    // Ten minutes of the mix.
    requests.retain(|&(t, _)| t < 10 * 60_000);
    println!(
        "| rule (10 min of edge traffic, {} requests, round robin over 3 nodes) | counting | wrong vs closed-loop log | accepted ÷ log | most accepted in one 60 s window |",
        requests.len()
    );
    println!("|---|---|---:|---:|---:|");
    let sliding = |q: Quota| q.counted_by(Counting::SlidingWindow);
    for (name, q) in [
        ("100 / 60 s, throttle", Quota::new(60, 100, 0).unwrap()),
        ("100 / 60 s, 600 s block", Quota::new(60, 100, 600).unwrap()),
        (
            "100 / 60 s, throttle, sliding window",
            sliding(Quota::new(60, 100, 0).unwrap()),
        ),
        (
            "100 / 60 s, 600 s block, sliding window",
            sliding(Quota::new(60, 100, 600).unwrap()),
        ),
    ] {
        let timeout_ms = match q.mitigation() {
            rampart_ratelimit::Mitigation::Block { timeout_secs } => u64::from(timeout_secs) * 1000,
            _ => 0,
        };
        let memory = || {
            MemoryStore::new(MemoryStoreSettings {
                max_keys: 20_000,
                shards: 16,
            })
        };
        let shared = || {
            let s = SharedStore::new(20_000);
            s.set_nodes(3);
            s
        };
        let fleets = [
            (
                "one node alone (reference)",
                Fleet::Alone(vec![memory()]),
                1,
            ),
            (
                "3 nodes, memory store each",
                Fleet::Alone(vec![memory(), memory(), memory()]),
                3,
            ),
            (
                "3 nodes, shared store, 50 ms syncs",
                Fleet::Shared(vec![shared(), shared(), shared()], HashMap::new()),
                3,
            ),
        ];
        let (mut most_alone, mut most_shared) = (0, 0);
        for (label, mut fleet, nodes) in fleets {
            let mut logs: HashMap<u64, (VecDeque<u64>, u64)> = HashMap::new();
            let (mut wrong, mut accepted_n, mut log_n) = (0u64, 0u64, 0u64);
            let mut accepted = Vec::new();
            let mut last = 0;
            for (i, &(t, k)) in requests.iter().enumerate() {
                fleet.sync_until(last, t);
                last = t;
                let exact = log_with_block(logs.entry(k).or_default(), &q, timeout_ms, t);
                let admitted = fleet.admit(i % nodes, k, &q, t);
                wrong += u64::from(admitted != exact);
                accepted_n += u64::from(admitted);
                log_n += u64::from(exact);
                if admitted {
                    accepted.push((t, k));
                }
            }
            let most = most_in_a_window(&accepted, 60_000);
            if label.contains("shared") {
                most_shared = most;
            } else if label.contains("alone") {
                most_alone = most;
            }
            println!(
                "| {name} | {label} | {:.3} % | {:.3} | {most} |",
                pct(wrong, requests.len() as u64),
                accepted_n as f64 / log_n as f64,
            );
        }
        if q.counting() == Counting::SlidingWindow {
            // Never more than N in a period on one node; a fleet within the N + 1.
            assert!(most_alone <= 100, "{most_alone}");
            assert!(most_shared <= 101, "{most_shared}");
        } else {
            // One node's GCRA bound (a burst and a refill within one period, < 2N) plus at
            // most a token per other node at the sync lag: not three nodes' worth.
            assert!(most_alone < 200, "{most_alone}");
            assert!(
                most_shared <= most_alone + 2,
                "{most_shared} vs {most_alone}"
            );
        }
    }
}
