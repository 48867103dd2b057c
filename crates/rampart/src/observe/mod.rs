//! Observing requests: the access log and the metrics.

pub mod log;
pub mod metrics;

pub use log::{AccessLog, LogRecord, RequestInfo};
pub use metrics::Metrics;

/// Formats a wall-clock time as RFC 3339 with milliseconds (UTC).
pub fn rfc3339(t: std::time::SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}
