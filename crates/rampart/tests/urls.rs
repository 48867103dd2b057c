//! URLs as attackers and browsers write them: every spelling of a blocked path is caught over
//! HTTP/1.1 and HTTP/2 (URL normalisation), and what browsers send unencoded is served.

mod common;

use common::http2::{get, h2c, send};
use common::{Behaviour, Origin, Rampart};

/// Spellings of `/secret/file.txt` that origins read as that path.
const BYPASSES: &[&str] = &[
    "/secret/file.txt",
    "/%73ecret/file.txt",
    "/%73%65%63%72%65%74/file.txt",
    "//secret/file.txt",
    "/./secret/file.txt",
    "/x/../secret/file.txt",
    "/x/%2e%2e/secret/file.txt",
    "/x/%2E%2e/secret/file.txt",
    "/x/.%2E/secret/file.txt",
    "/../../secret/file.txt",
    "/secret//file.txt",
    "/secret\\file.txt",
    "/secret/./file.txt",
    "/SeCrEt/file.txt",
    "/%53ecret/file.txt",
];

/// Paths that are not `/secret/...` and must still pass.
const NOT_BYPASSES: &[&str] = &[
    "/secretary/file.txt",
    "/public/secret",
    "/secret%2Ffile.txt",
    "/%2573ecret/file.txt",
    "/x/..secret/file.txt",
];

/// What browsers and common clients send unencoded (the WHATWG URL standard's sets).
pub const BROWSER_URLS: &[&str] = &[
    "/?filter[name]=x",
    "/?a[]=1",
    "/?q={a:1}",
    "/?q=a|b",
    "/?q=a^b",
    "/?q=`x`",
    "/a|b",
    "/a[1]",
    "/caf%C3%A9/%E2%98%83",
    "/caf\u{e9}?q=\u{2603}",
];

const BLOCK_SECRET: &str = "[[zone.custom_rule]]\nid = \"secret\"\nexpression = 'starts_with(lower(http.request.uri.path), \"/secret/\")'\naction = \"block\"\n";

#[tokio::test]
async fn every_spelling_of_a_blocked_path_is_blocked_over_http1_and_http2() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(origin.addr, "", BLOCK_SECRET, "").await;
    let mut h2 = h2c(r.addr).await;
    for path in BYPASSES {
        let (resp, _) = r
            .request(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        assert_eq!(resp.status, 403, "HTTP/1.1 {path}");
        let resp = send(&mut h2, get(&format!("http://example.test{path}")), None).await;
        assert_eq!(resp.status, 403, "HTTP/2 {path}");
    }
    for path in NOT_BYPASSES {
        let (resp, _) = r
            .request(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        assert_eq!(resp.status, 200, "HTTP/1.1 {path}");
        let resp = send(&mut h2, get(&format!("http://example.test{path}")), None).await;
        assert_eq!(resp.status, 200, "HTTP/2 {path}");
    }
    // The origin got the URLs as sent (scope "incoming" is the default).
    let lines: Vec<String> = origin
        .received()
        .iter()
        .map(|r| r.request_line().to_string())
        .collect();
    assert!(
        lines.contains(&"GET /%2573ecret/file.txt HTTP/1.1".to_string()),
        "{lines:?}"
    );
}

#[tokio::test]
async fn rate_limits_count_every_spelling_as_one_path_and_raw_fields_keep_the_original() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = "[[zone.rate_limit]]\nexpression = 'true'\ncharacteristics = [\"ip.src\", \"http.request.uri.path\"]\nperiod = 60\nrequests_per_period = 2\n\
                [[zone.custom_rule]]\nid = \"raw\"\nexpression = 'raw.http.request.uri.path contains \"%73\"'\naction = \"log\"\n";
    let r = Rampart::start_with(origin.addr, "", zone, "").await;
    let mut statuses = Vec::new();
    for path in ["/secret", "/%73ecret", "//secret", "/other"] {
        let (resp, _) = r
            .request(format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        statuses.push(resp.status);
    }
    assert_eq!(statuses, [200, 200, 429, 200], "three spellings, one path");
    let lines = r.log_lines(4).await;
    let logged: Vec<_> = lines
        .iter()
        .map(|l| l["SecurityRuleID"].as_str().unwrap_or("").to_string())
        .collect();
    assert_eq!(logged[1], "raw", "the raw path keeps the escape: {lines:?}");
    assert_eq!(logged[0], "", "{lines:?}");
}

#[tokio::test]
async fn scope_both_sends_the_normalised_url_and_none_turns_it_off() {
    let origin = Origin::start(Behaviour::Echo).await;
    let both = "url_normalization = { type = \"cloudflare\", scope = \"both\" }\n";
    let r = Rampart::start_with(origin.addr, "", both, "").await;
    let (resp, _) = r
        .request(b"GET /a//b/../%63%2fd?x=%41 HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(
        origin.received()[0].request_line(),
        "GET /a/c%2Fd?x=%41 HTTP/1.1",
        "the path is normalised, the query left alone"
    );
    let rfc = "url_normalization = { type = \"rfc3986\", scope = \"both\" }\n";
    let r = Rampart::start_with(origin.addr, "", rfc, "").await;
    r.request(b"GET /a//b\\c HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(
        origin.received()[1].request_line(),
        "GET /a//b%5Cc HTTP/1.1"
    );
    let none = format!("url_normalization = {{ scope = \"none\" }}\n{BLOCK_SECRET}");
    let r = Rampart::start_with(origin.addr, "", &none, "").await;
    let (resp, _) = r
        .request(b"GET /%73ecret/file.txt HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200, "without normalisation the escape passes");
}

#[tokio::test]
async fn urls_that_browsers_send_are_served_over_http1_and_http2() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let mut h2 = h2c(r.addr).await;
    for target in BROWSER_URLS {
        let (resp, _) = r
            .request(format!("GET {target} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        assert_eq!(resp.status, 200, "HTTP/1.1 {target}");
        assert_eq!(
            origin.received().last().unwrap().request_line(),
            format!("GET {target} HTTP/1.1"),
            "the origin gets the target as sent"
        );
        let resp = send(&mut h2, get(&format!("http://example.test{target}")), None).await;
        assert_eq!(resp.status, 200, "HTTP/2 {target}");
    }
    // What breaks parsing is still refused.
    for bad in ["/a\x01b", "/a%zz", "/a\x7fb"] {
        let (resp, _) = r
            .request(format!("GET {bad} HTTP/1.1\r\nHost: example.test\r\n\r\n").as_bytes())
            .await;
        assert_eq!(resp.status, 400, "{bad:?}");
    }
    let (resp, _) = r
        .request(b"GET /\xc3( HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 400, "bytes that are not UTF-8");
}

#[tokio::test]
async fn unusual_bytes_reach_an_http1_origin_as_sent() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start(origin.addr).await;
    let (resp, _) = r
        .request(b"GET /a<b>?q=\"x\" HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 200, "to an HTTP/1.1 origin, as sent");
    assert_eq!(
        origin.received()[0].request_line(),
        "GET /a<b>?q=\"x\" HTTP/1.1"
    );
}
