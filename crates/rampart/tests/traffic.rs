//! Traffic rules: redirect rules and `always_use_https` answer at the edge (the origin counts
//! zero requests), request header rules change what the origin gets, response header rules
//! and HSTS change every answer of the zone (relayed, cached and generated), over HTTP/1.1
//! and HTTP/2.

mod common;

use common::http2::{self, h2c};
use common::pki::Pki;
use common::*;

async fn get(r: &Rampart, target: &str, fields: &str) -> Response {
    let raw = format!("GET {target} HTTP/1.1\r\nHost: example.test\r\n{fields}\r\n");
    r.request(raw.as_bytes()).await.0
}

const REDIRECTS: &str = r#"
[[zone.redirect_rule]]
id = "old-page"
expression = 'http.request.uri.path eq "/old"'
target = "https://example.test/new"
status = 301
preserve_query = true

[[zone.redirect_rule]]
id = "blog-move"
expression = 'starts_with(http.request.uri.path, "/blog/")'
target = { expression = 'concat("https://blog.example.test", regex_replace(http.request.uri.path, "^/blog/(.*)$", "/${1}"))' }
status = 302

[[zone.redirect_rule]]
id = "temporary"
expression = 'http.request.uri.path eq "/keep-method"'
target = "/elsewhere?from=rule"
status = 307
preserve_query = true
"#;

#[tokio::test]
async fn redirect_rules_answer_at_the_edge_whatever_the_spelling() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(origin.addr, "", REDIRECTS, "").await;
    // Every spelling of /old that an origin reads as /old is redirected.
    for target in ["/old", "/%6Fld", "/%6fld", "//old", "/./old", "/x/../old"] {
        let res = get(&r, target, "").await;
        assert_eq!(res.status, 301, "{target}");
        assert_eq!(
            res.header("location").as_deref(),
            Some("https://example.test/new"),
            "{target}"
        );
        assert!(res.header("rampart-ray").is_some());
    }
    // The query is kept when the rule says so.
    let res = get(&r, "/old?a=1&b=%20", "").await;
    assert_eq!(
        res.header("location").as_deref(),
        Some("https://example.test/new?a=1&b=%20")
    );
    // An expression target, built from the path.
    let res = get(&r, "/blog/2026/post?x=1", "").await;
    assert_eq!(res.status, 302);
    assert_eq!(
        res.header("location").as_deref(),
        Some("https://blog.example.test/2026/post")
    );
    // A target with its own query gets the request's after `&`; 307 keeps the method.
    let raw =
        b"POST /keep-method?q=2 HTTP/1.1\r\nHost: example.test\r\nContent-Length: 3\r\n\r\nabc";
    let (res, _) = r.request(raw).await;
    assert_eq!(res.status, 307);
    assert_eq!(
        res.header("location").as_deref(),
        Some("/elsewhere?from=rule&q=2")
    );
    // HEAD: the same head, no body.
    let (res, _) = r
        .request(b"HEAD /old HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(res.status, 301);
    assert!(res.body.is_empty());
    assert_eq!(
        origin.received().len(),
        0,
        "the origin saw no redirected request"
    );
    // What does not match goes on: another path, another case (paths are case-sensitive).
    for target in ["/older", "/OLD", "/blog", "/old/"] {
        assert_eq!(get(&r, target, "").await.status, 200, "{target}");
    }
    assert_eq!(origin.received().len(), 4);
    // Over HTTP/2, the same answers.
    let mut h2 = h2c(r.addr).await;
    let res = http2::send(&mut h2, http2::get("http://example.test/%6Fld?z=9"), None).await;
    assert_eq!(res.status, 301);
    assert_eq!(res.headers["location"], "https://example.test/new?z=9",);
    let res = http2::send(&mut h2, http2::get("http://example.test/blog/a"), None).await;
    assert_eq!(res.status, 302);
    assert_eq!(res.headers["location"], "https://blog.example.test/a");
    assert_eq!(origin.received().len(), 4);
}

