//! A rate limiting rule's numbers: period, requests per period, mitigation.

use std::fmt;

/// Periods (in seconds) a rule may count over, as in Cloudflare's rate
/// limiting rules. Anything else is rejected with
/// [`QuotaError::PeriodNotAllowed`].
pub const ALLOWED_PERIODS_SECS: [u32; 6] = [10, 60, 120, 300, 600, 3600];

/// Mitigation timeouts (in seconds) a rule may block for. `0` is not in
/// this list: it means [`Mitigation::Throttle`]. Anything else is rejected
/// with [`QuotaError::MitigationTimeoutNotAllowed`].
pub const ALLOWED_MITIGATION_TIMEOUTS_SECS: [u32; 7] = [10, 60, 120, 300, 600, 3600, 86_400];

/// Largest `requests_per_period` a rule may set. Default and only value:
/// 1,000,000. Over it: [`QuotaError::RequestsPerPeriodTooLarge`].
///
/// The limit keeps the fixed-point arithmetic (`now` in milliseconds times
/// `requests_per_period`) inside a `u64` for 584 years of uptime.
pub const MAX_REQUESTS_PER_PERIOD: u32 = 1_000_000;

/// What happens once a key goes over its rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Mitigation {
    /// `mitigation_timeout = 0`: only the requests over the rate are
    /// limited; the key is accepted again as soon as it is back under it.
    Throttle,
    /// The first request over the rate starts a block of this many seconds;
    /// every request of the key during the block is limited and not counted.
    Block {
        /// One of [`ALLOWED_MITIGATION_TIMEOUTS_SECS`].
        timeout_secs: u32,
    },
}

/// How a rule counts. Both keep 16 bytes of state per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Counting {
    /// GCRA, a token bucket of `requests_per_period` tokens refilled continuously (the
    /// default): bursts up to the quota, then the rate; up to `2N − 1` in one period.
    #[default]
    Gcra,
    /// Sub-window counters: never more than `requests_per_period` accepted in any
    /// `period`, at the cost of sometimes refusing a request the exact log would accept
    /// (see the `window` module).
    SlidingWindow,
}

/// A validated rule quota: `requests_per_period` requests every
/// `period_secs` seconds, and what to do when a key exceeds it.
///
/// Quotas are small `Copy` values; the server builds one per rule when it
/// loads the configuration.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Quota {
    period_secs: u32,
    requests_per_period: u32,
    mitigation: Mitigation,
    counting: Counting,
}

impl Quota {
    /// Validates a rule's numbers. `mitigation_timeout_secs = 0` means
    /// [`Mitigation::Throttle`].
    ///
    /// ```
    /// use rampart_ratelimit::{Mitigation, Quota, QuotaError};
    /// let q = Quota::new(60, 100, 600).unwrap();
    /// assert_eq!(q.mitigation(), Mitigation::Block { timeout_secs: 600 });
    /// assert_eq!(Quota::new(30, 100, 0), Err(QuotaError::PeriodNotAllowed(30)));
    /// ```
    pub fn new(
        period_secs: u32,
        requests_per_period: u32,
        mitigation_timeout_secs: u32,
    ) -> Result<Quota, QuotaError> {
        Quota::check_period(period_secs)?;
        Quota::check_requests_per_period(requests_per_period)?;
        Quota::check_mitigation_timeout(mitigation_timeout_secs)?;
        let mitigation = match mitigation_timeout_secs {
            0 => Mitigation::Throttle,
            t => Mitigation::Block { timeout_secs: t },
        };
        Ok(Quota {
            period_secs,
            requests_per_period,
            mitigation,
            counting: Counting::Gcra,
        })
    }

    /// A quota of `requests_per_second` a second, throttled (no block): for rampart's own
    /// limits, such as the management API's 200 requests a second per IP, which the rules'
    /// periods (10 s and up, as Cloudflare allows them) cannot express. `None` for 0 or more
    /// than [`MAX_REQUESTS_PER_PERIOD`].
    pub fn per_second(requests_per_second: u32) -> Option<Quota> {
        Quota::check_requests_per_period(requests_per_second).ok()?;
        Some(Quota {
            period_secs: 1,
            requests_per_period: requests_per_second,
            mitigation: Mitigation::Throttle,
            counting: Counting::Gcra,
        })
    }

