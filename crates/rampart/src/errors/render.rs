//! Rendering a generated error for the client: content negotiation and the three body formats.

use std::fmt::Write as _;
use std::net::IpAddr;

use super::catalogue::EdgeError;

/// The body format of a generated error, chosen from the request's Accept field.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// The branded HTML page (`text/html`, `*/*`, or no Accept at all).
    Html,
    /// RFC 9457 problem details sent as `application/json`.
    Json,
    /// RFC 9457 problem details sent as `application/problem+json`.
    ProblemJson,
    /// Plain text (`text/plain`, or anything we cannot produce).
    Plain,
}

impl Format {
    /// The Content-Type sent with this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Html => "text/html; charset=utf-8",
            Format::Json => "application/json",
            Format::ProblemJson => "application/problem+json",
            Format::Plain => "text/plain; charset=utf-8",
        }
    }
}

/// Chooses the body format from an Accept field value (RFC 9110 §12.5.1).
///
/// q-values are honoured; among equal q-values the first listed wins. No Accept, or an
/// empty one, gets HTML. A field that names nothing we can produce gets plain text.
pub fn negotiate(accept: Option<&[u8]>) -> Format {
    let Some(accept) = accept else {
        return Format::Html;
    };
    let Ok(accept) = std::str::from_utf8(accept) else {
        return Format::Plain;
    };
    if accept.trim().is_empty() {
        return Format::Html;
    }
    let mut best: Option<(u16, Format)> = None;
    for (media, q) in media_ranges(accept) {
        let format = match media.as_str() {
            "application/json" | "application/*" => Format::Json,
            "application/problem+json" => Format::ProblemJson,
            "text/html" | "text/*" | "*/*" | "application/xhtml+xml" => Format::Html,
            "text/plain" => Format::Plain,
            _ => continue,
        };
        if q == 0 {
            continue;
        }
        if best.is_none_or(|(bq, _)| q > bq) {
            best = Some((q, format));
        }
    }
    best.map_or(Format::Plain, |(_, f)| f)
}

/// The media ranges of an Accept value (lowercased) with their qvalues in thousandths (an
/// unreadable qvalue counts as 0).
fn media_ranges(accept: &str) -> impl Iterator<Item = (String, u16)> + '_ {
    accept.split(',').map(|range| {
        let mut parts = range.split(';');
        let media = parts.next().unwrap_or("").trim().to_ascii_lowercase();
        let mut q = 1000u16;
        for param in parts {
            if let Some((k, v)) = param.split_once('=')
                && k.trim().eq_ignore_ascii_case("q")
            {
                q = parse_qvalue(v.trim()).unwrap_or(0);
            }
        }
        (media, q)
    })
}

/// Whether an Accept value names an HTML page (`text/html` or `application/xhtml+xml`, not
/// refused with `q=0`): what a browser navigating to a page sends, and `*/*` is not.
pub fn names_html(accept: Option<&[u8]>) -> bool {
    let Some(accept) = accept.and_then(|a| std::str::from_utf8(a).ok()) else {
        return false;
    };
    media_ranges(accept)
        .any(|(media, q)| q > 0 && matches!(media.as_str(), "text/html" | "application/xhtml+xml"))
}

/// Parses a qvalue (RFC 9110 §12.4.2) into thousandths.
fn parse_qvalue(v: &str) -> Option<u16> {
    let (int, frac) = v.split_once('.').unwrap_or((v, ""));
    if frac.len() > 3 || !frac.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let whole = match int {
        "0" => 0,
        "1" => 1000,
        _ => return None,
    };
    let mut thousandths = 0u16;
    for (i, b) in frac.bytes().enumerate() {
        thousandths += u16::from(b - b'0') * [100, 10, 1][i];
    }
    if whole == 1000 && thousandths != 0 {
        return None;
    }
    Some(whole + thousandths)
}

/// Everything a rendered error says about one request.
#[derive(Debug)]
pub struct Problem<'a> {
    /// Which error.
    pub error: EdgeError,
    /// The specific reason for this request (e.g. which syntax rule broke at which offset).
    pub detail: &'a str,
    /// The request's ray id.
    pub ray_id: &'a str,
    /// The client's IP as the edge sees it.
    pub client_ip: IpAddr,
    /// The zone, when one was chosen.
    pub zone: Option<&'a str>,
    /// Seconds until a retry makes sense, when retryable.
    pub retry_after: Option<u32>,
    /// RFC 3339 timestamp of the response.
    pub timestamp: &'a str,
    /// Base of the `type` URI of problem details.
    pub docs_url: &'a str,
}