#[tokio::test]
async fn always_use_https_redirects_plain_http_but_not_acme_challenges() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(origin.addr, "", "always_use_https = true", "").await;
    let res = get(&r, "/a/b?c=d", "").await;
    assert_eq!(res.status, 301);
    assert_eq!(
        res.header("location").as_deref(),
        Some("https://example.test/a/b?c=d")
    );
    // A method that must not turn into GET gets 308.
    let raw = b"POST /form HTTP/1.1\r\nHost: example.test\r\nContent-Length: 2\r\n\r\nok";
    let (res, _) = r.request(raw).await;
    assert_eq!(res.status, 308);
    assert_eq!(
        res.header("location").as_deref(),
        Some("https://example.test/form")
    );
    // A certificate authority's HTTP-01 check is answered over plain HTTP.
    let res = get(&r, "/.well-known/acme-challenge/token", "").await;
    assert_eq!(res.status, 200);
    assert_eq!(origin.received().len(), 1);
    // HTTP/2 in cleartext is plain HTTP too.
    let mut h2 = h2c(r.addr).await;
    let res = http2::send(&mut h2, http2::get("http://example.test/x"), None).await;
    assert_eq!(res.status, 301);
    assert_eq!(res.headers["location"], "https://example.test/x");
}

/// A zone `example.test` on a TLS listener and a plain one, with `zone_extra`.
async fn both_listeners(pki: &Pki, origin: &Origin, zone_extra: &str) -> Rampart {
    pki.issue("e", &["example.test"]);
    let zones = format!(
        "[[zone]]\nname = \"example.test\"\nhosts = [\"example.test\"]\norigin = \"http://{}\"\n{}\n{zone_extra}\n",
        origin.addr,
        pki.tls("e")
    );
    Rampart::start_listening(
        "listen = [\"127.0.0.1:0\"]\ntls_listen = [\"127.0.0.1:0\"]\n",
        "",
        &zones,
    )
    .await
}

async fn over_tls(pki: &Pki, r: &Rampart, raw: &str) -> Response {
    let tls_addr = r.server.as_ref().unwrap().local_addrs[1];
    let s = pki.connect(tls_addr, "example.test").await.unwrap();
    let mut c = Client::over(s);
    c.send(raw.as_bytes()).await;
    c.response(false).await
}

#[tokio::test]
async fn hsts_goes_only_over_https_on_every_kind_of_answer() {
    let origin = Origin::start(Behaviour::Echo).await;
    let pki = Pki::new();
    let extra = r#"hsts = { max_age = 31536000, include_subdomains = true, preload = true }
always_use_https = true

[[zone.custom_rule]]
id = "no-admin"
expression = 'http.request.uri.path eq "/admin"'
action = "block"
"#;
    let r = both_listeners(&pki, &origin, extra).await;
    let want = "max-age=31536000; includeSubDomains; preload";
    // Relayed over HTTPS: there, and not repeated.
    let res = over_tls(&pki, &r, "GET / HTTP/1.1\r\nHost: example.test\r\n\r\n").await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers("strict-transport-security"), [want]);
    // Generated over HTTPS (a custom rule's 403): there too.
    let res = over_tls(
        &pki,
        &r,
        "GET /admin HTTP/1.1\r\nHost: example.test\r\n\r\n",
    )
    .await;
    assert_eq!(res.status, 403);
    assert_eq!(res.headers("strict-transport-security"), [want]);
    // Over plain HTTP (the redirect to https): never (RFC 6797 §7.2).
    let plain = r.server.as_ref().unwrap().local_addrs[0];
    let mut c = Client::connect(plain).await;
    c.send(b"GET / HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    let res = c.response(false).await;
    assert_eq!(res.status, 301);
    assert!(res.header("strict-transport-security").is_none());
    // HTTP/2 over TLS: there.
    let tls_addr = r.server.as_ref().unwrap().local_addrs[1];
    let mut h2 = pki.connect_h2(tls_addr, "example.test").await;
    let res = http2::send(&mut h2, http2::get("https://example.test/"), None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["strict-transport-security"], want);
}

