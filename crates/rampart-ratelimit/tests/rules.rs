//! Rate limiting rule semantics, one test per rule, through the public API.

use std::time::Duration;

use rampart_ratelimit::{
    CounterStore, Decision, Key, MemoryStore, MemoryStoreSettings, Quota, RateLimitStatus,
};

fn ms(v: u64) -> Duration {
    Duration::from_millis(v)
}

fn secs(v: u64) -> Duration {
    Duration::from_secs(v)
}

fn store() -> MemoryStore {
    MemoryStore::new(MemoryStoreSettings {
        max_keys: 10_000,
        shards: 4,
    })
}

const K: Key = Key::from_hash(1);

fn retry(d: Decision) -> u64 {
    d.retry_after_secs()
        .unwrap_or_else(|| panic!("expected Limit, got {d:?}"))
}

#[test]
fn throttle_allows_exactly_the_limit_then_limits_limit_plus_one() {
    let s = store();
    let q = Quota::new(60, 3, 0).unwrap();
    for expected_remaining in [2, 1, 0] {
        let d = s.check_and_hit(K, &q, secs(100));
        assert_eq!(
            d,
            Decision::Allow(RateLimitStatus {
                limit: 3,
                window_secs: 60,
                remaining: expected_remaining,
                // One request's worth of refill (20 s) per request counted.
                reset_secs: 20 * (3 - u64::from(expected_remaining)),
            })
        );
    }
    let d = s.check_and_hit(K, &q, secs(100));
    assert_eq!(
        d,
        Decision::Limit {
            retry_after_secs: 20,
            status: RateLimitStatus {
                limit: 3,
                window_secs: 60,
                remaining: 0,
                reset_secs: 60
            }
        }
    );
}

#[test]
fn throttle_retry_after_is_the_exact_wait_rounded_up() {
    let s = store();
    let q = Quota::new(60, 3, 0).unwrap();
    for _ in 0..3 {
        s.check_and_hit(K, &q, secs(100));
    }
    // The next token comes back at 120 s.
    assert_eq!(retry(s.check_and_hit(K, &q, ms(100_500))), 20);
    assert_eq!(retry(s.check_and_hit(K, &q, ms(101_000))), 19);
    assert_eq!(retry(s.check_and_hit(K, &q, ms(119_001))), 1);
    assert_eq!(retry(s.check_and_hit(K, &q, ms(119_999))), 1);
    assert!(s.check_and_hit(K, &q, ms(120_000)).is_allowed());
    // And then one token every 20 s.
    assert_eq!(retry(s.check_and_hit(K, &q, ms(120_000))), 20);
}

#[test]
fn throttle_retry_after_is_exact_when_the_interval_is_not_whole_milliseconds() {
    // 10 s / 3 = 3333.33 ms between tokens.
    let s = store();
    let q = Quota::new(10, 3, 0).unwrap();
    for _ in 0..3 {
        assert!(s.check_and_hit(K, &q, ms(0)).is_allowed());
    }
    assert_eq!(retry(s.check_and_hit(K, &q, ms(0))), 4);
    assert_eq!(retry(s.check_and_hit(K, &q, ms(3333))), 1);
    assert!(s.check_and_hit(K, &q, ms(3334)).is_allowed());
    // Second token back at 6666.67 ms, third at 10 000 ms.
    assert!(!s.check_and_hit(K, &q, ms(6666)).is_allowed());
    assert!(s.check_and_hit(K, &q, ms(6667)).is_allowed());
    assert!(!s.check_and_hit(K, &q, ms(9999)).is_allowed());
    assert!(s.check_and_hit(K, &q, ms(10_000)).is_allowed());
}

#[test]
fn throttled_client_gets_exactly_the_rate_through() {
    // A client sending 10 requests a second against 60 per minute: limited
    // requests are not counted, so exactly one per second goes through
    // after the initial burst of 60.
    let s = store();
    let q = Quota::new(60, 60, 0).unwrap();
    let mut allowed = 0;
    for i in 0..6000 {
        if s.check_and_hit(K, &q, ms(i * 100)).is_allowed() {
            allowed += 1;
        }
    }
    assert_eq!(allowed, 60 + 599);
}

#[test]
fn mitigation_blocks_for_the_timeout_from_the_first_request_over_the_limit() {
    let s = store();
    let q = Quota::new(60, 3, 600).unwrap();
    for _ in 0..3 {
        assert!(s.check_and_hit(K, &q, secs(1000)).is_allowed());
    }
    let d = s.check_and_hit(K, &q, secs(1001));
    assert_eq!(
        d,
        Decision::Limit {
            retry_after_secs: 600,
            status: RateLimitStatus {
                limit: 3,
                window_secs: 60,
                remaining: 0,
                reset_secs: 600
            }
        }
    );
    // Requests during the block are limited, not counted, and do not extend it.
    assert_eq!(retry(s.check_and_hit(K, &q, ms(1_300_500))), 301);
    assert_eq!(retry(s.check_and_hit(K, &q, ms(1_600_999))), 1);
    // Block over at 1601 s; the bucket refilled meanwhile.
    let d = s.check_and_hit(K, &q, secs(1601));
    assert_eq!(d.status().remaining, 2);
}

#[test]
fn mitigation_at_limit_is_allowed_and_at_limit_plus_one_blocked() {
    let s = store();
    let q = Quota::new(10, 2, 60).unwrap();
    assert!(s.check_and_hit(K, &q, secs(5)).is_allowed());
    assert!(s.check_and_hit(K, &q, secs(5)).is_allowed());
    assert_eq!(retry(s.check_and_hit(K, &q, secs(5))), 60);
}

