//! Top-N by the space-saving algorithm (Metwally, Agrawal and El Abbadi, 2005): the most
//! frequent values of a stream in a fixed number of counters.
//!
//! `k` counters. A value already counted is incremented; a new value takes a free counter,
//! or else replaces the smallest counter's value and inherits its count plus one, remembering
//! that count as its possible overestimate (`error`). Guarantees, for a stream of `n` values:
//! every value seen more than `n / k` times holds a counter, and each counter's count is at
//! most `error` above the true count (never below).

use std::collections::HashMap;

/// The index's hash: fast on long strings (paths, user agents); a table of at most
/// `capacity` entries has nothing for a flood of colliding keys to grow.
type Index = HashMap<String, usize, foldhash::fast::RandomState>;

/// One counted value: `count` is at most `error` over the true count.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Counted {
    /// The value.
    pub value: String,
    /// Its count, an upper bound.
    pub count: u64,
    /// How much of `count` may be someone else's.
    pub error: u64,
}

/// A space-saving summary of at most `capacity` values.
#[derive(Debug, Clone)]
pub struct SpaceSaving {
    capacity: usize,
    counters: Vec<Counted>,
    index: Index,
}

impl SpaceSaving {
    /// An empty summary keeping `capacity` counters (at least 1).
    pub fn new(capacity: usize) -> SpaceSaving {
        SpaceSaving {
            capacity: capacity.max(1),
            counters: Vec::new(),
            index: Index::default(),
        }
    }

    /// Counts `value` `n` times.
    pub fn add(&mut self, value: &str, n: u64) {
        self.add_with_error(value, n, 0);
    }

    fn add_with_error(&mut self, value: &str, n: u64, error: u64) {
        if let Some(&i) = self.index.get(value) {
            self.counters[i].count += n;
            self.counters[i].error += error;
            return;
        }
        if self.counters.len() < self.capacity {
            self.index.insert(value.to_owned(), self.counters.len());
            self.counters.push(Counted {
                value: value.to_owned(),
                count: n,
                error,
            });
            return;
        }
        // The smallest counter gives its place; its count is the newcomer's possible error.
        let (i, min) = self
            .counters
            .iter()
            .enumerate()
            .min_by_key(|(_, c)| c.count)
            .map(|(i, c)| (i, c.count))
            .expect("capacity is at least 1");
        let old = std::mem::replace(
            &mut self.counters[i],
            Counted {
                value: value.to_owned(),
                count: min + n,
                error: min + error,
            },
        );
        self.index.remove(&old.value);
        self.index.insert(value.to_owned(), i);
    }

    /// Puts back a counter read from storage (as [`SpaceSaving::top`] gave it).
    pub fn restore(&mut self, c: Counted) {
        self.add_with_error(&c.value, c.count, c.error);
    }

    /// Adds another summary's counts (of a disjoint part of the stream): the result keeps
    /// both guarantees for the whole (the mergeable summary of Agarwal et al., 2012). A value
    /// one side does not hold may still have been seen there up to that side's smallest count
    /// (when it is full): that much is added to the count and to the error.
    pub fn merge(&mut self, other: &SpaceSaving) {
        let floor = |s: &SpaceSaving| {
            if s.counters.len() < s.capacity {
                0
            } else {
                s.counters.iter().map(|c| c.count).min().unwrap_or(0)
            }
        };
        let (mine, theirs) = (floor(self), floor(other));
        let mut all: Vec<Counted> = self
            .counters
            .iter()
            .map(|c| match other.index.get(&c.value) {
                Some(&i) => Counted {
                    value: c.value.clone(),
                    count: c.count + other.counters[i].count,
                    error: c.error + other.counters[i].error,
                },
                None => Counted {
                    value: c.value.clone(),
                    count: c.count + theirs,
                    error: c.error + theirs,
                },
            })
            .collect();
        for c in &other.counters {
            if !self.index.contains_key(&c.value) {
                all.push(Counted {
                    value: c.value.clone(),
                    count: c.count + mine,
                    error: c.error + mine,
                });
            }
        }
        all.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        all.truncate(self.capacity);
        self.index = all
            .iter()
            .enumerate()
            .map(|(i, c)| (c.value.clone(), i))
            .collect();
        self.counters = all;
    }

    /// The counted values, most frequent first (ties by value, for a stable order).
    pub fn top(&self) -> Vec<Counted> {
        let mut out = self.counters.clone();
        out.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.value.cmp(&b.value)));
        out
    }

    /// Whether nothing was counted.
    pub fn is_empty(&self) -> bool {
        self.counters.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heavy_hitters_are_kept_and_counts_bound_the_truth_from_above() {
        let mut rng = fastrand::Rng::with_seed(3);
        let mut exact: HashMap<String, u64> = HashMap::new();
        let mut s = SpaceSaving::new(20);
        let n = 50_000u64;
        for _ in 0..n {
            // Zipf-like: a few hot paths and a long tail.
            let v = match rng.u32(0..100) {
                0..=29 => "/".to_owned(),
                30..=44 => "/app.js".to_owned(),
                45..=54 => "/login".to_owned(),
                _ => format!("/item/{}", rng.u32(0..5_000)),
            };
            *exact.entry(v.clone()).or_default() += 1;
            s.add(&v, 1);
        }
        let top = s.top();
        assert_eq!(top[0].value, "/");
        assert_eq!(top[1].value, "/app.js");
        assert_eq!(top[2].value, "/login");
        for (value, &count) in &exact {
            let kept = top.iter().find(|c| &c.value == value);
            if count > n / 20 {
                assert!(kept.is_some(), "{value} seen {count} times is not kept");
            }
            if let Some(c) = kept {
                assert!(
                    c.count >= count && c.count - c.error <= count,
                    "{c:?} vs {count}"
                );
            }
        }
    }

    #[test]
    fn merging_two_halves_keeps_the_guarantees() {
        let (mut a, mut b) = (SpaceSaving::new(4), SpaceSaving::new(4));
        for i in 0..100 {
            a.add("hot", 1);
            a.add(&format!("a{}", i % 10), 1);
            b.add("hot", 1);
            b.add(&format!("b{}", i % 10), 1);
        }
        a.merge(&b);
        let top = a.top();
        assert_eq!(top[0].value, "hot");
        assert!(top[0].count >= 200 && top[0].count - top[0].error <= 200);
    }

    #[test]
    fn a_value_the_other_side_evicted_is_still_an_upper_bound() {
        // Capacity 2: one side saw a×5 and c×1; the other x×3, a×2, y×3 (a evicted there).
        let (mut a, mut b) = (SpaceSaving::new(2), SpaceSaving::new(2));
        a.add("a", 5);
        a.add("c", 1);
        for (v, n) in [("x", 3), ("a", 2), ("y", 3)] {
            for _ in 0..n {
                b.add(v, 1);
            }
        }
        a.merge(&b);
        let top = a.top();
        let got = top.iter().find(|c| c.value == "a").unwrap();
        assert!(got.count >= 7 && got.count - got.error <= 7, "{got:?}");
    }
}
