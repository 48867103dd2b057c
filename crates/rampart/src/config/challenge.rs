//! Challenges and what decides them: `[challenge]` (the secrets and the clearance's life),
//! `[[threat_list]]` (the IP reputation `cf.threat_score` comes from), and each zone's
//! `security_level`, `browser_integrity_check` and `[zone.challenge]`.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use rampart_challenge::{Keys, MAX_DIFFICULTY};
use rampart_rules::IpSet;

use super::walk::{Table, Walker};

/// `[challenge]`.
#[derive(Clone, Debug)]
pub struct ChallengeConfig {
    /// `secret_file`'s keys; `None`: a secret of the process's own, made at start (kept
    /// across reloads, lost on restart, not shared with other nodes).
    pub keys: Option<Arc<Keys>>,
    /// `clearance_ttl`: how long a solved challenge lets a client through (default 30 min).
    pub clearance_ttl: Duration,
}

impl Default for ChallengeConfig {
    fn default() -> Self {
        ChallengeConfig {
            keys: None,
            clearance_ttl: Duration::from_secs(30 * 60),
        }
    }
}

const CHALLENGE_KEYS: &[&str] = &["secret_file", "clearance_ttl"];

/// `[challenge]` of the root table, or the defaults.
pub(super) fn read_challenge(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &Path,
) -> ChallengeConfig {
    let mut config = ChallengeConfig::default();
    let Some(t) = root
        .get("challenge")
        .and_then(|v| w.table("challenge", v, CHALLENGE_KEYS))
    else {
        return config;
    };
    if let Some(ttl) = w.duration(&t, "clearance_ttl", Duration::from_secs(86_400)) {
        if ttl < Duration::from_secs(60) {
            let span = t.span_of("clearance_ttl");
            w.error(&span, &t.key("clearance_ttl"), "must be at least 1m");
        } else {
            config.clearance_ttl = ttl;
        }
    }
    if let Some((file, span)) = w.string(&t, "secret_file") {
        let path = base_dir.join(&file);
        let read = std::fs::read_to_string(&path)
            .map_err(|e| format!("cannot read `{}`: {e}", path.display()))
            .and_then(|text| {
                // One secret a line: the first signs, a second (the previous one) still
                // verifies while it rotates out.
                let lines: Vec<&[u8]> = text
                    .lines()
                    .map(str::trim)
                    .filter(|l| !l.is_empty() && !l.starts_with('#'))
                    .map(str::as_bytes)
                    .collect();
                Keys::new(&lines).map_err(|e| format!("`{}`: {e}", path.display()))
            });
        match read {
            Ok(keys) => config.keys = Some(Arc::new(keys)),
            Err(message) => w.error(&span, &t.key("secret_file"), message),
        }
    }
    config
}

/// `[[threat_list]]`s: IP reputation. An address's threat score is the highest score of the
/// lists that hold it (0 when none does).
#[derive(Clone, Debug, Default)]
pub struct ThreatLists {
    /// Each list's addresses and score, highest score first.
    lists: Vec<(IpSet, u8)>,
}

impl ThreatLists {
    /// The threat score of `ip` (0 to 100), and whether a list holds it at all.
    pub fn score(&self, ip: std::net::IpAddr) -> Option<u8> {
        self.lists
            .iter()
            .find(|(set, _)| set.contains(ip))
            .map(|&(_, score)| score)
    }

    /// Whether there are no lists.
    pub fn is_empty(&self) -> bool {
        self.lists.is_empty()
    }
}

const THREAT_LIST_KEYS: &[&str] = &["path", "score"];

/// Every `[[threat_list]]`: FireHOL netsets or plain lists of addresses and CIDR ranges, one
/// a line, `#` comments. A bad line is an error naming the file and its line.
pub(super) fn read_threat_lists(
    w: &mut Walker<'_>,
    root: &Table<'_, '_>,
    base_dir: &Path,
) -> ThreatLists {
    let mut lists = Vec::new();
    for (_, t) in w.tables(root, "threat_list", THREAT_LIST_KEYS) {
        let score = w.integer(&t, "score", 0..=100).map(|(n, _)| n as u8);
        if score.is_none() && t.get("score").is_none() {
            w.missing(&t, "score");
        }
        let Some((file, span)) = w.string(&t, "path") else {
            if t.get("path").is_none() {
                w.missing(&t, "path");
            }
            continue;
        };
        let path = base_dir.join(&file);
        match read_netset(&path) {
            Ok(set) => {
                if let Some(score) = score {
                    lists.push((set, score));
                }
            }
            Err(message) => w.error(&span, &t.key("path"), message),
        }
    }
    lists.sort_by_key(|&(_, score)| std::cmp::Reverse(score));
    ThreatLists { lists }
}

/// A netset file's addresses and ranges.
fn read_netset(path: &Path) -> Result<IpSet, String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| format!("cannot read `{}`: {e}", path.display()))?;
    let mut set = IpSet::new();
    for (n, line) in text.lines().enumerate() {
        let entry = line.split('#').next().unwrap_or("").trim();
        if entry.is_empty() {
            continue;
        }
        let net = super::ip_rules::parse_net(entry)
            .map_err(|e| format!("`{}` line {}: {e}", path.display(), n + 1))?;
        set.insert(net);
    }
    Ok(set)
}

