//! The challenge page: 403, with `rampart-mitigated: challenge`, and a proof of work the
//! browser solves by itself (challenge.js: WebCrypto's SHA-256, or its own where WebCrypto is
//! missing). No external resource: the script and style are inline, allowed by their hashes
//! in the Content-Security-Policy and nothing else is. A browser without JavaScript is told
//! why it waits, and for a managed challenge it passes by waiting (`no_script_wait`).

use std::sync::LazyLock;

use base64::Engine as _;
use bytes::Bytes;
use http::HeaderName;

use super::render::escape_html;
use crate::message::{Response, http_date_now};

const TEMPLATE: &str = include_str!("challenge.html");
const SCRIPT: &str = include_str!("challenge.js");
const STYLE: &str = include_str!("challenge.css");

/// The field every challenge answer carries, as Cloudflare's `cf-mitigated: challenge`.
pub const MITIGATED: HeaderName = HeaderName::from_static("rampart-mitigated");

/// The Content-Security-Policy of the page: its own script and style, by hash, and a form
/// that posts to this site.
static CSP: LazyLock<String> = LazyLock::new(|| {
    let hash = |text: &str| {
        let digest = ring::digest::digest(&ring::digest::SHA256, text.as_bytes());
        base64::engine::general_purpose::STANDARD.encode(digest.as_ref())
    };
    format!(
        "default-src 'none'; script-src 'sha256-{}'; style-src 'sha256-{}'; form-action 'self'; \
         base-uri 'none'; frame-ancestors 'none'",
        hash(SCRIPT),
        hash(STYLE)
    )
});

/// What one challenge page shows.
#[derive(Debug, Clone, Copy)]
pub struct ChallengePage<'a> {
    /// The signed challenge (hex).
    pub token: &'a str,
    /// Where the browser returns once it solved it.
    pub return_to: &'a str,
    /// Leading zero bits to find.
    pub difficulty: u8,
    /// Seconds after which a browser without JavaScript passes by waiting; 0: it cannot.
    pub wait_secs: u8,
    /// The request's ray id.
    pub ray_id: &'a str,
    /// The verification endpoint's path.
    pub endpoint: &'a str,
    /// The page answers a refused solution (a new challenge right after one was solved is
    /// then no sign of a lost cookie).
    pub after_refusal: bool,
}

/// `s` escaped for the page, `{` included, so that no value can spell a placeholder filled
/// after it.
fn fill(s: &str) -> String {
    escape_html(s).replace('{', "&#123;")
}

/// Percent-encodes a query value: everything but unreserved characters.
fn query_escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The page, as a 403 response.
pub fn challenge_page(p: &ChallengePage<'_>) -> Response {
    let (wait, noscript_text) = if p.wait_secs > 0 {
        let url = format!(
            "{}?t={}&n=wait&r={}",
            p.endpoint,
            query_escape(p.token),
            query_escape(p.return_to)
        );
        (
            format!(
                "<noscript><meta http-equiv=\"refresh\" content=\"{};url={}\"></noscript>",
                p.wait_secs,
                fill(&url)
            ),
            format!(
                "JavaScript is off, so this check cannot run in your browser. Instead, this page \
                 takes you on by itself in {} seconds.",
                p.wait_secs
            ),
        )
    } else {
        (
            String::new(),
            "This check needs JavaScript, which is off in your browser. Turn it on for this \
             site and reload the page; the check then runs by itself in a second or two."
                .to_string(),
        )
    };
    let body = TEMPLATE
        .replace("{{NOSCRIPT_WAIT}}", &wait)
        .replace("{{NOSCRIPT_TEXT}}", &escape_html(&noscript_text))
        .replace("{{STYLE}}", STYLE)
        .replace("{{SCRIPT}}", SCRIPT)
        .replace("{{RETRY}}", if p.after_refusal { "1" } else { "0" })
        .replace("{{DIFFICULTY}}", &p.difficulty.to_string())
        .replace("{{ENDPOINT}}", &fill(p.endpoint))
        .replace("{{TOKEN}}", &fill(p.token))
        .replace("{{RAY}}", &fill(p.ray_id))
        // Last: the one value a client chooses.
        .replace("{{RETURN}}", &fill(p.return_to));
    let mut r = Response::full(403, "text/html; charset=utf-8", Bytes::from(body));
    let head = &mut r.head;
    head.append(http::header::DATE, http_date_now());
    head.append(http::header::CACHE_CONTROL, Bytes::from_static(b"no-store"));
    head.append(
        http::header::CONTENT_SECURITY_POLICY,
        Bytes::from(CSP.as_str().to_owned()),
    );
    head.append(
        http::header::X_CONTENT_TYPE_OPTIONS,
        Bytes::from_static(b"nosniff"),
    );
    head.append(
        http::header::REFERRER_POLICY,
        Bytes::from_static(b"same-origin"),
    );
    head.append(MITIGATED, Bytes::from_static(b"challenge"));
    r
}

#[cfg(test)]
mod tests {
    use super::*;

    fn page(wait_secs: u8) -> String {
        let r = challenge_page(&ChallengePage {
            token: "ab12",
            return_to: "/cart?a=1&b=<x>&c={{SCRIPT}}",
            difficulty: 16,
            wait_secs,
            ray_id: "8f00000000000001",
            endpoint: "/cdn-cgi/rampart/challenge",
            after_refusal: false,
        });
        assert_eq!(r.head.status(), 403);
        assert_eq!(r.head.get("rampart-mitigated"), Some(&b"challenge"[..]));
        match r.body {
            crate::message::Body::Full(b) => String::from_utf8(b.to_vec()).unwrap(),
            _ => unreachable!(),
        }
    }

    #[test]
    fn the_page_escapes_what_it_shows_and_allows_only_its_own_script_and_style() {
        let html = page(0);
        assert!(
            html.contains("value=\"/cart?a=1&amp;b=&lt;x&gt;&amp;c=&#123;&#123;SCRIPT}}\""),
            "{html}"
        );
        assert!(!html.contains("{{"), "every placeholder is filled");
        assert!(html.contains("role=\"status\""));
        assert!(html.contains("<noscript><p>This check needs JavaScript"));
        assert!(!html.contains("http-equiv"));
        let csp = CSP.as_str();
        assert!(csp.starts_with("default-src 'none'; script-src 'sha256-"));
        // The hash is of the script exactly as the page carries it.
        let start = html.find("<script>").unwrap() + "<script>".len();
        let end = html.find("</script>").unwrap();
        let digest = ring::digest::digest(&ring::digest::SHA256, &html.as_bytes()[start..end]);
        let hash = base64::engine::general_purpose::STANDARD.encode(digest.as_ref());
        assert!(csp.contains(&hash));
        // No resource from anywhere else.
        assert!(!html.contains("src=") && !html.contains("href="));
    }

    #[test]
    fn a_managed_challenge_lets_a_browser_without_javascript_through_by_waiting() {
        let html = page(5);
        assert!(html.contains(
            "<meta http-equiv=\"refresh\" content=\"5;url=/cdn-cgi/rampart/challenge?t=ab12&amp;n=wait&amp;r=%2Fcart%3Fa%3D1%26b%3D%3Cx%3E%26c%3D%7B%7BSCRIPT%7D%7D\">"
        ), "{html}");
        assert!(html.contains("takes you on by itself in 5 seconds"));
    }
}
