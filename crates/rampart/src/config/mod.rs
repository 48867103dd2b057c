//! Configuration: one TOML file, read into an immutable [`Config`].
//!
//! Loading never stops at the first problem: every unknown key, wrong type and bad value is
//! reported with file, line, column and key (see [`walk::ConfigError`]), and nothing starts
//! with a configuration that has any error. The [`Config`] in memory is immutable; the server
//! holds it behind an `Arc` so a request sees one configuration from start to end.

pub mod acme;
pub mod analytics;
pub mod api;
pub mod cache;
pub mod challenge;
pub mod fleet;
pub mod ip_rules;
pub mod lists;
mod log_fields;
pub mod log_sink;
pub mod origins;
pub mod request;
pub mod save;
pub mod security;
mod server;
pub mod traffic;
pub mod walk;
mod zone;

use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::DeTable;

pub use log_fields::LogField;
pub use server::{AccessLogTarget, ServerConfig, TrustedProxies};
pub use walk::ConfigError;
use walk::{Table, Walker};
pub use zone::{HostPattern, OriginAddr, OriginProtocol, Zone};

/// The configuration used by `rampart run` without `-c`.
pub const EMBEDDED_DEFAULT: &str = include_str!("default.toml");

/// Name used for the embedded default in error messages.
pub const EMBEDDED_NAME: &str = "<embedded default>";

/// The whole configuration.
#[derive(Clone, Debug)]
pub struct Config {
    /// `[server]`.
    pub server: ServerConfig,
    /// `[limits]`.
    pub limits: LimitsConfig,
    /// `[[zone]]`, in file order.
    pub zones: Vec<Zone>,
    /// `[geoip]`: the opened databases (empty when none are configured).
    pub geoip: std::sync::Arc<crate::geo::GeoIp>,
    /// `[[list]]`: the named lists rules refer to as `$name`.
    pub lists: rampart_rules::Lists,
    /// `[cache]`: the edge cache's store.
    pub cache: cache::CacheConfig,
    /// `[acme]`: automatic certificates for zones with `tls = "acme"`.
    pub acme: Option<acme::AcmeConfig>,
    /// `[[api_token]]`: who may use the management API.
    pub api_tokens: Vec<api::ApiToken>,
    /// `[fleet]`: the Redis this node shares counters, purges and changes through.
    pub fleet: Option<fleet::FleetConfig>,
    /// `[analytics]`: how long, and where, the analytics rollups are kept.
    pub analytics: analytics::AnalyticsConfig,
    /// `[challenge]`: the secrets challenges are signed with, and the clearance's life.
    pub challenge: challenge::ChallengeConfig,
    /// `[[threat_list]]`: IP reputation, for `cf.threat_score` and security levels.
    pub threats: std::sync::Arc<challenge::ThreatLists>,
    /// The file this was read from (`None` for text, such as the embedded default): the
    /// management API keeps its changes there.
    pub source: Option<PathBuf>,
}

/// Request body limit of each plan.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Plan {
    /// 100 MB.
    Free,
    /// 100 MB.
    Pro,
    /// 200 MB.
    Business,
    /// 500 MB.
    Enterprise,
}

impl Plan {
    /// The request body limit of this plan, in bytes (decimal megabytes, as Cloudflare counts).
    pub fn max_body_bytes(self) -> u64 {
        match self {
            Plan::Free | Plan::Pro => 100_000_000,
            Plan::Business => 200_000_000,
            Plan::Enterprise => 500_000_000,
        }
    }
}

/// `[limits]`.
#[derive(Clone, Debug)]
pub struct LimitsConfig {
    /// The plan (sets the default body limit).
    pub plan: Plan,
    /// Largest request body accepted: 413 above it.
    pub max_body_bytes: u64,
    /// Longest request-target: 414 above it.
    pub max_uri_bytes: usize,
    /// Largest header section: 431 above it.
    pub max_header_bytes: usize,
    /// Most header fields: 431 above it.
    pub max_headers: usize,
}

impl LimitsConfig {
    /// The limits in the form rampart-http takes.
    pub fn http_limits(&self) -> rampart_http::Limits {
        rampart_http::Limits {
            max_uri_bytes: self.max_uri_bytes,
            max_header_bytes: self.max_header_bytes,
            max_headers: self.max_headers,
            ..rampart_http::Limits::default()
        }
    }
}

/// Everything wrong with a configuration, plus the warnings.
#[derive(Debug)]
pub struct ConfigErrors {
    /// The errors (at least one).
    pub errors: Vec<ConfigError>,
    /// Warnings found along the way.
    pub warnings: Vec<ConfigError>,
}

impl std::fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        for e in &self.errors {
            writeln!(f, "error: {e}")?;
        }
        let n = self.errors.len();
        write!(
            f,
            "{n} error{} in the configuration",
            if n == 1 { "" } else { "s" }
        )
    }
}

impl std::error::Error for ConfigErrors {}

