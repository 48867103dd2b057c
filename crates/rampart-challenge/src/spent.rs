//! The challenges already solved, until they expire: a challenge solves once.
//!
//! Kept in memory, per node (a fleet's nodes each remember their own: a solution replayed at
//! another node within the challenge's ten minutes earns one more clearance there, bound to
//! the same client). Bounded: sixteen shards, each forgetting its expired entries when it
//! fills, and refusing new ones when every entry is still live.

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 16;

/// Why a challenge could not be marked solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpentError {
    /// It was solved already.
    Replayed,
    /// The set is full of challenges that have not expired.
    Full,
}

/// The set of solved challenges.
pub struct Spent {
    shards: Vec<Mutex<HashMap<u128, u64>>>,
    per_shard: usize,
}

impl Spent {
    /// A set that remembers up to about `capacity` challenges.
    pub fn new(capacity: usize) -> Spent {
        Spent {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Marks the challenge `nonce` (expiring at `expires`) solved at `now`.
    pub fn spend(&self, nonce: u128, expires: u64, now: u64) -> Result<(), SpentError> {
        let shard = &self.shards[(nonce as usize) % SHARDS];
        let mut map = shard.lock().unwrap_or_else(|e| e.into_inner());
        if map.contains_key(&nonce) {
            return Err(SpentError::Replayed);
        }
        if map.len() >= self.per_shard {
            map.retain(|_, &mut e| e >= now);
            if map.len() >= self.per_shard {
                return Err(SpentError::Full);
            }
        }
        map.insert(nonce, expires);
        Ok(())
    }

    /// Challenges remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).len())
            .sum()
    }

    /// Whether none is remembered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_challenge_spends_once_and_expired_ones_make_room() {
        let s = Spent::new(32);
        assert_eq!(s.spend(1, 100, 10), Ok(()));
        assert_eq!(s.spend(1, 100, 11), Err(SpentError::Replayed));
        // Fill shard 0 (nonces ≡ 0 mod 16) with live entries: 2 per shard.
        assert_eq!(s.spend(16, 100, 10), Ok(()));
        assert_eq!(s.spend(32, 100, 10), Ok(()));
        assert_eq!(s.spend(48, 100, 10), Err(SpentError::Full));
        // Once they expire, they make room.
        assert_eq!(s.spend(48, 300, 200), Ok(()));
        assert_eq!(s.spend(16, 300, 200), Ok(()));
        assert_eq!(s.len(), 3);
    }
}
