//! Security phases: IP access rules, custom rules, rate limiting rules, custom responses and
//! pages, trusted proxies.

mod common;

use common::{Behaviour, Origin, Rampart};

fn geoip_dir() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

/// GeoIP test databases (fetched by scripts/fixtures). Tests that need them fail loudly
/// when they are missing rather than passing vacuously.
fn geoip_section() -> String {
    let dir = geoip_dir();
    let country = dir.join("GeoIP2-Country-Test.mmdb");
    let asn = dir.join("GeoLite2-ASN-Test.mmdb");
    assert!(
        country.exists() && asn.exists(),
        "run scripts/fixtures to fetch the MaxMind test databases into {}",
        dir.display()
    );
    format!(
        "[geoip]\ncountry_db = \"{}\"\nasn_db = \"{}\"\n",
        country.display(),
        asn.display()
    )
}

const TRUST_LOOPBACK: &str = "trusted_proxies = [\"127.0.0.1/32\", \"::1/128\"]\n";

fn get(path: &str, extra: &str) -> String {
    format!("GET {path} HTTP/1.1\r\nHost: example.test\r\n{extra}\r\n")
}

fn from(ip: &str) -> String {
    format!("X-Forwarded-For: {ip}\r\n")
}

#[tokio::test]
async fn ip_access_rules_block_ip_range_and_allow_beats_block() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.ip_access_rule]]
target = "ip_range"
value = "198.51.100.0/24"
mode = "block"
note = "abusive crawler"
[[zone.ip_access_rule]]
target = "ip"
value = "198.51.100.7"
mode = "allow"
[[zone.ip_access_rule]]
target = "ip"
value = "203.0.113.5"
mode = "block"
"#;
    let rampart = Rampart::start_with(origin.addr, TRUST_LOOPBACK, zone, "").await;
    let (resp, _c) = rampart
        .request(
            get(
                "/",
                &(from("198.51.100.9") + "Accept: application/json\r\n"),
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(resp.status, 403);
    assert_eq!(resp.json()["error_code"], 1006);
    let (resp, _c) = rampart
        .request(get("/", &from("198.51.100.7")).as_bytes())
        .await;
    assert_eq!(resp.status, 200, "allow beats block");
    let (resp, _c) = rampart
        .request(get("/", &from("203.0.113.5")).as_bytes())
        .await;
    assert_eq!(resp.status, 403);
    assert!(resp.text().contains("Error 1006"));
    let (resp, _c) = rampart
        .request(get("/", &from("192.0.2.1")).as_bytes())
        .await;
    assert_eq!(resp.status, 200);
    assert_eq!(origin.received().len(), 2);
    let lines = rampart.log_lines(4).await;
    assert_eq!(lines[0]["SecurityAction"], "block");
    assert_eq!(lines[0]["SecurityRuleID"], "ip_access_rule.1");
    assert_eq!(lines[0]["SecurityRuleDescription"], "abusive crawler");
    assert_eq!(lines[0]["SecuritySources"], serde_json::json!(["ipRange"]));
    assert_eq!(lines[0]["ClientIP"], "198.51.100.9");
    assert_eq!(lines[2]["SecuritySources"], serde_json::json!(["ip"]));
}

#[tokio::test]
async fn spoofed_x_forwarded_for_from_an_untrusted_peer_changes_nothing() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone =
        "[[zone.ip_access_rule]]\ntarget = \"ip\"\nvalue = \"127.0.0.1\"\nmode = \"block\"\n";
    let rampart = Rampart::start_with(origin.addr, "", zone, "").await;
    let (resp, _c) = rampart
        .request(get("/", &from("192.0.2.1")).as_bytes())
        .await;
    assert_eq!(
        resp.status, 403,
        "the TCP peer 127.0.0.1 is blocked whatever X-Forwarded-For says"
    );
}

