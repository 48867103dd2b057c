//! `[server]`: listeners, timeouts, the access log, the admin listener, and who may name the
//! client (trusted proxies).

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::walk::{self, Table, Walker};
use super::{LogField, MAX_TIMEOUT, read_certificate, sub_table};

/// Where access log lines go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AccessLogTarget {
    /// `"off"`: no access log.
    Off,
    /// `"-"`: standard output.
    Stdout,
    /// A file, appended to.
    File(PathBuf),
    /// A collector, over HTTP.
    Http(Box<super::log_sink::HttpSinkConfig>),
}

/// `[server]`.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// Addresses to accept HTTP/1.1 on.
    pub listen: Vec<SocketAddr>,
    /// Access log destination.
    pub access_log: AccessLogTarget,
    /// What each access log line holds, in order (every field unless configured).
    pub access_log_fields: Vec<LogField>,
    /// The whole request head must arrive within this, else 408.
    pub client_header_timeout: Duration,
    /// Longest idle time between two reads of a request body, else 408.
    pub client_body_timeout: Duration,
    /// An idle keep-alive connection is closed silently after this.
    pub keepalive_timeout: Duration,
    /// On shutdown, in-flight requests get this long to finish.
    pub drain_timeout: Duration,
    /// Where `/metrics` is served; `None` when `admin_listen = "off"`.
    pub admin_listen: Option<SocketAddr>,
    /// Prefix of the `type` URI of problem details; the error name is appended.
    pub error_docs_url: String,
    /// Peers allowed to name the client (X-Forwarded-For or `client_ip_header`).
    pub trusted_proxies: TrustedProxies,
    /// Worker threads serving connections (one per core by default).
    pub workers: usize,
    /// Addresses to accept TLS on (HTTP/1.1 over TLS).
    pub tls_listen: Vec<SocketAddr>,
    /// The certificate for clients without SNI, or whose SNI no zone's certificate covers.
    pub default_certificate: Option<crate::tls::ServerCert>,
    /// Where changes made through the management API are recorded (who, what, before and
    /// after), one JSON line each; `None` when `audit_log = "off"`.
    pub audit_log: Option<PathBuf>,
}

/// The trusted proxies and how they pass on the client's address (`server.trusted_proxies`,
/// `server.client_ip_header`).
#[derive(Clone, Debug, Default)]
pub struct TrustedProxies {
    /// Networks whose connections may name the client.
    pub networks: Vec<ipnet::IpNet>,
    /// A header holding exactly the client's IP, used instead of X-Forwarded-For.
    pub header: Option<String>,
}

const SERVER_KEYS: &[&str] = &[
    "listen",
    "access_log",
    "access_log_fields",
    "client_header_timeout",
    "client_body_timeout",
    "keepalive_timeout",
    "drain_timeout",
    "admin_listen",
    "error_docs_url",
    "trusted_proxies",
    "client_ip_header",
    "workers",
    "tls_listen",
    "default_certificate",
    "audit_log",
    "log_sink",
];
pub(super) fn read_server(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &Path,
) -> Option<ServerConfig> {
    let mut s = ServerConfig {
        listen: vec![SocketAddr::from(([127, 0, 0, 1], 8080))],
        access_log: AccessLogTarget::Stdout,
        access_log_fields: LogField::ALL.to_vec(),
        client_header_timeout: Duration::from_secs(10),
        client_body_timeout: Duration::from_secs(30),
        keepalive_timeout: Duration::from_secs(75),
        drain_timeout: Duration::from_secs(30),
        admin_listen: Some(SocketAddr::from(([127, 0, 0, 1], 9090))),
        error_docs_url: "urn:rampart:error:".to_string(),
        trusted_proxies: Default::default(),
        workers: std::thread::available_parallelism().map_or(1, |n| n.get()),
        tls_listen: Vec::new(),
        default_certificate: None,
        audit_log: Some(base_dir.join("audit.jsonl")),
    };
    let Some(t) = sub_table(w, root, "server", SERVER_KEYS) else {
        return Some(s);
    };
    let errors_before = w.errors.len();
    read_listeners(w, &t, &mut s);
    s.default_certificate = read_certificate(w, &t, "default_certificate", base_dir);
    if let Some(target) = read_access_log(w, &t, base_dir) {
        s.access_log = target;
    }
    if !matches!(s.access_log, AccessLogTarget::Http(_)) && t.get("log_sink").is_some() {
        let span = t.span_of("log_sink");
        w.warn(
            &span,
            &t.key("log_sink"),
            "has no effect unless access_log is an http:// or https:// collector URL",
        );
    }
    if let Some((v, span)) = w.string(&t, "audit_log") {
        s.audit_log = match v.as_str() {
            "off" => None,
            "" => {
                w.error(
                    &span,
                    &t.key("audit_log"),
                    "an empty path: give a file or \"off\"",
                );
                None
            }
            path => Some(base_dir.join(path)),
        };
    }
    if let Some(fields) = read_log_fields(w, &t) {
        s.access_log_fields = fields;
    }
    for (key, slot) in [
        ("client_header_timeout", &mut s.client_header_timeout),
        ("client_body_timeout", &mut s.client_body_timeout),
        ("keepalive_timeout", &mut s.keepalive_timeout),
        ("drain_timeout", &mut s.drain_timeout),
    ] {
        if let Some(d) = w.duration(&t, key, MAX_TIMEOUT) {
            *slot = d;
        }
    }
    if let Some((n, _)) = w.integer(&t, "workers", 1..=1024) {
        s.workers = n as usize;
    }
    if let Some((v, _)) = w.string(&t, "error_docs_url") {
        s.error_docs_url = v;
    }
    read_trusted_proxies(w, &t, &mut s.trusted_proxies);
    (w.errors.len() == errors_before).then_some(s)
}

