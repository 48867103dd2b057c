//! The sans-IO core of rampart's challenges.
//!
//! - [`Keys`]: the HMAC keys challenges and clearances are signed with (one signs, up to two
//!   verify, so a secret can be rotated with a grace period).
//! - A **challenge token** ([`Keys::challenge`]) is handed to a browser with a proof of work to
//!   do: find a counter whose SHA-256 with the token has `difficulty` leading zero bits
//!   ([`solved`]). It is bound to the client (its IP, or the IPv6 /64, and the hash of its
//!   User-Agent), to the zone and to the URL to return to, and expires after
//!   [`CHALLENGE_TTL_SECS`]. Verifying a solution costs one HMAC and one SHA-256.
//! - A **clearance** ([`Keys::clearance`]) is the cookie a solved challenge earns: signed,
//!   with an expiry, bound to the same client and zone, checked in well under a microsecond.
//! - [`Spent`] remembers the challenges already solved until they expire: a challenge
//!   solves once.
//! - [`bic`]: the Browser Integrity Check's heuristics, in one table.
//!
//! Nothing here reads a clock or the network: times are Unix seconds passed in.

pub mod bic;
mod hex;
mod keys;
mod spent;
mod token;

pub use keys::{KeyError, Keys, MIN_SECRET_BYTES};
pub use spent::{Spending, Spent, SpentError};
pub use token::{
    CHALLENGE_TTL_SECS, Checked, Client, Issue, MAX_DIFFICULTY, Refusal, leading_zero_bits, solved,
};
