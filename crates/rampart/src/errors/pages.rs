//! Custom error pages (`[[zone.error_page]]`): the zone's own HTML for generated errors and
//! for origin 4xx/5xx.
//!
//! A page replaces only the body: the status and the headers that matter (WWW-Authenticate,
//! Allow, Retry-After, the ray id) stay. Pages are HTML, so they are used when the client's
//! Accept negotiates HTML; API clients asking for JSON keep RFC 9457 problem details.
//!
//! Which page applies, most specific first: the category (`ip_block`, `waf_block`,
//! `rate_limit`), then `1xxx` (any generated error with a 1xxx code), then the exact status
//! (`"404"`), then the class (`4xx`, `5xx`).

use std::sync::Arc;

use super::EdgeError;

/// Largest page file accepted.
pub const MAX_PAGE_BYTES: u64 = 1024 * 1024;

/// What a page is for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PageFor {
    /// 1005, 1006, 1009: IP access rules.
    IpBlock,
    /// 1020 (and the managed WAF's 1012, later).
    WafBlock,
    /// 1015: rate limiting.
    RateLimit,
    /// Any generated error with a 1xxx code.
    AnyCode,
    /// Exactly this status.
    Status(u16),
    /// Any status of this class (4 or 5).
    Class(u16),
}

impl PageFor {
    /// Parses the `for` key.
    pub fn parse(s: &str) -> Result<PageFor, String> {
        Ok(match s {
            "ip_block" => PageFor::IpBlock,
            "waf_block" => PageFor::WafBlock,
            "rate_limit" => PageFor::RateLimit,
            "1xxx" => PageFor::AnyCode,
            "4xx" => PageFor::Class(4),
            "5xx" => PageFor::Class(5),
            n => match n.parse::<u16>() {
                Ok(code) if (400..600).contains(&code) => PageFor::Status(code),
                _ => {
                    return Err(format!(
                        "`{s}` is not a page target; use ip_block, waf_block, rate_limit, 1xxx, 4xx, 5xx or a status from 400 to 599"
                    ));
                }
            },
        })
    }

    fn rank(&self) -> u8 {
        match self {
            PageFor::IpBlock | PageFor::WafBlock | PageFor::RateLimit => 0,
            PageFor::AnyCode => 1,
            PageFor::Status(_) => 2,
            PageFor::Class(_) => 3,
        }
    }
}

/// A zone's custom pages.
#[derive(Clone, Debug, Default)]
pub struct ErrorPages {
    pages: Vec<(PageFor, Arc<str>)>,
}

/// The values a template may show.
pub struct PageVars<'a> {
    /// `::RAY_ID::`
    pub ray_id: &'a str,
    /// `::CLIENT_IP::`
    pub client_ip: &'a str,
    /// `::ERROR_CODE::` (the 1xxx code, else the status)
    pub error_code: u16,
    /// `::ERROR_TITLE::`
    pub title: &'a str,
    /// `::ERROR_DETAIL::`
    pub detail: &'a str,
}

impl ErrorPages {
    /// Pages, each with what it is for and its template.
    pub fn new(mut pages: Vec<(PageFor, Arc<str>)>) -> ErrorPages {
        pages.sort_by_key(|(f, _)| f.rank());
        ErrorPages { pages }
    }

    /// Whether the zone has no pages.
    pub fn is_empty(&self) -> bool {
        self.pages.is_empty()
    }

    /// The page for a generated error.
    pub fn for_generated(&self, error: EdgeError) -> Option<&Arc<str>> {
        let entry = error.entry();
        self.pages.iter().find_map(|(f, page)| {
            let hit = match f {
                PageFor::IpBlock => matches!(
                    error,
                    EdgeError::IpBanned | EdgeError::AsnBanned | EdgeError::CountryBanned
                ),
                PageFor::WafBlock => matches!(error, EdgeError::FirewallRule),
                PageFor::RateLimit => matches!(error, EdgeError::RateLimited),
                PageFor::AnyCode => entry.code.is_some(),
                PageFor::Status(s) => *s == entry.status,
                PageFor::Class(c) => entry.status / 100 == *c,
            };
            hit.then_some(page)
        })
    }