const REQUEST_HEADERS: &str = r#"
[[zone.request_header_rule]]
expression = "true"
set = { "X-Edge" = "rampart", "X-Client" = { expression = 'concat("ip=", to_string(ip.src))' } }
remove = ["X-Debug"]

[[zone.request_header_rule]]
expression = 'starts_with(http.request.uri.path, "/api/")'
add = { "X-Api" = "1" }
"#;

#[tokio::test]
async fn request_header_rules_change_what_the_origin_gets() {
    let origin = Origin::start(Behaviour::Echo).await;
    let r = Rampart::start_with(origin.addr, "", REQUEST_HEADERS, "").await;
    // The client's own X-Edge is replaced, not joined; X-Debug (any case) is dropped.
    let res = get(
        &r,
        "/api/x",
        "X-Edge: spoofed\r\nx-debug: 1\r\nX-Keep: yes\r\n",
    )
    .await;
    assert_eq!(res.status, 200);
    let h2_path = "/%61pi/y";
    let mut h2 = h2c(r.addr).await;
    let req = http::Request::get(format!("http://example.test{h2_path}"))
        .header("x-edge", "spoofed")
        .header("x-debug", "1")
        .body(())
        .unwrap();
    assert_eq!(http2::send(&mut h2, req, None).await.status, 200);
    let got = origin.received();
    assert_eq!(got.len(), 2);
    for req in &got {
        assert_eq!(req.header("x-edge"), ["rampart"]);
        assert_eq!(req.header("x-client"), ["ip=127.0.0.1"]);
        assert!(req.header("x-debug").is_empty());
        assert_eq!(req.header("x-api"), ["1"], "the normalised path matched");
    }
    assert_eq!(got[0].header("x-keep"), ["yes"]);
    // Outside /api/, no X-Api.
    get(&r, "/other", "").await;
    assert!(origin.received()[2].header("x-api").is_empty());
}

const RESPONSE_HEADERS: &str = r#"
[[zone.response_header_rule]]
expression = "true"
set = { "X-Frame-Options" = "DENY", "X-Country-Path" = { expression = "lower(http.request.uri.path)" } }
remove = ["Server"]

[[zone.response_header_rule]]
expression = "http.response.code eq 404"
add = { "X-Missing" = "yes" }

[[zone.custom_rule]]
id = "blocked"
expression = 'http.request.uri.path eq "/blocked"'
action = "block"
"#;

fn responder() -> Responder {
    std::sync::Arc::new(|req: &Received| {
        let target = req
            .request_line()
            .split(' ')
            .nth(1)
            .unwrap_or("/")
            .to_string();
        let status = if target.contains("missing") {
            "404 Not Found"
        } else {
            "200 OK"
        };
        format!(
            "HTTP/1.1 {status}\r\nServer: origin/1.0\r\nX-Frame-Options: SAMEORIGIN\r\nCache-Control: max-age=300\r\nContent-Length: 2\r\n\r\nok"
        )
        .into_bytes()
    })
}