/// Renders `problem` in `format`.
pub fn render(problem: &Problem<'_>, format: Format) -> Vec<u8> {
    match format {
        Format::Html => render_html(problem),
        Format::Json | Format::ProblemJson => render_json(problem),
        Format::Plain => render_plain(problem),
    }
}

fn render_json(p: &Problem<'_>) -> Vec<u8> {
    let e = p.error.entry();
    let mut obj = serde_json::Map::new();
    obj.insert("type".into(), format!("{}{}", p.docs_url, e.name).into());
    obj.insert("title".into(), p.error.headline().into());
    obj.insert("status".into(), e.status.into());
    if !p.detail.is_empty() {
        obj.insert("detail".into(), p.detail.into());
    }
    obj.insert("instance".into(), p.ray_id.into());
    if let Some(code) = e.code {
        obj.insert("error_code".into(), code.into());
    }
    obj.insert("error_name".into(), e.name.into());
    obj.insert("ray_id".into(), p.ray_id.into());
    obj.insert("timestamp".into(), p.timestamp.into());
    if let Some(zone) = p.zone {
        obj.insert("zone".into(), zone.into());
    }
    obj.insert("retryable".into(), p.retry_after.is_some().into());
    if let Some(secs) = p.retry_after {
        obj.insert("retry_after".into(), secs.into());
    }
    obj.insert("what_you_should_do".into(), e.what_you_should_do.into());
    let mut out = serde_json::to_vec(&serde_json::Value::Object(obj)).unwrap_or_default();
    out.push(b'\n');
    out
}

fn render_plain(p: &Problem<'_>) -> Vec<u8> {
    let e = p.error.entry();
    let mut s = String::with_capacity(512);
    let _ = writeln!(s, "{}", p.error.headline());
    let _ = writeln!(s);
    if p.detail.is_empty() {
        let _ = writeln!(s, "What happened? {}", e.what_happened);
    } else {
        let _ = writeln!(s, "What happened? {} {}", e.what_happened, p.detail);
    }
    let _ = writeln!(s, "What can I do? {}", e.what_you_should_do);
    if let Some(secs) = p.retry_after {
        let _ = writeln!(s, "Retry after: {secs} seconds");
    }
    let _ = writeln!(s);
    let _ = writeln!(s, "Ray ID: {}", p.ray_id);
    let _ = writeln!(s, "Your IP: {}", p.client_ip);
    s.into_bytes()
}

fn render_html(p: &Problem<'_>) -> Vec<u8> {
    let e = p.error.entry();
    let mut s = String::with_capacity(3072);
    let headline = escape_html(&p.error.headline());
    // "403 · error 1020"; a status without a code of its own is not repeated as one.
    let code = e
        .code
        .map(|c| format!(" &middot; error {c}"))
        .unwrap_or_default();
    let detail = if p.detail.is_empty() {
        String::new()
    } else {
        format!("<p class=\"detail\">{}</p>", escape_html(p.detail))
    };
    let _ = write!(
        s,
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
<meta name=\"robots\" content=\"noindex\"><title>{headline}</title><style>{CSS}</style></head>\
<body><main><p class=\"status\">{status}{code}</p><h1>{title}</h1>\
<section><h2>What happened?</h2><p>{happened}</p>{detail}</section>\
<section><h2>What can I do?</h2><p>{todo}</p>{retry}</section>\
<dl><dt>Ray ID</dt><dd><code>{ray}</code></dd><dt>Your IP</dt><dd><code>{ip}</code></dd></dl>\
</main><footer>This page was generated by rampart on behalf of {site}.</footer></body></html>\n",
        status = e.status,
        title = escape_html(e.title),
        happened = escape_html(e.what_happened),
        todo = escape_html(e.what_you_should_do),
        retry = p
            .retry_after
            .map(|s| format!("<p>You may retry after {s} seconds.</p>"))
            .unwrap_or_default(),
        ray = escape_html(p.ray_id),
        ip = p.client_ip,
        site = escape_html(p.zone.unwrap_or("this site")),
    );
    s.into_bytes()
}