/// Which challenge an action asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeKind {
    /// `js_challenge`: the proof of work, unless the client has a clearance.
    Js,
    /// `managed_challenge`: as `js_challenge`, but a client with a good reputation (a
    /// `[[threat_list]]` of score 0 holds it) passes without work, and a client without
    /// JavaScript may wait instead (`no_script_wait`). Cloudflare's legacy `challenge` is
    /// read as this.
    Managed,
}

impl ChallengeKind {
    /// The kind an action's name asks for.
    pub fn parse(action: &str) -> Option<ChallengeKind> {
        match action {
            "js_challenge" => Some(ChallengeKind::Js),
            "managed_challenge" | "challenge" => Some(ChallengeKind::Managed),
            _ => None,
        }
    }

    /// The action's name, in the log (SecurityAction).
    pub fn name(self) -> &'static str {
        match self {
            ChallengeKind::Js => "js_challenge",
            ChallengeKind::Managed => "managed_challenge",
        }
    }
}

/// A zone's security level (Cloudflare's names): which threat scores are challenged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SecurityLevel {
    /// Nobody.
    Off,
    /// Scores above 49.
    EssentiallyOff,
    /// Scores above 24.
    Low,
    /// Scores above 14 (the default).
    Medium,
    /// Scores above 0.
    High,
    /// Everyone without a clearance ("I'm Under Attack"): a JS challenge.
    UnderAttack,
}

impl SecurityLevel {
    /// Every level and its name in the file and the API.
    pub const NAMES: [(&'static str, SecurityLevel); 6] = [
        ("off", SecurityLevel::Off),
        ("essentially_off", SecurityLevel::EssentiallyOff),
        ("low", SecurityLevel::Low),
        ("medium", SecurityLevel::Medium),
        ("high", SecurityLevel::High),
        ("under_attack", SecurityLevel::UnderAttack),
    ];

    /// Whether a client of `score` is challenged at this level (short of under attack).
    pub fn challenges(self, score: u8) -> bool {
        match self {
            SecurityLevel::Off => false,
            SecurityLevel::EssentiallyOff => score > 49,
            SecurityLevel::Low => score > 24,
            SecurityLevel::Medium => score > 14,
            SecurityLevel::High => score > 0,
            SecurityLevel::UnderAttack => true,
        }
    }
}

/// Paths a challenge never applies to by default, each can be turned back on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Exempt {
    /// RSS and Atom feeds, by path (`/feed`, `/rss`, `*.rss`, `*.atom`, `/feed.xml`, ...).
    pub feeds: bool,
    /// Any GET whose Accept asks for a feed and not HTML: off by default, since any client can
    /// say so.
    pub feed_accept: bool,
    /// `/robots.txt`.
    pub robots: bool,
    /// `/.well-known/*` (ACME, security.txt, app links).
    pub well_known: bool,
    /// `/favicon.ico`.
    pub favicon: bool,
}

impl Exempt {
    const NAMES: [&'static str; 5] = [
        "feeds",
        "feed_accept",
        "robots.txt",
        "well_known",
        "favicon.ico",
    ];

    fn defaults() -> Exempt {
        Exempt {
            feeds: true,
            feed_accept: false,
            robots: true,
            well_known: true,
            favicon: true,
        }
    }
}

/// A zone's challenge settings: `security_level`, `browser_integrity_check` and
/// `[zone.challenge]`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ZoneChallenge {
    /// `security_level` (default `medium`).
    pub security_level: SecurityLevel,
    /// `browser_integrity_check` (default on, as Cloudflare's).
    pub browser_integrity_check: bool,
    /// `[zone.challenge] difficulty`: leading zero bits of the proof of work (default 16:
    /// about 65,000 hashes, a second on a mid-range phone).
    pub difficulty: u8,
    /// `[zone.challenge] exempt` (default: feeds by path, robots.txt, well_known,
    /// favicon.ico).
    pub exempt: Exempt,
    /// `[zone.challenge] no_script_wait`: seconds a managed challenge makes a client without
    /// JavaScript wait instead of working (0: no such path).
    pub no_script_wait: u8,
}

impl Default for ZoneChallenge {
    fn default() -> Self {
        ZoneChallenge {
            security_level: SecurityLevel::Medium,
            browser_integrity_check: true,
            difficulty: 16,
            exempt: Exempt::defaults(),
            no_script_wait: 5,
        }
    }
}

const ZONE_CHALLENGE_KEYS: &[&str] = &["difficulty", "exempt", "no_script_wait"];