#[tokio::test]
async fn country_and_asn_rules_use_the_geoip_databases() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.ip_access_rule]]
target = "country"
value = "US"
mode = "block"
[[zone.ip_access_rule]]
target = "asn"
value = "AS1221"
mode = "block"
"#;
    let rampart = Rampart::start_with(origin.addr, TRUST_LOOPBACK, zone, &geoip_section()).await;
    // 214.78.120.0/22 is US in GeoIP2-Country-Test; 1.128.0.0/11 is AS1221 in GeoLite2-ASN-Test.
    let (resp, _c) = rampart
        .request(
            get(
                "/",
                &(from("214.78.120.1") + "Accept: application/json\r\n"),
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(
        (resp.status, resp.json()["error_code"].clone()),
        (403, serde_json::json!(1009))
    );
    let (resp, _c) = rampart
        .request(get("/", &(from("1.128.0.1") + "Accept: application/json\r\n")).as_bytes())
        .await;
    assert_eq!(
        (resp.status, resp.json()["error_code"].clone()),
        (403, serde_json::json!(1005))
    );
    let (resp, _c) = rampart
        .request(get("/", &from("192.0.2.1")).as_bytes())
        .await;
    assert_eq!(resp.status, 200);
    let lines = rampart.log_lines(3).await;
    assert_eq!(lines[0]["ClientCountry"], "US");
    assert_eq!(lines[1]["ClientASN"], 1221);
}

#[tokio::test]
async fn geoip_fields_feed_the_rules() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.custom_rule]]
expression = 'ip.src.country eq "US" and ip.src.continent eq "NA"'
action = "block"
[[zone.custom_rule]]
expression = 'ip.src.asnum eq 1221'
action = "block"
"#;
    let rampart = Rampart::start_with(origin.addr, TRUST_LOOPBACK, zone, &geoip_section()).await;
    for ip in ["214.78.120.1", "1.128.0.1"] {
        let (resp, _c) = rampart.request(get("/", &from(ip)).as_bytes()).await;
        assert_eq!(resp.status, 403, "{ip}");
    }
    let (resp, _c) = rampart
        .request(get("/", &from("192.0.2.1")).as_bytes())
        .await;
    assert_eq!(resp.status, 200);
}

#[tokio::test]
async fn custom_rule_block_gets_1020_and_log_continues() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.custom_rule]]
id = "watch-bots"
description = "Watch bots"
expression = 'lower(http.user_agent) contains "bot"'
action = "log"
[[zone.custom_rule]]
description = "Block admin from outside the office"
expression = 'http.request.uri.path wildcard "/admin*" and not ip.src in {192.0.2.0/24}'
action = "block"
[[zone.custom_rule]]
expression = 'http.request.uri.path eq "/disabled"'
action = "block"
enabled = false
"#;
    let rampart = Rampart::start_with(origin.addr, TRUST_LOOPBACK, zone, "").await;
    let (resp, _c) = rampart
        .request(
            get(
                "/ADMIN/users",
                &(from("203.0.113.1") + "Accept: application/json\r\n"),
            )
            .as_bytes(),
        )
        .await;
    assert_eq!(resp.status, 403);
    let j = resp.json();
    assert_eq!(j["error_code"], 1020);
    assert_eq!(
        j["title"],
        "Error 1020: Access denied: a firewall rule of this site blocked the request"
    );
    let (resp, _c) = rampart
        .request(get("/admin", &from("192.0.2.10")).as_bytes())
        .await;
    assert_eq!(resp.status, 200, "the office may");
    let (resp, _c) = rampart
        .request(get("/disabled", "User-Agent: GoodBot/1\r\n").as_bytes())
        .await;
    assert_eq!(
        resp.status, 200,
        "disabled rules do nothing; log rules let the request through"
    );
    let lines = rampart.log_lines(3).await;
    assert_eq!(lines[0]["SecurityAction"], "block");
    assert_eq!(lines[0]["SecurityRuleID"], "custom_rule.2");
    assert_eq!(
        lines[0]["SecurityRuleDescription"],
        "Block admin from outside the office"
    );
    assert_eq!(
        lines[0]["SecuritySources"],
        serde_json::json!(["firewallCustom"])
    );
    assert_eq!(lines[2]["SecurityAction"], "log");
    assert_eq!(lines[2]["SecurityRuleID"], "watch-bots");
    assert_eq!(lines[2]["EdgeResponseStatus"], 200);
    let m = rampart.metrics().await;
    assert!(m.contains("rampart_security_actions_total{zone=\"example.test\",action=\"block\",source=\"firewallCustom\"} 1"), "{m}");
}

