//! The cost of finding a cached response: building its key from a request and looking it up
//! in a warm store of 1,000,000 keys (the bound: under 300 ns), for keys drawn
//! uniformly (each lookup a few cache misses: the index's control bytes, its entry, the
//! object's reference count) and for a hot set that stays in the CPU caches.

use std::hint::black_box;

use bytes::Bytes;
use criterion::{Criterion, criterion_group, criterion_main};
use rampart_cache::key::{self, KeyRequest, KeySpec};
use rampart_cache::object::{Fields, Meta, Object};
use rampart_cache::store::Store;

const KEYS: usize = 1_000_000;

fn request(i: usize) -> (String, String) {
    (format!("/static/app-{i}.js"), format!("v={}", i % 7))
}

fn key_of(path: &str, query: &str) -> String {
    let r = KeyRequest {
        zone: "example.com",
        scheme: "https",
        host: "www.example.com",
        path,
        query: Some(query),
    };
    key::build(&r, &KeySpec::default(), |_| None, |_| None)
}

fn bench(c: &mut Criterion) {
    let store = Store::new(4 << 30);
    for i in 0..KEYS {
        let (path, query) = request(i);
        let object = Object {
            encoded: Default::default(),
            status: 200,
            fields: Fields::new([(&b"content-type"[..], &b"text/javascript"[..])]),
            body: Bytes::from_static(b"ok\n"),
            meta: Meta::default(),
        };
        store.insert(&key_of(&path, &query), object, |_| None);
    }
    assert_eq!(store.len(), KEYS);
    let mut i = 0usize;
    c.bench_function("key + lookup, 1M keys, hit", |b| {
        b.iter(|| {
            i = (i + 7_919) % KEYS;
            let (path, query) = request(i);
            let key = key_of(black_box(&path), black_box(&query));
            black_box(store.get(&key, |_| None).is_some())
        })
    });
    let mut j = 0usize;
    c.bench_function("lookup only, 1M keys, hit", |b| {
        let keys: Vec<String> = (0..10_000)
            .map(|i| {
                let (p, q) = request(i * 97);
                key_of(&p, &q)
            })
            .collect();
        b.iter(|| {
            j = (j + 1) % keys.len();
            black_box(store.get(black_box(&keys[j]), |_| None).is_some())
        })
    });
    // Traffic is skewed: most hits are of a few popular objects, whose entries stay in the CPU
    // caches. 1,000 keys looked up in turn, in the same store of 1,000,000.
    let mut h = 0usize;
    c.bench_function("key + lookup, 1M keys, hit on a hot set of 1,000", |b| {
        b.iter(|| {
            h = (h + 1) % 1_000;
            let (path, query) = request(h * 997);
            let key = key_of(black_box(&path), black_box(&query));
            black_box(store.get(&key, |_| None).is_some())
        })
    });
    c.bench_function("building the request strings alone", |b| {
        b.iter(|| {
            i = (i + 7_919) % KEYS;
            black_box(request(i))
        })
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