/// A zone's challenge settings.
pub(super) fn read_zone_challenge(w: &mut Walker<'_>, zone: &Table<'_, '_>) -> ZoneChallenge {
    let mut c = ZoneChallenge::default();
    if let Some(level) = w.choice(zone, "security_level", &SecurityLevel::NAMES) {
        c.security_level = level;
    }
    if let Some(on) = w.boolean(zone, "browser_integrity_check") {
        c.browser_integrity_check = on;
    }
    let Some(t) = zone
        .get("challenge")
        .and_then(|v| w.table(&zone.key("challenge"), v, ZONE_CHALLENGE_KEYS))
    else {
        return c;
    };
    if let Some((n, _)) = w.integer(&t, "difficulty", 1..=i64::from(MAX_DIFFICULTY)) {
        c.difficulty = n as u8;
    }
    if let Some((n, _)) = w.integer(&t, "no_script_wait", 0..=60) {
        c.no_script_wait = n as u8;
    }
    if let Some(names) = w.strings(&t, "exempt") {
        c.exempt = Exempt {
            feeds: false,
            feed_accept: false,
            robots: false,
            well_known: false,
            favicon: false,
        };
        for (name, span) in names {
            match name.as_str() {
                "feeds" => c.exempt.feeds = true,
                "feed_accept" => c.exempt.feed_accept = true,
                "robots.txt" => c.exempt.robots = true,
                "well_known" => c.exempt.well_known = true,
                "favicon.ico" => c.exempt.favicon = true,
                other => w.error(
                    &span,
                    &t.key("exempt"),
                    format!(
                        "unknown exemption `{other}`; one of: {}",
                        Exempt::NAMES.join(", ")
                    ),
                ),
            }
        }
    }
    c
}

#[cfg(test)]
mod tests {
    use crate::config::load_str;

    const ZONE: &str =
        "[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:9\"\n";

    fn dir(name: &str) -> std::path::PathBuf {
        let d = std::env::temp_dir().join(format!(
            "rampart-challenge-config-{name}-{}",
            std::process::id()
        ));
        std::fs::create_dir_all(&d).unwrap();
        d
    }

    #[test]
    fn a_secret_file_of_two_secrets_loads_and_mistakes_name_the_file_and_key() {
        let d = dir("secrets");
        std::fs::write(
            d.join("rotating.secret"),
            "# new first\n0123456789abcdef0123456789abcdef0123456789abcdef\n\n0123456789abcdef0123456789abcdef-old\n",
        )
        .unwrap();
        let src = format!(
            "[challenge]\nsecret_file = \"rotating.secret\"\nclearance_ttl = \"1h\"\n{ZONE}"
        );
        let loaded = load_str("t.toml", &src, Some(&d)).unwrap();
        let c = &loaded.config.challenge;
        assert!(c.keys.is_some());
        assert_eq!(c.clearance_ttl.as_secs(), 3600);

        std::fs::write(d.join("short.secret"), "too short\n").unwrap();
        for (src, says) in [
            (
                format!("[challenge]\nsecret_file = \"short.secret\"\n{ZONE}"),
                "short.secret`: secret 1 is shorter than 32 bytes",
            ),
            (
                format!("[challenge]\nsecret_file = \"missing.secret\"\n{ZONE}"),
                "cannot read",
            ),
            (
                format!("[challenge]\nclearance_ttl = \"5s\"\n{ZONE}"),
                "must be at least 1m",
            ),
        ] {
            let e = load_str("t.toml", &src, Some(&d)).unwrap_err().to_string();
            assert!(e.contains("t.toml:2:") && e.contains("challenge."), "{e}");
            assert!(e.contains(says), "{e}");
        }
        let _ = std::fs::remove_dir_all(&d);
    }

    #[test]
    fn threat_lists_score_by_their_highest_list_and_a_bad_line_names_the_file_and_line() {
        let d = dir("threats");
        std::fs::write(
            d.join("a.netset"),
            "# comment\n203.0.113.0/24\n198.51.100.7 # one\n",
        )
        .unwrap();
        std::fs::write(d.join("b.netset"), "203.0.113.9\n").unwrap();
        std::fs::write(d.join("bad.netset"), "203.0.113.1\nnot-an-address\n").unwrap();
        let src = format!(
            "{ZONE}\n[[threat_list]]\npath = \"a.netset\"\nscore = 20\n\n[[threat_list]]\npath = \"b.netset\"\nscore = 90\n"
        );
        let t = load_str("t.toml", &src, Some(&d)).unwrap().config.threats;
        assert_eq!(t.score("203.0.113.9".parse().unwrap()), Some(90));
        assert_eq!(t.score("203.0.113.8".parse().unwrap()), Some(20));
        assert_eq!(t.score("198.51.100.7".parse().unwrap()), Some(20));
        assert_eq!(t.score("192.0.2.1".parse().unwrap()), None);
        let src = format!("{ZONE}\n[[threat_list]]\npath = \"bad.netset\"\nscore = 20\n");
        let e = load_str("t.toml", &src, Some(&d)).unwrap_err().to_string();
        assert!(
            e.contains("bad.netset` line 2") && e.contains("threat_list[0].path"),
            "{e}"
        );
        let src = format!("{ZONE}\n[[threat_list]]\npath = \"a.netset\"\nscore = 101\n");
        assert!(load_str("t.toml", &src, Some(&d)).is_err());
        let _ = std::fs::remove_dir_all(&d);
    }
}