#[tokio::test]
async fn response_header_rules_apply_to_relayed_cached_and_generated_answers() {
    let origin = Origin::start(Behaviour::With(responder())).await;
    let r = Rampart::start_with(origin.addr, "", RESPONSE_HEADERS, "").await;
    for (target, status, cache) in [
        ("/Style.css", 200, Some("MISS")),
        ("/Style.css", 200, Some("HIT")),
        ("/missing", 404, None),
        ("/blocked", 403, None),
    ] {
        let res = get(&r, target, "").await;
        assert_eq!(res.status, status, "{target}");
        assert_eq!(res.headers("x-frame-options"), ["DENY"], "{target}");
        assert!(res.header("server").is_none(), "{target}: {}", res.head);
        assert_eq!(
            res.header("x-country-path").as_deref(),
            Some(target.to_lowercase().as_str())
        );
        assert_eq!(res.header("x-missing").is_some(), status == 404, "{target}");
        if let Some(c) = cache {
            assert_eq!(res.header("rampart-cache-status").as_deref(), Some(c));
        }
    }
    assert_eq!(
        origin.received().len(),
        2,
        "the hit and the block came from the edge"
    );
    // The stored copy kept the origin's fields: a rule changes each answer, not the object.
    let mut h2 = h2c(r.addr).await;
    let res = http2::send(&mut h2, http2::get("http://example.test/Style.css"), None).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.headers["rampart-cache-status"], "HIT");
    assert_eq!(res.headers["x-frame-options"], "DENY");
    assert!(!res.headers.contains_key("server"));
}

fn load(zone_extra: &str) -> Result<(), String> {
    let src = format!(
        "[server]\nlisten = [\"127.0.0.1:0\"]\n\n[[zone]]\nname = \"a\"\nhosts = [\"a.test\"]\norigin = \"http://127.0.0.1:9\"\n{zone_extra}\n"
    );
    rampart::config::load_str("t.toml", &src, None)
        .map(|_| ())
        .map_err(|e| {
            e.errors
                .iter()
                .map(|e| e.to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
}

#[test]
fn broken_traffic_rules_are_refused_at_their_key() {
    let cases = [
        (
            "[[zone.redirect_rule]]\nexpression = \"true\"\ntarget = \"/x\"\nstatus = 305",
            "zone[0].redirect_rule[0].status",
            "301, 302, 303, 307 or 308",
        ),
        (
            "[[zone.redirect_rule]]\nexpression = \"true\"\ntarget = \"example.test/x\"",
            "zone[0].redirect_rule[0].target",
            "absolute URL",
        ),
        (
            "[[zone.redirect_rule]]\nexpression = \"true\"\ntarget = { expression = \"ip.src\" }",
            "zone[0].redirect_rule[0].target.expression",
            "must be a string",
        ),
        (
            "[[zone.redirect_rule]]\nexpression = \"true\"",
            "zone[0].redirect_rule[0].target",
            "required",
        ),
        (
            "[[zone.request_header_rule]]\nexpression = \"true\"\nset = { \"Transfer-Encoding\" = \"chunked\" }",
            "zone[0].request_header_rule[0].set.Transfer-Encoding",
            "frames the message",
        ),
        (
            "[[zone.request_header_rule]]\nexpression = \"true\"\nremove = [\"X-Forwarded-For\"]",
            "zone[0].request_header_rule[0].remove",
            "set by rampart",
        ),
        (
            "[[zone.response_header_rule]]\nexpression = \"true\"\nset = { \"X-A\" = \"a\\r\\nInjected: 1\" }",
            "zone[0].response_header_rule[0].set.X-A",
            "control characters",
        ),
        (
            "[[zone.response_header_rule]]\nexpression = 'http.request.body.raw contains \"x\"'\nadd = { \"X-A\" = \"1\" }",
            "zone[0].response_header_rule[0].expression",
            "reads the body",
        ),
        (
            "[[zone.response_header_rule]]\nexpression = \"true\"",
            "zone[0].response_header_rule[0]",
            "changes nothing",
        ),
        (
            "hsts = { include_subdomains = true }",
            "zone[0].hsts.max_age",
            "required",
        ),
    ];
    for (extra, key, words) in cases {
        let e = load(extra).unwrap_err();
        assert!(
            e.contains("t.toml:") && e.contains(key) && e.contains(words),
            "{extra}\n{e}"
        );
    }
    load("always_use_https = true\nhsts = { max_age = 0 }").unwrap();
}
