//! `[[zone]]`: which hosts a zone serves and where its origin is.

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

use super::MAX_TIMEOUT;
use super::walk::{Table, Walker};

/// A zone: a site served by this edge.
#[derive(Clone, Debug)]
pub struct Zone {
    /// The zone's name (logged as ZoneName).
    pub name: String,
    /// Host patterns the zone serves.
    pub hosts: Vec<HostPattern>,
    /// Where requests are forwarded: one origin, or pools of them.
    pub origins: super::origins::Origins,
    /// Timeout of one TCP connect attempt to the origin.
    pub origin_connect_timeout: Duration,
    /// Extra connect attempts after a timed-out one, before 522.
    pub origin_connect_retries: u32,
    /// Connected, but no response head within this: 524.
    pub origin_response_timeout: Duration,
    /// IP access rules, custom rules, rate limiting rules and error pages.
    pub security: super::security::ZoneSecurity,
    /// The certificate served to clients whose SNI names one of the zone's hosts.
    pub tls: Option<crate::tls::ServerCert>,
    /// `tls = "acme"`: the certificate is obtained and renewed by ACME (see `[acme]`).
    pub acme: bool,
    /// For an `https://` origin: how its certificate is verified.
    pub origin_tls: Option<crate::tls::OriginTls>,
    /// The protocol spoken to the origin.
    pub origin_protocol: OriginProtocol,
    /// URL normalisation, body inspection, underscores in header names.
    pub request: super::request::RequestHandling,
    /// `[[zone.cache_rule]]`, in order.
    pub cache_rules: super::cache::CacheRules,
    /// Redirects, header rules, HTTPS and HSTS.
    pub traffic: super::traffic::Traffic,
    /// Security level, Browser Integrity Check and `[zone.challenge]`.
    pub challenge: super::challenge::ZoneChallenge,
}

/// `origin_protocol`: what rampart speaks to a zone's origin.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum OriginProtocol {
    /// HTTP/1.1, a pool of keep-alive connections (the default).
    #[default]
    Http1,
    /// HTTP/2: one multiplexed connection (ALPN `h2` over TLS, prior knowledge in cleartext).
    H2,
}

/// A host a zone serves: `example.test` or `*.example.test` (any depth of subdomain, not the apex).
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum HostPattern {
    /// Exactly this host (lowercase).
    Exact(String),
    /// Any subdomain of this suffix; holds the suffix with its leading dot (`.example.test`).
    Wildcard(String),
}

/// Where a zone's origin is.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct OriginAddr {
    /// Host name or IP literal (IPv6 without brackets).
    pub host: String,
    /// TCP port.
    pub port: u16,
    /// The address, when `host` is an IP literal (no DNS needed).
    pub ip: Option<SocketAddr>,
    /// `https://`: the connection to the origin is TLS.
    pub tls: bool,
}

impl OriginAddr {
    /// Parses `http://host[:port]` or `https://host[:port]`.
    pub fn parse(s: &str) -> Result<OriginAddr, String> {
        let (rest, tls) = if let Some(r) = s.strip_prefix("http://") {
            (r, false)
        } else if let Some(r) = s.strip_prefix("https://") {
            (r, true)
        } else {
            return Err(format!(
                "`{s}` is not an origin URL; write e.g. \"http://127.0.0.1:3000\" or \"https://origin.example:443\""
            ));
        };
        let rest = rest.strip_suffix('/').unwrap_or(rest);
        if rest.contains('/') || rest.contains('?') || rest.contains('#') {
            return Err("an origin is scheme, host and port only, without a path".into());
        }
        let authority = rampart_http::Authority::parse(rest.as_bytes())
            .map_err(|e| format!("`{rest}` is not a valid host[:port]: {e}"))?;
        let host = authority.host().to_string();
        let port = authority.port().unwrap_or(if tls { 443 } else { 80 });
        if port == 0 {
            return Err("the origin port must not be 0".into());
        }
        let ip = host
            .parse::<IpAddr>()
            .ok()
            .map(|ip| SocketAddr::new(ip, port));
        Ok(OriginAddr {
            host,
            port,
            ip,
            tls,
        })
    }
}