    /// This quota shared by `nodes` nodes counting on their own: `requests_per_period / nodes`
    /// (at least 1) per node, same period and mitigation. What a node of a fleet enforces
    /// while the shared store is unreachable, so that the fleet as a whole stays near the
    /// rule's rate.
    ///
    /// ```
    /// let q = rampart_ratelimit::Quota::new(60, 100, 0).unwrap();
    /// assert_eq!(q.divided(3).requests_per_period(), 33);
    /// assert_eq!(q.divided(500).requests_per_period(), 1);
    /// assert_eq!(q.divided(0), q);
    /// ```
    pub fn divided(&self, nodes: u32) -> Quota {
        Quota {
            requests_per_period: (self.requests_per_period / nodes.max(1)).max(1),
            ..*self
        }
    }

    /// This quota without its mitigation block (throttle only).
    pub(crate) fn throttled(self) -> Quota {
        Quota {
            mitigation: Mitigation::Throttle,
            ..self
        }
    }

    /// This quota, counted by `counting`.
    ///
    /// ```
    /// use rampart_ratelimit::{Counting, Quota};
    /// let q = Quota::new(60, 100, 0).unwrap().counted_by(Counting::SlidingWindow);
    /// assert_eq!(q.counting(), Counting::SlidingWindow);
    /// ```
    pub fn counted_by(self, counting: Counting) -> Quota {
        Quota { counting, ..self }
    }

    /// How the quota is counted.
    pub fn counting(&self) -> Counting {
        self.counting
    }

    /// The counting period in seconds (the `w` of `RateLimit-Policy`).
    pub fn period_secs(&self) -> u32 {
        self.period_secs
    }

    /// Requests allowed per period (the `q` of `RateLimit-Policy`).
    pub fn requests_per_period(&self) -> u32 {
        self.requests_per_period
    }

    /// What happens when a key goes over the rate.
    pub fn mitigation(&self) -> Mitigation {
        self.mitigation
    }

    /// The `RateLimit-Policy` field member for this quota
    /// (draft-ietf-httpapi-ratelimit-headers §4): `"name";q=<limit>;w=<period>`.
    ///
    /// ```
    /// let q = rampart_ratelimit::Quota::new(60, 100, 0).unwrap();
    /// assert_eq!(q.policy_field("login").to_string(), r#""login";q=100;w=60"#);
    /// ```
    pub fn policy_field<'a>(&self, name: &'a str) -> PolicyField<'a> {
        PolicyField {
            name,
            limit: self.requests_per_period,
            window_secs: self.period_secs,
        }
    }

    /// Milliseconds per period.
    pub fn period_ms(&self) -> u64 {
        u64::from(self.period_secs) * 1000
    }
}

/// A `RateLimit-Policy` list member, formatted by [`fmt::Display`].
/// Built by [`Quota::policy_field`].
#[derive(Debug, Clone, Copy)]
pub struct PolicyField<'a> {
    name: &'a str,
    limit: u32,
    window_secs: u32,
}

impl fmt::Display for PolicyField<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write_sf_string(f, self.name)?;
        write!(f, ";q={};w={}", self.limit, self.window_secs)
    }
}

/// Writes `s` as a Structured Field sf-string (RFC 8941 §3.3.3): `"` and
/// `\` are escaped; characters outside printable ASCII are not allowed in
/// an sf-string and are dropped, so the field stays parseable.
pub(crate) fn write_sf_string(f: &mut fmt::Formatter<'_>, s: &str) -> fmt::Result {
    use fmt::Write;
    f.write_char('"')?;
    for c in s.chars() {
        match c {
            '"' | '\\' => {
                f.write_char('\\')?;
                f.write_char(c)?;
            }
            ' '..='~' => f.write_char(c)?,
            _ => {}
        }
    }
    f.write_char('"')
}

/// Why a rule's numbers were rejected. The configuration loader maps each
/// kind to a message at the rule's file position.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum QuotaError {
    /// `period` is not one of [`ALLOWED_PERIODS_SECS`].
    PeriodNotAllowed(u32),
    /// `requests_per_period` is 0: a rule that allows nothing is a block rule.
    RequestsPerPeriodZero,
    /// `requests_per_period` is over [`MAX_REQUESTS_PER_PERIOD`].
    RequestsPerPeriodTooLarge(u32),
    /// `mitigation_timeout` is neither 0 nor one of
    /// [`ALLOWED_MITIGATION_TIMEOUTS_SECS`].
    MitigationTimeoutNotAllowed(u32),
}

impl Quota {
    /// Whether `period_secs` is one of [`ALLOWED_PERIODS_SECS`].
    pub fn check_period(period_secs: u32) -> Result<(), QuotaError> {
        match ALLOWED_PERIODS_SECS.contains(&period_secs) {
            true => Ok(()),
            false => Err(QuotaError::PeriodNotAllowed(period_secs)),
        }
    }

