//! The Browser Integrity Check: requests whose headers no real client sends.
//!
//! Every heuristic is one row of [`CHECKS`], with its reason; the first that fires refuses
//! the request (403, error 1010). They are deliberately few and certain: an edge that turns
//! away real browsers, `curl -A`, API clients, feed readers or archive crawlers does more
//! harm than the bots it stops, so each row names only what a real client never does:
//!
//! | id | fires when |
//! |---|---|
//! | `no_user_agent` | there is no User-Agent field |
//! | `empty_user_agent` | the User-Agent is empty or only spaces |
//! | `attack_tool` | the User-Agent names a vulnerability scanner or attack tool (sqlmap, nikto, nuclei, ...) |
//! | `browser_without_accept` | the User-Agent claims a mainstream browser, and there is no Accept field (every browser sends one, but for a WebSocket handshake) |
//! | `client_hints_from_non_chromium` | Sec-CH-UA client hints come with a User-Agent of Firefox or Safari, which do not send them (a Chromium browser whose User-Agent was changed by an extension fails this one: it is the one row with a known false positive, and a `skip` rule for `bic` is the way out) |
//!
//! What is not here on purpose: old or unusual browsers, missing Accept-Language or
//! Accept-Encoding (privacy tools strip them), HTTP/1.0, and the common libraries (curl,
//! wget, python-requests, Go, okhttp, Java, node): they are clients, and rules or rate
//! limits are the place to judge them.

use std::sync::LazyLock;

use aho_corasick::AhoCorasick;

/// What a request's headers show, read in one pass.
#[derive(Debug, Default, Clone, Copy)]
pub struct Seen<'a> {
    /// The User-Agent, if any (the first one).
    pub user_agent: Option<&'a [u8]>,
    /// Whether there is an Accept field.
    pub accept: bool,
    /// Whether there is a `Sec-CH-UA` field.
    pub client_hints: bool,
    /// Whether the request opens a WebSocket (an `Upgrade` field; the host sets it for
    /// HTTP/2's extended CONNECT): browsers send no Accept then.
    pub upgrade: bool,
}

impl<'a> Seen<'a> {
    /// Reads the fields that matter from `headers` (names in any case).
    pub fn of(headers: impl IntoIterator<Item = (&'a [u8], &'a [u8])>) -> Seen<'a> {
        let mut seen = Seen::default();
        for (name, value) in headers {
            if name.eq_ignore_ascii_case(b"user-agent") {
                seen.user_agent.get_or_insert(value);
            } else if name.eq_ignore_ascii_case(b"accept") {
                seen.accept = true;
            } else if name.eq_ignore_ascii_case(b"sec-ch-ua") {
                seen.client_hints = true;
            } else if name.eq_ignore_ascii_case(b"upgrade") {
                seen.upgrade = true;
            }
        }
        seen
    }
}

/// One heuristic.
#[derive(Debug)]
pub struct Check {
    /// Its name, in the log.
    pub id: &'static str,
    /// What it found, in the log.
    pub reason: &'static str,
    test: fn(&Seen<'_>) -> bool,
}

/// Every heuristic, in the order they are tried.
pub const CHECKS: &[Check] = &[
    Check {
        id: "no_user_agent",
        reason: "the request has no User-Agent",
        test: |s| s.user_agent.is_none(),
    },
    Check {
        id: "empty_user_agent",
        reason: "the User-Agent is empty",
        test: |s| {
            s.user_agent
                .is_some_and(|ua| ua.iter().all(|b| *b == b' ' || *b == b'\t'))
        },
    },
    Check {
        id: "attack_tool",
        reason: "the User-Agent names an attack tool or vulnerability scanner",
        test: |s| s.user_agent.is_some_and(|ua| TOOLS.is_match(ua)),
    },
    Check {
        id: "browser_without_accept",
        reason: "the User-Agent claims a browser, and there is no Accept field",
        test: |s| !s.accept && !s.upgrade && s.user_agent.is_some_and(claims_browser),
    },
    Check {
        id: "client_hints_from_non_chromium",
        reason: "Sec-CH-UA client hints come with a User-Agent of a browser that sends none",
        test: |s| s.client_hints && s.user_agent.is_some_and(claims_non_chromium),
    },
];

/// Signatures of tools that only attack: scanners and exploitation kits, in their own
/// User-Agents (case-insensitive).
const TOOL_SIGNATURES: &[&str] = &[
    "sqlmap",
    "nikto",
    "nmap scripting engine",
    "masscan",
    "zgrab",
    "nuclei",
    "acunetix",
    "netsparker",
    "wpscan",
    "dirbuster",
    "gobuster",
    "havij",
    "jorgee",
    "fimap",
    "w3af",
    "openvas",
    "zmeu",
    "morfeus",
    "commix",
    "arachni",
];

static TOOLS: LazyLock<AhoCorasick> = LazyLock::new(|| {
    AhoCorasick::builder()
        .ascii_case_insensitive(true)
        .build(TOOL_SIGNATURES)
        .expect("the signatures are plain strings")
});

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

/// A mainstream browser's User-Agent: `Mozilla/5.0` and a browser's product token.
fn claims_browser(ua: &[u8]) -> bool {
    ua.starts_with(b"Mozilla/5.0")
        && [&b"Chrome/"[..], b"Firefox/", b"Safari/", b"Edg/"]
            .iter()
            .any(|t| contains(ua, t))
}

/// Firefox or Safari (any WebKit browser on iOS), which send no Sec-CH-UA.
fn claims_non_chromium(ua: &[u8]) -> bool {
    claims_browser(ua)
        && !contains(ua, b"Chrome/")
        && !contains(ua, b"Chromium/")
        && (contains(ua, b"Firefox/") || contains(ua, b"Safari/"))
}

/// The first heuristic the request fails, if any.
pub fn check(seen: &Seen<'_>) -> Option<&'static Check> {
    CHECKS.iter().find(|c| (c.test)(seen))
}

#[cfg(test)]
mod tests;
