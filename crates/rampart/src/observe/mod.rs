//! Observing requests: the access log and the metrics.

pub mod log;
pub mod metrics;
pub mod sink;

pub use log::{AccessLog, LogRecord, RequestInfo};
pub use metrics::{Finished, Metrics};

/// A security rule that matched, for the access log and metrics.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecurityMatch {
    /// SecurityAction: `block`, `log` or `skip`.
    pub action: &'static str,
    /// SecurityRuleID.
    pub rule_id: String,
    /// SecurityRuleDescription.
    pub description: String,
    /// SecuritySources: `ip`, `ipRange`, `asn`, `country`, `firewallCustom` or `rateLimit`.
    pub source: &'static str,
}