/// A configuration that loaded, with the warnings it produced.
#[derive(Debug)]
pub struct Loaded {
    /// The configuration.
    pub config: Config,
    /// Non-fatal remarks.
    pub warnings: Vec<ConfigError>,
}

/// Reads and validates the file at `path`.
pub fn load_file(path: &Path) -> Result<Loaded, ConfigErrors> {
    let name = path.display().to_string();
    match std::fs::read_to_string(path) {
        Ok(src) => load_str(&name, &src, path.parent()).map(|mut loaded| {
            loaded.config.source = Some(path.to_path_buf());
            loaded
        }),
        Err(e) => Err(ConfigErrors {
            errors: vec![ConfigError {
                file: name,
                line: 0,
                column: 0,
                key: String::new(),
                message: format!("cannot read the configuration file: {e}"),
            }],
            warnings: Vec::new(),
        }),
    }
}

/// Parses and validates configuration text. `file` names it in errors; relative paths in
/// it are resolved against `base_dir`.
pub fn load_str(file: &str, src: &str, base_dir: Option<&Path>) -> Result<Loaded, ConfigErrors> {
    let mut w = Walker::new(file, src);
    let config = match DeTable::parse(src) {
        Ok(root) => build(&mut w, &root, base_dir.unwrap_or(Path::new("."))),
        Err(e) => {
            let span = e.span().unwrap_or(0..0);
            let message = e.message().trim().to_string();
            // The parser's span covers the offending key (e.g. a duplicate key), but its
            // message does not name it: the error's key is the text there, when it is one.
            let key = src
                .get(span.clone())
                .map(|k| k.trim().trim_matches('"'))
                .filter(|k| {
                    !k.is_empty()
                        && k.len() <= 64
                        && k.chars()
                            .all(|c| c.is_ascii_alphanumeric() || "_-.".contains(c))
                })
                .unwrap_or("");
            w.error(&span, key, format!("invalid TOML: {message}"));
            None
        }
    };
    match config {
        Some(config) if w.errors.is_empty() => Ok(Loaded {
            config,
            warnings: w.warnings,
        }),
        _ => Err(ConfigErrors {
            errors: w.errors,
            warnings: w.warnings,
        }),
    }
}

const ROOT_KEYS: &[&str] = &[
    "server",
    "limits",
    "geoip",
    "cache",
    "acme",
    "list",
    "zone",
    "api_token",
    "fleet",
    "analytics",
    "challenge",
    "threat_list",
];
const GEOIP_KEYS: &[&str] = &["country_db", "asn_db"];
const CERT_KEYS: &[&str] = &["cert", "key"];
const LIMITS_KEYS: &[&str] = &[
    "plan",
    "max_body_bytes",
    "max_uri_bytes",
    "max_header_bytes",
    "max_headers",
];

/// Longest timeout accepted anywhere (a day): longer values are almost certainly typos.
const MAX_TIMEOUT: Duration = Duration::from_secs(86_400);

fn build(w: &mut Walker<'_>, root: &toml::Spanned<DeTable<'_>>, base_dir: &Path) -> Option<Config> {
    let root = w.known_keys("", root.get_ref(), root.span(), ROOT_KEYS);
    let server = server::read_server(w, &root, base_dir);
    let limits = read_limits(w, &root);
    let geoip = read_geoip(w, &root, base_dir);
    let lists = lists::read_lists(w, &root);
    let cache = cache::read_cache(w, &root, base_dir);
    let acme = acme::read_acme(w, &root, base_dir);
    let fleet = fleet::read_fleet(w, &root, base_dir);
    let analytics = analytics::read_analytics(w, &root, base_dir);
    let challenge = challenge::read_challenge(w, &root, base_dir);
    let threats = challenge::read_threat_lists(w, &root, base_dir);
    let cx = security::SecurityContext {
        base_dir,
        has_country_db: geoip.as_ref().is_some_and(|g| g.has_country()),
        has_asn_db: geoip.as_ref().is_some_and(|g| g.has_asn()),
        lists: &lists,
    };
    let zones = zone::read_zones(w, &root, &cx);
    let api_tokens = api::read_api_tokens(w, &root, zones.as_deref());
    if let (Some(server), Some(zones)) = (&server, &zones) {
        check_tls(w, &root, server, zones);
        if acme.is_some() || root.get("acme").is_none() {
            acme::check_acme(w, &root, acme.as_ref(), server, zones);
        }
    }
    Some(Config {
        server: server?,
        limits: limits?,
        zones: zones?,
        geoip: std::sync::Arc::new(geoip?),
        lists,
        cache,
        acme,
        api_tokens,
        fleet,
        analytics,
        challenge,
        threats: std::sync::Arc::new(threats),
        source: None,
    })
}