#[test]
fn mitigation_shorter_than_the_refill_reports_the_longer_wait() {
    // 1 request per hour, blocked 10 s: after the block the bucket is still
    // empty, so Retry-After is the time the token comes back.
    let s = store();
    let q = Quota::new(3600, 1, 10).unwrap();
    assert!(s.check_and_hit(K, &q, secs(0)).is_allowed());
    assert_eq!(retry(s.check_and_hit(K, &q, secs(1))), 3599);
    assert_eq!(retry(s.check_and_hit(K, &q, secs(20))), 3580);
    assert!(s.check_and_hit(K, &q, secs(3600)).is_allowed());
}

#[test]
fn check_does_not_count() {
    let s = store();
    let q = Quota::new(60, 2, 0).unwrap();
    for _ in 0..10 {
        assert_eq!(s.check(K, &q, secs(1)).status().remaining, 2);
    }
    assert!(s.is_empty(), "a check on a never-seen key stores nothing");
}

#[test]
fn count_only_rule_checks_before_and_hits_after_the_response() {
    // E.g. 2 failed logins per minute: check before the origin, hit when the
    // response matched the counting expression.
    let s = store();
    let q = Quota::new(60, 2, 0).unwrap();
    assert!(s.check(K, &q, secs(1)).is_allowed());
    assert_eq!(s.hit(K, &q, secs(1)).remaining, 1);
    assert!(s.check(K, &q, secs(2)).is_allowed());
    assert_eq!(s.hit(K, &q, secs(2)).remaining, 0);
    // Third attempt: limited until the first token comes back at 31 s.
    assert_eq!(retry(s.check(K, &q, secs(3))), 28);
}

#[test]
fn hits_beyond_the_quota_do_not_deepen_the_wait() {
    let s = store();
    let q = Quota::new(60, 2, 0).unwrap();
    for _ in 0..50 {
        s.hit(K, &q, secs(0));
    }
    assert_eq!(retry(s.check(K, &q, secs(0))), 30);
    assert_eq!(s.check(K, &q, secs(0)).status().reset_secs, 60);
}

#[test]
fn hit_never_starts_a_mitigation_but_the_next_check_does() {
    let s = store();
    let q = Quota::new(60, 1, 3600).unwrap();
    s.hit(K, &q, secs(0));
    s.hit(K, &q, secs(0));
    assert_eq!(retry(s.check(K, &q, secs(0))), 3600);
    assert_eq!(retry(s.check(K, &q, secs(100))), 3500);
}

#[test]
fn quota_refills_continuously_across_period_boundaries() {
    let s = store();
    let q = Quota::new(60, 6, 0).unwrap();
    for _ in 0..6 {
        s.check_and_hit(K, &q, secs(50));
    }
    // Half a period later half the quota is back, whatever the wall-clock
    // minute: there are no fixed windows to roll over.
    assert_eq!(s.check(K, &q, secs(80)).status().remaining, 3);
    assert_eq!(s.check(K, &q, secs(80)).status().reset_secs, 30);
    assert_eq!(s.check(K, &q, secs(110)).status().remaining, 6);
    assert_eq!(s.check(K, &q, secs(110)).status().reset_secs, 0);
}

#[test]
fn keys_are_independent() {
    let s = store();
    let q = Quota::new(10, 1, 0).unwrap();
    for k in 0..5000 {
        assert!(s.check_and_hit(Key::from_hash(k), &q, secs(1)).is_allowed());
    }
    for k in 0..5000 {
        assert_eq!(retry(s.check_and_hit(Key::from_hash(k), &q, secs(1))), 10);
    }
    assert_eq!(s.len(), 5000);
}

#[test]
fn concurrent_hits_on_one_key_allow_exactly_the_quota() {
    let s = MemoryStore::default();
    let q = Quota::new(60, 1000, 0).unwrap();
    let allowed: usize = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..4)
            .map(|_| {
                scope.spawn(|| {
                    (0..1000)
                        .filter(|_| s.check_and_hit(K, &q, secs(1)).is_allowed())
                        .count()
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).sum()
    });
    assert_eq!(allowed, 1000);
}

#[test]
fn an_attack_from_millions_of_keys_stays_within_max_keys_and_memory() {
    let s = MemoryStore::default();
    let bytes = s.memory_bytes();
    assert!(bytes < 128 << 20);
    // One request per key; each key's state lives for 6 minutes, so none
    // expires during the attack and every insert past a million evicts.
    let q = Quota::new(3600, 10, 0).unwrap();
    for k in 0..1_500_000u64 {
        assert!(
            s.check_and_hit(Key::from_hash(k), &q, ms(k / 100))
                .is_allowed()
        );
    }
    assert_eq!(s.len(), 1_000_000);
    assert_eq!(s.memory_bytes(), bytes);
}

#[test]
fn extreme_and_backward_times_never_panic() {
    let s = store();
    let q = Quota::new(10, MAX, 86_400).unwrap();
    let q1 = Quota::new(10, 1, 86_400).unwrap();
    for now in [
        Duration::MAX,
        Duration::ZERO,
        secs(u64::MAX / 2000),
        ms(5),
        Duration::MAX,
    ] {
        for quota in [&q, &q1] {
            s.check_and_hit(K, quota, now);
            s.check(K, quota, now);
            s.hit(K, quota, now);
        }
    }
}

const MAX: u32 = rampart_ratelimit::MAX_REQUESTS_PER_PERIOD;