#[tokio::test]
async fn custom_response_is_sent_as_configured_whatever_the_accept() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.custom_rule]]
expression = 'http.request.uri.path eq "/teapot"'
action = "block"
response = { status = 418, content_type = "application/json", body = '{"error":"no"}' }
"#;
    let rampart = Rampart::start_with(origin.addr, "", zone, "").await;
    let (resp, _c) = rampart
        .request(get("/teapot", "Accept: text/html\r\n").as_bytes())
        .await;
    assert_eq!(resp.status, 418);
    assert_eq!(
        resp.header("content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(resp.text(), r#"{"error":"no"}"#);
    assert!(resp.header("rampart-ray").is_some());
    let (resp, _c) = rampart
        .request(b"HEAD /teapot HTTP/1.1\r\nHost: example.test\r\n\r\n")
        .await;
    assert_eq!(resp.status, 418);
    assert!(resp.body.is_empty());
    assert_eq!(resp.header("content-length").as_deref(), Some("14"));
}

#[tokio::test]
async fn skip_rule_skips_rate_limiting_and_later_custom_rules() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.custom_rule]]
expression = 'http.request.headers["x-internal"][0] eq "yes"'
action = "skip"
skip = ["rate_limit"]
[[zone.custom_rule]]
expression = 'http.request.uri.path eq "/blocked"'
action = "block"
[[zone.rate_limit]]
expression = 'true'
characteristics = ["ip.src"]
period = 10
requests_per_period = 1
mitigation_timeout = 0
"#;
    let rampart = Rampart::start_with(origin.addr, "", zone, "").await;
    for _ in 0..3 {
        let (resp, _c) = rampart
            .request(get("/blocked", "X-Internal: yes\r\n").as_bytes())
            .await;
        assert_eq!(resp.status, 200);
    }
    let (resp, _c) = rampart.request(get("/blocked", "").as_bytes()).await;
    assert_eq!(resp.status, 403);
}

#[tokio::test]
async fn rate_limit_gives_429_with_exact_retry_after_and_ratelimit_fields() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.rate_limit]]
description = "Login brute force"
expression = 'http.request.uri.path eq "/login" and http.request.method eq "POST"'
characteristics = ["ip.src"]
period = 60
requests_per_period = 5
mitigation_timeout = 600
"#;
    let rampart = Rampart::start_with(origin.addr, TRUST_LOOPBACK, zone, "").await;
    let post = |ip: &str| {
        format!(
            "POST /login HTTP/1.1\r\nHost: example.test\r\nContent-Length: 0\r\nAccept: application/json\r\n{}\r\n",
            from(ip)
        )
    };
    for _ in 0..5 {
        let (resp, _c) = rampart.request(post("203.0.113.1").as_bytes()).await;
        assert_eq!(resp.status, 200);
    }
    let (resp, _c) = rampart.request(post("203.0.113.1").as_bytes()).await;
    assert_eq!(resp.status, 429);
    // The mitigation timeout starts with this request: exactly 600 s, never rounded to 0.
    assert_eq!(resp.header("retry-after").as_deref(), Some("600"));
    assert_eq!(
        resp.header("ratelimit-policy").as_deref(),
        Some("\"rate_limit.1\";q=5;w=60")
    );
    assert_eq!(
        resp.header("ratelimit").as_deref(),
        Some("\"rate_limit.1\";r=0;t=600")
    );
    let j = resp.json();
    assert_eq!(
        (j["error_code"].clone(), j["retry_after"].clone()),
        (serde_json::json!(1015), serde_json::json!(600))
    );
    // Other clients and other paths are not affected.
    let (resp, _c) = rampart.request(post("203.0.113.2").as_bytes()).await;
    assert_eq!(resp.status, 200);
    let (resp, _c) = rampart
        .request(get("/login", &from("203.0.113.1")).as_bytes())
        .await;
    assert_eq!(resp.status, 200);
    let lines = rampart.log_lines(8).await;
    assert_eq!(lines[5]["SecurityRuleDescription"], "Login brute force");
    assert_eq!(
        lines[5]["SecuritySources"],
        serde_json::json!(["rateLimit"])
    );
}