    /// Whether `requests_per_period` is from 1 to [`MAX_REQUESTS_PER_PERIOD`].
    pub fn check_requests_per_period(requests_per_period: u32) -> Result<(), QuotaError> {
        match requests_per_period {
            0 => Err(QuotaError::RequestsPerPeriodZero),
            n if n > MAX_REQUESTS_PER_PERIOD => Err(QuotaError::RequestsPerPeriodTooLarge(n)),
            _ => Ok(()),
        }
    }

    /// Whether `mitigation_timeout_secs` is 0 or one of [`ALLOWED_MITIGATION_TIMEOUTS_SECS`].
    pub fn check_mitigation_timeout(mitigation_timeout_secs: u32) -> Result<(), QuotaError> {
        match mitigation_timeout_secs {
            0 => Ok(()),
            t if ALLOWED_MITIGATION_TIMEOUTS_SECS.contains(&t) => Ok(()),
            t => Err(QuotaError::MitigationTimeoutNotAllowed(t)),
        }
    }
}

impl fmt::Display for QuotaError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            QuotaError::PeriodNotAllowed(p) => {
                write!(f, "period {p}s is not one of {ALLOWED_PERIODS_SECS:?}")
            }
            QuotaError::RequestsPerPeriodZero => {
                f.write_str("requests_per_period must be at least 1")
            }
            QuotaError::RequestsPerPeriodTooLarge(n) => {
                write!(
                    f,
                    "requests_per_period {n} is over the maximum {MAX_REQUESTS_PER_PERIOD}"
                )
            }
            QuotaError::MitigationTimeoutNotAllowed(t) => write!(
                f,
                "mitigation_timeout {t}s is neither 0 (throttle) nor one of {ALLOWED_MITIGATION_TIMEOUTS_SECS:?}"
            ),
        }
    }
}

impl std::error::Error for QuotaError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_per_second_quota_admits_its_rate_and_refuses_the_next() {
        use crate::gcra::{CounterState, Op};
        use std::time::Duration;
        let q = Quota::per_second(200).unwrap();
        let mut state = CounterState::default();
        let now = Duration::from_secs(100);
        for i in 0..200 {
            assert!(
                state.apply(&q, Op::CheckAndHit, now).is_allowed(),
                "request {i}"
            );
        }
        let refused = state.apply(&q, Op::CheckAndHit, now);
        assert_eq!(refused.retry_after_secs(), Some(1));
        // One emission interval (5 ms) later, one more is admitted.
        let later = now + Duration::from_millis(5);
        assert!(state.apply(&q, Op::CheckAndHit, later).is_allowed());
        assert!(!state.apply(&q, Op::CheckAndHit, later).is_allowed());
        assert!(Quota::per_second(0).is_none());
    }

    #[test]
    fn every_allowed_period_and_timeout_is_accepted() {
        for p in ALLOWED_PERIODS_SECS {
            for t in std::iter::once(0).chain(ALLOWED_MITIGATION_TIMEOUTS_SECS) {
                assert!(Quota::new(p, 1, t).is_ok(), "period {p} timeout {t}");
            }
        }
    }

    #[test]
    fn numbers_outside_the_allowed_sets_are_rejected() {
        assert_eq!(Quota::new(0, 1, 0), Err(QuotaError::PeriodNotAllowed(0)));
        assert_eq!(
            Quota::new(7200, 1, 0),
            Err(QuotaError::PeriodNotAllowed(7200))
        );
        assert_eq!(Quota::new(60, 0, 0), Err(QuotaError::RequestsPerPeriodZero));
        assert_eq!(
            Quota::new(60, 1, 30),
            Err(QuotaError::MitigationTimeoutNotAllowed(30))
        );
    }

    #[test]
    fn requests_per_period_at_limit_and_limit_plus_one() {
        assert!(Quota::new(60, MAX_REQUESTS_PER_PERIOD, 0).is_ok());
        assert_eq!(
            Quota::new(60, MAX_REQUESTS_PER_PERIOD + 1, 0),
            Err(QuotaError::RequestsPerPeriodTooLarge(
                MAX_REQUESTS_PER_PERIOD + 1
            ))
        );
    }

    #[test]
    fn policy_name_is_escaped_as_an_sf_string() {
        let q = Quota::new(10, 5, 0).unwrap();
        assert_eq!(
            q.policy_field("a\"b\\c\u{e9}\n").to_string(),
            r#""a\"b\\c";q=5;w=10"#
        );
    }
}