    /// The page for an origin response with `status`.
    pub fn for_origin(&self, status: u16) -> Option<&Arc<str>> {
        self.pages.iter().find_map(|(f, page)| {
            let hit = match f {
                PageFor::Status(s) => *s == status,
                PageFor::Class(c) => status / 100 == *c,
                _ => false,
            };
            hit.then_some(page)
        })
    }
}

/// Fills a template: each `::NAME::` placeholder is replaced by its HTML-escaped value; all
/// other text is sent as is.
pub fn render_page(template: &str, vars: &PageVars<'_>) -> Vec<u8> {
    let esc = super::render::escape_html;
    let code = vars.error_code.to_string();
    let pairs: [(&str, String); 5] = [
        ("::RAY_ID::", esc(vars.ray_id)),
        ("::CLIENT_IP::", esc(vars.client_ip)),
        ("::ERROR_CODE::", code),
        ("::ERROR_TITLE::", esc(vars.title)),
        ("::ERROR_DETAIL::", esc(vars.detail)),
    ];
    let mut out = String::with_capacity(template.len() + 128);
    let mut rest = template;
    while let Some(i) = rest.find("::") {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        match pairs.iter().find(|(k, _)| tail.starts_with(k)) {
            Some((k, v)) => {
                out.push_str(v);
                rest = &tail[k.len()..];
            }
            None => {
                out.push_str("::");
                rest = &tail[2..];
            }
        }
    }
    out.push_str(rest);
    out.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pages(list: &[(&str, &str)]) -> ErrorPages {
        ErrorPages::new(
            list.iter()
                .map(|(f, t)| (PageFor::parse(f).unwrap(), Arc::from(*t)))
                .collect(),
        )
    }

    #[test]
    fn the_most_specific_page_wins() {
        let p = pages(&[
            ("5xx", "class"),
            ("1xxx", "code"),
            ("rate_limit", "rl"),
            ("404", "four-o-four"),
            ("4xx", "four"),
        ]);
        assert_eq!(
            p.for_generated(EdgeError::RateLimited).map(|s| &**s),
            Some("rl")
        );
        assert_eq!(
            p.for_generated(EdgeError::DirectIpAccess).map(|s| &**s),
            Some("code")
        );
        assert_eq!(
            p.for_generated(EdgeError::WebServerDown).map(|s| &**s),
            Some("class")
        );
        assert_eq!(
            p.for_generated(EdgeError::UriTooLong).map(|s| &**s),
            Some("four")
        );
        assert_eq!(p.for_origin(404).map(|s| &**s), Some("four-o-four"));
        assert_eq!(p.for_origin(401).map(|s| &**s), Some("four"));
        assert_eq!(p.for_origin(503).map(|s| &**s), Some("class"));
        assert!(pages(&[("ip_block", "x")]).for_origin(403).is_none());
    }

    #[test]
    fn placeholders_are_replaced_and_escaped() {
        let vars = PageVars {
            ray_id: "abc",
            client_ip: "192.0.2.1",
            error_code: 1015,
            title: "T<",
            detail: "d&",
        };
        let out = render_page(
            "<p>::RAY_ID:: ::CLIENT_IP:: ::ERROR_CODE:: ::ERROR_TITLE:: ::ERROR_DETAIL:: ::OTHER:: a::b</p>",
            &vars,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<p>abc 192.0.2.1 1015 T&lt; d&amp; ::OTHER:: a::b</p>"
        );
    }

    #[test]
    fn bad_targets_are_explained() {
        assert!(
            PageFor::parse("3xx")
                .unwrap_err()
                .contains("not a page target")
        );
        assert!(PageFor::parse("399").is_err());
        assert_eq!(PageFor::parse("599"), Ok(PageFor::Status(599)));
    }
}
