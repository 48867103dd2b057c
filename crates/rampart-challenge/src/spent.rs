//! The challenges already solved, until they expire: a challenge solves once.
//!
//! Kept in memory, per node (a fleet's nodes each remember their own: a solution replayed at
//! another node within the challenge's ten minutes earns one more clearance there, bound to
//! the same client). Bounded: sixteen shards, each forgetting its expired entries when it
//! fills (at most once a second). When every entry is still live, a solution is accepted
//! without being remembered ([`Spent::spend`] says so): a flood of solutions must not lock
//! real visitors out, and a replay earns only the same client another clearance.

use std::collections::HashMap;
use std::sync::Mutex;

const SHARDS: usize = 16;

/// Why a challenge could not be marked solved.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SpentError {
    /// It was solved already.
    Replayed,
}

/// What [`Spent::spend`] did with a new solution.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Spending {
    /// Remembered until it expires.
    Remembered,
    /// Accepted, not remembered: the set is full of live entries.
    Full,
}

struct Shard {
    solved: HashMap<u128, u64>,
    /// When expired entries were last dropped.
    swept: u64,
}

/// The set of solved challenges.
pub struct Spent {
    shards: Vec<Mutex<Shard>>,
    per_shard: usize,
}

impl Spent {
    /// A set that remembers up to about `capacity` challenges.
    pub fn new(capacity: usize) -> Spent {
        Spent {
            shards: (0..SHARDS)
                .map(|_| {
                    Mutex::new(Shard {
                        solved: HashMap::new(),
                        swept: 0,
                    })
                })
                .collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
        }
    }

    /// Marks the challenge `nonce` (expiring at `expires`) solved at `now`.
    pub fn spend(&self, nonce: u128, expires: u64, now: u64) -> Result<Spending, SpentError> {
        let shard = &self.shards[(nonce as usize) % SHARDS];
        let mut shard = shard.lock().unwrap_or_else(|e| e.into_inner());
        if shard.solved.contains_key(&nonce) {
            return Err(SpentError::Replayed);
        }
        if shard.solved.len() >= self.per_shard && shard.swept < now {
            shard.solved.retain(|_, &mut e| e >= now);
            shard.swept = now;
        }
        if shard.solved.len() >= self.per_shard {
            return Ok(Spending::Full);
        }
        shard.solved.insert(nonce, expires);
        Ok(Spending::Remembered)
    }

    /// Challenges remembered now.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()).solved.len())
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
    fn a_challenge_spends_once_and_a_full_set_accepts_without_remembering() {
        let s = Spent::new(32);
        assert_eq!(s.spend(1, 100, 10), Ok(Spending::Remembered));
        assert_eq!(s.spend(1, 100, 11), Err(SpentError::Replayed));
        // Fill shard 0 (nonces ≡ 0 mod 16) with live entries: 2 per shard.
        assert_eq!(s.spend(16, 100, 10), Ok(Spending::Remembered));
        assert_eq!(s.spend(32, 100, 10), Ok(Spending::Remembered));
        assert_eq!(s.spend(48, 100, 10), Ok(Spending::Full));
        // Swept at most once a second: the same second does not sweep again.
        assert_eq!(s.spend(64, 100, 10), Ok(Spending::Full));
        // Once they expire, they make room.
        assert_eq!(s.spend(48, 300, 200), Ok(Spending::Remembered));
        assert_eq!(s.spend(16, 300, 200), Ok(Spending::Remembered));
        assert_eq!(s.len(), 3);
    }
}
