//! `access_log = "http://…"` and `[server.log_sink]`: access log lines sent in batches to a
//! collector over HTTP, spilled to disk while it is away.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::walk::{Table, Walker};

/// Where and how lines are sent.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HttpSinkConfig {
    /// The URL as written.
    pub url: String,
    /// `https`.
    pub tls: bool,
    /// The collector's host name or address.
    pub host: String,
    /// Its port.
    pub port: u16,
    /// The path and query posted to.
    pub path: String,
    /// `headers`: sent with every batch (e.g. `Authorization`).
    pub headers: Vec<(String, String)>,
    /// `spill_dir`: where batches wait while the collector is away.
    pub spill_dir: PathBuf,
    /// `spill_limit`: the most bytes kept there; the oldest batches go first (counted as
    /// dropped lines).
    pub spill_limit: u64,
    /// `memory_limit`: the most bytes of compressed batches waiting in memory before they go
    /// to disk.
    pub memory_limit: u64,
    /// `batch_bytes`: lines (uncompressed) per batch at most.
    pub batch_bytes: u64,
    /// `flush_interval`: the longest a line waits before its batch is sent.
    pub flush_interval: Duration,
    /// `timeout`: the longest one delivery may take.
    pub timeout: Duration,
}

const SINK_KEYS: &[&str] = &[
    "headers",
    "spill_dir",
    "spill_limit",
    "memory_limit",
    "batch_bytes",
    "flush_interval",
    "timeout",
];

/// The sink of an `http://` or `https://` access log; the error says what is wrong with the
/// URL.
pub(super) fn read_sink(
    w: &mut Walker<'_>,
    server: &Table<'_, '_>,
    url: &str,
    span: &std::ops::Range<usize>,
    base_dir: &Path,
) -> Option<HttpSinkConfig> {
    let (tls, host, port, path) = match parse_url(url) {
        Ok(parts) => parts,
        Err(e) => {
            w.error(span, &server.key("access_log"), e);
            return None;
        }
    };
    let mut c = HttpSinkConfig {
        url: url.to_string(),
        tls,
        host,
        port,
        path,
        headers: Vec::new(),
        spill_dir: base_dir.join("log-spill"),
        spill_limit: 1 << 30,
        memory_limit: 64 << 20,
        batch_bytes: 1 << 20,
        flush_interval: Duration::from_secs(1),
        timeout: Duration::from_secs(10),
    };
    let Some(t) = server
        .get("log_sink")
        .and_then(|v| w.table(&server.key("log_sink"), v, SINK_KEYS))
    else {
        return Some(c);
    };
    if let Some(v) = t.get("headers") {
        match v.get_ref().as_table() {
            Some(map) => {
                for (name, value) in map.iter() {
                    let name: &str = name.get_ref();
                    match value.get_ref().as_str() {
                        Some(s)
                            if is_token(name) && !s.bytes().any(|b| b == b'\r' || b == b'\n') =>
                        {
                            c.headers.push((name.to_string(), s.to_string()));
                        }
                        _ => w.error(
                            &value.span(),
                            &format!("{}.{name}", t.key("headers")),
                            "a header needs a field name and a string value on one line",
                        ),
                    }
                }
            }
            None => w.error(
                &v.span(),
                &t.key("headers"),
                "expected a table of field names and values, like { Authorization = \"Bearer …\" }",
            ),
        }
    }
    if let Some((dir, _)) = w.string(&t, "spill_dir") {
        c.spill_dir = base_dir.join(dir);
    }
    if let Some(n) = w.size(&t, "spill_limit", 1 << 50) {
        c.spill_limit = n;
    }
    if let Some(n) = w.size(&t, "memory_limit", 1 << 40) {
        c.memory_limit = n;
    }
    if let Some(n) = w.size(&t, "batch_bytes", 1 << 30) {
        c.batch_bytes = n.max(1);
    }
    if let Some(d) = w.duration(&t, "flush_interval", Duration::from_secs(3600)) {
        c.flush_interval = d.max(Duration::from_millis(10));
    }
    if let Some(d) = w.duration(&t, "timeout", Duration::from_secs(600)) {
        c.timeout = d.max(Duration::from_millis(10));
    }
    Some(c)
}

/// `(tls, host, port, path)` of an `http(s)://host[:port]/path` URL.
fn parse_url(url: &str) -> Result<(bool, String, u16, String), String> {
    let uri: http::Uri = url
        .parse()
        .map_err(|e| format!("`{url}` is not a URL: {e}"))?;
    let tls = match uri.scheme_str() {
        Some("http") => false,
        Some("https") => true,
        _ => {
            return Err(format!(
                "`{url}`: a collector URL starts with http:// or https://"
            ));
        }
    };
    let host = uri
        .host()
        .filter(|h| !h.is_empty())
        .ok_or_else(|| format!("`{url}` has no host"))?
        .trim_matches(['[', ']'])
        .to_string();
    let port = uri.port_u16().unwrap_or(if tls { 443 } else { 80 });
    let path = uri
        .path_and_query()
        .map_or("/".to_string(), |p| p.as_str().to_string());
    Ok((tls, host, port, path))
}

fn is_token(s: &str) -> bool {
    !s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn collector_urls() {
        assert_eq!(
            parse_url("http://127.0.0.1:9428/insert/jsonline?x=1").unwrap(),
            (
                false,
                "127.0.0.1".into(),
                9428,
                "/insert/jsonline?x=1".into()
            )
        );
        assert_eq!(
            parse_url("https://logs.example").unwrap(),
            (true, "logs.example".into(), 443, "/".into())
        );
        assert_eq!(parse_url("http://[::1]:8123/").unwrap().1, "::1");
        assert!(parse_url("ftp://x/").is_err());
        assert!(parse_url("http:///path").is_err());
    }
}
