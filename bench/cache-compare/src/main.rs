//! One store per process (`cache-compare STORE`), so that each one's memory is measured
//! alone: 1,000,000 small objects stored under keys as rampart builds them, then lookups
//! that hit, drawn uniformly over the million and from a hot set of 1,000. Prints one JSON
//! line: the median nanoseconds per lookup over 21 batches of 200,000, and the resident
//! memory each entry added.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::hint::black_box;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use rampart_cache::object::{Fields, Meta, Object};
use rampart_cache::store::Store;

const KEYS: usize = 1_000_000;
const BATCH: usize = 200_000;
const BATCHES: usize = 21;

fn key(i: usize) -> String {
    format!(
        "example.com\nhttps\nwww.example.com\n/static/app-{i}.js\nv={}",
        i % 7
    )
}

fn object() -> Object {
    Object {
        encoded: Default::default(),
        status: 200,
        fields: Fields::new([(&b"content-type"[..], &b"text/javascript"[..])]),
        body: Bytes::from_static(b"ok\n"),
        meta: Meta::default(),
    }
}

/// Resident memory of this process, in bytes (Linux).
fn rss() -> usize {
    let status = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: usize = status
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

/// Median nanoseconds per call of `f(i)` over the batches.
fn median_ns(mut f: impl FnMut(usize) -> bool) -> f64 {
    let mut per = Vec::with_capacity(BATCHES);
    let mut i = 0usize;
    for _ in 0..BATCHES {
        let start = Instant::now();
        let mut hits = 0usize;
        for _ in 0..BATCH {
            i = i.wrapping_add(1);
            hits += usize::from(f(i));
        }
        assert_eq!(hits, BATCH, "every lookup must hit");
        per.push(start.elapsed().as_nanos() as f64 / BATCH as f64);
    }
    per.sort_by(f64::total_cmp);
    per[BATCHES / 2]
}

fn main() {
    let which = std::env::args().nth(1).unwrap_or_default();
    let keys: Vec<String> = (0..KEYS).map(key).collect();
    let before = rss();
    let lookup: Box<dyn Fn(&str) -> bool> = match which.as_str() {
        "rampart" => {
            let store = Store::new(4 << 30);
            for k in &keys {
                store.insert(k, object(), |_| None);
            }
            Box::new(move |k| black_box(store.get(k, |_| None)).is_some())
        }
        "moka" => {
            let cache: moka::sync::Cache<String, Arc<Object>> =
                moka::sync::Cache::new(KEYS as u64 * 2);
            for k in &keys {
                cache.insert(k.clone(), Arc::new(object()));
            }
            cache.run_pending_tasks();
            Box::new(move |k| black_box(cache.get(k)).is_some())
        }
        "foyer" => {
            let cache: foyer::Cache<String, Arc<Object>> =
                foyer::CacheBuilder::new(KEYS * 2).build();
            for k in &keys {
                cache.insert(k.clone(), Arc::new(object()));
            }
            Box::new(move |k| black_box(cache.get(k)).is_some())
        }
        "hashmap" => {
            // The floor: one unsynchronised map, the key hashed once, the object's count
            // raised. No lock, no eviction bookkeeping, no key check.
            let hasher = foldhash::quality::RandomState::default();
            let mut map: HashMap<u64, Arc<Object>, _> =
                HashMap::with_capacity_and_hasher(KEYS, rustc_identity());
            for k in &keys {
                map.insert(hasher.hash_one(k), Arc::new(object()));
            }
            Box::new(move |k| black_box(map.get(&hasher.hash_one(k)).cloned()).is_some())
        }
        other => panic!("unknown store `{other}`: rampart | moka | foyer | hashmap"),
    };
    let per_entry = rss().saturating_sub(before) / KEYS;
    let uniform = median_ns(|i| lookup(&keys[i.wrapping_mul(7_919) % KEYS]));
    let hot = median_ns(|i| lookup(&keys[(i % 1_000) * 997]));
    println!(
        "{{\"store\": \"{which}\", \"uniform_ns\": {uniform:.0}, \"hot_ns\": {hot:.0}, \"rss_per_entry_bytes\": {per_entry}}}"
    );
}

/// A map hasher that passes the precomputed 64-bit hash through.
fn rustc_identity() -> std::hash::BuildHasherDefault<Identity> {
    Default::default()
}

#[derive(Default)]
struct Identity(u64);

impl std::hash::Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys")
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}
