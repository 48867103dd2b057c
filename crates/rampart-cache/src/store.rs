//! The memory tier: stored responses by key, their variants (Vary), a bound in bytes with
//! eviction, and purge.
//!
//! Keys are spread over [`SHARDS`] shards, each a hash map behind its own lock, so the
//! workers rarely wait for one another. Eviction is CLOCK (a FIFO with a second chance): a
//! key looked up since it was last passed over is passed over again, so objects that are read
//! stay and one-off objects go first. The bound counts every object's body, fields and
//! bookkeeping; when an insert takes the store past it, the oldest unread objects go, from the
//! inserting shard first and then the next ones.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, BuildHasherDefault, Hasher};

use foldhash::quality::RandomState;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};

use smallvec::SmallVec;

use crate::key::encoding_class;
use crate::object::Object;

/// Shards of the store.
pub const SHARDS: usize = 64;

/// Variants kept per key of a response that varies (`Vary`); a new one replaces the oldest.
pub const MAX_VARIANTS: usize = 16;

struct Variant {
    /// The request's values of the fields the response varies on.
    secondary: Box<[u8]>,
    object: Arc<Object>,
    weight: usize,
}

/// A key's place in the store. Keys are not kept: a key is found by two independent 64-bit
/// hashes of it (one places it, the other confirms it), so a lookup reads no key back from
/// memory, and two keys are confused with a probability of about n² / 2^129: for a billion
/// keys, one in 10^21.
struct Entry {
    check: u64,
    /// The fields the latest response varies on.
    vary: Box<[Box<str>]>,
    variants: SmallVec<[Variant; 1]>,
    /// Read since the clock hand last passed it.
    visited: bool,
}

impl Entry {
    fn weight(&self) -> usize {
        self.variants.iter().map(|v| v.weight).sum()
    }
}

/// The map's hasher: the keys are hashes already.
#[derive(Default)]
struct Identity(u64);

impl Hasher for Identity {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
    fn write_u64(&mut self, n: u64) {
        self.0 = n;
    }
}

type Map = HashMap<u64, Entry, BuildHasherDefault<Identity>>;

#[derive(Default)]
struct Shard {
    map: Map,
    /// Keys in the order they were stored (the clock).
    fifo: VecDeque<u64>,
}

/// A key as the store finds it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct Hashed {
    place: u64,
    check: u64,
}

/// The memory tier.
pub struct Store {
    shards: Box<[Mutex<Shard>]>,
    place: RandomState,
    check: RandomState,
    capacity: usize,
    bytes: AtomicUsize,
    objects: AtomicUsize,
}

fn lock(shard: &Mutex<Shard>) -> MutexGuard<'_, Shard> {
    shard.lock().unwrap_or_else(|p| p.into_inner())
}

/// The request's values of the `vary` fields, as one byte string (Accept-Encoding by its
/// class, see [`encoding_class`]).
pub fn secondary<'h>(vary: &[Box<str>], header: &impl Fn(&str) -> Option<&'h [u8]>) -> Vec<u8> {
    let mut out = Vec::new();
    for name in vary {
        if &**name == "accept-encoding" {
            out.extend_from_slice(encoding_class(header(name)).as_bytes());
        } else if let Some(v) = header(name) {
            out.extend_from_slice(v.trim_ascii());
        }
        out.push(0);
    }
    out
}

impl Store {
    /// A store of at most `capacity` bytes.
    pub fn new(capacity: usize) -> Store {
        Store {
            shards: (0..SHARDS).map(|_| Mutex::new(Shard::default())).collect(),
            place: RandomState::default(),
            check: RandomState::default(),
            capacity,
            bytes: AtomicUsize::new(0),
            objects: AtomicUsize::new(0),
        }
    }

