//! What a check returns: the verdict and the numbers for the response
//! header fields.

use std::fmt;

use crate::quota::write_sf_string;

/// The verdict for one request, with the numbers the server puts in
/// `RateLimit`, `RateLimit-Policy` and `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// The request is within the rate: continue to the next phase.
    Allow(RateLimitStatus),
    /// The request is over the rate, or the key is in a mitigation block:
    /// answer 429 (error 1015) with `Retry-After: retry_after_secs`.
    Limit {
        /// Whole seconds until this key's next request would be accepted,
        /// rounded up; never 0. Exact for the store's state at `now`,
        /// assuming no other request of the key is counted meanwhile.
        retry_after_secs: u64,
        /// Quota numbers for the `RateLimit` field (remaining is 0).
        status: RateLimitStatus,
    },
}

impl Decision {
    /// `Allow` when the key's next request may go now (`wait_ms` 0), else `Limit` with the
    /// wait rounded up to whole seconds.
    pub(crate) fn after_wait(wait_ms: u64, status: RateLimitStatus) -> Decision {
        if wait_ms == 0 {
            Decision::Allow(status)
        } else {
            Decision::Limit {
                retry_after_secs: wait_ms.div_ceil(1000),
                status,
            }
        }
    }

    /// `true` for [`Decision::Allow`].
    pub fn is_allowed(&self) -> bool {
        matches!(self, Decision::Allow(_))
    }

    /// The quota numbers, whatever the verdict.
    pub fn status(&self) -> RateLimitStatus {
        match *self {
            Decision::Allow(s) | Decision::Limit { status: s, .. } => s,
        }
    }

    /// `Some(seconds)` for [`Decision::Limit`]: the `Retry-After` value.
    pub fn retry_after_secs(&self) -> Option<u64> {
        match *self {
            Decision::Allow(_) => None,
            Decision::Limit {
                retry_after_secs, ..
            } => Some(retry_after_secs),
        }
    }
}

/// A key's quota after a call, in the terms of
/// draft-ietf-httpapi-ratelimit-headers: limit (`q`), window (`w`),
/// remaining (`r`) and reset (`t`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitStatus {
    /// `requests_per_period` of the rule.
    pub limit: u32,
    /// `period` of the rule, in seconds.
    pub window_secs: u32,
    /// Requests the key could send right now, back to back, and have
    /// accepted (after this call's own effect). 0 while limited.
    pub remaining: u32,
    /// Whole seconds (rounded up) until the key's full quota is available
    /// again, if it sends nothing meanwhile. 0 when it already is.
    pub reset_secs: u64,
}

impl RateLimitStatus {
    /// The `RateLimit` field member (draft-ietf-httpapi-ratelimit-headers
    /// §5): `"name";r=<remaining>;t=<reset>`. Use the same name as in
    /// [`crate::Quota::policy_field`].
    pub fn ratelimit_field<'a>(&self, name: &'a str) -> RateLimitField<'a> {
        RateLimitField {
            name,
            remaining: self.remaining,
            reset_secs: self.reset_secs,
        }
    }
}

/// A `RateLimit` list member, formatted by [`fmt::Display`]. Built by
/// [`RateLimitStatus::ratelimit_field`].
#[derive(Debug, Clone, Copy)]
pub struct RateLimitField<'a> {
    name: &'a str,
    remaining: u32,
    reset_secs: u64,
}

impl fmt::Display for RateLimitField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_sf_string(f, self.name)?;
        write!(f, ";r={};t={}", self.remaining, self.reset_secs)
    }
}
