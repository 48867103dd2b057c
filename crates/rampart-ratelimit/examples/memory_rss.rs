//! Reports the resident memory of a default `MemoryStore` (1,000,000 keys)
//! before and after an attacker sends requests from 3,000,000 distinct
//! keys.
//!
//! Run: `cargo run --release -p rampart-ratelimit --example memory_rss`
//! (Linux: reads `VmRSS` from `/proc/self/status`).

use std::time::Duration;

use rampart_ratelimit::{CounterStore, Key, KeyBuilder, MemoryStore, Quota};

fn rss_kib() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn mib(kib: Option<u64>) -> String {
    kib.map_or_else(|| "n/a".into(), |k| format!("{:.1} MiB", k as f64 / 1024.0))
}

fn main() {
    let before = rss_kib();
    let store = MemoryStore::default();
    let built = rss_kib();
    let quota = Quota::new(3600, 10, 0).expect("valid quota");
    let keys = KeyBuilder::new();
    for i in 0u64..3_000_000 {
        let key: Key = keys.key(&[b"rule-1", &i.to_le_bytes()]);
        store.check_and_hit(key, &quota, Duration::from_millis(i / 10));
    }
    let after = rss_kib();
    println!("max_keys             {}", store.max_keys());
    println!("keys held            {}", store.len());
    println!(
        "table accounting     {:.1} MiB",
        store.memory_bytes() as f64 / (1 << 20) as f64
    );
    println!("RSS before store     {}", mib(before));
    println!("RSS after new()      {}", mib(built));
    println!("RSS after 3M keys    {}", mib(after));
    if let (Some(b), Some(a)) = (before, after) {
        println!("RSS growth           {}", mib(Some(a - b)));
    }
}