#[tokio::test]
async fn throttle_mode_retry_after_is_the_wait_for_one_token() {
    let origin = Origin::start(Behaviour::Echo).await;
    let zone = r#"
[[zone.rate_limit]]
expression = 'true'
characteristics = ["header:x-api-key"]
period = 10
requests_per_period = 2
mitigation_timeout = 0
response = { status = 429, content_type = "text/plain", body = "slow down" }
"#;
    let rampart = Rampart::start_with(origin.addr, "", zone, "").await;
    let mut c = rampart.client().await;
    let mut statuses = Vec::new();
    let mut last = None;
    for _ in 0..3 {
        c.send(get("/", "X-Api-Key: k1\r\n").as_bytes()).await;
        let r = c.response(false).await;
        statuses.push(r.status);
        last = Some(r);
    }
    assert_eq!(statuses, [200, 200, 429]);
    let last = last.unwrap();
    assert_eq!(last.text(), "slow down");
    assert_eq!(last.header("content-type").as_deref(), Some("text/plain"));
    // 2 per 10 s: one request's worth comes back 5 s after the first; under a second has
    // passed, so the exact wait rounds up to 5 (less only on a very slow machine, never 0).
    let wait: u64 = last.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=5).contains(&wait), "Retry-After {wait}");
    // A different key is separate.
    c.send(get("/", "X-Api-Key: k2\r\n").as_bytes()).await;
    assert_eq!(c.response(false).await.status, 200);
}

#[tokio::test]
async fn counting_expression_counts_only_matching_responses() {
    let origin = Origin::start(Behaviour::With(std::sync::Arc::new(
        |r: &common::Received| {
            let status = if r.request_line().contains("/fail") {
                "401 Unauthorized"
            } else {
                "200 OK"
            };
            format!("HTTP/1.1 {status}\r\nContent-Length: 0\r\n\r\n").into_bytes()
        },
    )))
    .await;
    let zone = r#"
[[zone.rate_limit]]
expression = 'http.request.uri.path wildcard "/*"'
counting_expression = 'http.response.code eq 401'
characteristics = ["ip.src"]
period = 60
requests_per_period = 2
mitigation_timeout = 60
"#;
    let rampart = Rampart::start_with(origin.addr, "", zone, "").await;
    let mut c = rampart.client().await;
    let mut statuses = Vec::new();
    for path in ["/ok", "/ok", "/ok", "/fail", "/fail", "/ok", "/fail"] {
        c.send(get(path, "").as_bytes()).await;
        statuses.push(c.response(false).await.status);
    }
    // Successes never count; after two 401s the third request is over the limit.
    assert_eq!(statuses, [200, 200, 200, 401, 401, 429, 429]);
}

#[tokio::test]
async fn custom_error_pages_replace_only_the_body() {
    let (dir, zone) = common::error_pages(
        "<h1>blocked ::ERROR_CODE:: ray ::RAY_ID:: ip ::CLIENT_IP::</h1>",
        "<h1>please log in (::ERROR_CODE::)</h1>",
    );
    let origin = common::unauthorized_origin().await;
    let rampart = Rampart::start_with(origin.addr, "", &zone, "").await;
    let (resp, _c) = rampart
        .request(get("/blocked", "Accept: text/html\r\n").as_bytes())
        .await;
    assert_eq!(resp.status, 403);
    let ray = resp.header("rampart-ray").unwrap();
    assert_eq!(
        resp.text(),
        format!("<h1>blocked 1020 ray {ray} ip 127.0.0.1</h1>")
    );
    let (resp, _c) = rampart
        .request(get("/blocked", "Accept: application/json\r\n").as_bytes())
        .await;
    assert_eq!(
        resp.json()["error_code"],
        1020,
        "JSON clients keep problem details"
    );
    let (resp, _c) = rampart
        .request(get("/private", "Accept: text/html\r\n").as_bytes())
        .await;
    assert_eq!(resp.status, 401);
    assert_eq!(
        resp.header("www-authenticate").as_deref(),
        Some("Basic realm=\"x\"")
    );
    assert_eq!(resp.text(), "<h1>please log in (401)</h1>");
    assert!(
        resp.header("content-type")
            .unwrap()
            .starts_with("text/html")
    );
    let (resp, _c) = rampart
        .request(get("/private", "Accept: application/json\r\n").as_bytes())
        .await;
    assert_eq!(resp.text(), "who");
    std::fs::remove_dir_all(dir).unwrap();
}