/// TLS listeners need a certificate to serve; certificates need a TLS listener.
fn check_tls(w: &mut Walker<'_>, root: &Table<'_, '_>, server: &ServerConfig, zones: &[Zone]) {
    let any_cert =
        server.default_certificate.is_some() || zones.iter().any(|z| z.tls.is_some() || z.acme);
    let span = root.span_of("server");
    if !server.tls_listen.is_empty() && !any_cert {
        w.error(
            &span,
            "server.tls_listen",
            "TLS listeners need a certificate: set `tls = { cert = \"...\", key = \"...\" }` in a \
             [[zone]] or `server.default_certificate`",
        );
    } else if server.tls_listen.is_empty() && any_cert {
        w.warn(
            &span,
            "server.tls_listen",
            "certificates are configured but no TLS listener: add `tls_listen = [\"0.0.0.0:443\"]`",
        );
    }
}

fn read_geoip(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &Path,
) -> Option<crate::geo::GeoIp> {
    let Some(t) = sub_table(w, root, "geoip", GEOIP_KEYS) else {
        return Some(crate::geo::GeoIp::default());
    };
    let country = w.string(&t, "country_db");
    let asn = w.string(&t, "asn_db");
    let mut ok = true;
    let mut open = |w: &mut Walker<'_>,
                    key: &str,
                    v: Option<(String, std::ops::Range<usize>)>|
     -> Option<PathBuf> {
        let (p, span) = v?;
        let path = base_dir.join(&p);
        match crate::geo::GeoIp::open(
            (key == "country_db").then_some(path.as_path()),
            (key == "asn_db").then_some(path.as_path()),
        ) {
            Ok(_) => Some(path),
            Err(e) => {
                w.error(&span, &t.key(key), e);
                ok = false;
                None
            }
        }
    };
    let country = open(w, "country_db", country);
    let asn = open(w, "asn_db", asn);
    if !ok {
        return None;
    }
    crate::geo::GeoIp::open(country.as_deref(), asn.as_deref()).ok()
}

fn sub_table<'t, 'i>(
    w: &mut Walker<'_>,
    root: &Table<'t, 'i>,
    key: &str,
    known: &[&str],
) -> Option<Table<'t, 'i>> {
    match root.get(key) {
        Some(v) => w.table(key, v, known),
        None => None,
    }
}

/// `KEY = { cert = "chain.pem", key = "key.pem" }`: loads and checks the pair (see
/// [`crate::tls::ServerCert::load`]); a problem is an error at the key.
pub(crate) fn read_certificate(
    w: &mut Walker<'_>,
    t: &Table<'_, '_>,
    key: &str,
    base_dir: &Path,
) -> Option<crate::tls::ServerCert> {
    let v = t.get(key)?;
    let path = t.key(key);
    let c = w.table(&path, v, CERT_KEYS)?;
    let cert = w.string(&c, "cert");
    let private = w.string(&c, "key");
    if cert.is_none() && c.get("cert").is_none() {
        w.missing(&c, "cert");
    }
    if private.is_none() && c.get("key").is_none() {
        w.missing(&c, "key");
    }
    let ((cert, _), (private, _)) = (cert?, private?);
    match crate::tls::ServerCert::load(&base_dir.join(cert), &base_dir.join(private)) {
        Ok(c) => {
            let days_left = c.days_left();
            if days_left < 30 {
                w.warn(
                    &v.span(),
                    &path,
                    format!("the certificate expires in {days_left} days"),
                );
            }
            Some(c)
        }
        Err(message) => {
            w.error(&v.span(), &path, message);
            None
        }
    }
}

fn read_limits(w: &mut Walker<'_>, root: &Table<'_, '_>) -> Option<LimitsConfig> {
    let mut l = LimitsConfig {
        plan: Plan::Free,
        max_body_bytes: Plan::Free.max_body_bytes(),
        max_uri_bytes: rampart_http::DEFAULT_MAX_URI_BYTES,
        max_header_bytes: rampart_http::DEFAULT_MAX_HEADER_BYTES,
        max_headers: rampart_http::DEFAULT_MAX_HEADERS,
    };
    let Some(t) = sub_table(w, root, "limits", LIMITS_KEYS) else {
        return Some(l);
    };
    let errors_before = w.errors.len();
    let plans = [
        ("free", Plan::Free),
        ("pro", Plan::Pro),
        ("business", Plan::Business),
        ("enterprise", Plan::Enterprise),
    ];
    if let Some(plan) = w.choice(&t, "plan", &plans) {
        l.plan = plan;
        l.max_body_bytes = plan.max_body_bytes();
    }
    if let Some((n, _)) = w.integer(&t, "max_body_bytes", 0..=i64::MAX) {
        l.max_body_bytes = n as u64;
    }
    if let Some((n, _)) = w.integer(&t, "max_uri_bytes", 16..=1 << 20) {
        l.max_uri_bytes = n as usize;
    }
    if let Some((n, _)) = w.integer(&t, "max_header_bytes", 256..=16 << 20) {
        l.max_header_bytes = n as usize;
    }
    if let Some((n, _)) = w.integer(&t, "max_headers", 1..=10_000) {
        l.max_headers = n as usize;
    }
    (w.errors.len() == errors_before).then_some(l)
}

#[cfg(test)]
mod tests;
