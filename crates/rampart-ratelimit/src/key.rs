//! Request keys: the rule's characteristics (ip.src, host, path, header
//! values…) hashed with a per-process secret seed.

use std::collections::hash_map::{DefaultHasher, RandomState};
use std::hash::{BuildHasher, Hasher};

/// The identity of one counter: a 64-bit keyed hash of the rule id and the
/// request's characteristics.
///
/// Stores keep only this hash, never the key bytes, so an entry has a fixed
/// size whatever the characteristics are. Two different keys share a
/// counter only if their hashes collide; with a secret seed that is chance
/// (about 3 × 10⁻⁸ for some pair among a million live keys), not something
/// a client can aim for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Key(u64);

impl Key {
    /// Wraps a hash the caller computed itself. It must be a keyed hash
    /// (secret seed) of everything that identifies the counter, rule id
    /// included; otherwise clients can choose keys that collide and share
    /// or exhaust each other's counters. Prefer [`KeyBuilder`].
    pub const fn from_hash(hash: u64) -> Key {
        Key(hash)
    }

    /// The hash value.
    pub const fn hash(self) -> u64 {
        self.0
    }
}

/// Hashes a key's parts with a secret seed chosen at random when the
/// builder is created (std's keyed hasher from [`RandomState`], currently
/// SipHash-1-3).
///
/// Create one per process (or per configuration) and share it: keys from
/// different builders never match.
///
/// ```
/// use rampart_ratelimit::KeyBuilder;
/// let keys = KeyBuilder::new();
/// let a = keys.key(&[b"rule-1", b"203.0.113.7", b"/login"]);
/// let b = keys.start().part(b"rule-1").part(b"203.0.113.7").part(b"/login").finish();
/// assert_eq!(a, b);
/// // Parts are length-delimited: moving a byte across a boundary changes the key.
/// assert_ne!(keys.key(&[b"ab", b"c"]), keys.key(&[b"a", b"bc"]));
/// ```
#[derive(Debug, Clone, Default)]
pub struct KeyBuilder {
    seed: RandomState,
}

impl KeyBuilder {
    /// A builder with a fresh random seed.
    pub fn new() -> KeyBuilder {
        KeyBuilder {
            seed: RandomState::new(),
        }
    }

    /// Hashes all `parts` in order. Put the rule id first so rules sharing
    /// one store never share counters.
    pub fn key(&self, parts: &[&[u8]]) -> Key {
        let mut k = self.start();
        for p in parts {
            k.part(p);
        }
        k.finish()
    }

    /// Starts a key to which parts are added one by one, without
    /// collecting them in a slice first.
    pub fn start(&self) -> KeyParts {
        KeyParts {
            hasher: self.seed.build_hasher(),
        }
    }
}

/// A key being built part by part. See [`KeyBuilder::start`].
#[derive(Debug, Clone)]
pub struct KeyParts {
    hasher: DefaultHasher,
}

impl KeyParts {
    /// Adds one part. Parts are length-delimited, so `["ab", "c"]` and
    /// `["a", "bc"]` are different keys.
    pub fn part(&mut self, bytes: &[u8]) -> &mut KeyParts {
        self.hasher.write_usize(bytes.len());
        self.hasher.write(bytes);
        self
    }

    /// The finished key.
    pub fn finish(&self) -> Key {
        Key(self.hasher.finish())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_parts_same_builder_same_key() {
        let b = KeyBuilder::new();
        assert_eq!(b.key(&[b"x", b"y"]), b.clone().key(&[b"x", b"y"]));
        assert_ne!(b.key(&[b"x", b"y"]), b.key(&[b"y", b"x"]));
        assert_ne!(b.key(&[b"xy"]), b.key(&[b"x", b"y"]));
    }

    #[test]
    fn different_builders_have_different_seeds() {
        assert_ne!(
            KeyBuilder::new().key(&[b"x"]),
            KeyBuilder::new().key(&[b"x"])
        );
    }
}