impl std::fmt::Display for OriginAddr {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host.contains(':') {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

impl HostPattern {
    fn parse(s: &str) -> Result<HostPattern, String> {
        let lower = s.to_ascii_lowercase();
        let (wild, name) = match lower.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, lower.as_str()),
        };
        let valid_label = |l: &str| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !l.starts_with('-')
                && !l.ends_with('-')
        };
        if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
            return Err(format!(
                "`{s}` is not a host name (write `example.test` or `*.example.test`)"
            ));
        }
        if name.parse::<IpAddr>().is_ok() {
            return Err(format!(
                "`{s}` is an IP address; zones serve host names (IP hosts get error 1003)"
            ));
        }
        Ok(if wild {
            HostPattern::Wildcard(format!(".{name}"))
        } else {
            HostPattern::Exact(name.to_string())
        })
    }
}

impl std::fmt::Display for HostPattern {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HostPattern::Exact(h) => f.write_str(h),
            HostPattern::Wildcard(suffix) => write!(f, "*{suffix}"),
        }
    }
}

const ZONE_KEYS: &[&str] = &[
    "name",
    "hosts",
    "origin",
    "origin_pool",
    "origin_connect_timeout",
    "origin_connect_retries",
    "origin_response_timeout",
    "custom_rule",
    "ip_access_rule",
    "rate_limit",
    "error_page",
    "tls",
    "origin_tls_verify",
    "origin_ca_file",
    "origin_protocol",
    "url_normalization",
    "max_body_inspection",
    "underscores_in_headers",
    "cache_rule",
    "always_use_https",
    "hsts",
    "redirect_rule",
    "request_header_rule",
    "response_header_rule",
    "security_level",
    "browser_integrity_check",
    "challenge",
];

pub(super) fn read_zones(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    cx: &super::security::SecurityContext<'_>,
) -> Option<Vec<Zone>> {
    let errors_before = w.errors.len();
    let tables = w.tables(root, "zone", ZONE_KEYS);
    if tables.is_empty() {
        match root.get("zone") {
            None => w.error(
                &(0..0),
                "zone",
                "no [[zone]] is configured: add one with `name`, `hosts` and `origin`",
            ),
            // `zone = []`: as wrong as no zone at all.
            Some(v) if v.get_ref().as_array().is_some_and(|a| a.is_empty()) => w.error(
                &root.span_of("zone"),
                "zone",
                "the list of zones is empty: add a [[zone]] with `name`, `hosts` and `origin`",
            ),
            // Another type: already reported by `tables`.
            Some(_) => {}
        }
        return None;
    }
    let mut zones = Vec::with_capacity(tables.len());
    let mut seen_hosts: HashMap<HostPattern, String> = HashMap::new();
    let mut seen_names: HashMap<String, ()> = HashMap::new();
    for (path, t) in &tables {
        let name = w.string(t, "name").map(|(n, span)| {
            // Names key the metrics and the log's ZoneName: two zones must not share one.
            if seen_names.insert(n.clone(), ()).is_some() {
                w.error(
                    &span,
                    &t.key("name"),
                    format!("another zone is already named `{n}`: zone names must be unique"),
                );
            }
            n
        });
        if name.is_none() && t.get("name").is_none() {
            w.missing(t, "name");
        }
        let zone_name = name.clone().unwrap_or_else(|| path.clone());
        let hosts = read_hosts(w, t, &zone_name, &mut seen_hosts);
        let default_host = hosts.iter().find_map(|h| match h {
            HostPattern::Exact(name) => Some(name.as_str()),
            HostPattern::Wildcard(_) => None,
        });
        let origins = super::origins::read_origins(w, t, default_host);
        let connect_timeout = w
            .duration(t, "origin_connect_timeout", MAX_TIMEOUT)
            .unwrap_or(Duration::from_secs(15));
        let retries = w
            .integer(t, "origin_connect_retries", 0..=10)
            .map_or(1, |(n, _)| n as u32);
        let response_timeout = w
            .duration(t, "origin_response_timeout", MAX_TIMEOUT)
            .unwrap_or(Duration::from_secs(100));
        let security = super::security::read_zone_security(w, t, cx);
        let (tls, acme) = match t.get("tls").map(|v| (v, v.get_ref().as_str())) {
            Some((_, Some("acme"))) => (None, true),
            Some((v, Some(other))) => {
                w.error(
                    &v.span(),
                    &t.key("tls"),
                    format!(
                        "`{other}` is not a certificate: write `tls = {{ cert = \"chain.pem\", key = \"key.pem\" }}` or `tls = \"acme\"`"
                    ),
                );
                (None, false)
            }
            _ => (super::read_certificate(w, t, "tls", cx.base_dir), false),
        };
        let origin_protocol = read_origin_protocol(w, t);
        let request = super::request::read_request_handling(w, t);
        let mut compiler =
            rampart_rules::Compiler::new(super::security::scheme()).with_lists(cx.lists.clone());
        let cache_rules = super::cache::read_cache_rules(w, t, &mut compiler);
        let traffic = super::traffic::read_traffic(w, t, &mut compiler);
        let challenge = super::challenge::read_zone_challenge(w, t);
        let origin_tls = read_origin_tls(
            w,
            t,
            origins.as_ref(),
            cx.base_dir,
            origin_protocol == OriginProtocol::H2,
        );
        if let (Some(name), Some(origins)) = (name, origins) {
            zones.push(Zone {
                name,
                hosts,
                origins,
                origin_connect_timeout: connect_timeout,
                origin_connect_retries: retries,
                origin_response_timeout: response_timeout,
                security,
                tls,
                acme,
                origin_tls,
                origin_protocol,
                request,
                cache_rules,
                traffic,
                challenge,
            });
        }
    }
    (w.errors.len() == errors_before).then_some(zones)
}

