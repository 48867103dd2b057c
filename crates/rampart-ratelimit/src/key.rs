//! Request keys: the rule's characteristics (ip.src, host, path, header
//! values…) hashed with a secret seed: random per process, or derived from a
//! configured secret so that every node of a fleet computes the same key.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};

use siphasher::sip::SipHasher13;

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

/// Hashes a key's parts with SipHash-1-3 under a secret 128-bit seed.
///
/// [`KeyBuilder::new`] draws the seed at random: keys are private to the
/// process. [`KeyBuilder::with_secret`] derives it from a configured secret:
/// every process with the same secret (every node of a fleet sharing its
/// counters) computes the same key for the same parts, and the keys stay the
/// same across restarts and Rust versions.
///
/// ```
/// use rampart_ratelimit::KeyBuilder;
/// let keys = KeyBuilder::new();
/// let a = keys.key(&[b"rule-1", b"203.0.113.7", b"/login"]);
/// let b = keys.start().part(b"rule-1").part(b"203.0.113.7").part(b"/login").finish();
/// assert_eq!(a, b);
/// // Parts are length-delimited: moving a byte across a boundary changes the key.
/// assert_ne!(keys.key(&[b"ab", b"c"]), keys.key(&[b"a", b"bc"]));
/// // Two nodes with one secret agree.
/// let node_1 = KeyBuilder::with_secret(b"fleet secret, 32 random bytes..");
/// let node_2 = KeyBuilder::with_secret(b"fleet secret, 32 random bytes..");
/// assert_eq!(node_1.key(&[b"x"]), node_2.key(&[b"x"]));
/// ```
#[derive(Debug, Clone, Copy)]
pub struct KeyBuilder {
    k0: u64,
    k1: u64,
}

impl Default for KeyBuilder {
    fn default() -> Self {
        KeyBuilder::new()
    }
}

impl KeyBuilder {
    /// A builder with a fresh random seed (from std's per-process random
    /// keys).
    pub fn new() -> KeyBuilder {
        let random = RandomState::new();
        KeyBuilder {
            k0: random.hash_one(0u8),
            k1: random.hash_one(1u8),
        }
    }

    /// A builder whose seed is derived from `secret`: the same on every
    /// process given the same secret. The secret should hold at least 128
    /// random bits; whoever knows it can choose colliding keys.
    pub fn with_secret(secret: &[u8]) -> KeyBuilder {
        let derive = |domain: u64| {
            let mut h = SipHasher13::new_with_keys(domain, !domain);
            h.write(b"rampart rate-limit key seed");
            h.write(secret);
            h.finish()
        };
        KeyBuilder {
            k0: derive(0x5eed_0000),
            k1: derive(0x5eed_0001),
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
            hasher: SipHasher13::new_with_keys(self.k0, self.k1),
        }
    }
}

/// A key being built part by part. See [`KeyBuilder::start`].
#[derive(Debug, Clone)]
pub struct KeyParts {
    hasher: SipHasher13,
}

impl KeyParts {
    /// Adds one part. Parts are length-delimited, so `["ab", "c"]` and
    /// `["a", "bc"]` are different keys.
    pub fn part(&mut self, bytes: &[u8]) -> &mut KeyParts {
        self.hasher.write_u64(bytes.len() as u64);
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

    const PINNED: u64 = 6_842_265_035_490_197_380;

    #[test]
    fn same_parts_same_builder_same_key() {
        let b = KeyBuilder::new();
        assert_eq!(b.key(&[b"x", b"y"]), b.key(&[b"x", b"y"]));
        assert_ne!(b.key(&[b"x", b"y"]), b.key(&[b"y", b"x"]));
        assert_ne!(b.key(&[b"xy"]), b.key(&[b"x", b"y"]));
    }

    #[test]
    fn a_secret_gives_the_same_keys_everywhere_and_for_good() {
        let a = KeyBuilder::with_secret(b"s3cret");
        assert_eq!(
            a.key(&[b"x"]),
            KeyBuilder::with_secret(b"s3cret").key(&[b"x"])
        );
        assert_ne!(
            a.key(&[b"x"]),
            KeyBuilder::with_secret(b"s3cret!").key(&[b"x"])
        );
        // Pinned: a change of hash or derivation would split a fleet mid-upgrade.
        assert_eq!(a.key(&[b"rule", b"192.0.2.1"]).hash(), PINNED);
    }

    #[test]
    fn different_builders_have_different_seeds() {
        assert_ne!(
            KeyBuilder::new().key(&[b"x"]),
            KeyBuilder::new().key(&[b"x"])
        );
    }
}
