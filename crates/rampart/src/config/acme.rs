//! `[acme]`: automatic certificates (RFC 8555) for zones with `tls = "acme"`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::walk::{Table, Walker};
use super::{HostPattern, ServerConfig, Zone};

/// `[acme]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcmeConfig {
    /// `directory`: the ACME server's directory URL (https).
    pub directory: String,
    /// `email`: the account's contact, when given.
    pub email: Option<String>,
    /// `storage`: where the account and the certificates are kept (relative paths from the
    /// configuration file's directory).
    pub storage: PathBuf,
    /// `ca_file`: trust these CAs for the directory's HTTPS instead of the system's (a private
    /// ACME server).
    pub ca_file: Option<PathBuf>,
    /// `renew_before`: how long before expiry a certificate is renewed.
    pub renew_before: Duration,
    /// `challenge`: how control of a name is proved.
    pub challenge: ChallengeKind,
}

/// `challenge`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `"http-01"`: a token answered over plain HTTP on port 80 (`listen`).
    Http01,
    /// `"tls-alpn-01"`: a certificate for the `acme-tls/1` protocol on port 443 (`tls_listen`).
    TlsAlpn01,
}

impl ChallengeKind {
    /// The name written in the configuration.
    pub fn name(self) -> &'static str {
        match self {
            ChallengeKind::Http01 => "http-01",
            ChallengeKind::TlsAlpn01 => "tls-alpn-01",
        }
    }
}

const ACME_KEYS: &[&str] = &[
    "directory",
    "email",
    "storage",
    "ca_file",
    "renew_before",
    "challenge",
];

/// Longest `renew_before`: a year.
const MAX_RENEW_BEFORE: Duration = Duration::from_secs(365 * 86_400);

/// `[acme]`, when present.
pub(super) fn read_acme(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &Path,
) -> Option<AcmeConfig> {
    let t = w.table("acme", root.get("acme")?, ACME_KEYS)?;
    let directory = match w.string(&t, "directory") {
        Some((d, _)) if d.starts_with("https://") && d.len() > "https://".len() => Some(d),
        Some((d, span)) => {
            w.error(
                &span,
                &t.key("directory"),
                format!(
                    "`{d}` is not an https:// URL; e.g. \"https://acme-v02.api.letsencrypt.org/directory\""
                ),
            );
            None
        }
        None => {
            if t.get("directory").is_none() {
                w.missing(&t, "directory");
            }
            None
        }
    };
    let email = match w.string(&t, "email") {
        Some((e, span)) => {
            let valid = e.split_once('@').is_some_and(|(user, domain)| {
                !user.is_empty() && domain.contains('.') && !e.contains(char::is_whitespace)
            });
            if !valid {
                w.error(
                    &span,
                    &t.key("email"),
                    format!("`{e}` is not an email address"),
                );
            }
            Some(e)
        }
        None => None,
    };
    let storage = base_dir.join(w.string(&t, "storage").map_or("acme".into(), |(s, _)| s));
    if storage.exists() && !storage.is_dir() {
        let span = t.span_of("storage");
        w.error(
            &span,
            &t.key("storage"),
            format!("{} exists and is not a directory", storage.display()),
        );
    }
    let ca_file = match w.string(&t, "ca_file") {
        Some((p, span)) => {
            let path = base_dir.join(p);
            if let Err(m) = crate::tls::read_ca_file(&path) {
                w.error(&span, &t.key("ca_file"), m);
            }
            Some(path)
        }
        None => None,
    };
    let renew_before = w
        .duration(&t, "renew_before", MAX_RENEW_BEFORE)
        .unwrap_or(Duration::from_secs(30 * 86_400));
    let kinds = [
        ("http-01", ChallengeKind::Http01),
        ("tls-alpn-01", ChallengeKind::TlsAlpn01),
    ];
    let challenge = w
        .choice(&t, "challenge", &kinds)
        .unwrap_or(ChallengeKind::Http01);
    Some(AcmeConfig {
        directory: directory?,
        email,
        storage,
        ca_file,
        renew_before,
        challenge,
    })
}

/// What zones with `tls = "acme"` need: `[acme]`, a TLS listener, the listener the challenge
/// is answered on, and names that HTTP-01 and TLS-ALPN-01 can prove (no wildcards).
pub(super) fn check_acme(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    acme: Option<&AcmeConfig>,
    server: &ServerConfig,
    zones: &[Zone],
) {
    let acme_zones: Vec<(usize, &Zone)> =
        zones.iter().enumerate().filter(|(_, z)| z.acme).collect();
    let span = root.span_of("acme");
    let Some(acme) = acme else {
        for (i, _) in &acme_zones {
            w.error(
                &span,
                &format!("zone[{i}].tls"),
                "`tls = \"acme\"` needs an [acme] section with `directory` (and `email`)",
            );
        }
        return;
    };
    if acme_zones.is_empty() {
        w.warn(
            &span,
            "acme",
            "no zone has `tls = \"acme\"`: nothing will be requested",
        );
        return;
    }
    if server.tls_listen.is_empty() {
        w.error(
            &span,
            "server.tls_listen",
            "zones with `tls = \"acme\"` need a TLS listener to serve their certificates",
        );
    }
    if acme.challenge == ChallengeKind::Http01 && server.listen.is_empty() {
        w.error(
            &span,
            "acme.challenge",
            "http-01 is answered on a plain HTTP listener (`listen`, port 80 for a public CA); add one or use challenge = \"tls-alpn-01\"",
        );
    }
    for (i, z) in acme_zones {
        let wildcards: Vec<String> = z
            .hosts
            .iter()
            .filter(|h| matches!(h, HostPattern::Wildcard(_)))
            .map(ToString::to_string)
            .collect();
        let key = format!("zone[{i}].tls");
        if wildcards.len() == z.hosts.len() {
            w.error(
                &span,
                &key,
                "the zone has only wildcard hosts, which http-01 and tls-alpn-01 cannot prove: list its names",
            );
        } else if !wildcards.is_empty() {
            w.warn(
                &span,
                &key,
                format!(
                    "{} not covered by the ACME certificate (http-01 and tls-alpn-01 cannot prove wildcards)",
                    wildcards.join(", ")
                ),
            );
        }
    }
}