    /// The bound, in bytes.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.bytes.load(Ordering::Relaxed)
    }

    /// Objects held (every variant counts).
    pub fn len(&self) -> usize {
        self.objects.load(Ordering::Relaxed)
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Largest object stored: a quarter of the bound, so that one object never empties the
    /// store.
    pub fn max_object(&self) -> usize {
        self.capacity / 4
    }

    fn hashed(&self, key: &str) -> Hashed {
        Hashed {
            place: self.place.hash_one(key),
            check: self.check.hash_one(key),
        }
    }

    fn shard(&self, h: Hashed) -> MutexGuard<'_, Shard> {
        lock(&self.shards[h.check as usize % SHARDS])
    }

    /// The object stored for `key` that fits the request whose fields `header` gives (the
    /// variant for its values of the fields the response varies on).
    pub fn get<'h>(
        &self,
        key: &str,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> Option<Arc<Object>> {
        let h = self.hashed(key);
        let mut shard = self.shard(h);
        let entry = shard.map.get_mut(&h.place).filter(|e| e.check == h.check)?;
        let object = if entry.vary.is_empty() {
            entry.variants.first()?.object.clone()
        } else {
            let wanted = secondary(&entry.vary, &header);
            entry
                .variants
                .iter()
                .find(|v| *v.secondary == *wanted)?
                .object
                .clone()
        };
        entry.visited = true;
        Some(object)
    }

    /// Stores `object` for `key` and the request whose fields `header` gives; `false` when it
    /// is larger than [`Store::max_object`]. A response that varies on other fields than the
    /// stored ones replaces every variant.
    pub fn insert<'h>(
        &self,
        key: &str,
        object: impl Into<Arc<Object>>,
        header: impl Fn(&str) -> Option<&'h [u8]>,
    ) -> bool {
        let object = object.into();
        let weight = object.weight();
        if weight > self.max_object() {
            return false;
        }
        let h = self.hashed(key);
        let secondary = secondary(&object.meta.vary, &header).into_boxed_slice();
        let variant = Variant {
            secondary,
            object,
            weight,
        };
        {
            let mut shard = self.shard(h);
            let (removed, gone) = Self::place(&mut shard, h, variant);
            self.bytes.fetch_add(weight, Ordering::Relaxed);
            self.bytes.fetch_sub(removed, Ordering::Relaxed);
            self.add_objects(1 - gone as isize);
        }
        self.evict_from(h.check as usize % SHARDS);
        true
    }

    /// Accounts for `extra` bytes that `object` (stored for `key`) holds beyond what it held
    /// when stored (a compressed copy of its body), and evicts past the bound. Nothing
    /// happens if `object` is no longer stored.
    pub fn grew(&self, key: &str, object: &Arc<Object>, extra: usize) {
        let h = self.hashed(key);
        {
            let mut shard = self.shard(h);
            let Some(entry) = shard.map.get_mut(&h.place).filter(|e| e.check == h.check) else {
                return;
            };
            let Some(v) = entry
                .variants
                .iter_mut()
                .find(|v| Arc::ptr_eq(&v.object, object))
            else {
                return;
            };
            v.weight += extra;
            self.bytes.fetch_add(extra, Ordering::Relaxed);
        }
        self.evict_from(h.check as usize % SHARDS);
    }

    /// Puts `variant` in the shard; the weight and number of the variants it replaced.
    fn place(shard: &mut Shard, h: Hashed, variant: Variant) -> (usize, usize) {
        match shard.map.get_mut(&h.place) {
            Some(entry) if entry.check == h.check && entry.vary == variant.object.meta.vary => {
                let replaced = match entry
                    .variants
                    .iter()
                    .position(|v| v.secondary == variant.secondary)
                {
                    Some(i) => (entry.variants.remove(i).weight, 1),
                    None if entry.variants.len() >= MAX_VARIANTS => {
                        (entry.variants.remove(0).weight, 1)
                    }
                    None => (0, 0),
                };
                entry.variants.push(variant);
                replaced
            }
            Some(entry) => {
                // Another Vary, or (one in 2^64) another key in its place: replaced whole.
                let replaced = (entry.weight(), entry.variants.len());
                entry.check = h.check;
                entry.vary = variant.object.meta.vary.clone();
                entry.variants = SmallVec::from_buf([variant]);
                replaced
            }
            None => {
                if shard.fifo.len() > 2 * shard.map.len() + 64 {
                    // Keys removed by purges are still in the clock: drop them.
                    let Shard { map, fifo } = shard;
                    fifo.retain(|k| map.contains_key(k));
                }
                shard.fifo.push_back(h.place);
                shard.map.insert(
                    h.place,
                    Entry {
                        check: h.check,
                        vary: variant.object.meta.vary.clone(),
                        variants: SmallVec::from_buf([variant]),
                        visited: false,
                    },
                );
                (0, 0)
            }
        }
    }

    fn add_objects(&self, delta: isize) {
        if delta >= 0 {
            self.objects.fetch_add(delta as usize, Ordering::Relaxed);
        } else {
            self.objects
                .fetch_sub(delta.unsigned_abs(), Ordering::Relaxed);
        }
    }

    /// While over the bound, evicts from shard `start`, then the next ones.
    fn evict_from(&self, start: usize) {
        let mut index = start;
        let mut empty_shards = 0;
        while self.bytes() > self.capacity && empty_shards < SHARDS {
            if self.evict_one(index) {
                empty_shards = 0;
            } else {
                empty_shards += 1;
                index = (index + 1) % SHARDS;
            }
        }
    }

    /// Evicts one key of shard `index` (CLOCK); `false` when the shard has nothing to evict.
    fn evict_one(&self, index: usize) -> bool {
        let mut shard = lock(&self.shards[index]);
        let mut turns = shard.fifo.len() * 2 + 1;
        while turns > 0 {
            turns -= 1;
            let Some(key) = shard.fifo.pop_front() else {
                return false;
            };
            let Some(entry) = shard.map.get_mut(&key) else {
                continue; // removed by a purge
            };
            if entry.visited {
                entry.visited = false;
                shard.fifo.push_back(key);
                continue;
            }
            if let Some(entry) = shard.map.remove(&key) {
                self.bytes.fetch_sub(entry.weight(), Ordering::Relaxed);
                self.add_objects(-(entry.variants.len() as isize));
            }
            return true;
        }
        false
    }

    /// Removes every variant of `key`; how many were removed.
    pub fn remove(&self, key: &str) -> usize {
        let h = self.hashed(key);
        let mut shard = self.shard(h);
        if shard.map.get(&h.place).is_none_or(|e| e.check != h.check) {
            return 0;
        }
        match shard.map.remove(&h.place) {
            Some(entry) => {
                self.bytes.fetch_sub(entry.weight(), Ordering::Relaxed);
                self.add_objects(-(entry.variants.len() as isize));
                entry.variants.len()
            }
            None => 0,
        }
    }

    /// Removes every object for which `matches` holds; how many were removed.
    pub fn purge(&self, matches: impl Fn(&Object) -> bool) -> usize {
        let mut removed = 0;
        for shard in self.shards.iter() {
            let mut shard = lock(shard);
            let mut freed = 0;
            shard.map.retain(|_, entry| {
                let before = entry.variants.len();
                entry.variants.retain(|v| {
                    let gone = matches(&v.object);
                    if gone {
                        freed += v.weight;
                    }
                    !gone
                });
                removed += before - entry.variants.len();
                !entry.variants.is_empty()
            });
            if shard.map.is_empty() {
                shard.fifo.clear();
            }
            self.bytes.fetch_sub(freed, Ordering::Relaxed);
        }
        self.add_objects(-(removed as isize));
        removed
    }

    /// Calls `f` with every object (for a disk tier's index, or a report).
    pub fn for_each(&self, mut f: impl FnMut(&Arc<Object>)) {
        for shard in self.shards.iter() {
            let shard = lock(shard);
            for entry in shard.map.values() {
                for v in &entry.variants {
                    f(&v.object);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::object::Meta;
    use bytes::Bytes;

    fn object(body: &[u8], vary: &[&str]) -> Object {
        Object {
            encoded: Default::default(),
            status: 200,
            fields: Default::default(),
            body: Bytes::copy_from_slice(body),
            meta: Meta {
                vary: vary.iter().map(|v| Box::from(*v)).collect(),
                host: "a.test".into(),
                ..Default::default()
            },
        }
    }

    fn no_headers(_: &str) -> Option<&'static [u8]> {
        None
    }

    #[test]
    fn the_two_hashes_of_a_key_are_independent() {
        let store = Store::new(1 << 20);
        let h = store.hashed("zone\nhttps://a.test/x.css");
        assert_ne!(h.place, h.check);
        assert_ne!(
            Store::new(1 << 20).hashed("k").place,
            store.hashed("k").place,
            "seeded per store"
        );
    }

    #[test]
    fn objects_are_found_by_key_and_variant() {
        let s = Store::new(1 << 20);
        assert!(s.insert("k", object(b"plain", &[]), no_headers));
        assert_eq!(&s.get("k", no_headers).unwrap().body[..], b"plain");
        assert!(s.get("other", no_headers).is_none());
        // A response varying on Accept-Encoding replaces the plain one; variants by class.
        let br = |n: &str| (n == "accept-encoding").then_some(&b"gzip, br"[..]);
        let gz = |n: &str| (n == "accept-encoding").then_some(&b"gzip"[..]);
        s.insert("k", object(b"brotli", &["accept-encoding"]), br);
        s.insert("k", object(b"gzipped", &["accept-encoding"]), gz);
        assert_eq!(&s.get("k", br).unwrap().body[..], b"brotli");
        assert_eq!(
            &s.get("k", |n| (n == "accept-encoding")
                .then_some(&b"deflate, br;q=1"[..]))
                .unwrap()
                .body[..],
            b"brotli"
        );
        assert_eq!(&s.get("k", gz).unwrap().body[..], b"gzipped");
        assert!(s.get("k", no_headers).is_none(), "no identity variant yet");
        assert_eq!(s.len(), 2);
    }

    #[test]
    fn variants_are_bounded() {
        let s = Store::new(1 << 20);
        for i in 0..MAX_VARIANTS + 5 {
            let lang = format!("l{i}");
            s.insert("k", object(b"x", &["accept-language"]), |_| {
                Some(lang.as_bytes())
            });
        }
        assert_eq!(s.len(), MAX_VARIANTS);
        assert!(
            s.get("k", |_| Some(&b"l0"[..])).is_none(),
            "the oldest went"
        );
        assert!(
            s.get("k", |_| Some(
                format!("l{}", MAX_VARIANTS + 4).leak().as_bytes()
            ))
            .is_some()
        );
    }

    #[test]
    fn the_bound_holds_and_read_objects_stay() {
        let body = vec![0u8; 1_000];
        let weight = object(&body, &[]).weight();
        let s = Store::new(weight * 100);
        s.insert("k0", object(&body, &[]), no_headers);
        for i in 1..1_000 {
            // k0 is read between inserts: it keeps its place.
            assert!(s.get("k0", no_headers).is_some(), "k0 evicted at {i}");
            s.insert(&format!("k{i}"), object(&body, &[]), no_headers);
            assert!(s.bytes() <= s.capacity(), "over the bound at {i}");
        }
        assert!(s.len() <= 100 && s.len() > 50, "{}", s.len());
        assert!(
            !s.insert("big", object(&vec![0; weight * 30], &[]), no_headers),
            "too large"
        );
    }

    #[test]
    fn purge_removes_what_matches_and_accounts_for_it() {
        let s = Store::new(1 << 20);
        for i in 0..100 {
            let mut o = object(b"x", &[]);
            o.meta.host = if i % 2 == 0 {
                "a.test".into()
            } else {
                "b.test".into()
            };
            s.insert(&format!("k{i}"), o, no_headers);
        }
        let bytes = s.bytes();
        assert_eq!(s.purge(|o| &*o.meta.host == "a.test"), 50);
        assert_eq!(s.len(), 50);
        assert_eq!(s.bytes(), bytes / 2);
        assert!(s.get("k0", no_headers).is_none() && s.get("k1", no_headers).is_some());
        assert_eq!(s.remove("k1"), 1);
        assert_eq!(s.purge(|_| true), 49);
        assert_eq!((s.len(), s.bytes()), (0, 0));
        // The clock skips purged keys.
        s.insert("again", object(b"x", &[]), no_headers);
        assert!(s.get("again", no_headers).is_some());
    }
}
