//! Cost of one `check_and_hit` on the in-memory store and on a fleet's shared store (its
//! local view: what a request pays), and of taking a sync batch.
//!
//! Run: `cargo bench -p rampart-ratelimit --bench limiter -- --warm-up-time 1 --measurement-time 3`

use std::hint::black_box;
use std::time::Duration;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_ratelimit::{
    CounterStore, Counting, Key, KeyBuilder, MemoryStore, MemoryStoreSettings, Quota, SharedStore,
};

const MILLION: u64 = 1_000_000;

fn quota() -> Quota {
    Quota::new(60, 100, 0).expect("valid quota")
}

fn hot_key(c: &mut Criterion) {
    let sliding = quota().counted_by(Counting::SlidingWindow);
    for (name, q) in [
        ("check_and_hit/hot_key", quota()),
        ("check_and_hit/hot_key_sliding_window", sliding),
    ] {
        let store = MemoryStore::default();
        let key = Key::from_hash(7);
        let mut now_ms = 0u64;
        c.bench_function(name, |b| {
            b.iter(|| {
                now_ms += 1;
                black_box(store.check_and_hit(black_box(key), &q, Duration::from_millis(now_ms)))
            })
        });
    }
}

fn million_keys(c: &mut Criterion) {
    let store = MemoryStore::default();
    let q = quota();
    let now = Duration::from_secs(1);
    for k in 0..MILLION {
        store.check_and_hit(Key::from_hash(k), &q, now);
    }
    let mut rng = fastrand::Rng::with_seed(1);
    c.bench_function("check_and_hit/1M_keys_random", |b| {
        b.iter(|| {
            let key = Key::from_hash(rng.u64(0..MILLION));
            black_box(store.check_and_hit(key, &q, now))
        })
    });
}

fn shared_store(c: &mut Criterion) {
    let q = quota();
    let store = SharedStore::new(MILLION as usize);
    store.set_nodes(3);
    let key = Key::from_hash(7);
    let mut now_ms = 0u64;
    c.bench_function("shared/check_and_hit/hot_key", |b| {
        b.iter(|| {
            now_ms += 1;
            black_box(store.check_and_hit(black_box(key), &q, Duration::from_millis(now_ms)))
        })
    });
    let sliding = q.counted_by(Counting::SlidingWindow);
    let sliding_key = Key::from_hash(8);
    c.bench_function("shared/check_and_hit/hot_key_sliding_window", |b| {
        b.iter(|| {
            now_ms += 1;
            let now = Duration::from_millis(now_ms);
            black_box(store.check_and_hit(black_box(sliding_key), &sliding, now))
        })
    });
    let now = Duration::from_secs(1);
    for k in 0..MILLION {
        store.check_and_hit(Key::from_hash(k), &q, now);
    }
    let mut rng = fastrand::Rng::with_seed(1);
    c.bench_function("shared/check_and_hit/1M_keys_random", |b| {
        b.iter(|| {
            let key = Key::from_hash(rng.u64(0..MILLION));
            black_box(store.check_and_hit(key, &q, now))
        })
    });
    // A sync's batch of 1,000 keys used since the previous one (of the million held).
    c.bench_function("shared/take_batch/1000_keys", |b| {
        b.iter(|| {
            for k in 0..1000 {
                store.check_and_hit(Key::from_hash(k * 997), &q, now);
            }
            black_box(store.take_batch(now).len())
        })
    });
}

fn eviction_pressure(c: &mut Criterion) {
    // 100,000 slots, every request a new key: each insert evicts.
    let store = MemoryStore::new(MemoryStoreSettings {
        max_keys: 100_000,
        ..MemoryStoreSettings::default()
    });
    let q = quota();
    let now = Duration::from_secs(1);
    let mut next = 0u64;
    for _ in 0..200_000 {
        next += 1;
        store.check_and_hit(Key::from_hash(next), &q, now);
    }
    c.bench_function("check_and_hit/new_key_evicts", |b| {
        b.iter(|| {
            next += 1;
            black_box(store.check_and_hit(Key::from_hash(next), &q, now))
        })
    });
}

fn key_builder(c: &mut Criterion) {
    let keys = KeyBuilder::new();
    c.bench_function("key_builder/rule+ip+path", |b| {
        b.iter(|| {
            black_box(keys.key(&[
                black_box(b"rule-7".as_slice()),
                b"203.0.113.7",
                b"/api/v1/login",
            ]))
        })
    });
}

/// Two threads (the machine's two cores) on random keys among 1,000,000:
/// reported time is wall time per operation across both threads.
fn two_threads(c: &mut Criterion) {
    let store = MemoryStore::default();
    let q = quota();
    let now = Duration::from_secs(1);
    for k in 0..MILLION {
        store.check_and_hit(Key::from_hash(k), &q, now);
    }
    c.bench_function("check_and_hit/1M_keys_random_2_threads", |b| {
        b.iter_custom(|iters| {
            let start = std::time::Instant::now();
            std::thread::scope(|s| {
                for seed in 0..2 {
                    let store = &store;
                    s.spawn(move || {
                        let mut rng = fastrand::Rng::with_seed(seed);
                        for _ in 0..iters / 2 {
                            let key = Key::from_hash(rng.u64(0..MILLION));
                            black_box(store.check_and_hit(key, &q, now));
                        }
                    });
                }
            });
            start.elapsed()
        })
    });
}

criterion_group!(
    benches,
    hot_key,
    million_keys,
    eviction_pressure,
    key_builder,
    shared_store,
    two_threads
);
criterion_main!(benches);
