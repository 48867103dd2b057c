//! `[fleet]`: several rampart nodes sharing rate-limit counters, cache purges and
//! configuration changes through one Redis (or Valkey).

use std::time::Duration;

use super::walk::{Table, Walker};

/// What a node does with rate limits while Redis cannot be reached.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum OnStoreError {
    /// `local`: count on this node alone, each rule's rate divided by the number of nodes.
    Local,
    /// `allow`: admit every request until Redis answers again.
    Allow,
}

/// `[fleet]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct FleetConfig {
    /// `redis`: `redis://[user:password@]host:port[/db]`.
    pub redis: String,
    /// `secret` or `secret_file`: the same on every node. Seeds the rate-limit keys, so that
    /// every node computes the same key for the same client.
    pub secret: Vec<u8>,
    /// `node`: this node's name among the fleet (default: host name and process id).
    pub node: String,
    /// `timeout`: the longest a round trip to Redis may take before it counts as failed.
    pub timeout: Duration,
    /// `sync_interval`: how often the rate-limit counters are synced.
    pub sync_interval: Duration,
    /// `on_store_error`.
    pub on_store_error: OnStoreError,
    /// `rate_limits`: share the rate-limit counters (default true).
    pub rate_limits: bool,
    /// `purge`: send and receive cache purges (default true).
    pub purge: bool,
    /// `config`: send and receive configuration changes made through the management API
    /// (default true).
    pub config: bool,
}

const FLEET_KEYS: &[&str] = &[
    "redis",
    "secret",
    "secret_file",
    "node",
    "timeout",
    "sync_interval",
    "on_store_error",
    "rate_limits",
    "purge",
    "config",
];

/// Shortest secret accepted: 128 bits.
const MIN_SECRET: usize = 16;

/// `[fleet]` of the root table, if there is one. Relative paths are taken from `base_dir`.
pub(super) fn read_fleet(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &std::path::Path,
) -> Option<FleetConfig> {
    let t = w.table("fleet", root.get("fleet")?, FLEET_KEYS)?;
    let redis = match w.string(&t, "redis") {
        Some((url, span)) => match check_url(&url) {
            Ok(()) => Some(url),
            Err(e) => {
                w.error(&span, &t.key("redis"), e);
                None
            }
        },
        None => {
            if t.get("redis").is_none() {
                w.missing(&t, "redis");
            }
            None
        }
    };
    let secret = read_secret(w, &t, base_dir);
    let node = match w.string(&t, "node") {
        Some((n, span)) if n.is_empty() || n.len() > 64 || n.chars().any(char::is_control) => {
            w.error(
                &span,
                &t.key("node"),
                "must be 1 to 64 printable characters",
            );
            None
        }
        Some((n, _)) => Some(n),
        None => Some(default_node_name()),
    };
    let timeout = w
        .duration(&t, "timeout", Duration::from_secs(10))
        .unwrap_or(Duration::from_millis(20));
    let sync_interval = w
        .duration(&t, "sync_interval", Duration::from_secs(10))
        .unwrap_or(Duration::from_millis(50));
    for (key, d) in [("timeout", timeout), ("sync_interval", sync_interval)] {
        if d < Duration::from_millis(1) {
            let span = t.span_of(key);
            w.error(&span, &t.key(key), "must be at least 1ms");
        }
    }
    let on_store_error = w
        .choice(
            &t,
            "on_store_error",
            &[
                ("local", OnStoreError::Local),
                ("allow", OnStoreError::Allow),
            ],
        )
        .unwrap_or(OnStoreError::Local);
    Some(FleetConfig {
        redis: redis?,
        secret: secret?,
        node: node?,
        timeout,
        sync_interval,
        on_store_error,
        rate_limits: w.boolean(&t, "rate_limits").unwrap_or(true),
        purge: w.boolean(&t, "purge").unwrap_or(true),
        config: w.boolean(&t, "config").unwrap_or(true),
    })
}

fn check_url(url: &str) -> Result<(), String> {
    if url.starts_with("rediss://") {
        return Err(
            "TLS to Redis (rediss://) is not supported: use redis:// on a private \
                    network or a local TLS tunnel"
                .into(),
        );
    }
    if !url.starts_with("redis://") {
        return Err(format!(
            "`{url}` is not a Redis URL: expected redis://host:port/db"
        ));
    }
    redis::Client::open(url)
        .map(drop)
        .map_err(|e| format!("`{url}` is not a valid Redis URL: {e}"))
}

fn read_secret(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    base_dir: &std::path::Path,
) -> Option<Vec<u8>> {
    let (secret, span, key) = match (w.string(t, "secret"), w.string(t, "secret_file")) {
        (Some(_), Some((_, span))) => {
            w.error(
                &span,
                &t.key("secret_file"),
                "set `secret` or `secret_file`, not both",
            );
            return None;
        }
        (Some((s, span)), None) => (s.into_bytes(), span, "secret"),
        (None, Some((path, span))) => match std::fs::read(base_dir.join(&path)) {
            Ok(mut bytes) => {
                while bytes.last().is_some_and(u8::is_ascii_whitespace) {
                    bytes.pop();
                }
                (bytes, span, "secret_file")
            }
            Err(e) => {
                w.error(
                    &span,
                    &t.key("secret_file"),
                    format!("cannot read `{path}`: {e}"),
                );
                return None;
            }
        },
        (None, None) => {
            if t.get("secret").is_none() && t.get("secret_file").is_none() {
                w.missing(t, "secret");
            }
            return None;
        }
    };
    if secret.len() < MIN_SECRET {
        w.error(
            &span,
            &t.key(key),
            format!(
                "the fleet secret must be at least {MIN_SECRET} bytes (e.g. `openssl rand -hex 32`), the same on every node"
            ),
        );
        return None;
    }
    Some(secret)
}

/// `host:pid`: unique among the processes of a fleet without configuration.
fn default_node_name() -> String {
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_else(|_| "rampart".into());
    format!("{host}:{}", std::process::id())
}
