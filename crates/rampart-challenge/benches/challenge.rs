//! The per-request costs of challenges: checking a clearance cookie (every request to a
//! challenged zone that has one), the Browser Integrity Check (every request of a zone that
//! has it on), and verifying a solution (once per solved challenge).

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use rampart_challenge::bic::{Seen, check};
use rampart_challenge::{Client, Issue, Keys, solved};

const UA: &[u8] = b"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

fn benches(c: &mut Criterion) {
    let keys = Keys::new(&[b"0123456789abcdef0123456789abcdef-bench"]).unwrap();
    let client = Client {
        ip: "198.51.100.20".parse().unwrap(),
        user_agent: UA,
    };
    let now = 1_796_385_600;
    let cookie = keys.clearance("shop", &client, now + 1800);
    c.bench_function("clearance: check a valid cookie", |b| {
        b.iter(|| {
            keys.check_clearance(black_box(cookie.as_bytes()), "shop", &client, now)
                .unwrap()
        })
    });
    let headers: Vec<(&[u8], &[u8])> = vec![
        (b"host", b"shop.test"),
        (b"user-agent", UA),
        (
            b"accept",
            b"text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8",
        ),
        (b"accept-language", b"en-GB,en;q=0.9"),
        (b"accept-encoding", b"gzip, deflate, br, zstd"),
        (
            b"sec-ch-ua",
            b"\"Chromium\";v=\"131\", \"Google Chrome\";v=\"131\"",
        ),
        (b"cookie", b"session=abc"),
    ];
    c.bench_function("bic: a real browser's headers", |b| {
        b.iter(|| check(&Seen::of(black_box(&headers).iter().copied())))
    });
    let token = keys.challenge(&Issue {
        zone: "shop",
        return_to: "/",
        client,
        now,
        nonce: 7,
        difficulty: 16,
        wait_secs: 0,
    });
    let counter = (0u64..)
        .map(|n| n.to_string())
        .find(|c| solved(&token, c, 16))
        .unwrap();
    c.bench_function(
        "challenge: verify a solution (signature and proof of work)",
        |b| {
            b.iter(|| {
                let checked = keys
                    .check_challenge(black_box(&token), "shop", "/", &client, now)
                    .unwrap();
                checked.accepts(&token, &counter, now).unwrap()
            })
        },
    );
}

criterion_group!(group, benches);
criterion_main!(group);