/// `listen`, `tls_listen` and `admin_listen`: either of the first two may be empty (an
/// HTTPS-only or a cleartext-only edge), not both; no two may share a port.
fn read_listeners(w: &mut Walker<'_>, t: &Table<'_, '_>, s: &mut ServerConfig) {
    let errors_before = w.errors.len();
    let mut bound: Vec<(SocketAddr, &'static str)> = Vec::new();
    if let Some(list) = read_addresses(w, t, "listen", &mut bound) {
        s.listen = list;
    }
    if let Some(list) = read_addresses(w, t, "tls_listen", &mut bound) {
        s.tls_listen = list;
    }
    // Unless their addresses were wrong, which is said already.
    if s.listen.is_empty() && s.tls_listen.is_empty() && w.errors.len() == errors_before {
        let key = if t.get("listen").is_some() {
            "listen"
        } else {
            "tls_listen"
        };
        w.error(
            &t.span_of(key),
            &t.key(key),
            "no address to listen on: give `listen` or `tls_listen` at least one, e.g. [\"127.0.0.1:8080\"]",
        );
    }
    if let Some((v, span)) = w.string(t, "admin_listen") {
        s.admin_listen = match v.as_str() {
            "off" => None,
            a => match a.parse::<SocketAddr>() {
                Ok(addr) => {
                    if !addr.ip().is_loopback() {
                        w.warn(&span, &t.key("admin_listen"), "the admin listener is reachable from other machines: /metrics and /healthz have no authentication (the API under /client/v4/ needs an [[api_token]] from any address but loopback)");
                    }
                    check_not_bound(w, t, "admin_listen", addr, &span, &mut bound);
                    Some(addr)
                }
                Err(_) => {
                    w.error(
                        &span,
                        &t.key("admin_listen"),
                        format!("`{a}` is not an IP:port address, or \"off\""),
                    );
                    None
                }
            },
        };
    }
}

/// `access_log`: a file (its directory must exist), `"-"` for stdout, or `"off"`.
fn read_access_log(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    base_dir: &Path,
) -> Option<AccessLogTarget> {
    let (v, span) = w.string(t, "access_log")?;
    Some(match v.as_str() {
        "off" => AccessLogTarget::Off,
        "-" => AccessLogTarget::Stdout,
        url if url.starts_with("http://") || url.starts_with("https://") => {
            match super::log_sink::read_sink(w, t, url, &span, base_dir) {
                Some(sink) => AccessLogTarget::Http(Box::new(sink)),
                None => AccessLogTarget::Off,
            }
        }
        "" => {
            w.error(
                &span,
                &t.key("access_log"),
                "an empty path: give a file, \"-\" for stdout, or \"off\"",
            );
            AccessLogTarget::Off
        }
        path => {
            let file = base_dir.join(path);
            // The file itself is created at start-up; its directory must already exist.
            let dir = file.parent().filter(|d| !d.as_os_str().is_empty());
            let problem = if file.is_dir() {
                Some("it is a directory")
            } else if dir.is_some_and(|d| !d.is_dir()) {
                Some("its directory does not exist")
            } else {
                None
            };
            if let Some(why) = problem {
                w.error(
                    &span,
                    &t.key("access_log"),
                    format!("cannot write {}: {why}", file.display()),
                );
            }
            AccessLogTarget::File(file)
        }
    })
}

/// `trusted_proxies` (addresses and ranges without host bits) and `client_ip_header`.
fn read_trusted_proxies(w: &mut Walker<'_>, t: &Table<'_, '_>, proxies: &mut TrustedProxies) {
    for (net, span) in w.strings(t, "trusted_proxies").unwrap_or_default() {
        let parsed = net
            .parse::<ipnet::IpNet>()
            .or_else(|_| net.parse::<std::net::IpAddr>().map(ipnet::IpNet::from));
        match parsed {
            Ok(n) if n.trunc() != n => w.error(
                &span,
                &t.key("trusted_proxies"),
                format!("`{net}` has host bits set; did you mean `{}`?", n.trunc()),
            ),
            Ok(n) => proxies.networks.push(n),
            Err(_) => w.error(
                &span,
                &t.key("trusted_proxies"),
                format!("`{net}` is not an IP address or CIDR range"),
            ),
        }
    }
    let Some((h, span)) = w.string(t, "client_ip_header") else {
        return;
    };
    if h.is_empty()
        || !h
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    {
        w.error(
            &span,
            &t.key("client_ip_header"),
            format!("`{h}` is not a header name"),
        );
        return;
    }
    if proxies.networks.is_empty() && t.get("trusted_proxies").is_none() {
        w.warn(
            &span,
            &t.key("client_ip_header"),
            "has no effect without trusted_proxies",
        );
    }
    proxies.header = Some(h.to_ascii_lowercase());
}

/// `access_log_fields`: names from [`LogField::NAMES`], each once; an empty list is an error
/// (`access_log = "off"` logs nothing).
fn read_log_fields(w: &mut Walker<'_>, t: &Table<'_, '_>) -> Option<Vec<LogField>> {
    const KEY: &str = "access_log_fields";
    let list = w.nonempty_strings(
        t,
        KEY,
        "lists no field; name the fields to log, or set access_log = \"off\"",
    )?;
    if list.is_empty() {
        return None;
    }
    let mut fields = Vec::with_capacity(list.len());
    for (name, span) in list {
        match LogField::from_name(&name) {
            Some(f) if fields.contains(&f) => {
                w.error(&span, &t.key(KEY), format!("`{name}` is listed twice"));
            }
            Some(f) => fields.push(f),
            None => {
                let hint = match walk::nearest(&name, LogField::NAMES) {
                    Some(n) => format!("did you mean `{n}`?"),
                    None => format!("the fields are {}", LogField::NAMES.join(", ")),
                };
                w.error(
                    &span,
                    &t.key(KEY),
                    format!("`{name}` is not an access log field; {hint}"),
                );
            }
        }
    }
    Some(fields)
}

/// A list of `IP:port` addresses; an empty list is an error (omit the key instead).
/// Whether two listening addresses would share a port: the same port (not 0) and the same IP,
/// or either one every IP.
fn overlap(a: SocketAddr, b: SocketAddr) -> bool {
    a.port() == b.port()
        && a.port() != 0
        && (a.ip() == b.ip() || a.ip().is_unspecified() || b.ip().is_unspecified())
}

/// Reports `addr` (of `key`) when an address read before it already takes its port: the two
/// listeners would split its connections between them.
fn check_not_bound(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    key: &'static str,
    addr: SocketAddr,
    span: &std::ops::Range<usize>,
    bound: &mut Vec<(SocketAddr, &'static str)>,
) {
    if let Some((other, other_key)) = bound.iter().find(|(b, _)| overlap(*b, addr)) {
        w.error(
            span,
            &t.key(key),
            format!("`{addr}` takes the same port as `{other}` in server.{other_key}"),
        );
    }
    bound.push((addr, key));
}

fn read_addresses(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    key: &'static str,
    bound: &mut Vec<(SocketAddr, &'static str)>,
) -> Option<Vec<SocketAddr>> {
    let list = w.strings(t, key)?;
    Some(
        list.into_iter()
            .filter_map(|(a, span)| match a.parse::<SocketAddr>() {
                Ok(addr) => {
                    check_not_bound(w, t, key, addr, &span, bound);
                    Some(addr)
                }
                Err(_) => {
                    w.error(
                        &span,
                        &t.key(key),
                        format!(
                            "`{a}` is not an IP:port address (e.g. \"0.0.0.0:80\" or \"[::]:80\")"
                        ),
                    );
                    None
                }
            })
            .collect(),
    )
}