const CSS: &str = "body{margin:0;font:16px/1.5 system-ui,-apple-system,Segoe UI,Roboto,sans-serif;\
color:#1f2328;background:#f6f8fa}main{max-width:42rem;margin:2rem auto;padding:1.5rem;background:#fff;\
border:1px solid #d0d7de;border-radius:8px}h1{font-size:1.5rem;margin:.25rem 0 1rem}h2{font-size:1.05rem;\
margin:1.25rem 0 .25rem}.status{margin:0;color:#cf222e;font-weight:600;letter-spacing:.02em}\
.detail{color:#57606a}dl{display:grid;grid-template-columns:auto 1fr;gap:.25rem 1rem;margin-top:1.5rem;\
font-size:.9rem}dt{color:#57606a}dd{margin:0;word-break:break-all}footer{max-width:42rem;margin:0 auto 2rem;\
padding:0 1.5rem;color:#57606a;font-size:.8rem}@media(max-width:40rem){main{margin:0;border:0;border-radius:0}}";

/// Escapes text for HTML element content and attribute values.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accept_negotiation_follows_q_values_and_order() {
        let cases: &[(Option<&str>, Format)] = &[
            (None, Format::Html),
            (Some(""), Format::Html),
            (Some("*/*"), Format::Html),
            (Some("text/html"), Format::Html),
            (Some("application/json"), Format::Json),
            (Some("application/problem+json"), Format::ProblemJson),
            (Some("text/plain"), Format::Plain),
            (Some("image/png"), Format::Plain),
            (Some("text/html;q=0.5, application/json"), Format::Json),
            (
                Some("application/json;q=0.9, text/plain;q=0.9"),
                Format::Json,
            ),
            (Some("text/plain, application/json"), Format::Plain),
            (Some("application/json;q=0, text/html"), Format::Html),
            (
                Some("text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"),
                Format::Html,
            ),
            (Some("application/json;q=1.5"), Format::Plain),
        ];
        for (accept, want) in cases {
            assert_eq!(
                negotiate(accept.map(str::as_bytes)),
                *want,
                "Accept: {accept:?}"
            );
        }
    }

    fn problem() -> Problem<'static> {
        Problem {
            error: EdgeError::RateLimited,
            detail: "more than 5 requests in 60 s <script>",
            ray_id: "8a1b2c3d4e5f6a7b",
            client_ip: "192.0.2.1".parse().unwrap(),
            zone: Some("example.test"),
            retry_after: Some(42),
            timestamp: "2026-11-24T00:00:00Z",
            docs_url: "urn:rampart:error:",
        }
    }

    #[test]
    fn json_is_rfc9457_problem_details_with_rampart_extensions() {
        let v: serde_json::Value =
            serde_json::from_slice(&render(&problem(), Format::Json)).unwrap();
        assert_eq!(v["type"], "urn:rampart:error:rate_limited");
        assert_eq!(v["title"], "Error 1015: You are being rate limited");
        assert_eq!(v["status"], 429);
        assert_eq!(v["instance"], "8a1b2c3d4e5f6a7b");
        assert_eq!(v["error_code"], 1015);
        assert_eq!(v["retryable"], true);
        assert_eq!(v["retry_after"], 42);
        assert_eq!(v["zone"], "example.test");
    }

    #[test]
    fn json_omits_retry_after_when_not_retryable() {
        let mut p = problem();
        p.retry_after = None;
        let v: serde_json::Value = serde_json::from_slice(&render(&p, Format::Json)).unwrap();
        assert_eq!(v["retryable"], false);
        assert!(v.get("retry_after").is_none());
    }

    #[test]
    fn html_is_self_contained_and_escapes_the_detail() {
        let html = String::from_utf8(render(&problem(), Format::Html)).unwrap();
        assert!(html.contains("What happened?") && html.contains("What can I do?"));
        assert!(html.contains("8a1b2c3d4e5f6a7b") && html.contains("192.0.2.1"));
        assert!(html.contains("&lt;script&gt;") && !html.contains("<script>"));
        assert!(!html.contains("http://") && !html.contains("https://"));
    }
}
