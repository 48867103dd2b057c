//! `[analytics]`: how long the per-minute rollups are kept, and where, for the analytics API.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::walk::{Table, Walker};

/// `[analytics]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AnalyticsConfig {
    /// `data_dir`: where `analytics.sqlite` keeps the rollups across restarts (relative to
    /// the configuration file). None: in memory only.
    pub data_dir: Option<PathBuf>,
    /// `retention`: how long rollups, top lists and events are kept (default 7 days).
    pub retention: Duration,
    /// `max_size`: the most bytes the database may take; the oldest minutes go first.
    pub max_size: u64,
}

impl Default for AnalyticsConfig {
    fn default() -> Self {
        AnalyticsConfig {
            data_dir: None,
            retention: Duration::from_secs(7 * 86_400),
            max_size: 1 << 30,
        }
    }
}

const KEYS: &[&str] = &["data_dir", "retention", "max_size"];

/// Longest retention accepted: about 13 months.
const MAX_RETENTION: Duration = Duration::from_secs(400 * 86_400);

/// `[analytics]` of the root table, or the defaults.
pub(super) fn read_analytics(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &Path,
) -> AnalyticsConfig {
    let mut config = AnalyticsConfig::default();
    let Some(t) = root
        .get("analytics")
        .and_then(|v| w.table("analytics", v, KEYS))
    else {
        return config;
    };
    if let Some((dir, span)) = w.string(&t, "data_dir") {
        if dir.is_empty() {
            w.error(&span, &t.key("data_dir"), "must name a directory");
        } else {
            config.data_dir = Some(base_dir.join(dir));
        }
    }
    if let Some(r) = w.duration(&t, "retention", MAX_RETENTION) {
        if r < Duration::from_secs(3600) {
            let span = t.span_of("retention");
            w.error(&span, &t.key("retention"), "must be at least 1h");
        } else {
            config.retention = r;
        }
    }
    if let Some(n) = w.size(&t, "max_size", 1 << 40) {
        if n < 1 << 20 {
            let span = t.span_of("max_size");
            w.error(&span, &t.key("max_size"), "must be at least 1MB");
        } else {
            config.max_size = n;
        }
    }
    config
}