/// `hosts`: each a name or `*.` wildcard, served by no other zone.
fn read_hosts(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    zone_name: &str,
    seen: &mut HashMap<HostPattern, String>,
) -> Vec<HostPattern> {
    let mut hosts = Vec::new();
    match w.nonempty_strings(t, "hosts", "a zone needs at least one host") {
        None if t.get("hosts").is_none() => w.missing(t, "hosts"),
        None => {}
        Some(list) => {
            for (h, span) in list {
                match HostPattern::parse(&h) {
                    Ok(p) => {
                        if let Some(other) = seen.insert(p.clone(), zone_name.to_string()) {
                            let message = if hosts.contains(&p) {
                                format!("host `{h}` is listed twice in this zone")
                            } else {
                                format!("host `{h}` is already served by zone `{other}`")
                            };
                            w.error(&span, &t.key("hosts"), message);
                        }
                        hosts.push(p);
                    }
                    Err(m) => w.error(&span, &t.key("hosts"), m),
                }
            }
        }
    }
    hosts
}

/// `origin_protocol`: `http1` (the default) or `h2`.
fn read_origin_protocol(w: &mut Walker<'_>, t: &Table<'_, '_>) -> OriginProtocol {
    let protocols = [
        ("http1", OriginProtocol::Http1),
        ("http/1.1", OriginProtocol::Http1),
        ("h2", OriginProtocol::H2),
    ];
    w.choice(t, "origin_protocol", &protocols)
        .unwrap_or_default()
}

/// `origin_tls_verify` and `origin_ca_file`, for an `https://` origin.
fn read_origin_tls(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    origins: Option<&super::origins::Origins>,
    base_dir: &std::path::Path,
    h2: bool,
) -> Option<crate::tls::OriginTls> {
    let verify = w.boolean(t, "origin_tls_verify");
    let ca_file = w.string(t, "origin_ca_file");
    let origins = origins?;
    let Some(origin) = origins.all().find(|o| o.tls) else {
        for key in ["origin_tls_verify", "origin_ca_file"] {
            if t.get(key).is_some() {
                let span = t.span_of(key);
                w.warn(&span, &t.key(key), "has no effect: no origin is https://");
            }
        }
        return None;
    };
    let verify = verify.unwrap_or(true);
    if !verify {
        let span = t.span_of("origin_tls_verify");
        w.warn(
            &span,
            &t.key("origin_tls_verify"),
            format!(
                "the certificate of the origin {origin} is not verified: anyone on the path to it can read and change the traffic"
            ),
        );
    }
    let ca = match ca_file {
        Some((path, span)) => match crate::tls::read_ca_file(&base_dir.join(&path)) {
            Ok(roots) => Some(roots),
            Err(m) => {
                w.error(&span, &t.key("origin_ca_file"), m);
                return None;
            }
        },
        None => None,
    };
    match crate::tls::OriginTls::new(verify, ca, h2) {
        Ok(o) => Some(o),
        Err(m) => {
            let span = t.span_of("origin");
            w.error(&span, &t.key("origin"), m);
            None
        }
    }
}
